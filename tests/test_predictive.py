"""The predictive distribution of purchases (models/predictive*.py) held to independent references.

References, computed here with mpmath and none of clvlab's recursions:
- BG/NBD, MBG/NBD: P(alive) from its closed form; the alive customer's PMF from the paper's
  formula summed term by term at 40 digits (the NB's upper tail summed directly, not as
  1 - the lower sum), and by quadrature over lambda (Poisson, no NB identity) on moderate cases.
- Pareto/NBD: P(alive) from the integral form of the likelihood (tests/reference.py's exact
  antiderivative); the PMF by mpmath.quad over the lifetime.
- BG/BB: P(alive at n) from the likelihood's terms; the PMF by enumerating the opportunities
  alive and the purchases among them.
Then the existing per-n method (``purchase_probability``), the PMF's own sums (moments, CDF,
quantiles), simulation (``draw_future_purchases``) and covariates (each customer at their own
parameters).
"""

from __future__ import annotations

import math

import mpmath as mp
import numpy as np
import pandas as pd
import pytest
from scipy import stats

import reference
from clvlab import BetaGeo, BetaGeoBetaBinom, ClvlabError, GammaGamma, ModifiedBetaGeo, ParetoNBD
from clvlab.data import simulate
from clvlab.models import predictive, predictive_plan
from clvlab.models.predictive_kernels import (conditional_pmf_matrix, customer_state, model_family,
                                              pmf_columns, pmf_matrix)

CDNOW_BG = dict(r=0.24, alpha=4.4, a=0.79, b=2.43)
CDNOW_PARETO = dict(r=0.55, alpha=10.6, s=0.61, beta=11.7)
DONATIONS = dict(alpha=1.2, beta=0.75, gamma=0.66, delta=2.78)
MODELS = {"bg": (BetaGeo, CDNOW_BG), "mbg": (ModifiedBetaGeo, CDNOW_BG),
          "pareto": (ParetoNBD, CDNOW_PARETO), "bgbb": (BetaGeoBetaBinom, DONATIONS)}
parametrize_models = pytest.mark.parametrize("name", list(MODELS))

#: histories at the edges: no repeat purchase, t_x = T, many purchases (x = 300, 3000)
EXTREME_RFM = pd.DataFrame({"frequency": [0.0, 5.0, 40.0, 300.0, 3000.0],
                            "recency": [0.0, 20.0, 39.0, 38.0, 39.0],
                            "T": [30.0, 39.0, 39.0, 39.0, 39.0]},
                           index=pd.Index(["none", "some", "at_T", "many", "heavy"], name="customer_id"))
EXTREME_TABLE = pd.DataFrame({"frequency": [0, 3, 6, 0, 40, 2], "recency": [0, 5, 6, 0, 40, 2],
                              "periods": [6, 6, 6, 1, 40, 100]})


def model_of(name, **params):
    cls, base = MODELS[name]
    return cls.from_params(**{**base, **params})


def customers(name, n=300, seed=3):
    """A simulated base of the model's kind at its own parameters."""
    cls, params = MODELS[name]
    if name == "bgbb":
        return simulate.bg_bb(n, **params, periods=6, seed=seed)[["frequency", "recency", "periods"]]
    simulator = {"bg": simulate.bg_nbd, "mbg": simulate.mbg_nbd, "pareto": simulate.pareto_nbd}[name]
    ages = np.random.default_rng(seed).uniform(1.0, 39.0, n)
    return simulator(n, **params, T=ages, seed=seed)[["frequency", "recency", "T"]]


def horizon(name):
    return 5 if name == "bgbb" else 39.0


# --- mpmath references -------------------------------------------------------------------------
mp.mp.dps = 30


def _log_nb(r, alpha, n, tau):
    return (mp.loggamma(r + n) - mp.loggamma(r) - mp.loggamma(n + 1) + r * mp.log(alpha / (alpha + tau))
            + n * mp.log(tau / (alpha + tau)))


def nb_survival(r, alpha, n, t):
    """P(N >= n) for the NB count over t: 1 - the lower sum below the mode, the upper tail
    summed term by term above it (no cancellation)."""
    if n <= (r - 1) * t / alpha:
        return 1 - mp.fsum(mp.exp(_log_nb(r, alpha, j, t)) for j in range(n))
    total, j = mp.mpf(0), n
    while True:
        term = mp.exp(_log_nb(r, alpha, j, t))
        total += term
        if term < total * mp.mpf(10) ** (3 - mp.mp.dps):
            return total
        j += 1


def bg_alive_pmf(r, alpha, a, b, n, t):
    """BG/NBD's PMF of an alive customer (Fader, Hardie & Lee 2005), at 40 digits."""
    with mp.workdps(40):
        r, alpha, a, b, t = map(mp.mpf, (r, alpha, a, b, t))
        out = mp.beta(a, b + n) / mp.beta(a, b) * mp.exp(_log_nb(r, alpha, n, t))
        if n >= 1:
            out += mp.beta(a + 1, b + n - 1) / mp.beta(a, b) * nb_survival(r, alpha, n, t)
        return out


def bg_alive_pmf_by_lambda(r, alpha, a, b, n, t):
    """The same by quadrature over lambda ~ Gamma(r, alpha) of Poisson terms (r >= 1)."""
    r, alpha, a, b, t = map(mp.mpf, (r, alpha, a, b, t))
    w = mp.beta(a, b + n) / mp.beta(a, b)
    v = mp.beta(a + 1, b + n - 1) / mp.beta(a, b) if n else 0

    def f(lam):
        density = mp.exp(r * mp.log(alpha) - mp.loggamma(r) + (r - 1) * mp.log(lam) - alpha * lam)
        mean = lam * t
        poisson = mp.exp(-mean + n * mp.log(mean) - mp.loggamma(n + 1))
        above = mp.gammainc(n, 0, mean, regularized=True) if n else 1  # P(Poisson >= n)
        return density * (w * poisson + v * above)

    peak = (r + n - 1) / (alpha + t)
    spread = mp.sqrt(r + n) / (alpha + t)
    return mp.quad(f, [0, max(peak - 10 * spread, peak / 4), peak, peak + 10 * spread, mp.inf])


def bg_alive_probability(r, alpha, a, b, x, t_x, T, first_chance):
    chances = x + first_chance
    if chances == 0:
        return mp.mpf(1)
    r, alpha, a, b = map(mp.mpf, (r, alpha, a, b))
    return 1 / (1 + a / (b + chances - 1) * ((alpha + T) / (alpha + t_x)) ** (r + x))


def pareto_alive_pmf(r, alpha, s, beta, n, t):
    """S(t) NB(n | t) + int_0^t f(tau) NB(n | tau) dtau by mpmath.quad over the lifetime."""
    r, alpha, s, beta, t = map(mp.mpf, (r, alpha, s, beta, t))
    nb = lambda tau: mp.exp(_log_nb(r, alpha, n, tau)) if tau > 0 else mp.mpf(n == 0)  # noqa: E731
    density = lambda tau: s / beta * (beta / (beta + tau)) ** (s + 1)  # noqa: E731
    peak = min(n * alpha / r, t)
    points = sorted({mp.mpf(0), peak / 2, peak, min(1.5 * peak, t), t, min(alpha / r, t)})
    return (beta / (beta + t)) ** s * nb(t) + mp.quad(lambda tau: density(tau) * nb(tau), points)


def pareto_alive_probability(r, alpha, s, beta, x, t_x, T):
    with mp.workdps(40):
        r, alpha, s, beta = map(mp.mpf, (r, alpha, s, beta))
        alive = (alpha + T) ** -(r + x) * (beta + T) ** -s
        integral = (reference.pareto_integral_closed_form(r + x, s, alpha, beta, t_x, T)
                    if T > t_x else 0)
        return alive / (alive + s * integral)


def bgbb_alive_pmf(alpha, beta, gamma, delta, k, t):
    """Enumerate m, the opportunities alive of the next t, and the k purchases among them."""
    alpha, beta, gamma, delta = map(mp.mpf, (alpha, beta, gamma, delta))
    B = mp.beta
    return mp.fsum((B(gamma + 1, delta + m) if m < t else B(gamma, delta + t)) / B(gamma, delta)
                   * mp.binomial(m, k) * B(alpha + k, beta + m - k) / B(alpha, beta)
                   for m in range(k, t + 1))


def bgbb_alive_probability(alpha, beta, gamma, delta, x, t_x, n):
    alpha, beta, gamma, delta = map(mp.mpf, (alpha, beta, gamma, delta))
    B = mp.beta
    alive = B(alpha + x, beta + n - x) / B(alpha, beta) * B(gamma, delta + n) / B(gamma, delta)
    dead = mp.fsum(B(alpha + x, beta + t_x - x + i) / B(alpha, beta)
                   * B(gamma + 1, delta + t_x + i) / B(gamma, delta) for i in range(int(n - t_x)))
    return alive / (alive + dead)


def reference_pmf(name, row, n, t):
    """P(X = n | history) at the model's CDNOW-like parameters, all in mpmath."""
    p = MODELS[name][1]
    if name == "bgbb":
        x, t_x, periods = row
        alive = bgbb_alive_probability(*p.values(), x, t_x, periods)
        new = bgbb_alive_pmf(p["alpha"] + x, p["beta"] + periods - x, p["gamma"], p["delta"] + periods, n, t)
    elif name == "pareto":
        x, t_x, T = row
        alive = pareto_alive_probability(*p.values(), x, t_x, T)
        new = pareto_alive_pmf(p["r"] + x, p["alpha"] + T, p["s"], p["beta"] + T, n, t)
    else:
        x, t_x, T = row
        first = 1 if name == "mbg" else 0
        alive = bg_alive_probability(*p.values(), x, t_x, T, first)
        new = bg_alive_pmf(p["r"] + x, p["alpha"] + T, p["a"], p["b"] + x + first, n, t)
    return alive * new + (1 - alive) * (n == 0)


def counts_to_check(mean, top):
    """A few counts across the bulk of a distribution with this mean, up to ``top``."""
    return sorted({n for n in (0, 1, 2, int(0.5 * mean), int(mean), int(1.4 * mean) + 1) if n <= top})


# --- exactness ---------------------------------------------------------------------------------
@pytest.mark.parametrize("t", [1e-4, 39.0, 400.0], ids=["tiny_t", "t", "huge_t"])
@parametrize_models
def test_pmf_matches_the_mpmath_reference_at_extreme_histories(name, t):
    """Every model, histories from x = 0 to x = 300 and t_x = T, horizons from 1e-4 to 400:
    P(X = n | history) against mpmath to 1e-8 relative (P(alive) from the models' own
    hooks is exact to about 4e-10 at x = 300; the recursions themselves are checked to
    1e-10 below)."""
    model = model_of(name)
    table = EXTREME_TABLE if name == "bgbb" else EXTREME_RFM
    if name == "bgbb":
        t = {1e-4: 1, 39.0: 5, 400.0: 60}[t]
    else:  # x = 3,000: the recursions' own test below covers it, at less cost
        table = table.drop(index="heavy")
    means = model.expected_purchases(table, t).to_numpy()
    top = int(2 * means.max()) + 3
    pmf = model.purchase_pmf(table, t, max_n=top, tail=0.0)
    assert pmf.shape == (len(table), top + 1)
    for i, row in enumerate(table.itertuples(index=False)):
        for n in counts_to_check(means[i], top):
            expected = float(reference_pmf(name, tuple(row), n, t))
            assert pmf.iloc[i, n] == pytest.approx(expected, rel=1e-8, abs=1e-300), (row, n)


@pytest.mark.parametrize("family, params, t", [
    ("beta-geometric", (3000.24, 43.4, 0.79, 3002.43), 39.0),  # x = 3000 at CDNOW's fit
    ("beta-geometric", (3000.24, 43.4, 0.79, 3002.43), 1e-3),
    ("beta-geometric", (5.24, 43.4, 0.79, 7.43), 1000.0),
    ("beta-geometric", (0.24, 34.4, 0.79, 2.43), 39.0),
    ("pareto", (300.55, 49.6, 0.61, 50.7), 39.0),
    ("pareto", (300.55, 49.6, 0.61, 50.7), 1e-3),
    ("pareto", (0.55, 40.6, 0.61, 41.7), 1000.0),
    ("pareto", (2000.0, 50.0, 3.0, 250.0), 39.0),
    ("pareto", (5.55, 49.6, 0.61, 50.7), 39.0),
])
def test_alive_customer_recursions_are_exact(family, params, t):
    """The column recursions alone (P(alive) = 1) against mpmath to 1e-10 relative, over the
    bulk of each distribution, for posteriors of customers with up to 3,000 purchases."""
    r, alpha = params[:2]
    mean = r / alpha * t
    top = int(1.4 * mean) + 2
    got = pmf_matrix(pmf_columns(family, np.ones(1), [np.array([v]) for v in params], t), top)[0]
    exact = bg_alive_pmf if family == "beta-geometric" else pareto_alive_pmf
    for n in counts_to_check(mean, top):
        assert got[n] == pytest.approx(float(exact(*params, n, t)), rel=1e-10), n


def test_bg_reference_agrees_with_quadrature_over_lambda():
    """The BG/NBD reference itself, against a second one that mixes Poisson terms over lambda."""
    for params, n, t in [((2.24, 14.4, 0.79, 4.43), 0, 10.0), ((2.24, 14.4, 0.79, 4.43), 3, 10.0),
                         ((12.0, 30.0, 2.5, 9.0), 7, 39.0)]:
        assert float(bg_alive_pmf(*params, n, t)) == pytest.approx(
            float(bg_alive_pmf_by_lambda(*params, n, t)), rel=1e-12)


@parametrize_models
def test_pmf_matches_purchase_probability(name):
    """Against the existing per-n method, at 1e-10 relative wherever P >= 1e-6 (below, that
    method's 1 - sum of the lower NB terms loses digits; the references above cover it)."""
    model, rfm = model_of(name), customers(name)
    t = horizon(name)
    pmf = model.purchase_pmf(rfm, t)
    for n in range(min(pmf.shape[1], 40)):
        reference_values = model.purchase_probability(n, t, rfm).to_numpy()
        ours = pmf[n].to_numpy()
        big = reference_values >= 1e-6
        np.testing.assert_allclose(ours[big], reference_values[big], rtol=1e-10)
        np.testing.assert_allclose(ours, reference_values, rtol=0, atol=1e-14)


@parametrize_models
def test_pmf_sums_to_one_within_the_reported_tail(name):
    model, rfm = model_of(name), customers(name)
    t = horizon(name)
    pmf = model.purchase_pmf(rfm, t, tail=1e-9)
    mass = pmf.to_numpy().sum(axis=1)
    assert np.all(1 - mass < 1e-9) and np.all(mass < 1 + 1e-12)
    assert pmf.attrs["tail_mass"] == pytest.approx(max(1 - mass.min(), 0.0), abs=1e-15)
    assert list(pmf.columns) == list(range(pmf.shape[1])) and pmf.index.equals(rfm.index)
    if name != "bgbb":  # N is the smallest count that leaves every tail below 1e-9
        assert (1 - pmf.to_numpy()[:, :-1].sum(axis=1)).max() >= 1e-9
    capped = model.purchase_pmf(rfm, t, max_n=2)
    assert capped.shape[1] == 3
    np.testing.assert_allclose(capped.to_numpy(), pmf.to_numpy()[:, :3], rtol=1e-14, atol=1e-300)
    assert capped.attrs["tail_mass"] == pytest.approx(1 - capped.to_numpy().sum(axis=1).min())
    exact_width = model.purchase_pmf(rfm, t, max_n=pmf.shape[1] + 4, tail=0.0)
    assert exact_width.shape[1] == pmf.shape[1] + 5


# --- moments, CDF, quantiles, intervals ------------------------------------------------------------
@parametrize_models
def test_moments_in_closed_form_match_the_pmf(name):
    """mean and variance from the factorial moment against the same from the PMF summed to a
    1e-12 tail; the mean is also the existing expected_purchases."""
    model, rfm = model_of(name), customers(name, n=120)
    t = horizon(name)
    moments = model.purchase_moments(rfm, t)
    pmf = model.purchase_pmf(rfm, t, tail=1e-12).to_numpy()
    n = np.arange(pmf.shape[1])
    mean = pmf @ n
    variance = pmf @ (n * n) - mean**2
    np.testing.assert_allclose(moments["mean"], mean, rtol=1e-8)
    np.testing.assert_allclose(moments["variance"], variance, rtol=1e-7)
    np.testing.assert_allclose(moments["mean"], model.expected_purchases(rfm, t), rtol=1e-11)


def test_factorial_moments_match_mpmath_integrals():
    """E[X(X-1)] of an alive customer against mpmath: BG/NBD as the integral over p of
    E[X(X-1) | p] = 2 (1-p)/p^2 [1 - (1+cp)^-(r+1) (1 + (r+1) c p)] (c = t/alpha), written
    (1-p) r (r+1) c^2 2F1(r+2, 2; 3; -cp) so that it stays exact as p -> 0; Pareto/NBD as
    2 r (r+1)/alpha^2 int_0^t u (beta/(beta+u))^s du."""
    from clvlab.models.predictive_moments import alive_moments

    def bg(r, alpha, a, b, t):
        r, alpha, a, b, t = map(mp.mpf, (r, alpha, a, b, t))
        c = t / alpha

        def f(p):
            given_p = (1 - p) * r * (r + 1) * c**2 * mp.hyp2f1(r + 2, 2, 3, -c * p)
            return given_p * p ** (a - 1) * (1 - p) ** (b - 1) / mp.beta(a, b)
        return mp.quad(f, [0, 0.5, 1])

    def pareto(r, alpha, s, beta, t):
        r, alpha, s, beta, t = map(mp.mpf, (r, alpha, s, beta, t))
        return 2 * r * (r + 1) / alpha**2 * mp.quad(lambda u: u * (beta / (beta + u)) ** s, [0, t])

    for params, t in [((0.24, 4.4, 0.79, 2.43), 39.0), ((5.24, 43.4, 0.79, 7.43), 0.01),
                      ((40.24, 43.4, 3.0, 60.0), 400.0)]:
        _, got = alive_moments("beta-geometric", [np.array([v]) for v in params], t,
                               BetaGeo._new_expected)
        assert got[0] == pytest.approx(float(bg(*params, t)), rel=1e-10)
    for params, t in [((0.55, 10.6, 0.61, 11.7), 39.0), ((300.55, 49.6, 0.61, 50.7), 1e-4),
                      ((2.0, 5.0, 1.0, 10.0), 5000.0), ((2.0, 5.0, 2.0, 10.0), 50.0)]:
        _, got = alive_moments("pareto", [np.array([v]) for v in params], t, ParetoNBD._new_expected)
        assert got[0] == pytest.approx(float(pareto(*params, t)), rel=1e-10)


@parametrize_models
def test_cdf_quantiles_and_intervals_are_those_of_the_pmf(name):
    model, rfm = model_of(name), customers(name, n=150)
    t = horizon(name)
    cumulative = np.cumsum(model.purchase_pmf(rfm, t, tail=1e-12).to_numpy(), axis=1)
    cdf = model.purchase_cdf(rfm, 2, t)
    assert cdf.name == "P(X<=2)"
    np.testing.assert_allclose(cdf, cumulative[:, 2], rtol=1e-13)
    own_n = np.arange(len(rfm)) % 4  # one count per customer
    np.testing.assert_allclose(model.purchase_cdf(rfm, own_n, t),
                               cumulative[np.arange(len(rfm)), own_n], rtol=1e-13)
    levels = (0.05, 0.25, 0.5, 0.8, 0.95)
    quantiles = model.purchase_quantiles(rfm, t, q=levels)
    assert list(quantiles.columns) == [f"purchases_q{v}" for v in levels]
    for level, column in zip(levels, quantiles.columns):
        brute = np.argmax(cumulative >= level, axis=1)  # the smallest n with F(n) >= q
        np.testing.assert_array_equal(quantiles[column].to_numpy(), brute)
        assert quantiles[column].dtype == np.int64
    interval = model.prediction_interval(rfm, t, level=0.9)
    assert list(interval.columns) == ["lower", "upper", "expected_purchases"]
    np.testing.assert_array_equal(interval["lower"], quantiles["purchases_q0.05"])
    np.testing.assert_array_equal(interval["upper"], quantiles["purchases_q0.95"])
    np.testing.assert_allclose(interval["expected_purchases"], model.expected_purchases(rfm, t),
                               rtol=1e-11)
    rows = np.arange(len(rfm))
    inside = cumulative[rows, interval["upper"]] - np.where(
        interval["lower"] > 0, cumulative[rows, np.maximum(interval["lower"] - 1, 0)], 0.0)
    assert np.all(inside >= 0.9 - 1e-12)  # a discrete interval covers at least its level


@parametrize_models
def test_one_horizon_per_customer(name):
    """t may be one value per customer: each row as if scored alone with its own horizon."""
    model, rfm = model_of(name), customers(name, n=12)
    horizons = (np.arange(12) % 4 + 1) * (1 if name == "bgbb" else 9.5)
    together = model.purchase_quantiles(rfm, horizons, q=(0.2, 0.9))
    moments = model.purchase_moments(rfm, horizons)
    for i in range(12):
        one = rfm.iloc[[i]]
        pd.testing.assert_frame_equal(together.iloc[[i]], model.purchase_quantiles(one, horizons[i], q=(0.2, 0.9)))
        pd.testing.assert_frame_equal(moments.iloc[[i]], model.purchase_moments(one, horizons[i]), rtol=1e-13)


def test_public_methods_take_the_unit_keywords_and_are_per_customer():
    import inspect

    for method in ("purchase_pmf", "purchase_cdf", "purchase_quantiles", "prediction_interval",
                   "purchase_moments", "draw_future_purchases"):
        for cls in (BetaGeo, ParetoNBD, BetaGeoBetaBinom):
            function = getattr(cls, method)
            assert function.by_covariate_group  # each customer at their own parameters
            assert {"time_unit", "check_durations", "parameter_draws"} <= set(
                inspect.signature(function).parameters), (cls, method)


# --- parameter draws -----------------------------------------------------------------------------
def draws_of(name):
    """Three parameter sets around the model's own (params_'s order)."""
    base = np.array(list(MODELS[name][1].values()))
    return base * np.array([[1.0, 1.0, 1.0, 1.0], [1.3, 0.8, 1.1, 0.9], [0.7, 1.25, 0.85, 1.2]])


@parametrize_models
def test_parameter_draws_give_the_mixture_over_the_draws(name):
    model, rfm = model_of(name), customers(name, n=80)
    t = horizon(name)
    draws = draws_of(name)
    at_draws = [model.at_params(d) for d in draws]
    width = 30
    mixture = model.purchase_pmf(rfm, t, max_n=width, tail=0.0, parameter_draws=draws)
    each = [m.purchase_pmf(rfm, t, max_n=width, tail=0.0).to_numpy() for m in at_draws]
    np.testing.assert_allclose(mixture.to_numpy(), np.mean(each, axis=0), rtol=1e-13, atol=1e-300)
    cumulative = np.cumsum(np.mean([m.purchase_pmf(rfm, t, tail=0.0, max_n=200).to_numpy()
                                    for m in at_draws], axis=0), axis=1)
    quantiles = model.purchase_quantiles(rfm, t, q=(0.1, 0.5, 0.9), parameter_draws=draws)
    for level, column in zip((0.1, 0.5, 0.9), quantiles.columns):
        np.testing.assert_array_equal(quantiles[column], np.argmax(cumulative >= level, axis=1))
    moments = model.purchase_moments(rfm, t, parameter_draws=draws)
    each_moments = [m.purchase_moments(rfm, t) for m in at_draws]
    mean = np.mean([m["mean"] for m in each_moments], axis=0)
    second = np.mean([m["variance"] + m["mean"] ** 2 for m in each_moments], axis=0)
    np.testing.assert_allclose(moments["mean"], mean, rtol=1e-12)
    np.testing.assert_allclose(moments["variance"], second - mean**2, rtol=1e-9)
    cdf = model.purchase_cdf(rfm, 1, t, parameter_draws=draws)
    np.testing.assert_allclose(cdf, np.mean([m.purchase_cdf(rfm, 1, t) for m in at_draws], axis=0),
                               rtol=1e-13)


def test_draws_of_a_fitted_model_widen_the_interval():
    """With the asymptotic-normal draws of a fit, the interval is that of the mixture, at
    least as wide on average as the estimate's."""
    from clvlab.inference.uncertainty import parameter_draws

    base = simulate.bg_nbd(600, **CDNOW_BG, T=39.0, seed=11)
    model = BetaGeo().fit(base[["frequency", "recency", "T"]])
    draws = parameter_draws(model, 40, seed=2)
    rfm = base[["frequency", "recency", "T"]].iloc[:100]
    point = model.prediction_interval(rfm, 39.0, level=0.9)
    mixed = model.prediction_interval(rfm, 39.0, level=0.9, parameter_draws=draws)
    width = lambda frame: (frame["upper"] - frame["lower"]).to_numpy()  # noqa: E731
    assert width(mixed).mean() >= width(point).mean()
    np.testing.assert_allclose(mixed["expected_purchases"],
                               np.mean([model.at_params(d).expected_purchases(rfm, 39.0)
                                        for d in draws], axis=0), rtol=1e-12)


# --- simulation ------------------------------------------------------------------------------------
@parametrize_models
def test_simulated_counts_follow_the_pmf_and_times_the_rate(name):
    """20,000 draws of three customers: each count's frequency within 5 Monte Carlo sd of the
    PMF and a chi-square test of the whole; purchase times in (0, t], sorted, and the mean
    number before t/2 equal to expected_purchases(t/2) within 5 sd."""
    model = model_of(name)
    rfm = (customers(name, n=400, seed=4).sort_values("frequency").iloc[[0, 200, 399]])
    t = 6 if name == "bgbb" else 39.0
    n_draws = 20_000
    future = model.draw_future_purchases(rfm, t, n_draws=n_draws, seed=7)
    counts = future.counts()
    assert counts.shape == (3, n_draws)
    pmf = model.purchase_pmf(rfm, t, tail=1e-12).to_numpy()
    for i in range(3):
        observed = np.bincount(counts[i], minlength=pmf.shape[1])[:pmf.shape[1]] / n_draws
        sd = np.sqrt(pmf[i] * (1 - pmf[i]) / n_draws)
        assert np.all(np.abs(observed - pmf[i]) <= 5 * sd + 1e-4), (i, observed[:6], pmf[i, :6])
        expected = pmf[i] * n_draws
        bins = expected >= 5
        tally = np.bincount(counts[i], minlength=pmf.shape[1])[:pmf.shape[1]]
        chi = np.r_[tally[bins], n_draws - tally[bins].sum()]
        e = np.r_[expected[bins], n_draws - expected[bins].sum()]
        keep = e > 0
        assert stats.chisquare(chi[keep], e[keep]).pvalue > 1e-4, i
    assert np.all((future.time > 0) & (future.time <= t))
    key = (future.customer * n_draws + future.draw).astype(np.float64)
    assert np.all(np.diff(key) >= 0)
    same = np.diff(key) == 0
    assert np.all(np.diff(future.time)[same] >= 0)
    half = t // 2 if name == "bgbb" else t / 2
    early = np.bincount(future.customer * n_draws + future.draw, weights=future.time <= half,
                        minlength=3 * n_draws).reshape(3, n_draws)
    expected_half = model.expected_purchases(rfm, half).to_numpy()
    assert np.all(np.abs(early.mean(axis=1) - expected_half)
                  <= 5 * early.std(axis=1) / np.sqrt(n_draws) + 1e-9)
    if name == "bgbb":
        assert np.all(future.time == np.floor(future.time))


def test_future_purchases_interface_seed_and_chunks(monkeypatch):
    model, rfm = model_of("pareto"), customers("pareto", n=50)
    rfm.index = pd.Index([f"c{i}" for i in range(50)], name="who")
    one = model.draw_future_purchases(rfm, 20.0, n_draws=30, seed=5)
    again = model.draw_future_purchases(rfm, 20.0, n_draws=30, seed=5)
    np.testing.assert_array_equal(one.time, again.time)
    assert one.customer.dtype == one.draw.dtype == np.int64 and one.time.dtype == np.float64
    frame = one.to_frame()
    assert list(frame.columns) == ["who", "draw", "time"] and len(frame) == one.time.size
    assert set(frame["who"]) <= set(rfm.index)
    np.testing.assert_array_equal(one.counts().sum(axis=1),
                                  frame.groupby("who").size().reindex(rfm.index, fill_value=0))
    assert "FuturePurchases" in repr(one)
    # small chunks: the same distribution and every customer in its place
    monkeypatch.setattr(predictive, "CHUNK_UNITS", 64)
    chunked = model.draw_future_purchases(rfm, 20.0, n_draws=30, seed=5)
    assert chunked.customer.max() <= 49 and chunked.n_customers == 50
    heavy = int(np.argmax(rfm["frequency"].to_numpy()))
    assert abs(chunked.counts()[heavy].mean() - one.counts()[heavy].mean()) < \
        6 * one.counts()[heavy].std() / np.sqrt(30) + 0.5


def test_simulation_draw_j_uses_parameter_draw_j_mod_d():
    model = model_of("bg")
    rfm = pd.DataFrame({"frequency": [4.0], "recency": [30.0], "T": [39.0]})
    draws = np.array([list(CDNOW_BG.values()), [2.4, 0.44, 0.79, 2.43]])  # 10x the purchase rate
    future = model.draw_future_purchases(rfm, 39.0, n_draws=4000, seed=1, parameter_draws=draws)
    counts = future.counts()[0]
    slow = model.at_params(draws[0]).expected_purchases(rfm, 39.0).iloc[0]
    fast = model.at_params(draws[1]).expected_purchases(rfm, 39.0).iloc[0]
    assert counts[0::2].mean() == pytest.approx(slow, rel=0.15)
    assert counts[1::2].mean() == pytest.approx(fast, rel=0.15)


# --- chunks, covariates, per-customer parameters ---------------------------------------------------
@parametrize_models
def test_results_do_not_depend_on_the_chunk_size(name, monkeypatch):
    model, rfm = model_of(name), customers(name, n=60)
    t = horizon(name)
    whole = model.purchase_pmf(rfm, t)
    quantiles = model.purchase_quantiles(rfm, t)
    monkeypatch.setitem(predictive_plan.UNITS_PER_CHUNK, model_family(model), 7 * (16 if name == "bgbb" else 1))
    chunked = model.purchase_pmf(rfm, t)  # chunks stop at different N: the short ones are redone
    pd.testing.assert_frame_equal(chunked, whole, rtol=1e-14)
    pd.testing.assert_frame_equal(model.purchase_quantiles(rfm, t), quantiles)


COVARIATES = {"pareto": {"purchase": {"flag": 0.4, "score": -0.3}, "dropout": {"flag": -0.35}},
              "bg": {"purchase": {"flag": 0.4}, "dropout": {"score": 0.25}},
              "bgbb": {"purchase": {"flag": 0.4, "score": -0.3}, "dropout": {"flag": 0.5}}}


@pytest.mark.parametrize("name", list(COVARIATES))
def test_with_covariates_each_customer_is_at_their_own_parameters(name):
    """Each customer's distribution is the plain model's at their own parameters (own
    parameters from the documented form theta_i = theta exp(sign x_i' g)); with parameter
    draws that include the coefficients, the mixture over those customers' own parameters."""
    cls, base = MODELS[name]
    links = {"pareto": {"alpha": ("purchase", -1), "beta": ("dropout", -1)},
             "bg": {"alpha": ("purchase", -1), "a": ("dropout", 1), "b": ("dropout", 1)},
             "bgbb": {"beta": ("purchase", -1), "delta": ("dropout", -1)}}[name]
    model = cls.from_params(coefficients=COVARIATES[name], **base)
    rng = np.random.default_rng(9)
    table = customers(name, n=40, seed=9)
    table["flag"] = rng.integers(0, 2, len(table))
    table["score"] = rng.normal(0, 1, len(table))
    t = horizon(name)

    names = list(model.params_.index)  # own parameters, then "process.covariate"
    assert names[4:] == [f"{p}.{c}" for p, g in COVARIATES[name].items() for c in g]

    def own_params(values, row):
        params = dict(zip(names, values))
        out = {k: params[k] for k in cls.param_names}
        for parameter, (process, sign) in links.items():
            score = sum(params[f"{process}.{c}"] * row[c] for c in COVARIATES[name].get(process, {}))
            out[parameter] *= math.exp(sign * score)
        return out

    width = 12
    together = model.purchase_pmf(table, t, max_n=width, tail=0.0)
    quantiles = model.purchase_quantiles(table, t)
    values = model.params_.to_numpy()
    for i, (_, row) in enumerate(table.iterrows()):
        plain = cls.from_params(**own_params(values, row))
        one = table.iloc[[i]][list(plain.columns)]
        np.testing.assert_allclose(together.iloc[i], plain.purchase_pmf(one, t, max_n=width, tail=0.0).iloc[0],
                                   rtol=1e-12, atol=1e-300)
        pd.testing.assert_series_equal(quantiles.iloc[i], plain.purchase_quantiles(one, t).iloc[0])
    draws = values * np.exp(np.random.default_rng(1).normal(0, 0.1, (3, len(values))))
    mixed = model.purchase_pmf(table, t, max_n=width, tail=0.0, parameter_draws=draws)
    for i in (0, 7, 21):
        row = table.iloc[i]
        one = table.iloc[[i]][list(cls.columns)]
        expected = np.mean([cls.from_params(**own_params(d, row)).purchase_pmf(
            one, t, max_n=width, tail=0.0).to_numpy()[0] for d in draws], axis=0)
        np.testing.assert_allclose(mixed.iloc[i], expected, rtol=1e-12, atol=1e-300)
    future = model.draw_future_purchases(table, t, n_draws=5, seed=0, parameter_draws=draws)
    assert future.n_customers == len(table) and future.n_draws == 5


def test_array_functions_broadcast_over_per_customer_parameters():
    """conditional_pmf_matrix on a model whose _check_fitted() gives one value per customer
    (what a row model does) equals each customer's plain model: no branch on parameter
    values, everything broadcasts."""
    rfm = customers("bg", n=25)
    rng = np.random.default_rng(2)
    params = np.array(list(CDNOW_BG.values())) * np.exp(rng.normal(0, 0.3, (25, 4)))
    rows = BetaGeo.from_params(**CDNOW_BG)
    rows._check_fitted = lambda: params.T  # one value per customer, as customer_params.row_model
    x, t_x, T = (rfm[c].to_numpy(np.float64) for c in ("frequency", "recency", "T"))
    together = conditional_pmf_matrix(rows, x, t_x, T, 39.0, 15)
    for i in range(25):
        plain = BetaGeo.from_params(**dict(zip(BetaGeo.param_names, params[i])))
        np.testing.assert_allclose(together[i], plain.purchase_pmf(rfm.iloc[[i]], 39.0, max_n=15,
                                                                   tail=0.0).iloc[0], rtol=1e-13)
    alive, posterior = customer_state(rows, x, t_x, T)
    assert alive.shape == (25,) and all(p.shape == (25,) for p in posterior)


# --- what is refused -------------------------------------------------------------------------------
@pytest.mark.parametrize("call, match", [
    (lambda m, r: m.purchase_pmf(r, 0.0), "horizon t must be finite and > 0"),
    (lambda m, r: m.purchase_pmf(r, "39"), "t must be a number"),
    (lambda m, r: m.purchase_pmf(r, np.ones(3)), "one per customer"),
    (lambda m, r: m.purchase_pmf(r, 39.0, max_n=-1), "max_n must be a whole number"),
    (lambda m, r: m.purchase_pmf(r, 39.0, tail=1e-15), "tail must be in"),
    (lambda m, r: m.purchase_pmf(r, 39.0, tail=0.0), "tail must be in"),
    (lambda m, r: m.purchase_cdf(r, -1, 39.0), "n must be whole numbers"),
    (lambda m, r: m.purchase_cdf(r, 1.5, 39.0), "n must be whole numbers"),
    (lambda m, r: m.purchase_quantiles(r, 39.0, q=(0.5, 1.0)), "quantile level q"),
    (lambda m, r: m.purchase_quantiles(r, 39.0, q=0.0), "quantile level q"),
    (lambda m, r: m.prediction_interval(r, 39.0, level=1.0), "level must be in"),
    (lambda m, r: m.purchase_moments(r, 39.0, parameter_draws=np.ones(4)), "n_draws x 4"),
    (lambda m, r: m.purchase_moments(r, 39.0, parameter_draws=np.ones((2, 5))), "n_draws x 4"),
    (lambda m, r: m.purchase_moments(r, 39.0, parameter_draws=np.full((2, 4), np.nan)), "finite"),
    (lambda m, r: m.purchase_moments(r, 39.0, parameter_draws=-np.ones((2, 4))), "> 0"),
    (lambda m, r: m.draw_future_purchases(r, 39.0, n_draws=0), "n_draws must be"),
    (lambda m, r: m.draw_future_purchases(r, np.full(len(r), 39.0)), "one horizon t"),
    (lambda m, r: m.purchase_pmf(r.assign(recency=r["T"] + 1), 39.0), "recency"),
    (lambda m, r: m.purchase_pmf(r.to_numpy(), 39.0), "DataFrame"),
])
def test_bad_input_is_refused_with_a_message(call, match):
    with pytest.raises(ClvlabError, match=match):
        call(model_of("pareto"), customers("pareto", n=10))


def test_discrete_horizons_are_whole_opportunities_and_other_models_have_none():
    model, table = model_of("bgbb"), customers("bgbb", n=10)
    with pytest.raises(ClvlabError, match="whole number >= 1"):
        model.purchase_pmf(table, 2.5)
    assert model.purchase_pmf(table, 3).shape[1] <= 4  # at most t purchases at t opportunities
    with pytest.raises(ClvlabError, match="no predictive distribution"):
        model_family(GammaGamma.from_params(p=6.0, q=4.0, v=15.0))


def test_the_table_time_unit_is_checked():
    model = ParetoNBD.from_params(time_unit="W", **CDNOW_PARETO)
    rfm = customers("pareto", n=20)
    with pytest.raises(ClvlabError, match="time unit"):
        model.purchase_quantiles(rfm, 39.0)
    days = rfm.copy()
    days.attrs = {"clvlab": {"time_unit": "D"}}
    with pytest.raises(ClvlabError, match="days"):
        model.purchase_pmf(days, 39.0)
    assert model.purchase_moments(rfm, 39.0, time_unit="W").shape == (20, 2)


@parametrize_models
def test_an_empty_table_is_refused_as_by_every_prediction(name):
    model = model_of(name)
    empty = customers(name, n=5).iloc[:0]
    t = horizon(name)
    with pytest.raises(ClvlabError, match="no rows"):
        model.expected_purchases(empty, t)
    for call in (lambda: model.purchase_pmf(empty, t), lambda: model.purchase_quantiles(empty, t),
                 lambda: model.purchase_cdf(empty, 1, t), lambda: model.prediction_interval(empty, t),
                 lambda: model.purchase_moments(empty, t),
                 lambda: model.draw_future_purchases(empty, t, n_draws=3, seed=0)):
        with pytest.raises(ClvlabError, match="no rows"):
            call()
