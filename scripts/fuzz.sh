#!/usr/bin/env bash
# Coverage-guided fuzzing of the engine's wire-facing code: the fuzz/ cargo-fuzz crate
# (libFuzzer + AddressSanitizer, debug assertions and overflow checks on).
#
#   scripts/fuzz.sh [seconds-per-target] [target...]     (default: 60 s, every target)
#
# Needs, and installs neither of:
#   - the nightly toolchain:  rustup toolchain install nightly
#   - cargo-fuzz:             cargo install cargo-fuzz --locked
#
# Each target starts from its committed seeds (fuzz/corpus/<target>/) and grows a scratch
# copy that is deleted afterwards, so runs never dirty the tree. Exits non-zero if any
# target crashes, hangs or runs out of memory, naming the input that did it (kept under
# fuzz/artifacts/<target>/; replay it with `cargo +nightly fuzz run <target> <file>`).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

ALL_TARGETS=(decoder greeting handshake endpoint curve_server curve_message)
# libFuzzer options: one input running 10 s is a hang; 2 GiB is far beyond anything the
# targets need (their allocation checks are much tighter), so hitting it is a bug too.
LIBFUZZER_ARGS=(-timeout=10 -rss_limit_mb=2048 -print_final_stats=1)
# Time for libFuzzer to load the corpus and stop after -max_total_time before the outer
# timeout calls it a hang (the build is done beforehand, outside it).
GRACE=60

die() {
  echo "fuzz.sh: $*" >&2
  exit 2
}

seconds="${1:-60}"
[ $# -gt 0 ] && shift
[[ "$seconds" =~ ^[1-9][0-9]*$ ]] || die "seconds-per-target must be a positive integer, got \"$seconds\""
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=("${ALL_TARGETS[@]}")
for t in "${targets[@]}"; do
  [[ " ${ALL_TARGETS[*]} " == *" $t "* ]] || die "unknown target \"$t\" (targets: ${ALL_TARGETS[*]})"
done

cargo +nightly --version >/dev/null 2>&1 ||
  die "the nightly Rust toolchain is missing (rustup toolchain install nightly)"
cargo +nightly fuzz --version >/dev/null 2>&1 ||
  die "cargo-fuzz is missing (cargo install cargo-fuzz --locked)"
command -v timeout >/dev/null || die "timeout (coreutils) is missing"

# Built once up front so that the time limits below are fuzzing time, not compile time.
echo "== building fuzz targets: ${targets[*]}"
if [ ${#targets[@]} -eq ${#ALL_TARGETS[@]} ]; then
  # One cargo invocation links the binaries in parallel.
  cargo +nightly fuzz build --debug-assertions
else
  for t in "${targets[@]}"; do
    cargo +nightly fuzz build --debug-assertions "$t"
  done
fi

scratch="$(mktemp -d "${TMPDIR:-/tmp}/zeropipe-fuzz.XXXXXX")"
trap 'rm -rf "$scratch"' EXIT
logs="fuzz/target/logs"
mkdir -p "$logs"

failed=()
summary=()
for t in "${targets[@]}"; do
  echo "== fuzzing $t for ${seconds}s (full log: $logs/$t.log)"
  mkdir -p "$scratch/$t"
  log="$logs/$t.log"
  extra=()
  # The greeting target looks at 128 bytes at most; longer inputs would only waste runs.
  if [ "$t" = greeting ]; then extra=(-max_len=128); fi
  # New inputs go to the first corpus directory, the scratch one; the seeds are only read.
  set +e
  timeout --kill-after=10 "$((seconds + GRACE))" \
    cargo +nightly fuzz run --debug-assertions "$t" "$scratch/$t" "fuzz/corpus/$t" -- \
    -max_total_time="$seconds" "${LIBFUZZER_ARGS[@]}" "${extra[@]}" >"$log" 2>&1
  status=$?
  set -e
  # Progress lines for every new input are too many to show; the status lines are enough.
  grep -E '^#[0-9]+[[:space:]]+(INITED|pulse|DONE)|^stat::|^Done ' "$log" | tail -n 12 || true
  execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)"
  rate="$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)"
  cov="$(grep -oE 'cov: [0-9]+ ft: [0-9]+ corp: [0-9]+' "$log" | tail -n 1)"
  if [ "$status" -eq 0 ]; then
    summary+=("$t: ok, ${execs:-?} runs, ${rate:-?} exec/s, ${cov:-no coverage line}")
    continue
  fi
  failed+=("$t")
  echo "!! $t FAILED (exit $status); last lines of the log:"
  tail -n 40 "$log"
  if [ "$status" -eq 124 ] || [ "$status" -eq 137 ]; then
    echo "!! $t did not stop within ${seconds}s + ${GRACE}s: killed by the outer timeout"
  fi
  artifact="$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)"
  if [ -n "$artifact" ]; then
    echo "!! crashing input: $artifact"
    echo "!! reproduce: cargo +nightly fuzz run --debug-assertions $t $artifact"
    summary+=("$t: FAILED, input $artifact")
  else
    summary+=("$t: FAILED (exit $status), see $log")
  fi
done

echo "== summary"
printf '%s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz.sh: failing targets: ${failed[*]}" >&2
  exit 1
fi
