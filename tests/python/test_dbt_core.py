"""The dbt core on generated data: quality flags, sessions, incremental = full refresh, grants.

One small generated data set (1500 sessions) is built three ways: a full build with the last
day held back, an incremental build after the day arrives, and a --full-refresh build. The
checks compare the pipeline's output with raw.generator_truth, the generator's own counts.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import date

import psycopg2
import pytest
from psycopg2 import errors

from python_jobs import config, db, dbt_cli, generate, holdback, warehouse

DATABASE = os.environ.get("TEST_DATABASE_PREFIX", "test_") + "dbt_core"
SESSIONS = 1500
# Every model dbt builds incrementally, and the marts computed from them.
INCREMENTAL_MODELS = (
    "intermediate.int_plays_flagged",
    "intermediate.int_plays_sessionized",
    "intermediate.int_user_days_active",
    "marts.fct_sessions",
)
DERIVED_MARTS = ("marts.fct_plays", "marts.fct_dau_mau", "marts.fct_skip_rates", "marts.dim_users")

pytestmark = pytest.mark.slow


def _scalar(conn: db.Connection, query: str) -> object:
    return db.read_sql(conn, query).iloc[0, 0]


def _truth(conn: db.Connection) -> dict[str, float]:
    frame = db.read_sql(conn, "select parameter, value from raw.generator_truth")
    return dict(zip(frame["parameter"], frame["value"], strict=True))


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Iterator[dict]:
    """Generate, hold back the last day, build, add the day, build incrementally, keep a copy
    of the incremental results, then build with --full-refresh."""
    tmp = tmp_path_factory.mktemp("dbt_core")
    db.drop_database(DATABASE)
    warehouse.init(DATABASE)
    try:
        assert generate.main(["--sessions", str(SESSIONS), "--seed", "7",
                              "--database", DATABASE, "--log-level", "WARNING"]) == 0
        held_back = holdback.hold_back(DATABASE, holdback.newest_full_day(DATABASE),
                                       date.today())
        dbt_cli.run(DATABASE, tmp, "build")
        holdback.restore(DATABASE)
        incremental_log = dbt_cli.run(DATABASE, tmp, "build",
                                      "--exclude-resource-type", "unit_test").stdout
        with db.connect(DATABASE) as conn:
            db.execute(conn, "create schema incremental_copy")
            for model in INCREMENTAL_MODELS + DERIVED_MARTS:
                db.execute(conn, f"create table incremental_copy.{model.split('.')[1]} "
                                 f"as select * from {model}")
        dbt_cli.run(DATABASE, tmp, "build", "--full-refresh",
                    "--exclude-resource-type", "unit_test")
        yield {"held_back": held_back, "incremental_log": incremental_log, "tmp": tmp}
    finally:
        if not os.environ.get("KEEP_TEST_DATABASES"):
            db.drop_database(DATABASE)


def test_planted_quality_rows_are_flagged(built):
    with db.connect(DATABASE) as conn:
        truth = _truth(conn)
        flags = db.read_sql(conn, """
            select
                sum(case when has_negative_ms_played then 1 else 0 end) as negative_ms_played,
                sum(case when has_overlong_ms_played then 1 else 0 end) as ms_played_over_24h,
                sum(case when is_unknown_track then 1 else 0 end) as unknown_track_id,
                sum(case when is_unknown_user then 1 else 0 end) as unknown_user_id,
                sum(case when is_future then 1 else 0 end) as started_at_2099,
                sum(case when is_valid then 1 else 0 end) as valid
            from intermediate.int_plays_flagged""").iloc[0]
        duplicates = _scalar(conn, """
            select (select count(*) from raw.listening_events)
                - (select count(*) from staging.stg_streaming__listening_events)""")
        fct_plays = _scalar(conn, "select count(*) from marts.fct_plays")
    assert truth["quality.count.total"] > 0  # the data set has plants to find
    assert duplicates == truth["quality.count.duplicate"]
    for kind in ("negative_ms_played", "ms_played_over_24h", "unknown_track_id",
                 "unknown_user_id", "started_at_2099"):
        assert flags[kind] == truth[f"quality.count.{kind}"], kind
    assert flags["valid"] == truth["count.plays"] == fct_plays


def test_sessions_recover_the_generators_sessions_exactly(built):
    with db.connect(DATABASE) as conn:
        truth = _truth(conn)
        pairs = db.read_sql(conn, """
            select distinct plays.session_id, events.session_hint
            from marts.fct_plays as plays
            inner join staging.stg_streaming__listening_events as events
                on plays.play_id = events.play_id""")
        sessions = _scalar(conn, "select count(*) from marts.fct_sessions")
        plays_in_sessions = _scalar(conn, "select sum(track_count) from marts.fct_sessions")
    # a bijection: every session is one generator session and the other way round
    assert pairs["session_id"].is_unique and pairs["session_hint"].is_unique
    assert len(pairs) == sessions == truth["count.sessions"] == SESSIONS
    assert plays_in_sessions == truth["count.plays"]


def test_incremental_build_equals_full_refresh(built):
    assert built["held_back"] > 0
    assert "incremental model" in built["incremental_log"]
    with db.connect(DATABASE) as conn:
        for model in INCREMENTAL_MODELS + DERIVED_MARTS:
            copy = f"incremental_copy.{model.split('.')[1]}"
            rows = _scalar(conn, f"select count(*) from {model}")
            only_full = _scalar(conn, f"select count(*) from (select * from {model} "
                                      f"except all select * from {copy}) as d")
            only_incremental = _scalar(conn, f"select count(*) from (select * from {copy} "
                                             f"except all select * from {model}) as d")
            assert rows > 0, model
            assert (only_full, only_incremental) == (0, 0), model


def test_generated_data_keeps_utc_hours_and_has_no_source_labels(built):
    """The generator writes no time zones, skip labels or stubs: hours stay UTC, the source
    skip rate is null, no track is a stub."""
    with db.connect(DATABASE) as conn:
        differing = _scalar(conn, """
            select count(*) from marts.fct_plays
            where is_local_time or source_skipped is not null or source_skip_label is not null
               or hour_of_day != extract(hour from played_at)
               or iso_day_of_week != extract(isodow from played_at)""")
        labelled = _scalar(conn, """
            select count(*) from marts.fct_skip_rates
            where source_labelled_play_count != 0 or source_skip_count != 0
               or source_skip_rate is not null""")
        stubs = _scalar(conn, "select count(*) from marts.dim_tracks where is_stub")
    assert (differing, labelled, stubs) == (0, 0, 0)


def test_reporter_reads_marts_only(built):
    params = config.settings(DATABASE).dsn()
    params["user"] = config.REPORTING_ROLE
    params.pop("password", None)
    conn = psycopg2.connect(**params)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            for mart in ("fct_plays", "fct_sessions", "fct_dau_mau", "fct_skip_rates",
                         "dim_users", "dim_tracks", "dim_artists", "dim_playlists"):
                cur.execute(f"select count(*) from marts.{mart}")
                assert cur.fetchone()[0] > 0, mart
            for hidden in ("raw.listening_events", "staging.stg_streaming__users",
                           "intermediate.int_plays_sessionized"):
                with pytest.raises(errors.InsufficientPrivilege):
                    cur.execute(f"select 1 from {hidden} limit 1")
    finally:
        conn.close()


def test_active_user_counts_match_a_brute_force_count(built):
    """The mart counts with running sums of span changes; count distinct users directly."""
    with db.connect(DATABASE) as conn:
        differences = db.read_sql(conn, """
            with days as (
                select distinct activity_date from marts.fct_dau_mau
            ),
            brute_force as (
                select
                    days.activity_date,
                    users.tier,
                    count(distinct case when active.activity_date = days.activity_date
                        then active.user_id end) as dau,
                    count(distinct case when active.activity_date > days.activity_date - 7
                        then active.user_id end) as wau,
                    count(distinct active.user_id) as mau
                from days
                inner join intermediate.int_user_days_active as active
                    on active.activity_date between days.activity_date - 27 and days.activity_date
                inner join staging.stg_streaming__users as users
                    on active.user_id = users.user_id
                group by days.activity_date, users.tier
            )
            select mart.activity_date, mart.segment_value, mart.dau, mart.wau, mart.mau,
                   brute_force.dau as bf_dau, brute_force.wau as bf_wau, brute_force.mau as bf_mau
            from marts.fct_dau_mau as mart
            left join brute_force
                on mart.activity_date = brute_force.activity_date
                and mart.segment_value = brute_force.tier
            where mart.segment_type = 'tier'
                and (mart.mau > 0 or brute_force.mau is not null)
                and (brute_force.mau is null
                     or (mart.dau, mart.wau, mart.mau)
                        <> (brute_force.dau, brute_force.wau, brute_force.mau))""")
        checked = _scalar(conn, "select count(*) from marts.fct_dau_mau "
                                "where segment_type = 'tier' and mau > 0")
        overall_vs_tiers = _scalar(conn, """
            select count(*) from marts.fct_dau_mau as overall
            where overall.segment_type = 'overall'
              and overall.mau <> (select sum(tiers.mau) from marts.fct_dau_mau as tiers
                                  where tiers.segment_type = 'tier'
                                    and tiers.activity_date = overall.activity_date)""")
    assert checked > 50
    assert differences.empty, differences.head().to_string()
    assert overall_vs_tiers == 0


def test_docs_site_generates(built):
    dbt_cli.run(DATABASE, built["tmp"], "docs", "generate")
    catalog = json.loads((built["tmp"] / "target" / "catalog.json").read_text())
    documented = {node["metadata"]["name"] for node in catalog["nodes"].values()}
    assert {"fct_plays", "fct_sessions", "fct_dau_mau", "dim_users"} <= documented
