#!/usr/bin/env bash
# Runs the whole system on local defaults: builds the host and the plugins, starts S3, Kafka
# and PostgreSQL, and serves the demo pipelines (pipelines/*.toml) on 127.0.0.1:8080 until
# Ctrl-C. The services keep running afterwards; `scripts/services.sh stop` stops them.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/sluice/target}"

echo "==> building plugins"
scripts/build-plugins.sh "$repo/.run/plugins"
echo "==> building the host"
# The dev profile shares its build with scripts/test.sh (dependencies are optimised, see
# Cargo.toml); benchmarks build --release themselves.
cargo build --locked -p sluice --bin sluice
echo "==> starting services"
scripts/services.sh start
eval "$(scripts/services.sh env)"

echo "==> serving the demo pipelines on http://127.0.0.1:8080 (Ctrl-C stops)"
exec "$CARGO_TARGET_DIR/debug/sluice" serve --config config/local.toml
