"""Listening-data loaders (raw, MSSD, extended streaming history) on hand-made samples."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from python_jobs import db, load
from python_jobs.ingest import __main__ as ingest
from python_jobs.ingest import mapping, mssd

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "ingest"


def _counts(database: str) -> dict[str, int]:
    with db.connect(database) as conn:
        return {t: int(db.read_sql(conn, f"select count(*) as n from raw.{t}")["n"].iloc[0])
                for t in ("listening_events", "users", "tracks", "artists", "audio_features",
                          "load_rejects", "load_batches")}


def _assert_sane(database: str) -> None:
    """What dbt's relationship tests will ask: every play's user and track, every artist."""
    with db.connect(database) as conn:
        orphans = db.read_sql(conn, """
            select 'user' as kind, e.event_id as id from raw.listening_events as e
            left join raw.users as u on u.user_id = e.user_id where u.user_id is null
            union all
            select 'track', e.event_id from raw.listening_events as e
            left join raw.tracks as t on t.track_id = e.track_id where t.track_id is null
            union all
            select 'artist', t.track_id from raw.tracks as t
            left join raw.artists as a on a.artist_id = t.artist_id where a.artist_id is null
            union all
            select 'key', event_id from raw.listening_events group by event_id
            having count(*) > 1
        """)
    assert orphans.empty, orphans


def test_raw_format_reuses_the_contract_loader(fresh_database):
    database = fresh_database("ing_raw")
    for table in ("users", "artists", "tracks"):
        assert load.main([str(FIXTURES / f"raw_{table}.csv"), "--table", table,
                          "--database", database]) == 0
    for _ in range(2):
        assert ingest.main(["events", str(FIXTURES / "raw_listening_events.csv"),
                            "--format", "raw", "--database", database]) == 0
    with db.connect(database) as conn:
        events = db.read_sql(conn, "select event_id from raw.listening_events order by 1")
        rejects = db.read_sql(conn, "select reason from raw.load_rejects")
    assert events["event_id"].tolist() == ["r1", "r2", "r3", "r4"]
    assert rejects["reason"].tolist() == ["ms_played: not a valid integer"]
    _assert_sane(database)


def _load_mssd(database: str, chunk_rows: int) -> None:
    # Logs named first on purpose: track features must still load before them.
    assert ingest.main(["events", str(FIXTURES / "mssd_session_log.csv"),
                        str(FIXTURES / "mssd_track_features.csv"), "--format", "mssd",
                        "--chunk-rows", str(chunk_rows), "--database", database]) == 0


def _mssd_events(database: str) -> pd.DataFrame:
    with db.connect(database) as conn:
        return db.read_sql(conn, """
            select e.event_id, e.user_id, e.track_id, e.session_hint, e.started_at,
                   e.ms_played, e.context_type, e.reason_start, e.reason_end, e.is_shuffle,
                   u.tier, u.signup_at
            from raw.listening_events as e inner join raw.users as u using (user_id)
            order by e.event_id""").set_index("event_id")


def test_mssd_sessions_map_to_plays_users_and_tracks(fresh_database):
    database = fresh_database("ing_mssd")
    _load_mssd(database, chunk_rows=2)  # tiny chunks: sessions straddle chunk boundaries
    first = _counts(database)
    events = _mssd_events(database)
    _load_mssd(database, chunk_rows=100_000)
    assert _counts(database) == first  # rerun (and another chunking) changes nothing
    pd.testing.assert_frame_equal(_mssd_events(database), events)
    _assert_sane(database)

    # 9 log rows; the one of a track the features file lacks is loaded with a stub track
    assert first["listening_events"] == 9
    s1 = events[events["session_hint"] == "0_00006f66-33e5-4de7-a324-2d18e439fc1e"]
    assert s1["user_id"].nunique() == 1 and (s1["tier"] == "premium").all()
    # not_skipped: full 180.066666 s; skip_1: 5 s; skip_2: 20 s; skip_3 only: 80 % of 169.8 s
    assert s1["ms_played"].tolist() == [180067, 5000, 20000, 135862]
    gaps = s1["started_at"].diff().dt.total_seconds().tolist()[1:]
    assert gaps == pytest.approx([180.067, 5.0, 20.0 + 10.0])  # last play had a short pause
    start = s1["started_at"].iloc[0]
    assert (start.date().isoformat(), start.hour) == ("2018-07-15", 16)
    assert s1["signup_at"].iloc[0] == start
    assert s1["context_type"].unique().tolist() == ["playlist"]  # editorial_playlist
    assert s1["reason_end"].tolist() == ["trackdone", "fwdbtn", "fwdbtn", "endplay"]

    s2 = events[events["session_hint"] == "0_0000a72b-09ac-412f-b452-9b9e79bded8f"]
    assert (s2["tier"] == "free").all()
    # user_collection, catalog; clickside -> clickrow
    assert s2["context_type"].tolist() == ["collection", "collection", "album"]
    assert s2["reason_start"].tolist() == ["clickrow", "trackdone", "clickrow"]
    s3 = events[events["session_hint"] == "0_00011d1c-1d47-4a3d-b6e0-7f0a6a1e9f3b"]
    assert s3["context_type"].isna().tolist() == [False, True]  # unknown context -> NULL

    with db.connect(database) as conn:
        rejects = db.read_sql(conn, "select table_name, reason from raw.load_rejects "
                                    "order by table_name")
        tracks = db.read_sql(conn, "select track_id, release_year, duration_ms "
                                   "from raw.tracks order by track_id")
        modes = db.read_sql(conn, "select mode from raw.audio_features order by track_id")
    assert rejects["table_name"].tolist() == ["audio_features"]
    assert rejects["reason"].iloc[0] == "valence: above 1"
    assert tracks["release_year"].isna().sum() == 2  # "0000" is blanked; and the stub's
    assert tracks["duration_ms"].iloc[0] == 180067
    stub = tracks.set_index("track_id").loc["t_ffffffff-0000-4000-8000-000000000000"]
    assert stub["duration_ms"] == mssd.STUB_DURATION_MS
    assert modes["mode"].tolist() == [1, 0, 1, 0]


def test_whole_sessions_never_splits_a_session():
    log = pd.DataFrame({"session_id": list("aaabbc"), "n": range(6)})
    chunks = [log.iloc[i:i + 2] for i in range(0, 6, 2)]
    out = list(mssd.whole_sessions(chunks))
    assert [c["session_id"].tolist() for c in out] == [["a", "a", "a"], ["b", "b"], ["c"]]


def test_history_export_loads_music_plays_and_minimal_catalogue(fresh_database, capsys):
    database = fresh_database("ing_history")
    args = ["events", str(FIXTURES / "streaming_history.json"), "--format", "history",
            "--user-id", "42", "--tier", "free", "--database", database]
    assert ingest.main(args) == 0
    out = capsys.readouterr().out
    assert "not loaded (not music): 1 podcast episodes, 0 audiobook chapters" in out
    assert "time zone: Europe/Berlin (from country DE)" in out
    first = _counts(database)
    assert ingest.main(args) == 0
    assert _counts(database) == first
    _assert_sane(database)

    with db.connect(database) as conn:
        events = db.read_sql(conn, "select * from raw.listening_events order by started_at")
        users = db.read_sql(conn, "select * from raw.users")
        tracks = db.read_sql(conn, "select t.track_id, t.duration_ms, a.artist_name "
                                   "from raw.tracks as t inner join raw.artists as a "
                                   "using (artist_id) order by 1")
        rejects = db.read_sql(conn, "select reason from raw.load_rejects")
    # 9 rows: 1 podcast skipped, 1 without a track URI rejected, 7 plays.
    assert len(events) == 7 and (events["user_id"] == 42).all()
    assert rejects["reason"].tolist() == [
        "spotify_track_uri: missing, and no episode or audiobook either"]
    assert events["event_id"].is_unique
    # ts is when playback stopped: 08:03:30 minus 210 s played.
    assert str(events["started_at"].iloc[0]) == "2024-03-01 08:00:00"
    assert events["device"].fillna("?").tolist() == ["mobile", "mobile", "mobile", "web",
                                                     "mobile", "smart_speaker", "?"]
    assert events["reason_end"].tolist()[2] == "unexpected"
    assert events["reason_end"].isna().sum() == 1  # "unknown" is blanked, the play kept
    assert users[["user_id", "tier", "country"]].to_dict("records") == [
        {"user_id": 42, "tier": "free", "country": "DE"}]
    assert str(users["signup_at"].iloc[0]) == "2024-03-01 08:00:00"
    assert len(tracks) == 4
    assert tracks.set_index("track_id").loc["4uLU6hMCjMI75M1A2tKUQC", "duration_ms"] == 210000
    assert set(tracks["artist_name"]) == {"Aurora Field", "The Tidal Lines"}


def test_history_needs_a_user_id(capsys):
    assert ingest.main(["events", str(FIXTURES / "streaming_history.json"),
                        "--format", "history"]) == 2
    assert "--user-id" in capsys.readouterr().err


@pytest.mark.parametrize(("platform", "device"), [
    ("Android OS 9 API 28 (samsung, SM-G960F)", "mobile"),
    ("iOS 14.4 (iPhone12,1)", "mobile"),
    ("Windows 10 (10.0.19042; x64)", "desktop"),
    ("OS X 10.15.7 [x86 8]", "desktop"),
    ("web_player windows 10;chrome 88.0.4324.150;desktop", "web"),
    ("Partner android_tv Sony;BRAVIA 4K", "tv"),
    ("Partner sonos_ZP90", "smart_speaker"),
    ("something else", None),
])
def test_platform_strings_map_to_device_classes(platform, device):
    assert mapping.device_of(platform) == device
