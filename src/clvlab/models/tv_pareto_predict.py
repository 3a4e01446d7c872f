"""Pareto/NBD predictions with time-varying covariates, given each customer's covariate path.

Segments are the spec's flattened layout (issue 31): customer i owns segments
offsets[i]..offsets[i+1]-1, segment k covers [seg_end[k-1] (0 for the first), seg_end[k]) with
purchase rate lambda exp(eta_p[k]) and dropout rate mu exp(eta_d[k]); here the segments reach
T_i + h_i. With A(t) = int_0^t exp(eta_p), B(t) = int_0^t exp(eta_d), m = r + x,
P(t) = alpha + A(t) and Q(t) = beta + B(t):

- P(alive at T | history) = L_alive / (L_alive + s I), L_alive = P(T)^-m Q(T)^-s and
  I = int_{t_x}^T exp(eta_d(tau)) Q(tau)^-(s+1) P(tau)^-m dtau (the factor exp(sum eta_p(t_j))
  of the likelihood cancels). On a segment, with w = Q(tau), c = a/d (a = exp(eta_p),
  d = exp(eta_d)) and kappa = P - c Q, the piece is F(Q0) - F(Q1), F(w) = int_w^inf
  u^-(s+1) (kappa + c u)^-m du, which is
  w^-s P^-m / (s+m) 2F1(1, m; s+m+1; kappa/P) for kappa >= 0 and
  P^(1-m) w^-(s+1) / (c (s+m)) 2F1(1, s+1; s+m+1; -kappa/(c w)) for kappa < 0
  (0 <= z < 1, the positive series of ``_hyp.series_1bc``). Pieces over which the integrand
  changes little (F(Q0) - F(Q1) would cancel) or where z is near 1 (the series is slow) are
  integrated by composite Gauss-Legendre instead.
- Alive at T, lambda ~ Gamma(m, P(T)) and mu ~ Gamma(s, Q(T)) independently; survival
  S(u) = (Q(T)/Q(u))^s, so E[N(T, T+h]] = P(alive) m/P(T) int_T^{T+h} exp(eta_p(u)) S(u) du,
  per segment a L (l/rho) phi((s-1) l) (Q(T)/Q0)^s with rho = d L/Q0, l = log1p(rho),
  phi(u) = (1 - e^-u)/u (exact at and near s = 1).
- DECT: the same integral with the weight exp(-delta (u - T)) (CLVTools' DECT of pnbd_dyncov),
  composite Gauss-Legendre over panels where the integrand changes by at most a factor e.
- PMF: given alive at T and dropout at tau, N ~ NB(m, P(T)) over the exposure
  E = A(min(tau, T+h)) - A(T): NB(n | E) = G(m+n)/(G(m) n!) (P/(P+E))^m (E/(P+E))^n. So
  P(N = n) = (1 - P(alive)) [n = 0] + P(alive) [int_T^{T+h} f(tau) NB(n | E(tau)) dtau
  + S(T+h) NB(n | E(T+h))], f(tau) = s d Q(T)^s Q(tau)^-(s+1); composite Gauss-Legendre over
  panels that resolve both f and the NB peak (width sqrt(1/n + 1/m) in log E).
"""

from __future__ import annotations

import math

import numba
import numpy as np

from clvlab.core.errors import ClvlabError
from clvlab.models._hyp import series_1bc

__all__ = ["pnbd_tv_p_alive", "pnbd_tv_expected_purchases", "pnbd_tv_expected_purchases_by_horizon",
           "pnbd_tv_dect", "pnbd_tv_purchase_pmf"]

_GL_X, _GL_W = np.polynomial.legendre.leggauss(20)
_NODES = (_GL_X + 1.0) / 2.0   # Gauss-Legendre on (0, 1): 20 nodes are exact to rounding on a
_WEIGHTS = _GL_W / 2.0         # panel over which the integrand changes by at most a factor e
_LOG2 = math.log(2.0)
_NEGLIGIBLE = 1e-18            # a remainder below this share of the running sum is dropped
_SLOW_SERIES_Z = 0.99          # 2F1(1, b; c; z) needs ~1/(1-z) terms: quadrature beyond
_MAX_PANELS = 1_000_000        # a bound on loops, never reached by the panel rules below
#: a path that falls short of T + h by this relative amount (rounding of calendar arithmetic)
#: is taken to reach it
_REACH_TOLERANCE = 1e-9


# --- the dead-by-T integral ----------------------------------------------------------------------

@numba.njit(cache=True, nogil=True)
def _log_dead_piece_quadrature(m, s, P0, Q0, a, d, L):  # pragma: no cover - compiled
    """log int_0^L d (Q0 + d v)^-(s+1) (P0 + a v)^-m dv by composite Gauss-Legendre: panels over
    which Q and P grow by at most 2 and the integrand falls by at most e; stops once the rest
    (below g(v) (L - v) and the tail P^-m Q^-s / s) is negligible."""
    log_g0 = math.log(d) - (s + 1.0) * math.log(Q0) - m * math.log(P0)
    q_growth = math.expm1(min(_LOG2, 1.0 / (s + 1.0)))
    p_growth = math.expm1(min(_LOG2, 1.0 / m)) if m > 0 else 1.0
    v, P, Q, total = 0.0, P0, Q0, 0.0
    for _ in range(_MAX_PANELS):
        if v >= L:
            break
        log_g = math.log(d) - (s + 1.0) * math.log(Q) - m * math.log(P)
        if total > 0:
            rest = min(log_g + math.log(L - v), -m * math.log(P) - s * math.log(Q) - math.log(s))
            if rest - log_g0 < math.log(_NEGLIGIBLE * total):
                break
        step = min(Q * q_growth / d, P * p_growth / a, L - v)
        panel = 0.0
        for j in range(_NODES.size):
            y = _NODES[j] * step
            panel += _WEIGHTS[j] * math.exp(-(s + 1.0) * math.log1p(d * y / Q)
                                            - m * math.log1p(a * y / P) + log_g - log_g0)
        total += panel * step
        v += step
        P, Q = P0 + a * v, Q0 + d * v
    return log_g0 + math.log(total)


@numba.njit(cache=True, nogil=True)
def _log_tail(m, s, w, P, c, kappa):  # pragma: no cover - compiled
    """log F(w) = log int_w^inf u^-(s+1) (kappa + c u)^-m du with P = kappa + c w, and whether
    the 2F1 series is fast there (z <= _SLOW_SERIES_Z) and converged."""
    if kappa >= 0:
        z = kappa / P
        log_f, _, _, _, converged = series_1bc(m, s + m + 1.0, z)
        value = -s * math.log(w) - m * math.log(P) - math.log(s + m) + log_f
    else:
        z = -kappa / (c * w)
        log_f, _, _, _, converged = series_1bc(s + 1.0, s + m + 1.0, z)
        value = ((1.0 - m) * math.log(P) - (s + 1.0) * math.log(w) - math.log(c)
                 - math.log(s + m) + log_f)
    return value, converged and z <= _SLOW_SERIES_Z


@numba.njit(cache=True, nogil=True)
def _log_dead_piece(m, s, P0, Q0, a, d, L, force_quadrature):  # pragma: no cover - compiled
    """log int_0^L d Q(v)^-(s+1) P(v)^-m dv on one segment: F(Q0) - F(Q1) in 2F1 where the
    integrand falls by more than e over the piece (so the difference loses at most a few
    digits), else quadrature."""
    change = (s + 1.0) * math.log1p(d * L / Q0) + m * math.log1p(a * L / P0)
    if change > 1.0 and not force_quadrature:
        c = a / d
        kappa = P0 - c * Q0
        log_f0, fast0 = _log_tail(m, s, Q0, P0, c, kappa)
        log_f1, fast1 = _log_tail(m, s, Q0 + d * L, P0 + a * L, c, kappa)
        if fast0 and fast1 and log_f1 < log_f0:
            return log_f0 + math.log(-math.expm1(log_f1 - log_f0))
    return _log_dead_piece_quadrature(m, s, P0, Q0, a, d, L)


@numba.njit(cache=True, nogil=True)
def _alive_rows(r, alpha, s, beta, x, t_x, T, offsets, seg_end, eta_p, eta_d, skip,
                force_quadrature, out):  # pragma: no cover - compiled
    """out[i] = (log(L_alive / (s I)), A(T), B(T)) per customer."""
    for i in range(r.size):
        if skip[i]:
            out[i, :] = np.nan
            continue
        m = r[i] + x[i]
        A = B = A_T = B_T = start = 0.0
        log_dead = -np.inf
        for k in range(offsets[i], offsets[i + 1]):
            if start >= T[i]:
                break
            end, a, d = seg_end[k], math.exp(eta_p[k]), math.exp(eta_d[k])
            lo, hi = max(start, t_x[i]), min(end, T[i])
            if hi > lo:
                piece = _log_dead_piece(m, s[i], alpha[i] + A + a * (lo - start),
                                        beta[i] + B + d * (lo - start), a, d, hi - lo,
                                        force_quadrature)
                log_dead = (piece if log_dead == -np.inf else max(log_dead, piece)
                            + math.log1p(math.exp(-abs(log_dead - piece))))
            A_T, B_T = A + a * (min(end, T[i]) - start), B + d * (min(end, T[i]) - start)
            A, B, start = A + a * (end - start), B + d * (end - start), end
        log_alive = -m * math.log(alpha[i] + A_T) - s[i] * math.log(beta[i] + B_T)
        out[i, 0] = log_alive - math.log(s[i]) - log_dead
        out[i, 1], out[i, 2] = A_T, B_T


# --- expected purchases --------------------------------------------------------------------------

@numba.njit(cache=True, nogil=True)
def _survival_piece(a, d, s, Q_T, Q0, L):  # pragma: no cover - compiled
    """int_0^L a (Q_T / (Q0 + d v))^s dv = a L (l/rho) phi((s-1) l) (Q_T/Q0)^s."""
    if L <= 0:
        return 0.0
    rho = d * L / Q0
    ell = math.log1p(rho)
    u = (s - 1.0) * ell
    phi = 1.0 if u == 0 else -math.expm1(-u) / u
    shrink = 1.0 if rho == 0 else ell / rho
    return a * L * shrink * phi * math.exp(-s * math.log(Q0 / Q_T))


@numba.njit(cache=True, nogil=True)
def _discounted_piece(a, d, s, Q_T, Q0, L, delta, lag, total):  # pragma: no cover - compiled
    """int_0^L a exp(-delta (lag + v)) (Q_T / (Q0 + d v))^s dv by composite Gauss-Legendre:
    panels where Q grows by at most 2 and the integrand falls by at most e; stops once the
    rest (below g(v) min(L - v, 1/delta, Q/((s-1) d))) is negligible beside ``total``.
    Without discounting, the closed form."""
    if delta == 0:
        return _survival_piece(a, d, s, Q_T, Q0, L)
    q_growth = math.expm1(min(_LOG2, 1.0 / s))
    v, out = 0.0, 0.0
    for _ in range(_MAX_PANELS):
        if v >= L:
            break
        Q = Q0 + d * v
        g = a * math.exp(-delta * (lag + v) - s * math.log(Q / Q_T))
        if total + out > 0:
            reach = min(L - v, 1.0 / delta)
            if s > 1:
                reach = min(reach, Q / ((s - 1.0) * d))
            if g * reach < _NEGLIGIBLE * (total + out):
                break
        step = min(Q * q_growth / d, L - v, 1.0 / delta)
        panel = 0.0
        for j in range(_NODES.size):
            y = _NODES[j] * step
            panel += _WEIGHTS[j] * math.exp(-delta * y - s * math.log1p(d * y / Q))
        out += g * panel * step
        v += step
    return out


@numba.njit(cache=True, nogil=True)
def _exposure_rows(s, beta, T, horizons, delta, offsets, seg_end, eta_p, eta_d, skip,
                   out):  # pragma: no cover - compiled
    """out[i, j] = int_T^{T+h_ij} exp(eta_p(u) - delta (u - T)) S(u) du, horizons ascending
    along each row; delta = 0 uses the closed form."""
    for i in range(s.size):
        if skip[i]:
            out[i, :] = np.nan
            continue
        H = horizons.shape[1]
        B = start = total = 0.0
        Q_T = np.nan
        j = 0
        for k in range(offsets[i], offsets[i + 1]):
            if j >= H:
                break
            end, a, d = seg_end[k], math.exp(eta_p[k]), math.exp(eta_d[k])
            if end > T[i]:
                lo = max(start, T[i])
                Q0 = beta[i] + B + d * (lo - start)
                if math.isnan(Q_T):
                    Q_T = Q0
                while j < H and T[i] + horizons[i, j] <= end:
                    out[i, j] = total + _discounted_piece(a, d, s[i], Q_T, Q0, T[i] + horizons[i, j]
                                                          - lo, delta, lo - T[i], total)
                    j += 1
                if j < H:
                    total += _discounted_piece(a, d, s[i], Q_T, Q0, end - lo, delta, lo - T[i],
                                               total)
            B, start = B + d * (end - start), end


# --- the purchase distribution -------------------------------------------------------------------

@numba.njit(cache=True, nogil=True)
def _add_negative_binomial(row, log_weight, m, P_T, E, ratios):  # pragma: no cover - compiled
    """row[n] += weight NB(n | E), n = 0..n_max, by the recursion NB(n)/NB(n-1) =
    ratios[n] E/(P+E), ratios[n] = (m+n-1)/n: in logs while the terms would underflow, then by
    products; stops past the mode once the terms underflow."""
    log_term = log_weight - m * math.log1p(E / P_T)
    row[0] += math.exp(log_term)
    if E <= 0:
        return
    q = E / (P_T + E)
    log_q, mode = math.log(q), (m - 1.0) * E / P_T
    term = 0.0
    for n in range(1, row.size):
        if term == 0.0:
            log_term += math.log(ratios[n]) + log_q
            if log_term > -700.0:
                term = math.exp(log_term)
            elif n > mode:
                break
        else:
            term *= ratios[n] * q
            if term < 1e-300 and n > mode:
                break
        row[n] += term


@numba.njit(cache=True, nogil=True)
def _pmf_rows(r, s, alpha, beta, x, T, horizon, alive, p_alive, p_dead, offsets, seg_end, eta_p,
              eta_d, skip, out):  # pragma: no cover - compiled
    """out[i, n] = P(N(T, T+h_i] = n | history); ``alive`` holds (log odds, A(T), B(T))."""
    n_max = out.shape[1] - 1
    ratios, density = np.ones(n_max + 1), np.empty(_NODES.size)
    for i in range(r.size):
        row = out[i]
        row[:] = 0.0
        if skip[i]:
            row[:] = np.nan
            continue
        m, s_i = r[i] + x[i], s[i]
        P_T, Q_T = alpha[i] + alive[i, 1], beta[i] + alive[i, 2]
        for n in range(1, n_max + 1):
            ratios[n] = (m + n - 1.0) / n
        # NB(n | E) has relative width about sqrt(1/n + 1/m) in log E: panels of at most
        # 8/sqrt(m+1) in v = log1p(E/c), c = P(T)/m (about 2.5 nodes a width, as in
        # predictive_kernels), and Q grows by at most 2 with the density falling by at most e
        scale = P_T / m
        v_step = min(1.0, 8.0 / math.sqrt(m + 1.0))
        q_growth = math.expm1(min(_LOG2, 1.0 / (s_i + 1.0)))
        stop = T[i] + horizon[i]
        A = B = start = 0.0
        E, survival = 0.0, 1.0
        for k in range(offsets[i], offsets[i + 1]):
            end, a, d = seg_end[k], math.exp(eta_p[k]), math.exp(eta_d[k])
            if end > T[i] and start < stop:
                lo, hi = max(start, T[i]), min(end, stop)
                E = A + a * (lo - start) - alive[i, 1]
                Q = beta[i] + B + d * (lo - start)
                for _ in range(_MAX_PANELS):
                    if lo >= hi or survival < _NEGLIGIBLE:
                        break
                    to_e = (scale * math.expm1(math.log1p(E / scale) + v_step) - E) / a
                    step = min(Q * q_growth / d, to_e, hi - lo)
                    # the panel's exact dropout mass S(lo) - S(lo + step), shared by its nodes
                    mass = survival * -math.expm1(-s_i * math.log1p(d * step / Q))
                    for j in range(_NODES.size):
                        density[j] = _WEIGHTS[j] * math.exp(
                            -(s_i + 1.0) * math.log1p(d * step * _NODES[j] / Q))
                    log_share = math.log(mass / density.sum())
                    for j in range(_NODES.size):
                        _add_negative_binomial(row, log_share + math.log(density[j]), m, P_T,
                                               E + a * step * _NODES[j], ratios)
                    lo, E, Q = lo + step, E + a * step, Q + d * step
                    survival = math.exp(-s_i * math.log(Q / Q_T))
                if lo < hi:  # survival negligible: the exposure at the window's end still counts
                    E += a * (hi - lo)
            A, B, start = A + a * (end - start), B + d * (end - start), end
            if start >= stop:
                break
        if survival > 0:
            _add_negative_binomial(row, math.log(survival), m, P_T, E, ratios)
        for n in range(n_max + 1):
            row[n] *= p_alive[i]
        row[0] += p_dead[i]


# --- the public functions ------------------------------------------------------------------------

def pnbd_tv_p_alive(r, alpha, s, beta, x, t_x, T, offsets, seg_end, eta_p, eta_d) -> np.ndarray:
    """P(alive at T | history) per customer (N,): L_alive / (L_alive + s I) (module docstring);
    NaN where an input of the customer is NaN."""
    args = _inputs(r, alpha, s, beta, x, t_x, T, None, offsets, seg_end, eta_p, eta_d)
    return _probability(_alive(args)[:, 0])


def pnbd_tv_expected_purchases(r, alpha, s, beta, x, t_x, T, horizon, offsets, seg_end, eta_p,
                               eta_d) -> np.ndarray:
    """E[N(T, T+h] | history] per customer (N,), horizon h per customer (or one for all):
    P(alive) (r+x)/(alpha+A(T)) int_T^{T+h} exp(eta_p(u)) ((beta+B(T))/(beta+B(u)))^s du."""
    return _expected(r, alpha, s, beta, x, t_x, T, horizon, 0.0, offsets, seg_end, eta_p, eta_d)


def pnbd_tv_expected_purchases_by_horizon(r, alpha, s, beta, x, t_x, T, horizons, offsets,
                                          seg_end, eta_p, eta_d) -> np.ndarray:
    """``pnbd_tv_expected_purchases`` at each of ``horizons`` (H,), shared by all customers:
    (N, H), columns in the order given, in one pass (the integral accumulated over the
    horizons in ascending order)."""
    horizons = np.asarray(horizons, dtype=np.float64)
    if horizons.ndim != 1 or horizons.size == 0:
        raise ClvlabError(f"horizons must be one non-empty list of horizons shared by all "
                          f"customers, got shape {horizons.shape}")
    order = np.argsort(horizons, kind="stable")
    n = np.asarray(offsets).size - 1
    grid = np.ascontiguousarray(np.broadcast_to(horizons[order], (max(n, 0), horizons.size)))
    values = _expected(r, alpha, s, beta, x, t_x, T, grid, 0.0, offsets, seg_end, eta_p, eta_d)
    out = np.empty_like(values)
    out[:, order] = values
    return out


def pnbd_tv_dect(r, alpha, s, beta, x, t_x, T, horizon, discount_rate, offsets, seg_end, eta_p,
                 eta_d) -> np.ndarray:
    """Discounted expected transactions over (T, T+h] (N,):
    P(alive) (r+x)/(alpha+A(T)) int_T^{T+h} exp(eta_p(u) - delta (u-T)) S(u) du with the
    continuous discount rate delta = ``discount_rate`` per time unit (CLVTools' DECT)."""
    delta = float(discount_rate)
    if not (np.isfinite(delta) and delta >= 0):
        raise ClvlabError(f"discount_rate must be a finite rate >= 0 per time unit (e.g. 0.1/52 "
                          f"for 10 % a year in weeks), got {discount_rate!r}")
    return _expected(r, alpha, s, beta, x, t_x, T, horizon, delta, offsets, seg_end, eta_p, eta_d)


def pnbd_tv_purchase_pmf(r, alpha, s, beta, x, t_x, T, horizon, n_max, offsets, seg_end, eta_p,
                         eta_d) -> np.ndarray:
    """P(N(T, T+h] = n | history) for n = 0..n_max: (N, n_max+1); a row's tail beyond n_max is
    1 - its sum. Composite Gauss-Legendre over the dropout time (module docstring)."""
    if not (isinstance(n_max, (int, np.integer)) and n_max >= 0):
        raise ClvlabError(f"n_max must be a whole number >= 0, got {n_max!r}")
    args = _inputs(r, alpha, s, beta, x, t_x, T, horizon, offsets, seg_end, eta_p, eta_d)
    (r, alpha, s, beta, x, _, T, horizon, offsets, seg_end, eta_p, eta_d, skip) = args
    out = np.empty((r.size, int(n_max) + 1))
    alive = _alive(args)
    _pmf_rows(r, s, alpha, beta, x, T, horizon[:, -1].copy(), alive, _probability(alive[:, 0]),
              _probability(-alive[:, 0]), offsets, seg_end, eta_p, eta_d, skip, out)
    return out


def _expected(r, alpha, s, beta, x, t_x, T, horizon, delta, offsets, seg_end, eta_p, eta_d):
    args = _inputs(r, alpha, s, beta, x, t_x, T, horizon, offsets, seg_end, eta_p, eta_d)
    r, alpha, s, beta, x, _, T, horizons, offsets, seg_end, eta_p, eta_d, skip = args
    alive = _alive(args)
    exposure = np.empty(horizons.shape)
    _exposure_rows(s, beta, T, horizons, delta, offsets, seg_end, eta_p, eta_d, skip, exposure)
    values = (_probability(alive[:, 0]) * (r + x) / (alpha + alive[:, 1]))[:, None] * exposure
    return values[:, 0] if np.ndim(horizon) < 2 else values


def _alive(args, force_quadrature: bool = False) -> np.ndarray:
    """(log odds of alive, A(T), B(T)) per customer; ``force_quadrature`` integrates every piece
    of the dead-by-T integral by quadrature (a test compares the two paths)."""
    r, alpha, s, beta, x, t_x, T, _, offsets, seg_end, eta_p, eta_d, skip = args
    out = np.empty((r.size, 3))
    _alive_rows(r, alpha, s, beta, x, t_x, T, offsets, seg_end, eta_p, eta_d, skip,
                force_quadrature, out)
    return out


def _probability(log_odds: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        return np.exp(-np.logaddexp(0.0, -log_odds))


def _inputs(r, alpha, s, beta, x, t_x, T, horizon, offsets, seg_end, eta_p, eta_d) -> tuple:
    """Checked contiguous float64 arrays: customers (N,), horizons (N, H) (zeros for None),
    segments (a last segment short of T + h by rounding only extended), and ``skip``: the
    customers with a NaN input, whose predictions are NaN."""
    offsets = np.asarray(offsets)
    segments = [np.array(v, dtype=np.float64).ravel() for v in (seg_end, eta_p, eta_d)]
    if (offsets.ndim != 1 or offsets.size < 1 or not np.issubdtype(offsets.dtype, np.integer)
            or offsets[0] != 0 or np.any(np.diff(offsets) < 1)
            or any(v.size != offsets[-1] for v in segments)):
        raise ClvlabError(f"offsets must be N + 1 integers from 0, at least one segment per "
                          f"customer, to the number of segments; got offsets {offsets[:5]}... "
                          f"and seg_end, eta_p, eta_d of sizes {[v.size for v in segments]}")
    offsets, n = np.ascontiguousarray(offsets, dtype=np.int64), offsets.size - 1
    h = np.zeros(1) if horizon is None else np.asarray(horizon, dtype=np.float64)
    h = h if h.ndim == 2 else h.reshape(-1, 1)
    names = ("r", "alpha", "s", "beta", "x", "t_x", "T")
    try:
        own = dict(zip(names, (np.ascontiguousarray(np.broadcast_to(np.asarray(
            v, dtype=np.float64), (n,))) for v in (r, alpha, s, beta, x, t_x, T))))
        horizons = np.ascontiguousarray(np.broadcast_to(h, (n, h.shape[1])))
    except ValueError:
        raise ClvlabError(f"r, alpha, s, beta, x, t_x, T and horizon take one value per customer "
                          f"(offsets give N = {n}) or one for all") from None
    seg_end, starts = segments[0], np.concatenate([[0.0], segments[0][:-1]])
    starts[offsets[:-1]] = 0.0
    skip = (~np.isfinite(np.column_stack([*own.values(), horizons])).all(axis=1)
            | np.add.reduceat(~np.isfinite(np.column_stack(segments)).all(axis=1), offsets[:-1]))
    r, alpha, s, beta, x, t_x, T = own.values()
    own["horizon"] = horizons.min(axis=1)
    for column, bad, rule in [("r", r <= 0, "r > 0"), ("alpha", alpha <= 0, "alpha > 0"),
                              ("s", s <= 0, "s > 0"), ("beta", beta <= 0, "beta > 0"),
                              ("x", x < 0, "x >= 0"), ("T", T < 0, "T >= 0"),
                              ("t_x", (t_x < 0) | (t_x > T), "0 <= t_x <= T"),
                              ("horizon", own["horizon"] <= (-1 if horizon is None else 0),
                               "horizon > 0")]:
        if (bad & ~skip).any():
            i = int(np.flatnonzero(bad & ~skip)[0])
            raise ClvlabError(f"{column} breaks the rule {rule}: the customer at position {i} has "
                              f"{column} = {own[column][i]:.6g}")
    if np.any(seg_end <= starts):
        k = int(np.flatnonzero(seg_end <= starts)[0])
        i = int(np.searchsorted(offsets, k, side="right") - 1)
        raise ClvlabError(f"seg_end must increase within each customer's path from > 0: customer "
                          f"at position {i}, segment {k - offsets[i]}, ends at {seg_end[k]:.6g} "
                          f"after a segment ending at {starts[k]:.6g}")
    last, needed = offsets[1:] - 1, T + horizons[:, -1]
    short = (seg_end[last] < needed - _REACH_TOLERANCE * np.maximum(1.0, needed)) & ~skip
    if short.any():
        i = int(np.flatnonzero(short)[0])
        raise ClvlabError(
            f"seg_end: the covariate path of the customer at position {i} reaches "
            f"{seg_end[last[i]]:.6g} time units after its first purchase, short of "
            f"T + horizon = {needed[i]:.6g} (T = {T[i]:.6g}, horizon = {horizons[i, -1]:.6g}); "
            "the segments must cover the whole prediction window (a covariate panel and "
            "CovariatePaths whose path_end is at or beyond calibration end + horizon)")
    seg_end[last] = np.where(skip, seg_end[last], np.maximum(seg_end[last], needed))
    return (r, alpha, s, beta, x, t_x, T, horizons, offsets, seg_end, *segments[1:], skip)
