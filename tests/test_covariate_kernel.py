"""The likelihood of models with covariates in one compiled pass over the rows (per-row kernels,
``covariate_likelihood``) against the plain model evaluated group by group (the path a model
without per-row kernels takes), for every model: totals, gradients, rows, threads, fallbacks
and fits; and the machinery around covariate fits (tiny groups without pandas, one BLAS thread,
a process without covariates)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import threadpoolctl
from sklearn.base import clone

from clvlab import (BetaGeo, BetaGeoBetaBinom, GammaGamma, ModifiedBetaGeo, ParetoNBD,
                    ShiftedBetaGeo, simulate)
from clvlab.inference import mle
from clvlab.models import covariate_likelihood, covariates


def _transactions(rng, n):
    x = rng.integers(0, 15, n).astype(float)
    T = rng.uniform(10.0, 60.0, n)
    return pd.DataFrame({"frequency": x, "recency": np.where(x > 0, T * rng.uniform(0.1, 1, n), 0.0),
                         "T": T})


def _spend(rng, n):
    x = rng.integers(1, 8, n).astype(float)
    return pd.DataFrame({"frequency": x, "monetary_value": np.exp(rng.normal(3, 0.6, n)),
                         "recency": 5.0, "T": 10.0})


def _durations(rng, n):
    return pd.DataFrame({"duration": rng.integers(1, 9, n), "churned": rng.uniform(size=n) < 0.6})


def _discrete(rng, n):
    recency = rng.integers(0, 7, n)
    return pd.DataFrame({"frequency": np.where(recency > 0, np.minimum(recency, 3), 0),
                         "recency": recency, "periods": 6})


MODELS = [  # (model with covariates, rows, base parameters)
    (ParetoNBD(purchase_covariates=["z", "g"], dropout_covariates=["z"]), _transactions,
     [0.6, 9.0, 0.7, 12.0]),
    (BetaGeo(purchase_covariates=["z", "g"], dropout_covariates=["z"]), _transactions,
     [0.3, 4.0, 0.8, 2.5]),
    (BetaGeo(purchase_covariates=["z"], dropout_covariates=["z", "g"], dropout_form="b"),
     _transactions, [0.3, 4.0, 0.8, 2.5]),
    (ModifiedBetaGeo(purchase_covariates=["g"], dropout_covariates=["z"]), _transactions,
     [0.5, 6.0, 0.9, 1.6]),
    (GammaGamma(spend_covariates=["z", "g"]), _spend, [6.0, 3.7, 15.0]),
    (ShiftedBetaGeo(dropout_covariates=["z", "g"]), _durations, [0.7, 1.2]),
    (BetaGeoBetaBinom(purchase_covariates=["z"], dropout_covariates=["g", "z"]), _discrete,
     [1.2, 0.75, 0.66, 2.8]),
]
IDS = ["pareto", "bg-a_and_b", "bg-b", "mbg", "gamma-gamma", "sbg", "bg-bb"]


def without_row_kernels(model):
    """The same model as a class that defines its own likelihood (the same function), which
    ``row_kernels.family_of`` does not trust: the plain model runs group by group."""
    cls = type(model)
    owner = next(c for c in cls.__mro__ if "_loglik" in c.__dict__)
    generic = type(f"Generic{cls.__name__}", (cls,), {"_loglik": owner.__dict__["_loglik"]})
    return generic(**model.get_params())


def objective(model, table, weights=None):
    """(design, grouped rows, rows, total, scales) as ``fit_with_covariates`` builds them."""
    design = covariates.design_for(model, table)
    data = model._data(table)
    covariate_rows = design.encoder.transform(table, model="test")
    distinct, counts = mle.compress([*data, *covariate_rows.T], weights)
    grouped = covariates.GroupedData(model, distinct, counts, len(data))
    scales = design.scales()
    rows, total = covariates.group_likelihood(model, design, grouped, scales)
    return design, grouped, rows, total, scales


def _table(rows, n=300, seed=3):
    rng = np.random.default_rng(seed)
    return rows(rng, n).assign(z=rng.normal(0, 1, n).round(6), g=rng.integers(0, 2, n)), rng


@pytest.mark.parametrize("model, rows, base", MODELS, ids=IDS)
def test_one_pass_equals_the_plain_model_group_by_group(model, rows, base, monkeypatch):
    """A continuous covariate (a group per customer) and a 0/1 one, weighted rows: the total and
    gradient of the one compiled pass, and the rows' sum, against the plain model's Python loop
    over the groups, at coefficients of both signs."""
    monkeypatch.setattr(covariate_likelihood, "COMPILED_FROM_GROUPS", 10**9)
    table, rng = _table(rows)
    weights = rng.integers(1, 4, len(table)).astype(float)
    design, grouped, rows_fn, total, scales = objective(model, table, weights)
    assert grouped.family is not None and grouped.row_calls == 1
    assert len(grouped.covariates_of_group) > 250
    _, reference_grouped, reference_rows, reference_total, _ = objective(
        without_row_kernels(model), table, weights)
    assert reference_grouped.family is None and reference_grouped.row_calls > 250
    for point in range(2):
        coefficients = rng.normal(0, 0.4, len(scales)) * scales
        free = np.concatenate([base, coefficients])
        value, gradient = total(free)
        expected, expected_gradient = reference_total(free)
        assert value == pytest.approx(expected, rel=1e-11)
        np.testing.assert_allclose(gradient, expected_gradient, rtol=1e-9,
                                   atol=1e-10 * np.abs(expected_gradient).max())
        values, gradients = rows_fn(free)
        assert grouped.weights @ values == pytest.approx(value, rel=1e-11)
        np.testing.assert_allclose(grouped.weights @ gradients, gradient, rtol=1e-9,
                                   atol=1e-10 * np.abs(gradient).max())
        # the rows come in the order of grouped.weights, row by row the reference's
        reference_values, _ = reference_rows(free)
        assert sorted(values) == pytest.approx(sorted(reference_values), rel=1e-10)


@pytest.mark.parametrize("model, rows, base", [MODELS[0], MODELS[1], MODELS[6]],
                         ids=["pareto", "bg", "bg-bb"])
def test_rows_in_parts_in_threads_equal_one_pass(model, rows, base, monkeypatch):
    table, rng = _table(rows, n=500, seed=5)
    free = np.concatenate([base, rng.normal(0, 0.3, 3)])
    design, grouped, _, one_pass, scales = objective(model, table)
    kernel, arrays = grouped.compiled(design)
    monkeypatch.setattr(covariate_likelihood, "THREADS_FROM_ROWS", 10)
    monkeypatch.setattr(covariate_likelihood, "available_threads", lambda: 3)
    parts = grouped.parts(design, 3)
    assert len(parts) == 3
    assert sum(len(arrays_[-1]) for _, arrays_ in parts) == len(grouped.weights)
    _, threaded = covariates.group_likelihood(model, design, grouped, scales)
    value, gradient = threaded(free)
    expected, expected_gradient = one_pass(free)
    assert value == pytest.approx(expected, rel=1e-13)
    np.testing.assert_allclose(gradient, expected_gradient, rtol=1e-11)
    # and the sampler's kernel (one pass, the user's scale)
    out = kernel(np.concatenate([base, free[len(base):] / scales]), *arrays)
    assert out[-1] == 0.0 and out[0] == pytest.approx(expected, rel=1e-13)


def test_a_part_whose_groups_are_few_splits_at_group_boundaries():
    model = BetaGeo(purchase_covariates=["g"], dropout_covariates=["g"])  # two groups
    table, _ = _table(_transactions, n=400, seed=6)
    design, grouped, _, _, _ = objective(model, table)
    parts = grouped.parts(design, 4)
    assert len(parts) == 2
    for _, arrays in parts:  # each part's groups numbered from 0, all its rows in one group
        assert set(arrays[3]) == {0}


def test_a_row_the_kernel_flags_is_evaluated_by_the_plain_model(monkeypatch):
    """Pareto/NBD where alpha_i / beta_i reaches 1e9 for customers with t near 0: the series
    does not converge, the compiled total flags it, and the rows with the plain model's
    fallback (mpmath) give the total, as group by group."""
    monkeypatch.setattr(covariate_likelihood, "COMPILED_FROM_GROUPS", 10**9)
    model = ParetoNBD(purchase_covariates=["g"])
    table = pd.DataFrame({"frequency": [3.0, 2.0, 1.0, 0.0], "recency": [0.01, 1.0, 4.0, 0.0],
                          "T": [5.0, 2.0, 6.0, 6.0], "g": [1.0, 1.0, 0.0, 0.0]})
    design, grouped, _, total, scales = objective(model, table)
    free = np.array([0.5, 1e-3, 1e-3, 1e-3, -np.log(1e9) * scales[0]])  # alpha_i = 1e6 at g = 1
    kernel, arrays = grouped.compiled(design)
    assert kernel(np.r_[free[:4], free[4:] / scales], *arrays)[-1] == 1.0
    value, gradient = total(free)
    expected, expected_gradient = objective(without_row_kernels(model), table)[3](free)
    assert np.isfinite(value) and value == pytest.approx(expected, rel=1e-12)
    np.testing.assert_allclose(gradient, expected_gradient, rtol=1e-7)


def test_the_generic_compiled_loop_over_groups_equals_its_python_loop():
    """A model without per-row kernels runs the compiled loop over groups from
    COMPILED_FROM_GROUPS groups up: the same total as its Python loop."""
    model = without_row_kernels(MODELS[0][0])
    table, rng = _table(_transactions, n=covariate_likelihood.COMPILED_FROM_GROUPS + 100)
    design, grouped, rows_fn, total, scales = objective(model, table)
    assert grouped.family is None and len(grouped.slices) > covariate_likelihood.COMPILED_FROM_GROUPS
    compiled, arrays = grouped.compiled(design)
    params = np.concatenate([MODELS[0][2], rng.normal(0, 0.3, len(scales))])
    out = compiled(params, *arrays)
    assert out[-1] == 0.0
    values, gradients = rows_fn(np.concatenate([params[:4], params[4:] * scales]))
    assert out[0] == pytest.approx(grouped.weights @ values, rel=1e-11)
    np.testing.assert_allclose(out[5:-1], (grouped.weights @ gradients[:, 4:]) * scales, rtol=1e-9)


FIT_CASES = [  # (registry name, model, population parameters, effects, simulator options)
    ("pareto-nbd", ParetoNBD, dict(r=0.6, alpha=9.0, s=0.7, beta=12.0), {}, dict(T=40.0)),
    ("bg-nbd", BetaGeo, dict(r=0.4, alpha=5.0, a=0.8, b=2.5), {"dropout_form": "b"}, dict(T=40.0)),
    ("bg-nbd", BetaGeo, dict(r=0.4, alpha=5.0, a=0.8, b=2.5), {}, dict(T=40.0)),
    ("mbg-nbd", ModifiedBetaGeo, dict(r=0.4, alpha=5.0, a=0.8, b=2.5), {"dropout_form": "b"},
     dict(T=40.0)),
    ("bg-bb", BetaGeoBetaBinom, dict(alpha=1.2, beta=0.75, gamma=0.66, delta=2.8), {},
     dict(periods=8)),
    ("sbg", ShiftedBetaGeo, dict(alpha=0.7, beta=1.2), {}, dict(periods=10)),
    ("gamma-gamma", GammaGamma, dict(p=6.0, q=3.7, v=15.0), {}, {}),
]


@pytest.mark.parametrize("name, cls, params, settings, options", FIT_CASES,
                         ids=["pareto", "bg-b", "bg-a_and_b", "mbg", "bg-bb", "sbg", "gamma-gamma"])
def test_a_fit_with_a_continuous_covariate_equals_the_fit_group_by_group(
        name, cls, params, settings, options, monkeypatch):
    monkeypatch.setattr(covariate_likelihood, "COMPILED_FROM_GROUPS", 10**9)
    rng = np.random.default_rng(7)
    n = 400
    attributes = pd.DataFrame({"z": rng.normal(0, 1, n).round(4)})
    links = simulate.covariate_links(name, settings.get("dropout_form", "a_and_b"))
    used = list(dict.fromkeys(process for process, _ in links.values()))
    effects = {"purchase": 0.3, "dropout": 0.2, "spend": 0.25}
    if name == "gamma-gamma":
        options = dict(frequency=rng.integers(1, 8, n))
    table = simulate.with_covariates(name, n, params=params, attributes=attributes, seed=8,
                                     coefficients={p: {"z": effects[p]} for p in used},
                                     dropout_form=settings.get("dropout_form", "a_and_b"), **options)
    if name == "gamma-gamma":
        table = table.assign(recency=1.0, T=2.0)
    model = cls(**settings, **{f"{p}_covariates": ["z"] for p in used})
    unit = {"time_unit": "W"} if "T" in options else {}
    fitted = model.fit(table, **unit)
    reference = without_row_kernels(model).fit(table, **unit)
    assert fitted.convergence_["converged"] and reference.convergence_["converged"]
    assert fitted.log_likelihood_ == pytest.approx(reference.log_likelihood_, rel=1e-9)
    np.testing.assert_allclose(fitted.params_, reference.params_, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(fitted.standard_errors_, reference.standard_errors_, rtol=1e-3)


@pytest.fixture(scope="module")
def apparel() -> pd.DataFrame:
    from conftest import SHARED_DATA

    import clvlab

    folder = SHARED_DATA / "apparel"
    if not (folder / "apparel_transactions.csv").exists():
        pytest.skip("../shared/data/apparel (CLVTools' apparel data) is not beside the checkout")
    log = pd.read_csv(folder / "apparel_transactions.csv", parse_dates=["Date"])
    attributes = pd.read_csv(folder / "apparel_static_covariates.csv").set_index("Id")
    rfm = clvlab.rfm_summary(log, customer_col="Id", date_col="Date", time_unit="W",
                             calibration_end="2006-12-31")
    return rfm[["frequency", "recency", "T"]].join(attributes)


@pytest.mark.parametrize("model", [
    ParetoNBD(purchase_covariates=["Gender", "Channel"], dropout_covariates=["Gender", "Channel"]),
    BetaGeo(purchase_covariates=["Gender", "Channel"], dropout_covariates=["Channel"],
            dropout_form="b")], ids=["pareto", "bg-b"])
def test_apparel_fits_equal_the_fits_group_by_group(apparel, model):
    """CLVTools' apparel data (four covariate groups): the same estimates, standard errors and
    log-likelihood as the plain model group by group (Pareto/NBD: -5821.0627, CLVTools')."""
    fitted = clone(model).fit(apparel)
    reference = without_row_kernels(model).fit(apparel)
    assert fitted.convergence_["converged"]
    assert fitted.log_likelihood_ == pytest.approx(reference.log_likelihood_, rel=1e-10)
    np.testing.assert_allclose(fitted.params_, reference.params_, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(fitted.standard_errors_, reference.standard_errors_, rtol=1e-4)
    if isinstance(model, ParetoNBD):
        assert round(fitted.log_likelihood_, 4) == -5821.0627


def test_tiny_inputs_group_as_pandas_does():
    rng = np.random.default_rng(0)
    for n in (1, 5, 64, 65, 300):
        columns = [rng.integers(0, 4, n).astype(float), rng.integers(0, 3, n).astype(float)]
        distinct, inverse = mle.group_rows(columns)
        rebuilt = np.column_stack([d[inverse] for d in distinct])
        np.testing.assert_array_equal(rebuilt, np.column_stack(columns))
        assert len(distinct[0]) == len(np.unique(np.column_stack(columns), axis=0))
        levels, at = mle.levels(columns[0])
        np.testing.assert_array_equal(levels[at], columns[0])
        assert np.all(np.diff(levels) > 0)


def test_a_fit_runs_on_one_blas_thread():
    seen = []

    def total(params):
        seen.extend(info["num_threads"] for info in threadpoolctl.threadpool_info()
                    if info["user_api"] == "blas")
        return -float(params @ params) + float(np.sum(np.log(params))), -2 * params + 1 / params

    rows = lambda p: (np.array([total(p)[0]]), total(p)[1][None, :])  # noqa: E731
    result = mle.fit_mle(rows, np.ones(1), np.array([1.0, 2.0]), names=["a", "b"], total=total)
    np.testing.assert_allclose(result.params, np.sqrt(0.5), rtol=1e-6)
    if not seen:
        pytest.skip("no BLAS library that threadpoolctl can see")
    assert set(seen) == {1}


def test_a_process_without_covariates_keeps_the_populations_parameter():
    table = simulate.with_covariates("pareto-nbd", 3000, params=dict(r=0.6, alpha=10.0, s=0.7, beta=12.0),
                                     coefficients={"purchase": {"g": 0.5}}, T=40.0, seed=3)
    model = ParetoNBD(purchase_covariates=["g"]).fit(table, time_unit="W")
    assert list(model.params_.index) == ["r", "alpha", "s", "beta", "purchase.g"]
    assert abs(model.params_["purchase.g"] - 0.5) < 3 * model.standard_errors_["purchase.g"]
    plain = model.for_attributes({"g": 1})
    assert plain.params_["beta"] == model.params_["beta"]  # the dropout process is the population's
    assert plain.params_["alpha"] == pytest.approx(model.params_["alpha"] * np.exp(-model.params_["purchase.g"]))


def test_the_posterior_predictive_check_simulates_each_customer_at_their_own_parameters():
    from clvlab.models.checks import frequency_ppc

    table = simulate.with_covariates("pareto-nbd", 4000, params=dict(r=0.6, alpha=10.0, s=0.7, beta=12.0),
                                     coefficients={"purchase": {"g": 1.5}}, T=40.0, seed=5)
    model = ParetoNBD(purchase_covariates=["g"]).fit(table, time_unit="W")
    check = frequency_ppc(model, table, n_draws=60, seed=1)
    inside = (check["observed"] >= check["3%"]) & (check["observed"] <= check["97%"])
    assert inside.iloc[:3].all(), check
    # at the baseline parameters (every customer with g = 0) far more would have no repeats
    baseline = ParetoNBD.from_params(time_unit="W", **model.params_.iloc[:4])
    zeros_at_baseline = (simulate.pareto_nbd(4000, T=40.0, seed=1, **baseline.params_)["frequency"] == 0).sum()
    assert zeros_at_baseline > check.loc["0", "97%"] + 100


def test_a_bad_dropout_form_is_refused_at_fit_even_without_covariates():
    from clvlab import ClvlabError

    table = pd.DataFrame({"frequency": [1.0, 0.0, 2.0], "recency": [3.0, 0.0, 4.0], "T": [5.0, 5.0, 5.0]})
    for model in (BetaGeo(dropout_form="mean"), ModifiedBetaGeo(dropout_form=None)):
        with pytest.raises(ClvlabError, match=r"dropout_form must be one of \['a_and_b', 'b'\]"):
            model.fit(table, time_unit="W")
