"""`tracks`: a public track / audio-feature file (CSV or Parquet) into raw, offline.

The built-in mapping reads the common public layout (one row per track and playlist:
track_id, track_name, track_artist, track_popularity, track_album_id, track_album_name,
track_album_release_date, playlist_genre, ..., the audio features, duration_ms); any column
already named like a target is taken as it is, and --map SOURCE=TARGET overrides both.
Rules (docs/ingest.md): one row per track, the first occurrence (repeats are counted);
artists without an id get a stable id hashed from the name (the same one history exports
get); genres per artist from the genre column, most frequent first; release dates
YYYY-MM-DD, YYYY-MM or YYYY kept with their precision; tempo 0 is unknown (null, counted);
NA and empty cells are missing. A track file fills in stub tracks but never overwrites a
track another source described.
"""

from __future__ import annotations

import re
from collections import Counter
from datetime import date
from pathlib import Path

import pandas as pd

from python_jobs import contract, db, exact, load
from python_jobs.ingest import mapping, rejects, upsert

TRACK_FIELDS = ("track_id", "track_name", "artist_id", "artist_name", "album_id", "album_name",
                "release_date", "popularity", "is_explicit", "duration_ms", "genre")
FEATURE_FIELDS = tuple(c for c in contract.TABLES["audio_features"].column_names
                       if c != "track_id")
TARGETS = TRACK_FIELDS + FEATURE_FIELDS
# Source names of the common public layouts; a column named like a target maps to itself.
BUILT_IN = {
    "track_artist": "artist_name", "artist": "artist_name", "artists": "artist_name",
    "track_popularity": "popularity", "track_album_id": "album_id",
    "track_album_name": "album_name", "album": "album_name",
    "track_album_release_date": "release_date", "playlist_genre": "genre",
    "track_genre": "genre", "explicit": "is_explicit", "id": "track_id", "name": "track_name",
}
_RELEASE = r"^(?P<year>[0-9]{4})(?:-(?P<month>[0-9]{2})(?:-(?P<day>[0-9]{2}))?)?$"


def parse_map(pairs: list[str]) -> dict[str, str]:
    """--map SOURCE=TARGET values; TARGET '-' means: ignore SOURCE."""
    out = {}
    for pair in pairs:
        source, sep, target = pair.partition("=")
        if not sep or not source or target not in (*TARGETS, "-"):
            raise rejects.Unusable(f"--map {pair!r}: give SOURCE=TARGET with TARGET one of "
                                   f"{', '.join(TARGETS)} or -")
        out[source] = target
    return out


def column_map(header: list[str], overrides: dict[str, str], name: str) -> dict[str, str]:
    """{source column: target} for one file's header."""
    missing = sorted(set(overrides) - set(header))
    if missing:
        raise rejects.Unusable(f"{name}: --map names {', '.join(missing)}, not in the header "
                               f"({', '.join(header)})")
    chosen: dict[str, str] = {}
    for column in header:
        target = overrides.get(column) or BUILT_IN.get(column) or (
            column if column in TARGETS else None)
        if target and target != "-":
            chosen[column] = target
    # An override wins over a built-in or same-named source for its target.
    for column, target in list(chosen.items()):
        if column not in overrides and target in overrides.values():
            del chosen[column]
    targets = Counter(chosen.values())
    twice = sorted(t for t, n in targets.items() if n > 1)
    if twice:
        sources = [c for c, t in chosen.items() if t == twice[0]]
        raise rejects.Unusable(f"{name}: columns {', '.join(sources)} all map to {twice[0]}; "
                               f"choose one with --map SOURCE={twice[0]} (and --map OTHER=-)")
    need = [t for t in ("track_id", "track_name", "duration_ms") if t not in targets]
    if not {"artist_id", "artist_name"} & set(targets):
        need.append("artist_name or artist_id")
    if need:
        raise rejects.Unusable(f"{name}: no column for {', '.join(need)} (header: "
                               f"{', '.join(header)}); name one with --map SOURCE=TARGET")
    return chosen


def read(path: Path, overrides: dict[str, str], chunk_rows: int) -> pd.DataFrame:
    """The whole file (public track files are small), mapped; `_row` = row number."""
    chunks = list(load.read_file(path, chunk_rows=chunk_rows))
    frame = pd.concat(chunks, ignore_index=True) if chunks else pd.DataFrame()
    original = frame.astype("string")
    original = original.mask(original.isin(exact.DEFAULT_MISSING))
    chosen = column_map([str(c) for c in frame.columns], overrides, str(path))
    mapped = original[list(chosen)].rename(columns=chosen)
    mapped["_row"] = range(1, len(mapped) + 1)
    mapped.attrs["original"] = original
    return mapped


def release_dates(text: pd.Series) -> tuple[pd.DataFrame, pd.Series]:
    """(release_date, release_date_precision, release_year) and which values are unreadable."""
    parts = text.str.extract(_RELEASE)
    precision = pd.Series(pd.NA, index=text.index, dtype="string")
    precision[parts["year"].notna()] = "year"
    precision[parts["month"].notna()] = "month"
    precision[parts["day"].notna()] = "day"
    iso = parts["year"] + "-" + parts["month"].fillna("01") + "-" + parts["day"].fillna("01")
    day = pd.to_datetime(iso, format="%Y-%m-%d", errors="coerce")
    bad = text.notna() & day.isna()
    out = pd.DataFrame({"release_date": day.dt.strftime("%Y-%m-%d").astype("string"),
                        "release_date_precision": precision.where(day.notna()),
                        "release_year": parts["year"].where(day.notna())})
    return out, bad


def release_parts(text: str | None) -> tuple[str | None, str | None]:
    """(first day as YYYY-MM-DD, precision) of one release date; (None, None) when unknown
    or impossible (Spotify writes "0000" for an unknown year)."""
    match = re.match(_RELEASE, text or "")
    if not match or int(match["year"]) < 1900:
        return None, None
    try:
        day = date(int(match["year"]), int(match["month"] or 1), int(match["day"] or 1))
    except ValueError:
        return None, None
    precision = "day" if match["day"] else "month" if match["month"] else "year"
    return day.isoformat(), precision


def _genres(rows: pd.DataFrame) -> pd.DataFrame:
    """artist_genres: every genre an artist's rows name, most rows first, then first seen."""
    named = rows[rows["genre"].notna()].assign(genre=lambda f: f["genre"].str.strip().str.lower())
    named = named[named["genre"] != ""]
    if named.empty:
        return pd.DataFrame(columns=["artist_id", "genre", "genre_rank"])
    counted = (named.groupby(["artist_id", "genre"], sort=False)
               .agg(n=("_row", "size"), first=("_row", "min")).reset_index()
               .sort_values(["artist_id", "n", "first"], ascending=[True, False, True]))
    counted["genre_rank"] = counted.groupby("artist_id").cumcount() + 1
    return counted[["artist_id", "genre", "genre_rank"]]


def _without_genres(conn: db.Connection, artist_ids: pd.Series) -> set[str]:
    known = db.read_sql(conn, f"select distinct artist_id from {contract.RAW_SCHEMA}."
                              "artist_genres where artist_id = any(%s)",
                        (sorted(set(artist_ids)),))
    return set(artist_ids) - set(known["artist_id"])


def load_file(conn: db.Connection, path: Path, overrides: dict[str, str], *,
              chunk_rows: int = load.CHUNK_ROWS) -> list[str]:
    rows = read(path, overrides, chunk_rows)
    original: pd.DataFrame = rows.attrs.pop("original")
    # Named after the file: a corrected file replaces its batches' registry rows.
    prefix = f"tracks:{path.name}"
    source = str(path)
    refused: list[tuple[int, str]] = []  # (row position, reason)
    counts: Counter = Counter()

    if "artist_id" not in rows.columns:
        rows["artist_id"] = rows["artist_name"].map(
            lambda n: None if pd.isna(n) else mapping.stable_text("name:", n.strip().lower()))
    if "artist_name" not in rows.columns:
        rows["artist_name"] = pd.NA
    dates, bad_date = (release_dates(rows["release_date"]) if "release_date" in rows.columns
                       else (pd.DataFrame(index=rows.index), pd.Series(False, index=rows.index)))
    refused += [(i, "release_date: not YYYY-MM-DD, YYYY-MM or YYYY") for i in
                rows.index[bad_date]]
    if "tempo" in rows.columns:
        zero = pd.to_numeric(rows["tempo"], errors="coerce") == 0
        counts["tempo 0 read as unknown (null)"] = int(zero.sum())
        rows["tempo"] = rows["tempo"].mask(zero)
    genres = _genres(rows) if "genre" in rows.columns else None

    present = rows["track_id"].notna()
    repeat = present & rows["track_id"].duplicated(keep="first")
    counts["repeated rows of a track dropped (first occurrence kept)"] = int(repeat.sum())
    first = rows[~repeat & ~bad_date]
    track_cols = [c for c in contract.TABLES["tracks"].column_names
                  if c in first.columns and c not in dates.columns]
    tracks = first[track_cols].join(dates).assign(is_stub=False)
    good_tracks, why = rejects.split("tracks", tracks)
    refused += list(why.items())
    # An artist needs a name to exist in raw; an id alone must already be there.
    artists = (rows.loc[good_tracks.index, ["artist_id", "artist_name"]]
               .dropna().drop_duplicates("artist_id"))

    kept = first.loc[good_tracks.index]
    features = kept.reindex(columns=["track_id", *FEATURE_FIELDS])
    has_feature = features[list(FEATURE_FIELDS)].notna().any(axis=1)
    good_features, why_features = rejects.split("audio_features", features[has_feature])

    tracks_batch = upsert.batch_name(prefix, "tracks")
    a = upsert.upsert(conn, "artists", artists, batch_id=upsert.batch_name(prefix, "artists"),
                      source=source, update_existing=False)
    t = upsert.upsert(conn, "tracks", good_tracks, batch_id=tracks_batch, source=source,
                      update_if="t.is_stub")
    f = upsert.upsert(conn, "audio_features", good_features,
                      batch_id=upsert.batch_name(prefix, "audio_features"), source=source)
    for table, batch, pairs in (("tracks", tracks_batch, refused),
                                ("audio_features", upsert.batch_name(prefix, "audio_features"),
                                 list(why_features.items()))):
        written = rejects.write(conn, table, [original.loc[i].to_dict() for i, _ in pairs],
                                [w for _, w in pairs], [int(rows.at[i, "_row"]) for i, _ in pairs],
                                batch_id=batch, source=source)
        upsert.count_rejects(conn, table, batch, written)
    lines = [f"read {len(rows)} rows, {int(present.sum() - repeat.sum())} distinct track ids",
             f"raw.tracks: {t.rows_inserted} inserted, {t.rows_updated} stubs filled in, "
             f"{len(good_tracks) - t.rows_inserted - t.rows_updated} already known (kept), "
             f"{len(refused)} rejected",
             f"raw.artists: {a.rows_inserted} inserted",
             f"raw.audio_features: {f.rows_inserted} inserted, {f.rows_updated} updated, "
             f"{len(why_features)} rejected"]
    if genres is not None:
        genres = genres[genres["artist_id"].isin(_without_genres(conn, artists["artist_id"]))]
        g = upsert.upsert(conn, "artist_genres", genres,
                          batch_id=upsert.batch_name(prefix, "artist_genres"), source=source,
                          update_existing=False)
        lines.append(f"raw.artist_genres: {g.rows_inserted} inserted")
    lines += [f"  {n} x {what}" for what, n in counts.items() if n]
    lines += [f"  rejected: {n} x {w}" for w, n in
              Counter(w for _, w in [*refused, *why_features.items()]).most_common()]
    if len(rows) and not len(good_tracks):
        raise rejects.AllRejected(f"{path.name}: all {len(rows)} rows rejected, nothing "
                                  f"loaded: {rejects.summary(Counter(w for _, w in refused))}")
    return lines
