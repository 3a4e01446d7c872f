"""Simulated customers under time-varying covariates (issue 31, ``clvlab.data.simulate_tv``).

The references are computed from what the simulation returns (the panel's covariates, the
first purchases in the log) and the model's formulas, not from the simulator's internals:
E[purchases] and P(alive) per customer by quadrature over the path, and the time change
(uniform A-clock positions) by Kolmogorov-Smirnov tests.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import special, stats

from clvlab.core.errors import ClvlabError
from clvlab.data.simulate_tv import TimeVaryingSample, bg_nbd_time_varying, pareto_nbd_time_varying

N, PERIODS, ACQUISITION, CALIBRATION = 20_000, 52, 8, 40
START = pd.Timestamp("2024-01-01")
WEEK = pd.Timedelta(weeks=1)
PURCHASE = {"season": 0.8, "vip": 0.5, "promo": 0.9}


def sources(n=N, periods=PERIODS, seed=0):
    rng = np.random.default_rng(seed)
    calendar = pd.DataFrame({"period": START + WEEK * np.arange(periods),
                             "season": (np.arange(periods) // 6) % 2})  # 6 weeks on, 6 off
    attributes = pd.DataFrame({"vip": rng.binomial(1, 0.3, n)},
                              index=pd.Index(1000 + np.arange(n), name="id"))
    return dict(calendar=calendar, attributes=attributes, varying={"promo": 0.3})


@pytest.fixture(scope="module")
def pareto():
    coefficients = {"purchase": PURCHASE, "dropout": {"season": 0.7, "vip": -0.6}}
    params = dict(r=0.8, alpha=3.0, s=0.7, beta=10.0)
    sample = pareto_nbd_time_varying(N, params=params, coefficients=coefficients, **sources(),
                                     start=START, periods=PERIODS, acquisition_periods=ACQUISITION,
                                     calibration_periods=CALIBRATION, seed=7)
    return sample, params, coefficients


@pytest.fixture(scope="module")
def bgnbd():
    coefficients = {"purchase": PURCHASE, "dropout": {"vip": -0.6}}
    params = dict(r=0.8, alpha=3.0, a=0.7, b=3.0)
    sample = bg_nbd_time_varying(N, params=params, coefficients=coefficients, **sources(),
                                 start=START, periods=PERIODS, acquisition_periods=ACQUISITION,
                                 calibration_periods=CALIBRATION, seed=8)
    return sample, params, coefficients


# --- the path, rebuilt from the panel ----------------------------------------------------------
def pieces(sample: TimeVaryingSample, coefficients) -> pd.DataFrame:
    """One row per panel row: the piece of the period after the customer's first purchase, in
    customer time (weeks since it: u0, u1), eta_p, eta_d, and the clocks A, B at u0."""
    first = sample.transactions.groupby("customer_id")["date"].min()
    table = sample.panel.copy()
    begins = table["customer_id"].map(first)
    table["u0"] = (np.maximum(table["period"], begins) - begins) / WEEK
    table["u1"] = (table["period"] + WEEK - begins) / WEEK
    for name, process in (("eta_p", "purchase"), ("eta_d", "dropout")):
        table[name] = sum(g * table[c] for c, g in coefficients.get(process, {}).items())
    for clock, eta in (("A", "eta_p"), ("B", "eta_d")):
        grown = np.exp(table[eta]) * (table["u1"] - table["u0"])
        table[clock] = grown.groupby(table["customer_id"]).cumsum() - grown
    return table


def clock_at(table: pd.DataFrame, customer, t, clock="A") -> np.ndarray:
    """A(t) (or B) of each (customer, customer time t), through the piece holding t."""
    rate = "eta_p" if clock == "A" else "eta_d"
    left = pd.DataFrame({"customer_id": np.asarray(customer), "t": np.asarray(t, float),
                         "order": np.arange(len(t))}).sort_values("t")
    found = pd.merge_asof(left, table[["customer_id", "u0", rate, clock]].sort_values("u0"),
                          left_on="t", right_on="u0", by="customer_id").sort_values("order")
    return (found[clock] + np.exp(found[rate]) * (found["t"] - found["u0"])).to_numpy()


def gauss_legendre(table, integrand, nodes=12):
    """Sum over each customer's pieces of int_u0^u1 integrand(piece, u) du (Gauss-Legendre)."""
    x, w = np.polynomial.legendre.leggauss(nodes)
    half = ((table["u1"] - table["u0"]) / 2).to_numpy()[:, None]
    u = table["u0"].to_numpy()[:, None] + half * (x + 1)
    per_piece = (integrand(table, u) * w).sum(axis=1) * half[:, 0]
    return pd.Series(per_piece, index=table.index).groupby(table["customer_id"], sort=False).sum()


def z_score(realised, expected) -> float:
    gap = np.asarray(realised, float) - np.asarray(expected, float)
    return gap.mean() / (gap.std() / math.sqrt(gap.size))


def repeat_purchases(sample) -> pd.Series:
    return sample.transactions.groupby("customer_id").size().reindex(sample.truth.index) - 1


# --- Pareto/NBD ---------------------------------------------------------------------------------
def test_pareto_purchases_and_survival_match_the_path(pareto):
    sample, p, coefficients = pareto
    table = pieces(sample, coefficients)

    def rate(tab, u, g=1.0):  # lambda-free E[purchase rate at u]: exp(eta_p) P(alive at u)
        column = lambda name: tab[name].to_numpy()[:, None]
        b = column("B") + np.exp(column("eta_d")) * (u - column("u0"))
        return np.exp(g * column("eta_p")) * (p["beta"] / (p["beta"] + b)) ** p["s"]

    expected = p["r"] / p["alpha"] * gauss_legendre(table, rate).reindex(sample.truth.index)
    realised = repeat_purchases(sample)
    assert abs(z_score(realised, expected)) < 4
    for vip in (0, 1):  # and within each static group
        group = (sample.panel.groupby("customer_id")["vip"].first() == vip).reindex(sample.truth.index)
        assert abs(z_score(realised[group], expected[group])) < 4
    # the test can tell: without the purchase covariates the expectation is far off
    flat = p["r"] / p["alpha"] * gauss_legendre(table, lambda t, u: rate(t, u, g=0.0))
    assert abs(z_score(realised, flat.reindex(sample.truth.index))) > 10
    # P(alive) = (beta / (beta + B(t)))^s at the calibration end and the log's end
    first = sample.truth["first_purchase"]
    for when, column in ((sample.calibration_end, "alive"), (sample.end, "alive_end")):
        t = (when - first) / WEEK
        b = clock_at(table, sample.truth.index, t, "B")
        assert abs(z_score(sample.truth[column], (p["beta"] / (p["beta"] + b)) ** p["s"])) < 4
    assert sample.truth["alive_end"].eq(sample.truth["lifetime_"].isna()).all()


def a_clock_positions(sample, table, window_end):
    """Repeat purchases in the A clock, as (customer, A(t_j) / A(window end), purchases in the
    window, the calendar-time share t_j / window end): given the count, A(t_j) are uniform on
    [0, A(end)] where the process is a homogeneous Poisson process in the A clock."""
    log = sample.transactions[sample.transactions["customer_id"].isin(window_end.index)]
    first = log.groupby("customer_id")["date"].transform("min")
    repeat = log[log["date"] > first]
    t = ((repeat["date"] - first[repeat.index]) / WEEK).to_numpy()
    customer = repeat["customer_id"].to_numpy()
    a_end = pd.Series(clock_at(table, window_end.index, window_end.to_numpy()), index=window_end.index)
    share = clock_at(table, customer, t) / a_end[customer].to_numpy()
    return customer, share, t / window_end[customer].to_numpy()


def test_pareto_event_times_are_the_inverse_clock_of_uniform_a_values(pareto):
    sample, _, coefficients = pareto
    table = pieces(sample, coefficients)
    age = (sample.end - sample.truth["first_purchase"]) / WEEK
    window = sample.truth["lifetime_"].fillna(age).clip(upper=age)  # purchases stop at tau
    customer, share, calendar_share = a_clock_positions(sample, table, window)
    assert share.size > 30_000 and share.min() >= 0 and share.max() <= 1 + 1e-9
    assert stats.kstest(share, "uniform").pvalue > 1e-3
    # the gaps: the first A-clock gap of a customer with n purchases is the least of n uniforms
    n = pd.Series(customer).value_counts()
    first_gap = pd.Series(share).groupby(customer).min()
    assert stats.kstest(1 - (1 - first_gap) ** n[first_gap.index], "uniform").pvalue > 1e-3
    assert stats.kstest(calendar_share, "uniform").pvalue < 1e-8  # the clock matters


# --- BG/NBD --------------------------------------------------------------------------------------
def beta_average(f, a, b, nodes=60):
    """E[f(p)], p ~ Beta(a, b), by Gauss-Jacobi quadrature (f: p array -> values per node)."""
    x, w = special.roots_jacobi(nodes, b - 1, a - 1)  # weight (1-x)^(b-1) (1+x)^(a-1)
    return (f((x + 1) / 2) * w).sum(axis=-1) / w.sum()


def test_bgnbd_purchases_and_survival_match_the_path(bgnbd):
    sample, p, coefficients = bgnbd
    table = pieces(sample, coefficients)
    first, r, alpha = sample.truth["first_purchase"], p["r"], p["alpha"]
    vip = sample.panel.groupby("customer_id")["vip"].first().reindex(sample.truth.index).to_numpy()
    a_i, b_i = p["a"] * np.exp(-0.6 * vip), p["b"] * np.exp(-0.6 * vip)  # the "a_and_b" form
    np.testing.assert_allclose(sample.truth[["a_", "b_"]].to_numpy().T, [a_i, b_i])
    for when, column in ((sample.calibration_end, "alive"), (sample.end, "alive_end")):
        a_t = clock_at(table, sample.truth.index, (when - first) / WEEK)[:, None]
        # given lambda, p: P(alive at t) = E[(1-p)^N(t)] = exp(-lambda p A(t)), N ~ Poisson(lambda A)
        alive = np.empty(len(vip))
        purchases = np.empty(len(vip))
        for v in (0, 1):
            at = vip == v
            alive[at] = beta_average(lambda q: (alpha / (alpha + q * a_t[at])) ** r,
                                     a_i[at][0], b_i[at][0])
            # E[N(0, t) | lambda, p] = int lambda e^eta e^(-lambda p A(u)) du = (1 - e^-lambda p A) / p
            purchases[at] = beta_average(lambda q: (1 - (alpha / (alpha + q * a_t[at])) ** r) / q,
                                         a_i[at][0], b_i[at][0])
        assert abs(z_score(sample.truth[column], alive)) < 4, column
        if column == "alive_end":
            realised = repeat_purchases(sample)
            assert abs(z_score(realised, purchases)) < 4
            a_raw = ((when - first) / WEEK).to_numpy()[:, None]  # without the clock: far off
            raw = beta_average(lambda q: (1 - (alpha / (alpha + q * a_raw)) ** r) / q, p["a"], p["b"])
            assert abs(z_score(realised, raw)) > 10


def test_bgnbd_event_times_are_the_inverse_clock_of_uniform_a_values(bgnbd):
    sample, _, coefficients = bgnbd
    table = pieces(sample, coefficients)
    alive = sample.truth[sample.truth["alive_end"]]  # given survival, all events in [0, end]
    window = (sample.end - alive["first_purchase"]) / WEEK
    _, share, calendar_share = a_clock_positions(sample, table, window)
    assert share.size > 10_000
    assert stats.kstest(share, "uniform").pvalue > 1e-3
    assert stats.kstest(calendar_share, "uniform").pvalue < 1e-8


def test_bgnbd_leaves_after_the_dropout_purchase(bgnbd):
    sample, _, _ = bgnbd
    truth, made = sample.truth, repeat_purchases(sample)
    left = ~truth["alive_end"]
    assert (made[left] == truth.loc[left, "dropout_after_"]).all()
    assert (made[~left] < truth.loc[~left, "dropout_after_"]).all()
    last = sample.transactions.groupby("customer_id")["date"].max()
    lifetime = (last - truth["first_purchase"]) / WEEK
    np.testing.assert_allclose(lifetime[left], truth.loc[left, "lifetime_"], atol=1e-9)


# --- the panel and the log --------------------------------------------------------------------
@pytest.mark.parametrize("which", ["pareto", "bgnbd"])
def test_panel_covers_each_customer_from_the_first_period_to_the_end(which, request):
    sample = request.getfixturevalue(which)[0]
    panel, truth = sample.panel, sample.truth
    assert list(panel.columns) == ["customer_id", "period", "season", "vip", "promo"]
    first_period = START + WEEK * ((truth["first_purchase"] - START) // WEEK)
    per_customer = panel.groupby("customer_id")["period"].agg(["min", "max", "size"])
    assert per_customer.index.equals(truth.index.sort_values())
    per_customer = per_customer.reindex(truth.index)
    assert per_customer["min"].eq(first_period).all()
    assert per_customer["max"].eq(sample.period_starts[-1]).all()
    assert per_customer["size"].eq((per_customer["max"] - per_customer["min"]) // WEEK + 1).all()
    assert not panel.duplicated(["customer_id", "period"]).any()
    assert panel["customer_id"].is_monotonic_increasing
    expected = sources()
    season = expected["calendar"].set_index("period")["season"]
    assert panel["season"].eq(panel["period"].map(season)).all()
    assert panel["vip"].eq(panel["customer_id"].map(expected["attributes"]["vip"])).all()
    assert abs(panel["promo"].mean() - 0.3) < 0.005
    assert truth.index.equals(expected["attributes"].index.rename("customer_id"))
    # the log: first purchases uniform over the acquisition weeks, everything inside the log
    log = sample.transactions
    assert log["date"].min() >= START and log["date"].max() < sample.end
    assert log["date"].is_monotonic_increasing and log["customer_id"].isin(truth.index).all()
    acquired = (truth["first_purchase"] - START) / (ACQUISITION * WEEK)
    assert stats.kstest(acquired, "uniform").pvalue > 1e-3
    assert sample.calibration_end == START + CALIBRATION * WEEK and sample.end == START + PERIODS * WEEK


# --- arguments ----------------------------------------------------------------------------------
def test_bgnbd_refuses_a_time_varying_dropout_covariate():
    for column in ("season", "promo"):
        with pytest.raises(ClvlabError, match=f"dropout coefficient '{column}' is a .* column, "
                                              "which varies in time"):
            bg_nbd_time_varying(10, params=dict(r=1, alpha=1, a=1, b=1),
                                coefficients={"dropout": {column: 0.5}}, **sources(n=10),
                                start=START, periods=PERIODS)


def test_bad_arguments_are_named():
    good = dict(params=dict(r=1, alpha=1, s=1, beta=1), start=START, periods=PERIODS)
    src = sources(n=10)
    with pytest.raises(ClvlabError, match="no source has; the covariates are"):
        pareto_nbd_time_varying(10, coefficients={"purchase": {"holiday": 1.0}}, **src, **good)
    gap = src["calendar"].drop(index=9)
    with pytest.raises(ClvlabError, match="none for period 9, 2024-03-04"):
        pareto_nbd_time_varying(10, calendar=gap, **good)
    text = src["attributes"].assign(vip=["a"] * 10)
    with pytest.raises(ClvlabError, match="attributes: column 'vip' must be numeric.*customer 1000"):
        pareto_nbd_time_varying(10, attributes=text, **good)
    unknown = src["calendar"].assign(season=np.where(np.arange(PERIODS) == 3, np.nan, 1.0))
    with pytest.raises(ClvlabError, match="calendar: column 'season' must be finite.*"
                                          "period 2024-01-22"):
        pareto_nbd_time_varying(10, calendar=unknown, **good)
    with pytest.raises(ClvlabError, match=r"varying\['promo'\] must be a probability"):
        pareto_nbd_time_varying(10, varying={"promo": 1.5}, **good)
    with pytest.raises(ClvlabError, match="'vip' of varying is also in attributes"):
        pareto_nbd_time_varying(10, attributes=src["attributes"], varying={"vip": 0.5}, **good)
    with pytest.raises(ClvlabError, match="params must be exactly"):
        pareto_nbd_time_varying(10, **{**good, "params": dict(r=1, alpha=1, a=1, b=1)})
    with pytest.raises(ClvlabError, match=r"calibration_periods must be a whole number >= 1 "
                                          r"and <= 52 \(periods\), got 53"):
        pareto_nbd_time_varying(10, calibration_periods=PERIODS + 1, **good)


def test_same_seed_same_sample_and_no_covariates_needed():
    settings = dict(params=dict(r=1, alpha=2, s=1, beta=5), start=START, periods=10, seed=3)
    one, two = pareto_nbd_time_varying(300, **settings), pareto_nbd_time_varying(300, **settings)
    pd.testing.assert_frame_equal(one.transactions, two.transactions)
    assert list(one.panel.columns) == ["customer_id", "period"] and "alive" not in one.truth


def test_time_unit_and_period_length_only_rescale_time():
    """Weekly periods in days (period_length 7, alpha and beta in days) draw the same sample
    as in weeks: the same random numbers, every duration times 7."""
    common = dict(coefficients={"purchase": PURCHASE, "dropout": {"season": 0.7}}, **sources(n=2000),
                  start=START, periods=20, acquisition_periods=4, calibration_periods=12, seed=5)
    weeks = pareto_nbd_time_varying(2000, params=dict(r=0.8, alpha=3.0, s=0.7, beta=10.0), **common)
    days = pareto_nbd_time_varying(2000, params=dict(r=0.8, alpha=21.0, s=0.7, beta=70.0),
                                   time_unit="D", period_length=7, **common)
    assert len(weeks.transactions) == len(days.transactions) > 2000
    gap = (weeks.transactions["date"] - days.transactions["date"]).abs().max()
    assert gap < pd.Timedelta(microseconds=1)
    pd.testing.assert_frame_equal(weeks.panel, days.panel)
    np.testing.assert_allclose(days.truth["lifetime_"], 7 * weeks.truth["lifetime_"], rtol=1e-12)
    assert days.calibration_end == weeks.calibration_end and days.time_unit == "D"
