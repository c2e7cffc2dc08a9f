"""Hold days of raw listening events back and restore them, recording both in the batch
registry (raw.load_changes), so incremental models see the change like any other load.

The benchmark's incremental and backfill stages and the tests that load data in another
order use these instead of moving rows themselves: a change to raw rows that the registry
does not record is invisible to the change-driven incremental models (docs/incremental.md).
Held rows wait in raw._held_back_events; holding back twice before a restore adds to them.
"""

from __future__ import annotations

from datetime import date, datetime

from python_jobs import contract, db

EVENTS = f"{contract.RAW_SCHEMA}.listening_events"
HELD = f"{contract.RAW_SCHEMA}._held_back_events"
CHANGES = f"{contract.RAW_SCHEMA}.load_changes"
BATCH = "held_back_events"


def newest_full_day(database: str) -> date:
    """The newest day, up to now, whose events number at least half the median day's (the
    newest day of a data set may be cut short). Rows dated in the future do not count."""
    with db.connect(database) as conn:
        frame = db.read_sql(conn, f"""
            with days as (
                select cast(started_at as date) as day, count(*) as events
                from {EVENTS} where started_at < now() group by 1
            )
            select max(day) as day from days where events >= 0.5 * (
                select percentile_cont(0.5) within group (order by events) from days)""")
    day = frame.iloc[0]["day"]
    if day is None or day != day:  # None or NaT: no events
        raise ValueError(f"{database}: raw.listening_events has no events before now")
    return day


def _count(conn: db.Connection, table: str) -> int:
    return int(db.read_sql(conn, f"select count(*) as n from {table}").iloc[0]["n"])


def _record(conn: db.Connection, action: str, moved: str, before: int, after: int) -> None:
    """One registry row for the rows of table `moved` (their day range) leaving or entering
    raw.listening_events."""
    db.execute(conn, f"""
        insert into {CHANGES}
            (table_name, batch_name, action, min_day, max_day, rows_before, rows_after)
        select 'listening_events', %s, %s,
               min(cast(started_at as date)), max(cast(started_at as date)), %s, %s
        from {moved}""", (BATCH, action, before, after))


def hold_back(database: str, first_day: date, last_day: date, *,
              since: datetime | None = None) -> int:
    """Move the events started on first_day..last_day (inclusive; with `since`, only those
    started at or after it) aside, in one transaction with a 'remove' row in
    raw.load_changes; returns the number of rows moved."""
    where = ("cast(started_at as date) between %(first)s and %(last)s"
             " and started_at >= coalesce(%(since)s, started_at)")
    params = {"first": first_day, "last": last_day, "since": since}
    with db.connect(database) as conn:
        db.execute(conn, f"create table if not exists {HELD} (like {EVENTS})")
        db.execute(conn, "create temporary table moving on commit drop as "
                         f"select * from {EVENTS} where {where}", params)
        moved = _count(conn, "moving")
        if moved:
            before = _count(conn, EVENTS)
            db.execute(conn, f"delete from {EVENTS} where {where}", params)
            db.execute(conn, f"insert into {HELD} select * from moving")
            _record(conn, "remove", "moving", before, before - moved)
    if moved:
        db.settle(database, [EVENTS])  # like any load (python_jobs.load)
    return moved


def restore(database: str) -> int:
    """Put every held-back event back, in one transaction with a 'load' row in
    raw.load_changes; returns the number of rows restored (0: nothing was held back)."""
    with db.connect(database) as conn:
        exists = db.read_sql(conn, "select to_regclass(%s) is not null as held", (HELD,))
        if not exists.iloc[0]["held"]:
            return 0
        restored = _count(conn, HELD)
        if restored:
            before = _count(conn, EVENTS)
            db.execute(conn, f"insert into {EVENTS} select * from {HELD}")
            _record(conn, "load", HELD, before, before + restored)
        db.execute(conn, f"drop table {HELD}")
    if restored:
        db.settle(database, [EVENTS])
    return restored
