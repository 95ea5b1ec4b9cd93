#!/usr/bin/env bash
# Builds the reference plugins written in other languages than Rust, each beside the Rust
# plugin it ports and giving the same rows and failures: validate-user-status in Python
# (plugins/validate-user-status/python, componentize-py) and in JavaScript
# (plugins/validate-user-status/js, componentize-js), and explode-status-logs in JavaScript
# (plugins/explode-status-logs/js). The JavaScript ports share their JSON reader,
# plugins/js-json/json.js.
#
# Usage: scripts/build-plugin-ports.sh [OUT_DIR]
#   OUT_DIR   where the components go (default: <repo>/.run/plugins/ports), as
#             OUT_DIR/<lang>/<plugin>.wasm with <lang> the port's folder (python, js): named as
#             the plugin they port, so OUT_DIR/<lang> as a plugins directory runs the same
#             pipelines, and a plugin ported to both languages has one of each.
# The toolchains must be on PATH: eval "$(scripts/plugin-toolchains.sh)" puts them there.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out_dir="${1:-$repo/.run/plugins/ports}"

for tool in componentize-py componentize-js; do
  command -v "$tool" >/dev/null ||
    { echo "build-plugin-ports: $tool is not on PATH; run: eval \"\$(scripts/plugin-toolchains.sh)\"" >&2; exit 1; }
done

# Builds the port in directory $1 (plugins/<name>/<lang>) with command $2..., then moves its
# component $1/<name>.wasm out to OUT_DIR/<lang>/<name>.wasm, by rename.
build_port() {
  local dir="$1" name lang
  shift
  name="$(basename "$(dirname "$dir")")"
  lang="$(basename "$dir")"
  mkdir -p "$out_dir/$lang"
  (cd "$dir" && "$@" >/dev/null)
  mv -f "$dir/$name.wasm" "$out_dir/$lang/.$name.wasm.tmp"
  mv -f "$out_dir/$lang/.$name.wasm.tmp" "$out_dir/$lang/$name.wasm"
  echo "wrote $out_dir/$lang/$name.wasm"
}

build_port "$repo/plugins/validate-user-status/python" sh build.sh
build_port "$repo/plugins/validate-user-status/js" npm run --silent build
build_port "$repo/plugins/explode-status-logs/js" npm run --silent build
