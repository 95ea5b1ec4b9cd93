#!/usr/bin/env bash
# The user-status ETL on a 1M-record file, as one benchmark of bench/run.sh: generates the
# seeded JSON-lines file (bench/peers/python/gen_user_status.py, about 5% invalid records),
# uploads it to the services' S3, runs `sluice job run` on it into a fresh PostgreSQL schema,
# checks the three tables' row counts against the generator's, measures the PySpark peer and
# the COPY floor on the same file, and regenerates bench/RESULTS.md.
#
# Usage: bench/etl-1m.sh [RECORDS]           (default 1000000)
# Environment: as bench/run.sh (CARGO_TARGET_DIR, default $HOME/.cache/sluice/target).
set -euo pipefail

exec "$(dirname "${BASH_SOURCE[0]}")/run.sh" --only etl --etl-records "${1:-1000000}"
