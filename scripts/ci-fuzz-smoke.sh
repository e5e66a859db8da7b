#!/usr/bin/env bash
# CI's fuzz smoke run: every fuzz target for 30 s (or $FUZZ_SMOKE_SECONDS) from its seeds,
# failing on any crash. Installs cargo-fuzz from crates.io if it is absent; the nightly
# toolchain must already be there (scripts/fuzz.sh says so if it is not).
#
# Not a search for new bugs (30 s finds little that the seeds do not reach): it keeps the
# fuzz crate building against the engine's API and replays the seeds and the paths around
# them under AddressSanitizer and overflow checks.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

# Pinned so that a new cargo-fuzz release cannot change CI under us; bump it on purpose.
CARGO_FUZZ_VERSION="0.13.2"

# Checked first so that a machine without nightly fails at once, not after an install.
if ! cargo +nightly --version >/dev/null 2>&1; then
  echo "ci-fuzz-smoke: the nightly Rust toolchain is missing (rustup toolchain install nightly)" >&2
  exit 2
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "== installing cargo-fuzz $CARGO_FUZZ_VERSION"
  cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked
fi

exec bash scripts/fuzz.sh "${FUZZ_SMOKE_SECONDS:-30}"
