#!/usr/bin/env bash
# Bun and Deno load zeropipe too: runs scripts/smoke-roundtrip.mjs (a 100 000-message
# Push→Pull round trip over tcp, then the module API's push()/pull()) under each, from a
# project that installed the release tarballs (scripts/release.mjs pack: the main package
# and this platform's package) as npm leaves them. Needs the addon built (npm run build).
# Both runtimes come from the npm registry (packages bun and deno) into .runtimes/.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUN_VERSION="1.4.5"
DENO_VERSION="2.9.6"
DIR="$ROOT/.runtimes"

if [ ! -x "$DIR/node_modules/.bin/bun" ] || [ ! -x "$DIR/node_modules/.bin/deno" ] \
  || [ "$("$DIR/node_modules/.bin/bun" --version 2>/dev/null)" != "$BUN_VERSION" ]; then
  echo "smoke-runtimes: installing bun@$BUN_VERSION and deno@$DENO_VERSION into .runtimes/"
  mkdir -p "$DIR"
  npm install --no-save --no-audit --no-fund --prefix "$DIR" "bun@$BUN_VERSION" "deno@$DENO_VERSION" >"$DIR/install.log" 2>&1 \
    || { cat "$DIR/install.log"; exit 1; }
fi

# The consumer project: both tarballs unpacked into node_modules. (Deno treats index.js as
# CommonJS only inside node_modules, so a symlink to the checkout would not do.)
project="$(mktemp -d)"
trap 'rm -rf "$project"' EXIT
platform="$(cd "$ROOT" && node -p 'require("./lib/native.js").hostPlatform().name')"
mkdir -p "$project/artifacts" "$project/node_modules/zeropipe" "$project/node_modules/zeropipe-$platform"
cp "$ROOT/zeropipe.$platform.node" "$project/artifacts/"
tarballs="$(node "$ROOT/scripts/release.mjs" pack --artifacts "$project/artifacts" --out "$project/tarballs" --only "$platform" 2>/dev/null | tail -1)"
main="$(node -p 'JSON.parse(process.argv[1])[0]' "$tarballs")"
native="$(node -p 'JSON.parse(process.argv[1])[1]' "$tarballs")"
tar -xzf "$main" -C "$project/node_modules/zeropipe" --strip-components=1
tar -xzf "$native" -C "$project/node_modules/zeropipe-$platform" --strip-components=1
echo '{ "name": "runtimes-smoke", "private": true, "type": "module" }' > "$project/package.json"
cp "$ROOT/scripts/smoke-roundtrip.mjs" "$project/"
cd "$project"

echo "smoke-runtimes: Bun $("$DIR/node_modules/.bin/bun" --version)"
timeout -k 5 120 "$DIR/node_modules/.bin/bun" smoke-roundtrip.mjs
echo "smoke-runtimes: $("$DIR/node_modules/.bin/deno" --version | head -1)"
timeout -k 5 120 "$DIR/node_modules/.bin/deno" run --allow-all smoke-roundtrip.mjs
