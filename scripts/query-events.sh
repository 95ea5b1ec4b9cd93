#!/usr/bin/env bash
# Queries the demo events table on S3 with DuckDB, as Athena would (Parquet, Hive partitions).
# Usage: scripts/query-events.sh ["SQL over the view `events`"]
# Installs DuckDB and its httpfs extension from PyPI into the project venv on first use.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="$repo/.venv/bin/python"
[[ -x "$python" ]] || { echo "query: no venv yet; run scripts/up.sh (or scripts/services.sh start) first" >&2; exit 1; }
if ! "$python" -c 'import duckdb, duckdb_extension_httpfs' 2>/dev/null; then
    "$repo/.venv/bin/pip" install --quiet duckdb==1.5.5 duckdb-extension-httpfs==1.5.5
fi
eval "$("$repo/scripts/services.sh" env)"
SQL="${1:-SELECT dt, event, count(*) AS events, count(DISTINCT email) AS recipients FROM events GROUP BY ALL ORDER BY ALL}" \
"$python" - <<'PY'
import glob, os
import duckdb, duckdb_extension_httpfs

db = duckdb.connect()
db.load_extension(glob.glob(os.path.join(duckdb_extension_httpfs.__path__[0], "extensions/*/httpfs.duckdb_extension"))[0])
endpoint = os.environ["SLUICE_S3_ENDPOINT"].removeprefix("http://")
db.execute(f"""CREATE SECRET (TYPE s3, KEY_ID '{os.environ["AWS_ACCESS_KEY_ID"]}',
    SECRET '{os.environ["AWS_SECRET_ACCESS_KEY"]}', REGION '{os.environ["AWS_REGION"]}',
    ENDPOINT '{endpoint}', URL_STYLE 'path', USE_SSL false)""")
db.execute("""CREATE VIEW events AS SELECT * FROM read_parquet(
    's3://sluice-demo/sendgrid/events/**/*.parquet', hive_partitioning = true)""")
print(db.sql(os.environ["SQL"]))
PY
