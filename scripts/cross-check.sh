#!/usr/bin/env bash
# Compile-checks the addon (src/ and engine/) for the release targets this machine cannot
# build: `cargo check` with the standard library compiled from source for the target
# (-Zbuild-std), since rustup cannot fetch other targets' std here. It uses Debian's Rust
# (rustc-web, whose rust-web-src is the matching library source; RUSTC_BOOTSTRAP=1 lets it
# take -Z flags). Nothing is linked, and mimalloc's C is not compiled: there is no C
# toolchain or SDK for these targets here, so a stand-in compiler writes empty objects. What
# it proves is that every line of Rust, with its cfg(windows)/cfg(unix)/cfg(target_os) arms,
# type-checks for the target; the release workflow builds and tests the real thing.
#
# Usage: scripts/cross-check.sh [target ...]   (default: every non-host target in napi.targets)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

if [ "$#" -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <(node -p 'require("./package.json").napi.targets.filter((t) => t !== "x86_64-unknown-linux-gnu").join("\n")')
fi

if [ ! -x /usr/bin/rustc ] || [ ! -d /usr/lib/rustlib/src/rust/library ]; then
  echo "cross-check: installing Debian's rustc-web and rust-web-src"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rustc-web rust-web-src >/dev/null
fi

stub="$(mktemp -d)"
trap 'rm -rf "$stub"' EXIT
# The stand-in C compiler: answers cc-rs's probe, and creates each output file empty.
cat > "$stub/cc" <<'STUB'
#!/bin/sh
out=""; prev=""; probe=0
for a in "$@"; do
  [ "$prev" = "-o" ] && out="$a"
  case "$a" in
    -E) probe=1 ;;
    -o) ;;
    -o*) out="${a#-o}" ;;
    -Fo*) out="${a#-Fo}" ;;
    /Fo*) out="${a#/Fo}" ;;
  esac
  prev="$a"
done
if [ "$probe" = 1 ]; then echo clang; exit 0; fi
if [ -n "$out" ]; then : > "$out"; fi
STUB
cat > "$stub/ar" <<'STUB'
#!/bin/sh
for a in "$@"; do
  case "$a" in
    -out:*) : > "${a#-out:}"; exit 0 ;;
    /OUT:*) : > "${a#/OUT:}"; exit 0 ;;
    *.a|*.lib) : > "$a"; exit 0 ;;
  esac
done
STUB
chmod +x "$stub/cc" "$stub/ar"

export RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1
export CARGO_TARGET_DIR="${CROSS_CHECK_TARGET_DIR:-$ROOT/target/cross-check}"
failed=0
for target in "${targets[@]}"; do
  t="${target//-/_}"
  # musl links statically by default, which forbids a cdylib; napi build turns it off too.
  vars=("CC_$t=$stub/cc" "AR_$t=$stub/ar")
  case "$target" in *musl*) vars+=("CARGO_TARGET_${t^^}_RUSTFLAGS=-C target-feature=-crt-static") ;; esac
  started=$(date +%s)
  if env "${vars[@]}" cargo +nightly check -q -Zbuild-std=std,panic_abort --target "$target" -p zeropipe; then
    echo "cross-check: $target ok ($(( $(date +%s) - started )) s)"
  else
    echo "cross-check: $target FAILED"
    failed=1
  fi
done
exit $failed
