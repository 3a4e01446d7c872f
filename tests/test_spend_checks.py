"""The check of the spend models' assumption that spend does not depend on purchase frequency."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from clvlab import ClvlabError, ClvlabWarning, GammaGamma
from clvlab.datasets import load_cdnow_summary
from clvlab.models.lognormal_spend import LogNormalSpend
from clvlab.models.spend_checks import MATERIAL_CORRELATION, spend_frequency_check


def table(x, z, **columns):
    return pd.DataFrame({"frequency": x, "recency": np.where(np.asarray(x) > 0, 1.0, 0.0),
                         "T": 2.0, "monetary_value": z, **columns})


def gamma_gamma_spend(x, rng, *, p=6.25, q=3.74, v=15.44):
    """Mean spend of x Gamma(p, nu) values, nu ~ Gamma(q, v) (CDNOW's fit by default)."""
    nu = rng.gamma(q, 1 / np.broadcast_to(v, x.shape), x.shape)
    return rng.gamma(p * x, 1 / (x * nu))


def frequencies(n, rng):
    return np.minimum(rng.geometric(0.3, n), 30)


def test_correlations_are_pearsons_and_spearmans_and_weights_count_customers():
    rng = np.random.default_rng(0)
    x = frequencies(300, rng)
    z = gamma_gamma_spend(x, rng, v=15 * x ** 0.3)
    check = spend_frequency_check(table(x, z))
    assert check.n == 300
    assert check.pearson == pytest.approx(stats.pearsonr(x, z).statistic, rel=1e-12)
    spearman = stats.spearmanr(x, z)
    assert check.spearman == pytest.approx(spearman.statistic, rel=1e-12)
    assert check.spearman_p_value == pytest.approx(spearman.pvalue, rel=1e-9)
    # a row of weight w is w customers: the check on a compressed table is the check on the rows
    rows = table(np.repeat(x[:100], 3), np.repeat(z[:100], 3))
    compressed = spend_frequency_check(table(x[:100], z[:100]), weights=np.full(100, 3.0))
    expanded = spend_frequency_check(rows)
    for field in ("n", "pearson", "pearson_p_value", "spearman", "spearman_p_value"):
        assert getattr(compressed, field) == pytest.approx(getattr(expanded, field), rel=1e-10)
    # customers without repeats or without spend are not read
    padded = table(np.r_[x, 0, 0, 4], np.r_[z, 0.0, 0.0, 0.0])
    assert spend_frequency_check(padded).pearson == pytest.approx(check.pearson, rel=1e-12)


def test_the_robust_p_value_is_hc3_from_the_full_regression():
    """An independent HC3: the regression of z on (1, covariates, x) with its hat matrix,
    (X'X)^-1 X' diag(e^2 / (1 - h)^2) X (X'X)^-1; t on n - 2 - k degrees of freedom."""
    rng = np.random.default_rng(1)
    n = 250
    covariate = rng.normal(size=n)
    x = frequencies(n, rng)
    z = gamma_gamma_spend(x, rng, v=15 * np.exp(0.3 * covariate) * x ** 0.2)
    for adjust in (None, ["c"]):
        check = spend_frequency_check(table(x, z, c=covariate), adjust_for=adjust)
        design = np.column_stack([np.ones(n), *([covariate] if adjust else []), x])
        inverse = np.linalg.inv(design.T @ design)
        beta = inverse @ design.T @ z
        e = z - design @ beta
        h = np.einsum("ij,jk,ik->i", design, inverse, design)
        sandwich = inverse @ (design.T * (e / (1 - h)) ** 2) @ design @ inverse
        t = beta[-1] / math.sqrt(sandwich[-1, -1])
        df = n - design.shape[1]
        assert check.pearson_p_value == pytest.approx(2 * stats.t.sf(abs(t), df), rel=1e-9)
        assert check.adjusted_for == (tuple(adjust) if adjust else ())


def test_intervals_hold_their_level():
    """95 % intervals over 400 samples of 200 customers with x ~ 1 + Poisson(4) and
    z = 120 + 3 x + Normal(0, 15^2): Pearson's covers rho = 6 / sqrt(261), Spearman's covers
    the population rank correlation (from a sample of 500,000), each 95 % +- 2.6 points
    (2.4 binomial sd)."""
    rng = np.random.default_rng(2)

    def sample(n):
        x = 1 + rng.poisson(4.0, n)
        return x, 120 + 3 * x + 15 * rng.standard_normal(n)

    rho = 6 / math.sqrt(261)
    target = stats.spearmanr(*sample(500_000)).statistic
    covered = np.zeros((400, 2), bool)
    for i in range(400):
        check = spend_frequency_check(table(*sample(200)))
        covered[i] = (check.pearson_interval[0] < rho < check.pearson_interval[1],
                      check.spearman_interval[0] < target < check.spearman_interval[1])
    np.testing.assert_allclose(covered.mean(axis=0), 0.95, atol=0.026)


def test_the_test_keeps_its_size_where_spearman_would_not():
    """Frequency and spend independent (CDNOW's frequencies, Gamma-Gamma at CDNOW's fit, 300
    tables of 946): the robust test rejects r = 0 in 6.0 % of tables at the 5 % level (3.7 %
    with another seed) and the rule calls 1 in 300 material, while Spearman's rho averages
    0.04, because a mean of more skewed spends has a higher median."""
    rng = np.random.default_rng(3)
    x = load_cdnow_summary().query("frequency > 0")["frequency"].to_numpy()
    results = [spend_frequency_check(table(x, gamma_gamma_spend(x, rng))) for _ in range(300)]
    rejected = np.mean([r.pearson_p_value < 0.05 for r in results])
    assert 0.02 <= rejected <= 0.08  # binomial sd 1.3 points
    assert np.mean([r.material for r in results]) <= 0.01
    assert np.mean([r.spearman for r in results]) == pytest.approx(0.04, abs=0.01)
    assert abs(np.mean([r.pearson for r in results])) < 0.006


def test_cdnow_passes_and_the_fits_keep_the_result():
    """CDNOW's 946 repeat customers: Pearson r = 0.114 with a robust p of 0.082 (not
    significant; the classical p would be 0.0004), Spearman rho = 0.206 (p 1.5e-10, well above
    the 0.04 that independence gives). By the rule, no warning; a borderline case."""
    rfm = load_cdnow_summary()
    with warnings.catch_warnings():
        warnings.simplefilter("error", ClvlabWarning)
        gamma = GammaGamma().fit(rfm)
        LogNormalSpend().fit(rfm)
    check = gamma.spend_frequency_check_
    assert check.n == 946
    assert check.pearson == pytest.approx(0.1139, abs=1e-4)
    assert check.pearson_p_value == pytest.approx(0.082, abs=0.001)
    assert check.spearman == pytest.approx(0.2064, abs=1e-4)
    assert check.pearson_interval[0] < 0 < check.pearson_interval[1]
    assert not check.material
    assert "Pearson r = 0.114" in str(check) and "946" in str(check)


def test_fits_warn_on_dependent_spend_and_not_on_independent_spend():
    rng = np.random.default_rng(4)
    x = frequencies(2_000, rng)
    independent = table(x, gamma_gamma_spend(x, rng))
    dependent = table(x, gamma_gamma_spend(x, rng, v=15.44 * x ** 0.5))
    for model_class in (GammaGamma, LogNormalSpend):
        with warnings.catch_warnings():
            warnings.simplefilter("error", ClvlabWarning)
            model_class().fit(independent)
        with pytest.warns(ClvlabWarning) as caught:
            model = model_class().fit(dependent)
        message = str(caught[0].message)
        check = model.spend_frequency_check_
        assert check.material and check.pearson > MATERIAL_CORRELATION
        for part in (model_class.__name__, f"Pearson r = {check.pearson:.3f}", "2,000 repeat",
                     "spend_covariates", "frequency band", "over-valued"):
            assert part in message, part


def test_a_dependence_the_spend_covariates_explain_does_not_warn():
    """Group 1 buys more often and spends more; within each group spend is independent of
    frequency: the raw correlation is material, the partial one (given the group) is not, and
    Gamma-Gamma with the group as a spend covariate fits without a warning."""
    rng = np.random.default_rng(5)
    group = rng.integers(0, 2, 3_000)
    x = np.where(group == 1, np.minimum(rng.geometric(0.15, 3_000), 40), frequencies(3_000, rng))
    rfm = table(x, gamma_gamma_spend(x, rng, v=15.44 * np.exp(0.8 * group)), group=group)
    assert spend_frequency_check(rfm).material
    partial = spend_frequency_check(rfm, adjust_for=["group"])
    assert not partial.material and abs(partial.pearson) < 0.05
    with pytest.warns(ClvlabWarning, match="correlated with purchase frequency"):
        GammaGamma().fit(rfm)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ClvlabWarning)
        model = GammaGamma(spend_covariates=["group"]).fit(rfm)
    assert model.spend_frequency_check_.adjusted_for == ("group",)


def test_undefined_correlations_are_nan_and_bad_settings_raise():
    few = spend_frequency_check(table([1, 2, 3], [5.0, 6.0, 7.0]))
    same = spend_frequency_check(table([2] * 10, np.arange(1.0, 11.0)))
    for check in (few, same):
        assert math.isnan(check.pearson) and math.isnan(check.spearman) and not check.material
    rfm = table([1, 2, 3, 4, 5], [5.0, 6.0, 7.0, 3.0, 9.0])
    with pytest.raises(ClvlabError, match="weights must be one finite number"):
        spend_frequency_check(rfm, weights=[1.0, 2.0])
    with pytest.raises(ClvlabError, match="adjust_for names columns \\['region'\\]"):
        spend_frequency_check(rfm, adjust_for=["region"])
    with pytest.raises(ClvlabError, match="alpha and level must be in"):
        spend_frequency_check(rfm, alpha=5)
    with pytest.raises(ClvlabError, match="one finite row per row"):
        spend_frequency_check(rfm, adjust_for=np.ones((3, 1)))
