"""The loader: contract validation, quarantine with reasons, idempotent reruns."""

from __future__ import annotations

import json
import threading
from pathlib import Path

from python_jobs import db, load

HEADER = ("event_id,user_id,track_id,session_hint,started_at,ms_played,context_type,"
          "context_id,position_in_context,reason_start,reason_end,is_shuffle,device\n")


def _write(path: Path, rows: list[str]) -> Path:
    path.write_text(HEADER + "".join(r + "\n" for r in rows))
    return path


def test_bad_rows_are_quarantined_with_reasons_and_reruns_replace(tmp_path, fresh_database):
    database = fresh_database("load")
    path = _write(tmp_path / "events.csv", [
        "e1,1,t1,,2026-01-01T10:00:00Z,30000,playlist,p1,1,clickrow,trackdone,false,mobile",
        "e2,1,t2,,2026-01-01 10:03:00,abc,playlist,p1,2,trackdone,fwdbtn,true,mobile",
        "e3,,t2,,not a date,1000,podcast,,0,trackdone,fwdbtn,maybe,fridge",
        'e4,2,"t,3",,2026-01-01 10:03:00.5,-5,,,,,,,',
    ])
    for _ in range(2):
        assert load.main([str(path), "--table", "listening_events", "--database", database]) == 0

    with db.connect(database) as conn:
        events = db.read_sql(conn, "select event_id, ms_played, started_at "
                                   "from raw.listening_events order by event_id")
        rejects = db.read_sql(conn, "select row_number, reason, record from raw.load_rejects "
                                    "order by row_number")
        batches = db.read_sql(conn, "select rows_loaded, rows_rejected from raw.load_batches")

    assert events["event_id"].tolist() == ["e1", "e4"]
    # Contract checks types and vocabularies; impossible values (-5 ms) are staging's job.
    assert events["ms_played"].tolist() == [30000, -5]
    assert str(events["started_at"].iloc[0]) == "2026-01-01 10:00:00"
    assert rejects["row_number"].tolist() == [2, 3]
    assert rejects["reason"].iloc[0] == "ms_played: not a valid integer"
    for expected in ("user_id: required value missing", "started_at: not a valid timestamp",
                     "context_type: not one of", "position_in_context: below 1",
                     "is_shuffle: not a valid boolean", "device: not one of"):
        assert expected in rejects["reason"].iloc[1]
    assert json.loads(rejects["record"].iloc[0])["ms_played"] == "abc"
    assert batches.to_dict("records") == [{"rows_loaded": 2, "rows_rejected": 2}]


def test_a_load_leaves_its_table_vacuumed_and_analysed(tmp_path, fresh_database):
    """The first build reads settled rows (db.settle): hint bits, visibility map and
    statistics come from the load. A table another transaction holds is skipped, not
    waited for."""
    database = fresh_database("load_settle")
    path = _write(tmp_path / "events.csv", ["s1,1,t1,,2026-01-01 10:00:00,1000,,,,,,,"])
    stats_sql = ("select vacuum_count, analyze_count from pg_stat_user_tables "
                 "where relid = 'raw.listening_events'::regclass")
    assert load.main([str(path), "--table", "listening_events", "--database", database]) == 0
    with db.connect(database) as conn:
        assert db.read_sql(conn, stats_sql).to_dict("records") == [
            {"vacuum_count": 1, "analyze_count": 1}]

    with db.connect(database) as holder:
        db.execute(holder, "lock table raw.listening_events in share update exclusive mode")
        settling = threading.Thread(target=db.settle,
                                    args=(database, ["raw.listening_events"]))
        settling.start()
        settling.join(timeout=60)
        assert not settling.is_alive(), "settle waited for the table's lock"
    with db.connect(database) as conn:
        assert db.read_sql(conn, stats_sql)["vacuum_count"].tolist() == [1]


def test_two_files_are_two_batches(tmp_path, fresh_database):
    database = fresh_database("load_batches")
    a = _write(tmp_path / "a.csv", ["a1,1,t1,,2026-01-01 10:00:00,1000,,,,,,,"])
    b = _write(tmp_path / "b.csv", ["b1,1,t1,,2026-01-02 10:00:00,1000,,,,,,,"])
    load.main([str(a), str(b), "--table", "listening_events", "--database", database])
    load.main([str(a), "--table", "listening_events", "--database", database])
    with db.connect(database) as conn:
        ids = db.read_sql(conn, "select event_id from raw.listening_events order by 1")
    assert ids["event_id"].tolist() == ["a1", "b1"]
