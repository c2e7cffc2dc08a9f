"""Model training (issue 6) end to end: generate -> dbt build -> python -m python_jobs.train ->
schema ml -> dbt scores plays in SQL.

One generated data set (20,000 sessions, seed 1, ~300,000 plays) in a fresh database:
1. `dbt build` of the training marts, then of the ml models before any training: that must
   fail with an error that says to train first (no ml tables yet);
2. `python -m python_jobs.train --sample-rows 150000 --config derived_forms.yml` (main(),
   both models with the derived features; the skip model trains on a hash sample, the
   duration model on every session);
3. `dbt build` of the ml models (the ml.latest_* views and the scores): SQL scores of every
   play must equal scikit-learn's
   predict_proba of the fitted pipeline to 1e-9.
The checks: run/metric/calibration/prediction rows, a time split, held-out metrics that equal
recomputation from the stored predictions, the planted effects' directions
(docs/ground_truth.md sections 2 and 4), the duration model against its naive baseline, and a
rerun that appends a run and moves the latest views.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator

import numpy as np
import pandas as pd
import psycopg2
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from python_jobs import config, db, dbt_cli, generate, report, truth, warehouse
from python_jobs.train import __main__ as train_cli
from python_jobs.train import data, duration, features, oracle, settings, skip

DATABASE = os.environ.get("TEST_DATABASE_PREFIX", "test_") + "ml_train"
SESSIONS = 20_000
SAMPLE_ROWS = 150_000
DERIVED_FORMS = settings.DEFAULTS_FILE.with_name("derived_forms.yml")
CHALLENGER_ROUNDS = 20  # a few boosting rounds: the tests check wiring, not the challenger
ML_MODELS = ["tag:ml_scoring"]
SCORING_SQL = config.ROOT / "models" / "marts" / "ml" / "fct_play_skip_scores.sql"

pytestmark = pytest.mark.slow


def _read(query: str, params: tuple | None = None) -> pd.DataFrame:
    with db.connect(DATABASE) as conn:
        return db.read_sql(conn, query, params)


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Iterator[dict]:
    tmp = tmp_path_factory.mktemp("train")
    db.ensure_database(config.settings(DATABASE))
    db.drop_database(DATABASE)
    warehouse.init(DATABASE)
    try:
        assert generate.main(["--sessions", str(SESSIONS), "--seed", "1",
                              "--database", DATABASE, "--log-level", "WARNING"]) == 0
        dbt_cli.run(DATABASE, tmp, "build", "--exclude-resource-type", "test", "unit_test",
                    "--select", "+fct_play_skip_features", "+fct_session_training")
        with pytest.raises(RuntimeError) as untrained:
            dbt_cli.run(DATABASE, tmp, "build", "--select", *ML_MODELS)
        outcomes: dict[str, dict] = {}
        original = train_cli.train_one

        def capture(conn, name, train_settings, database=None):
            outcomes[name] = original(conn, name, train_settings, database)
            return outcomes[name]

        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(train_cli, "train_one", capture)
            assert train_cli.main(["--database", DATABASE, "--sample-rows", str(SAMPLE_ROWS),
                                   "--challenger-max-iter", str(CHALLENGER_ROUNDS),
                                   "--config", str(DERIVED_FORMS),
                                   "--log-level", "WARNING"]) == 0
        dbt_cli.run(DATABASE, tmp, "build", "--select", *ML_MODELS)
        yield {"outcomes": outcomes, "untrained_error": str(untrained.value), "tmp": tmp}
    finally:
        if not os.environ.get("KEEP_TEST_DATABASES"):
            db.drop_database(DATABASE)


def _coefficients(model: str) -> pd.Series:
    terms = _read("select term_name as term, coefficient from ml.latest_model_coefficients "
                  "where model_name = %s", (model,))
    return terms.set_index("term")["coefficient"]


def _metrics(model: str) -> pd.Series:
    rows = _read("select split, metric, metric_value as value from ml.latest_model_metrics "
                 "where model_name = %s", (model,))
    return rows.set_index(["split", "metric"])["value"]


# --- no database -------------------------------------------------------------------------------

def test_skip_features_are_defined_once_and_read_by_the_scoring_model():
    """Training and the SQL scoring model read the same list (dbt var skip_model_features):
    the scoring model has no list of its own, and every configured feature is in it."""
    sql = SCORING_SQL.read_text()
    assert "var('skip_model_features')" in sql
    assert not re.search(r"set (numeric|boolean|categorical)_features = \[", sql)
    catalogue = features.SKIP
    for config_file in (None, DERIVED_FORMS):
        s = settings.load(config_file).skip
        scorable = {*catalogue["numeric"], *catalogue["boolean"], *catalogue["derived"]}
        assert set(s.numeric_features) <= scorable, set(s.numeric_features) - scorable
        assert set(s.categorical_features) <= set(catalogue["categorical"])
    assert set(catalogue["derived"]) <= set(features.DERIVED)


def test_a_skip_feature_outside_the_list_is_refused():
    with pytest.raises(ValueError, match="skip_model_features"):
        settings.load(overrides={"skip": {"numeric_features": ["energy", "not_a_feature"]}})


def test_oracle_gap_and_correction_arithmetic():
    assert oracle.gap_closed(0.7, 0.5, 0.7) == 1.0
    assert oracle.gap_closed(0.6, 0.5, 0.7) == pytest.approx(0.5)
    assert np.isnan(oracle.gap_closed(0.6, 0.5, 0.5))
    rng = np.random.default_rng(0)
    truth_mean = rng.normal(100, 10, 200_000)
    y = truth_mean + rng.normal(0, 20, truth_mean.size)
    replays = 4
    estimate = truth_mean + rng.normal(0, 20, (replays, truth_mean.size)).mean(axis=0)
    variance = np.full(truth_mean.size, 20.0**2 / replays)
    exact = 1 - np.mean((y - truth_mean) ** 2) / np.var(y)
    corrected = oracle.corrected_regression(y, estimate, variance)
    assert corrected["oracle_r2"] == pytest.approx(exact, abs=0.01)
    assert corrected["oracle_r2_uncorrected"] < exact - 0.1  # the noise the correction removes


@pytest.mark.parametrize("block_values", [features._BLOCK_VALUES, 1_000])
def test_encoder_builds_the_matrix_scipy_builds(block_values, monkeypatch):
    """The CSR numeric block (features.dense_to_csr) and its stacking with the one-hot
    block (features.stack_csr) leave the encoded matrix, and so every fit, exactly as
    scipy's COO route and hstack build it: the same values, exact zeros dropped (a constant
    column standardizes to 0), int32 indices; the input frame untouched. Also when both
    are built in many blocks of rows."""
    monkeypatch.setattr(features, "_BLOCK_VALUES", block_values)
    rng = np.random.default_rng(3)
    n = 5_000
    frame = pd.DataFrame({"a": np.where(rng.random(n) < 0.2, np.nan, rng.normal(size=n)),
                          "b": rng.integers(0, 2, n).astype(float), "c": np.full(n, 7.0),
                          "g": pd.Categorical(rng.choice(["x", "y", "z"], n))})
    before = frame.copy()
    dense = Pipeline([("impute", SimpleImputer(strategy="mean", keep_empty_features=True)),
                      ("scale", StandardScaler())])
    reference = ColumnTransformer(
        [("num", dense, ["a", "b", "c"]),
         ("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=True), ["g"])],
        remainder="drop", sparse_threshold=1.0)
    expected = reference.fit_transform(frame)
    columns = features.preprocessor(("a", "b", "c"), ("g",))
    for got, want in ((columns.fit_transform(frame), expected),
                      (columns.transform(frame.iloc[:99]), reference.transform(frame.iloc[:99]))):
        assert got.nnz == want.nnz < want.shape[0] * want.shape[1]
        for part in ("data", "indices", "indptr"):
            assert np.array_equal(getattr(got, part), getattr(want, part))
            assert getattr(got, part).dtype == getattr(want, part).dtype
    pd.testing.assert_frame_equal(frame, before)


def test_terms_score_what_the_pipeline_predicts():
    """features.linear_predictor, which scores the held-out rows from the exported terms
    alone (as SQL does), gives the fitted pipeline's decision function: nulls take the
    training mean, a category the fit never saw scores 0, categoricals as pandas
    categoricals (how the marts are read) or as plain strings."""
    rng = np.random.default_rng(5)
    n = 4_000
    frame = pd.DataFrame({"a": np.where(rng.random(n) < 0.2, np.nan, rng.normal(size=n)),
                          "b": rng.integers(0, 2, n).astype(float), "c": np.full(n, 7.0),
                          "g": pd.Categorical(rng.choice(["x", "y", "z"], n)),
                          "h": rng.choice(["p", "q"], n)})
    y = (rng.random(n) < 1 / (1 + np.exp(-frame["b"] + 0.5 * (frame["g"] == "x")))).astype(int)
    model = Pipeline([("features", features.preprocessor(("a", "b", "c"), ("g", "h"))),
                      ("model", LogisticRegression())]).fit(frame, y)
    lr = model.named_steps["model"]
    term_rows = features.terms(model.named_steps["features"], lr.coef_[0],
                               float(lr.intercept_[0]), frame)
    unseen = frame.iloc[:500].assign(
        g=pd.Categorical(rng.choice(["x", "w"], 500)), h=rng.choice(["q", "r"], 500))
    for rows in (frame, unseen, unseen.astype({"g": str})):
        got = features.linear_predictor(term_rows, rows)
        assert np.abs(got - model.decision_function(rows)).max() < 1e-12


def test_copy_stream_types_nulls_and_errors(trained):
    """db.stream_arrow (COPY into pyarrow) gives what psycopg2 gives: NULL vs the empty
    string, t/f, exact doubles, dates, timestamps; no rows is an empty table; the server's
    error is raised; a consumer that stops early leaves the connection usable."""
    query = ("select g::int as n, mod(g, 2) = 0 as even, case when mod(g, 3) = 0 then null "
             "when mod(g, 3) = 1 then '' else 'a,\"b\"' || chr(10) || 'c' end as text, "
             "1.0::float8 / g as ratio, date '2026-03-01' + g as day, "
             "timestamp '2026-03-01 12:00:00.25' + g * interval '1 second' as at "
             "from generate_series(1, 50000) as g where g <= %s order by g")
    with db.connect(DATABASE) as conn:
        got = db.read_arrow(conn, query, (50_000,))
        with conn.cursor() as cur:
            cur.execute(query, (50_000,))
            want = cur.fetchall()
        assert db.read_arrow(conn, query, (0,)).num_rows == 0
        stream = db.stream_arrow(conn, query, (50_000,))
        next(stream)
        stream.close()  # stopped early: the rest is read and dropped
        assert db.read_sql(conn, "select 1 as one")["one"].tolist() == [1]
    assert [tuple(row.values()) for row in got.to_pylist()] == want
    with db.connect(DATABASE) as conn, pytest.raises(psycopg2.errors.DivisionByZero):
        list(db.stream_arrow(conn, "select 1 / (g - 40000) from generate_series(1, 50000) g"))


def test_report_puts_the_oracle_beside_the_model():
    metrics = pd.DataFrame([("skip", "test", m, v) for m, v in (
        ("roc_auc", 0.70), ("challenger_roc_auc", 0.71), ("oracle_roc_auc", 0.72),
        ("oracle_gap_closed_roc_auc", 0.9), ("oracle_available", 1.0))]
        + [("duration", "test", "r2", 0.1), ("duration", "test", "oracle_available", 0.0)],
        columns=["model", "split", "metric", "value"])
    frame = report.oracle_frame(metrics)
    assert frame[["model", "metric"]].values.tolist() == [["skip", "roc_auc"]]
    assert frame.iloc[0][["model_value", "challenger", "oracle", "gap_closed"]].tolist() == [
        0.70, 0.71, 0.72, 0.9]
    assert report.oracle_frame(metrics[metrics["model"] == "duration"]).empty


def test_settings_file_then_flags(tmp_path):
    custom = tmp_path / "train.yml"
    custom.write_text("test_days: 7\nskip: {C: 0.5}\nduration: {k_features: 12}\n")
    args = train_cli.build_parser().parse_args(["--config", str(custom), "--C", "2",
                                                "--sample-rows", "0"])
    s = settings.load(args.config, settings.overrides_from_args(args))
    assert (s.test_days, s.skip.C, s.duration.k_features) == (7, 2.0, 12)
    assert s.skip.sample_rows is None and s.duration.sample_rows is None
    assert s.skip.numeric_features == settings.load().skip.numeric_features  # merged, kept
    with pytest.raises(ValueError):
        settings.load(overrides={"skip": {"penalty": "l1"}})
    with pytest.raises(ValueError):
        settings.load(overrides={"prediction_runs_kept": 0})


def test_hash_sample_is_deterministic_sql():
    predicate = data.hash_predicate("play_id", 0.25)
    assert predicate == data.hash_predicate("play_id", 0.25)
    assert str(2**30) in predicate  # a quarter of the 2^32 buckets


# --- end to end --------------------------------------------------------------------------------

def test_ml_models_fail_loudly_before_any_training(trained):
    assert "does not exist: no model has been trained" in trained["untrained_error"]
    assert "python -m python_jobs.train" in trained["untrained_error"]


def test_runs_record_window_sampling_and_counts(trained):
    runs = _read("select model_name as model, run_config as config, is_sampled, "
                 "sample_method, train_row_count as train_rows, train_population_row_count "
                 "as train_population_rows, test_row_count as test_rows, test_start_date, "
                 "test_end_date, train_end_date, peak_rss_mb from ml.latest_model_runs "
                 "order by model").set_index("model")
    assert set(runs.index) == {"skip", "duration"}
    plays = _read("select count(*) as n, max(played_date) as last_day from "
                  "marts.fct_play_skip_features").iloc[0]
    skip_run = runs.loc["skip"]
    assert skip_run["is_sampled"] and "md5" in skip_run["sample_method"]
    assert abs(skip_run["train_rows"] - SAMPLE_ROWS) < 0.03 * SAMPLE_ROWS
    assert skip_run["train_population_rows"] + skip_run["test_rows"] == plays["n"]
    assert skip_run["test_end_date"] == plays["last_day"]
    assert (skip_run["test_end_date"] - skip_run["test_start_date"]).days == 13
    assert skip_run["train_end_date"] < skip_run["test_start_date"]
    assert skip_run["config"]["skip"]["sample_rows"] == SAMPLE_ROWS
    assert not runs.loc["duration"]["is_sampled"]
    assert skip_run["peak_rss_mb"] > 0
    predictions = _read("select model_name as model, count(*) as n, min(event_date) as "
                        "first_day from ml.latest_model_predictions group by model_name"
                        ).set_index("model")
    for model in ("skip", "duration"):
        assert predictions.loc[model, "n"] == runs.loc[model, "test_rows"]
        assert predictions.loc[model, "first_day"] >= runs.loc[model, "test_start_date"]
    role = config.REPORTING_ROLE
    if not _read("select 1 from pg_roles where rolname = %s", (role,)).empty:
        granted = _read("select has_table_privilege(%s, 'ml.latest_model_metrics', 'select') "
                        "as ok", (role,))
        assert bool(granted.iloc[0]["ok"])


def test_sql_scores_equal_predict_proba(trained):
    model = trained["outcomes"]["skip"]["model"]
    s = settings.load(DERIVED_FORMS).skip  # derived features are scored in SQL too
    with db.connect(DATABASE) as conn:
        types = data.column_types(conn, skip.SOURCE.table)
        columns = data.select_list(skip.SOURCE, types, s.numeric_features, s.categorical_features)
        plays = data.concat_frames(list(data.stream_frames(
            conn, f"select {columns} from {skip.SOURCE.table} order by play_id", (),
            skip.SOURCE, s.numeric_features, s.categorical_features, 50_000)),
            s.categorical_features)
        scores = db.read_sql(conn, "select play_id, skip_probability, model_run_id from "
                                   "marts.fct_play_skip_scores order by play_id")
    assert len(scores) == len(plays) > 250_000
    assert (scores["play_id"].to_numpy() == plays["play_id"].to_numpy()).all()
    assert scores["model_run_id"].nunique() == 1
    assert scores["model_run_id"].iloc[0] == trained["outcomes"]["skip"]["stamp"]["run_id"]
    expected = model.predict_proba(skip.feature_frame(plays, s))[:, 1]
    difference = np.abs(scores["skip_probability"].to_numpy(dtype=float) - expected)
    assert difference.max() < 1e-9, difference.max()
    # the held-out predictions the run stored (scored from its terms) are the pipeline's too
    held_out = _read("select play_id, prediction from ml.model_predictions where run_id = %s",
                     (trained["outcomes"]["skip"]["stamp"]["run_id"],))
    position = pd.Series(np.arange(len(plays)), index=plays["play_id"])
    difference = np.abs(held_out["prediction"].to_numpy()
                        - expected[position[held_out["play_id"]].to_numpy()])
    assert len(held_out) > 10_000 and difference.max() < 1e-12, difference.max()


def test_skip_metrics_are_held_out_and_recomputable(trained):
    metrics = _metrics("skip")
    stored = _read("select label, prediction from ml.latest_model_predictions "
                   "where model_name = 'skip'")
    auc = roc_auc_score(stored["label"].astype(int), stored["prediction"])
    assert metrics[("test", "roc_auc")] == pytest.approx(auc, abs=1e-12)
    assert metrics[("test", "base_rate")] == pytest.approx(stored["label"].mean(), abs=1e-12)
    assert metrics[("test", "roc_auc")] > 0.62  # honest level on this data: ~0.69
    assert metrics[("test", "log_loss")] < metrics[("test", "log_loss_base_rate")]
    assert metrics[("test", "brier")] < 0.25
    calibration = _read("select * from ml.latest_calibration where model_name = 'skip' "
                        "and split = 'test' order by bin_number")
    assert len(calibration) == 10
    assert calibration["row_count"].sum() == len(stored)
    assert (calibration["mean_predicted"].diff().dropna() > 0).all()
    assert (calibration["mean_predicted"] - calibration["observed_rate"]).abs().max() < 0.05


def test_skip_model_recovers_planted_directions(trained):
    c = _coefficients("skip")
    hours = {h: c[f"cat__session_start_hour_{h}"] for h in range(24)}
    night = np.mean([hours[h] for h in range(6)])
    day = np.mean([hours[h] for h in range(6, 24)])
    assert night > day + 0.1, (night, day)                      # +0.4 for start hour 0-5
    assert c["cat__context_type_album"] < c["cat__context_type_playlist"]       # -0.4 album
    assert c["cat__context_type_search"] < c["cat__context_type_playlist"]      # -0.6 search
    assert c["cat__context_type_radio"] > c["cat__context_type_playlist"]       # +0.3 radio
    assert c["cat__tier_premium"] < c["cat__tier_free"]                         # -0.25 premium
    assert c["num__is_shuffle"] > 0                                             # +0.25 shuffle
    assert c["num__user_prior_skip_logit_shrunk"] > 0           # propensity u shows in history
    assert c["num__session_play_number_capped"] > 0             # +0.04 per position up to 20
    # +1.5 |energy - preferred|: the distance estimates are collinear, so their sum carries it
    assert sum(v for k, v in c.items() if k.startswith("num__energy_distance_from")) > 0
    assert c["num__danceability"] < 0 and c["num__valence"] < 0


def test_duration_model_directions_and_baseline(trained):
    c = _coefficients("duration")
    assert c["cat__tier_premium"] > c["cat__tier_free"]                         # +0.30
    for other in ("mobile", "web", "tv"):
        assert c["cat__device_smart_speaker"] > c[f"cat__device_{other}"]       # +0.35
    metrics = _metrics("duration")
    assert metrics[("test", "rmse_seconds")] < metrics[("test", "baseline_rmse_seconds")]
    assert metrics[("test", "mae_seconds")] < metrics[("test", "baseline_mae_seconds")]
    assert metrics[("test", "r2")] > metrics[("test", "baseline_r2")]
    stored = _read("select label, prediction, baseline_prediction from "
                   "ml.latest_model_predictions where model_name = 'duration'")
    rmse = float(np.sqrt(np.mean((stored["label"] - stored["prediction"]) ** 2)))
    assert metrics[("test", "rmse_seconds")] == pytest.approx(rmse, rel=1e-9)
    assert stored["baseline_prediction"].notna().all()


def test_rerun_appends_a_run_and_moves_the_latest_views(trained):
    before = _read("select model_run_id as run_id from ml.latest_model_runs "
                   "where model_name = 'duration'")
    predictions = "select count(*) as n from ml.model_predictions where run_id = %s"
    old_predictions = _read(predictions, (before["run_id"].iloc[0],)).iloc[0]["n"]
    assert old_predictions > 0
    assert train_cli.main(["--database", DATABASE, "--model", "duration", "--k-features", "5",
                           "--challenger-max-iter", "0", "--prediction-runs-kept", "1",
                           "--log-level", "WARNING"]) == 0
    runs = _read("select run_id, config from ml.model_runs where model = 'duration' "
                 "order by trained_at")
    assert len(runs) == 2
    latest = _read("select model_run_id as run_id from ml.latest_model_runs "
                   "where model_name = 'duration'")
    assert latest["run_id"].tolist() == [runs["run_id"].iloc[-1]] != before["run_id"].tolist()
    assert runs["config"].iloc[-1]["duration"]["k_features"] == 5
    selected = _read("select count(*) as n from ml.latest_model_coefficients where "
                     "model_name = 'duration' and is_selected and term_kind <> 'intercept'")
    assert selected.iloc[0]["n"] == 5
    old = _read("select count(*) as n from ml.model_metrics where run_id = %s",
                (before["run_id"].iloc[0],))
    assert old.iloc[0]["n"] > 0  # earlier runs are kept
    # ... without their predictions beyond the newest prediction_runs_kept runs
    assert _read(predictions, (before["run_id"].iloc[0],)).iloc[0]["n"] == 0
    assert _read(predictions, (latest["run_id"].iloc[0],)).iloc[0]["n"] == old_predictions
    # the skip run is untouched: still the latest skip run
    assert len(_read("select 1 from ml.latest_model_runs")) == 2


def test_oracle_metrics_come_from_stored_truth_and_bound_the_model(trained):
    metrics = _metrics("skip")
    stored = _read("select p.label, t.skip_probability from ml.latest_model_predictions as p "
                   f"join {truth.PLAY_TRUTH_TABLE} as t on t.event_id = p.play_id "
                   "where p.model_name = 'skip'")
    assert len(stored) == metrics[("test", "rows")] == metrics[("test", "oracle_rows")]
    assert metrics[("test", "oracle_missing_rows")] == 0
    labels, p = stored["label"].astype(int), stored["skip_probability"]
    assert metrics[("test", "oracle_roc_auc")] == pytest.approx(roc_auc_score(labels, p),
                                                                abs=1e-12)
    assert metrics[("test", "oracle_log_loss")] == pytest.approx(
        -np.mean(labels * np.log(p) + (1 - labels) * np.log(1 - p)), abs=1e-9)
    assert metrics[("test", "oracle_brier")] == pytest.approx(np.mean((p - labels) ** 2),
                                                              abs=1e-12)
    # a sanity bound: no model beats the generator's own probabilities
    assert metrics[("test", "roc_auc")] < metrics[("test", "oracle_roc_auc")]
    assert metrics[("test", "log_loss")] > metrics[("test", "oracle_log_loss")]
    closed = (metrics[("test", "roc_auc")] - 0.5) / (metrics[("test", "oracle_roc_auc")] - 0.5)
    assert metrics[("test", "oracle_gap_closed_roc_auc")] == pytest.approx(closed, abs=1e-12)
    assert 0.5 < metrics[("test", "challenger_roc_auc")] < metrics[("test", "oracle_roc_auc")]
    oracle_deciles = _read("select * from ml.latest_calibration where model_name = 'skip' "
                           "and split = 'oracle_test'")
    assert oracle_deciles["row_count"].sum() == len(stored)


def test_duration_oracle_and_poisson_in_seconds(trained):
    metrics = _metrics("duration")
    run = _read("select target_description as target from ml.latest_model_runs "
                "where model_name = 'duration'")
    assert run["target"].iloc[0].startswith("duration_seconds, E[seconds] = exp(")
    stored = _read("select p.label, p.prediction, t.expected_duration_seconds as oracle, "
                   "t.expected_duration_variance as variance from ml.latest_model_predictions "
                   "as p join marts.fct_session_training as m on m.session_id = p.session_id "
                   f"join {truth.SESSION_TRUTH_TABLE} as t on t.user_id = m.user_id and "
                   "t.started_at = m.session_started_at where p.model_name = 'duration'")
    assert len(stored) == metrics[("test", "rows")] == metrics[("test", "oracle_rows")]
    y = stored["label"].to_numpy(float)
    # predictions are seconds: positive, and their mean near the mean duration
    assert (stored["prediction"] > 0).all()
    assert abs(stored["prediction"].mean() / y.mean() - 1) < 0.15
    assert metrics[("test", "r2")] == pytest.approx(
        1 - np.mean((y - stored["prediction"]) ** 2) / np.var(y), abs=1e-9)
    direct = oracle.corrected_regression(y, stored["oracle"].to_numpy(float),
                                         stored["variance"].to_numpy(float))
    assert metrics[("test", "oracle_r2")] == pytest.approx(direct["oracle_r2"], abs=1e-12)
    assert 0 < metrics[("test", "r2")] < metrics[("test", "oracle_r2")]
    assert metrics[("test", "oracle_gap_closed_r2")] == pytest.approx(
        metrics[("test", "r2")] / metrics[("test", "oracle_r2")], abs=1e-12)
    # the fixture's run trained the challenger (the rerun before this test did not)
    first = trained["outcomes"]["duration"]["metrics"].query("split == 'test'")
    assert {"challenger_r2", "challenger_oracle_gap_closed_r2"} <= set(first["metric"])
    # the true length effects come back on the log scale: premium +0.30, smart speaker +0.35
    c = _coefficients("duration")
    assert c["cat__tier_premium"] > c["cat__tier_free"]


def test_no_truth_no_oracle(trained):
    """Real data carry no generator truth: the run says so and has no oracle_ metrics."""
    moved = "generator_session_truth_hidden"
    with db.connect(DATABASE) as conn:
        db.execute(conn, f"alter table {truth.SESSION_TRUTH_TABLE} rename to {moved}")
    try:
        with db.connect(DATABASE) as conn:
            s = settings.load(overrides={"duration": {"k_features": 5,
                                                      "challenger_max_iter": 0}})
            outcome = train_cli.train_one(conn, "duration", s)
    finally:
        with db.connect(DATABASE) as conn:
            db.execute(conn, f"alter table raw.{moved} rename to "
                             f"{truth.SESSION_TRUTH_TABLE.split('.')[1]}")
    metrics = outcome["metrics"].set_index("metric")["value"]
    assert metrics["oracle_available"] == 0
    assert not any(m.startswith("oracle_") and m != "oracle_available" for m in metrics.index)
    assert "no generator truth" in train_cli.summary("duration", outcome)
    assert duration.SOURCE.table == "marts.fct_session_training"


def test_derived_forms_config_adds_only_derived_features():
    default, wide = settings.load(), settings.load(DERIVED_FORMS)
    for model in ("skip", "duration"):
        before = set(getattr(default, model).numeric_features)
        after = set(getattr(wide, model).numeric_features)
        assert after - before and after - before <= set(features.DERIVED)
        assert before - after <= {"session_play_number"}  # replaced by its capped form


def test_log_target_linear_regression_predicts_seconds(trained):
    """The headline family with a log target: LinearRegression on log(1 + seconds) after
    SelectKBest, mapped back to seconds (smearing); its held-out R² is reported beside the
    oracle's and the planted length effects come back with their signs."""
    with db.connect(DATABASE) as conn:
        s = settings.load(overrides={"duration": {"regressor": "linear", "log_target": True,
                                                  "k_features": "all",
                                                  "challenger_max_iter": 0}})
        outcome = train_cli.train_one(conn, "duration", s)
    assert outcome["info"]["target"].startswith("log(1 + duration_seconds)")
    assert "LinearRegression" in outcome["info"]["estimator"]
    metrics = outcome["metrics"].query("split == 'test'").set_index("metric")["value"]
    stored = _read("select label, prediction from ml.model_predictions where run_id = %s",
                   (outcome["stamp"]["run_id"],))
    y = stored["label"].to_numpy(float)
    assert len(stored) == metrics["rows"]
    assert (stored["prediction"] > 0).all()
    assert abs(stored["prediction"].mean() / y.mean() - 1) < 0.15  # seconds, not log seconds
    assert metrics["r2"] == pytest.approx(
        1 - np.mean((y - stored["prediction"]) ** 2) / np.var(y), abs=1e-9)
    assert metrics["baseline_r2"] < metrics["r2"] < metrics["oracle_r2"]
    c = outcome["terms"].set_index("term")["coefficient"]
    assert c["cat__tier_premium"] > c["cat__tier_free"]                         # +0.30
    for other in ("mobile", "web", "tv"):
        assert c["cat__device_smart_speaker"] > c[f"cat__device_{other}"]       # +0.35
    # the user's latent length s_u: longer earlier sessions, longer sessions
    assert c["num__user_prior_log_intended_track_count_shrunk"] > 0


def test_key_lookups_read_the_same_rows_through_the_index(trained):
    """A read of the skip mart (a view joining the plays and their histories on play_id)
    inside data.key_lookups finds each history by its index, gives the same rows as the
    planner's own plan, and puts the session's settings back, also after an error."""
    source = skip.SOURCE
    with db.connect(DATABASE) as conn:
        types = data.column_types(conn, source.table)
        s = settings.load(None).skip
        sql = data.query(source, data.select_list(source, types, s.numeric_features,
                                                  s.categorical_features))
        window = data.split_window(conn, source, 7, None)
        params = (window.test_start, window.test_end)
        plain = db.read_arrow(conn, sql, params)
        with data.key_lookups(conn, source, sql, [params]):
            plan = _plan(conn, sql, params)
            looked_up = db.read_arrow(conn, sql, params)
        assert "Hash" not in plan and "int_play_histories_counted" in plan, plan
        # the same rows (data.query asks for no order: each plan gives its own)
        assert plain.num_rows > 1000 and looked_up.sort_by("play_id").equals(
            plain.sort_by("play_id"))
        assert db.read_sql(conn, "show enable_hashjoin").iloc[0, 0] == "on"
        with pytest.raises(ZeroDivisionError), data.key_lookups(conn, source, sql, [params]):
            1 / 0  # noqa: B018
        assert db.read_sql(conn, "show enable_mergejoin").iloc[0, 0] == "on"
        # no index to look up: the only plan left would scan the other table per row
        for name in ("left_rows", "right_rows"):
            db.execute(conn, f"create temporary table {name} as select g as k, g * 2 as v "
                             "from generate_series(1, 20000) as g")
            db.execute(conn, f"analyze {name}")
        joined = ("select * from left_rows join right_rows on left_rows.k = right_rows.k "
                  "where left_rows.k between %s and %s")
        with data.key_lookups(conn, source, joined, [(1, 20000)]):
            assert "Hash" in _plan(conn, joined, (1, 20000))


def test_held_out_stream_stopped_early_leaves_the_connection_usable(trained):
    s = settings.load(None).skip
    with db.connect(DATABASE) as conn:
        window = data.split_window(conn, skip.SOURCE, 7, None)
        stream = data.stream_test(conn, skip.SOURCE, window, s.numeric_features,
                                  s.categorical_features, block_rows=1_000)
        assert len(next(stream)) >= 1_000
        stream.close()
        assert db.read_sql(conn, "show enable_hashjoin").iloc[0, 0] == "on"
        assert db.read_sql(conn, "select count(*) as n from ml.model_runs")["n"][0] > 0


def _plan(conn, sql: str, params: tuple) -> str:
    return "\n".join(db.read_sql(conn, "explain " + sql, params).iloc[:, 0])


def test_a_play_without_its_history_shows_and_fails_the_build(trained):
    """fct_play_skip_features left-joins the history: a play whose history row is missing
    (a part rebuilt without int_play_histories_counted) stays in the mart with null history
    rather than vanishing, and the history's has_row_for_each test fails on it. Last in the
    module: it removes a history row, and puts it back."""
    table = "intermediate.int_play_histories_counted_odd_users"
    with db.connect(DATABASE) as conn:
        db.execute(conn, f"create table public.kept_history as select * from {table} "
                         "order by play_id limit 1")
        db.execute(conn, f"delete from {table} where play_id in "
                         "(select play_id from public.kept_history)")
    try:
        mart = _read("select count(*) as n, count(user_prior_play_count) as known, "
                     "(select count(*) from intermediate.int_plays_sessionized) as plays "
                     "from marts.fct_play_skip_features")
        assert mart["n"][0] == mart["plays"][0] == mart["known"][0] + 1
        # also when the latest builds' days are tested; test_all_days last, as in the check
        # after (a change of --vars re-parses the project)
        for every_day in (False, True):
            with pytest.raises(RuntimeError, match="has_row_for_each_int_play_histories"):
                dbt_cli.run(DATABASE, trained["tmp"], "test", "--select",
                            "int_play_histories_counted",
                            *(["--vars", "{test_all_days: true}"] if every_day else []))
    finally:
        with db.connect(DATABASE) as conn:
            db.execute(conn, f"insert into {table} select * from public.kept_history")
            db.execute(conn, "drop table public.kept_history")
    dbt_cli.run(DATABASE, trained["tmp"], "test", "--select", "int_play_histories_counted",
                "--vars", "{test_all_days: true}")
