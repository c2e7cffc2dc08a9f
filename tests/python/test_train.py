"""Model training (issue 6) end to end: generate -> dbt build -> python -m python_jobs.train ->
schema ml -> dbt scores plays in SQL.

One generated data set (20,000 sessions, seed 1, ~300,000 plays) in a fresh database:
1. `dbt build` of the training marts AND the ml models before any training: the build must
   pass and fct_play_skip_scores must be empty (no ml tables yet);
2. `python -m python_jobs.train --sample-rows 150000` (main(), both models; the skip model
   trains on a hash sample, the duration model on every session);
3. `dbt build` of the ml models again: SQL scores of every play must equal scikit-learn's
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
import pytest
from sklearn.metrics import roc_auc_score

from python_jobs import config, db, dbt_cli, generate, warehouse
from python_jobs.train import __main__ as train_cli
from python_jobs.train import data, settings, skip

DATABASE = os.environ.get("TEST_DATABASE_PREFIX", "test_") + "ml_train"
SESSIONS = 20_000
SAMPLE_ROWS = 150_000
ML_MODELS = ["path:models/staging/ml", "path:models/marts/ml"]
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
                    "--select", "+fct_skip_training_plays", "+fct_session_training",
                    *ML_MODELS)
        scores_before = _read("select count(*) as n from marts.fct_play_skip_scores")
        outcomes: dict[str, dict] = {}
        original = train_cli.train_one

        def capture(conn, name, train_settings):
            outcomes[name] = original(conn, name, train_settings)
            return outcomes[name]

        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(train_cli, "train_one", capture)
            assert train_cli.main(["--database", DATABASE, "--sample-rows", str(SAMPLE_ROWS),
                                   "--log-level", "WARNING"]) == 0
        dbt_cli.run(DATABASE, tmp, "build", "--select", *ML_MODELS)
        yield {"outcomes": outcomes, "scores_before": int(scores_before.iloc[0]["n"])}
    finally:
        if not os.environ.get("KEEP_TEST_DATABASES"):
            db.drop_database(DATABASE)


def _coefficients(model: str) -> pd.Series:
    terms = _read("select term, coefficient from ml.latest_model_coefficients where model = %s",
                  (model,))
    return terms.set_index("term")["coefficient"]


def _metrics(model: str) -> pd.Series:
    rows = _read("select split, metric, value from ml.latest_model_metrics where model = %s",
                 (model,))
    return rows.set_index(["split", "metric"])["value"]


# --- no database -------------------------------------------------------------------------------

def _jinja_list(name: str) -> set[str]:
    match = re.search(r"set " + name + r" = \[(.*?)\]", SCORING_SQL.read_text(), re.S)
    assert match, name
    return set(re.findall(r"'(\w+)'", match.group(1)))


def test_default_features_are_scorable_in_sql():
    s = settings.load()
    numeric = _jinja_list("numeric_features") | _jinja_list("boolean_features")
    assert set(s.skip.numeric_features) <= numeric, set(s.skip.numeric_features) - numeric
    categorical = _jinja_list("categorical_features")
    assert set(s.skip.categorical_features) <= categorical


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


def test_hash_sample_is_deterministic_sql():
    predicate = data.hash_predicate("play_id", 0.25)
    assert predicate == data.hash_predicate("play_id", 0.25)
    assert str(2**30) in predicate  # a quarter of the 2^32 buckets


# --- end to end --------------------------------------------------------------------------------

def test_scoring_model_builds_empty_before_any_training(trained):
    assert trained["scores_before"] == 0


def test_runs_record_window_sampling_and_counts(trained):
    runs = _read("select * from ml.latest_model_runs order by model").set_index("model")
    assert set(runs.index) == {"skip", "duration"}
    plays = _read("select count(*) as n, max(played_date) as last_day from "
                  "marts.fct_skip_training_plays").iloc[0]
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
    predictions = _read("select model, count(*) as n, min(event_date) as first_day from "
                        "ml.latest_model_predictions group by model").set_index("model")
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
    s = settings.load().skip
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


def test_skip_metrics_are_held_out_and_recomputable(trained):
    metrics = _metrics("skip")
    stored = _read("select label, prediction from ml.latest_model_predictions "
                   "where model = 'skip'")
    auc = roc_auc_score(stored["label"].astype(int), stored["prediction"])
    assert metrics[("test", "roc_auc")] == pytest.approx(auc, abs=1e-12)
    assert metrics[("test", "base_rate")] == pytest.approx(stored["label"].mean(), abs=1e-12)
    assert metrics[("test", "roc_auc")] > 0.62  # honest level on this data: ~0.69
    assert metrics[("test", "log_loss")] < metrics[("test", "log_loss_base_rate")]
    assert metrics[("test", "brier")] < 0.25
    calibration = _read("select * from ml.latest_calibration where model = 'skip' and "
                        "split = 'test' order by bin")
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
    assert c["num__user_prior_skip_rate"] > 0                   # propensity u shows in history
    assert c["num__session_play_number"] > 0                    # +0.04 per position
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
                   "ml.latest_model_predictions where model = 'duration'")
    rmse = float(np.sqrt(np.mean((stored["label"] - stored["prediction"]) ** 2)))
    assert metrics[("test", "rmse_seconds")] == pytest.approx(rmse, rel=1e-9)
    assert stored["baseline_prediction"].notna().all()


def test_rerun_appends_a_run_and_moves_the_latest_views(trained):
    before = _read("select run_id from ml.latest_model_runs where model = 'duration'")
    assert train_cli.main(["--database", DATABASE, "--model", "duration", "--k-features", "5",
                           "--log-level", "WARNING"]) == 0
    runs = _read("select run_id, config from ml.model_runs where model = 'duration' "
                 "order by trained_at")
    assert len(runs) == 2
    latest = _read("select run_id from ml.latest_model_runs where model = 'duration'")
    assert latest["run_id"].tolist() == [runs["run_id"].iloc[-1]] != before["run_id"].tolist()
    assert runs["config"].iloc[-1]["duration"]["k_features"] == 5
    selected = _read("select count(*) as n from ml.latest_model_coefficients where "
                     "model = 'duration' and is_selected and term_kind <> 'intercept'")
    assert selected.iloc[0]["n"] == 5
    old = _read("select count(*) as n from ml.model_metrics where run_id = %s",
                (before["run_id"].iloc[0],))
    assert old.iloc[0]["n"] > 0  # earlier runs are kept
    # the skip run is untouched: still the latest skip run
    assert len(_read("select 1 from ml.latest_model_runs")) == 2
