"""One-sided read-outs of a comparison: harm (guardrails), non-inferiority, and Bayesian.

harm p-value: H0 no change against H1 the metric moved the bad way (direction decrease: up),
    from the comparison's own statistic: t with its Welch df, otherwise normal.
non-inferiority p-value, margin m relative to the control value c: H0 s*effect <= -m |c|
    against H1 s*effect > -m |c| (s = +1 when an increase is good, -1 otherwise); statistic
    (s*effect + m |c|) / se with the comparison's unpooled se, t(df) or normal. A small
    p-value shows the variant is not worse than the margin.
Bayesian (GrowthBook's conventions): a normal likelihood for the relative lift
    (value_t / value_c - 1, delta-method se) and a normal prior N(0, prior_sd^2) on it, flat
    (improper) by default. Posterior N(mu, sd^2) with precision 1/se^2 + 1/prior_sd^2.
    chance to beat control = P(s*lift > 0) = Phi(s mu / sd); expected loss of shipping the
    variant = E[max(0, -s*lift)] = sd phi(s mu / sd) - s mu Phi(-s mu / sd), in relative
    units (0.002 = 0.2 % of the control value); credible interval mu +- z sd.
"""

from __future__ import annotations

import numpy as np
from scipy import stats as sps

from python_jobs.ab.stats import Comparison


def _sign(direction: str) -> float:
    return -1.0 if direction == "decrease" else 1.0


def _cdf(x: np.ndarray, df: float | None) -> np.ndarray:
    return sps.norm.cdf(x) if df is None else sps.t.cdf(x, df)


def harm_p_value(result: Comparison, direction: str = "increase") -> float:
    """One-sided p for harm from the comparison's statistic."""
    s = _sign(direction)
    return float(_cdf(s * np.asarray(result.statistic, float), result.df))


def noninferiority_p_value(result: Comparison, margin: float,
                           direction: str = "increase") -> float:
    s = _sign(direction)
    shift = margin * abs(float(result.value_control))
    stat = (s * float(result.effect) + shift) / float(result.se)
    return float(1 - _cdf(stat, result.df))


def bayes(lift: np.ndarray, se: np.ndarray, direction: str = "increase", *,
          prior_sd: float | None = None, alpha: float = 0.05) -> dict[str, np.ndarray]:
    """Chance to beat control, expected loss and credible interval of the relative lift."""
    s = _sign(direction)
    lift, se = np.asarray(lift, float), np.asarray(se, float)
    if prior_sd is None:
        mu, sd = lift, se
    else:
        precision = 1 / se**2 + 1 / prior_sd**2
        mu, sd = lift / se**2 / precision, np.sqrt(1 / precision)
    with np.errstate(divide="ignore", invalid="ignore"):
        good = s * mu / sd
    chance = sps.norm.cdf(good)
    loss = sd * sps.norm.pdf(good) - s * mu * sps.norm.cdf(-good)
    z = sps.norm.isf(alpha / 2)
    return {"chance_to_beat_control": chance, "expected_loss": loss,
            "credible_low": mu - z * sd, "credible_high": mu + z * sd}


def lift_se(result: Comparison, alpha: float) -> float:
    """The delta-method se of the relative lift, from its normal interval."""
    return float((result.relative_ci_high - result.relative_ci_low)
                 / (2 * sps.norm.isf(alpha / 2)))
