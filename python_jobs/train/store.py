"""Schema `ml`: append-only run tables, grants to the reporting role.

    ml.model_runs          one row per run (per model): config JSON, data window, row counts,
                           sampling, code version, fit time, peak memory
    ml.model_metrics       run_id, model, split (train/validation/test), metric, value
    ml.model_coefficients  one row per term, enough to score in SQL (python_jobs/train/features)
    ml.model_predictions   every held-out row: play_id (skip) / session_id, label, prediction
                           (of the newest prediction_runs_kept runs per model)
    ml.calibration         deciles of P(skip): mean predicted vs observed rate

The views of the latest run of each model, ml.latest_<table>, are dbt models
(models/marts/ml/fct_latest_*, `dbt build --selector ml_scoring` after training), like the
SQL scoring that reads them.

The same tables on the Spark target (DBT_TARGET=spark): Spark database `ml`,
Parquet tables in Spark's types (text and jsonb are strings there), no indexes, no grants.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from datetime import UTC, datetime

import pandas as pd

from python_jobs import config, db

SCHEMA = "ml"

RUN_COLUMNS: dict[str, str] = {
    "run_id": "text", "model": "text", "trained_at": "timestamp", "config": "jsonb",
    "code_version": "text", "estimator": "text", "target": "text",
    "source_table": "text", "train_start_date": "date", "train_end_date": "date",
    "test_start_date": "date", "test_end_date": "date",
    "train_population_rows": "bigint", "train_rows": "bigint", "test_rows": "bigint",
    "is_sampled": "boolean", "sample_method": "text", "feature_count": "bigint",
    "selected_feature_count": "bigint", "fit_seconds": "double precision",
    "peak_rss_mb": "double precision",
}
METRIC_COLUMNS: dict[str, str] = {
    "run_id": "text", "model": "text", "split": "text", "metric": "text",
    "value": "double precision",
}
COEFFICIENT_COLUMNS: dict[str, str] = {
    "run_id": "text", "model": "text", "term_index": "bigint", "term": "text",
    "term_kind": "text", "feature": "text", "category": "text",
    "coefficient": "double precision", "raw_coefficient": "double precision",
    "importance": "double precision", "is_selected": "boolean",
    "fill_value": "double precision", "center": "double precision",
    "scale": "double precision",
}
PREDICTION_COLUMNS: dict[str, str] = {
    "run_id": "text", "model": "text", "play_id": "text", "session_id": "text",
    "event_date": "date", "label": "double precision", "prediction": "double precision",
    "baseline_prediction": "double precision",
}
CALIBRATION_COLUMNS: dict[str, str] = {
    "run_id": "text", "model": "text", "split": "text", "bin": "bigint",
    "row_count": "bigint", "mean_predicted": "double precision",
    "observed_rate": "double precision", "min_predicted": "double precision",
    "max_predicted": "double precision",
}
TABLES: dict[str, dict[str, str]] = {
    "model_runs": RUN_COLUMNS, "model_metrics": METRIC_COLUMNS,
    "model_coefficients": COEFFICIENT_COLUMNS, "model_predictions": PREDICTION_COLUMNS,
    "calibration": CALIBRATION_COLUMNS,
}
INDEXED = ("model_metrics", "model_coefficients", "model_predictions", "calibration")


def ensure_schema(conn: db.Warehouse) -> None:
    """The ml tables (empty on a fresh database), idempotent; readable by the reporting role
    when it exists."""
    db.execute(conn, f"create schema if not exists {SCHEMA}")
    for table, columns in TABLES.items():
        db.create_table(conn, f"{SCHEMA}.{table}", columns)
    for table in INDEXED:
        db.create_index(conn, f"{SCHEMA}.{table}", "run_id")
    db.grant_read(conn, SCHEMA)


def append(conn: db.Warehouse, table: str, frame: pd.DataFrame, stamp: dict) -> int:
    return db.copy_frame(conn, f"{SCHEMA}.{table}",
                         db.conform(frame.assign(**stamp), TABLES[table]))


def append_predictions(conn: db.Warehouse, frame: pd.DataFrame, stamp: dict) -> int:
    """Held-out predictions, COPYed in their numpy dtypes: db.conform's per-value Python
    objects cost more than scoring the rows (4x the time of the same CSV at millions of
    plays); Arrow writes NaN as NULL just as conform's None. Spark's Arrow append needs
    conform's objects (dates), and gets them."""
    if db.is_spark(conn):
        return append(conn, "model_predictions", frame, stamp)
    columns = list(TABLES["model_predictions"])
    return db.copy_frame(conn, f"{SCHEMA}.model_predictions",
                         frame.assign(**stamp).reindex(columns=columns))


def prune_predictions(conn: db.Warehouse, model: str, kept: int | None) -> int:
    """Delete the predictions of the model's runs older than its newest `kept` (by
    trained_at, run_id); the rows removed. Spark keeps them (no delete on Parquet)."""
    if kept is None or db.is_spark(conn):
        return 0
    return db.execute(conn, f"""
        delete from {SCHEMA}.model_predictions
        where run_id in (
            select run_id from {SCHEMA}.model_runs where model = %(model)s
            order by trained_at desc, run_id desc offset %(kept)s
        )""", {"model": model, "kept": kept})


def new_run(model: str) -> dict:
    trained_at = datetime.now(UTC).replace(tzinfo=None)
    return {"run_id": f"{trained_at:%Y%m%dT%H%M%S}-{model}-{uuid.uuid4().hex[:8]}",
            "model": model, "trained_at": trained_at}


def code_version() -> str | None:
    """The git commit of the code (with -dirty when the work tree has changes), if any."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=config.ROOT, text=True,
                                capture_output=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "python_jobs/train"],
                               cwd=config.ROOT, text=True, capture_output=True, timeout=10,
                               check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{commit}-dirty" if dirty else commit


def run_row(stamp: dict, outcome: dict, settings_json: dict, source_table: str,
            peak_rss_mb: float) -> pd.DataFrame:
    window = outcome["window"]
    info = outcome["info"]
    row = {**stamp, "config": json.dumps(settings_json, sort_keys=True),
           "code_version": code_version(), "source_table": source_table,
           "train_start_date": window.train_start, "train_end_date": window.train_end,
           "test_start_date": window.test_start, "test_end_date": window.test_end,
           "peak_rss_mb": peak_rss_mb,
           **{k: v for k, v in info.items() if k in RUN_COLUMNS}}
    return pd.DataFrame([row])
