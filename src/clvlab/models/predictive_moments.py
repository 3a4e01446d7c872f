"""Mean and factorial moment of the purchases of an alive customer in closed form (or as a
series of positive terms), vectorised over units; see :func:`alive_moments`."""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

from clvlab.core.errors import ClvlabError
from clvlab.models._special import log_beta_ratio

__all__ = ["alive_moments"]

_GL_NODES, _GL_WEIGHTS = np.polynomial.legendre.leggauss(64)


def alive_moments(family: str, params, t, new_expected: Callable | None = None):
    """(E[X], E[X(X-1)]) of an alive customer with posterior ``params`` over t: multiply both
    by P(alive) for the conditional ones.

    - Pareto/NBD: E[X(X-1) | lambda, mu] = lambda^2 E[min(tau, t)^2], so
      E[X(X-1)] = 2 r (r+1) / alpha^2 int_0^t u (beta/(beta+u))^s du, taken as
      beta^2 int_0^L expm1(y) e^((1-s) y) dy with L = log1p(t/beta) (a positive integrand,
      64-point Gauss-Legendre; the antiderivative cancels for small t/beta).
    - BG/BB: X = sum_j B_j A_j (bought at j, alive at j), so
      E[X(X-1)] = 2 E[p^2] sum_{j=1}^t (j-1) B(gamma, delta+j)/B(gamma, delta).
    - BG/NBD, MBG/NBD: with D the purchases until dropout, P(X >= k) = P(N >= k) w(k-1), and
      E[X(X-1)] = 2 sum_{k>=2} (k-1) P(N >= k) w(k-1), w(j) = B(a, b+j)/B(a, b), summed as
      2 sum_n NB(n) sum_{j<n} j w(j): positive terms, until the rest is below 1e-16 of the sum.
    ``new_expected(params, t)`` is the model's new-customer E[X] (its ``_new_expected``);
    BG/BB's is computed here.
    """
    params = tuple(np.asarray(p, dtype=np.float64) for p in params)
    t = np.asarray(t, dtype=np.float64)
    if family == "bg-bb":
        return _bg_bb_moments(*params, t)
    mean = np.asarray(new_expected(params, t), dtype=np.float64)
    if family == "pareto":
        return mean, _pareto_factorial(*params, t)
    return mean, _beta_geometric_factorial(*params, t)


def _pareto_factorial(r, alpha, s, beta, t):
    r, alpha, s, beta, t = np.broadcast_arrays(r, alpha, s, beta, t)
    length = np.log1p(t / beta)[..., None]
    y = length * (_GL_NODES + 1.0) / 2.0
    integral = length[..., 0] / 2.0 * ((np.expm1(y) * np.exp((1.0 - s[..., None]) * y)) @ _GL_WEIGHTS)
    return 2.0 * r * (r + 1.0) * (beta / alpha) ** 2 * integral


def _bg_bb_moments(alpha, beta, gamma, delta, t):
    alpha, beta, gamma, delta, t = np.broadcast_arrays(alpha, beta, gamma, delta, t)
    shape = alpha.shape
    alpha, beta, gamma, delta, t = (v.ravel() for v in (alpha, beta, gamma, delta, t))
    j = np.arange(1, int(t.max()) + 1 if t.size else 1, dtype=np.float64)[None, :]
    alive_at = np.exp(log_beta_ratio(gamma[:, None], delta[:, None], 0.0, j))  # B(g, d+j)/B(g, d)
    alive_at = np.where(j <= t[:, None], alive_at, 0.0)
    p_mean = alpha / (alpha + beta)
    p_square = p_mean * (alpha + 1.0) / (alpha + beta + 1.0)
    mean = p_mean * alive_at.sum(axis=1)
    factorial = 2.0 * p_square * ((j - 1.0) * alive_at).sum(axis=1)
    return mean.reshape(shape), factorial.reshape(shape)


#: the BG/NBD factorial series stops once its remaining terms are below this share of the sum
_SERIES_RTOL = 1e-16
_SERIES_MAX_TERMS = 1_000_000


def _beta_geometric_factorial(r, alpha, a, b, t):
    """E[X(X-1)] = 2 sum_{k>=2} (k-1) P(N >= k) w(k-1), summed over N's values instead:
    2 sum_n NB(n) C(n) with C(n) = sum_{j=1}^{n-1} j w(j), w(j) = B(a, b+j)/B(a, b). Positive
    terms, and no P(N >= k) (whose tail would need the incomplete beta function at every
    step). The rest after n is bounded with NB(m) <= NB(n) rho^(m-n), rho bounding the NB's
    ratio of terms, and C(m) <= C(n) + w(n) (m^2 - n^2)/2."""
    r, alpha, a, b, t = np.broadcast_arrays(r, alpha, a, b, t)
    shape = r.shape
    r, alpha, a, b, t = (np.array(v.ravel()) for v in (r, alpha, a, b, t))
    out = np.zeros(r.size)
    active = np.arange(r.size)
    q = t / (alpha + t)
    log_q = np.log(t) - np.log(alpha + t)
    log_nb = -r * np.log1p(t / alpha)                       # log NB(0)
    weight = np.ones(r.size)                                # w(n) at n = 0
    cumulative = np.zeros(r.size)                           # C(n) at n = 0
    total = np.zeros(r.size)
    n = 0
    while active.size:
        # from n to n + 1: C(n+1) = C(n) + n w(n), w(n+1) = w(n) (b+n)/(a+b+n)
        log_nb = log_nb + np.log(r + n) - math.log(n + 1.0) + log_q
        cumulative = cumulative + n * weight
        weight = weight * (b + n) / (a + b + n)
        n += 1
        nb = np.exp(log_nb)
        total = total + nb * cumulative
        rho = np.maximum(q, q * (r + n) / (n + 1.0))
        with np.errstate(divide="ignore", invalid="ignore"):
            gap = 1.0 - rho
            rest = nb * (cumulative * rho / gap
                         + weight * (n * rho / gap**2 + rho * (1.0 + rho) / (2.0 * gap**3)))
        done = (rho < 1.0) & (rest <= _SERIES_RTOL * total) & (total > 0)
        done |= (nb == 0.0) & (n > (r - 1.0) * q / np.maximum(1.0 - q, 1e-300))  # past the mode
        if done.any():
            out[active[done]] = total[done]
            keep = ~done
            active, r, a, b, q, log_q, log_nb, weight, cumulative, total = (
                v[keep] for v in (active, r, a, b, q, log_q, log_nb, weight, cumulative, total))
        if n > _SERIES_MAX_TERMS:
            raise ClvlabError("the variance of the purchases did not converge within "
                              f"{_SERIES_MAX_TERMS:,} terms: the horizon is too long for these "
                              "parameters")
    return 2.0 * out.reshape(shape)
