"""Bayesian fits: the PyTensor likelihood equals the NumPy one, NUTS on CDNOW agrees with the
MLE with clean diagnostics, posterior files, and predictions with intervals."""

import json
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import clvlab
from clvlab import BetaGeo, GammaGamma, ParetoNBD, _compat, bayes
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
    assert {"posterior", "sample_stats", "log_likelihood"} <= set(_compat.group_names(idata))
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
    assert set(_compat.group_names(loaded.idata_)) == {"posterior", "sample_stats"}
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
    assert list(whole.columns) == ["mean", "parameter_sd", "parameter_3%", "parameter_97%"]
    assert (whole["parameter_3%"] <= whole["mean"]).all() and (whole["mean"] <= whole["parameter_97%"]).all()
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
    inside = (clv["parameter_3%"] <= point) & (point <= clv["parameter_97%"])
    assert inside.mean() > 0.95
    draws = bayes.parameter_draws(bg, 4000, seed=1)
    np.testing.assert_allclose(draws.std(axis=0), bg.standard_errors_, rtol=0.15)


def load_cdnow_summary_with_spend():
    log = clvlab.datasets.load_cdnow(sample=True)
    return clvlab.rfm_summary(log, amount_col="amount", time_unit="W", calibration_end="1997-09-30",
                              observation_end="1998-06-30")


@pytest.fixture(scope="module")
def cdnow_nuts(rfm):
    """fit(model_class, sampler): NUTS on CDNOW, 4 chains x (1000 tune + 1000 draws), seed 5,
    made once per (model, sampler) and shared by the tests below (a fit takes 7-20 s).

    Seed 5: r_hat of the long (s, beta) tail at 4 x 1000 draws scatters between seeds around
    1.00-1.01 (nutpie, seed 11: 1.0101; seed 5: 1.0033), so a threshold of 1.01 needs a seed
    whose draws are typical."""
    fits = {}

    def fit(model_class, sampler=None):
        # None: the model's own default (nuts_sampler=None), which is PyMC's (test below), so
        # the fit serves both the default and the "pymc" test
        key = bayes.default_nuts_sampler() if sampler is None else sampler
        if (model_class, key) not in fits:
            fits[model_class, key] = model_class(
                method="nuts", draws=1000, tune=1000, chains=4, random_seed=5, progressbar=False,
                nuts_sampler=sampler).fit(rfm)
        return fits[model_class, key]
    return fit


@pytest.mark.slow
@pytest.mark.parametrize("model_class", [BetaGeo, ParetoNBD])
def test_nuts_on_cdnow_agrees_with_the_mle(model_class, rfm, cdnow_nuts):
    mle = model_class().fit(rfm)
    fitted = cdnow_nuts(model_class)  # the default sampler
    assert fitted.convergence_["sampler"] == bayes.default_nuts_sampler()
    c = fitted.convergence_
    assert c["divergences"] == 0 and c["max_r_hat"] < 1.01 and c["min_ess_bulk"] > 400, c
    summary = fitted.summary()
    distance = np.abs(summary["mean"] - mle.params_) / summary["sd"]
    assert (distance < 2).all(), distance
    ppc = bayes.frequency_ppc(fitted, rfm, n_draws=200, seed=5)
    inside = (ppc["3%"] <= ppc["observed"]) & (ppc["observed"] <= ppc["97%"])
    assert inside.sum() >= len(ppc) - 1, ppc  # at most one of 8 bins outside its 94% interval


@pytest.mark.parametrize("mode", ["FAST_COMPILE", "NUMBA"])
def test_an_extreme_point_is_rejected_not_an_error(rfm, mode):
    """NUTS's first steps once reached r 1e10, alpha 4e17: z rounds to 1 and mpmath divided by
    zero, which killed the chain. The log-likelihood Op must return -inf there, in Python
    (``perform``) and in its numba implementation alike."""
    import pytensor
    import pytensor.tensor as pt

    model = ParetoNBD()
    data, counts = _data(model, rfm)
    params = pt.dvector()
    evaluate = pytensor.function([params], bayes.likelihood_graph(model, data, counts, params)[0],
                                 mode=mode)
    assert evaluate(np.array([1.13903082e10, 4.08945216e17, 1.67446368e-10, 4.41724824e-02])) == -np.inf
    assert evaluate(np.array([0.55, 10.6, -0.61, 11.7])) == -np.inf
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


# --- the compiled likelihood inside PyTensor's numba backend and nutpie ----------------------

def _tables():
    """Every model with a table it fits and a point inside its support."""
    from clvlab import BetaGeoBetaBinom, ModifiedBetaGeo, ShiftedBetaGeo, durations_from_survivors
    from clvlab.datasets import load_donations, load_sbg_survival

    cdnow = load_cdnow_summary()
    donations = load_donations()
    return [(BetaGeo, cdnow, None, [0.3, 5.0, 0.7, 2.0]),
            (ModifiedBetaGeo, cdnow, None, [0.3, 5.0, 0.7, 2.0]),
            (ParetoNBD, cdnow, None, [0.5, 9.0, 0.7, 14.0]),
            (GammaGamma, load_cdnow_summary_with_spend(), None, [6.0, 3.5, 16.0]),
            (BetaGeoBetaBinom, donations, donations["weights"].to_numpy(float), [1.2, 0.75, 0.66, 2.8]),
            (ShiftedBetaGeo, durations_from_survivors(load_sbg_survival()["regular"]), None, [0.7, 1.2])]


@pytest.mark.parametrize("case", range(6))
def test_numba_likelihood_equals_python_for_every_model(case):
    """Each model's Op, compiled by PyTensor's numba backend (PyTensor 3's default and what
    nutpie samples), gives the value and gradient of the Python path, at a point and at points
    around it, and never falls back to object mode (that warning is an error in this suite)."""
    import pytensor
    import pytensor.tensor as pt

    model_class, table, weights, centre = _tables()[case]
    model = model_class()
    rows = table[table["frequency"] > 0] if model_class is GammaGamma else table
    distinct, counts = compress(model._data(rows), weights)
    data = model._prepare(distinct)
    params = pt.dvector()
    value, _ = bayes.likelihood_graph(model, data, counts, params)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # "Numba will use object mode ..."
        numba_fn = pytensor.function([params], [value, pytensor.grad(value, params)], mode="NUMBA")
    rng = np.random.default_rng(case)
    for point in [np.array(centre)] + [np.array(centre) * np.exp(rng.normal(0, 0.5, len(centre)))
                                       for _ in range(5)]:
        total, grad = model._loglik_total(point, data, counts)
        got_value, got_grad = numba_fn(point)
        assert float(got_value) == pytest.approx(total, rel=1e-12)
        np.testing.assert_allclose(got_grad, grad, rtol=1e-10, atol=1e-10 * np.abs(grad).max())
        values, grads = model._loglik(point, data)  # the kernel against the per-row sum
        assert total == pytest.approx(counts @ values, rel=1e-11)
        np.testing.assert_allclose(grad, counts @ grads, rtol=1e-8, atol=1e-8 * np.abs(grad).max())


def test_points_the_kernel_cannot_sum_are_rejected_and_counted_or_evaluated_exactly(rfm):
    """Where Pareto/NBD's series cannot finish (z within ~2e-4 of 1: alpha/beta above ~4,000),
    the compiled kernel flags the point. In compiled code the Op rejects it (-inf) and counts it,
    since mpmath there can take seconds per evaluation and samplers reach such points only in
    warm-up excursions; where the fit itself lives there (exact=True) it asks the Python path
    (mpmath) in an object-mode block and returns the same value as Python."""
    import pytensor
    import pytensor.tensor as pt

    x, t_x, T = np.array([3.0, 0.0, 1.0]), np.array([0.0, 0.0, 0.5]), np.array([5.0, 2.0, 3.0])
    model = ParetoNBD()
    data, counts = model._prepare([x, t_x, T]), np.ones(3)
    point = np.array([0.5, 1e6, 1e-3, 1e-3])
    assert ParetoNBD._total_kernel(point, *ParetoNBD._kernel_arrays(data, counts))[-1] == 1.0
    params = pt.dvector()
    for exact in (False, True):
        value, op = bayes.likelihood_graph(model, data, counts, params, exact=exact)
        fn = pytensor.function([params], value, mode="NUMBA")
        if exact:
            expected = ParetoNBD._loglik_total(point, data, counts)[0]
            assert float(fn(point)) == pytest.approx(expected, rel=1e-12)
            assert op.rejected_points == 0
        else:
            assert float(fn(point)) == -np.inf and op.rejected_points == 1
            assert np.isfinite(fn(np.array([0.55, 10.6, 0.61, 11.7]))) and op.rejected_points == 1


def test_sampler_choice_is_checked(rfm):
    assert bayes.default_nuts_sampler() == "pymc"  # the faster on CDNOW (docs/benchmarks.md)
    with pytest.raises(clvlab.ClvlabError, match="nuts_sampler must be one of"):
        BetaGeo(method="nuts", nuts_sampler="blackjax", progressbar=False).fit(rfm)


@pytest.mark.slow
@pytest.mark.parametrize("model_class", [BetaGeo, ParetoNBD])
def test_nutpie_and_pymc_samplers_agree_on_cdnow(model_class, cdnow_nuts):
    """The two samplers draw from the same posterior: every parameter's mean within 4 Monte
    Carlo standard errors of the difference (both chains' MCSEs combined), clean diagnostics."""
    pytest.importorskip("nutpie")
    fits = {s: cdnow_nuts(model_class, s) for s in ("nutpie", "pymc")}
    for fit in fits.values():
        c = fit.convergence_
        assert c["divergences"] == 0 and c["max_r_hat"] < 1.01 and c["min_ess_bulk"] > 400, c
    a, b = (fits[s].summary() for s in ("nutpie", "pymc"))
    z = (a["mean"] - b["mean"]) / np.sqrt(a["mcse_mean"] ** 2 + b["mcse_mean"] ** 2)
    assert (z.abs() < 4).all(), pd.concat([a["mean"], b["mean"], z], axis=1)
    assert fits["nutpie"].convergence_["sampler"] == "nutpie"


@pytest.mark.parametrize("method", ["advi", "map"])
def test_advi_and_map_run_on_this_stack(method, rfm):
    fitted = ParetoNBD(method=method, draws=100, chains=2, random_seed=2, progressbar=False).fit(rfm)
    mle = ParetoNBD().fit(rfm)
    assert fitted.convergence_["method"] == method
    assert abs(fitted.params_["r"] - mle.params_["r"]) < 3 * mle.standard_errors_["r"]
    if method == "advi":
        assert fitted.summary().shape[0] == 4


@pytest.mark.parametrize("written_by", ["pymc5-arviz0", "pymc6-arviz1"])
def test_a_posterior_saved_on_either_stack_loads_on_this_one(written_by, rfm):
    """tests/data holds a BG/NBD model with its posterior saved by each stack (Python 3.11 with
    PyMC 5 / ArviZ 0.23, and Python 3.13 with PyMC 6 / ArviZ 1.3; tests/data/make_posteriors.py
    wrote them): both load here and predict with intervals."""
    from pathlib import Path

    path = Path(__file__).parent / "data" / f"bg-nuts-{written_by}.json"
    model = clvlab.load_model(path)
    assert set(_compat.group_names(model.idata_)) == {"posterior", "sample_stats"}
    assert model.idata_.posterior.sizes["chain"] == 2 and model.idata_.posterior.sizes["draw"] == 100
    summary = model.summary()
    assert summary.loc["r", "mean"] == pytest.approx(0.243, abs=0.03)
    band = model.posterior_predict("expected_purchases", rfm.head(20), t=39, n_draws=50)
    assert (band["parameter_3%"] <= band["mean"]).all() and (band["mean"] <= band["parameter_97%"]).all()



def test_pymc_and_arviz_are_imported_without_arviz_future_warning(tmp_path):
    """ArviZ 0.2x announces its refactor with a FutureWarning on its first import of the day
    (PyMC 5 imports it); clvlab imports PyMC and ArviZ without that notice. A fresh cache folder
    makes the import the day's first, and -W error turns any FutureWarning into a failure."""
    import os
    import subprocess
    import sys

    code = ("import clvlab.inference.bayes\n"
            "from clvlab.inference import compat\n"
            "compat.pymc(); compat.arviz()\n")
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path)}
    done = subprocess.run([sys.executable, "-W", "error::FutureWarning", "-c", code], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "FutureWarning" not in done.stderr, done.stderr[-2000:]


def test_only_compat_imports_pymc_and_arviz():
    """Every other module goes through compat.pymc() / compat.arviz(), which import without
    ArviZ 0.2x's notice (an ``import pymc`` elsewhere would print it again)."""
    import re
    from pathlib import Path

    source = Path(clvlab.__file__).parent
    pattern = re.compile(r"^\s*(import|from)\s+(pymc|arviz)\b", re.MULTILINE)
    found = [str(path.relative_to(source)) for path in source.rglob("*.py")
             if path.name != "compat.py" and pattern.search(path.read_text())]
    assert found == []


# --- MAP without compiling a PyMC model (issue 29, item 14) ---------------------------------
def _covariate_target(n: int = 300):
    """A Pareto/NBD target with a 0/1 and a continuous covariate, as a Bayesian fit builds it."""
    from clvlab.data import simulate
    from clvlab.models import covariates

    table = simulate.with_covariates(
        "pareto-nbd", n, params={"r": 0.8, "alpha": 8.0, "s": 0.6, "beta": 10.0},
        coefficients={"purchase": {"gender": 0.5}, "dropout": {"gender": -0.4}}, seed=1, T=52)
    table["score"] = np.random.default_rng(2).normal(3.0, 2.0, len(table))
    table.attrs = {"clvlab": {"time_unit": "W"}}
    model = ParetoNBD(purchase_covariates=["gender", "score"], dropout_covariates=["gender"])
    _, design, grouped = covariates.fit_with_covariates(model, table, None)
    return covariates.sampler_target(model, design, grouped)


@pytest.mark.parametrize("case", ["plain", "covariates"])
def test_default_log_posterior_equals_pymc_log_posterior(case, rfm):
    """The closed-form log-posterior MAP maximises is PyMC's own (priors, Jacobian of the log
    transform, likelihood) to 1e-9, value and gradient, at points around the mode."""
    if case == "plain":
        model = ParetoNBD()
        data, counts = _data(model, rfm)
        target = bayes.plain_target(model, data, counts)
    else:
        model, data, counts, target = ParetoNBD(), None, None, _covariate_target()
    pymc_model = bayes.build_pymc_model(model, data, counts, None, target=target)
    logp, dlogp = pymc_model.compile_logp(), pymc_model.compile_dlogp()
    function = bayes.default_log_posterior(target)
    positive = target.positive
    names = bayes._value_names(target.names, positive)
    rng = np.random.default_rng(0)
    centre = np.array([np.log(target.centres[n]) if p else 0.0
                       for n, p in zip(target.names, positive)])
    for _ in range(3):
        x = centre + rng.normal(0, 0.3, len(centre))
        value, gradient = function(x)
        point = dict(zip(names, x))
        assert value == pytest.approx(float(logp(point)), rel=1e-9)
        np.testing.assert_allclose(gradient, dlogp(point), rtol=1e-7, atol=1e-7)


@pytest.mark.parametrize("model_class", [BetaGeo, ParetoNBD])
def test_map_with_default_priors_compiles_nothing_and_finds_the_same_mode(model_class, rfm,
                                                                          monkeypatch):
    """MAP spent 2-5 s compiling PyTensor functions (find_MAP's, then the Newton polish's) for a
    4-parameter optimisation: with the default priors it needs no PyMC model at all. The mode is
    the one find_MAP + polish_map find, to their tolerance (1e-4 nats of log-posterior)."""
    model = model_class()
    data, counts = _data(model, rfm)
    target = bayes.plain_target(model, data, counts)
    distinct, _ = compress(model._data(rfm))
    start = model._mle_start(data, distinct, counts)  # where the fit starts both paths
    pymc_model = bayes.build_pymc_model(model, data, counts, None, start, target=target)
    with pymc_model:
        old = _compat.find_map(target.names, bayes._value_start(pymc_model, target.names, start),
                               1, False)
        old, old_check = bayes.polish_map(pymc_model, target.names, old)
    assert old_check["converged"]

    def refuse(*args, **kwargs):
        raise AssertionError("MAP with the default priors built a PyMC model")

    monkeypatch.setattr(bayes, "build_pymc_model", refuse)
    fitted = model_class(method="map", progressbar=False).fit(rfm)
    assert fitted.convergence_["converged"] is True and fitted.convergence_["newton_gain"] < 1e-4
    function = bayes.default_log_posterior(target)
    scale = lambda p: np.log(np.array([p[n] for n in target.names]))  # noqa: E731
    new_value, old_value = function(scale(fitted.params_))[0], function(scale(old))[0]
    assert abs(new_value - old_value) < 2e-4
    mle = model_class().fit(rfm)
    distance = np.abs(fitted.params_ - pd.Series(old)) / mle.standard_errors_
    assert (distance < 0.05).all(), distance


# --- ADVI stops on convergence (issue 29, item 14) ------------------------------------------
class _FakeApproximation:
    """What AdviConvergence reads from PyMC's approximation: mean and std (``.eval()``)."""

    def __init__(self):
        self.mu, self.sd = np.zeros(2), np.ones(2)

    @property
    def mean(self):
        return type("V", (), {"eval": lambda _: self.mu.copy()})()

    @property
    def std(self):
        return type("V", (), {"eval": lambda _: self.sd.copy()})()


def _run_rule(rule, loss, means):
    """Feed ``rule`` step by step as pm.fit does; the step it stopped at, or None."""
    approx = _FakeApproximation()
    for i in range(1, len(loss) + 1):
        approx.mu = means(i)
        try:
            rule(approx, loss[:i], i)
        except StopIteration:
            return i
    return None


def test_advi_rule_stops_once_loss_and_means_have_settled():
    rng = np.random.default_rng(0)
    loss = 1000 + rng.normal(0, 5, 30_000)
    rule = bayes.AdviConvergence(30_000)
    stopped = _run_rule(rule, loss, lambda i: rng.normal(0, 0.01, 2))
    assert stopped == 5_000  # checks at 4,000 and 5,000 both pass
    check = rule.result(loss[:stopped])
    assert check["converged"] is True and check["stopped_early"] and check["steps"] == 5_000


def test_advi_rule_does_not_stop_while_the_means_still_move():
    """The loss has flattened to within its noise but the parameters still drift (as on CDNOW's
    Pareto/NBD from 6,000 to 25,000 steps, where a rule on the loss alone stopped with r 0.51
    against 0.55): no stop, and at the cap the fit is not called converged."""
    rng = np.random.default_rng(1)
    loss = 1000 + rng.normal(0, 5, 30_000)
    rule = bayes.AdviConvergence(30_000)
    assert _run_rule(rule, loss, lambda i: np.array([i / 10_000, 0.0])) is None
    check = rule.result(loss)
    assert check["converged"] is False and check["stopped_early"] is False
    assert "means still moving" in check["problems"][0] and check["max_steps"] == 30_000


def test_advi_rule_does_not_stop_while_the_loss_still_falls():
    rng = np.random.default_rng(2)
    loss = 1000 + np.linspace(300, 0, 30_000) + rng.normal(0, 5, 30_000)
    rule = bayes.AdviConvergence(30_000)
    assert _run_rule(rule, loss, lambda i: np.zeros(2)) is None
    assert rule.result(loss)["converged"] is False
    assert rule.result(loss)["loss_drop"] > 10


def test_advi_records_its_steps_and_cap(rfm, monkeypatch):
    monkeypatch.setattr(bayes, "ADVI_STEPS", 6_000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", clvlab.ClvlabWarning)
        fitted = BetaGeo(method="advi", draws=50, chains=1, random_seed=1,
                         progressbar=False).fit(rfm.head(300))
    c = fitted.convergence_
    assert c["max_steps"] == 6_000 and c["window"] == 1_500 and 3_000 <= c["steps"] <= 6_000
    assert c["stopped_early"] == (c["steps"] < 6_000 - 1) and isinstance(c["converged"], bool)
    assert c["converged"] or c["problems"]
