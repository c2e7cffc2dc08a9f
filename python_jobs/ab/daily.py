"""The daily sequential monitor of a mart experiment: ab.experiment_daily_sequential.

fct_experiment_daily (dbt) counts what happened per day; this table says what may be
concluded on each day without inflating the false-positive rate by looking daily. For every
day d from the first enrolment to the last activity, the users enrolled by d and their
metrics accumulated up to d (sessions of marts.fct_sessions starting inside each user's
window, as in fct_experiment_user_metrics): play_count, listening_minutes, session_count
(Welch, means per user) and skip_rate (delta-method ratio). Per treatment variant, metric and
day, two sequential modes (sequential.py):
  always_valid                 running always-valid p-value and confidence sequence (mSPRT)
  group_<spending>             alpha spending with the day's information fraction
                               n_d / n_max (units enrolled in both arms; n_max the last day's,
                               or --planned-units while the experiment runs, so the boundaries
                               of past days do not move); days without new units get no
                               boundary and cannot reject; p-value NULL, the interval is the
                               repeated confidence interval
p_value_fixed is the fixed-horizon p-value of the same day: valid only on the planned last day.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from python_jobs import db
from python_jobs.ab import sequential, stats

USER_METRICS = "marts.fct_experiment_user_metrics"
SESSIONS = "marts.fct_sessions"
MEANS = ("play_count", "listening_minutes", "session_count")
CONTROL = "control"

COLUMNS: dict[str, str] = {
    "run_id": "text", "run_at": "timestamp", "experiment_id": "text", "metric": "text",
    "metric_kind": "text", "variant": "text", "control_variant": "text",
    "activity_date": "date", "look": "bigint", "n": "bigint", "n_control": "bigint",
    "value": "double precision", "value_control": "double precision",
    "effect": "double precision", "se": "double precision",
    "p_value_fixed": "double precision", "sequential_method": "text",
    "information_fraction": "double precision", "boundary": "double precision",
    "p_value_sequential": "double precision", "ci_low": "double precision",
    "ci_high": "double precision", "is_significant": "boolean", "alpha": "double precision",
}


def read_user_days(conn: db.Warehouse, experiment_id: str) -> pd.DataFrame:
    """One row per enrolled user and activity day inside the window (a user without any
    session keeps one row with a NULL day)."""
    return db.read_sql(conn, f"""
        select m.user_id, m.variant, m.assigned_date, s.session_date as activity_date,
            count(s.user_id) as session_count, coalesce(sum(s.track_count), 0) as play_count,
            coalesce(sum(s.skip_count), 0) as skip_count,
            coalesce(sum(s.ms_played), 0) / 60000.0 as listening_minutes
        from {USER_METRICS} as m
        left join {SESSIONS} as s
            on m.user_id = s.user_id and s.session_started_at >= m.assigned_at
            and s.session_started_at < m.window_ended_at
        where m.experiment_id = %s
        group by m.user_id, m.variant, m.assigned_date, s.session_date""", (experiment_id,))


def _cumulative(rows: pd.DataFrame, users: pd.Index, days: pd.DatetimeIndex,
                column: str) -> np.ndarray:
    active = rows.dropna(subset=["activity_date"])
    wide = active.pivot_table(index="user_id", columns="activity_date", values=column,
                              aggfunc="sum").reindex(index=users, columns=days, fill_value=0)
    return np.nan_to_num(wide.to_numpy(float)).cumsum(axis=1)


def _moments(x: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = mask.sum(axis=0).astype(float)
    s1 = (x * mask).sum(axis=0)
    s2 = (x * x * mask).sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return n, s1 / n, (s2 - s1**2 / n) / (n - 1)


def monitor(rows: pd.DataFrame, *, control: str = CONTROL, alpha: float = 0.05,
            spending: str = "obrien_fleming", tuning: float = sequential.DEFAULT_TUNING,
            planned_units: float | None = None) -> pd.DataFrame:
    """The daily rows from read_user_days' frame."""
    if rows.empty:
        return pd.DataFrame(columns=list(COLUMNS))
    rows = rows.assign(activity_date=pd.to_datetime(rows["activity_date"]),
                       assigned_date=pd.to_datetime(rows["assigned_date"]))
    per_user = rows.groupby("user_id").agg(variant=("variant", "first"),
                                           assigned_date=("assigned_date", "first"))
    last = max(rows["activity_date"].max(), per_user["assigned_date"].max())
    days = pd.date_range(per_user["assigned_date"].min(), last, freq="D")
    enrolled = per_user["assigned_date"].to_numpy()[:, None] <= days.to_numpy()[None, :]
    cumulative = {c: _cumulative(rows, per_user.index, days, c)
                  for c in (*MEANS, "skip_count")}
    arms = {v: (per_user["variant"] == v).to_numpy() for v in per_user["variant"].unique()}
    if control not in arms:
        return pd.DataFrame(columns=list(COLUMNS))
    frames = []
    for variant in sorted(v for v in arms if v != control):
        for metric in (*MEANS, "skip_rate"):
            comparison = _compare(metric, cumulative, enrolled, arms[control], arms[variant],
                                  alpha)
            frames.append(_looks(comparison, metric, variant, control, days, alpha, spending,
                                 tuning, planned_units))
    return pd.concat(frames, ignore_index=True)


def _compare(metric: str, cumulative: dict, enrolled: np.ndarray, in_control: np.ndarray,
             in_variant: np.ndarray, alpha: float) -> stats.Comparison:
    mc, mt = enrolled & in_control[:, None], enrolled & in_variant[:, None]
    if metric != "skip_rate":
        x = cumulative[metric]
        (nc, mean_c, var_c), (nt, mean_t, var_t) = _moments(x, mc), _moments(x, mt)
        with np.errstate(divide="ignore", invalid="ignore"):
            return stats.welch_from_moments(mean_c, var_c, nc, mean_t, var_t, nt, alpha=alpha)
    num, den = cumulative["skip_count"], cumulative["play_count"]

    def arm(mask: np.ndarray) -> tuple[np.ndarray, ...]:
        n, mean_x, var_x = _moments(num, mask)
        _, mean_y, var_y = _moments(den, mask)
        with np.errstate(divide="ignore", invalid="ignore"):
            cov = ((num * den * mask).sum(axis=0) - n * mean_x * mean_y) / (n - 1)
        return n, mean_x, mean_y, var_x, var_y, cov

    with np.errstate(divide="ignore", invalid="ignore"):
        return stats.ratio_from_moments(arm(mc), arm(mt), alpha=alpha)


def _looks(r: stats.Comparison, metric: str, variant: str, control: str,
           days: pd.DatetimeIndex, alpha: float, spending: str, tuning: float,
           planned_units: float | None = None) -> pd.DataFrame:
    effect, se = np.asarray(r.effect, float), np.asarray(r.se, float)
    nc, nt = np.asarray(r.n_control, float), np.asarray(r.n_treatment, float)
    ok = (nc >= 2) & (nt >= 2) & np.isfinite(effect) & np.isfinite(se) & (se > 0)
    if not ok.any():
        return pd.DataFrame(columns=list(COLUMNS))
    idx = np.flatnonzero(ok)
    d, s = effect[idx], se[idx]
    base = pd.DataFrame({
        "metric": metric, "metric_kind": "ratio" if metric == "skip_rate" else "mean",
        "variant": variant, "control_variant": control, "activity_date": days[idx].date,
        "look": np.arange(1, idx.size + 1), "n": nt[idx].astype(int),
        "n_control": nc[idx].astype(int),
        "value": np.asarray(r.value_treatment, float)[idx],
        "value_control": np.asarray(r.value_control, float)[idx], "effect": d, "se": s,
        "p_value_fixed": np.asarray(r.p_value, float)[idx], "alpha": alpha})
    valid = sequential.always_valid(d, s**2, nc[idx] + nt[idx], alpha=alpha, tuning=tuning)
    always = base.assign(sequential_method="always_valid", p_value_sequential=valid["p_value"],
                         ci_low=valid["ci_low"], ci_high=valid["ci_high"],
                         is_significant=valid["reject"])
    # information = units enrolled in both arms (the variance of a cumulative metric grows
    # with time, so 1 / variance is no measure of information here)
    fractions = sequential.information_fractions(nc[idx] + nt[idx], planned_units)
    group = sequential.group_sequential(d, s, fractions, alpha=alpha, spending=spending)
    spent = base.assign(sequential_method=f"group_{spending}", information_fraction=fractions,
                        boundary=np.where(np.isfinite(group["boundary"]), group["boundary"],
                                          np.nan),
                        ci_low=group["ci_low"], ci_high=group["ci_high"],
                        is_significant=group["reject"])
    return pd.concat([always, spent], ignore_index=True)


def experiment_daily(conn: db.Warehouse, experiment_id: str, *, control: str = CONTROL,
                     alpha: float = 0.05,
                     spending: str = "obrien_fleming",
                     tuning: float = sequential.DEFAULT_TUNING,
                     planned_units: float | None = None) -> pd.DataFrame:
    return monitor(read_user_days(conn, experiment_id), control=control, alpha=alpha,
                   spending=spending,
                   tuning=tuning, planned_units=planned_units).assign(
                       experiment_id=experiment_id)
