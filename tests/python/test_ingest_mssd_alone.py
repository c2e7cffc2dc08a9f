"""MSSD logs as people hold them: no track features file, re-saved True/False and DD-MM-YY."""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd
import pytest

from python_jobs import db
from python_jobs.ingest import __main__ as ingest
from python_jobs.ingest import mssd

LOG_COLUMNS = ["session_id", "session_position", "session_length", "track_id_clean", "skip_1",
               "skip_2", "skip_3", "not_skipped", "context_switch", "no_pause_before_play",
               "short_pause_before_play", "long_pause_before_play",
               "hist_user_behavior_n_seekfwd", "hist_user_behavior_n_seekback",
               "hist_user_behavior_is_shuffle", "hour_of_day", "date", "premium",
               "context_type", "hist_user_behavior_reason_start",
               "hist_user_behavior_reason_end"]
# (skip_1, skip_2, skip_3, not_skipped) per label
FLAGS = {"skip_1": (1, 1, 1, 0), "skip_2": (0, 1, 1, 0), "skip_3": (0, 0, 1, 0),
         "not_skipped": (0, 0, 0, 1)}


def log_rows(sessions: list[tuple[str, str, list[tuple[str, str]]]], *, true: str = "True",
             false: str = "False") -> list[list[str]]:
    """Rows of an MSSD log: sessions of (session_id, date as written, [(track, label)])."""
    rows = []
    for sid, date, plays in sessions:
        for pos, (track, label) in enumerate(plays, start=1):
            flags = [true if f else false for f in FLAGS[label]]
            rows.append([sid, str(pos), str(len(plays)), track, *flags, "0",
                         "1" if pos > 1 else "0", "1" if pos == 3 else "0", "0", "0", "0",
                         false, "16", date, true, "editorial_playlist",
                         "trackdone" if pos > 1 else "appload",
                         "fwdbtn" if label.startswith("skip") else "trackdone"])
    return rows


def write_log(path: Path, rows: list[list[str]], newline: str = "\r\n") -> Path:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator=newline)
        writer.writerow(LOG_COLUMNS)
        writer.writerows(rows)
    return path


def events(database: str, sql: str) -> pd.DataFrame:
    with db.connect(database) as conn:
        return db.read_sql(conn, sql)


RESAVED = [  # day 15 > 12: the file is day-first, decided from all its dates
    ("s1", "15-07-18", [("t_a", "not_skipped"), ("t_b", "skip_1"), ("t_c", "skip_2"),
                        ("t_a", "skip_3")]),
    ("s2", "05-07-18", [("t_b", "not_skipped"), ("t_d", "skip_2")]),
]


def test_log_alone_loads_with_stub_tracks_and_source_skip_labels(fresh_database, tmp_path,
                                                                 capsys):
    database = fresh_database("ing_mssd_alone")
    log = write_log(tmp_path / "log_resaved.csv", log_rows(RESAVED))
    args = ["events", str(log), "--format", "mssd", "--database", database]
    assert ingest.main(args) == 0
    out = capsys.readouterr().out
    assert "date order: day-first (DD-MM-YY) (2 distinct dates; 15-07-18 can only be read " \
           "so)" in out
    assert "raw.listening_events: 6 loaded, 0 rejected" in out
    assert "raw.tracks: 4 of the log's tracks are stubs (4 new)" in out
    plays = events(database, "select e.event_id, e.started_at, e.ms_played, e.is_shuffle, "
                             "e.source_skipped, e.source_skip_label, u.tier "
                             "from raw.listening_events as e join raw.users as u "
                             "using (user_id) order by event_id")
    assert plays["event_id"].tolist() == [f"mssd:s1:{i}" for i in range(1, 5)] + [
        "mssd:s2:1", "mssd:s2:2"]
    # 05-07-18 in a day-first file is 5 July, never 7 May
    assert [str(d.date()) for d in plays["started_at"]] == ["2018-07-15"] * 4 + [
        "2018-07-05"] * 2
    assert plays["source_skip_label"].tolist() == ["not_skipped", "skip_1", "skip_2",
                                                   "skip_3", "not_skipped", "skip_2"]
    assert plays["source_skipped"].tolist() == [False, True, True, False, False, True]
    assert not plays["is_shuffle"].any() and (plays["tier"] == "premium").all()
    stub = mssd.STUB_DURATION_MS
    assert plays["ms_played"].tolist() == [stub, 5000, 20000, round(stub * 0.8), stub, 20000]
    tracks = events(database, "select track_id, artist_id, duration_ms, is_stub "
                              "from raw.tracks order by 1")
    assert tracks["track_id"].tolist() == ["t_a", "t_b", "t_c", "t_d"]
    assert tracks["is_stub"].all() and (tracks["duration_ms"] == stub).all()
    assert set(tracks["artist_id"]) == {mssd.PLACEHOLDER_ARTIST["artist_id"]}
    assert events(database, "select count(*) as n from raw.users")["n"].iloc[0] == 2

    # A features file given later fills the stubs in: an upsert, no duplicates.
    features = tmp_path / "tf_later.csv"
    features.write_text(
        "track_id,duration,release_year,us_popularity_estimate,acousticness,danceability,"
        "energy,instrumentalness,key,liveness,loudness,mode,speechiness,tempo,"
        "time_signature,valence\n"
        "t_a,180.5,2018,99.1,0.4,0.5,0.8,0.0,1,0.1,-5.0,major,0.03,120.0,4,0.5\n"
        "t_c,200.0,2016,98.0,0.2,0.6,0.7,0.0,5,0.2,-6.0,minor,0.04,98.0,4,0.4\n")
    assert ingest.main(["events", str(features), "--format", "mssd",
                        "--database", database]) == 0
    assert "filled in 2 stub tracks" in capsys.readouterr().out
    tracks = events(database, "select track_id, duration_ms, is_stub, "
                              "release_date::text || '/' || release_date_precision as released "
                              "from raw.tracks order by 1").set_index("track_id")
    assert len(tracks) == 4
    assert tracks.loc["t_a"].tolist() == [180500, False, "2018-01-01/year"]
    assert tracks.loc["t_c"].tolist() == [200000, False, "2016-01-01/year"]
    assert tracks.loc["t_b", "is_stub"] and tracks.loc["t_d", "is_stub"]
    # Reloading the log recomputes its plays from the real durations, still 6 plays.
    assert ingest.main(args) == 0
    plays = events(database, "select event_id, ms_played from raw.listening_events "
                             "order by event_id")
    assert plays["ms_played"].tolist() == [180500, 5000, 20000, 144400, stub, 20000]


def test_ambiguous_dates_need_an_order_and_iso_logs_read_canonical_flags(fresh_database,
                                                                         tmp_path, capsys):
    database = fresh_database("ing_mssd_dates")
    ambiguous = write_log(tmp_path / "log_ambiguous.csv", log_rows(
        [("s9", "05-07-18", [("t_a", "not_skipped")]),
         ("s8", "06-07-18", [("t_b", "skip_2")])]), newline="\n")
    args = ["events", str(ambiguous), "--format", "mssd", "--database", database]
    assert ingest.main(args) == 2
    err = capsys.readouterr().err
    assert "order is ambiguous: give --dayfirst or --monthfirst" in err
    assert events(database, "select count(*) as n from raw.users")["n"].iloc[0] == 0
    assert ingest.main([*args, "--monthfirst"]) == 0
    assert "date order: month-first (MM-DD-YY)" in capsys.readouterr().out
    days = events(database, "select started_at from raw.listening_events order by 1")
    assert [str(d.date()) for d in days["started_at"]] == ["2018-05-07", "2018-06-07"]
    # A day-first date contradicts --monthfirst: refused, not guessed.
    clash = write_log(tmp_path / "log_clash.csv", log_rows(RESAVED))
    assert ingest.main(["events", str(clash), "--format", "mssd", "--monthfirst",
                        "--database", database]) == 2
    assert "15-07-18 can only be day-first" in capsys.readouterr().err

    canonical = write_log(tmp_path / "log_iso.csv", log_rows(
        [("s7", "2018-07-15", [("t_a", "skip_1"), ("t_a", "not_skipped")])],
        true="true", false="false"))
    assert ingest.main(["events", str(canonical), "--format", "mssd", "--timezone",
                        "Asia/Kolkata", "--database", database]) == 0
    plays = events(database, "select e.source_skip_label, u.timezone from "
                             "raw.listening_events as e join raw.users as u using (user_id) "
                             "where e.session_hint = 's7' order by e.event_id")
    assert plays["source_skip_label"].tolist() == ["skip_1", "not_skipped"]
    assert set(plays["timezone"]) == {"Asia/Kolkata"}


def test_bad_rows_are_rejected_with_their_record_and_all_rejected_fails(fresh_database,
                                                                        tmp_path, capsys):
    database = fresh_database("ing_mssd_bad")
    rows = log_rows([("s1", "2018-07-15", [("t_a", "not_skipped"), ("t_b", "skip_1")]),
                     ("s2", "2018-07-16", [("t_c", "skip_2")])], true="true", false="false")
    rows[1][15] = "25"  # hour_of_day
    rows[2][16] = "2018-02-30"
    log = write_log(tmp_path / "log_bad.csv", rows)
    assert ingest.main(["events", str(log), "--format", "mssd", "--database", database]) == 0
    assert "raw.listening_events: 1 loaded, 2 rejected" in capsys.readouterr().out
    rejects = events(database, "select row_number, reason, record from raw.load_rejects "
                               "order by row_number")
    assert rejects["row_number"].tolist() == [2, 3]
    assert rejects["reason"].tolist() == ["hour_of_day: not an hour 0-23",
                                          "date: not a real date read ISO (YYYY-MM-DD)"]
    assert '"hour_of_day": "25"' in rejects["record"].iloc[0]  # the row as the file has it
    assert events(database, "select count(*) as n from raw.users")["n"].iloc[0] == 1

    for row in rows:
        row[15] = "24"
    every = write_log(tmp_path / "log_all_bad.csv", rows)
    assert ingest.main(["events", str(every), "--format", "mssd",
                        "--database", database]) == 1
    assert "all 3 rows rejected, nothing loaded: 2 x hour_of_day: not an hour 0-23, 1 x date" \
        in capsys.readouterr().err
    batches = events(database, "select count(*) as n from raw.load_batches "
                               "where source like '%log_all_bad%'")
    assert batches["n"].iloc[0] == 0


@pytest.mark.parametrize(("dates", "order"), [
    (["2018-07-15", "2018-07-16"], "iso"),
    (["15/07/2018", "01/07/2018"], "dmy"),
    (["07/15/18", "07/01/18"], "mdy"),
])
def test_date_order_is_decided_from_every_date(dates, order):
    assert mssd.decide_date_order(pd.Series(dates), None, "f")[0] == order
