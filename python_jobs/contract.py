"""The raw data contract: every table in schema `raw`, its columns, types and rules.

One definition serves the DDL (`ddl()`), the loaders' validation (`validate()`) and the
documentation (docs/raw_contract.md is checked against it by a test), so they cannot drift.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

RAW_SCHEMA = "raw"

# Vocabularies shared by the generator, the loaders and dbt's accepted_values tests.
TIERS = ("free", "premium")
PLAYLIST_TYPES = ("editorial", "algorithmic", "user")
CONTEXT_TYPES = ("playlist", "album", "artist", "radio", "search", "collection")
REASON_STARTS = ("trackdone", "fwdbtn", "backbtn", "clickrow", "playbtn", "appload", "remote")
REASON_ENDS = ("trackdone", "fwdbtn", "backbtn", "endplay", "logout", "remote", "unexpected")
DEVICES = ("mobile", "desktop", "web", "smart_speaker", "tv")


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # text | bigint | integer | double | boolean | date | timestamp
    description: str
    required: bool = False
    allowed: tuple[str, ...] | None = None
    min_value: float | None = None
    max_value: float | None = None


@dataclass(frozen=True)
class Table:
    name: str
    description: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    partition_column: str | None = None  # Parquet layout: one folder per value of this day
    extra: dict = field(default_factory=dict)

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]


def _c(name: str, type_: str, description: str, **kw) -> Column:
    return Column(name, type_, description, **kw)


TABLES: dict[str, Table] = {
    t.name: t
    for t in (
        Table(
            "users",
            "One row per listener account.",
            (
                _c("user_id", "bigint", "Listener id.", required=True),
                _c("signup_at", "timestamp", "Account creation time, UTC.", required=True),
                _c("tier", "text", "Subscription tier at export time.", required=True,
                   allowed=TIERS),
                _c("country", "text", "ISO 3166-1 alpha-2 country code of the account."),
                _c("birth_year", "integer", "Self-reported birth year; may be missing.",
                   min_value=1900, max_value=2030),
            ),
            key=("user_id",),
        ),
        Table(
            "artists",
            "One row per artist.",
            (
                _c("artist_id", "text", "Artist id (Spotify id for real data).", required=True),
                _c("artist_name", "text", "Display name.", required=True),
                _c("popularity", "integer", "0-100 popularity score.", min_value=0,
                   max_value=100),
                _c("followers", "bigint", "Follower count.", min_value=0),
            ),
            key=("artist_id",),
        ),
        Table(
            "artist_genres",
            "One row per artist and genre; genre_rank 1 is the artist's primary genre.",
            (
                _c("artist_id", "text", "Artist id.", required=True),
                _c("genre", "text", "Genre name, lower case.", required=True),
                _c("genre_rank", "integer", "1 = primary genre, then 2, 3, ...", required=True,
                   min_value=1),
            ),
            key=("artist_id", "genre"),
        ),
        Table(
            "tracks",
            "One row per track (catalogue metadata, no audio features).",
            (
                _c("track_id", "text", "Track id (Spotify id for real data).", required=True),
                _c("track_name", "text", "Title.", required=True),
                _c("artist_id", "text", "Primary artist id.", required=True),
                _c("album_id", "text", "Album id."),
                _c("album_name", "text", "Album title."),
                _c("release_year", "integer", "Year of release.", min_value=1900,
                   max_value=2100),
                _c("duration_ms", "integer", "Track length in milliseconds.", required=True,
                   min_value=1),
                _c("popularity", "integer", "0-100 popularity score.", min_value=0,
                   max_value=100),
                _c("is_explicit", "boolean", "Explicit lyrics."),
            ),
            key=("track_id",),
        ),
        Table(
            "audio_features",
            "One row per track with Spotify-style audio features (separate because the API "
            "may refuse them; then they come from a file).",
            (
                _c("track_id", "text", "Track id.", required=True),
                _c("danceability", "double", "0-1.", min_value=0, max_value=1),
                _c("energy", "double", "0-1.", min_value=0, max_value=1),
                _c("key", "integer", "Pitch class 0-11, -1 if unknown.", min_value=-1,
                   max_value=11),
                _c("loudness", "double", "Average loudness in dB (typically -60..0)."),
                _c("mode", "integer", "1 major, 0 minor.", min_value=0, max_value=1),
                _c("speechiness", "double", "0-1.", min_value=0, max_value=1),
                _c("acousticness", "double", "0-1.", min_value=0, max_value=1),
                _c("instrumentalness", "double", "0-1.", min_value=0, max_value=1),
                _c("liveness", "double", "0-1.", min_value=0, max_value=1),
                _c("valence", "double", "0-1 musical positiveness.", min_value=0, max_value=1),
                _c("tempo", "double", "Beats per minute.", min_value=0),
                _c("time_signature", "integer", "Beats per bar.", min_value=0, max_value=12),
            ),
            key=("track_id",),
        ),
        Table(
            "playlists",
            "One row per playlist.",
            (
                _c("playlist_id", "text", "Playlist id.", required=True),
                _c("playlist_name", "text", "Name."),
                _c("playlist_type", "text", "Who curates it.", required=True,
                   allowed=PLAYLIST_TYPES),
                _c("owner_user_id", "bigint", "Owning listener for user playlists."),
                _c("created_at", "timestamp", "Creation time, UTC."),
            ),
            key=("playlist_id",),
        ),
        Table(
            "playlist_tracks",
            "One row per track slot in a playlist, in playlist order.",
            (
                _c("playlist_id", "text", "Playlist id.", required=True),
                _c("position", "integer", "1-based position in the playlist.", required=True,
                   min_value=1),
                _c("track_id", "text", "Track in that slot.", required=True),
                _c("added_at", "timestamp", "When the track was added, UTC."),
            ),
            key=("playlist_id", "position"),
        ),
        Table(
            "listening_events",
            "One row per delivered play event (a track started by a user). Duplicates of an "
            "event_id may arrive and are removed in staging.",
            (
                _c("event_id", "text", "Unique id of the play event.", required=True),
                _c("user_id", "bigint", "Listener.", required=True),
                _c("track_id", "text", "Track played.", required=True),
                _c("session_hint", "text", "Source session id when the source has one."),
                _c("started_at", "timestamp", "When playback started, UTC.", required=True),
                _c("ms_played", "integer", "Milliseconds of audio played.", required=True),
                _c("context_type", "text", "Where the play was started from.",
                   allowed=CONTEXT_TYPES),
                _c("context_id", "text", "Id of the playlist/album/artist context."),
                _c("position_in_context", "integer", "1-based position of the track in its "
                   "context (playlist position for playlists).", min_value=1),
                _c("reason_start", "text", "Why playback started.", allowed=REASON_STARTS),
                _c("reason_end", "text", "Why playback ended.", allowed=REASON_ENDS),
                _c("is_shuffle", "boolean", "Shuffle mode on."),
                _c("device", "text", "Device class.", allowed=DEVICES),
            ),
            key=("event_id",),
            partition_column="started_at",
        ),
        Table(
            "experiments",
            "One row per experiment.",
            (
                _c("experiment_id", "text", "Experiment id.", required=True),
                _c("experiment_name", "text", "Human name.", required=True),
                _c("hypothesis", "text", "What the treatment is expected to change."),
                _c("salt", "text", "Salt of the deterministic assignment hash.", required=True),
                _c("traffic_share", "double", "Share of users enrolled.", required=True,
                   min_value=0, max_value=1),
                _c("started_at", "timestamp", "Start of the experiment window, UTC.",
                   required=True),
                _c("ended_at", "timestamp", "End of the experiment window (exclusive), UTC.",
                   required=True),
            ),
            key=("experiment_id",),
        ),
        Table(
            "experiment_variants",
            "One row per experiment variant with its allocation weight.",
            (
                _c("experiment_id", "text", "Experiment id.", required=True),
                _c("variant", "text", "Variant name; 'control' is the baseline.",
                   required=True),
                _c("weight", "double", "Relative allocation weight.", required=True,
                   min_value=0),
            ),
            key=("experiment_id", "variant"),
        ),
        Table(
            "experiment_assignments",
            "One row per enrolled user and experiment.",
            (
                _c("experiment_id", "text", "Experiment id.", required=True),
                _c("user_id", "bigint", "Enrolled listener.", required=True),
                _c("variant", "text", "Assigned variant.", required=True),
                _c("assigned_at", "timestamp", "Enrollment time, UTC.", required=True),
            ),
            key=("experiment_id", "user_id"),
        ),
    )
}

_SQL_TYPES = {
    "text": "text",
    "bigint": "bigint",
    "integer": "integer",
    "double": "double precision",
    "boolean": "boolean",
    "date": "date",
    "timestamp": "timestamp",
}

# Columns every loaded table carries: which batch wrote the row, and when.
AUDIT_COLUMNS = (("_batch_id", "text"), ("_loaded_at", "timestamp"))


def ddl(table: Table, schema: str = RAW_SCHEMA) -> str:
    cols = [f"    {c.name} {_SQL_TYPES[c.type]}" for c in table.columns]
    cols += [f"    {name} {sql_type} not null" for name, sql_type in AUDIT_COLUMNS]
    return f"create table if not exists {schema}.{table.name} (\n" + ",\n".join(cols) + "\n)"


# The batch registry (docs/raw_contract.md, "Batches"): one row per live batch, and an
# append-only log of every committed load / replace / remove, which incremental models read
# to find the days that changed. The loader writes both in the data change's transaction.
LOAD_BATCHES_DDL = f"""create table if not exists {RAW_SCHEMA}.load_batches (
    table_name text not null,
    batch_name text not null,
    content_hash text not null,
    source text not null,
    rows_loaded bigint not null,
    rows_rejected bigint not null,
    loaded_at timestamp not null,
    min_day date,
    max_day date,
    primary key (table_name, batch_name)
)"""

LOAD_CHANGES_DDL = f"""create table if not exists {RAW_SCHEMA}.load_changes (
    change_id bigint generated always as identity primary key,
    table_name text not null,
    batch_name text not null,
    action text not null check (action in ('load', 'replace', 'remove')),
    min_day date,
    max_day date,
    rows_before bigint not null,
    rows_after bigint not null,
    changed_at timestamp not null default (now() at time zone 'utc')
)"""

# Advisory lock keys: warehouse.init takes INIT_LOCK_KEY; a load into a table takes
# (LOAD_LOCK_CLASS, hashtext(table name)), so loads into one table run one at a time.
INIT_LOCK_KEY = 1_500_000_001
LOAD_LOCK_CLASS = 15_015

# Databases made before the registry had load_batches(batch_id primary key, ...) and no
# load_changes: upgrade them in place (idempotent; a no-op on a current database). Existing
# batches get their day range from the data and one 'load' row each in the change log.
_DAY_RANGES = "\n".join(
    f"""        update {RAW_SCHEMA}.load_batches b set min_day = d.min_day, max_day = d.max_day
        from (select _batch_id, min({t.partition_column})::date as min_day,
                     max({t.partition_column})::date as max_day
              from {RAW_SCHEMA}.{t.name} group by _batch_id) d
        where b.table_name = '{t.name}' and b.batch_name = d._batch_id;"""
    for t in TABLES.values() if t.partition_column)

UPGRADE_DDL = f"""do $upgrade$
begin
    if exists (select 1 from information_schema.columns where table_schema = '{RAW_SCHEMA}'
               and table_name = 'load_batches' and column_name = 'batch_id') then
        alter table {RAW_SCHEMA}.load_batches drop constraint if exists load_batches_pkey;
        alter table {RAW_SCHEMA}.load_batches rename column batch_id to batch_name;
        alter table {RAW_SCHEMA}.load_batches
            add column if not exists content_hash text not null default 'unknown',
            add column if not exists min_day date,
            add column if not exists max_day date;
        alter table {RAW_SCHEMA}.load_batches alter column content_hash drop default;
        alter table {RAW_SCHEMA}.load_batches add primary key (table_name, batch_name);
{_DAY_RANGES}
        insert into {RAW_SCHEMA}.load_changes
            (table_name, batch_name, action, min_day, max_day, rows_before, rows_after)
        select table_name, batch_name, 'load', min_day, max_day, 0, rows_loaded
        from {RAW_SCHEMA}.load_batches order by loaded_at, table_name, batch_name;
    end if;
end
$upgrade$"""

SUPPORT_DDL = (
    LOAD_BATCHES_DDL,
    LOAD_CHANGES_DDL,
    f"""create table if not exists {RAW_SCHEMA}.load_rejects (
    batch_id text not null,
    table_name text not null,
    source text not null,
    row_number bigint not null,
    reason text not null,
    record text not null,
    rejected_at timestamp not null
)""",
    f"""create table if not exists {RAW_SCHEMA}.generator_truth (
    parameter text primary key,
    value double precision not null,
    description text not null
)""",
    UPGRADE_DDL,
)


_BOOL_TRUE = {"true", "t", "1", "yes", "y"}
_BOOL_FALSE = {"false", "f", "0", "no", "n"}


def _present(raw: pd.Series) -> pd.Series:
    return raw.notna() & (raw.astype("string").str.strip() != "")


def _coerce(col: Column, raw: pd.Series) -> pd.Series:
    """Cast one column to its contract type; unparseable values become missing."""
    if col.type == "text":
        return raw.astype("string").str.strip().replace("", pd.NA)
    if col.type in ("bigint", "integer"):
        num = pd.to_numeric(raw, errors="coerce")
        whole = num.notna() & (np.floor(num) == num)
        return num.where(whole).astype("Int64")
    if col.type == "double":
        return pd.to_numeric(raw, errors="coerce").astype("Float64")
    if col.type == "boolean":
        if pd.api.types.is_bool_dtype(raw):
            return raw.astype("boolean")
        s = raw.astype("string").str.strip().str.lower()
        out = pd.Series(pd.NA, index=raw.index, dtype="boolean")
        out[s.isin(_BOOL_TRUE)] = True
        out[s.isin(_BOOL_FALSE)] = False
        return out
    if col.type in ("timestamp", "date"):
        ts = pd.to_datetime(raw, errors="coerce", utc=True, format="mixed")
        ts = ts.dt.tz_localize(None)
        return ts.dt.normalize() if col.type == "date" else ts
    raise ValueError(f"unknown contract type {col.type}")


def validate(table: Table, frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split a chunk into rows that meet the contract and rejects with a reason.

    Returns (good, rejects): good has exactly the contract's columns, typed; rejects has
    `row_index` (the input frame's index) and `reason` (every broken rule, joined by '; ').
    """
    missing = [c.name for c in table.columns if c.required and c.name not in frame.columns]
    if missing:
        raise ValueError(f"{table.name}: input lacks required columns {missing}")
    reasons = pd.Series("", index=frame.index, dtype="string")

    def flag(mask: pd.Series, text: str) -> None:
        mask = mask.fillna(False).astype(bool)
        reasons[mask] = reasons[mask] + (text + "; ")

    typed = {}
    for col in table.columns:
        if col.name not in frame.columns:
            typed[col.name] = pd.Series(pd.NA, index=frame.index, dtype="object")
            continue
        raw = frame[col.name]
        present = _present(raw)
        value = _coerce(col, raw)
        typed[col.name] = value
        if col.required:
            flag(~present, f"{col.name}: required value missing")
        flag(present & value.isna(), f"{col.name}: not a valid {col.type}")
        if col.allowed is not None:
            flag(value.notna() & ~value.isin(col.allowed), f"{col.name}: not one of "
                 + "/".join(col.allowed))
        if col.min_value is not None:
            flag(value.notna() & (value < col.min_value), f"{col.name}: below {col.min_value}")
        if col.max_value is not None:
            flag(value.notna() & (value > col.max_value), f"{col.name}: above {col.max_value}")

    good_mask = reasons == ""
    good = pd.DataFrame(typed, index=frame.index)[good_mask.to_numpy()]
    rejects = pd.DataFrame(
        {"row_index": frame.index[~good_mask.to_numpy()],
         "reason": reasons[~good_mask].str.rstrip("; ").to_numpy()}
    )
    return good, rejects


def markdown() -> str:
    """docs/raw_contract.md, generated so the documentation cannot drift from the code."""
    lines = [
        "# Raw data contract",
        "",
        "Every table in schema `raw`, as `python_jobs/contract.py` defines it. Load real data in",
        "this shape with `python -m python_jobs.load FILE --table NAME` (CSV with a header row, or",
        "Parquet; columns by name, extra columns ignored). Rows that break a rule are not loaded:",
        "they go to `raw.load_rejects` with the reason and the original record. Timestamps are",
        "UTC (an offset in the input is converted). Every table also gets `_batch_id` and",
        "`_loaded_at`. Regenerate this page with `python -m python_jobs.contract`.",
        "",
    ]
    for table in TABLES.values():
        lines += [f"## raw.{table.name}", "", table.description, "",
                  f"Key: `{', '.join(table.key)}`.", "",
                  "| column | type | required | rule | meaning |",
                  "| --- | --- | --- | --- | --- |"]
        for c in table.columns:
            rules = []
            if c.allowed:
                rules.append(" / ".join(c.allowed))
            if c.min_value is not None:
                rules.append(f">= {c.min_value:g}")
            if c.max_value is not None:
                rules.append(f"<= {c.max_value:g}")
            lines.append(f"| {c.name} | {c.type} | {'yes' if c.required else ''} | "
                         f"{'; '.join(rules)} | {c.description} |")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    print(markdown(), end="")
