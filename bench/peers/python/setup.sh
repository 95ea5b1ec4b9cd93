#!/usr/bin/env bash
# Creates the Python peers' virtualenv and installs requirements.txt into it.
#
# Usage: bench/peers/python/setup.sh        (prints the venv's path on stdout)
# Environment:
#   SLUICE_BENCH_VENV  where the venv lives (default: <repo>/.run/bench/venv)
#   PYTHON             the interpreter to build it from (default: python3)
# Idempotent: a stamp file in the venv records the hash of requirements.txt, and a venv whose
# stamp matches is left alone, so a second call returns at once.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../../.." && pwd)"
venv="${SLUICE_BENCH_VENV:-$repo/.run/bench/venv}"
requirements="$here/requirements.txt"
stamp="$venv/.requirements.sha256"
want="$(sha256sum "$requirements" | cut -d' ' -f1)"

if [[ -x "$venv/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    echo "$venv"
    exit 0
fi

if [[ ! -x "$venv/bin/python" ]]; then
    "${PYTHON:-python3}" -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip >&2
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$requirements" >&2
echo "$want" > "$stamp"
echo "$venv"
