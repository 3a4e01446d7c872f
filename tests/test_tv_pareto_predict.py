"""Pareto/NBD predictions with time-varying covariates (issue 31): clvlab.models.tv_pareto_predict.

References, each independent of the module's formulas: clvlab's static-covariate Pareto/NBD
(constant paths), mpmath at 60 digits (Gauss's 2F1 of the untransformed antiderivative, Tricomi's
U for the discounted integral), scipy quadrature over the dropout time (and the purchase rate),
and a simulation of customers on a seasonal path.
"""

from __future__ import annotations

import mpmath as mp
import numpy as np
import pandas as pd
import pytest
from scipy import integrate, special, stats

import clvlab
from clvlab.core.errors import ClvlabError
from clvlab.models import tv_pareto_predict as tv
from clvlab.models.tv_pareto_predict import (pnbd_tv_dect, pnbd_tv_expected_purchases,
                                             pnbd_tv_expected_purchases_by_horizon,
                                             pnbd_tv_p_alive, pnbd_tv_purchase_pmf)


def flatten(paths):
    """(offsets, seg_end, eta_p, eta_d) from one (ends, eta_p, eta_d) per customer."""
    offsets = np.cumsum([0] + [len(p[0]) for p in paths])
    return (offsets, *(np.concatenate([np.asarray(p[j], float) for p in paths]) for j in range(3)))


def clock(ends, eta, t):
    """int_0^t exp(eta(u)) du of a piecewise-constant path."""
    starts = np.concatenate([[0.0], ends[:-1]])
    return float(np.sum(np.exp(eta) * np.clip(np.minimum(ends, t) - starts, 0, None)))


def pieces(ends, lo, hi):
    """(segment, start, end) of the segments' parts inside [lo, hi]."""
    starts = np.concatenate([[0.0], ends[:-1]])
    return [(k, max(a, lo), min(b, hi)) for k, (a, b) in enumerate(zip(starts, ends))
            if min(b, hi) > max(a, lo)]


# --- references ----------------------------------------------------------------------------------

def p_alive_mpmath(r, alpha, s, beta, x, t_x, T, ends, ep, ed):
    """60 digits; each segment's dead integral as G(Q0) - G(Q1) with
    G(w) = int_w^inf u^-(s+1) (kappa + c u)^-m du
         = c^-m w^-(s+m)/(s+m) 2F1(m, s+m; s+m+1; -kappa/(c w))
    (t = 1/u in the integral; no Pfaff transformation, no branches)."""
    with mp.workdps(60):
        m, s = mp.mpf(r) + x, mp.mpf(s)
        A = lambda t: alpha + mp.mpf(clock(ends, ep, t))  # noqa: E731  (exact in double)
        Bq = lambda t: beta + mp.mpf(clock(ends, ed, t))  # noqa: E731
        G = lambda w, c, kappa: (c ** -m * w ** -(s + m) / (s + m)  # noqa: E731
                                 * mp.hyp2f1(m, s + m, s + m + 1, -kappa / (c * w)))
        dead = mp.mpf(0)
        for k, lo, hi in pieces(ends, t_x, T):
            c = mp.exp(ep[k]) / mp.exp(ed[k])
            kappa = A(lo) - c * Bq(lo)
            dead += G(Bq(lo), c, kappa) - G(Bq(lo) + mp.exp(ed[k]) * (mp.mpf(hi) - lo), c, kappa)
        alive = A(T) ** -m * Bq(T) ** -s
        return float(alive / (alive + s * dead))


def survival_integral_quad(s, beta, T, h, ends, ep, ed, delta=0.0):
    """int_T^{T+h} exp(eta_p(u) - delta (u-T)) ((beta+B(T))/(beta+B(u)))^s du, scipy per segment."""
    Q_T = beta + clock(ends, ed, T)
    total = 0.0
    for k, lo, hi in pieces(ends, T, T + h):
        Q0 = beta + clock(ends, ed, lo)
        def f(u, k=k, lo=lo, Q0=Q0):
            Q = Q0 + np.exp(ed[k]) * (u - lo)
            return np.exp(ep[k] - delta * (u - T) - s * np.log(Q / Q_T))
        total += integrate.quad(f, lo, hi, epsabs=0, epsrel=1e-13, limit=200)[0]
    return total


def pmf_quad(r, alpha, s, beta, x, t_x, T, h, n, ends, ep, ed, alive):
    """P(N = n) by scipy quadrature over the dropout time tau, the NB written out."""
    m = r + x
    P_T, Q_T, A_T = alpha + clock(ends, ep, T), beta + clock(ends, ed, T), clock(ends, ep, T)

    def nb(E):
        return np.exp(special.gammaln(m + n) - special.gammaln(m) - special.gammaln(n + 1)
                      - m * np.log1p(E / P_T) + special.xlogy(n, E / (P_T + E)))

    value = (Q_T / (beta + clock(ends, ed, T + h))) ** s * nb(clock(ends, ep, T + h) - A_T)
    for k, lo, hi in pieces(ends, T, T + h):
        def f(tau):
            Q = beta + clock(ends, ed, lo) + np.exp(ed[k]) * (tau - lo)
            return s * np.exp(ed[k]) * (Q_T / Q) ** s / Q * nb(clock(ends, ep, tau) - A_T)
        value += integrate.quad(f, lo, hi, epsabs=1e-15, epsrel=1e-12, limit=400)[0]
    return alive * value + (1 - alive) * (n == 0)


# --- cases ---------------------------------------------------------------------------------------

def random_paths(rng, T, reach, k_max=12, scale=1.5):
    paths = []
    for i in range(len(T)):
        k = int(rng.integers(1, k_max))
        cuts = np.sort(rng.uniform(0, reach[i], k))
        ends = np.unique(np.concatenate([cuts, [T[i], reach[i]]]))  # a boundary at T
        paths.append((ends, rng.normal(0, scale, ends.size).clip(-8, 8),
                      rng.normal(0, scale, ends.size).clip(-8, 8)))
    return paths


#: customers whose P(alive), expectations and PMF are checked against references: ordinary,
#: a heavy buyer, x = 0, alpha >> beta, beta >> alpha, s tiny, s large, s = 1, T small
CASES = [  # r, alpha, s, beta, x, t_x, T
    (0.8, 5.0, 0.7, 12.0, 3, 10.0, 30.0), (2.0, 3.0, 0.5, 40.0, 200, 39.5, 40.0),
    (0.5, 8.0, 1.2, 20.0, 0, 0.0, 25.0), (1.1, 900.0, 0.4, 0.05, 6, 12.0, 20.0),
    (0.3, 0.02, 2.5, 800.0, 2, 3.0, 15.0), (1.5, 10.0, 1e-3, 5.0, 4, 8.0, 9.0),
    (0.9, 2.0, 30.0, 60.0, 12, 50.0, 60.0), (0.7, 6.0, 1.0, 9.0, 5, 4.0, 11.0),
    (3.0, 0.5, 0.8, 0.3, 1, 0.004, 0.01)]


def case_arrays(rng, horizon_share=0.5):
    params = np.array(CASES, dtype=float).T
    T = params[6]
    h = T * horizon_share + 0.5
    paths = random_paths(rng, T, T + np.maximum(h, 6.0) * rng.uniform(1.0, 1.4, T.size))
    return (*params, h, paths)


# --- constant covariates: the static model -------------------------------------------------------

def test_constant_covariates_match_static_pareto_nbd():
    rng = np.random.default_rng(3)
    r, alpha, s, beta, x, t_x, T, h, paths = case_arrays(rng)
    eta_p, eta_d = rng.normal(0, 1, T.size), rng.normal(0, 1, T.size)
    flat = flatten([(e, np.full(e.size, eta_p[i]), np.full(e.size, eta_d[i]))
                    for i, (e, _, _) in enumerate(paths)])
    horizons = np.array([5.0, 0.2, 2.0])
    got = dict(alive=pnbd_tv_p_alive(r, alpha, s, beta, x, t_x, T, *flat),
               expected=pnbd_tv_expected_purchases(r, alpha, s, beta, x, t_x, T, h, *flat),
               by_horizon=pnbd_tv_expected_purchases_by_horizon(r, alpha, s, beta, x, t_x, T,
                                                                horizons, *flat),
               pmf=pnbd_tv_purchase_pmf(r, alpha, s, beta, x, t_x, T, h, 4, *flat))
    for i in range(T.size):
        model = clvlab.ParetoNBD.from_params(r=r[i], alpha=alpha[i] * np.exp(-eta_p[i]), s=s[i],
                                             beta=beta[i] * np.exp(-eta_d[i]))
        rfm = pd.DataFrame({"frequency": [x[i]], "recency": [t_x[i]], "T": [T[i]]})
        np.testing.assert_allclose(got["alive"][i], model.p_alive(rfm).iloc[0], rtol=1e-10)
        np.testing.assert_allclose(got["expected"][i], model.expected_purchases(rfm, h[i]).iloc[0],
                                   rtol=1e-10)
        np.testing.assert_allclose(got["by_horizon"][i],
                                   model.expected_purchases_by_horizon(rfm, horizons).iloc[0],
                                   rtol=1e-10)
        static_pmf = [model.purchase_probability(n, h[i], rfm=rfm).iloc[0] for n in range(5)]
        np.testing.assert_allclose(got["pmf"][i], static_pmf, rtol=1e-10, atol=1e-15)


def test_dect_constant_covariates_against_tricomi_u_and_quadrature():
    """Constant path: int_0^h a e^(-delta u) (Q_T/(Q_T + d u))^s du
    = (a/d) Q_T^s (d/delta)^(1-s) [U(s, s, k0) - e^(-delta h) U(s, s, k1)], k = delta Q/d."""
    r, alpha, s, beta, x, t_x, T, h = 0.8, 5.0, 0.7, 12.0, 3.0, 10.0, 30.0, 26.0
    for s in (0.7, 1.0, 2.5, 30.0):
        for delta in (1e-4, 0.02, 0.5, 4.0):
            ep, ed = 0.3, -0.4
            flat = flatten([(np.array([7.0, 30.0, 41.5, 56.0]), np.full(4, ep), np.full(4, ed))])
            got = pnbd_tv_dect(r, alpha, s, beta, x, t_x, T, h, delta, *flat)[0]
            p = pnbd_tv_p_alive(r, alpha, s, beta, x, t_x, T, *flat)[0]
            a, d = np.exp(ep), np.exp(ed)
            Q_T, P_T = beta + d * T, alpha + a * T
            with mp.workdps(40):
                k0, k1 = delta * mp.mpf(Q_T) / d, delta * (mp.mpf(Q_T) + d * h) / d
                u = (a / d * mp.mpf(Q_T) ** s * (d / mp.mpf(delta)) ** (1 - s)
                     * (mp.hyperu(s, s, k0) - mp.exp(-delta * h) * mp.hyperu(s, s, k1)))
            np.testing.assert_allclose(got, p * (r + x) / P_T * float(u), rtol=1e-11)
            quad = survival_integral_quad(s, beta, T, h, flat[1], flat[2], flat[3], delta)
            np.testing.assert_allclose(got, p * (r + x) / P_T * quad, rtol=1e-11)
    # no discounting is the expectation
    args = (r, alpha, 0.7, beta, x, t_x, T, h)
    np.testing.assert_allclose(pnbd_tv_dect(*args, 0.0, *flat),
                               pnbd_tv_expected_purchases(*args, *flat), rtol=1e-14)


# --- time-varying paths: independent references --------------------------------------------------

def test_p_alive_time_varying_against_mpmath_2f1():
    rng = np.random.default_rng(11)
    r, alpha, s, beta, x, t_x, T, h, paths = case_arrays(rng)
    flat = flatten(paths)
    got = pnbd_tv_p_alive(r, alpha, s, beta, x, t_x, T, *flat)
    want = [p_alive_mpmath(*(v[i] for v in (r, alpha, s, beta, x, t_x, T)), *paths[i])
            for i in range(T.size)]
    np.testing.assert_allclose(got, want, rtol=1e-11)
    assert 0.05 < np.median(got) < 0.99  # not a test of degenerate customers only
    # the pieces the closed form takes, integrated by quadrature instead: the same
    quadrature = tv._probability(tv._alive(tv._inputs(r, alpha, s, beta, x, t_x, T, None, *flat),
                                           force_quadrature=True)[:, 0])
    np.testing.assert_allclose(quadrature, want, rtol=1e-11)


def test_p_alive_extreme_paths_against_mpmath_2f1():
    """eta to +-8, alpha >> beta and beta >> alpha, hundreds of purchases, many segments."""
    rng = np.random.default_rng(5)
    n = 12
    r = 10 ** rng.uniform(-1.5, 1.5, n)
    alpha, beta = 10 ** rng.uniform(-2, 3, n), 10 ** rng.uniform(-2, 3, n)
    s = rng.choice([1e-3, 0.3, 1.0, 2.5, 30.0], n)
    T = 10 ** rng.uniform(-1, 2.3, n)
    x = rng.choice([0.0, 1.0, 30.0, 300.0], n)
    t_x = np.where(x > 0, T * rng.uniform(0, 1, n), 0.0)
    paths = random_paths(rng, T, T * 1.5, k_max=40, scale=4.0)
    got = pnbd_tv_p_alive(r, alpha, s, beta, x, t_x, T, *flatten(paths))
    want = [p_alive_mpmath(r[i], alpha[i], s[i], beta[i], x[i], t_x[i], T[i], *paths[i])
            for i in range(n)]
    np.testing.assert_allclose(got, want, rtol=1e-10)


def test_expected_purchases_and_dect_against_quadrature():
    rng = np.random.default_rng(12)
    r, alpha, s, beta, x, t_x, T, h, paths = case_arrays(rng)
    flat = flatten(paths)
    expected = pnbd_tv_expected_purchases(r, alpha, s, beta, x, t_x, T, h, *flat)
    dect = pnbd_tv_dect(r, alpha, s, beta, x, t_x, T, h, 0.05, *flat)
    for i in range(T.size):
        ends, ep, ed = paths[i]
        scale = (p_alive_mpmath(r[i], alpha[i], s[i], beta[i], x[i], t_x[i], T[i], *paths[i])
                 * (r[i] + x[i]) / (alpha[i] + clock(ends, ep, T[i])))
        window = (s[i], beta[i], T[i], h[i], *paths[i])
        np.testing.assert_allclose(expected[i], scale * survival_integral_quad(*window), rtol=1e-10)
        np.testing.assert_allclose(dect[i], scale * survival_integral_quad(*window, 0.05),
                                   rtol=1e-10)
    assert np.all(dect < expected)
    # by horizon: the same values, columns in the order given, in one pass
    horizons = np.array([4.0, 0.5, 6.0, 2.0])
    table = pnbd_tv_expected_purchases_by_horizon(r, alpha, s, beta, x, t_x, T, horizons, *flat)
    for j, hj in enumerate(horizons):
        np.testing.assert_allclose(table[:, j], pnbd_tv_expected_purchases(
            r, alpha, s, beta, x, t_x, T, hj, *flat), rtol=1e-13)


def test_expected_purchases_continuous_through_s_equal_one():
    rng = np.random.default_rng(2)
    paths = random_paths(rng, np.array([20.0]), np.array([60.0]), scale=2.0)
    flat = flatten(paths)
    values = [pnbd_tv_expected_purchases(0.8, 5.0, s, 12.0, 3.0, 10.0, 20.0, 35.0, *flat)[0]
              for s in (1 - 1e-9, 1.0, 1 + 1e-9)]
    exact = (p_alive_mpmath(0.8, 5.0, 1.0, 12.0, 3, 10.0, 20.0, *paths[0]) * 3.8
             / (5.0 + clock(paths[0][0], paths[0][1], 20.0))
             * survival_integral_quad(1.0, 12.0, 20.0, 35.0, *paths[0]))
    np.testing.assert_allclose(values, exact, rtol=1e-8)   # the slope in s is O(1): 1e-9 moves
    np.testing.assert_allclose(values[1], exact, rtol=1e-11)
    assert values[0] != values[1] != values[2]


def test_purchase_pmf_against_quadrature_over_dropout_time():
    rng = np.random.default_rng(13)
    r, alpha, s, beta, x, t_x, T, h, paths = case_arrays(rng, horizon_share=1.0)
    flat = flatten(paths)
    n_max = 40
    pmf = pnbd_tv_purchase_pmf(r, alpha, s, beta, x, t_x, T, h, n_max, *flat)
    expected = pnbd_tv_expected_purchases(r, alpha, s, beta, x, t_x, T, h, *flat)
    for i in range(T.size):
        alive = p_alive_mpmath(*(v[i] for v in (r, alpha, s, beta, x, t_x, T)), *paths[i])
        mean = expected[i]
        for n in {0, 1, 2, int(mean), int(mean) + 1, int(2 * mean) + 1} & set(range(n_max + 1)):
            want = pmf_quad(r[i], alpha[i], s[i], beta[i], x[i], t_x[i], T[i], h[i], n, *paths[i],
                            alive)
            assert abs(pmf[i, n] - want) <= 1e-10, (i, n, pmf[i, n], want)
    assert np.all(pmf.sum(axis=1) <= 1 + 1e-13)
    # the mean of the distribution is the expectation (n_max high enough to hold the whole mass)
    whole = pnbd_tv_purchase_pmf(r, alpha, s, beta, x, t_x, T, h, 3000, *flat)
    assert np.all(np.abs(1 - whole.sum(axis=1)) < 1e-12)
    np.testing.assert_allclose(whole @ np.arange(3001), expected, rtol=1e-10)


def test_purchase_pmf_against_a_double_integral_over_rate_and_dropout():
    """P(N = n | alive) = int f(tau) int Gamma(lambda; r+x, alpha+A(T)) Poisson(n; lambda E(tau))
    dlambda dtau, the negative binomial not written out."""
    ends = np.array([3.0, 7.0, 10.0, 13.5, 18.0])
    ep, ed = np.array([0.2, -0.5, 0.9, 0.1, -1.0]), np.array([-0.3, 0.6, 0.0, 1.2, -0.7])
    r, alpha, s, beta, x, t_x, T, h = 1.3, 2.0, 0.9, 6.0, 4.0, 6.0, 10.0, 8.0
    flat = flatten([(ends, ep, ed)])
    pmf = pnbd_tv_purchase_pmf(r, alpha, s, beta, x, t_x, T, h, 5, *flat)[0]
    alive = p_alive_mpmath(r, alpha, s, beta, x, t_x, T, ends, ep, ed)
    A_T, Q_T = clock(ends, ep, T), beta + clock(ends, ed, T)
    m, P_T = r + x, alpha + A_T
    log_gamma_norm = m * np.log(P_T) - special.gammaln(m)

    def given_exposure(n, E):  # the Poisson count over exposure E mixed over the rate's posterior
        def f(lam):
            return np.exp(log_gamma_norm + (m - 1) * np.log(lam) - P_T * lam
                          + special.xlogy(n, lam * E) - lam * E - special.gammaln(n + 1))
        return integrate.quad(f, 0, np.inf, epsabs=1e-14, epsrel=1e-12, limit=200)[0]

    for n in (0, 2, 5):
        survival = (Q_T / (beta + clock(ends, ed, T + h))) ** s
        value = survival * given_exposure(n, clock(ends, ep, T + h) - A_T)
        for k, lo, hi in pieces(ends, T, T + h):
            def f(tau, k=k, n=n):
                density = s * np.exp(ed[k]) * Q_T ** s * (beta + clock(ends, ed, tau)) ** (-s - 1)
                return density * given_exposure(n, clock(ends, ep, tau) - A_T)
            value += integrate.quad(f, lo, hi, epsabs=1e-13, epsrel=1e-10)[0]
        np.testing.assert_allclose(pmf[n], alive * value + (1 - alive) * (n == 0),
                                   rtol=1e-8, atol=1e-12)


# --- simulation ----------------------------------------------------------------------------------

def seasonal_eta(weeks):
    """Weekly purchase and dropout log-multipliers: a yearly season; the holdout (weeks 52-78)
    is the high purchase season."""
    return 0.8 * np.sin(2 * np.pi * weeks / 52), 0.7 * np.cos(2 * np.pi * weeks / 52)


def simulate(n, seed, r=0.9, alpha=4.0, s=0.8, beta=30.0, calibration_end=52, horizon=26):
    """Customers arriving over weeks 0-40, each on the calendar's weekly path: dropout at
    tau = B^-1(E/mu) with E ~ Exp(1), purchases a Poisson process of rate lambda in the A clock
    (uniform A-times given their number), mapped back by A^-1."""
    rng = np.random.default_rng(seed)
    first = rng.uniform(0, 40, n)
    lam, mu = rng.gamma(r, 1 / alpha, n), rng.gamma(s, 1 / beta, n)
    T = calibration_end - first
    x, t_x, holdout, alive, paths = np.zeros(n), np.zeros(n), np.zeros(n), np.zeros(n, bool), []
    for i in range(n):
        weeks = np.arange(np.floor(first[i]), calibration_end + horizon)
        ends = np.minimum(weeks + 1, calibration_end + horizon) - first[i]
        eta_p, eta_d = seasonal_eta(weeks)
        knots = np.concatenate([[0.0], ends])
        A = np.concatenate([[0.0], np.cumsum(np.exp(eta_p) * np.diff(knots))])
        B = np.concatenate([[0.0], np.cumsum(np.exp(eta_d) * np.diff(knots))])
        tau = np.interp(rng.exponential() / mu[i], B, knots, right=np.inf)
        a_stop = np.interp(min(tau, knots[-1]), knots, A)
        times = np.interp(np.sort(rng.uniform(0, a_stop, rng.poisson(lam[i] * a_stop))), A, knots)
        calibration = times[times <= T[i]]
        x[i], t_x[i] = calibration.size, calibration.max(initial=0.0)
        holdout[i], alive[i] = np.sum(times > T[i]), tau > T[i]
        paths.append((ends, eta_p, eta_d))
    return (r, alpha, s, beta), x, t_x, T, float(horizon), flatten(paths), holdout, alive


def calibration_z(predicted, realised, groups):
    """(overall z, largest |z| over groups) of the mean realised minus the mean predicted."""
    def z(mask):
        d = realised[mask] - predicted[mask]
        return d.mean() / (d.std() / np.sqrt(mask.sum()))
    return z(np.ones(predicted.size, bool)), max(abs(z(groups == g)) for g in np.unique(groups))


def deciles(v):
    return np.argsort(np.argsort(v, kind="stable")) * 10 // v.size


def test_simulated_customers_on_a_seasonal_path():
    params, x, t_x, T, h, flat, holdout, alive = simulate(4000, seed=7)
    expected = pnbd_tv_expected_purchases(*params, x, t_x, T, h, *flat)
    p_alive = pnbd_tv_p_alive(*params, x, t_x, T, *flat)
    overall, worst = calibration_z(expected, holdout, deciles(expected))
    assert abs(overall) < 4 and worst < 4, (overall, worst)
    # P(alive) against the simulated alive indicator, within deciles (binomial standard errors)
    for g in range(10):
        m = deciles(p_alive) == g
        se = np.sqrt(np.sum(p_alive[m] * (1 - p_alive[m]))) / m.sum()
        assert abs(alive[m].mean() - p_alive[m].mean()) < 4 * se + 1e-12, g
    # the PMF against the holdout counts: Pearson's statistic over 0..9 and 10+
    pmf = pnbd_tv_purchase_pmf(*params, x, t_x, T, h, 9, *flat)
    want = np.append(pmf.sum(axis=0), x.size - pmf.sum())
    seen = np.append(np.bincount(holdout.astype(int).clip(max=10), minlength=11)[:10],
                     np.sum(holdout >= 10))
    assert want.min() > 50
    chi2 = np.sum((seen - want) ** 2 / want)
    assert chi2 < stats.chi2.ppf(0.999, want.size - 1), chi2
    # the same checks reject predictions that ignore the path (all eta = 0): they have power
    flat_zero = (flat[0], flat[1], np.zeros_like(flat[2]), np.zeros_like(flat[3]))
    overall_zero, _ = calibration_z(pnbd_tv_expected_purchases(*params, x, t_x, T, h, *flat_zero),
                                    holdout, deciles(expected))
    pmf_zero = pnbd_tv_purchase_pmf(*params, x, t_x, T, h, 9, *flat_zero)
    want_zero = np.append(pmf_zero.sum(axis=0), x.size - pmf_zero.sum())
    assert abs(overall_zero) > 8
    assert np.sum((seen - want_zero) ** 2 / want_zero) > 3 * stats.chi2.ppf(0.999, want.size - 1)


# --- inputs --------------------------------------------------------------------------------------

def small_inputs():
    paths = [(np.array([10.0, 20.0, 40.0]), np.array([0.1, -0.2, 0.3]), np.array([0.0, 0.5, -0.5])),
             (np.array([5.0, 30.0]), np.array([0.4, 0.0]), np.array([-0.3, 0.2]))]
    own = (np.array([0.8, 0.8]), np.array([5.0, 5.0]), np.array([0.7, 0.7]), np.array([12.0, 12.0]),
           np.array([3.0, 1.0]), np.array([10.0, 2.0]), np.array([25.0, 24.0]))
    return own, flatten(paths)


def test_a_path_short_of_the_horizon_is_refused_with_the_customer_and_its_reach():
    own, flat = small_inputs()
    with pytest.raises(ClvlabError, match=r"position 1 reaches 30 time units.*T \+ horizon = 34 "
                                          r"\(T = 24, horizon = 10\)"):
        pnbd_tv_expected_purchases(*own, np.array([10.0, 10.0]), *flat)
    for call in (lambda: pnbd_tv_purchase_pmf(*own, 10.0, 3, *flat),
                 lambda: pnbd_tv_dect(*own, 10.0, 0.01, *flat),
                 lambda: pnbd_tv_expected_purchases_by_horizon(*own, [2.0, 10.0], *flat)):
        with pytest.raises(ClvlabError, match="position 1 reaches 30"):
            call()
    # within reach (customer 1 up to 30 - 24 = 6), and a path short by rounding only, predict
    assert np.all(pnbd_tv_expected_purchases(*own, np.array([15.0, 6.0 + 1e-12]), *flat) > 0)


def test_bad_inputs_are_named_and_nan_stays_nan():
    own, flat = small_inputs()
    r, alpha, s, beta, x, t_x, T = own
    with pytest.raises(ClvlabError, match=r"t_x breaks the rule 0 <= t_x <= T: the customer at "
                                          r"position 0"):
        pnbd_tv_p_alive(r, alpha, s, beta, x, np.array([26.0, 2.0]), T, *flat)
    with pytest.raises(ClvlabError, match="seg_end must increase.*position 1, segment 1"):
        pnbd_tv_p_alive(*own, flat[0], np.array([10.0, 20.0, 40.0, 5.0, 5.0]), *flat[2:])
    with pytest.raises(ClvlabError, match="offsets"):
        pnbd_tv_p_alive(*own, np.array([0, 3, 4]), *flat[1:])
    with pytest.raises(ClvlabError, match="horizon > 0"):
        pnbd_tv_expected_purchases(*own, 0.0, *flat)
    with pytest.raises(ClvlabError, match="discount_rate"):
        pnbd_tv_dect(*own, 5.0, -0.1, *flat)
    with pytest.raises(ClvlabError, match="n_max"):
        pnbd_tv_purchase_pmf(*own, 5.0, -1, *flat)
    # a NaN input (a parameter, or an eta of the customer's path) gives NaN, the rest unchanged
    clean = pnbd_tv_purchase_pmf(*own, 5.0, 3, *flat)
    eta_p = flat[2].copy()
    eta_p[4] = np.nan
    for args in ((r, alpha, s, np.array([12.0, np.nan]), x, t_x, T, 5.0, 3, *flat),
                 (*own, 5.0, 3, *flat[:2], eta_p, flat[3])):
        got = pnbd_tv_purchase_pmf(*args)
        assert np.all(np.isnan(got[1])) and np.array_equal(got[0], clean[0])
    alive = pnbd_tv_p_alive(*own[:6], np.array([25.0, np.nan]), *flat)
    assert np.isnan(alive[1]) and np.isfinite(alive[0])
