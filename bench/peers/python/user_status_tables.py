"""The user-status ETL's three PostgreSQL tables, for the Python peers.

The DDL is the pipeline's own (pipelines/user-status.sql, the original system's DDL, which
sluice runs before a load), so the peers load exactly the tables sluice loads: unquoted
names, so lower-case columns, and no keys or indexes.
"""

from pathlib import Path

import psycopg
from psycopg import sql

TABLES_SQL = Path(__file__).resolve().parents[3] / "pipelines/user-status.sql"

USER_STATUS_COLUMNS = ("userid", "createdat", "status", "lastvisitedat", "isblacklisted", "ingested_at")
USER_STATUS_LOG_COLUMNS = ("userid", "updatedon", "status", "ingested_at")
ERROR_REC_COLUMNS = ("error_rec",)


def create_schema(conninfo: str, schema: str) -> None:
    """Creates `schema` (which must not exist yet) holding the three empty tables."""
    with psycopg.connect(conninfo, autocommit=True) as connection:
        connection.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
        connection.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
        connection.execute(TABLES_SQL.read_text())


def drop_schema(conninfo: str, schema: str) -> None:
    with psycopg.connect(conninfo, autocommit=True) as connection:
        connection.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


def copy_statement(schema: str, table: str, columns: tuple[str, ...], options: str = "") -> sql.Composed:
    """`COPY schema.table (columns) FROM STDIN` with `options` (e.g. `(FORMAT csv)`)."""
    return sql.SQL("COPY {}.{} ({}) FROM STDIN {}").format(
        sql.Identifier(schema),
        sql.Identifier(table),
        sql.SQL(", ").join(map(sql.Identifier, columns)),
        sql.SQL(options),
    )


def row_counts(conninfo: str, schema: str) -> dict[str, int]:
    counts = {}
    with psycopg.connect(conninfo) as connection:
        for table in ("user_status", "user_status_log", "user_status_error_rec"):
            query = sql.SQL("SELECT count(*) FROM {}.{}").format(sql.Identifier(schema), sql.Identifier(table))
            counts[table] = connection.execute(query).fetchone()[0]
    return counts
