"""Pareto/NBD's log-likelihood at per-row parameters, with the exact gradient, in compiled loops
(numba, cached on disk); the calling conventions are those of ``row_kernels_continuous``.

The formulas are ``_pareto_kernel._part``'s (field-notes.md's form without cancellation): with
k = r + s + x, L = G(r+x) alpha^r beta^s / G(r) [(s/k) A1 + ((r+x)/k) A2], A1 at t_x and A2 at
T each holding one series 2F1(1, b; k+1; z) with z = |alpha - beta| / (max(alpha, beta) + t).
The r terms (log G(r+x)/G(r), psi(r+x) - psi(r)) are computed per x; the two parts per
(group, x, t_x) and (group, x, T), as the plain kernel computes them per distinct pair.

With a continuous covariate every part is a row's own, and the series are the largest part of
the cost (56 terms a row on average, 38 at t_x and 18 at T, on the 1,000,000 simulated
customers of ``bench_covariate_fit``). Their
coefficients t_n / z^n = (b)_n / (c)_n, and the sums H_b(n), H_c(n) that their derivatives in
b and c carry, depend on (b, c) alone, and b and c on x, r, s and the branch (alpha >= beta or
not); r and s have no covariates in Pareto/NBD, so the coefficients are tabulated once per x
level and branch (``N_COEFFICIENTS`` terms each), and a row's series is a sum of table entries
times powers of its z: no division in the loop, about twice as fast (the first parts of 10^6
rows: 0.044 s against 0.10 s). A series longer than the table (z near 1) starts again as
``_series``.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from clvlab.models._hyp import SERIES_MAX_TERMS, series_1bc
from clvlab.models._special import digamma_scalar, log_gamma_ratio_scalar
from clvlab.models.covariate_kernel import add_chained, add_compensated, group_params, log_params

__all__ = ["pareto_nbd_rows", "pareto_nbd_total", "N_COEFFICIENTS"]

#: the terms of each tabulated series (longer series are summed from the start, untabulated)
N_COEFFICIENTS = 256

_jit = numba.njit(cache=True, nogil=True, error_model="numpy")
# the per-row helpers inlined into their loops (numba IR inlining): the calls, with their array
# arguments, cost as much as the arithmetic (the parts: 0.16 s against 0.10 s a 10^6)
_inline = numba.njit(cache=True, nogil=True, error_model="numpy", inline="always")


@_jit
def _series(b, c, z):  # pragma: no cover - compiled
    """``_hyp.series_1bc`` (log 2F1(1, b; c; z), its derivatives in b, c, z, converged) with one
    division per term where it has three: 1/(b+n) and 1/(c+n) from 1/((b+n)(c+n))."""
    if c > 1e100:  # (b+n)(c+n) could overflow
        return series_1bc(b, c, z)
    tail = 1.0 / max(1.0 - z, 1e-300) ** 2
    total, d_b, d_c, d_z = 1.0, 0.0, 0.0, 0.0
    p = b / c            # p_n = t_n / z, here for n = 1
    h_b, h_c = 1.0 / b, 1.0 / c
    converged = False
    for n in range(1, SERIES_MAX_TERMS + 1):
        term = p * z
        total += term
        d_b += term * h_b
        d_c += term * h_c
        d_z += n * p
        if term * (n + 1) * tail <= 1e-17 * total:
            converged = True
            break
        b_n, c_n = b + n, c + n
        inverse = 1.0 / (b_n * c_n)
        p *= b_n * inverse * b_n * z
        h_b += c_n * inverse
        h_c += b_n * inverse
    return np.log(total), d_b / total, -d_c / total, d_z / total, converged


@_jit
def _coefficients(b, c, out):  # pragma: no cover - compiled
    """out[n] = ((b)_n/(c)_n, times H_b(n), times H_c(n), times n) for n < len(out)."""
    p, h_b, h_c = 1.0, 0.0, 0.0
    out[0, 0], out[0, 1], out[0, 2], out[0, 3] = 1.0, 0.0, 0.0, 0.0
    for n in range(1, out.shape[0]):
        p *= (b + n - 1) / (c + n - 1)
        h_b += 1.0 / (b + n - 1)
        h_c += 1.0 / (c + n - 1)
        out[n, 0], out[n, 1], out[n, 2], out[n, 3] = p, p * h_b, p * h_c, n * p


@_inline
def _series_tabled(coefficients, b, c, z):  # pragma: no cover - compiled
    """``_series`` from the tabulated coefficients of (b, c); the same sums, term by term, and
    the same stopping rule."""
    tail = 1.0 / max(1.0 - z, 1e-300) ** 2
    total, d_b, d_c, d_z = 1.0, 0.0, 0.0, 0.0
    power = 1.0  # z^(n-1)
    for n in range(1, coefficients.shape[0]):
        d_z += coefficients[n, 3] * power
        power *= z
        term = coefficients[n, 0] * power
        total += term
        d_b += coefficients[n, 1] * power
        d_c += coefficients[n, 2] * power
        if term * (n + 1) * tail <= 1e-17 * total:
            return np.log(total), d_b / total, -d_c / total, d_z / total, True
    return _series(b, c, z)


@_inline
def _weight_terms(r, s, x, out):  # pragma: no cover - compiled
    """out[0:6]: log(s/k), d/dr and d/ds of it (the first part's weight), and log(m/k), d/dr
    and d/ds of it (the second part's), with m = r + x, k = m + s: they depend on x alone."""
    m = r + x
    k = m + s
    log_k = math.log(k)
    out[0], out[1], out[2] = math.log(s) - log_k, -1.0 / k, 1.0 / s - 1.0 / k
    out[3], out[4], out[5] = math.log(m) - log_k, 1.0 / m - 1.0 / k, -1.0 / k


@_inline
def _pareto_part(r, alpha, s, beta, x, t, second, table, weight, out):  # pragma: no cover
    """out[0:6]: log of (s/k) A1 at t = t_x (or of (m/k) A2 at t = T, ``second``), its gradient
    in (r, alpha, s, beta), 1 if the series did not converge (``_pareto_kernel._part``).
    ``table`` (2, n, 4): the series coefficients of this x and part for alpha >= beta and
    alpha < beta (n = 0: none); ``weight``: ``_weight_terms`` of this x."""
    m = r + x
    k = m + s
    log_a, log_b = math.log(alpha + t), math.log(beta + t)
    ahead = alpha >= beta
    if ahead:  # the series of A1 and A2 in their b = m, m + 1 (alpha >= beta) or s + 1, s
        inverse = 1.0 / (alpha + t)
        z = (alpha - beta) * inverse
        dz_alpha, dz_beta = (beta + t) * inverse * inverse, -inverse
        power_a, power_b = (m + 1, s - 1) if second else (m, s)
        b = power_a
    else:
        inverse = 1.0 / (beta + t)
        z = (beta - alpha) * inverse
        dz_alpha, dz_beta = -inverse, (alpha + t) * inverse * inverse
        power_a, power_b = (m, s) if second else (m - 1, s + 1)
        b = power_b
    if table.shape[1] > 0:
        f, g_b, g_c, g_z, ok = _series_tabled(table[0 if ahead else 1], b, k + 1, z)
    else:
        f, g_b, g_c, g_z, ok = _series(b, k + 1, z)
    if ahead:
        d_r, d_s = -log_a + g_b + g_c, -log_b + g_c
    else:
        d_r, d_s = -log_a + g_c, -log_b + g_b + g_c
    d_alpha = -power_a / (alpha + t) + g_z * dz_alpha
    d_beta = -power_b / (beta + t) + g_z * dz_beta
    w = 3 if second else 0  # the weight m/k, or s/k
    out[0] = -power_a * log_a - power_b * log_b + f + weight[w]
    out[1], out[2], out[3], out[4] = d_r + weight[w + 1], d_alpha, d_s + weight[w + 2], d_beta
    out[5] = 0.0 if ok else 1.0


@_jit
def _x_levels(own, xr, gr, n_coefficients):  # pragma: no cover - compiled
    """Per x level (with its group where r or s differ between groups): log G(r+x)/G(r),
    psi(r+x) - psi(r) and ``_weight_terms``; where ``n_coefficients`` > 0 (r and s the same in
    every group) the series coefficients per x level, part and branch: b = m, s + 1 (first
    part), m + 1, s (second part), c = k + 1."""
    per_x = np.empty((xr.size, 8))
    for level in range(xr.size):
        r, s = own[gr[level], 0], own[gr[level], 2]
        per_x[level, 0] = log_gamma_ratio_scalar(r, xr[level])
        per_x[level, 1] = digamma_scalar(r + xr[level]) - digamma_scalar(r)
        _weight_terms(r, s, xr[level], per_x[level, 2:])
    # (x levels, part, branch, terms, 4); without tabulation one level of empty tables
    coefficients = np.empty((xr.size if n_coefficients > 0 else 1, 2, 2, n_coefficients, 4))
    if n_coefficients > 0:
        r, s = own[0, 0], own[0, 2]
        for level in range(xr.size):
            m, c = r + xr[level], r + xr[level] + s + 1.0
            _coefficients(m, c, coefficients[level, 0, 0])
            _coefficients(s + 1.0, c, coefficients[level, 0, 1])
            _coefficients(m + 1.0, c, coefficients[level, 1, 0])
            _coefficients(s, c, coefficients[level, 1, 1])
    return per_x, coefficients


@_jit
def _part_at(own, per_x, coefficients, level, xs, ts, gs, xis, second, weight, out):  # pragma: no cover
    """``_pareto_part`` of one part level (``weight``: a buffer for its weight terms where they
    are not tabulated)."""
    g = gs[level]
    r, s = own[g, 0], own[g, 2]
    tabulated = coefficients.shape[3] > 0
    x_level = xis[level] if tabulated else 0
    if tabulated:
        terms = per_x[x_level, 2:]
    else:
        _weight_terms(r, s, xs[level], weight)
        terms = weight[:]
    _pareto_part(r, own[g, 1], s, own[g, 3], xs[level], ts[level], second,
                 coefficients[x_level, 1 if second else 0], terms, out)


@_jit
def _parts(own, per_x, coefficients, xs, ts, gs, xis, second, n_rows):  # pragma: no cover
    """Every part level's ``_pareto_part``, or an empty table where the levels are as many as
    the rows (every row its own level: a continuous covariate): the rows then compute theirs."""
    if xs.size == n_rows:
        return np.empty((0, 6))
    out = np.empty((xs.size, 6))
    weight = np.empty(6)
    for level in range(xs.size):
        _part_at(own, per_x, coefficients, level, xs, ts, gs, xis, second, weight, out[level])
    return out


@_inline
def _pareto_row(own, log_own, g, r_terms, a, b, d):  # pragma: no cover - compiled
    """One row from its r terms and bracket parts a, b; gradient into d; (value, flag)."""
    r, alpha, s, beta = own[g, 0], own[g, 1], own[g, 2], own[g, 3]
    bracket = max(a[0], b[0]) + math.log1p(math.exp(-abs(a[0] - b[0])))
    w1 = math.exp(a[0] - bracket)
    w2 = 1.0 - w1
    log_alpha, log_beta = log_own[g, 1], log_own[g, 3]
    d[0] = r_terms[1] + log_alpha + (w1 * a[1] + w2 * b[1])
    d[1] = r / alpha + (w1 * a[2] + w2 * b[2])
    d[2] = log_beta + (w1 * a[3] + w2 * b[3])
    d[3] = s / beta + (w1 * a[4] + w2 * b[4])
    return r_terms[0] + (r * log_alpha + s * log_beta) + bracket, max(a[5], b[5])


@_jit
def _rows(own, log_own, group, xr, gr, at_r, x1, t1, g1, xi1, at1, x2, t2, g2, xi2, at2,
          n_coefficients, values, gradients):  # pragma: no cover - compiled
    """values[i], gradients[i]: row i's log-likelihood (NaN where flagged) and gradient."""
    per_x, coefficients = _x_levels(own, xr, gr, n_coefficients)
    first = _parts(own, per_x, coefficients, x1, t1, g1, xi1, False, group.size)
    second = _parts(own, per_x, coefficients, x2, t2, g2, xi2, True, group.size)
    a, b, weight = np.empty(6), np.empty(6), np.empty(6)
    for i in range(group.size):
        if first.shape[0] > 0:
            a[:] = first[at1[i]]
        else:
            _part_at(own, per_x, coefficients, at1[i], x1, t1, g1, xi1, False, weight, a)
        if second.shape[0] > 0:
            b[:] = second[at2[i]]
        else:
            _part_at(own, per_x, coefficients, at2[i], x2, t2, g2, xi2, True, weight, b)
        value, flag = _pareto_row(own, log_own, group[i], per_x[at_r[i]], a, b, gradients[i])
        values[i] = math.nan if flag != 0.0 else value


@_jit
def pareto_nbd_rows(own, group, xr, gr, at_r, x1, t1, g1, xi1, at1, x2, t2, g2, xi2, at2,
                    n_coefficients, out):  # pragma: no cover - compiled
    """out[i] = (log-likelihood, gradient in (r, alpha, s, beta), flag) of row i; flag 1 where
    a series did not converge (then the other columns are not meaningful)."""
    values, gradients = np.empty(group.size), np.empty((group.size, 4))
    _rows(own, log_params(own), group, xr, gr, at_r, x1, t1, g1, xi1, at1, x2, t2, g2, xi2, at2,
          n_coefficients[0], values, gradients)
    for i in range(group.size):
        out[i, 0] = values[i]
        out[i, 1:5] = gradients[i]
        out[i, 5] = 1.0 if math.isnan(values[i]) else 0.0


@_jit
def pareto_nbd_total(params, zp, proc, sign, group, xr, gr, at_r, x1, t1, g1, xi1, at1, x2, t2,
                     g2, xi2, at2, n_coefficients, weights):  # pragma: no cover - compiled
    """[sum w loglik, its gradient in (params), flag]; flag 1 (and no total) where some row's
    series needs the fallback, as the plain kernel."""
    own, log_own = group_params(params, zp, proc, sign)
    values, gradients = np.empty(group.size), np.empty((group.size, 4))
    _rows(own, log_own, group, xr, gr, at_r, x1, t1, g1, xi1, at1, x2, t2, g2, xi2, at2,
          n_coefficients[0], values, gradients)
    out = np.zeros(params.size + 2)
    gradient = np.zeros(own.shape)
    total = lost = 0.0
    for i in range(group.size):
        if math.isnan(values[i]):
            out[:] = 0.0
            out[params.size + 1] = 1.0
            return out
        g, w = group[i], weights[i]
        total, lost = add_compensated(total, lost, w * values[i])
        for j in range(4):
            gradient[g, j] += w * gradients[i, j]
    out[0] = total
    add_chained(out, gradient, own, params, zp, proc, sign)
    return out
