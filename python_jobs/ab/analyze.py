"""Analyse experiments from the per-user metrics mart and write the results to schema `ab`.

    python -m python_jobs.ab analyze --experiment exp_skip_reco [--report output/ab]
    python -m python_jobs.ab analyze --all

For every experiment: read its rows of marts.fct_experiment_user_metrics (streamed), check the
sample ratio against the planned weights (staging.stg_experiments__experiment_variants), then
compare every variant with the control on each metric of METRICS with stats.analyze_metric:

    play_count, listening_minutes, session_count   Welch (mean per user), and CUPED on the
                                                   metric's pre-period value as a second row
    skip_rate                                      skips per play, sum(skip_count) /
                                                   sum(play_count) per arm: the play-weighted
                                                   rate, delta method with the user as unit
    retention_d<N>                                 two-proportion z per variant, plus one
                                                   chi-square row over all variants

Multiple comparisons: Holm and Benjamini-Hochberg over one family per experiment, the primary
rows (Welch, ratio, z) of every metric and treatment variant. CUPED rows are adjusted in the
family where they replace their metric's Welch rows (same hypotheses, another estimator); the
chi-square row is an omnibus check and stays unadjusted. is_significant = Holm p < alpha.

Each invocation is one run (run_id, run_at): rows are appended to ab.experiment_results,
ab.srm_checks and ab.runs; the views ab.latest_experiment_results and ab.latest_srm_checks
keep the latest run of every experiment. The reporting role gets usage and select on ab.

On the Spark target (DBT_TARGET=spark) the same reads go to Spark's marts and staging
databases and the same tables and views are Parquet tables in Spark database `ab`. Spark has
no transactions: ab.runs is written last, so the latest_* views (joined on ab.runs) never show
an experiment whose writing failed half-way.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

import numpy as np
import pandas as pd

from python_jobs import db
from python_jobs.ab import report, stats

log = logging.getLogger(__name__)

SCHEMA = "ab"
USER_METRICS = "marts.fct_experiment_user_metrics"
EXPERIMENTS = "staging.stg_experiments__experiments"
VARIANTS = "staging.stg_experiments__experiment_variants"
CONTROL = "control"

# metric, kind, column (numerator for ratios), denominator or pre-period column
METRICS: tuple[tuple[str, str, str, str | None], ...] = (
    ("play_count", "mean", "play_count", "pre_play_count"),
    ("listening_minutes", "mean", "listening_minutes", "pre_listening_minutes"),
    ("session_count", "mean", "session_count", "pre_session_count"),
    ("skip_rate", "ratio", "skip_count", "play_count"),
    ("retention", "proportion", "is_retained", None),
)
PRIMARY_METHODS = ("welch_t", "ratio_delta_z", "two_proportion_z")

RESULT_COLUMNS: dict[str, str] = {
    "run_id": "text", "run_at": "timestamp", "experiment_id": "text", "metric": "text",
    "metric_kind": "text", "method": "text", "variant": "text", "control_variant": "text",
    "is_control": "boolean", "n": "bigint", "value": "double precision",
    "n_control": "bigint", "value_control": "double precision", "effect": "double precision",
    "ci_low": "double precision", "ci_high": "double precision",
    "relative_effect": "double precision", "relative_ci_low": "double precision",
    "relative_ci_high": "double precision", "statistic": "double precision",
    "df": "double precision", "p_value": "double precision",
    "adjustment_family": "text", "p_value_holm": "double precision",
    "p_value_bh": "double precision", "effect_size": "double precision",
    "effect_size_kind": "text", "achieved_power": "double precision",
    "variance_reduction": "double precision", "alpha": "double precision",
    "is_significant": "boolean",
}
SRM_COLUMNS: dict[str, str] = {
    "run_id": "text", "run_at": "timestamp", "experiment_id": "text", "variant": "text",
    "allocation_weight": "double precision", "observed_users": "bigint",
    "expected_users": "double precision", "statistic": "double precision", "df": "bigint",
    "p_value": "double precision", "threshold": "double precision", "is_mismatch": "boolean",
}
RUN_COLUMNS: dict[str, str] = {
    "run_id": "text", "run_at": "timestamp", "experiment_id": "text",
    "experiment_name": "text", "user_count": "bigint", "variant_count": "bigint",
    "result_row_count": "bigint", "alpha": "double precision",
    "srm_threshold": "double precision", "srm_p_value": "double precision",
    "is_srm_mismatch": "boolean", "retention_days": "bigint", "report_path": "text",
}


# --- reading ----------------------------------------------------------------------------------

def experiment_ids(conn: db.Warehouse) -> list[str]:
    """Experiments with at least one enrolled user in the mart."""
    frame = db.read_sql(conn, f"select distinct experiment_id from {USER_METRICS} order by 1")
    return frame["experiment_id"].tolist()


def read_experiment(conn: db.Warehouse, experiment_id: str) -> dict:
    """The experiment's definition (or None), its variants with weights, in the staging order
    with the control first."""
    meta = db.read_sql(conn, f"select * from {EXPERIMENTS} where experiment_id = %s",
                       (experiment_id,))
    variants = db.read_sql(
        conn, f"select variant, allocation_weight from {VARIANTS} where experiment_id = %s "
              "order by case when variant = %s then 0 else 1 end, variant",
        (experiment_id, CONTROL))
    return {"meta": None if meta.empty else meta.iloc[0].to_dict(), "variants": variants}


def read_user_metrics(conn: db.Warehouse, experiment_id: str,
                      chunk_rows: int = 100_000) -> pd.DataFrame:
    """The experiment's rows of the mart (one per enrolled user), streamed through a
    server-side cursor; on Spark they arrive as one Arrow result, bounded by the
    experiment's users. Ordered by the assignment id, so both engines give the same frame."""
    order = db.byte_order_sql(db.engine(conn), "experiment_assignment_id")
    chunks = list(db.stream_sql(
        conn, f"select * from {USER_METRICS} where experiment_id = %s order by {order}",
        (experiment_id,), chunk_rows=chunk_rows))
    if not chunks:
        return pd.DataFrame()
    return pd.concat(chunks, ignore_index=True)


# --- statistics -------------------------------------------------------------------------------

def srm_check(users: pd.DataFrame, variants: pd.DataFrame,
              threshold: float = 0.001) -> tuple[pd.DataFrame, stats.SrmResult | None]:
    """Users per variant against the planned weights; one row per planned variant. Users in a
    variant that has no planned weight make the check a mismatch by definition."""
    counts = users["variant"].value_counts()
    planned = variants["variant"].tolist()
    unknown = sorted(set(counts.index) - set(planned))
    observed = [int(counts.get(v, 0)) for v in planned]
    weights = variants["allocation_weight"].astype(float).tolist()
    result = None
    if len(planned) >= 2 and sum(observed) > 0:
        result = stats.sample_ratio_mismatch(observed, weights, threshold=threshold)
    rows = []
    for i, v in enumerate(planned):
        rows.append({
            "variant": v, "allocation_weight": weights[i], "observed_users": observed[i],
            "expected_users": None if result is None else result.expected[i],
            "statistic": None if result is None else result.statistic,
            "df": None if result is None else result.df,
            "p_value": None if result is None else result.p_value, "threshold": threshold,
            "is_mismatch": bool(unknown) or (result is not None and result.is_mismatch)})
    for v in unknown:
        rows.append({"variant": v, "allocation_weight": None,
                     "observed_users": int(counts[v]), "expected_users": 0.0,
                     "statistic": None, "df": None, "p_value": None, "threshold": threshold,
                     "is_mismatch": True})
    return pd.DataFrame(rows), result


def _by_variant(users: pd.DataFrame, column: str, order: Sequence[str]) -> dict[str, np.ndarray]:
    return {v: users.loc[users["variant"] == v, column].to_numpy(dtype=float) for v in order}


def metric_rows(users: pd.DataFrame, order: Sequence[str], experiment_id: str,
                alpha: float = 0.05) -> pd.DataFrame:
    """Every metric and method for one experiment, before the cross-metric corrections.
    `order`: variants to compare, control first; variants with fewer than 2 users are left
    out (a t-test needs two values)."""
    retention_days = int(users["retention_days"].iloc[0])
    frames = []
    for metric, kind, column, extra in METRICS:
        data = users
        name = metric
        if kind == "proportion":
            data = users[users[column].notna()]
            name = f"{metric}_d{retention_days}"
        present = [v for v in order if (data["variant"] == v).sum() >= 2]
        if CONTROL not in present or len(present) < 2:
            log.warning("%s/%s: not enough users per variant, skipped", experiment_id, name)
            continue
        values = _by_variant(data, column, present)
        runs: list[tuple[str, dict]] = [(kind, {})]
        if kind == "ratio":
            runs = [("ratio", {"denominators": _by_variant(data, extra, present)})]
        elif kind == "mean":
            runs.append(("cuped", {"pre_period": _by_variant(data, extra, present)}))
        for run_kind, extra_args in runs:
            try:
                rows = stats.analyze_metric(name, values, kind=run_kind, control=CONTROL,
                                            alpha=alpha, correction=None,
                                            experiment_id=experiment_id, **extra_args)
            except ValueError as error:  # e.g. constant pre-period: CUPED cannot help
                log.warning("%s/%s/%s skipped: %s", experiment_id, name, run_kind, error)
                continue
            frame = stats.rows_to_frame(rows)
            frame["metric_kind"] = kind
            frames.append(frame)
        if kind == "proportion" and len(present) >= 2:
            frames.append(_chi_square_row(values, present, name, experiment_id, alpha))
    if not frames:  # a thin experiment must not stop the run over the others
        log.warning("%s: no metric has two users in the control and another variant",
                    experiment_id)
        frames.append(stats.rows_to_frame([]).assign(metric_kind=None))
    out = pd.concat(frames, ignore_index=True)
    return out.drop(columns=["p_value_adjusted", "correction"])


def _chi_square_row(values: dict[str, np.ndarray], order: Sequence[str], metric: str,
                    experiment_id: str, alpha: float) -> pd.DataFrame:
    successes = [float(values[v].sum()) for v in order]
    totals = [float(values[v].size) for v in order]
    result = stats.chi_square_independence(successes, totals)
    return pd.DataFrame([{
        "experiment_id": experiment_id, "metric": metric, "variant": "all",
        "control_variant": CONTROL, "is_control": False, "method": "chi_square",
        "n": int(sum(totals)), "value": sum(successes) / sum(totals),
        "n_control": int(totals[0]), "value_control": successes[0] / totals[0],
        "statistic": result.statistic, "df": float(result.df), "p_value": result.p_value,
        "alpha": alpha, "is_significant": bool(result.p_value < alpha),
        "metric_kind": "proportion"}])


def adjust(results: pd.DataFrame) -> pd.DataFrame:
    """Holm and BH p-values over the experiment's primary family (and the CUPED family)."""
    out = results.copy()
    out["adjustment_family"] = None
    out["p_value_holm"] = np.nan
    out["p_value_bh"] = np.nan
    treated = ~out["is_control"].astype(bool) & out["p_value"].notna()
    primary = treated & out["method"].isin(PRIMARY_METHODS)
    cuped = treated & (out["method"] == "cuped_welch_t")
    cuped_family = cuped | (primary & ~out["metric"].isin(out.loc[cuped, "metric"]))
    # CUPED family first, primary second: the primary rows keep the primary family's values.
    for family, members, label in ((cuped_family, cuped, "cuped"),
                                   (primary, primary, "primary")):
        if not family.any():
            continue
        p = out.loc[family, "p_value"].to_numpy(float)
        holm = pd.Series(stats.adjust_p_values(p, "holm"), index=out.index[family])
        bh = pd.Series(stats.adjust_p_values(p, "bh"), index=out.index[family])
        idx = out.index[members]
        out.loc[idx, "p_value_holm"] = holm[idx]
        out.loc[idx, "p_value_bh"] = bh[idx]
        out.loc[idx, "adjustment_family"] = label
    adjusted = out["p_value_holm"].notna()
    out.loc[adjusted, "is_significant"] = out.loc[adjusted, "p_value_holm"] < out.loc[
        adjusted, "alpha"]
    out.loc[out["is_control"].astype(bool), "is_significant"] = None
    return out


def analyze_frame(users: pd.DataFrame, variants: pd.DataFrame, experiment_id: str, *,
                  alpha: float = 0.05,
                  srm_threshold: float = 0.001) -> tuple[pd.DataFrame, pd.DataFrame,
                                                         stats.SrmResult | None]:
    """Results rows and SRM rows of one experiment from its mart rows and planned variants."""
    srm_rows, srm = srm_check(users, variants, srm_threshold)
    order = [v for v in variants["variant"] if v == CONTROL]
    order += [v for v in variants["variant"] if v != CONTROL]
    order += sorted(set(users["variant"]) - set(order))
    results = adjust(metric_rows(users, order, experiment_id, alpha))
    return results, srm_rows, srm


# --- writing ----------------------------------------------------------------------------------

def ensure_schema(conn: db.Warehouse) -> None:
    """The ab tables and latest-run views (idempotent), readable by the reporting role. The
    views' SQL is the same on both engines."""
    db.execute(conn, f"create schema if not exists {SCHEMA}")
    db.create_table(conn, f"{SCHEMA}.experiment_results", RESULT_COLUMNS)
    db.create_table(conn, f"{SCHEMA}.srm_checks", SRM_COLUMNS)
    db.create_table(conn, f"{SCHEMA}.runs", RUN_COLUMNS)
    latest = (f"select run_id, experiment_id from (select run_id, experiment_id, row_number() "
              f"over (partition by experiment_id order by run_at desc, run_id desc) as rank "
              f"from {SCHEMA}.runs) as ranked where rank = 1")
    for view, table in (("latest_experiment_results", "experiment_results"),
                        ("latest_srm_checks", "srm_checks")):
        db.execute(conn, f"create or replace view {SCHEMA}.{view} as select t.* from "
                         f"{SCHEMA}.{table} as t inner join ({latest}) as latest on "
                         "t.run_id = latest.run_id and t.experiment_id = latest.experiment_id")
    db.grant_read(conn, SCHEMA)


def write_run(conn: db.Warehouse, results: pd.DataFrame, srm_rows: pd.DataFrame,
              runs: pd.DataFrame) -> None:
    """Append one run's rows, every experiment at once (one append per table is what costs
    on Spark); ab.runs last, so the latest_* views only ever see complete experiments."""
    ensure_schema(conn)
    db.copy_frame(conn, f"{SCHEMA}.experiment_results", db.conform(results, RESULT_COLUMNS))
    db.copy_frame(conn, f"{SCHEMA}.srm_checks", db.conform(srm_rows, SRM_COLUMNS))
    db.copy_frame(conn, f"{SCHEMA}.runs", db.conform(runs, RUN_COLUMNS))


def _concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    frames = [f for f in frames if not f.empty]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def new_run() -> tuple[str, datetime]:
    run_at = datetime.now(UTC).replace(tzinfo=None)
    return f"{run_at:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}", run_at


def analyze_experiment(conn: db.Warehouse, experiment_id: str, run_id: str,
                       run_at: datetime, *, alpha: float = 0.05,
                       srm_threshold: float = 0.001) -> dict | None:
    """Analyse one experiment (nothing is written): its results, SRM rows, run row and what
    the report needs; None when the experiment has no enrolled users in the mart."""
    definition = read_experiment(conn, experiment_id)
    users = read_user_metrics(conn, experiment_id)
    if users.empty:
        log.warning("%s: no rows in %s", experiment_id, USER_METRICS)
        return None
    results, srm_rows, srm = analyze_frame(users, definition["variants"], experiment_id,
                                           alpha=alpha, srm_threshold=srm_threshold)
    stamp = {"run_id": run_id, "run_at": run_at, "experiment_id": experiment_id}
    results = results.assign(**stamp)
    srm_rows = srm_rows.assign(**stamp)
    meta = definition["meta"] or {}
    run = {**stamp, "experiment_name": meta.get("experiment_name"),
           "user_count": len(users), "variant_count": int(users["variant"].nunique()),
           "result_row_count": len(results), "alpha": alpha, "srm_threshold": srm_threshold,
           "srm_p_value": None if srm is None else srm.p_value,
           "is_srm_mismatch": bool(srm_rows["is_mismatch"].any()),
           "retention_days": int(users["retention_days"].iloc[0])}
    log.info("%s: %d users, SRM p=%s, %d result rows", experiment_id, len(users),
             run["srm_p_value"], len(results))
    return {"run": run, "results": results, "srm": srm_rows, "meta": meta, "users": users,
            "variants": definition["variants"]}


def run(conn: db.Warehouse, experiments: Sequence[str], *, report_path: str | None = None,
        alpha: float = 0.05, srm_threshold: float = 0.001) -> tuple[str, list[dict]]:
    """One run over the given experiments: analyse, write the markdown reports (to
    `report_path`: a folder, or a .md file for a single experiment; default output/ab), then
    append everything to schema ab in the caller's transaction. Returns (run_id, outcomes)."""
    run_id, run_at = new_run()
    outcomes = []
    for experiment_id in experiments:
        outcome = analyze_experiment(conn, experiment_id, run_id, run_at, alpha=alpha,
                                     srm_threshold=srm_threshold)
        if outcome is None:
            continue
        path = report.report_file(report_path, experiment_id, single=len(experiments) == 1)
        report.write(path, outcome)
        outcome["run"]["report_path"] = str(path)
        outcomes.append(outcome)
    if outcomes:
        write_run(conn, _concat([o["results"] for o in outcomes]),
                  _concat([o["srm"] for o in outcomes]),
                  pd.DataFrame([o["run"] for o in outcomes]))
    return run_id, outcomes
