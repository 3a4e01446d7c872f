"""The bootstrap of a fit (clvlab.bayes.bootstrap_fit) and the three sources of parameter draws
(clvlab.bayes.parameter_draws: posterior, normal, bootstrap).

References: a refit is checked against an ordinary weighted fit of the resampled customers;
standard errors against the sandwich (robust) covariance computed here from the per-customer
scores, and against the Hessian's on data simulated from the model; intervals against their
coverage of known parameters over simulated datasets."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

import clvlab
from clvlab import BetaGeo, ClvlabError, ClvlabWarning, GammaGamma, ParetoNBD, bayes
from clvlab.data import simulate
from clvlab.inference.bootstrap import Refitter


@pytest.fixture(scope="module")
def rfm() -> pd.DataFrame:
    log = clvlab.datasets.load_cdnow(sample=True)
    return clvlab.rfm_summary(log, amount_col="amount", time_unit="W",
                              calibration_end="1997-09-30", observation_end="1998-06-30")


@pytest.fixture(scope="module")
def fits(rfm) -> dict:
    return {cls.__name__: cls().fit(rfm) for cls in (BetaGeo, ParetoNBD, GammaGamma)}


@pytest.mark.parametrize("name", ["BetaGeo", "ParetoNBD", "GammaGamma"])
def test_a_refit_is_the_weighted_fit_of_the_resample(fits, rfm, name):
    """The counts on distinct rows and the refit started at the estimates give the same
    estimates as an ordinary fit of the resampled customers (as weights on the full table)."""
    model = fits[name]
    refitter = Refitter(model, rfm, None)
    child = np.random.SeedSequence(7)
    params, message, restarted = refitter(child)
    assert message is None and not restarted
    drawn = np.random.default_rng(child).multinomial(refitter.n_customers, refitter.probabilities)
    used = rfm[rfm["frequency"] > 0] if name == "GammaGamma" else rfm
    reference = clone(model).fit(used, weights=drawn.astype(float)).params_.to_numpy()
    np.testing.assert_allclose(params, reference, rtol=2e-5)
    assert not np.allclose(params, model.params_.to_numpy(), rtol=1e-3)  # a real resample


def test_draws_do_not_depend_on_workers(fits, rfm):
    model = fits["BetaGeo"]
    filters = list(warnings.filters)
    serial = bayes.bootstrap_fit(model, rfm, n_boot=12, seed=3, n_jobs=1, store=False)
    threads = bayes.bootstrap_fit(model, rfm, n_boot=12, seed=3, n_jobs=2, store=False)
    assert warnings.filters == filters  # the threads left the process's warnings as they were
    np.testing.assert_array_equal(serial.draws, threads.draws)
    assert serial.failures == 0 and serial.draws.shape == (12, 4)
    assert serial.names == ("r", "alpha", "a", "b")
    assert not hasattr(model, "bootstrap_")  # store=False leaves the model as it was


def _sandwich_se(model, rfm) -> np.ndarray:
    """sqrt(diag(H^-1 J H^-1)): J the sum of the customers' score outer products (the robust
    covariance, right when the model is wrong; the bootstrap estimates the same thing)."""
    _, scores = model._loglik(model.params_.to_numpy(), model._prepare(model._data(rfm)))
    inverse_h = model.covariance_.to_numpy()
    return np.sqrt(np.diag(inverse_h @ (scores.T @ scores) @ inverse_h))


def _bootstrap_se(draws: np.ndarray, params: np.ndarray) -> np.ndarray:
    """Half the central 68.3 % interval of the log draws, times the estimate: the standard
    error on the log scale (the delta method), measured by quantiles. Pareto/NBD's s and beta
    have long right tails even on the log scale, which inflate an sd over a few hundred
    draws by up to 40 % from one seed to the next; quantiles do not see them."""
    low, high = np.quantile(np.log(draws), [0.158655, 0.841345], axis=0)
    return (high - low) / 2 * params


SLOW = pytest.mark.slow  # Pareto/NBD's refits cost about twice BG/NBD's


@pytest.mark.parametrize("name", ["BetaGeo", pytest.param("ParetoNBD", marks=SLOW)])
def test_standard_errors_on_cdnow(fits, rfm, name):
    """400 resamples: the bootstrap standard errors agree with the sandwich standard errors
    within 15 % (Monte Carlo error of this measure from 400 draws: about 5.5 %). They agree
    with the Hessian's for the dropout parameters but not for r and alpha: CDNOW's purchase
    counts are more dispersed than the model says, so the Hessian understates their standard
    errors (alpha's by 23 % for BG/NBD, 44 % for Pareto/NBD), which the bootstrap, like the
    sandwich, sees."""
    model = fits[name]
    result = bayes.bootstrap_fit(model, rfm, n_boot=400, seed=11, store=False)
    assert result.failures == 0
    boot = _bootstrap_se(result.draws, model.params_.to_numpy())
    sandwich = _sandwich_se(model, rfm)
    np.testing.assert_allclose(boot, sandwich, rtol=0.15)
    hessian = model.standard_errors_.to_numpy()
    dropout = [2, 3]  # a, b or s, beta
    np.testing.assert_allclose(boot[dropout], hessian[dropout], rtol=0.15)
    assert sandwich[1] / hessian[1] > 1.2  # alpha: the misspecification the Hessian misses


def _daily(table: pd.DataFrame) -> pd.DataFrame:
    """Durations in weeks rounded to days, as an RFM table from a log has them (distinct rows
    then number about a thousand, not one per customer)."""
    days = np.where(table["frequency"] > 0, np.maximum(np.round(table["recency"] * 7), 1), 0)
    return table.assign(recency=days / 7, T=np.round(table["T"] * 7) / 7)


@pytest.mark.parametrize("cls, truth, simulator", [
    (BetaGeo, dict(r=0.24, alpha=4.4, a=0.79, b=2.43), simulate.bg_nbd),
    pytest.param(ParetoNBD, dict(r=0.55, alpha=10.6, s=0.61, beta=11.7), simulate.pareto_nbd,
                 marks=SLOW)])
def test_standard_errors_match_the_hessian_when_the_model_is_right(cls, truth, simulator):
    """On 2,357 customers simulated from the model at CDNOW's estimates and ages, the
    bootstrap's standard errors (400 resamples) are the Hessian's within 15 %."""
    ages = np.random.default_rng(5).uniform(27, 39, 2357)
    table = _daily(simulator(2357, T=ages, seed=6, **truth)[["frequency", "recency", "T"]])
    model = cls().fit(table, time_unit="W")
    result = bayes.bootstrap_fit(model, table, n_boot=400, seed=2, store=False)
    boot = _bootstrap_se(result.draws, model.params_.to_numpy())
    np.testing.assert_allclose(boot, model.standard_errors_.to_numpy(), rtol=0.15)


@pytest.mark.slow
def test_bootstrap_intervals_cover_the_true_parameters():
    """40 datasets of 2,000 BG/NBD customers, 50 resamples each: the 90 % percentile intervals
    hold the true parameters at about 90 % (160 intervals, 4 per dataset; binomial sd 2.4 %,
    wider for the correlation within a dataset)."""
    truth = dict(r=0.5, alpha=6.0, a=0.7, b=2.5)
    inside = []
    for replication in range(40):
        ages = np.random.default_rng(replication).uniform(26, 52, 2000)
        table = _daily(simulate.bg_nbd(2000, T=ages, seed=100 + replication, **truth))
        model = BetaGeo().fit(table[["frequency", "recency", "T"]], time_unit="W")
        result = bayes.bootstrap_fit(model, table, n_boot=50, seed=replication, store=False)
        low, high = np.quantile(result.draws, [0.05, 0.95], axis=0)
        inside.append((low <= list(truth.values())) & (list(truth.values()) <= high))
    coverage = np.mean(inside)
    assert 0.82 <= coverage <= 0.97, coverage


def test_failures_are_counted_and_reported(fits, rfm, monkeypatch):
    """Refits made to fail: from the estimates for a third of the resamples (then retried from
    the model's start, and counted as restarted) and for good for another third (counted,
    named, warned about, no draw): never dropped in silence."""
    original = Refitter.refit

    def flaky(self, weights, from_estimate):
        kind = int(weights.sum() + weights[:50].sum()) % 3  # a function of the resample
        if kind == 1 and from_estimate or kind == 2:
            return None, "injected failure"
        return original(self, weights, from_estimate)

    monkeypatch.setattr(Refitter, "refit", flaky)
    with pytest.warns(ClvlabWarning, match=r"\d+ of 30 bootstrap refits of this BetaGeo failed"):
        result = bayes.bootstrap_fit(fits["BetaGeo"], rfm, n_boot=30, seed=0, n_jobs=2,
                                     store=False)
    assert 3 <= result.failures <= 20 and 3 <= result.restarted <= 20
    assert result.failures + len(result.draws) == 30
    assert result.failure_messages == {"injected failure": result.failures}
    assert f"{result.failures} failed" in repr(result)


def test_every_refit_failing_is_an_error():
    table = pd.DataFrame({"frequency": [1, 0], "recency": [5.0, 0.0], "T": [30.0, 30.0]})
    model = BetaGeo.from_params("W", r=0.3, alpha=4.0, a=0.8, b=2.0)
    with pytest.raises(ClvlabError, match="every one of the 30 bootstrap refits"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            bayes.bootstrap_fit(model, table.iloc[[1, 1]], n_boot=30, n_jobs=1)


def test_bad_arguments(fits, rfm):
    model = fits["BetaGeo"]
    with pytest.raises(ClvlabError, match="not fitted"):
        bayes.bootstrap_fit(BetaGeo(), rfm)
    with pytest.raises(ClvlabError, match="n_boot"):
        bayes.bootstrap_fit(model, rfm, n_boot=1)
    with pytest.raises(ClvlabError, match="backend must be one of"):
        bayes.bootstrap_fit(model, rfm, backend="gpu")
    with pytest.raises(ClvlabError, match="n_jobs"):
        bayes.bootstrap_fit(model, rfm, n_jobs=0)
    with pytest.raises(ClvlabError, match="weights must be one finite number"):
        bayes.bootstrap_fit(model, rfm, weights=np.ones(3))


def test_covariate_model_bootstraps_its_coefficients():
    """A Pareto/NBD with a channel: the refits go through fit with start_params, the draws
    hold the coefficient, whose bootstrap standard error is the Hessian's within 30 %
    (60 resamples: Monte Carlo error 9 %)."""
    table = simulate.with_covariates(
        "pareto-nbd", 1500, params=dict(r=0.8, alpha=8.0, s=0.6, beta=10.0),
        coefficients={"purchase": {"web": 0.5}}, seed=4, T=52)
    table = table[["frequency", "recency", "T", "web"]]
    model = ParetoNBD(purchase_covariates=["web"]).fit(table, time_unit="W")
    result = bayes.bootstrap_fit(model, table, n_boot=60, seed=1, store=False)
    assert result.names == ("r", "alpha", "s", "beta", "purchase.web")
    assert result.failures == 0
    se = result.standard_errors()["purchase.web"]
    assert se == pytest.approx(model.standard_errors_["purchase.web"], rel=0.3)


# --- parameter_draws: three sources ----------------------------------------------------------
def test_parameter_draws_methods(fits, rfm):
    model = clone(fits["ParetoNBD"]).fit(rfm)
    auto = bayes.parameter_draws(model, 50, seed=4)
    np.testing.assert_array_equal(auto, bayes.parameter_draws(model, 50, seed=4, method="normal"))
    with pytest.raises(ClvlabError, match="method must be one of .*'posterior', 'normal', 'bootstrap'"):
        bayes.parameter_draws(model, 5, method="laplace")
    with pytest.raises(ClvlabError, match="method='posterior' needs a Bayesian fit"):
        bayes.parameter_draws(model, 5, method="posterior")
    with pytest.raises(ClvlabError, match="method='bootstrap' needs a bootstrap"):
        bayes.parameter_draws(model, 5, method="bootstrap")
    fresh = ParetoNBD.from_params("W", r=0.5, alpha=10.0, s=0.6, beta=11.0)
    with pytest.raises(ClvlabError, match="method='normal' needs a finite covariance"):
        bayes.parameter_draws(fresh, 5, method="normal")
    # a stored bootstrap: explicit call, then draws from it
    result = bayes.bootstrap_fit(model, rfm, n_boot=20, seed=0)
    assert model.bootstrap_ is result
    draws = bayes.parameter_draws(model, 8, seed=1, method="bootstrap")
    assert draws.shape == (8, 4)
    assert all(any(np.array_equal(d, r) for r in result.draws) for d in draws)
    assert len(bayes.parameter_draws(model, 500, method="bootstrap")) == 20  # all it has
    # a refit drops the stored bootstrap: never used for the new estimates
    model.fit(rfm.iloc[:2000])
    assert not hasattr(model, "bootstrap_")
    with pytest.raises(ClvlabError, match="needs a bootstrap of this ParetoNBD"):
        bayes.parameter_draws(model, 5, method="bootstrap")
    # one set on a model by hand from another fit is refused as stale
    model.bootstrap_ = result
    with pytest.raises(ClvlabError, match="rerun clvlab.bayes.bootstrap_fit"):
        bayes.parameter_draws(model, 5, method="bootstrap")
    del model.bootstrap_
    # given the table, a new bootstrap runs and is stored
    ran = bayes.parameter_draws(model, 6, seed=2, method="bootstrap", table=rfm.iloc[:2000])
    assert ran.shape == (6, 4) and len(model.bootstrap_.draws) == 6


def test_posterior_summary_takes_the_method(fits, rfm):
    model = clone(fits["BetaGeo"]).fit(rfm)
    bayes.bootstrap_fit(model, rfm, n_boot=30, seed=0)
    summary = bayes.posterior_summary(model, lambda m, chunk: m.p_alive(chunk), rfm.head(50),
                                      n_draws=30, method="bootstrap")
    normal = bayes.posterior_summary(model, lambda m, chunk: m.p_alive(chunk), rfm.head(50),
                                     n_draws=30, method="normal")
    assert summary["parameter_sd"].gt(0).any()
    assert not np.allclose(summary["parameter_sd"], normal["parameter_sd"])


@pytest.mark.slow
def test_processes_give_the_same_draws(fits, rfm):
    model = fits["GammaGamma"]
    threads = bayes.bootstrap_fit(model, rfm, n_boot=6, seed=9, n_jobs=2, store=False)
    processes = bayes.bootstrap_fit(model, rfm, n_boot=6, seed=9, n_jobs=2,
                                    backend="processes", store=False)
    np.testing.assert_array_equal(threads.draws, processes.draws)
    assert processes.backend == "processes"
