"""The compiled loop over covariate groups (``covariate_kernel``) against the Python loop it
replaces, for every model; the machinery around covariate fits (tiny groups without pandas, one
BLAS thread, a process without covariates)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import threadpoolctl

from clvlab import (BetaGeo, BetaGeoBetaBinom, GammaGamma, ModifiedBetaGeo, ParetoNBD,
                    ShiftedBetaGeo, simulate)
from clvlab.inference import mle
from clvlab.models import covariates


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


@pytest.mark.parametrize("model, rows, base", MODELS,
                         ids=lambda v: type(v).__name__ if hasattr(v, "fit") else "")
def test_the_compiled_loop_equals_the_python_loop(model, rows, base):
    rng = np.random.default_rng(3)
    n = covariates.COMPILED_FROM_GROUPS + 100  # a continuous covariate: one group per customer
    table = rows(rng, n).assign(z=rng.normal(0, 1, n).round(6), g=rng.integers(0, 2, n))
    design = covariates.design_for(model, table)
    data = model._data(table)
    covariate_rows = design.encoder.transform(table, model="test")
    distinct, counts = mle.compress([*data, *covariate_rows.T], rng.integers(1, 4, n))
    grouped = covariates.GroupedData(model, distinct, counts, len(data))
    assert len(grouped.slices) > covariates.COMPILED_FROM_GROUPS
    compiled, arrays = grouped.compiled(design)
    coefficients = rng.normal(0, 0.3, len(design.coefficient_names))
    params = np.concatenate([base, coefficients])
    out = compiled(params, *arrays)
    assert out[-1] == 0.0
    rows_fn, _ = covariates.group_likelihood(model, design, grouped, np.ones(len(coefficients)))
    values, gradients = rows_fn(params)
    assert out[0] == pytest.approx(counts_total := grouped.weights @ values, rel=1e-11)
    np.testing.assert_allclose(out[1:-1], grouped.weights @ gradients, rtol=1e-9,
                               atol=1e-9 * abs(counts_total))
    # and what the optimiser calls: the compiled path, on the optimiser's coefficient scale
    scales = design.scales()
    _, total = covariates.group_likelihood(model, design, grouped, scales)
    value, gradient = total(np.concatenate([base, coefficients * scales]))
    assert value == pytest.approx(out[0], rel=1e-12)
    np.testing.assert_allclose(gradient[len(base):] * scales, out[1 + len(base):-1], rtol=1e-10)


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
