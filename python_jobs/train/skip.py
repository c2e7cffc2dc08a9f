"""Skip model: L2-regularized logistic regression on marts.fct_play_skip_features.

Pipeline: ColumnTransformer (mean-imputed, standardized numerics; one-hot categoricals) ->
LogisticRegression(lbfgs). Trained on the days before the split (hash-sampled to at most
sample_rows plays), evaluated on every play of the held-out days, scored chunk by chunk:
ROC AUC, log loss, Brier score, base rate, and a decile calibration table.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import expit
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score
from sklearn.pipeline import Pipeline

from python_jobs.train import data, features, oracle
from python_jobs.train.settings import SkipSettings, TrainSettings

log = logging.getLogger(__name__)

SOURCE = data.Source(table="marts.fct_play_skip_features", keys=("play_id", "session_id"),
                     date_column="played_date", label="is_skipped", joined_on_key=True,
                     # the view's left side: its plays, each once
                     counted_from="intermediate.int_plays_sessionized")
CALIBRATION_BINS = 10

PredictionSink = Callable[[pd.DataFrame], None]


def pipeline(s: SkipSettings) -> Pipeline:
    return Pipeline([
        ("features", features.preprocessor(s.numeric_features, s.categorical_features)),
        ("model", LogisticRegression(
            C=np.inf if s.penalty == "none" else s.C, l1_ratio=0.0, solver="lbfgs",
            class_weight=s.class_weight, max_iter=s.max_iter)),
    ])


def feature_frame(frame: pd.DataFrame, s: SkipSettings) -> pd.DataFrame:
    return frame[[*s.numeric_features, *s.categorical_features]]


def classification_metrics(labels: np.ndarray, probabilities: np.ndarray) -> dict[str, float]:
    labels = labels.astype(int)
    both = len(np.unique(labels)) == 2
    return {
        "rows": float(len(labels)),
        "base_rate": float(labels.mean()),
        "mean_predicted": float(probabilities.mean()),
        "roc_auc": float(roc_auc_score(labels, probabilities)) if both else float("nan"),
        "log_loss": float(log_loss(labels, probabilities, labels=[0, 1])),
        "brier": float(brier_score_loss(labels, probabilities)),
        # log loss of always predicting the base rate: the bar the model must clear
        "log_loss_base_rate": float(log_loss(
            labels, np.full(len(labels), labels.mean()), labels=[0, 1])),
        # the largest |mean predicted - observed rate| over the deciles of P(skip)
        "calibration_max_gap": float(calibration_table(labels, probabilities)
                                      .eval("mean_predicted - observed_rate").abs().max()),
    }


def prefixed(values: dict[str, float], prefix: str) -> dict[str, float]:
    return {f"{prefix}{k}": v for k, v in values.items()}


def challenger_pipeline(s: SkipSettings) -> Pipeline:
    return features.challenger(
        HistGradientBoostingClassifier(max_iter=s.challenger_max_iter, **features.EARLY_STOP),
        s.numeric_features, s.categorical_features)


def oracle_metrics(truth_frame: pd.DataFrame | None, model: dict[str, float],
                   challenger: dict[str, float] | None
                   ) -> tuple[list[dict], pd.DataFrame | None]:
    """The oracle's held-out metrics (prefix oracle_) and the share of the gap from the
    trivial prediction to the oracle each model closed; its calibration deciles.
    `truth_frame`: oracle.skip_truth's."""
    if truth_frame is None:
        log.info("skip model: the data carry no generator truth: no oracle")
        return metric_rows({"oracle_available": 0.0}, "test"), None
    known, counts = oracle.coverage(truth_frame)
    labels = known["label"].to_numpy().astype(int)
    p = known["oracle"].to_numpy(dtype=float)
    best = classification_metrics(labels, p)
    values = {**counts, **prefixed(best, "oracle_")}
    brier_base = model["base_rate"] * (1 - model["base_rate"])
    for prefix, scores in (("", model), ("challenger_", challenger or {})):
        if not scores:
            continue
        values[f"{prefix}oracle_gap_closed_roc_auc"] = oracle.gap_closed(
            scores["roc_auc"], 0.5, best["roc_auc"])
        values[f"{prefix}oracle_gap_closed_log_loss"] = oracle.gap_closed(
            scores["log_loss"], model["log_loss_base_rate"], best["log_loss"])
        values[f"{prefix}oracle_gap_closed_brier"] = oracle.gap_closed(
            scores["brier"], brier_base, best["brier"])
    return metric_rows(values, "test"), calibration_table(labels, p).assign(split="oracle_test")


def calibration_table(labels: np.ndarray, probabilities: np.ndarray,
                      bins: int = CALIBRATION_BINS) -> pd.DataFrame:
    """Deciles of the predicted probability (equal counts, ties split by order)."""
    order = np.argsort(probabilities, kind="stable")
    rows = []
    for k, idx in enumerate(np.array_split(order, bins), start=1):
        if len(idx) == 0:
            continue
        p, y = probabilities[idx], labels[idx]
        rows.append({"bin": k, "row_count": len(idx), "mean_predicted": float(p.mean()),
                     "observed_rate": float(y.mean()), "min_predicted": float(p.min()),
                     "max_predicted": float(p.max())})
    return pd.DataFrame(rows)


def metric_rows(values: dict[str, float], split: str) -> list[dict]:
    return [{"split": split, "metric": k, "value": v} for k, v in values.items()]


def fit_encoded(model: Pipeline, frame: pd.DataFrame, labels: np.ndarray) -> Any:
    """Pipeline.fit done step by step (the same calls: the encoder's fit_transform, then the
    model's fit), returning the encoded rows so that the training predictions need no
    second encoding of up to sample_rows plays."""
    encoded = model[:-1].fit_transform(frame, labels)
    model[-1].fit(encoded, labels)
    return encoded


def score_test(conn, window: data.Window, settings: TrainSettings, term_rows: pd.DataFrame,
               rival: Pipeline | None, sink: PredictionSink
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Every held-out play scored by the model's exported terms (features.linear_predictor)
    and the challenger, block by block; the predictions go to `sink`. Labels, P(skip), the
    challenger's P(skip), in (day, play) order."""
    s = settings.skip
    labels, probabilities, rival_probabilities, stored = [], [], [], []
    for block in data.stream_test(conn, SOURCE, window, s.numeric_features,
                                  s.categorical_features):
        x = feature_frame(block, s)
        p = expit(features.linear_predictor(term_rows, x))
        y = block[SOURCE.label].to_numpy()
        labels.append(y.astype(np.int8))
        probabilities.append(p)
        if rival is not None:
            rival_probabilities.append(rival.predict_proba(x)[:, 1])
        del x
        stored.append(pd.DataFrame({
            "play_id": block["play_id"], "session_id": block["session_id"],
            "event_date": block[SOURCE.date_column], "label": y, "prediction": p}))
    if not labels:
        raise LookupError(f"{SOURCE.table}: no held-out rows")
    order = data.row_order(stored, "event_date", "play_id")
    # stored once the stream has ended: its COPY holds the connection until then
    for frame in stored:
        sink(frame)
    return (np.concatenate(labels)[order], np.concatenate(probabilities)[order],
            np.concatenate(rival_probabilities)[order] if rival is not None else None)


def run(conn, settings: TrainSettings, sink: PredictionSink,
        database: str | None = None) -> dict:
    """Train, evaluate on the held-out days (predictions go to `sink` block by block) and
    return the run's rows: info, metrics, coefficients (terms), calibration."""
    s = settings.skip
    window = data.split_window(conn, SOURCE, settings.test_days, settings.split_date)
    train, info = data.read_training(conn, SOURCE, window, s.numeric_features,
                                     s.categorical_features, s.sample_rows,
                                     settings.chunk_rows)
    labels_train = train[SOURCE.label].to_numpy().astype(int)
    # the features alone, once: the date and label columns go, and no fit copies them again
    x_train = feature_frame(train, s)
    del train
    model = pipeline(s)
    started = time.perf_counter()
    encoded = fit_encoded(model, x_train, labels_train)
    fit_seconds = time.perf_counter() - started
    lr = model.named_steps["model"]
    train_probabilities = lr.predict_proba(encoded)[:, 1]
    del encoded
    rival = None
    if s.challenger_max_iter:
        started_rival = time.perf_counter()
        rival = challenger_pipeline(s).fit(x_train, labels_train)
        log.info("skip challenger: fit %.1f s", time.perf_counter() - started_rival)
    term_rows = features.terms(model.named_steps["features"], lr.coef_[0],
                               float(lr.intercept_[0]), x_train)
    del x_train
    metrics = metric_rows(classification_metrics(labels_train, train_probabilities), "train")
    calibration = [calibration_table(labels_train, train_probabilities).assign(split="train")]
    del train_probabilities
    data.release_freed_memory()

    # after the fits, whose peak memory its rows would add to
    truth = oracle.prefetch(conn, oracle.skip_truth, SOURCE, window, settings.chunk_rows,
                            database=database)
    started = time.perf_counter()
    y_test, p_test, rival_test = score_test(conn, window, settings, term_rows, rival, sink)
    log.info("skip model: %d held-out plays scored and stored in %.1f s", len(y_test),
             time.perf_counter() - started)
    test_rows = len(y_test)
    test_scores = classification_metrics(y_test, p_test)
    metrics += metric_rows(test_scores, "test")
    calibration.append(calibration_table(y_test, p_test).assign(split="test"))
    rival_scores = None
    if rival_test is not None:
        rival_scores = classification_metrics(y_test, rival_test)
        metrics += metric_rows(prefixed(rival_scores, "challenger_"), "test")
    del y_test, p_test, rival_test
    started = time.perf_counter()
    best_rows, best_calibration = oracle_metrics(truth(), test_scores, rival_scores)
    log.info("skip model: oracle %.1f s", time.perf_counter() - started)
    metrics += best_rows
    if best_calibration is not None:
        calibration.append(best_calibration)
    info.update({"test_rows": test_rows, "fit_seconds": fit_seconds,
                 "feature_count": len(s.numeric_features) + len(s.categorical_features),
                 "selected_feature_count": int(term_rows["is_selected"].sum()) - 1,
                 "estimator": f"ColumnTransformer(impute+StandardScaler, OneHotEncoder) -> "
                              f"LogisticRegression(penalty={s.penalty}, C={s.C}, "
                              f"class_weight={s.class_weight}, lbfgs)",
                 "target": "is_skipped (ms_played < 30 s), P(skip)",
                 "challenger": (f"HistGradientBoostingClassifier("
                                f"{features.rounds(rival, s.challenger_max_iter)})"
                                if rival is not None else None),
                 "iterations": int(lr.n_iter_[0])})
    if lr.n_iter_[0] >= s.max_iter:
        log.warning("skip model: lbfgs stopped at max_iter=%d before converging", s.max_iter)
    log.info("skip model: fit %.1f s on %d rows, %d held-out rows", fit_seconds,
             info["train_rows"], test_rows)
    return {"window": window, "info": info, "metrics": pd.DataFrame(metrics),
            "terms": term_rows, "calibration": pd.concat(calibration, ignore_index=True),
            "model": model, "challenger": rival}
