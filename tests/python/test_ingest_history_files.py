"""Streaming-history exports as they come: BOM, CRLF, truncated, the older endsong layout."""

from __future__ import annotations

import json

import pytest

from python_jobs import db
from python_jobs.ingest import __main__ as ingest
from python_jobs.ingest import timezones


def play(ts: str, uri: str | None, ms: int, *, skipped: bool | None = None,
         country: str = "IN", **extra) -> dict:
    """One row of the older endsong_*.json layout (the current one adds audiobook_*)."""
    return {"ts": ts, "username": "someone", "platform": "Android OS 10 API 29",
            "ms_played": ms, "conn_country": country, "ip_addr_decrypted": "192.0.2.1",
            "user_agent_decrypted": "unknown", "master_metadata_track_name": "Song",
            "master_metadata_album_artist_name": "Band", "master_metadata_album_album_name":
            "Album", "spotify_track_uri": uri, "episode_name": None, "episode_show_name": None,
            "spotify_episode_uri": None, "reason_start": "trackdone", "reason_end": "trackdone",
            "shuffle": False, "skipped": skipped, "offline": False, "offline_timestamp": 0,
            "incognito_mode": False, **extra}


ENDSONG = [
    play("2021-05-01T10:03:00Z", "spotify:track:4uLU6hMCjMI75M1A2tKUQC", 180000,
         skipped=False),
    play("2021-05-01T10:03:10Z", "spotify:track:7ouMYWpwJ422jRcDASZB7P", 10000, skipped=True),
    play("2021-05-01T10:06:00Z", "spotify:local:Band:Album:Home+Demo:201", 170000),
    play("2021-05-01T10:07:00Z", None, 60000),  # no URI of any kind
    play("2021-05-01T11:00:00Z", None, 900000, episode_name="Ep 1",
         spotify_episode_uri="spotify:episode:0Hm7d1c5Xg6wQ2y6Hb0aZo"),
    play("2021-05-01T12:00:00Z", None, 600000, audiobook_title="A Book",
         audiobook_uri="spotify:audiobook:1", audiobook_chapter_uri="spotify:chapter:1"),
]


def _write(path, text: str, *, bom: bool = False, crlf: bool = False):
    if crlf:
        text = text.replace("\n", "\r\n")
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8"))
    return path


def _read(database: str, sql: str):
    with db.connect(database) as conn:
        return db.read_sql(conn, sql)


def test_endsong_layout_with_bom_rejects_local_files_with_their_record(fresh_database,
                                                                       tmp_path, capsys):
    database = fresh_database("ing_hist_endsong")
    path = _write(tmp_path / "endsong_0.json", json.dumps(ENDSONG, indent=1), bom=True,
                  crlf=True)
    args = ["events", str(path), "--format", "history", "--user-id", "7",
            "--database", database]
    assert ingest.main(args) == 0
    out = capsys.readouterr().out
    assert "raw.listening_events: 2 loaded, 2 rejected" in out
    assert "not loaded (not music): 1 podcast episodes, 1 audiobook chapters" in out
    assert "skipped flag (the export's own): 1 of 2 plays" in out
    assert "time zone: Asia/Kolkata (from country IN)" in out
    plays = _read(database, "select started_at, source_skipped, source_skip_label "
                            "from raw.listening_events order by started_at")
    assert plays["source_skip_label"].tolist() == ["not_skipped", "skipped"]
    rejects = _read(database, "select row_number, reason, record from raw.load_rejects "
                              "order by row_number")
    assert rejects["row_number"].tolist() == [3, 4]
    assert rejects["reason"].tolist() == [
        "spotify_track_uri: a local file (spotify:local:...), it has no Spotify track id",
        "spotify_track_uri: missing, and no episode or audiobook either"]
    record = json.loads(rejects["record"].iloc[0])
    assert record == {k: v for k, v in ENDSONG[2].items()}  # the export's own record
    users = _read(database, "select country, timezone from raw.users")
    assert users.values.tolist() == [["IN", "Asia/Kolkata"]]

    assert ingest.main(args) == 0  # rerun: same rows, same rejects
    assert len(_read(database, "select 1 from raw.load_rejects")) == 2
    assert len(_read(database, "select 1 from raw.listening_events")) == 2


def test_truncated_export_loads_nothing_and_says_where(fresh_database, tmp_path, capsys):
    database = fresh_database("ing_hist_truncated")
    text = json.dumps(ENDSONG[:2], indent=1)
    path = _write(tmp_path / "Streaming_History_Audio_2021.json", text[:len(text) // 2])
    assert ingest.main(["events", str(path), "--format", "history", "--user-id", "7",
                        "--database", database]) == 2
    # (logging's handler from an earlier test may complain about its closed stream here)
    errors = [line for line in capsys.readouterr().err.splitlines()
              if line.startswith("python -m python_jobs.ingest")]
    assert len(errors) == 1
    err = errors[0]
    assert err.startswith(f"python -m python_jobs.ingest: error: {path}: not valid JSON at "
                          "line ")
    assert "nothing loaded" in err
    assert _read(database, "select count(*) as n from raw.users")["n"].iloc[0] == 0


def test_country_with_several_clocks_needs_timezone(fresh_database, tmp_path, capsys):
    database = fresh_database("ing_hist_tz")
    rows = [play("2021-05-01T10:03:00Z", "spotify:track:4uLU6hMCjMI75M1A2tKUQC", 1000,
                 country="US")]
    path = _write(tmp_path / "Streaming_History_Audio_2021.json", json.dumps(rows))
    args = ["events", str(path), "--format", "history", "--user-id", "8",
            "--database", database]
    assert ingest.main(args) == 0
    assert "time zone: UTC (none: country US has several; give --timezone" in \
        capsys.readouterr().out
    assert ingest.main([*args, "--timezone", "America/Chicago"]) == 0
    assert _read(database, "select timezone from raw.users")["timezone"].tolist() == [
        "America/Chicago"]
    assert ingest.main(args) == 0  # a rerun without --timezone keeps the one given before
    assert "time zone: America/Chicago (kept from an earlier load)" in capsys.readouterr().out
    assert _read(database, "select timezone from raw.users")["timezone"].tolist() == [
        "America/Chicago"]
    with pytest.raises(SystemExit):
        ingest.main([*args, "--timezone", "Mars/Olympus"])
    assert "unknown time zone" in capsys.readouterr().err
    assert timezones.of_country("DE") == "Europe/Berlin"
    assert timezones.of_country("ES") is None  # the Canaries keep another clock
