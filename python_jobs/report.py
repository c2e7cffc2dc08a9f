"""One self-contained HTML report of the warehouse: KPIs, engagement, retention, funnel, skip
rates, models (schema ml) and experiments (schema ab).

    python -m python_jobs.report [--out output/report.html] [--database D]

Reads the marts and the result schemas through python_jobs.db and writes a single HTML file:
inline CSS, inline SVG charts (python_jobs.report_svg) and a small inline script, nothing
fetched from the network. Every chart is a `<figure class="chart" id="chart-...">`; the
script marks each figure data-rendered="true" when its SVG has drawn marks and sets
data-report-ready on <body>, which tests/python/test_report.py reads from headless Chromium.
Sections whose source is missing (no model run yet, no A/B analysis yet) say so instead.
"""

from __future__ import annotations

import argparse
import logging
from datetime import UTC, datetime
from decimal import Decimal
from html import escape
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import auc, roc_curve

from python_jobs import config, db, logs
from python_jobs import report_svg as svg

log = logging.getLogger(__name__)

DEFAULT_OUT = Path("output") / "report.html"
PRIMARY_METHODS = ("welch_t", "ratio_delta_z", "two_proportion_z")
ROC_POINTS = 200


# --- reading ------------------------------------------------------------------------------

def relation_exists(conn: db.Connection, schema: str, name: str) -> bool:
    """A table or view (the ml.latest_* and ab.latest_* results are views)."""
    return not db.read_sql(conn, "select 1 from information_schema.tables where "
                                 "table_schema = %s and table_name = %s",
                           (schema, name)).empty


def _read(conn: db.Connection, query: str, params: tuple | None = None) -> pd.DataFrame:
    """read_sql, with numbers that arrive as objects (NULLs, numeric) made numeric."""
    frame = db.read_sql(conn, query, params)
    for column in frame.columns:
        values = frame[column].dropna()
        if frame[column].dtype == object and not values.empty and values.map(
                lambda v: isinstance(v, (int, float, Decimal)) and not isinstance(v, bool)
        ).all():
            frame[column] = pd.to_numeric(frame[column])
    return frame


def read_marts(conn: db.Connection) -> dict[str, pd.DataFrame]:
    return {
        "dau_mau": _read(conn, "select activity_date, segment_type, segment_value, dau, wau, "
                               "mau, stickiness, is_full_window from marts.fct_dau_mau where "
                               "segment_type in ('overall', 'tier') order by activity_date"),
        "retention": _read(conn, "select cohort_start_date, segment_type, segment_value, "
                                 "period_number, cohort_user_count, active_user_count, "
                                 "retention_rate from marts.fct_retention_cohorts where "
                                 "cohort_grain = 'week' and period_unit = 'week' and "
                                 "segment_type in ('all', 'tier') "
                                 "order by cohort_start_date, period_number"),
        "funnel": _read(conn, "select stage_number, stage_name, run_count, "
                              "conversion_from_start_rate, conversion_from_previous_rate "
                              "from marts.fct_playlist_funnel where segment_type = 'all' "
                              "order by stage_number"),
        "dropoff": _read(conn, "select from_track_ordinal, at_risk_run_count, drop_off_rate, "
                               "is_largest_drop_off_step from marts.fct_playlist_dropoff "
                               "where segment_type = 'all' and drop_off_rate is not null "
                               "order by from_track_ordinal"),
        "skips": _read(conn, "select dimension, dimension_value, play_count, skip_count, "
                             "skip_rate from marts.fct_skip_rates "
                             "order by dimension, dimension_value"),
        "counts": _read(conn, "select (select count(*) from marts.dim_users) as users, "
                              "(select count(*) from marts.fct_sessions) as sessions"),
        "churn": _read(conn, "select churn_status, count(*) as users from "
                             "marts.fct_user_churn group by churn_status"),
    }


def read_ml(conn: db.Connection) -> dict[str, pd.DataFrame] | None:
    """The latest model runs, or None when python -m python_jobs.train has not run."""
    if not relation_exists(conn, "ml", "latest_model_runs"):
        return None
    runs = _read(conn, "select model_run_id as run_id, model_name as model, trained_at, "
                       "estimator, target_description as target, train_row_count as "
                       "train_rows, test_row_count as test_rows, test_start_date, "
                       "test_end_date from ml.latest_model_runs order by model")
    if runs.empty:
        return None
    return {
        "runs": runs,
        "metrics": _read(conn, "select model_name as model, split, metric, metric_value as "
                               "value from ml.latest_model_metrics order by model, split, "
                               "metric"),
        "skip_predictions": _read(conn, "select label, prediction from ml.latest_model_"
                                        "predictions where model_name = 'skip'"),
        "calibration": _read(conn, "select model_name as model, split, bin_number as bin, "
                                   "row_count, mean_predicted, observed_rate from "
                                   "ml.latest_calibration order by model, split, bin"),
        "coefficients": _read(conn, "select model_name as model, term_name as term, "
                                    "feature_name as feature, coefficient, importance, "
                                    "is_selected from ml.latest_model_coefficients "
                                    "where term_kind <> 'intercept'"),
    }


def read_ab(conn: db.Connection) -> dict[str, pd.DataFrame] | None:
    if not relation_exists(conn, "ab", "latest_experiment_results"):
        return None
    results = _read(conn, "select * from ab.latest_experiment_results "
                          "order by experiment_id, metric, method, is_control desc, variant")
    if results.empty:
        return None
    srm = _read(conn, "select experiment_id, variant, allocation_weight, observed_users, "
                      "expected_users, p_value, is_mismatch from ab.latest_srm_checks "
                      "order by experiment_id, variant") \
        if relation_exists(conn, "ab", "latest_srm_checks") else pd.DataFrame()
    return {"results": results, "srm": srm}


# --- pieces ----------------------------------------------------------------------------------

def figure(chart_id: str, title: str, svg_text: str, caption: str = "") -> str:
    note = f"<figcaption>{escape(caption)}</figcaption>" if caption else ""
    return (f'<figure class="chart" id="chart-{chart_id}"><h3>{escape(title)}</h3>'
            f"{svg_text}{note}</figure>")


def empty(section_id: str, text: str) -> str:
    return f'<p class="empty" id="{section_id}-empty">{escape(text)}</p>'


def table(frame: pd.DataFrame, table_id: str, formats: dict[str, svg.Format] | None = None,
          row_class: pd.Series | None = None) -> str:
    formats = formats or {}
    head = "".join(f"<th>{escape(str(c))}</th>" for c in frame.columns)
    rows = []
    for i, (_index, row) in enumerate(frame.iterrows()):
        cells = []
        for column, value in row.items():
            if value is None or (isinstance(value, float) and np.isnan(value)):
                text = ""
            elif column in formats:
                text = formats[column](value)
            else:
                text = str(value)
            cells.append(f"<td>{escape(text)}</td>")
        cls = f' class="{row_class.iloc[i]}"' if row_class is not None and row_class.iloc[i] \
            else ""
        rows.append(f"<tr{cls}>{''.join(cells)}</tr>")
    return (f'<table id="{table_id}" class="data"><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table>")


def last_complete_day(days: pd.Series) -> object:
    """The newest day whose data is complete: the day before the newest day with plays, whose
    events may still be arriving (the only day there is, when there is one)."""
    ordered = sorted(set(days))
    return ordered[-2] if len(ordered) > 1 else ordered[-1]


def kpis(marts: dict[str, pd.DataFrame], ml: dict | None, ab: dict | None) -> str:
    overall = marts["dau_mau"][marts["dau_mau"]["segment_type"] == "overall"]
    items: list[tuple[str, str, str]] = []
    if not overall.empty:
        day = last_complete_day(overall["activity_date"])
        last = overall[overall["activity_date"] == day].iloc[-1]
        items += [("DAU", f"{int(last['dau']):,}", f"on {day}, the last complete day"),
                  ("WAU", f"{int(last['wau']):,}", "trailing 7 days"),
                  ("MAU", f"{int(last['mau']):,}", "trailing 28 days"),
                  ("Stickiness", svg.pct(float(last["stickiness"] or 0)), "DAU / MAU")]
    counts = marts["counts"].iloc[0]
    tiers = marts["skips"][marts["skips"]["dimension"] == "tier"]
    plays = int(tiers["play_count"].sum())
    items += [("Users", f"{int(counts['users']):,}", "accounts"),
              ("Sessions", f"{int(counts['sessions']):,}", "valid plays only"),
              ("Plays", f"{plays:,}", "valid plays")]
    if plays:
        items.append(("Skip rate", svg.pct(tiers["skip_count"].sum() / plays),
                      "skipped / plays"))
    churn = marts["churn"].set_index("churn_status")["users"]
    active, churned = int(churn.get("active", 0)), int(churn.get("churned", 0))
    if active + churned:
        items.append(("Churned", svg.pct(churned / (active + churned)),
                      "of users who ever played"))
    if ml is not None:
        auc = ml["metrics"].query("model == 'skip' and split == 'test' and metric == 'roc_auc'")
        if not auc.empty:
            items.append(("Skip model AUC", f"{auc['value'].iloc[0]:.3f}", "held-out days"))
    if ab is not None:
        res = ab["results"]
        significant = res[res["is_significant"].fillna(False).astype(bool)
                          & res["method"].isin(PRIMARY_METHODS)]
        items.append(("Experiments", str(res["experiment_id"].nunique()),
                      f"{len(significant)} significant result(s) (Holm)"))
    cards = "".join(f'<div class="kpi"><div class="kpi-label">{escape(a)}</div>'
                    f'<div class="kpi-value">{escape(b)}</div>'
                    f'<div class="kpi-note">{escape(c)}</div></div>' for a, b, c in items)
    return f'<section id="kpis"><h2>Key numbers</h2><div class="kpi-grid">{cards}</div></section>'


def engagement_section(marts: dict[str, pd.DataFrame]) -> str:
    frame = marts["dau_mau"]
    overall = frame[frame["segment_type"] == "overall"]
    series = {name.upper(): list(zip(overall["activity_date"], overall[name].astype(float),
                                     strict=True)) for name in ("dau", "wau", "mau")}
    partial = (f" The newest day, {overall['activity_date'].max()}, is partial: its events may "
               "still be arriving." if overall["activity_date"].nunique() > 1 else "")
    parts = [figure("dau-mau", "Daily, weekly and monthly active users", svg.line_chart(
        series, label="DAU WAU MAU", y_label="active users"),
        "MAU counts the trailing 28 days; the first 27 days of data understate it." + partial)]
    tiers = frame[(frame["segment_type"] == "tier") & frame["is_full_window"].astype(bool)]
    sticky = {f"tier {tier}": list(zip(g["activity_date"], g["stickiness"].astype(float),
                                       strict=True))
              for tier, g in tiers.groupby("segment_value")}
    parts.append(figure("stickiness", "Stickiness (DAU / MAU) by tier", svg.line_chart(
        sticky, label="stickiness", y_format=svg.pct, y_label="DAU / MAU"),
        "Days with a complete 28-day window only."))
    return f'<section id="engagement"><h2>Engagement</h2>{"".join(parts)}</section>'


def retention_section(marts: dict[str, pd.DataFrame]) -> str:
    frame = marts["retention"]
    overall = frame[frame["segment_type"] == "all"]
    if overall.empty:
        return ('<section id="retention"><h2>Retention</h2>'
                + empty("retention", "No cohort has a fully observed week yet.") + "</section>")
    rows = [str(d) for d in sorted(overall["cohort_start_date"].unique())]
    cols = [str(p) for p in sorted(overall["period_number"].unique())]
    values = {(str(r.cohort_start_date), str(r.period_number)): float(r.retention_rate)
              for r in overall.itertuples()}
    sizes = {str(r.cohort_start_date): f"n={int(r.cohort_user_count)}"
             for r in overall.itertuples()}
    parts = [figure("retention-heatmap", "Weekly signup cohorts: active N weeks after signup",
                    svg.heatmap(rows, cols, values, label="retention heatmap",
                                row_notes=sizes),
                    "Rows: signup week (cohort size); columns: weeks since signup. Empty "
                    "cells are weeks the cohort has not fully lived through yet.")]
    tiers = frame[frame["segment_type"] == "tier"].groupby(
        ["segment_value", "period_number"], as_index=False)[
        ["active_user_count", "cohort_user_count"]].sum()
    curves = {f"tier {tier}": list(zip(g["period_number"].astype(float),
                                       (g["active_user_count"] / g["cohort_user_count"])
                                       .astype(float), strict=True))
              for tier, g in tiers.groupby("segment_value")}
    curves["all users"] = [
        (float(p), float(g["active_user_count"].sum() / g["cohort_user_count"].sum()))
        for p, g in overall.groupby("period_number")]
    parts.append(figure("retention-curves", "Retention curves (cohorts pooled by size)",
                        svg.line_chart(curves, label="retention curves", y_format=svg.pct,
                                       y_range=(0.0, 1.0), points=True,
                                       x_label="weeks since signup", y_label="retained"),
                        "Sum of active users over sum of cohort users, per week since signup."))
    return f'<section id="retention"><h2>Retention</h2>{"".join(parts)}</section>'


def funnel_section(marts: dict[str, pd.DataFrame]) -> str:
    funnel, dropoff = marts["funnel"], marts["dropoff"]
    parts = [figure("playlist-funnel", "Playlist completion funnel", svg.bar_chart(
        funnel["stage_name"].tolist(), funnel["run_count"].astype(float).tolist(),
        label="playlist funnel",
        notes=[f"{svg.pct(a)} of starts, {svg.pct(b)} of prev." for a, b in zip(
            funnel["conversion_from_start_rate"], funnel["conversion_from_previous_rate"],
            strict=True)]), "Playlist runs reaching each stage (all segments).")]
    parts.append(figure("playlist-dropoff", "Drop-off after track k", svg.column_chart(
        [str(k) for k in dropoff["from_track_ordinal"]],
        dropoff["drop_off_rate"].astype(float).tolist(), label="drop-off by track",
        value_format=svg.pct, highlight=dropoff["is_largest_drop_off_step"].astype(bool)
        .tolist(), y_label="P(stop at k)"),
        "Runs that could go on (not finished, not cut by the session cap); red: the "
        "largest drop-off with enough runs at risk."))
    return f'<section id="funnel"><h2>Playlist funnel</h2>{"".join(parts)}</section>'


def skip_section(marts: dict[str, pd.DataFrame]) -> str:
    skips = marts["skips"]

    def of(dimension: str) -> pd.DataFrame:
        return skips[skips["dimension"] == dimension]

    genre = of("genre").sort_values("skip_rate", ascending=False)
    parts = [figure("skip-genre", "Skip rate by genre", svg.bar_chart(
        genre["dimension_value"].tolist(), genre["skip_rate"].astype(float).tolist(),
        label="skip rate by genre", value_format=svg.pct,
        notes=[f"({n:,} plays)" for n in genre["play_count"]]))]
    hour = of("hour_of_day")
    parts.append(figure("skip-hour", "Skip rate by hour of day (UTC)", svg.column_chart(
        hour["dimension_value"].tolist(), hour["skip_rate"].astype(float).tolist(),
        label="skip rate by hour", value_format=svg.pct, y_label="skip rate")))
    segments = skips[skips["dimension"].isin(["tier", "context_type", "position_band",
                                              "weekday"])]
    parts.append(figure("skip-segment", "Skip rate by segment", svg.bar_chart(
        [f"{d}: {v}" for d, v in zip(segments["dimension"], segments["dimension_value"],
                                      strict=True)],
        segments["skip_rate"].astype(float).tolist(), label="skip rate by segment",
        value_format=svg.pct, label_width=230,
        notes=[f"({n:,} plays)" for n in segments["play_count"]]),
        "position_band: position of the play in its session."))
    return f'<section id="skips"><h2>Skip rates</h2>{"".join(parts)}</section>'


def roc_points(labels: np.ndarray, scores: np.ndarray,
               max_points: int = ROC_POINTS) -> tuple[list[tuple[float, float]], float]:
    """ROC curve (false positive rate, true positive rate) from scikit-learn, thinned to
    about max_points points for the chart, and its area."""
    fpr, tpr, _ = roc_curve(labels, scores, drop_intermediate=False)
    keep = np.unique(np.linspace(0, fpr.size - 1, min(max_points, fpr.size)).astype(int))
    return [(float(fpr[i]), float(tpr[i])) for i in keep], float(auc(fpr, tpr))


ORACLE_METRICS = ("roc_auc", "log_loss", "brier", "calibration_max_gap", "r2", "mae_seconds",
                  "rmse_seconds")


def oracle_frame(metrics: pd.DataFrame) -> pd.DataFrame:
    """Per model and held-out metric: the model's value, its challenger's, the oracle's
    (python_jobs/train/oracle.py) and the share of the oracle gap the model closed. Empty
    when no run had generator truth."""
    rows = []
    for model, group in metrics[metrics["split"] == "test"].groupby("model"):
        values = dict(zip(group["metric"], group["value"], strict=True))
        if not values.get("oracle_available"):
            continue
        for metric in ORACLE_METRICS:
            if f"oracle_{metric}" in values and metric in values:
                rows.append({"model": model, "metric": metric, "model_value": values[metric],
                             "challenger": values.get(f"challenger_{metric}", np.nan),
                             "oracle": values[f"oracle_{metric}"],
                             "gap_closed": values.get(f"oracle_gap_closed_{metric}", np.nan)})
    return pd.DataFrame(rows, columns=["model", "metric", "model_value", "challenger",
                                       "oracle", "gap_closed"])


def ml_section(ml: dict | None) -> str:
    title = "<h2>Models</h2>"
    if ml is None:
        return (f'<section id="models">{title}'
                + empty("ml", "No model run yet: run python -m python_jobs.train to fill "
                              "schema ml.") + "</section>")
    runs = ml["runs"]
    run_table = table(runs[["model", "run_id", "estimator", "target", "train_rows",
                            "test_rows", "test_start_date", "test_end_date"]], "ml-runs",
                      {"train_rows": lambda v: f"{int(v):,}", "test_rows": lambda v:
                       f"{int(v):,}"})
    metrics = ml["metrics"]
    beside = metrics["metric"].str.startswith(("oracle_", "challenger_"))
    wide = metrics[metrics["split"].isin(["train", "test"]) & ~beside].pivot_table(
        index=["model", "metric"], columns="split", values="value").reset_index()
    metric_table = table(wide, "ml-metrics", {c: lambda v: f"{v:,.4f}" for c in
                                              ("train", "test")})
    parts = [run_table, "<h3>Metrics (train and held-out test days)</h3>", metric_table,
             "<h3>Held-out: model, challenger and the generator's oracle</h3>"]
    oracle = oracle_frame(metrics)
    if oracle.empty:
        parts.append(empty("ml-oracle", "The data carry no generator truth (real data): "
                                        "no oracle to compare with."))
    else:
        parts.append(table(oracle, "ml-oracle", {
            c: (lambda v: "" if pd.isna(v) else f"{v:,.4f}")
            for c in ("model_value", "challenger", "oracle")} | {
            "gap_closed": lambda v: "" if pd.isna(v) else f"{v:.1%}"}))
    predictions = ml["skip_predictions"].dropna()
    if not predictions.empty and predictions["label"].nunique() == 2:
        points, auc = roc_points(predictions["label"].to_numpy(float),
                                 predictions["prediction"].to_numpy(float))
        parts.append(figure("roc", "Skip model: ROC curve (held-out plays)", svg.line_chart(
            {f"skip model (AUC {auc:.3f})": points}, label="ROC curve", y_format=svg.num,
            x_format=lambda v: f"{v:.1f}", y_range=(0.0, 1.0), diagonal=True,
            x_label="false positive rate", y_label="true positive rate", height=380),
            f"{len(predictions):,} held-out plays; dashed: a random score."))
    else:
        parts.append(empty("ml-roc", "No held-out skip predictions with both classes."))
    calibration = ml["calibration"]
    test_cal = calibration[(calibration["model"] == "skip") & (calibration["split"] == "test")]
    if not test_cal.empty:
        hi = float(max(test_cal["mean_predicted"].max(), test_cal["observed_rate"].max()))
        parts.append(figure("calibration", "Skip model: calibration (held-out deciles)",
                            svg.line_chart({"observed skip rate": list(zip(
                                test_cal["mean_predicted"].astype(float),
                                test_cal["observed_rate"].astype(float), strict=True))},
                                label="calibration", y_format=svg.pct, x_format=svg.pct,
                                y_range=(0.0, hi), diagonal=True, points=True,
                                x_label="mean predicted P(skip)",
                                y_label="observed skip rate", height=380),
                            "One point per decile of predicted P(skip); on the dashed line "
                            "the model is calibrated."))
    else:
        parts.append(empty("ml-calibration", "No calibration rows for the skip model."))
    coefficients = ml["coefficients"]
    for model in sorted(coefficients["model"].unique()):
        terms = coefficients[(coefficients["model"] == model)
                             & coefficients["is_selected"].fillna(True).astype(bool)]
        top = terms.nlargest(15, "importance")
        parts.append(figure(f"importance-{model}", f"{model} model: largest standardized "
                            "coefficients", svg.bar_chart(
                                top["term"].tolist(), top["importance"].astype(float).tolist(),
                                label=f"feature importance {model}", label_width=330,
                                notes=[("+" if c >= 0 else "-") for c in top["coefficient"]]),
                            "|coefficient| on standardized features (one-hot terms as is); "
                            "the sign is the direction of the effect."))
    return f'<section id="models">{title}{"".join(parts)}</section>'


def ab_section(ab: dict | None) -> str:
    title = "<h2>Experiments</h2>"
    if ab is None:
        return (f'<section id="experiments">{title}'
                + empty("ab", "No A/B analysis yet: run python -m python_jobs.ab analyze "
                              "--all.") + "</section>")
    parts = []
    srm = ab["srm"]
    if not srm.empty:
        verdict = srm.groupby("experiment_id").agg(
            p_value=("p_value", "max"), users=("observed_users", "sum"),
            is_mismatch=("is_mismatch", "any")).reset_index()
        verdict["verdict"] = np.where(verdict["is_mismatch"], "MISMATCH: do not read",
                                      "ok")
        parts += ["<h3>Sample-ratio checks</h3>", table(
            verdict[["experiment_id", "users", "p_value", "verdict"]], "ab-srm",
            {"p_value": lambda v: f"{v:.4g}"},
            row_class=pd.Series(np.where(verdict["is_mismatch"], "bad", "")))]
    results = ab["results"]
    treated = results[~results["is_control"].astype(bool)
                      & results["method"].isin([*PRIMARY_METHODS, "cuped_welch_t"])].copy()

    def ci(lo: str, hi: str, fmt: svg.Format) -> pd.Series:
        return treated.apply(lambda r: "" if pd.isna(r[lo]) else
                             f"[{fmt(r[lo])}, {fmt(r[hi])}]", axis=1)

    # guardrail rows are one-sided tests for harm: their "significant" means harm found
    role = (treated["metric_role"] if "metric_role" in treated
            else pd.Series("goal", index=treated.index)).fillna("goal")
    flagged = treated["is_significant"].fillna(False).astype(bool)
    harm = flagged & (role == "guardrail")
    shown = pd.DataFrame({
        "experiment": treated["experiment_id"], "role": role, "metric": treated["metric"],
        "method": treated["method"], "variant": treated["variant"], "n": treated["n"],
        "control": treated["value_control"], "treatment": treated["value"],
        "effect": treated["effect"], "95% CI": ci("ci_low", "ci_high", svg.num),
        "relative": treated["relative_effect"],
        "relative CI": ci("relative_ci_low", "relative_ci_high", svg.pct),
        "p": treated["p_value"], "p (Holm)": treated["p_value_holm"],
        "significant": np.where(harm, "harm", np.where(flagged, "yes", "")),
    })
    parts += ["<h3>Results (treatment vs control, latest run)</h3>", table(
        shown, "ab-results", {"control": svg.num, "treatment": svg.num, "effect": svg.num,
                              "relative": svg.pct, "p": lambda v: f"{v:.4f}",
                              "p (Holm)": lambda v: f"{v:.4f}", "n": lambda v: f"{int(v):,}"},
        row_class=pd.Series(np.where(shown["significant"] == "yes", "good",
                                     np.where(shown["significant"] == "harm", "bad", ""))))]
    primary = treated[treated["method"].isin(PRIMARY_METHODS)
                      & treated["relative_ci_low"].notna()]
    rows = [(f"{r.experiment_id} / {r.metric} / {r.variant}", float(r.relative_effect),
             float(r.relative_ci_low), float(r.relative_ci_high), bool(r.is_significant))
            for r in primary.itertuples()]
    parts.append(figure("ab-forest", "Relative effects with 95% intervals", svg.forest_plot(
        rows, label="A/B forest plot", x_label="treatment / control - 1"),
        "Primary method per metric (Welch, ratio delta method, two-proportion z); red: "
        "significant after Holm's correction within the metric's decision family (goal, "
        "guardrail: one-sided harm, secondary) of the experiment."))
    return f'<section id="experiments">{title}{"".join(parts)}</section>'


CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1a202c;
background:#f7fafc}
header{background:#1a365d;color:#fff;padding:18px 32px}header h1{margin:0;font-size:24px}
header p{margin:4px 0 0;opacity:.85;font-size:13px}
main{max-width:1000px;margin:0 auto;padding:8px 24px 48px}
section{background:#fff;border-radius:8px;padding:8px 20px 16px;margin:18px 0;
box-shadow:0 1px 3px rgba(0,0,0,.08);overflow-x:auto}
h2{font-size:19px;border-bottom:1px solid #e2e8f0;padding-bottom:6px}h3{font-size:15px}
figure.chart{margin:12px 0 20px}figure.chart svg{width:100%;height:auto;display:block}
figcaption{font-size:12px;color:#4a5568}
.kpi-grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(150px,1fr));gap:10px}
.kpi{background:#ebf8ff;border-radius:6px;padding:10px}
.kpi-label{font-size:12px;color:#2c5282}.kpi-value{font-size:22px;font-weight:600}
.kpi-note{font-size:11px;color:#4a5568}
table.data{border-collapse:collapse;font-size:12px;width:100%;margin:6px 0 12px}
table.data th,table.data td{border-bottom:1px solid #e2e8f0;padding:3px 6px;text-align:left}
table.data th{background:#edf2f7}tr.good td{background:#f0fff4}tr.bad td{background:#fff5f5}
p.empty{color:#744210;background:#fffff0;padding:10px;border-radius:6px}
.grid{stroke:#e2e8f0}.axis{stroke:#a0aec0}.reference{stroke:#a0aec0;stroke-dasharray:5 4}
.tick,.legend,.value{font-size:11px;fill:#4a5568}.axis-label{font-size:12px;fill:#2d3748}
.cell-text{font-size:10px}
"""

# Marks every chart whose SVG drew at least one mark and has a size, then flags the body.
SCRIPT = """
(function () {
  var figures = document.querySelectorAll('figure.chart');
  var rendered = 0, failed = [];
  figures.forEach(function (f) {
    var s = f.querySelector('svg');
    var box = s ? s.getBoundingClientRect() : null;
    var ok = !!s && s.querySelectorAll('.mark').length > 0 && box.width > 0 && box.height > 0;
    f.setAttribute('data-rendered', ok ? 'true' : 'false');
    if (ok) { rendered++; } else { failed.push(f.id); }
  });
  document.body.setAttribute('data-charts-expected', String(figures.length));
  document.body.setAttribute('data-charts-rendered', String(rendered));
  document.body.setAttribute('data-charts-failed', failed.join(' '));
  document.body.setAttribute('data-report-ready', 'true');
})();
"""


def render(marts: dict[str, pd.DataFrame], ml: dict | None, ab: dict | None,
           database: str) -> str:
    dates = marts["dau_mau"]["activity_date"]
    span = f"{dates.min()} to {dates.max()}" if not dates.empty else "no activity"
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    body = "".join([kpis(marts, ml, ab), engagement_section(marts), retention_section(marts),
                    funnel_section(marts), skip_section(marts), ml_section(ml),
                    ab_section(ab)])
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>Streaming warehouse report</title><style>{CSS}</style></head>"
            f'<body><header><h1>Streaming warehouse report</h1><p>database '
            f"{escape(database)} &middot; activity {escape(span)} &middot; generated "
            f"{generated}</p></header><main>{body}</main><script>{SCRIPT}</script>"
            f"</body></html>\n")


def build(conn: db.Connection, database: str) -> str:
    return render(read_marts(conn), read_ml(conn), read_ab(conn), database)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m python_jobs.report",
                                     description=__doc__.splitlines()[0])
    config.add_common_args(parser)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help=f"HTML file to write (default {DEFAULT_OUT})")
    args = parser.parse_args(argv)
    logs.setup(args.log_level)
    database = config.settings(args.database).database
    with db.connect(database) as conn:
        html = build(conn, database)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(html, encoding="utf-8")
    log.info("wrote %s (%d kB)", args.out, len(html.encode()) // 1024)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
