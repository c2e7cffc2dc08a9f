"""The only module that connects to the warehouse.

connect() starts the embedded server when the settings point at it, so every command works
on a fresh machine without a separate start step.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from contextlib import contextmanager

import pandas as pd
import psycopg2
import psycopg2.extensions
import pyarrow as pa
import pyarrow.csv as pacsv
from psycopg2 import sql

from python_jobs import config

log = logging.getLogger(__name__)

Connection = psycopg2.extensions.connection


def ensure_database(settings: config.Settings) -> None:
    """Create the target database if missing (the embedded server starts with only postgres)."""
    if settings.embedded:
        from python_jobs import warehouse

        warehouse.up(quiet=True)
    conn = psycopg2.connect(**settings.dsn("postgres"))
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute("select 1 from pg_database where datname = %s", (settings.database,))
            if cur.fetchone() is None:
                cur.execute(sql.SQL("create database {}").format(
                    sql.Identifier(settings.database)))
                log.info("created database %s", settings.database)
    finally:
        conn.close()


@contextmanager
def connect(database: str | None = None) -> Iterator[Connection]:
    """A connection that commits on success and rolls back on error."""
    settings = config.settings(database)
    ensure_database(settings)
    conn = psycopg2.connect(**settings.dsn())
    try:
        yield conn
        conn.commit()
    except BaseException:
        conn.rollback()
        raise
    finally:
        conn.close()


def execute(conn: Connection, statement: str, params: tuple | dict | None = None) -> None:
    with conn.cursor() as cur:
        cur.execute(statement, params)


def _csv_bytes(frame: pd.DataFrame) -> bytes:
    """Frame as Postgres CSV: unquoted empty field = NULL, quoted "" = empty string."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    fields = []
    for f in table.schema:
        if pa.types.is_timestamp(f.type):
            fields.append(pa.field(f.name, pa.timestamp("us")))
        else:
            fields.append(f)
    table = table.cast(pa.schema(fields))
    buf = io.BytesIO()
    pacsv.write_csv(table, buf, pacsv.WriteOptions(include_header=False))
    return buf.getvalue()


def copy_frame(conn: Connection, table: str, frame: pd.DataFrame) -> int:
    """Bulk-append a frame with COPY; `table` is schema-qualified, columns by name."""
    if frame.empty:
        return 0
    columns = sql.SQL(", ").join(sql.Identifier(c) for c in frame.columns)
    schema, name = table.split(".")
    statement = sql.SQL("copy {}.{} ({}) from stdin with (format csv)").format(
        sql.Identifier(schema), sql.Identifier(name), columns)
    with conn.cursor() as cur:
        cur.copy_expert(statement.as_string(conn), io.BytesIO(_csv_bytes(frame)))
    return len(frame)


def read_sql(conn: Connection, query: str, params: tuple | dict | None = None) -> pd.DataFrame:
    with conn.cursor() as cur:
        cur.execute(query, params)
        columns = [d.name for d in cur.description]
        return pd.DataFrame(cur.fetchall(), columns=columns)


def stream_sql(
    conn: Connection, query: str, params: tuple | dict | None = None, chunk_rows: int = 100_000
) -> Iterator[pd.DataFrame]:
    """Read a large result in chunks through a server-side cursor (memory stays bounded)."""
    with conn.cursor(name="stream_sql") as cur:
        cur.itersize = chunk_rows
        cur.execute(query, params)
        while True:
            rows = cur.fetchmany(chunk_rows)
            if not rows:
                break
            yield pd.DataFrame(rows, columns=[d.name for d in cur.description])


_PG_TYPES = {
    "int64": "bigint", "Int64": "bigint", "int32": "integer", "Int32": "integer",
    "float64": "double precision", "Float64": "double precision", "bool": "boolean",
    "boolean": "boolean",
}


def _pg_type(dtype) -> str:
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return "timestamp"
    return _PG_TYPES.get(str(dtype), "text")


def write_table(conn: Connection, table: str, frame: pd.DataFrame, *, replace: bool) -> int:
    """Create (or replace) a results table shaped like the frame and COPY the frame in."""
    schema, name = table.split(".")
    ident = sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(name))
    with conn.cursor() as cur:
        cur.execute(sql.SQL("create schema if not exists {}").format(sql.Identifier(schema)))
        if replace:
            cur.execute(sql.SQL("drop table if exists {}").format(ident))
        cols = sql.SQL(", ").join(
            sql.SQL("{} {}").format(sql.Identifier(c), sql.SQL(_pg_type(t)))
            for c, t in frame.dtypes.items()
        )
        cur.execute(sql.SQL("create table if not exists {} ({})").format(ident, cols))
    return copy_frame(conn, table, frame)


def drop_database(name: str) -> None:
    """Drop a database, disconnecting its sessions (tests and throwaway builds)."""
    settings = config.settings(name)
    if settings.embedded:
        from python_jobs import warehouse

        warehouse.up(quiet=True)
    conn = psycopg2.connect(**settings.dsn("postgres"))
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(sql.SQL("drop database if exists {} with (force)").format(
                sql.Identifier(name)))
    finally:
        conn.close()


def grant_read(conn: Connection, schema: str) -> None:
    """Let the read-only reporting role read a results schema, where the role exists."""
    role = config.REPORTING_ROLE
    if not read_sql(conn, "select 1 from pg_roles where rolname = %s", (role,)).empty:
        execute(conn, f"grant usage on schema {schema} to {role}")
        execute(conn, f"grant select on all tables in schema {schema} to {role}")


def conform(frame: pd.DataFrame, columns: dict[str, str]) -> pd.DataFrame:
    """The frame with exactly a table's columns, in order (missing ones NULL), for COPY."""
    out = frame.reindex(columns=list(columns))
    return out.astype(object).where(out.notna(), None)
