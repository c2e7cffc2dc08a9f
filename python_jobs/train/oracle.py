"""The generator's oracle on the held-out rows: the best any model of these data could do.

Synthetic data carry their truth (python_jobs/generate.py, docs/ground_truth.md "Oracle
truth"): per play the true P(skip) in raw.generator_play_truth, per session the expected
duration in raw.generator_session_truth. Scored like the models on exactly the held-out rows
of the same mart, they give the ceiling each metric can reach; `oracle_gap_closed_<metric>`
says how much of the way from the trivial prediction to the ceiling a model went.

Real data (or the Spark target, where raw does not live) have no truth: the oracle is
skipped and the run says so (oracle_available = 0).

The expected duration is a mean of replays (truth.ORACLE_DURATION_REPLAYS), so it carries
Monte Carlo noise that would make the oracle look worse than it is; its squared-error
metrics (r2, rmse) subtract the stored variance of that mean (an unbiased correction), MAE
cannot be corrected and is slightly pessimistic.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from python_jobs import db, truth
from python_jobs.train import data

log = logging.getLogger(__name__)

NOT_AVAILABLE = [{"split": "test", "metric": "oracle_available", "value": 0.0}]


def has_truth(conn: db.Warehouse, table: str) -> bool:
    """The truth table exists on this engine and holds rows."""
    if db.is_spark(conn) or not db.column_types(conn, table):
        return False
    return not db.read_sql(conn, f"select 1 from {table} limit 1").empty


def _read(conn: db.Warehouse, sql: str, window: data.Window, chunk_rows: int) -> pd.DataFrame:
    frames = list(db.stream_sql(conn, sql, (window.test_start, window.test_end), chunk_rows))
    if not frames:
        raise LookupError("no held-out rows for the oracle")
    return pd.concat(frames, ignore_index=True)


def skip_truth(conn: db.Warehouse, source: data.Source, window: data.Window,
               chunk_rows: int) -> pd.DataFrame | None:
    """label and true P(skip) of every held-out play (P null where the play has no truth),
    or None when the data carry no truth."""
    if not has_truth(conn, truth.PLAY_TRUTH_TABLE):
        return None
    sql = (f"select cast(cast(m.{source.label} as integer) as double precision) as label, "
           f"t.skip_probability as oracle from {source.table} as m left join "
           f"{truth.PLAY_TRUTH_TABLE} as t on t.event_id = m.play_id "
           f"where m.{source.date_column} between %s and %s")
    return _read(conn, sql, window, chunk_rows)


def duration_truth(conn: db.Warehouse, source: data.Source, window: data.Window,
                   chunk_rows: int) -> pd.DataFrame | None:
    """duration, expected duration and the Monte Carlo variance of that expectation for
    every held-out session (the generator's session = the warehouse's: same user, same
    start), or None when the data carry no truth."""
    if not has_truth(conn, truth.SESSION_TRUTH_TABLE):
        return None
    sql = (f"select cast(m.{source.label} as double precision) as label, "
           "t.expected_duration_seconds as oracle, t.expected_duration_variance as variance "
           f"from {source.table} as m left join {truth.SESSION_TRUTH_TABLE} as t "
           "on t.user_id = m.user_id and t.started_at = m.session_started_at "
           f"where m.{source.date_column} between %s and %s")
    return _read(conn, sql, window, chunk_rows)


def coverage(frame: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, float]]:
    """The rows with truth, and how many held-out rows had none (0 on generated data)."""
    known = frame[frame["oracle"].notna()]
    missing = len(frame) - len(known)
    if missing:
        log.warning("oracle: %d of %d held-out rows have no generator truth (left out of "
                    "the oracle metrics only)", missing, len(frame))
    return known, {"oracle_available": 1.0, "oracle_rows": float(len(known)),
                   "oracle_missing_rows": float(missing)}


def corrected_regression(y: np.ndarray, expected: np.ndarray,
                         variance: np.ndarray) -> dict[str, float]:
    """R², RMSE of the true expectation, from a Monte Carlo estimate of it: E[(y - m_hat)^2]
    = E[(y - m)^2] + Var(m_hat), so the stored variance is subtracted from the mean squared
    error. MAE is of the estimate as it is."""
    mse = float(np.mean((y - expected) ** 2) - np.mean(variance))
    total = float(np.mean((y - y.mean()) ** 2))
    return {"oracle_r2": 1.0 - mse / total,
            "oracle_mae_seconds": float(np.mean(np.abs(y - expected))),
            "oracle_rmse_seconds": float(np.sqrt(max(mse, 0.0))),
            "oracle_r2_uncorrected": 1.0 - float(np.mean((y - expected) ** 2)) / total}


def gap_closed(model: float, trivial: float, oracle: float) -> float:
    """Share of the way from the trivial prediction's score to the oracle's the model went
    (1 = as good as the oracle; NaN when the oracle is no better than trivial)."""
    span = oracle - trivial
    return float((model - trivial) / span) if span else float("nan")
