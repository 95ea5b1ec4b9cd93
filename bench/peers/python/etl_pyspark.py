"""Peer of sluice's user-status ETL: a PySpark local[2] job with the same rules.

What it measures: wall time, records/s and peak memory of the original system's approach (a
Glue-style Spark job) on this machine, loading a user-status JSON-lines file into the three
tables sluice loads: user_status (the latest record per userId), user_status_log and
user_status_error_rec, with the rules of the sluice plugins validate-user-status and
explode-status-logs (user_status_rules.py). No JDBC jar is available offline, so each Spark
partition writes with psycopg COPY (foreachPartition): user_status_log and
user_status_error_rec straight into their tables, user_status into an UNLOGGED staging table
from which the driver then replaces the users' rows in one transaction, as sluice does
without a key: it deletes the table's rows of every userid staged, and inserts the last
staged row per userid (`DISTINCT ON (userid) ... ORDER BY userid, position DESC`, position
being the input position).

Input: with --bucket/--key the object is downloaded from S3 with boto3 to a local temporary
file first, and that download is part of the measured time (sluice streams it from S3);
with --input a local file is read as it is. The tables come from the pipeline's own DDL
(pipelines/user-status.sql), in a schema this job creates (--schema, which must not exist).

`seconds` covers everything from the start of main(): download, Spark start-up, the load and
the replace. `peak_rss_mb` is the largest sum of RSS over this process and all its
descendants (the Spark JVM and its Python workers), sampled every 0.5 s with psutil.

Usage:
  eval "$(scripts/services.sh env)"
  .run/bench/venv/bin/python bench/peers/python/etl_pyspark.py \
      --bucket pypeer-bench --key user-status/us-1m.jsonl --schema pypeer_spark [--drop]
  .run/bench/venv/bin/python bench/peers/python/etl_pyspark.py \
      --input .run/bench/python-peers/us-1m.jsonl --schema pypeer_spark

S3 credentials and endpoint from AWS_ENDPOINT_URL (or AWS_ENDPOINT_URL_S3), AWS_ACCESS_KEY_ID,
AWS_SECRET_ACCESS_KEY, AWS_REGION; PostgreSQL from --database-url or DATABASE_URL.
Prints one JSON line: {"seconds", "records_per_s", "rows": {table: count}, "peak_rss_mb", ...}.
"""

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path

import boto3
import psutil
import psycopg
from botocore.config import Config
from psycopg import sql
from pyspark import TaskContext
from pyspark.sql import SparkSession

from user_status_rules import RecordFailure, error_rec, is_valid, parse_record, status_log_rows
from user_status_tables import (
    ERROR_REC_COLUMNS,
    USER_STATUS_COLUMNS,
    USER_STATUS_LOG_COLUMNS,
    copy_statement,
    create_schema,
    drop_schema,
    row_counts,
)

HERE = Path(__file__).resolve().parent
STAGE_TABLE = "user_status_stage"


class TreeRssSampler:
    """Samples the RSS of this process and all its descendants; keeps the largest sum."""

    def __init__(self, interval: float = 0.5):
        self.interval = interval
        self.peak_bytes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *_):
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        me = psutil.Process()
        while True:
            total = 0
            for process in [me, *me.children(recursive=True)]:
                try:
                    total += process.memory_info().rss
                except psutil.Error:
                    pass  # exited between listing and reading
            self.peak_bytes = max(self.peak_bytes, total)
            if self._stop.wait(self.interval):
                return


def download(bucket: str, key: str, directory: str) -> Path:
    s3 = boto3.client(
        "s3",
        endpoint_url=os.environ.get("AWS_ENDPOINT_URL") or os.environ.get("AWS_ENDPOINT_URL_S3"),
        region_name=os.environ.get("AWS_REGION", "us-east-1"),
        config=Config(s3={"addressing_style": "path"}),
    )
    path = Path(directory) / Path(key).name
    s3.download_file(bucket, key, str(path))
    return path


def load_partition(lines, conninfo: str, schema: str, ingested_at: datetime, counters: dict) -> None:
    """Applies the rules to one Spark partition's lines and COPYs its rows (runs on a worker)."""
    # Input position: partitions of a text file are in file order, so (partition, line)
    # orders records as the file does; the replace keeps the highest per user.
    base = TaskContext.get().partitionId() << 32
    valid = invalid = logs = not_objects = 0
    with ExitStack() as stack:

        def open_copy(table, columns):
            connection = stack.enter_context(psycopg.connect(conninfo))
            cursor = stack.enter_context(connection.cursor())
            return stack.enter_context(cursor.copy(copy_statement(schema, table, columns)))

        stage = open_copy(STAGE_TABLE, ("position", *USER_STATUS_COLUMNS))
        log = open_copy("user_status_log", USER_STATUS_LOG_COLUMNS)
        errors = open_copy("user_status_error_rec", ERROR_REC_COLUMNS)
        for position, line in enumerate(lines):
            if not line.strip():
                continue
            try:
                record = parse_record(line)
            except RecordFailure:
                not_objects += 1
                continue
            if not is_valid(record):
                errors.write_row((error_rec(record),))
                invalid += 1
                continue
            user_id = record["userId"]
            stage.write_row(
                (
                    base + position,
                    user_id,
                    record["createdAt"],
                    record["status"],
                    record["lastVisitedAt"],
                    record["isBlacklisted"],
                    ingested_at,
                )
            )
            valid += 1
            rows = status_log_rows(user_id, record["statusLogs"])
            for user, updated_on, status in rows:
                log.write_row((user, updated_on, status, ingested_at))
            logs += len(rows)
    # Leaving the ExitStack ended the COPYs and committed each connection.
    counters["valid"].add(valid)
    counters["invalid"].add(invalid)
    counters["log_rows"].add(logs)
    counters["not_objects"].add(not_objects)


def replace_latest(conninfo: str, schema: str) -> int:
    """Replaces the staged users' user_status rows by their last staged row; returns how many.

    The table has no key, so, as sluice does, the rows of every staged userid are deleted and
    the last staged row per userid inserted, in one transaction.
    """
    names = {"schema": sql.Identifier(schema), "stage": sql.Identifier(STAGE_TABLE)}
    delete = sql.SQL(
        "DELETE FROM {schema}.user_status AS target USING (SELECT DISTINCT userid FROM {schema}.{stage}) loaded "
        "WHERE target.userid = loaded.userid"
    ).format(**names)
    insert = sql.SQL(
        "INSERT INTO {schema}.user_status ({columns}) "
        "SELECT DISTINCT ON (userid) {columns} FROM {schema}.{stage} ORDER BY userid, position DESC"
    ).format(columns=sql.SQL(", ").join(map(sql.Identifier, USER_STATUS_COLUMNS)), **names)
    with psycopg.connect(conninfo) as connection:
        connection.execute(delete)
        inserted = connection.execute(insert).rowcount
        connection.execute(sql.SQL("DROP TABLE {}.{}").format(sql.Identifier(schema), sql.Identifier(STAGE_TABLE)))
    return inserted


def create_stage(conninfo: str, schema: str) -> None:
    with psycopg.connect(conninfo, autocommit=True) as connection:
        connection.execute(
            sql.SQL(
                "CREATE UNLOGGED TABLE {}.{} (position bigint NOT NULL, LIKE {}.user_status INCLUDING DEFAULTS)"
            ).format(sql.Identifier(schema), sql.Identifier(STAGE_TABLE), sql.Identifier(schema))
        )


def run(args: argparse.Namespace) -> dict:
    started = time.monotonic()
    ingested_at = datetime.now(UTC).replace(tzinfo=None)
    with tempfile.TemporaryDirectory(prefix="pypeer-spark-") as scratch:
        if args.input:
            path = args.input.resolve()
            download_seconds = 0.0
        else:
            path = download(args.bucket, args.key, scratch)
            download_seconds = time.monotonic() - started

        spark = (
            SparkSession.builder.master("local[2]")
            .appName("pypeer-user-status-etl")
            .config("spark.ui.enabled", "false")
            .config("spark.ui.showConsoleProgress", "false")
            .config("spark.driver.memory", args.driver_memory)
            .getOrCreate()
        )
        spark.sparkContext.setLogLevel("WARN")
        for module in ("user_status_rules.py", "user_status_tables.py"):
            spark.sparkContext.addPyFile(str(HERE / module))
        startup_seconds = time.monotonic() - started - download_seconds

        create_schema(args.database_url, args.schema)
        create_stage(args.database_url, args.schema)
        context = spark.sparkContext
        counters = {name: context.accumulator(0) for name in ("valid", "invalid", "log_rows", "not_objects")}
        conninfo, schema = args.database_url, args.schema
        lines = context.textFile(str(path), minPartitions=args.partitions)
        lines.foreachPartition(lambda part: load_partition(part, conninfo, schema, ingested_at, counters))
        replaced = replace_latest(args.database_url, args.schema)
        seconds = time.monotonic() - started
        spark.stop()

    rows = row_counts(args.database_url, args.schema)
    records = sum(counters[name].value for name in ("valid", "invalid", "not_objects"))
    return {
        "system": "pyspark-local[2]+psycopg-copy",
        "seconds": round(seconds, 2),
        "download_seconds": round(download_seconds, 2),
        "startup_seconds": round(startup_seconds, 2),
        "records": records,
        "records_per_s": round(records / seconds),
        "rows": rows,
        "replaced": replaced,
        "failures": counters["not_objects"].value,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--input", type=Path, help="local JSON-lines file")
    source.add_argument("--bucket", help="S3 bucket of the input (with --key)")
    parser.add_argument("--key", help="S3 key of the input")
    parser.add_argument("--schema", required=True, help="PostgreSQL schema to create (must not exist)")
    parser.add_argument(
        "--database-url", default=os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
    )
    parser.add_argument("--partitions", type=int, default=8, help="minimum Spark partitions of the input")
    parser.add_argument("--driver-memory", default="1g")
    parser.add_argument("--drop", action="store_true", help="drop the schema after counting")
    args = parser.parse_args()
    if args.bucket and not args.key:
        parser.error("--bucket needs --key")

    # The workers must run this interpreter, the venv's, which has psycopg and orjson.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    with TreeRssSampler() as sampler:
        try:
            result = run(args)
        finally:
            if args.drop:
                drop_schema(args.database_url, args.schema)
    result["peak_rss_mb"] = round(sampler.peak_bytes / (1 << 20))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
