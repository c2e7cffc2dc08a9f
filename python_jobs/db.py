"""The only module that connects to the warehouse.

connect() starts the embedded server (python_jobs.server) when the settings point at it, so
every command works on a fresh machine without a separate start step. db imports no job module
(warehouse, spark, ...): they import db (tests/python/test_import_cycles.py).

Two engines. PostgreSQL is the default and the only one for loading (raw lives there). The
jobs that read marts and write results (train, ab analyze) may also run on the Spark target:
connect(target=dbt_target()) then yields the process's SparkSession (python_jobs.spark_session),
and every function below dispatches on which of the two it got. Callers write one query text in
psycopg2's style (%s, %(name)s); on Spark it becomes Spark's parameter markers (?, :name),
values bound by Spark, never pasted in. Results travel as Arrow both ways on Spark.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import logging
import os
import re
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Union

import pandas as pd
import psycopg2
import psycopg2.extensions
import pyarrow as pa
import pyarrow.csv as pacsv
from psycopg2 import sql

from python_jobs import config, server, spark_session

if TYPE_CHECKING:
    from pyspark.sql import DataFrame as SparkFrame
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)

Connection = psycopg2.extensions.connection
# What connect() yields: a psycopg2 connection, or the SparkSession on the Spark target.
# Union: `|` cannot take the string (pyspark is optional, imported only for type checks).
Warehouse = Union[Connection, "SparkSession"]

TARGETS = ("postgres", "spark")


def dbt_target() -> str:
    """The engine the marts are built on: DBT_TARGET, as in profiles.yml (default postgres)."""
    target = os.environ.get("DBT_TARGET") or "postgres"
    if target not in TARGETS:
        raise SystemExit(f"DBT_TARGET={target!r}: the jobs know {', '.join(TARGETS)}")
    return target


def is_spark(conn: Warehouse) -> bool:
    return not isinstance(conn, Connection)


def engine(conn: Warehouse) -> str:
    """"postgres" or "spark": which dialect a query text for this connection must speak."""
    return "spark" if is_spark(conn) else "postgres"


@contextmanager
def _server_cursor(settings: config.Settings,
                   database: str = "postgres") -> Iterator[psycopg2.extensions.cursor]:
    """An autocommit cursor, by default on database postgres, for what cannot run in a
    transaction (create/drop database, VACUUM); starts the embedded server when the
    settings point at it."""
    if settings.embedded:
        server.up(quiet=True)
    conn = psycopg2.connect(**settings.dsn(database))
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            yield cur
    finally:
        conn.close()


def ensure_database(settings: config.Settings) -> None:
    """Create the target database if missing (the embedded server starts with only postgres)."""
    with _server_cursor(settings) as cur:
        cur.execute("select 1 from pg_database where datname = %s", (settings.database,))
        if cur.fetchone() is None:
            cur.execute(sql.SQL("create database {}").format(sql.Identifier(settings.database)))
            log.info("created database %s", settings.database)


@contextmanager
def connect(database: str | None = None, target: str = "postgres") -> Iterator[Warehouse]:
    """A connection that commits on success and rolls back on error; with target="spark"
    the process's SparkSession instead (`database` is then unused: Spark has one metastore,
    $SPARK_STATE_DIR). Spark has no transactions: what was written before an error stays."""
    if target == "spark":
        yield _spark_session()
        return
    settings = config.settings(database)
    ensure_database(settings)
    conn = psycopg2.connect(**settings.dsn())
    try:
        yield conn
        conn.commit()
    except psycopg2.Error as exc:
        if not conn.closed:
            conn.rollback()
        if _disk_full(exc):
            raise SystemExit(_disk_full_message(settings)) from None
        raise
    except BaseException:
        conn.rollback()
        raise
    finally:
        conn.close()


def settle(database: str | None, tables: list[str]) -> None:
    """VACUUM (ANALYZE) the tables a bulk load wrote, once it has committed: the hint bits,
    visibility map and statistics are then set by the load, not by the first build that
    reads the rows, which would also share the cores with autovacuum doing the same. A table
    another transaction holds (a load still running) is skipped: autovacuum and that load's
    own settle cover it. Failures are logged, never raised: the load has committed."""
    settings = config.settings(database)
    try:
        with _server_cursor(settings, settings.database) as cur:
            for table in tables:
                cur.execute(sql.SQL("vacuum (analyze, skip_locked) {}").format(
                    sql.Identifier(*table.split("."))))
    except psycopg2.Error as exc:
        log.warning("could not settle %s after the load: %s", ", ".join(tables), exc)


def _disk_full(exc: psycopg2.Error) -> bool:
    """The server ran out of disk (SQLSTATE 53100, or its words when it died of it)."""
    return exc.pgcode == "53100" or "No space left on device" in str(exc)


def _disk_full_message(settings: config.Settings) -> str:
    """One line, no traceback: what happened and what to free."""
    where = f"the server at {settings.host}:{settings.port}"
    if settings.embedded:
        home = server.layout().home
        where = f"{home}, {shutil.disk_usage(home).free / 2**20:.0f} MB free"
    return (f"the warehouse ran out of disk space ({where}); nothing of this transaction was "
            "kept: free space there (drop test databases, delete old data sets, output/, "
            "target/) and rerun")


def execute(conn: Warehouse, statement: str, params: tuple | dict | None = None) -> int:
    """Run one statement; the rows it affected (PostgreSQL's count, -1 on Spark)."""
    if is_spark(conn):
        _spark_sql(conn, statement, params).collect()
        return -1
    with conn.cursor() as cur:
        cur.execute(statement, params)
        return cur.rowcount


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


def copy_frame(conn: Warehouse, table: str, frame: pd.DataFrame) -> int:
    """Bulk-append a frame with COPY; `table` is schema-qualified, columns by name. On Spark
    an Arrow table in the table's types, appended with insertInto."""
    if frame.empty:
        return 0
    if is_spark(conn):
        return _spark_append(conn, table, frame)
    columns = sql.SQL(", ").join(sql.Identifier(c) for c in frame.columns)
    schema, name = table.split(".")
    statement = sql.SQL("copy {}.{} ({}) from stdin with (format csv)").format(
        sql.Identifier(schema), sql.Identifier(name), columns)
    with conn.cursor() as cur:
        cur.copy_expert(statement.as_string(conn), io.BytesIO(_csv_bytes(frame)))
    return len(frame)


def read_sql(conn: Warehouse, query: str, params: tuple | dict | None = None) -> pd.DataFrame:
    if is_spark(conn):
        return _arrow_to_pandas(_spark_sql(conn, query, params).toArrow())
    with conn.cursor() as cur:
        cur.execute(query, params)
        columns = [d.name for d in cur.description]
        return pd.DataFrame(cur.fetchall(), columns=columns)


def stream_sql(
    conn: Warehouse, query: str, params: tuple | dict | None = None, chunk_rows: int = 100_000
) -> Iterator[pd.DataFrame]:
    """Read a large result in chunks through a server-side cursor (memory stays bounded).
    On Spark the result arrives as one Arrow table (columnar, no Python row objects) and is
    handed out chunk by chunk: memory is bounded by the query's result, so callers bound the
    query (python_jobs/train/data.py reads blocks of days)."""
    if is_spark(conn):
        result = _spark_sql(conn, query, params).toArrow()
        for offset in range(0, result.num_rows, chunk_rows):
            yield _arrow_to_pandas(result.slice(offset, chunk_rows))
        return
    with conn.cursor(name="stream_sql") as cur:
        cur.itersize = chunk_rows
        cur.execute(query, params)
        while True:
            rows = cur.fetchmany(chunk_rows)
            if not rows:
                break
            yield pd.DataFrame(rows, columns=[d.name for d in cur.description])


# PostgreSQL type OIDs -> the Arrow type a COPY CSV field of that type is parsed as: what
# psycopg2 would give (ints as int64; real as float64, since psycopg2 parses its text as a
# Python float). Other types arrive as their text: cast them in the query.
_ARROW_OF_OID = {
    16: pa.bool_(), 20: pa.int64(), 21: pa.int64(), 23: pa.int64(), 700: pa.float64(),
    701: pa.float64(), 25: pa.string(), 1042: pa.string(), 1043: pa.string(),
    1082: pa.date32(), 1114: pa.timestamp("us"),
}
_COPY_BLOCK_BYTES = 1 << 22  # CSV bytes per parsed Arrow batch: about 10,000 rows of a mart
_PIPE_BYTES = 1 << 20


def stream_arrow(conn: Warehouse, query: str,
                 params: tuple | dict | None = None) -> Iterator[pa.RecordBatch]:
    """A large result as Arrow record batches, memory bounded by a few batches, no Python
    object per row or value. PostgreSQL: `COPY (query) TO STDOUT` as CSV, streamed through
    a pipe into pyarrow's CSV reader while the server is still sending (columns typed from
    the query's result description: _ARROW_OF_OID). Spark: the whole result as Arrow, cut
    into batches (callers bound the query). Read the batches to the end: a consumer that
    stops early makes the rest be read and dropped, so that the connection stays usable."""
    if is_spark(conn):
        table = _spark_sql(conn, query, params).toArrow()
        yield from table.cast(_naive_schema(table.schema)).to_batches()
        return
    yield from _copy_batches(conn, query, params, _result_schema(conn, query, params))


def read_arrow(conn: Warehouse, query: str, params: tuple | dict | None = None) -> pa.Table:
    """A whole result as one Arrow table (stream_arrow's batches)."""
    if is_spark(conn):
        table = _spark_sql(conn, query, params).toArrow()
        return table.cast(_naive_schema(table.schema))
    schema = _result_schema(conn, query, params)
    return pa.Table.from_batches(list(_copy_batches(conn, query, params, schema)), schema)


def _copy_batches(conn: Connection, query: str, params: tuple | dict | None,
                  schema: pa.Schema) -> Iterator[pa.RecordBatch]:
    """The COPY stream of stream_arrow, parsed with the result's `schema`."""
    with conn.cursor() as cur:
        statement = f"copy ({cur.mogrify(query, params).decode()}) to stdout with (format csv)"
    with _copy_pipe(conn, statement) as source:
        if not source.peek(1):  # no rows: pyarrow refuses an empty CSV
            return
        reader = pacsv.open_csv(source, read_options=pacsv.ReadOptions(
            column_names=schema.names, block_size=_COPY_BLOCK_BYTES),
            parse_options=pacsv.ParseOptions(newlines_in_values=True),
            convert_options=_csv_convert_options(schema))
        yield from reader


def _result_schema(conn: Connection, query: str, params: tuple | dict | None) -> pa.Schema:
    """The Arrow schema of a query's result, from its description (the query runs with
    limit 0: planned, not executed)."""
    with conn.cursor() as cur:
        cur.execute(f"select * from ({query}) as result limit 0", params)
        return pa.schema([(d.name, _ARROW_OF_OID.get(d.type_code, pa.string()))
                          for d in cur.description])


def _csv_convert_options(schema: pa.Schema) -> pacsv.ConvertOptions:
    """PostgreSQL's CSV: an unquoted empty field is NULL, a quoted one ("") the empty
    string; booleans are t/f."""
    return pacsv.ConvertOptions(
        column_types={f.name: f.type for f in schema}, true_values=["t"],
        false_values=["f"], null_values=[""], strings_can_be_null=True,
        quoted_strings_can_be_null=False)


@contextmanager
def _copy_pipe(conn: Connection, statement: str) -> Iterator[io.BufferedReader]:
    """The output of a COPY ... TO STDOUT as a readable pipe, written by a thread (psycopg2's
    copy_expert pushes rows into a file; pyarrow pulls). The thread's error, if any, is
    raised here, in place of whatever reading the cut-off stream raised."""
    read_fd, write_fd = os.pipe()
    with contextlib.suppress(AttributeError, OSError):  # Linux: a larger pipe, fewer wakeups
        fcntl.fcntl(write_fd, fcntl.F_SETPIPE_SZ, _PIPE_BYTES)
    failures: list[BaseException] = []

    def produce() -> None:
        try:
            with open(write_fd, "wb", buffering=_PIPE_BYTES) as sink, conn.cursor() as cur:
                cur.copy_expert(statement, sink, size=_PIPE_BYTES)
        except BaseException as error:  # handed to the reading thread
            failures.append(error)

    thread = threading.Thread(target=produce, name="copy-out", daemon=True)
    thread.start()
    source = open(read_fd, "rb", buffering=_PIPE_BYTES)  # noqa: SIM115 - closed below
    try:
        yield source
    finally:
        _drain(source, thread)
        source.close()
        if failures:
            # the cause: what the reader saw (a cut-off stream) is chained as the context
            raise failures[0]


def _drain(source: io.BufferedReader, thread: threading.Thread) -> None:
    """Read what is left of the pipe until the writer is done, so that COPY ends cleanly."""
    while source.read(_PIPE_BYTES):
        pass
    thread.join()


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


def create_table(conn: Warehouse, table: str, columns: dict[str, str]) -> None:
    """`create table if not exists` with the columns' Postgres types; on Spark the same
    columns in Spark's types, as a Parquet table."""
    if is_spark(conn):
        cols = ", ".join(f"{name} {_SPARK_TYPES[kind]}" for name, kind in columns.items())
        execute(conn, f"create table if not exists {table} ({cols}) using parquet")
        return
    cols = ", ".join(f"{name} {kind}" for name, kind in columns.items())
    execute(conn, f"create table if not exists {table} ({cols})")


def create_index(conn: Warehouse, table: str, column: str) -> None:
    """An index on one column, named <table>_<column> (Parquet tables have none: no-op)."""
    if is_spark(conn):
        return
    name = table.split(".")[-1]
    execute(conn, f"create index if not exists {name}_{column} on {table} ({column})")


def sql_type(engine: str, postgres_type: str) -> str:
    """The engine's name of a Postgres type, for casts in shared query text."""
    return _SPARK_TYPES[postgres_type] if engine == "spark" else postgres_type


def md5_bits_sql(engine: str, expression: str) -> str:
    """SQL for the first 32 bits of md5(expression) as a bigint in [0, 2^32): the same
    number on both engines (Spark has no bit strings; its conv() reads the hex digits)."""
    if engine == "spark":
        return f"cast(conv(substr(md5({expression}), 1, 8), 16, 10) as bigint)"
    return f"('x' || substr(md5({expression}), 1, 8))::bit(32)::bigint"


def byte_order_sql(engine: str, expression: str) -> str:
    """An `order by` term that sorts text by its bytes, as Spark always does, whatever the
    Postgres database's collation (en_US would put 'ev1-10' after 'ev11')."""
    return expression if engine == "spark" else f'{expression} collate "C"'


def column_types(conn: Warehouse, table: str) -> dict[str, str]:
    """Column -> Postgres data_type (information_schema's names, also on Spark, whose own
    names are mapped), in table order; empty when the table does not exist."""
    schema, name = table.split(".")
    if is_spark(conn):
        if not conn.catalog.tableExists(table):
            return {}
        return {f.name: _postgres_name(f.dataType.simpleString())
                for f in conn.table(table).schema.fields}
    frame = read_sql(
        conn, "select column_name, data_type from information_schema.columns "
              "where table_schema = %s and table_name = %s order by ordinal_position",
        (schema, name))
    return dict(zip(frame["column_name"], frame["data_type"], strict=True))


def drop_database(name: str) -> None:
    """Drop a database, disconnecting its sessions (tests and throwaway builds)."""
    with _server_cursor(config.settings(name)) as cur:
        cur.execute(sql.SQL("drop database if exists {} with (force)").format(
            sql.Identifier(name)))


def grant_read(conn: Warehouse, schema: str) -> None:
    """Let the read-only reporting role read a results schema, where the role exists (local
    Spark has no roles: nothing to do)."""
    if is_spark(conn):
        return
    role = config.REPORTING_ROLE
    if not read_sql(conn, "select 1 from pg_roles where rolname = %s", (role,)).empty:
        execute(conn, f"grant usage on schema {schema} to {role}")
        execute(conn, f"grant select on all tables in schema {schema} to {role}")


def conform(frame: pd.DataFrame, columns: dict[str, str]) -> pd.DataFrame:
    """The frame with exactly a table's columns, in order (missing ones NULL), for COPY."""
    out = frame.reindex(columns=list(columns))
    return out.astype(object).where(out.notna(), None)


# --------------------------------------------------------------------------- Spark

# Postgres types of the jobs' tables and casts -> Spark's (Spark has no text, no jsonb).
_SPARK_TYPES = {
    "text": "string", "jsonb": "string", "double precision": "double", "integer": "int",
    "bigint": "bigint", "boolean": "boolean", "date": "date", "timestamp": "timestamp",
}
# Spark's type names -> what Postgres' information_schema calls them.
_POSTGRES_NAMES = {
    "string": "text", "double": "double precision", "float": "real", "int": "integer",
    "bigint": "bigint", "smallint": "smallint", "tinyint": "smallint", "boolean": "boolean",
    "date": "date", "timestamp": "timestamp without time zone",
    "timestamp_ntz": "timestamp without time zone",
}
# Spark column types -> the Arrow types createDataFrame maps onto them. Timestamps are UTC
# instants (naive ones would become TIMESTAMP_NTZ); the session time zone is UTC too.
_ARROW_TYPES = {
    "string": pa.string(), "double": pa.float64(), "bigint": pa.int64(), "int": pa.int32(),
    "boolean": pa.bool_(), "date": pa.date32(), "timestamp": pa.timestamp("us", tz="UTC"),
}
_MARKERS = re.compile(r"%%|%s|%\((\w+)\)s")


def _postgres_name(spark_type: str) -> str:
    if spark_type.startswith("decimal"):
        return "numeric"
    return _POSTGRES_NAMES.get(spark_type, spark_type)


def _spark_session() -> SparkSession:
    return spark_session.session()


def _spark_sql(spark: SparkSession, query: str, params: tuple | dict | None) -> SparkFrame:
    """Run psycopg2-style query text on Spark: %s -> ?, %(name)s -> :name, %% -> %; the
    values go to Spark as parameters. Without params psycopg2 leaves the text alone, so do we."""
    if params is None:
        return spark.sql(query)

    def marker(match: re.Match) -> str:
        if match.group(0) == "%%":
            return "%"
        return "?" if match.group(0) == "%s" else f":{match.group(1)}"

    args = dict(params) if isinstance(params, dict) else list(params)
    return spark.sql(_MARKERS.sub(marker, query), args=args)


def _naive_schema(schema: pa.Schema) -> pa.Schema:
    """Spark's UTC instants as the naive UTC timestamps the Postgres path gives."""
    return pa.schema([pa.field(f.name, pa.timestamp(f.type.unit))
                      if pa.types.is_timestamp(f.type) and f.type.tz else f for f in schema])


def _arrow_to_pandas(table: pa.Table) -> pd.DataFrame:
    """A Spark result as the Postgres path gives it: naive UTC timestamps, dates as dates."""
    return table.cast(_naive_schema(table.schema)).to_pandas()


def _spark_append(spark: SparkSession, table: str, frame: pd.DataFrame) -> int:
    """Append a frame to a Spark table as one Arrow table in the table's column types
    (missing columns null; extra ones are an error, as with COPY)."""
    schema = spark.table(table).schema
    extra = set(frame.columns) - set(schema.fieldNames())
    if extra:
        raise ValueError(f"{table} has no column(s) {sorted(extra)}")
    arrow_schema = pa.schema([pa.field(f.name, _ARROW_TYPES[f.dataType.simpleString()])
                              for f in schema.fields])
    batch = pa.Table.from_pandas(frame.reindex(columns=schema.fieldNames()),
                                 schema=arrow_schema, preserve_index=False)
    # insertInto matches columns by position: the Arrow table is in the table's order.
    spark.createDataFrame(batch).write.insertInto(table)
    return len(frame)
