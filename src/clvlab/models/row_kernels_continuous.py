"""Per-row log-likelihoods of BG/NBD, MBG/NBD and Gamma-Gamma, each row at its own parameters,
with the exact gradient, in compiled loops (numba, cached on disk); Pareto/NBD's are in
``row_kernels_pareto``.

The formulas are the plain models' (``bg_nbd._weighted_total``, ``gamma_gamma._row``),
evaluated where each row's covariate group has its own parameters
(``own[g]``, see ``covariate_kernel``). What keeps a million groups cheap is that the costly
terms are computed once per *level*, a distinct value of the data they read together with the
group, where the parameters they depend on vary by group, and without the group where they do
not (``clvlab.models.row_kernels`` builds the levels):

- BG/NBD: the r terms (log G(r+x)/G(r), psi(r+x) - psi(r)) per x; the dropout terms (Beta
  ratios of a, b and c = x + first_chance) per (group, x) when a or b has covariates. For whole
  c up to ``RUNNING_UP_TO`` those are running products and harmonic sums (B(a, b+c)/B(a, b) =
  prod_{i<c} (b+i)/(a+b+i), psi(b+c) - psi(b) = sum_{i<c} 1/(b+i)): a few divisions where the
  log-gamma and digamma functions cost hundreds of nanoseconds;
- Gamma-Gamma: the p, q terms (log G(px+q)/G(px), digammas) per x.

Every kernel comes twice: ``*_rows(own, layout..., out)`` writes each row's log-likelihood, its
gradient in the row's own parameters and a flag (1: the row needs the Python fallback, as the
plain model's kernel flags it), and ``*_total(params, zp, proc, sign, layout..., weights)``
returns [sum of weighted log-likelihoods, gradient in (params), flag] in one pass, the calling
convention of ``BaseModel._total_kernel``.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from clvlab.models._special import digamma_scalar, log_gamma_ratio_scalar
from clvlab.models.covariate_kernel import add_chained, add_compensated, group_params, log_params

__all__ = ["bg_nbd_rows", "bg_nbd_total", "gamma_gamma_rows", "gamma_gamma_total",
           "RUNNING_UP_TO"]

#: whole counts up to this use running products and sums instead of log-gamma and digamma
RUNNING_UP_TO = 64
_TINY = 1e-250  # a running product below this may lose digits to underflow: special functions


_jit = numba.njit(cache=True, nogil=True, error_model="numpy")
# the per-row helpers inlined into their loops (numba IR inlining): the calls, with their array
# arguments, cost as much as the arithmetic (Pareto/NBD's parts: 0.16 s against 0.10 s a 10^6)
_inline = numba.njit(cache=True, nogil=True, error_model="numpy", inline="always")


# --- BG/NBD and MBG/NBD ------------------------------------------------------------------------
@_inline
def _beta_terms(a, b, c, out):  # pragma: no cover - compiled
    """out[0:6]: log B(a, b+c)/B(a, b), log B(a+1, b+c-1)/B(a, b) (-inf at c = 0), d/da of
    both, d/db of both (``bg_nbd._weighted_total``'s columns 0, 1, 4, 5, 6, 7)."""
    if c == 0.0:
        out[0], out[1], out[2], out[3], out[4], out[5] = 0.0, -math.inf, 0.0, 1.0 / a, 0.0, 0.0
        return
    if c <= RUNNING_UP_TO and c == math.floor(c) and a + b < 1e100:
        ratio, h_b, h_ab = 1.0, 0.0, 0.0
        for i in range(int(c)):  # one division: 1/(b+i) and 1/(a+b+i) from their product
            inverse = 1.0 / ((b + i) * (a + b + i))
            ratio *= (b + i) * inverse * (b + i)
            h_b += (a + b + i) * inverse
            h_ab += (b + i) * inverse
        last = 1.0 / (b + c - 1.0)
        dead = a * ratio * last  # B(a+1, b+c-1) = B(a, b+c) a / (b+c-1)
        if ratio > _TINY and dead > _TINY:
            out[0] = math.log(ratio)
            out[1] = math.log(dead)
            out[2] = -h_ab
            out[3] = 1.0 / a - h_ab
            out[4] = h_b - h_ab
            out[5] = h_b - last - h_ab
            return
    psi_ab, psi_b = digamma_scalar(a + b), digamma_scalar(b)
    psi_abc = digamma_scalar(a + b + c)
    common = log_gamma_ratio_scalar(a + b, c)
    out[0] = log_gamma_ratio_scalar(b, c) - common
    out[1] = math.log(a) + log_gamma_ratio_scalar(b, c - 1.0) - common
    out[2] = psi_ab - psi_abc
    out[3] = 1.0 / a + psi_ab - psi_abc
    out[4] = digamma_scalar(b + c) - psi_abc - psi_b + psi_ab
    out[5] = digamma_scalar(b + c - 1.0) - psi_abc - psi_b + psi_ab


@_jit
def _bg_tables(own, first_chance, xr, gr, xab, gab):  # pragma: no cover - compiled
    """The r terms per x level and the dropout terms per (group, x) level."""
    per_r = np.empty((xr.size, 2))
    for level in range(xr.size):
        r = own[gr[level], 0]
        per_r[level, 0] = log_gamma_ratio_scalar(r, xr[level])
        per_r[level, 1] = digamma_scalar(r + xr[level]) - digamma_scalar(r)
    per_ab = np.empty((xab.size, 6))
    for level in range(xab.size):
        g = gab[level]
        _beta_terms(own[g, 2], own[g, 3], xab[level] + first_chance, per_ab[level])
    return per_r, per_ab


@_inline
def _bg_row(r, alpha, log_alpha, r_alpha, r_terms, ab, x, t_x, T):  # pragma: no cover
    """One row's log-likelihood and its gradient in (r, alpha, a, b) (``bg_nbd._rows``);
    ``r_alpha`` is r / alpha, once per group."""
    m = r + x
    log_T = math.log(alpha + T)
    alive = ab[0] - m * log_T
    if ab[1] == -math.inf:  # no chance to drop out: the alive term alone (weights 1 and 0)
        return (r_terms[0] + r * log_alpha + alive, r_terms[1] + log_alpha - log_T,
                r_alpha - m / (alpha + T), ab[2], ab[4])
    log_t = math.log(alpha + t_x)
    dead = ab[1] - m * log_t
    log_sum = max(alive, dead) + math.log1p(math.exp(-abs(alive - dead)))
    w_alive = math.exp(alive - log_sum)
    w_dead = 1.0 - w_alive
    return (r_terms[0] + r * log_alpha + log_sum,
            r_terms[1] + log_alpha - w_alive * log_T - w_dead * log_t,
            r_alpha - m * (w_alive / (alpha + T) + w_dead / (alpha + t_x)),
            w_alive * ab[2] + w_dead * ab[3], w_alive * ab[4] + w_dead * ab[5])


@_jit
def bg_nbd_rows(own, group, first_chance, xr, gr, at_r, xab, gab, at_ab, x, t_x, T,
                out):  # pragma: no cover - compiled
    """out[i] = (log-likelihood, gradient in (r, alpha, a, b), flag 0) of row i."""
    log_own = log_params(own)
    per_r, per_ab = _bg_tables(own, first_chance[0], xr, gr, xab, gab)
    for i in range(x.size):
        g = group[i]
        out[i, 0], out[i, 1], out[i, 2], out[i, 3], out[i, 4] = _bg_row(
            own[g, 0], own[g, 1], log_own[g, 1], own[g, 0] / own[g, 1], per_r[at_r[i]],
            per_ab[at_ab[i]], x[i], t_x[i], T[i])
        out[i, 5] = 0.0


@_jit
def bg_nbd_total(params, zp, proc, sign, group, first_chance, xr, gr, at_r, xab, gab, at_ab,
                 x, t_x, T, weights):  # pragma: no cover - compiled
    """[sum w loglik, its gradient in (params), 0]: the BG/NBD kernel over covariate groups.
    The rows come in group order: each group's gradient is summed in registers, then stored."""
    own, log_own = group_params(params, zp, proc, sign)
    per_r, per_ab = _bg_tables(own, first_chance[0], xr, gr, xab, gab)
    out = np.zeros(params.size + 2)
    gradient = np.zeros(own.shape)
    total = lost = s0 = s1 = s2 = s3 = 0.0
    g = group[0] if x.size else 0
    r, alpha, log_alpha, r_alpha = own[g, 0], own[g, 1], log_own[g, 1], own[g, 0] / own[g, 1]
    for i in range(x.size):
        if group[i] != g:
            gradient[g, 0], gradient[g, 1], gradient[g, 2], gradient[g, 3] = s0, s1, s2, s3
            s0 = s1 = s2 = s3 = 0.0
            g = group[i]
            r, alpha, log_alpha, r_alpha = own[g, 0], own[g, 1], log_own[g, 1], own[g, 0] / own[g, 1]
        w = weights[i]
        value, d0, d1, d2, d3 = _bg_row(r, alpha, log_alpha, r_alpha, per_r[at_r[i]],
                                        per_ab[at_ab[i]], x[i], t_x[i], T[i])
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


# --- Gamma-Gamma -------------------------------------------------------------------------------
@_jit
def _spend_tables(own, xl, gl):  # pragma: no cover - compiled
    """Per (p, q, x) level: log G(px+q)/G(px) - log G(q), psi(px+q) - psi(px), psi(px+q) - psi(q)."""
    per_x = np.empty((xl.size, 3))
    for level in range(xl.size):
        p, q = own[gl[level], 0], own[gl[level], 1]
        px = p * xl[level]
        psi_pxq = digamma_scalar(px + q)
        per_x[level, 0] = log_gamma_ratio_scalar(px, q) - math.lgamma(q)
        per_x[level, 1] = psi_pxq - digamma_scalar(px)
        per_x[level, 2] = psi_pxq - digamma_scalar(q)
    return per_x


@_inline
def _spend_row(p, q, v, log_v, terms, x, z):  # pragma: no cover - compiled
    """One customer's log f(z | x) and its gradient in (p, q, v) (``gamma_gamma._row``)."""
    px = p * x
    log_vxz = math.log(v + x * z)
    shrink = math.log1p(v / (x * z))
    return (terms[0] + q * log_v - math.log(z) - q * log_vxz - px * shrink,
            x * (terms[1] - shrink), terms[2] + log_v - log_vxz, q / v - (px + q) / (v + x * z))


@_jit
def gamma_gamma_rows(own, group, xl, gl, at_l, x, z, out):  # pragma: no cover - compiled
    """out[i] = (log f(z | x), gradient in (p, q, v), flag 0) of row i."""
    log_own = log_params(own)
    per_x = _spend_tables(own, xl, gl)
    for i in range(x.size):
        g = group[i]
        out[i, 0], out[i, 1], out[i, 2], out[i, 3] = _spend_row(
            own[g, 0], own[g, 1], own[g, 2], log_own[g, 2], per_x[at_l[i]], x[i], z[i])
        out[i, 4] = 0.0


@_jit
def gamma_gamma_total(params, zp, proc, sign, group, xl, gl, at_l, x, z,
                      weights):  # pragma: no cover - compiled
    """[sum w log f, its gradient in (params), 0]: the Gamma-Gamma kernel over covariate groups
    (rows in group order: each group's gradient summed, then stored)."""
    own, log_own = group_params(params, zp, proc, sign)
    per_x = _spend_tables(own, xl, gl)
    out = np.zeros(params.size + 2)
    gradient = np.zeros(own.shape)
    total = lost = s0 = s1 = s2 = 0.0
    g = group[0] if x.size else 0
    for i in range(x.size):
        if group[i] != g:
            gradient[g, 0], gradient[g, 1], gradient[g, 2] = s0, s1, s2
            s0 = s1 = s2 = 0.0
            g = group[i]
        w = weights[i]
        value, d0, d1, d2 = _spend_row(own[g, 0], own[g, 1], own[g, 2], log_own[g, 2],
                                       per_x[at_l[i]], x[i], z[i])
        total, lost = add_compensated(total, lost, w * value)
        s0 += w * d0
        s1 += w * d1
        s2 += w * d2
    if x.size:
        gradient[g, 0], gradient[g, 1], gradient[g, 2] = s0, s1, s2
    out[0] = total
    add_chained(out, gradient, own, params, zp, proc, sign)
    return out
