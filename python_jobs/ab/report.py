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
    return "<1e-6" if float(x) < 1e-6 else format(float(x), ".4f")


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
    variants = ", ".join(f"{v} ({w:g}: {int(counts.get(v, 0)):,} users)" for v, w in zip(
        outcome["variants"]["variant"], outcome["variants"]["allocation_weight"], strict=True))
    days = run["retention_days"]
    return [
        f"- Hypothesis: {meta.get('hypothesis', '-')}",
        f"- Window: {meta.get('started_at', '-')} to {meta.get('ended_at', '-')} (UTC), "
        f"traffic share {_f(meta.get('traffic_share'), 'g')}",
        f"- Variants (planned weight: enrolled users): {variants}",
        f"- Unit: the user, from assigned_at (first session in the window) to the window end; "
        f"median window {_f(users['window_days'].median(), '.1f')} days. Pre-period of the same "
        f"length before assigned_at for CUPED ({users['has_full_pre_period'].mean():.0%} of "
        "users have a full pre-period in the data).",
        f"- Retention: a session in the 24 hours from {days} days after assigned_at, over the "
        f"{int(users['is_retained'].notna().sum()):,} users whose window covers it.",
        f"- Two-sided tests at alpha = {run['alpha']:g}; Holm (family-wise) and "
        "Benjamini-Hochberg (false discovery) adjusted over every metric and variant; "
        "significant = Holm p < alpha.",
    ]


def results_section(results: pd.DataFrame) -> list[str]:
    lines = ["| metric | method | variant | n | value | control | effect | 95% CI | "
             "relative | relative 95% CI | p | Holm p | BH p | significant |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in results[~results["is_control"].astype(bool)].itertuples():
        sig = "-" if row.is_significant is None or pd.isna(row.is_significant) else (
            "**yes**" if row.is_significant else "no")
        ci = "-" if pd.isna(row.ci_low) else f"[{_f(row.ci_low)}, {_f(row.ci_high)}]"
        rel_ci = ("-" if pd.isna(row.relative_ci_low) else
                  f"[{_f(row.relative_ci_low, '+.1%')}, {_f(row.relative_ci_high, '+.1%')}]")
        lines.append(
            f"| {row.metric} | {METHOD_WORDS.get(row.method, row.method)} | {row.variant} | "
            f"{row.n:,} | {_f(row.value)} | {_f(row.value_control)} | {_f(row.effect, '+.4g')} | "
            f"{ci} | {_f(row.relative_effect, '+.1%')} | {rel_ci} | {_p(row.p_value)} | "
            f"{_p(row.p_value_holm)} | {_p(row.p_value_bh)} | {sig} |")
    return lines


def verdicts(results: pd.DataFrame, srm_failed: bool) -> list[str]:
    lines = []
    if srm_failed:
        lines.append("- The sample ratio check failed: none of the verdicts below can be "
                     "trusted.")
    treated = results[~results["is_control"].astype(bool)]
    primary = treated[treated["adjustment_family"] == "primary"]
    for row in primary.itertuples():
        words = _metric_words(row.metric)
        ci = f"95% CI {_f(row.ci_low, '+.4g')} to {_f(row.ci_high, '+.4g')}"
        if row.is_significant:
            direction = "raises" if row.effect > 0 else "lowers"
            text = (f"{row.variant} {direction} {words} from {_f(row.value_control)} to "
                    f"{_f(row.value)} ({_f(row.relative_effect, '+.1%')}; {ci}); significant "
                    f"after Holm correction (p = {_p(row.p_value_holm)}).")
        else:
            text = (f"{row.variant}: no detectable change in {words} ({_f(row.value_control)} "
                    f"vs {_f(row.value)}, {ci}, Holm p = {_p(row.p_value_holm)}); the data "
                    "are consistent with no effect.")
        cuped = treated[(treated["method"] == "cuped_welch_t") & (treated["metric"] == row.metric)
                        & (treated["variant"] == row.variant)]
        if not cuped.empty:
            c = cuped.iloc[0]
            text += (f" CUPED (variance reduction {_f(c['variance_reduction'], '.0%')}): effect "
                     f"{_f(c['effect'], '+.4g')}, 95% CI {_f(c['ci_low'], '+.4g')} to "
                     f"{_f(c['ci_high'], '+.4g')}, Holm p = {_p(c['p_value_holm'])}.")
        lines.append(f"- {text}")
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
             f"{run['user_count']:,} enrolled users. Rows: ab.experiment_results, "
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
