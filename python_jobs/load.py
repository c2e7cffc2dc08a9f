"""Load files in the raw contract's shape into schema `raw`: parse exactly, quarantine, COPY.

    python -m python_jobs.load FILE [FILE ...] --table listening_events [--batch-name NAME]
    python -m python_jobs.load --list [--table T]
    python -m python_jobs.load --remove NAME --table T

A load is a batch with a name (default: the file's name). Loading a name again replaces what
that batch wrote; content already loaded under another name is skipped. The data, its rejects
and the batch registry (raw.load_batches, raw.load_changes) change in one transaction under
a per-table lock, so loads never race and a failed or killed load leaves everything as it
was. Every input row is loaded or lands in raw.load_rejects with its record and the reason.
Exit status: 0 loaded (or skipped), 1 refused (too many rejects; nothing committed),
2 unusable input or arguments (one line on stderr), 3 database error.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import hashlib
import io
import json
import logging
import sys
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import psycopg2
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from python_jobs import config, contract, db, exact, logs, warehouse

log = logging.getLogger(__name__)

CHUNK_ROWS = 250_000
BLOCK_BYTES = 64 << 20  # the longest row a CSV may have (Arrow parses whole rows per block)
MAX_REJECT_RATE = 0.5
EXIT_OK, EXIT_REFUSED, EXIT_UNREADABLE, EXIT_DATABASE = 0, 1, 2, 3


class Unreadable(Exception):
    """The input cannot be read at all (exit status 2); the message names file and cause."""


class Refused(Exception):
    """The load broke a rule of the whole batch (exit status 1); nothing was committed."""


class _NeedsExactRows(Exception):
    """A CSV row had the wrong number of fields: Arrow cannot say where; reread it exactly."""


@dataclass(frozen=True)
class LoadResult:
    table: str
    batch_id: str  # the batch's name
    rows_loaded: int
    rows_rejected: int
    rows_replaced: int = 0  # rows an earlier load of this batch had written (now gone)
    skipped_as: str | None = None  # set when identical content is already batch <this name>


def lock_table(conn: db.Connection, table_name: str) -> None:
    """Serialise loads into one table until this transaction ends (commit or rollback)."""
    db.execute(conn, "select pg_advisory_xact_lock(%s, hashtext(%s))",
               (contract.LOAD_LOCK_CLASS, table_name))


def registered(conn: db.Connection, table_name: str, batch_name: str) -> dict | None:
    """The registry row of a live batch, or None."""
    rows = db.read_sql(conn, f"select * from {contract.RAW_SCHEMA}.load_batches "
                             "where table_name = %s and batch_name = %s",
                       (table_name, batch_name))
    return None if rows.empty else rows.iloc[0].to_dict()


def batch_with_content(conn: db.Connection, table_name: str, content_hash: str,
                       other_than: str) -> str | None:
    rows = db.read_sql(conn, f"select batch_name from {contract.RAW_SCHEMA}.load_batches "
                             "where table_name = %s and content_hash = %s and batch_name <> %s "
                             "order by loaded_at limit 1", (table_name, content_hash, other_than))
    return None if rows.empty else str(rows["batch_name"].iloc[0])


def clear_batch(conn: db.Connection, table: contract.Table, batch_name: str) -> int:
    """Remove the rows and rejects an earlier load of this batch wrote; returns the rows
    removed. Rows of other batches, or inserted by hand, are never touched."""
    qualified = f"{contract.RAW_SCHEMA}.{table.name}"
    # Writers outside the loader (psql, upserts) wait too: the check below stays true.
    db.execute(conn, f"lock table {qualified} in share row exclusive mode")
    counts = db.read_sql(conn, f"select count(*) filter (where _batch_id = %s) as mine, "
                               f"count(*) filter (where _batch_id <> %s) as others "
                               f"from {qualified}", (batch_name, batch_name))
    mine, others = int(counts["mine"].iloc[0]), int(counts["others"].iloc[0])
    if mine and not others:
        db.execute(conn, f"truncate {qualified}")  # far faster than a delete of every row
    elif mine:
        db.execute(conn, f"delete from {qualified} where _batch_id = %s", (batch_name,))
    db.execute(conn, f"delete from {contract.RAW_SCHEMA}.load_rejects "
               "where table_name = %s and batch_id = %s", (table.name, batch_name))
    return mine


def _day(value) -> date | None:
    return None if value is None or pd.isna(value) else pd.Timestamp(value).date()


def record_batch(conn: db.Connection, table_name: str, batch_name: str, *, content_hash: str,
                 source: str, rows_loaded: int, rows_rejected: int, min_day: date | None,
                 max_day: date | None, previous: dict | None, rows_before: int) -> None:
    """Write the registry row and the change-log row of a load (same transaction as the data)."""
    now = datetime.now(UTC).replace(tzinfo=None)
    db.execute(conn, f"""insert into {contract.RAW_SCHEMA}.load_batches
        (table_name, batch_name, content_hash, source, rows_loaded, rows_rejected, loaded_at,
         min_day, max_day) values (%s, %s, %s, %s, %s, %s, %s, %s, %s)
        on conflict (table_name, batch_name) do update set content_hash = excluded.content_hash,
        source = excluded.source, rows_loaded = excluded.rows_loaded,
        rows_rejected = excluded.rows_rejected, loaded_at = excluded.loaded_at,
        min_day = excluded.min_day, max_day = excluded.max_day""",
               (table_name, batch_name, content_hash, source, rows_loaded, rows_rejected, now,
                min_day, max_day))
    if previous is None and rows_before == 0 and rows_loaded == 0:
        return  # nothing changed: no change for incremental models to replay
    days = [d for d in (min_day, max_day, _day(previous and previous["min_day"]),
                        _day(previous and previous["max_day"])) if d is not None]
    dated = contract.TABLES[table_name].partition_column is not None
    db.execute(conn, f"""insert into {contract.RAW_SCHEMA}.load_changes
        (table_name, batch_name, action, min_day, max_day, rows_before, rows_after, changed_at)
        values (%s, %s, %s, %s, %s, %s, %s, %s)""",
               (table_name, batch_name, "load" if previous is None else "replace",
                min(days) if days and dated else None, max(days) if days and dated else None,
                rows_before, rows_loaded, now))


def remove_batch(conn: db.Connection, table_name: str, batch_name: str) -> int:
    """Remove a batch's rows, rejects and registry row; returns the rows removed."""
    table = contract.TABLES[table_name]
    lock_table(conn, table_name)
    previous = registered(conn, table_name, batch_name)
    if previous is None:
        raise LookupError(f"no batch {batch_name!r} in raw.{table_name}")
    removed = clear_batch(conn, table, batch_name)
    db.execute(conn, f"delete from {contract.RAW_SCHEMA}.load_batches "
               "where table_name = %s and batch_name = %s", (table_name, batch_name))
    db.execute(conn, f"""insert into {contract.RAW_SCHEMA}.load_changes
        (table_name, batch_name, action, min_day, max_day, rows_before, rows_after)
        values (%s, %s, 'remove', %s, %s, %s, 0)""",
               (table_name, batch_name, _day(previous["min_day"]), _day(previous["max_day"]),
                removed))
    return removed


def frame_digest(frame: pd.DataFrame) -> bytes:
    """A fingerprint of a frame's columns and values (content hash of in-memory loads)."""
    try:
        hashes = pd.util.hash_pandas_object(frame, index=False)
    except TypeError:  # unhashable mixed objects: hash their text
        hashes = pd.util.hash_pandas_object(frame.astype("string"), index=False)
    return "\x1f".join(map(str, frame.columns)).encode() + hashes.to_numpy().tobytes()


def _digest_arrays(digest, columns: dict[str, pa.Array]) -> None:
    """Fold columns' Arrow buffers into a content hash (in-memory loads: no file to hash)."""
    for name, array in columns.items():
        digest.update(f"{name}:{array.type}:{len(array)}".encode())
        for buffer in array.buffers():
            if buffer is not None:
                digest.update(buffer)


def _text(value) -> str | None:
    if value is None or value is pd.NA or (isinstance(value, float) and value != value):
        return None
    return value if isinstance(value, str) else str(value)


def reject_frame(chunk: pd.DataFrame, rejects: pd.DataFrame, *, table: str, batch_id: str,
                 source: str, first_row: int, now: datetime,
                 row_numbers: np.ndarray | None = None) -> pd.DataFrame:
    """load_rejects rows: each rejected record as read (JSON of its fields) and the reason."""
    positions = chunk.index.get_indexer(rejects["row_index"])
    numbers = (row_numbers[positions] if row_numbers is not None
               else first_row + positions + 1)
    columns = [str(c) for c in chunk.columns]
    records = [json.dumps(dict(zip(columns, map(_text, row), strict=True)), ensure_ascii=False)
               for row in chunk.iloc[positions].itertuples(index=False, name=None)]
    return pd.DataFrame({
        "batch_id": batch_id, "table_name": table, "source": source,
        "row_number": np.asarray(numbers, dtype=np.int64),
        "reason": rejects["reason"].to_numpy(), "record": records, "rejected_at": now,
    })


def _broken_frame(broken: list[tuple[int, str, str]], *, table: str, batch_id: str,
                  source: str, now: datetime) -> pd.DataFrame:
    return pd.DataFrame({
        "batch_id": batch_id, "table_name": table, "source": source,
        "row_number": [n for n, _, _ in broken], "reason": [why for _, _, why in broken],
        "record": [json.dumps({"_line": text}, ensure_ascii=False) for _, text, _ in broken],
        "rejected_at": now,
    })


def _key_text(typed: pd.DataFrame, key: tuple[str, ...]) -> pd.Series:
    text = typed[key[0]].astype("string")
    for name in key[1:]:
        text = text + "\x1f" + typed[name].astype("string")
    return text


@dataclass
class _Tally:
    rows: int = 0
    loaded: int = 0
    rejected: int = 0
    day_min: object = None
    day_max: object = None
    reasons: Counter | None = None


def load(conn: db.Connection, table_name: str, chunks: Iterable[pd.DataFrame], *,
         batch_id: str, source: str, content_hash: str | None = None,
         skip_same_content: bool = False, options: exact.Options = exact.DEFAULTS,
         max_reject_rate: float | None = None) -> LoadResult:
    """Parse chunks exactly and COPY them into raw.<table_name> as batch `batch_id`,
    replacing what an earlier load of that batch wrote; registry in the same transaction.

    content_hash: of the input (a file's sha256); by default a hash of the rows. With
    skip_same_content, content already loaded under another batch name is not loaded again.
    max_reject_rate: raise Refused (the caller's transaction then rolls back) when a larger
    share of the input rows is rejected. Frames from read_file carry their row numbers and
    unsplittable rows in .attrs.
    """
    table = contract.TABLES[table_name]
    lock_table(conn, table.name)
    if skip_same_content and content_hash is not None:
        twin = batch_with_content(conn, table.name, content_hash, batch_id)
        if twin is not None:
            return LoadResult(table.name, batch_id, 0, 0, skipped_as=twin)
    previous = registered(conn, table.name, batch_id)
    replaced = clear_batch(conn, table, batch_id)
    now = datetime.now(UTC).replace(tzinfo=None)
    digest = hashlib.sha256()
    tally = _Tally(reasons=Counter())
    seen_keys = pd.Index([], dtype="string")
    file_rows: Counter = Counter()  # rows read so far from each file (row numbers are per file)
    for chunk in chunks:
        attrs = dict(chunk.attrs)
        chunk = chunk.reset_index(drop=True)
        chunk_source = attrs.get("source", source)
        broken = attrs.get("broken", [])
        if broken:
            tally.rejected += db.copy_frame(conn, f"{contract.RAW_SCHEMA}.load_rejects",
                                            _broken_frame(broken, table=table.name,
                                                          batch_id=batch_id,
                                                          source=chunk_source, now=now))
            tally.reasons.update(why for _, _, why in broken)
        missing = [c.name for c in table.columns if c.required and c.name not in chunk.columns]
        if missing:
            header = ", ".join(map(str, chunk.columns)) or "nothing"
            raise Unreadable(f"{chunk_source}: no column {', '.join(missing)} (required in "
                             f"raw.{table.name}; the header has {header})")
        columns = {c: exact.from_pandas(chunk[c]) for c in table.column_names
                   if c in chunk.columns}
        if content_hash is None:
            _digest_arrays(digest, columns)
        try:
            typed, reasons = contract.check(table, columns, len(chunk), options)
        except pa.ArrowException as exc:  # a column no contract type can come from (a list)
            raise Unreadable(f"{chunk_source}: {_cause(exc)}") from exc
        good = reasons == ""
        if table.unique_in_batch and good.any():
            keys = _key_text(typed[good], table.key)
            again = (keys.duplicated(keep="first") | keys.isin(seen_keys)).to_numpy()
            repeated = np.zeros(len(good), dtype=bool)
            repeated[np.flatnonzero(good)[again]] = True
            reasons[repeated] = "duplicate key in batch"
            good &= ~repeated
            seen_keys = seen_keys.append(pd.Index(keys[~again]))
        typed = typed[good].assign(_batch_id=batch_id, _loaded_at=now)
        if table.partition_column and len(typed):
            days = typed[table.partition_column]
            lo, hi = days.min(), days.max()
            tally.day_min = lo if tally.day_min is None or lo < tally.day_min else tally.day_min
            tally.day_max = hi if tally.day_max is None or hi > tally.day_max else tally.day_max
        tally.loaded += db.copy_frame(conn, f"{contract.RAW_SCHEMA}.{table.name}", typed)
        if not good.all():
            bad = pd.DataFrame({"row_index": np.flatnonzero(~good),
                                "reason": [r.rstrip("; ") for r in reasons[~good]]})
            tally.reasons.update(bad["reason"])
            tally.rejected += db.copy_frame(conn, f"{contract.RAW_SCHEMA}.load_rejects",
                                            reject_frame(chunk, bad, table=table.name,
                                                         batch_id=batch_id, source=chunk_source,
                                                         first_row=file_rows[chunk_source],
                                                         now=now,
                                                         row_numbers=attrs.get("row_numbers")))
        tally.rows += len(chunk) + len(broken)
        file_rows[chunk_source] += len(chunk) + len(broken)
    if max_reject_rate is not None and tally.rows and tally.rejected > max_reject_rate * tally.rows:
        common = "; ".join(f"{n} x {why}" for why, n in tally.reasons.most_common(3))
        raise Refused(f"{source}: {tally.rejected} of {tally.rows} rows rejected, more than "
                      f"--max-reject-rate {max_reject_rate:g}; nothing loaded. Most common: "
                      f"{common}")
    record_batch(conn, table.name, batch_id, content_hash=content_hash or digest.hexdigest(),
                 source=source, rows_loaded=tally.loaded, rows_rejected=tally.rejected,
                 min_day=_day(tally.day_min), max_day=_day(tally.day_max), previous=previous,
                 rows_before=replaced)
    if tally.rejected:
        log.info("%s: %d rows rejected into raw.load_rejects (batch %s)",
                 table.name, tally.rejected, batch_id)
    return LoadResult(table.name, batch_id, tally.loaded, tally.rejected, replaced)


def file_hash(path: Path) -> str:
    """sha256 hex of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_batch_id(path: Path) -> str:
    """A name from the file's name and content, for callers that name batches by content."""
    return f"file:{path.name}:{file_hash(path)[:16]}"


def _cause(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:300]


def _kind(path: Path) -> str:
    name = path.name.lower()
    if name.endswith(".parquet"):
        return "parquet"
    if name.endswith((".csv", ".csv.gz", ".gz")):
        return "csv"
    raise Unreadable(f"{path}: unsupported file type (use .csv, .csv.gz or .parquet)")


def _check_header(path: Path, names: list[str]) -> None:
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise Unreadable(f"{path}: column {', '.join(repeated)} appears twice in the header")


def _with_attrs(frame: pd.DataFrame, **attrs) -> pd.DataFrame:
    frame.attrs.update(attrs)
    return frame


def _arrow_csv(path: Path, chunk_rows: int, encoding: str) -> Iterator[pd.DataFrame]:
    broken: list[str] = []

    def invalid(row: pacsv.InvalidRow) -> str:
        broken.append(row.text)
        return "skip"

    header = _header(path, encoding)
    stream = pa.input_stream(str(path), compression="detect")
    try:
        reader = pacsv.open_csv(
        stream,
            read_options=pacsv.ReadOptions(block_size=BLOCK_BYTES, encoding=encoding),
            parse_options=pacsv.ParseOptions(newlines_in_values=True,
                                             invalid_row_handler=invalid),
            # Every value as text, exactly as written: the contract's parsers type it.
            convert_options=pacsv.ConvertOptions(
                strings_can_be_null=False, quoted_strings_can_be_null=False,
                column_types={n: pa.string() for n in header}))
    except pa.ArrowInvalid as exc:
        if "Empty CSV file" not in str(exc):
            raise
        # A header without a newline: Arrow sees no complete line, but it is a header.
        yield _with_attrs(pd.DataFrame({n: pd.Series([], dtype="string") for n in header}),
                          source=str(path))
        return
    names = reader.schema.names
    _check_header(path, names)
    yielded = False
    for batch in reader:
        if broken:
            raise _NeedsExactRows(path)
        for offset in range(0, batch.num_rows, chunk_rows):
            part = batch.slice(offset, chunk_rows).to_pandas(types_mapper=pd.ArrowDtype)
            yielded = True
            yield _with_attrs(part, source=str(path))
    if broken:
        raise _NeedsExactRows(path)
    if not yielded:
        yield _with_attrs(pd.DataFrame({n: pd.Series([], dtype="string") for n in names}),
                          source=str(path))


def _open_text(path: Path, encoding: str):
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    python_encoding = "utf-8-sig" if encoding.lower() in ("utf8", "utf-8") else encoding
    return opener(path, "rt", encoding=python_encoding, newline="")


def _header(path: Path, encoding: str) -> list[str]:
    with _open_text(path, encoding) as handle:
        names = next(csv.reader(handle, strict=False), None)
    if not names:
        raise Unreadable(f"{path}: empty file (no header row)")
    return names


def _python_csv(path: Path, chunk_rows: int, encoding: str) -> Iterator[pd.DataFrame]:
    """Row by row, so rows with the wrong number of fields keep their place and text (only
    for files that have such rows: Arrow is much faster)."""
    csv.field_size_limit(BLOCK_BYTES)
    with _open_text(path, encoding) as handle:
        rows = csv.reader(handle, strict=False)
        names = next(rows, None)
        if names is None:
            raise Unreadable(f"{path}: empty file (no header row)")
        _check_header(path, names)
        good: list[list[str]] = []
        numbers: list[int] = []
        broken: list[tuple[int, str, str]] = []
        number = 0

        def frame() -> pd.DataFrame:
            data = pd.DataFrame(good or None, columns=names, dtype="string")
            return _with_attrs(data, source=str(path), broken=list(broken),
                               row_numbers=np.asarray(numbers, dtype=np.int64))

        for fields in rows:
            if not fields:
                continue  # a blank line is no row (as Arrow reads it)
            number += 1
            if len(fields) == len(names):
                good.append(fields)
                numbers.append(number)
            else:
                line = io.StringIO()
                csv.writer(line, lineterminator="").writerow(fields)
                broken.append((number, line.getvalue(),
                               f"wrong number of fields: {len(fields)}, header has "
                               f"{len(names)}"))
            if len(good) + len(broken) >= chunk_rows:
                yield frame()
                good, numbers, broken = [], [], []
        yield frame()


def _parquet(path: Path, chunk_rows: int) -> Iterator[pd.DataFrame]:
    parquet = pq.ParquetFile(path)
    names = parquet.schema_arrow.names
    _check_header(path, names)
    yielded = False
    for batch in parquet.iter_batches(batch_size=chunk_rows):
        yielded = True
        # Arrow types kept as they are (no float detour for integers with gaps).
        yield _with_attrs(batch.to_pandas(types_mapper=pd.ArrowDtype), source=str(path))
    if not yielded:
        yield _with_attrs(parquet.schema_arrow.empty_table().to_pandas(
            types_mapper=pd.ArrowDtype), source=str(path))


def read_file(path: Path, chunk_rows: int = CHUNK_ROWS, *, encoding: str = "utf8",
              exact_rows: bool = False) -> Iterator[pd.DataFrame]:
    """Stream a CSV (.csv, .csv.gz) or Parquet file in chunks: CSV values as text exactly as
    written, Parquet values in their Arrow types. Raises Unreadable (one line, naming the
    file) for what cannot be read at all."""
    kind = _kind(path)
    try:
        if path.is_dir():
            raise Unreadable(f"{path}: is a directory, not a file")
        if kind == "parquet":
            yield from _parquet(path, chunk_rows)
        elif exact_rows:
            yield from _python_csv(path, chunk_rows, encoding)
        else:
            yield from _arrow_csv(path, chunk_rows, encoding)
    except (Unreadable, _NeedsExactRows):
        raise
    except (pa.ArrowException, OSError, UnicodeError, csv.Error, EOFError, ValueError) as exc:
        cause = _cause(exc)
        if "Empty CSV file" in cause:
            cause = "empty file (no header row)"
        elif "UTF8" in cause or isinstance(exc, UnicodeError):
            cause = f"not {encoding} text ({cause}); give --encoding"
        raise Unreadable(f"{path}: {cause}") from exc


def load_files(conn: db.Connection, table_name: str, paths: list[Path], *, batch_name: str,
               options: exact.Options = exact.DEFAULTS, encoding: str = "utf8",
               max_reject_rate: float | None = MAX_REJECT_RATE,
               chunk_rows: int = CHUNK_ROWS) -> LoadResult:
    """Load files as one batch (what the command does for each file, or for all files under
    --batch-name). Identical content already loaded under another name is skipped."""
    hashes = [file_hash(p) for p in paths]
    content_hash = hashes[0] if len(hashes) == 1 else hashlib.sha256(
        "".join(hashes).encode()).hexdigest()
    exact_rows: set[Path] = set()
    while True:
        db.execute(conn, "savepoint load_files")

        def chunks() -> Iterator[pd.DataFrame]:
            for path in paths:
                yield from read_file(path, chunk_rows, encoding=encoding,
                                     exact_rows=path in exact_rows)

        try:
            result = load(conn, table_name, chunks(), batch_id=batch_name,
                          source=", ".join(map(str, paths)), content_hash=content_hash,
                          skip_same_content=True, options=options,
                          max_reject_rate=max_reject_rate)
        except _NeedsExactRows as again:
            db.execute(conn, "rollback to savepoint load_files")
            exact_rows.add(again.args[0])
            continue
        db.execute(conn, "release savepoint load_files")
        return result


def list_batches(conn: db.Connection, table_name: str | None) -> pd.DataFrame:
    return db.read_sql(conn, f"""select table_name, batch_name, rows_loaded, rows_rejected,
        loaded_at, min_day, max_day, left(content_hash, 12) as content, source
        from {contract.RAW_SCHEMA}.load_batches where %s is null or table_name = %s
        order by table_name, loaded_at, batch_name""", (table_name, table_name))


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit status 2 (argparse prints two)
        self.exit(EXIT_UNREADABLE, f"{self.prog}: error: {message}\n")


def _fail(status: int, message: str) -> int:
    print(f"python -m python_jobs.load: error: {message}", file=sys.stderr)
    return status


def _options(args: argparse.Namespace) -> exact.Options:
    missing = exact.DEFAULT_MISSING if args.missing is None else tuple(args.missing)
    order = "dmy" if args.dayfirst else "mdy" if args.monthfirst else "iso"
    return exact.Options(missing=missing, date_order=order,
                         timestamp_format=args.timestamp_format, epoch_unit=args.epoch_unit)


def _batch_name(value: str) -> str:
    if not value or len(value) > 200 or any(ord(c) < 32 for c in value):
        raise argparse.ArgumentTypeError("a batch name has 1-200 characters, no control "
                                         "characters")
    return value


def _rate(value: str) -> float:
    rate = float(value)
    if not 0 <= rate <= 1:
        raise argparse.ArgumentTypeError("a share between 0 and 1")
    return rate


def main(argv: list[str] | None = None) -> int:
    parser = _Parser(prog="python -m python_jobs.load", description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="*", type=Path)
    parser.add_argument("--table", choices=sorted(contract.TABLES))
    parser.add_argument("--batch-name", "--batch-id", dest="batch_name", type=_batch_name,
                        help="name of the batch (default: each file's name); every file "
                             "given then goes into this one batch")
    parser.add_argument("--list", action="store_true", help="list the loaded batches")
    parser.add_argument("--remove", metavar="NAME", type=_batch_name,
                        help="remove batch NAME (its rows and rejects) from --table")
    parser.add_argument("--max-reject-rate", type=_rate, default=MAX_REJECT_RATE,
                        help="refuse the load (commit nothing) when a larger share of a "
                             f"batch's rows is rejected (default {MAX_REJECT_RATE})")
    parser.add_argument("--missing", action="append", metavar="TEXT",
                        help="a text that means a missing value; repeat for several "
                             "(default: empty, NA, NULL, \\N)")
    order = parser.add_mutually_exclusive_group()
    order.add_argument("--dayfirst", action="store_true",
                       help="timestamps are DD/MM/YYYY[ HH:MM[:SS]] (not ISO 8601)")
    order.add_argument("--monthfirst", action="store_true",
                       help="timestamps are MM/DD/YYYY[ HH:MM[:SS]] (not ISO 8601)")
    order.add_argument("--timestamp-format", metavar="FMT",
                       help="strptime format of every timestamp, e.g. '%%d.%%m.%%Y %%H:%%M' "
                            "(UTC unless it has %%z)")
    parser.add_argument("--epoch-unit", choices=sorted(exact.EPOCH_UNITS),
                        help="unit of integer (epoch) timestamps in Parquet files")
    parser.add_argument("--encoding", default="utf8",
                        help="text encoding of CSV files (default utf8; a BOM is accepted)")
    parser.add_argument("--chunk-rows", type=int, default=CHUNK_ROWS, help=argparse.SUPPRESS)
    config.add_common_args(parser)
    args = parser.parse_args(argv)
    logs.setup(args.log_level)
    if args.list + bool(args.remove) + bool(args.files) != 1:
        parser.error("give FILE ..., --list or --remove NAME")
    if not args.list and not args.table:
        parser.error("--table is required")
    try:
        return _run(args)
    except Exception as exc:
        if args.log_level.upper() == "DEBUG":
            raise
        if isinstance(exc, (Unreadable, LookupError)):
            return _fail(EXIT_UNREADABLE, str(exc))
        if isinstance(exc, Refused):
            return _fail(EXIT_REFUSED, str(exc))
        if isinstance(exc, psycopg2.Error):
            return _fail(EXIT_DATABASE, f"database: {_cause(exc)}")
        return _fail(EXIT_DATABASE, f"{type(exc).__name__}: {_cause(exc)}")


def _run(args: argparse.Namespace) -> int:
    if args.list:
        with db.connect(args.database) as conn:
            frame = list_batches(conn, args.table)
        print(frame.to_string(index=False) if len(frame) else "no batches")
        return EXIT_OK
    for path in args.files:
        if not path.exists():
            raise Unreadable(f"{path}: no such file")
        if path.is_dir():
            raise Unreadable(f"{path}: is a directory, not a file")
        _kind(path)
    if args.batch_name:
        groups = [(args.batch_name, args.files)]
    else:
        names = [p.name for p in args.files]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise Unreadable(f"two files named {twice[0]}: give each load its own "
                             "--batch-name")
        groups = [(p.name, [p]) for p in args.files]
    warehouse.init(args.database)
    results = []
    with db.connect(args.database) as conn:
        if args.remove:
            removed = remove_batch(conn, args.table, args.remove)
        else:
            for name, paths in groups:
                results.append(load_files(conn, args.table, paths, batch_name=name,
                                          options=_options(args), encoding=args.encoding,
                                          max_reject_rate=args.max_reject_rate,
                                          chunk_rows=args.chunk_rows))
    db.settle(args.database, [f"{contract.RAW_SCHEMA}.{args.table}"])
    # Printed only now: these are the counts the commit made true.
    if args.remove:
        print(f"batch {args.remove}: removed, {removed} rows deleted from raw.{args.table}")
    for result in results:
        if result.skipped_as is not None:
            print(f"batch {result.batch_id}: skipped, same content as batch "
                  f"{result.skipped_as} already in raw.{result.table} (remove that batch "
                  "first to load it under this name)")
            continue
        print(f"batch {result.batch_id}: {result.rows_loaded} rows loaded into "
              f"raw.{result.table}, {result.rows_rejected} rejected, {result.rows_replaced} "
              "replaced")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
