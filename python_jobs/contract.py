"""The raw data contract: every table in schema `raw`, its columns, types and rules.

One definition serves the DDL (`ddl()`), the loaders' validation (`validate()`) and the
documentation (docs/raw_contract.md is checked against it by a test), so they cannot drift.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from python_jobs import exact

RAW_SCHEMA = "raw"

# Vocabularies shared by the generator, the loaders and dbt's accepted_values tests.
TIERS = ("free", "premium")
PLAYLIST_TYPES = ("editorial", "algorithmic", "user")
CONTEXT_TYPES = ("playlist", "album", "artist", "radio", "search", "collection")
REASON_STARTS = ("trackdone", "fwdbtn", "backbtn", "clickrow", "playbtn", "appload", "remote")
REASON_ENDS = ("trackdone", "fwdbtn", "backbtn", "endplay", "logout", "remote", "unexpected")
DEVICES = ("mobile", "desktop", "web", "smart_speaker", "tv")
RELEASE_DATE_PRECISIONS = ("day", "month", "year")
SOURCE_SKIP_LABELS = ("skip_1", "skip_2", "skip_3", "not_skipped", "skipped")


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
    # A key repeated inside one batch is rejected ("duplicate key in batch", first kept);
    # False where repeats are delivered by design and staging removes them.
    unique_in_batch: bool = True
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
                _c("timezone", "text", "IANA time zone of the listener (e.g. Asia/Kolkata); "
                   "empty = unknown, local time is then UTC."),
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
                _c("release_date", "date", "Release date; its first day when only the month "
                   "or the year is known (see release_date_precision)."),
                _c("release_date_precision", "text", "How much of release_date the source "
                   "knew.", allowed=RELEASE_DATE_PRECISIONS),
                _c("is_stub", "boolean", "A placeholder made from a listening log that names "
                   "the track but has no metadata: unknown artist, estimated duration; a "
                   "track file loaded later fills it in."),
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
                _c("source_skipped", "boolean", "The source's own skip flag, empty when the "
                   "source has none: MSSD skip_2, a streaming-history export's skipped."),
                _c("source_skip_label", "text", "The source's finest skip label: MSSD "
                   "skip_1/skip_2/skip_3/not_skipped (the first set of skip_1, skip_2, skip_3), "
                   "history skipped/not_skipped.", allowed=SOURCE_SKIP_LABELS),
            ),
            key=("event_id",),
            partition_column="started_at",
            unique_in_batch=False,
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

# Optional columns added to the contract after a database was made: added in place (checked
# first, so a current database takes no table lock).
ADD_COLUMNS_DDL = "do $add$ begin\n" + "\n".join(
    f"""    if not exists (select 1 from information_schema.columns where table_schema =
        '{RAW_SCHEMA}' and table_name = '{t.name}' and column_name = '{c.name}') then
        alter table {RAW_SCHEMA}.{t.name} add column {c.name} {_SQL_TYPES[c.type]};
    end if;"""
    for t in TABLES.values() for c in t.columns if not c.required) + "\nend $add$"

# BRIN indexes on each dated table's day column, rows arriving roughly in day order so that a
# few block ranges hold a day: on the column itself for the data tests of such a table, which
# read only the days its latest build rebuilt (macros/default__get_where_subquery.sql), and on
# its date for the incremental builds, whose day filter (staging's played_date, the column's
# date) PostgreSQL matches only to an index on that expression: without it each daily build
# of int_plays_flagged_* scanned every event (1.5 s of each half's select at 1M sessions,
# 0.7 s with it). Nearly free on insert. Checked first, as above.
_DAY_INDEXES = {"brin": "{column}", "day_brin": "cast({column} as date)"}
DAY_INDEX_DDL = "do $index$ begin\n" + "\n".join(
    f"""    if not exists (select 1 from pg_indexes where schemaname = '{RAW_SCHEMA}'
        and indexname = '{t.name}_{t.partition_column}_{suffix}') then
        create index {t.name}_{t.partition_column}_{suffix} on {RAW_SCHEMA}.{t.name}
            using brin (({expression.format(column=t.partition_column)}));
    end if;"""
    for t in TABLES.values() if t.partition_column
    for suffix, expression in _DAY_INDEXES.items()) + "\nend $index$"

SUPPORT_DDL = (
    ADD_COLUMNS_DDL,
    DAY_INDEX_DDL,
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


def check(table: Table, columns: Mapping[str, pa.Array], n_rows: int,
          options: exact.Options = exact.DEFAULTS) -> tuple[pd.DataFrame, np.ndarray]:
    """Type every contract column exactly and apply its rules.

    Returns the typed frame (the contract's columns, all n_rows rows) and each row's reasons
    for refusal ('' for a good row; several broken rules joined by '; ').
    """
    reasons = np.full(n_rows, "", dtype=object)

    def flag(mask: np.ndarray, text: str) -> None:
        if mask.any():
            reasons[mask] = reasons[mask] + (text + "; ")

    typed = {}
    for col in table.columns:
        if col.name not in columns:
            typed[col.name] = pd.Series(pd.NA, index=range(n_rows), dtype="object")
            continue
        raw = columns[col.name]
        present = ~exact.missing_mask(raw, options)
        value, refused = exact.parse(col.type, col.name, raw, options)
        typed[col.name] = value
        if col.required:
            flag(~present, f"{col.name}: required value missing")
        for mask, text in refused:
            flag(mask, text)
        known = value.notna().to_numpy()
        if col.allowed is not None:
            listed = pc.is_in(exact.as_text(raw), value_set=pa.array(col.allowed))
            flag(known & ~np.asarray(pc.fill_null(listed, False), dtype=bool),
                 f"{col.name}: not one of " + "/".join(col.allowed))
        if col.min_value is not None:
            flag(known & (value < col.min_value).fillna(False).to_numpy(dtype=bool),
                 f"{col.name}: below {col.min_value:g}")
        if col.max_value is not None:
            flag(known & (value > col.max_value).fillna(False).to_numpy(dtype=bool),
                 f"{col.name}: above {col.max_value:g}")
    return pd.DataFrame(typed), reasons


def validate(table: Table, frame: pd.DataFrame, options: exact.Options = exact.DEFAULTS,
             ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split a chunk into rows that meet the contract and rejects with a reason.

    Returns (good, rejects): good has exactly the contract's columns, typed; rejects has
    `row_index` (the input frame's index) and `reason` (every broken rule, joined by '; ').
    """
    missing = [c.name for c in table.columns if c.required and c.name not in frame.columns]
    if missing:
        raise ValueError(f"{table.name}: input lacks required columns {missing}")
    columns = {name: exact.from_pandas(frame[name]) for name in frame.columns
               if name in table.column_names}
    typed, reasons = check(table, columns, len(frame), options)
    good_mask = reasons == ""
    typed.index = frame.index
    rejects = pd.DataFrame({"row_index": frame.index[~good_mask],
                            "reason": [r.rstrip("; ") for r in reasons[~good_mask]]})
    return typed[good_mask], rejects


def markdown() -> str:
    """docs/raw_contract.md, generated so the documentation cannot drift from the code."""
    lines = [
        "# Raw data contract",
        "",
        "Every table in schema `raw`, as `python_jobs/contract.py` defines it, and how the",
        "loader (`python -m python_jobs.load`) reads files into them. Regenerate this page with",
        "`python -m python_jobs.contract`.",
        "",
        "## Loading files",
        "",
        "```sh",
        "python -m python_jobs.load FILE [FILE ...] --table NAME [--batch-name NAME]",
        "python -m python_jobs.load --list [--table NAME]",
        "python -m python_jobs.load --remove BATCH --table NAME",
        "```",
        "",
        "**Files.** CSV (`.csv`, `.csv.gz`) with a header row, UTF-8 (a byte-order mark is",
        "accepted; `--encoding latin-1` for others), fields quoted as RFC 4180 (quotes, commas",
        "and newlines inside quoted fields are kept); or Parquet. Columns are matched by name",
        "in any order; columns the table does not have are ignored; a missing required column,",
        "a column named twice or an empty file stop the load. Blank lines are not rows.",
        "",
        "**Values.** Each column is parsed for its type, exactly, for the whole file at once:",
        "",
        "- `text`: kept exactly as written (no trimming: ` a` and `a` are different keys); a",
        "  NUL byte is a reject.",
        "- `bigint`, `integer`: optional sign and decimal digits (`3.0` is 3; surrounding",
        "  spaces allowed). Never through a float: 9007199254740993 stays that; a value",
        "  outside the type's range, `1e3`, `inf` or `NaN` is a reject.",
        "- `double`: decimal or exponent notation; `NaN`, `inf` and values beyond the double",
        "  range (`1e400`) are rejects.",
        "- `boolean`: true/false, t/f, 1/0, yes/no, y/n (any case).",
        "- `timestamp`: ISO 8601, `YYYY-MM-DD[ HH:MM[:SS[.fraction]]]` with `T` or a space,",
        "  then optionally `Z`, `UTC` or an offset `+HH:MM`/`+HHMM`/`+HH`, converted to UTC; a",
        "  timestamp without offset is taken as UTC. Digits past the microsecond are rounded",
        "  (half up, as PostgreSQL does). Years 0001-9999 (after conversion to UTC). Other",
        "  forms only by an option for the whole file: `--dayfirst` (DD/MM/YYYY),",
        "  `--monthfirst` (MM/DD/YYYY) or `--timestamp-format` (a strptime format). Relative",
        "  words (`now`, `today`) and partial forms (`T10:00`) are rejects.",
        "- Parquet columns are read by their Arrow type: integers and timestamps as they are",
        "  (a timestamp with a time zone is an instant, converted to UTC; one without is taken",
        "  as UTC; a date is midnight), floats holding whole numbers for integer columns.",
        "  Integer timestamps (epochs) need `--epoch-unit s|ms|us|ns`; without it they are",
        "  rejects.",
        "",
        "**Missing values.** A field that is exactly `\"\"` (empty), `NA`, `NULL` or `\\N` is",
        "missing (`--missing TEXT`, repeated, replaces this list; `--missing ''` alone keeps",
        "`NA` as text). A missing required value is a reject.",
        "",
        "**Batches.** A load is a batch with a name: the file's name, or `--batch-name` (all",
        "files of the command then form that one batch). Loading a name again replaces what",
        "that batch wrote, atomically. A file whose content (sha256) is already loaded into",
        "the table under another name is skipped with a message (exit status 0). Rows of",
        "other batches, and rows written outside the loader, are never touched. Every raw row",
        "carries `_batch_id` (the batch name) and `_loaded_at`.",
        "",
        "- `raw.load_batches`: one row per live batch: table_name, batch_name (the key),",
        "  content_hash, source, rows_loaded, rows_rejected, loaded_at (UTC), min_day and",
        "  max_day (the day range of the table's day column over the loaded rows).",
        "- `raw.load_changes`: append-only, one row per committed load, replace or remove",
        "  (a first load of no rows changes nothing and is not logged):",
        "  the days whose rows changed (for a replace the union of old and new; null for",
        "  tables without a day column: every day), rows_before, rows_after, changed_at.",
        "",
        "**Rejects.** Every input row is either loaded or in `raw.load_rejects` (batch_id,",
        "table_name, source, row_number: the data row's number in the file, 1 = first row",
        "after the header; reason: every broken rule, joined by `; `; record: the row as read,",
        "a JSON object of its fields, or `{\"_line\": ...}` for a row whose number of fields",
        "is wrong). A key repeated inside a batch is rejected with reason `duplicate key in",
        "batch` (the first row is kept), except in `raw.listening_events`, where repeated",
        "deliveries of an event are expected and staging removes them. When more than",
        "`--max-reject-rate` (default 0.5) of a batch's rows are rejected, the load is",
        "refused and nothing is committed.",
        "",
        "**Concurrency.** Loads into one table take a PostgreSQL advisory lock and run one",
        "after the other; the data, its rejects and both registry tables change in the load's",
        "one transaction, so a failed or killed load leaves everything as it was. The counts",
        "printed (loaded, rejected, replaced) are those committed.",
        "",
        "**Exit status.** 0: loaded (or skipped as already loaded); 1: refused, too many rows",
        "rejected, nothing committed; 2: a file or the arguments cannot be used (no such",
        "file, directory, not CSV/Parquet, unreadable, not UTF-8, missing required column,",
        "unknown batch to remove): one line on stderr naming the file and the cause;",
        "3: database error (one line). `--log-level DEBUG` shows the traceback instead.",
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
