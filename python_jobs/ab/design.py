"""Experiment design: power, sample size per arm and minimum detectable effect (MDE).

Two-sided tests throughout. `ratio` is n_treatment / n_control (statsmodels' convention), so
ratio 2 puts twice as many users in treatment as in control.

- Proportions use Cohen's h (the arcsine transform, h = 2 asin sqrt(p2) - 2 asin sqrt(p1)) with
  the normal distribution, as statsmodels' NormalIndPower with proportion_effectsize does.
- Means use Cohen's d = difference / sd with the noncentral t distribution and the pooled
  degrees of freedom n1 + n2 - 2, as statsmodels' TTestIndPower does.

Power counts both rejection tails (the far tail is negligible except at tiny effects).
Sample sizes and MDEs are solved exactly (root finding to ~1e-12) from these power functions.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import optimize, stats

ArrayLike = float | np.ndarray


def power_from_noncentrality(noncentrality: ArrayLike, alpha: float = 0.05) -> ArrayLike:
    """Power of a two-sided z-test whose statistic is N(noncentrality, 1) under H1."""
    crit = stats.norm.isf(alpha / 2)
    nc = np.asarray(noncentrality, dtype=float)
    power = stats.norm.sf(crit - nc) + stats.norm.cdf(-crit - nc)
    return power if power.ndim else float(power)


def _effective_n(n_control: ArrayLike, ratio: ArrayLike) -> ArrayLike:
    # 1 / (1/n1 + 1/n2): the n for which se = sd * sqrt(1/n_eff)
    n_control = np.asarray(n_control, dtype=float)
    return n_control * ratio / (1.0 + ratio)


def normal_power(effect_size: ArrayLike, n_control: ArrayLike, *, alpha: float = 0.05,
                 ratio: ArrayLike = 1.0) -> ArrayLike:
    """Power of the two-sample z-test for a standardized effect (Cohen's h or d)."""
    nc = np.asarray(effect_size, dtype=float) * np.sqrt(_effective_n(n_control, ratio))
    return power_from_noncentrality(nc, alpha)


def t_power(effect_size: ArrayLike, n_control: ArrayLike, *, alpha: float = 0.05,
            ratio: ArrayLike = 1.0) -> ArrayLike:
    """Power of the two-sample t-test (pooled df) for Cohen's d, via the noncentral t."""
    # power is symmetric in d; with |d| the far tail is the lower one, which scipy's nct
    # returns as NaN when it underflows (seen from nc ~ 5 on); count it as 0 there
    d = np.abs(np.asarray(effect_size, dtype=float))
    n_control = np.asarray(n_control, dtype=float)
    df = n_control * (1.0 + ratio) - 2.0
    nc = d * np.sqrt(_effective_n(n_control, ratio))
    far = stats.nct.cdf(stats.t.ppf(alpha / 2, df), df, nc)
    far = np.where(np.isnan(far) & (nc > 5), 0.0, far)
    power = stats.nct.sf(stats.t.isf(alpha / 2, df), df, nc) + far
    return power if np.ndim(power) else float(power)


def cohens_h(p_control: ArrayLike, p_treatment: ArrayLike) -> ArrayLike:
    """Cohen's h: difference of arcsine-transformed proportions, treatment minus control."""
    return 2 * np.arcsin(np.sqrt(p_treatment)) - 2 * np.arcsin(np.sqrt(p_control))


def proportion_from_h(p_control: float, h: float) -> float:
    """The treatment rate that lies Cohen's h above p_control (inverse of cohens_h)."""
    angle = math.asin(math.sqrt(p_control)) + h / 2
    if not 0 <= angle <= math.pi / 2:
        return math.nan
    return math.sin(angle) ** 2


def _solve_increasing(f: Callable[[float], float], target: float, low: float,
                      high: float) -> float:
    """x with f(x) = target for f increasing on [low, inf); widens `high` as needed."""
    while f(high) < target:
        high *= 2
        if high > 1e15:
            raise ValueError("no solution: the target power is out of reach")
    return optimize.brentq(lambda x: f(x) - target, low, high, xtol=1e-12, rtol=1e-15,
                           maxiter=500)


def _check(alpha: float, power: float, ratio: float) -> None:
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    if not alpha < power < 1:
        raise ValueError(f"power must be in (alpha, 1), got {power}")
    if not ratio > 0:
        raise ValueError(f"ratio must be positive, got {ratio}")


def n_for_effect(effect_size: float, *, test: str, alpha: float = 0.05, power: float = 0.8,
                 ratio: float = 1.0) -> float:
    """Control-arm n (fractional) that gives `power` for a standardized effect; test z or t."""
    _check(alpha, power, ratio)
    if effect_size == 0:
        raise ValueError("effect size must be non-zero")
    d = abs(effect_size)
    if test == "z":
        return _solve_increasing(lambda n: normal_power(d, n, alpha=alpha, ratio=ratio),
                                 power, 1e-9, 10.0)
    # the t-test needs at least one degree of freedom: n1 * (1 + ratio) > 3
    low = 3.0 / (1.0 + ratio) + 1e-9
    return _solve_increasing(lambda n: t_power(d, n, alpha=alpha, ratio=ratio),
                             power, low, max(10.0, 2 * low))


def effect_for_n(n_control: float, *, test: str, alpha: float = 0.05, power: float = 0.8,
                 ratio: float = 1.0) -> float:
    """Smallest standardized effect (positive) detected with `power` at this control n."""
    _check(alpha, power, ratio)
    if test == "z":
        return _solve_increasing(lambda d: normal_power(d, n_control, alpha=alpha, ratio=ratio),
                                 power, 0.0, 1.0)
    if n_control * (1 + ratio) <= 3:
        raise ValueError("the t-test needs n_control * (1 + ratio) > 3")
    return _solve_increasing(lambda d: t_power(d, n_control, alpha=alpha, ratio=ratio),
                             power, 0.0, 1.0)


@dataclass(frozen=True)
class Design:
    """One design: the effect, its standardized size and the users it needs."""

    metric: str  # "proportion" or "mean"
    alpha: float
    power: float
    ratio: float  # n_treatment / n_control
    baseline: float | None  # control rate, or control mean when given
    sd: float | None  # per-user standard deviation (means only)
    mde: float  # absolute difference, treatment minus control
    relative_mde: float | None  # mde / baseline
    effect_size: float
    effect_size_kind: str  # "cohens_h" or "cohens_d"
    n_control: float  # exact solution; the required users are its ceiling
    n_treatment: float

    @property
    def users_control(self) -> int:
        return math.ceil(self.n_control - 1e-9)

    @property
    def users_treatment(self) -> int:
        return math.ceil(self.n_treatment - 1e-9)

    @property
    def users_total(self) -> int:
        return self.users_control + self.users_treatment


def _relative(mde: float, baseline: float | None) -> float | None:
    return mde / baseline if baseline else None


def proportion_sample_size(baseline: float, mde: float, *, alpha: float = 0.05,
                           power: float = 0.8, ratio: float = 1.0) -> Design:
    """Users per arm to detect baseline -> baseline + mde (absolute) in a rate."""
    if not 0 < baseline < 1 or not 0 < baseline + mde < 1:
        raise ValueError("baseline and baseline + mde must lie strictly between 0 and 1")
    h = float(cohens_h(baseline, baseline + mde))
    n = n_for_effect(h, test="z", alpha=alpha, power=power, ratio=ratio)
    return Design("proportion", alpha, power, ratio, baseline, None, mde,
                  _relative(mde, baseline), h, "cohens_h", n, n * ratio)


def proportion_mde(baseline: float, n_control: float, *, alpha: float = 0.05,
                   power: float = 0.8, ratio: float = 1.0) -> Design:
    """Smallest absolute increase over `baseline` detectable with n_control users in control."""
    if not 0 < baseline < 1:
        raise ValueError("baseline must lie strictly between 0 and 1")
    h = effect_for_n(n_control, test="z", alpha=alpha, power=power, ratio=ratio)
    treated = proportion_from_h(baseline, h)
    if math.isnan(treated):
        raise ValueError("no detectable increase: the MDE would push the rate above 1")
    mde = treated - baseline
    return Design("proportion", alpha, power, ratio, baseline, None, mde,
                  _relative(mde, baseline), h, "cohens_h", float(n_control),
                  n_control * ratio)


def mean_sample_size(sd: float, mde: float, *, alpha: float = 0.05, power: float = 0.8,
                     ratio: float = 1.0, baseline: float | None = None) -> Design:
    """Users per arm to detect an absolute difference `mde` in a mean with per-user sd."""
    if not sd > 0:
        raise ValueError("sd must be positive")
    d = mde / sd
    n = n_for_effect(d, test="t", alpha=alpha, power=power, ratio=ratio)
    return Design("mean", alpha, power, ratio, baseline, sd, mde, _relative(mde, baseline),
                  d, "cohens_d", n, n * ratio)


def mean_mde(sd: float, n_control: float, *, alpha: float = 0.05, power: float = 0.8,
             ratio: float = 1.0, baseline: float | None = None) -> Design:
    """Smallest absolute difference in a mean detectable with n_control users in control."""
    if not sd > 0:
        raise ValueError("sd must be positive")
    d = effect_for_n(n_control, test="t", alpha=alpha, power=power, ratio=ratio)
    mde = d * sd
    return Design("mean", alpha, power, ratio, baseline, sd, mde, _relative(mde, baseline),
                  d, "cohens_d", float(n_control), n_control * ratio)


# --- ratio metrics, CUPED, non-inferiority, duration -----------------------------------------

def ratio_sd(mean_num: float, mean_den: float, sd_num: float, sd_den: float,
             corr: float = 0.0) -> float:
    """Per-unit sd of the delta-method linearisation (x - R y) / mean(y) of a ratio metric
    R = sum(x) / sum(y): sqrt(var_x - 2 R cov_xy + R^2 var_y) / mean_y; its square over n is
    the variance of R."""
    if not mean_den > 0:
        raise ValueError("the denominator's mean must be positive")
    if not -1 <= corr <= 1:
        raise ValueError("corr must lie in [-1, 1]")
    r = mean_num / mean_den
    var = sd_num**2 - 2 * r * corr * sd_num * sd_den + r**2 * sd_den**2
    return math.sqrt(max(var, 0.0)) / mean_den


def cuped_sd(sd: float, variance_reduction: float) -> float:
    """The sd left after CUPED removes `variance_reduction` (the squared correlation of the
    metric with its covariates, from a past period) of the variance."""
    if not 0 <= variance_reduction < 1:
        raise ValueError("variance reduction must lie in [0, 1)")
    return sd * math.sqrt(1 - variance_reduction)


def ratio_sample_size(mean_num: float, mean_den: float, sd_num: float, sd_den: float,
                      corr: float, mde: float, *, alpha: float = 0.05, power: float = 0.8,
                      ratio: float = 1.0, variance_reduction: float = 0.0) -> Design:
    """Units per arm to detect an absolute change `mde` in a ratio metric: the delta-method
    z-test the analysis runs, on the linearised sd (reduced by CUPED when given)."""
    sd = cuped_sd(ratio_sd(mean_num, mean_den, sd_num, sd_den, corr), variance_reduction)
    d = mde / sd
    n = n_for_effect(d, test="z", alpha=alpha, power=power, ratio=ratio)
    baseline = mean_num / mean_den
    return Design("ratio", alpha, power, ratio, baseline, sd, mde, _relative(mde, baseline), d,
                  "cohens_d", n, n * ratio)


def ratio_mde(mean_num: float, mean_den: float, sd_num: float, sd_den: float, corr: float,
              n_control: float, *, alpha: float = 0.05, power: float = 0.8,
              ratio: float = 1.0, variance_reduction: float = 0.0) -> Design:
    sd = cuped_sd(ratio_sd(mean_num, mean_den, sd_num, sd_den, corr), variance_reduction)
    d = effect_for_n(n_control, test="z", alpha=alpha, power=power, ratio=ratio)
    baseline = mean_num / mean_den
    return Design("ratio", alpha, power, ratio, baseline, sd, d * sd,
                  _relative(d * sd, baseline), d, "cohens_d", float(n_control),
                  n_control * ratio)


def noninferiority_sample_size(sd: float, margin: float, *, true_effect: float = 0.0,
                               alpha: float = 0.05, power: float = 0.8, ratio: float = 1.0,
                               baseline: float | None = None) -> Design:
    """Units per arm for a one-sided non-inferiority z-test: H0 effect <= -margin (absolute,
    in the metric's units, the good direction positive) against H1 effect > -margin, when
    the true effect is `true_effect`. n_eff = ((z_(1-alpha) + z_power) sd / (true_effect +
    margin))^2, n_control = n_eff (1 + ratio) / ratio; alpha is one-sided."""
    _check(alpha, power, ratio)
    if not sd > 0 or not true_effect + margin > 0:
        raise ValueError("need sd > 0 and true_effect + margin > 0")
    d = (true_effect + margin) / sd
    n_eff = ((stats.norm.isf(alpha) + stats.norm.isf(1 - power)) / d) ** 2
    n = n_eff * (1 + ratio) / ratio
    return Design("noninferiority", alpha, power, ratio, baseline, sd, margin,
                  _relative(margin, baseline), d, "cohens_d", n, n * ratio)


def duration_days(design: Design, daily_units: float) -> int:
    """Days of enrolment to reach the design's units, at `daily_units` new units per day over
    all arms."""
    if not daily_units > 0:
        raise ValueError("daily units must be positive")
    return math.ceil(design.users_total / daily_units - 1e-9)
