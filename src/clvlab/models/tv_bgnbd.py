r"""The BG/NBD with time-varying purchase covariates: the plain BG/NBD in the purchase clock.

A customer buys at rate ``lambda * exp(eta_p(t))`` (``lambda ~ Gamma(r, alpha)``, shape r, rate
alpha), ``eta_p`` piecewise constant over the customer's segments (issue 31's design: time 0 is
the first purchase), and after each repeat purchase drops out with probability
``p ~ Beta(a, b)``. Static dropout covariates enter through each customer's own ``a_i, b_i``.

Why the plain BG/NBD in the clock ``A(t) = int_0^t exp(eta_p(u)) du``
---------------------------------------------------------------------
Given lambda and p, the purchases are a Poisson process of intensity ``lambda exp(eta_p(t))``,
stopped after each purchase with probability p. ``A`` is continuous and strictly increasing
with ``A(0) = 0``, so by the time change ``u = A(t)`` (the mapping theorem) the purchases at
``u_j = A(t_j)`` form a Poisson process of constant rate lambda: the expected count on
``(A(t), A(t'))`` is ``int_t^t' lambda exp(eta_p) = lambda (A(t') - A(t))``. Dropout happens
*only at purchases* (a coin after the j-th purchase, whatever clock counts it), so the stopped
process in the u clock is exactly the homogeneous BG/NBD. Observing ``[0, T]`` in t is observing
``[0, A(T)]`` in u, with the last purchase at ``A(t_x)``. The density of the purchase times
picks up the Jacobian of the change of variables, ``prod_j A'(t_j) = exp(sum_j eta_p(t_j))``:

    L_tv(t_1..t_x; T) = exp(sum_j eta_p(t_j)) * L_BG(x, A(t_x), A(T))
    log L_BG(x, t_x, T) = log G(r+x)/G(r) + r log alpha
        + log[ B(a, b+x)/B(a, b) (alpha + T)^-(r+x) + [x>0] B(a+1, b+x-1)/B(a, b) (alpha + t_x)^-(r+x) ]

(Fader, Hardie & Lee 2005, eq. 6.) In segment terms ``sum_j eta_p(t_j) = sum_k counts_k
eta_k``. Being a Jacobian it does not depend on r, alpha, a, b, but it does on eta, hence on
the coefficients: it belongs in the likelihood (CLVTools' ``A1sum`` in the Pareto/NBD).

Every prediction is a property of the event sequence, so it is the plain model's at the row
``(x, A(t_x), A(T))`` with horizon ``A(T+h) - A(T)``: P(alive at T), the expected purchases and
the PMF of the purchases in ``(T, T+h]`` (``bgnbd_tv_times`` gives the three clock values).

The gradient follows from the chain rule: with ``w_alive``, ``w_dead`` the shares of the two
terms in the bracket, ``dlogL_BG/dT = -w_alive (r+x)/(alpha+T)`` and ``dlogL_BG/dt_x =
-w_dead (r+x)/(alpha+t_x)``, and ``dA(t)/deta_k = exp(eta_k) |segment k  cap  [0, t)|``, so

    dlogL/deta_k = counts_k + exp(eta_k) (|k cap [0,T)| dlogL_BG/dT + |k cap [0,t_x)| dlogL_BG/dt_x).

Why the dropout covariates stay static
--------------------------------------
A time-varying dropout covariate changes the coin at each purchase: ``p_j = p(p, eta_d(t_j))``,
and the likelihood holds ``prod_j (1 - p_j)``, different functions of p. For a shift of logit p,
``1 - p_j = (1 - p) / (1 - p + p exp(eta_j))``, and the integral over ``p ~ Beta(a, b)`` is no
longer a ratio of Beta functions (it is a multivariate hypergeometric function); ``p exp(eta_j)``
is not a probability unless capped, and where it stays below 1 the product is an alternating sum
of x+1 Beta functions that cancels catastrophically. Either way p given the history is no longer
``Beta(a, b + x)``, which the closed forms of every prediction rest on. (The power form
``(1 - p)^exp(eta_d(t_j))`` would keep Beta functions, but it is a different model from the
BG/NBD of the literature and CLVTools, and is not offered.) Static dropout covariates keep the
closed form through ``a_i, b_i``.

Layout (issue 31's flattened ragged segments): customer i owns segments
``offsets[i]..offsets[i+1]-1``; segment k covers ``[seg_end[k-1], seg_end[k])`` (from 0 for a
customer's first) with log-multiplier ``eta_p[k]`` and ``counts[k]`` repeat purchases.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from clvlab.core.errors import ClvlabError
from clvlab.models._special import digamma_scalar, log_gamma_ratio_scalar

__all__ = ["purchase_clock", "bgnbd_tv_loglik", "bgnbd_tv_times", "bgnbd_tv_fill"]

_jit = numba.njit(cache=True, nogil=True, error_model="numpy")
_inline = numba.njit(cache=True, nogil=True, error_model="numpy", inline="always")

#: a time beyond a path's end by at most this (relative) counts as its end: T and the segment
#: ends come from the same timestamps through different arithmetic
_END_TOLERANCE = 1e-9

# problems the kernels report (code, position); the Python side words them
_OK, _BAD_SEGMENT, _SHORT_PATH, _BAD_ROW, _BAD_COUNTS = 0, 1, 2, 3, 4


@_inline
def _clock(lo, hi, seg_end, eta_p, t):  # pragma: no cover - compiled
    """A(t) over the segments lo..hi-1; NaN beyond the path's end (unknown covariates)."""
    total, start = 0.0, 0.0
    for k in range(lo, hi):
        end = seg_end[k]
        if t <= end:
            return total + math.exp(eta_p[k]) * (t - start)
        total += math.exp(eta_p[k]) * (end - start)
        start = end
    if t <= start * (1.0 + _END_TOLERANCE):  # at the end, within rounding
        return total
    return math.nan


@_jit
def _check_segments(offsets, seg_end, eta_p):  # pragma: no cover - compiled
    """(code, segment): the first segment that does not end after the one before it, or whose
    eta or end is not finite."""
    for i in range(offsets.size - 1):
        start = 0.0
        for k in range(offsets[i], offsets[i + 1]):
            if not (seg_end[k] > start and math.isfinite(seg_end[k]) and math.isfinite(eta_p[k])):
                return _BAD_SEGMENT, k
            start = seg_end[k]
    return _OK, 0


@_jit
def _clock_many(offsets, seg_end, eta_p, times):  # pragma: no cover - compiled
    out = np.empty(times.size)
    for i in range(times.size):
        out[i] = _clock(offsets[i], offsets[i + 1], seg_end, eta_p, times[i])
    return out


@_jit
def _times(offsets, seg_end, eta_p, t_x, T, horizon):  # pragma: no cover - compiled
    """(A(t_x), A(T), A(T + h) - A(T)) per customer: the clock walked once."""
    out = np.empty((t_x.size, 3))
    for i in range(t_x.size):
        lo, hi = offsets[i], offsets[i + 1]
        a_T = _clock(lo, hi, seg_end, eta_p, T[i])
        out[i, 0] = _clock(lo, hi, seg_end, eta_p, t_x[i])
        out[i, 1] = a_T
        out[i, 2] = _clock(lo, hi, seg_end, eta_p, T[i] + horizon[i]) - a_T
    return out


@_inline
def _bg_terms(r, alpha, a, b, x, a_tx, a_T, out):  # pragma: no cover - compiled
    """The plain BG/NBD at (x, a_tx, a_T): out[0] log-likelihood, out[1:5] its gradient in
    (r, alpha, a, b), out[5] d/dT, out[6] d/dt_x (in the clock)."""
    m = r + x
    log_alpha = math.log(alpha)
    log_T = math.log(alpha + a_T)
    r_part = log_gamma_ratio_scalar(r, x) + r * log_alpha
    d_r = digamma_scalar(m) - digamma_scalar(r) + log_alpha
    if x == 0.0:  # no repeat purchase, no chance to drop out: the alive term alone
        out[0] = r_part - r * log_T
        out[1] = d_r - log_T
        out[2] = r / alpha - r / (alpha + a_T)
        out[3] = 0.0
        out[4] = 0.0
        out[5] = -r / (alpha + a_T)
        out[6] = 0.0
        return
    log_t = math.log(alpha + a_tx)
    common = log_gamma_ratio_scalar(a + b, x)
    alive = log_gamma_ratio_scalar(b, x) - common - m * log_T  # log B(a, b+x)/B(a, b) ...
    dead = math.log(a) + log_gamma_ratio_scalar(b, x - 1.0) - common - m * log_t  # B(a+1, b+x-1)
    log_sum = max(alive, dead) + math.log1p(math.exp(-abs(alive - dead)))
    w_alive = math.exp(alive - log_sum)
    w_dead = 1.0 - w_alive
    psi_ab, psi_b, psi_abx = digamma_scalar(a + b), digamma_scalar(b), digamma_scalar(a + b + x)
    out[0] = r_part + log_sum
    out[1] = d_r - w_alive * log_T - w_dead * log_t
    out[2] = r / alpha - m * (w_alive / (alpha + a_T) + w_dead / (alpha + a_tx))
    out[3] = psi_ab - psi_abx + w_dead / a
    out[4] = (w_alive * digamma_scalar(b + x) + w_dead * digamma_scalar(b + x - 1.0)
              - psi_b + psi_ab - psi_abx)
    out[5] = -w_alive * m / (alpha + a_T)
    out[6] = -w_dead * m / (alpha + a_tx)


@_jit
def _loglik(r, alpha, a, b, x, t_x, T, offsets, seg_end, eta_p, counts, ll, d_own,
            d_eta):  # pragma: no cover - compiled
    """Fills ll, d_own, d_eta; returns (code, customer) of the first bad row, (0, 0) if none.

    Per customer two passes over its segments: the first accumulates A(t_x), A(T), the counts
    term, and leaves exp(eta_k) |k cap [0, T)| in d_eta; the second, once dlogL/dT and
    dlogL/dt_x are known, turns that into dlogL/deta_k."""
    terms = np.empty(7)
    for i in range(x.size):
        lo, hi = offsets[i], offsets[i + 1]
        xi, txi, Ti = x[i], t_x[i], T[i]
        if not (xi >= 0.0 and 0.0 <= txi <= Ti and (xi > 0.0 or txi == 0.0)):
            return _BAD_ROW, i
        a_T = a_tx = jacobian = seen = 0.0
        at_tx = -1  # the segment holding t_x, whose part before t_x is partial
        part_tx = 0.0  # exp(eta) |that segment cap [0, t_x)|
        start = 0.0
        for k in range(lo, hi):
            end = seg_end[k]
            scale = math.exp(eta_p[k])
            if counts[k] != 0.0:
                if not counts[k] > 0.0 or start > txi:  # a purchase after the last one
                    return _BAD_COUNTS, i
                jacobian += counts[k] * eta_p[k]
                seen += counts[k]
            before_T = min(end, Ti) - start
            before_T = before_T if before_T > 0.0 else 0.0
            a_T += scale * before_T
            d_eta[k] = scale * before_T
            if start <= txi:
                if txi <= end:
                    at_tx = k
                    part_tx = scale * (txi - start)
                    a_tx += part_tx
                else:
                    a_tx += scale * (end - start)
            start = end
        if Ti > start * (1.0 + _END_TOLERANCE) or hi == lo:
            return _SHORT_PATH, i
        if at_tx < 0:  # t_x at the path's end (within rounding)
            at_tx = hi
        if abs(seen - xi) > 1e-9 * (1.0 + xi):
            return _BAD_COUNTS, i
        _bg_terms(r[i], alpha[i], a[i], b[i], xi, a_tx, a_T, terms)
        ll[i] = terms[0] + jacobian
        d_own[i, 0], d_own[i, 1], d_own[i, 2], d_own[i, 3] = terms[1], terms[2], terms[3], terms[4]
        g_T, g_tx = terms[5], terms[6]
        for k in range(lo, hi):
            # exp(eta) |k cap [0, t_x)|: the whole segment before t_x's, part of it there
            before_tx = d_eta[k] if k < at_tx else (part_tx if k == at_tx else 0.0)
            d_eta[k] = counts[k] + g_T * d_eta[k] + g_tx * before_tx
    return _OK, 0


#: the compiled kernel of ``bgnbd_tv_loglik`` without its argument checks, for other compiled
#: code: ``bgnbd_tv_fill(r, alpha, a, b, x, t_x, T, offsets, seg_end, eta_p, counts, ll, d_own,
#: d_eta)`` fills the three outputs and returns (0, 0), or (code, customer) at the first row it
#: refuses (then the outputs are incomplete); every array float64 but offsets (int64)
bgnbd_tv_fill = _loglik


def purchase_clock(offsets, seg_end, eta_p, times) -> np.ndarray:
    """``A(times[i]) = int_0^times[i] exp(eta_p(u)) du`` over customer i's segments (times in
    the customer's own time, from the first purchase). NaN where a time lies beyond the path's
    end: the covariates there are unknown.

    ``dA(t)/deta_k = exp(eta_k) * |segment k cap [0, t)|`` (the kernel's gradient uses it)."""
    offsets, seg_end, eta_p = _segments(offsets, seg_end, eta_p)
    times = _per_customer(times, offsets.size - 1, "times")
    if np.any(times < 0):
        raise ClvlabError(f"times must be >= 0 (time since the first purchase); customer at "
                          f"position {int(np.flatnonzero(times < 0)[0])} has "
                          f"{times[times < 0][0]!r}")
    return _clock_many(offsets, seg_end, eta_p, times)


def bgnbd_tv_times(offsets, seg_end, eta_p, t_x, T, horizon):
    """``(A(t_x), A(T), A(T + h) - A(T))`` per customer: the row and horizon at which the plain
    BG/NBD's predictions (``BetaGeo.p_alive``, ``expected_purchases``, ``purchase_pmf`` with
    ``rfm = (frequency=x, recency=A(t_x), T=A(T))`` and ``t`` the third array) are the
    time-varying model's for ``(T, T + h]``. ``horizon`` is one value or one per customer; the
    segments must reach ``T + h`` (else that customer's horizon is NaN: unknown covariates)."""
    offsets, seg_end, eta_p = _segments(offsets, seg_end, eta_p)
    n = offsets.size - 1
    t_x, T = _per_customer(t_x, n, "t_x"), _per_customer(T, n, "T")
    horizon = _per_customer(horizon, n, "horizon")
    bad = np.flatnonzero(~((t_x >= 0) & (t_x <= T) & (horizon >= 0)))
    if bad.size:
        i = int(bad[0])
        raise ClvlabError(f"t_x, T, horizon: need 0 <= t_x <= T and horizon >= 0; customer at "
                          f"position {i} has t_x={t_x[i]!r}, T={T[i]!r}, horizon={horizon[i]!r}")
    out = _times(offsets, seg_end, eta_p, t_x, T, horizon)
    return out[:, 0], out[:, 1], out[:, 2]


def bgnbd_tv_loglik(r, alpha, a, b, x, t_x, T, offsets, seg_end, eta_p, counts):
    """Log-likelihood of each customer and its exact gradient (see the module docstring).

    Parameters: each customer's own ``r, alpha, a, b`` (arrays (N,), or one value for all),
    ``x`` repeat purchases, ``t_x`` the last one's time, ``T`` the age (customer time); the
    segments ``offsets`` (N+1,), ``seg_end``, ``eta_p``, ``counts`` (n_seg,). The segments must
    reach T; those beyond it add nothing (they may carry a prediction path). ``counts`` must
    sum to x per customer, with none in a segment that starts after t_x.

    Returns ``ll`` (N,), ``d_own`` (N, 4) (d ll_i / d(r_i, alpha_i, a_i, b_i)) and ``d_eta_p``
    (n_seg,) (d ll_i / d eta_k for the customer i owning segment k, the counts term included;
    ``X_seg.T @ d_eta_p`` is the gradient in the purchase coefficients).
    """
    offsets, seg_end, eta_p = _segments(offsets, seg_end, eta_p)
    n = offsets.size - 1
    counts = _float_array(counts, "counts")
    if counts.shape != seg_end.shape:
        raise ClvlabError(f"counts must have one value per segment ({seg_end.size}), got shape "
                          f"{counts.shape}")
    own = [_per_customer(v, n, name) for v, name in ((r, "r"), (alpha, "alpha"), (a, "a"), (b, "b"))]
    for values, name in zip(own, ("r", "alpha", "a", "b")):
        bad = np.flatnonzero(~(np.isfinite(values) & (values > 0)))
        if bad.size:
            raise ClvlabError(f"{name} must be finite and > 0; customer at position {int(bad[0])} "
                              f"has {name}={values[bad[0]]!r}")
    x, t_x, T = (_per_customer(v, n, name) for v, name in ((x, "x"), (t_x, "t_x"), (T, "T")))
    ll, d_own, d_eta = np.empty(n), np.empty((n, 4)), np.empty(seg_end.size)
    code, i = _loglik(*own, x, t_x, T, offsets, seg_end, eta_p, counts, ll, d_own, d_eta)
    if code != _OK:
        lo, hi = int(offsets[i]), int(offsets[i + 1])
        row = f"customer at position {i} (x={x[i]!r}, t_x={t_x[i]!r}, T={T[i]!r}"
        if code == _BAD_ROW:
            raise ClvlabError(f"x, t_x, T: need x >= 0, 0 <= t_x <= T, and t_x = 0 where x = 0; "
                              f"{row})")
        if code == _SHORT_PATH:
            end = seg_end[hi - 1] if hi > lo else 0.0
            raise ClvlabError(f"seg_end: a customer's segments must reach T; {row}) has segments "
                              f"up to {end!r}")
        raise ClvlabError(f"counts: a customer's counts must be >= 0, sum to x and lie in "
                          f"segments that start at or before t_x; {row}) has counts "
                          f"{counts[lo:hi].tolist()[:20]} over segment ends "
                          f"{seg_end[lo:hi].tolist()[:20]}")
    return ll, d_own, d_eta


# --- argument checks ---------------------------------------------------------------------------
def _float_array(values, name: str) -> np.ndarray:
    try:
        values = np.asarray(values, dtype=np.float64)  # (ascontiguousarray makes 0-d 1-d)
    except (TypeError, ValueError) as error:
        raise ClvlabError(f"{name} must be numbers: {error}") from None
    return np.ascontiguousarray(values) if values.ndim else values


def _per_customer(values, n: int, name: str) -> np.ndarray:
    """One float per customer: an array (n,) or one value broadcast."""
    values = _float_array(values, name)
    if values.ndim == 0:
        return np.full(n, float(values))
    if values.shape != (n,):
        raise ClvlabError(f"{name} must have one value per customer ({n}), got shape {values.shape}")
    return values


def _segments(offsets, seg_end, eta_p):
    """The segment layout checked: offsets start at 0, never decrease and end at n_seg; each
    customer's segment ends increase from > 0; ends and eta finite."""
    try:
        offsets = np.ascontiguousarray(offsets, dtype=np.int64)
    except (TypeError, ValueError) as error:
        raise ClvlabError(f"offsets must be whole numbers: {error}") from None
    seg_end, eta_p = _float_array(seg_end, "seg_end"), _float_array(eta_p, "eta_p")
    if seg_end.ndim != 1 or eta_p.shape != seg_end.shape:
        raise ClvlabError(f"seg_end and eta_p must be 1-D with one value per segment, got shapes "
                          f"{seg_end.shape} and {eta_p.shape}")
    if (offsets.ndim != 1 or offsets.size < 1 or offsets[0] != 0 or offsets[-1] != seg_end.size
            or np.any(np.diff(offsets) < 0)):
        raise ClvlabError(f"offsets must run from 0 to the number of segments ({seg_end.size}) "
                          f"without decreasing, one more than the customers; got "
                          f"{offsets[:5].tolist()}...{offsets[-3:].tolist()}")
    code, k = _check_segments(offsets, seg_end, eta_p)
    if code != _OK:
        i = int(np.searchsorted(offsets, k, side="right") - 1)
        raise ClvlabError(f"seg_end, eta_p: each customer's segment ends must increase from > 0 "
                          f"and be finite, with finite eta; customer at position {i}, segment {k}"
                          f" has end {seg_end[k]!r} (previous "
                          f"{seg_end[k - 1] if k > offsets[i] else 0.0!r}), eta {eta_p[k]!r}")
    return offsets, seg_end, eta_p
