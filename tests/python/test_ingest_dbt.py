"""Real-data samples build through dbt unchanged: each loader's output is a valid raw layer."""

from __future__ import annotations

import random
from pathlib import Path

import pandas as pd
import pytest
from test_ingest_mssd_alone import FLAGS, log_rows, write_log

from python_jobs import db, dbt_cli, load
from python_jobs.ingest import __main__ as ingest
from python_jobs.ingest import mssd

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "ingest"

pytestmark = pytest.mark.slow


def _load_raw(database: str, tmp_path: Path) -> None:
    for table in ("users", "artists", "tracks"):
        assert load.main([str(FIXTURES / f"raw_{table}.csv"), "--table", table,
                          "--database", database]) == 0
    assert ingest.main(["events", str(FIXTURES / "raw_listening_events.csv"), "--format",
                        "raw", "--database", database]) == 0


def _mssd_sessions() -> list[tuple[str, str, list[tuple[str, str]]]]:
    """Sessions of 1-8 plays over a few days and hours, day-first dates (seeded)."""
    rng = random.Random(16)
    labels = sorted(FLAGS)
    return [(f"0_{i:04d}", f"{13 + i % 4}-07-18",
             [(f"t_{rng.randrange(6)}", rng.choice(labels))
              for _ in range(rng.randint(1, 8))]) for i in range(12)]


def _load_mssd(database: str, tmp_path: Path) -> None:
    # A re-saved log alone (no track features file): its tracks become stubs.
    log = write_log(tmp_path / "log_0.csv", log_rows(_mssd_sessions()))
    assert ingest.main(["events", str(log), "--format", "mssd", "--database", database]) == 0


def _check_mssd(database: str) -> None:
    """fct_sessions reproduces the log's sessions, plays in the log's order."""
    sessions = _mssd_sessions()
    with db.connect(database) as conn:
        n_sessions = db.read_sql(conn, "select count(*) as n from marts.fct_sessions")
        plays = db.read_sql(conn, """
            select e.session_hint, e.event_id, p.session_id, p.session_play_number,
                   p.source_skipped, p.source_skip_label, p.is_skipped, e.started_at,
                   p.hour_of_day, p.is_local_time
            from marts.fct_plays as p
            inner join raw.listening_events as e on e.event_id = p.play_id""")
        rates = db.read_sql(conn, """
            select dimension, sum(play_count) as plays, sum(skip_count) as skips,
                   sum(source_skip_count) as source_skips,
                   sum(source_labelled_play_count) as labelled,
                   sum(source_skip_count) / sum(source_labelled_play_count) as rate,
                   count(*) filter (where source_skip_rate is null) as null_rates
            from marts.fct_skip_rates group by dimension""")
        tracks = db.read_sql(conn, "select track_id, duration_ms, artist_name, "
                                   "has_audio_features from marts.dim_tracks")
    assert n_sessions["n"].iloc[0] == len(sessions)
    assert len(plays) == sum(len(s[2]) for s in sessions)
    position = plays["event_id"].str.rsplit(":", n=1).str[1].astype(int)
    assert (plays["session_play_number"] == position).all()
    assert plays.groupby("session_hint")["session_id"].nunique().eq(1).all()
    assert plays.groupby("session_id")["session_hint"].nunique().eq(1).all()
    # the log's own labels and skip_2 rate reach fct_plays and fct_skip_rates
    log_skip_2 = sum(FLAGS[label][1] for s in sessions for _, label in s[2])
    assert int(plays["source_skipped"].sum()) == log_skip_2
    labels = {(sid, pos): label for sid, _, session in sessions
              for pos, (_, label) in enumerate(session, start=1)}
    assert [labels[(h, n)] for h, n in zip(plays["session_hint"], position, strict=True)] \
        == plays["source_skip_label"].tolist()
    # every dimension of fct_skip_rates splits all plays: each one adds up to the log's rate
    assert len(rates) == 6
    assert (rates["plays"] == len(plays)).all() and (rates["labelled"] == len(plays)).all()
    assert (rates["source_skips"] == log_skip_2).all() and (rates["null_rates"] == 0).all()
    # no time zone given: hours stay UTC
    assert not plays["is_local_time"].any()
    assert plays["hour_of_day"].tolist() == pd.to_datetime(plays["started_at"]).dt.hour.tolist()
    assert rates["rate"].astype(float).sub(log_skip_2 / len(plays)).abs().lt(1e-12).all()
    # The project's rule (fwdbtn before 30 s) sees skip_1 (5 s) and skip_2 (20 s) plays, not
    # skip_3 ones (80 % of the track): here the two definitions agree by construction.
    assert int(plays["is_skipped"].sum()) == log_skip_2
    # Stub tracks reach dim_tracks: estimated duration, placeholder artist, no features.
    assert sorted(tracks["track_id"]) == sorted({t for s in sessions for t, _ in s[2]})
    assert (tracks["duration_ms"] == mssd.STUB_DURATION_MS).all()
    assert not tracks["has_audio_features"].any()


def _load_history(database: str, tmp_path: Path) -> None:
    assert ingest.main(["events", str(FIXTURES / "streaming_history.json"), "--format",
                        "history", "--user-id", "42", "--tier", "free",
                        "--timezone", "Asia/Kolkata", "--database", database]) == 0


def _check_history(database: str) -> None:
    """Spotify's skipped flag reaches the marts; rows where the export left it null are not
    counted as labelled. Hours and weekdays are on the listener's clock (UTC+5:30)."""
    with db.connect(database) as conn:
        plays = db.read_sql(conn, """
            select e.source_skipped as raw_skipped, e.source_skip_label as raw_label,
                   e.started_at, p.source_skipped, p.source_skip_label, p.hour_of_day,
                   p.iso_day_of_week, p.is_local_time
            from marts.fct_plays as p
            inner join raw.listening_events as e on e.event_id = p.play_id""")
        rates = db.read_sql(conn, """
            select sum(source_skip_count) as source_skips,
                   sum(source_labelled_play_count) as labelled
            from marts.fct_skip_rates where dimension = 'weekday'""")
    labelled = plays["raw_skipped"].notna()
    assert 0 < labelled.sum() < len(plays)  # the fixture has a row without `skipped`
    assert plays["source_skip_label"].equals(plays["raw_label"])
    assert plays["source_skipped"].equals(plays["raw_skipped"])
    assert int(rates["labelled"].iloc[0]) == int(labelled.sum())
    assert int(rates["source_skips"].iloc[0]) == int(plays["raw_skipped"].eq(True).sum())
    local = pd.to_datetime(plays["started_at"]) + pd.Timedelta(hours=5, minutes=30)
    assert plays["is_local_time"].all()
    assert plays["hour_of_day"].tolist() == local.dt.hour.tolist()
    assert plays["iso_day_of_week"].tolist() == (local.dt.day_of_week + 1).tolist()
    # the fixture has plays whose local hour, and one whose local day, differ from UTC's
    assert (local.dt.date != pd.to_datetime(plays["started_at"]).dt.date).any()


@pytest.mark.parametrize("loader", [_load_raw, _load_mssd, _load_history],
                         ids=["raw", "mssd", "history"])
def test_sample_builds_through_dbt(loader, fresh_database, tmp_path):
    database = fresh_database(f"ingest_dbt_{loader.__name__.removeprefix('_load_')}")
    loader(database, tmp_path)
    # Data tests included: the marts must be consistent on real-shaped data, not only built.
    dbt_cli.run(database, tmp_path, "build", "--exclude-resource-type", "unit_test")
    with db.connect(database) as conn:
        plays = db.read_sql(conn, "select count(*) as n from marts.fct_plays")["n"].iloc[0]
        sessions = db.read_sql(conn, "select count(*) as n from marts.fct_sessions")["n"].iloc[0]
        raw = db.read_sql(conn, "select count(distinct event_id) as n "
                                "from raw.listening_events")["n"].iloc[0]
    assert 0 < sessions <= plays <= raw
    if loader is _load_mssd:
        _check_mssd(database)
    if loader is _load_history:
        _check_history(database)
