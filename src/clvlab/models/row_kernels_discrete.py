"""Per-row log-likelihoods of the models of discrete periods, BG/BB and the shifted-beta-geometric
(sBG), each row at its own parameters, with the exact gradient, in compiled loops (numba,
cached on disk). The calling conventions are those of ``row_kernels_continuous``.

Their data are whole numbers of periods, so every Beta-function ratio in the likelihoods
(field-notes.md) is a finite product and every digamma difference a finite sum:

    B(a + u, b + v) / B(a, b) = prod_{i<u} (a+i)/(a+b+i) * prod_{i<v} (b+i)/(a+b+u+i),
    psi(b + v) - psi(b) = sum_{i<v} 1/(b+i),

which a row evaluates in a few divisions per period, against the log-gamma and digamma
functions (hundreds of nanoseconds each) the plain kernels call per term. With a continuous
covariate every row has its own parameters, so nothing is shared between rows and this is what
makes a million of them affordable. Products are of factors below 1, renormalised before they
could underflow; a row where the sum still falls below 1e-280 (absurd parameters) or whose data
are not whole numbers is flagged for the Python fallback (the plain model's ``_loglik``).

BG/BB: with P(m) = B(alpha+x, beta+m-x)/B(alpha, beta) and D(m) = B(gamma, delta+m)/B(gamma,
delta), L = P(n) D(n) + sum_{m=t_x}^{n-1} P(m) gamma/(gamma+delta+m) D(m) (alive through n, or
died just before opportunity m + 1), summed as m runs from 0 to n. sBG: a churned customer's
B(alpha+1, beta+t-1)/B(alpha, beta), an active one's B(alpha, beta+t)/B(alpha, beta); durations
beyond ``RUNNING_UP_TO`` periods use the plain model's special functions.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from clvlab.models._special import digamma_scalar, log_gamma_ratio_scalar
from clvlab.models.covariate_kernel import add_chained, add_compensated, group_params
from clvlab.models.row_kernels_continuous import RUNNING_UP_TO

__all__ = ["bg_bb_rows", "bg_bb_total", "sbg_rows", "sbg_total"]

_RENORMALISE_BELOW = 1e-100
_TINY = 1e-280

_jit = numba.njit(cache=True, nogil=True, error_model="numpy")
# the per-row helpers inlined into their loops (numba IR inlining): the calls, with their array
# arguments, cost as much as the arithmetic (Pareto/NBD's parts: 0.16 s against 0.10 s a 10^6)
_inline = numba.njit(cache=True, nogil=True, error_model="numpy", inline="always")


# --- BG/BB -------------------------------------------------------------------------------------
@_inline
def _bg_bb_row(alpha, beta, gamma, delta, x, t_x, n):  # pragma: no cover - compiled
    """One row's (log-likelihood, flag (1: not evaluated here), gradient in (alpha, beta, gamma,
    delta))."""
    whole = x == math.floor(x) and t_x == math.floor(t_x) and n == math.floor(n)
    if not (whole and 0.0 <= x <= t_x <= n):
        return 0.0, 1.0, 0.0, 0.0, 0.0, 0.0
    xi, ti, ni = int(x), int(t_x), int(n)
    ab, gd = alpha + beta, gamma + delta
    p, p_log, q, q_log = 1.0, 0.0, 1.0, 0.0  # P(m) = p e^p_log, D(m) = q e^q_log
    h_a = h_b = h_ab = h_d = h_gd = 0.0       # sum_{i<.} 1/(alpha+i), ... at m
    ref, scale = 0.0, 1.0                     # terms are summed as multiples of e^ref
    total = s_a = s_b = s_g = s_d = 0.0
    for m in range(ni + 1):
        inv_ab, inv_gd = 1.0 / (ab + m), 1.0 / (gd + m)
        if m >= ti:
            if m == ti:
                ref, scale = p_log + q_log, 1.0
            if m < ni:  # died just before opportunity m + 1
                term = p * q * gamma * inv_gd * scale
                g_g, g_d = 1.0 / gamma - h_gd - inv_gd, h_d - h_gd - inv_gd
            else:       # alive through n
                term = p * q * scale
                g_g, g_d = -h_gd, h_d - h_gd
            total += term
            s_a += term * (h_a - h_ab)
            s_b += term * (h_b - h_ab)
            s_g += term * g_g
            s_d += term * g_d
        if m < xi:
            p *= (alpha + m) * inv_ab
            h_a += 1.0 / (alpha + m)
        else:
            p *= (beta + m - xi) * inv_ab
            h_b += 1.0 / (beta + m - xi)
        h_ab += inv_ab
        q *= (delta + m) * inv_gd
        h_d += 1.0 / (delta + m)
        h_gd += inv_gd
        if p < _RENORMALISE_BELOW or q < _RENORMALISE_BELOW:
            p_log += math.log(p)
            q_log += math.log(q)
            p = q = 1.0
            if m >= ti:
                scale = math.exp(p_log + q_log - ref)
    if not (total > _TINY and total < math.inf):
        return 0.0, 1.0, 0.0, 0.0, 0.0, 0.0
    return math.log(total) + ref, 0.0, s_a / total, s_b / total, s_g / total, s_d / total


@_jit
def bg_bb_rows(own, group, x, t_x, n, out):  # pragma: no cover - compiled
    """out[i] = (log-likelihood, gradient in (alpha, beta, gamma, delta), flag) of row i."""
    for i in range(x.size):
        g = group[i]
        out[i, 0], out[i, 5], out[i, 1], out[i, 2], out[i, 3], out[i, 4] = _bg_bb_row(
            own[g, 0], own[g, 1], own[g, 2], own[g, 3], x[i], t_x[i], n[i])


@_jit
def bg_bb_total(params, zp, proc, sign, group, x, t_x, n, weights):  # pragma: no cover - compiled
    """[sum w loglik, its gradient in (params), flag]: BG/BB over covariate groups (rows in
    group order: each group's gradient summed, then stored)."""
    own, _ = group_params(params, zp, proc, sign)
    out = np.zeros(params.size + 2)
    gradient = np.zeros(own.shape)
    total = lost = s0 = s1 = s2 = s3 = 0.0
    g = group[0] if x.size else 0
    for i in range(x.size):
        if group[i] != g:
            gradient[g, 0], gradient[g, 1], gradient[g, 2], gradient[g, 3] = s0, s1, s2, s3
            s0 = s1 = s2 = s3 = 0.0
            g = group[i]
        w = weights[i]
        value, flag, d0, d1, d2, d3 = _bg_bb_row(own[g, 0], own[g, 1], own[g, 2], own[g, 3],
                                                 x[i], t_x[i], n[i])
        if flag != 0.0:
            out[:] = 0.0
            out[params.size + 1] = 1.0
            return out
        total, lost = add_compensated(total, lost, w * value)
        s0 += w * d0
        s1 += w * d1
        s2 += w * d2
        s3 += w * d3
    if x.size:
        gradient[g, 0], gradient[g, 1], gradient[g, 2], gradient[g, 3] = s0, s1, s2, s3
    out[0] = total
    add_chained(out, gradient, own, params, zp, proc, sign)
    return out


# --- shifted-beta-geometric --------------------------------------------------------------------
@_inline
def _sbg_row(alpha, beta, t, churned):  # pragma: no cover - compiled
    """One customer's log B(alpha+da, beta+db)/B(alpha, beta) (da, db = 1, t-1 if churned, else
    0, t) and its gradient in (alpha, beta) (``shifted_beta_geo._row``)."""
    da = 1.0 if churned > 0 else 0.0
    db = t - 1.0 if churned > 0 else t
    ab = alpha + beta
    if 0.0 <= db <= RUNNING_UP_TO and db == math.floor(db):
        ratio = alpha / ab if da > 0 else 1.0
        h_ab = 1.0 / ab if da > 0 else 0.0
        h_b = 0.0
        for i in range(int(db)):
            inv = 1.0 / (ab + da + i)
            ratio *= (beta + i) * inv
            h_ab += inv
            h_b += 1.0 / (beta + i)
        if ratio > _TINY:
            return math.log(ratio), (1.0 / alpha if da > 0 else 0.0) - h_ab, h_b - h_ab
    psi_ab = digamma_scalar(ab)
    psi_all = digamma_scalar(ab + da + db)
    return (log_gamma_ratio_scalar(alpha, da) + log_gamma_ratio_scalar(beta, db)
            - log_gamma_ratio_scalar(ab, da + db),
            (1.0 / alpha if da > 0 else 0.0) + psi_ab - psi_all,
            digamma_scalar(beta + db) - digamma_scalar(beta) + psi_ab - psi_all)


@_jit
def sbg_rows(own, group, t, churned, out):  # pragma: no cover - compiled
    """out[i] = (log-likelihood, gradient in (alpha, beta), flag 0) of row i."""
    for i in range(t.size):
        g = group[i]
        out[i, 0], out[i, 1], out[i, 2] = _sbg_row(own[g, 0], own[g, 1], t[i], churned[i])
        out[i, 3] = 0.0


@_jit
def sbg_total(params, zp, proc, sign, group, t, churned, weights):  # pragma: no cover - compiled
    """[sum w loglik, its gradient in (params), 0]: the sBG over covariate groups (rows in
    group order: each group's gradient summed, then stored)."""
    own, _ = group_params(params, zp, proc, sign)
    out = np.zeros(params.size + 2)
    gradient = np.zeros(own.shape)
    total = lost = s0 = s1 = 0.0
    g = group[0] if t.size else 0
    for i in range(t.size):
        if group[i] != g:
            gradient[g, 0], gradient[g, 1] = s0, s1
            s0 = s1 = 0.0
            g = group[i]
        w = weights[i]
        value, d0, d1 = _sbg_row(own[g, 0], own[g, 1], t[i], churned[i])
        total, lost = add_compensated(total, lost, w * value)
        s0 += w * d0
        s1 += w * d1
    if t.size:
        gradient[g, 0], gradient[g, 1] = s0, s1
    out[0] = total
    add_chained(out, gradient, own, params, zp, proc, sign)
    return out
