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
- tracks get their id as title and one placeholder artist; a log's tracks that raw.tracks
  lacks become stub tracks (is_stub, estimated duration) loaded with their plays, and a track
  features file loaded later fills them in;
- the log's own skip flags are kept: source_skipped = skip_2, source_skip_label the finest;
- dates are ISO (2018-07-15) or re-saved (15-07-18, 07/15/2018): the order of day and month is
  decided once per file from all its dates, and a file where every date reads both ways needs
  --dayfirst or --monthfirst.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from python_jobs import contract, db, load
from python_jobs.ingest import mapping, progress, rejects, upsert

log = logging.getLogger(__name__)

VERY_BRIEF_MS = 5_000
BRIEF_MS = 20_000
MOST_SHARE = 0.8
SHORT_PAUSE_MS = 10_000
LONG_PAUSE_MS = 120_000
START_OFFSET_RANGE_S = 1_800
# The log says nothing about a track's length: a stub gets a typical pop track's length until
# a track features file gives the real one (docs/ingest.md).
STUB_DURATION_MS = 210_000
PLACEHOLDER_ARTIST = {"artist_id": "mssd:unknown-artist",
                      "artist_name": "Unknown artist (MSSD has no artist data)"}
FEATURE_COLUMNS = ("danceability", "energy", "key", "loudness", "mode", "speechiness",
                   "acousticness", "instrumentalness", "liveness", "valence", "tempo",
                   "time_signature")


def _columns(path: Path) -> list[str]:
    if path.suffix.lower() == ".parquet":
        return list(pq.ParquetFile(path).schema_arrow.names)
    return list(next(load.read_file(path, chunk_rows=1)).columns)


def kind_of(path: Path) -> str:
    columns = set(_columns(path))
    if {"session_id", "session_position", "track_id_clean"} <= columns:
        return "log"
    if {"track_id", "duration", "acousticness"} <= columns:
        return "tracks"
    raise rejects.Unusable(f"{path}: neither an MSSD session log (session_id, session_position, "
                           "track_id_clean) nor an MSSD track features file (track_id, "
                           "duration, acousticness)")


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
        "is_stub": False,
    })
    # The features file knows only the year: the release date is that year, so precise.
    known_year = tracks["release_year"].notna()
    tracks["release_date"] = (tracks["release_year"].astype("Int64").astype("string")
                              + "-01-01").where(known_year)
    tracks["release_date_precision"] = pd.Series("year", index=tracks.index).where(known_year)
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
    stubs_before = _stub_count(conn)
    artists = upsert.upsert(conn, "artists", pd.DataFrame([PLACEHOLDER_ARTIST]),
                            batch_id=upsert.batch_name(prefix, "artists"), source=source,
                            update_existing=False)
    lines.append(f"raw.artists: {artists.rows_inserted} placeholder inserted")
    # Two passes over the file (one per table) keep each table one rerunnable batch.
    for name, pick in (("tracks", 0), ("audio_features", 1)):
        chunks = (track_frames(c)[pick] for c in _read(path, chunk_rows))
        # Tracks: fill in stubs and earlier MSSD rows, never a track another source described.
        only = (f"coalesce(t.is_stub, false) or t.artist_id = "
                f"'{PLACEHOLDER_ARTIST['artist_id']}'") if name == "tracks" else None
        r = upsert.upsert(conn, name, progress(chunks, f"{path.name} {name}"),
                          batch_id=upsert.batch_name(prefix, name), source=source,
                          update_if=only)
        lines.append(f"raw.{name}: {r.rows_inserted} inserted, {r.rows_updated} updated, "
                     f"{r.rows_rejected} rejected")
        if name == "tracks" and stubs_before:
            left = _stub_count(conn)
            if left < stubs_before:
                lines.append(f"filled in {stubs_before - left} stub tracks (reload their logs "
                             "to recompute ms_played from the real durations)")
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


def _stub_count(conn: db.Connection) -> int:
    rows = db.read_sql(conn, f"select count(*) as n from {contract.RAW_SCHEMA}.tracks "
                             "where is_stub")
    return int(rows["n"].iloc[0])


def _durations(conn: db.Connection, track_ids: pd.Series) -> tuple[pd.Series, set[str]]:
    """(duration_ms of the tracks raw.tracks has, the ids among them that are stubs)."""
    rows = db.read_sql(conn, f"select track_id, duration_ms, coalesce(is_stub, false) as stub "
                             f"from {contract.RAW_SCHEMA}.tracks where track_id = any(%s)",
                       (sorted(set(track_ids.dropna())),))
    return (rows.set_index("track_id")["duration_ms"].astype("float64"),
            set(rows.loc[rows["stub"], "track_id"]))


_ISO = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
_RESAVED = r"^(?P<a>[0-9]{1,2})[-/.](?P<b>[0-9]{1,2})[-/.](?P<y>[0-9]{2}|[0-9]{4})$"
ORDER_NAMES = {"iso": "ISO (YYYY-MM-DD)", "dmy": "day-first (DD-MM-YY)",
               "mdy": "month-first (MM-DD-YY)"}


def decide_date_order(values: pd.Series, forced: str | None, name: str) -> tuple[str, str]:
    """(iso | dmy | mdy, why) for one file's `date` values, decided from all of them.

    forced ('dmy' or 'mdy', from --dayfirst/--monthfirst) settles files where every date
    reads both ways; a file that contradicts it, mixes forms or cannot be read is refused.
    """
    text = pd.Series(values.dropna().astype("string").str.strip().unique(), dtype="string")
    text = text[text != ""]
    iso = text.str.match(_ISO).fillna(False)
    parts = text.str.extract(_RESAVED)
    resaved = parts["a"].notna()
    if iso.all():
        if forced:
            raise rejects.Unusable(f"{name}: dates are ISO (YYYY-MM-DD); drop "
                                   "--dayfirst/--monthfirst")
        return "iso", f"{len(text)} distinct dates, all ISO"
    if iso.any() and resaved.any():
        raise rejects.Unusable(f"{name}: dates mix ISO ({text[iso].iloc[0]}) and other forms "
                               f"({text[resaved].iloc[0]}); fix the file")
    if not resaved.all():
        raise rejects.Unusable(f"{name}: date {text[~resaved].iloc[0]!r} is neither YYYY-MM-DD "
                               "nor DD-MM-YY / MM-DD-YY (any of - / . between)")
    first, second = parts["a"].astype(int), parts["b"].astype(int)
    day_first, month_first = text[first > 12], text[second > 12]
    if len(day_first) and len(month_first):
        raise rejects.Unusable(f"{name}: dates read neither way: {day_first.iloc[0]} is "
                               f"day-first, {month_first.iloc[0]} month-first")
    found = "dmy" if len(day_first) else "mdy" if len(month_first) else None
    if found is None:
        if forced is None:
            raise rejects.Unusable(f"{name}: every one of its {len(text)} distinct dates has "
                                   "day and month <= 12, so the order is ambiguous: give "
                                   "--dayfirst or --monthfirst")
        return forced, f"{len(text)} distinct dates, all ambiguous: as told"
    if forced is not None and forced != found:
        example = (day_first if found == "dmy" else month_first).iloc[0]
        raise rejects.Unusable(f"{name}: {example} can only be {ORDER_NAMES[found]}, "
                               f"not {ORDER_NAMES[forced]}")
    example = (day_first if found == "dmy" else month_first).iloc[0]
    return found, f"{len(text)} distinct dates; {example} can only be read so"


def parse_dates(values: pd.Series, order: str) -> pd.Series:
    """Dates in the file's order (two-digit years are 20YY); NaT where not a real date."""
    text = values.astype("string").str.strip()
    if order == "iso":
        return pd.to_datetime(text, format="%Y-%m-%d", errors="coerce")
    parts = text.str.extract(_RESAVED)
    day, month = (parts["a"], parts["b"]) if order == "dmy" else (parts["b"], parts["a"])
    year = parts["y"].where(parts["y"].str.len() == 4, "20" + parts["y"])
    return pd.to_datetime(year + "-" + month.str.zfill(2) + "-" + day.str.zfill(2),
                          format="%Y-%m-%d", errors="coerce")


def skip_labels(s: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """(source_skipped = skip_2, the finest label set: skip_1 > skip_2 > skip_3 > not_skipped)."""
    flags = {name: _flag(s[name]) if name in s.columns else pd.Series(pd.NA, index=s.index,
                                                                       dtype="boolean")
             for name in ("skip_1", "skip_2", "skip_3", "not_skipped")}
    label = pd.Series(pd.NA, index=s.index, dtype="string")
    for name in ("not_skipped", "skip_3", "skip_2", "skip_1"):  # the finest set wins
        label[flags[name].fillna(False).to_numpy(dtype=bool)] = name
    return flags["skip_2"], label


def session_frames(log_chunk: pd.DataFrame, durations: pd.Series,
                   unmapped: set[str] | None = None, date_order: str = "iso",
                   ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(raw.listening_events rows, raw.users rows) for whole sessions.

    Events keep the log's `_row` (its row number) to find the original record of a reject.
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
    session_start = (parse_dates(first["date"], date_order)
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
    source_skipped, source_label = skip_labels(s)
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
        "source_skipped": source_skipped,
        "source_skip_label": source_label,
        "_row": s["_row"] if "_row" in s.columns else s.index + 1,
    })
    premium = _flag(first["premium"]).fillna(False).to_numpy(dtype=bool)
    users = pd.DataFrame({
        "user_id": user_id,
        "signup_at": session_start,
        "tier": pd.Series(premium, index=s.index).map({True: "premium", False: "free"}),
    }).drop_duplicates("user_id")
    return events, users


def _numbered(chunks: Iterable[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    """Chunks with `_row`, each row's 1-based number in the file (for rejects)."""
    seen = 0
    for chunk in chunks:
        numbers = chunk.attrs.get("row_numbers")
        chunk = chunk.reset_index(drop=True)
        chunk["_row"] = numbers if numbers is not None else range(seen + 1,
                                                                   seen + len(chunk) + 1)
        seen += len(chunk)
        yield chunk


def _row_problems(chunk: pd.DataFrame, order: str) -> pd.Series:
    """Reasons the log row itself cannot make a play ('' when it can)."""
    why = pd.Series("", index=chunk.index, dtype="object")
    track = chunk["track_id_clean"].astype("string").str.strip()
    why[track.isna() | (track == "")] = "track_id_clean: required value missing"
    why[parse_dates(chunk["date"], order).isna() & (why == "")] = \
        f"date: not a real date read {ORDER_NAMES[order]}"
    hour = pd.to_numeric(chunk["hour_of_day"], errors="coerce")
    why[~hour.between(0, 23) & (why == "")] = "hour_of_day: not an hour 0-23"
    position = pd.to_numeric(chunk["session_position"], errors="coerce")
    why[(position.isna() | (position < 1)) & (why == "")] = \
        "session_position: not a positive number"
    return why


def _originals(rows: pd.DataFrame) -> list[dict]:
    """Log rows as the file wrote them (for rejects), without the row number."""
    return rows.drop(columns="_row").astype("string").to_dict("records")


def read_order(path: Path, chunk_rows: int, forced: str | None) -> tuple[str, str]:
    dates = pd.concat([c["date"] for c in _read(path, chunk_rows)], ignore_index=True)
    return decide_date_order(dates, forced, str(path))


def load_log(conn: db.Connection, path: Path, *, chunk_rows: int,
             date_order: str | None = None, timezone: str | None = None) -> list[str]:
    # Named after the file: a corrected log replaces its batches instead of adding rows.
    prefix = f"mssd:{path.name}"
    source = str(path)
    order, why = read_order(path, chunk_rows, date_order)
    lines = [f"date order: {ORDER_NAMES[order]} ({why})"]
    users: list[pd.DataFrame] = []
    stubs: dict[str, int] = {}
    refused: list[tuple[dict, str, int]] = []
    reasons: Counter = Counter()
    unmapped: set[str] = set()

    def events() -> Iterator[pd.DataFrame]:
        for chunk in progress(whole_sessions(_numbered(_read(path, chunk_rows))), path.name):
            problems = _row_problems(chunk, order)
            bad = (problems != "").to_numpy()
            refused.extend(zip(_originals(chunk[bad]), problems[bad],
                               chunk["_row"][bad].astype(int), strict=True))
            kept = chunk[~bad]
            if kept.empty:
                continue
            durations, known_stubs = _durations(conn, kept["track_id_clean"])
            new = sorted(set(kept["track_id_clean"]) - set(durations.index) - set(stubs))
            stubs.update(dict.fromkeys(new, STUB_DURATION_MS))
            # Stubs an earlier run made stay in this batch (a rerun reports the same).
            stubs.update(durations[sorted(known_stubs - set(stubs))].astype(int).to_dict())
            durations = pd.concat([durations, pd.Series(stubs, dtype="float64")])
            durations = durations[~durations.index.duplicated()]
            chunk_events, chunk_users = session_frames(kept, durations, unmapped, order)
            good, why = rejects.split("listening_events", chunk_events)
            if len(why):
                rows = chunk_events.loc[why.index, "_row"].astype(int)
                source_rows = kept.set_index("_row").loc[rows].reset_index()
                refused.extend(zip(_originals(source_rows), why, rows, strict=True))
            users.append(chunk_users[chunk_users["user_id"].isin(good["user_id"])])
            yield good

    events_batch = upsert.batch_name(prefix, "listening_events")
    result = load.load(conn, "listening_events", events(), batch_id=events_batch, source=source,
                       content_hash=load.file_hash(path))
    extra = rejects.write(conn, "listening_events", [r for r, _, _ in refused],
                          [w for _, w, _ in refused], [n for _, _, n in refused],
                          batch_id=events_batch, source=source)
    upsert.count_rejects(conn, "listening_events", events_batch, extra)
    reasons.update(w for _, w, _ in refused)
    rejects.check_some_loaded(path.name, result.rows_loaded,
                              reasons + Counter({"contract": result.rows_rejected}))
    if unmapped:
        log.warning("%s: left empty for unmapped values %s", path.name, sorted(unmapped))
    if stubs:
        upsert.upsert(conn, "artists", pd.DataFrame([PLACEHOLDER_ARTIST]),
                      batch_id=upsert.batch_name(prefix, "artists"), source=source,
                      update_existing=False)
    stub_rows = pd.DataFrame({"track_id": list(stubs), "track_name": list(stubs),
                              "artist_id": PLACEHOLDER_ARTIST["artist_id"],
                              "duration_ms": list(stubs.values()), "is_stub": True})
    # Insert-only: a stub never overwrites a track another file described.
    t = upsert.upsert(conn, "tracks", stub_rows, batch_id=upsert.batch_name(prefix, "tracks"),
                      source=source, update_existing=False)
    all_users = pd.concat(users, ignore_index=True) if users else pd.DataFrame(
        columns=["user_id", "signup_at", "tier"])
    all_users["timezone"] = timezone
    all_users = upsert.keep_existing(conn, "users", all_users, "timezone")
    u = upsert.upsert(conn, "users", all_users, batch_id=upsert.batch_name(prefix, "users"),
                      source=source)
    lines += [f"raw.listening_events: {result.rows_loaded} loaded, "
              f"{result.rows_rejected + extra} rejected (batch {result.batch_id})"]
    lines += [f"  rejected: {n} x {w}" for w, n in reasons.most_common()]
    lines += [f"raw.tracks: {len(stubs)} of the log's tracks are stubs ({t.rows_inserted} new): "
              "unknown artist, estimated duration, until a track features file fills them in"
              if stubs else "raw.tracks: every track of the log is known, no stubs",
              f"raw.users: {u.rows_inserted} inserted, {u.rows_updated} updated, "
              f"{u.rows_rejected} rejected"]
    return lines


def load_files(conn: db.Connection, paths: list[Path], *, chunk_rows: int,
               date_order: str | None = None, timezone: str | None = None) -> list[str]:
    kinds = {path: kind_of(path) for path in paths}
    lines = []
    for path in sorted(paths, key=lambda p: kinds[p] != "tracks"):  # track features first
        found = (load_tracks(conn, path, chunk_rows=chunk_rows) if kinds[path] == "tracks"
                 else load_log(conn, path, chunk_rows=chunk_rows, date_order=date_order,
                               timezone=timezone))
        lines += [f"{path.name}: {line}" for line in found]
    return lines
