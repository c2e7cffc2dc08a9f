"""The methods added for issue 23 against references: statsmodels/scipy to 1e-9 where they
have the method (regression adjustment, one-sided and non-inferiority tests, capping, the
ratio and non-inferiority designs), the published formulas with hand-computed cases where
they do not (mSPRT, GrowthBook's confidence sequence, alpha spending, the Bayesian read-out),
and the metric definitions and input parsing."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy import integrate, stats
from statsmodels.stats import proportion as sm_proportion
from statsmodels.stats.power import NormalIndPower
from statsmodels.stats.proportion import proportions_ztest
from statsmodels.stats.weightstats import ttest_ind

from python_jobs.ab import daily, decision, design, inputs, metrics, regression, sequential
from python_jobs.ab import stats as ab

TIGHT = {"rtol": 1e-9, "atol": 1e-12}


def close(actual, desired):
    np.testing.assert_allclose(actual, desired, **TIGHT)


@pytest.fixture
def rng():
    return np.random.default_rng(23)


def _arms(rng, n_c=400, n_t=350, k=2, effect=0.3):
    """Outcome y, covariates x (n, k) per arm, y correlated with x."""
    out = {}
    for arm, n, shift in (("control", n_c, 0.0), ("treatment", n_t, effect)):
        x = rng.normal(5, 2, (n, k))
        y = 1.0 + x @ np.linspace(0.8, 0.2, k) + rng.normal(0, 1.5, n) + shift
        out[arm] = (y, x)
    return out


def _ols_treatment(y_c, x_c, y_t, x_t):
    """OLS y ~ 1 + treatment + X: the treatment coefficient, and the residual SS with and
    without X (for the variance reduction)."""
    y = np.concatenate([y_c, y_t])
    treat = np.r_[np.zeros(len(y_c)), np.ones(len(y_t))]
    x = np.vstack([x_c, x_t])
    full = sm.OLS(y, sm.add_constant(np.column_stack([treat, x]))).fit()
    arms_only = sm.OLS(y, sm.add_constant(treat)).fit()
    return full.params[1], full.ssr, arms_only.ssr


# --- CUPED / regression adjustment --------------------------------------------------------

def test_one_covariate_on_a_mean_is_the_existing_cuped(rng):
    arms = _arms(rng, k=1)
    (yc, xc), (yt, xt) = arms["control"], arms["treatment"]
    fit = regression.fit("mean", {"control": yc, "treatment": yt},
                         {"control": xc, "treatment": xt})
    ours = regression.adjusted_test("mean", fit, "control", "treatment")
    ref = ab.cuped_test(yc, xc[:, 0], yt, xt[:, 0])
    for field in ("effect", "se", "ci_low", "ci_high", "statistic", "df", "p_value",
                  "value_control", "value_treatment", "variance_reduction"):
        close(getattr(ours, field), getattr(ref, field))


@pytest.mark.parametrize("kind", ["mean", "proportion"])
def test_several_covariates_equal_the_ols_treatment_coefficient(rng, kind):
    arms = _arms(rng, k=3)
    if kind == "proportion":
        arms = {a: ((y > np.median(y)).astype(float), x) for a, (y, x) in arms.items()}
    (yc, xc), (yt, xt) = arms["control"], arms["treatment"]
    fit = regression.fit(kind, {"control": yc, "treatment": yt},
                         {"control": xc, "treatment": xt})
    ours = regression.adjusted_test(kind, fit, "control", "treatment")
    coefficient, ssr_full, ssr_arms = _ols_treatment(yc, xc, yt, xt)
    close(ours.effect, coefficient)
    close(fit.variance_reduction, 1 - ssr_full / ssr_arms)
    if kind == "proportion":  # normal test on the adjusted values, unpooled variances
        uc, ut = fit.adjusted["control"], fit.adjusted["treatment"]
        se = math.sqrt(uc.var(ddof=1) / uc.size + ut.var(ddof=1) / ut.size)
        close(ours.se, se)
        close(ours.p_value, 2 * stats.norm.sf(abs(coefficient / se)))
        assert ours.method == "cuped_proportion_z"


def test_ratio_cuped_adjusts_the_linearised_values(rng):
    """Reference by hand: l = (x - R y) / mean(y) per arm, theta from the OLS of l on arm
    dummies and the covariates (statsmodels), adjusted R_a = R_a - theta'(mean_a(X) - mean(X)),
    variance = within-arm var(residual) / n."""
    data, cov = {}, {}
    for arm, n, lift in (("control", 500, 0.0), ("treatment", 450, 0.02)):
        plays = rng.poisson(20, n) + 1
        pre_plays = np.maximum(plays + rng.normal(0, 4, n), 0)
        skips = rng.binomial(plays, 0.3 + lift)
        pre_skips = rng.binomial(np.round(pre_plays).astype(int), 0.3)
        data[arm] = (skips.astype(float), plays.astype(float))
        cov[arm] = np.column_stack([pre_skips, pre_plays])
    fit = regression.fit("ratio", {a: d[0] for a, d in data.items()}, cov,
                         {a: d[1] for a, d in data.items()})
    ours = regression.adjusted_test("ratio", fit, "control", "treatment")
    lin, ratios = {}, {}
    for arm, (x, y) in data.items():
        ratios[arm] = x.sum() / y.sum()
        lin[arm] = (x - ratios[arm] * y) / y.mean()
    arm_dummy = np.r_[np.zeros(500), np.ones(450)]
    design_matrix = sm.add_constant(np.column_stack([arm_dummy, np.vstack(
        [cov["control"], cov["treatment"]])]))
    ols = sm.OLS(np.concatenate([lin["control"], lin["treatment"]]), design_matrix).fit()
    theta = ols.params[2:]
    close(fit.theta, theta)
    grand = np.vstack([cov["control"], cov["treatment"]]).mean(axis=0)
    adjusted = {a: ratios[a] - theta @ (cov[a].mean(axis=0) - grand) for a in data}
    close(ours.value_control, adjusted["control"])
    close(ours.effect, adjusted["treatment"] - adjusted["control"])
    resid = {a: lin[a] - cov[a] @ theta for a in data}
    se = math.sqrt(sum(resid[a].var(ddof=1) / resid[a].size for a in data))
    close(ours.se, se)
    # without any correlation to exploit the estimate stays the ratio test's
    plain = ab.ratio_test(*data["control"], *data["treatment"])
    assert abs(ours.effect - plain.effect) < 3 * plain.se
    assert ours.se < plain.se  # the pre-period explains part of the variance


def test_collinear_covariates_are_refused(rng):
    x = rng.normal(size=(50, 1))
    with pytest.raises(ValueError, match="collinear"):
        regression.fit("mean", {"a": rng.normal(size=50), "b": rng.normal(size=50)},
                       {"a": np.hstack([x, 2 * x]), "b": np.hstack([x, 2 * x])})


# --- capping ------------------------------------------------------------------------------

def test_percentile_cap_uses_the_pooled_quantile_and_counts_capped_units(rng):
    values = {"a": rng.lognormal(2, 1, 300), "b": rng.lognormal(2, 1, 280)}
    values["b"][5] = 1e6
    capped = metrics.cap_values(values, metrics.Cap(percentile=0.99))
    threshold = np.quantile(np.concatenate(list(values.values())), 0.99)
    close(capped.threshold, threshold)
    for arm in values:
        close(capped.values[arm], np.minimum(values[arm], threshold))
        assert capped.capped_units[arm].sum() == (values[arm] > threshold).sum()
    ours = ab.welch_t_test(capped.values["a"], capped.values["b"])
    ref = stats.ttest_ind(np.minimum(values["b"], threshold),
                          np.minimum(values["a"], threshold), equal_var=False)
    close([ours.statistic, ours.p_value], [ref.statistic, ref.pvalue])
    absolute = metrics.cap_values(values, metrics.Cap(absolute=50.0))
    assert absolute.threshold == 50.0 and max(v.max() for v in absolute.values.values()) == 50


# --- one-sided tests: harm and non-inferiority --------------------------------------------

def test_harm_and_noninferiority_of_means_equal_statsmodels(rng):
    c, t = rng.normal(10, 3, 300), rng.normal(9.7, 3.5, 260)
    result = ab.welch_t_test(c, t)
    close(decision.harm_p_value(result, "increase"),
          ttest_ind(t, c, usevar="unequal", alternative="smaller")[1])
    close(decision.harm_p_value(result, "decrease"),
          ttest_ind(t, c, usevar="unequal", alternative="larger")[1])
    margin = 0.05
    close(decision.noninferiority_p_value(result, margin, "increase"),
          ttest_ind(t, c, usevar="unequal", alternative="larger",
                    value=-margin * c.mean())[1])
    close(decision.noninferiority_p_value(result, margin, "decrease"),
          ttest_ind(t, c, usevar="unequal", alternative="smaller",
                    value=margin * c.mean())[1])


def test_harm_and_noninferiority_of_proportions_equal_statsmodels():
    xc, nc, xt, nt = 420, 1500, 380, 1480
    result = ab.proportion_z_test(xc, nc, xt, nt)
    close(decision.harm_p_value(result, "increase"),
          proportions_ztest([xt, xc], [nt, nc], alternative="smaller")[1])
    margin = 0.02
    ref = sm_proportion.test_proportions_2indep(
        xt, nt, xc, nc, value=-margin * xc / nc, method="wald", compare="diff",
        alternative="larger", correction=False)
    close(decision.noninferiority_p_value(result, margin, "increase"), ref.pvalue)


# --- Bayesian read-out ----------------------------------------------------------------------

def test_bayes_flat_prior_matches_numerical_integration():
    lift, se = 0.012, 0.009
    out = decision.bayes(lift, se, "increase")
    close(out["chance_to_beat_control"], stats.norm.sf(0, lift, se))
    loss, _ = integrate.quad(lambda x: max(0.0, -x) * stats.norm.pdf(x, lift, se),
                             lift - 12 * se, lift + 12 * se, points=[0.0], epsabs=1e-14)
    np.testing.assert_allclose(out["expected_loss"], loss, rtol=1e-8)
    down = decision.bayes(lift, se, "decrease")
    close(down["chance_to_beat_control"], 1 - out["chance_to_beat_control"])
    loss_down, _ = integrate.quad(lambda x: max(0.0, x) * stats.norm.pdf(x, lift, se),
                                  lift - 12 * se, lift + 12 * se, points=[0.0], epsabs=1e-14)
    np.testing.assert_allclose(down["expected_loss"], loss_down, rtol=1e-8)


def test_bayes_proper_prior_is_the_conjugate_normal_posterior():
    lift, se, prior_sd = 0.05, 0.04, 0.03
    out = decision.bayes(lift, se, prior_sd=prior_sd)
    # posterior by numerical integration of prior x likelihood
    def unnormalised(x):
        return stats.norm.pdf(x, 0, prior_sd) * stats.norm.pdf(lift, x, se)
    mass, _ = integrate.quad(unnormalised, -1, 1, epsabs=1e-14)
    mean, _ = integrate.quad(lambda x: x * unnormalised(x), -1, 1, epsabs=1e-14)
    second, _ = integrate.quad(lambda x: x * x * unnormalised(x), -1, 1, epsabs=1e-14)
    mu, sd = mean / mass, math.sqrt(second / mass - (mean / mass) ** 2)
    np.testing.assert_allclose(out["credible_low"], mu - stats.norm.isf(0.025) * sd, rtol=1e-7)
    np.testing.assert_allclose(out["chance_to_beat_control"], stats.norm.sf(0, mu, sd),
                               rtol=1e-7)


# --- sequential: mSPRT / confidence sequences -----------------------------------------------

def test_msprt_hand_computed_case():
    # d = 1, V = 0.25, tau2 = 1: Lambda = sqrt(0.25 / 1.25) exp(1 / (2 * 0.25 * 1.25))
    expected = 1 / (math.sqrt(0.2) * math.exp(1.6))
    close(sequential.msprt_p_value(1.0, 0.25, 1.0), expected)
    close(sequential.msprt_halfwidth(0.25, 1.0, 0.05),
          math.sqrt(2 * 0.25 * 1.25 / 1.0 * math.log(math.sqrt(5) / 0.05)))


def test_confidence_sequence_is_growthbooks_and_agrees_with_the_p_value(rng):
    alpha, tuning = 0.05, 5000
    rho = math.sqrt((-2 * math.log(alpha) + math.log(-2 * math.log(alpha) + 1)) / tuning)
    n = np.array([200.0, 1000, 5000, 20000])
    s2 = np.array([4.0, 4.0, 9.0, 1.0])  # per-unit variance of the effect
    variance = s2 / n
    tau2 = sequential.mixture_variance(variance, n, alpha, tuning)
    growthbook = np.sqrt(s2) * np.sqrt(2 * (n * rho**2 + 1) / (n**2 * rho**2)
                                       * np.log(np.sqrt(n * rho**2 + 1) / alpha))
    close(sequential.msprt_halfwidth(variance, tau2, alpha), growthbook)
    effects = rng.normal(0, 3, 400) * np.sqrt(variance[1])
    p = sequential.msprt_p_value(effects, variance[1], tau2[1])
    half = sequential.msprt_halfwidth(variance[1], tau2[1], alpha)
    assert ((p < alpha) == (np.abs(effects) > half)).all()


def test_always_valid_takes_running_minimum_and_intersection():
    out = sequential.always_valid(np.array([[0.5, 0.1, 0.4]]), np.array([[0.04, 0.02, 0.01]]),
                                  np.array([[100, 200, 400]]))
    assert (np.diff(out["p_value"][0]) <= 0).all()
    assert (np.diff(out["ci_low"][0]) >= 0).all() and (np.diff(out["ci_high"][0]) <= 0).all()


# --- sequential: alpha spending ---------------------------------------------------------------

def _crossing_probabilities(bounds, fractions):
    """P(first crossing by look k) under H0 from the exact multivariate normal of (Z_1..Z_k),
    corr(Z_i, Z_j) = sqrt(t_i / t_j): scipy's rectangle probabilities."""
    t = np.asarray(fractions)
    corr = np.sqrt(np.minimum.outer(t, t) / np.maximum.outer(t, t))
    out = []
    for k in range(1, len(t) + 1):
        mvn = stats.multivariate_normal(np.zeros(k), corr[:k, :k], abseps=1e-7, releps=1e-7)
        b = np.asarray(bounds[:k])
        out.append(1 - mvn.cdf(b, lower_limit=-b))
    return np.array(out)


@pytest.mark.parametrize("spending", ["obrien_fleming", "pocock"])
@pytest.mark.parametrize("fractions", [[1.0], [0.5, 1.0], [0.3, 0.6, 1.0]])
def test_boundaries_spend_exactly_the_planned_alpha(spending, fractions):
    bounds = sequential.boundaries(fractions, 0.05, spending)
    planned = sequential.spent(np.array(fractions), 0.05, spending)
    # the first look has a closed form
    close(bounds[0], stats.norm.isf(planned[0] / 2))
    np.testing.assert_allclose(_crossing_probabilities(bounds, fractions), planned, atol=2e-7)
    if fractions == [1.0]:
        close(bounds[0], stats.norm.isf(0.025))


def test_spending_functions_are_the_published_formulas():
    t = np.array([0.25, 0.5, 1.0])
    close(sequential.spent(t, 0.05, "obrien_fleming"),
          2 - 2 * stats.norm.cdf(stats.norm.isf(0.025) / np.sqrt(t)))
    close(sequential.spent(t, 0.05, "pocock"), 0.05 * np.log(1 + (math.e - 1) * t))


def test_information_fractions_skip_looks_without_new_information():
    t = sequential.information_fractions([100, 200, 200, 400])
    np.testing.assert_allclose(t, [0.25, 0.5, np.nan, 1.0])
    out = sequential.group_sequential(np.array([1.0, 1.0, 9.0, 0.1]), np.ones(4), t)
    assert not out["reject_now"][2] and np.isinf(out["boundary"][2])


# --- design -----------------------------------------------------------------------------------

def test_ratio_sd_is_the_sd_of_the_linearised_values(rng):
    y = rng.poisson(20, 5000) + 1.0
    x = rng.binomial(y.astype(int), 0.3).astype(float)
    r = x.sum() / y.sum()
    linearised = (x - r * y) / y.mean()
    corr = np.corrcoef(x, y)[0, 1]
    close(design.ratio_sd(x.mean(), y.mean(), x.std(ddof=1), y.std(ddof=1), corr),
          linearised.std(ddof=1))


def test_ratio_and_cuped_sample_size_equal_statsmodels():
    plan = design.ratio_sample_size(5, 20, 6, 18, 0.8, -0.01, variance_reduction=0.3)
    sd = design.ratio_sd(5, 20, 6, 18, 0.8) * math.sqrt(0.7)
    ref = NormalIndPower().solve_power(effect_size=0.01 / sd, alpha=0.05, power=0.8, ratio=1)
    np.testing.assert_allclose(plan.n_control, ref, rtol=1e-6)
    mde = design.ratio_mde(5, 20, 6, 18, 0.8, plan.n_control, variance_reduction=0.3)
    np.testing.assert_allclose(abs(mde.mde), 0.01, rtol=1e-9)


def test_noninferiority_sample_size_equals_statsmodels_one_sided():
    plan = design.noninferiority_sample_size(2.0, 0.1, true_effect=0.02, ratio=2)
    ref = NormalIndPower().solve_power(effect_size=0.12 / 2.0, alpha=0.05, power=0.8,
                                       ratio=2, alternative="larger")
    np.testing.assert_allclose(plan.n_control, ref, rtol=1e-6)
    close(design.duration_days(plan, 1000), math.ceil(plan.users_total / 1000))


# --- metric definitions and input parsing ------------------------------------------------

def test_builtin_metrics_live_in_the_yaml_and_experiments_declare_families():
    loaded = metrics.load()
    assert set(loaded["metrics"]) == {"play_count", "listening_minutes", "session_count",
                                      "skip_rate", "retention"}
    plan = metrics.plan_for(loaded, "exp_skip_reco")
    assert plan.role("skip_rate") == "goal" and plan.role("retention") == "guardrail"
    unknown = metrics.plan_for(loaded, "exp_new")
    assert {plan_role for plan_role in unknown.roles.values()} == {"goal"}
    assert loaded["metrics"]["skip_rate"].direction == "decrease"


def test_metric_flags():
    plan = metrics.plan_from_flags(
        ["rounds:mean:sum_gamerounds", "ret7:proportion:retention_7", "sr:ratio:skips/plays"],
        caps=["rounds:p99.9"], covariates=["sr:pre_skips,pre_plays"], goal=["ret7"],
        guardrails=["sr"], secondary=["rounds"], margins=["sr:0.01"],
        directions=["sr:decrease"])
    by_name = {m.name: m for m in plan.metrics}
    assert by_name["rounds"].cap == metrics.Cap(percentile=0.999)
    assert by_name["sr"].expressions == ("skips", "plays", "pre_skips", "pre_plays")
    assert by_name["sr"].margin == 0.01 and by_name["sr"].direction == "decrease"
    with pytest.raises(ValueError, match="no role"):
        metrics.plan_from_flags(["a:mean", "b:mean"], goal=["a"])
    with pytest.raises(ValueError, match="kind must be"):
        metrics.parse_metric_flag("a:median")


def test_file_parsing_booleans_crlf_bom_and_errors(tmp_path):
    plan = metrics.plan_from_flags(["r:proportion", "x:mean"])
    good = tmp_path / "good.csv"
    good.write_bytes("\ufeffid,arm,r,x\r\n1,a,TRUE,1.5\r\n2,a,f,2\r\n3,b,1,\r\n4,b,False,3"
                     .encode())
    units = inputs.read_file(good, plan, "id", "arm")
    np.testing.assert_array_equal(units["r"], [1, 0, 1, 0])
    assert units["x"].isna().tolist() == [False, False, True, False]
    bad = tmp_path / "bad.csv"
    bad.write_text("id,arm,r,x\n1,a,maybe,1\n")
    with pytest.raises(inputs.InputError, match=r"column 'r', row 2: 'maybe' is not a boolean"):
        inputs.read_file(bad, plan, "id", "arm")
    twice = tmp_path / "twice.csv"
    twice.write_text("id,arm,r,x\n1,a,1,1\n1,b,0,2\n")
    with pytest.raises(inputs.InputError, match="more than once"):
        inputs.read_file(twice, plan, "id", "arm")
    frame = pd.DataFrame({"id": ["1", "2"], "arm": ["a", "b"], "r": ["1", "0"], "x": ["1", "2"]})
    parquet = tmp_path / "units.parquet"
    frame.to_parquet(parquet)
    assert len(inputs.read_file(parquet, plan, "id", "arm")) == 2


# --- the daily sequential monitor ----------------------------------------------------------

def _user_days(rng) -> pd.DataFrame:
    rows = []
    for user in range(60):
        variant = "control" if user % 2 else "treatment"
        assigned = pd.Timestamp("2026-01-01") + pd.Timedelta(days=int(user % 5))
        for day in range(int(rng.integers(0, 6))):
            plays = int(rng.integers(1, 30))
            rows.append({"user_id": user, "variant": variant, "assigned_date": assigned,
                         "activity_date": assigned + pd.Timedelta(days=2 * day),
                         "session_count": 1, "play_count": plays,
                         "skip_count": int(rng.binomial(plays, 0.3)),
                         "listening_minutes": float(plays * rng.uniform(2, 4))})
        if not any(r["user_id"] == user for r in rows):  # a user without sessions
            rows.append({"user_id": user, "variant": variant, "assigned_date": assigned,
                         "activity_date": None, "session_count": 0, "play_count": 0,
                         "skip_count": 0, "listening_minutes": 0.0})
    return pd.DataFrame(rows)


def test_daily_monitor_last_day_is_the_fixed_test_on_the_totals(rng):
    rows = _user_days(rng)
    out = daily.monitor(rows)
    totals = rows.groupby(["user_id", "variant"])[["play_count", "skip_count"]].sum()
    totals = totals.reset_index()
    c = totals[totals["variant"] == "control"]
    t = totals[totals["variant"] == "treatment"]
    last = out[(out["metric"] == "play_count")
               & (out["sequential_method"] == "always_valid")].iloc[-1]
    ref = stats.ttest_ind(t["play_count"], c["play_count"], equal_var=False)
    close(last["p_value_fixed"], ref.pvalue)
    skip = out[(out["metric"] == "skip_rate")
               & (out["sequential_method"] == "always_valid")].iloc[-1]
    plain = ab.ratio_test(c["skip_count"], c["play_count"], t["skip_count"], t["play_count"])
    close(skip["effect"], plain.effect)
    group = out[(out["metric"] == "play_count") & (out["sequential_method"]
                                                    == "group_obrien_fleming")]
    assert group["information_fraction"].dropna().iloc[-1] == pytest.approx(1.0)
    planned = daily.monitor(rows, planned_units=240)  # four times the 60 users so far
    fractions = planned[(planned["metric"] == "play_count") & (
        planned["sequential_method"] == "group_obrien_fleming")]["information_fraction"]
    assert fractions.dropna().iloc[-1] == pytest.approx(0.25)


def test_a_metrics_file_declares_metrics_roles_and_guardrails(tmp_path):
    path = tmp_path / "metrics.yml"
    path.write_text("""
metrics:
  rounds: {kind: mean, column: sum_gamerounds, cap: {percentile: 0.999}}
  ret7: {kind: proportion, column: retention_7}
  ret1: {kind: proportion, column: retention_1, guardrail: true, margin: 0.02}
experiments:
  cookie: {goal: [ret7], secondary: [rounds]}
""")
    loaded = metrics.load(path)
    plan = metrics.plan_for(loaded, "cookie")
    assert [m.name for m in plan.metrics] == ["rounds", "ret7", "ret1"]
    assert plan.role("ret1") == "guardrail" and plan.role("rounds") == "secondary"
    other = metrics.plan_for(loaded, "not_listed")  # every metric a goal, but the guardrail
    assert other.roles == {"rounds": "goal", "ret7": "goal", "ret1": "guardrail"}
    flags = metrics.plan_from_flags(["ret7", "rounds"], definitions=loaded["metrics"],
                                    goal=["ret7"], secondary=["rounds"])
    assert flags.metrics[1].cap == metrics.Cap(percentile=0.999)
    path.write_text("metrics:\n  r: {kind: proportion, column: r, cap: {absolute: 1}}\n")
    with pytest.raises(ValueError, match="nothing to cap"):
        metrics.load(path)
