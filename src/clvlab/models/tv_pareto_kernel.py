r"""The Pareto/NBD log-likelihood with time-varying covariates, with its exact gradient (numba).

The model (Bachmann, Meierer & Naef 2021; CLVTools ``pnbd_dyncov``; issue 31's design): purchase
rate ``lambda exp(eta_p(t))``, dropout rate ``mu exp(eta_d(t))``, ``lambda ~ Gamma(r, alpha)``,
``mu ~ Gamma(s, beta)``, eta piecewise constant over each customer's segments. With
``P(t) = alpha + A(t)``, ``Q(t) = beta + B(t)`` (A, B the integrals of ``exp(eta)``, piecewise
linear) and ``m = r + x``, a customer's log-likelihood is

    ll = log G(m)/G(r) + r log alpha + s log beta + sum_k counts_k eta_p_k + log R,
    R  = P(T)^-m Q(T)^-s + sum_k I_k,
    I_k = int_{segment k cap [t_x, T]} s exp(eta_d_k) Q(tau)^-(s+1) P(tau)^-m dtau

(the first term: alive at T; ``I_k``: died in segment k, after the last purchase).

Why quadrature and not the segment's closed form
------------------------------------------------
On a segment ``I_k`` is an incomplete beta function, the difference of two 2F1 tails
``G(u0) - G(u1)`` with ``G(u) = (s/k) P^-m Q^-s 2F1(1, m; m+s+1; z(u))``. Two things make that
form poor here: (1) the difference cancels when the segment is short against the tail's scale
(104 weekly segments: every segment), and the cancellation is not bounded by the customer's R
when a later segment's eta is larger; (2) its series needs ~1/(1 - z) terms, and z goes to 1
whenever the two processes' relative growth rates ``exp(eta_p)/P`` and ``exp(eta_d)/Q`` differ a
lot (``|eta_p - eta_d|`` of a few units already gives hundreds of terms; at the edges of the
parameter ranges z = 1 - 1e-9 and worse), where the 1 - z transformation has poles at integer s.
The integrand instead is smooth, positive and decreasing within a segment (only the factor
``exp(eta_d_k)`` jumps between segments), so Gauss-Legendre quadrature on pieces of bounded
relative growth is exact to a proven bound with 2 to 5 nodes on a typical segment, costs the same
whatever z, and needs no cancellation anywhere: every I_k and every piece is a sum of positive
terms.

The error bound (proof of the node counts)
------------------------------------------
On a piece ``[u, u + L]`` the integrand is ``c (1 + a v)^-m (1 + b v)^-(s+1)`` (``a =
exp(eta_p)/P(u)``, ``b = exp(eta_d)/Q(u)``, v in [0, L]). Let ``x_P = aL``, ``x_Q = bL``,
``chi = max(x_P, x_Q)`` and ``psi = m x_P + (s+1) x_Q``. Map the piece to [-1, 1]: on the
Bernstein ellipse E_rho ``Re(1 + x(1 + z)/2) >= 1 - x c_rho`` with ``c_rho = (rho + 1/rho -
2)/4``, so (real exponents) ``|f| <= f(L) exp(psi (1 + c_rho) / (1 - chi c_rho))`` there, while
``I >= L f(L)``. Gauss-Legendre with n nodes has ``|I - I_n| <= (64/15) M rho^-2n / (rho^2 - 1)
(L/2)`` (Trefethen, ATAP Thm 19.3), so the relative error of a piece is below

    (32/15) exp(psi (1 + c_rho) / (1 - chi c_rho)) rho^-2n / (rho^2 - 1)   for every rho with chi c_rho < 1.

Each piece gets the fewest n for which some rho makes this ``<= RELATIVE_TOLERANCE`` at the
upper corner of its bin of (chi, psi) (``node_table``); pieces are cut so that chi <= MAX_SPAN and psi <= MAX_DECAY (then at
most 20 nodes; a weekly segment of typical fits takes 3 or 4). All pieces are positive, so R
has the same relative error bound.

Scale, early stop and the gradient
----------------------------------
Every integrand value is taken relative to the integrand at t_x (its largest value but for the
eta_d jumps, which are at most exp(20) in the design's range), as exp of a difference of logs of
ratios: nothing overflows and no log-sum-exp is needed. The remaining integrals after tau are
below ``P(tau)^-m Q(tau)^-s`` (integrate ``s exp(eta_d) Q^-(s+1)`` with P held at P(tau)), so the
integration stops when that bound falls below 1e-18 of the sum so far (large m: the integrand
falls by exp(-40) within a few pieces). The gradient integrates the parameter derivatives of the
integrand on the same nodes (d/dm: -log P, d/ds: 1/s - log Q, d/dP: -m/P, ...). A segment's
eta_p moves its own slope and the offset ``P`` of every later point by ``exp(eta_p) h``; those
offset terms are summed in one backward pass (suffix sums, no subtraction), so the cost is linear
in the segments.

Layout (issue 31): customer i owns segments ``offsets[i]..offsets[i+1]-1``; segment k covers
``[seg_end[k-1], seg_end[k])`` (from 0 for a customer's first). Segment ends are clipped at T and
the customer's last segment is taken to end at T (a path shorter than T by more than rounding is
unknown covariates: NaN). Invalid rows (parameters not finite and > 0, ``not 0 <= t_x <= T``,
segment ends decreasing, eta not finite) give NaN, never 0.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from clvlab.models._special import digamma_scalar, log_gamma_ratio_scalar

__all__ = ["pnbd_tv_loglik", "pnbd_tv_loglik_only", "node_table", "RELATIVE_TOLERANCE",
           "MAX_SPAN", "MAX_DECAY"]

#: the proven relative error bound of each piece (and so of R)
RELATIVE_TOLERANCE = 1e-13
#: a piece's relative growth of P and of Q (chi) at most this, and m x_P + (s+1) x_Q (psi, about
#: the log-decay of the integrand) at most MAX_DECAY: larger pieces need more nodes each but fewer
#: per unit of growth or decay (chi = 1: 13 nodes per unit of log-growth, 1/2: 17)
MAX_SPAN, MAX_DECAY = 1.0, 8.0
#: a path end short of T by at most this (relative) is T, rounding between the two sources
_END_TOLERANCE = 1e-9
#: stop integrating when the rest of the path is below this share of R
_NEGLIGIBLE = 1e-18
#: pieces between exact (libm) evaluations of the integrand; in between it is carried by
#: multiplication, each piece adding two roundings: 64 pieces, < 3e-14 relative
_RESYNC = 64
_EXP = np.array([1.0 / math.factorial(k) for k in range(14)])  # Taylor coefficients of exp
#: columns of the per-customer work array
_START, _LENGTH, _EP, _ED, _A, _B, _GP, _GQ, _OWN_P, _OWN_D = range(10)
#: the node-count table's bins: K per axis, uniform in sqrt(chi / MAX_SPAN), sqrt(psi / MAX_DECAY)
_BINS = 64


def node_table(tolerance: float = RELATIVE_TOLERANCE) -> np.ndarray:
    """(bins, bins) Gauss-Legendre node counts: entry (i, j) is the least n for which some rho
    makes the module's bound <= tolerance at the bin's upper corner, chi = MAX_SPAN ((i+1)/K)^2,
    psi = MAX_DECAY ((j+1)/K)^2 (the bound grows with chi and psi, so it holds in the bin)."""
    rho = np.exp(np.linspace(np.log(1.0005), np.log(5000.0), 20000))
    c = (rho + 1.0 / rho - 2.0) / 4.0
    edges = (np.arange(1, _BINS + 1) / _BINS) ** 2 * (1.0 + 1e-9)  # (rounding in the kernel)
    table = np.empty((_BINS, _BINS), dtype=np.int8)
    for i, chi in enumerate(MAX_SPAN * edges):
        ok = chi * c < 1.0
        for j, psi in enumerate(MAX_DECAY * edges):
            log_bound = (np.log(32.0 / 15.0) - np.log(rho[ok] ** 2 - 1.0)
                         + psi * (1.0 + c[ok]) / (1.0 - chi * c[ok]))
            # the least n with log_bound - 2 n log rho <= log tolerance, at the best rho
            need = (log_bound - np.log(tolerance)) / (2.0 * np.log(rho[ok]))
            table[i, j] = max(1, int(np.ceil(need.min())))
    return table


def _gauss_legendre(n_max: int) -> tuple:
    """positions[n, :n] in (0, 1) (ascending) and weights[n, :n] (summing to 1): the n-point
    rule moved from [-1, 1] to [0, 1]."""
    positions, weights = np.zeros((n_max + 1, n_max)), np.zeros((n_max + 1, n_max))
    for n in range(1, n_max + 1):
        nodes, w = np.polynomial.legendre.leggauss(n)
        positions[n, :n], weights[n, :n] = 0.5 * (1.0 + nodes), 0.5 * w
    return positions, weights


_NODE_TABLE = node_table()
_POSITIONS, _WEIGHTS = _gauss_legendre(int(_NODE_TABLE.max()))

_jit = numba.njit(cache=True, nogil=True, error_model="numpy", fastmath={"contract"})
_inline = numba.njit(cache=True, nogil=True, error_model="numpy", fastmath={"contract"},
                      inline="always")


@_inline
def _node_count(span, decay):  # pragma: no cover - compiled
    """``node_table``'s count for a piece with chi = span <= MAX_SPAN, psi = decay <= MAX_DECAY."""
    i = min(int(math.sqrt(span * (1.0 / MAX_SPAN)) * _BINS), _BINS - 1)
    j = min(int(math.sqrt(decay * (1.0 / MAX_DECAY)) * _BINS), _BINS - 1)
    return _NODE_TABLE[i, j]


@_inline
def _log1p_small(t):  # pragma: no cover - compiled
    """log(1 + y) = 2 atanh(t) for 0 <= y <= 1/8, given t = y / (2 + y) <= 1/17: the series'
    first omitted term, t^15 / 15, is below 1e-19 of the sum. (Estrin's scheme: short chains
    of dependent operations.)"""
    t2 = t * t
    t4 = t2 * t2
    low = (1.0 + t2 * (1 / 3)) + t4 * (1 / 5 + t2 * (1 / 7))
    high = (1 / 9 + t2 * (1 / 11)) + t4 * (1 / 13)
    return 2.0 * t * (low + (t4 * t4) * high)


@_inline
def _exp_small(d):  # pragma: no cover - compiled
    """exp(d) for -1/4 <= d <= 0: the Taylor polynomial of degree 13 (the rest below 4e-20), by
    Estrin's scheme."""
    d2 = d * d
    d4 = d2 * d2
    d8 = d4 * d4
    p01 = 1.0 + d
    p23 = _EXP[2] + d * _EXP[3]
    p45 = _EXP[4] + d * _EXP[5]
    p67 = _EXP[6] + d * _EXP[7]
    p89 = _EXP[8] + d * _EXP[9]
    p1011 = _EXP[10] + d * _EXP[11]
    p1213 = _EXP[12] + d * _EXP[13]
    low = (p01 + d2 * p23) + d4 * (p45 + d2 * p67)
    high = (p89 + d2 * p1011) + d4 * p1213
    return low + d8 * high


@_inline
def _growth(x_P, x_Q, m, s1, w, fast):  # pragma: no cover - compiled
    """(log(1 + x_P w), log(1 + x_Q w), (1 + x_P w)^-m (1 + x_Q w)^-(s+1)): by the short series
    where ``fast`` (x_P, x_Q <= 1/8 and m x_P + (s+1) x_Q <= 1/4), else libm. The series need
    one division and no library call: half the cost of libm's log and exp."""
    y_P, y_Q = x_P * w, x_Q * w
    if fast:
        d_P, d_Q = 2.0 + y_P, 2.0 + y_Q
        inv = 1.0 / (d_P * d_Q)
        l_P, l_Q = _log1p_small(y_P * d_Q * inv), _log1p_small(y_Q * d_P * inv)
        return l_P, l_Q, _exp_small(-m * l_P - s1 * l_Q)
    l_P, l_Q = math.log1p(y_P), math.log1p(y_Q)
    return l_P, l_Q, math.exp(-m * l_P - s1 * l_Q)


@_inline
def _piece(u, length, n_nodes, x_P, x_Q, fast, P_l, Q_l, lp_l, lq_l, value_l, m, s1,
           gradient):  # pragma: no cover - compiled
    """Gauss-Legendre sums over the piece [u, u + length] (positions v from the segment's start)
    of the integrand in units of its value at t_x, f = value_l (P/P_l)^-m (Q/Q_l)^-(s+1), with
    lp = log(P/P_tx), lq = log(Q/Q_tx): (int f, int f/P, int f/Q, int f v/P, int f v/Q,
    int f lp, int f lq, and lp, lq, f at the piece's end). P = P_l (1 + x_P w), w in [0, 1]."""
    I, GP, GQ, Gep, Ged, Lm, Ls = 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0
    inv_P_l, inv_Q_l = 1.0 / P_l, 1.0 / Q_l
    for q in range(n_nodes):
        w = _POSITIONS[n_nodes, q]
        l_P, l_Q, g = _growth(x_P, x_Q, m, s1, w, fast)
        f = length * _WEIGHTS[n_nodes, q] * value_l * g
        I += f
        if gradient:
            grow_P, grow_Q = 1.0 + x_P * w, 1.0 + x_Q * w
            inv = 1.0 / (grow_P * grow_Q)
            iP, iQ = inv_P_l * grow_Q * inv, inv_Q_l * grow_P * inv
            v = u + length * w
            GP += f * iP
            GQ += f * iQ
            Gep += f * v * iP
            Ged += f * v * iQ
            Lm += f * (lp_l + l_P)
            Ls += f * (lq_l + l_Q)
    l_P, l_Q, g = _growth(x_P, x_Q, m, s1, 1.0, fast)
    return I, GP, GQ, Gep, Ged, Lm, Ls, lp_l + l_P, lq_l + l_Q, value_l * g


@_jit
def _customer(r, alpha, s, beta, x, t_x, T, lo, hi, seg_end, eta_p, eta_d, counts, gradient,
              work, d_own, d_eta_p, d_eta_d):  # pragma: no cover - compiled
    """Customer i's log-likelihood (NaN where its row is invalid); with ``gradient`` also
    d_own (4,) and d_eta_p, d_eta_d [lo:hi]. ``work`` (>= hi - lo, 10) is scratch."""
    n = hi - lo
    valid = (n >= 1 and r > 0 and alpha > 0 and s > 0 and beta > 0 and x >= 0 and t_x >= 0
             and r < math.inf and alpha < math.inf and s < math.inf and beta < math.inf
             and x < math.inf and T < math.inf and t_x <= T)
    # pass 1, the clocks: each segment's start and length within [0, T], exp(eta), A and B at its
    # start; the segment holding t_x (the first ending after it) and A, B there
    start, A, B = 0.0, 0.0, 0.0
    k_tx, A_tx, B_tx = n - 1, 0.0, 0.0
    found = False
    for k in range(n):
        if not valid:
            break
        j = lo + k
        end = min(seg_end[j], T)
        if k == n - 1:
            valid = seg_end[j] >= T * (1.0 - _END_TOLERANCE)
            end = T
        h = end - start
        ep, ed = math.exp(eta_p[j]), math.exp(eta_d[j])
        valid = valid and h >= 0.0 and ep < math.inf and ed < math.inf and abs(counts[j]) < math.inf
        work[k, _START], work[k, _LENGTH], work[k, _EP], work[k, _ED] = start, h, ep, ed
        work[k, _A], work[k, _B] = A, B
        work[k, _GP] = work[k, _GQ] = work[k, _OWN_P] = work[k, _OWN_D] = 0.0
        if not found and (end > t_x or k == n - 1):
            found = True
            k_tx, A_tx, B_tx = k, A + ep * max(t_x - start, 0.0), B + ed * max(t_x - start, 0.0)
        A += ep * h
        B += ed * h
        start = end
    if not valid:
        if gradient:
            d_own[:] = math.nan
            d_eta_p[lo:hi] = math.nan
            d_eta_d[lo:hi] = math.nan
        return math.nan

    m, s1 = r + x, s + 1.0
    P_T, Q_T, P_tx, Q_tx = alpha + A, beta + B, alpha + A_tx, beta + B_tx
    log_P_tx, log_Q_tx, log_s = math.log(P_tx), math.log(Q_tx), math.log(s)
    eta_tx = eta_d[lo + k_tx]
    # everything in units of the integrand at t_x: exp(log_ref)
    log_ref = log_s + eta_tx - m * log_P_tx - s1 * log_Q_tx
    growth_P, growth_Q = math.log(P_T / P_tx), math.log(Q_T / Q_tx)
    alive = math.exp(-m * growth_P - s * growth_Q - log_s - eta_tx + log_Q_tx)  # P_T^-m Q_T^-s
    total, dead, sum_GP, sum_GQ, sum_Lm, sum_Ls = alive, 0.0, 0.0, 0.0, 0.0, 0.0
    # pass 2: the integral from t_x to T, segment by segment, piece by piece. Each piece starts
    # from the previous one's end values (log(P/P_tx), log(Q/Q_tx), f: exactly 0, 0, 1 at t_x);
    # after _RESYNC pieces they are recomputed by libm, so their rounding cannot accumulate
    lp, lq, value, carried = 0.0, 0.0, 1.0, 0
    stopped = False
    for k in range(k_tx, n):
        if stopped:
            break
        h, ep, ed = work[k, _LENGTH], work[k, _EP], work[k, _ED]
        P_s, Q_s = alpha + work[k, _A], beta + work[k, _B]
        u = max(t_x - work[k, _START], 0.0) if k == k_tx else 0.0
        if k > k_tx:
            value *= ed / work[k - 1, _ED]  # the factor exp(eta_d) jumps
        bound_factor = 1.0 / (s * ed)
        I_k, GP, GQ, Gep, Ged = 0.0, 0.0, 0.0, 0.0, 0.0
        while u < h:
            P_l, Q_l = P_s + ep * u, Q_s + ed * u
            if carried >= _RESYNC:
                lp, lq = math.log(P_l / P_tx), math.log(Q_l / Q_tx)
                value = math.exp(eta_d[lo + k] - eta_tx - m * lp - s1 * lq)
                carried = 0
            a, b = ep / P_l, ed / Q_l
            fastest = max(a, b)
            rate = m * a + s1 * b
            length = h - u
            if fastest * length > MAX_SPAN:
                length = MAX_SPAN / fastest
            if rate * length > MAX_DECAY:
                length = MAX_DECAY / rate
            last = length >= h - u
            if last:
                length = h - u
            span, decay = fastest * length, rate * length
            sums = _piece(u, length, _node_count(span, decay), a * length, b * length,
                          span <= 0.125 and decay <= 0.25, P_l, Q_l, lp, lq, value, m, s1,
                          gradient)
            I_k += sums[0]
            if gradient:
                GP += sums[1]
                GQ += sums[2]
                Gep += sums[3]
                Ged += sums[4]
                sum_Lm += sums[5]
                sum_Ls += sums[6]
            lp, lq, value = sums[7], sums[8], sums[9]
            carried += 1
            # the rest of the path is below P^-m Q^-s at the piece's end
            if value * (Q_l + b * length * Q_l) * bound_factor <= _NEGLIGIBLE * (total + I_k):
                stopped = True
                break
            if last or not length > 0.0:  # (a NaN length cannot loop)
                break
            u += length
        total += I_k
        dead += I_k
        if gradient:
            sum_GP += GP
            sum_GQ += GQ
            work[k, _GP], work[k, _GQ] = GP, GQ
            work[k, _OWN_P] = -m * Gep               # own slope, within the segment
            work[k, _OWN_D] = I_k - s1 * ed * Ged    # the factor exp(eta_d) and its slope

    counts_term = 0.0
    for j in range(lo, hi):
        counts_term += counts[j] * eta_p[j]
    ll = (log_gamma_ratio_scalar(r, x) + r * math.log(alpha) + s * math.log(beta) + counts_term
          + log_ref + math.log(total))
    if not gradient:
        return ll
    inv_R = 1.0 / total
    d_own[0] = (digamma_scalar(m) - digamma_scalar(r) + math.log(alpha) - log_P_tx
                - (alive * growth_P + sum_Lm) * inv_R)
    d_own[1] = r / alpha - m * (alive / P_T + sum_GP) * inv_R
    d_own[2] = math.log(beta) - log_Q_tx + (dead / s - alive * growth_Q - sum_Ls) * inv_R
    d_own[3] = s / beta - (s * alive / Q_T + s1 * sum_GQ) * inv_R
    # backward: the offsets P, Q of everything after segment k move with exp(eta_k) h_k
    after_P, after_Q = -m * alive / P_T, -s * alive / Q_T
    for k in range(n - 1, -1, -1):
        j = lo + k
        h, ep, ed = work[k, _LENGTH], work[k, _EP], work[k, _ED]
        d_eta_p[j] = counts[j] + ep * (h * after_P + work[k, _OWN_P]) * inv_R
        d_eta_d[j] = (ed * h * after_Q + work[k, _OWN_D]) * inv_R
        after_P -= m * work[k, _GP]
        after_Q -= s1 * work[k, _GQ]
    return ll


@_jit
def _run(r, alpha, s, beta, x, t_x, T, offsets, seg_end, eta_p, eta_d, counts, gradient):  # pragma: no cover
    n = x.size
    n_seg = seg_end.size
    width = 1
    for i in range(n):
        width = max(width, offsets[i + 1] - offsets[i])
    work = np.empty((width, 10))
    ll = np.empty(n)
    d_own = np.full((n if gradient else 0, 4), math.nan)
    d_eta_p = np.full(n_seg if gradient else 0, math.nan)
    d_eta_d = np.full(n_seg if gradient else 0, math.nan)
    row = np.empty(4)
    for i in range(n):
        ll[i] = _customer(r[i], alpha[i], s[i], beta[i], x[i], t_x[i], T[i], offsets[i],
                          offsets[i + 1], seg_end, eta_p, eta_d, counts, gradient, work,
                          d_own[i] if gradient else row, d_eta_p, d_eta_d)
    return ll, d_own, d_eta_p, d_eta_d


@_jit
def pnbd_tv_loglik(r, alpha, s, beta, x, t_x, T, offsets, seg_end, eta_p, eta_d, counts):  # pragma: no cover
    """Each customer's log-likelihood and its exact gradient (see the module docstring).

    Arrays float64 but ``offsets`` (int64, N+1): own parameters ``r, alpha, s, beta`` (N,),
    ``x, t_x, T`` (N,); per segment ``seg_end, eta_p, eta_d, counts`` (n_seg,). Returns ``ll``
    (N,), ``d_own`` (N, 4) = d ll_i / d(r_i, alpha_i, s_i, beta_i), ``d_eta_p``, ``d_eta_d``
    (n_seg,) = d ll_i / d eta of the customer's segment (the counts term included), so the
    gradient in the coefficients is ``X_seg.T @ d_eta``. NaN rows where invalid. Compiled,
    nogil, no global state: callers may thread over customer chunks."""
    return _run(r, alpha, s, beta, x, t_x, T, offsets, seg_end, eta_p, eta_d, counts, True)


@_jit
def pnbd_tv_loglik_only(r, alpha, s, beta, x, t_x, T, offsets, seg_end, eta_p, eta_d, counts):  # pragma: no cover
    """``pnbd_tv_loglik``'s ``ll`` alone (no gradient sums, no backward pass)."""
    return _run(r, alpha, s, beta, x, t_x, T, offsets, seg_end, eta_p, eta_d, counts, False)[0]
