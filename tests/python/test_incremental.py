"""Incremental models never lose data, whatever order it arrives in (issue 17).

One small generated data set (300 sessions). A `dbt run --full-refresh` on it is the
reference. Then, from an empty warehouse, the same data arrives in nine orders, one after
the other in the same database, each change made through the batch registry (the loader, or
python_jobs.holdback, both write raw.load_changes) and followed only by plain `dbt run`s.
After each order every incremental model (marts and intermediate) must equal the reference
(every row, every column, numbers to 1e-9 relative); after the last, a plain run of the
whole project must give every mart equal to the reference. The runs between build only the
incremental models and what they read: every other model is a view or a table rebuilt whole
from them by every run, so it holds no state that an arrival order could spoil.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pytest

from python_jobs import contract, db, dbt_cli, generate, holdback, load, spark, warehouse

DATABASE = os.environ.get("TEST_DATABASE_PREFIX", "test_") + "incremental"
SESSIONS = 300
MODELS = ["--exclude", "tag:ml_scoring"]
# and the views over the two parts of int_plays_flagged and of int_plays_sessionized, which
# they read
INCREMENTAL_ONLY = ["--select", "config.materialized:incremental", "int_plays_flagged",
                    "int_plays_sessionized", "int_play_histories_counted", "--no-write-json"]
# every incremental model, by schema (the test checks this list against the manifest)
INCREMENTAL = {
    "intermediate": ["int_plays_flagged_even_ids", "int_plays_flagged_odd_ids",
                     "int_plays_sessionized_even_users",
                     "int_plays_sessionized_odd_users", "int_user_days_active",
                     "int_user_days_engagement", "int_user_track_days_aggregated",
                     "int_user_genre_days_aggregated", "int_user_hours_aggregated",
                     "int_context_runs",
                     "int_play_skips_counted", "int_play_histories_counted_even_users",
                     "int_play_histories_counted_odd_users",
                     "int_user_artists_summarised", "int_user_runs_summarised",
                     "int_user_temporal_patterns", "int_user_genre_diversity"],
    "marts": ["fct_sessions", "fct_playlist_runs", "fct_session_training", "fct_dau_mau"],
}
INCREMENTAL_TABLES = [f"{schema}.{name}" for schema, names in INCREMENTAL.items()
                      for name in names]
EVENT_COLUMNS = [c.name for c in contract.TABLES["listening_events"].columns]

pytestmark = pytest.mark.slow


class Warehouse:
    """The test database and dbt, run in this process (dbt's start-up paid once)."""

    def __init__(self, work: Path) -> None:
        from dbt.cli.main import dbtRunner

        self.work = work
        self.runner = dbtRunner()
        self.reference: dict[str, pd.DataFrame] = {}  # the full refresh's tables

    def dbt(self, *args: str) -> None:
        result = self.runner.invoke([*args, "--quiet", "--target-path",
                                     str(self.work / "target")])
        assert result.success, f"dbt {' '.join(args)} failed: {result.exception}"

    def build(self, everything: bool = True) -> None:
        self.dbt("run", *(MODELS if everything else INCREMENTAL_ONLY))

    def first_build(self) -> None:
        """The incremental models and what they read (views over them were dropped)."""
        self.dbt("run", "--select", "+config.materialized:incremental", "--no-write-json")

    def tables(self, schema: str, names: list[str] | None = None) -> dict[str, pd.DataFrame]:
        """Every table of the schema (or those named) as frames."""
        with db.connect(DATABASE) as conn:
            if names is None:
                names = list(db.read_sql(conn, "select table_name from information_schema"
                                               ".tables where table_schema = %s and "
                                               "table_type = 'BASE TABLE'",
                                         (schema,))["table_name"])
            return {name: db.read_sql(conn, f"select * from {schema}.{name}")
                    for name in names}

    def marts(self) -> dict[str, pd.DataFrame]:
        """Every table of the marts schema, named schema.table."""
        return {f"marts.{name}": frame for name, frame in self.tables("marts").items()}

    def built(self) -> dict[str, pd.DataFrame]:
        """The marts and the incremental models: what a build must get right."""
        return {**self.marts(), **self.incremental_tables()}

    def incremental_tables(self) -> dict[str, pd.DataFrame]:
        # which batch brought a row, and when, is raw bookkeeping (a replaced batch brings
        # the same rows again), not data
        return {f"{schema}.{name}": frame.drop(columns=["load_batch_id", "loaded_at"],
                                               errors="ignore")
                for schema, names in INCREMENTAL.items()
                for name, frame in self.tables(schema, names).items()}

    def day_range(self) -> tuple[date, date]:
        with db.connect(DATABASE) as conn:
            row = db.read_sql(conn, "select min(cast(started_at as date)) as first, "
                                    "max(cast(started_at as date)) as last "
                                    "from raw.listening_events").iloc[0]
        return row["first"], row["last"]


def _events(database: str, where: str, params: tuple) -> pd.DataFrame:
    with db.connect(database) as conn:
        return db.read_sql(conn, f"select {', '.join(EVENT_COLUMNS)} "
                                 f"from raw.listening_events where {where}", params)


def _busiest_day(first: date, last: date) -> date:
    with db.connect(DATABASE) as conn:
        return db.read_sql(conn, """
            select cast(started_at as date) as day from raw.listening_events
            where cast(started_at as date) between %s and %s
            group by 1 order by count(*) desc, 1 limit 1""", (first, last)).iloc[0]["day"]


def _load_events(database: str, batch: str, frame: pd.DataFrame) -> None:
    with db.connect(database) as conn:
        result = load.load(conn, "listening_events", [frame], batch_id=batch, source="test")
    assert result.rows_rejected == 0 and result.rows_loaded == len(frame)


def _sessions_across_midnight(database: str) -> pd.DataFrame:
    """Into every day but the first, a session that started the evening before: a user's
    play at 23:50 and the next at 00:05 (within the session gap). A change from a day on
    must then also rebuild the day before, the session's start day (generated sessions
    rarely cross midnight at 300 sessions)."""
    template = _events(database, "true order by started_at, event_id", ())
    days = pd.to_datetime(template["started_at"]).dt.normalize().drop_duplicates()
    rows = []
    for number, day in enumerate(days.iloc[1:]):
        play = template.iloc[(number * 97) % len(template)]
        for part, start in (("evening", day - pd.Timedelta(minutes=10)),
                            ("after-midnight", day + pd.Timedelta(minutes=5))):
            rows.append({**play.to_dict(), "event_id": f"midnight-{number}-{part}",
                         "started_at": start, "ms_played": 180_000, "reason_end": "trackdone"})
    return pd.DataFrame(rows, columns=EVENT_COLUMNS)


@pytest.fixture(scope="module")
def warehouse_built(tmp_path_factory) -> Iterator[tuple[Warehouse, dict[str, pd.DataFrame]]]:
    tmp = tmp_path_factory.mktemp("incremental")
    db.drop_database(DATABASE)
    warehouse.init(DATABASE)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PGDATABASE", DATABASE)
        patch.setenv("DBT_TARGET", "postgres")
        patch.setenv("DBT_LOG_PATH", str(tmp / "logs"))
        try:
            assert generate.main(["--sessions", str(SESSIONS), "--seed", "17", "--database",
                                  DATABASE, "--log-level", "WARNING"]) == 0
            _load_events(DATABASE, "midnight", _sessions_across_midnight(DATABASE))
            wh = Warehouse(tmp)
            wh.dbt("seed")
            wh.dbt("run", "--full-refresh", *MODELS)
            wh.reference = wh.built()
            # from here on no incremental model and no watermark: each is built from
            # nothing, as in a new warehouse (views and dimensions stay: they hold no state)
            with db.connect(DATABASE) as conn:
                for table in INCREMENTAL_TABLES:
                    db.execute(conn, f"drop table {table} cascade")
                db.execute(conn, "drop table incremental.watermarks")
            yield wh, wh.reference
        finally:
            if not os.environ.get("KEEP_TEST_DATABASES"):
                db.drop_database(DATABASE)


def _keys(wh: Warehouse) -> dict[str, list[str]]:
    manifest = wh.work / "target" / "manifest.json"
    return {f"{schema}.{name}": key for schema in ("marts", "intermediate")
            for name, key in spark.mart_keys(manifest, schema=schema).items()}


def _assert_equal(built: dict[str, pd.DataFrame], reference: dict[str, pd.DataFrame],
                  keys: dict[str, list[str]], order: str) -> None:
    problems = {name: found for name, frame in sorted(built.items())
                if (found := spark.compare_frames(reference[name], frame, keys.get(name)))}
    assert not problems, f"{order}: {problems}"


def _statistics() -> pd.DataFrame:
    """Per incremental table: its pages now and at its last ANALYZE or VACUUM (relpages), and
    whether it has planner statistics."""
    with db.connect(DATABASE) as conn:
        return db.read_sql(conn, """
            select
                stats.schemaname || '.' || stats.relname as name,
                pg_relation_size(stats.relid) / current_setting('block_size')::int as pages,
                class.relpages,
                stats.n_live_tup > 0 as has_rows,
                exists (
                    select from pg_stats
                    where schemaname = stats.schemaname and tablename = stats.relname
                ) as has_statistics
            from pg_stat_user_tables as stats
            inner join pg_class as class on stats.relid = class.oid
            where stats.schemaname || '.' || stats.relname = any(%s)""",
                            (INCREMENTAL_TABLES,)).set_index("name")


def _analyze_count() -> int:
    """ANALYZEs of the incremental tables so far, once every backend that ran one has
    reported it (a backend's statistics reach the others when it ends or within a second)."""
    counts: list[int] = []
    while len(counts) < 2 or counts[-1] != counts[-2]:
        assert len(counts) < 10, f"analyze counts still moving: {counts}"
        if counts:
            time.sleep(1)
        with db.connect(DATABASE) as conn:
            counts.append(int(db.read_sql(conn, """
                select sum(analyze_count) as n from pg_stat_user_tables
                where schemaname || '.' || relname = any(%s)""",
                                          (INCREMENTAL_TABLES,)).iloc[0]["n"]))
    return counts[-1]


def _assert_planned_with_statistics(order: str) -> None:
    """After any build no table with rows lacks statistics, and none has grown by more than a
    tenth since they were taken (analyze_table)."""
    stats = _statistics()
    stale = stats[(stats["has_rows"] & ~stats["has_statistics"])
                  | (stats["pages"] > 1.1 * stats["relpages"])]
    assert stale.empty, f"{order}: tables planned without fresh statistics:\n{stale}"


def _first_build_tracks_only(wh: Warehouse, first: date, last: date) -> None:
    assert holdback.hold_back(DATABASE, first, last) > 0  # every play, future ones too
    wh.first_build()
    with db.connect(DATABASE) as conn:
        assert db.read_sql(conn, "select count(*) as n from intermediate.int_plays_sessionized"
                           ).iloc[0]["n"] == 0
    holdback.restore(DATABASE)


def _newest_day_last(wh: Warehouse, first: date, last: date) -> None:
    day = holdback.newest_full_day(DATABASE)
    assert holdback.hold_back(DATABASE, day, day) > 0
    wh.build(everything=False)
    holdback.restore(DATABASE)


def _oldest_ten_days_last(wh: Warehouse, first: date, last: date) -> None:
    assert holdback.hold_back(DATABASE, first, first + timedelta(days=9)) > 0
    wh.build(everything=False)
    holdback.restore(DATABASE)


def _middle_week_last(wh: Warehouse, first: date, last: date) -> None:
    middle = first + (holdback.newest_full_day(DATABASE) - first) / 2
    assert holdback.hold_back(DATABASE, middle, middle + timedelta(days=6)) > 0
    wh.build(everything=False)
    holdback.restore(DATABASE)


def _three_batches(wh: Warehouse, first: date, last: date) -> None:
    third = (holdback.newest_full_day(DATABASE) - first) / 3
    assert holdback.hold_back(DATABASE, first + third, last) > 0
    wh.build(everything=False)  # the first third
    holdback.restore(DATABASE)
    assert holdback.hold_back(DATABASE, first + 2 * third, last) > 0
    wh.build(everything=False)  # two thirds
    holdback.restore(DATABASE)


def _old_day_replaced(wh: Warehouse, first: date, last: date) -> None:
    """An old day arrives as a batch of wrong rows (some missing, others with other tracks
    and lengths), is built, then the batch is loaded again with the right rows."""
    day = _busiest_day(first, first + timedelta(days=9))
    right = _events(DATABASE, "cast(started_at as date) = %s", (day,))
    assert holdback.hold_back(DATABASE, day, day) == len(right) > 10
    with db.connect(DATABASE) as conn:
        db.execute(conn, f"drop table {holdback.HELD}")  # the batch below brings them back
    wrong = right.iloc[: len(right) * 2 // 3].copy()
    wrong["ms_played"] = wrong["ms_played"] // 3
    wrong["track_id"] = wrong["track_id"].iloc[::-1].to_numpy()
    _load_events(DATABASE, "old_day", wrong)
    wh.build(everything=False)
    _load_events(DATABASE, "old_day", right)  # a replace in the registry


def _batch_removed(wh: Warehouse, first: date, last: date) -> None:
    """A batch of plays that should not be there (a day delivered twice under new ids, an
    hour later) is built, then removed."""
    day = _busiest_day(first + timedelta(days=10), first + timedelta(days=19))
    extra = _events(DATABASE, "cast(started_at as date) = %s", (day,))
    extra["event_id"] = "extra-" + extra["event_id"]
    extra["started_at"] = extra["started_at"] + pd.Timedelta(hours=1)
    _load_events(DATABASE, "extra", extra)
    wh.build(everything=False)
    with db.connect(DATABASE) as conn:
        assert load.remove_batch(conn, "listening_events", "extra") == len(extra)


def _late_play_across_midnight_removed(wh: Warehouse, first: date, last: date) -> None:
    """A batch with one more after-midnight play of a session that started the day before
    is built in by a full refresh, then removed: the plain run must rebuild that start day."""
    plays = _events(DATABASE, "event_id like 'midnight-%%-after-midnight' order by started_at", ())
    assert len(plays) > 20
    late = plays.iloc[[len(plays) // 2]].copy()
    late["event_id"] = "late-" + late["event_id"]
    late["started_at"] = late["started_at"] + pd.Timedelta(minutes=7)
    _load_events(DATABASE, "late", late)
    wh.dbt("run", "--full-refresh", *INCREMENTAL_ONLY)
    with db.connect(DATABASE) as conn:
        assert load.remove_batch(conn, "listening_events", "late") == 1


def _history_tables_left_behind(wh: Warehouse, first: date, last: date) -> None:
    """The parts of int_play_histories_counted read their day tables' history without a dbt
    dependency, so they can be built without them: a middle week arrives and only
    int_play_histories_counted and what it refs are built, twice more after the newest day
    leaves and comes back. The last rebuild then starts at the middle week (the day tables
    still lack it), not at the newest day, and the parts equal the reference with their day
    tables still behind."""
    manifest = json.loads((wh.work / "target" / "manifest.json").read_text())
    parts = [f"int_play_histories_counted_{users}_users" for users in ("even", "odd")]
    parents = {parent.rsplit(".", 1)[-1] for part in parts
               for parent in manifest["parent_map"][f"model.streaming_warehouse.{part}"]}
    history = {"int_user_days_engagement", "int_user_genre_days_aggregated",
               "int_user_track_days_aggregated"}
    assert parents and not history & parents
    skip_features_only = ["run", "--select", "+int_play_histories_counted", "--no-write-json"]
    middle = first + (holdback.newest_full_day(DATABASE) - first) / 2
    assert holdback.hold_back(DATABASE, middle, middle + timedelta(days=6)) > 0
    wh.build(everything=False)
    holdback.restore(DATABASE)
    wh.dbt(*skip_features_only)
    newest = holdback.newest_full_day(DATABASE)
    assert holdback.hold_back(DATABASE, newest, newest) > 0
    wh.dbt(*skip_features_only)
    holdback.restore(DATABASE)
    wh.dbt(*skip_features_only)
    with db.connect(DATABASE) as conn:
        behind = db.read_sql(conn, """
            select count(*) as n from intermediate.int_user_days_engagement
            where session_date between %s and %s""", (middle, middle + timedelta(days=6)))
    assert behind.iloc[0]["n"] == 0
    built = wh.incremental_tables()
    _assert_equal({f"intermediate.{part}": built[f"intermediate.{part}"] for part in parts},
                  wh.reference, _keys(wh), "history tables behind")


def _unlogged_tables_emptied(wh: Warehouse, first: date, last: date) -> None:
    """A server crash empties every unlogged table (the intermediate ones) and leaves the
    watermarks saying built: the next plain run must rebuild those tables whole."""
    with db.connect(DATABASE) as conn:
        unlogged = db.read_sql(conn, """
            select name from unnest(%s) as name
            where (select relpersistence from pg_class where oid = to_regclass(name)) = 'u'""",
                               (INCREMENTAL_TABLES,))["name"].tolist()
        assert "intermediate.int_plays_flagged_even_ids" in unlogged
        # the marts, and the tables the views fct_plays and fct_play_skip_features show,
        # survive a crash
        shown = [f"intermediate.{table}_{users}_users" for users in ("even", "odd")
                 for table in ("int_plays_sessionized", "int_play_histories_counted")]
        assert not [table for table in unlogged if table.startswith("marts.") or table in shown]
        for table in unlogged:
            db.execute(conn, f"truncate {table}")


ORDERS: list[tuple[str, Callable[[Warehouse, date, date], None]]] = [
    ("first build with tracks only", _first_build_tracks_only),
    ("newest day held back", _newest_day_last),
    ("oldest ten days loaded after a build", _oldest_ten_days_last),
    ("middle week loaded last", _middle_week_last),
    ("three batches with builds between", _three_batches),
    ("one old day's batch replaced with corrected rows", _old_day_replaced),
    ("one batch removed", _batch_removed),
    ("a late play of a session across midnight removed", _late_play_across_midnight_removed),
    ("int_play_histories_counted built without its history tables", _history_tables_left_behind),
    ("unlogged tables emptied as a crash leaves them", _unlogged_tables_emptied),
]


def test_every_arrival_order_gives_the_full_refresh_marts(warehouse_built):
    wh, reference = warehouse_built
    keys = _keys(wh)
    manifest = json.loads((wh.work / "target" / "manifest.json").read_text())
    assert {f"{n['schema']}.{n['name']}" for n in manifest["nodes"].values()
            if n["config"].get("materialized") == "incremental"} == set(INCREMENTAL_TABLES)
    assert min(len(reference[f"intermediate.int_plays_sessionized_{users}_users"])
               for users in ("even", "odd")) > 500
    first, last = wh.day_range()
    for name, arrive in ORDERS:
        arrive(wh, first, last)
        wh.build(everything=False)
        _assert_equal(wh.incremental_tables(), reference, keys, name)
        _assert_planned_with_statistics(name)
    wh.build()
    marts = wh.marts()
    assert set(marts) == {name for name in reference if name.startswith("marts.")}
    assert len(marts) >= 15
    _assert_equal(marts, reference, keys, "every mart after all orders")
    # every kind of change happened, and every incremental model is built up to the last
    with db.connect(DATABASE) as conn:
        actions = set(db.read_sql(conn, "select distinct action from raw.load_changes "
                                        "where table_name = 'listening_events'")["action"])
        behind = db.read_sql(conn, """
            select watermark_name, max(change_id) as change_id
            from incremental.watermarks
            where watermark_name not like 'run %%'
            group by watermark_name
            having max(change_id) < (select max(change_id) from raw.load_changes)""")
    assert actions == {"load", "replace", "remove"}
    assert behind.empty, behind


def _views() -> dict[str, tuple[int, int, bool]]:
    """Every view of the intermediate and marts schemas: its identity (oid), its rows, and
    whether the reporter role may read it."""
    with db.connect(DATABASE) as conn:
        names = db.read_sql(conn, """
            select cast(cast(oid as regclass) as text) as name, cast(oid as bigint) as oid
            from pg_class
            where relkind = 'v' and relnamespace in (cast('intermediate' as regnamespace),
                                                     cast('marts' as regnamespace))""")
        return {row.name: (row.oid, int(db.read_sql(conn, f"select count(*) as n from "
                                                          f"{row.name}").iloc[0]["n"]),
                           bool(db.read_sql(conn, "select has_table_privilege('reporter', "
                                                  "%s, 'select') as r", (row.name,))
                                .iloc[0]["r"]))
                for row in names.itertuples()}


def _table_oids(names: list[str]) -> dict[str, int]:
    with db.connect(DATABASE) as conn:
        return {name: int(db.read_sql(conn, "select cast(to_regclass(%s) as bigint) as oid",
                                      (name,)).iloc[0]["oid"]) for name in names}


@contextlib.contextmanager
def _readers_meanwhile(views: list[str]) -> Iterator[list[str]]:
    """A reader querying the views over and over (as Tableau does while a run goes on) until
    the block ends: what it yields collects the reads that failed; at least one read per view
    succeeds."""
    failed: list[str] = []
    done = threading.Event()
    reads = {view: 0 for view in views}

    def read() -> None:
        with db.connect(DATABASE) as conn:
            conn.autocommit = True
            while not done.is_set():
                for view in views:
                    try:
                        db.read_sql(conn, f"select count(*) as n from {view}")
                        reads[view] += 1
                    except Exception as error:  # every failure is the finding
                        failed.append(f"{view}: {error}".splitlines()[0])

    reader = threading.Thread(target=read)
    reader.start()
    try:
        yield failed
    finally:
        done.set()
        reader.join()
    assert min(reads.values()) > 0, reads


def test_no_run_drops_a_view_over_what_it_swaps_in(warehouse_built):
    """A rebuilt view, or a table built whole, replaces the old relation: the views over it
    (the marts fct_plays and fct_play_skip_features over the sessionized plays and their
    history) must stay, same identity, grants and rows, over the new relation; not be dropped
    and left to a later model of the run (readers found no relation meanwhile) or to none (a
    run that does not select them). A reader querying the marts while runs go on never
    fails."""
    wh, _ = warehouse_built
    wh.build()  # up to date, whatever ran before
    views = _views()
    assert {"marts.fct_plays", "marts.fct_play_skip_features",
            "intermediate.int_plays_sessionized"} <= set(views)
    assert views["marts.fct_plays"][1] > 500 and views["marts.fct_plays"][2]
    marts_views = ["marts.fct_plays", "marts.fct_play_skip_features"]
    rebuilt = ["intermediate.int_plays_flagged", "intermediate.int_plays_sessionized"]
    with _readers_meanwhile(marts_views) as failed:
        wh.dbt("run", "--select", *(name.split(".")[1] for name in rebuilt), "--no-write-json")
    # redefined in place, and the views over them (fct_plays, fct_play_skip_features) kept
    assert _views() == views and not failed, failed[:5]
    # a view whose columns no longer fit its model's (as after a change of the model) is
    # built anew, as dbt builds it (nothing is over int_plays_flagged but tables)
    flagged = "intermediate.int_plays_flagged"
    with db.connect(DATABASE) as conn:
        db.execute(conn, f"alter view {flagged} rename column played_date to old_day")
    wh.dbt("run", "--select", "int_plays_flagged", "--no-write-json")
    found = _views()
    assert found[flagged][0] != views[flagged][0] and found[flagged][1:] == views[flagged][1:]
    assert {k: v for k, v in found.items() if k != flagged} == {
        k: v for k, v in views.items() if k != flagged}
    views = found
    # the oldest days arrive after a build: the plain run rebuilds every row of the parts and
    # the history, which swaps new tables in for them (should_full_refresh)
    swapped = [f"intermediate.{name}" for name in INCREMENTAL["intermediate"]
               if name.startswith(("int_plays_", "int_play_histories"))]
    first, _ = wh.day_range()
    assert holdback.hold_back(DATABASE, first, first + timedelta(days=9)) > 0
    # and the marts tables, rebuilt whole (dim_users, fct_user_features) or by day
    # (fct_sessions), through a plain run of everything
    with _readers_meanwhile([*marts_views, "marts.dim_users", "marts.fct_user_features",
                             "marts.fct_sessions"]) as failed:
        wh.build()
    assert not failed, failed[:5]
    holdback.restore(DATABASE)
    before = _table_oids(swapped)
    with _readers_meanwhile(marts_views) as failed:
        wh.dbt("run", "--select", "config.materialized:incremental", "--no-write-json")
    after = _table_oids(swapped)
    assert all(before[name] != after[name] for name in swapped), (before, after)
    assert _views() == views and not failed, failed[:5]


def test_two_runs_at_once_build_what_one_run_builds(warehouse_built):
    """Two plain runs started together after a new day (a scheduled run that overran and an
    engineer's run beside it) must both succeed and leave every incremental model and mart
    equal to the full refresh: each model is built by one run after the other
    (build_serialized), never with their deletes and inserts interleaved."""
    wh, reference = warehouse_built
    keys = _keys(wh)
    wh.build()
    day = holdback.newest_full_day(DATABASE)
    assert holdback.hold_back(DATABASE, day, day) > 0
    wh.build()
    holdback.restore(DATABASE)
    # The lock build_serialized takes for fct_sessions, held here until both runs wait for
    # it: they then reach the model together, every time, and a model built without the
    # lock would leave them nothing to wait for (the wait below fails).
    nodes = json.loads((wh.work / "target" / "manifest.json").read_text())["nodes"]
    relation = next(node["relation_name"] for node in nodes.values()
                    if node["resource_type"] == "model" and node["name"] == "fct_sessions")
    key = f"dbt build {relation}"
    with db.connect(DATABASE) as holder:
        holder.autocommit = True
        db.execute(holder, "select pg_advisory_lock(hashtext(%s))", (key,))
        # two dbt processes, each with its own target and logs; a failed one raises with its
        # output
        with ThreadPoolExecutor(2) as pool:
            runs = [pool.submit(dbt_cli.run, DATABASE, wh.work / f"run{n}", "run", *MODELS,
                                "--quiet", timeout=600) for n in (1, 2)]
            deadline = time.monotonic() + 300
            while _advisory_waiters(holder, key) < 2:
                finished = [run for run in runs if run.done()]
                for run in finished:
                    run.result()  # a failed run raises with its output
                assert not finished and time.monotonic() < deadline, (
                    "the runs did not both wait for the lock on fct_sessions")
                time.sleep(0.2)
            db.execute(holder, "select pg_advisory_unlock(hashtext(%s))", (key,))
            for run in runs:
                run.result()
    _assert_equal(wh.built(), reference, keys, "two runs at once")


def _advisory_waiters(conn: db.Connection, key: str) -> int:
    """Sessions waiting for the advisory lock pg_advisory_lock(hashtext(key)) takes (a
    bigint key: its low 32 bits in objid, objsubid 1)."""
    return int(db.read_sql(conn, """
        select count(*) as n from pg_locks
        where locktype = 'advisory' and not granted and objsubid = 1
          and database = (select oid from pg_database where datname = current_database())
          and objid::text::bigint = hashtext(%s)::bigint & 4294967295""", (key,))["n"].iloc[0])


def test_a_tier_change_moves_the_users_plays_as_a_full_refresh_would(warehouse_built):
    """raw users holds only the tier at export time, so a tier change is a replaced users
    batch: after it a plain run must give every mart of a full refresh, with all of that
    user's plays under the new tier in fct_skip_rates (no built day keeps the old tier)."""
    wh, _ = warehouse_built
    keys = _keys(wh)
    wh.build()  # up to date, whatever ran before

    def tier_plays() -> dict[str, int]:
        rates = wh.tables("marts", ["fct_skip_rates"])["fct_skip_rates"]
        tiers = rates[rates["dimension"] == "tier"]
        return dict(zip(tiers["dimension_value"], tiers["play_count"].astype(int), strict=True))

    before = tier_plays()
    columns = [c.name for c in contract.TABLES["users"].columns]
    with db.connect(DATABASE) as conn:
        busiest = db.read_sql(conn, """
            select plays.user_id, users.tier, count(*) as n
            from marts.fct_plays as plays
            inner join raw.users as users on plays.user_id = users.user_id
            group by 1, 2 order by 3 desc, 1 limit 1""").iloc[0]
        users = db.read_sql(conn, f"select {', '.join(columns)} from raw.users")
        batch = db.read_sql(conn, "select distinct _batch_id from raw.users")["_batch_id"]
    assert len(batch) == 1
    new_tier = "free" if busiest["tier"] == "premium" else "premium"
    users.loc[users["user_id"] == busiest["user_id"], "tier"] = new_tier
    with db.connect(DATABASE) as conn:
        result = load.load(conn, "users", [users], batch_id=batch.iloc[0], source="test")
    assert result.rows_loaded == len(users)
    wh.build()
    after = tier_plays()
    moved = int(busiest["n"])
    assert after[new_tier] == before.get(new_tier, 0) + moved
    assert after.get(busiest["tier"], 0) == before[busiest["tier"]] - moved
    incremental = wh.marts()
    wh.dbt("run", "--full-refresh", *MODELS)
    full = wh.marts()
    _assert_equal(incremental, full, keys, "a tier change, then a plain run")


def test_a_backtest_as_of_an_earlier_day_then_a_plain_run_gives_the_full_refresh(warehouse_built):
    """features_as_of_date limits the per-key state (int_user_artists_summarised, ...) to the
    days up to it: that build is whole and forgets the state's watermark, so the next plain
    run rebuilds every key. The state of the backtest must hold no later play, and after the
    plain run every model must be as before the backtest (equal to a full refresh: the
    arrival-order test)."""
    wh, _ = warehouse_built
    keys = _keys(wh)
    wh.build()
    before = wh.built()
    first, last = wh.day_range()
    as_of = first + (last - first) / 2
    wh.dbt("run", "--select", "+fct_user_features", "--vars", f"{{features_as_of_date: '{as_of}'}}")
    with db.connect(DATABASE) as conn:
        later = db.read_sql(conn, """
            select count(*) as n from intermediate.int_user_artists_summarised
            where last_played_date > %s""", (as_of,)).iloc[0]["n"]
        features = db.read_sql(conn, "select count(*) as n from marts.fct_user_features")
    assert later == 0 and features.iloc[0]["n"] > 0
    wh.build()
    after = wh.built()
    _assert_equal(after, before, keys, "a backtest as of an earlier day, then a plain run")


def test_after_a_daily_run_the_planner_counts_the_new_day_in_every_table(warehouse_built):
    """After a daily run the planner counts the new day's rows in every date column of every
    incremental table (analyze_table). With statistics from before the day it takes a filter
    on the day for one row and joins it by nested loop (a minute for fct_plays at 200,000
    sessions). A run with nothing to rebuild analyzes none of them."""
    wh, _ = warehouse_built
    wh.build()
    before = _analyze_count()
    wh.build(everything=False)
    assert _analyze_count() == before
    day = holdback.newest_full_day(DATABASE)
    assert holdback.hold_back(DATABASE, day, day) > 0
    wh.build(everything=False)
    with db.connect(DATABASE) as conn:
        for table in INCREMENTAL_TABLES:
            # statistics without the day, which autovacuum must not renew during the run
            db.execute(conn, f"alter table {table} set (autovacuum_enabled = off)")
            db.execute(conn, f"analyze {table}")
    before = _analyze_count()
    holdback.restore(DATABASE)
    wh.build(everything=False)
    _assert_planned_with_statistics("a daily run")
    assert _analyze_count() > before
    counted = []
    with db.connect(DATABASE) as conn:
        columns = db.read_sql(conn, """
            select table_schema, table_name, column_name from information_schema.columns
            where table_schema || '.' || table_name = any(%s) and data_type = 'date'""",
                              (INCREMENTAL_TABLES,))
        for schema, table, column in columns.itertuples(index=False):
            where = f"from {schema}.{table} where {column} = %s"
            rows = db.read_sql(conn, f"select count(*) as n {where}", (day,)).iloc[0]["n"]
            if rows < 20:
                continue
            plan = db.read_sql(conn, f"explain (format json) select * {where}", (day,))
            estimate = plan.iloc[0, 0][0]["Plan"]["Plan Rows"]
            counted.append((f"{schema}.{table}.{column}", int(rows), estimate))
    # the play tables are among them, and most day tables
    assert len(counted) >= 8, counted
    play_days = {"intermediate.int_plays_sessionized_even_users.played_date",
                 "intermediate.int_plays_sessionized_odd_users.played_date",
                 "intermediate.int_play_histories_counted_even_users.session_date",
                 "intermediate.int_play_histories_counted_odd_users.session_date"}
    assert play_days <= {c[0] for c in counted}, counted
    off = [c for c in counted if not c[1] / 2 <= c[2] <= c[1] * 2]
    assert not off, f"new day's rows (table.column, actual, estimated): {off}"


def _scope_reads(log: Path) -> dict[str, int]:
    """Per model, the reads of its rebuild scope (the query of incremental_scope_read) in the
    latest dbt invocation of the debug log (dbt rotates it at 10 MB, so the one before too)."""
    rotated = log.with_name(log.name + ".1")
    text = "".join(f.read_text(errors="replace") for f in (rotated, log) if f.exists())
    text = text[text.rindex("Running with dbt"):]
    reads: dict[str, int] = {}
    for statement in re.split(r"\n\S* ?\d\d:\d\d:\d\d\.\d+ \[debug\] ", text):
        model = re.match(r"\[[^\]]*\]: On model\.\w+\.(\w+): /\*", statement)
        if model and " as built_since" in statement:
            reads[model.group(1)] = reads.get(model.group(1), 0) + 1
    return reads


def test_a_daily_run_rewrites_of_the_day_before_only_the_users_crossing_midnight(
        warehouse_built):
    """Of the days before a returning day, a plain run rewrites only the rows of the users
    with a session that reaches it (docs/incremental.md, "Which days are rebuilt"):
    rows of every other user keep their place in the table (ctid), those users' rows of the
    day before are all rewritten. Checked on the play tables and a user x day table; every
    day of the fixture has a session across midnight, so both sets are non-empty. The run
    reads each model's scope at most twice, once for its query and once for its hooks
    ("What finding the scope costs"; each part of int_play_histories_counted asks for it 10
    times)."""
    wh, _ = warehouse_built
    wh.build()
    first, _ = wh.day_range()
    # the day after the busiest, so that its eve has users on both sides
    eve = _busiest_day(first, holdback.newest_full_day(DATABASE) - timedelta(days=1))
    day = eve + timedelta(days=1)
    assert holdback.hold_back(DATABASE, day, day) > 0
    wh.build(everything=False)
    tables = {  # table: its key
        "intermediate.int_plays_sessionized_even_users": "play_id",
        "intermediate.int_plays_sessionized_odd_users": "play_id",
        "intermediate.int_play_histories_counted_even_users": "play_id",
        "intermediate.int_play_histories_counted_odd_users": "play_id",
        "intermediate.int_user_days_engagement": "user_id",
    }

    def rows_before_the_day() -> dict[str, pd.DataFrame]:
        with db.connect(DATABASE) as conn:
            return {table: db.read_sql(conn, f"""
                select {key} as key, user_id, session_date, ctid::text as place from {table}
                where session_date < %s""", (day,)) for table, key in tables.items()}

    with db.connect(DATABASE) as conn:
        crossing = set(db.read_sql(conn, """
            select distinct user_id from intermediate.int_plays_sessionized
            where session_date < %s and ended_at >= %s""",
                                   (day, pd.Timestamp(day) - pd.Timedelta(minutes=30)))["user_id"])
    before = rows_before_the_day()
    holdback.restore(DATABASE)
    wh.build(everything=False)
    after = rows_before_the_day()
    reads = _scope_reads(wh.work / "logs" / "dbt.log")
    assert reads.get("int_play_histories_counted_odd_users", 0) >= 1, reads
    assert max(reads.values()) <= 2, reads
    assert crossing
    for table in tables:
        matched = before[table].merge(after[table], how="left", indicator=True)
        rewritten = matched[matched["_merge"] == "left_only"]
        assert set(rewritten["user_id"]) <= crossing, table
        on_eve = matched[matched["session_date"] == eve]
        assert set(on_eve.loc[on_eve["_merge"] == "left_only", "key"]) == set(
            on_eve.loc[on_eve["user_id"].isin(crossing), "key"]), table
        assert (on_eve["_merge"] == "both").any(), table


def test_after_a_daily_run_data_tests_read_only_the_rebuilt_days(warehouse_built):
    """After a plain run the data tests of an incremental model and of raw.listening_events
    read only the days that build rebuilt (macros/default__get_where_subquery.sql): a bad
    row planted on an older day is not reported, one on the rebuilt day is, and
    `test_all_days` reports both."""
    wh, _ = warehouse_built
    wh.build()
    first, _ = wh.day_range()
    day = holdback.newest_full_day(DATABASE)
    assert holdback.hold_back(DATABASE, day, day) > 0
    wh.build(everything=False)
    holdback.restore(DATABASE)
    wh.build(everything=False)
    planted = {  # table, column set to null, its day column
        "not_null_int_plays_flagged_even_ids_is_valid":
            ("intermediate.int_plays_flagged_even_ids", "is_valid", "played_date"),
        "source_not_null_streaming_listening_events_ms_played":
            ("raw.listening_events", "ms_played", "cast(started_at as date)"),
    }

    def failures(*extra: str) -> dict[str, int]:
        result = wh.runner.invoke(["test", "--select", *planted, "--quiet", "--target-path",
                                   str(wh.work / "target"), "--no-write-json", *extra])
        return {r.node.name: r.failures for r in result.result.results
                if r.node.resource_type == "test"}

    with db.connect(DATABASE) as conn:
        saved = {}
        for name, (table, column, day_column) in planted.items():
            saved[name] = db.read_sql(conn, f"""
                select ctid::text as row, {column} as value from {table}
                where ctid in (select min(ctid) from {table}
                               where {day_column} in (%s, %s) group by {day_column})""",
                                      (first, day))
            assert len(saved[name]) == 2
            # an update moves the row: keep where it went, to put the value back
            saved[name]["row"] = [
                db.read_sql(conn, f"update {table} set {column} = null where ctid = %s::tid "
                                  "returning ctid::text as row", (row,)).iloc[0]["row"]
                for row in saved[name]["row"]]
    try:
        assert failures() == dict.fromkeys(planted, 1)
        assert failures("--vars", "{test_all_days: true}") == dict.fromkeys(planted, 2)
    finally:
        with db.connect(DATABASE) as conn:
            for name, (table, column, _) in planted.items():
                for row in saved[name].itertuples(index=False):
                    db.execute(conn, f"update {table} set {column} = %s where ctid = %s::tid",
                               (row.value, row.row))


def test_a_history_table_built_unlogged_is_made_logged_by_the_next_run(warehouse_built):
    """dbt applies `unlogged` only when it creates a table: a day table that
    fct_play_skip_features reads without a dependency, left unlogged by an older build (a
    crash would empty it while its watermark says built), is altered to logged by the next
    plain run (persistence_reconciled); the other intermediate tables stay unlogged."""
    wh, _ = warehouse_built
    wh.build()
    history = "intermediate.int_user_track_days_aggregated"
    query = "select relpersistence from pg_class where oid = to_regclass(%s)"
    with db.connect(DATABASE) as conn:
        db.execute(conn, f"alter table {history} set unlogged")
    wh.build(everything=False)
    with db.connect(DATABASE) as conn:
        persistence = {table: db.read_sql(conn, query, (table,)).iloc[0]["relpersistence"]
                       for table in (history, "intermediate.int_plays_flagged_even_ids")}
    assert persistence == {history: "p", "intermediate.int_plays_flagged_even_ids": "u"}
