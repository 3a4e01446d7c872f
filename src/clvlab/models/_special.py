"""Special-function combinations that lose precision when written naively."""

from __future__ import annotations

import math

import numba
import numpy as np
from scipy import special

__all__ = ["log_gamma_ratio", "log_beta_ratio", "log_gamma_ratio_scalar", "digamma_scalar"]

_ASYMPTOTIC_FROM = 1e3  # Stirling's series below is exact to double precision beyond this


def log_gamma_ratio(a, q):
    """log G(a + q) - log G(a) for a, q > 0, without the cancellation of the plain difference.

    For large a both log-gammas are huge and nearly equal (G(3e6 + 0.01) / G(3e6)); there the
    difference is taken analytically from Stirling's series:
    (a - 1/2) log1p(q/a) + q log(a + q) - q + S(a + q) - S(a).
    """
    if np.ndim(a) == 0 and a < _ASYMPTOTIC_FROM:  # the common case, once per likelihood call
        return special.gammaln(np.add(a, q)) - special.gammaln(a)
    a, q = np.broadcast_arrays(np.asarray(a, dtype=np.float64), np.asarray(q, dtype=np.float64))
    direct = special.gammaln(a + q) - special.gammaln(a)
    big = a >= _ASYMPTOTIC_FROM
    if not np.any(big):
        return direct
    ab, qb = a[big], q[big]
    y = ab + qb
    series = _stirling_tail(y) - _stirling_tail(ab)
    stable = (ab - 0.5) * np.log1p(qb / ab) + qb * np.log(y) - qb + series
    out = np.array(direct, dtype=np.float64)
    out[big] = stable
    return out


def _stirling_tail(y):
    inv = 1.0 / y
    inv2 = inv * inv
    return inv * (1 / 12 - inv2 * (1 / 360 - inv2 * (1 / 1260 - inv2 / 1680)))


def log_beta_ratio(a, b, da, db):
    """log B(a + da, b + db) - log B(a, b) for a, b > 0 and da, db >= 0, from log-gamma
    ratios (so it stays exact when a or b is large and the increments small)."""
    return log_gamma_ratio(a, da) + log_gamma_ratio(b, db) - log_gamma_ratio(np.add(a, b), np.add(da, db))


# --- scalar versions for compiled loops (numba has math.lgamma but no digamma) ----------------

@numba.njit(cache=True, nogil=True, error_model="numpy")
def log_gamma_ratio_scalar(a, q):  # pragma: no cover - compiled
    """``log_gamma_ratio`` for one a > 0, q >= 0, callable from compiled code."""
    if a < _ASYMPTOTIC_FROM:
        return math.lgamma(a + q) - math.lgamma(a)
    y = a + q
    tail_y, tail_a = 1.0 / y, 1.0 / a
    s_y = tail_y * (1 / 12 - tail_y * tail_y * (1 / 360 - tail_y * tail_y * (1 / 1260 - tail_y * tail_y / 1680)))
    s_a = tail_a * (1 / 12 - tail_a * tail_a * (1 / 360 - tail_a * tail_a * (1 / 1260 - tail_a * tail_a / 1680)))
    return (a - 0.5) * math.log1p(q / a) + q * math.log(y) - q + s_y - s_a


@numba.njit(cache=True, nogil=True, error_model="numpy")
def digamma_scalar(x):  # pragma: no cover - compiled
    """psi(x) for x > 0: the recurrence psi(x) = psi(x + 1) - 1/x up to x >= 10, then the
    asymptotic series (its first omitted term is below 3e-14 there)."""
    shift = 0.0
    while x < 10.0:
        shift -= 1.0 / x
        x += 1.0
    inv2 = 1.0 / (x * x)
    series = inv2 * (1 / 12 - inv2 * (1 / 120 - inv2 * (1 / 252 - inv2 * (1 / 240 - inv2 / 132))))
    return shift + math.log(x) - 0.5 / x - series
