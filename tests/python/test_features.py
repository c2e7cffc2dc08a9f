"""Engagement features (issue 4): documented, point-in-time correct, and they see the truth.

One small generated data set is built three times:
1. with every raw event from a cut-off on deleted (--full-refresh): the "past" build;
2. with the events restored, incrementally: every play and session before the cut-off must
   keep exactly the features of build 1 (no feature may look at the future);
3. with --full-refresh: must equal build 2 (incremental = full refresh).
The manifest must hold >= 50 documented, range-tested features, and the training marts must
show effects planted by the generator (docs/ground_truth.md section 4).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from datetime import date, datetime

import numpy as np
import pandas as pd
import psycopg2
import pytest

from python_jobs import config, db, dbt_cli, generate, holdback, warehouse

DATABASE = "feat_test_features"
SESSIONS = 1500
CUTOFF = "2026-02-18 12:00:00"  # day 44 of the default window, mid-day: cuts sessions
SELECT = ["--select", "+fct_play_skip_features", "+fct_session_training", "+fct_user_features",
          "fct_plays"]
# models and seeds, no tests: the core's own tests run in test_dbt_core.py
NO_TESTS = ["--exclude-resource-type", "test", "unit_test"]
ENGAGEMENT = ["path:models/intermediate/engagement", "path:models/marts/engagement"]
# session targets may change when a session is cut; every other column is a feature or key
SESSION_TARGETS = ["duration_seconds", "track_count"]

pytestmark = pytest.mark.slow


def _read(conn: db.Connection, table: str, key: str) -> pd.DataFrame:
    return db.read_sql(conn, f"select * from {table}").sort_values(key).reset_index(drop=True)


def _assert_same(left: pd.DataFrame, right: pd.DataFrame, what: str) -> None:
    """Equal frames; floats to 1e-9 (float sums may add up in another order)."""
    assert list(left.columns) == list(right.columns), what
    assert len(left) == len(right), what
    for column in left.columns:
        a, b = left[column], right[column]
        if pd.api.types.is_float_dtype(a) or pd.api.types.is_float_dtype(b):
            same = np.isclose(a.astype(float), b.astype(float), rtol=1e-9, atol=1e-9,
                              equal_nan=True)
        else:
            same = (a == b) | (a.isna() & b.isna())
        assert bool(np.all(same)), f"{what}: column {column} differs in {int((~same).sum())} rows"


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Iterator[dict]:
    tmp = tmp_path_factory.mktemp("features")
    db.ensure_database(config.settings(DATABASE))
    db.drop_database(DATABASE)
    warehouse.init(DATABASE)
    try:
        assert generate.main(["--sessions", str(SESSIONS), "--seed", "11",
                              "--database", DATABASE, "--log-level", "WARNING"]) == 0
        cutoff = datetime.fromisoformat(CUTOFF)
        holdback.hold_back(DATABASE, cutoff.date(), date.max, since=cutoff)
        dbt_cli.run(DATABASE, tmp, "build", "--full-refresh", *NO_TESTS, *SELECT)
        # the data and unit tests of the engagement models (the core has its own test file)
        past_log = dbt_cli.run(DATABASE, tmp, "test", "--select", *ENGAGEMENT,
                               "--indirect-selection", "cautious").stdout
        with db.connect(DATABASE) as conn:
            past_plays = _read(conn, "marts.fct_play_skip_features", "play_id")
            past_sessions = _read(conn, "marts.fct_session_training", "session_id")
        holdback.restore(DATABASE)
        dbt_cli.run(DATABASE, tmp, "build", *NO_TESTS, *SELECT)
        with db.connect(DATABASE) as conn:
            incremental_plays = _read(conn, "marts.fct_play_skip_features", "play_id")
            incremental_sessions = _read(conn, "marts.fct_session_training", "session_id")
        dbt_cli.run(DATABASE, tmp, "build", "--full-refresh", *NO_TESTS, *SELECT)
        with db.connect(DATABASE) as conn:
            full_plays = _read(conn, "marts.fct_play_skip_features", "play_id")
            full_sessions = _read(conn, "marts.fct_session_training", "session_id")
        manifest = json.loads((tmp / "target" / "manifest.json").read_text())
        yield {"past_plays": past_plays, "past_sessions": past_sessions,
               "incremental_plays": incremental_plays,
               "incremental_sessions": incremental_sessions,
               "full_plays": full_plays, "full_sessions": full_sessions,
               "manifest": manifest, "past_log": past_log}
    finally:
        if not os.environ.get("KEEP_TEST_DATABASES"):
            db.drop_database(DATABASE)


def test_user_features_has_50_documented_range_tested_features(built):
    nodes = built["manifest"]["nodes"]
    model = next(n for n in nodes.values()
                 if n["resource_type"] == "model" and n["name"] == "fct_user_features")
    features = {name for name, column in model["columns"].items()
                if name not in ("user_id", "as_of_date", "tier")
                and len(column["description"]) > 20}
    range_tested = {n["column_name"] for n in nodes.values()
                    if n["resource_type"] == "test" and n.get("attached_node") == model["unique_id"]
                    and n["test_metadata"]["name"] == "accepted_range"}
    assert len(features) >= 50, sorted(features)
    assert features <= range_tested, sorted(features - range_tested)


@pytest.mark.parametrize(("table", "minimum"),
                         [("intermediate.int_play_histories_counted_even_users", 18),
                          ("intermediate.int_plays_sessionized_even_users", 14)])
def test_ranges_and_not_nulls_are_constraints_the_database_enforces(built, table, minimum):
    """The play tables' ranges, categories and not-nulls (fct_plays' and
    fct_play_skip_features': those of the tables they are views over) are contract
    constraints of the model (the two parts of each share them), checked on every insert
    instead of a data test's scan per column: each one refuses a value just outside it."""
    model = next(n for n in built["manifest"]["nodes"].values()
                 if n["resource_type"] == "model" and n["name"] == table.split(".")[1])
    constraints = [(name, constraint) for name, column in model["columns"].items()
                   for constraint in column["constraints"]]
    constraints += [(constraint["expression"].split()[0], constraint)
                    for constraint in model["constraints"]]
    # one (column, value) per constraint: a column with a not-null and a range has both tried
    refused = []
    for name, constraint in constraints:
        expression = constraint.get("expression") or ""
        if constraint["type"] == "not_null" or expression == f"{name} is not null":
            refused.append((name, None))
        elif " in (" in expression:
            refused.append((name, "not one of them"))
        else:
            bounds = dict(re.findall(rf"{name} ([<>]=) (-?[0-9.]+)", expression))
            refused.append((name, float(bounds["<="]) + 1 if "<=" in bounds
                            else float(bounds[">="]) - 1))
    assert len({name for name, _ in refused}) >= minimum, refused
    with db.connect(DATABASE) as conn:
        for name, value in refused:
            with conn.cursor() as cur:
                cur.execute("savepoint bad_value")
                with pytest.raises((psycopg2.errors.CheckViolation,
                                    psycopg2.errors.NotNullViolation)):
                    cur.execute(f"update {table} set {name} = %s where play_id = "
                                f"(select min(play_id) from {table})", (value,))
                cur.execute("rollback to savepoint bad_value")
        conn.rollback()


def test_past_plays_keep_their_features_when_the_future_arrives(built):
    past, now = built["past_plays"], built["incremental_plays"]
    cutoff = pd.Timestamp(CUTOFF)
    past = past[past["played_at"] < cutoff].reset_index(drop=True)
    now = now[now["played_at"] < cutoff].reset_index(drop=True)
    assert len(past) > 5000
    _assert_same(past, now, "plays before the cut-off")
    assert (built["incremental_plays"]["played_at"] >= cutoff).sum() > 5000  # future arrived


def test_past_sessions_keep_their_features_when_the_future_arrives(built):
    cutoff = pd.Timestamp(CUTOFF)
    past, now = built["past_sessions"], built["incremental_sessions"]
    past = past[past["session_started_at"] < cutoff].drop(columns=SESSION_TARGETS)
    now = now[now["session_started_at"] < cutoff].drop(columns=SESSION_TARGETS)
    assert len(past) > 500
    _assert_same(past.reset_index(drop=True), now.reset_index(drop=True),
                 "sessions before the cut-off")


def test_incremental_equals_full_refresh(built):
    _assert_same(built["incremental_plays"], built["full_plays"], "fct_play_skip_features")
    _assert_same(built["incremental_sessions"], built["full_sessions"], "fct_session_training")


def test_distinct_tracks_are_counted_from_the_plays(built):
    """distinct_track_count sums the per-(user, artist) track counts: it must be the user's
    distinct tracks in the plays, with users who played several tracks of one artist."""
    with db.connect(DATABASE) as conn:
        counts = db.read_sql(conn, """
            select features.user_id, features.distinct_track_count,
                   count(distinct plays.track_id) as tracks,
                   count(distinct plays.artist_id) as artists
            from marts.fct_user_features as features
            inner join intermediate.int_plays_sessionized as plays
                on features.user_id = plays.user_id
            group by 1, 2""")
    assert len(counts) > 50
    assert (counts["tracks"] > counts["artists"]).sum() > len(counts) / 2
    assert (counts["distinct_track_count"] == counts["tracks"]).all()


def test_diversity_features_equal_a_direct_computation_from_the_plays(built):
    """int_user_genre_diversity (summed from the per-(user, artist) state) against pandas on
    the plays themselves: every column, floats to 1e-9."""
    with db.connect(DATABASE) as conn:
        built_rows = _read(conn, "intermediate.int_user_genre_diversity", "user_id")
        plays = db.read_sql(conn, "select user_id, session_date, track_id, artist_id, genre "
                                  "from intermediate.int_plays_sessionized")
    plays["session_date"] = pd.to_datetime(plays["session_date"])
    as_of = plays["session_date"].max()
    recent_start = as_of - pd.Timedelta(days=28)
    users = plays.groupby("user_id")
    per_genre = plays.groupby(["user_id", "genre"]).agg(
        plays=("track_id", "size"), first=("session_date", "min")).reset_index()
    per_artist = plays.groupby(["user_id", "artist_id"]).agg(
        plays=("track_id", "size"), first=("session_date", "min")).reset_index()
    total = users.size()
    genre_share = per_genre["plays"] / per_genre["user_id"].map(total)
    per_genre["entropy_term"] = -genre_share * np.log(genre_share)
    artist_share = per_artist["plays"] / per_artist["user_id"].map(total)
    per_artist["square"] = artist_share ** 2
    genres, artists = per_genre.groupby("user_id"), per_artist.groupby("user_id")
    recent_plays = plays[plays["session_date"] > recent_start].groupby("user_id").size()
    recent_plays = recent_plays.reindex(total.index).fillna(0)

    def per_recent_play(count: pd.Series) -> pd.Series:
        return (count.reindex(total.index).fillna(0) / recent_plays).where(recent_plays > 0)

    genre_count, artist_count = genres.size(), artists.size()
    distinct_tracks = users["track_id"].nunique()
    entropy = genres["entropy_term"].sum()
    expected = pd.DataFrame({
        "user_id": total.index,
        "genre_count": genre_count,
        "genre_entropy": entropy,
        "genre_entropy_normalised": (entropy / np.log(genre_count)).clip(upper=1)
        .where(genre_count > 1, 0.0),
        "top_genre_play_share": genres["plays"].max() / total,
        "artist_count": artist_count,
        "top_artist_play_share": artists["plays"].max() / total,
        "artist_hhi": artists["square"].sum(),
        "distinct_track_count": distinct_tracks,
        "track_repeat_rate": 1 - distinct_tracks / total,
        "artist_exploration_ratio": artist_count / total,
        "genre_exploration_ratio": genre_count / total,
        "artist_exploration_ratio_28d": per_recent_play(
            per_artist[per_artist["first"] > recent_start].groupby("user_id").size()),
        "genre_exploration_ratio_28d": per_recent_play(
            per_genre[per_genre["first"] > recent_start].groupby("user_id").size()),
    }).reset_index(drop=True)
    # some users past the 28 days, some not; most with several genres
    assert len(expected) > 50
    assert 0 < expected["artist_exploration_ratio_28d"].notna().sum() < len(expected)
    assert (expected["genre_count"] > 1).sum() > len(expected) / 2
    _assert_same(built_rows[list(expected.columns)], expected, "int_user_genre_diversity")


def test_planted_skip_effects_show_in_the_training_mart(built):
    plays = built["full_plays"]
    # the user's skip propensity u ~ N(0, 0.5) makes a user's past skips predict the next
    seasoned = plays[plays["user_prior_play_count"] >= 20]
    correlation = np.corrcoef(seasoned["user_prior_skip_rate"],
                              seasoned["is_skipped"].astype(float))[0, 1]
    assert correlation > 0.1, correlation
    # +0.4 on the skip logit for sessions starting 00-05 UTC
    night = plays["session_start_hour"] < 6
    p_night, p_day = plays.loc[night, "is_skipped"].mean(), plays.loc[~night, "is_skipped"].mean()
    pooled = plays["is_skipped"].mean()
    z = (p_night - p_day) / np.sqrt(pooled * (1 - pooled) * (1 / night.sum() + 1 / (~night).sum()))
    assert z > 3, (p_night, p_day, z)


def test_planted_session_length_effect_shows_in_the_training_mart(built):
    sessions = built["full_sessions"]
    # log(mu) +0.30 for premium: premium sessions hold more tracks
    by_tier = sessions.groupby("tier")["track_count"].mean()
    assert by_tier["premium"] > 1.15 * by_tier["free"], by_tier
    # no leakage of the target: the user's earlier mean says nothing about a first session
    assert sessions.loc[sessions["user_prior_session_count"] == 0,
                        "user_prior_mean_duration_seconds"].isna().all()
