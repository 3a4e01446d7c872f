"""Totals with intervals for groups of customers (clvlab.models.totals).

References: totals against sums of the per-customer predictions; revenue's variance against the
Gamma-Gamma posterior moments written out here; the exact distribution of a small group's total
against a brute-force simulation of the Pareto/NBD process given each history; the FFT
convolution against repeated direct convolution; the fan against purchase_totals."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import clvlab
from clvlab import BetaGeo, ClvlabError, GammaGamma, ParetoNBD, bayes
from clvlab.data import simulate
from clvlab.models.totals import (EXACT_MAX_CUSTOMERS, cumulative_purchase_fan, purchase_totals,
                                  revenue_totals)
from clvlab.models.totals_distribution import convolve_pmfs, mixture_quantiles, pmf_quantiles
from clvlab.models.value_distribution import spend_moments


@pytest.fixture(scope="module")
def rfm() -> pd.DataFrame:
    log = clvlab.datasets.load_cdnow(sample=True)
    table = clvlab.rfm_summary(log, amount_col="amount", time_unit="W",
                               calibration_end="1997-09-30", observation_end="1998-06-30")
    table["segment"] = np.where(table["frequency"] == 0, "one-time",
                                np.where(table["frequency"] < 3, "light", "heavy"))
    return table


@pytest.fixture(scope="module")
def pareto(rfm) -> ParetoNBD:
    return ParetoNBD().fit(rfm)


@pytest.fixture(scope="module")
def bg(rfm) -> BetaGeo:
    return BetaGeo().fit(rfm)


@pytest.fixture(scope="module")
def spend(rfm) -> GammaGamma:
    return GammaGamma().fit(rfm)


@pytest.mark.parametrize("name", ["pareto", "bg"])
def test_totals_are_sums_of_the_customers_expectations(rfm, name, request):
    model = request.getfixturevalue(name)
    totals = purchase_totals(model, rfm, 13, by="segment", parameter_draws=0)
    expected = model.expected_purchases(rfm, 13).groupby(rfm["segment"]).sum()
    np.testing.assert_allclose(totals["expected"], expected.loc[totals.index], rtol=1e-10)
    variance = model.purchase_moments(rfm, 13)["variance"].groupby(rfm["segment"]).sum()
    np.testing.assert_allclose(totals["process_sd"] ** 2, variance.loc[totals.index], rtol=1e-10)
    assert (totals["parameter_sd"] == 0).all() and (totals["parameter_share"] == 0).all()
    assert totals["customers"].sum() == len(rfm)
    assert list(totals.index) == ["heavy", "light", "one-time"] and totals.index.name == "segment"
    whole = purchase_totals(model, rfm, 13, parameter_draws=0)
    assert whole.loc["all", "expected"] == pytest.approx(expected.sum(), rel=1e-10)


def test_revenue_is_the_compound_of_purchases_and_spend(rfm, pareto, spend):
    """Per customer, with N the purchases and nu | history ~ Gamma(A = p x + q, rate
    B = v + x z): E[R] = E[N] p B / (A - 1) and Var R = E[N] p B^2 / ((A-1)(A-2)) +
    E[N^2] p^2 B^2 / ((A-1)(A-2)) - E[R]^2, summed over the group."""
    totals = revenue_totals(pareto, spend, rfm, 13, by="segment", parameter_draws=0,
                            unvalued="population")
    moments = pareto.purchase_moments(rfm, 13)
    p, q, v = spend.params_.to_numpy()
    x = rfm["frequency"].to_numpy(float)
    z = np.where(x > 0, rfm["monetary_value"].to_numpy(float), 0.0)
    x = np.where(z > 0, x, 0.0)  # unvalued="population": spend history of value 0 ignored
    shape, rate = p * x + q, v + x * z
    mean_n, var_n = moments["mean"].to_numpy(), moments["variance"].to_numpy()
    second_spend = rate ** 2 / ((shape - 1) * (shape - 2))
    mean = mean_n * p * rate / (shape - 1)
    variance = mean_n * p * second_spend + (var_n + mean_n ** 2) * p * p * second_spend - mean ** 2
    by = rfm["segment"].to_numpy()
    for group in totals.index:
        assert totals.loc[group, "expected"] == pytest.approx(mean[by == group].sum(), rel=1e-10)
        assert totals.loc[group, "process_sd"] ** 2 == pytest.approx(variance[by == group].sum(),
                                                                     rel=1e-9)
    assert set(totals["distribution"]) <= {"gamma", "normal"}
    # the same numbers as the per-customer moments of value_distribution.spend_moments
    reference = spend_moments(pareto, spend, rfm, 13, unvalued="population")
    sums = reference.groupby(rfm["segment"]).sum().loc[totals.index]
    np.testing.assert_allclose(totals["expected"], sums["mean"], rtol=1e-10)
    np.testing.assert_allclose(totals["process_sd"] ** 2, sums["variance"], rtol=1e-10)


def test_infinite_spend_variance_is_unknown_not_a_number(rfm, pareto):
    """q <= 2: a customer without repeats has no finite spend variance: NaN sd and interval,
    the expected total still known."""
    heavy_tailed = GammaGamma.from_params(p=6.0, q=1.8, v=15.0)
    totals = revenue_totals(pareto, heavy_tailed, rfm, 13, parameter_draws=0,
                            unvalued="population")
    assert np.isfinite(totals.loc["all", "expected"])
    assert totals[["process_sd", "total_sd", "lower 90%", "upper 90%"]].isna().all(axis=None)


def _simulated_totals(model, group: pd.DataFrame, t: float, n: int, seed: int) -> np.ndarray:
    """Brute force: for each customer, alive with P(alive); alive, lambda ~ Gamma(r + x,
    alpha + T) and mu ~ Gamma(s, beta + T), a remaining lifetime ~ Exp(mu), purchases ~
    Poisson(lambda min(lifetime, t)); the group's total per simulation."""
    rng = np.random.default_rng(seed)
    r, alpha, s, beta = model.params_.to_numpy()
    alive = model.p_alive(group).to_numpy()
    x, T = group["frequency"].to_numpy(float), group["T"].to_numpy(float)
    size = (n, len(group))
    lam = rng.gamma(r + x, 1.0 / (alpha + T), size)
    mu = rng.gamma(s, 1.0 / (beta + T), size)
    active = np.minimum(rng.exponential(1.0 / mu), t) * (rng.random(size) < alive)
    return rng.poisson(lam * active).sum(axis=1)


def test_exact_total_agrees_with_a_simulation(rfm, pareto):
    """A group of 24 customers (repeat buyers and not): the exact distribution's quantiles at
    six levels are the simulated total's (300,000 simulations: CDF error < 0.003)."""
    group = rfm.iloc[::98][:24]
    simulated = np.sort(_simulated_totals(pareto, group, 26.0, 300_000, seed=1))
    levels = [0.5, 0.8, 0.9]
    totals = pd.concat([purchase_totals(pareto, group, 26, parameter_draws=0, level=level)
                        for level in levels], axis=1)
    assert (totals["distribution"] == "exact").all(axis=None)
    for level in levels:
        for side, q in (("lower", (1 - level) / 2), ("upper", (1 + level) / 2)):
            n = totals[f"{side} {100 * level:g}%"].iloc[0]
            assert n == int(n)
            at_n = np.searchsorted(simulated, n, side="right") / len(simulated)  # P(total <= n)
            below = np.searchsorted(simulated, n - 1, side="right") / len(simulated)
            assert at_n >= q - 0.003 and below <= q + 0.003, (level, side, n, below, at_n)
    assert totals["expected"].iloc[0, 0] == pytest.approx(simulated.mean(), rel=0.01)


def test_fft_convolution_is_the_direct_convolution():
    rng = np.random.default_rng(0)
    pmfs = rng.dirichlet(np.ones(6), size=4)
    counts = np.array([3, 1, 2, 5])
    direct = np.array([1.0])
    for pmf, count in zip(pmfs, counts):
        for _ in range(count):
            direct = np.convolve(direct, pmf)
    fft = convolve_pmfs(pmfs, counts, 64)
    np.testing.assert_allclose(fft[:len(direct)], direct, atol=1e-14)
    assert pmf_quantiles(direct, [0.05, 0.5])[:, 0].tolist() == \
        [int(np.argmax(np.cumsum(direct) >= q)) for q in (0.05, 0.5)]


def test_normal_mixture_quantiles():
    """One draw: the normal quantiles; two well separated draws: each holds half the mass."""
    q = mixture_quantiles(np.array([[10.0]]), np.array([[4.0]]), [0.05, 0.95])
    np.testing.assert_allclose(q[:, 0], [10 - 1.644853627 * 2, 10 + 1.644853627 * 2], rtol=1e-9)
    q = mixture_quantiles(np.array([[0.0], [100.0]]), np.array([[1.0], [1.0]]), [0.1, 0.9])
    np.testing.assert_allclose(q[:, 0], [-0.8416212336, 100.8416212336], rtol=1e-8)


def test_exact_and_normal_switch_at_the_threshold(rfm, pareto):
    """Groups of at most exact_max_customers customers get the exact convolution, larger ones
    the normal; near the threshold both give nearly the same interval."""
    table = rfm.iloc[:101]
    labels = np.r_[np.zeros(50, int), np.ones(51, int)]
    totals = purchase_totals(pareto, table, 13, by=labels, parameter_draws=0,
                             exact_max_customers=50)
    assert totals["distribution"].tolist() == ["exact", "normal"]
    normal = purchase_totals(pareto, table, 13, by=labels, parameter_draws=0,
                             exact_max_customers=0)
    assert (normal["distribution"] == "normal").all()
    np.testing.assert_allclose(totals["lower 90%"], normal["lower 90%"], atol=2.0)
    np.testing.assert_allclose(totals["upper 90%"], normal["upper 90%"], atol=2.0)
    assert EXACT_MAX_CUSTOMERS == 1000


def test_parameter_share_grows_with_the_group(rfm, pareto, capsys):
    """Groups of 100, 10,000 and 1,000,000 customers drawn from CDNOW's: given the parameters
    the total's variance grows with n, the parameters' part with n^2, so their share of the
    variance goes from a few per cent to nearly all of it. Printed as a table."""
    rng = np.random.default_rng(3)
    sizes = [100, 10_000, 1_000_000]
    rows = rng.integers(0, len(rfm), sum(sizes))
    table = rfm.iloc[rows][["frequency", "recency", "T"]].reset_index(drop=True)
    table.attrs = dict(rfm.attrs)
    labels = np.repeat(sizes, sizes)
    totals = purchase_totals(pareto, table, 13, by=labels, parameter_draws=100, seed=2)
    share = totals["parameter_share"]
    assert share.loc[100] < 0.1 < share.loc[10_000] < 0.9 < share.loc[1_000_000]
    assert totals.loc[100, "distribution"] == "exact"
    with capsys.disabled():
        print("\nparameter share of the variance of 13-week purchases (Pareto/NBD, CDNOW):")
        print(totals[["expected", "process_sd", "parameter_sd", "parameter_share"]].round(3)
              .to_string())


def test_chunks_give_the_same_totals(rfm, pareto, spend):
    """Customers compressed and evaluated 97 at a time: the same sums as all at once."""
    draws = bayes.parameter_draws(pareto, 5, seed=0)
    whole = purchase_totals(pareto, rfm, 13, by="segment", parameter_draws=draws)
    chunked = purchase_totals(pareto, rfm, 13, by="segment", parameter_draws=draws,
                              chunk_size=97)
    numeric = whole.columns.drop("distribution")
    np.testing.assert_allclose(chunked[numeric], whole[numeric], rtol=1e-9)
    pair = (draws, bayes.parameter_draws(spend, 5, seed=1))
    whole = revenue_totals(pareto, spend, rfm, 13, by="segment", parameter_draws=pair,
                           unvalued="population")
    chunked = revenue_totals(pareto, spend, rfm, 13, by="segment", parameter_draws=pair,
                             unvalued="population", chunk_size=97)
    np.testing.assert_allclose(chunked[numeric], whole[numeric], rtol=1e-9)


def test_parameter_draws_sources(rfm, pareto):
    draws = bayes.parameter_draws(pareto, 20, seed=4)
    given = purchase_totals(pareto, rfm, 13, parameter_draws=draws)
    auto = purchase_totals(pareto, rfm, 13, parameter_draws=20, seed=4)
    pd.testing.assert_frame_equal(given, auto)
    assert given.loc["all", "parameter_sd"] > 0
    model = clvlab.ParetoNBD().fit(rfm)
    result = bayes.bootstrap_fit(model, rfm, n_boot=10, seed=0)
    boot = purchase_totals(model, rfm, 13, parameter_draws=result)
    by_name = purchase_totals(model, rfm, 13, parameter_draws="bootstrap")
    np.testing.assert_allclose(boot["expected"], by_name["expected"], rtol=1e-12)
    assert boot.loc["all", "parameter_sd"] != given.loc["all", "parameter_sd"]


def test_covariate_model_totals(pareto):
    """Each customer at their own parameters: the totals are the sums of the per-customer
    expectations of a model with a channel covariate."""
    table = simulate.with_covariates(
        "pareto-nbd", 600, params=dict(r=0.8, alpha=8.0, s=0.6, beta=10.0),
        coefficients={"purchase": {"web": 0.7}}, seed=4, T=52)[["frequency", "recency", "T", "web"]]
    model = ParetoNBD(purchase_covariates=["web"]).fit(table, time_unit="W")
    table.attrs = {"clvlab": {"time_unit": "W"}}
    totals = purchase_totals(model, table, 13, by="web", parameter_draws=0)
    expected = model.expected_purchases(table, 13).groupby(table["web"]).sum()
    np.testing.assert_allclose(totals["expected"], expected.loc[totals.index], rtol=1e-10)
    drawn = purchase_totals(model, table, 13, by="web", parameter_draws=10)
    assert (drawn["parameter_sd"] > 0).all()


def test_weights_of_a_compressed_table():
    """BG/BB on the donations (22 rows standing for 11,104 customers): weights count the
    customers, and give the totals of the table expanded to one row per customer."""
    donations = clvlab.datasets.load_donations()
    model = clvlab.BetaGeoBetaBinom().fit(donations, weights=donations["weights"])
    draws = bayes.parameter_draws(model, 10, seed=0)
    weighted = purchase_totals(model, donations, 5, parameter_draws=draws,
                               weights=donations["weights"])
    expanded = donations.loc[donations.index.repeat(donations["weights"].astype(int))]
    plain = purchase_totals(model, expanded, 5, parameter_draws=draws)
    assert weighted.loc["all", "customers"] == donations["weights"].sum() == 11_104
    numeric = weighted.columns.drop("distribution")
    np.testing.assert_allclose(weighted[numeric], plain[numeric], rtol=1e-9)
    expected = (model.expected_purchases(donations, 5) * donations["weights"]).sum()
    at_estimate = purchase_totals(model, donations, 5, parameter_draws=0,
                                  weights=donations["weights"])
    assert at_estimate.loc["all", "expected"] == pytest.approx(expected, rel=1e-10)
    with pytest.raises(ClvlabError, match="weights must give the customers each row"):
        purchase_totals(model, donations, 5, parameter_draws=0,
                        weights=donations["weights"] + 0.5)


def test_fan(rfm, bg):
    draws = bayes.parameter_draws(bg, 15, seed=1)
    fan = cumulative_purchase_fan(bg, rfm, [4, 13, 26], parameter_draws=draws)
    assert list(fan.index) == [4, 13, 26] and fan.attrs["time_unit"] == "W"
    assert fan["expected"].is_monotonic_increasing
    assert (fan["lower 95%"] < fan["lower 80%"]).all() and (fan["lower 80%"] < fan["lower 50%"]).all()
    assert (fan["upper 50%"] < fan["upper 80%"]).all() and (fan["upper 80%"] < fan["upper 95%"]).all()
    at_26 = purchase_totals(bg, rfm, 26, parameter_draws=draws, level=0.8)
    assert fan.loc[26, "expected"] == pytest.approx(at_26.loc["all", "expected"], rel=1e-12)
    assert fan.loc[26, "upper 80%"] == pytest.approx(at_26.loc["all", "upper 80%"], rel=1e-9)


def test_bad_arguments(rfm, pareto):
    with pytest.raises(ClvlabError, match="by='channel' is not a column"):
        purchase_totals(pareto, rfm, 13, by="channel", parameter_draws=0)
    with pytest.raises(ClvlabError, match="one label per row"):
        purchase_totals(pareto, rfm, 13, by=[1, 2], parameter_draws=0)
    with pytest.raises(clvlab.DataValidationError, match="missing group label"):
        purchase_totals(pareto, rfm, 13, by=np.r_[np.nan, np.ones(len(rfm) - 1)],
                        parameter_draws=0)
    with pytest.raises(ClvlabError, match="level must be between 0 and 1"):
        purchase_totals(pareto, rfm, 13, level=90, parameter_draws=0)
    with pytest.raises(ClvlabError, match="t must be one horizon"):
        purchase_totals(pareto, rfm, [4, 13], parameter_draws=0)
    with pytest.raises(ClvlabError, match=r"shape \(draws, 4\)"):
        purchase_totals(pareto, rfm, 13, parameter_draws=np.ones((3, 2)))
    with pytest.raises(ClvlabError, match="unknown method 'laplace'"):
        purchase_totals(pareto, rfm, 13, parameter_draws="laplace")
    with pytest.raises(ClvlabError, match=">= 0 draws"):
        purchase_totals(pareto, rfm, 13, parameter_draws=-1)
    known = ParetoNBD.from_params("W", r=0.55, alpha=10.6, s=0.61, beta=11.7)
    with pytest.raises(ClvlabError, match="parameter_draws=0"):
        purchase_totals(known, rfm, 13)
    with pytest.raises(ClvlabError, match="times must be increasing"):
        cumulative_purchase_fan(pareto, rfm, [13, 4], parameter_draws=0)
    unlabelled = rfm.copy()
    unlabelled.attrs = {}
    with pytest.raises(ClvlabError, match="does not record the time unit"):
        purchase_totals(pareto, unlabelled, 13, parameter_draws=0)
