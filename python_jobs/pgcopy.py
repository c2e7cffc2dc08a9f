"""A PostgreSQL query's result as pandas chunks through COPY ... TO STDOUT and Arrow's CSV
reader, for db.stream_sql.

A server-side cursor hands every value to Python as an object and pandas then builds columns
from millions of them: that was most of what `python -m python_jobs.train` spent reading at
1M sessions. COPY sends the same rows as CSV, which pyarrow parses in C++ threads into
columns while psycopg2 still receives (a pipe between the two; memory stays bounded by a few
MB of text plus one chunk). The values are the same: PostgreSQL prints floats in the shortest
form that reads back to the same double, pyarrow parses them with correct rounding, and CSV
tells NULL (unquoted empty) from the empty string (quoted).

Only results whose every column has a type below take this path; others (numeric, which
psycopg2 gives as Decimal, timestamptz, arrays, ...) return None and are read by the cursor.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
from collections.abc import Iterator

import pandas as pd
import psycopg2.extensions
import pyarrow as pa
import pyarrow.csv as pacsv

# PostgreSQL type oid -> the Arrow type its CSV text is parsed into (pandas then gives the
# dtypes the cursor path gives: int64, or float64 with NaN for an int column holding NULL;
# object dates; bools, or objects where NULL; strings)
ARROW_TYPES = {
    16: pa.bool_(), 20: pa.int64(), 21: pa.int64(), 23: pa.int64(),
    700: pa.float64(), 701: pa.float64(),
    25: pa.string(), 1043: pa.string(), 1042: pa.string(), 19: pa.string(),
    1082: pa.date32(), 1114: pa.timestamp("us"),
}
PIPE_BYTES = 1 << 20
BLOCK_BYTES = 8 << 20


def column_types(conn: psycopg2.extensions.connection, query: str,
                 params: tuple | dict | None) -> dict[str, pa.DataType] | None:
    """The result's columns and their Arrow types (None when one has no CSV mapping). Planning
    the query with limit 0 also reports a bad query here, before any thread starts."""
    with conn.cursor() as cur:
        cur.execute(f"select * from ({query}) as q limit 0", params)
        columns = [(d.name, ARROW_TYPES.get(d.type_code)) for d in cur.description]
    names = [name for name, _ in columns]
    if any(kind is None for _, kind in columns) or len(set(names)) != len(names):
        return None
    return dict(columns)


def _convert_options(types: dict[str, pa.DataType]) -> pacsv.ConvertOptions:
    return pacsv.ConvertOptions(
        column_types=types, null_values=[""], strings_can_be_null=True,
        quoted_strings_can_be_null=False, true_values=["t"], false_values=["f"])


def _copy_into(conn: psycopg2.extensions.connection, statement: str, fd: int,
               failure: list[BaseException]) -> None:
    try:
        with os.fdopen(fd, "wb") as sink, conn.cursor() as cur:
            cur.copy_expert(statement, sink, size=PIPE_BYTES)
    except BaseException as exc:  # re-raised by the reading side, after the join
        failure.append(exc)


def stream(conn: psycopg2.extensions.connection, query: str, params: tuple | dict | None,
           chunk_rows: int) -> Iterator[pd.DataFrame] | None:
    """The result in frames of chunk_rows rows (the last one shorter), in the query's order;
    None when a column's type is not in ARROW_TYPES."""
    types = column_types(conn, query, params)
    if types is None:
        return None
    with conn.cursor() as cur:
        statement = cur.mogrify(f"copy ({query}) to stdout with (format csv)", params).decode()
    return _frames(conn, statement, types, chunk_rows)


def _frames(conn: psycopg2.extensions.connection, statement: str,
            types: dict[str, pa.DataType], chunk_rows: int) -> Iterator[pd.DataFrame]:
    read_fd, write_fd = os.pipe()
    with contextlib.suppress(OSError):  # a bigger pipe: fewer wake-ups (Linux only)
        fcntl.fcntl(write_fd, getattr(fcntl, "F_SETPIPE_SZ", 1031), PIPE_BYTES)
    failure: list[BaseException] = []
    writer = threading.Thread(target=_copy_into, args=(conn, statement, write_fd, failure),
                              name="pgcopy", daemon=True)
    source = os.fdopen(read_fd, "rb")
    writer.start()
    try:
        if not source.peek(1):  # no rows (Arrow's reader refuses an empty file)
            writer.join()
            if failure:
                raise failure[0]
            return
        reader = pacsv.open_csv(
            source, read_options=pacsv.ReadOptions(column_names=list(types),
                                                   block_size=BLOCK_BYTES),
            parse_options=pacsv.ParseOptions(newlines_in_values=True),
            convert_options=_convert_options(types))
        pending: list[pa.RecordBatch] = []
        rows = 0
        for batch in reader:
            pending.append(batch)
            rows += batch.num_rows
            while rows >= chunk_rows:
                table = pa.Table.from_batches(pending)
                yield table.slice(0, chunk_rows).to_pandas()
                rest = table.slice(chunk_rows)
                pending, rows = rest.to_batches(), rest.num_rows
        writer.join()
        if failure:
            raise failure[0]
        if rows:
            yield pa.Table.from_batches(pending).to_pandas()
    except pa.ArrowInvalid:
        writer.join()
        if failure:  # the server failed mid-result: its error, not the truncated text's
            raise failure[0] from None
        raise
    finally:
        if writer.is_alive():  # the consumer stopped early or failed: stop the server
            conn.cancel()
            source.close()
            writer.join()
        source.close()
