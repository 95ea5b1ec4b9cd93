#!/usr/bin/env bash
# Runs every check and test: formatting, clippy (native and wasm), the plugin builds, unit
# tests, the end-to-end tests against the real services, which this script starts, and the
# quick fault suite (bench/faults.sh --quick, about two minutes).
# .ci/run calls exactly this. Integration tests may not skip here (SLUICE_REQUIRE_SERVICES=1).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/sluice/target}"
export SLUICE_REQUIRE_SERVICES=1
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

step() { printf '\n==> %s\n' "$*"; }

step "toolchain"
rustup component add rustfmt clippy >/dev/null 2>&1 || true
rustup target add wasm32-wasip2 >/dev/null

step "format"
cargo fmt --all --check

step "clippy (native)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "clippy (wasm32-wasip2 plugins)"
wasm_crates=()
for manifest in plugins/*/Cargo.toml tests/fixtures/plugins/*/Cargo.toml; do
  wasm_crates+=(-p "$(sed -n 's/^name *= *"\(.*\)"/\1/p' "$manifest" | head -n 1)")
done
cargo clippy --target wasm32-wasip2 --locked "${wasm_crates[@]}" -- -D warnings

step "plugin SDK packaging (cargo publish --dry-run)"
# The SDK and the samples crate it uses are ready for a registry: metadata, no path-only
# dependencies, and they build from their packaged files alone.
cargo publish --dry-run --allow-dirty --locked -p sluice-samples -p sluice-plugin-sdk 2>&1 |
    grep -vE '^ +(Compiling|Downloaded|Downloading) '

step "build plugins"
scripts/build-plugins.sh "$repo/.run/plugins"

step "services"
scripts/services.sh start
trap 'scripts/services.sh stop >/dev/null 2>&1 || true' EXIT

step "plugin toolchains (componentize-py, componentize-js)"
eval "$(scripts/plugin-toolchains.sh)"

step "plugin ports (the reference plugins in other languages)"
scripts/build-plugin-ports.sh "$repo/.run/plugins/ports"

step "tests"
cargo build --locked -p sluice --bin sluice
# The e2e tests run this binary and these plugins (the ones just built from this checkout)
# instead of asking cargo once per test process.
export SLUICE_TEST_BIN="$CARGO_TARGET_DIR/debug/sluice"
export SLUICE_TEST_PLUGINS="$repo/.run/plugins"
cargo test --workspace --locked --no-fail-fast

step "fault suite (quick)"
# The webhook pipeline under signed load while the broker stops, the host is killed and a
# trapping plugin is swapped in; fails on any acked event lost or row stored twice.
FAULTS_SLUICE_BIN="$SLUICE_TEST_BIN" FAULTS_MARKDOWN="$repo/.run/bench/faults-quick.md" bench/faults.sh --quick
