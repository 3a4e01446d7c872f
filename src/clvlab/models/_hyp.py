"""Gauss hypergeometric function for predictions, with a fallback where scipy's fails.

scipy.special.hyp2f1 returns NaN or inf for some arguments (e.g. large parameters with z near 1;
see field-notes.md). Those entries are recomputed with mpmath at high precision: slower, but only
for the entries that need it.
"""

from __future__ import annotations

import numpy as np
from scipy import special

__all__ = ["hyp2f1"]


def hyp2f1(a, b, c, z):
    a, b, c, z = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in (a, b, c, z)))
    values = np.array(special.hyp2f1(a, b, c, z), dtype=np.float64)
    bad = ~np.isfinite(values)
    if np.any(bad):
        import mpmath

        with mpmath.workdps(30):
            values[bad] = [float(mpmath.hyp2f1(ai, bi, ci, zi))
                           for ai, bi, ci, zi in zip(a[bad], b[bad], c[bad], z[bad])]
    return values if values.ndim else float(values)


SERIES_MAX_TERMS = 3000
_BLOCK = 16


def log_hyp2f1_1bc(b, c, z, derivatives: bool = True):
    """log 2F1(1, b; c; z) and its derivatives in b, c and z, for c > b > 0 and 0 <= z < 1.

    The series sum_n (b)_n / (c)_n z^n has positive terms that shrink by at least z, so it is
    summed without cancellation; the derivatives ride along (d/db of (b)_n is (b)_n times
    sum_{j<n} 1/(b+j)). Entries that need more than SERIES_MAX_TERMS terms (z very near 1 with
    c - b small) are evaluated with mpmath instead.

    Returns (log F, dlogF/db, dlogF/dc, dlogF/dz) as arrays (the derivatives are NaN for
    mpmath entries when ``derivatives`` is false, which saves mpmath's numerical differentiation).
    """
    b, c, z = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in (b, c, z)))
    shape = b.shape
    b, c, z = b.ravel(), c.ravel(), z.ravel()
    total = np.ones_like(z)      # sum of t_n, t_0 = 1
    d_b = np.zeros_like(z)       # sum of t_n * H_b(n), H_b(n) = sum_{j<n} 1/(b+j)
    d_c = np.zeros_like(z)       # sum of t_n * H_c(n)  (enters with a minus sign)
    d_z = np.zeros_like(z)       # sum of n * t_n / z, kept as sum of n * p_n with p_n = t_n / z
    # Terms are taken in blocks of _BLOCK (a cumulative product per block), so the Python loop
    # runs once per block, not once per term; rows leave as soon as their tail is negligible.
    p = b / c                    # p_1 = (b)_1 / (c)_1 z^0
    h_b, h_c = 1.0 / b, 1.0 / c  # H_b(1), H_c(1)
    active = np.arange(z.size)
    tail = 1.0 / np.maximum(1.0 - z, 1e-300) ** 2
    steps = np.arange(_BLOCK, dtype=np.float64)
    for first in range(1, SERIES_MAX_TERMS + 1, _BLOCK):
        bb, cc, zz = b[active, None], c[active, None], z[active, None]
        n = first + steps                                   # term indices of this block
        ratio = (bb + n) / (cc + n) * zz                    # p_{n+1} / p_n
        p_block = p[:, None] * np.cumprod(np.concatenate([np.ones((len(active), 1)), ratio[:, :-1]], axis=1), axis=1)
        inv_b, inv_c = 1.0 / (bb + n), 1.0 / (cc + n)
        hb_block = h_b[:, None] + np.cumsum(np.concatenate([np.zeros((len(active), 1)), inv_b[:, :-1]], axis=1), axis=1)
        hc_block = h_c[:, None] + np.cumsum(np.concatenate([np.zeros((len(active), 1)), inv_c[:, :-1]], axis=1), axis=1)
        term = p_block * zz
        total[active] += term.sum(axis=1)
        d_b[active] += (term * hb_block).sum(axis=1)
        d_c[active] += (term * hc_block).sum(axis=1)
        d_z[active] += (n * p_block).sum(axis=1)
        last = term[:, -1]
        # the rest of the series is below term * n / (1 - z)^2 (ratios are below z)
        going = last * (n[-1] + 1) * tail[active] > 1e-17 * total[active]
        p = p_block[:, -1] * ratio[:, -1]
        h_b, h_c = hb_block[:, -1] + inv_b[:, -1], hc_block[:, -1] + inv_c[:, -1]
        if not np.all(going):
            active, p, h_b, h_c = active[going], p[going], h_b[going], h_c[going]
            if active.size == 0:
                break
    log_f = np.log(total)
    grad_b, grad_c, grad_z = d_b / total, -d_c / total, d_z / total
    if active.size:  # did not converge within the term budget
        log_f[active], grad_b[active], grad_c[active], grad_z[active] = _mpmath_log_hyp(
            b[active], c[active], z[active], derivatives)
    return tuple(v.reshape(shape) for v in (log_f, grad_b, grad_c, grad_z))


def _mpmath_log_hyp(b, c, z, derivatives: bool):
    import mpmath

    out = np.full((4, b.size), np.nan)
    with mpmath.workdps(30):
        for i, (bi, ci, zi) in enumerate(zip(b, c, z)):
            f = mpmath.hyp2f1(1, bi, ci, zi)
            out[0, i] = float(mpmath.log(f))
            if not derivatives:
                continue
            out[1, i] = float(mpmath.diff(lambda v: mpmath.hyp2f1(1, v, ci, zi), bi) / f)
            out[2, i] = float(mpmath.diff(lambda v: mpmath.hyp2f1(1, bi, v, zi), ci) / f)
            out[3, i] = float(bi / ci * mpmath.hyp2f1(2, bi + 1, ci + 1, zi) / f)
    return out
