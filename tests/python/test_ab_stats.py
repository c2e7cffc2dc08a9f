"""A/B statistics against independent references, plus simulations with planted truth."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from scipy import stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import NormalIndPower, TTestIndPower
from statsmodels.stats.proportion import (
    confint_proportions_2indep,
    proportion_effectsize,
    proportions_ztest,
)

from python_jobs.ab import stats as ab

TIGHT = {"rtol": 1e-9, "atol": 1e-12}
Z95 = stats.norm.isf(0.025)


def close(actual, desired):
    np.testing.assert_allclose(actual, desired, **TIGHT)


def coverage(low, high, truth) -> float:
    """Share of intervals [low, high] that contain the true value."""
    return float(((low <= truth) & (high >= truth)).mean())


@pytest.fixture
def rng():
    return np.random.default_rng(20240301)


# --- references to 1e-9 -------------------------------------------------------------------

@pytest.mark.parametrize(("n_c", "n_t", "alpha"), [(500, 500, 0.05), (80, 300, 0.1),
                                                   (12, 7, 0.01)])
def test_welch_equals_scipy(rng, n_c, n_t, alpha):
    c = rng.lognormal(3.0, 1.0, n_c)
    t = rng.lognormal(3.1, 1.3, n_t)
    ours = ab.welch_t_test(c, t, alpha=alpha)
    ref = stats.ttest_ind(t, c, equal_var=False)
    ci = ref.confidence_interval(1 - alpha)
    close([ours.statistic, ours.p_value, ours.df, ours.ci_low, ours.ci_high],
          [ref.statistic, ref.pvalue, ref.df, ci.low, ci.high])
    close(ours.effect, t.mean() - c.mean())
    close(ours.relative_effect, t.mean() / c.mean() - 1)
    pooled_sd = np.sqrt(((n_c - 1) * c.var(ddof=1) + (n_t - 1) * t.var(ddof=1))
                        / (n_c + n_t - 2))
    close(ours.effect_size, (t.mean() - c.mean()) / pooled_sd)
    close(ours.achieved_power,
          TTestIndPower().power(ours.effect_size, n_c, alpha, ratio=n_t / n_c))


def test_relative_lift_is_the_delta_method(rng):
    c, t = rng.normal(10, 3, 400), rng.normal(11, 4, 300)
    ours = ab.welch_t_test(c, t)
    # gradient of m_t/m_c: (1/m_c, -m_t/m_c^2), arms independent
    var_c, var_t = c.var(ddof=1) / c.size, t.var(ddof=1) / t.size
    se = np.sqrt(var_t / c.mean() ** 2 + (t.mean() / c.mean() ** 2) ** 2 * var_c)
    close([ours.relative_ci_low, ours.relative_ci_high],
          [ours.relative_effect - Z95 * se, ours.relative_effect + Z95 * se])


@pytest.mark.parametrize(("x_c", "n_c", "x_t", "n_t"), [(300, 1000, 345, 1000),
                                                        (1520, 50_000, 1610, 48_500),
                                                        (9, 40, 17, 45)])
def test_two_proportion_z_equals_statsmodels(x_c, n_c, x_t, n_t):
    ours = ab.proportion_z_test(x_c, n_c, x_t, n_t)
    z, p = proportions_ztest([x_t, x_c], [n_t, n_c])
    low, high = confint_proportions_2indep(x_t, n_t, x_c, n_c, method="wald", compare="diff")
    close([ours.statistic, ours.p_value, ours.ci_low, ours.ci_high], [z, p, low, high])
    h = proportion_effectsize(x_t / n_t, x_c / n_c)
    close(ours.effect_size, h)
    close(ours.achieved_power, NormalIndPower().power(h, n_c, 0.05, ratio=n_t / n_c))


def test_relative_lift_of_rates_agrees_with_log_ratio_interval():
    # different method (log transform), so only loosely: both are right for large samples
    ours = ab.proportion_z_test(15_000, 50_000, 15_600, 50_000)
    low, high = confint_proportions_2indep(15_600, 50_000, 15_000, 50_000, method="log",
                                           compare="ratio")
    np.testing.assert_allclose([ours.relative_ci_low, ours.relative_ci_high],
                               [low - 1, high - 1], atol=2e-4)


def test_chi_square_equals_scipy_and_is_z_squared_for_two_arms():
    successes, totals = [300, 345, 310, 290], [1000, 1000, 980, 1020]
    ours = ab.chi_square_independence(successes, totals)
    table = np.column_stack([successes, np.subtract(totals, successes)])
    ref = stats.chi2_contingency(table, correction=False)
    close([ours.statistic, ours.p_value], [ref.statistic, ref.pvalue])
    assert ours.df == ref.dof
    close(ours.expected, ref.expected_freq)
    two = ab.chi_square_independence(successes[:2], totals[:2])
    close(two.statistic, ab.proportion_z_test(300, 1000, 345, 1000).statistic ** 2)


def _plays(rng, users, skip_rate, size=None):
    """Per-user plays and skips: heavy users differ, skip propensity varies by user."""
    shape = (users,) if size is None else (size, users)
    plays = rng.poisson(rng.gamma(2.0, 10.0, shape)) + 1
    propensity = rng.beta(skip_rate * 8, (1 - skip_rate) * 8, shape)
    return rng.binomial(plays, propensity), plays


def test_ratio_delta_method_equals_linearisation(rng):
    skips_c, plays_c = _plays(rng, 3000, 0.30)
    skips_t, plays_t = _plays(rng, 2500, 0.27)
    ours = ab.ratio_test(skips_c, plays_c, skips_t, plays_t)

    def linearised(num, den):
        # R = sum(num)/sum(den); influence of one user: (num - R den) / mean(den)
        r = num.sum() / den.sum()
        return r, ((num - r * den) / den.mean()).var(ddof=1) / num.size

    r_c, v_c = linearised(skips_c, plays_c)
    r_t, v_t = linearised(skips_t, plays_t)
    se = np.sqrt(v_c + v_t)
    z = (r_t - r_c) / se
    close([ours.value_control, ours.value_treatment], [r_c, r_t])
    close([ours.se, ours.statistic, ours.p_value],
          [se, z, 2 * stats.norm.sf(abs(z))])
    close([ours.ci_low, ours.ci_high], [r_t - r_c - Z95 * se, r_t - r_c + Z95 * se])
    rel_se = np.sqrt(v_t / r_c**2 + r_t**2 * v_c / r_c**4)
    close([ours.relative_ci_low, ours.relative_ci_high],
          [r_t / r_c - 1 - Z95 * rel_se, r_t / r_c - 1 + Z95 * rel_se])


def test_ratio_delta_method_agrees_with_bootstrap(rng):
    skips_c, plays_c = _plays(rng, 2000, 0.30)
    skips_t, plays_t = _plays(rng, 2000, 0.27)
    ours = ab.ratio_test(skips_c, plays_c, skips_t, plays_t)
    boot = 1000
    i_c = rng.integers(0, 2000, (boot, 2000))
    i_t = rng.integers(0, 2000, (boot, 2000))
    r_c = skips_c[i_c].sum(axis=1) / plays_c[i_c].sum(axis=1)
    r_t = skips_t[i_t].sum(axis=1) / plays_t[i_t].sum(axis=1)
    # a bootstrap SE from 1000 resamples is itself uncertain by ~2.5%
    np.testing.assert_allclose((r_t - r_c).std(ddof=1), ours.se, rtol=0.1)
    rel_half = (ours.relative_ci_high - ours.relative_ci_low) / 2
    np.testing.assert_allclose((r_t / r_c - 1).std(ddof=1), rel_half / Z95, rtol=0.1)


def test_cuped_equals_regression_with_arm_effects(rng):
    pre = rng.gamma(2.0, 20.0, 1200)
    arm = np.repeat(["control", "treatment"], 600)
    y = 5 + 0.8 * pre + rng.normal(0, 15, 1200) + np.where(arm == "treatment", 3.0, 0.0)
    c, t = arm == "control", arm == "treatment"
    fit = ab.cuped_theta([y[c], y[t]], [pre[c], pre[t]])
    # theta is the slope of y on pre with a separate intercept per arm
    ols = smf.ols("y ~ pre + C(arm)", data=pd.DataFrame({"y": y, "pre": pre, "arm": arm})).fit()
    close(fit.theta, ols.params["pre"])
    adjusted = y - fit.theta * (pre - pre.mean())
    ours = ab.cuped_test(y[c], pre[c], y[t], pre[t])
    # centred on the grand pre-period mean, so arm means stay on the metric's own scale
    close(ours.value_control, y[c].mean() - fit.theta * (pre[c].mean() - pre.mean()))
    close(ours.relative_effect, adjusted[t].mean() / adjusted[c].mean() - 1)
    ref = stats.ttest_ind(adjusted[t], adjusted[c], equal_var=False)
    close([ours.statistic, ours.p_value, ours.df], [ref.statistic, ref.pvalue, ref.df])

    def pooled_var(v):
        return (((v[c] - v[c].mean()) ** 2).sum() + ((v[t] - v[t].mean()) ** 2).sum()) / 1198

    close(ours.variance_reduction, 1 - pooled_var(adjusted) / pooled_var(y))


@pytest.mark.parametrize("counts", [[50_210, 49_790], [33_000, 33_500, 33_100]])
def test_srm_equals_scipy_chisquare(counts):
    ours = ab.sample_ratio_mismatch(counts)
    ref = stats.chisquare(counts)
    close([ours.statistic, ours.p_value], [ref.statistic, ref.pvalue])
    weighted = ab.sample_ratio_mismatch(counts[:2], [0.6, 0.4])
    total = sum(counts[:2])
    ref = stats.chisquare(counts[:2], [0.6 * total, 0.4 * total])
    close([weighted.statistic, weighted.p_value], [ref.statistic, ref.pvalue])


def test_holm_and_bh_equal_statsmodels(rng):
    for p in [rng.uniform(0, 0.1, 12), np.array([0.01, 0.04, 0.04, 0.03, 0.9, 0.005, 0.04]),
              rng.uniform(0, 1, 30), np.array([0.2])]:
        close(ab.holm(p), multipletests(p, method="holm")[1])
        close(ab.benjamini_hochberg(p), multipletests(p, method="fdr_bh")[1])
        close(ab.adjust_p_values(p, "bh"), multipletests(p, method="fdr_bh")[1])
        close(ab.adjust_p_values(p, None), p)
    # by hand: sorted p 0.005, 0.01, 0.03, 0.04; Holm x4, x3, x2, x1 then running max;
    # BH x4/1, x4/2, x4/3, x4/4 then running min from the largest
    p = np.array([0.01, 0.04, 0.03, 0.005])
    close(ab.holm(p), [0.03, 0.06, 0.06, 0.02])
    close(ab.benjamini_hochberg(p), [0.02, 0.04, 0.04, 0.02])
    # a missing p-value stays missing and is not counted in the family (as R's p.adjust)
    close(ab.holm([0.01, np.nan, 0.04]), [0.02, np.nan, 0.04])


# --- simulations with planted truth --------------------------------------------------------

def test_aa_false_positive_rate_welch_and_z(rng):
    experiments, users = 4000, 200
    # skewed like listening minutes; both arms from the same distribution
    c = rng.lognormal(3.0, 1.0, (experiments, users))
    t = rng.lognormal(3.0, 1.0, (experiments, users))
    welch = ab.welch_from_moments(c.mean(1), c.var(1, ddof=1), users,
                                  t.mean(1), t.var(1, ddof=1), users)
    # sd of a 5% rate over 4000 experiments is 0.34 points: [3.5%, 6.5%] is +-4.4 sd
    assert 0.035 <= (welch.p_value < 0.05).mean() <= 0.065
    x_c = rng.binomial(2000, 0.12, experiments)
    x_t = rng.binomial(2000, 0.12, experiments)
    z = ab.proportion_z_test(x_c, 2000, x_t, 2000)
    assert 0.035 <= (z.p_value < 0.05).mean() <= 0.065


def test_aa_false_positive_rate_ratio(rng):
    experiments, users = 2000, 300
    skips_c, plays_c = _plays(rng, users, 0.3, experiments)
    skips_t, plays_t = _plays(rng, users, 0.3, experiments)
    result = ab.ratio_from_moments(_moments(skips_c, plays_c), _moments(skips_t, plays_t))
    assert 0.035 <= (result.p_value < 0.05).mean() <= 0.065


def _moments(num, den):
    n = num.shape[1]
    cov = ((num - num.mean(1, keepdims=True)) * (den - den.mean(1, keepdims=True))).sum(1)
    return (n, num.mean(1), den.mean(1), num.var(1, ddof=1), den.var(1, ddof=1), cov / (n - 1))


def test_planted_effects_are_recovered_and_cis_cover(rng):
    experiments, users = 2000, 400
    c = rng.normal(30.0, 12.0, (experiments, users))
    t = rng.normal(31.5, 12.0, (experiments, users))  # +1.5, i.e. +5%
    welch = ab.welch_from_moments(c.mean(1), c.var(1, ddof=1), users,
                                  t.mean(1), t.var(1, ddof=1), users)
    # sd of 95% coverage over 2000 experiments is 0.49 points
    assert 0.93 <= coverage(welch.ci_low, welch.ci_high, 1.5) <= 0.97
    assert 0.93 <= coverage(welch.relative_ci_low, welch.relative_ci_high, 0.05) <= 0.97
    np.testing.assert_allclose(welch.effect.mean(), 1.5, atol=0.05)

    x_c = rng.binomial(5000, 0.30, experiments)
    x_t = rng.binomial(5000, 0.33, experiments)
    z = ab.proportion_z_test(x_c, 5000, x_t, 5000)
    assert 0.93 <= coverage(z.ci_low, z.ci_high, 0.03) <= 0.97
    assert 0.93 <= coverage(z.relative_ci_low, z.relative_ci_high, 0.1) <= 0.97

    # skip rate: propensity Beta(a, b) independent of plays, so the true ratio is its mean
    skips_c, plays_c = _plays(rng, 500, 0.30, experiments)
    skips_t, plays_t = _plays(rng, 500, 0.27, experiments)
    ratio = ab.ratio_from_moments(_moments(skips_c, plays_c), _moments(skips_t, plays_t))
    truth = 0.27 - 0.30
    assert 0.93 <= coverage(ratio.ci_low, ratio.ci_high, truth) <= 0.97
    rel_truth = 0.27 / 0.30 - 1
    assert 0.93 <= coverage(ratio.relative_ci_low, ratio.relative_ci_high, rel_truth) <= 0.97


def test_one_planted_lift_is_found(rng):
    c = rng.normal(30.0, 12.0, 20_000)
    t = rng.normal(30.6, 12.0, 20_000)
    result = ab.welch_t_test(c, t)
    assert result.ci_low <= 0.6 <= result.ci_high
    assert result.p_value < 0.05


def _correlated(rng, n, rho, lift):
    pre = rng.normal(40.0, 12.0, n)
    noise = rng.normal(0.0, 12.0, n)
    return 40.0 + rho * (pre - 40.0) + np.sqrt(1 - rho**2) * noise + lift, pre


def test_cuped_reduces_variance_and_still_covers(rng):
    y_c, pre_c = _correlated(rng, 5000, 0.8, 0.0)
    y_t, pre_t = _correlated(rng, 5000, 0.8, 0.8)
    plain = ab.welch_t_test(y_c, y_t)
    cuped = ab.cuped_test(y_c, pre_c, y_t, pre_t)
    # rho = 0.8: the pre-period explains rho^2 = 64% of the variance
    assert 0.58 <= cuped.variance_reduction <= 0.70
    width = cuped.ci_high - cuped.ci_low
    np.testing.assert_allclose(width / (plain.ci_high - plain.ci_low),
                               np.sqrt(1 - cuped.variance_reduction), rtol=0.02)
    assert cuped.ci_low <= 0.8 <= cuped.ci_high

    covered = []
    for _ in range(1000):
        y_c, pre_c = _correlated(rng, 200, 0.7, 0.0)
        y_t, pre_t = _correlated(rng, 200, 0.7, 0.8)
        r = ab.cuped_test(y_c, pre_c, y_t, pre_t)
        covered.append(r.ci_low <= 0.8 <= r.ci_high)
    # sd of coverage over 1000 experiments is 0.7 points
    assert 0.93 <= np.mean(covered) <= 0.97


def test_srm_flags_skewed_allocation_not_fair_ones(rng):
    skewed = ab.sample_ratio_mismatch([52_000, 48_000])
    assert skewed.is_mismatch and skewed.p_value < 1e-30
    assert not ab.sample_ratio_mismatch([50_000, 50_000]).is_mismatch
    assert not ab.sample_ratio_mismatch([90_150, 9_850], [0.9, 0.1]).is_mismatch
    assert ab.sample_ratio_mismatch([90_150, 9_850]).is_mismatch
    fair = rng.binomial(100_000, 0.5, 2000)
    flagged = [ab.sample_ratio_mismatch([k, 100_000 - k]).is_mismatch for k in fair]
    # expected false alarms: 0.1% of 2000 = 2
    assert sum(flagged) <= 10
    assert ab.sample_ratio_mismatch([50_400, 49_600], threshold=0.05).is_mismatch


# --- analyze_metric ------------------------------------------------------------------------

def test_analyze_metric_mean_compares_every_variant_with_control(rng):
    values = {"control": rng.normal(30, 12, 3000), "a": rng.normal(30.2, 12, 3000),
              "b": rng.normal(31.5, 12, 2900)}
    rows = ab.analyze_metric("minutes_played", values, experiment_id="exp_1")
    assert [r.variant for r in rows] == ["control", "a", "b"]
    assert rows[0].is_control and rows[0].effect is None and rows[0].p_value is None
    close(rows[0].value, values["control"].mean())
    singles = [ab.welch_t_test(values["control"], values[v]) for v in ("a", "b")]
    for row, single in zip(rows[1:], singles, strict=True):
        close([row.effect, row.ci_low, row.ci_high, row.p_value, row.effect_size],
              [single.effect, single.ci_low, single.ci_high, single.p_value,
               single.effect_size])
        assert row.n_control == 3000 and row.method == "welch_t"
    close([r.p_value_adjusted for r in rows[1:]],
          multipletests([s.p_value for s in singles], method="holm")[1])
    assert rows[2].is_significant

    frame = ab.rows_to_frame(rows)
    assert frame.shape == (3, len(ab.MetricRow.__dataclass_fields__))
    assert frame["experiment_id"].eq("exp_1").all()


def test_analyze_metric_other_kinds(rng):
    conv = {"control": rng.binomial(1, 0.30, 4000), "b": rng.binomial(1, 0.33, 4000)}
    row = ab.analyze_metric("converted", conv, kind="proportion", correction="bh")[1]
    single = ab.proportion_z_test(conv["control"].sum(), 4000, conv["b"].sum(), 4000)
    close([row.p_value, row.p_value_adjusted, row.ci_low], [single.p_value] * 2 + [single.ci_low])
    assert row.effect_size_kind == "cohens_h"

    skips_c, plays_c = _plays(rng, 1000, 0.3)
    skips_t, plays_t = _plays(rng, 1000, 0.25)
    row = ab.analyze_metric("skip_rate", {"control": skips_c, "t": skips_t}, kind="ratio",
                            denominators={"control": plays_c, "t": plays_t})[1]
    close(row.p_value, ab.ratio_test(skips_c, plays_c, skips_t, plays_t).p_value)

    arms = {v: _correlated(rng, 1500, 0.7, lift) for v, lift in
            [("control", 0.0), ("a", 0.5), ("b", 1.0)]}
    rows = ab.analyze_metric("minutes", {v: y for v, (y, _) in arms.items()}, kind="cuped",
                             pre_period={v: pre for v, (_, pre) in arms.items()})
    # one theta for all three arms, not one per pair
    fit = ab.cuped_theta([y for y, _ in arms.values()], [pre for _, pre in arms.values()])
    shared = ab.cuped_test(*arms["control"], *arms["b"], fit=fit)
    close(rows[2].p_value, shared.p_value)
    close(rows[2].variance_reduction, fit.variance_reduction)
    close(rows[2].value - rows[0].value, rows[2].effect)


def test_analyze_metric_rejects_bad_input(rng):
    with pytest.raises(ValueError, match="control"):
        ab.analyze_metric("m", {"a": [1.0, 2.0], "b": [1.0, 3.0]})
    with pytest.raises(ValueError, match="0/1"):
        ab.analyze_metric("m", {"control": [0, 2, 1], "b": [1, 0, 1]}, kind="proportion")
    with pytest.raises(ValueError, match="denominators"):
        ab.analyze_metric("m", {"control": [1, 2], "b": [1, 3]}, kind="ratio")
    with pytest.raises(ValueError, match="finite"):
        ab.analyze_metric("m", {"control": [1.0, np.nan], "b": [1.0, 3.0]})
