"""Reading the training marts: time split, deterministic hash sample, streamed typed chunks.

Every feature is read with the same cast the SQL scoring model applies (numeric and boolean
columns as double precision, booleans as 0/1; categoricals as text with null = __missing__),
so Python and SQL see identical inputs.

The marts may be on PostgreSQL or Spark (db.connect(target=...)). Both engines give the same
rows in the same order: the sample is the same md5 bits, and rows come unordered (the server
sends them while it scans) and are put in (day, key) order in Python: the training rows
themselves, the held-out rows' results (key_order). On Spark a query's whole result arrives at
once (as Arrow), so a block of at most BLOCK_ROWS rows is what bounds memory there; on
PostgreSQL the COPY stream (db.stream_arrow) hands over a few MB at a time.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta

import numpy as np
import pandas as pd
import psycopg2.extensions
import pyarrow as pa
import pyarrow.compute as pc
from pandas.api.types import union_categoricals

from python_jobs import db
from python_jobs.train import features

log = logging.getLogger(__name__)

MISSING = "__missing__"
HASH_BUCKETS = 2**32
NUMERIC_TYPES = {"smallint", "integer", "bigint", "numeric", "real", "double precision"}
BLOCK_ROWS = 500_000  # about 200 MB of Arrow at the skip mart's 50 columns
SCORE_ROWS = 200_000  # held-out rows scored per call: about 80 MB typed, 200 MB encoded
LOOKUP_COST_LIMIT = 20  # key_lookups: the most its plan may cost, in the planner's own plans


@dataclass(frozen=True)
class Window:
    """Training days [train_start, train_end] and held-out days [test_start, test_end]."""

    train_start: date
    train_end: date
    test_start: date
    test_end: date
    # rows per day of the mart, (day, rows) in day order: read with the split, so that
    # the blocks of days need no second scan of the mart
    day_rows: tuple[tuple[date, int], ...] = field(default=(), compare=False, repr=False)


@dataclass(frozen=True)
class Source:
    """A training mart: its table, grain key(s), date column and label column."""

    table: str
    keys: tuple[str, ...]
    date_column: str
    label: str
    # a view joining tables on keys[0], each with a unique index on it (PostgreSQL)
    joined_on_key: bool = False
    # a relation with exactly the mart's rows and date column, counted per day in its place:
    # PostgreSQL drops the skip view's join when the count reads no history column, yet
    # still forms every play's whole row (at 1M sessions 5.6-8.4 s against 1-1.9 s)
    counted_from: str | None = None


def column_types(conn: db.Warehouse, table: str) -> dict[str, str]:
    """Column -> Postgres type name (on Spark too: db maps Spark's names)."""
    types = db.column_types(conn, table)
    if not types:
        raise LookupError(f"{table} does not exist: run dbt build first (README)")
    return types


def numeric_expression(column: str, data_type: str, engine: str = "postgres") -> str:
    double = db.sql_type(engine, "double precision")
    if column in features.DERIVED:
        return f"cast({features.DERIVED[column]} as {double})"
    if data_type == "boolean":
        return f"cast(cast({column} as {db.sql_type(engine, 'integer')}) as {double})"
    if data_type not in NUMERIC_TYPES:
        raise TypeError(f"{column} ({data_type}) cannot be a numeric feature")
    return f"cast({column} as {double})"


def categorical_expression(column: str, engine: str = "postgres") -> str:
    return f"coalesce(cast({column} as {db.sql_type(engine, 'text')}), '{MISSING}')"


def select_list(source: Source, types: dict[str, str], numeric: tuple[str, ...],
                categorical: tuple[str, ...], engine: str = "postgres") -> str:
    missing = [c for c in (*numeric, *categorical) if c not in types
               and c not in features.DERIVED]
    if missing:
        raise LookupError(f"{source.table} has no column(s) {missing}")
    label_type = types[source.label]
    parts = [*source.keys, source.date_column,
             f"{numeric_expression(source.label, label_type, engine)} as {source.label}"]
    parts += [f"{numeric_expression(c, types.get(c, 'double precision'), engine)} as {c}"
              for c in numeric]
    parts += [f"{categorical_expression(c, engine)} as {c}" for c in categorical]
    return ", ".join(parts)


def split_window(conn: db.Warehouse, source: Source, test_days: int,
                 split_date: str | None) -> Window:
    """The last `test_days` days present in the mart are held out (or from split_date on)."""
    counts = db.read_sql(conn, f"select {source.date_column} as day, count(*) as n from "
                               f"{source.counted_from or source.table} group by 1 order by 1")
    counts = counts[counts["day"].notna()]
    if counts.empty:
        raise LookupError(f"{source.table} is empty")
    first, last = counts["day"].iloc[0], counts["day"].iloc[-1]
    test_start = (date.fromisoformat(split_date) if split_date
                  else last - timedelta(days=test_days - 1))
    if not first < test_start <= last:
        raise ValueError(f"{source.table}: split day {test_start} leaves no training or no "
                         f"test days in [{first}, {last}]")
    day_rows = tuple(zip(counts["day"], counts["n"].astype(int).tolist(), strict=True))
    return Window(first, test_start - timedelta(days=1), test_start, last, day_rows)


def hash_predicate(key: str, fraction: float, engine: str = "postgres") -> str:
    """A deterministic Bernoulli sample: the first 32 bits of md5(key) below fraction * 2^32.
    The same keys are drawn on every run of the same data, whatever the row order or engine."""
    threshold = int(np.ceil(fraction * HASH_BUCKETS))
    return f"{db.md5_bits_sql(engine, key)} < {threshold}"


def day_blocks(window: Window, first: date, last: date,
               fraction: float = 1.0) -> list[tuple[date, date, int]]:
    """[first, last] as consecutive blocks of whole days of at most BLOCK_ROWS rows read (a
    bigger day is a block of its own; a sample of `fraction` reads that share of a day's
    rows): (first day, last day, rows in the mart) each."""
    blocks: list[tuple[date, date, int]] = []
    for day, n in window.day_rows:
        if not first <= day <= last:
            continue
        if blocks and (blocks[-1][2] + n) * fraction <= BLOCK_ROWS:
            blocks[-1] = (blocks[-1][0], day, blocks[-1][2] + n)
        else:
            blocks.append((day, day, n))
    return blocks


def query_ranges(conn: db.Warehouse, blocks: list[tuple[date, date, int]]
                 ) -> list[tuple[date, date]]:
    """The day ranges read with one query each. Spark: the blocks, since a query's whole
    result arrives at once. PostgreSQL: one range, since the COPY stream bounds memory
    already and every query scans the whole mart (no index on the day): a block per query
    cost one scan of a 7 GB mart per 500,000 rows at 1M sessions. The rows and their order
    are those of the blocks in turn."""
    if db.is_spark(conn):
        return [(first, last) for first, last, _ in blocks]
    return [(blocks[0][0], blocks[-1][1])] if blocks else []


@contextlib.contextmanager
def key_lookups(conn: db.Warehouse, source: Source, sql: str,
                ranges: list[tuple]) -> Iterator[None]:
    """A read of a view joined on its key finds each row's other half through the key's
    index. PostgreSQL would otherwise hash every row of the other table first, whatever
    few rows the days or the sample select: at 1M sessions the held-out days of
    fct_play_skip_features read in 8 s instead of 14, the training sample in 9 instead of
    19. Session settings (hash and merge joins off), put back after the read; kept only
    when the planner prices the lookups within LOOKUP_COST_LIMIT times its own plan (about
    4 times at 1M sessions): without an index the only plan left would scan the other
    table once per row. `ranges`: the parameters the read will query `sql` with (on
    PostgreSQL one range: query_ranges); none, no read. Spark plans its own joins."""
    if not source.joined_on_key or db.is_spark(conn) or not ranges:
        yield
        return
    params = ranges[0]
    planned = _plan_cost(conn, sql, params)
    db.execute(conn, "set enable_hashjoin = off")
    db.execute(conn, "set enable_mergejoin = off")
    try:
        if _plan_cost(conn, sql, params) > LOOKUP_COST_LIMIT * planned:
            log.info("%s: no index lookups for this read, the planner's own plan", source.table)
            _reset_joins(conn)
        yield
    finally:
        # after an error the transaction is aborted and rolls back, settings included
        if conn.get_transaction_status() != psycopg2.extensions.TRANSACTION_STATUS_INERROR:
            _reset_joins(conn)


def _plan_cost(conn: db.Connection, sql: str, params: tuple) -> float:
    with conn.cursor() as cur:
        cur.execute(f"explain (format json) {sql}", params)
        return float(cur.fetchone()[0][0]["Plan"]["Total Cost"])


def _reset_joins(conn: db.Connection) -> None:
    db.execute(conn, "reset enable_hashjoin")
    db.execute(conn, "reset enable_mergejoin")


def query(source: Source, columns: str, sample_fraction: float | None = None,
          engine: str = "postgres") -> str:
    """One range of days' rows as the scan finds them: no sort of the wide rows comes
    before the first one is sent, so the server scans while Python reads. Callers put the
    rows (or their results) in (day, key) order with key_order, the same order on every
    engine and for every blocking."""
    where = f"{source.date_column} between %s and %s"
    if sample_fraction is not None and sample_fraction < 1:
        where += f" and {hash_predicate(source.keys[0], sample_fraction, engine)}"
    return f"select {columns} from {source.table} where {where}"


def key_order(days: list[pa.Array], keys: list[pa.Array]) -> np.ndarray:
    """The positions of the rows (the pieces concatenated) in (day, key) order, keys
    compared by their bytes: the order in which fits and metrics sum the rows."""
    table = pa.table({"day": pa.chunked_array(days), "key": pa.chunked_array(keys)})
    return pc.sort_indices(table, [("day", "ascending"), ("key", "ascending")]).to_numpy()


def row_order(frames: list[pd.DataFrame], day: str, key: str) -> np.ndarray:
    """key_order of the frames' rows."""
    return key_order([pa.array(f[day].to_numpy()) for f in frames],
                     [pa.array(f[key].to_numpy(), pa.string()) for f in frames])


def typed_chunk(chunk: pa.Table, source: Source, numeric: tuple[str, ...],
                categorical: tuple[str, ...], keep_keys: bool = True) -> pd.DataFrame:
    """float64 numerics (null = NaN), category-typed categoricals, datetime64 day: compact.
    The keys, when kept, are strings; training needs none."""
    out = pd.DataFrame(index=pd.RangeIndex(chunk.num_rows))
    if keep_keys:
        for key in source.keys:
            out[key] = chunk[key].to_pandas()
    out[source.date_column] = chunk[source.date_column].cast(pa.timestamp("s")).to_pandas()
    for c in (source.label, *numeric):
        out[c] = _float64(chunk[c], c)
    for c in categorical:
        out[c] = _category(chunk[c])
    return out


def _category(column: pa.ChunkedArray) -> pd.Categorical:
    """A text column as a categorical of sorted categories held as Python strings (object
    dtype): the encoders turn a categorical into an array of its values, which is then
    one pointer per row, not a new string per row as with Arrow-backed categories (about
    half a GB at a million rows, and twice the encoding time)."""
    encoded = column.cast(pa.string()).combine_chunks().dictionary_encode()
    labels = np.asarray(encoded.dictionary.to_pylist(), dtype=object)
    order = np.argsort(labels, kind="stable")
    rank = np.empty(len(order), dtype=np.int32)
    rank[order] = np.arange(len(order), dtype=np.int32)
    return pd.Categorical.from_codes(rank[encoded.indices.to_numpy()],
                                     categories=pd.Index(labels[order], dtype=object))


def _float64(column: pa.ChunkedArray, name: str) -> np.ndarray:
    """A numeric column as float64, nulls as NaN (select_list casts every one to double)."""
    if not pa.types.is_floating(column.type) and not pa.types.is_integer(column.type):
        raise TypeError(f"{name} ({column.type}) is not numeric")
    return column.cast(pa.float64()).to_numpy()


def arrow_chunks(conn: db.Warehouse, sql: str, params: tuple, rows: int) -> Iterator[pa.Table]:
    """The query's rows as Arrow tables of at least `rows` rows (the last may be fewer): the
    record batches as they arrive, joined (pandas conversion and scoring cost per call)."""
    pending: list[pa.RecordBatch] = []
    pending_rows = 0
    for batch in db.stream_arrow(conn, sql, params):
        pending.append(batch)
        pending_rows += batch.num_rows
        if pending_rows >= rows:
            yield pa.Table.from_batches(pending)
            pending, pending_rows = [], 0
    if pending:
        yield pa.Table.from_batches(pending)


def stream_frames(conn: db.Warehouse, sql: str, params: tuple, source: Source,
                  numeric: tuple[str, ...], categorical: tuple[str, ...],
                  chunk_rows: int, keep_keys: bool = True) -> Iterator[pd.DataFrame]:
    for chunk in arrow_chunks(conn, sql, params, chunk_rows):
        yield typed_chunk(chunk, source, numeric, categorical, keep_keys)


def concat_frames(frames: list[pd.DataFrame], categorical: tuple[str, ...]) -> pd.DataFrame:
    """Concatenate chunks, keeping categoricals categorical (their categories differ)."""
    if not frames:
        raise LookupError("no rows read")
    cats = {c: union_categoricals([f[c] for f in frames]) for c in categorical}
    out = pd.concat([f.drop(columns=list(categorical)) for f in frames], ignore_index=True)
    for c in categorical:
        out[c] = pd.Categorical(cats[c])
    return out


def release_freed_memory() -> None:
    """Hand freed heap pages back to the OS (glibc malloc_trim; a no-op elsewhere): the pages
    of what reading and typing the chunks left behind would stay with the process otherwise,
    and the model fit would come on top of them."""
    pa.default_memory_pool().release_unused()  # Arrow's own allocator keeps freed pages too
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def read_training(conn: db.Warehouse, source: Source, window: Window,
                  numeric: tuple[str, ...], categorical: tuple[str, ...],
                  sample_rows: int | None, chunk_rows: int) -> tuple[pd.DataFrame, dict]:
    """The training days (hash-sampled to about sample_rows), streamed block by block and
    chunk by chunk, in (day, key) order; the frame holds the date, label and features (no
    keys: training does not need them)."""
    engine = db.engine(conn)
    types = column_types(conn, source.table)
    blocks = day_blocks(window, window.train_start, window.train_end)
    population = sum(rows for _, _, rows in blocks)
    fraction = None
    if sample_rows is not None and population > sample_rows:
        fraction = sample_rows / population
        if db.is_spark(conn):
            # a sample reads fewer rows per day: fewer, larger blocks (one scan each)
            blocks = day_blocks(window, window.train_start, window.train_end, fraction)
    sql = query(source, select_list(source, types, numeric, categorical, engine), fraction,
                engine)
    ranges = query_ranges(conn, blocks)
    frames, days, keys = [], [], []
    with key_lookups(conn, source, sql, ranges):
        for first, last in ranges:
            for chunk in arrow_chunks(conn, sql, (first, last), chunk_rows):
                days.extend(chunk[source.date_column].chunks)
                keys.extend(chunk[source.keys[0]].chunks)
                frames.append(typed_chunk(chunk, source, numeric, categorical, keep_keys=False))
    frame = concat_frames(frames, categorical)
    del frames
    # the fit sums the rows in this order: the same on every engine and every run
    frame = frame.take(key_order(days, keys)).reset_index(drop=True)
    del days, keys
    release_freed_memory()
    info = {"train_population_rows": population, "train_rows": len(frame),
            "is_sampled": fraction is not None,
            "sample_method": (f"md5({source.keys[0]}) hash sample, fraction "
                              f"{fraction:.6f} (target {sample_rows} rows)")
            if fraction is not None else "none: every training row"}
    log.info("%s: %d of %d training rows read (%s)", source.table, len(frame), population,
             info["sample_method"])
    return frame, info


def stream_test(conn: db.Warehouse, source: Source, window: Window,
                numeric: tuple[str, ...], categorical: tuple[str, ...],
                block_rows: int = SCORE_ROWS) -> Iterator[pd.DataFrame]:
    """Every held-out row (never sampled, never held whole), in frames of about block_rows
    rows, in no particular order (row_order gives the (day, key) order of the results): the
    server sends rows while it scans, and no sort of the held-out days' wide rows comes
    first. Arrow batches are joined into blocks before scoring, since a model's call costs
    the same fixed work (column checks, encoders, one thread start per boosted tree)
    whether it scores 20,000 rows or 200,000."""
    engine = db.engine(conn)
    types = column_types(conn, source.table)
    sql = query(source, select_list(source, types, numeric, categorical, engine),
                engine=engine)
    ranges = query_ranges(conn, day_blocks(window, window.test_start, window.test_end))
    with key_lookups(conn, source, sql, ranges):
        for first, last in ranges:
            yield from stream_frames(conn, sql, (first, last), source, numeric,
                                     categorical, block_rows)
