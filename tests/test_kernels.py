"""The compiled paths against the array-by-array NumPy ones they replace, and row grouping."""

import numpy as np
import pytest

from clvlab import BetaGeo, ModifiedBetaGeo, ParetoNBD
from clvlab.datasets import load_cdnow_summary
from clvlab._fitting import compress, group_rows, levels
from clvlab.models._pareto_kernel import bracket_pairs
from clvlab.models.pareto_nbd import _log_bracket, _log_bracket_numpy


def _histories(rng, n, max_x=300, max_T=100.0):
    x = rng.integers(0, max_x, n).astype(float)
    T = np.round(rng.uniform(0.1, max_T, n), 1)
    t_x = np.where(x > 0, np.round(rng.uniform(0, 1, n) * T, 1), 0.0)
    t_x[::7] = T[::7]  # t_x = T
    return x, t_x, T


@pytest.mark.parametrize("use_pairs", [False, True])
def test_pareto_compiled_bracket_equals_numpy(use_pairs):
    rng = np.random.default_rng(7)
    x, t_x, T = _histories(rng, 800)
    pairs = bracket_pairs(x, t_x, T) if use_pairs else None
    for _ in range(40):
        r, alpha, s, beta = np.exp(rng.uniform(-5, 5, 4))
        if rng.random() < 0.2:
            beta = alpha  # z = 0
        fast, fast_grad = _log_bracket(r, alpha, s, beta, x, t_x, T, True, pairs)
        slow, slow_grad = _log_bracket_numpy(r, alpha, s, beta, x, t_x, T)
        np.testing.assert_allclose(fast, slow, rtol=1e-13, atol=1e-13)
        for got, want in zip(fast_grad, slow_grad):
            np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9)


def test_pareto_rows_the_series_cannot_finish_go_to_mpmath():
    # z = (alpha - beta) / (alpha + t) near 1 with c - b small: more than the term budget
    x, t_x, T = np.array([3.0, 2.0]), np.array([0.0, 1.0]), np.array([5.0, 2.0])
    params = (0.5, 1e6, 1e-3, 1e-3)
    fast, fast_grad = _log_bracket(*params, x, t_x, T)
    slow, slow_grad = _log_bracket_numpy(*params, x, t_x, T)
    assert np.all(np.isfinite(fast))
    np.testing.assert_allclose(fast, slow, rtol=1e-12)
    for got, want in zip(fast_grad, slow_grad):
        np.testing.assert_allclose(got, want, rtol=1e-6)


@pytest.mark.parametrize("model_class", [BetaGeo, ParetoNBD])
def test_prepared_data_give_the_same_likelihood(model_class):
    model = model_class()
    data = model._data(load_cdnow_summary())
    params = np.array([0.4, 6.0, 0.7, 3.0])
    plain = model_class._loglik(params, data)
    prepared = model_class._loglik(params, model._prepare(data))
    np.testing.assert_array_equal(plain[0], prepared[0])
    np.testing.assert_allclose(plain[1], prepared[1], rtol=1e-14, atol=1e-14)


def test_group_rows_matches_sorting_and_survives_key_overflow():
    rng = np.random.default_rng(3)
    columns = [rng.integers(0, 5, 20_000).astype(float), rng.choice([0.5, 1.5, np.pi], 20_000),
               rng.integers(0, 40, 20_000) / 7]
    distinct, inverse = group_rows(columns)
    unique, expected_inverse = np.unique(np.column_stack(columns), axis=0, return_inverse=True)
    np.testing.assert_array_equal(np.column_stack(distinct), unique)
    np.testing.assert_array_equal(inverse, expected_inverse.ravel())
    # four columns of 70,000 distinct values: the combined integer key would overflow
    wide = [rng.permutation(70_000).astype(float) for _ in range(4)]
    distinct, inverse = group_rows(wide)
    np.testing.assert_array_equal(np.column_stack(distinct)[inverse], np.column_stack(wide))


def test_compress_adds_weights_and_drops_zero_weight_rows():
    x = np.array([1.0, 1.0, 2.0, 2.0, 3.0])
    y = np.array([0.5, 0.5, 0.5, 0.5, 0.5])
    columns, weights = compress([x, y], np.array([1.0, 2.0, 0.5, 0.25, 0.0]))
    np.testing.assert_array_equal(columns[0], [1.0, 2.0])
    np.testing.assert_array_equal(weights, [3.0, 0.75])
    values, at = levels(np.array([3.0, 1.0, 3.0]))
    np.testing.assert_array_equal(values[at], [3.0, 1.0, 3.0])


def test_pareto_fused_total_equals_the_weighted_row_sum():
    """The one-pass kernel the optimiser and the sampler use, against weights @ per-row values,
    including a point where some rows need mpmath (the kernel hands over to the row path)."""
    rng = np.random.default_rng(11)
    x, t_x, T = _histories(rng, 600)
    x, t_x, T = (np.append(v, extra) for v, extra in zip((x, t_x, T), ([3.0], [0.0], [5.0])))
    model = ParetoNBD()
    distinct, counts = compress([x, t_x, T], rng.uniform(0.5, 3.0, x.size))
    data = model._prepare(distinct)
    # at the last point most rows need mpmath (about 9 s a pass over all 600): 40 rows there
    few = [v[-40:] for v in distinct]
    cases = [(np.exp(rng.uniform(-4, 4, 4)), data, counts) for _ in range(30)]
    cases.append((np.array([0.5, 1e6, 1e-3, 1e-3]), model._prepare(few), counts[-40:]))
    for params, data, counts in cases:
        values, grads = ParetoNBD._loglik(params, data)
        total, grad = ParetoNBD._loglik_total(params, data, counts)
        assert total == pytest.approx(counts @ values, rel=1e-12)
        np.testing.assert_allclose(grad, counts @ grads, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("model_class", [BetaGeo, ModifiedBetaGeo])
def test_bg_fused_total_equals_the_weighted_row_sum(model_class):
    """BG/NBD's one-pass kernel (scalar log-gamma ratios and its own digamma) against weights @
    the per-row values from SciPy, from tiny to huge parameters."""
    rng = np.random.default_rng(12)
    x, t_x, T = _histories(rng, 600)
    model = model_class()
    distinct, counts = compress([x, t_x, T], rng.uniform(0.5, 3.0, x.size))
    data = model._prepare(distinct)
    points = [np.exp(rng.uniform(-5, 5, 4)) for _ in range(40)]
    points += [np.array([0.24, 4.4, 0.79, 2.4]), np.array([1e-3, 1e-3, 1e3, 1e4]),
               np.array([50.0, 2e3, 0.01, 5e5]), np.array([0.5, 10.0, 1e-4, 1e-4])]
    for params in points:
        values, grads = model_class._loglik(params, data)
        total, grad = model_class._loglik_total(params, data, counts)
        assert total == pytest.approx(counts @ values, rel=1e-11)
        np.testing.assert_allclose(grad, counts @ grads, rtol=1e-8, atol=1e-8 * np.abs(counts @ grads).max())


def test_compiled_digamma_and_log_gamma_ratio_match_scipy():
    from scipy import special

    from clvlab.models._special import digamma_scalar, log_gamma_ratio, log_gamma_ratio_scalar

    for v in np.geomspace(1e-6, 1e7, 400):
        assert digamma_scalar(v) == pytest.approx(special.digamma(v), rel=1e-13, abs=1e-13)
        for q in (0.0, 0.37, 3.0, 250.0):
            assert log_gamma_ratio_scalar(v, q) == pytest.approx(float(log_gamma_ratio(v, q)), rel=1e-12, abs=1e-12)
