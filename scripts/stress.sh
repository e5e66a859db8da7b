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
# STRESS_RUST_LIMIT (seconds per run; defaults 900 and 600), STRESS_IDLE_LIMIT (seconds a
# run may go without writing to its log; default 300).
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
# A hung test can hang its whole file, and node's runner then waits for that file silently:
# stopping a run whose log stops growing saves most of the total limit. Both suites report
# every test as it ends (a whole Node test file took at most 81 s here under the hog), and
# this stays above scripts/test-node.mjs's 120 s per-test timeout, so the runner still gets
# to time out and name a hung test itself.
IDLE_LIMIT="${STRESS_IDLE_LIMIT:-300}"
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

# Every process below $1, parents before their children.
descendants() {
  local child
  for child in $(pgrep -P "$1" 2>/dev/null); do
    echo "$child"
    descendants "$child"
  done
}

# Exists and is not a zombie (a killed child of ours stays a zombie until it is waited for).
running() {
  local state
  state="$(ps -o stat= -p "$1" 2>/dev/null)"
  [ -n "$state" ] && [ "${state:0:1}" != Z ]
}

# Stops a suite and everything it started: TERM, then KILL what is left after 10 s. Not just
# timeout's process group: a test runner may start each file detached, in a process group
# of its own (with its peers in it), which a signal to the suite's group would miss.
stop_tree() {
  local root="$1" pids p left
  pids="$(descendants "$root")"
  for p in $pids; do
    if [ "$(ps -o pgid= -p "$p" 2>/dev/null | tr -d ' ')" = "$p" ]; then kill -TERM -- "-$p" 2>/dev/null; fi
  done
  kill -TERM "$root" $pids 2>/dev/null
  for _ in $(seq 10); do
    left=""
    for p in $root $pids; do running "$p" && left+=" $p"; done
    [ -z "$left" ] && return 0
    sleep 1 &
    wait $!
  done
  kill -KILL $left 2>/dev/null
  return 0
}

on_signal() {
  trap - INT TERM
  echo
  say "interrupted; stopping the current run and the CPU hogs"
  if [ -n "$CURRENT" ]; then
    stop_tree "$CURRENT"
    wait "$CURRENT" 2>/dev/null
  fi
  exit 130
}
trap stop_hogs EXIT
trap on_signal INT TERM

# The Rust tests are compiled before the clock starts and before the hogs: the rounds time
# the tests, not the compiler. The package must already be built (npm install does it):
# loading it checks the addon and the compiled JS layer at once.
if ! node -e 'require(".")' >/dev/null 2>&1; then
  say "the package does not load (not built?): run 'npm run build' first" >&2
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
say "$ROUNDS round(s) on $CORES cores with $HOGS CPU hog(s); limits: node ${NODE_LIMIT}s, rust ${RUST_LIMIT}s, ${IDLE_LIMIT}s without output; logs in $LOGDIR"

# Runs one suite under its limits into its log; sets STOPPED to "limit" or "idle" when it
# had to be stopped. The limits are enforced here, so the whole process tree goes
# (stop_tree); `timeout`, a minute later, is the backstop should this script misjudge.
# Everything waits in the background plus `wait`, because bash runs a trap only once a
# foreground command returns: Ctrl-C must act at once.
run_limited() {
  local limit="$1" log="$2"
  shift 2
  STOPPED=""
  timeout --kill-after=15 $((limit + 60)) "$@" >"$log" 2>&1 &
  CURRENT=$!
  local start=$SECONDS size=-1 since=$SECONDS now_size
  while running "$CURRENT"; do
    sleep 2 &
    wait $!
    now_size=$(stat -c %s "$log" 2>/dev/null || echo 0)
    if [ "$now_size" != "$size" ]; then
      size=$now_size
      since=$SECONDS
    fi
    if [ $((SECONDS - start)) -ge "$limit" ]; then
      STOPPED=limit
    elif [ $((SECONDS - since)) -ge "$IDLE_LIMIT" ]; then
      STOPPED=idle
    fi
    if [ -n "$STOPPED" ]; then
      stop_tree "$CURRENT"
      break
    fi
  done
  wait "$CURRENT"
  local rc=$?
  CURRENT=""
  return "$rc"
}

# What failed, from a suite's log: node's `not ok` lines (TAP, its reporter when the output
# is not a terminal; `✖` lines in case a newer Node picks the spec reporter) and a
# per-file runner's `# FAILED <file>` lines, cargo's FAILED and panics.
failed_tests() {
  local kind="$1" log="$2"
  if [ "$kind" = node ]; then
    grep -E '^[[:space:]]*(not ok |✖ )|^# FAILED ' "$log" | head -n 40
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
    # 124: the backstop timeout's TERM ended it; 137: it ignored TERM and took the KILL.
    if [ "$STOPPED" = idle ]; then
      what="HUNG: no output for ${IDLE_LIMIT}s, stopped"
    elif [ "$STOPPED" = limit ] || [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
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
