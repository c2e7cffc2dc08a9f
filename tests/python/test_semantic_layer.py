"""The semantic layer: `mf query` answers equal the marts they restate.

One small generated data set is built (the marts the semantic models read), then MetricFlow's
own CLI queries it; every metric is compared with the mart that defines it in SQL.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from python_jobs import config, db, dbt_cli, generate, warehouse

DATABASE = os.environ.get("TEST_DATABASE_PREFIX", "test_") + "semantic"
MF = str(Path(sys.executable).with_name("mf"))

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Iterator[Path]:
    tmp = tmp_path_factory.mktemp("semantic")
    db.drop_database(DATABASE)
    warehouse.init(DATABASE)
    try:
        assert generate.main(["--sessions", "600", "--seed", "11", "--database", DATABASE,
                              "--log-level", "WARNING"]) == 0
        dbt_cli.run(DATABASE, tmp, "seed")
        dbt_cli.run(DATABASE, tmp, "run", "--select",
                    "+fct_dau_mau +fct_skip_rates +fct_retention_cohorts +fct_playlist_runs "
                    "+fct_sessions +fct_plays +dim_tracks +dim_days")
        # mf reads the semantic manifest from the project's own target/ only
        (config.ROOT / "target").mkdir(exist_ok=True)
        shutil.copy(tmp / "target" / "semantic_manifest.json", config.ROOT / "target")
        yield tmp
    finally:
        if not os.environ.get("KEEP_TEST_DATABASES"):
            db.drop_database(DATABASE)


def mf_query(tmp: Path, name: str, *args: str) -> pd.DataFrame:
    """Run `mf query ARGS --csv` against the test database and read the CSV it wrote."""
    out = tmp / f"{name}.csv"
    env = {**os.environ, "PGDATABASE": DATABASE}
    result = subprocess.run([MF, "query", *args, "--csv", str(out)], cwd=config.ROOT, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and out.exists(), result.stdout[-3000:] + result.stderr[-2000:]
    return pd.read_csv(out)


def mart(query: str) -> pd.DataFrame:
    with db.connect(DATABASE) as conn:
        return db.read_sql(conn, query)


def test_daily_kpis_equal_the_marts(built: Path) -> None:
    got = mf_query(built, "daily", "--saved-query", "daily_kpis")
    got["day"] = pd.to_datetime(got["metric_time__day"]).dt.date
    got = got.set_index("day").sort_index()
    dau_mau = mart("select activity_date as day, dau, wau, mau, stickiness "
                   "from marts.fct_dau_mau where segment_type = 'overall'").set_index("day")
    daily = mart("select played_date as day, count(*) as plays, "
                 "sum(ms_played) / 60000.0 as listening_minutes, "
                 "avg(case when is_skipped then 1.0 else 0 end) as skip_rate "
                 "from marts.fct_plays group by 1").set_index("day")
    sessions = mart("select session_date as day, count(*) as sessions from marts.fct_sessions "
                    "group by 1").set_index("day")
    expected = dau_mau.join(daily, how="outer").join(sessions, how="outer").sort_index()
    assert len(got) > 20
    for column in ("dau", "wau", "mau", "plays", "sessions"):
        left = got[column].reindex(expected.index).fillna(0).astype("int64")
        right = expected[column].fillna(0).astype("int64")
        assert (left == right).all(), column
    for column in ("stickiness", "listening_minutes", "skip_rate"):
        both = expected[[column]].merge(got[[column]], left_index=True, right_index=True,
                                        suffixes=("", "_mf")).dropna()
        assert len(both) > 20
        np.testing.assert_allclose(both[f"{column}_mf"].astype(float),
                                   both[column].astype(float), rtol=1e-9, err_msg=column)


def test_skip_rate_by_tier_equals_fct_skip_rates(built: Path) -> None:
    got = mf_query(built, "tier", "--saved-query", "skip_rate_by_tier").set_index("user__tier")
    expected = mart("select dimension_value as tier, skip_rate, play_count from "
                    "marts.fct_skip_rates where dimension = 'tier'").set_index("tier")
    assert sorted(got.index) == sorted(expected.index) == ["free", "premium"]
    np.testing.assert_allclose(got.loc[expected.index, "skip_rate"], expected["skip_rate"],
                               rtol=1e-9)
    assert (got.loc[expected.index, "plays"] == expected["play_count"]).all()


def test_retention_and_funnel_conversion_equal_the_marts(built: Path) -> None:
    cells = ["cohort__cohort_grain", "cohort__cohort_start_date__day", "cohort__period_unit",
             "cohort__period_number"]
    got = mf_query(built, "retention", "--metrics", "retention_rate", "--group-by",
                   ",".join(cells), "--where", "{{ Dimension('cohort__segment_type') }} = 'all'")
    got["cohort__cohort_start_date__day"] = pd.to_datetime(
        got["cohort__cohort_start_date__day"]).dt.date
    expected = mart("select cohort_grain, cohort_start_date, period_unit, period_number, "
                    "retention_rate from marts.fct_retention_cohorts where segment_type = 'all'")
    expected.columns = [*cells, "expected"]
    both = got.merge(expected, on=cells, how="outer", indicator=True)
    assert (both["_merge"] == "both").all() and len(both) > 10
    np.testing.assert_allclose(both["retention_rate"].astype(float),
                               both["expected"].astype(float), rtol=1e-9)

    funnel = mf_query(built, "funnel", "--metrics", "funnel_conversion,playlist_runs",
                      "--group-by", "playlist_run__playlist_type")
    funnel = funnel.set_index("playlist_run__playlist_type")
    runs = mart("select playlist_type, count(*) as runs, "
                "avg(case when is_finished then 1.0 else 0 end) as conversion "
                "from marts.fct_playlist_runs group by 1").set_index("playlist_type")
    assert sorted(funnel.index) == sorted(runs.index)
    assert (funnel.loc[runs.index, "playlist_runs"] == runs["runs"]).all()
    np.testing.assert_allclose(funnel.loc[runs.index, "funnel_conversion"],
                               runs["conversion"].astype(float), rtol=1e-9)
