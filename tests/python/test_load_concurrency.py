"""Loaders as real processes: started together they end as if run one after the other, and
one killed mid-COPY leaves raw and the batch registry exactly as they were."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from python_jobs import config, contract, db, load

TABLE = "listening_events"


def _events(path: Path, n: int, prefix: str) -> Path:
    """n distinct events over 3 days, as CSV or Parquet (by suffix), written with Arrow."""
    i = np.arange(n)
    table = pa.table({
        "event_id": pa.array(np.char.add(prefix, i.astype(str))),
        "user_id": pa.array(i % 1000, pa.int64()),
        "track_id": pa.array(np.char.add("t", (i % 500).astype(str))),
        "started_at": pa.array(1_767_225_600_000_000 + i * (259_200_000_000 // n),
                               pa.timestamp("us")),
        "ms_played": pa.array(i % 300_000, pa.int64()),
    })
    if path.suffix == ".parquet":
        pq.write_table(table, path)
    else:
        pacsv.write_csv(table, path)
    return path


def _loader(path: Path, database: str, *extra: str) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(config.ROOT))
    return subprocess.Popen(
        [sys.executable, "-m", "python_jobs.load", str(path), "--table", TABLE,
         "--database", database, *extra],
        cwd=config.ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _state(database: str) -> dict:
    with db.connect(database) as conn:
        rows = db.read_sql(conn, f"select _batch_id, count(*) as n, count(distinct event_id) "
                                 f"as ids from raw.{TABLE} group by 1 order by 1")
        batches = db.read_sql(conn, "select table_name, batch_name, content_hash, rows_loaded, "
                                    "rows_rejected, min_day, max_day from raw.load_batches "
                                    "order by 1, 2")
        changes = db.read_sql(conn, "select batch_name, action, rows_before, rows_after "
                                    "from raw.load_changes order by change_id")
    return {"rows": rows.values.tolist(), "batches": batches.values.tolist(),
            "changes": changes.values.tolist()}


def _together(*procs: subprocess.Popen) -> None:
    for proc in procs:
        _out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        assert "Traceback" not in err


def test_loaders_started_together_end_as_if_one_after_the_other(tmp_path, fresh_database):
    a = _events(tmp_path / "a.csv", 2_000, "a")
    b = _events(tmp_path / "b.csv", 3_000, "b")

    # First loads into an empty table, different files: neither wipes the other's rows.
    first = fresh_database("load_conc_first")
    _together(_loader(a, first), _loader(b, first))
    state = _state(first)
    assert state["rows"] == [["a.csv", 2_000, 2_000], ["b.csv", 3_000, 3_000]]
    assert sorted(state["changes"]) == [["a.csv", "load", 0, 2_000],
                                        ["b.csv", "load", 0, 3_000]]

    # The same file twice at once: one load, then one replace; rows not doubled.
    _together(_loader(a, first), _loader(a, first))
    state = _state(first)
    assert state["rows"] == [["a.csv", 2_000, 2_000], ["b.csv", 3_000, 3_000]]
    assert state["changes"][2:] == [["a.csv", "replace", 2_000, 2_000]] * 2

    # Sequential runs give the same registry as the concurrent ones.
    serial = fresh_database("load_conc_serial")
    for path in (a, b, a, a):
        assert load.main([str(path), "--table", TABLE, "--database", serial]) == 0
    expected = _state(serial)
    assert [r[:2] + r[3:] for r in expected["batches"]] == [
        r[:2] + r[3:] for r in state["batches"]]
    assert expected["rows"] == state["rows"]


def test_a_load_waits_for_the_table_lock(tmp_path, fresh_database):
    """Proof the loads are serialised, not lucky: a held lock makes a loader wait."""
    database = fresh_database("load_conc_lock")
    path = _events(tmp_path / "w.csv", 100, "w")
    with db.connect(database) as conn, db.connect(database) as watch:
        load.lock_table(conn, TABLE)
        proc = _loader(path, database)
        waited = False
        for _ in range(600):
            waiting = db.read_sql(watch, "select count(*) as n from pg_stat_activity "
                                         "where datname = %s and wait_event = 'advisory'",
                                  (database,))
            watch.commit()  # a new statistics snapshot each time
            if int(waiting["n"].iloc[0]):
                waited = True
                break
            time.sleep(0.05)
        assert waited and proc.poll() is None
    _together(proc)  # the lock went with the transaction: the loader then finishes
    assert _state(database)["rows"] == [["w.csv", 100, 100]]


def test_a_loader_killed_mid_copy_leaves_everything_as_it_was(tmp_path, fresh_database):
    database = fresh_database("load_kill")
    small = _events(tmp_path / "small.csv", 1_000, "s")
    assert load.main([str(small), "--table", TABLE, "--database", database]) == 0
    # Parquet: no text to parse, so the time goes to COPY, where the kill lands.
    big = _events(tmp_path / "big.parquet", 2_000_000, "k")
    before = _state(database)

    proc = _loader(big, database)
    copying = False
    with db.connect(database) as conn:
        for _ in range(1200):
            progress = db.read_sql(
                conn, "select coalesce(max(tuples_processed), 0) as n from "
                      "pg_stat_progress_copy p join pg_database d on d.oid = p.datid "
                      "where d.datname = %s and p.relid = %s::regclass",
                (database, f"{contract.RAW_SCHEMA}.{TABLE}"))
            conn.commit()
            if int(progress["n"].iloc[0]) > 0:
                copying = True
                break
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert copying and proc.returncode == -signal.SIGKILL
    assert _state(database) == before

    rerun = _loader(big, database)
    _together(rerun)
    after = _state(database)
    assert after["rows"] == [["big.parquet", 2_000_000, 2_000_000], ["small.csv", 1_000, 1_000]]
    assert after["changes"] == [*before["changes"], ["big.parquet", "load", 0, 2_000_000]]
