"""The Pareto/NBD bracket log[(s/k) A1 + ((r+x)/k) A2] and its gradient, in compiled loops.

The same formulas as ``pareto_nbd._log_bracket_numpy`` (which stays as the reference and the
fallback), written per row. Two savings: the NumPy version makes some 60 temporary arrays per
evaluation; and A1 depends on (x, t_x) only and A2 on (x, T) only, so each is evaluated once per
distinct pair (195,000 distinct rows of 1,000,000 simulated customers hold 6,000 and 5,500
pairs) and the rows only combine them. Rows whose 2F1 series does not converge within its term
budget are flagged and recomputed by the NumPy version, which hands them to mpmath.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from clvlab.inference.grouping import group_rows, levels
from clvlab.models._hyp import SERIES_MAX_TERMS, series_1bc
from clvlab.models._special import digamma_scalar, log_gamma_ratio_scalar

__all__ = ["log_bracket", "bracket_pairs", "kernel"]


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _part_one(r, alpha, s, beta, x, t, second, out):  # pragma: no cover - compiled
    """out[:] = (log of (s/k) A1 at t = t_x, or of (m/k) A2 at t = T; its gradient in
    (r, alpha, s, beta); 1 if the series did not converge) for one row."""
    m = r + x
    k = m + s
    log_a, log_b = math.log(alpha + t), math.log(beta + t)
    if alpha >= beta:
        z = (alpha - beta) / (alpha + t)
        dz_alpha, dz_beta = (beta + t) / (alpha + t) ** 2, -1.0 / (alpha + t)
        # A1: 2F1(1, m; k+1; z) (alpha+t)^-m (beta+t)^-s; A2: 2F1(1, m+1; k+1; z) (alpha+T)^-(m+1) (beta+T)^-(s-1)
        power_a, power_b = (m + 1, s - 1) if second else (m, s)
        f, g_b, g_c, g_z, ok = series_1bc(power_a, k + 1, z)
        d_r, d_s = -log_a + g_b + g_c, -log_b + g_c
    else:
        z = (beta - alpha) / (beta + t)
        dz_alpha, dz_beta = -1.0 / (beta + t), (alpha + t) / (beta + t) ** 2
        # A1: 2F1(1, s+1; k+1; z) (alpha+t)^-(m-1) (beta+t)^-(s+1); A2: 2F1(1, s; k+1; z) (alpha+T)^-m (beta+T)^-s
        power_a, power_b = (m, s) if second else (m - 1, s + 1)
        f, g_b, g_c, g_z, ok = series_1bc(power_b, k + 1, z)
        d_r, d_s = -log_a + g_c, -log_b + g_b + g_c
    d_alpha = -power_a / (alpha + t) + g_z * dz_alpha
    d_beta = -power_b / (beta + t) + g_z * dz_beta
    value = -power_a * log_a - power_b * log_b + f - math.log(k)
    if second:  # weight m/k
        value += math.log(m)
        d_r += 1.0 / m - 1.0 / k
        d_s -= 1.0 / k
    else:       # weight s/k
        value += math.log(s)
        d_r -= 1.0 / k
        d_s += 1.0 / s - 1.0 / k
    out[0], out[1], out[2], out[3], out[4] = value, d_r, d_alpha, d_s, d_beta
    out[5] = 0.0 if ok else 1.0


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _part(r, alpha, s, beta, x, t, second, out):  # pragma: no cover - compiled
    """``_part_one`` for every row at one set of parameters."""
    for i in range(x.size):
        _part_one(r, alpha, s, beta, x[i], t[i], second, out[i])


_TABLE = 512  # terms of the series whose ratios _part_levels keeps (a few dozen are the rule)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _part_levels(r, alpha, s, beta, x, t, t_levels, at_t, second, out):  # pragma: no cover - compiled
    """``_part`` with what depends on x alone computed once per run of equal x (the pairs of
    ``bracket_pairs`` come sorted by x, so once per x level), and what depends on t alone once
    per distinct t (``t_levels``, pair i's at ``at_t[i]``), not at every pair: the series'
    ratios (b+n)/(c+n), 1/(b+n) and 1/(c+n), in tables filled as far as a pair's series reaches
    (the first ``_TABLE`` terms; beyond, computed as they come), the weight's logarithms and
    reciprocals; the logarithms of alpha + t and beta + t, z, its derivatives and the series'
    tail bound. The same operations on the same numbers as ``_part_one`` and ``series_1bc``
    (tests/test_fit_overhead.py holds them equal to the bit; keep them in step): on CDNOW's
    586 (x, t_x) pairs (257 distinct t_x) 55 -> 28 us at the estimates, where a series takes
    some 11 terms of three divisions each."""
    upper = alpha >= beta
    per_t = np.empty((t_levels.size, 6))
    for j in range(t_levels.size):
        tj = t_levels[j]
        per_t[j, 0], per_t[j, 1] = math.log(alpha + tj), math.log(beta + tj)
        if upper:
            z = (alpha - beta) / (alpha + tj)
            per_t[j, 3], per_t[j, 4] = (beta + tj) / (alpha + tj) ** 2, -1.0 / (alpha + tj)
        else:
            z = (beta - alpha) / (beta + tj)
            per_t[j, 3], per_t[j, 4] = -1.0 / (beta + tj), (alpha + tj) / (beta + tj) ** 2
        per_t[j, 2] = z
        per_t[j, 5] = 1.0 / max(1.0 - z, 1e-300) ** 2
    coef, inv_b, inv_c = np.empty(_TABLE), np.empty(_TABLE), np.empty(_TABLE)
    filled = 0
    current = math.nan
    b = c = m = k = p0 = h_b0 = h_c0 = log_k = log_w = dr_w = ds_w = 0.0
    power_a = power_b = 0.0
    for i in range(x.size):
        xi = x[i]
        if xi != current:  # a new x level: its b and c, the tables emptied
            current = xi
            m = r + xi
            k = m + s
            if upper:
                b = m + 1 if second else m
                power_a, power_b = (m + 1, s - 1) if second else (m, s)
            else:
                b = s if second else s + 1
                power_a, power_b = (m, s) if second else (m - 1, s + 1)
            c = k + 1
            p0 = b / c
            h_b0, h_c0 = 1.0 / b, 1.0 / c
            filled = 0
            log_k = math.log(k)
            if second:
                log_w, dr_w, ds_w = math.log(m), 1.0 / m - 1.0 / k, 1.0 / k
            else:
                log_w, dr_w, ds_w = math.log(s), 1.0 / k, 1.0 / s - 1.0 / k
        ti = t[i]
        j = at_t[i]
        log_a, log_b, z = per_t[j, 0], per_t[j, 1], per_t[j, 2]
        dz_alpha, dz_beta, tail = per_t[j, 3], per_t[j, 4], per_t[j, 5]
        # series_1bc(b, c, z), its ratios read from the tables
        total, d_b, d_c, d_z = 1.0, 0.0, 0.0, 0.0
        p = p0
        h_b, h_c = h_b0, h_c0
        ok = False
        count = 0.0  # n as a float (exact): no conversion at each term
        for n in range(1, SERIES_MAX_TERMS + 1):
            count += 1.0
            term = p * z
            total += term
            d_b += term * h_b
            d_c += term * h_c
            d_z += count * p
            if term * (count + 1.0) * tail <= 1e-17 * total:
                ok = True
                break
            if n < _TABLE:
                if n > filled:
                    coef[n] = (b + n) / (c + n)
                    inv_b[n] = 1.0 / (b + n)
                    inv_c[n] = 1.0 / (c + n)
                    filled = n
                p *= coef[n] * z
                h_b += inv_b[n]
                h_c += inv_c[n]
            else:
                p *= (b + n) / (c + n) * z
                h_b += 1.0 / (b + n)
                h_c += 1.0 / (c + n)
        f, g_b, g_c, g_z = np.log(total), d_b / total, -d_c / total, d_z / total
        if upper:
            d_r, d_s = -log_a + g_b + g_c, -log_b + g_c
        else:
            d_r, d_s = -log_a + g_c, -log_b + g_b + g_c
        d_alpha = -power_a / (alpha + ti) + g_z * dz_alpha
        d_beta = -power_b / (beta + ti) + g_z * dz_beta
        value = -power_a * log_a - power_b * log_b + f - log_k
        value += log_w
        if second:
            d_r += dr_w
            d_s -= ds_w
        else:
            d_r -= dr_w
            d_s += ds_w
        out[i, 0] = value
        out[i, 1] = d_r
        out[i, 2] = d_alpha
        out[i, 3] = d_s
        out[i, 4] = d_beta
        out[i, 5] = 0.0 if ok else 1.0


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _part_rows(r, alpha, s, beta, x, t, second, out):  # pragma: no cover - compiled
    """``_part_one`` for every row at that row's own parameters (arrays like x)."""
    for i in range(x.size):
        _part_one(r[i], alpha[i], s[i], beta[i], x[i], t[i], second, out[i])


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _combine(first, at_first, second, at_second, out):  # pragma: no cover - compiled
    for i in range(at_first.size):
        f, g = at_first[i], at_second[i]
        a0, b0 = first[f, 0], second[g, 0]
        bracket = max(a0, b0) + math.log1p(math.exp(-abs(a0 - b0)))
        w1 = math.exp(a0 - bracket)
        w2 = 1.0 - w1
        out[i, 0] = bracket
        out[i, 1] = w1 * first[f, 1] + w2 * second[g, 1]
        out[i, 2] = w1 * first[f, 2] + w2 * second[g, 2]
        out[i, 3] = w1 * first[f, 3] + w2 * second[g, 3]
        out[i, 4] = w1 * first[f, 4] + w2 * second[g, 4]
        out[i, 5] = max(first[f, 5], second[g, 5])


def bracket_pairs(x, t_x, T, x_levels: tuple | None = None) -> tuple:
    """The distinct (x, t_x) and (x, T) pairs and each row's index among them (``x_levels``:
    ``levels(x)`` when computed already; x is then not factorised again), then the distinct
    t of each kind of pair and each pair's index among them: (x1, t1, at1, x2, t2, at2,
    t1_levels, at_t1, t2_levels, at_t2)."""
    (x1, t1), at1 = group_rows([x, t_x], first_levels=x_levels)
    (x2, t2), at2 = group_rows([x, T], first_levels=x_levels)
    return (x1, t1, at1, x2, t2, at2, *levels(t1), *levels(t2))


def log_bracket(r, alpha, s, beta, x, t_x, T, fallback, pairs: tuple | None = None) -> np.ndarray:
    """An array of shape (rows, 5): the bracket and its gradient in (r, alpha, s, beta).

    ``pairs`` is ``bracket_pairs(x, t_x, T)`` when computed ahead (once per fit); without it the
    rows are their own pairs. ``fallback(x, t_x, T)`` recomputes flagged rows.
    """
    # copies: numba warns on the read-only views that broadcast_arrays returns
    if any(np.ndim(v) for v in (r, alpha, s, beta)):  # each row at its own parameters
        return _log_bracket_rows(r, alpha, s, beta, x, t_x, T, fallback)
    x, t_x, T = (np.array(v, dtype=np.float64).ravel() for v in np.broadcast_arrays(x, t_x, T))
    params = float(r), float(alpha), float(s), float(beta)
    if pairs is None:  # the rows are their own pairs, in the caller's order
        rows = np.arange(x.size)
        x1, t1, at1, x2, t2, at2 = x, t_x, rows, x, T, rows
        first, second = np.empty((x1.size, 6)), np.empty((x2.size, 6))
        _part(*params, x1, t1, False, first)
        _part(*params, x2, t2, True, second)
    else:  # sorted by x, with their distinct t: once per level what depends on x or t alone
        x1, t1, at1, x2, t2, at2, t1_levels, at_t1, t2_levels, at_t2 = pairs
        first, second = np.empty((x1.size, 6)), np.empty((x2.size, 6))
        _part_levels(*params, x1, t1, t1_levels, at_t1, False, first)
        _part_levels(*params, x2, t2, t2_levels, at_t2, True, second)
    out = np.empty((x.size, 6))
    _combine(first, at1, second, at2, out)
    slow = np.flatnonzero(out[:, 5])
    if slow.size:
        # NaN where even mpmath has no answer (z rounds to 1 at points like alpha = 4e17):
        # optimisers and samplers reject such points, so no warning for each
        with np.errstate(invalid="ignore"):
            out[slow, :5] = fallback(x[slow], t_x[slow], T[slow])
    return out[:, :5]


def _log_bracket_rows(r, alpha, s, beta, x, t_x, T, fallback) -> np.ndarray:
    """``log_bracket`` with parameters that differ by row (a model with covariates predicting
    every customer at their own parameters): no pairs to share, one compiled pass.
    ``fallback(x, t_x, T, rows)`` recomputes flagged rows at those rows' parameters."""
    r, alpha, s, beta, x, t_x, T = (np.array(v, dtype=np.float64).ravel() for v in
                                    np.broadcast_arrays(r, alpha, s, beta, x, t_x, T))
    first, second = np.empty((x.size, 6)), np.empty((x.size, 6))
    _part_rows(r, alpha, s, beta, x, t_x, False, first)
    _part_rows(r, alpha, s, beta, x, T, True, second)
    rows = np.arange(x.size)
    out = np.empty((x.size, 6))
    _combine(first, rows, second, rows, out)
    slow = np.flatnonzero(out[:, 5])
    if slow.size:
        with np.errstate(invalid="ignore"):
            out[slow, :5] = fallback(x[slow], t_x[slow], T[slow], slow)
    return out[:, :5]


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _fused(first, at_first, second, at_second, per_x, at_x, weights):  # pragma: no cover - compiled
    """sum_i w_i (per_x value + bracket) and the same sums of the gradient columns, in one pass:
    no per-row arrays. Returns (sums[5], whether every row's series converged)."""
    sums = np.zeros(5)
    for i in range(at_first.size):
        f, g = at_first[i], at_second[i]
        if first[f, 5] != 0.0 or second[g, 5] != 0.0:
            return sums, False
        a0, b0 = first[f, 0], second[g, 0]
        bracket = max(a0, b0) + math.log1p(math.exp(-abs(a0 - b0)))
        w1 = math.exp(a0 - bracket)
        w2 = 1.0 - w1
        w = weights[i]
        c = at_x[i]
        sums[0] += w * (per_x[c, 0] + bracket)
        sums[1] += w * (per_x[c, 1] + w1 * first[f, 1] + w2 * second[g, 1])
        sums[2] += w * (w1 * first[f, 2] + w2 * second[g, 2])
        sums[3] += w * (w1 * first[f, 3] + w2 * second[g, 3])
        sums[4] += w * (w1 * first[f, 4] + w2 * second[g, 4])
    return sums, True


@numba.njit(cache=True, nogil=True, error_model="numpy")
def kernel(params, x_levels, at_x, x1, t1, at1, x2, t2, at2, t1_levels, at_t1, t2_levels, at_t2,
           weights):  # pragma: no cover - compiled
    """The weighted Pareto/NBD log-likelihood: [total, gradient in (r, alpha, s, beta), flag],
    flag 1.0 (and no total) when some row's series needs the fallback (then use ``log_bracket``
    and the per-row path). The x-only terms log G(r+x)/G(r) and psi(r+x) - psi(r) once per level;
    (x1, t1) and (x2, t2) are the distinct (x, t_x) and (x, T) pairs of ``bracket_pairs``, with
    their distinct t (``t1_levels``, ``t2_levels``) and each pair's index among them."""
    r, alpha, s, beta = params[0], params[1], params[2], params[3]
    per_x = np.empty((x_levels.size, 2))
    psi_r = digamma_scalar(r)
    for k in range(x_levels.size):
        per_x[k, 0] = log_gamma_ratio_scalar(r, x_levels[k])
        per_x[k, 1] = digamma_scalar(r + x_levels[k]) - psi_r
    first, second = np.empty((x1.size, 6)), np.empty((x2.size, 6))
    _part_levels(r, alpha, s, beta, x1, t1, t1_levels, at_t1, False, first)
    _part_levels(r, alpha, s, beta, x2, t2, t2_levels, at_t2, True, second)
    sums, ok = _fused(first, at1, second, at2, per_x, at_x, weights)
    out = np.zeros(6)
    if not ok:
        out[5] = 1.0
        return out
    total_weight = weights.sum()
    log_alpha, log_beta = math.log(alpha), math.log(beta)
    out[0] = sums[0] + total_weight * (r * log_alpha + s * log_beta)
    out[1] = sums[1] + total_weight * log_alpha
    out[2] = sums[2] + total_weight * r / alpha
    out[3] = sums[3] + total_weight * log_beta
    out[4] = sums[4] + total_weight * s / beta
    return out
