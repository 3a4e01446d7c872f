"""Gauss hypergeometric function for predictions, with a fallback where scipy's fails.

scipy.special.hyp2f1 returns NaN or inf for some arguments (e.g. large parameters with z near 1;
see field-notes.md). Those entries are recomputed with mpmath at high precision: slower, but only
for the entries that need it.
"""

from __future__ import annotations

import numba
import numpy as np
from scipy import special

__all__ = ["hyp2f1", "log_hyp2f1_1bc", "series_1bc"]


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


SERIES_MAX_TERMS = 200_000  # compiled: z = 0.9995 with c - b = 0.2 needs ~80,000 terms, ~0.3 ms


@numba.njit(cache=True, nogil=True, error_model="numpy")
def series_1bc(b, c, z):  # pragma: no cover - compiled; tested through log_hyp2f1_1bc
    """One row: log 2F1(1, b; c; z), its derivatives in b, c, z, and whether the series converged.

    Sums t_n = (b)_n / (c)_n z^n with sum t_n H_b(n), sum t_n H_c(n) (H_b(n) = sum_{j<n} 1/(b+j))
    and sum n t_n / z riding along. A compiled loop stops as soon as the tail is negligible: the
    rest of the series after term n is below t_n (n+1) / (1-z)^2 (its ratios are below z).
    """
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
        p *= (b + n) / (c + n) * z
        h_b += 1.0 / (b + n)
        h_c += 1.0 / (c + n)
    return np.log(total), d_b / total, -d_c / total, d_z / total, converged


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _series_rows(b, c, z, out):  # pragma: no cover - compiled
    for i in range(b.size):
        log_f, g_b, g_c, g_z, converged = series_1bc(b[i], c[i], z[i])
        out[i, 0], out[i, 1], out[i, 2], out[i, 3] = log_f, g_b, g_c, g_z
        out[i, 4] = 0.0 if converged else 1.0


def log_hyp2f1_1bc(b, c, z, derivatives: bool = True):
    """log 2F1(1, b; c; z) and its derivatives in b, c and z, for c > b > 0 and 0 <= z < 1.

    The series sum_n (b)_n / (c)_n z^n has positive terms that shrink by at least z, so it is
    summed without cancellation; the derivatives ride along (d/db of (b)_n is (b)_n times
    sum_{j<n} 1/(b+j)). The sum is a compiled loop (numba) that stops each row as soon as its
    tail is negligible. Entries that need more than SERIES_MAX_TERMS terms (z very near 1 with
    c - b small) are evaluated with mpmath instead.

    Returns (log F, dlogF/db, dlogF/dc, dlogF/dz) as arrays (the derivatives are NaN for
    mpmath entries when ``derivatives`` is false, which saves mpmath's numerical differentiation).
    """
    b, c, z = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in (b, c, z)))
    shape = b.shape
    # copies: numba warns on the read-only views that broadcast_arrays returns
    b, c, z = (np.array(v, dtype=np.float64).ravel() for v in (b, c, z))
    rows = np.empty((z.size, 5))
    _series_rows(b, c, z, rows)
    log_f, grad_b, grad_c, grad_z = (rows[:, j].copy() for j in range(4))
    slow = np.flatnonzero(rows[:, 4])
    if slow.size:  # did not converge within the term budget
        log_f[slow], grad_b[slow], grad_c[slow], grad_z[slow] = _mpmath_log_hyp(
            b[slow], c[slow], z[slow], derivatives)
    return tuple(v.reshape(shape) for v in (log_f, grad_b, grad_c, grad_z))


def _mpmath_log_hyp(b, c, z, derivatives: bool):
    import mpmath

    out = np.full((4, b.size), np.nan)
    with mpmath.workdps(30):
        for i, (bi, ci, zi) in enumerate(zip(b, c, z)):
            try:
                f = mpmath.hyp2f1(1, bi, ci, zi)
            except ZeroDivisionError:  # z rounded to 1 with b = c in double: no finite answer
                continue               # (NaN, which callers treat as an impossible point)
            out[0, i] = float(mpmath.log(f))
            if not derivatives:
                continue
            out[1, i] = float(mpmath.diff(lambda v: mpmath.hyp2f1(1, v, ci, zi), bi) / f)
            out[2, i] = float(mpmath.diff(lambda v: mpmath.hyp2f1(1, bi, v, zi), ci) / f)
            out[3, i] = float(bi / ci * mpmath.hyp2f1(2, bi + 1, ci + 1, zi) / f)
    return out
