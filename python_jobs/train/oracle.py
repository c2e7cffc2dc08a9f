"""The generator's oracle on the held-out rows: the best any model of these data could do.

Synthetic data carry their truth (python_jobs/generate.py, docs/ground_truth.md "Oracle
truth"): per play the true P(skip) in raw.generator_play_truth, per session the expected
duration in raw.generator_session_truth. Scored like the models on exactly the held-out rows
of the same mart, they give the ceiling each metric can reach; `oracle_gap_closed_<metric>`
says how much of the way from the trivial prediction to the ceiling a model went.

Real data have no truth: the oracle is skipped and the run says so (oracle_available = 0).
The truth lives in PostgreSQL's raw schema only. On the Spark target the held-out rows' keys
and labels are read from Spark's mart and joined to the truth in the PostgreSQL database the
raw data came from (`--database`) through a temporary table, so both engines report the same
oracle on the same rows; without that database or its truth there is no oracle.

The expected duration is a mean of replays (truth.ORACLE_DURATION_REPLAYS), so it carries
Monte Carlo noise that would make the oracle look worse than it is; its squared-error
metrics (r2, rmse) subtract the stored variance of that mean (an unbiased correction), MAE
cannot be corrected and is slightly pessimistic.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import numpy as np
import pandas as pd
import psycopg2

from python_jobs import db, truth
from python_jobs.train import data

log = logging.getLogger(__name__)

NOT_AVAILABLE = [{"split": "test", "metric": "oracle_available", "value": 0.0}]


def has_truth(conn: db.Connection, table: str) -> bool:
    """The truth table exists in this PostgreSQL database and holds rows."""
    if not db.column_types(conn, table):
        return False
    return not db.read_sql(conn, f"select 1 from {table} limit 1").empty


def _read(conn: db.Connection, sql: str, params: tuple) -> pd.DataFrame:
    """The joined rows (a few doubles each) as one frame, through COPY."""
    frame = db.read_arrow(conn, sql, params).to_pandas()
    if frame.empty:
        raise LookupError("no held-out rows for the oracle")
    return frame


@contextmanager
def _truth_database(conn: db.Warehouse, database: str | None) -> Iterator[db.Connection | None]:
    """The PostgreSQL connection that holds the truth: the run's own, or on Spark the
    database the raw data came from (None when it cannot be reached)."""
    if not db.is_spark(conn):
        yield conn
        return
    try:
        with db.connect(database) as pg:
            yield pg
    except psycopg2.OperationalError as error:
        log.info("oracle: no PostgreSQL database with generator truth (%s)", error)
        yield None


def _joined(conn: db.Warehouse, database: str | None, truth_table: str, keys_sql: str,
            key_columns: dict[str, str], truth_sql: str, window: data.Window,
            chunk_rows: int) -> pd.DataFrame | None:
    """Held-out keys and labels (keys_sql, on the mart's engine) joined to the truth
    (truth_sql over `k`, the keys, and `t`, the truth table) in PostgreSQL, in key order
    whatever the engine (the calibration deciles split ties by order)."""
    params = (window.test_start, window.test_end)
    with _truth_database(conn, database) as pg:
        if pg is None or not has_truth(pg, truth_table):
            return None
        if pg is conn:
            # COPY, not a cursor: PostgreSQL never runs a cursor's plan in parallel, and
            # this one scans the whole mart
            return _read(pg, truth_sql.format(keys=f"({keys_sql})"), params)
        columns = ", ".join(f"{name} {kind}" for name, kind in key_columns.items())
        db.execute(pg, f"create temporary table oracle_keys ({columns}) on commit drop")
        for chunk in db.stream_sql(conn, keys_sql, params, chunk_rows):
            db.copy_frame(pg, "pg_temp.oracle_keys", chunk[list(key_columns)])
        return _read(pg, truth_sql.format(keys="pg_temp.oracle_keys"), ())


def skip_truth(conn: db.Warehouse, source: data.Source, window: data.Window,
               chunk_rows: int, database: str | None = None) -> pd.DataFrame | None:
    """label and true P(skip) of every held-out play (P null where the play has no truth),
    or None when the data carry no truth."""
    label = data.numeric_expression(source.label, "boolean", db.engine(conn))
    keys_sql = (f"select play_id, {label} as label from {source.table} "
                f"where {source.date_column} between %s and %s")
    truth_sql = ("select k.label, t.skip_probability as oracle from {keys} as k left join "
                 f"{truth.PLAY_TRUTH_TABLE} as t on t.event_id = k.play_id "
                 'order by k.play_id collate "C"')
    return _joined(conn, database, truth.PLAY_TRUTH_TABLE, keys_sql,
                   {"play_id": "text", "label": "double precision"}, truth_sql, window,
                   chunk_rows)


def duration_truth(conn: db.Warehouse, source: data.Source, window: data.Window,
                   chunk_rows: int, database: str | None = None) -> pd.DataFrame | None:
    """duration, expected duration and the Monte Carlo variance of that expectation for
    every held-out session (the generator's session = the warehouse's: same user, same
    start), or None when the data carry no truth."""
    double = db.sql_type(db.engine(conn), "double precision")
    keys_sql = (f"select user_id, session_started_at, cast({source.label} as {double}) as "
                f"label from {source.table} where {source.date_column} between %s and %s")
    truth_sql = ("select k.label, t.expected_duration_seconds as oracle, "
                 "t.expected_duration_variance as variance from {keys} as k left join "
                 f"{truth.SESSION_TRUTH_TABLE} as t on t.user_id = k.user_id and "
                 "t.started_at = k.session_started_at order by k.user_id, "
                 "k.session_started_at")
    return _joined(conn, database, truth.SESSION_TRUTH_TABLE, keys_sql,
                   {"user_id": "bigint", "session_started_at": "timestamp",
                    "label": "double precision"}, truth_sql, window, chunk_rows)


def prefetch(conn: db.Warehouse, read: Callable[..., pd.DataFrame | None], *args: object,
             database: str | None = None) -> Callable[[], pd.DataFrame | None]:
    """`read(conn, *args, database)` (skip_truth, duration_truth) begun now on a connection
    of its own to the run's PostgreSQL database, so that the server joins the held-out rows
    to the truth while Python fits or scores (a core would idle otherwise: at 1M sessions
    the skip oracle took 12 s after the scoring); the returned function waits for the
    frame. It reads what the run reads (the run writes only schema ml). On Spark the read
    runs when the function is called, on the run's session."""
    if db.is_spark(conn):
        return lambda: read(conn, *args, database)

    def on_own_connection() -> pd.DataFrame | None:
        with db.connect(conn.info.dbname) as own:  # the run's database
            return read(own, *args, database)

    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="oracle")
    future = pool.submit(on_own_connection)
    pool.shutdown(wait=False)
    return future.result


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
