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
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from python_jobs import config, contract, db, logs, warehouse

log = logging.getLogger(__name__)

CHUNK_ROWS = 250_000


@dataclass(frozen=True)
class LoadResult:
    table: str
    batch_id: str
    rows_loaded: int
    rows_rejected: int


def clear_batch(conn: db.Connection, table: contract.Table, batch_id: str) -> None:
    """Remove what an earlier run of this batch wrote (truncate when it owns the table)."""
    qualified = f"{contract.RAW_SCHEMA}.{table.name}"
    others = db.read_sql(
        conn,
        f"select 1 from {contract.RAW_SCHEMA}.load_batches "
        "where table_name = %s and batch_id <> %s limit 1",
        (table.name, batch_id),
    )
    if others.empty:
        db.execute(conn, f"truncate {qualified}")
    else:
        db.execute(conn, f"delete from {qualified} where _batch_id = %s", (batch_id,))
    db.execute(conn, f"delete from {contract.RAW_SCHEMA}.load_rejects "
               "where table_name = %s and batch_id = %s", (table.name, batch_id))
    db.execute(conn, f"delete from {contract.RAW_SCHEMA}.load_batches "
               "where table_name = %s and batch_id = %s", (table.name, batch_id))


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
         batch_id: str, source: str) -> LoadResult:
    """Validate and COPY chunks into raw.<table_name> as one replaceable batch."""
    table = contract.TABLES[table_name]
    clear_batch(conn, table, batch_id)
    now = datetime.now(UTC).replace(tzinfo=None)
    loaded = rejected = seen = 0
    for chunk in chunks:
        chunk = chunk.reset_index(drop=True)
        good, bad = contract.validate(table, chunk)
        good = good.assign(_batch_id=batch_id, _loaded_at=now)
        loaded += db.copy_frame(conn, f"{contract.RAW_SCHEMA}.{table.name}", good)
        if not bad.empty:
            rejected += db.copy_frame(conn, f"{contract.RAW_SCHEMA}.load_rejects", reject_frame(
                chunk, bad, table=table.name, batch_id=batch_id, source=source,
                first_row=seen, now=now))
        seen += len(chunk)
    db.copy_frame(conn, f"{contract.RAW_SCHEMA}.load_batches", pd.DataFrame([{
        "batch_id": batch_id, "table_name": table.name, "source": source,
        "rows_loaded": loaded, "rows_rejected": rejected, "loaded_at": now}]))
    if rejected:
        log.warning("%s: %d rows rejected into raw.load_rejects (batch %s)",
                    table.name, rejected, batch_id)
    return LoadResult(table.name, batch_id, loaded, rejected)


def file_batch_id(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return f"file:{path.name}:{digest.hexdigest()[:16]}"


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
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--table", required=True, choices=sorted(contract.TABLES))
    parser.add_argument("--batch-id", help="name of the batch (default: from file content)")
    config.add_common_args(parser)
    args = parser.parse_args(argv)
    logs.setup(args.log_level)
    warehouse.init(args.database)
    with db.connect(args.database) as conn:
        for path in args.files:
            if not path.exists():
                raise SystemExit(f"{path}: no such file")
            result = load(conn, args.table, read_file(path),
                          batch_id=args.batch_id or file_batch_id(path), source=str(path))
            print(f"{path}: {result.rows_loaded} rows loaded into raw.{result.table}, "
                  f"{result.rows_rejected} rejected (batch {result.batch_id})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
