"""Statistics of an A/B test on per-user values: tests, intervals, effect sizes, corrections.

Conventions: arguments come control first, then treatment; every effect is treatment minus
control; tests and intervals are two-sided; variances use ddof=1. The *_from_moments functions
take summary statistics and broadcast over numpy arrays, so a simulation of thousands of
experiments runs as a few array operations. analyze_metric() compares every variant with the
control for one metric and returns rows ready to be written as a table (schema `ab`).
Formulas: docs/ab_testing.md.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.multitest import multipletests

from python_jobs.ab import design
from python_jobs.ab.design import ArrayLike, cohens_h

__all__ = [
    "ChiSquareResult",
    "Comparison",
    "CupedResult",
    "MetricRow",
    "SrmResult",
    "adjust_p_values",
    "analyze_metric",
    "benjamini_hochberg",
    "chi_square_independence",
    "cohens_d",
    "cohens_h",
    "cuped_adjust",
    "cuped_test",
    "cuped_theta",
    "holm",
    "proportion_z_test",
    "ratio_from_moments",
    "ratio_test",
    "ratio_variance",
    "relative_lift",
    "rows_to_frame",
    "sample_ratio_mismatch",
    "welch_from_moments",
    "welch_t_test",
]


@dataclass(frozen=True)
class Comparison:
    """Treatment against control for one metric. Fields are floats, or arrays when the
    *_from_moments functions were given arrays."""

    method: str
    n_control: ArrayLike
    n_treatment: ArrayLike
    value_control: ArrayLike  # mean, rate or ratio in control
    value_treatment: ArrayLike
    effect: ArrayLike  # value_treatment - value_control
    se: ArrayLike
    ci_low: ArrayLike
    ci_high: ArrayLike
    relative_effect: ArrayLike  # value_treatment / value_control - 1
    relative_ci_low: ArrayLike
    relative_ci_high: ArrayLike
    statistic: ArrayLike  # t or z
    df: ArrayLike | None  # Welch degrees of freedom; None for z-tests
    p_value: ArrayLike
    effect_size: ArrayLike
    effect_size_kind: str  # cohens_d or cohens_h
    achieved_power: ArrayLike
    variance_reduction: ArrayLike | None = None  # CUPED only


def _scalar(x: np.ndarray) -> ArrayLike:
    return x if np.ndim(x) else float(x)


def _z(alpha: float) -> float:
    return float(stats.norm.isf(alpha / 2))


def relative_lift(mean_control: ArrayLike, var_mean_control: ArrayLike,
                  mean_treatment: ArrayLike, var_mean_treatment: ArrayLike,
                  alpha: float = 0.05) -> tuple[ArrayLike, ArrayLike, ArrayLike]:
    """mean_t / mean_c - 1 with a delta-method normal CI; var_mean_* are the variances of the
    two (independent) arm estimates, i.e. their squared standard errors."""
    mc, mt = np.asarray(mean_control, float), np.asarray(mean_treatment, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        lift = mt / mc - 1
        var = var_mean_treatment / mc**2 + mt**2 * var_mean_control / mc**4
        half = _z(alpha) * np.sqrt(var)
    return _scalar(lift), _scalar(lift - half), _scalar(lift + half)


def cohens_d(mean_control: ArrayLike, var_control: ArrayLike, n_control: ArrayLike,
             mean_treatment: ArrayLike, var_treatment: ArrayLike,
             n_treatment: ArrayLike) -> ArrayLike:
    """Difference of means over the pooled standard deviation (ddof=1 variances)."""
    pooled = (((n_control - 1) * var_control + (n_treatment - 1) * var_treatment)
              / (n_control + n_treatment - 2))
    with np.errstate(divide="ignore", invalid="ignore"):
        return _scalar(np.asarray((mean_treatment - mean_control) / np.sqrt(pooled)))


def welch_from_moments(mean_control: ArrayLike, var_control: ArrayLike, n_control: ArrayLike,
                       mean_treatment: ArrayLike, var_treatment: ArrayLike,
                       n_treatment: ArrayLike, *, alpha: float = 0.05,
                       method: str = "welch_t") -> Comparison:
    """Welch's unequal-variance t-test and its t-based CI for the difference of means."""
    mc, vc, nc = (np.asarray(a, float) for a in (mean_control, var_control, n_control))
    mt, vt, nt = (np.asarray(a, float) for a in (mean_treatment, var_treatment, n_treatment))
    sc, st = vc / nc, vt / nt  # squared standard errors of the arm means
    diff = mt - mc
    se = np.sqrt(sc + st)
    with np.errstate(divide="ignore", invalid="ignore"):
        df = (sc + st) ** 2 / (sc**2 / (nc - 1) + st**2 / (nt - 1))
        t = diff / se
    p = 2 * stats.t.sf(np.abs(t), df)
    half = stats.t.isf(alpha / 2, df) * se
    rel, rel_low, rel_high = relative_lift(mc, sc, mt, st, alpha)
    d = np.asarray(cohens_d(mc, vc, nc, mt, vt, nt))
    power = design.t_power(d, nc, alpha=alpha, ratio=nt / nc)
    return Comparison(method, _scalar(nc), _scalar(nt), _scalar(mc), _scalar(mt),
                      _scalar(diff), _scalar(se), _scalar(diff - half), _scalar(diff + half),
                      rel, rel_low, rel_high, _scalar(t), _scalar(df), _scalar(p), _scalar(d),
                      "cohens_d", _scalar(np.asarray(power)))


def _values(x: ArrayLike | Sequence[float], name: str) -> np.ndarray:
    a = np.asarray(x, dtype=float).ravel()
    if a.size < 2:
        raise ValueError(f"{name}: need at least 2 values, got {a.size}")
    if not np.isfinite(a).all():
        raise ValueError(f"{name}: values must be finite (no NaN)")
    return a


def welch_t_test(control: ArrayLike, treatment: ArrayLike, *, alpha: float = 0.05) -> Comparison:
    """Welch's t-test on per-user values of the two arms."""
    c, t = _values(control, "control"), _values(treatment, "treatment")
    return welch_from_moments(c.mean(), c.var(ddof=1), c.size, t.mean(), t.var(ddof=1), t.size,
                              alpha=alpha)


def proportion_z_test(successes_control: ArrayLike, n_control: ArrayLike,
                      successes_treatment: ArrayLike, n_treatment: ArrayLike, *,
                      alpha: float = 0.05) -> Comparison:
    """Two-proportion z-test: pooled rate for the test (the null has one rate), unpooled
    (Wald) standard error for the CI of the difference, delta method for the relative CI."""
    xc, nc = np.asarray(successes_control, float), np.asarray(n_control, float)
    xt, nt = np.asarray(successes_treatment, float), np.asarray(n_treatment, float)
    pc, pt = xc / nc, xt / nt
    pooled = (xc + xt) / (nc + nt)
    diff = pt - pc
    with np.errstate(divide="ignore", invalid="ignore"):
        z = diff / np.sqrt(pooled * (1 - pooled) * (1 / nc + 1 / nt))
    p = 2 * stats.norm.sf(np.abs(z))
    sc, st = pc * (1 - pc) / nc, pt * (1 - pt) / nt
    se = np.sqrt(sc + st)
    half = _z(alpha) * se
    rel, rel_low, rel_high = relative_lift(pc, sc, pt, st, alpha)
    h = np.asarray(cohens_h(pc, pt))
    power = design.normal_power(h, nc, alpha=alpha, ratio=nt / nc)
    return Comparison("two_proportion_z", _scalar(nc), _scalar(nt), _scalar(pc), _scalar(pt),
                      _scalar(diff), _scalar(se), _scalar(diff - half), _scalar(diff + half),
                      rel, rel_low, rel_high, _scalar(z), None, _scalar(p), _scalar(h),
                      "cohens_h", _scalar(np.asarray(power)))


@dataclass(frozen=True)
class ChiSquareResult:
    statistic: float
    df: int
    p_value: float
    expected: np.ndarray


def chi_square_independence(successes: Sequence[float],
                            totals: Sequence[float]) -> ChiSquareResult:
    """Chi-square test of independence on the k variants x {success, failure} table, no
    continuity correction: do the k rates differ at all?"""
    x = np.asarray(successes, float)
    n = np.asarray(totals, float)
    table = np.column_stack([x, n - x])
    expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / table.sum()
    statistic = float(((table - expected) ** 2 / expected).sum())
    df = (table.shape[0] - 1) * (table.shape[1] - 1)
    return ChiSquareResult(statistic, df, float(stats.chi2.sf(statistic, df)), expected)


def ratio_variance(n: ArrayLike, mean_num: ArrayLike, mean_den: ArrayLike, var_num: ArrayLike,
                   var_den: ArrayLike, cov: ArrayLike) -> ArrayLike:
    """Delta-method variance of sum(num)/sum(den) over n independent users."""
    r = np.asarray(mean_num, float) / mean_den
    var = (var_num - 2 * r * cov + r**2 * var_den) / (np.asarray(n, float) * mean_den**2)
    return _scalar(np.asarray(var))


def ratio_from_moments(control: Sequence[ArrayLike], treatment: Sequence[ArrayLike], *,
                       alpha: float = 0.05) -> Comparison:
    """z-test of a ratio metric from per-arm moments (n, mean_num, mean_den, var_num, var_den,
    cov_num_den). Ratios are sum(num)/sum(den) with the user as the randomisation unit."""
    nc, nt = np.asarray(control[0], float), np.asarray(treatment[0], float)
    rc = np.asarray(control[1], float) / control[2]
    rt = np.asarray(treatment[1], float) / treatment[2]
    sc, st = ratio_variance(*control), ratio_variance(*treatment)
    diff = rt - rc
    se = np.sqrt(np.asarray(sc + st))
    with np.errstate(divide="ignore", invalid="ignore"):
        z = diff / se
    p = 2 * stats.norm.sf(np.abs(z))
    half = _z(alpha) * se
    rel, rel_low, rel_high = relative_lift(rc, sc, rt, st, alpha)
    # effect size: Cohen's d on the linearised per-user values, whose variance is n * var(R)
    d = np.asarray(cohens_d(rc, nc * sc, nc, rt, nt * st, nt))
    power = design.power_from_noncentrality(np.abs(z), alpha)
    return Comparison("ratio_delta_z", _scalar(nc), _scalar(nt), _scalar(rc), _scalar(rt),
                      _scalar(diff), _scalar(se), _scalar(diff - half), _scalar(diff + half),
                      rel, rel_low, rel_high, _scalar(z), None, _scalar(p), _scalar(d),
                      "cohens_d", _scalar(np.asarray(power)))


def _ratio_moments(num: ArrayLike, den: ArrayLike, name: str) -> tuple[float, ...]:
    x, y = _values(num, f"{name} numerator"), _values(den, f"{name} denominator")
    if x.size != y.size:
        raise ValueError(f"{name}: numerator and denominator differ in length")
    if y.sum() <= 0:
        raise ValueError(f"{name}: denominator sums to {y.sum()}, ratio undefined")
    return (x.size, x.mean(), y.mean(), x.var(ddof=1), y.var(ddof=1),
            float(np.cov(x, y, ddof=1)[0, 1]))


def ratio_test(num_control: ArrayLike, den_control: ArrayLike, num_treatment: ArrayLike,
               den_treatment: ArrayLike, *, alpha: float = 0.05) -> Comparison:
    """Ratio metric (e.g. skips per play, per-user numerator and denominator) by the delta
    method. Users with a zero denominator stay in: they count in n and in the sums."""
    return ratio_from_moments(_ratio_moments(num_control, den_control, "control"),
                              _ratio_moments(num_treatment, den_treatment, "treatment"),
                              alpha=alpha)


@dataclass(frozen=True)
class CupedResult:
    theta: float
    pre_mean: float  # grand mean of the pre-period value, the centring point
    variance_reduction: float  # 1 - pooled within-arm var(adjusted) / var(raw)


def cuped_theta(metric_by_arm: Sequence[ArrayLike],
                pre_by_arm: Sequence[ArrayLike]) -> CupedResult:
    """theta = pooled within-arm cov(metric, pre) / pooled within-arm var(pre).

    Within-arm pooling keeps the treatment effect on the metric out of theta; pre-period
    values cannot differ between arms except by chance, so centring on the grand mean of the
    pre-period leaves each arm's expected mean unchanged."""
    ys = [_values(y, "metric") for y in metric_by_arm]
    xs = [_values(x, "pre-period") for x in pre_by_arm]
    if [len(y) for y in ys] != [len(x) for x in xs]:
        raise ValueError("metric and pre-period values differ in length")
    sxy = sum(float(((y - y.mean()) * (x - x.mean())).sum()) for y, x in zip(ys, xs, strict=True))
    sxx = sum(float(((x - x.mean()) ** 2).sum()) for x in xs)
    syy = sum(float(((y - y.mean()) ** 2).sum()) for y in ys)
    if sxx == 0:
        raise ValueError("pre-period values are constant within arms: CUPED cannot help")
    theta = sxy / sxx
    # residual sum of squares of y - theta x, within arms: syy - sxy^2 / sxx
    reduction = (sxy**2 / sxx) / syy if syy > 0 else 0.0
    pre_mean = float(np.concatenate(xs).mean())
    return CupedResult(theta, pre_mean, reduction)


def cuped_adjust(metric: ArrayLike, pre: ArrayLike, fit: CupedResult) -> np.ndarray:
    """metric - theta * (pre - grand pre-period mean)."""
    return np.asarray(metric, float) - fit.theta * (np.asarray(pre, float) - fit.pre_mean)


def cuped_test(control: ArrayLike, control_pre: ArrayLike, treatment: ArrayLike,
               treatment_pre: ArrayLike, *, alpha: float = 0.05,
               fit: CupedResult | None = None) -> Comparison:
    """CUPED: Welch's t-test on the metric adjusted by its pre-period value. Pass `fit` to
    share one theta across several treatment arms."""
    fit = fit or cuped_theta([control, treatment], [control_pre, treatment_pre])
    c = cuped_adjust(_values(control, "control"), control_pre, fit)
    t = cuped_adjust(_values(treatment, "treatment"), treatment_pre, fit)
    result = welch_from_moments(c.mean(), c.var(ddof=1), c.size, t.mean(), t.var(ddof=1),
                                t.size, alpha=alpha, method="cuped_welch_t")
    return Comparison(**{**asdict(result), "variance_reduction": fit.variance_reduction})


@dataclass(frozen=True)
class SrmResult:
    statistic: float
    df: int
    p_value: float
    is_mismatch: bool
    observed: tuple[int, ...]
    expected: tuple[float, ...]


def sample_ratio_mismatch(counts: Sequence[int], weights: Sequence[float] | None = None, *,
                          threshold: float = 0.001) -> SrmResult:
    """Chi-square goodness of fit of users per variant against the planned weights (equal
    when None). A p-value below `threshold` means the assignment is broken: do not trust
    the experiment's results until the cause is found."""
    observed = np.asarray(counts, float)
    w = np.ones_like(observed) if weights is None else np.asarray(weights, float)
    if observed.shape != w.shape or observed.size < 2:
        raise ValueError("need one weight per variant and at least two variants")
    expected = observed.sum() * w / w.sum()
    statistic = float(((observed - expected) ** 2 / expected).sum())
    df = observed.size - 1
    p = float(stats.chi2.sf(statistic, df))
    return SrmResult(statistic, df, p, p < threshold, tuple(int(c) for c in counts),
                     tuple(float(e) for e in expected))


def holm(p_values: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjusted p-values (family-wise error rate)."""
    return _multipletests(p_values, "holm")


def benjamini_hochberg(p_values: Sequence[float]) -> np.ndarray:
    """Benjamini-Hochberg step-up adjusted p-values (false discovery rate)."""
    return _multipletests(p_values, "fdr_bh")


def _multipletests(p_values: Sequence[float], method: str) -> np.ndarray:
    """statsmodels' multipletests over the family; a missing p-value stays missing and is
    not counted in the family."""
    p = np.asarray(p_values, float)
    out = np.full(p.size, np.nan)
    present = ~np.isnan(p)
    if present.any():
        out[present] = multipletests(p[present], method=method)[1]
    return out


def adjust_p_values(p_values: Sequence[float], method: str | None = "holm") -> np.ndarray:
    """method: holm, bh (Benjamini-Hochberg) or None (unadjusted)."""
    if method is None or method == "none":
        return np.asarray(p_values, float).copy()
    if method == "holm":
        return holm(p_values)
    if method == "bh":
        return benjamini_hochberg(p_values)
    raise ValueError(f"unknown correction {method!r}: use holm, bh or none")


@dataclass(frozen=True)
class MetricRow:
    """One row per (experiment, variant, metric); the control's own row has no effect."""

    experiment_id: str | None
    metric: str
    variant: str
    control_variant: str
    is_control: bool
    method: str
    n: int
    value: float  # mean, rate or ratio of this variant (CUPED: adjusted mean)
    n_control: int
    value_control: float
    effect: float | None
    ci_low: float | None
    ci_high: float | None
    relative_effect: float | None
    relative_ci_low: float | None
    relative_ci_high: float | None
    statistic: float | None
    p_value: float | None
    p_value_adjusted: float | None  # across this metric's treatment variants
    correction: str | None
    effect_size: float | None
    effect_size_kind: str | None
    achieved_power: float | None
    variance_reduction: float | None
    alpha: float
    is_significant: bool | None  # p_value_adjusted < alpha
    df: float | None = None  # Welch degrees of freedom; None for z-tests and the control row


def _num(x: ArrayLike | None) -> float | None:
    """A finite float, or None (NULL in the warehouse) for missing or undefined values."""
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


KINDS = ("mean", "proportion", "ratio", "cuped")


def _compare(kind: str, data: Mapping[str, np.ndarray], control: str, variant: str,
             alpha: float, fit: CupedResult | None,
             denominators: Mapping[str, ArrayLike] | None,
             pre_period: Mapping[str, ArrayLike] | None) -> Comparison:
    c, t = data[control], data[variant]
    if kind == "mean":
        return welch_t_test(c, t, alpha=alpha)
    if kind == "proportion":
        return proportion_z_test(c.sum(), c.size, t.sum(), t.size, alpha=alpha)
    if kind == "ratio":
        return ratio_test(c, denominators[control], t, denominators[variant], alpha=alpha)
    return cuped_test(c, pre_period[control], t, pre_period[variant], alpha=alpha, fit=fit)


def analyze_metric(metric: str, values: Mapping[str, ArrayLike], *, kind: str = "mean",
                   control: str = "control", denominators: Mapping[str, ArrayLike] | None = None,
                   pre_period: Mapping[str, ArrayLike] | None = None, alpha: float = 0.05,
                   correction: str | None = "holm",
                   experiment_id: str | None = None) -> list[MetricRow]:
    """Compare every variant with `control` for one metric.

    values: per-user values by variant. kind: mean (Welch), proportion (0/1 values, z-test),
    ratio (values are numerators, `denominators` the per-user denominators; delta method) or
    cuped (Welch on values adjusted by `pre_period`, one theta shared by all arms). p-values
    are adjusted across the treatment variants with `correction` (holm, bh or None); to
    correct across metrics too, call adjust_p_values on the collected rows' p_value.
    Returns the control's row first, then one row per treatment variant in input order."""
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}: use one of {', '.join(KINDS)}")
    if control not in values:
        raise ValueError(f"control variant {control!r} not among {sorted(values)}")
    if len(values) < 2:
        raise ValueError("need the control and at least one other variant")
    if kind == "ratio" and (denominators is None or set(denominators) != set(values)):
        raise ValueError("kind='ratio' needs denominators for every variant")
    if kind == "cuped" and (pre_period is None or set(pre_period) != set(values)):
        raise ValueError("kind='cuped' needs pre_period values for every variant")
    data = {v: _values(x, f"{metric}/{v}") for v, x in values.items()}
    if kind == "proportion" and not all(np.isin(x, (0.0, 1.0)).all() for x in data.values()):
        raise ValueError(f"{metric}: kind='proportion' needs 0/1 values per user")
    fit = None
    if kind == "cuped":
        fit = cuped_theta(list(data.values()), [pre_period[v] for v in data])

    variants = [v for v in data if v != control]
    results = [_compare(kind, data, control, v, alpha, fit, denominators, pre_period)
               for v in variants]
    adjusted = adjust_p_values([r.p_value for r in results], correction)

    first = results[0]
    reduction = None if fit is None else fit.variance_reduction
    rows = [MetricRow(experiment_id, metric, control, control, True, first.method,
                      int(first.n_control), float(first.value_control), int(first.n_control),
                      float(first.value_control), None, None, None, None, None, None, None,
                      None, None, correction, None, None, None, _num(reduction), alpha, None)]
    for variant, r, p_adj in zip(variants, results, adjusted, strict=True):
        rows.append(MetricRow(
            experiment_id, metric, variant, control, False, r.method, int(r.n_treatment),
            float(r.value_treatment), int(r.n_control), float(r.value_control), _num(r.effect),
            _num(r.ci_low), _num(r.ci_high), _num(r.relative_effect), _num(r.relative_ci_low),
            _num(r.relative_ci_high), _num(r.statistic), _num(r.p_value), _num(p_adj),
            correction, _num(r.effect_size), r.effect_size_kind, _num(r.achieved_power),
            _num(r.variance_reduction), alpha,
            None if _num(p_adj) is None else bool(p_adj < alpha), _num(r.df)))
    return rows


def rows_to_frame(rows: Sequence[MetricRow]) -> pd.DataFrame:
    """The rows as a DataFrame with one column per MetricRow field (missing values None)."""
    return pd.DataFrame([asdict(r) for r in rows], columns=list(MetricRow.__dataclass_fields__))
