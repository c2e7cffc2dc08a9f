"""Analyse experiments and write the results to schema `ab`.

    python -m python_jobs.ab analyze --experiment exp_skip_reco [--report output/ab]
    python -m python_jobs.ab analyze --all
    python -m python_jobs.ab analyze --from-file PATH | --from-table schema.name ...

Three input routes, one analysis (evaluate.py). The mart route reads an experiment's rows of
marts.fct_experiment_user_metrics (streamed) with the metrics and decision families of
metrics.yml; the file and table routes read any per-unit table with metrics given on the
command line (or a metrics file) and any arm as the control. Every route checks the sample
ratio against the planned weights (staging.stg_experiments__experiment_variants for the mart;
--weights or equal weights otherwise), then compares every variant with the control on every
metric: the primary test, CUPED when the metric has covariates, the chi-square over all
variants for proportions, one-sided harm and non-inferiority p-values, the Bayesian read-out
and, when asked, the sequential read-out at this look. Corrections run within the decision
families (goal, guardrail, secondary); docs/ab_testing.md has every formula.

Each invocation is one run (run_id, run_at): rows are appended to ab.experiment_results,
ab.srm_checks and ab.runs; the views ab.latest_experiment_results and ab.latest_srm_checks
keep the latest run of every experiment. For mart experiments the run also appends the daily
sequential monitor, ab.experiment_daily_sequential (one row per experiment, metric, variant,
day and sequential mode; view ab.latest_experiment_daily_sequential), beside the dbt model
fct_experiment_daily. The reporting role gets usage and select on ab.

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

import pandas as pd

from python_jobs import db
from python_jobs.ab import daily, evaluate, inputs, report, stats
from python_jobs.ab import metrics as metric_defs
from python_jobs.ab.evaluate import DEFAULT_OPTIONS, Options

log = logging.getLogger(__name__)

SCHEMA = "ab"
USER_METRICS = "marts.fct_experiment_user_metrics"
EXPERIMENTS = "staging.stg_experiments__experiments"
VARIANTS = "staging.stg_experiments__experiment_variants"
CONTROL = "control"
PRIMARY_METHODS = evaluate.PRIMARY_METHODS

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
    # added by issue 23; the columns above keep their meaning
    "metric_role": "text", "direction": "text", "family_size": "bigint", "se": "double precision",
    "covariates": "text", "cap_rule": "text", "cap_value": "double precision",
    "capped_units": "bigint", "capped_units_control": "bigint",
    "harm_p_value": "double precision",
    "noninferiority_margin": "double precision", "noninferiority_p_value": "double precision",
    "noninferiority_p_value_holm": "double precision",
    "chance_to_beat_control": "double precision", "expected_loss": "double precision",
    "credible_low": "double precision", "credible_high": "double precision",
    "prior_sd": "double precision", "sequential_method": "text",
    "p_value_sequential": "double precision", "sequential_boundary": "double precision",
    "ci_low_sequential": "double precision", "ci_high_sequential": "double precision",
    "is_significant_sequential": "boolean",
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
    "source": "text", "control_variant": "text",
}


# --- reading ----------------------------------------------------------------------------------

def experiment_ids(conn: db.Warehouse) -> list[str]:
    """Experiments with at least one enrolled user in the mart."""
    frame = db.read_sql(conn, f"select distinct experiment_id from {USER_METRICS} order by 1")
    return frame["experiment_id"].tolist()


def read_experiment(conn: db.Warehouse, experiment_id: str, control: str = CONTROL) -> dict:
    """The experiment's definition (or None), its variants with weights, in the staging order
    with the control first."""
    meta = db.read_sql(conn, f"select * from {EXPERIMENTS} where experiment_id = %s",
                       (experiment_id,))
    variants = db.read_sql(
        conn, f"select variant, allocation_weight from {VARIANTS} where experiment_id = %s "
              "order by case when variant = %s then 0 else 1 end, variant",
        (experiment_id, control))
    return {"meta": None if meta.empty else meta.iloc[0].to_dict(), "variants": variants}


def read_user_metrics(conn: db.Warehouse, experiment_id: str, plan: metric_defs.Plan | None = None,
                      chunk_rows: int = 100_000) -> pd.DataFrame:
    """The experiment's rows of the mart (one per enrolled user), streamed through a
    server-side cursor; on Spark they arrive as one Arrow result, bounded by the
    experiment's users. Ordered by the assignment id, so both engines give the same frame.
    SQL expressions of the plan's metrics come as extra columns named after the expression."""
    order = db.byte_order_sql(db.engine(conn), "experiment_assignment_id")
    aliases = inputs.expression_aliases(plan) if plan else {}
    extra = "".join(f", ({e}) as {a}" for e, a in aliases.items())
    chunks = list(db.stream_sql(
        conn, f"select *{extra} from {USER_METRICS} where experiment_id = %s order by {order}",
        (experiment_id,), chunk_rows=chunk_rows))
    if not chunks:
        return pd.DataFrame()
    return pd.concat(chunks, ignore_index=True).rename(
        columns={a: e for e, a in aliases.items()})


def _as_units(users: pd.DataFrame, plan: metric_defs.Plan) -> pd.DataFrame:
    """The mart rows with the plan's columns as floats (booleans 0/1, NULL NaN)."""
    units = users.copy()
    for column in inputs.column_kinds(plan):
        units[column] = pd.to_numeric(units[column].astype(object).map(
            lambda v: float(v) if v is not None and not pd.isna(v) else float("nan")))
    return units


# --- statistics -------------------------------------------------------------------------------

def srm_check(users: pd.DataFrame, variants: pd.DataFrame,
              threshold: float = 0.001) -> tuple[pd.DataFrame, stats.SrmResult | None]:
    """Units per variant against the planned weights; one row per planned variant. Units in a
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


def analyze_frame(units: pd.DataFrame, variants: pd.DataFrame, experiment_id: str,
                  plan: metric_defs.Plan, *, control: str = CONTROL,
                  options: Options = DEFAULT_OPTIONS, srm_threshold: float = 0.001
                  ) -> tuple[pd.DataFrame, pd.DataFrame, stats.SrmResult | None]:
    """Results rows and SRM rows of one experiment from its units and planned variants."""
    srm_rows, srm = srm_check(units, variants, srm_threshold)
    order = [control]
    order += [v for v in variants["variant"] if v != control]
    order += sorted(set(units["variant"]) - set(order))
    rows = evaluate.metric_rows(units, plan, order, control, experiment_id, options)
    return evaluate.adjust(rows), srm_rows, srm


# --- writing ----------------------------------------------------------------------------------

def _ensure_table(conn: db.Warehouse, table: str, columns: dict[str, str]) -> None:
    """Create the table, or add the columns a newer version of this job writes."""
    existing = db.column_types(conn, table)
    if not existing:
        db.create_table(conn, table, columns)
        return
    missing = {c: t for c, t in columns.items() if c not in existing}
    if not missing:
        return
    if db.is_spark(conn):
        cols = ", ".join(f"{c} {db.sql_type('spark', t)}" for c, t in missing.items())
        db.execute(conn, f"alter table {table} add columns ({cols})")
    else:
        for column, kind in missing.items():
            db.execute(conn, f"alter table {table} add column if not exists {column} {kind}")


def ensure_schema(conn: db.Warehouse) -> None:
    """The ab tables and latest-run views (idempotent), readable by the reporting role. The
    views' SQL is the same on both engines."""
    db.execute(conn, f"create schema if not exists {SCHEMA}")
    _ensure_table(conn, f"{SCHEMA}.experiment_results", RESULT_COLUMNS)
    _ensure_table(conn, f"{SCHEMA}.srm_checks", SRM_COLUMNS)
    _ensure_table(conn, f"{SCHEMA}.runs", RUN_COLUMNS)
    _ensure_table(conn, f"{SCHEMA}.experiment_daily_sequential", daily.COLUMNS)
    latest = (f"select run_id, experiment_id from (select run_id, experiment_id, row_number() "
              f"over (partition by experiment_id order by run_at desc, run_id desc) as rank "
              f"from {SCHEMA}.runs) as ranked where rank = 1")
    for view, table in (("latest_experiment_results", "experiment_results"),
                        ("latest_srm_checks", "srm_checks"),
                        ("latest_experiment_daily_sequential", "experiment_daily_sequential")):
        db.execute(conn, f"create or replace view {SCHEMA}.{view} as select t.* from "
                         f"{SCHEMA}.{table} as t inner join ({latest}) as latest on "
                         "t.run_id = latest.run_id and t.experiment_id = latest.experiment_id")
    db.grant_read(conn, SCHEMA)


def write_run(conn: db.Warehouse, results: pd.DataFrame, srm_rows: pd.DataFrame,
              runs: pd.DataFrame, daily_rows: pd.DataFrame | None = None) -> None:
    """Append one run's rows, every experiment at once (one append per table is what costs
    on Spark); ab.runs last, so the latest_* views only ever see complete experiments."""
    ensure_schema(conn)
    db.copy_frame(conn, f"{SCHEMA}.experiment_results", db.conform(results, RESULT_COLUMNS))
    db.copy_frame(conn, f"{SCHEMA}.srm_checks", db.conform(srm_rows, SRM_COLUMNS))
    if daily_rows is not None and not daily_rows.empty:
        db.copy_frame(conn, f"{SCHEMA}.experiment_daily_sequential",
                      db.conform(daily_rows, daily.COLUMNS))
    db.copy_frame(conn, f"{SCHEMA}.runs", db.conform(runs, RUN_COLUMNS))


def _concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    frames = [f for f in frames if f is not None and not f.empty]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def new_run() -> tuple[str, datetime]:
    run_at = datetime.now(UTC).replace(tzinfo=None)
    return f"{run_at:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}", run_at


def _outcome(units: pd.DataFrame, variants: pd.DataFrame, experiment_id: str,
             plan: metric_defs.Plan, stamp: dict, *, control: str, options: Options,
             srm_threshold: float, meta: dict, source: str) -> dict:
    results, srm_rows, srm = analyze_frame(units, variants, experiment_id, plan,
                                           control=control, options=options,
                                           srm_threshold=srm_threshold)
    results = results.assign(**stamp)
    srm_rows = srm_rows.assign(**stamp)
    retention = (int(units["retention_days"].iloc[0]) if "retention_days" in units
                 else None)
    run = {**stamp, "experiment_name": meta.get("experiment_name"),
           "user_count": len(units), "variant_count": int(units["variant"].nunique()),
           "result_row_count": len(results), "alpha": options.alpha,
           "srm_threshold": srm_threshold,
           "srm_p_value": None if srm is None else srm.p_value,
           "is_srm_mismatch": bool(srm_rows["is_mismatch"].any()),
           "retention_days": retention, "source": source, "control_variant": control}
    log.info("%s: %d units, SRM p=%s, %d result rows", experiment_id, len(units),
             run["srm_p_value"], len(results))
    return {"run": run, "results": results, "srm": srm_rows, "meta": meta, "users": units,
            "variants": variants, "plan": plan}


def analyze_experiment(conn: db.Warehouse, experiment_id: str, run_id: str,
                       run_at: datetime, *, alpha: float = 0.05,
                       srm_threshold: float = 0.001, options: Options | None = None,
                       definitions: dict | None = None, control: str = CONTROL
                       ) -> dict | None:
    """Analyse one mart experiment (nothing is written): its results, SRM rows, run row,
    daily sequential rows and what the report needs; None when it has no enrolled users."""
    options = options or Options(alpha=alpha)
    definitions = definitions or metric_defs.load()
    plan = metric_defs.plan_for(definitions, experiment_id)
    definition = read_experiment(conn, experiment_id, control)
    users = read_user_metrics(conn, experiment_id, plan)
    if users.empty:
        log.warning("%s: no rows in %s", experiment_id, USER_METRICS)
        return None
    if control not in set(users["variant"]):
        raise ValueError(f"{experiment_id}: no unit in the control arm {control!r} (arms: "
                         f"{', '.join(sorted(set(users['variant'])))})")
    stamp = {"run_id": run_id, "run_at": run_at, "experiment_id": experiment_id}
    outcome = _outcome(_as_units(users, plan), definition["variants"], experiment_id, plan,
                       stamp, control=control, options=options, srm_threshold=srm_threshold,
                       meta=definition["meta"] or {}, source=USER_METRICS)
    outcome["daily"] = daily.experiment_daily(conn, experiment_id, control=control,
                                              alpha=options.alpha,
                                              spending=options.spending,
                                              tuning=options.tuning,
                                              planned_units=options.planned_units
                                              ).assign(**stamp)
    return outcome


def analyze_units(units: pd.DataFrame, experiment_id: str, plan: metric_defs.Plan, *,
                  control: str, source: str, run_id: str, run_at: datetime,
                  weights: str | None = None, options: Options = DEFAULT_OPTIONS,
                  srm_threshold: float = 0.001) -> dict:
    """Analyse an outside experiment (file or table route) from its units frame."""
    arms = sorted(units["variant"].unique())
    if control not in arms:
        raise inputs.InputError(f"--control {control!r} is not an arm (arms: "
                                f"{', '.join(arms)})")
    if len(arms) < 2:
        raise inputs.InputError(f"only one arm ({arms[0]}): nothing to compare")
    variants = inputs.weights(weights, [control, *[a for a in arms if a != control]])
    stamp = {"run_id": run_id, "run_at": run_at, "experiment_id": experiment_id}
    meta = {"experiment_name": experiment_id}
    return _outcome(units, variants, experiment_id, plan, stamp, control=control,
                    options=options, srm_threshold=srm_threshold, meta=meta, source=source)


def finish(conn: db.Warehouse, outcomes: list[dict], report_path: str | None,
           single: bool) -> None:
    """Write the markdown reports, then append everything to schema ab in the caller's
    transaction."""
    for outcome in outcomes:
        path = report.report_file(report_path, outcome["run"]["experiment_id"], single=single)
        report.write(path, outcome)
        outcome["run"]["report_path"] = str(path)
    if outcomes:
        write_run(conn, _concat([o["results"] for o in outcomes]),
                  _concat([o["srm"] for o in outcomes]),
                  pd.DataFrame([o["run"] for o in outcomes]),
                  _concat([o.get("daily") for o in outcomes]))


def run(conn: db.Warehouse, experiments: Sequence[str], *, report_path: str | None = None,
        alpha: float = 0.05, srm_threshold: float = 0.001, options: Options | None = None,
        metrics_file: str | None = None, control: str = CONTROL) -> tuple[str, list[dict]]:
    """One run over the given mart experiments: analyse, write the markdown reports (to
    `report_path`: a folder, or a .md file for a single experiment; default output/ab), then
    append everything to schema ab in the caller's transaction. Returns (run_id, outcomes)."""
    options = options or Options(alpha=alpha)
    definitions = metric_defs.load(metrics_file)
    run_id, run_at = new_run()
    outcomes = []
    for experiment_id in experiments:
        outcome = analyze_experiment(conn, experiment_id, run_id, run_at,
                                     srm_threshold=srm_threshold, options=options,
                                     definitions=definitions, control=control)
        if outcome is not None:
            outcomes.append(outcome)
    finish(conn, outcomes, report_path, single=len(experiments) == 1)
    return run_id, outcomes
