#!/usr/bin/env bash
# Raw libzmq in C, the reference for `npm run bench:engine` (not in CI): builds
# engine/benches/libzmq/throughput.c against the system's libzmq (Debian: libzmq3-dev) and
# runs it over tcp and ipc at 16 B, 64 KiB and 1 MiB, ROUNDS times each (default 3).
#
#   bash scripts/bench-libzmq.sh
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="$ROOT/target/libzmq-throughput"
if ! pkg-config --exists libzmq 2>/dev/null; then
  echo "bench-libzmq: libzmq's headers are not installed (Debian: apt-get install libzmq3-dev)" >&2
  exit 2
fi
mkdir -p "$(dirname "$OUT")"
cc -O2 -o "$OUT" "$ROOT/engine/benches/libzmq/throughput.c" $(pkg-config --cflags --libs libzmq) -lpthread
ROUNDS="${ROUNDS:-3}"
for transport in tcp ipc; do
  for spec in 16:2000000 65536:40000 1048576:3000; do
    size="${spec%%:*}"
    n="${spec##*:}"
    for _ in $(seq "$ROUNDS"); do
      timeout 120 "$OUT" "$transport" "$size" "$n"
    done
  done
done
