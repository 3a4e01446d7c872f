"""Every prediction against a simulation from the same parameters (and closed forms where known)."""

from __future__ import annotations

import mpmath
import numpy as np
import pandas as pd
import pytest

import clvlab
from clvlab import BetaGeo, GammaGamma, ParetoNBD, simulate
from clvlab.clv import dert

BG = dict(r=0.243, alpha=4.414, a=0.793, b=2.426)
PARETO = dict(r=0.553, alpha=10.58, s=0.606, beta=11.67)
SPEND = dict(p=6.25, q=3.74, v=15.44)
N = 200_000


def within(predicted: np.ndarray, realised: np.ndarray, sigmas: float = 4.0) -> bool:
    """Mean prediction within `sigmas` Monte Carlo standard errors of the realised mean."""
    error = realised.std(ddof=1) / np.sqrt(realised.size)
    return abs(predicted.mean() - realised.mean()) <= sigmas * error + 1e-12


@pytest.fixture(scope="module", params=["bg-nbd", "pareto-nbd"])
def simulated(request):
    T = np.random.default_rng(0).uniform(10, 52, N)
    if request.param == "bg-nbd":
        rfm = simulate.bg_nbd(N, **BG, T=T, T_holdout=26.0, seed=1)
        return BetaGeo.from_params(**BG), rfm
    rfm = simulate.pareto_nbd(N, **PARETO, T=T, T_holdout=26.0, seed=1)
    return ParetoNBD.from_params(**PARETO), rfm


def groups(rfm):
    return rfm["frequency"].clip(upper=4)


def test_p_alive_matches_simulated_share_alive(simulated):
    model, rfm = simulated
    p_alive = model.p_alive(rfm)
    for _, index in rfm.groupby(groups(rfm)).groups.items():
        assert within(p_alive[index].to_numpy(), rfm.loc[index, "alive"].to_numpy(float))


def test_expected_purchases_match_simulated_holdout(simulated):
    model, rfm = simulated
    expected = model.expected_purchases(rfm, 26.0)
    for _, index in rfm.groupby(groups(rfm)).groups.items():
        assert within(expected[index].to_numpy(), rfm.loc[index, "frequency_holdout"].to_numpy(float))
    total, realised = expected.sum(), rfm["frequency_holdout"].sum()
    assert abs(total / realised - 1) < 0.02


def test_probability_of_purchase_and_conditional_pmf(simulated):
    model, rfm = simulated
    any_purchase = model.probability_of_purchase(rfm, 26.0)
    assert within(any_purchase.to_numpy(), (rfm["frequency_holdout"] > 0).to_numpy(float))
    for n in range(4):
        pmf = model.purchase_probability(n, 26.0, rfm)
        assert within(pmf.to_numpy(), (rfm["frequency_holdout"] == n).to_numpy(float)), n
    total = sum(model.purchase_probability(n, 26.0, rfm.iloc[:200]) for n in range(120))
    assert np.allclose(total, 1.0, atol=1e-8)


def test_new_customer_predictions(simulated):
    model, _ = simulated
    draw = simulate.bg_nbd if isinstance(model, BetaGeo) else simulate.pareto_nbd
    fresh = draw(N, **(BG if isinstance(model, BetaGeo) else PARETO), T=30.0, seed=7)
    assert within(np.array([model.expected_purchases_new_customer(30.0)]), fresh["frequency"].to_numpy(float))
    for n in range(4):
        realised = (fresh["frequency"] == n).to_numpy(float)
        assert within(np.array([model.purchase_probability(n, 30.0)]), realised), n
    assert sum(model.purchase_probability(n, 30.0) for n in range(300)) == pytest.approx(1.0, abs=1e-8)


def test_bg_nbd_new_customer_expectation_equals_the_mixture_integral():
    # E[X(t)] = E_p[(1 - (alpha / (alpha + p t))^r) / p] with p ~ Beta(a, b), by mpmath quadrature
    r, alpha, a, b = BG.values()
    t = 39.0
    with mpmath.workdps(30):
        value = mpmath.quad(lambda p: (1 - (alpha / (alpha + p * t)) ** r) / p
                            * p ** (a - 1) * (1 - p) ** (b - 1) / mpmath.beta(a, b), [0, 1])
    assert BetaGeo.from_params(**BG).expected_purchases_new_customer(t) == pytest.approx(float(value), rel=1e-10)


def test_pareto_nbd_future_p_alive_matches_simulation():
    T = np.random.default_rng(2).uniform(10, 52, N)
    rfm = simulate.pareto_nbd(N, **PARETO, T=T, T_holdout=26.0, seed=3)
    predicted = ParetoNBD.from_params(**PARETO).p_alive_at(rfm, 26.0)
    assert within(predicted.to_numpy(), rfm["alive_end"].to_numpy(float))


def test_gamma_gamma_expected_spend_matches_true_mean_spend():
    rng = np.random.default_rng(4)
    frequency = rng.integers(1, 8, N)
    spend = simulate.gamma_gamma_spend(frequency, **SPEND, seed=5)
    rfm = pd.DataFrame({"frequency": frequency, "recency": 1.0, "T": 2.0,
                        "monetary_value": spend["monetary_value"]})
    model = GammaGamma.from_params(**SPEND)
    expected = model.expected_spend(rfm)
    for x in range(1, 8):
        index = frequency == x
        assert within(expected[index].to_numpy(), spend["mean_spend_"][index].to_numpy()), x
    assert model.population_mean_spend() == pytest.approx(SPEND["p"] * SPEND["v"] / (SPEND["q"] - 1))


def test_clv_without_discounting_is_expected_purchases_times_spend():
    rfm = clvlab.simulate.pareto_nbd(2_000, **PARETO, T=39.0, seed=9)
    rfm["monetary_value"] = simulate.gamma_gamma_spend(rfm["frequency"], **SPEND, seed=1)["monetary_value"]
    pareto, spend = ParetoNBD.from_params(**PARETO), GammaGamma.from_params(**SPEND)
    clv = clvlab.customer_lifetime_value(pareto, spend, rfm, horizon=52, discount_rate=0.0, margin=0.3)
    expected = 0.3 * pareto.expected_purchases(rfm, 52) * spend.expected_spend(rfm)
    assert np.allclose(clv, expected, rtol=1e-12)
    discounted = clvlab.customer_lifetime_value(pareto, spend, rfm, horizon=52, discount_rate=0.01)
    assert (discounted < clv / 0.3 + 1e-12).all() and (discounted > 0).all()


def test_clv_matches_simulated_discounted_spend():
    """Monte Carlo CLV: simulate holdout purchase times week by week and discount them."""
    rng = np.random.default_rng(12)
    n, T, weeks, rate = 50_000, 30.0, 20, 0.01
    rfm = simulate.pareto_nbd(n, **PARETO, T=T, seed=13)
    lam, lifetime = rfm["lambda_"].to_numpy(), rfm["lifetime_"].to_numpy()
    realised = np.zeros(n)
    for week in range(1, weeks + 1):
        active = np.clip(np.minimum(lifetime, T + week) - (T + week - 1), 0, 1)
        realised += rng.poisson(lam * active) / (1 + rate) ** week
    model = ParetoNBD.from_params(**PARETO)
    spend = GammaGamma.from_params(**SPEND)
    rfm["monetary_value"] = simulate.gamma_gamma_spend(rfm["frequency"], **SPEND, seed=2)["monetary_value"]
    clv = clvlab.customer_lifetime_value(model, spend, rfm, horizon=weeks, discount_rate=rate)
    assert within((clv / spend.expected_spend(rfm)).to_numpy(), realised)


def test_dert_against_numerical_integration():
    rfm = pd.DataFrame({"frequency": [0, 2, 10], "recency": [0.0, 20.0, 35.0], "T": [39.0, 39.0, 39.0]})
    model = ParetoNBD.from_params(**PARETO)
    delta = 0.01
    lifetime = dert(model, rfm, delta)
    alive = model.p_alive(rfm).to_numpy()
    r, alpha, s, beta = PARETO.values()
    for i, (x, _, T) in enumerate(rfm.itertuples(index=False)):
        with mpmath.workdps(30):
            integral = mpmath.quad(lambda t: mpmath.exp(-delta * t) * ((beta + T) / (beta + T + t)) ** s,
                                   [0, 100, 1000, mpmath.inf])
        assert lifetime[i] == pytest.approx(float(alive[i] * (r + x) / (alpha + T) * integral), rel=1e-9)
    finite = dert(model, rfm, delta, horizon=52.0)
    discrete = clvlab.customer_lifetime_value(model, GammaGamma.from_params(**SPEND),
                                              rfm.assign(monetary_value=[0.0, 20.0, 30.0]),
                                              horizon=52.0, discount_rate=0.0, method="continuous")
    assert (finite < lifetime).all() and (discrete > 0).all()


def test_clv_argument_errors():
    rfm = pd.DataFrame({"frequency": [1], "recency": [1.0], "T": [2.0], "monetary_value": [5.0]})
    rfm.attrs = {"clvlab": {"time_unit": "W"}}
    bg, gg = BetaGeo.from_params(**BG, time_unit="W"), GammaGamma.from_params(**SPEND)
    with pytest.raises(clvlab.ClvlabError, match="needs a ParetoNBD"):
        clvlab.customer_lifetime_value(bg, gg, rfm, horizon=None, discount_rate=0.1, method="continuous")
    with pytest.raises(clvlab.ClvlabError, match="time_unit='D' but the RFM table records its durations in weeks"):
        clvlab.customer_lifetime_value(bg, gg, rfm, horizon=10, discount_rate=0.1, time_unit="D")
    with pytest.raises(clvlab.ClvlabError, match="discount_rate must be >= 0"):
        clvlab.customer_lifetime_value(bg, gg, rfm, horizon=10, discount_rate=-0.1)
    with pytest.raises(clvlab.ClvlabError, match="horizon t must be finite and > 0"):
        bg.expected_purchases(rfm, 0)
