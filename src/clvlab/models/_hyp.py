"""Gauss hypergeometric function for predictions, with fallbacks where scipy's fails.

scipy.special.hyp2f1 returns NaN or inf for some arguments (e.g. large parameters with z near 1;
see field-notes.md). Those entries are recomputed with mpmath at high precision while the
parameters are moderate. mpmath itself does not return (minutes and more) once parameters reach
about 1e4, which degenerate fits produce (no heterogeneity: r and alpha grow without bound), so
beyond ``MPMATH_MAX_PARAMETER`` the entries are integrals over a beta distribution evaluated by
double-exponential quadrature on its quantile scale (:func:`log_beta_expectation`): bounded
time, 1e-10 relative error or better where measured, and no overflow because it works in logs.
"""

from __future__ import annotations

import numba
import numpy as np
from scipy import special

from clvlab.core.errors import warn

__all__ = ["hyp2f1", "log_hyp2f1_1bc", "series_1bc"]


#: mpmath's 2F1 was measured to return within 0.05 s for parameters up to 1e3 and not within
#: minutes at 1e4 (z near 1); beyond this the quadrature is used instead
MPMATH_MAX_PARAMETER = 1e3
MPMATH_MAX_PARAMETER_1BC = 1e4  # 2F1(1, b; c; z) with z near 1, the only rows that reach mpmath


def hyp2f1(a, b, c, z):
    a, b, c, z = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in (a, b, c, z)))
    values = np.array(special.hyp2f1(a, b, c, z), dtype=np.float64)
    bad = ~np.isfinite(values)
    if np.any(bad):
        import mpmath

        moderate = bad & (np.maximum(np.maximum(np.abs(a), np.abs(b)), np.abs(c))
                          <= MPMATH_MAX_PARAMETER)
        with mpmath.workdps(30):
            values[moderate] = [float(mpmath.hyp2f1(ai, bi, ci, zi)) for ai, bi, ci, zi
                                in zip(a[moderate], b[moderate], c[moderate], z[moderate])]
    return values if values.ndim else float(values)


def _tanh_sinh_nodes(step: float = 1 / 24, reach: float = 4.2):
    """Double-exponential nodes on (0, 1): u, 1 - u (exact in the upper half) and weights.

    Dense near both ends, where beta quantiles carry singular behaviour; about 200 nodes give
    1e-10 relative error on the smooth integrands used here."""
    k = np.arange(-reach / step, reach / step + 1) * step
    x = 0.5 * np.pi * np.sinh(k)
    lower = 1.0 / (1.0 + np.exp(2.0 * x))      # 1 - u, exact for u near 1
    upper = 1.0 / (1.0 + np.exp(-2.0 * x))     # u, exact for u near 0
    weights = step * 0.5 * np.pi * np.cosh(k) / (2.0 * np.cosh(x) ** 2)
    keep = (lower > 0) & (upper > 0) & (weights > 0)
    return upper[keep], lower[keep], weights[keep]


_NODES = _tanh_sinh_nodes()


def beta_quantiles(a, b) -> np.ndarray:
    """Quantiles of Beta(a, b) at the quadrature nodes: rows of a, b by columns of nodes."""
    u, one_minus_u, _ = _NODES
    a = np.asarray(a, dtype=np.float64)[..., None]
    b = np.asarray(b, dtype=np.float64)[..., None]
    low = u <= 0.5
    p = np.empty(np.broadcast_shapes(a.shape, b.shape)[:-1] + (u.size,))
    with np.errstate(all="ignore"):
        p[..., low] = special.betaincinv(a, b, u[low])
        p[..., ~low] = special.betainccinv(a, b, one_minus_u[~low])
    # scipy returns NaN where a quantile underflows (a or b around 1e-11 put almost all mass
    # within 1e-300 of an end): that end is the quantile, to double precision
    p[..., low] = np.where(np.isnan(p[..., low]), 0.0, p[..., low])
    p[..., ~low] = np.where(np.isnan(p[..., ~low]), 1.0, p[..., ~low])
    return p


def log_beta_expectation(log_f, a, b) -> np.ndarray:
    """log E[f(P)] for P ~ Beta(a, b), by quadrature on the quantile scale.

    ``log_f(p)`` gets an array of quantiles (rows x nodes) and returns log f there. Bounded
    work for any a, b > 0, including very large ones (the distribution is then narrow, and the
    quantile scale follows it)."""
    _, _, weights = _NODES
    p = beta_quantiles(a, b)
    with np.errstate(all="ignore"):
        terms = log_f(p) + np.log(weights)
    return special.logsumexp(terms, axis=-1) - np.log(weights.sum())


def log_hyp2f1_1bc_quadrature(b, c, z) -> np.ndarray:
    """log 2F1(1, b; c; z) for c > b > 0 and z < 1, from Euler's integral:
    2F1(1, b; c; z) = E[1 / (1 - z P)] with P ~ Beta(b, c - b). NaN where c > b > 0 fails.

    Measured against mpmath (40 digits): under 1e-12 relative for b, c from 0.2 to 1e3 and z up
    to 0.99999 (2e-10 at b = 0.5, c = 0.6, z = 0.99999). With a large first parameter instead of
    1 the weight moves beyond the last node, which is why this is the a = 1 case only."""
    b, c, z = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in (b, c, z)))
    out = np.full(b.shape, np.nan)
    ok = (b > 0) & (c > b) & (z < 1)
    if np.any(ok):
        z_ = z[ok][:, None]
        out[ok] = log_beta_expectation(lambda p: -np.log1p(-z_ * p), b[ok], c[ok] - b[ok])
    return out


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
    c - b small) are evaluated with mpmath instead while parameters are moderate, else by
    quadrature (with central differences of it for the b and c derivatives).

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
        # mpmath while the parameters are moderate (these rows have z within ~1e-4 of 1, where
        # it was measured to return in 0.02 s up to 1e4); quadrature beyond, where it may not
        moderate = slow[np.maximum(b[slow], c[slow]) <= MPMATH_MAX_PARAMETER_1BC]
        extreme = np.setdiff1d(slow, moderate)
        if moderate.size:
            if derivatives and moderate.size >= SLOW_ROWS_WARN:
                _warn_slow()
            log_f[moderate], grad_b[moderate], grad_c[moderate], grad_z[moderate] = \
                _mpmath_log_hyp(b[moderate], c[moderate], z[moderate], derivatives)
        if extreme.size:
            log_f[extreme], grad_b[extreme], grad_c[extreme], grad_z[extreme] = \
                _quadrature_log_hyp(b[extreme], c[extreme], z[extreme], derivatives)
    return tuple(v.reshape(shape) for v in (log_f, grad_b, grad_c, grad_z))


#: rows of one evaluation that need mpmath (about 7 ms each with derivatives) from which a fit
#: is warned that it has slowed down: 100 rows are some 0.7 s an evaluation
SLOW_ROWS_WARN = 100


def _warn_slow() -> None:
    """Warn that a Pareto/NBD fit has entered the region where its 2F1 terms need mpmath.

    There the dropout rates barely differ between customers: s and beta grow together towards
    a fixed mean rate, the series of 2F1(1, b; c; z) with z near 1 does not converge within its
    term budget, and every evaluation of the likelihood costs seconds (a simulated base of
    3,000 customers with gamma shape 50 in the dropout rates ran for minutes, issue 33's trial).
    """
    # one text (the numbers go to the log of the fit, not the message): Python shows it once
    # per line of the user's code, not at each of the fit's evaluations
    warn("ParetoNBD: the fit has reached parameters where many customers' likelihood terms "
         "need 30-digit hypergeometric functions: s and beta are growing together, which is "
         "what data whose customers' dropout rates barely differ do to the Pareto/NBD. Each "
         "step of the fit now takes seconds and the fit may take many minutes. A small penalty "
         "(ParetoNBD(penalty=0.001)) or BetaGeo fits such data in seconds "
         "(docs/guide/models.md)")


def _quadrature_log_hyp(b, c, z, derivatives: bool):
    """log 2F1(1, b; c; z) by quadrature; its b and c derivatives by central differences of the
    quadrature (smooth in b and c), the z derivative as E[P/(1-zP)^2] / E[1/(1-zP)]."""
    log_f = log_hyp2f1_1bc_quadrature(b, c, z)
    if not derivatives:
        return log_f, np.full_like(b, np.nan), np.full_like(b, np.nan), np.full_like(b, np.nan)
    step_b, step_c = 1e-5 * b, 1e-5 * np.minimum(c, c - b)  # c - step_c stays above b
    grad_b = (log_hyp2f1_1bc_quadrature(b + step_b, c, z)
              - log_hyp2f1_1bc_quadrature(b - step_b, c, z)) / (2 * step_b)
    grad_c = (log_hyp2f1_1bc_quadrature(b, c + step_c, z)
              - log_hyp2f1_1bc_quadrature(b, c - step_c, z)) / (2 * step_c)
    z_ = z[:, None]
    numerator = log_beta_expectation(lambda p: np.log(np.maximum(p, 1e-300)) - 2 * np.log1p(-z_ * p),
                                     b, c - b)
    grad_z = np.exp(numerator - log_f)
    return log_f, grad_b, grad_c, grad_z


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
