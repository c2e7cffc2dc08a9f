"""Format `mssd`: Spotify's Music Streaming Sessions Dataset (session logs + track features).

Give the track features file(s) and the session log file(s) together, in any order; each is
recognised by its header, and track features load first because the logs need durations.
The dataset has no user ids, no titles or artists and no time within the hour, so the loader
synthesises them (docs/ingest.md lists every rule):
- one user per session: user_id = stable hash of session_id; tier from `premium`; the
  user's signup_at is the session's start (the only date the dataset has);
- started_at = date + hour_of_day of the session's first play + a stable offset within the
  first half hour, then each play starts after the previous one's ms_played plus the pause;
- ms_played from the skip flags: skip_1 very brief (5 s), skip_2 brief (20 s), skip_3 most
  (80 %) of the track, otherwise the full duration, never above the duration;
- tracks get their id as title and one placeholder artist.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from python_jobs import contract, db, load
from python_jobs.ingest import mapping, progress, upsert

log = logging.getLogger(__name__)

VERY_BRIEF_MS = 5_000
BRIEF_MS = 20_000
MOST_SHARE = 0.8
SHORT_PAUSE_MS = 10_000
LONG_PAUSE_MS = 120_000
START_OFFSET_RANGE_S = 1_800
PLACEHOLDER_ARTIST = {"artist_id": "mssd:unknown-artist",
                      "artist_name": "Unknown artist (MSSD has no artist data)"}
FEATURE_COLUMNS = ("danceability", "energy", "key", "loudness", "mode", "speechiness",
                   "acousticness", "instrumentalness", "liveness", "valence", "tempo",
                   "time_signature")


def _columns(path: Path) -> list[str]:
    if path.suffix.lower() == ".parquet":
        return list(pq.ParquetFile(path).schema_arrow.names)
    return list(pd.read_csv(path, nrows=0).columns)


def kind_of(path: Path) -> str:
    columns = set(_columns(path))
    if {"session_id", "session_position", "track_id_clean"} <= columns:
        return "log"
    if {"track_id", "duration", "acousticness"} <= columns:
        return "tracks"
    raise SystemExit(f"{path}: neither an MSSD session log nor an MSSD track features file")


def _flag(values: pd.Series) -> pd.Series:
    text = values.astype("string").str.strip().str.lower()
    out = pd.Series(pd.NA, index=values.index, dtype="boolean")
    out[text.isin(["true", "t", "1"])] = True
    out[text.isin(["false", "f", "0"])] = False
    return out


def track_frames(chunk: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(raw.tracks rows, raw.audio_features rows) from one chunk of track features."""
    year = pd.to_numeric(chunk["release_year"], errors="coerce")
    popularity = pd.to_numeric(chunk["us_popularity_estimate"], errors="coerce")
    tracks = pd.DataFrame({
        "track_id": chunk["track_id"],
        "track_name": chunk["track_id"],  # the dataset has no titles
        "artist_id": PLACEHOLDER_ARTIST["artist_id"],
        "album_id": None,
        "album_name": None,
        # An impossible year is blanked, not rejected: the track itself is still real.
        "release_year": year.where(year.between(1900, 2100)).round(),
        "duration_ms": (pd.to_numeric(chunk["duration"], errors="coerce") * 1000).round(),
        "popularity": popularity.clip(0, 100).round(),
        "is_explicit": None,
    })
    features = chunk.reindex(columns=["track_id", *FEATURE_COLUMNS]).copy()
    mode = chunk["mode"].astype("string").str.strip().str.lower()
    features["mode"] = mode.map({"major": "1", "minor": "0", "1": "1", "0": "0"})
    return tracks, features


def _read(path: Path, chunk_rows: int) -> Iterator[pd.DataFrame]:
    return load.read_file(path, chunk_rows=chunk_rows)


def load_tracks(conn: db.Connection, path: Path, *, chunk_rows: int) -> list[str]:
    prefix = f"mssd:{path.name}"
    source = str(path)
    lines = []
    artists = upsert.upsert(conn, "artists", pd.DataFrame([PLACEHOLDER_ARTIST]),
                            batch_id=upsert.batch_name(prefix, "artists"), source=source,
                            update_existing=False)
    lines.append(f"raw.artists: {artists.rows_inserted} placeholder inserted")
    # Two passes over the file (one per table) keep each table one rerunnable batch.
    for name, pick in (("tracks", 0), ("audio_features", 1)):
        chunks = (track_frames(c)[pick] for c in _read(path, chunk_rows))
        r = upsert.upsert(conn, name, progress(chunks, f"{path.name} {name}"),
                          batch_id=upsert.batch_name(prefix, name), source=source)
        lines.append(f"raw.{name}: {r.rows_inserted} inserted, {r.rows_updated} updated, "
                     f"{r.rows_rejected} rejected")
    return lines


def whole_sessions(chunks: Iterable[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    """Re-cut chunks so no session is split (logs are grouped by session, in order)."""
    held = None
    for chunk in chunks:
        if held is not None:
            chunk = pd.concat([held, chunk], ignore_index=True)
        if chunk.empty:
            continue
        last = chunk["session_id"].iloc[-1]
        tail = (chunk["session_id"] == last).to_numpy()
        held = chunk[tail]
        if (~tail).any():
            yield chunk[~tail].reset_index(drop=True)
    if held is not None and not held.empty:
        yield held.reset_index(drop=True)


def _durations(conn: db.Connection, track_ids: pd.Series) -> pd.Series:
    rows = db.read_sql(conn, f"select track_id, duration_ms from {contract.RAW_SCHEMA}.tracks "
                             "where track_id = any(%s)", (sorted(set(track_ids.dropna())),))
    return rows.set_index("track_id")["duration_ms"].astype("float64")


def session_frames(log_chunk: pd.DataFrame, durations: pd.Series,
                   unmapped: set[str] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(raw.listening_events rows, raw.users rows) for whole sessions.

    Source values with no contract mapping are blanked and added to `unmapped`.
    """
    s = log_chunk.copy()
    s["_position"] = pd.to_numeric(s["session_position"], errors="coerce")
    s = s.sort_values(["session_id", "_position"], kind="stable").reset_index(drop=True)
    duration = s["track_id_clean"].map(durations)
    played = duration.copy()
    skip_3 = _flag(s["skip_3"]).fillna(False).to_numpy(dtype=bool)
    skip_2 = _flag(s["skip_2"]).fillna(False).to_numpy(dtype=bool)
    skip_1 = _flag(s["skip_1"]).fillna(False).to_numpy(dtype=bool)
    # Flags nest (skip_1 implies skip_2 implies skip_3): apply the weakest first.
    played[skip_3] = (duration * MOST_SHARE).round()[skip_3]
    played[skip_2] = duration.clip(upper=BRIEF_MS)[skip_2]
    played[skip_1] = duration.clip(upper=VERY_BRIEF_MS)[skip_1]
    pause = pd.Series(0.0, index=s.index)
    pause[_flag(s["short_pause_before_play"]).fillna(False).to_numpy(dtype=bool)] = \
        SHORT_PAUSE_MS
    pause[_flag(s["long_pause_before_play"]).fillna(False).to_numpy(dtype=bool)] = LONG_PAUSE_MS
    pause[s.groupby("session_id").cumcount().to_numpy() == 0] = 0
    # Each play starts after every earlier play and every pause up to and including its own.
    elapsed = (s.assign(_p=played.fillna(0)).groupby("session_id")["_p"].cumsum()
               - played.fillna(0) + pause.groupby(s["session_id"]).cumsum())
    first = s.groupby("session_id").transform("first")
    offset_s = s["session_id"].map(lambda sid: mapping.stable_int("mssd-start", sid)
                                   % START_OFFSET_RANGE_S)
    session_start = (pd.to_datetime(first["date"], errors="coerce")
                     + pd.to_timedelta(pd.to_numeric(first["hour_of_day"], errors="coerce"),
                                       unit="h")
                     + pd.to_timedelta(offset_s, unit="s"))
    user_id = s["session_id"].map(lambda sid: mapping.stable_int("mssd-user", sid))
    context, unknown_context = mapping.map_values(s["context_type"], mapping.CONTEXTS)
    reason_start, unknown_start = mapping.map_values(s["hist_user_behavior_reason_start"],
                                                     mapping.REASON_STARTS)
    reason_end, unknown_end = mapping.map_values(s["hist_user_behavior_reason_end"],
                                                 mapping.REASON_ENDS)
    if unmapped is not None:
        unmapped.update(f"context_type={v}" for v in unknown_context)
        unmapped.update(f"reason_start={v}" for v in unknown_start)
        unmapped.update(f"reason_end={v}" for v in unknown_end)
    events = pd.DataFrame({
        "event_id": "mssd:" + s["session_id"].astype("string") + ":"
        + s["session_position"].astype("string"),
        "user_id": user_id,
        "track_id": s["track_id_clean"],
        "session_hint": s["session_id"],
        "started_at": session_start + pd.to_timedelta(elapsed, unit="ms"),
        "ms_played": played,
        "context_type": context,
        "context_id": None,
        "position_in_context": None,
        "reason_start": reason_start,
        "reason_end": reason_end,
        "is_shuffle": _flag(s["hist_user_behavior_is_shuffle"]),
        "device": None,
    })
    premium = _flag(first["premium"]).fillna(False).to_numpy(dtype=bool)
    users = pd.DataFrame({
        "user_id": user_id,
        "signup_at": session_start,
        "tier": pd.Series(premium, index=s.index).map({True: "premium", False: "free"}),
    }).drop_duplicates("user_id")
    return events, users


def load_log(conn: db.Connection, path: Path, *, chunk_rows: int) -> list[str]:
    # Named after the file: a corrected log replaces its batches instead of adding rows.
    prefix = f"mssd:{path.name}"
    source = str(path)
    users: list[pd.DataFrame] = []
    unknown: list[tuple[dict, str]] = []
    unmapped: set[str] = set()

    def events() -> Iterator[pd.DataFrame]:
        for chunk in progress(whole_sessions(_read(path, chunk_rows)), path.name):
            durations = _durations(conn, chunk["track_id_clean"])
            known = chunk["track_id_clean"].isin(durations.index)
            # Keep rows sane for dbt: a play of a track raw.tracks lacks is quarantined.
            unknown.extend((r, "track_id_clean: not in raw.tracks (load the MSSD track "
                               "features file first)")
                           for r in chunk[~known].astype("string").fillna("").to_dict("records"))
            chunk_events, chunk_users = session_frames(chunk, durations, unmapped)
            users.append(chunk_users)
            yield chunk_events[chunk_events["track_id"].isin(durations.index)]

    events_batch = upsert.batch_name(prefix, "listening_events")
    result = load.load(conn, "listening_events", events(), batch_id=events_batch, source=source,
                       content_hash=load.file_hash(path))
    extra = upsert.add_batch_rejects(conn, "listening_events", unknown, batch_id=events_batch,
                                     source=source)
    all_users = pd.concat(users, ignore_index=True) if users else pd.DataFrame(
        columns=contract.TABLES["users"].column_names)
    if unmapped:
        log.warning("%s: left empty for unmapped values %s", path.name, sorted(unmapped))
    u = upsert.upsert(conn, "users", all_users, batch_id=upsert.batch_name(prefix, "users"),
                      source=source)
    return [f"raw.listening_events: {result.rows_loaded} loaded, "
            f"{result.rows_rejected + extra} rejected (batch {result.batch_id})",
            f"raw.users: {u.rows_inserted} inserted, {u.rows_updated} updated, "
            f"{u.rows_rejected} rejected"]


def load_files(conn: db.Connection, paths: list[Path], *, chunk_rows: int) -> list[str]:
    kinds = {path: kind_of(path) for path in paths}
    lines = []
    for path in sorted(paths, key=lambda p: kinds[p] != "tracks"):  # track features first
        loader = load_tracks if kinds[path] == "tracks" else load_log
        lines += [f"{path.name}: {line}" for line in loader(conn, path, chunk_rows=chunk_rows)]
    return lines
