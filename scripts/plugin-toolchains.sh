#!/usr/bin/env bash
# Installs the toolchains that build Python and JavaScript plugins, from their registries, into
# <repo>/.run/toolchains, and prints the `export PATH=...` line that puts them first:
#   componentize-py (PyPI), in a venv of its own
#   componentize-js (npm), with the machine's Node.js
# Usage: eval "$(scripts/plugin-toolchains.sh)"
# Idempotent: a stamp names the versions, so a warm run installs nothing.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dir="$repo/.run/toolchains"
COMPONENTIZE_PY_VERSION="0.25.1"
COMPONENTIZE_JS_VERSION="0.23.0"

log() { echo "plugin-toolchains: $*" >&2; }

python_dir="$dir/python"
if [[ ! -f "$python_dir/.componentize-py-$COMPONENTIZE_PY_VERSION" ]]; then
    command -v python3 >/dev/null || { log "python3 is needed for componentize-py"; exit 1; }
    log "installing componentize-py==$COMPONENTIZE_PY_VERSION into $python_dir"
    python3 -m venv "$python_dir"
    "$python_dir/bin/python" -m pip install --quiet --disable-pip-version-check \
        "componentize-py==$COMPONENTIZE_PY_VERSION" >&2
    touch "$python_dir/.componentize-py-$COMPONENTIZE_PY_VERSION"
fi

js_dir="$dir/js"
if [[ ! -f "$js_dir/.componentize-js-$COMPONENTIZE_JS_VERSION" ]]; then
    command -v npm >/dev/null || { log "npm (Node.js 20 or later) is needed for componentize-js"; exit 1; }
    log "installing @bytecodealliance/componentize-js@$COMPONENTIZE_JS_VERSION into $js_dir"
    mkdir -p "$js_dir"
    npm install --silent --no-audit --no-fund --prefix "$js_dir" \
        "@bytecodealliance/componentize-js@$COMPONENTIZE_JS_VERSION" >&2
    touch "$js_dir/.componentize-js-$COMPONENTIZE_JS_VERSION"
fi

echo "export PATH=\"$python_dir/bin:$js_dir/node_modules/.bin:\$PATH\""
