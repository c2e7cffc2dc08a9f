"""Upsert into raw tables: validate, quarantine, COPY into a temp table, MERGE on the key.

load.load replaces a whole batch, which suits event files. Catalogue rows (tracks, artists,
users, playlists) arrive again and again from different sources and runs, so they are merged
on the contract key instead: a rerun inserts nothing new and updates only rows that changed.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import pandas as pd
from psycopg2 import sql

from python_jobs import contract, db, load

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class UpsertResult:
    table: str
    batch_id: str
    rows_inserted: int
    rows_updated: int
    rows_rejected: int


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def batch_name(prefix: str, table_name: str) -> str:
    return f"{prefix}:{table_name}"


def start_batch(conn: db.Connection, table_name: str, batch_id: str) -> None:
    """Take the table's load lock and forget the rejects of an earlier run of this batch."""
    load.lock_table(conn, table_name)
    db.execute(conn, f"delete from {contract.RAW_SCHEMA}.load_rejects "
               "where table_name = %s and batch_id = %s", (table_name, batch_id))


def add_rejects(conn: db.Connection, table_name: str, records: list[dict], reasons: list[str],
                *, batch_id: str, source: str, first_row: int = 0) -> int:
    """Quarantine rows the contract cannot catch (unknown ids, dangling references)."""
    if not records:
        return 0
    frame = pd.DataFrame({
        "batch_id": batch_id,
        "table_name": table_name,
        "source": source,
        "row_number": range(first_row + 1, first_row + len(records) + 1),
        "reason": reasons,
        "record": [json.dumps(r, ensure_ascii=False, default=str) for r in records],
        "rejected_at": _now(),
    })
    return db.copy_frame(conn, f"{contract.RAW_SCHEMA}.load_rejects", frame)


def record_batch(conn: db.Connection, table_name: str, batch_id: str, source: str,
                 rows_loaded: int, rows_rejected: int, content_hash: str = "") -> None:
    previous = load.registered(conn, table_name, batch_id)
    load.record_batch(conn, table_name, batch_id, content_hash=content_hash, source=source,
                      rows_loaded=rows_loaded, rows_rejected=rows_rejected, min_day=None,
                      max_day=None, previous=previous,
                      rows_before=0 if previous is None else int(previous["rows_loaded"]))


def merge_frame(conn: db.Connection, table: contract.Table, good: pd.DataFrame, *,
                batch_id: str, update_existing: bool) -> tuple[int, int]:
    """MERGE typed, valid rows into raw.<table>; returns (inserted, updated)."""
    if good.empty:
        return 0, 0
    # MERGE refuses to touch a target row twice: the last delivery of a key wins.
    good = good.drop_duplicates(subset=list(table.key), keep="last")
    good = good.assign(_batch_id=batch_id, _loaded_at=_now())
    temp = f"upsert_{table.name}"
    target = sql.SQL("{}.{}").format(sql.Identifier(contract.RAW_SCHEMA),
                                     sql.Identifier(table.name))
    db.execute(conn, sql.SQL("drop table if exists pg_temp.{}").format(sql.Identifier(temp)))
    db.execute(conn, sql.SQL("create temp table {} (like {})").format(
        sql.Identifier(temp), target))
    db.copy_frame(conn, f"pg_temp.{temp}", good)

    cols = table.column_names
    on = sql.SQL(" and ").join(
        sql.SQL("t.{0} = s.{0}").format(sql.Identifier(k)) for k in table.key)
    values = [c for c in cols if c not in table.key]
    t_vals = sql.SQL(", ").join(sql.SQL("t.{}").format(sql.Identifier(c)) for c in values)
    s_vals = sql.SQL(", ").join(sql.SQL("s.{}").format(sql.Identifier(c)) for c in values)
    all_cols = [*cols, "_batch_id", "_loaded_at"]
    update = sql.SQL("")
    if update_existing and values:
        # _batch_id stays the inserter's, so load.py's batch replacement never duplicates.
        sets = sql.SQL(", ").join(
            sql.SQL("{0} = s.{0}").format(sql.Identifier(c)) for c in [*values, "_loaded_at"])
        update = sql.SQL(
            "when matched and (row({t}) is distinct from row({s})) then update set {sets} "
        ).format(t=t_vals, s=s_vals, sets=sets)
    statement = sql.SQL(
        "with merged as (merge into {target} as t using pg_temp.{temp} as s on {on} "
        "{update}when not matched then insert ({cols}) values ({svals}) "
        "returning merge_action() as action) "
        "select action, count(*) as n from merged group by action"
    ).format(
        target=target, temp=sql.Identifier(temp), on=on, update=update,
        cols=sql.SQL(", ").join(sql.Identifier(c) for c in all_cols),
        svals=sql.SQL(", ").join(sql.SQL("s.{}").format(sql.Identifier(c)) for c in all_cols),
    )
    counts = db.read_sql(conn, statement.as_string(conn))
    db.execute(conn, sql.SQL("drop table pg_temp.{}").format(sql.Identifier(temp)))
    by_action = dict(zip(counts["action"], counts["n"], strict=True))
    return int(by_action.get("INSERT", 0)), int(by_action.get("UPDATE", 0))


def upsert(conn: db.Connection, table_name: str,
           chunks: pd.DataFrame | Iterable[pd.DataFrame], *, batch_id: str, source: str,
           update_existing: bool = True,
           extra_rejects: Sequence[tuple[dict, str]] = ()) -> UpsertResult:
    """Validate frames and merge them into raw.<table_name> as one rerunnable batch.

    update_existing=False only adds missing keys: placeholder rows (an artist known only by
    name) must never overwrite richer rows another source already wrote.
    extra_rejects are (record, reason) pairs the contract cannot see (unknown ids ...).
    """
    table = contract.TABLES[table_name]
    start_batch(conn, table.name, batch_id)
    if isinstance(chunks, pd.DataFrame):
        chunks = [chunks]
    inserted = updated = good_rows = rejected = seen = 0
    now = _now()
    digest = hashlib.sha256()
    for chunk in chunks:
        chunk = chunk.reset_index(drop=True)
        digest.update(load.frame_digest(chunk))
        good, bad = contract.validate(table, chunk)
        if not bad.empty:
            rejected += db.copy_frame(conn, f"{contract.RAW_SCHEMA}.load_rejects",
                                      load.reject_frame(chunk, bad, table=table.name,
                                                         batch_id=batch_id, source=source,
                                                         first_row=seen, now=now))
        ins, upd = merge_frame(conn, table, good, batch_id=batch_id,
                               update_existing=update_existing)
        inserted, updated, good_rows = inserted + ins, updated + upd, good_rows + len(good)
        seen += len(chunk)
    rejected += add_rejects(conn, table.name, [r for r, _ in extra_rejects],
                            [why for _, why in extra_rejects], batch_id=batch_id,
                            source=source, first_row=seen)
    if rejected:
        log.warning("%s: %d rows rejected into raw.load_rejects (batch %s)",
                    table.name, rejected, batch_id)
    record_batch(conn, table.name, batch_id, source, good_rows, rejected,
                 content_hash=digest.hexdigest())
    return UpsertResult(table.name, batch_id, inserted, updated, rejected)


def add_batch_rejects(conn: db.Connection, table_name: str, pairs: Sequence[tuple[dict, str]],
                      *, batch_id: str, source: str) -> int:
    """Quarantine more rows of a batch load.load already wrote, and count them in its log."""
    added = add_rejects(conn, table_name, [r for r, _ in pairs], [why for _, why in pairs],
                        batch_id=batch_id, source=source)
    if added:
        db.execute(conn, f"update {contract.RAW_SCHEMA}.load_batches "
                   "set rows_rejected = rows_rejected + %s "
                   "where table_name = %s and batch_name = %s", (added, table_name, batch_id))
        log.warning("%s: %d more rows rejected into raw.load_rejects (batch %s)",
                    table_name, added, batch_id)
    return added
