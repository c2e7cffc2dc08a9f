"""Every metric of a plan over a per-unit frame: the result rows of one experiment.

For each metric (metrics.Metric) and each variant against the control:
  the primary row   Welch t (mean), two-proportion z (proportion) or delta-method z (ratio),
                    on the capped values when the metric has a cap
  a CUPED row       when the metric has covariates (regression.py): cuped_welch_t,
                    cuped_proportion_z or cuped_ratio_delta_z
  a chi-square row  over all variants, for proportions (omnibus, unadjusted)
plus, per treatment row, the one-sided harm p-value, the non-inferiority p-value when the
metric has a margin, the Bayesian read-out (decision.py) and, when asked, the sequential
p-value and interval at this look (sequential.py).

Decision families (adjust): goal metrics, guardrails and secondary metrics are corrected
separately, Holm and Benjamini-Hochberg across the family's metrics and treatment variants.
Goal and secondary families use the two-sided p-values; the guardrail family uses the harm
p-values (and, where margins exist, corrects the non-inferiority p-values too). CUPED rows are
corrected in a copy of their family where they replace their metric's unadjusted rows
(`<role>_cuped`). is_significant = Holm p < alpha within the row's family.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from python_jobs.ab import decision, regression, sequential, stats
from python_jobs.ab.metrics import Metric, Plan, cap_values
from python_jobs.ab.sequential import DEFAULT_TUNING

log = logging.getLogger(__name__)

PRIMARY_METHODS = ("welch_t", "ratio_delta_z", "two_proportion_z")
STAT_FIELDS = ("n", "value", "n_control", "value_control", "effect", "ci_low", "ci_high",
               "relative_effect", "relative_ci_low", "relative_ci_high", "statistic", "df",
               "p_value", "effect_size", "achieved_power", "variance_reduction")


@dataclass(frozen=True)
class Options:
    alpha: float = 0.05
    prior_sd: float | None = None  # proper prior on the relative lift; None = flat
    sequential: str | None = None  # None, "always_valid" or "group"
    looks: int = 1  # group sequential: planned looks, equally spaced
    look: int = 1  # group sequential: this look
    spending: str = "obrien_fleming"
    tuning: float = DEFAULT_TUNING
    planned_units: float | None = None  # daily monitor: planned units of control + variant


DEFAULT_OPTIONS = Options()


def _num(x: object) -> float | None:
    return stats._num(x)


def _values(units: pd.DataFrame, column: str, order: Sequence[str]) -> dict[str, np.ndarray]:
    return {v: units.loc[units["variant"] == v, column].to_numpy(dtype=float) for v in order}


def _compare(kind: str, c: np.ndarray, t: np.ndarray, dc: np.ndarray | None,
             dt: np.ndarray | None, alpha: float) -> stats.Comparison:
    if kind == "mean":
        return stats.welch_t_test(c, t, alpha=alpha)
    if kind == "proportion":
        if not (np.isin(c, (0.0, 1.0)).all() and np.isin(t, (0.0, 1.0)).all()):
            raise ValueError("a proportion needs 0/1 values per unit")
        return stats.proportion_z_test(c.sum(), c.size, t.sum(), t.size, alpha=alpha)
    return stats.ratio_test(c, dc, t, dt, alpha=alpha)


def _row(r: stats.Comparison, variant: str, *, is_control: bool = False) -> dict:
    if is_control:
        return {"variant": variant, "is_control": True, "method": r.method,
                "n": int(r.n_control), "value": float(r.value_control),
                "n_control": int(r.n_control), "value_control": float(r.value_control),
                "variance_reduction": _num(r.variance_reduction)}
    return {"variant": variant, "is_control": False, "method": r.method,
            "n": int(r.n_treatment), "value": float(r.value_treatment),
            "n_control": int(r.n_control), "value_control": float(r.value_control),
            "effect": _num(r.effect), "ci_low": _num(r.ci_low), "ci_high": _num(r.ci_high),
            "relative_effect": _num(r.relative_effect),
            "relative_ci_low": _num(r.relative_ci_low),
            "relative_ci_high": _num(r.relative_ci_high), "statistic": _num(r.statistic),
            "df": _num(r.df), "p_value": _num(r.p_value), "effect_size": _num(r.effect_size),
            "effect_size_kind": r.effect_size_kind, "achieved_power": _num(r.achieved_power),
            "variance_reduction": _num(r.variance_reduction), "se": _num(r.se)}


def _readouts(row: dict, r: stats.Comparison, metric: Metric, options: Options) -> dict:
    """Harm, non-inferiority, Bayesian and sequential columns of a treatment row."""
    out = {"harm_p_value": _num(decision.harm_p_value(r, metric.direction))}
    if metric.margin is not None:
        out["noninferiority_margin"] = metric.margin
        out["noninferiority_p_value"] = _num(decision.noninferiority_p_value(
            r, metric.margin, metric.direction))
    if row.get("relative_effect") is not None and row.get("relative_ci_low") is not None:
        bayes = decision.bayes(row["relative_effect"], decision.lift_se(r, options.alpha),
                               metric.direction, prior_sd=options.prior_sd,
                               alpha=options.alpha)
        out.update({k: _num(v) for k, v in bayes.items()})
        out["prior_sd"] = options.prior_sd
    if options.sequential and row.get("se"):
        out.update(_sequential(row, options))
    return out


def _sequential(row: dict, options: Options) -> dict:
    effect, se = np.array([row["effect"]]), np.array([row["se"]])
    if options.sequential == "always_valid":
        result = sequential.always_valid(effect, se**2, np.array([row["n"] + row["n_control"]]),
                                         alpha=options.alpha, tuning=options.tuning)
        return {"sequential_method": "always_valid", "p_value_sequential":
                _num(result["p_value"][0]), "ci_low_sequential": _num(result["ci_low"][0]),
                "ci_high_sequential": _num(result["ci_high"][0]),
                "is_significant_sequential": bool(result["reject"][0])}
    if not 1 <= options.look <= options.looks:
        raise ValueError(f"--look {options.look} outside 1..{options.looks}")
    fractions = np.arange(1, options.look + 1) / options.looks
    bound = sequential.boundaries(fractions, options.alpha, options.spending)[-1]
    z = row["effect"] / row["se"]
    return {"sequential_method": f"group_{options.spending}", "p_value_sequential": None,
            "sequential_boundary": _num(bound),
            "ci_low_sequential": _num(row["effect"] - bound * row["se"]),
            "ci_high_sequential": _num(row["effect"] + bound * row["se"]),
            "is_significant_sequential": bool(abs(z) >= bound)}


def metric_rows(units: pd.DataFrame, plan: Plan, order: Sequence[str], control: str,
                experiment_id: str, options: Options = DEFAULT_OPTIONS) -> pd.DataFrame:
    """Rows of every metric and method for one experiment, before the family corrections.
    `units`: one row per unit with `variant` and the plan's columns as floats; `order`:
    variants to compare, control first; variants with fewer than 2 units are left out."""
    first_row = units.iloc[0].to_dict() if len(units) else {}
    frames = []
    for metric in plan.metrics:
        try:
            frames += _metric_frames(units, metric, plan.role(metric.name), order, control,
                                     experiment_id, options, first_row)
        except ValueError as error:
            log.warning("%s/%s skipped: %s", experiment_id, metric.name, error)
    if not frames:  # a thin experiment must not stop the run over the others
        log.warning("%s: no metric has two units in the control and another variant",
                    experiment_id)
        return pd.DataFrame(columns=["experiment_id", "metric", "variant", "is_control",
                                     "method", "p_value", "alpha", "metric_role"])
    return pd.concat([f for f in frames if not f.empty], ignore_index=True)


def _metric_frames(units: pd.DataFrame, metric: Metric, role: str, order: Sequence[str],
                   control: str, experiment_id: str, options: Options,
                   first_row: dict) -> list[pd.DataFrame]:
    name = metric.output_name(first_row)
    own = metric.expressions[:2] if metric.kind == "ratio" else metric.expressions[:1]
    data = units.dropna(subset=list(own))
    if len(data) < len(units) and metric.kind != "proportion":
        log.warning("%s/%s: %d units without a value left out", experiment_id, name,
                    len(units) - len(data))
    present = [v for v in order if (data["variant"] == v).sum() >= 2]
    if control not in present or len(present) < 2:
        raise ValueError("not enough units per variant")
    values = _values(data, own[0], present)
    capped = cap_values(values, metric.cap)
    denominators = None
    capped_flags = capped.capped_units
    cap_value = capped.threshold
    if metric.kind == "ratio":
        den = cap_values(_values(data, own[1], present), metric.cap)
        denominators = den.values
        capped_flags = {v: capped_flags[v] | den.capped_units[v] for v in present}
    common = {"experiment_id": experiment_id, "metric": name, "control_variant": control,
              "metric_kind": metric.kind, "metric_role": role, "direction": metric.direction,
              "alpha": options.alpha, "cap_value": cap_value,
              "cap_rule": None if metric.cap is None else metric.cap.describe()}
    treatments = [v for v in present if v != control]
    comparisons = []
    for v in treatments:
        r = _compare(metric.kind, capped.values[control], capped.values[v],
                     None if denominators is None else denominators[control],
                     None if denominators is None else denominators[v], options.alpha)
        comparisons.append((v, r))
    rows = _arm_rows(comparisons, control, metric, options, capped_flags)
    frames = [pd.DataFrame(rows).assign(**common)]
    if metric.covariates:
        frames.append(_cuped_frame(data, metric, present, control, capped.values, denominators,
                                   capped_flags, options, common))
    if metric.kind == "proportion":
        frames.append(_chi_square_frame(capped.values, present, control, common))
    return frames


def _arm_rows(comparisons: list, control: str, metric: Metric, options: Options,
              capped_flags: dict) -> list[dict]:
    """The control's row (from the first comparison), then one row per treatment arm with
    its read-outs and capped-unit counts."""
    rows: list[dict] = []
    for i, (v, r) in enumerate(comparisons):
        if i == 0:
            rows.append(_row(r, control, is_control=True)
                        | {"capped_units": int(capped_flags[control].sum())})
        row = _row(r, v)
        row.update(_readouts(row, r, metric, options))
        row["capped_units"] = int(capped_flags[v].sum())
        row["capped_units_control"] = int(capped_flags[control].sum())
        rows.append(row)
    return rows


def _cuped_frame(data: pd.DataFrame, metric: Metric, present: Sequence[str], control: str,
                 values: dict, denominators: dict | None, capped_flags: dict,
                 options: Options, common: dict) -> pd.DataFrame:
    covariates = [_values(data, c, present) for c in metric.covariates]
    if any(np.isnan(c[v]).any() for c in covariates for v in present):
        log.warning("%s/%s: a covariate has missing values: CUPED skipped",
                    common["experiment_id"], common["metric"])
        return pd.DataFrame()
    matrices = {v: regression.covariate_matrix([c[v] for c in covariates]) for v in present}
    try:
        fit = regression.fit(metric.kind, values, matrices, denominators)
    except ValueError as error:  # e.g. a constant pre-period: CUPED cannot help
        log.warning("%s/%s/cuped skipped: %s", common["experiment_id"], common["metric"],
                    error)
        return pd.DataFrame()
    comparisons = [(v, regression.adjusted_test(metric.kind, fit, control, v,
                                                alpha=options.alpha))
                   for v in present if v != control]
    rows = _arm_rows(comparisons, control, metric, options, capped_flags)
    return pd.DataFrame(rows).assign(**common, covariates=",".join(metric.covariates))


def _chi_square_frame(values: dict, order: Sequence[str], control: str,
                      common: dict) -> pd.DataFrame:
    successes = [float(values[v].sum()) for v in order]
    totals = [float(values[v].size) for v in order]
    result = stats.chi_square_independence(successes, totals)
    i = list(order).index(control)
    return pd.DataFrame([{
        **common, "variant": "all", "is_control": False, "method": "chi_square",
        "n": int(sum(totals)), "value": sum(successes) / sum(totals),
        "n_control": int(totals[i]), "value_control": successes[i] / totals[i],
        "statistic": result.statistic, "df": float(result.df), "p_value": result.p_value,
        "is_significant": bool(result.p_value < common["alpha"])}])


def _holm_bh(out: pd.DataFrame, family: pd.Series, members: pd.Series, column: str,
             label: str) -> None:
    p = out.loc[family, column].to_numpy(float)
    holm = pd.Series(stats.adjust_p_values(p, "holm"), index=out.index[family])
    bh = pd.Series(stats.adjust_p_values(p, "bh"), index=out.index[family])
    idx = out.index[members]
    out.loc[idx, "p_value_holm"] = holm[idx]
    out.loc[idx, "p_value_bh"] = bh[idx]
    out.loc[idx, "adjustment_family"] = label
    out.loc[idx, "family_size"] = int(family.sum())


def adjust(results: pd.DataFrame) -> pd.DataFrame:
    """Holm and BH within each decision family (see the module docstring)."""
    out = results.copy()
    for column in ("adjustment_family", "p_value_holm", "p_value_bh", "family_size",
                   "noninferiority_p_value_holm", "is_significant", "harm_p_value",
                   "noninferiority_p_value"):
        if column not in out:
            out[column] = None
    out["adjustment_family"] = out["adjustment_family"].astype(object)
    out["is_significant"] = out["is_significant"].astype(object)
    for column in ("p_value_holm", "p_value_bh", "family_size", "noninferiority_p_value_holm"):
        out[column] = np.nan
    if out.empty:
        return out
    treated = ~out["is_control"].astype(bool) & out["p_value"].notna() & (
        out["method"] != "chi_square")
    unadjusted = treated & out["method"].isin(PRIMARY_METHODS)
    cuped = treated & out["method"].str.startswith("cuped_")
    for role in ("goal", "guardrail", "secondary"):
        in_role = out["metric_role"] == role
        column = "harm_p_value" if role == "guardrail" else "p_value"
        primary = unadjusted & in_role
        role_cuped = cuped & in_role
        replaced = primary & ~out["metric"].isin(out.loc[role_cuped, "metric"])
        # CUPED family first, primary second: the primary rows keep their own family's values
        if role_cuped.any():
            _holm_bh(out, role_cuped | replaced, role_cuped, column, f"{role}_cuped")
        if primary.any():
            _holm_bh(out, primary, primary, column, role)
        for members in (primary, role_cuped):
            ni = members & out["noninferiority_p_value"].notna()
            if ni.any():
                p = out.loc[ni, "noninferiority_p_value"].to_numpy(float)
                out.loc[ni, "noninferiority_p_value_holm"] = stats.adjust_p_values(p, "holm")
    adjusted = out["p_value_holm"].notna()
    out.loc[adjusted, "is_significant"] = (out.loc[adjusted, "p_value_holm"]
                                           < out.loc[adjusted, "alpha"])
    out.loc[out["is_control"].astype(bool), "is_significant"] = None
    return out
