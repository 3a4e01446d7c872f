"""Bayesian fits: the PyTensor likelihood equals the NumPy one, NUTS on CDNOW agrees with the
MLE with clean diagnostics, posterior files, and predictions with intervals."""

import json
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import clvlab
from clvlab import BetaGeo, GammaGamma, ParetoNBD, bayes
from clvlab._fitting import compress
from clvlab.datasets import load_cdnow_summary


@pytest.fixture(scope="module")
def rfm():
    return load_cdnow_summary()


def _data(model, rfm):
    rows = rfm[rfm["frequency"] > 0] if isinstance(model, GammaGamma) else rfm
    distinct, counts = compress(model._data(rows))
    return model._prepare(distinct), counts


POINTS = {BetaGeo: [0.3, 5.0, 0.7, 2.0], ParetoNBD: [0.5, 9.0, 0.7, 14.0],
          GammaGamma: [6.0, 3.5, 16.0]}


@pytest.mark.parametrize("model_class", [BetaGeo, ParetoNBD, GammaGamma])
def test_pytensor_log_posterior_equals_numpy(model_class, rfm):
    """The PyMC model's log density = log-normal priors + the NumPy log-likelihood (1e-10)."""
    model = model_class()
    data, counts = _data(model, rfm)
    pymc_model = bayes.build_pymc_model(model, data, counts, priors=None)
    point = np.array(POINTS[model_class])
    logp = pymc_model.compile_logp(jacobian=False)
    dlogp = pymc_model.compile_dlogp(jacobian=False)
    values = {f"{n}_log__": np.log(v) for n, v in zip(model.param_names, point)}
    centres = bayes.default_priors(model, data, counts)
    prior = sum(stats.lognorm.logpdf(v, s=bayes.PRIOR_SIGMA, scale=centres[n])
                for n, v in zip(model.param_names, point))
    loglik, grads = model_class._loglik(point, data)
    expected = prior + counts @ loglik
    assert float(logp(values)) == pytest.approx(expected, rel=1e-10, abs=1e-10)
    # gradient in log space: d/dlog(theta) = theta * d/dtheta (priors: -(log theta - mu)/sigma^2 / theta - 1/theta)
    mu = np.array([np.log(centres[n]) for n in model.param_names])
    prior_grad = (-(np.log(point) - mu) / bayes.PRIOR_SIGMA**2 - 1) / point
    expected_grad = point * (prior_grad + counts @ grads)
    np.testing.assert_allclose(dlogp(values), expected_grad, rtol=1e-9)


def test_priors_can_be_replaced_and_unknown_names_are_refused(rfm):
    import pymc as pm

    model = BetaGeo()
    data, counts = _data(model, rfm)
    pymc_model = bayes.build_pymc_model(
        model, data, counts, priors={"r": lambda name: pm.Gamma(name, alpha=2.0, beta=4.0)})
    assert "gamma" in str(pymc_model["r"].owner.op).lower()
    with pytest.raises(clvlab.ClvlabError, match="unknown parameters"):
        bayes.build_pymc_model(model, data, counts, priors={"rho": lambda name: None})
    with pytest.raises(clvlab.ClvlabError, match="method must be one of"):
        BetaGeo(method="gibbs").fit(rfm)


def test_map_is_near_the_mle(rfm):
    mle = BetaGeo().fit(rfm)
    map_fit = BetaGeo(method="map", progressbar=False).fit(rfm)
    # weak priors: the mode moves by a small fraction of a standard error
    assert np.all(np.abs(map_fit.params_ - mle.params_) < 0.5 * mle.standard_errors_)
    assert map_fit.convergence_["method"] == "map"
    with pytest.raises(clvlab.ClvlabError, match="no posterior draws"):
        map_fit.posterior_predict("p_alive", rfm)


@pytest.fixture(scope="module")
def small_nuts(rfm):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", clvlab.ClvlabWarning)  # few draws: ESS below 400
        return BetaGeo(method="nuts", draws=150, tune=200, chains=2, random_seed=3,
                       progressbar=False).fit(rfm)


def test_nuts_result_attributes_and_summary(small_nuts):
    idata = small_nuts.idata_
    assert {"posterior", "sample_stats", "log_likelihood"} <= set(idata.groups())
    assert idata.log_likelihood["rfm"].shape == (2, 150, small_nuts.n_distinct_rows_)
    summary = small_nuts.summary()
    assert {"mean", "sd", "r_hat", "ess_bulk"} <= set(summary.columns)
    assert list(summary.index) == ["r", "alpha", "a", "b"]
    assert small_nuts.params_["r"] == pytest.approx(summary.loc["r", "mean"], abs=1e-3)
    assert {"divergences", "max_r_hat", "min_ess_bulk"} <= set(small_nuts.convergence_)


def test_posterior_saved_as_netcdf_beside_the_json(small_nuts, rfm, tmp_path):
    path = tmp_path / "bg.json"
    small_nuts.save(path)
    payload = json.loads(path.read_text())
    assert payload["posterior_file"] == "bg.posterior.nc"
    assert (tmp_path / "bg.posterior.nc").read_bytes()[:8] == b"\x89HDF\r\n\x1a\n"  # netCDF4/HDF5
    loaded = clvlab.load_model(path)
    # population-level groups only: no per-row log-likelihood or weights in a model file
    assert set(loaded.idata_.groups()) == {"posterior", "sample_stats"}
    np.testing.assert_allclose(loaded.idata_.posterior["r"].to_numpy(),
                               small_nuts.idata_.posterior["r"].to_numpy())
    a = small_nuts.posterior_predict("p_alive", rfm.head(50))
    b = loaded.posterior_predict("p_alive", rfm.head(50))
    pd.testing.assert_frame_equal(a, b)
    (tmp_path / "bg.posterior.nc").unlink()
    with pytest.raises(clvlab.ClvlabError, match="posterior file .* is missing"):
        clvlab.load_model(path)


def test_posterior_predictions_summary_chunks_and_draws(small_nuts, rfm):
    whole = small_nuts.posterior_predict("expected_purchases", rfm, t=39, n_draws=100)
    assert list(whole.columns) == ["mean", "sd", "3%", "97%"]
    assert (whole["3%"] <= whole["mean"]).all() and (whole["mean"] <= whole["97%"]).all()
    point = small_nuts.expected_purchases(rfm, t=39)
    assert np.corrcoef(whole["mean"], point)[0, 1] > 0.999
    chunked = bayes.posterior_summary(small_nuts, lambda m, c: m.expected_purchases(c, t=39), rfm,
                                      n_draws=100, chunk_size=97)
    pd.testing.assert_frame_equal(whole, chunked)
    draws = small_nuts.posterior_predict("p_alive", rfm, n_draws=40, return_draws=True)
    assert draws.shape == (len(rfm), 40)
    with pytest.raises(clvlab.ClvlabError, match="no prediction"):
        small_nuts.posterior_predict("_loglik", rfm)


def test_clv_with_intervals_and_mle_draws(rfm):
    """Intervals after maximum likelihood come from the asymptotic normal of log(theta)."""
    bg = BetaGeo().fit(rfm)
    spend = GammaGamma().fit(load_cdnow_summary_with_spend())
    rfm_spend = load_cdnow_summary_with_spend()
    clv = bayes.posterior_summary(
        [bg, spend], lambda m, s, chunk: clvlab.customer_lifetime_value(
            m, s, chunk, horizon=52, discount_rate=0.01), rfm_spend, n_draws=60)
    point = clvlab.customer_lifetime_value(bg, spend, rfm_spend, horizon=52, discount_rate=0.01)
    inside = (clv["3%"] <= point) & (point <= clv["97%"])
    assert inside.mean() > 0.95
    draws = bayes.parameter_draws(bg, 4000, seed=1)
    np.testing.assert_allclose(draws.std(axis=0), bg.standard_errors_, rtol=0.15)


def load_cdnow_summary_with_spend():
    log = clvlab.datasets.load_cdnow(sample=True)
    return clvlab.rfm_summary(log, amount_col="amount", time_unit="W", calibration_end="1997-09-30",
                              observation_end="1998-06-30")


@pytest.mark.slow
@pytest.mark.parametrize("model_class", [BetaGeo, ParetoNBD])
def test_nuts_on_cdnow_agrees_with_the_mle(model_class, rfm):
    mle = model_class().fit(rfm)
    fitted = model_class(method="nuts", draws=1000, tune=1000, chains=4, random_seed=11,
                         progressbar=False).fit(rfm)
    c = fitted.convergence_
    assert c["divergences"] == 0 and c["max_r_hat"] < 1.01 and c["min_ess_bulk"] > 400, c
    summary = fitted.summary()
    distance = np.abs(summary["mean"] - mle.params_) / summary["sd"]
    assert (distance < 2).all(), distance
    ppc = bayes.frequency_ppc(fitted, rfm, n_draws=200, seed=5)
    inside = (ppc["3%"] <= ppc["observed"]) & (ppc["observed"] <= ppc["97%"])
    assert inside.sum() >= len(ppc) - 1, ppc  # at most one of 8 bins outside its 94% interval


def test_an_extreme_point_is_rejected_not_an_error(rfm):
    """NUTS's first steps once reached r 1e10, alpha 4e17: z rounds to 1 and mpmath divided by
    zero, which killed the chain. The log-likelihood Op must return -inf there."""
    import pytensor
    import pytensor.tensor as pt

    model = ParetoNBD()
    data, counts = _data(model, rfm)
    op = bayes._pytensor_op(lambda p: ParetoNBD._loglik_total(p, data, counts))
    params = pt.dvector()
    evaluate = pytensor.function([params], op(params))
    assert evaluate(np.array([1.13903082e10, 4.08945216e17, 1.67446368e-10, 4.41724824e-02])) == -np.inf
    assert np.isfinite(evaluate(np.array([0.55, 10.6, 0.61, 11.7])))


def test_nuts_starts_from_the_mle_with_its_covariance_as_mass_matrix(rfm):
    """Chains start near the MLE with the asymptotic covariance of log(theta) as the mass matrix
    (PyMC's default identity made 100k-customer Pareto/NBD trees hundreds of steps deep); a prior
    on another transform falls back to PyMC's own initialisation."""
    import pymc as pm

    model = ParetoNBD()
    data, counts = _data(model, rfm)
    mle = ParetoNBD().fit(rfm)
    start = (mle.params_.to_numpy(), mle.covariance_.to_numpy())
    pymc_model = bayes.build_pymc_model(model, data, counts, priors=None)
    with pymc_model:
        step, initvals = bayes._nuts_start(pymc_model, model.param_names, start, 4, 7, 0.9)
    assert len(initvals) == 4 and len({iv["beta_log__"] for iv in initvals}) == 4
    log_sd = mle.standard_errors_.to_numpy() / mle.params_.to_numpy()
    for iv in initvals:  # independent draws, overdispersed (2 sd) but near the estimate
        z = (np.array([iv[f"{n}_log__"] for n in model.param_names]) - np.log(mle.params_)) / log_sd
        assert np.all(np.abs(z) < 10)
    assert step.target_accept == 0.9
    np.testing.assert_allclose(np.sqrt(np.diag(step.potential._initial_cov)), log_sd, rtol=1e-12)
    uniform = bayes.build_pymc_model(
        model, data, counts, priors={"r": lambda name: pm.Uniform(name, 0.0, 10.0)})
    with uniform:
        assert bayes._nuts_start(uniform, model.param_names, start, 4, 7, 0.9) is None
    assert bayes._nuts_start(pymc_model, model.param_names, None, 4, 7, 0.9) is None
