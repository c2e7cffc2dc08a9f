"""Format `raw`: listening events already in the raw contract's shape (CSV or Parquet)."""

from __future__ import annotations

from pathlib import Path

from python_jobs import db, load


def load_file(conn: db.Connection, path: Path, *, chunk_rows: int = load.CHUNK_ROWS) -> list[str]:
    # What `python -m python_jobs.load FILE --table listening_events` does (batch = file name).
    result = load.load_files(conn, "listening_events", [path], batch_name=path.name,
                             chunk_rows=chunk_rows)
    if result.skipped_as is not None:
        return [f"raw.listening_events: skipped, same content as batch {result.skipped_as}"]
    return [f"raw.listening_events: {result.rows_loaded} loaded, {result.rows_rejected} "
            f"rejected, {result.rows_replaced} replaced (batch {result.batch_id})"]
