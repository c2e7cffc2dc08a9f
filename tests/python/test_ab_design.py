"""Experiment design: power, sample size and MDE against statsmodels' power calculators."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.power import NormalIndPower, TTestIndPower
from statsmodels.stats.proportion import proportion_effectsize

from python_jobs.ab import design
from python_jobs.ab.__main__ import main
from python_jobs.ab.stats import proportion_z_test

TIGHT = {"rtol": 1e-9, "atol": 1e-12}
GRID = [(0.05, 100, 0.05, 1.0), (0.2, 50, 0.01, 2.0), (0.5, 30, 0.1, 0.5),
        (0.01, 20_000, 0.05, 1.0), (1.2, 4, 0.05, 3.0)]


@pytest.mark.parametrize(("effect", "n", "alpha", "ratio"), GRID)
def test_normal_power_equals_statsmodels(effect, n, alpha, ratio):
    ours = design.normal_power(effect, n, alpha=alpha, ratio=ratio)
    ref = NormalIndPower().power(effect, n, alpha, ratio=ratio)
    np.testing.assert_allclose(ours, ref, **TIGHT)


@pytest.mark.parametrize(("effect", "n", "alpha", "ratio"), GRID)
def test_t_power_equals_statsmodels(effect, n, alpha, ratio):
    ours = design.t_power(effect, n, alpha=alpha, ratio=ratio)
    ref = TTestIndPower().power(effect, n, alpha, ratio=ratio)
    np.testing.assert_allclose(ours, ref, **TIGHT)


def test_cohens_h_equals_statsmodels_and_inverts():
    for p1, p2 in [(0.3, 0.32), (0.05, 0.04), (0.9, 0.95)]:
        h = design.cohens_h(p1, p2)
        np.testing.assert_allclose(h, proportion_effectsize(p2, p1), **TIGHT)
        np.testing.assert_allclose(design.proportion_from_h(p1, h), p2, **TIGHT)


@pytest.mark.parametrize(("baseline", "mde", "alpha", "power", "ratio"),
                         [(0.30, 0.02, 0.05, 0.8, 1.0), (0.05, -0.01, 0.01, 0.9, 2.0),
                          (0.6, 0.1, 0.1, 0.8, 0.5)])
def test_proportion_sample_size_reaches_power(baseline, mde, alpha, power, ratio):
    plan = design.proportion_sample_size(baseline, mde, alpha=alpha, power=power, ratio=ratio)
    h = proportion_effectsize(baseline + mde, baseline)
    np.testing.assert_allclose(plan.effect_size, h, **TIGHT)
    # the exact n gives exactly the target power under statsmodels' own power function
    achieved = NormalIndPower().power(abs(h), plan.n_control, alpha, ratio=ratio)
    np.testing.assert_allclose(achieved, power, **TIGHT)
    # statsmodels' solver stops at a looser tolerance (power off by ~1e-10): compare to 1e-6
    solved = NormalIndPower().solve_power(abs(h), None, alpha, power, ratio=ratio)
    np.testing.assert_allclose(plan.n_control, solved, rtol=1e-6)
    np.testing.assert_allclose(plan.n_treatment, ratio * plan.n_control, **TIGHT)
    # the textbook closed form ignores the far rejection tail, whose power the exact n counts
    z = stats.norm.isf(alpha / 2) + stats.norm.ppf(power)
    closed_form = z**2 * (1 + 1 / ratio) / h**2
    assert plan.n_control <= closed_form
    np.testing.assert_allclose(plan.n_control, closed_form, rtol=1e-3)
    assert plan.users_control == math.ceil(plan.n_control)


@pytest.mark.parametrize(("sd", "mde", "alpha", "power", "ratio"),
                         [(12, 0.5, 0.05, 0.8, 1.0), (3, 1.5, 0.05, 0.9, 2.0),
                          (1, 2.5, 0.01, 0.8, 1.0)])
def test_mean_sample_size_reaches_power(sd, mde, alpha, power, ratio):
    plan = design.mean_sample_size(sd, mde, alpha=alpha, power=power, ratio=ratio)
    achieved = TTestIndPower().power(mde / sd, plan.n_control, alpha, ratio=ratio)
    np.testing.assert_allclose(achieved, power, **TIGHT)
    solved = TTestIndPower().solve_power(mde / sd, None, alpha, power, ratio=ratio)
    np.testing.assert_allclose(plan.n_control, solved, rtol=1e-6)


@pytest.mark.parametrize(("n", "ratio"), [(5000, 1.0), (800, 3.0), (40, 1.0)])
def test_mde_reaches_power(n, ratio):
    prop = design.proportion_mde(0.30, n, ratio=ratio)
    h = proportion_effectsize(0.30 + prop.mde, 0.30)
    np.testing.assert_allclose(h, prop.effect_size, **TIGHT)
    np.testing.assert_allclose(NormalIndPower().power(h, n, 0.05, ratio=ratio), 0.8, **TIGHT)
    # statsmodels' own solver stops early (power off by ~1e-5), so compare it loosely
    np.testing.assert_allclose(h, NormalIndPower().solve_power(None, n, 0.05, 0.8, ratio=ratio),
                               rtol=1e-3)

    mean = design.mean_mde(12, n, ratio=ratio, baseline=40)
    d = mean.mde / 12
    np.testing.assert_allclose(TTestIndPower().power(d, n, 0.05, ratio=ratio), 0.8, **TIGHT)
    np.testing.assert_allclose(mean.relative_mde, mean.mde / 40, **TIGHT)


def test_design_and_mde_are_inverse():
    plan = design.mean_sample_size(12, 0.5)
    back = design.mean_mde(12, plan.n_control)
    np.testing.assert_allclose(back.mde, 0.5, rtol=1e-9)


def test_unequal_allocation_costs_users_and_smaller_effects_need_more():
    equal = design.proportion_sample_size(0.3, 0.02)
    skewed = design.proportion_sample_size(0.3, 0.02, ratio=3)
    assert skewed.n_control + skewed.n_treatment > equal.n_control + equal.n_treatment
    assert design.proportion_sample_size(0.3, 0.01).n_control > 3.9 * equal.n_control


def test_designed_n_gives_the_planned_power_in_simulation():
    plan = design.proportion_sample_size(0.30, 0.05, power=0.8)
    n = plan.users_control
    rng = np.random.default_rng(7)
    experiments = 3000
    control = rng.binomial(n, 0.30, experiments)
    treatment = rng.binomial(n, 0.35, experiments)
    rejected = proportion_z_test(control, n, treatment, n).p_value < 0.05
    # sd of the estimate is 0.0073: this band is about +-4 sd
    assert 0.77 < rejected.mean() < 0.83


def test_bad_inputs_raise():
    with pytest.raises(ValueError):
        design.proportion_sample_size(0.99, 0.02)
    with pytest.raises(ValueError):
        design.mean_sample_size(0, 1)
    with pytest.raises(ValueError):
        design.proportion_sample_size(0.3, 0.02, power=0.01)
    with pytest.raises(ValueError):
        design.proportion_mde(0.999, 20)


def test_cli_design_prints_required_users(capsys):
    assert main(["design", "--metric", "proportion", "--baseline", "0.30", "--mde", "0.02"]) == 0
    h = proportion_effectsize(0.32, 0.30)
    expected = math.ceil(NormalIndPower().solve_power(h, None, 0.05, 0.8, ratio=1))
    out = capsys.readouterr().out
    assert f"{expected:,}" in out
    assert main(["design", "--metric", "mean", "--sd", "12", "--n-per-arm", "5000"]) == 0
    assert "mean" in capsys.readouterr().out


def test_cli_rejects_incomplete_arguments(capsys):
    assert main(["analyze"]) == 2
    assert "--experiment" in capsys.readouterr().err
    assert main(["design", "--metric", "mean", "--mde", "1"]) == 2
