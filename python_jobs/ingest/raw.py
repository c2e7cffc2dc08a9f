"""Format `raw`: listening events already in the raw contract's shape (CSV or Parquet)."""

from __future__ import annotations

from pathlib import Path

from python_jobs import db, load
from python_jobs.ingest import progress


def load_file(conn: db.Connection, path: Path, *, chunk_rows: int = load.CHUNK_ROWS) -> list[str]:
    chunks = progress(load.read_file(path, chunk_rows=chunk_rows), path.name)
    result = load.load(conn, "listening_events", chunks,
                       batch_id=load.file_batch_id(path), source=str(path))
    return [f"raw.listening_events: {result.rows_loaded} loaded, {result.rows_rejected} "
            f"rejected (batch {result.batch_id})"]
