"""Bayesian fits of models with covariates (issue 22): the same entry point, priors on the
coefficients, the compiled loop over covariate groups inside the samplers' likelihood Op, and
parameter uncertainty (draws, predictions with intervals) for covariate models after any fit.

Data: 2,000 simulated Pareto/NBD customers whose purchase and dropout rates depend on a 0/1
``gender`` through known coefficients (clvlab.data.simulate.with_covariates)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import clvlab
from clvlab import GammaGamma, ParetoNBD, _compat, bayes
from clvlab.data import simulate

TRUTH = {"r": 0.8, "alpha": 8.0, "s": 0.6, "beta": 10.0, "purchase.gender": 0.5,
         "dropout.gender": -0.4}
SETTINGS = dict(purchase_covariates=["gender"], dropout_covariates=["gender"])


@pytest.fixture(scope="module")
def rfm() -> pd.DataFrame:
    table = simulate.with_covariates(
        "pareto-nbd", 2000, params={k: TRUTH[k] for k in ("r", "alpha", "s", "beta")},
        coefficients={"purchase": {"gender": 0.5}, "dropout": {"gender": -0.4}}, seed=1, T=52)
    rng = np.random.default_rng(2)
    table["score"] = rng.normal(3.0, 2.0, len(table))  # continuous: a covariate group per customer
    table["channel"] = rng.choice(["mail", "store", "web"], len(table))
    # spend for the CLV check: Gamma-Gamma customers with repeat purchases
    table["monetary_value"] = np.where(table["frequency"] > 0,
                                       rng.gamma(5.0, 8.0, len(table)), 0.0)
    table.attrs = {"clvlab": {"time_unit": "W"}}
    return table


@pytest.fixture(scope="module")
def few(rfm) -> pd.DataFrame:
    """400 customers: with the continuous score, 400 covariate groups (over the 200 from which
    the Python path, too, runs them in compiled code), few enough for the per-customer path."""
    return rfm.head(400)


@pytest.fixture(scope="module")
def mle(rfm) -> ParetoNBD:
    return ParetoNBD(**SETTINGS).fit(rfm)


def _target(model: ParetoNBD, rfm: pd.DataFrame, monkeypatch) -> tuple:
    """The (target, start) a Bayesian fit of ``model`` hands to the sampler, without sampling."""
    seen = {}

    def capture(*args, target, start, **kwargs):
        seen.update(target=target, start=start)
        raise _Captured

    monkeypatch.setattr(bayes, "fit_bayes", capture)
    with pytest.raises(_Captured):
        model.fit(rfm)
    monkeypatch.undo()
    return seen["target"], seen["start"]


class _Captured(Exception):
    pass


# --- the likelihood the samplers see -------------------------------------------------------
@pytest.mark.parametrize("mode", ["FAST_RUN", "NUMBA"])
def test_the_op_equals_the_covariate_log_likelihood(few, mode, monkeypatch):
    """The Op over the compiled loop of covariate groups gives the log-likelihood and gradient
    that the per-customer path gives (each customer's plain model at their own parameters),
    in the stack's default mode (PyTensor 2: C, calling Python) and in numba (PyTensor 3's
    default, nutpie), with a continuous covariate (400 groups) and a text one, at points
    where coefficients are negative; a base parameter <= 0 is rejected, a negative coefficient
    is not."""
    import pytensor
    import pytensor.tensor as pt

    model = ParetoNBD(purchase_covariates=["score", "channel"], dropout_covariates=["gender"],
                      method="map")
    target, start = _target(model, few, monkeypatch)
    assert target.names == ["r", "alpha", "s", "beta", "purchase.score", "purchase.channel[store]",
                            "purchase.channel[web]", "dropout.gender"]
    # issue 30: the likelihood runs every row at its own parameters in one compiled pass
    assert target.likelihood.n_positive == 4 and target.row_calls == 1
    params = pt.dvector()
    value, _ = bayes.compiled_graph(target.likelihood, params)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # numba's object-mode fallback
        evaluate = pytensor.function([params], [value, pytensor.grad(value, params)], mode=mode)
    rng = np.random.default_rng(4)
    moved = start[0] + np.r_[np.zeros(4), rng.normal(0, 0.3, 4)]
    for point in [start[0], moved]:
        got, gradient = evaluate(point)
        expected = model.at_params(point).log_likelihood(few)
        assert float(got) == pytest.approx(expected, rel=1e-10)
        exact_value, exact_gradient = target.likelihood.python_total(point)
        assert exact_value == pytest.approx(expected, rel=1e-10)
        np.testing.assert_allclose(gradient, exact_gradient, rtol=1e-8,
                                   atol=1e-8 * np.abs(exact_gradient).max())
    # the gradient is the derivative of the per-customer log-likelihood
    for i in (1, 4, 7):
        h = 1e-6 * max(abs(moved[i]), 1.0)
        up, down = moved.copy(), moved.copy()
        up[i] += h
        down[i] -= h
        numeric = (model.at_params(up).log_likelihood(few)
                   - model.at_params(down).log_likelihood(few)) / (2 * h)
        assert gradient[i] == pytest.approx(numeric, rel=1e-5, abs=1e-3)
    outside = start[0].copy()
    outside[2] = -0.1
    assert float(evaluate(outside)[0]) == -np.inf
    negative = start[0].copy()
    negative[4:] = -np.abs(negative[4:]) - 0.1
    assert np.isfinite(float(evaluate(negative)[0]))


def test_default_priors_and_the_log_posterior(few, monkeypatch):
    """log p = the base parameters' log-normal priors + Normal(0, 1 / sd) on each coefficient
    (sd: the covariate's standard deviation; 1 for a level indicator) + the log-likelihood."""
    model = ParetoNBD(purchase_covariates=["score", "channel"], dropout_covariates=["gender"],
                      method="nuts")
    target, _ = _target(model, few, monkeypatch)
    pymc_model = bayes.build_pymc_model(None, None, None, None, target=target)
    sd = {"purchase.score": few["score"].std(ddof=0), "purchase.channel[store]": 1.0,
          "purchase.channel[web]": 1.0, "dropout.gender": few["gender"].std(ddof=0)}
    assert target.sigmas == pytest.approx({n: 1.0 / s for n, s in sd.items()})
    point = np.array([0.9, 8.0, 0.5, 6.0, 0.1, -0.2, 0.3, -0.5])
    values = {(f"{n}_log__" if i < 4 else n): (np.log(v) if i < 4 else v)
              for i, (n, v) in enumerate(zip(target.names, point))}
    centres = target.centres
    assert centres["alpha"] == pytest.approx(52.0) and centres["r"] == 1.0  # mean T; shape 1
    prior = sum(stats.lognorm.logpdf(v, s=bayes.PRIOR_SIGMA, scale=centres[n])
                for n, v in zip(target.names[:4], point[:4]))
    prior += sum(stats.norm.logpdf(v, 0.0, 1.0 / sd[n])
                 for n, v in zip(target.names[4:], point[4:]))
    expected = prior + model.at_params(point).log_likelihood(few)
    logp = pymc_model.compile_logp(jacobian=False)
    assert float(logp(values)) == pytest.approx(expected, rel=1e-10)


def test_priors_by_coefficient_name_and_bad_names_refused(rfm, monkeypatch):
    import pymc as pm

    priors = {"purchase.gender": lambda name: pm.Normal(name, 0.0, 0.5),
              "dropout.channel[web]": lambda name: pm.Normal(name, 0.1, 0.2)}
    model = ParetoNBD(purchase_covariates=["gender"], dropout_covariates=["channel"],
                      method="nuts", priors=priors)
    target, _ = _target(model, rfm, monkeypatch)
    pymc_model = bayes.build_pymc_model(None, None, None, priors, target=target)
    sigma = lambda name: float(pymc_model[name].owner.inputs[-1].eval())  # noqa: E731
    assert sigma("purchase.gender") == pytest.approx(0.5)
    assert sigma("dropout.channel[web]") == pytest.approx(0.2)
    assert sigma("dropout.channel[store]") == pytest.approx(1.0)  # the default, level indicator
    # a name no covariate setting can give is refused before the data are read
    for bad in ("purchase.gendr", "spend.gender", "dropout.gender", "gender", "shared.gender"):
        with pytest.raises(clvlab.ClvlabError, match="unknown parameters"):
            ParetoNBD(purchase_covariates=["gender"], dropout_covariates=["channel"],
                      method="nuts", priors={bad: lambda name: None}).fit(rfm)
    # a level the table does not have is found once the encoding is learned
    with pytest.raises(clvlab.ClvlabError,
                       match=r"unknown parameters \['dropout.channel\[fax\]'\]"):
        ParetoNBD(purchase_covariates=["gender"], dropout_covariates=["channel"], method="map",
                  priors={"dropout.channel[fax]": lambda name: None}).fit(rfm)
    # models without covariates keep their check and message
    with pytest.raises(clvlab.ClvlabError, match=r"unknown parameters \['purchase.gender'\]"):
        ParetoNBD(method="nuts", priors={"purchase.gender": lambda name: None}).fit(rfm)


def test_map_is_near_the_mle_with_a_laplace_covariance(rfm, mle):
    fitted = ParetoNBD(**SETTINGS, method="map", progressbar=False).fit(rfm)
    assert list(fitted.params_.index) == list(mle.params_.index)
    assert fitted.convergence_["converged"] is True, fitted.convergence_
    # weak priors on 2,000 customers: the mode moves by a small fraction of a standard error
    distance = (fitted.params_ - mle.params_).abs() / mle.standard_errors_
    assert (distance < 0.25).all(), distance
    np.testing.assert_allclose(fitted.standard_errors_, mle.standard_errors_, rtol=0.1)
    assert fitted.log_likelihood_ == pytest.approx(mle.log_likelihood_, abs=0.5)
    assert fitted.covariates_.coefficient_names == ["purchase.gender", "dropout.gender"]
    assert fitted.summary().shape[0] == 6


# --- uncertainty after a maximum-likelihood fit ----------------------------------------------
def test_mle_draws_keep_coefficients_as_they_are(mle):
    """log-normal draws for r, alpha, s, beta; normal ones for the coefficients (a negative
    dropout coefficient stays negative in the mean, with the standard error as its spread)."""
    draws = bayes.parameter_draws(mle, 4000, seed=1)
    assert draws.shape == (4000, 6)
    assert np.all(draws[:, :4] > 0)
    coefficient = mle.params_["dropout.gender"]
    assert coefficient < 0 and np.mean(draws[:, 5] < 0) > 0.95
    se = mle.standard_errors_.to_numpy()
    assert np.all(np.abs(draws[:, 4:].mean(axis=0) - mle.params_.to_numpy()[4:]) < 0.1 * se[4:])
    np.testing.assert_allclose(draws.std(axis=0), mle.standard_errors_, rtol=0.15)


def test_at_params_keeps_covariates_and_equals_from_params_without(mle, rfm):
    copy = mle.at_params(mle.params_.to_numpy())
    pd.testing.assert_series_equal(copy.p_alive(rfm), mle.p_alive(rfm))
    assert copy.covariates_ is mle.covariates_ and copy.time_unit_ == "W"
    plain = ParetoNBD().fit(rfm)
    values = plain.params_.to_numpy() * 1.1
    a = plain.at_params(values)
    b = ParetoNBD.from_params(time_unit="W", **dict(zip(plain.param_names, values)))
    pd.testing.assert_series_equal(a.params_, b.params_)
    assert a.time_unit_ == b.time_unit_ and not hasattr(a, "covariates_")
    with pytest.raises(clvlab.ClvlabError, match="needs 6 values"):
        mle.at_params(values)


def test_posterior_predict_and_clv_with_intervals_after_mle(mle, rfm):
    band = mle.posterior_predict("p_alive", rfm, n_draws=50)
    point = mle.p_alive(rfm)
    assert (band["parameter_3%"] <= band["mean"]).all() and (band["mean"] <= band["parameter_97%"]).all()
    assert np.corrcoef(band["mean"], point)[0, 1] > 0.99
    # gender moves p_alive: the draws are at each customer's own parameters, not the baseline's
    baseline = ParetoNBD().fit(rfm).posterior_predict("p_alive", rfm, n_draws=50)
    assert not np.allclose(band["mean"], baseline["mean"], atol=1e-3)
    spend = GammaGamma().fit(rfm)
    clv = bayes.posterior_summary(
        [mle, spend], lambda m, s, chunk: clvlab.customer_lifetime_value(
            m, s, chunk, horizon=52, discount_rate=0.01), rfm, n_draws=40)
    value = clvlab.customer_lifetime_value(mle, spend, rfm, horizon=52, discount_rate=0.01)
    inside = (clv["parameter_3%"] <= value) & (value <= clv["parameter_97%"])
    assert inside.mean() > 0.95


# --- sampling ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def nuts(rfm):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", clvlab.ClvlabWarning)  # few draws: ESS may be below 400
        return ParetoNBD(**SETTINGS, method="nuts", draws=300, tune=300, chains=2, random_seed=3,
                         progressbar=False).fit(rfm)


@pytest.mark.slow
def test_nuts_recovers_the_coefficients_near_the_mle(nuts, mle):
    summary = nuts.summary()
    assert list(summary.index) == list(TRUTH)
    assert nuts.convergence_["divergences"] == 0 and nuts.convergence_["max_r_hat"] < 1.02
    for name in ("purchase.gender", "dropout.gender"):
        assert abs(summary.loc[name, "mean"] - TRUTH[name]) < 3 * summary.loc[name, "sd"], summary
    distance = (summary["mean"] - mle.params_).abs() / mle.standard_errors_
    assert (distance < 0.5).all(), distance
    np.testing.assert_allclose(summary["sd"], mle.standard_errors_, rtol=0.25)
    pd.testing.assert_series_equal(nuts.params_, summary["mean"].rename("estimate"),
                                   check_names=False, rtol=1e-12)
    assert list(nuts.covariance_.index) == list(TRUTH)
    assert nuts.idata_.posterior["dropout.gender"].shape == (2, 300)
    assert nuts.idata_.log_likelihood["rfm"].shape == (2, 300, nuts.n_distinct_rows_)
    weights = nuts.idata_.constant_data["row_weight"].to_numpy()
    assert weights.sum() == 2000
    at_mean = weights @ nuts.idata_.log_likelihood["rfm"].to_numpy().reshape(600, -1).T
    assert nuts.log_likelihood_ > at_mean.min()  # the mean's log-likelihood within the draws'


@pytest.mark.slow
def test_nuts_covariate_model_saves_loads_and_predicts(nuts, rfm, tmp_path):
    path = tmp_path / "pareto.json"
    nuts.save(path)
    loaded = clvlab.load_model(path)
    assert set(_compat.group_names(loaded.idata_)) == {"posterior", "sample_stats"}
    pd.testing.assert_series_equal(loaded.params_, nuts.params_)
    np.testing.assert_allclose(loaded.idata_.posterior["purchase.gender"].to_numpy(),
                               nuts.idata_.posterior["purchase.gender"].to_numpy())
    pd.testing.assert_frame_equal(loaded.summary(), nuts.summary())
    a = nuts.posterior_predict("p_alive", rfm.head(200))
    b = loaded.posterior_predict("p_alive", rfm.head(200))
    pd.testing.assert_frame_equal(a, b)
    draws = bayes.parameter_draws(nuts, 50, seed=0)
    assert draws.shape == (50, 6) and np.all(draws[:, 5] < 0.2)


@pytest.mark.slow
def test_nutpie_samples_a_covariate_model(rfm, mle):
    pytest.importorskip("nutpie")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", clvlab.ClvlabWarning)
        fitted = ParetoNBD(**SETTINGS, method="nuts", nuts_sampler="nutpie", draws=300, tune=300,
                           chains=2, random_seed=3, progressbar=False).fit(rfm)
    summary = fitted.summary()
    assert fitted.convergence_["sampler"] == "nutpie" and fitted.convergence_["divergences"] == 0
    distance = (summary["mean"] - mle.params_).abs() / mle.standard_errors_
    assert (distance < 0.5).all(), distance
