"""Write one micro-batch of received events into raw, as the file loader writes a batch.

One transaction under the loader's per-table lock (load.lock_table): the new events
(COPY into raw.listening_events), the rejects (raw.load_rejects, with reasons) and the
batch registry (load.record_batch: a raw.load_batches row and a raw.load_changes row with
the day range), so the change-driven incremental models pick the micro-batch up exactly as
they pick up a file.

Exactly once: an event_id the collector already stored is not stored again. The collector's
rows are those whose batch name starts with `collector:`, and a partial unique index on
their event_id (made by ensure_schema) both finds them quickly and makes a duplicate
impossible even if two collectors raced. Rows that file loads wrote are not consulted:
raw.listening_events may hold re-deliveries from files by design, which staging removes.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import count

import numpy as np
import pandas as pd

from python_jobs import contract, db, exact, load, warehouse
from python_jobs.collect import events as ev

BATCH_PREFIX = "collector:"
# The index's predicate pattern, exactly as PostgreSQL keeps it: `%%` (two wildcards match
# what one does) since the index was first made by a statement without parameters, which
# psycopg2 sends as it is. The planner uses a partial index only for a query whose predicate
# is written the same way (with `collector:%` every look-up was a sequential scan of the
# whole table), so the index and the look-up both take this pattern as a parameter.
OWN_ROWS = BATCH_PREFIX + "%%"
INDEX = "listening_events_collector_event_id"
RAW = f"{contract.RAW_SCHEMA}.{ev.TABLE.name}"
STORED, DUPLICATE, REJECTED = "stored", "duplicate", "rejected"
_sequence = count(1)


@dataclass
class Request:
    """The events of one POST, and what became of each (filled in by write())."""

    request_id: str
    events: list[ev.Event]
    status: list[str] = field(default_factory=list)
    reasons: list[str | None] = field(default_factory=list)


@dataclass(frozen=True)
class Written:
    batch_name: str
    stored: int
    duplicates: int
    rejected: int


def ensure_schema(database: str | None) -> None:
    """raw's tables (warehouse.init) and the collector's unique index on its own rows."""
    warehouse.init(database)
    with db.connect(database) as conn:
        load.lock_table(conn, ev.TABLE.name)
        db.execute(conn, f"create unique index if not exists {INDEX} on {RAW} (event_id) "
                         "where _batch_id like %s", (OWN_ROWS,))


def batch_name(now: datetime) -> str:
    return f"{BATCH_PREFIX}{now:%Y-%m-%dT%H:%M:%S.%fZ}:{os.getpid()}:{next(_sequence)}"


def _already_stored(conn: db.Connection, ids: list[str]) -> set[str]:
    if not ids:
        return set()
    rows = db.read_sql(conn, f"select event_id from {RAW} where _batch_id like %s "
                             "and event_id = any(%s)", (OWN_ROWS, ids))
    return set(rows["event_id"])


@dataclass(frozen=True)
class Checked:
    """Requests whose events went through the contract's check (store.check), ready to be
    written: (request, index, event) of every event, the positions of those shaped like an
    event, their typed rows and their reasons ('' = good)."""

    requests: Sequence[Request]
    flat: list[tuple[Request, int, ev.Event]]
    shaped: list[int]
    typed: pd.DataFrame
    reasons: np.ndarray


def check(requests: Sequence[Request], options: exact.Options = exact.DEFAULTS) -> Checked:
    """The contract's check of the requests' events. No database: the server runs it for
    the next micro-batch while the previous one is being written."""
    flat = [(r, i, e) for r in requests for i, e in enumerate(r.events)]
    shaped = [k for k, (_, _, e) in enumerate(flat) if e.problem is None]
    typed, reasons = ev.check([flat[k][2].fields for k in shaped], options)
    return Checked(requests, flat, shaped, typed, reasons)


def write(conn: db.Connection, requests: Sequence[Request] | Checked, *, source: str,
          options: exact.Options = exact.DEFAULTS) -> Written:
    """Store the requests' good events once each, reject the others with reasons, register
    the micro-batch; fills each request's status and reasons. The caller commits."""
    checked = requests if isinstance(requests, Checked) else check(requests, options)
    flat, shaped, typed, reasons = checked.flat, checked.shaped, checked.typed, checked.reasons
    for r in checked.requests:
        r.status = [REJECTED] * len(r.events)
        r.reasons = [None] * len(r.events)
    good = reasons == ""
    now = datetime.now(UTC).replace(tzinfo=None)
    name = batch_name(now)
    load.lock_table(conn, ev.TABLE.name)  # before reading what is stored: flushes serialise
    ids = typed["event_id"].astype(object).to_numpy()
    good_ids = ids[good]
    first = ~pd.Series(good_ids).duplicated().to_numpy()
    stored_before = _already_stored(conn, list(dict.fromkeys(good_ids)))
    new = first & ~np.isin(good_ids, list(stored_before)) if stored_before else first
    keep = np.flatnonzero(good)[new]
    rows = typed.iloc[keep].assign(_batch_id=name, _loaded_at=now)
    stored = db.copy_frame(conn, RAW, rows)
    for k, position in enumerate(shaped):
        r, i, _ = flat[position]
        if good[k]:
            r.status[i], r.reasons[i] = DUPLICATE, None
        else:
            r.reasons[i] = reasons[k]
    for k in keep:
        r, i, _ = flat[shaped[k]]
        r.status[i] = STORED
    for r, i, e in flat:
        if e.problem is not None:
            r.reasons[i] = e.problem
    rejected = [(r, i, e) for r, i, e in flat if r.status[i] == REJECTED]
    if rejected:
        db.copy_frame(conn, f"{contract.RAW_SCHEMA}.load_rejects", pd.DataFrame({
            "batch_id": name, "table_name": ev.TABLE.name,
            "source": [f"{source} request {r.request_id}" for r, _, _ in rejected],
            "row_number": np.array([i + 1 for _, i, _ in rejected], dtype=np.int64),
            "reason": [r.reasons[i] for r, i, _ in rejected],
            "record": [ev.record(e) for _, _, e in rejected], "rejected_at": now}))
    if stored or rejected:
        days = rows[ev.TABLE.partition_column]
        digest = hashlib.sha256(json.dumps(list(rows["event_id"])).encode()).hexdigest()
        load.record_batch(conn, ev.TABLE.name, name, content_hash=digest, source=source,
                          rows_loaded=stored, rows_rejected=len(rejected),
                          min_day=days.min().date() if stored else None,
                          max_day=days.max().date() if stored else None,
                          previous=None, rows_before=0)
    return Written(name, stored, len(good_ids) - len(keep), len(rejected))
