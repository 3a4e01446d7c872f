"""The weighted log-likelihood along covariate paths as one compiled function, for the sampler.

``clvlab.bayes`` samples a model through a PyTensor Op whose numba implementation calls a
kernel ``kernel(params, *rows) -> [total, gradient..., flag]`` (``inference.likelihood_op``).
This is that kernel for the time-varying models: the same chain rule as
``time_varying.PathLikelihood.evaluate`` (own parameters, then the coefficients through the
segments' covariates and, for the BG/NBD, its static dropout links), written in numba around the
models' per-customer kernels. The rows are the arrays of :func:`kernel_rows`.
"""

from __future__ import annotations

import numba
import numpy as np

from clvlab.models.tv_bgnbd import bgnbd_tv_fill
from clvlab.models.tv_pareto_kernel import pnbd_tv_loglik

__all__ = ["path_total", "kernel_rows"]


@numba.njit(cache=True, nogil=True)
def path_total(params, model_code, x, t_x, T, w, offsets, seg_end, scaled, counts, map_p, map_d,
               static_j, static_sign):
    """[total, d total / d params..., flag]; model_code 0 Pareto/NBD, 1 BG/NBD."""
    k = 4
    m = len(params) - k
    n = len(x)
    n_seg = len(seg_end)
    coefficients = np.ascontiguousarray(params[k:])
    g_p = map_p @ coefficients if m > 0 else np.zeros(map_p.shape[0])
    g_d = map_d @ coefficients if m > 0 else np.zeros(map_d.shape[0])
    eta_p = scaled @ g_p if scaled.shape[1] > 0 else np.zeros(n_seg)
    eta_d = scaled @ g_d if scaled.shape[1] > 0 else np.zeros(n_seg)
    own = np.empty((k, n))
    for j in range(k):
        own[j, :] = params[j]
    first = np.empty((n, scaled.shape[1]))
    for i in range(n):
        first[i, :] = scaled[offsets[i], :]
    predictor = first @ g_d if scaled.shape[1] > 0 else np.zeros(n)
    for q in range(len(static_j)):
        for i in range(n):
            own[static_j[q], i] *= np.exp(static_sign[q] * predictor[i])
    if model_code == 0:
        ll, d_own, d_p, d_d = pnbd_tv_loglik(own[0].copy(), own[1].copy(), own[2].copy(),
                                             own[3].copy(), x, t_x, T, offsets, seg_end, eta_p,
                                             eta_d, counts)
    else:
        ll, d_own, d_p = np.empty(n), np.empty((n, k)), np.empty(n_seg)
        code, _ = bgnbd_tv_fill(own[0].copy(), own[1].copy(), own[2].copy(), own[3].copy(), x,
                                t_x, T, offsets, seg_end, eta_p, counts, ll, d_own, d_p)
        if code != 0:
            ll[:] = np.nan
        d_d = np.zeros(n_seg)
    out = np.zeros(len(params) + 2)
    flag = 0.0
    w_seg = np.empty(n_seg)
    for i in range(n):
        w_seg[offsets[i]:offsets[i + 1]] = w[i]
        value = ll[i]
        if not np.isfinite(value):
            flag = 1.0
        out[0] += w[i] * value
        for j in range(k):
            out[1 + j] += w[i] * d_own[i, j] * own[j, i] / params[j]
    if m > 0 and scaled.shape[1] > 0:
        through_p = scaled.T @ (w_seg * d_p)
        through_d = scaled.T @ (w_seg * d_d)
        g = map_p.T @ through_p + map_d.T @ through_d
        for q in range(len(static_j)):
            j = static_j[q]
            weight = np.empty(n)
            for i in range(n):
                weight[i] = w[i] * static_sign[q] * d_own[i, j] * own[j, i]
            g += map_d.T @ (first.T @ weight)
        out[1 + k:1 + k + m] = g
    out[-1] = flag
    return out


def kernel_rows(likelihood) -> tuple:
    """The rows ``path_total`` reads, from a ``time_varying.PathLikelihood``."""
    seg = likelihood.segments
    m = None
    for matrix in likelihood.maps.values():
        m = matrix.shape[1]
    encoded = likelihood.scaled.shape[1]
    m = m if m is not None else 0
    zero = np.zeros((encoded, m))
    map_p = np.ascontiguousarray(likelihood.maps.get("purchase", zero), dtype=np.float64)
    map_d = np.ascontiguousarray(likelihood.maps.get("dropout", zero), dtype=np.float64)
    code = 0 if likelihood.model_name == "ParetoNBD" else 1
    static_j = np.array([j for j, _ in likelihood.static_links], dtype=np.int64)
    static_sign = np.array([s for _, s in likelihood.static_links], dtype=np.float64)
    return (np.int64(code), likelihood.x, likelihood.t_x, likelihood.T, likelihood.weights,
            seg.offsets, seg.seg_end, np.ascontiguousarray(likelihood.scaled), seg.counts,
            map_p, map_d, static_j, static_sign)
