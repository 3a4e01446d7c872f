"""Each model's per-row kernel (``clvlab.models.row_kernels``) against the plain model's own
log-likelihood, one row at a time at that row's parameters, and against central differences of
itself; rows the kernels hand back to the plain model; which classes get per-row kernels."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from clvlab import (BetaGeo, BetaGeoBetaBinom, GammaGamma, ModifiedBetaGeo, ParetoNBD,
                    ShiftedBetaGeo)
from clvlab.models import row_kernels
from clvlab.models.row_kernels_continuous import RUNNING_UP_TO


def _transactions(rng, n):
    x = rng.integers(0, 12, n).astype(float)
    x[::9] = rng.integers(RUNNING_UP_TO, 3 * RUNNING_UP_TO, len(x[::9]))  # special functions
    x[::5] = 0.0
    T = np.round(rng.uniform(0.5, 80.0, n), 2)
    t_x = np.where(x > 0, np.round(rng.uniform(0.0, 1.0, n) * T, 2), 0.0)
    t_x[1::7] = T[1::7]  # t_x = T
    return [x, t_x, T]


def _spend(rng, n):
    return [rng.integers(1, 30, n).astype(float), np.exp(rng.normal(3.0, 1.0, n))]


def _opportunities(rng, n):
    periods = rng.integers(0, 40, n).astype(float)
    recency = np.floor(rng.uniform(0, 1, n) * (periods + 1)).clip(0, periods)
    frequency = np.where(recency > 0, np.floor(rng.uniform(0, 1, n) * recency) + 1, 0.0)
    return [frequency, recency, periods]


def _durations(rng, n):
    duration = rng.integers(0, 3 * RUNNING_UP_TO, n).astype(float)
    churned = ((rng.uniform(size=n) < 0.6) & (duration >= 1)).astype(float)
    return [duration, churned]


CASES = [  # (model, data, population parameters, spread of the per-row parameters (log scale))
    (BetaGeo(), _transactions, [0.3, 4.0, 0.8, 2.5], 1.5),
    (ModifiedBetaGeo(), _transactions, [0.5, 6.0, 0.9, 1.6], 1.5),
    (ParetoNBD(), _transactions, [0.6, 9.0, 0.7, 12.0], 1.5),
    (GammaGamma(), _spend, [6.0, 3.7, 15.0], 1.0),
    (BetaGeoBetaBinom(), _opportunities, [1.2, 0.75, 0.66, 2.8], 1.5),
    (ShiftedBetaGeo(), _durations, [0.7, 1.2], 1.5),
]
IDS = [type(case[0]).__name__ for case in CASES]


def _rows(case, n=300, seed=0):
    model, data, base, spread = case
    rng = np.random.default_rng(seed)
    columns = data(rng, n)
    params = np.asarray(base) * np.exp(rng.normal(0.0, spread, (n, len(base))))
    return model, columns, params


def _plain_row(model, params, columns, i):
    values, gradients = model._loglik(params, [column[i:i + 1] for column in columns])
    return values[0], gradients[0]


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_each_row_is_the_plain_model_at_that_rows_parameters(case):
    model, columns, params = _rows(case)
    if isinstance(model, ParetoNBD):  # both forms of the bracket
        assert np.any(params[:, 1] < params[:, 3]) and np.any(params[:, 1] >= params[:, 3])
    values, gradients = row_kernels.row_log_likelihood(model, params, columns)
    for i in range(len(params)):
        value, gradient = _plain_row(model, params[i], columns, i)
        assert values[i] == pytest.approx(value, rel=1e-10, abs=1e-300)
        # entries that are 0 exactly (d/db at x = 0, every entry at n = 0) carry the plain
        # model's rounding of digamma differences, of the order of eps / parameter
        np.testing.assert_allclose(gradients[i], gradient, rtol=1e-10,
                                   atol=1e-12 * (np.abs(gradient).max() + 1 / params[i].min()))


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_gradient_is_the_derivative_of_the_log_likelihood(case):
    model, columns, params = _rows(case, n=60, seed=1)
    _, gradients = row_kernels.row_log_likelihood(model, params, columns)
    for j in range(params.shape[1]):
        step = 1e-6 * params[:, j]
        up, down = params.copy(), params.copy()
        up[:, j] += step
        down[:, j] -= step
        numeric = (row_kernels.row_log_likelihood(model, up, columns)[0]
                   - row_kernels.row_log_likelihood(model, down, columns)[0]) / (2 * step)
        np.testing.assert_allclose(gradients[:, j], numeric, rtol=1e-5,
                                   atol=1e-7 * np.abs(gradients[:, j]).max() + 1e-9 / step.min())


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_rows_sharing_parameters_equal_the_plain_model_at_once(case):
    """One parameter set for every row (one group, levels shared as the plain model shares
    them) and a few sets in an order that is not the rows': the plain model's rows."""
    model, columns, params = _rows(case, seed=2)
    values, gradients = row_kernels.row_log_likelihood(model, params[0], columns)
    plain_values, plain_gradients = model._loglik(params[0], columns)
    np.testing.assert_allclose(values, plain_values, rtol=1e-10)
    np.testing.assert_allclose(gradients, plain_gradients, rtol=1e-10,
                               atol=1e-12 * np.abs(plain_gradients).max())
    which = np.random.default_rng(3).integers(0, 3, len(params))
    values, _ = row_kernels.row_log_likelihood(model, params[which], columns)
    for g in range(3):
        rows = np.flatnonzero(which == g)
        expected, _ = model._loglik(params[g], [column[rows] for column in columns])
        np.testing.assert_allclose(values[rows], expected, rtol=1e-10)


def test_pareto_rows_whose_series_cannot_finish_are_the_plain_models():
    """z near 1 with c - b small needs more terms than the series may take: the kernel flags
    those rows and the plain model (mpmath) evaluates them, beside ordinary rows."""
    model = ParetoNBD()
    columns = [np.array([3.0, 2.0, 4.0]), np.array([0.0, 1.0, 3.0]), np.array([5.0, 2.0, 6.0])]
    params = np.array([[0.5, 1e6, 1e-3, 1e-3], [0.5, 1e6, 1e-3, 1e-3], [0.6, 9.0, 0.7, 12.0]])
    values, gradients = row_kernels.row_log_likelihood(model, params, columns)
    assert np.all(np.isfinite(values))
    for i in range(3):
        value, gradient = _plain_row(model, params[i], columns, i)
        assert values[i] == pytest.approx(value, rel=1e-12)
        np.testing.assert_allclose(gradients[i], gradient, rtol=1e-10)


def test_bg_bb_rows_the_products_cannot_hold_are_the_plain_models():
    """Data that are not whole numbers, and terms below 1e-280 of the largest (a tiny gamma
    with a huge alpha): flagged, then evaluated by the plain model in log space."""
    model = BetaGeoBetaBinom()
    columns = [np.array([1.5, 0.0, 2.0]), np.array([2.0, 0.0, 3.0]), np.array([4.0, 300.0, 5.0])]
    params = np.array([[1.2, 0.75, 0.66, 2.8], [1e9, 1.0, 1e-200, 1.0], [1.2, 0.75, 0.66, 2.8]])
    values, gradients = row_kernels.row_log_likelihood(model, params, columns)
    assert np.all(np.isfinite(values))
    for i in range(3):
        value, gradient = _plain_row(model, params[i], columns, i)
        assert values[i] == pytest.approx(value, rel=1e-10)
        np.testing.assert_allclose(gradients[i], gradient, rtol=1e-9, atol=1e-12)


def _bg_nbd_mpmath(r, alpha, a, b, x, t_x, T):
    """BG/NBD's log-likelihood of one row (field-notes.md) at 50 digits, its Beta ratios as
    products (mpmath's beta(a, b + x) rounds b + x to b at b = 1e119, and its rf returns 1):
    B(a, b+x)/B(a, b) = (b)_x / (a+b)_x, B(a+1, b+x-1)/B(a, b) = a (b)_{x-1} / (a+b)_x."""
    import mpmath

    with mpmath.workdps(50):
        r, alpha, a, b, t_x, T = (mpmath.mpf(float(v)) for v in (r, alpha, a, b, t_x, T))
        x = int(x)

        def rising(base, n):
            return mpmath.fprod([base + i for i in range(n)])

        common = mpmath.gamma(r + x) * alpha ** r / mpmath.gamma(r)
        alive = rising(b, x) / rising(a + b, x) / (alpha + T) ** (r + x)
        dead = a * rising(b, x - 1) / rising(a + b, x) / (alpha + t_x) ** (r + x) if x else 0
        return float(mpmath.log(common * (alive + dead)))


def test_extreme_beta_shapes_take_the_special_functions():
    """a/b and alpha/beta of 1e9 (a running product would underflow) and a + b of 1e120 (the
    product of two of its terms would overflow): the special functions, against mpmath (BG/NBD;
    scipy's betaln, which the plain ``_loglik`` uses, loses at 1e120 the digits that the plain
    kernel's log-gamma ratios keep: it gives -5.53 for -10.49) and the plain model (sBG), gradients against the plain
    models' compiled kernels."""
    model = BetaGeo()
    columns = [np.array([30.0, 3.0]), np.array([20.0, 2.0]), np.array([40.0, 9.0])]
    params = np.array([[0.3, 4.0, 1e9, 1.0], [0.3, 4.0, 1e120, 1e119]])
    values, gradients = row_kernels.row_log_likelihood(model, params, columns)
    for i in range(2):
        row = [column[i:i + 1] for column in columns]
        assert values[i] == pytest.approx(_bg_nbd_mpmath(*params[i], *(c[0] for c in row)), rel=1e-10)
        kernel = model._total_kernel(params[i], *model._kernel_arrays(model._prepare(row), np.ones(1)))
        assert values[i] == pytest.approx(kernel[0], rel=1e-12)
        np.testing.assert_allclose(gradients[i], kernel[1:5], rtol=1e-8,
                                   atol=1e-12 * np.abs(kernel[1:5]).max())
    model = ShiftedBetaGeo()
    columns, params = [np.array([40.0, 30.0]), np.array([1.0, 0.0])], np.array([[1e9, 1.0], [2.0, 1e-9]])
    values, gradients = row_kernels.row_log_likelihood(model, params, columns)
    for i in range(2):
        value, gradient = _plain_row(model, params[i], columns, i)
        assert values[i] == pytest.approx(value, rel=1e-10)
        np.testing.assert_allclose(gradients[i], gradient, rtol=1e-8)


def test_which_classes_have_per_row_kernels():
    class OwnLikelihood(ParetoNBD):
        @staticmethod
        def _loglik(params, data, gradient=True):
            return ParetoNBD._loglik(params, data, gradient)

    class SameLikelihood(ModifiedBetaGeo):
        pass

    assert row_kernels.family_of(ParetoNBD()).name == "pareto_nbd"
    assert row_kernels.family_of(ModifiedBetaGeo()).name == "bg_nbd"
    assert row_kernels.family_of(SameLikelihood()).name == "bg_nbd"
    assert row_kernels.family_of(GammaGamma()).name == "gamma_gamma"
    assert row_kernels.family_of(OwnLikelihood()) is None
    # without per-row kernels, row_log_likelihood is the plain model's, group by group
    model, columns, params = _rows(CASES[2], n=20, seed=4)
    values, _ = row_kernels.row_log_likelihood(OwnLikelihood(), params, columns)
    np.testing.assert_allclose(values, row_kernels.row_log_likelihood(model, params, columns)[0],
                               rtol=1e-12)


def test_a_wrong_shape_of_parameters_is_refused():
    from clvlab import ClvlabError

    model, columns, params = _rows(CASES[0], n=10)
    with pytest.raises(ClvlabError, match=r"params_rows must have shape \(10, 4\)"):
        row_kernels.row_log_likelihood(model, params[:5], columns)


@pytest.mark.parametrize("model", [
    ParetoNBD.from_params(r=0.6, alpha=9.0, s=0.7, beta=12.0,
                          coefficients={"purchase": {"z": 0.4}, "dropout": {"z": -0.3}}),
    GammaGamma.from_params(p=6.0, q=3.7, v=15.0, coefficients={"spend": {"z": 0.2}}),
], ids=["pareto", "gamma-gamma"])
def test_a_models_per_customer_log_likelihood_from_the_rows(model):
    """What ``log_likelihood(per_customer=True)`` gives group by group, from each customer's
    parameters (``customer_params.customer_parameters``) and ``row_log_likelihood`` (Gamma-
    Gamma reads the customers with repeat purchases)."""
    from clvlab.models.customer_params import customer_parameters

    rng = np.random.default_rng(9)
    columns = _transactions(rng, 150)
    table = pd.DataFrame(dict(zip(("frequency", "recency", "T"), columns)))
    table = table.assign(recency=np.where(table["frequency"] > 0, table["recency"], 0.0),monetary_value=np.exp(rng.normal(3.0, 0.5, len(table))),
                         z=rng.normal(0.0, 1.0, len(table)))
    expected = model.log_likelihood(table, per_customer=True)
    used = table[table["frequency"] > 0] if isinstance(model, GammaGamma) else table
    values, _ = row_kernels.row_log_likelihood(model, customer_parameters(model, used),
                                               model._data(used))
    np.testing.assert_allclose(values, expected[used.index], rtol=1e-10)
