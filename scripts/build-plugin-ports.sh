#!/usr/bin/env bash
# Builds the reference plugins written in other languages than Rust, each beside the Rust
# plugin it ports and giving the same rows and failures: validate-user-status in Python
# (plugins/validate-user-status/python, componentize-py) and explode-status-logs in JavaScript
# (plugins/explode-status-logs/js, componentize-js).
#
# Usage: scripts/build-plugin-ports.sh [OUT_DIR]
#   OUT_DIR   where the components go (default: <repo>/.run/plugins/ports), named as the plugin
#             they port, so a plugins directory of them runs the same pipelines.
# The toolchains must be on PATH: eval "$(scripts/plugin-toolchains.sh)" puts them there.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out_dir="${1:-$repo/.run/plugins/ports}"
mkdir -p "$out_dir"

for tool in componentize-py componentize-js; do
  command -v "$tool" >/dev/null ||
    { echo "build-plugin-ports: $tool is not on PATH; run: eval \"\$(scripts/plugin-toolchains.sh)\"" >&2; exit 1; }
done

# Builds the port in directory $1 with command $2..., then moves its component $1/$name.wasm out.
build_port() {
  local dir="$1" name
  shift
  name="$(basename "$(dirname "$dir")")"
  (cd "$dir" && "$@" >/dev/null)
  mv -f "$dir/$name.wasm" "$out_dir/.$name.wasm.tmp"
  mv -f "$out_dir/.$name.wasm.tmp" "$out_dir/$name.wasm"
  echo "wrote $out_dir/$name.wasm"
}

build_port "$repo/plugins/validate-user-status/python" sh build.sh
build_port "$repo/plugins/explode-status-logs/js" npm run --silent build
