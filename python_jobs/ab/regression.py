"""CUPED / regression adjustment for every metric kind, with any number of covariates.

Every kind is reduced to a per-unit outcome l whose arm mean is the arm's estimate:
  mean, proportion   l = y                      arm value = mean(y)
  ratio              l = (x - R_a y) / mean(y)  arm value = R_a = sum(x) / sum(y)
                     (the delta-method linearisation: mean 0 within the arm, and
                     var(l) / n is the delta-method variance of R_a)
theta = (sum over arms of X_c' X_c)^-1 (sum over arms of X_c' l_c), X_c and l_c centred within
their arm: the pooled within-arm least-squares slope, so the treatment effect cannot leak into
theta, shared by every arm. Adjusted unit values u = value_a + (l - mean_a(l)) -
theta'(X - grand mean of X); their arm means are value_a - theta'(mean_a(X) - mean(X)) and
their within-arm variance is the residual variance. With one covariate on a mean metric this
is exactly stats.cuped_test; with several it equals the treatment coefficient of the OLS
y ~ arm + X (tested against statsmodels).

Tests on the adjusted values: Welch t for means (as stats.cuped_test), a normal z with
unpooled variances for proportions and ratios.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats as sps

from python_jobs.ab import design, stats

METHODS = {"mean": "cuped_welch_t", "proportion": "cuped_proportion_z",
           "ratio": "cuped_ratio_delta_z"}


@dataclass(frozen=True)
class Adjustment:
    theta: np.ndarray  # one slope per covariate
    covariate_mean: np.ndarray  # grand mean of every covariate, the centring point
    variance_reduction: float  # 1 - pooled within-arm var(residual) / var(outcome)
    adjusted: dict[str, np.ndarray]  # per arm: adjusted per-unit values


def _outcome(kind: str, values: np.ndarray, denominators: np.ndarray | None) -> tuple[
        float, np.ndarray]:
    if kind == "ratio":
        ybar = denominators.mean()
        if denominators.sum() <= 0:
            raise ValueError("denominator sums to 0, ratio undefined")
        r = values.sum() / denominators.sum()
        return float(r), (values - r * denominators) / ybar
    return float(values.mean()), values


def fit(kind: str, values: Mapping[str, np.ndarray], covariates: Mapping[str, np.ndarray],
        denominators: Mapping[str, np.ndarray] | None = None) -> Adjustment:
    """Fit theta over every arm and return the adjusted per-unit values. covariates[arm] is
    an (n_arm, k) array (a 1-d array is one covariate)."""
    arms = list(values)
    arm_value, outcome, xs = {}, {}, {}
    for arm in arms:
        y = np.asarray(values[arm], float)
        x = np.asarray(covariates[arm], float)
        x = x.reshape(len(x), -1)
        if x.shape[0] != y.size:
            raise ValueError("metric and covariate values differ in length")
        if not (np.isfinite(x).all() and np.isfinite(y).all()):
            raise ValueError("metric and covariate values must be finite (no NaN)")
        den = None if denominators is None else np.asarray(denominators[arm], float)
        arm_value[arm], outcome[arm] = _outcome(kind, y, den)
        xs[arm] = x
    k = next(iter(xs.values())).shape[1]
    sxx = np.zeros((k, k))
    sxy = np.zeros(k)
    syy = 0.0
    for arm in arms:
        xc = xs[arm] - xs[arm].mean(axis=0)
        lc = outcome[arm] - outcome[arm].mean()
        sxx += xc.T @ xc
        sxy += xc.T @ lc
        syy += float(lc @ lc)
    if np.linalg.matrix_rank(sxx) < k:
        raise ValueError("covariates are constant or collinear within arms: CUPED cannot help")
    theta = np.linalg.solve(sxx, sxy)
    grand = np.concatenate([xs[a] for a in arms]).mean(axis=0)
    adjusted = {a: arm_value[a] + (outcome[a] - outcome[a].mean()) - (xs[a] - grand) @ theta
                for a in arms}
    reduction = float(sxy @ theta / syy) if syy > 0 else 0.0
    return Adjustment(theta, grand, reduction, adjusted)


def z_from_moments(mean_control: stats.ArrayLike, var_control: stats.ArrayLike,
                   n_control: stats.ArrayLike, mean_treatment: stats.ArrayLike,
                   var_treatment: stats.ArrayLike, n_treatment: stats.ArrayLike, *,
                   alpha: float = 0.05, method: str = "z") -> stats.Comparison:
    """Normal test of the difference of two arm means with unpooled variances (var_* are
    per-unit variances, ddof=1). Broadcasts over arrays."""
    mc, vc, nc = (np.asarray(a, float) for a in (mean_control, var_control, n_control))
    mt, vt, nt = (np.asarray(a, float) for a in (mean_treatment, var_treatment, n_treatment))
    sc, st = vc / nc, vt / nt
    diff = mt - mc
    se = np.sqrt(sc + st)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = diff / se
    p = 2 * sps.norm.sf(np.abs(z))
    half = sps.norm.isf(alpha / 2) * se
    rel, rel_low, rel_high = stats.relative_lift(mc, sc, mt, st, alpha)
    d = np.asarray(stats.cohens_d(mc, vc, nc, mt, vt, nt))
    power = design.power_from_noncentrality(np.abs(z), alpha)
    s = stats._scalar
    return stats.Comparison(method, s(nc), s(nt), s(mc), s(mt), s(diff), s(se), s(diff - half),
                            s(diff + half), rel, rel_low, rel_high, s(z), None, s(p), s(d),
                            "cohens_d", s(np.asarray(power)))


def adjusted_test(kind: str, adjustment: Adjustment, control: str, treatment: str, *,
                  alpha: float = 0.05) -> stats.Comparison:
    """Treatment against control on the adjusted values of `adjustment`."""
    c, t = adjustment.adjusted[control], adjustment.adjusted[treatment]
    moments = (c.mean(), c.var(ddof=1), c.size, t.mean(), t.var(ddof=1), t.size)
    if kind == "mean":
        result = stats.welch_from_moments(*moments, alpha=alpha, method=METHODS[kind])
    else:
        result = z_from_moments(*moments, alpha=alpha, method=METHODS[kind])
    return stats.Comparison(**{**asdict(result),
                               "variance_reduction": adjustment.variance_reduction})


def covariate_matrix(columns: Sequence[np.ndarray]) -> np.ndarray:
    return np.column_stack([np.asarray(c, float) for c in columns])
