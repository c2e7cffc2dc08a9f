"""The A/B framework end to end: generated experiments -> dbt mart -> analyze -> schema ab.

One generated data set (20,000 sessions, seed 1: 721 users in exp_aa_check, 395 in
exp_skip_reco) is built with `dbt build --select +fct_experiment_user_metrics+` and analysed
with `python -m python_jobs.ab analyze --all`. The checks: rows land in ab and are readable by
the reporting role; the planted skip-rate effect of exp_skip_reco is found and its CI covers
the true lift in raw.generator_truth; the A/A experiment shows nothing; the written numbers
equal stats.py recomputed on the same mart rows; SRM passes on the generated data and fails
after a third of one arm's assignment rows are deleted (the last test: it changes the data);
`assign` recomputes the generator's assignments exactly.

The true lift: the generator's mean P(skip) of every in-window play of every enrolled user
under treatment minus under control, i.e. the play-weighted skip rate. Its estimate is the
ratio metric sum(skip_count) / sum(play_count) per arm, delta method, the user as the unit.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest

from python_jobs import config, db, dbt_cli, generate, warehouse
from python_jobs.ab import __main__ as ab_cli
from python_jobs.ab import stats

DATABASE = os.environ.get("TEST_DATABASE_PREFIX", "test_") + "ab_analyze"
SESSIONS = 20_000
SEED = 1
EXPERIMENTS = ("exp_aa_check", "exp_autoplay", "exp_skip_reco")
stats_z95 = 1.959963984540054
COMPARED = ("n", "value", "n_control", "value_control", "effect", "ci_low", "ci_high",
            "relative_effect", "relative_ci_low", "relative_ci_high", "statistic", "df",
            "p_value", "effect_size", "achieved_power", "variance_reduction")

pytestmark = pytest.mark.slow


def _query(query: str, params: tuple | None = None) -> pd.DataFrame:
    with db.connect(DATABASE) as conn:
        return db.read_sql(conn, query, params)


def _latest_run_id() -> str:
    return _query("select run_id from ab.runs order by run_at desc, run_id desc limit 1")\
        .iloc[0, 0]


@pytest.fixture(scope="module")
def analyzed(tmp_path_factory) -> Iterator[dict]:
    tmp = tmp_path_factory.mktemp("ab_analyze")
    db.ensure_database(config.settings(DATABASE))
    db.drop_database(DATABASE)
    warehouse.init(DATABASE)
    try:
        assert generate.main(["--sessions", str(SESSIONS), "--seed", str(SEED),
                              "--database", DATABASE, "--log-level", "WARNING"]) == 0
        # cautious: skip tests of upstream marts that need models outside the selection
        dbt_cli.run(DATABASE, tmp, "build", "--select", "+fct_experiment_user_metrics+",
             "--indirect-selection", "cautious")
        reports = tmp / "reports"
        assert ab_cli.main(["analyze", "--all", "--database", DATABASE, "--report",
                            str(reports), "--log-level", "WARNING"]) == 0
        yield {"tmp": tmp, "reports": reports, "run_id": _latest_run_id()}
    finally:
        if not os.environ.get("KEEP_TEST_DATABASES"):
            db.drop_database(DATABASE)


def _results(run_id: str, experiment_id: str) -> pd.DataFrame:
    return _query("select * from ab.experiment_results where run_id = %s and "
                  "experiment_id = %s", (run_id, experiment_id))


def test_rows_land_in_ab_and_the_reporter_can_read_them(analyzed):
    run_id = analyzed["run_id"]
    runs = _query("select * from ab.runs where run_id = %s order by experiment_id", (run_id,))
    assert tuple(runs["experiment_id"]) == EXPERIMENTS
    assert not runs["is_srm_mismatch"].any()  # SRM not flagged on the generated data
    for experiment_id, row_count in zip(runs["experiment_id"], runs["result_row_count"],
                                        strict=True):
        results = _results(run_id, experiment_id)
        assert len(results) == row_count > 0
        assert {"play_count", "listening_minutes", "session_count", "skip_rate",
                "retention_d7"} <= set(results["metric"])
        assert {"welch_t", "cuped_welch_t", "ratio_delta_z", "two_proportion_z",
                "chi_square"} <= set(results["method"])
    srm = _query("select * from ab.srm_checks where run_id = %s", (run_id,))
    assert len(srm) == 7 and not srm["is_mismatch"].any()  # 2 + 3 + 2 variants
    privileges = _query(
        "select has_schema_privilege('reporter', 'ab', 'usage') as schema_usage, "
        "has_table_privilege('reporter', 'ab.latest_experiment_results', 'select') as v, "
        "has_table_privilege('reporter', 'ab.experiment_results', 'select') as t")
    assert privileges.iloc[0].all()


def test_skip_reco_effect_is_found_and_its_ci_covers_the_true_lift(analyzed):
    truth = dict(_query("select parameter, value from raw.generator_truth where parameter "
                        "like 'experiment.exp_skip_reco.potential_skip_rate.%'").itertuples(
                            index=False))
    true_lift = (truth["experiment.exp_skip_reco.potential_skip_rate.treatment"]
                 - truth["experiment.exp_skip_reco.potential_skip_rate.control"])
    assert -0.07 < true_lift < -0.03  # logit shift -0.30 at a skip rate near 0.29
    results = _results(analyzed["run_id"], "exp_skip_reco")
    skip = results[(results["metric"] == "skip_rate") & ~results["is_control"]].iloc[0]
    assert skip["method"] == "ratio_delta_z"
    # skip_rate is the experiment's only goal metric (metrics.yml): its family has one test
    assert skip["metric_role"] == "goal" and skip["adjustment_family"] == "goal"
    assert skip["family_size"] == 1 and skip["p_value_holm"] == skip["p_value"]
    assert skip["is_significant"] and skip["p_value_holm"] < 0.05
    assert skip["ci_low"] <= true_lift <= skip["ci_high"]
    assert skip["chance_to_beat_control"] > 0.95  # lower is better for skip_rate
    # the guardrails were not planted: no harm flagged there
    guardrails = results[results["adjustment_family"] == "guardrail"]
    assert set(guardrails["metric"]) == {"retention_d7", "listening_minutes"}
    assert not guardrails["is_significant"].any()


def test_aa_check_shows_no_effect(analyzed):
    results = _results(analyzed["run_id"], "exp_aa_check")
    adjusted = results[results["adjustment_family"].notna()]
    # every metric a goal metric: 3 Welch + ratio + z, and CUPED for each of the five
    assert len(adjusted) == 10
    assert set(adjusted["adjustment_family"]) == {"goal", "goal_cuped"}
    assert not adjusted["is_significant"].any()
    assert (adjusted["p_value_holm"] > 0.05).all()


def _values(users: pd.DataFrame, column: str, order: list[str]) -> dict[str, np.ndarray]:
    return {v: users.loc[users["variant"] == v, column].astype(float).to_numpy() for v in order}


@pytest.mark.parametrize("experiment_id", EXPERIMENTS)
def test_written_statistics_equal_stats_on_the_mart_rows(analyzed, experiment_id):
    """Independent recomputation from the mart with stats.py, compared to 1e-9."""
    users = _query("select * from marts.fct_experiment_user_metrics where experiment_id = %s",
                   (experiment_id,))
    variants = _query("select variant, allocation_weight from "
                      "staging.stg_experiments__experiment_variants where experiment_id = %s",
                      (experiment_id,))
    order = ["control", *sorted(v for v in variants["variant"] if v != "control")]
    weights = variants.set_index("variant").loc[order, "allocation_weight"].astype(float)
    counts = users["variant"].value_counts()
    srm = stats.sample_ratio_mismatch([int(counts.get(v, 0)) for v in order], list(weights))
    written_srm = _query("select * from ab.srm_checks where run_id = %s and experiment_id = %s",
                         (analyzed["run_id"], experiment_id))
    assert written_srm["p_value"].to_numpy() == pytest.approx(srm.p_value, abs=1e-12)

    retained = users[users["is_retained"].notna()]
    expected: list[stats.MetricRow] = []
    for metric in ("play_count", "listening_minutes", "session_count"):
        values = _values(users, metric, order)
        expected += stats.analyze_metric(metric, values, correction=None)
        expected += stats.analyze_metric(metric, values, kind="cuped", correction=None,
                                         pre_period=_values(users, f"pre_{metric}", order))
    expected += stats.analyze_metric("skip_rate", _values(users, "skip_count", order),
                                     kind="ratio", correction=None,
                                     denominators=_values(users, "play_count", order))
    expected += stats.analyze_metric("retention_d7", _values(retained, "is_retained", order),
                                     kind="proportion", correction=None)
    want = stats.rows_to_frame(expected).set_index(["metric", "method", "variant"])
    got = _results(analyzed["run_id"], experiment_id).set_index(["metric", "method",
                                                                 "variant"])
    chi = got.loc[("retention_d7", "chi_square", "all")]
    reference = stats.chi_square_independence(
        [retained.loc[retained["variant"] == v, "is_retained"].sum() for v in order],
        [(retained["variant"] == v).sum() for v in order])
    assert chi["statistic"] == pytest.approx(reference.statistic, rel=1e-9)
    assert chi["p_value"] == pytest.approx(reference.p_value, abs=1e-12)
    got = got.drop(index=("retention_d7", "chi_square", "all"))
    # CUPED of the ratio and the proportion (several covariates): regression.py, checked
    # against statsmodels in test_ab_methods.py; here: the rows exist and are consistent
    new_cuped = got[got.index.get_level_values("method").isin(
        ["cuped_ratio_delta_z", "cuped_proportion_z"])]
    assert len(new_cuped) == 2 * len(order)
    treated_new = new_cuped[~new_cuped["is_control"].astype(bool)]
    np.testing.assert_allclose(treated_new["effect"], treated_new["value"]
                               - treated_new["value_control"], rtol=1e-9)
    got = got.drop(index=new_cuped.index)
    assert sorted(got.index) == sorted(want.index)
    for column in COMPARED:
        a = got.loc[want.index, column].to_numpy(dtype=float)
        b = want[column].to_numpy(dtype=float)
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12, equal_nan=True,
                                   err_msg=f"{experiment_id} {column}")

    # Holm and BH within each decision family of metrics.yml (experiments not listed there:
    # every metric a goal metric); guardrails on the one-sided harm p-values
    full = _results(analyzed["run_id"], experiment_id)
    treated = full[~full["is_control"].astype(bool) & (full["method"] != "chi_square")]
    roles = {"exp_skip_reco": {"skip_rate": "goal", "retention_d7": "guardrail",
                               "listening_minutes": "guardrail", "play_count": "secondary",
                               "session_count": "secondary"},
             "exp_autoplay": {"listening_minutes": "goal", "skip_rate": "guardrail",
                              "retention_d7": "guardrail", "play_count": "secondary",
                              "session_count": "secondary"}}.get(experiment_id, {})
    assert (treated["metric_role"] == treated["metric"].map(lambda m: roles.get(m, "goal"))).all()
    for role in ("goal", "guardrail", "secondary"):
        column = "harm_p_value" if role == "guardrail" else "p_value"
        primary = treated[(treated["metric_role"] == role)
                          & ~treated["method"].str.startswith("cuped_")]
        if primary.empty:
            continue
        assert (primary["adjustment_family"] == role).all()
        np.testing.assert_allclose(primary["p_value_holm"],
                                   stats.adjust_p_values(primary[column], "holm"), rtol=1e-9)
        np.testing.assert_allclose(primary["p_value_bh"],
                                   stats.adjust_p_values(primary[column], "bh"), rtol=1e-9)
        # CUPED rows: the same family with each metric's CUPED row in place of its primary row
        cuped = treated[(treated["metric_role"] == role)
                        & treated["method"].str.startswith("cuped_")]
        family = pd.concat([cuped, primary[~primary["metric"].isin(cuped["metric"])]])
        holm = stats.adjust_p_values(family[column], "holm")[:len(cuped)]
        np.testing.assert_allclose(cuped["p_value_holm"], holm, rtol=1e-9)
        assert (cuped["adjustment_family"] == f"{role}_cuped").all()


def test_daily_sequential_monitor_is_written_beside_fct_experiment_daily(analyzed):
    daily = _query("select * from ab.latest_experiment_daily_sequential where experiment_id = "
                   "'exp_skip_reco' order by metric, variant, sequential_method, look")
    assert set(daily["metric"]) == {"play_count", "listening_minutes", "session_count",
                                    "skip_rate"}
    assert set(daily["sequential_method"]) == {"always_valid", "group_obrien_fleming"}
    for (_, _, method), rows in daily.groupby(["metric", "variant", "sequential_method"]):
        assert (np.diff(rows["look"]) == 1).all()
        if method == "always_valid":  # running minimum, nested intervals
            assert (np.diff(rows["p_value_sequential"]) <= 0).all()
            assert (np.diff(rows["ci_low"]) >= -1e-12).all()
            assert (np.diff(rows["ci_high"]) <= 1e-12).all()
            assert (rows["ci_low"] <= rows["ci_high"]).all()
        else:
            assert rows["information_fraction"].dropna().iloc[-1] == pytest.approx(1.0)
            bounded = rows["boundary"].notna()
            assert (rows.loc[bounded, "boundary"] >= stats_z95 - 1e-12).all()


def test_report_puts_the_srm_verdict_first(analyzed):
    text = (analyzed["reports"] / "exp_skip_reco.md").read_text()
    assert text.index("## Sample ratio check") < text.index("## Design") < text.index(
        "## Results") < text.index("## Verdicts")
    assert "**PASS**" in text
    # the verdict leads with the goal metric and names the family it was corrected in
    verdicts = text[text.index("## Verdicts"):]
    assert verdicts.index("Goal metrics") < verdicts.index("Guardrails") < verdicts.index(
        "Secondary metrics")
    assert "treatment lowers play-weighted skip rate" in verdicts
    assert "Holm over the goal family of 1 test" in verdicts


def test_assign_reproduces_the_generators_assignments(analyzed):
    """python -m python_jobs.ab assign recomputes every experiment from marts.fct_sessions
    with python_jobs/assignment.py and rewrites its rows: the table is unchanged."""
    query = ("select experiment_id, user_id, variant, assigned_at from "
             "raw.experiment_assignments order by experiment_id, user_id")
    before = _query(query)
    args = ["assign", "--database", DATABASE, "--log-level", "WARNING"]
    for experiment_id in EXPERIMENTS:
        args += ["--experiment", experiment_id]
    assert ab_cli.main(args) == 0
    assert ab_cli.main(args) == 0  # idempotent
    pd.testing.assert_frame_equal(_query(query), before)


def test_srm_is_flagged_after_deleting_a_third_of_one_arm(analyzed):
    """Runs last: it changes raw data. A rerun appends a new run; the view moves with it."""
    with db.connect(DATABASE) as conn:
        db.execute(conn, "delete from raw.experiment_assignments where experiment_id = "
                         "'exp_aa_check' and variant = 'treatment' and mod(user_id, 3) = 0")
    dbt_cli.run(DATABASE, analyzed["tmp"], "run", "--select", "fct_experiment_user_metrics")
    reports = analyzed["reports"]
    assert ab_cli.main(["analyze", "--experiment", "exp_aa_check", "--database", DATABASE,
                        "--report", str(reports), "--log-level", "WARNING"]) == 0
    rerun = _latest_run_id()
    assert rerun != analyzed["run_id"]
    srm = _query("select * from ab.latest_srm_checks where experiment_id = 'exp_aa_check'")
    assert set(srm["run_id"]) == {rerun}
    assert srm["is_mismatch"].all() and srm["p_value"].iloc[0] < 0.001
    runs = _query("select experiment_id, run_id from ab.latest_experiment_results "
                  "group by experiment_id, run_id")
    latest = dict(runs.itertuples(index=False))
    assert latest == {"exp_aa_check": rerun, "exp_autoplay": analyzed["run_id"],
                      "exp_skip_reco": analyzed["run_id"]}
    assert "**FAIL: sample ratio mismatch**" in (reports / "exp_aa_check.md").read_text()
