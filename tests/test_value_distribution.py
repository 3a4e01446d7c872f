"""The distribution of each customer's future spend and CLV: its mean against
customer_lifetime_value, its variance against the exact moments, its quantiles against what
simulated customers spend."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, stats

import clvlab
from clvlab import ClvlabError, GammaGamma, ParetoNBD
from clvlab.data import simulate
from clvlab.datasets import load_cdnow_summary
from clvlab.models.lognormal_spend import LogNormalSpend
from clvlab.models.value_distribution import spend_moments, value_distribution


@pytest.fixture(scope="module")
def cdnow():
    rfm = load_cdnow_summary()
    return rfm, ParetoNBD().fit(rfm), GammaGamma().fit(rfm), LogNormalSpend().fit(rfm)


def monte_carlo_z(simulated: pd.Series, sd: pd.Series, exact: pd.Series, n_draws: int,
                  groups: int = 20):
    """z-scores of the simulated means' error, summed over ``groups`` blocks of customers (a
    single customer's mean of a few rare, skewed purchases is far from normal; a block's sum
    is near it), and over all customers: customers are simulated independently."""
    blocks = np.arange(len(simulated)) * groups // len(simulated)
    error = (simulated - exact).groupby(blocks).sum()
    scale = np.sqrt((sd ** 2).groupby(blocks).sum() / n_draws)
    total = error.sum() / math.sqrt((sd ** 2).sum() / n_draws)
    return (error / scale).to_numpy(), total


@pytest.mark.parametrize("spend", ["gamma", "lognormal"])
@pytest.mark.parametrize("method", ["discrete", "continuous"])
def test_mean_clv_is_customer_lifetime_value(cdnow, spend, method):
    """Discounting by customer_lifetime_value's conventions (4-week periods at 5 %, a 39-week
    horizon whose last period is cut; or continuous): the simulated mean CLV of each customer
    is that function's value within Monte Carlo error (20 blocks of customers: z-scores within
    4, of sd 1 +- 0.45; the total within 4 sd)."""
    rfm, pnbd, gamma, lognormal = cdnow
    model = gamma if spend == "gamma" else lognormal
    n_draws = 300
    out = value_distribution(pnbd, model, rfm, 39, discount_rate=0.05, margin=0.3, period=4,
                             method=method, n_draws=n_draws, seed=7)
    exact = clvlab.customer_lifetime_value(pnbd, model, rfm, 39, 0.05, 0.3, period=4,
                                           method=method)
    z, total = monte_carlo_z(out["clv_mean"], out["clv_sd"], exact, n_draws)
    assert abs(total) < 4
    assert np.all(np.abs(z) < 4) and 0.55 < z.std() < 1.45
    assert np.all(out["clv_5%"] <= out["clv_50%"]) and np.all(out["clv_50%"] <= out["clv_95%"])
    assert np.all(out["clv_mean"] <= out["spend_mean"] * 0.3 + 1e-12)  # margin x discount <= 1
    assert list(out.columns) == ["spend_mean", "spend_sd", "spend_5%", "spend_50%", "spend_95%",
                                 "clv_mean", "clv_sd", "clv_5%", "clv_50%", "clv_95%"]


@pytest.mark.parametrize("spend", ["gamma", "lognormal"])
def test_spend_moments_are_the_simulations(cdnow, spend):
    """The exact mean and variance of the undiscounted total (E[N], E[N(N-1)] of the count,
    E[z], E[z^2], E[z z'] of the spends) against 3,000 simulated futures of 300 customers:
    means within Monte Carlo error, the summed variances within 6 % (a sample variance of a
    heavy-tailed total converges slowly)."""
    rfm, pnbd, gamma, lognormal = cdnow
    model = gamma if spend == "gamma" else lognormal
    sample = rfm.iloc[::8][:300]
    exact = spend_moments(pnbd, model, sample, 26)
    out = value_distribution(pnbd, model, sample, 26, n_draws=3_000, seed=3)
    z, total = monte_carlo_z(out["spend_mean"], out["spend_sd"], exact["mean"], 3_000)
    assert abs(total) < 4 and np.all(np.abs(z) < 4) and 0.55 < z.std() < 1.45
    assert (out["spend_sd"] ** 2).sum() / exact["variance"].sum() == pytest.approx(1, abs=0.06)
    # the undiscounted CLV is the spend
    np.testing.assert_allclose(out["clv_mean"], out["spend_mean"], rtol=1e-12)


def test_spend_moment_formulas_against_quadrature_and_the_draws():
    """Each model's E[z], E[z^2] and E[z z'] of future purchases given a history, against
    quadrature over the latent spend's posterior, and against the spend draws (pairs of
    purchases of one customer and draw share the latent spend: that is E[z z'])."""
    gamma = GammaGamma.from_params(p=3.0, q=4.5, v=40.0)
    lognormal = LogNormalSpend.from_params(median=20.0, sigma=0.6, tau=0.5)
    x, z = np.array([0.0, 1.0, 6.0]), np.array([0.0, 55.0, 12.0])
    p, q, v = 3.0, 4.5, 40.0
    for model in (gamma, lognormal):
        params = tuple(model._check_fitted())
        first, second, cross = model._spend_moments(params, x, z)
        for i in range(3):
            if model is gamma:
                posterior = stats.gamma(p * x[i] + q, scale=1 / (v + x[i] * z[i]))
                moment = lambda f: integrate.quad(lambda nu: f(nu) * posterior.pdf(nu), 0, np.inf)[0]  # noqa: E731
                reference = (moment(lambda nu: p / nu), moment(lambda nu: p * (p + 1) / nu ** 2),
                             moment(lambda nu: (p / nu) ** 2))
            else:
                s2, mean, var = model._posterior(params, x[i:i + 1], z[i:i + 1])
                posterior = stats.norm(mean[0], math.sqrt(var[0]))
                moment = lambda f: integrate.quad(lambda mu: f(mu) * posterior.pdf(mu), -10, 15)[0]  # noqa: E731
                reference = (moment(lambda mu: math.exp(mu + s2 / 2)),
                             moment(lambda mu: math.exp(2 * mu + 2 * s2)),
                             moment(lambda mu: math.exp(2 * mu + s2)))
            np.testing.assert_allclose([first[i], second[i], cross[i]], reference, rtol=1e-7)
        draws = model._draw_spends(params, x, z, np.full((3, 200_000), 2),
                                   np.random.default_rng(1)).reshape(3, 200_000, 2)
        np.testing.assert_allclose(draws.mean(axis=(1, 2)), first, rtol=0.01)
        np.testing.assert_allclose((draws[..., 0] * draws[..., 1]).mean(axis=1), cross, rtol=0.03)
        np.testing.assert_allclose((draws ** 2).mean(axis=(1, 2)), second, rtol=0.04)


def test_gamma_gamma_second_moments_are_infinite_where_they_do_not_exist():
    gamma = GammaGamma.from_params(p=3.0, q=1.5, v=40.0)
    first, second, cross = gamma._spend_moments(tuple(gamma._check_fitted()),
                                                np.array([0.0, 1.0]), np.array([0.0, 30.0]))
    assert np.isfinite(first).all()
    assert np.isinf(second[0]) and np.isinf(cross[0])  # q = 1.5 <= 2: no variance
    assert np.isfinite(second[1])  # p x + q = 4.5


def test_quantiles_cover_what_simulated_customers_spend():
    """5,000 customers simulated from Pareto/NBD and Gamma-Gamma, valued with the true models:
    their holdout spend (39 weeks) falls below the 5 % quantile and above the 95 % quantile of
    their predicted total at most 5 % (+ 1 point) of the time; the total has a mass at 0, so
    both tails may hold less."""
    rng = np.random.default_rng(11)
    n, horizon = 5_000, 39.0
    params = dict(r=0.55, alpha=10.58, s=0.61, beta=11.67)
    rfm = simulate.pareto_nbd(n, T=rng.uniform(20, 40, n), T_holdout=horizon, seed=rng, **params)
    spend = simulate.gamma_gamma_spend(rfm["frequency"], p=6.25, q=3.74, v=15.44, seed=rng)
    rfm["monetary_value"] = spend["monetary_value"].to_numpy()
    nu = 6.25 / spend["mean_spend_"].to_numpy()
    k = rfm["frequency_holdout"].to_numpy()
    holdout = np.where(k > 0, rng.gamma(6.25 * np.maximum(k, 1), 1 / nu), 0.0)
    out = value_distribution(ParetoNBD.from_params(time_unit="W", **params),
                             GammaGamma.from_params(p=6.25, q=3.74, v=15.44), rfm, horizon,
                             time_unit="W", quantiles=(0.05, 0.95), n_draws=400, seed=5)
    below = np.mean(holdout < out["spend_5%"])
    above = np.mean(holdout > out["spend_95%"])
    assert below <= 0.06 and above <= 0.06
    assert above > 0.035  # the upper tail is continuous: the interval is not too wide either
    z = (holdout.sum() - out["spend_mean"].sum()) / math.sqrt((out["spend_sd"] ** 2).sum())
    assert abs(z) < 4


def test_seeds_chunks_and_parameter_draws(cdnow):
    rfm, pnbd, gamma, _ = cdnow
    sample = rfm.iloc[:400]
    first = value_distribution(pnbd, gamma, sample, 52, n_draws=200, seed=4, chunk_size=150)
    again = value_distribution(pnbd, gamma, sample, 52, n_draws=200, seed=4, chunk_size=150)
    pd.testing.assert_frame_equal(first, again)
    other = value_distribution(pnbd, gamma, sample, 52, n_draws=200, seed=5)
    assert not np.allclose(first["spend_mean"], other["spend_mean"])
    z, total = monte_carlo_z(first["spend_mean"], first["spend_sd"], other["spend_mean"], 100)
    assert abs(total) < 4  # two estimates of one mean (sd over sqrt(100): both errors)

    # parameter uncertainty widens each customer's distribution, little for a fit's usual
    # uncertainty (+2.5 % to the variances after a fit on 300 customers: process noise
    # dominates one customer's total); with a transaction model 4 times as uncertain, the
    # variances add 21 % (the law of total variance at 400 parameter draws: 2.88e6 against
    # 2.38e6 at the estimate), and the simulation with 40 parameter draws shows it
    small = rfm.iloc[:300]
    models = ParetoNBD().fit(small), GammaGamma().fit(small)
    models[0]._set_covariance(models[0].covariance_.to_numpy() * 16)
    target = rfm.iloc[:400]
    exact = spend_moments(*models, target, 52)
    plain = value_distribution(*models, target, 52, n_draws=400, seed=1)
    mixed = value_distribution(*models, target, 52, n_draws=400, seed=1, parameter_draws=40)
    assert (plain["spend_sd"] ** 2).sum() == pytest.approx(exact["variance"].sum(), rel=0.05)
    assert (mixed["spend_sd"] ** 2).sum() > 1.1 * exact["variance"].sum()
    assert mixed.attrs["clvlab"]["parameter_draws"] == 40


def test_spend_covariates_value_each_customer_at_their_own_parameters():
    rng = np.random.default_rng(6)
    rfm = load_cdnow_summary().copy()
    rfm["group"] = rng.integers(0, 2, len(rfm))
    rfm["monetary_value"] *= np.exp(0.5 * rfm["group"])
    pnbd = ParetoNBD().fit(rfm)
    for model_class in (GammaGamma, LogNormalSpend):
        spend = model_class(spend_covariates=["group"]).fit(rfm)
        out = value_distribution(pnbd, spend, rfm, 26, n_draws=200, seed=2)
        exact = spend_moments(pnbd, spend, rfm, 26)["mean"]
        np.testing.assert_allclose(exact, pnbd.expected_purchases(rfm, 26)
                                   * spend.expected_spend(rfm), rtol=1e-10)
        z, total = monte_carlo_z(out["spend_mean"], out["spend_sd"], exact, 200)
        assert abs(total) < 4


def test_bad_arguments_are_named(cdnow):
    rfm, pnbd, gamma, _ = cdnow
    with pytest.raises(ClvlabError, match="look swapped"):
        value_distribution(gamma, pnbd, rfm, 52)
    with pytest.raises(ClvlabError, match="quantiles must be distinct levels in \\(0, 1\\)"):
        value_distribution(pnbd, gamma, rfm, 52, quantiles=(5, 95))
    with pytest.raises(ClvlabError, match="n_draws must be a whole number >= 2"):
        value_distribution(pnbd, gamma, rfm, 52, n_draws=1)
    with pytest.raises(ClvlabError, match="parameter_draws=50 exceeds n_draws=20"):
        value_distribution(pnbd, gamma, rfm, 52, n_draws=20, parameter_draws=50)
    with pytest.raises(ClvlabError, match="horizon must be finite and > 0"):
        value_distribution(pnbd, gamma, rfm, 0)
    with pytest.raises(ClvlabError, match="did you mean 0.08"):
        value_distribution(pnbd, gamma, rfm, 52, discount_rate=8)
    with pytest.raises(ClvlabError, match="method 'daily' is not supported"):
        value_distribution(pnbd, gamma, rfm, 52, method="daily")
    with pytest.raises(ClvlabError, match="t must be finite and > 0"):
        spend_moments(pnbd, gamma, rfm, -1)
    with pytest.raises(ClvlabError, match="seed must be a whole number"):
        value_distribution(pnbd, gamma, rfm, 52, seed="april")
    days = GammaGamma.from_params(p=6.25, q=3.74, v=15.44, time_unit="D")
    with pytest.raises(ClvlabError, match="time unit 'W' but the model was fitted in 'D'"):
        value_distribution(pnbd, days, rfm, 52)
