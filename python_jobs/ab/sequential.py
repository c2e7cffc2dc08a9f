"""Sequential tests: results that stay valid when an experiment is read many times.

Two modes (docs/ab_testing.md, "Sequential testing"):

always-valid (mixture SPRT, Johari et al. 2017; the confidence sequence GrowthBook uses,
Waudby-Smith et al. 2023 eq. 161). With the effect estimate d, its variance V and a normal
mixing distribution N(0, tau2) over the effect:
    Lambda = sqrt(V / (V + tau2)) * exp(tau2 d^2 / (2 V (V + tau2)))
    p_k = min(1, p_(k-1), 1 / Lambda_k)                        (always-valid p-value)
    d +- sqrt(2 V (V + tau2) / tau2 * log(sqrt((V + tau2) / V) / alpha))
                                                                (confidence sequence)
The interval is where Lambda(d - theta) < 1/alpha, so it excludes 0 exactly when p < alpha.
tau2 = rho^2 s2 with s2 = V N the per-unit variance of the effect (N units in both arms) and
rho^2 = (-2 log alpha + log(-2 log alpha + 1)) / N0, N0 the tuning parameter (GrowthBook's
default 5000: the sequence is tightest near N0 units); then the half-width equals GrowthBook's
sqrt(s2) sqrt(2 (N rho^2 + 1) / (N^2 rho^2) log(sqrt(N rho^2 + 1) / alpha)).

group sequential (alpha spending, Lan and DeMets 1983, as spotify-confidence does): at looks
with information fractions 0 < t_1 < ... <= 1 the two-sided boundaries c_k satisfy
    P(|Z_1| < c_1, ..., |Z_(k-1)| < c_(k-1), |Z_k| >= c_k) = a(t_k) - a(t_(k-1))
under H0, where Z_k = S_k / sqrt(t_k) for a Brownian motion S; computed by recursive numerical
integration of S's continuation density (Armitage, McPherson and Rowe 1969) on a Simpson grid.
Spending functions: O'Brien-Fleming type a(t) = 2 - 2 Phi(z_(alpha/2) / sqrt(t)) and Pocock
type a(t) = alpha log(1 + (e - 1) t). Reject at look k when |Z_k| >= c_k; the repeated
confidence interval is d_k +- c_k se_k.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache

import numpy as np
from scipy import optimize, special
from scipy import stats as sps

DEFAULT_TUNING = 5000.0
SPENDING = ("obrien_fleming", "pocock")


# --- always valid: mixture SPRT --------------------------------------------------------------

def rho_squared(alpha: float, tuning: float = DEFAULT_TUNING) -> float:
    """Mixing scale of GrowthBook's confidence sequence for tuning parameter N0."""
    if not 0 < alpha < 1 or not tuning > 0:
        raise ValueError("need 0 < alpha < 1 and a positive tuning parameter")
    log_alpha = math.log(alpha)
    return (-2 * log_alpha + math.log(-2 * log_alpha + 1)) / tuning


def mixture_variance(variance: np.ndarray, n_total: np.ndarray, alpha: float,
                     tuning: float = DEFAULT_TUNING) -> np.ndarray:
    """tau2 = rho^2 * s2, s2 = variance * n_total the per-unit variance of the effect."""
    return rho_squared(alpha, tuning) * np.asarray(variance, float) * np.asarray(n_total, float)


def msprt_p_value(effect: np.ndarray, variance: np.ndarray, tau2: np.ndarray) -> np.ndarray:
    """1 / Lambda at one look (capped at 1); not yet the running minimum."""
    d, v, t2 = (np.asarray(a, float) for a in (effect, variance, tau2))
    log_lambda = 0.5 * np.log(v / (v + t2)) + t2 * d**2 / (2 * v * (v + t2))
    return np.minimum(1.0, np.exp(-log_lambda))


def msprt_halfwidth(variance: np.ndarray, tau2: np.ndarray, alpha: float) -> np.ndarray:
    v, t2 = np.asarray(variance, float), np.asarray(tau2, float)
    return np.sqrt(2 * v * (v + t2) / t2 * np.log(np.sqrt((v + t2) / v) / alpha))


def always_valid(effect: np.ndarray, variance: np.ndarray, n_total: np.ndarray, *,
                 alpha: float = 0.05, tuning: float = DEFAULT_TUNING) -> dict[str, np.ndarray]:
    """Always-valid p-values and confidence sequences over looks along the last axis: the
    running minimum of the p-values and the running intersection of the intervals."""
    d = np.asarray(effect, float)
    v = np.asarray(variance, float)
    tau2 = mixture_variance(v, n_total, alpha, tuning)
    p = np.fmin.accumulate(msprt_p_value(d, v, tau2), axis=-1)
    half = msprt_halfwidth(v, tau2, alpha)
    low = np.fmax.accumulate(d - half, axis=-1)
    high = np.fmin.accumulate(d + half, axis=-1)
    return {"p_value": p, "ci_low": low, "ci_high": high, "reject": p < alpha}


# --- group sequential: alpha spending --------------------------------------------------------

def spent(t: np.ndarray, alpha: float, spending: str = "obrien_fleming") -> np.ndarray:
    """Cumulative two-sided alpha spent by information fraction t."""
    t = np.clip(np.asarray(t, float), 0.0, 1.0)
    if spending == "obrien_fleming":
        with np.errstate(divide="ignore"):
            return np.where(t > 0, 2 * sps.norm.sf(sps.norm.isf(alpha / 2) / np.sqrt(t)), 0.0)
    if spending == "pocock":
        return alpha * np.log(1 + (math.e - 1) * t)
    raise ValueError(f"unknown spending function {spending!r}: use {', '.join(SPENDING)}")


def _normal_pdf(x: np.ndarray) -> np.ndarray:
    return np.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)


def _simpson(m: int) -> np.ndarray:
    w = np.ones(m)
    w[1:-1:2], w[2:-1:2] = 4, 2
    return w / 3


def boundaries(fractions: Sequence[float], alpha: float = 0.05,
               spending: str = "obrien_fleming", grid: int = 401) -> np.ndarray:
    """Two-sided z boundaries at the given information fractions (strictly increasing, in
    (0, 1]). A look that spends (almost) nothing gets an infinite boundary."""
    t = np.asarray(fractions, float)
    if t.ndim != 1 or t.size == 0 or (t <= 0).any() or (t > 1 + 1e-12).any() or (
            np.diff(t) <= 0).any():
        raise ValueError("information fractions must increase strictly within (0, 1]")
    cumulative = spent(t, alpha, spending)
    increments = np.diff(cumulative, prepend=0.0)
    m = grid | 1
    bounds = np.empty(t.size)
    # continuation sub-density of S on a grid; None until the first finite boundary
    points: np.ndarray | None = None
    density: np.ndarray | None = None
    weights: np.ndarray | None = None
    previous_t = 0.0
    for k, (tk, a) in enumerate(zip(t, increments, strict=True)):
        step = tk - previous_t
        if points is None:
            # no earlier stop region: S_k ~ N(0, t_k)
            c = sps.norm.isf(a / 2) if a > 1e-15 else math.inf
            bounds[k] = c
            if math.isfinite(c):
                b = c * math.sqrt(tk)
                points = np.linspace(-b, b, m)
                weights = _simpson(m) * (points[1] - points[0])
                density = sps.norm.pdf(points, scale=math.sqrt(tk))
            previous_t = tk
            continue
        sd = math.sqrt(step)
        mass = density * weights

        def crossing(b: float, mass=mass, sd=sd, points=points) -> float:
            return float(mass @ (special.ndtr((-b - points) / sd)
                                 + special.ndtr((points - b) / sd)))

        if a <= 1e-15:
            b = math.inf
        else:
            high = 1.0
            while crossing(high * math.sqrt(tk)) > a:
                high *= 2
            b = optimize.brentq(lambda x, a=a: crossing(x) - a, 1e-9, high * math.sqrt(tk),
                                xtol=1e-13, rtol=1e-13, maxiter=200)
        bounds[k] = b / math.sqrt(tk)
        if math.isfinite(b):
            new_points = np.linspace(-b, b, m)
            kernel = _normal_pdf((new_points[:, None] - points[None, :]) / sd) / sd
            density = kernel @ mass
            points = new_points
            weights = _simpson(m) * (points[1] - points[0])
        else:  # nothing stops here: the density just spreads
            wide = max(abs(points[0]), 1e-9) + 8 * sd
            new_points = np.linspace(-wide, wide, m)
            kernel = _normal_pdf((new_points[:, None] - points[None, :]) / sd) / sd
            density = kernel @ mass
            points = new_points
            weights = _simpson(m) * (points[1] - points[0])
        previous_t = tk
    return bounds


@lru_cache(maxsize=256)
def _boundaries(fractions: tuple[float, ...], alpha: float, spending: str) -> np.ndarray:
    """boundaries(), remembered: every metric of a variant pair shares its looks."""
    out = boundaries(fractions, alpha, spending)
    out.flags.writeable = False
    return out


def information_fractions(information: Sequence[float], planned: float | None = None
                          ) -> np.ndarray:
    """t_k = I_k / I_max for an information measure that grows with the data (units
    enrolled), I_max the planned information (default: the last look's). Looks that add no
    information get NaN (they cannot reject)."""
    info = np.asarray(information, float)
    info_max = info[-1] if planned is None else max(float(planned), info[-1])
    t = np.minimum(info / info_max, 1.0)
    out = np.full(t.size, np.nan)
    best = 0.0
    for i, ti in enumerate(t):
        if np.isfinite(ti) and ti > best + 1e-12:
            out[i] = best = ti
    return out


def group_sequential(effect: np.ndarray, se: np.ndarray, fractions: np.ndarray, *,
                     alpha: float = 0.05, spending: str = "obrien_fleming"
                     ) -> dict[str, np.ndarray]:
    """Boundaries, decisions and repeated confidence intervals at looks with the given
    information fractions (NaN: a look without new information, never rejects)."""
    d, s, t = (np.asarray(a, float) for a in (effect, se, fractions))
    bound = np.full(t.size, np.inf)
    usable = np.isfinite(t)
    if usable.any():
        bound[usable] = _boundaries(tuple(t[usable].tolist()), alpha, spending)
    z = d / s
    reject = np.logical_or.accumulate(np.abs(z) >= bound)
    half = np.where(np.isfinite(bound), bound * s, np.nan)
    return {"boundary": bound, "z": z, "reject_now": np.abs(z) >= bound, "reject": reject,
            "ci_low": d - half, "ci_high": d + half}
