#!/usr/bin/env bash
# Stress run (not in CI): `npm run test:stress [-- rounds]` or `bash scripts/stress.sh [rounds]`.
#
# Runs the Node suite (`npm run test:node`) and the Rust suite (`npm run test:rust`) `rounds`
# times (default 5) while CPU hogs keep all cores but one busy, so timing-dependent tests
# meet the scheduling delays of a loaded machine. Each run has an outer time limit: a hang
# becomes a failure of that round instead of a stuck terminal. Logs go to .stress/<time>/
# (git-ignored). Exits non-zero if any round failed, naming the failing tests.
#
# Environment: STRESS_HOGS (default: cores - 1, at least 1), STRESS_NODE_LIMIT and
# STRESS_RUST_LIMIT (seconds per run; defaults 900 and 600).
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

ROUNDS="${1:-5}"
if ! [[ "$ROUNDS" =~ ^[1-9][0-9]*$ ]]; then
  echo "usage: $0 [rounds]   (rounds: a positive integer, default 5)" >&2
  exit 2
fi
# About 6x a normal run of each suite (2.5 min for Node, under 1 min for Rust): far beyond
# what the hogs' slowdown explains, so reaching it means a hang.
NODE_LIMIT="${STRESS_NODE_LIMIT:-900}"
RUST_LIMIT="${STRESS_RUST_LIMIT:-600}"
CORES="$(nproc 2>/dev/null || echo 2)"
HOGS="${STRESS_HOGS:-$((CORES > 1 ? CORES - 1 : 1))}"

LOGDIR="$ROOT/.stress/$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$LOGDIR"
say() { printf 'stress: %s\n' "$*"; }

HOG_PIDS=()
CURRENT=""
stop_hogs() {
  for pid in "${HOG_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${HOG_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  HOG_PIDS=()
}
on_signal() {
  trap - INT TERM
  echo
  say "interrupted; stopping the current run and the CPU hogs"
  # timeout passes the signal on to the whole process group of the suite it runs.
  if [ -n "$CURRENT" ]; then kill -TERM "$CURRENT" 2>/dev/null; wait "$CURRENT" 2>/dev/null; fi
  exit 130
}
trap stop_hogs EXIT
trap on_signal INT TERM

# The Rust tests are compiled before the clock starts and before the hogs: the rounds time
# the tests, not the compiler. The addon must already be built (npm install does it).
if ! ls "$ROOT"/*.node >/dev/null 2>&1; then
  say "no built addon (*.node) in $ROOT: run 'npm run build' first" >&2
  exit 2
fi
say "preparing: python venv for the interop tests, Rust test binaries (log: $LOGDIR/prepare.log)"
if ! { bash scripts/setup-python.sh && cargo test -p zeropipe-engine --no-run; } >"$LOGDIR/prepare.log" 2>&1; then
  say "preparation failed; see $LOGDIR/prepare.log" >&2
  tail -n 20 "$LOGDIR/prepare.log" >&2
  exit 2
fi

# Each hog spins in plain JS; every 2^26 iterations (a fraction of a second) it checks that
# this script is still alive, so even a SIGKILLed stress run leaves no hog behind.
for _ in $(seq "$HOGS"); do
  node -e 'const p = +process.argv[1]; for (let i = 1; ; i++) if (!(i & 0x3ffffff)) { try { process.kill(p, 0) } catch { process.exit(0) } }' "$$" &
  HOG_PIDS+=("$!")
done
say "$ROUNDS round(s) on $CORES cores with $HOGS CPU hog(s); limits: node ${NODE_LIMIT}s, rust ${RUST_LIMIT}s; logs in $LOGDIR"

# Runs one suite under its limit into its log. In the background plus `wait`, because bash
# runs a trap only once a foreground command returns: Ctrl-C must act at once.
run_limited() {
  local limit="$1" log="$2"
  shift 2
  timeout --kill-after=15 "$limit" "$@" >"$log" 2>&1 &
  CURRENT=$!
  wait "$CURRENT"
  local rc=$?
  CURRENT=""
  return "$rc"
}

# What failed, from a suite's log: node's `not ok` lines (TAP, its reporter when the output
# is not a terminal; `✖` lines in case a newer Node picks the spec reporter), cargo's FAILED
# and panics.
failed_tests() {
  local kind="$1" log="$2"
  if [ "$kind" = node ]; then
    grep -E '^[[:space:]]*(not ok |✖ )' "$log" | head -n 40
  else
    grep -E 'FAILED|panicked' "$log" | awk '!seen[$0]++' | head -n 40
  fi
}

FAILURES=()
TOTAL_START=$SECONDS
for round in $(seq "$ROUNDS"); do
  line="round $round/$ROUNDS:"
  for kind in node rust; do
    log="$LOGDIR/round-$round-$kind.log"
    if [ "$kind" = node ]; then limit=$NODE_LIMIT; else limit=$RUST_LIMIT; fi
    start=$SECONDS
    run_limited "$limit" "$log" npm run "test:$kind"
    rc=$?
    took=$((SECONDS - start))
    if [ "$rc" -eq 0 ]; then
      line+=" $kind PASS ${took}s,"
      continue
    fi
    # 124: timeout's TERM ended it; 137: it ignored TERM and took the KILL.
    if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
      what="TIMED OUT after ${limit}s (a hang?)"
    else
      what="FAIL (exit $rc)"
    fi
    line+=" $kind $what ${took}s,"
    FAILURES+=("round $round, $kind: $what; log $log")
    tests="$(failed_tests "$kind" "$log")"
    if [ -n "$tests" ]; then
      while IFS= read -r t; do FAILURES+=("    $t"); done <<<"$tests"
    else
      FAILURES+=("    (no failing test named in the log; its last lines:)")
      while IFS= read -r t; do FAILURES+=("    | $t"); done < <(tail -n 8 "$log")
    fi
  done
  say "${line%,}"
done

stop_hogs
say "total $((SECONDS - TOTAL_START))s for $ROUNDS round(s)"
if [ "${#FAILURES[@]}" -gt 0 ]; then
  say "FAILED:"
  printf '  %s\n' "${FAILURES[@]}"
  exit 1
fi
say "PASSED: every round of both suites"
