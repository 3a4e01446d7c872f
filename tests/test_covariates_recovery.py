"""Covariate effects recovered from customer bases simulated with known coefficients (issue 22),
and the likelihood-ratio test's size and power on them.

The simulators (``clvlab.simulate.with_covariates``) draw each customer's latent rates from the
documented forms; a fit should find the coefficients within its own standard errors, the LR test
should find a real covariate and reject a null one at its nominal rate.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from clvlab import BetaGeo, GammaGamma, ParetoNBD, lr_test, simulate

pytestmark = [pytest.mark.slow, pytest.mark.once]

N = 100_000
PARETO = dict(r=0.55, alpha=10.6, s=0.61, beta=11.7)
BG = dict(r=0.24, alpha=4.4, a=0.79, b=2.4)
SPEND = dict(p=6.25, q=3.74, v=15.4)
TWO = {"purchase": {"x1": 0.4, "x2": -0.3}, "dropout": {"x1": 0.3, "x2": -0.5}}


def weekly(table: pd.DataFrame) -> pd.DataFrame:
    table.attrs = {"clvlab": {"time_unit": "W"}}
    return table


def assert_within_three_standard_errors(model, truth: dict[str, float]) -> None:
    z = {name: (model.params_[name] - value) / model.standard_errors_[name]
         for name, value in truth.items()}
    assert set(truth) == set(model.params_.index)
    assert all(abs(v) < 3 for v in z.values()), {k: round(v, 2) for k, v in z.items()}
    # jointly too: the Wald distance from the truth in the fit's own covariance (p, q and v of
    # Gamma-Gamma lie on a ridge, where single estimates stray further together)
    names = list(truth)
    error = model.params_[names].to_numpy() - np.array([truth[n] for n in names])
    wald = float(error @ np.linalg.solve(model.covariance_.loc[names, names].to_numpy(), error))
    assert wald < stats.chi2.ppf(0.999, len(names)), wald
    # and the standard errors are small enough for that to mean something (100,000 customers)
    coefficients = [n for n in truth if "." in n]
    assert (model.standard_errors_[coefficients] < 0.05).all(), model.standard_errors_


def flatten(coefficients: dict[str, dict[str, float]]) -> dict[str, float]:
    return {f"{p}.{c}": v for p, g in coefficients.items() for c, v in g.items()}


def test_pareto_nbd_recovers_two_covariates_in_both_processes():
    table = weekly(simulate.with_covariates("pareto-nbd", N, params=PARETO, coefficients=TWO,
                                            T=52.0, seed=101))
    model = ParetoNBD(purchase_covariates=["x1", "x2"], dropout_covariates=["x1", "x2"]).fit(table)
    assert model.convergence_["converged"]
    assert_within_three_standard_errors(model, {**PARETO, **flatten(TWO)})


def test_bg_nbd_recovers_two_covariates_with_dropout_moving_b():
    table = weekly(simulate.with_covariates("bg-nbd", N, params=BG, coefficients=TWO, T=52.0,
                                            seed=102, dropout_form="b"))
    model = BetaGeo(purchase_covariates=["x1", "x2"], dropout_covariates=["x1", "x2"],
                    dropout_form="b").fit(table)
    assert model.convergence_["converged"]
    assert_within_three_standard_errors(model, {**BG, **flatten(TWO)})


def test_gamma_gamma_recovers_two_spend_covariates():
    coefficients = {"spend": {"x1": 0.3, "x2": -0.2}}
    frequency = np.random.default_rng(103).integers(1, 10, N)
    table = simulate.with_covariates("gamma-gamma", N, params=SPEND, coefficients=coefficients,
                                     frequency=frequency, seed=103)
    table = table.assign(recency=1.0, T=2.0)  # every RFM table has them; Gamma-Gamma ignores them
    model = GammaGamma(spend_covariates=["x1", "x2"]).fit(table)
    assert model.convergence_["converged"]
    assert_within_three_standard_errors(model, {**SPEND, **flatten(coefficients)})


def lr_p_value(coefficient: float, n: int, seed: int) -> float:
    """p-value of the LR test of a 0/1 covariate z in both Pareto/NBD processes, on a base
    simulated with ``coefficient`` as z's purchase effect (0: z is unrelated to anything)."""
    table = weekly(simulate.with_covariates(
        "pareto-nbd", n, params=PARETO, T=52.0, seed=seed,
        coefficients={"purchase": {"z": coefficient}, "dropout": {"z": 0.0}}))
    plain = ParetoNBD().fit(table)
    larger = ParetoNBD(purchase_covariates=["z"], dropout_covariates=["z"]).fit(table)
    out = lr_test(plain, larger)
    assert out.df == 2
    return out.p_value


def test_lr_test_finds_a_real_covariate():
    p_values = np.array([lr_p_value(0.5, 2_000, seed) for seed in range(1000, 1020)])
    # E[statistic] is about 40 here: the test misses it in (almost) no replication
    assert (p_values < 0.05).sum() >= 19, p_values


def test_lr_test_rejects_a_true_null_at_its_nominal_rate():
    replications = 100
    p_values = np.array([lr_p_value(0.0, 2_000, seed) for seed in range(2000, 2000 + replications)])
    low, high = stats.binom.interval(0.99, replications, 0.05)
    rejections = int((p_values < 0.05).sum())
    assert low <= rejections <= high, (rejections, (low, high))
    # under the null the p-values are uniform (Wilks): a loose check of the whole distribution
    assert stats.kstest(p_values, "uniform").pvalue > 0.001, np.sort(p_values)
