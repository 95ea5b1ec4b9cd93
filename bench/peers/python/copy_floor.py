"""The floor of the user-status ETL benchmark: plain COPY of the finished rows.

What it measures: how long PostgreSQL takes to take in exactly the rows the ETL must write
(user_status, user_status_log, user_status_error_rec, the same tables as sluice's, created by
pipelines/user-status.sql), streamed from CSV files with `COPY ... FROM STDIN (FORMAT csv)` in
one transaction over one connection. No parsing, no validation, no staging, no replacing of
earlier rows (the tables start empty). That is the floor the ETL target is judged against.

Also measured, as a row for scale: the same rows in PostgreSQL's binary COPY format (dumped from
the loaded tables with COPY TO, untimed), copied the same way into a second schema. The server
parses no text then, which makes it the lower of the two; sluice's own COPY is binary.

Not timed: reading the input, applying the rules (user_status_rules.py; only the last valid
record per userId gives a user_status row, as sluice's delete-then-insert replace keeps),
writing the CSV files, and creating the schema. Timed: the three COPYs and the commit.

Usage:
  eval "$(scripts/services.sh env)"
  .run/bench/venv/bin/python bench/peers/python/copy_floor.py \
      --input .run/bench/python-peers/us-1m.jsonl --schema pypeer_floor [--drop]

Prints one JSON line: {"seconds", "rows_per_s", "records", "rows": {table: count}, ...}.
The row counts are read back from the tables after the timed part.
"""

import argparse
import csv
import json
import os
import time
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from psycopg import sql

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

COPY_BLOCK = 1 << 20
TABLES = (
    ("user_status", USER_STATUS_COLUMNS),
    ("user_status_log", USER_STATUS_LOG_COLUMNS),
    ("user_status_error_rec", ERROR_REC_COLUMNS),
)


def write_row(file, writer, row: tuple) -> None:
    """Writes `row` as one CSV line that COPY reads back as it is: None as NULL, "" as "".

    csv.writer leaves both None and "" unquoted and empty, which COPY reads as NULL; a row
    holding "" (rare) is written with every non-NULL field quoted instead.
    """
    if "" not in row:
        writer.writerow(row)
        return
    fields = ("" if value is None else '"' + str(value).replace('"', '""') + '"' for value in row)
    file.write(",".join(fields) + "\r\n")


def prepare_csv(input_path: Path, out_dir: Path) -> dict:
    """Writes user_status.csv, user_status_log.csv and user_status_error_rec.csv.

    Returns the input's record count and its failures (lines sluice would dead-letter).
    """
    ingested_at = datetime.now(UTC).replace(tzinfo=None).isoformat(sep=" ")
    latest: dict[str, tuple] = {}
    records = failures = 0
    out_dir.mkdir(parents=True, exist_ok=True)
    with (
        open(input_path, "rb") as lines,
        open(out_dir / "user_status_log.csv", "w", newline="") as log_file,
        open(out_dir / "user_status_error_rec.csv", "w", newline="") as error_file,
    ):
        logs, errors = csv.writer(log_file), csv.writer(error_file)
        for line in lines:
            if not line.strip():
                continue
            records += 1
            try:
                record = parse_record(line)
            except RecordFailure:
                failures += 1
                continue
            if not is_valid(record):
                errors.writerow((error_rec(record),))
                continue
            user_id = record["userId"]
            latest[user_id] = (
                user_id,
                record["createdAt"],
                record["status"],
                record["lastVisitedAt"],
                "t" if record["isBlacklisted"] else "f",
                ingested_at,
            )
            for row in status_log_rows(user_id, record["statusLogs"]):
                write_row(log_file, logs, (*row, ingested_at))
    with open(out_dir / "user_status.csv", "w", newline="") as status_file:
        statuses = csv.writer(status_file)
        for row in latest.values():
            write_row(status_file, statuses, row)
    return {"records": records, "failures": failures}


def copy_all(conninfo: str, schema: str, directory: Path, copy_format: str = "csv") -> float:
    """COPYs the three `<table>` files in one transaction, in `copy_format` (csv or
    binary); returns the seconds it took."""
    suffix = {"csv": "csv", "binary": "bin"}[copy_format]
    with psycopg.connect(conninfo) as connection:
        started = time.monotonic()
        with connection.cursor() as cursor:
            for table, columns in TABLES:
                with (
                    open(directory / f"{table}.{suffix}", "rb") as source,
                    cursor.copy(copy_statement(schema, table, columns, f"(FORMAT {copy_format})")) as copy,
                ):
                    while block := source.read(COPY_BLOCK):
                        copy.write(block)
        connection.commit()
        return time.monotonic() - started


def dump_binary(conninfo: str, schema: str, out_dir: Path) -> None:
    """Writes each loaded table's rows as a binary COPY file (not timed)."""
    with psycopg.connect(conninfo) as connection, connection.cursor() as cursor:
        for table, columns in TABLES:
            statement = sql.SQL("COPY {}.{} ({}) TO STDOUT (FORMAT binary)").format(
                sql.Identifier(schema), sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, columns))
            )
            with open(out_dir / f"{table}.bin", "wb") as target, cursor.copy(statement) as copy:
                for block in copy:
                    target.write(block)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", required=True, type=Path, help="user-status JSON lines (gen_user_status.py)")
    parser.add_argument("--schema", required=True, help="PostgreSQL schema to create (must not exist)")
    parser.add_argument(
        "--database-url", default=os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
    )
    parser.add_argument("--csv-dir", type=Path, help="where the CSV files go (default: next to the input)")
    parser.add_argument("--drop", action="store_true", help="drop the schema after counting")
    args = parser.parse_args()
    csv_dir = args.csv_dir or args.input.with_suffix(".csv.d")

    prepared = prepare_csv(args.input, csv_dir)
    create_schema(args.database_url, args.schema)
    binary_schema = f"{args.schema}_binary"
    try:
        seconds = copy_all(args.database_url, args.schema, csv_dir)
        rows = row_counts(args.database_url, args.schema)
        dump_binary(args.database_url, args.schema, csv_dir)
        create_schema(args.database_url, binary_schema)
        binary_seconds = copy_all(args.database_url, binary_schema, csv_dir, "binary")
        binary_rows = row_counts(args.database_url, binary_schema)
    finally:
        if args.drop:
            drop_schema(args.database_url, args.schema)
            drop_schema(args.database_url, binary_schema)
    if binary_rows != rows:
        raise SystemExit(f"the binary copy loaded {binary_rows}, the CSV copy {rows}")
    total_rows = sum(rows.values())
    print(
        json.dumps(
            {
                "system": "copy-floor",
                "seconds": round(seconds, 2),
                "binary_seconds": round(binary_seconds, 2),
                "records": prepared["records"],
                "records_per_s": round(prepared["records"] / seconds),
                "rows_per_s": round(total_rows / seconds),
                "rows": rows,
                "failures": prepared["failures"],
                "csv_bytes": sum(f.stat().st_size for f in csv_dir.glob("*.csv")),
            }
        )
    )


if __name__ == "__main__":
    main()
