"""The Pareto/NBD log-likelihood with time-varying covariates (``tv_pareto_kernel``) against
independent references: adaptive quadrature (QUADPACK through scipy, mpmath's tanh-sinh at 30
digits) of the likelihood's integral over the dropout time, clvlab's static-covariate ParetoNBD
where the covariates are constant, and finite differences for the gradient."""

from __future__ import annotations

import math
import warnings
from concurrent.futures import ThreadPoolExecutor

import mpmath
import numpy as np
import pandas as pd
import pytest
from scipy import integrate, special

from clvlab import ParetoNBD
from clvlab.models import tv_pareto_kernel as kernel
from clvlab.models.tv_pareto_kernel import pnbd_tv_loglik, pnbd_tv_loglik_only


# --- customers and their flattened segments -----------------------------------------------------
def customer(r, alpha, s, beta, x, t_x, T, ends, eta_p, eta_d, counts=None) -> dict:
    ends = np.asarray(ends, dtype=float)
    if counts is None:  # every repeat purchase in the segment that holds t_x
        counts = np.zeros(ends.size)
        counts[min(int(np.searchsorted(ends, t_x, side="right")), ends.size - 1)] = x
    return dict(r=r, alpha=alpha, s=s, beta=beta, x=float(x), t_x=t_x, T=T, ends=ends,
                eta_p=np.asarray(eta_p, float), eta_d=np.asarray(eta_d, float),
                counts=np.asarray(counts, float))


def pack(customers: list[dict]) -> tuple:
    """The kernel's arguments for a list of customers."""
    own = [np.array([c[k] for c in customers], dtype=float)
           for k in ("r", "alpha", "s", "beta", "x", "t_x", "T")]
    offsets = np.zeros(len(customers) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([c["ends"].size for c in customers])
    flat = [np.concatenate([c[k] for c in customers]) for k in ("ends", "eta_p", "eta_d", "counts")]
    return (*own, offsets, *flat)


def random_customer(rng, n_seg=None, eta_range=10.0) -> dict:
    """Parameters log-uniform over the design's ranges (1e-3..1e4; T 1e-3..1e3), segments of
    lengths spread over three decades, eta uniform in [-eta_range, eta_range], x from none to
    many, t_x at 0, inside a segment, on a segment boundary or at T."""
    r, alpha, s, beta = 10.0 ** rng.uniform(-3, 4, 4)
    T = 10.0 ** rng.uniform(-3, 3)
    n_seg = n_seg or int(rng.choice([1, 2, 3, 8, 40]))
    ends = np.cumsum(10.0 ** rng.uniform(-3, 0, n_seg))
    ends = ends / ends[-1] * T
    ends[-1] = T
    x = float(rng.choice([0, 1, 4, 60]))
    where = rng.integers(3)
    t_x = 0.0 if x == 0 else (float(rng.uniform(0, T)) if where == 0 or n_seg == 1
                              else float(ends[rng.integers(n_seg - 1)]) if where == 1 else T)
    eta_p, eta_d = rng.uniform(-eta_range, eta_range, (2, n_seg))
    return customer(r, alpha, s, beta, x, t_x, T, ends, eta_p, eta_d)


# --- references -------------------------------------------------------------------------------
def _segments(c):
    starts = np.concatenate([[0.0], c["ends"][:-1]])
    ep, ed = np.exp(c["eta_p"]), np.exp(c["eta_d"])
    lengths = c["ends"] - starts
    A = np.concatenate([[0.0], np.cumsum(ep * lengths)])
    B = np.concatenate([[0.0], np.cumsum(ed * lengths)])
    return starts, ep, ed, A, B


def _breakpoints(lo, hi, P, Q, ep, ed, m, s1):
    """Points from lo to hi where P or Q has grown by at most a half, or the integrand fallen
    by at most e, so that each piece is an easy integrand for the adaptive rules (at most 400:
    beyond, the integrand is below exp(-400) of its start)."""
    points, t = [lo], lo
    while t < hi and len(points) < 400:
        p, q = P(t), Q(t)
        t = min(hi, t + min(0.5 * p / ep, 0.5 * q / ed, 1.0 / (m * ep / p + s1 * ed / q)))
        points.append(t)
    return points


def reference_loglik(c) -> float:
    """log L from the design's formula with scipy's adaptive Gauss-Kronrod (QUADPACK) on each
    piece: L = exp(sum counts eta_p) G(r+x)/G(r) alpha^r beta^s [P(T)^-m Q(T)^-s
    + int_{t_x}^T s exp(eta_d) Q^-(s+1) P^-m dtau], the integrand taken relative to its value at
    t_x (logs of ratios: no overflow)."""
    r, alpha, s, beta, x, t_x, T = (c[k] for k in ("r", "alpha", "s", "beta", "x", "t_x", "T"))
    m, s1 = r + x, s + 1.0
    starts, ep, ed, A, B = _segments(c)
    k_tx = min(int(np.searchsorted(c["ends"], t_x, side="right")), len(starts) - 1)
    P_tx = alpha + A[k_tx] + ep[k_tx] * (t_x - starts[k_tx])
    Q_tx = beta + B[k_tx] + ed[k_tx] * (t_x - starts[k_tx])
    log_unit = math.log(s) + c["eta_d"][k_tx] - m * math.log(P_tx) - s1 * math.log(Q_tx)
    log_alive = -m * math.log(alpha + A[-1]) - s * math.log(beta + B[-1])
    total = math.exp(log_alive - log_unit)
    for k in range(len(starts)):
        lo, hi = max(starts[k], t_x), c["ends"][k]
        if hi <= lo:
            continue
        P = lambda t, k=k: alpha + A[k] + ep[k] * (t - starts[k])  # noqa: E731
        Q = lambda t, k=k: beta + B[k] + ed[k] * (t - starts[k])  # noqa: E731
        f = lambda t, k=k: math.exp(c["eta_d"][k] - c["eta_d"][k_tx] - m * math.log(P(t) / P_tx)  # noqa: E731
                                    - s1 * math.log(Q(t) / Q_tx))
        points = _breakpoints(lo, hi, P, Q, ep[k], ed[k], m, s1)
        with warnings.catch_warnings():  # (QUADPACK warns that 2e-14 is near its rounding)
            warnings.simplefilter("ignore", integrate.IntegrationWarning)
            for a, b in zip(points[:-1], points[1:]):
                if f(a) * (hi - a) < 1e-20 * total:  # (f falls within a segment)
                    break
                total += integrate.quad(f, a, b, epsabs=0.0, epsrel=2e-14, limit=200)[0]
    return (special.gammaln(m) - special.gammaln(r) + r * math.log(alpha) + s * math.log(beta)
            + float(c["counts"] @ c["eta_p"]) + log_unit + math.log(total))


def mpmath_loglik(c, dps: int = 30) -> float:
    """The same log L with mpmath at ``dps`` digits (tanh-sinh on the same pieces)."""
    with mpmath.workdps(dps):
        mpf = mpmath.mpf
        r, alpha, s, beta, x, t_x = (mpf(c[k]) for k in ("r", "alpha", "s", "beta", "x", "t_x"))
        m = r + x
        ends = [mpf(e) for e in c["ends"]]
        starts = [mpf(0)] + ends[:-1]
        ep = [mpmath.exp(mpf(e)) for e in c["eta_p"]]
        ed = [mpmath.exp(mpf(e)) for e in c["eta_d"]]
        A, B = [mpf(0)], [mpf(0)]
        for k in range(len(ends)):
            A.append(A[-1] + ep[k] * (ends[k] - starts[k]))
            B.append(B[-1] + ed[k] * (ends[k] - starts[k]))
        total = (alpha + A[-1]) ** -m * (beta + B[-1]) ** -s
        for k in range(len(ends)):
            lo, hi = max(starts[k], t_x), ends[k]
            if hi <= lo:
                continue
            P = lambda t, k=k: alpha + A[k] + ep[k] * (t - starts[k])  # noqa: E731
            Q = lambda t, k=k: beta + B[k] + ed[k] * (t - starts[k])  # noqa: E731
            points = _breakpoints(lo, hi, P, Q, ep[k], ed[k], m, s + 1)
            total += mpmath.quad(lambda t, k=k: s * ed[k] * Q(t) ** (-s - 1) * P(t) ** -m, points)
        counts_term = sum(mpf(n) * mpf(e) for n, e in zip(c["counts"], c["eta_p"]))
        return float(mpmath.loggamma(m) - mpmath.loggamma(r) + r * mpmath.log(alpha)
                     + s * mpmath.log(beta) + counts_term + mpmath.log(total))


def magnitude(c) -> float:
    """The size of the terms that ll sums (its absolute rounding is ~1e-16 of this: ll near 0
    can be a difference of terms of 1e4)."""
    r, alpha, s, beta, x = (c[k] for k in ("r", "alpha", "s", "beta", "x"))
    _, _, _, A, B = _segments(c)
    return (1.0 + abs(special.gammaln(r + x)) + abs(special.gammaln(r)) + r * abs(math.log(alpha))
            + s * abs(math.log(beta)) + (r + x) * abs(math.log(alpha + A[-1]))
            + (s + 1) * abs(math.log(beta + B[-1])) + float(np.abs(c["counts"] @ c["eta_p"])))


def assert_close_ll(values, references, customers, rtol=1e-10):
    for value, ref, c in zip(values, references, customers):
        assert abs(value - ref) <= rtol * abs(ref) + 1e-13 * magnitude(c), (value, ref, c)


# --- value -------------------------------------------------------------------------------------
def test_matches_adaptive_quadrature_over_the_design_ranges():
    rng = np.random.default_rng(31)
    customers = [random_customer(rng) for _ in range(40)]
    ll, d_own, d_p, d_d = pnbd_tv_loglik(*pack(customers))
    assert_close_ll(ll, [reference_loglik(c) for c in customers], customers)
    assert np.all(np.isfinite(d_own)) and np.all(np.isfinite(d_p)) and np.all(np.isfinite(d_d))
    np.testing.assert_allclose(pnbd_tv_loglik_only(*pack(customers)), ll, rtol=1e-14, atol=1e-14)


@pytest.mark.parametrize("case", [
    # x = 0 from t_x = 0, alpha >> beta; beta >> alpha with an eta jump of 20; many purchases
    dict(r=0.5, alpha=1e4, s=0.3, beta=1e-3, x=0, t_x=0.0, T=50.0, ends=[3.0, 50.0],
         eta_p=[-10.0, 10.0], eta_d=[10.0, -10.0]),
    dict(r=2.0, alpha=1e-3, s=5.0, beta=1e4, x=60, t_x=7.0, T=9.0, ends=[7.0, 8.0, 9.0],
         eta_p=[0.5, -10.0, 10.0], eta_d=[-10.0, 10.0, 0.0]),
    dict(r=1e4, alpha=1e3, s=1e-3, beta=1e-3, x=3, t_x=0.2, T=1e3, ends=[0.5, 1e3],
         eta_p=[3.0, -3.0], eta_d=[0.0, 2.0]),
])
def test_matches_mpmath_at_30_digits(case):
    c = customer(**case)
    ll = pnbd_tv_loglik(*pack([c]))[0]
    assert_close_ll(ll, [mpmath_loglik(c)], [c], rtol=1e-12)


def test_constant_covariates_give_the_static_covariate_model():
    """eta constant per customer: exp(x eta_p) (alpha + e^eta_p T)^-(r+x) ... = the static model at
    alpha_i = alpha e^-eta_p, beta_i = beta e^-eta_d (the counts term and alpha^r combine into
    alpha_i^r), value and gradient: d/dalpha = e^-eta_p dstatic/dalpha_i and the sum of the
    segments' d/deta_p = -alpha_i dstatic/dalpha_i."""
    rng = np.random.default_rng(7)
    customers, static = [], []
    for _ in range(12):
        c = random_customer(rng, n_seg=int(rng.choice([1, 3, 20])), eta_range=0.0)
        c["eta_p"][:], c["eta_d"][:] = rng.uniform(-10, 10, 2)
        customers.append(c)
    ll, d_own, d_p, d_d = pnbd_tv_loglik(*pack(customers))
    offsets = pack(customers)[7]
    for i, c in enumerate(customers):
        alpha_i, beta_i = c["alpha"] * math.exp(-c["eta_p"][0]), c["beta"] * math.exp(-c["eta_d"][0])
        model = ParetoNBD.from_params(r=c["r"], alpha=alpha_i, s=c["s"], beta=beta_i)
        rfm = pd.DataFrame({"frequency": [c["x"]], "recency": [c["t_x"]], "T": [c["T"]]})
        static.append(float(model.log_likelihood(rfm, per_customer=True).iloc[0]))
        _, grad = ParetoNBD._loglik(np.array([c["r"], alpha_i, c["s"], beta_i]),
                                    [np.array([c["x"]]), np.array([c["t_x"]]), np.array([c["T"]])])
        expected = [grad[0, 0], grad[0, 1] * alpha_i / c["alpha"], grad[0, 2],
                    grad[0, 3] * beta_i / c["beta"]]
        np.testing.assert_allclose(d_own[i], expected, rtol=1e-8, atol=1e-10)
        lo, hi = offsets[i], offsets[i + 1]
        np.testing.assert_allclose([d_p[lo:hi].sum(), d_d[lo:hi].sum()],
                                   [-alpha_i * grad[0, 1], -beta_i * grad[0, 3]], rtol=1e-8,
                                   atol=1e-10)
    assert_close_ll(ll, static, customers)


def test_splitting_a_segment_changes_nothing():
    """Two segments with the same eta are one segment: the same ll (to 1e-12), and the merged
    segment's d/deta is the sum of its halves'."""
    rng = np.random.default_rng(11)
    whole, split, at = [], [], []
    for _ in range(15):
        c = random_customer(rng, n_seg=int(rng.choice([1, 4, 30])))
        k = int(rng.integers(c["ends"].size))
        start = c["ends"][k - 1] if k else 0.0
        cut = start + (c["ends"][k] - start) * float(rng.choice([1e-6, 0.3, 0.999]))
        parts = customer(c["r"], c["alpha"], c["s"], c["beta"], c["x"], c["t_x"], c["T"],
                         np.insert(c["ends"], k, cut), np.insert(c["eta_p"], k, c["eta_p"][k]),
                         np.insert(c["eta_d"], k, c["eta_d"][k]), np.insert(c["counts"], k, 0.0))
        whole.append(c)
        split.append(parts)
        at.append(k)
    ll, d_own, d_p, d_d = pnbd_tv_loglik(*pack(whole))
    ll2, d_own2, d_p2, d_d2 = pnbd_tv_loglik(*pack(split))
    assert_close_ll(ll2, ll, whole, rtol=1e-12)
    np.testing.assert_allclose(d_own2, d_own, rtol=1e-9, atol=1e-12)
    o, o2 = pack(whole)[7], pack(split)[7]
    for i, k in enumerate(at):
        for merged, halves in ((d_p, d_p2), (d_d, d_d2)):
            expected = np.insert(merged[o[i]:o[i + 1]], k, 0.0)
            got = halves[o2[i]:o2[i + 1]].copy()
            got[k + 1] += got[k]
            got[k] = 0.0
            np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-12)


# --- gradient ----------------------------------------------------------------------------------
OWN = ("r", "alpha", "s", "beta")
STENCIL = ((-2, 1.0), (-1, -8.0), (1, 8.0), (2, -1.0))  # 4th order: sum w f(x + j h) / (12 h)


def perturbed(c, what, k, step):
    """c with log(own parameter ``what``) or eta ``what``[k] moved by ``step``."""
    moved = {key: (value.copy() if isinstance(value, np.ndarray) else value)
             for key, value in c.items()}
    if what in OWN:
        moved[what] = c[what] * math.exp(step)
    else:
        moved[what][k] += step
    return moved


def finite_differences(customers, loglik, h=1e-3):
    """d ll / d log(own) (N, 4) and d ll / d eta_p, eta_d per segment, by the 4th-order central
    stencil of ``loglik`` (a function of a list of customers)."""
    rows, where = [], []
    for i, c in enumerate(customers):
        targets = [(name, 0) for name in OWN]
        targets += [(name, k) for name in ("eta_p", "eta_d") for k in range(c["ends"].size)]
        for target in targets:
            for j, weight in STENCIL:
                rows.append(perturbed(c, *target, j * h))
                where.append((i, target, weight))
    values = loglik(rows)
    d_own = np.zeros((len(customers), 4))
    d_eta = [{"eta_p": np.zeros(c["ends"].size), "eta_d": np.zeros(c["ends"].size)}
             for c in customers]
    for value, (i, (name, k), weight) in zip(values, where):
        if name in OWN:
            d_own[i, OWN.index(name)] += weight * value / (12 * h)
        else:
            d_eta[i][name][k] += weight * value / (12 * h)
    return d_own, d_eta


def assert_gradient(customers, d_own, d_p, d_d, fd_own, fd_eta, rtol=1e-6):
    offsets = pack(customers)[7]
    for i, c in enumerate(customers):
        atol = 1e-9 + 1e-12 * magnitude(c)
        own = d_own[i] * np.array([c[name] for name in OWN])  # d / d log(parameter)
        np.testing.assert_allclose(own, fd_own[i], rtol=rtol, atol=atol, err_msg=str(c))
        lo, hi = offsets[i], offsets[i + 1]
        np.testing.assert_allclose(d_p[lo:hi], fd_eta[i]["eta_p"], rtol=rtol, atol=atol, err_msg=str(c))
        np.testing.assert_allclose(d_d[lo:hi], fd_eta[i]["eta_d"], rtol=rtol, atol=atol, err_msg=str(c))


def test_gradient_matches_finite_differences_of_the_value():
    """Every component, over the design's ranges (the value itself is checked against the
    references above)."""
    rng = np.random.default_rng(5)
    customers = [random_customer(rng, n_seg=int(rng.choice([1, 2, 5, 25]))) for _ in range(24)]
    _, d_own, d_p, d_d = pnbd_tv_loglik(*pack(customers))
    fd_own, fd_eta = finite_differences(customers, lambda rows: pnbd_tv_loglik_only(*pack(rows)))
    assert_gradient(customers, d_own, d_p, d_d, fd_own, fd_eta)


def test_gradient_matches_finite_differences_of_the_quadrature_reference():
    """The same against differences of the independent reference (QUADPACK)."""
    rng = np.random.default_rng(8)
    customers = [random_customer(rng, n_seg=int(rng.choice([1, 2, 3])), eta_range=3.0)
                 for _ in range(5)]
    _, d_own, d_p, d_d = pnbd_tv_loglik(*pack(customers))
    fd_own, fd_eta = finite_differences(customers, lambda rows: [reference_loglik(c) for c in rows])
    assert_gradient(customers, d_own, d_p, d_d, fd_own, fd_eta)


# --- edges of the design's ranges ----------------------------------------------------------------
def test_extremes_are_finite_and_accurate():
    """Every corner of r, alpha, s, beta in {1e-3, 1e4}, T in {1e-3, 1e3}, eta jumping between
    -10 and 10, no purchase or 60: finite values and gradients, and the reference's values."""
    customers = []
    for corner in range(64):
        r, alpha, s, beta = (1e-3 if corner >> bit & 1 else 1e4 for bit in range(4))
        T = 1e-3 if corner >> 4 & 1 else 1e3
        x, t_x = (60.0, 0.4 * T) if corner >> 5 & 1 else (0.0, 0.0)
        sign = 1.0 if corner % 3 else -1.0
        customers.append(customer(r, alpha, s, beta, x, t_x, T, T * np.array([0.1, 0.5, 1.0]),
                                  sign * np.array([10.0, -10.0, 10.0]),
                                  sign * np.array([-10.0, 10.0, 10.0])))
    ll, d_own, d_p, d_d = pnbd_tv_loglik(*pack(customers))
    assert np.all(np.isfinite(ll)) and np.all(np.isfinite(d_own))
    assert np.all(np.isfinite(d_p)) and np.all(np.isfinite(d_d))
    assert_close_ll(ll, [reference_loglik(c) for c in customers], customers)


def test_a_thousand_segments_and_a_fast_decay():
    """1000 segments of uneven lengths; and r + x = 1e4 over a long path, where the integral
    stops once the rest of the path is negligible: the reference's values."""
    rng = np.random.default_rng(3)
    ends = np.cumsum(10.0 ** rng.uniform(-3, 0, 1000))
    long = customer(0.7, 5.0, 0.8, 12.0, 0.0, 0.0, 1e3, ends / ends[-1] * 1e3,
                    rng.uniform(-2, 2, 1000), rng.uniform(-2, 2, 1000))
    steep = customer(1e4, 1.0, 2.0, 1.0, 0.0, 0.0, 1e3, np.linspace(1.0, 1e3, 1000),
                     rng.uniform(-10, 10, 1000), rng.uniform(-10, 10, 1000))
    customers = [long, steep]
    ll, d_own, d_p, d_d = pnbd_tv_loglik(*pack(customers))
    assert_close_ll(ll, [reference_loglik(c) for c in customers], customers)
    assert np.all(np.isfinite(d_p)) and np.all(np.isfinite(d_d)) and np.all(np.isfinite(d_own))


def test_path_beyond_T_and_rounding_at_its_end():
    """Segments after T add nothing but their counts term (none); a path that ends within
    rounding of T is taken to reach T; one that ends short of T is unknown covariates (NaN)."""
    c = customer(1.2, 3.0, 0.7, 9.0, 2.0, 4.0, 10.0, [2.0, 6.0, 10.0], [0.3, -0.5, 1.0],
                 [0.2, 0.1, -0.4])
    longer = customer(**{**{k: c[k] for k in ("r", "alpha", "s", "beta", "x", "t_x", "T")},
                         "ends": [2.0, 6.0, 12.0, 15.0], "eta_p": [0.3, -0.5, 1.0, 4.0],
                         "eta_d": [0.2, 0.1, -0.4, -3.0], "counts": [0.0, 2.0, 0.0, 0.0]})
    rounded = {**c, "ends": np.array([2.0, 6.0, 10.0 * (1 - 1e-12)])}
    short = {**c, "ends": np.array([2.0, 6.0, 9.0])}
    ll, d_own, d_p, _ = pnbd_tv_loglik(*pack([c, longer, rounded, short]))
    np.testing.assert_allclose(ll[1:3], ll[0], rtol=1e-13)
    np.testing.assert_allclose(d_own[1], d_own[0], rtol=1e-12)
    np.testing.assert_allclose(d_p[6], 0.0, atol=0.0)  # the segment after T
    assert np.isnan(ll[3]) and np.all(np.isnan(d_own[3])) and np.all(np.isnan(d_p[-3:]))


def test_invalid_rows_are_nan_and_leave_the_others_alone():
    good = customer(1.0, 2.0, 0.5, 3.0, 1.0, 0.5, 2.0, [1.0, 2.0], [0.1, 0.2], [0.0, -0.1])
    bad = [{**good, "r": 0.0}, {**good, "beta": math.inf}, {**good, "t_x": 2.5},
           {**good, "ends": np.array([1.5, 1.0])}, {**good, "eta_d": np.array([math.nan, 0.0])},
           {**good, "x": -1.0}]
    ll, d_own, d_p, d_d = pnbd_tv_loglik(*pack([good, *bad, good]))
    assert np.isfinite(ll[0]) and ll[-1] == ll[0]
    assert np.all(np.isnan(ll[1:-1])) and np.all(np.isnan(d_own[1:-1]))
    assert np.all(np.isnan(d_p[2:-2])) and np.all(np.isnan(d_d[2:-2]))
    assert np.all(np.isfinite(d_p[-2:])) and np.isnan(pnbd_tv_loglik_only(*pack(bad))).all()


def test_threads_over_chunks_give_the_same_result():
    """nogil and no global state: chunks on threads equal one call."""
    rng = np.random.default_rng(2)
    customers = [random_customer(rng, n_seg=int(rng.choice([1, 10, 50]))) for _ in range(60)]
    whole = pnbd_tv_loglik(*pack(customers))
    with ThreadPoolExecutor(4) as pool:
        parts = list(pool.map(lambda lo: pnbd_tv_loglik(*pack(customers[lo:lo + 15])),
                              range(0, 60, 15)))
    for j in range(4):
        np.testing.assert_array_equal(np.concatenate([p[j] for p in parts]), whole[j])


# --- the quadrature rule's proof -------------------------------------------------------------------
def test_node_table_meets_the_error_bound():
    """Each entry's node count meets the module's bound at its bin's corner, recomputed here
    with rho from a bounded optimiser (any rho gives a valid bound); and one node fewer does
    not (the table wastes no node)."""
    from scipy.optimize import minimize_scalar

    def log_bound(n, chi, psi):
        def at(log_rho):
            rho = math.exp(log_rho)
            c = (rho + 1 / rho - 2) / 4
            if chi * c >= 1:
                return 1e300
            return (math.log(32 / 15) - math.log(rho ** 2 - 1) - 2 * n * log_rho
                    + psi * (1 + c) / (1 - chi * c))
        return min(minimize_scalar(at, bounds=(1e-4, math.log(5000.0)), method="bounded").fun,
                   *(at(v) for v in np.linspace(1e-3, math.log(5000.0), 400)))

    table, bins = kernel.node_table(), kernel._BINS
    np.testing.assert_array_equal(table, kernel._NODE_TABLE)
    tol = math.log(kernel.RELATIVE_TOLERANCE)
    for i in range(0, bins, 7):
        for j in range(0, bins, 5):
            chi = kernel.MAX_SPAN * ((i + 1) / bins) ** 2
            psi = kernel.MAX_DECAY * ((j + 1) / bins) ** 2
            n = int(table[i, j])
            assert log_bound(n, chi, psi) <= tol + 1e-9
            assert n == 1 or log_bound(n - 1, chi, psi) > tol - 1e-3
