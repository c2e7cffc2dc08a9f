"""Load data in the raw contract's shape into schema `raw`: validate, quarantine, COPY.

    python -m python_jobs.load FILE [FILE ...] --table listening_events

A load is a batch (by default named after the file's content hash). Reloading a batch first
removes what that batch wrote, all in one transaction, so reruns never duplicate rows and a
failed load leaves the previous state intact. Rows that break the contract go to
raw.load_rejects with the reason and the original record; good rows go in with COPY.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from python_jobs import config, contract, db, logs, warehouse

log = logging.getLogger(__name__)

CHUNK_ROWS = 250_000


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


def reject_frame(chunk: pd.DataFrame, rejects: pd.DataFrame, *, table: str, batch_id: str,
                 source: str, first_row: int, now: datetime) -> pd.DataFrame:
    records = chunk.loc[rejects["row_index"]].astype("string").fillna("")
    return pd.DataFrame({
        "batch_id": batch_id,
        "table_name": table,
        "source": source,
        "row_number": [first_row + chunk.index.get_loc(i) + 1 for i in rejects["row_index"]],
        "reason": rejects["reason"].to_numpy(),
        "record": [json.dumps(r, ensure_ascii=False) for r in records.to_dict("records")],
        "rejected_at": now,
    })


def load(conn: db.Connection, table_name: str, chunks: Iterable[pd.DataFrame], *,
         batch_id: str, source: str, content_hash: str | None = None,
         skip_same_content: bool = False) -> LoadResult:
    """Validate and COPY chunks into raw.<table_name> as batch `batch_id`, replacing what an
    earlier load of that batch wrote; the registry is written in the same transaction.

    content_hash: of the input (a file's sha256); by default a hash of the rows. With
    skip_same_content, content already loaded under another batch name is not loaded again.
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
    loaded = rejected = seen = 0
    day_min = day_max = None
    for chunk in chunks:
        chunk = chunk.reset_index(drop=True)
        if content_hash is None:
            digest.update(frame_digest(chunk))
        good, bad = contract.validate(table, chunk)
        good = good.assign(_batch_id=batch_id, _loaded_at=now)
        if table.partition_column and not good.empty:
            days = good[table.partition_column]
            lo, hi = days.min(), days.max()
            day_min = lo if day_min is None or lo < day_min else day_min
            day_max = hi if day_max is None or hi > day_max else day_max
        loaded += db.copy_frame(conn, f"{contract.RAW_SCHEMA}.{table.name}", good)
        if not bad.empty:
            rejected += db.copy_frame(conn, f"{contract.RAW_SCHEMA}.load_rejects", reject_frame(
                chunk, bad, table=table.name, batch_id=batch_id, source=source,
                first_row=seen, now=now))
        seen += len(chunk)
    record_batch(conn, table.name, batch_id, content_hash=content_hash or digest.hexdigest(),
                 source=source, rows_loaded=loaded, rows_rejected=rejected,
                 min_day=_day(day_min), max_day=_day(day_max), previous=previous,
                 rows_before=replaced)
    if rejected:
        log.warning("%s: %d rows rejected into raw.load_rejects (batch %s)",
                    table.name, rejected, batch_id)
    return LoadResult(table.name, batch_id, loaded, rejected, replaced)


def file_hash(path: Path) -> str:
    """sha256 hex of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_batch_id(path: Path) -> str:
    """A name from the file's name and content (ingest's batch prefixes)."""
    return f"file:{path.name}:{file_hash(path)[:16]}"


def read_file(path: Path, chunk_rows: int = CHUNK_ROWS) -> Iterator[pd.DataFrame]:
    """Stream a CSV or Parquet file in chunks, every value as text (validation types it)."""
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        for batch in pq.ParquetFile(path).iter_batches(batch_size=chunk_rows):
            yield batch.to_pandas()
    elif suffix in (".csv", ".gz"):
        yield from pd.read_csv(path, dtype="string", keep_default_na=False,
                               chunksize=chunk_rows)
    else:
        raise SystemExit(f"{path}: unsupported file type (use .csv, .csv.gz or .parquet)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m python_jobs.load",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="*", type=Path)
    parser.add_argument("--table", required=True, choices=sorted(contract.TABLES))
    parser.add_argument("--remove", metavar="NAME", help="remove batch NAME")
    parser.add_argument("--batch-id", help="name of the batch (default: from file content)")
    config.add_common_args(parser)
    args = parser.parse_args(argv)
    logs.setup(args.log_level)
    warehouse.init(args.database)
    if args.remove:
        with db.connect(args.database) as conn:
            removed = remove_batch(conn, args.table, args.remove)
        print(f"batch {args.remove}: {removed} rows removed from raw.{args.table}")
        return 0
    with db.connect(args.database) as conn:
        for path in args.files:
            if not path.exists():
                raise SystemExit(f"{path}: no such file")
            result = load(conn, args.table, read_file(path),
                          batch_id=args.batch_id or path.name, source=str(path),
                          content_hash=file_hash(path))
            print(f"{path}: {result.rows_loaded} rows loaded into raw.{result.table}, "
                  f"{result.rows_rejected} rejected (batch {result.batch_id})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
