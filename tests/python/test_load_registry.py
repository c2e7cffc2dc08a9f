"""The batch registry (raw.load_batches, raw.load_changes) incremental models read."""

from __future__ import annotations

from pathlib import Path

from python_jobs import db, load, warehouse

HEADER = "event_id,user_id,track_id,started_at,ms_played\n"


def _write(path: Path, rows: list[str]) -> Path:
    path.write_text(HEADER + "".join(r + "\n" for r in rows))
    return path


def _registry(database: str):
    with db.connect(database) as conn:
        batches = db.read_sql(conn, "select table_name, batch_name, rows_loaded, rows_rejected, "
                                    "min_day::text, max_day::text, length(content_hash) as h "
                                    "from raw.load_batches order by 1, 2")
        changes = db.read_sql(conn, "select batch_name, action, min_day::text, max_day::text, "
                                    "rows_before, rows_after from raw.load_changes "
                                    "order by change_id")
    return (batches.astype(object).where(batches.notna(), None),
            changes.astype(object).where(changes.notna(), None))


def test_registry_and_change_log_follow_load_replace_remove(tmp_path, fresh_database):
    database = fresh_database("load_registry")
    args = ["--table", "listening_events", "--database", database]
    a = _write(tmp_path / "a.csv", ["a1,1,t1,2026-01-03 10:00:00,1000",
                                    "a2,1,t1,2026-01-05 23:59:59,1000"])
    assert load.main([str(a), *args]) == 0
    a.write_text(HEADER + "a1,1,t1,2026-01-02 10:00:00,1000\n")  # a corrected file
    assert load.main([str(a), *args]) == 0
    batches, changes = _registry(database)
    assert batches.to_dict("records") == [{
        "table_name": "listening_events", "batch_name": "a.csv", "rows_loaded": 1,
        "rows_rejected": 0, "min_day": "2026-01-02", "max_day": "2026-01-02", "h": 64}]
    assert changes.values.tolist() == [
        ["a.csv", "load", "2026-01-03", "2026-01-05", 0, 2],
        ["a.csv", "replace", "2026-01-02", "2026-01-05", 2, 1]]
    assert load.main(["--remove", "a.csv", *args]) == 0
    batches, changes = _registry(database)
    assert batches.empty
    assert changes.values.tolist()[-1] == ["a.csv", "remove", "2026-01-02", "2026-01-02", 1, 0]


def test_an_old_database_is_upgraded_in_place(fresh_database):
    database = fresh_database("load_upgrade")
    with db.connect(database) as conn:
        db.execute(conn, "drop table raw.load_batches; drop table raw.load_changes")
        db.execute(conn, """create table raw.load_batches (batch_id text primary key,
            table_name text not null, source text not null, rows_loaded bigint not null,
            rows_rejected bigint not null, loaded_at timestamp not null)""")
        db.execute(conn, "insert into raw.load_batches values "
                         "('old', 'listening_events', 'x.csv', 2, 0, '2026-01-01'), "
                         "('gen:users', 'users', 'gen', 1, 0, '2026-01-01')")
        db.execute(conn, "insert into raw.listening_events (event_id, user_id, track_id, "
                         "started_at, ms_played, _batch_id, _loaded_at) values "
                         "('e1', 1, 't', '2026-02-01 10:00', 1, 'old', now()), "
                         "('e2', 1, 't', '2026-02-03 10:00', 1, 'old', now())")
    for _ in range(2):  # idempotent
        warehouse.init(database)
    batches, changes = _registry(database)
    assert batches[["batch_name", "min_day", "max_day"]].values.tolist() == [
        ["old", "2026-02-01", "2026-02-03"], ["gen:users", None, None]]
    assert changes[["batch_name", "action", "rows_after"]].values.tolist() == [
        ["old", "load", 2], ["gen:users", "load", 1]]


def _rows(database: str, table: str = "listening_events") -> list:
    with db.connect(database) as conn:
        return db.read_sql(conn, f"select _batch_id, count(*) as n from raw.{table} "
                                 "group by 1 order by 1").values.tolist()


def test_batches_the_user_controls(tmp_path, fresh_database, capsys):
    database = fresh_database("load_batch_rules")
    args = ["--table", "listening_events", "--database", database]
    a = _write(tmp_path / "a.csv", ["a1,1,t1,2026-01-03 10:00:00,1000"])
    copy = tmp_path / "copy.csv"
    copy.write_bytes(a.read_bytes())
    assert load.main([str(a), *args]) == 0
    capsys.readouterr()
    # identical content under another name: skipped, said so
    assert load.main([str(copy), *args]) == 0
    assert "skipped, same content as batch a.csv" in capsys.readouterr().out
    assert _rows(database) == [["a.csv", 1]]
    # a failed replace (too many rejects) leaves the old batch as it was
    bad = _write(tmp_path / "bad.csv", ["x,1,t1,never,1000", "w,1,t1,soon,1000",
                                        "y,1,t1,2026-01-01,1"])
    assert load.main([str(bad), "--batch-name", "a.csv", *args]) == 1
    assert _rows(database) == [["a.csv", 1]]
    # several files under one name are one batch; two files of one name need a batch name
    b = _write(tmp_path / "b.csv", ["b1,1,t1,2026-01-04 10:00:00,1000", "b2,1,t1,no,1"])
    c = _write(tmp_path / "c.csv", ["c1,1,t1,2026-01-05 10:00:00,1000", "c2,x,t1,no,1"])
    assert load.main([str(b), str(c), "--batch-name", "bc", *args]) == 0
    assert _rows(database) == [["a.csv", 1], ["bc", 2]]
    with db.connect(database) as conn:  # rejects are numbered within their own file
        rejects = db.read_sql(conn, "select source, row_number from raw.load_rejects "
                                    "where batch_id = 'bc' order by 1")
    assert rejects.values.tolist() == [[str(b), 2], [str(c), 2]]
    (tmp_path / "d").mkdir()
    other_a = _write(tmp_path / "d" / "a.csv", ["z1,1,t1,2026-01-05 10:00:00,1000"])
    assert load.main([str(a), str(other_a), *args]) == 2
    assert "two files named a.csv" in capsys.readouterr().err
    # one file into two tables: one batch of the same name in each
    both = tmp_path / "artists.csv"
    both.write_text("artist_id,artist_name,genre,genre_rank\nr1,Band,rock,1\n")
    for table in ("artists", "artist_genres"):
        assert load.main([str(both), "--table", table, "--database", database]) == 0
    assert _rows(database, "artists") == [["artists.csv", 1]]
    assert _rows(database, "artist_genres") == [["artists.csv", 1]]
    capsys.readouterr()
    assert load.main(["--list", "--database", database]) == 0
    listing = capsys.readouterr().out
    for name in ("a.csv", "bc", "artists.csv"):
        assert name in listing
    assert load.main(["--remove", "nope", *args]) == 2
    assert "no batch 'nope'" in capsys.readouterr().err
