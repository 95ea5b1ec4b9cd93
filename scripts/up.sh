#!/usr/bin/env bash
# Runs the whole system on local defaults: builds the host and the plugins, starts S3, Kafka
# and PostgreSQL, serves the demo pipelines (pipelines/*.toml) on 127.0.0.1:8080 and feeds
# them sample data (scripts/demo.sh), until Ctrl-C. The services keep running afterwards;
# `scripts/services.sh stop` stops them.
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
"$CARGO_TARGET_DIR/debug/sluice" serve --config config/local.toml &
host=$!
# Ctrl-C or SIGTERM: the host stores its open windows and commits before it exits.
trap 'kill -TERM "$host" 2>/dev/null || true' INT TERM
for _ in $(seq 1 300); do
    curl --silent --fail --output /dev/null http://127.0.0.1:8080/healthz && break
    kill -0 "$host" 2>/dev/null || { wait "$host"; exit 1; }
    sleep 0.2
done
# Demo data for the pipelines (SLUICE_DEMO=0 skips it): SendGrid webhooks into the events
# table, and the user-status ETL on a sample file from S3 into PostgreSQL.
if [[ "${SLUICE_DEMO:-1}" != 0 ]]; then
    scripts/demo.sh || echo "up: the demo webhooks could not be posted; the host keeps running" >&2
    echo "==> demo ETL: a sample file from S3 into PostgreSQL (scripts/demo-etl.sh)"
    scripts/demo-etl.sh || echo "up: the demo ETL did not complete; the host keeps serving" >&2
fi
# A signal interrupts `wait`; keep waiting until the host has finished its shutdown.
status=0
while kill -0 "$host" 2>/dev/null; do
    wait "$host" && status=0 || status=$?
done
exit "$status"
