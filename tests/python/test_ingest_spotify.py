"""Spotify ingestion against HTTP stubbed at the transport (responses), never spotipy itself.

Payloads follow the shapes of Spotify's documented objects (track, simplified album and
artist, playlist with an embedded paging object, audio features, error object).
"""

from __future__ import annotations

import base64
import re
from pathlib import Path

import pytest
import responses

from python_jobs import db
from python_jobs.ingest import __main__ as ingest
from python_jobs.ingest import spotify

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "ingest"
API = "https://api.spotify.com/v1"
TOKEN_URL = "https://accounts.spotify.com/api/token"
PLAYLIST = "37i9dQZF1DXcBWIGoYBM5M"
CLIENT_ID = "test-client-id-1234"
CLIENT_SECRET = "test-client-secret-s3cr3t"
TOKEN = "BQD-test-access-token-xyz"


def tid(n: int) -> str:
    return f"trk{n:019d}"


def aid(n: int) -> str:
    return f"art{n:019d}"


def alid(n: int) -> str:
    return f"alb{n:019d}"


def simple_artist(n: int, name: str) -> dict:
    return {"id": aid(n), "name": name, "type": "artist", "uri": f"spotify:artist:{aid(n)}",
            "href": f"{API}/artists/{aid(n)}", "external_urls": {}}


def simple_album(n: int, name: str, release_date: str) -> dict:
    return {"id": alid(n), "name": name, "album_type": "album", "release_date": release_date,
            "release_date_precision": "day", "total_tracks": 10, "type": "album",
            "uri": f"spotify:album:{alid(n)}", "artists": [], "images": []}


def track(n: int, name: str, artist: dict, album: dict, duration_ms: int = 200_000) -> dict:
    return {"id": tid(n), "name": name, "type": "track", "uri": f"spotify:track:{tid(n)}",
            "artists": [artist], "album": album, "duration_ms": duration_ms,
            "explicit": n % 2 == 0, "popularity": 40 + n, "disc_number": 1,
            "track_number": n, "is_local": False, "external_ids": {"isrc": f"USRC1{n:07d}"}}


ARTIST_1 = simple_artist(1, "Aurora Field")
ARTIST_2 = simple_artist(2, "The Tidal Lines")
ARTIST_3 = simple_artist(3, "Night Ferry")
ALBUM_1 = simple_album(1, "Polar Nights", "2019-05-03")
ALBUM_2 = simple_album(2, "Harbour Songs", "1987")
TRACK_1 = track(1, "Northern Lights", ARTIST_1, ALBUM_1)
TRACK_2 = track(2, "Glass Harbour", ARTIST_2, ALBUM_2, 187_500)
TRACK_3 = track(3, "Aurora", ARTIST_1, ALBUM_1, 243_000)
TRACK_4 = track(4, "Slow Tide", ARTIST_3, ALBUM_2, 199_000)
LOCAL_FILE = {"id": None, "name": "my demo.mp3", "type": "track", "uri": "spotify:local:::x:1",
              "artists": [{"id": None, "name": "me"}], "album": {"id": None, "name": None},
              "duration_ms": 1000, "is_local": True}
EPISODE = {"id": "epi0000000000000000001", "name": "An episode", "type": "episode",
           "duration_ms": 1_800_000}
PAGE_2_URL = f"{API}/playlists/{PLAYLIST}/tracks?offset=2&limit=2"


def item(obj: dict, added_at: str, is_local: bool = False) -> dict:
    return {"added_at": added_at, "added_by": {"id": "spotify"}, "is_local": is_local,
            "track": obj}


def playlist_payload() -> dict:
    return {
        "id": PLAYLIST, "name": "Today's Top Hits", "type": "playlist", "public": True,
        "collaborative": False, "description": "", "followers": {"total": 1000},
        "owner": {"id": "spotify", "display_name": "Spotify", "type": "user"},
        "snapshot_id": "abc",
        "tracks": {
            "href": f"{API}/playlists/{PLAYLIST}/tracks?offset=0&limit=2", "limit": 2,
            "offset": 0, "total": 5, "previous": None, "next": PAGE_2_URL,
            "items": [item(TRACK_1, "2024-02-01T10:00:00Z"),
                      item(TRACK_2, "2024-02-03T10:00:00Z")],
        },
    }


def page_2_payload() -> dict:
    return {"href": PAGE_2_URL, "limit": 2, "offset": 2, "total": 5, "previous": None,
            "next": None,
            "items": [item(TRACK_3, "2024-02-05T10:00:00Z"),
                      item(LOCAL_FILE, "2024-02-06T10:00:00Z", is_local=True),
                      item(EPISODE, "2024-02-07T10:00:00Z")]}


def full_album(album: dict) -> dict:
    return {**album, "label": "Test Label", "popularity": 50, "genres": [],
            "tracks": {"items": [], "next": None}}


def full_artist(artist: dict, genres: list[str], popularity: int) -> dict:
    return {**artist, "genres": genres, "popularity": popularity,
            "followers": {"href": None, "total": popularity * 1000}, "images": []}


def features(n: int) -> dict:
    return {"id": tid(n), "type": "audio_features", "danceability": 0.5, "energy": 0.6,
            "key": n, "loudness": -6.5, "mode": 1, "speechiness": 0.04,
            "acousticness": 0.2, "instrumentalness": 0.0, "liveness": 0.1, "valence": 0.3,
            "tempo": 120.0 + n, "time_signature": 4, "duration_ms": 200_000,
            "uri": f"spotify:track:{tid(n)}", "analysis_url": ""}


FEATURES_URL = f"{API}/audio-features/?ids={','.join(tid(n) for n in (1, 2, 3, 4))}"


def stub_catalogue(features_status: int = 403) -> None:
    responses.post(TOKEN_URL, json={"access_token": TOKEN, "token_type": "Bearer",
                                    "expires_in": 3600})
    responses.get(f"{API}/playlists/{PLAYLIST}", json=playlist_payload())
    responses.get(PAGE_2_URL, json=page_2_payload())
    responses.get(f"{API}/tracks/?ids={tid(4)},{tid(404)}", json={"tracks": [TRACK_4, None]})
    responses.get(f"{API}/albums/?ids={alid(1)},{alid(2)}",
                  json={"albums": [full_album(ALBUM_1), full_album(ALBUM_2)]})
    responses.get(f"{API}/artists/?ids={aid(1)},{aid(2)},{aid(3)}", json={"artists": [
        full_artist(ARTIST_1, ["Indie Pop", "dream pop", "indie pop"], 61),
        full_artist(ARTIST_2, [], 44),
        None,  # an id Spotify does not know (any more)
    ]})
    if features_status == 403:
        responses.get(FEATURES_URL, status=403,
                      json={"error": {"status": 403, "message": "Forbidden"}})
    else:
        responses.get(FEATURES_URL, json={"audio_features": [features(n) for n in range(1, 5)]})


@pytest.fixture
def credentials(monkeypatch):
    monkeypatch.setenv("SPOTIFY_CLIENT_ID", CLIENT_ID)
    monkeypatch.setenv("SPOTIFY_CLIENT_SECRET", CLIENT_SECRET)


@pytest.fixture
def waits(monkeypatch) -> list[float]:
    slept: list[float] = []
    monkeypatch.setattr(spotify, "sleep", slept.append)
    return slept


def _run(database: str, cache: Path, *extra: str) -> int:
    return ingest.main(["spotify", "--playlist", PLAYLIST,
                        "--tracks-file", str(FIXTURES / "spotify_track_ids.txt"),
                        "--cache-dir", str(cache), "--database", database, *extra])


def _tables(database: str) -> dict[str, list[tuple]]:
    queries = {
        "tracks": "select track_id, artist_id, album_name, release_year, duration_ms "
                  "from raw.tracks order by 1",
        "artists": "select artist_id, artist_name, popularity, followers "
                   "from raw.artists order by 1",
        "artist_genres": "select artist_id, genre, genre_rank from raw.artist_genres "
                         "order by 1, 3",
        "playlists": "select playlist_id, playlist_type, created_at from raw.playlists",
        "playlist_tracks": "select position, track_id from raw.playlist_tracks order by 1",
        "audio_features": "select track_id, danceability from raw.audio_features order by 1",
        "rejects": "select table_name, reason from raw.load_rejects order by 1, 2",
    }
    with db.connect(database) as conn:
        frames = {k: db.read_sql(conn, q) for k, q in queries.items()}
    return {k: [tuple(r) for r in f.astype(object).where(f.notna(), None)
                .itertuples(index=False)] for k, f in frames.items()}


@responses.activate
def test_playlists_and_tracks_land_in_raw_and_reruns_are_idempotent(
        fresh_database, credentials, waits, tmp_path, capsys):
    database = fresh_database("ing_spotify")
    cache = tmp_path / "cache"
    stub_catalogue(features_status=403)
    # DEBUG: spotipy would log auth headers at that level if we let it.
    assert _run(database, cache, "--log-level", "DEBUG", "--audio-features-file",
                str(FIXTURES / "audio_features.csv")) == 0
    out = capsys.readouterr()
    first = _tables(database)

    assert [t for t, *_ in first["tracks"]] == [tid(1), tid(2), tid(3), tid(4)]
    assert first["tracks"][0][2:] == ("Polar Nights", 2019, 200000)
    assert first["tracks"][1][3] == 1987
    # Unknown to /artists: the track's simplified artist still gives a row to join.
    assert first["artists"] == [(aid(1), "Aurora Field", 61, 61000),
                                (aid(2), "The Tidal Lines", 44, 44000),
                                (aid(3), "Night Ferry", None, None)]
    assert first["artist_genres"] == [(aid(1), "indie pop", 1), (aid(1), "dream pop", 2)]
    assert [(p, t) for p, t, _ in first["playlists"]] == [(PLAYLIST, "editorial")]
    assert str(first["playlists"][0][2]) == "2024-02-01 10:00:00"
    # Pagination followed; the local file is quarantined; the episode is not a track.
    assert first["playlist_tracks"] == [(1, tid(1)), (2, tid(2)), (3, tid(3))]
    # 403 on /audio-features: the file fills in, only for this run's tracks.
    assert [t for t, _ in first["audio_features"]] == [tid(1), tid(2), tid(3)]
    assert first["rejects"] == [
        ("audio_features", "danceability: above 1"),
        ("playlist_tracks", "track_id: required value missing"),
        ("tracks", "track_id: not a Spotify id"),
        ("tracks", "track_id: unknown to the Spotify API (null in /v1/tracks)"),
    ]
    assert "closed to new apps on 2024-11-27" in out.err
    assert waits == []

    # Secrets: never in logs, output or cache (the token is kept in memory only).
    basic = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
    cached = "".join(p.read_text() for p in cache.glob("*.json"))
    assert "DEBUG" in out.err  # the check below is not vacuous
    for secret in (CLIENT_SECRET, basic, TOKEN):
        assert secret not in out.out + out.err + cached

    calls = len(responses.calls)
    assert _run(database, cache, "--audio-features-file",
                str(FIXTURES / "audio_features.csv")) == 0
    # Only the refused /audio-features call is not cached (plus the token it needs).
    assert [c.request.url for c in responses.calls[calls:]] == [TOKEN_URL, FEATURES_URL]
    assert _tables(database) == first
    assert "0 API calls" not in capsys.readouterr().out  # the 403 is asked again

    assert _run(database, cache, "--refresh", "--audio-features-file",
                str(FIXTURES / "audio_features.csv")) == 0
    assert _tables(database) == first
    out = capsys.readouterr().out
    assert re.findall(r"(\d+) inserted, (\d+) updated", out) == [("0", "0")] * 6


@responses.activate
def test_audio_features_from_the_api_when_it_serves_them(fresh_database, credentials, waits,
                                                        tmp_path):
    database = fresh_database("ing_spotify_features")
    stub_catalogue(features_status=200)
    assert _run(database, tmp_path / "cache") == 0
    rows = _tables(database)["audio_features"]
    assert rows == [(tid(n), 0.5) for n in range(1, 5)]


def _tracks(api: spotify.Api, *ids: str) -> dict:
    """spotify.get of one /tracks lookup, as fetch_several makes it."""
    return spotify.get(api, f"{API}/tracks?ids={','.join(ids)}",
                       lambda client: client.tracks(list(ids)))


def _api(tmp_path: Path) -> spotify.Api:
    responses.post(TOKEN_URL, json={"access_token": TOKEN, "token_type": "Bearer",
                                    "expires_in": 3600})
    return spotify.Api(spotify.make_client({"SPOTIFY_CLIENT_ID": CLIENT_ID,
                                            "SPOTIFY_CLIENT_SECRET": CLIENT_SECRET}),
                       cache_dir=tmp_path / "cache")


@responses.activate
def test_429_waits_as_long_as_retry_after_says(tmp_path, waits):
    api = _api(tmp_path)
    url = f"{API}/tracks/?ids={tid(1)}"
    responses.get(url, status=429, headers={"Retry-After": "7"},
                  json={"error": {"status": 429, "message": "API rate limit exceeded"}})
    responses.get(url, json={"tracks": [TRACK_1]})
    assert _tracks(api, tid(1)) == {"tracks": [TRACK_1]}
    assert waits == [7.0]


@responses.activate
def test_429_with_a_very_long_retry_after_gives_up(tmp_path, waits):
    api = _api(tmp_path)
    url = f"{API}/tracks/?ids={tid(1)}"
    responses.get(url, status=429, headers={"Retry-After": "86400"})
    with pytest.raises(spotify.ApiError, match="rate limited"):
        _tracks(api, tid(1))
    assert waits == []


@responses.activate
def test_transient_5xx_and_malformed_json_are_retried_a_bounded_number_of_times(
        tmp_path, waits):
    api = _api(tmp_path)
    url = f"{API}/tracks/?ids={tid(1)}"
    responses.get(url, status=503, body="upstream down")
    responses.get(url, body="{not json", content_type="application/json")
    responses.get(url, json={"tracks": [TRACK_1]})
    assert _tracks(api, tid(1))["tracks"][0]["id"] == tid(1)
    assert waits == [1, 2]

    broken = f"{API}/tracks/?ids={tid(2)}"
    responses.get(broken, body="<html>gateway</html>", content_type="application/json")
    with pytest.raises(spotify.ApiError, match="malformed JSON"):
        _tracks(api, tid(2))
    assert len(waits) == 2 + spotify.MAX_ATTEMPTS - 1
    assert not list((tmp_path / "cache").glob("*.json")) or all(
        tid(2) not in p.read_text() for p in (tmp_path / "cache").glob("*.json"))


@responses.activate
def test_401_stops_with_exit_code_2_and_writes_nothing(credentials, waits, tmp_path, capsys):
    responses.post(TOKEN_URL, json={"access_token": TOKEN, "token_type": "Bearer",
                                    "expires_in": 3600})
    responses.get(f"{API}/playlists/{PLAYLIST}", status=401,
                  json={"error": {"status": 401, "message": "Invalid access token"}})
    code = ingest.main(["spotify", "--playlist", PLAYLIST, "--cache-dir", str(tmp_path),
                        "--database", "ing_never_created"])
    assert code == 2
    assert "401" in capsys.readouterr().err
    assert waits == []


@responses.activate
def test_rejected_client_credentials_exit_2(credentials, tmp_path, capsys):
    responses.post(TOKEN_URL, status=400, json={"error": "invalid_client",
                                                "error_description": "Invalid client"})
    code = ingest.main(["spotify", "--playlist", PLAYLIST, "--cache-dir", str(tmp_path)])
    assert code == 2
    err = capsys.readouterr().err
    assert "refused the client credentials" in err and CLIENT_SECRET not in err


@responses.activate
def test_missing_credentials_exit_2_before_any_request(monkeypatch, tmp_path, capsys):
    monkeypatch.delenv("SPOTIFY_CLIENT_ID", raising=False)
    monkeypatch.setenv("SPOTIFY_CLIENT_SECRET", "x")
    code = ingest.main(["spotify", "--playlist", PLAYLIST, "--cache-dir", str(tmp_path)])
    assert code == 2
    assert "SPOTIFY_CLIENT_ID" in capsys.readouterr().err
    assert len(responses.calls) == 0
