"""A readable markdown report of one experiment's analysis run (output/ab/<experiment>.md).

Order: the sample-ratio verdict first (a mismatch means: do not read further), the design,
the results table with intervals and adjusted p-values, then a plain-English verdict per
metric and variant (primary method; CUPED noted when it sharpens the estimate).
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from python_jobs import config

DEFAULT_DIR = config.ROOT / "output" / "ab"

METRIC_WORDS = {
    "play_count": "plays per user",
    "listening_minutes": "listening minutes per user",
    "session_count": "sessions per user",
    "skip_rate": "play-weighted skip rate (skips / plays)",
}
METHOD_WORDS = {
    "welch_t": "Welch t", "cuped_welch_t": "CUPED Welch t", "ratio_delta_z": "delta-method z",
    "cuped_proportion_z": "CUPED z", "cuped_ratio_delta_z": "CUPED delta-method z",
    "two_proportion_z": "two-proportion z", "chi_square": "chi-square (all variants)",
}


def report_file(path: str | Path | None, experiment_id: str, *, single: bool) -> Path:
    """`path` is a folder (one <experiment>.md per experiment) or, for a single experiment,
    a file ending in .md; None means output/ab."""
    if path is None:
        return DEFAULT_DIR / f"{experiment_id}.md"
    path = Path(path)
    if single and path.suffix == ".md":
        return path
    return path / f"{experiment_id}.md"


def _f(x: object, spec: str = ".4g") -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)) or pd.isna(x):
        return "-"
    return format(float(x), spec)


def _p(x: object) -> str:
    if x is None or pd.isna(x):
        return "-"
    x = float(x)
    return "<1e-6" if x < 1e-6 else format(x, ".1e") if x < 1e-4 else format(x, ".4f")


def _metric_words(metric: str) -> str:
    if metric.startswith("retention_d"):
        return f"day-{metric.removeprefix('retention_d')} retention (share of users)"
    return METRIC_WORDS.get(metric, metric)


def srm_section(srm: pd.DataFrame) -> list[str]:
    first = srm.iloc[0]
    p, threshold = first["p_value"], first["threshold"]
    if bool(srm["is_mismatch"].any()):
        lines = [f"**FAIL: sample ratio mismatch** (chi-square p = {_p(p)}, threshold "
                 f"{threshold:g}). The users per variant do not match the planned weights: "
                 "assignment or logging is broken. Do not read the results below until the "
                 "cause is found."]
    else:
        lines = [f"**PASS**: users per variant match the planned weights (chi-square "
                 f"p = {_p(p)}, flagged below {threshold:g})."]
    lines += ["", "| variant | weight | expected users | observed users |", "|---|---|---|---|"]
    for row in srm.itertuples():
        lines.append(f"| {row.variant} | {_f(row.allocation_weight, 'g')} | "
                     f"{_f(row.expected_users, '.1f')} | {row.observed_users} |")
    return lines


def design_section(outcome: dict) -> list[str]:
    meta, run, users = outcome["meta"], outcome["run"], outcome["users"]
    counts = users["variant"].value_counts()
    variants = ", ".join(f"{v} ({w:g}: {int(counts.get(v, 0)):,} units)" for v, w in zip(
        outcome["variants"]["variant"], outcome["variants"]["allocation_weight"], strict=True))
    lines = []
    if "window_days" in users:  # the metrics mart
        days = run["retention_days"]
        lines += [
            f"- Hypothesis: {meta.get('hypothesis', '-')}",
            f"- Window: {meta.get('started_at', '-')} to {meta.get('ended_at', '-')} (UTC), "
            f"traffic share {_f(meta.get('traffic_share'), 'g')}",
            f"- Unit: the user, from assigned_at (first session in the window) to the window "
            f"end; median window {_f(users['window_days'].median(), '.1f')} days. Pre-period "
            f"of the same length before assigned_at for CUPED "
            f"({users['has_full_pre_period'].mean():.0%} of users have a full pre-period in "
            "the data).",
            f"- Retention: a session in the 24 hours from {days} days after assigned_at, over "
            f"the {int(users['is_retained'].notna().sum()):,} users whose window covers it."]
    else:
        lines.append(f"- Source: `{run.get('source')}`, one row per unit; control arm "
                     f"`{run.get('control_variant')}`.")
    lines.append(f"- Variants (planned weight: units): {variants}")
    plan = outcome.get("plan")
    if plan is not None:
        for role, words in (("goal", "Goal (primary) metrics"), ("guardrail", "Guardrails"),
                            ("secondary", "Secondary (exploratory) metrics")):
            names = [_metric_line(m) for m in plan.metrics if plan.role(m.name) == role]
            if names:
                lines.append(f"- {words}: {'; '.join(names)}")
    lines.append(
        f"- Two-sided tests at alpha = {run['alpha']:g}. Holm (family-wise) and "
        "Benjamini-Hochberg (false discovery) corrections run within each family: goal "
        "metrics across metrics and variants; guardrails on one-sided harm p-values; secondary "
        "metrics among themselves (exploratory). Significant = Holm p < alpha in the family.")
    return lines


def _metric_line(metric) -> str:
    parts = [f"`{metric.name}` ({metric.kind}"]
    if metric.direction == "decrease":
        parts.append("lower is better")
    if metric.covariates:
        parts.append(f"CUPED on {', '.join(metric.covariates)}")
    if metric.cap is not None:
        parts.append(f"capped at {metric.cap.describe()}")
    if metric.margin is not None:
        parts.append(f"non-inferiority margin {metric.margin:.1%}")
    return ", ".join(parts) + ")"


def results_section(results: pd.DataFrame) -> list[str]:
    lines = ["| role | metric | method | variant | n | value | control | effect | 95% CI | "
             "relative | p | family | Holm p | BH p | significant | P(beat control) | "
             "capped |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in results[~results["is_control"].astype(bool)].itertuples():
        sig = "-" if row.is_significant is None or pd.isna(row.is_significant) else (
            "**yes**" if row.is_significant else "no")
        ci = "-" if pd.isna(row.ci_low) else f"[{_f(row.ci_low)}, {_f(row.ci_high)}]"
        capped = "-" if pd.isna(getattr(row, "cap_value", None)) else (
            f"{int(row.capped_units)} at {_f(row.cap_value)}")
        lines.append(
            f"| {getattr(row, 'metric_role', '-')} | {row.metric} | "
            f"{METHOD_WORDS.get(row.method, row.method)} | {row.variant} | {row.n:,} | "
            f"{_f(row.value)} | {_f(row.value_control)} | {_f(row.effect, '+.4g')} | {ci} | "
            f"{_f(row.relative_effect, '+.1%')} | {_p(row.p_value)} | "
            f"{row.adjustment_family if isinstance(row.adjustment_family, str) else '-'} | "
            f"{_p(row.p_value_holm)} | {_p(row.p_value_bh)} | {sig} | "
            f"{_f(getattr(row, 'chance_to_beat_control', None), '.1%')} | {capped} |")
    return lines


def _family_words(row) -> str:
    size = "" if pd.isna(row.family_size) else f" of {int(row.family_size)} test" + (
        "s" if int(row.family_size) != 1 else "")
    return f"Holm over the {row.adjustment_family} family{size}"


def _goal_text(row, treated: pd.DataFrame) -> str:
    words = _metric_words(row.metric)
    ci = f"95% CI {_f(row.ci_low, '+.4g')} to {_f(row.ci_high, '+.4g')}"
    if row.is_significant:
        direction = "raises" if row.effect > 0 else "lowers"
        text = (f"{row.variant} {direction} {words} from {_f(row.value_control)} to "
                f"{_f(row.value)} ({_f(row.relative_effect, '+.1%')}; {ci}); significant, "
                f"p = {_p(row.p_value)}, {_family_words(row)}: p = {_p(row.p_value_holm)}.")
    else:
        text = (f"{row.variant}: no detectable change in {words} ({_f(row.value_control)} "
                f"vs {_f(row.value)}, {ci}, p = {_p(row.p_value)}, {_family_words(row)}: "
                f"p = {_p(row.p_value_holm)}); the data are consistent with no effect.")
    if not pd.isna(getattr(row, "chance_to_beat_control", None)):
        text += (f" Bayesian: chance to beat control {_f(row.chance_to_beat_control, '.1%')}, "
                 f"expected loss {_f(row.expected_loss, '.3%')} of the control value.")
    cuped = treated[treated["method"].str.startswith("cuped_")
                    & (treated["metric"] == row.metric) & (treated["variant"] == row.variant)]
    if not cuped.empty:
        c = cuped.iloc[0]
        text += (f" CUPED (variance reduction {_f(c['variance_reduction'], '.0%')}): effect "
                 f"{_f(c['effect'], '+.4g')}, 95% CI {_f(c['ci_low'], '+.4g')} to "
                 f"{_f(c['ci_high'], '+.4g')}, Holm p = {_p(c['p_value_holm'])} "
                 f"({c['adjustment_family']} family).")
    return text


def _guardrail_text(row) -> str:
    words = _metric_words(row.metric)
    if row.is_significant:
        text = (f"{row.variant} **harms** {words} ({_f(row.value_control)} to "
                f"{_f(row.value)}, {_f(row.relative_effect, '+.1%')}); one-sided harm p = "
                f"{_p(row.harm_p_value)}, {_family_words(row)}: p = {_p(row.p_value_holm)}.")
    else:
        text = (f"{row.variant}: no harm detected in {words} ({_f(row.value_control)} vs "
                f"{_f(row.value)}, {_f(row.relative_effect, '+.1%')}; one-sided harm p = "
                f"{_p(row.harm_p_value)}, {_family_words(row)}: p = {_p(row.p_value_holm)}).")
    if not pd.isna(getattr(row, "noninferiority_p_value", None)):
        shown = row.noninferiority_p_value_holm < row.alpha
        text += (f" Non-inferiority within {row.noninferiority_margin:.1%}: p = "
                 f"{_p(row.noninferiority_p_value)} (Holm {_p(row.noninferiority_p_value_holm)})"
                 f", {'shown' if shown else 'not shown'}.")
    return text


def verdicts(results: pd.DataFrame, srm_failed: bool) -> list[str]:
    lines = []
    if srm_failed:
        lines.append("- The sample ratio check failed: none of the verdicts below can be "
                     "trusted.")
    treated = results[~results["is_control"].astype(bool)]
    for role, title in (("goal", "Goal metrics (the decision)"),
                        ("guardrail", "Guardrails (one-sided tests for harm)"),
                        ("secondary", "Secondary metrics (exploratory, not for deciding)")):
        rows = treated[(treated["adjustment_family"] == role)]
        if rows.empty:
            continue
        lines.append(f"- **{title}**")
        for row in rows.itertuples():
            text = _guardrail_text(row) if role == "guardrail" else _goal_text(row, treated)
            lines.append(f"  - {text}")
    omnibus = treated[treated["method"] == "chi_square"]
    for row in omnibus.itertuples():
        lines.append(f"- {_metric_words(row.metric)} across all variants: chi-square "
                     f"p = {_p(row.p_value)} (unadjusted omnibus check).")
    return lines


def render(outcome: dict) -> str:
    run, meta = outcome["run"], outcome["meta"]
    srm = outcome["srm"]
    name = meta.get("experiment_name") or run["experiment_id"]
    lines = [f"# {name} (`{run['experiment_id']}`)", "",
             f"Run `{run['run_id']}` at {run['run_at']:%Y-%m-%d %H:%M:%S} UTC; "
             f"{run['user_count']:,} units. Rows: ab.experiment_results, "
             "ab.srm_checks, ab.runs.", "", "## Sample ratio check", "",
             *srm_section(srm), "", "## Design", "", *design_section(outcome), "",
             "## Results", "", "Effects are variant minus control; relative = variant / "
             "control - 1.", "", *results_section(outcome["results"]), "", "## Verdicts", "",
             *verdicts(outcome["results"], bool(srm["is_mismatch"].any())), ""]
    return "\n".join(lines)


def write(path: Path, outcome: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(outcome))
    return path
