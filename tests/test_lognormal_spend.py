"""The log-normal spend model: its likelihood against the integral it approximates, recovery,
covariates, files, Bayesian fits and its predictive tail against Gamma-Gamma's."""

from __future__ import annotations

import math
import warnings

import mpmath
import numpy as np
import pandas as pd
import pytest
from scipy import integrate, stats

import clvlab
from clvlab import ClvlabError, ClvlabWarning, DataValidationError, GammaGamma
from clvlab.datasets import load_cdnow_summary
from clvlab.models import registry
from clvlab.models.lognormal_spend import LogNormalSpend


def simulate(n, *, median, sigma, tau, seed, max_x=20, effect=0.0, zero_share=0.0):
    """RFM rows of log-normal spend: x uniform on 1..max_x repeats (a share of customers with
    none), mean spend of the x; ``effect`` multiplies the spend of customers with group = 1 by
    exp(effect). Also returns each customer's latent mu."""
    rng = np.random.default_rng(seed)
    x = rng.integers(1, max_x + 1, n)
    x[rng.random(n) < zero_share] = 0
    group = rng.integers(0, 2, n)
    mu = rng.normal(math.log(median), tau, n) + effect * group
    idx = np.repeat(np.arange(n), x)
    spends = np.exp(mu[idx] + sigma * rng.standard_normal(idx.size))
    z = np.bincount(idx, spends, minlength=n) / np.maximum(x, 1)
    rfm = pd.DataFrame({"frequency": x, "recency": np.where(x > 0, 1.0, 0.0), "T": 2.0,
                        "monetary_value": z, "group": group})
    return rfm, mu


# --- the likelihood -----------------------------------------------------------------------------
CASES = [(20.0, 0.5, 0.6, 1, 17.0), (20.0, 0.5, 0.6, 7, 31.0), (3.0, 1.4, 0.2, 3, 9.0),
         (150.0, 0.05, 2.0, 40, 90.0), (0.7, 2.5, 0.9, 500, 3.0), (35.0, 0.9, 0.01, 12, 35.0),
         (35.0, 1.0, 0.3, 2, 1e-3)]


@pytest.mark.parametrize("median, sigma, tau, x, z", CASES)
def test_likelihood_is_the_integral_over_mu_of_the_fenton_wilkinson_density(median, sigma, tau, x, z):
    """f(z | x) = int LN(z; mu + a_x, b_x^2) N(mu; m, tau^2) dmu with the Fenton-Wilkinson
    (a_x, b_x), by mpmath quadrature at 20 digits: to 1e-8 relative. Cases span both branches
    of b_x (sigma^2 above and below 1), x = 1 (exact) to 500, tau tiny to large."""
    mpmath.mp.dps = 20
    m, s2 = mpmath.log(median), mpmath.mpf(sigma) ** 2
    b2 = mpmath.log(1 + (mpmath.exp(s2) - 1) / x)
    location = (s2 - b2) / 2

    def integrand(mu):
        given_mu = mpmath.npdf(mpmath.log(z), mu + location, mpmath.sqrt(b2)) / z
        return given_mu * mpmath.npdf(mu, m, tau)

    # the integrand is a bell between the prior's (width tau) and the history's (width b_x),
    # far from both when z is far in a tail: a fine grid over the reach of all three
    observed = mpmath.log(z) - location
    precision = 1 / tau ** 2 + 1 / b2
    between = (m / tau ** 2 + observed / b2) / precision
    bells = ((m, tau), (observed, mpmath.sqrt(b2)), (between, 1 / mpmath.sqrt(precision)))
    low, high = min(c - 12 * w for c, w in bells), max(c + 12 * w for c, w in bells)
    width = min(w for _, w in bells)
    steps = int(min(100, max(20, (high - low) / width)))
    reference = mpmath.quad(integrand, mpmath.linspace(low, high, steps))
    values, _ = LogNormalSpend._loglik(np.array([median, sigma, tau]),
                                       [np.array([float(x)]), np.array([z])])
    assert values[0] == pytest.approx(float(mpmath.log(reference)), abs=1e-8)


def test_x_one_is_the_exact_log_normal_and_moments_of_the_mean_are_kept():
    """At x = 1 the density is exactly log-normal (m, sigma^2 + tau^2). For any x the density
    has the mean and second moment of the true mean of x spends (what Fenton-Wilkinson matches),
    E[z] = exp(m + (sigma^2 + tau^2) / 2), E[z^2] = exp(2m + 2 tau^2) (exp(sigma^2)
    (exp(sigma^2) - 1) / x + exp(sigma^2)), by quadrature of z f(z) and z^2 f(z)."""
    median, sigma, tau = 20.0, 0.7, 0.4
    params = np.array([median, sigma, tau])
    z = np.array([0.5, 5.0, 20.0, 300.0])
    values, _ = LogNormalSpend._loglik(params, [np.ones(4), z])
    exact = stats.lognorm.logpdf(z, s=math.hypot(sigma, tau), scale=median)
    np.testing.assert_allclose(values, exact, rtol=0, atol=1e-12)
    s2, t2 = sigma ** 2, tau ** 2
    for x in (1, 4, 25):
        def density(v, power):
            return v ** power * math.exp(LogNormalSpend._loglik(params, [np.array([x]), np.array([v])])[0][0])
        first = integrate.quad(density, 0, np.inf, args=(1,), limit=400)[0]
        second = integrate.quad(density, 0, np.inf, args=(2,), limit=400)[0]
        assert first == pytest.approx(median * math.exp((s2 + t2) / 2), rel=1e-7)
        expected = median ** 2 * math.exp(2 * t2) * (math.exp(s2) * math.expm1(s2) / x + math.exp(s2))
        assert second == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("median, sigma, tau, x, z", CASES)
def test_gradient_is_exact_and_the_kernel_sums_the_rows(median, sigma, tau, x, z):
    params = np.array([median, sigma, tau])
    data = [np.array([float(x), 1.0, 9.0]), np.array([z, 2.0 * median, median / 3])]
    values, gradient = LogNormalSpend._loglik(params, data)
    for j in range(3):
        step = np.zeros(3)
        step[j] = 1e-6 * params[j]
        numeric = (LogNormalSpend._loglik(params + step, data)[0]
                   - LogNormalSpend._loglik(params - step, data)[0]) / (2 * step[j])
        np.testing.assert_allclose(gradient[:, j], numeric, rtol=1e-6, atol=1e-8)
    weights = np.array([1.0, 2.5, 4.0])
    total = LogNormalSpend._total_kernel(params, *LogNormalSpend._kernel_arrays(data, weights))
    assert total[0] == pytest.approx(weights @ values, rel=1e-13)
    np.testing.assert_allclose(total[1:4], weights @ gradient, rtol=1e-12)
    assert total[4] == 0.0


# --- fits ---------------------------------------------------------------------------------------
def test_known_parameters_are_recovered_within_three_standard_errors():
    rfm, _ = simulate(5_000, median=25.0, sigma=0.5, tau=0.6, seed=3, zero_share=0.3)
    model = LogNormalSpend().fit(rfm)
    assert model.n_customers_ == (rfm["frequency"] > 0).sum()
    truth = pd.Series({"median": 25.0, "sigma": 0.5, "tau": 0.6})
    z_scores = (model.params_ - truth) / model.standard_errors_
    assert np.all(np.abs(z_scores) < 3), z_scores
    summary = model.summary()
    assert list(summary.columns) == ["estimate", "std_error", "lower 95%", "upper 95%"]
    assert np.all(summary["lower 95%"] < truth) and np.all(truth < summary["upper 95%"])


@pytest.mark.parametrize("sigma, tau, bias", [(0.5, 0.6, (0.001, 0.002, -0.001)),
                                              (1.0, 0.6, (0.028, -0.029, -0.001))])
def test_the_fenton_wilkinson_bias_is_what_the_docstring_states(sigma, tau, bias):
    """50,000 customers with 1-20 purchases: the estimates of log(median), sigma and tau sit
    at the truth plus the bias the module's docstring reports (within 4 standard errors)."""
    rfm, _ = simulate(50_000, median=math.exp(3.0), sigma=sigma, tau=tau, seed=11)
    model = LogNormalSpend().fit(rfm)
    estimates = np.array([math.log(model.params_["median"]), model.params_["sigma"],
                          model.params_["tau"]])
    se = model.standard_errors_.to_numpy() / np.array([model.params_["median"], 1.0, 1.0])
    offsets = estimates - np.array([3.0, sigma, tau]) - np.array(bias)
    assert np.all(np.abs(offsets) < 4 * se + 1e-3), (offsets, se)


def test_cdnow_fit_and_predictions_beside_gamma_gamma():
    """On CDNOW (946 repeat customers) the log-normal fits a little worse than Gamma-Gamma on
    the same density of the mean spend (-4067.3 against -4055.9), and predicts nearly the same
    population mean; no warning (CDNOW passes the independence check, sigma is 0.56). The two
    expected spends correlate at 0.96: the log-normal shrinks on the log scale, so an outlier
    moves further towards the mean (one repeat purchase of 242.98: 85.3, Gamma-Gamma 179.6)."""
    rfm = load_cdnow_summary()
    with warnings.catch_warnings():
        warnings.simplefilter("error", ClvlabWarning)
        model = LogNormalSpend().fit(rfm)
        gamma = GammaGamma().fit(rfm)
    assert model.log_likelihood_ == pytest.approx(-4067.32, abs=0.01)
    assert np.allclose(model.params_, [26.785, 0.5565, 0.4788], rtol=1e-3)
    assert model.population_mean_spend() == pytest.approx(gamma.population_mean_spend(), rel=0.01)
    spend = model.expected_spend(rfm)
    np.testing.assert_allclose(spend[rfm["frequency"] == 0], model.population_mean_spend(),
                               rtol=1e-13)
    other = gamma.expected_spend(rfm)
    assert 0.95 < np.corrcoef(spend, other)[0, 1] < 0.97
    outlier = (rfm["frequency"] == 1) & (rfm["monetary_value"] == 242.98)
    assert spend[outlier].iloc[0] == pytest.approx(85.34, abs=0.01)
    assert other[outlier].iloc[0] == pytest.approx(179.56, abs=0.01)


def test_expected_spend_is_the_posterior_mean_by_quadrature():
    """E[z_new | x, z] = int exp(mu + sigma^2 / 2) p(mu | x, z) dmu, with p(mu | x, z) the
    likelihood of the history given mu (Fenton-Wilkinson) times the prior, by quadrature."""
    median, sigma, tau = 20.0, 0.8, 0.5
    model = LogNormalSpend.from_params(median=median, sigma=sigma, tau=tau)
    rfm = pd.DataFrame({"frequency": [0, 1, 4, 30], "recency": [0.0, 1, 1, 1], "T": 2.0,
                        "monetary_value": [0.0, 80.0, 7.0, 22.0]})
    s2 = sigma ** 2
    expected = []
    for x, z in zip(rfm["frequency"], rfm["monetary_value"]):
        b2 = math.log1p(math.expm1(s2) / x) if x else None

        def weight(mu):
            prior = stats.norm.pdf(mu, math.log(median), tau)
            if not x:
                return prior
            return prior * stats.norm.pdf(math.log(z), mu + (s2 - b2) / 2, math.sqrt(b2))
        numerator = integrate.quad(lambda mu: math.exp(mu + s2 / 2) * weight(mu), -5, 10, limit=200)[0]
        expected.append(numerator / integrate.quad(weight, -5, 10, limit=200)[0])
    np.testing.assert_allclose(model.expected_spend(rfm), expected, rtol=1e-8)
    assert model.population_mean_spend() == pytest.approx(expected[0], rel=1e-8)


def test_unvalued_customers_and_bad_input():
    model = LogNormalSpend.from_params(median=20.0, sigma=0.5, tau=0.5)
    rfm = pd.DataFrame({"frequency": [2, 3], "recency": [1.0, 1.0], "T": 2.0,
                        "monetary_value": [0.0, 10.0]})
    with pytest.raises(DataValidationError, match="monetary_value.*> 0.*LogNormalSpend"):
        model.expected_spend(rfm)
    spend = model.expected_spend(rfm, unvalued="population")
    assert spend.iloc[0] == pytest.approx(model.population_mean_spend())
    with pytest.raises(ClvlabError, match="unvalued must be"):
        model.expected_spend(rfm, unvalued="zero")
    same, _ = simulate(50, median=20.0, sigma=0.5, tau=0.5, seed=1, max_x=1)
    with pytest.raises(ClvlabError, match="different numbers of repeat purchases"):
        LogNormalSpend().fit(same)


def test_a_large_sigma_warns_that_the_approximation_is_biased():
    rfm, _ = simulate(3_000, median=20.0, sigma=1.6, tau=0.5, seed=5)
    with pytest.warns(ClvlabWarning, match="Fenton-Wilkinson.*biases the fit"):
        LogNormalSpend().fit(rfm)


def test_spend_covariates_move_the_median_and_predict_per_customer():
    rfm, _ = simulate(4_000, median=20.0, sigma=0.6, tau=0.5, seed=8, effect=0.4)
    model = LogNormalSpend(spend_covariates=["group"]).fit(rfm)
    coefficient = model.params_["spend.group"]
    assert abs(coefficient - 0.4) < 3 * model.standard_errors_["spend.group"]
    assert model.params_["median"] == pytest.approx(20.0, rel=0.05)
    head = rfm.head(40)
    by_row = model.expected_spend(head)
    for group in (0, 1):
        plain = model.for_attributes({"group": group})
        rows = head[head["group"] == group]
        np.testing.assert_allclose(by_row[rows.index], plain.expected_spend(rows), rtol=1e-12)
    assert plain.params_["median"] == pytest.approx(model.params_["median"] * math.exp(coefficient))


def test_files_bayesian_fits_and_the_registry(tmp_path):
    rfm = load_cdnow_summary()
    model = LogNormalSpend().fit(rfm)
    model.save(tmp_path / "spend.json")
    loaded = clvlab.load_model(tmp_path / "spend.json")
    assert isinstance(loaded, LogNormalSpend)
    pd.testing.assert_series_equal(loaded.params_, model.params_)
    pd.testing.assert_frame_equal(loaded.covariance_, model.covariance_)
    pd.testing.assert_series_equal(loaded.expected_spend(rfm), model.expected_spend(rfm))
    mode = LogNormalSpend(method="map").fit(rfm)  # priors centred on the data: near the MLE
    np.testing.assert_allclose(mode.params_, model.params_, rtol=0.02)
    assert np.isnan(mode.aic_)
    assert registry.by_name("lognormal", kind="spend").model_class is LogNormalSpend
    assert registry.kind_of(LogNormalSpend()) == "spend"


def test_clv_takes_the_log_normal_as_its_spend_model():
    rfm = load_cdnow_summary()
    pnbd = clvlab.ParetoNBD.from_params(r=0.55, alpha=10.58, s=0.61, beta=11.67, time_unit="W")
    spend = LogNormalSpend().fit(rfm)
    clv = clvlab.customer_lifetime_value(pnbd, spend, rfm, horizon=52, discount_rate=0.0)
    expected = spend.expected_spend(rfm) * pnbd.expected_purchases(rfm, 52)
    np.testing.assert_allclose(clv, expected, rtol=1e-12)


# --- the tail -----------------------------------------------------------------------------------
def test_log_normal_predictive_quantiles_cover_heavy_tailed_spend_where_gamma_gamma_does_not():
    """Spend log-normal within customers (sigma = 1: a coefficient of variation of 1.3) and
    across them (tau = 0.5), 4,000 customers with 1-10 purchases; each customer's next spend
    against the 5 %, 95 % and 99 % quantiles of each model's posterior predictive given the
    history (1,000 draws). The log-normal's hold their levels; Gamma-Gamma's upper quantiles
    are too low (its Gamma within a customer has an exponential tail: 93.4 % and 97.4 % below
    the 95 % and 99 % quantiles) and its lower quantile too (2 % below the 5 %).
    Measured beside it: with sigma = 0.8, tau = 1.0 Gamma-Gamma fits p < 1 and its quantiles
    are too wide instead (0 % below the 5 %, 97.1 % below the 95 %)."""
    rng = np.random.default_rng(1)
    n = 4_000
    x = rng.integers(1, 11, n)
    mu = rng.normal(math.log(30.0), 0.5, n)
    idx = np.repeat(np.arange(n), x)
    z = np.bincount(idx, np.exp(mu[idx] + rng.standard_normal(idx.size))) / x
    following = np.exp(mu + rng.standard_normal(n))
    rfm = pd.DataFrame({"frequency": x, "recency": 1.0, "T": 2.0, "monetary_value": z})
    coverage = {}
    for model in (GammaGamma().fit(rfm), LogNormalSpend().fit(rfm)):
        params, xs, zs = model._predictive_inputs(rfm)
        draws = model._draw_spends(params, xs, zs, np.ones((n, 1000), int),
                                   np.random.default_rng(2)).reshape(n, 1000)
        quantiles = np.quantile(draws, [0.05, 0.95, 0.99], axis=1)
        coverage[type(model).__name__] = (following[None, :] <= quantiles).mean(axis=1)
    # binomial sd at n = 4,000: 0.0034 at 95 %, 0.0016 at 99 %
    np.testing.assert_allclose(coverage["LogNormalSpend"], [0.05, 0.95, 0.99], atol=0.012)
    assert coverage["GammaGamma"][1] < 0.94 and coverage["GammaGamma"][2] < 0.98
    assert coverage["GammaGamma"][0] < 0.03


def test_the_command_line_predicts_clv_with_a_lognormal_spend_model(tmp_path, capsys):
    """`clvlab predict --spend-model` takes any spend model (it read Gamma-Gamma files only),
    and refuses a transaction model in that place by name."""
    from clvlab.cli import main
    from clvlab.datasets import load_cdnow_summary

    rfm = load_cdnow_summary()
    rfm.attrs["time_unit"] = "W"
    clvlab.BetaGeo().fit(rfm).save(tmp_path / "bg.json")
    spend = clvlab.LogNormalSpend().fit(rfm[rfm["frequency"] > 0])
    spend.save(tmp_path / "ln.json")
    rfm.to_parquet(tmp_path / "rfm.parquet")
    assert main(["predict", str(tmp_path / "bg.json"), str(tmp_path / "rfm.parquet"),
                 "--time-unit", "W", "--horizon", "52", "--spend-model", str(tmp_path / "ln.json"),
                 "--discount-rate", "0.0015", "-o", str(tmp_path / "out.csv")]) == 0
    out = pd.read_csv(tmp_path / "out.csv", index_col="customer_id")
    expected = clvlab.customer_lifetime_value(clvlab.load_model(tmp_path / "bg.json"), spend, rfm,
                                              horizon=52, discount_rate=0.0015,
                                              unvalued="population")
    np.testing.assert_allclose(out["clv"].to_numpy(), expected.to_numpy(), rtol=1e-9)
    capsys.readouterr()
    assert main(["predict", str(tmp_path / "bg.json"), str(tmp_path / "rfm.parquet"),
                 "--time-unit", "W", "--horizon", "52", "--spend-model", str(tmp_path / "bg.json"),
                 "-o", str(tmp_path / "bad.csv")]) != 0
    assert "--spend-model must be a spend model" in capsys.readouterr().err
    assert not (tmp_path / "bad.csv").exists()
