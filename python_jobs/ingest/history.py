"""Format `history`: Spotify's "extended streaming history" export (JSON arrays of plays).

Each file (Streaming_History_Audio_*.json, or the older endsong_*.json) is one batch. The
export has no user id (give --user-id), no track duration and no artist id, so: `ts` is when
playback *stopped*, hence started_at = ts - ms_played; event_id is a stable hash of (user,
ts, track); artist ids are a stable hash of the artist name ("name:..."); a track's
duration_ms is the longest play seen (a lower bound) until the spotify command fetches the
real one. Podcast episodes and audiobook chapters are counted and not loaded; local files
and rows without any URI go to raw.load_rejects as the export wrote them. The export's own
`skipped` flag is kept beside the plays. The listener's time zone is --timezone, else the
country's when it has one clock. A file that is not valid JSON (a BOM is fine) stops the
command with one line naming the place; nothing is loaded.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from pathlib import Path

import pandas as pd

from python_jobs import contract, db, load
from python_jobs.ingest import mapping, progress, rejects, timezones, upsert

log = logging.getLogger(__name__)

CHUNK_ROWS = 50_000
UNKNOWN_COUNTRY = "ZZ"  # Spotify's code for "country not known"


def read_records(path: Path) -> pd.DataFrame:
    """The export's plays, one row each (`_row`: 1-based place in the array, `_record`: the
    play's own object)."""
    # Export files are capped at about 12 MB each, so one json.load per file is fine.
    try:
        with open(path, encoding="utf-8-sig") as handle:  # some editors save a BOM
            records = json.load(handle)
    except json.JSONDecodeError as exc:
        raise rejects.Unusable(f"{path}: not valid JSON at line {exc.lineno} column "
                               f"{exc.colno} (character {exc.pos}): {exc.msg}; a truncated "
                               "download? nothing loaded") from exc
    except UnicodeDecodeError as exc:
        raise rejects.Unusable(f"{path}: not UTF-8 text at byte {exc.start}") from exc
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise rejects.Unusable(f"{path}: expected a JSON array of play objects")
    frame = pd.DataFrame.from_records(records)
    if len(frame) and "ts" not in frame.columns:
        found = ", ".join(map(str, frame.columns[:6]))
        hint = (" (the one-year StreamingHistory*.json has no track URIs: request the "
                "extended streaming history)" if "endTime" in frame.columns else "")
        raise rejects.Unusable(f"{path}: no field ts, not an extended streaming history "
                               f"export (fields: {found}){hint}")
    frame["_row"] = range(1, len(frame) + 1)
    frame["_record"] = records  # what a reject keeps: the play exactly as the export has it
    return frame


def _col(frame: pd.DataFrame, name: str) -> pd.Series:
    return frame[name] if name in frame.columns else pd.Series(pd.NA, index=frame.index)


def _present(values: pd.Series) -> pd.Series:
    return values.notna() & (values.astype("string").str.strip() != "")


def _any_present(frame: pd.DataFrame, prefixes: tuple[str, ...]) -> pd.Series:
    found = pd.Series(False, index=frame.index)
    for name in frame.columns:
        if str(name).startswith(prefixes):
            found |= _present(frame[name])
    return found


def kinds(frame: pd.DataFrame) -> pd.Series:
    """track | episode | audiobook | local | no_uri | other_uri for every row."""
    uri = _col(frame, "spotify_track_uri").astype("string").str.strip()
    has_uri = _present(uri)
    kind = pd.Series("other_uri", index=frame.index, dtype="object")
    kind[~has_uri] = "no_uri"
    kind[~has_uri & _any_present(frame, ("episode_", "spotify_episode"))] = "episode"
    kind[~has_uri & _any_present(frame, ("audiobook_",))] = "audiobook"
    kind[has_uri & uri.str.startswith("spotify:local:").fillna(False)] = "local"
    kind[has_uri & uri.str.fullmatch(r"spotify:track:[0-9A-Za-z]+").fillna(False)] = "track"
    return kind


REJECTED_KINDS = {
    "local": "spotify_track_uri: a local file (spotify:local:...), it has no Spotify track id",
    "no_uri": "spotify_track_uri: missing, and no episode or audiobook either",
    "other_uri": "spotify_track_uri: not spotify:track:<id>",
}


def _skipped(values: pd.Series) -> pd.Series:
    text = values.astype("string").str.strip().str.lower()
    return text.map({"true": True, "1": True, "false": False, "0": False}).astype("boolean")


def to_frames(plays: pd.DataFrame, user_id: int) -> tuple[dict[str, pd.DataFrame], dict]:
    """Map one export file's track plays to raw frames; also returns counts of what was
    not loaded or blanked. Rows that are not track plays are left to the caller (kinds)."""
    kind = kinds(plays)
    plays = plays[kind == "track"]
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
        "source_skipped": _skipped(_col(plays, "skipped")),
        "_row": _col(plays, "_row"),
    }, index=plays.index)
    events["source_skip_label"] = events["source_skipped"].map(
        {True: "skipped", False: "not_skipped"}).astype("string")

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
    }, index=plays.index)[track_id.notna()]
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
        "kinds": kind.value_counts().to_dict(),
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


def _zone(country: str | None, timezone: str | None) -> tuple[str | None, str]:
    if timezone:
        return timezone, "from --timezone"
    zone = timezones.of_country(country)
    if zone:
        return zone, f"from country {country}"
    if country:
        return None, f"none: country {country} has several; give --timezone (local time = UTC)"
    return None, "none: no country in the export; give --timezone (local time = UTC)"


def load_file(conn: db.Connection, path: Path, *, user_id: int, tier: str,
              chunk_rows: int = CHUNK_ROWS, timezone: str | None = None) -> list[str]:
    plays = read_records(path)
    frames, counts = to_frames(plays, user_id)
    users = frames["users"].assign(tier=tier)
    earlier = _existing_signup(conn, user_id)
    if earlier is not None:  # several export files: the account is as old as its first play
        users["signup_at"] = min(earlier, users["signup_at"].iloc[0])
    zone, zone_why = _zone(users["country"].iloc[0], timezone)
    users["timezone"] = zone
    users = upsert.keep_existing(conn, "users", users, "timezone")
    zone = users["timezone"].iloc[0] if pd.notna(users["timezone"].iloc[0]) else None
    if zone and not timezone and zone != timezones.of_country(users["country"].iloc[0]):
        zone_why = "kept from an earlier load"
    # Named after the file: a corrected export replaces its batches instead of adding rows.
    prefix = f"history:{user_id}:{path.name}"
    source = str(path)
    events_batch = upsert.batch_name(prefix, "listening_events")

    kind = kinds(plays)
    refused = [(i, REJECTED_KINDS[k]) for i, k in kind.items() if k in REJECTED_KINDS]
    good, why = rejects.split("listening_events", frames["listening_events"])
    refused += list(why.items())
    lines = []
    if len(good):  # a file of only podcasts or rejects names no listener to record
        for name, update_existing in (("users", True), ("artists", False), ("tracks", False)):
            frame = users if name == "users" else frames[name]
            # Placeholders never overwrite richer rows (say, from the spotify command).
            r = upsert.upsert(conn, name, frame, batch_id=upsert.batch_name(prefix, name),
                              source=source, update_existing=update_existing)
            lines.append(f"raw.{name}: {r.rows_inserted} inserted, {r.rows_updated} updated, "
                         f"{r.rows_rejected} rejected")
    chunks = (good.iloc[i:i + chunk_rows] for i in range(0, len(good), chunk_rows))
    result = load.load(conn, "listening_events", progress(chunks, path.name),
                       batch_id=events_batch, source=source, content_hash=load.file_hash(path))
    written = rejects.write(conn, "listening_events",
                            [plays.at[i, "_record"] for i, _ in refused],
                            [w for _, w in refused],
                            [int(plays.at[i, "_row"]) for i, _ in refused],
                            batch_id=events_batch, source=source)
    upsert.count_rejects(conn, "listening_events", events_batch, written)
    reasons = Counter(w for _, w in refused)
    episodes = counts["kinds"].get("episode", 0)
    audiobooks = counts["kinds"].get("audiobook", 0)
    if episodes + audiobooks == len(plays) and len(plays):
        lines.append(f"only podcast episodes / audiobooks ({len(plays)} rows): nothing to load")
    else:
        rejects.check_some_loaded(path.name, result.rows_loaded,
                                  reasons + Counter({"contract": result.rows_rejected}))
    lines.append(f"raw.listening_events: {result.rows_loaded} loaded, "
                 f"{result.rows_rejected + written} rejected (batch {result.batch_id})")
    lines += [f"  rejected: {n} x {w}" for w, n in reasons.most_common()]
    lines.append(f"not loaded (not music): {episodes} podcast episodes, {audiobooks} "
                 "audiobook chapters")
    skipped = good["source_skipped"]
    if skipped.notna().any():
        lines.append(f"skipped flag (the export's own): {int(skipped.sum())} of "
                     f"{int(skipped.notna().sum())} plays")
    lines.append(f"time zone: {zone or 'UTC'} ({zone_why})")
    for key in ("unknown_reason_start", "unknown_reason_end", "unknown_platforms"):
        if counts[key]:
            log.warning("%s: %s left empty for unmapped values %s", path.name,
                        key.removeprefix("unknown_"), counts[key])
    return lines
