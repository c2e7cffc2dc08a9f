"""(Re)compute an experiment's assignments and write raw.experiment_assignments idempotently.

    python -m python_jobs.ab assign --experiment exp_skip_reco [--sessions-table marts.fct_sessions]

The rule is the generator's (docs/ground_truth.md, section 6) and python_jobs/assignment.py's:
a user whose hash bucket falls in the experiment's traffic share is enrolled when they have a
session starting in the experiment window [started_at, ended_at); assigned_at = the start of
their first such session; the variant comes from the salted hash against the weights in
raw.experiment_variants (in their stored order). The experiment's rows are replaced in one
transaction and loaded through python_jobs.load as batch `ab_assign:<experiment>`, so reruns
give the same table.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from psycopg2 import sql

from python_jobs import assignment, db, load

log = logging.getLogger(__name__)

DEFAULT_SESSIONS_TABLE = "marts.fct_sessions"


def read_definition(conn: db.Connection, experiment_id: str) -> tuple[dict, list[tuple]]:
    meta = db.read_sql(conn, "select experiment_id, salt, traffic_share, started_at, ended_at "
                             "from raw.experiments where experiment_id = %s", (experiment_id,))
    if meta.empty:
        raise ValueError(f"unknown experiment {experiment_id!r} (raw.experiments)")
    variants = db.read_sql(conn, "select variant, weight from raw.experiment_variants "
                                 "where experiment_id = %s order by variant", (experiment_id,))
    return meta.iloc[0].to_dict(), list(variants.itertuples(index=False, name=None))


def first_sessions(conn: db.Connection, table: str, started_at, ended_at) -> pd.DataFrame:
    """user_id and the start of their first session in [started_at, ended_at)."""
    schema, name = table.split(".")
    query = sql.SQL("select user_id, min(session_started_at) as assigned_at from {}.{} "
                    "where session_started_at >= %s and session_started_at < %s "
                    "group by user_id order by user_id").format(
        sql.Identifier(schema), sql.Identifier(name))
    return db.read_sql(conn, query.as_string(conn), (started_at, ended_at))


def compute(meta: dict, variants: list[tuple], users: pd.DataFrame) -> pd.DataFrame:
    """Assignment rows for the candidate users (user_id, assigned_at)."""
    ids = users["user_id"].to_numpy(dtype=np.int64)
    enrolled, index = assignment.assign(meta["salt"], float(meta["traffic_share"]),
                                        [(v, float(w)) for v, w in variants], ids)
    names = np.array([v for v, _ in variants], dtype=object)
    return pd.DataFrame({
        "experiment_id": meta["experiment_id"],
        "user_id": ids[enrolled],
        "variant": names[index[enrolled]],
        "assigned_at": pd.to_datetime(users["assigned_at"].to_numpy()[enrolled]),
    })


def assign_experiment(conn: db.Connection, experiment_id: str,
                      sessions_table: str = DEFAULT_SESSIONS_TABLE) -> int:
    """Replace the experiment's rows of raw.experiment_assignments; returns rows written."""
    meta, variants = read_definition(conn, experiment_id)
    users = first_sessions(conn, sessions_table, meta["started_at"], meta["ended_at"])
    rows = compute(meta, variants, users)
    db.execute(conn, "delete from raw.experiment_assignments where experiment_id = %s",
               (experiment_id,))
    result = load.load(conn, "experiment_assignments", [rows],
                       batch_id=f"ab_assign:{experiment_id}", source=sessions_table)
    log.info("%s: %d of %d users with a session in the window enrolled", experiment_id,
             result.rows_loaded, len(users))
    return result.rows_loaded
