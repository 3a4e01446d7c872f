"""Simulators against closed-form moments and an independent event-by-event simulation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import special, stats

import clvlab
from clvlab import ClvlabError, simulate

BG = dict(r=0.243, alpha=4.414, a=0.793, b=2.426)  # Fader, Hardie & Lee (2005), CDNOW
PARETO = dict(r=0.553, alpha=10.58, s=0.606, beta=11.67)
SPEND = dict(p=6.25, q=3.74, v=15.44)


def bg_expected_purchases(t, r, alpha, a, b):
    z = t / (alpha + t)
    return (a + b - 1) / (a - 1) * (1 - (alpha / (alpha + t)) ** r * special.hyp2f1(r, b, a + b - 1, z))


def pareto_expected_purchases(t, r, alpha, s, beta):
    return r * beta / (alpha * (s - 1)) * (1 - (beta / (beta + t)) ** (s - 1))


def close(sample: np.ndarray, expected: float, sigmas: float = 5.0) -> bool:
    return abs(sample.mean() - expected) < sigmas * sample.std(ddof=1) / np.sqrt(sample.size)


def test_bg_nbd_matches_closed_form_means():
    rfm = simulate.bg_nbd(200_000, **BG, T=39.0, T_holdout=39.0, seed=1)
    assert close(rfm["frequency"].to_numpy(), bg_expected_purchases(39.0, **BG))
    total = (rfm["frequency"] + rfm["frequency_holdout"]).to_numpy()
    assert close(total, bg_expected_purchases(78.0, **BG))
    clvlab.validate_rfm(rfm)


def test_pareto_nbd_matches_closed_form_means_and_survival():
    rfm = simulate.pareto_nbd(200_000, **PARETO, T=39.0, T_holdout=39.0, seed=2)
    assert close(rfm["frequency"].to_numpy(), pareto_expected_purchases(39.0, **PARETO))
    total = (rfm["frequency"] + rfm["frequency_holdout"]).to_numpy()
    assert close(total, pareto_expected_purchases(78.0, **PARETO))
    survival = (PARETO["beta"] / (PARETO["beta"] + 39.0)) ** PARETO["s"]
    assert close(rfm["alive"].to_numpy(dtype=float), survival)
    clvlab.validate_rfm(rfm)


def event_by_event(model: str, n: int, T: float, T_holdout: float, seed: int) -> pd.DataFrame:
    """A slow, obviously correct simulation: walk each customer's purchases one by one."""
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n):
        if model == "bg-nbd":
            lam, p = rng.gamma(BG["r"], 1 / BG["alpha"]), rng.beta(BG["a"], BG["b"])
            death = np.inf
        else:
            lam, mu = rng.gamma(PARETO["r"], 1 / PARETO["alpha"]), rng.gamma(PARETO["s"], 1 / PARETO["beta"])
            death = rng.exponential(1 / mu)
        t, times = 0.0, []
        while True:
            t += rng.exponential(1 / lam)
            if t > min(T + T_holdout, death):
                break
            times.append(t)
            if model == "bg-nbd" and rng.random() < p:
                break
        times = np.array(times)
        calibration = times[times <= T]
        rows.append((calibration.size, calibration.max() if calibration.size else 0.0,
                     int((times > T).sum())))
    return pd.DataFrame(rows, columns=["frequency", "recency", "frequency_holdout"])


@pytest.mark.parametrize("model", ["bg-nbd", "pareto-nbd"])
def test_vectorised_draws_match_event_by_event_simulation(model):
    slow = event_by_event(model, 20_000, 39.0, 20.0, seed=3)
    draw = simulate.bg_nbd if model == "bg-nbd" else simulate.pareto_nbd
    params = BG if model == "bg-nbd" else PARETO
    fast = draw(100_000, **params, T=39.0, T_holdout=20.0, seed=4)
    for column in ("frequency", "frequency_holdout"):
        slow_share = slow[column].clip(upper=6).value_counts(normalize=True).sort_index()
        fast_share = fast[column].clip(upper=6).value_counts(normalize=True).sort_index()
        assert np.abs(slow_share - fast_share).max() < 0.012, column
    repeaters = lambda frame: frame.loc[frame["frequency"] > 0, "recency"]  # noqa: E731
    assert stats.ks_2samp(repeaters(slow), repeaters(fast)).pvalue > 1e-3


def test_gamma_gamma_spend_mean():
    frequency = np.full(200_000, 3)
    spend = simulate.gamma_gamma_spend(frequency, **SPEND, seed=5)
    expected = SPEND["p"] * SPEND["v"] / (SPEND["q"] - 1)  # E[p / nu]
    assert close(spend["monetary_value"].to_numpy(), expected)
    assert (simulate.gamma_gamma_spend([0, 2], **SPEND, seed=1)["monetary_value"].iloc[0]) == 0.0


@pytest.mark.parametrize("model", ["bg-nbd", "pareto-nbd"])
def test_transaction_log_repeat_purchases_and_spend(model):
    params = BG if model == "bg-nbd" else PARETO
    log = simulate.transaction_log(50_000, model=model, params=params, spend=SPEND,
                                   acquisition_period=13.0, observation_period=52.0, seed=6)
    assert log["customer_id"].nunique() == 50_000
    assert log["date"].is_monotonic_increasing
    repeats = log.groupby("customer_id").size().to_numpy() - 1
    windows = 52.0 - np.linspace(0, 13.0, 2001)  # acquisition is uniform over 13 weeks
    expect = bg_expected_purchases if model == "bg-nbd" else pareto_expected_purchases
    assert close(repeats, float(np.mean(expect(windows, **params))))
    mean_spend = SPEND["p"] * SPEND["v"] / (SPEND["q"] - 1)
    assert abs(log["amount"].mean() / mean_spend - 1) < 0.03
    rfm = clvlab.rfm_summary(log, amount_col="amount", time_unit="W")
    assert len(rfm) == 50_000
    clvlab.validate_rfm(rfm, require_monetary=True)


def test_bad_parameters_are_refused():
    with pytest.raises(ClvlabError, match="parameter alpha must be finite and > 0"):
        simulate.bg_nbd(10, r=1.0, alpha=-1.0, a=1.0, b=1.0, T=1.0)
    with pytest.raises(ClvlabError, match="T must be finite and > 0"):
        simulate.pareto_nbd(10, **PARETO, T=0.0)
    with pytest.raises(ClvlabError, match="model 'mbg' is not supported"):
        simulate.transaction_log(10, model="mbg", params=PARETO)


def test_seeds_make_draws_reproducible():
    first = simulate.pareto_nbd(1000, **PARETO, T=30.0, seed=42)
    assert first.equals(simulate.pareto_nbd(1000, **PARETO, T=30.0, seed=42))
    assert not first.equals(simulate.pareto_nbd(1000, **PARETO, T=30.0, seed=43))
