#!/bin/sh
# Builds validate-user-status.wasm from app.py with componentize-py, against the repository's
# contract and with the helper module `sluice plugin new --lang python` ships:
#   python3 -m pip install componentize-py==0.25.1     # once
set -eu
cd "$(dirname "$0")"
repo=../../..
componentize-py -d "$repo/wit/transform.wit" -w plugin componentize app \
  -p . -p "$repo/host/src/cli/plugin_new/python" -o validate-user-status.wasm
