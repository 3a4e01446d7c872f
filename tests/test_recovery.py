"""Parameter recovery: 100,000 simulated customers from known parameters."""

from __future__ import annotations

import numpy as np
import pytest

from clvlab import BetaGeo, GammaGamma, ParetoNBD, simulate

N = 100_000
CASES = {
    "bg-nbd": (BetaGeo, simulate.bg_nbd, dict(r=0.243, alpha=4.414, a=0.793, b=2.426)),
    "pareto-nbd": (ParetoNBD, simulate.pareto_nbd, dict(r=0.553, alpha=10.58, s=0.606, beta=11.67)),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(CASES))
def test_estimates_within_three_standard_errors_and_holdout_within_two_percent(name):
    model_class, draw, truth = CASES[name]
    T = np.round(np.random.default_rng(21).uniform(20, 52, N) * 7) / 7  # whole days, in weeks
    rfm = draw(N, **truth, T=T, T_holdout=39.0, seed=22)
    rfm["recency"] = np.floor(rfm["recency"] * 7) / 7  # daily resolution, as from rfm_summary
    rfm.loc[(rfm["frequency"] > 0) & (rfm["recency"] == 0), "recency"] = 1 / 7
    model = model_class().fit(rfm)
    assert model.convergence_["converged"]
    z = (model.params_ - np.array(list(truth.values()))) / model.standard_errors_
    assert (z.abs() < 3).all(), z.to_dict()
    predicted = model.expected_purchases(rfm, 39.0).sum()
    realised = rfm["frequency_holdout"].sum()
    assert abs(predicted / realised - 1) < 0.02, (predicted, realised)


@pytest.mark.slow
def test_gamma_gamma_recovery():
    truth = dict(p=6.25, q=3.74, v=15.44)
    frequency = np.random.default_rng(3).integers(1, 10, N)
    spend = simulate.gamma_gamma_spend(frequency, **truth, seed=4)
    rfm = spend.assign(frequency=frequency, recency=1.0, T=2.0)
    model = GammaGamma().fit(rfm)
    z = (model.params_ - np.array(list(truth.values()))) / model.standard_errors_
    assert (z.abs() < 3).all(), z.to_dict()
