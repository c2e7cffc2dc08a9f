"""Format `history`: Spotify's "extended streaming history" export (JSON arrays of plays).

Each file (Streaming_History_Audio_*.json) is one batch. The export has no user id (give
--user-id), no track duration and no artist id, so: `ts` is when playback *stopped*, hence
started_at = ts - ms_played; event_id is a stable hash of (user, ts, track); artist ids are
a stable hash of the artist name ("name:..."); a track's duration_ms is the longest play seen
(a lower bound) until the spotify command fetches the real one. Podcast and audiobook rows
are skipped and counted; music rows without a track URI are quarantined by the contract.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pandas as pd

from python_jobs import contract, db, load
from python_jobs.ingest import mapping, progress, upsert

log = logging.getLogger(__name__)

CHUNK_ROWS = 50_000
UNKNOWN_COUNTRY = "ZZ"  # Spotify's code for "country not known"


def read_records(path: Path) -> pd.DataFrame:
    # Export files are capped at about 12 MB each, so one json.load per file is fine.
    with open(path, encoding="utf-8") as handle:
        records = json.load(handle)
    if not isinstance(records, list):
        raise ValueError(f"{path}: expected a JSON array of plays")
    return pd.DataFrame.from_records(records)


def _col(frame: pd.DataFrame, name: str) -> pd.Series:
    return frame[name] if name in frame.columns else pd.Series(pd.NA, index=frame.index)


def _present(values: pd.Series) -> pd.Series:
    return values.notna() & (values.astype("string").str.strip() != "")


def is_non_music(frame: pd.DataFrame) -> pd.Series:
    """Podcast episodes and audiobooks: no track URI, but episode/audiobook fields."""
    other = pd.Series(False, index=frame.index)
    for name in frame.columns:
        if name.startswith(("episode_", "spotify_episode", "audiobook_")):
            other |= _present(frame[name])
    return other & ~_present(_col(frame, "spotify_track_uri"))


def to_frames(plays: pd.DataFrame, user_id: int) -> tuple[dict[str, pd.DataFrame], dict]:
    """Map one export file to raw frames; also returns counts of what was skipped/blanked."""
    non_music = is_non_music(plays)
    plays = plays[~non_music].reset_index(drop=True)
    uri = _col(plays, "spotify_track_uri").astype("string")
    track_id = uri.str.extract(r"^spotify:track:([0-9A-Za-z]+)$", expand=False)
    ts = pd.to_datetime(_col(plays, "ts"), errors="coerce", utc=True).dt.tz_localize(None)
    ms = pd.to_numeric(_col(plays, "ms_played"), errors="coerce")
    started = ts - pd.to_timedelta(ms.fillna(0), unit="ms")
    reason_start, unknown_start = mapping.map_values(_col(plays, "reason_start"),
                                                     mapping.REASON_STARTS)
    reason_end, unknown_end = mapping.map_values(_col(plays, "reason_end"), mapping.REASON_ENDS)
    platform = _col(plays, "platform")
    device = platform.map(mapping.device_of)
    unknown_platforms = platform[_present(platform) & device.isna()]
    event_ids = [mapping.stable_text("hist:", user_id, t, tr)
                 for t, tr in zip(_col(plays, "ts"), uri, strict=True)]
    events = pd.DataFrame({
        "event_id": event_ids,
        "user_id": user_id,
        "track_id": track_id,
        "session_hint": None,
        "started_at": started,
        "ms_played": _col(plays, "ms_played"),
        "context_type": None,
        "context_id": None,
        "position_in_context": None,
        "reason_start": reason_start,
        "reason_end": reason_end,
        "is_shuffle": _col(plays, "shuffle"),
        "device": device,
    })

    artist_name = _col(plays, "master_metadata_album_artist_name").astype("string")
    artist_name = artist_name.fillna("Unknown artist")
    artist_id = artist_name.map(lambda n: mapping.stable_text("name:", n.strip().lower()))
    catalogue = pd.DataFrame({
        "track_id": track_id,
        "track_name": _col(plays, "master_metadata_track_name").astype("string")
        .fillna(track_id),
        "artist_id": artist_id,
        "artist_name": artist_name,
        "album_name": _col(plays, "master_metadata_album_album_name"),
        "ms_played": ms,
    })[track_id.notna()]
    tracks = catalogue.groupby("track_id", as_index=False).agg(
        track_name=("track_name", "first"), artist_id=("artist_id", "first"),
        album_name=("album_name", "first"), duration_ms=("ms_played", "max"))
    tracks["duration_ms"] = tracks["duration_ms"].fillna(1).clip(lower=1)
    artists = (catalogue[["artist_id", "artist_name"]].drop_duplicates("artist_id"))

    country = _col(plays, "conn_country").astype("string").str.upper()
    country = country[_present(country) & (country != UNKNOWN_COUNTRY)]
    users = pd.DataFrame([{
        "user_id": user_id,
        # The export has no sign-up date: the first play is the best lower bound.
        "signup_at": started.min(),
        "country": country.mode().iloc[0] if not country.empty else None,
    }])
    counts = {
        "non_music_skipped": int(non_music.sum()),
        "unknown_reason_start": sorted(set(unknown_start)),
        "unknown_reason_end": sorted(set(unknown_end)),
        "unknown_platforms": sorted(set(unknown_platforms.astype(str))),
    }
    return {"listening_events": events, "tracks": tracks, "artists": artists,
            "users": users}, counts


def _existing_signup(conn: db.Connection, user_id: int) -> pd.Timestamp | None:
    rows = db.read_sql(conn, f"select signup_at from {contract.RAW_SCHEMA}.users "
                             "where user_id = %s", (user_id,))
    return None if rows.empty else pd.Timestamp(rows["signup_at"].iloc[0])


def load_file(conn: db.Connection, path: Path, *, user_id: int, tier: str,
              chunk_rows: int = CHUNK_ROWS) -> list[str]:
    frames, counts = to_frames(read_records(path), user_id)
    users = frames["users"].assign(tier=tier)
    earlier = _existing_signup(conn, user_id)
    if earlier is not None:  # several export files: the account is as old as its first play
        users["signup_at"] = min(earlier, users["signup_at"].iloc[0])
    # Named after the file: a corrected export replaces its batches instead of adding rows.
    prefix = f"history:{user_id}:{path.name}"
    source = str(path)
    lines = []
    for name, update_existing in (("users", True), ("artists", False), ("tracks", False)):
        frame = users if name == "users" else frames[name]
        # Placeholders never overwrite richer rows (say, from the spotify command).
        r = upsert.upsert(conn, name, frame, batch_id=upsert.batch_name(prefix, name),
                          source=source, update_existing=update_existing)
        lines.append(f"raw.{name}: {r.rows_inserted} inserted, {r.rows_updated} updated, "
                     f"{r.rows_rejected} rejected")
    events = frames["listening_events"]
    chunks = (events.iloc[i:i + chunk_rows] for i in range(0, len(events), chunk_rows))
    result = load.load(conn, "listening_events", progress(chunks, path.name),
                       batch_id=upsert.batch_name(prefix, "listening_events"), source=source,
                       content_hash=load.file_hash(path))
    lines.append(f"raw.listening_events: {result.rows_loaded} loaded, "
                 f"{result.rows_rejected} rejected (batch {result.batch_id})")
    if counts["non_music_skipped"]:
        lines.append(f"skipped {counts['non_music_skipped']} podcast/audiobook rows")
    for key in ("unknown_reason_start", "unknown_reason_end", "unknown_platforms"):
        if counts[key]:
            log.warning("%s: %s left empty for unmapped values %s", path.name,
                        key.removeprefix("unknown_"), counts[key])
    return lines
