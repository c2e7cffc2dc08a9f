"""`ingest tracks`: a public track / audio-feature CSV into raw, offline."""

from __future__ import annotations

import json

import pandas as pd

from python_jobs import db
from python_jobs.ingest import __main__ as ingest
from python_jobs.ingest import mapping
from python_jobs.ingest.tracks import release_parts

HEADER = ("track_id,track_name,track_artist,track_popularity,track_album_id,track_album_name,"
          "track_album_release_date,playlist_name,playlist_id,playlist_genre,playlist_subgenre,"
          "danceability,energy,key,loudness,mode,speechiness,acousticness,instrumentalness,"
          "liveness,valence,tempo,duration_ms")
ROWS = [
    # the same track in two playlists: one row kept, the repeat counted
    "6f807x0ima9a1j3VPbc7VN,I Don't Care,Ed Sheeran,66,2oCs0DGTsRO98Gh5ZSl2Cx,I Don't Care,"
    "2019-06-14,Pop Remix,37i9dQZF1DXcZDD7cfEKhW,pop,dance pop,0.748,0.916,6,-2.634,1,0.0583,"
    "0.102,0,0.0653,0.518,122.036,194754",
    "6f807x0ima9a1j3VPbc7VN,I Don't Care,Ed Sheeran,66,2oCs0DGTsRO98Gh5ZSl2Cx,I Don't Care,"
    "2019-06-14,Pop Hits,37i9dQZF1DX0s5kDXi1oC5,latin,latin pop,0.748,0.916,6,-2.634,1,0.0583,"
    "0.102,0,0.0653,0.518,122.036,194754",
    # year-only release date, tempo 0, NA album name
    "0r7CVbZTWZgbTCYdfa2P31,Memories,Ed Sheeran,67,63rPSO264uRjW1X5E6cWv6,NA,2019,Pop Remix,"
    "37i9dQZF1DXcZDD7cfEKhW,pop,dance pop,0.726,0.815,11,-4.969,1,0.0373,0.0724,0.00421,"
    "0.357,0.693,0,162600",
    # month precision, another artist
    "1z1Hg7Vb0AhHDiEmnDE79l,All the Time,Zara Larsson,70,1HoSmj2eLcsrR0vE9gThr4,Reload,"
    "2013-11,Pop Remix,37i9dQZF1DXcZDD7cfEKhW,pop,dance pop,0.675,0.931,1,-3.432,0,0.0742,"
    "0.0794,2.33e-05,0.11,0.613,124.008,176616",
    # unreadable release date: rejected with the row as written
    "75FpbthrwQmzHlBJLuGdC7,Call You Mine,The Chainsmokers,60,1zsrDpy1IFqEk27RE3gUs8,Summer,"
    "June 2019,Pop Remix,37i9dQZF1DXcZDD7cfEKhW,pop,dance pop,0.718,0.93,7,-3.778,1,0.102,"
    "0.0287,9.43e-06,0.204,0.277,121.956,169093",
    # NA track name: the contract refuses the track, its features are not loaded
    "1e8PAfcKUYoKkxPhrHqw4x,NA,NA,62,0rfHIsnEd3zfKsqZNTbl5y,NA,2019-07-05,Pop Remix,"
    "37i9dQZF1DXcZDD7cfEKhW,pop,dance pop,0.65,0.833,1,-4.672,1,0.0359,0.0803,0,0.0833,"
    "0.725,123.976,189052",
]


def test_public_track_file_loads_one_row_per_track(fresh_database, tmp_path, capsys):
    database = fresh_database("ing_tracks")
    path = tmp_path / "spotify_songs.csv"
    path.write_text("\n".join([HEADER, *ROWS]) + "\n", encoding="utf-8")
    args = ["tracks", str(path), "--database", database]
    assert ingest.main(args) == 0
    out = capsys.readouterr().out
    assert "read 6 rows, 5 distinct track ids" in out
    assert "raw.tracks: 3 inserted, 0 stubs filled in, 0 already known (kept), 2 rejected" in out
    assert "1 x repeated rows of a track dropped (first occurrence kept)" in out
    assert "1 x tempo 0 read as unknown (null)" in out
    with db.connect(database) as conn:
        tracks = db.read_sql(conn, "select * from raw.tracks order by track_name")
        artists = db.read_sql(conn, "select * from raw.artists order by artist_name")
        genres = db.read_sql(conn, "select a.artist_name, g.genre, g.genre_rank from "
                                   "raw.artist_genres g join raw.artists a using (artist_id) "
                                   "order by 1, 3")
        features = db.read_sql(conn, "select track_id, tempo, mode from raw.audio_features "
                                     "order by track_id")
        rejects = db.read_sql(conn, "select table_name, row_number, reason, record "
                                    "from raw.load_rejects order by row_number")
    assert tracks["track_name"].tolist() == ["All the Time", "I Don't Care", "Memories"]
    assert tracks["release_date_precision"].tolist() == ["month", "day", "year"]
    assert [str(d) for d in tracks["release_date"]] == ["2013-11-01", "2019-06-14",
                                                        "2019-01-01"]
    assert tracks["release_year"].tolist() == [2013, 2019, 2019]
    assert tracks["album_name"].isna().tolist() == [False, False, True]  # NA -> null
    assert not tracks["is_stub"].any()
    assert artists["artist_name"].tolist() == ["Ed Sheeran", "Zara Larsson"]
    assert artists["artist_id"].iloc[0] == mapping.stable_text("name:", "ed sheeran")
    # Ed Sheeran's rows: pop twice (first and third), latin once (the repeat)
    assert genres.values.tolist() == [["Ed Sheeran", "pop", 1], ["Ed Sheeran", "latin", 2],
                                      ["Zara Larsson", "pop", 1]]
    assert features["tempo"].isna().sum() == 1 and len(features) == 3
    assert rejects[["table_name", "row_number", "reason"]].values.tolist() == [
        ["tracks", 5, "release_date: not YYYY-MM-DD, YYYY-MM or YYYY"],
        ["tracks", 6, "track_name: required value missing; artist_id: required value missing"]]
    assert json.loads(rejects["record"].iloc[0])["track_album_release_date"] == "June 2019"

    first = {t: len(f) for t, f in (("tracks", tracks), ("artists", artists))}
    assert ingest.main(args) == 0  # rerun: nothing new, nothing doubled
    assert "0 inserted, 0 stubs filled in, 3 already known (kept)" in capsys.readouterr().out
    with db.connect(database) as conn:
        again = {t: int(db.read_sql(conn, f"select count(*) as n from raw.{t}")["n"].iloc[0])
                 for t in first}
        assert int(db.read_sql(conn, "select count(*) as n from raw.load_rejects")["n"]
                   .iloc[0]) == 2
    assert again == first


def test_map_overrides_and_missing_columns_on_parquet(fresh_database, tmp_path, capsys):
    database = fresh_database("ing_tracks_map")
    path = tmp_path / "songs.parquet"  # Parquet, typed columns: the same route
    pd.DataFrame({"song": ["4uLU6hMCjMI75M1A2tKUQC"], "title": ["Northern Lights"],
                  "band": ["Aurora Field"], "length": [210000], "released": ["2024"],
                  "genre": ["Indie"], "tempo": [0.0]}).to_parquet(path, index=False)
    assert ingest.main(["tracks", str(path), "--database", database]) == 2
    assert "no column for track_id, track_name, duration_ms, artist_name or artist_id" \
        in capsys.readouterr().err
    assert ingest.main(["tracks", str(path), "--map", "song=track_id", "--map",
                        "title=track_name", "--map", "band=artist_name", "--map",
                        "length=duration_ms", "--map", "released=release_date",
                        "--database", database]) == 0
    with db.connect(database) as conn:
        row = db.read_sql(conn, "select t.track_name, t.duration_ms, t.release_year, "
                                "a.artist_name, g.genre from raw.tracks t join raw.artists a "
                                "using (artist_id) join raw.artist_genres g using (artist_id)")
    assert row.values.tolist() == [["Northern Lights", 210000, 2024, "Aurora Field", "indie"]]
    out = capsys.readouterr().out
    assert "1 x tempo 0 read as unknown (null)" in out
    assert "raw.audio_features: 0 inserted" in out  # tempo was its only feature: no row


def test_release_parts_of_one_date():  # the spotify command's album release dates
    assert release_parts("1981") == ("1981-01-01", "year")
    assert release_parts("1981-12") == ("1981-12-01", "month")
    assert release_parts("1981-12-15") == ("1981-12-15", "day")
    assert release_parts("0000") == (None, None)  # Spotify's unknown year
    assert release_parts("2019-02-30") == (None, None)
    assert release_parts(None) == (None, None)
