"""Spotify Web API -> raw catalogue tables, through spotipy with client-credentials auth.

    python -m python_jobs.ingest spotify --playlist ID [--playlist ID ...] [--tracks-file F]
        [--audio-features-file F] [--database D]

Credentials come only from SPOTIFY_CLIENT_ID and SPOTIFY_CLIENT_SECRET; they are handed to
spotipy and never logged or written (the token is kept in memory, not in spotipy's .cache
file). Every successful GET is cached as JSON under .cache/spotify, keyed by URL, so a rerun
does not refetch; --refresh ignores the cache. Rate limits (429 + Retry-After) and transient
5xx are retried a bounded number of times.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import sys
import time
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import requests
import spotipy
from spotipy.cache_handler import MemoryCacheHandler
from spotipy.exceptions import SpotifyException
from spotipy.oauth2 import SpotifyClientCredentials, SpotifyOauthError

from python_jobs import config, contract, db, load, warehouse
from python_jobs.ingest import upsert
from python_jobs.ingest.tracks import release_parts

log = logging.getLogger(__name__)

API = "https://api.spotify.com/v1"  # the cache is keyed by each request's API URL
DEFAULT_CACHE_DIR = config.ROOT / ".cache" / "spotify"
MAX_ATTEMPTS = 5
MAX_RETRY_AFTER_SECONDS = 120  # a longer wait is a daily quota: failing beats hanging
TRACKS_PER_CALL = 50
ARTISTS_PER_CALL = 50
ALBUMS_PER_CALL = 20
FEATURES_PER_CALL = 100
AUDIO_FEATURES_CLOSED = (
    "Spotify answered 403 on /audio-features: the endpoint was closed to new apps on "
    "2024-11-27 (apps with earlier extended access still get it)."
)
_SPOTIFY_ID = re.compile(r"^[0-9A-Za-z]{22}$")
_ALGORITHMIC = re.compile(r"discover weekly|release radar|daily mix|on repeat|repeat rewind"
                          r"|daylist|your top songs|time capsule|blend", re.IGNORECASE)

# Patched in tests so retries do not really wait.
sleep = time.sleep


class MissingCredentials(Exception):
    pass


class AuthError(Exception):
    pass


class ApiError(Exception):
    pass


@dataclass
class Api:
    client: spotipy.Spotify
    cache_dir: Path | None = DEFAULT_CACHE_DIR
    refresh: bool = False
    network_calls: int = 0


@dataclass
class Catalogue:
    """What one run fetched, keyed by Spotify id; None marks an id Spotify did not know."""
    playlists: dict[str, dict] = field(default_factory=dict)
    playlist_items: dict[str, list[dict]] = field(default_factory=dict)
    tracks: dict[str, dict | None] = field(default_factory=dict)
    albums: dict[str, dict | None] = field(default_factory=dict)
    artists: dict[str, dict | None] = field(default_factory=dict)
    features: dict[str, dict | None] | None = None  # None: the API refused audio features
    rejected_ids: list[str] = field(default_factory=list)
    episodes_skipped: int = 0


def make_client(env: dict[str, str] | None = None, timeout: float = 20) -> spotipy.Spotify:
    env = os.environ if env is None else env
    client_id = env.get("SPOTIFY_CLIENT_ID", "").strip()
    client_secret = env.get("SPOTIFY_CLIENT_SECRET", "").strip()
    if not client_id or not client_secret:
        raise MissingCredentials(
            "Spotify credentials missing: set SPOTIFY_CLIENT_ID and SPOTIFY_CLIENT_SECRET "
            "(create an app at https://developer.spotify.com/dashboard).")
    # spotipy logs request headers (the Basic auth of the secret, the bearer token) at DEBUG.
    logging.getLogger("spotipy").setLevel(logging.CRITICAL)
    auth = SpotifyClientCredentials(client_id=client_id, client_secret=client_secret,
                                    cache_handler=MemoryCacheHandler(),
                                    requests_timeout=timeout)
    # A plain session: no urllib3 retries (they sleep unpatchably); get() retries instead.
    return spotipy.Spotify(auth_manager=auth, requests_session=requests.Session(),
                           requests_timeout=timeout, retries=0, status_retries=0)


def _cache_path(cache_dir: Path, url: str) -> Path:
    return cache_dir / f"{hashlib.sha256(url.encode()).hexdigest()}.json"


def get(api: Api, key: str, request: Callable[[spotipy.Spotify], dict | None]) -> dict:
    """One GET through spotipy's public methods (`request(client)`), cached as JSON under
    `key` (the request's API URL), retrying what is transient."""
    path = _cache_path(api.cache_dir, key) if api.cache_dir else None
    if path and path.exists() and not api.refresh:
        return json.loads(path.read_text())["body"]
    problem = ""
    for attempt in range(1, MAX_ATTEMPTS + 1):
        api.network_calls += 1
        log.debug("GET %s", key)
        try:
            body = request(api.client)
        except SpotifyOauthError as exc:
            raise AuthError(f"Spotify refused the client credentials: {exc.error}") from None
        except SpotifyException as exc:
            if exc.http_status == 401:
                raise AuthError(f"Spotify answered 401 for {key}: check SPOTIFY_CLIENT_ID "
                                "and SPOTIFY_CLIENT_SECRET") from None
            if exc.http_status == 429:
                wait = _retry_after(exc.headers)
                if wait > MAX_RETRY_AFTER_SECONDS:
                    raise ApiError(f"rate limited for {wait:.0f} s on {key}; try later") from None
                log.warning("rate limited (429): waiting %.0f s as Retry-After asks", wait)
                sleep(wait)
                problem = "429"
                continue
            if exc.http_status >= 500:
                problem = f"HTTP {exc.http_status}"
            else:
                raise
        except (requests.ConnectionError, requests.Timeout) as exc:
            problem = type(exc).__name__
        else:
            if isinstance(body, dict):
                if path:
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_text(json.dumps({"url": key, "body": body}))
                return body
            problem = "malformed JSON"  # spotipy returns None when the body is not JSON
        if attempt < MAX_ATTEMPTS:
            wait = min(2 ** (attempt - 1), 30)
            log.warning("%s from %s (attempt %d of %d); retrying in %d s",
                        problem, key, attempt, MAX_ATTEMPTS, wait)
            sleep(wait)
    raise ApiError(f"{key}: gave up after {MAX_ATTEMPTS} attempts ({problem})")


def _retry_after(headers) -> float:
    try:
        return max(float((headers or {}).get("Retry-After", 1)), 0.0)
    except (TypeError, ValueError):
        return 1.0


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _audio_features(client: spotipy.Spotify, ids: list[str]) -> dict | None:
    """spotipy's audio_features() unwraps the list and warns that the endpoint is deprecated
    (the 403 handling below is what this project does about it)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            return {"audio_features": client.audio_features(ids)}
        except TypeError:  # spotipy indexes a body that was not JSON (None)
            return None


# spotipy's batch lookup for each kind, and the key of the list in its answer.
LOOKUPS: dict[str, tuple[Callable[[spotipy.Spotify, list[str]], dict | None], str]] = {
    "tracks": (spotipy.Spotify.tracks, "tracks"),
    "albums": (spotipy.Spotify.albums, "albums"),
    "artists": (spotipy.Spotify.artists, "artists"),
    "audio-features": (_audio_features, "audio_features"),
}


def fetch_several(api: Api, kind: str, ids: Iterable[str],
                  per_call: int) -> dict[str, dict | None]:
    """Batch lookups (/tracks?ids=...); Spotify answers null for ids it does not know."""
    lookup, key = LOOKUPS[kind]
    found: dict[str, dict | None] = {}
    for batch in _chunks(sorted(set(ids)), per_call):
        body = get(api, f"{API}/{kind}?ids={','.join(batch)}",
                   lambda client, batch=batch: lookup(client, batch))
        objects = body.get(key) or []
        if len(objects) != len(batch):
            raise ApiError(f"/{kind}: asked for {len(batch)} ids, got {len(objects)} objects")
        found.update(zip(batch, objects, strict=True))
    return found


def fetch_playlist(api: Api, playlist_id: str) -> tuple[dict, list[dict]]:
    playlist = get(api, f"{API}/playlists/{playlist_id}",
                   lambda client: client.playlist(playlist_id))
    # The embedded page was called `tracks`; newer responses name it `items`.
    page = playlist.get("tracks")
    if not isinstance(page, dict) or "items" not in page:
        page = playlist.get("items") if isinstance(playlist.get("items"), dict) else None
    items: list[dict] = []
    while page:
        items.extend(page.get("items") or [])
        # Spotify's `next` URL is the page's cache key; spotipy's next() follows it.
        page = (get(api, page["next"], lambda client, page=page: client.next(page))
                if page.get("next") else None)
    return playlist, items


def fetch_audio_features(api: Api, track_ids: list[str]) -> dict[str, dict | None] | None:
    """Features by track id, or None when the API refuses them (403 for newer apps)."""
    try:
        return fetch_several(api, "audio-features", track_ids, FEATURES_PER_CALL)
    except SpotifyException as exc:
        if exc.http_status == 403:
            log.warning(AUDIO_FEATURES_CLOSED)
            return None
        raise


def _item_track(item: dict) -> dict | None:
    return item.get("track") if "track" in item else item.get("item")


def fetch_catalogue(api: Api, playlist_ids: list[str], track_ids: list[str],
                    want_features: bool = True) -> Catalogue:
    cat = Catalogue()
    for pid in playlist_ids:
        playlist, items = fetch_playlist(api, pid)
        cat.playlists[pid] = playlist
        cat.playlist_items[pid] = items
        for item in items:
            track = _item_track(item) or {}
            if track.get("type") == "episode":
                cat.episodes_skipped += 1
            elif track.get("id") and not item.get("is_local"):
                cat.tracks[track["id"]] = track
    wanted = [t for t in dict.fromkeys(track_ids) if t not in cat.tracks]
    cat.rejected_ids = [t for t in wanted if not _SPOTIFY_ID.match(t)]
    cat.tracks.update(fetch_several(api, "tracks", [t for t in wanted if _SPOTIFY_ID.match(t)],
                                    TRACKS_PER_CALL))
    known = [t for t in cat.tracks.values() if t]
    album_ids = {t["album"]["id"] for t in known if (t.get("album") or {}).get("id")}
    cat.albums = fetch_several(api, "albums", album_ids, ALBUMS_PER_CALL)
    artist_ids = {t["artists"][0]["id"] for t in known if t.get("artists")
                  and t["artists"][0].get("id")}
    cat.artists = fetch_several(api, "artists", artist_ids, ARTISTS_PER_CALL)
    if want_features:
        cat.features = fetch_audio_features(api, sorted(t["id"] for t in known))
    if cat.episodes_skipped:
        log.info("skipped %d podcast episodes in playlists", cat.episodes_skipped)
    return cat


def _year(date: str | None) -> int | None:
    # release_date is "1981", "1981-12" or "1981-12-15"; "0000" marks an unknown year.
    year = int(date[:4]) if date and date[:4].isdigit() else None
    return year if year and year >= 1900 else None


def frames(cat: Catalogue) -> dict[str, pd.DataFrame]:
    """The catalogue as frames in the raw contract's columns (validation types them)."""
    tracks, artists, genres = [], {}, []
    for track in cat.tracks.values():
        if not track:
            continue
        album = track.get("album") or {}
        full_album = cat.albums.get(album.get("id")) or album
        primary = (track.get("artists") or [{}])[0]
        released, precision = release_parts(full_album.get("release_date"))
        tracks.append({
            "track_id": track.get("id"), "track_name": track.get("name"),
            "artist_id": primary.get("id"), "album_id": album.get("id"),
            "album_name": full_album.get("name"),
            "release_year": _year(full_album.get("release_date")),
            "duration_ms": track.get("duration_ms"), "popularity": track.get("popularity"),
            "is_explicit": track.get("explicit"), "release_date": released,
            "release_date_precision": precision, "is_stub": False,
        })
        if primary.get("id"):
            artists[primary["id"]] = {"artist_id": primary["id"],
                                      "artist_name": primary.get("name")}
    for artist_id, artist in cat.artists.items():
        if not artist:
            continue  # unknown to /artists: the track's simplified artist row stays
        artists[artist_id] = {
            "artist_id": artist_id, "artist_name": artist.get("name"),
            "popularity": artist.get("popularity"),
            "followers": (artist.get("followers") or {}).get("total"),
        }
        seen: list[str] = []
        for genre in artist.get("genres") or []:
            if genre and genre.lower() not in seen:
                seen.append(genre.lower())
        genres += [{"artist_id": artist_id, "genre": g, "genre_rank": i}
                   for i, g in enumerate(seen, start=1)]
    playlists, slots = [], []
    for pid, playlist in cat.playlists.items():
        items = cat.playlist_items[pid]
        added = [i["added_at"] for i in items if i.get("added_at")]
        playlists.append({
            "playlist_id": playlist.get("id") or pid, "playlist_name": playlist.get("name"),
            "playlist_type": _playlist_type(playlist), "owner_user_id": None,
            # Spotify has no creation time; the earliest addition is the best estimate.
            "created_at": min(added) if added else None,
        })
        for position, item in enumerate(items, start=1):
            track = _item_track(item) or {}
            if track.get("type") == "episode":
                continue
            slots.append({"playlist_id": playlist.get("id") or pid, "position": position,
                          "track_id": None if item.get("is_local") else track.get("id"),
                          "added_at": item.get("added_at")})
    features = [dict(f, track_id=f["id"]) for f in (cat.features or {}).values() if f]
    columns = {name: contract.TABLES[name].column_names for name in contract.TABLES}
    return {
        "artists": pd.DataFrame(list(artists.values()), columns=columns["artists"]),
        "artist_genres": pd.DataFrame(genres, columns=columns["artist_genres"]),
        "tracks": pd.DataFrame(tracks, columns=columns["tracks"]),
        "audio_features": pd.DataFrame(features).reindex(columns=columns["audio_features"]),
        "playlists": pd.DataFrame(playlists, columns=columns["playlists"]),
        "playlist_tracks": pd.DataFrame(slots, columns=columns["playlist_tracks"]),
    }


def _playlist_type(playlist: dict) -> str:
    owner = (playlist.get("owner") or {}).get("id")
    if owner != "spotify":
        return "user"
    return "algorithmic" if _ALGORITHMIC.search(playlist.get("name") or "") else "editorial"


def read_track_ids(path: Path) -> list[str]:
    """Track ids from a text file (one id, URI or URL a line) or a CSV/Parquet track_id column."""
    if path.suffix.lower() in (".csv", ".parquet", ".gz"):
        frame = pd.concat(list(load.read_file(path)), ignore_index=True)
        column = "track_id" if "track_id" in frame.columns else "id"
        values = frame[column].dropna().tolist()
    else:
        values = [line for line in path.read_text().splitlines() if line.strip()]
    return [_bare_id(v) for v in values if _bare_id(v)]


def _bare_id(value: str) -> str:
    # spotify:track:ID, https://open.spotify.com/track/ID?si=..., or the bare ID
    value = value.strip().split("?")[0].rstrip("/")
    return re.split(r"[:/]", value)[-1]


def read_features_file(path: Path, track_ids: set[str]) -> pd.DataFrame:
    """Audio features from a CSV/Parquet keyed by track_id (or id), for this run's tracks."""
    parts = []
    for chunk in load.read_file(path):
        if "track_id" not in chunk.columns and "id" in chunk.columns:
            chunk = chunk.rename(columns={"id": "track_id"})
        parts.append(chunk[chunk["track_id"].isin(track_ids)])
    columns = contract.TABLES["audio_features"].column_names
    return pd.concat(parts, ignore_index=True).reindex(columns=columns) if parts else \
        pd.DataFrame(columns=columns)


def batch_prefix(playlist_ids: list[str], track_ids: list[str]) -> str:
    digest = hashlib.sha256(json.dumps([sorted(playlist_ids), sorted(set(track_ids))])
                            .encode()).hexdigest()[:16]
    return f"spotify:{digest}"


def write(conn: db.Connection, cat: Catalogue, tables: dict[str, pd.DataFrame], *,
          prefix: str, source: str) -> list[upsert.UpsertResult]:
    """Upsert parents before children, then drop what the API no longer lists."""
    unknown = [({"track_id": t}, "track_id: unknown to the Spotify API (null in /v1/tracks)")
               for t, obj in cat.tracks.items() if obj is None]
    unknown += [({"track_id": t}, "track_id: not a Spotify id") for t in cat.rejected_ids]
    results = []
    for name in ("artists", "artist_genres", "tracks", "audio_features", "playlists",
                 "playlist_tracks"):
        results.append(upsert.upsert(
            conn, name, tables[name], batch_id=upsert.batch_name(prefix, name), source=source,
            extra_rejects=unknown if name == "tracks" else ()))
    fetched_artists = [a for a, obj in cat.artists.items() if obj]
    keep = [f"{r.artist_id}\x1f{r.genre}" for r in tables["artist_genres"].itertuples()]
    db.execute(conn, "delete from raw.artist_genres where artist_id = any(%s) "
               "and artist_id || chr(31) || genre <> all(%s)", (fetched_artists, keep))
    for pid, items in cat.playlist_items.items():
        db.execute(conn, "delete from raw.playlist_tracks where playlist_id = %s "
                   "and position > %s", (pid, len(items)))
    return results


def run(playlist_ids: list[str], tracks_file: Path | None, features_file: Path | None,
        database: str | None, *, cache_dir: Path | None = DEFAULT_CACHE_DIR,
        refresh: bool = False) -> int:
    try:
        api = Api(make_client(), cache_dir=cache_dir, refresh=refresh)
    except MissingCredentials as exc:
        print(exc, file=sys.stderr)
        return 2
    missing = [str(f) for f in (tracks_file, features_file) if f is not None and not f.exists()]
    if missing:
        print(f"no such file: {', '.join(missing)}", file=sys.stderr)
        return 2
    track_ids = read_track_ids(tracks_file) if tracks_file else []
    if not playlist_ids and not track_ids:
        print("nothing to fetch: give --playlist and/or --tracks-file", file=sys.stderr)
        return 2
    playlist_ids = [_bare_id(p) for p in playlist_ids]
    try:
        cat = fetch_catalogue(api, playlist_ids, track_ids)
    except AuthError as exc:
        print(exc, file=sys.stderr)
        return 2
    except (ApiError, SpotifyException) as exc:
        print(f"Spotify API error: {exc}", file=sys.stderr)
        return 1
    tables = frames(cat)
    known = set(tables["tracks"]["track_id"].dropna())
    if features_file is not None:
        from_file = read_features_file(features_file, known)
        # The API's own rows win; the file fills whatever it did not give.
        have = set(tables["audio_features"]["track_id"].dropna())
        from_file = from_file[~from_file["track_id"].isin(have)]
        tables["audio_features"] = pd.concat([tables["audio_features"], from_file],
                                             ignore_index=True)
        log.info("audio features: %d tracks from %s", len(from_file), features_file)
    elif cat.features is None:
        log.warning("no audio features loaded: the API refused them and no "
                    "--audio-features-file was given")
    warehouse.init(database)
    source = "spotify-web-api"
    with db.connect(database) as conn:
        results = write(conn, cat, tables, prefix=batch_prefix(playlist_ids, track_ids),
                        source=source)
    for r in results:
        print(f"raw.{r.table}: {r.rows_inserted} inserted, {r.rows_updated} updated, "
              f"{r.rows_rejected} rejected")
    print(f"{api.network_calls} API calls (the rest from the cache)")
    return 0
