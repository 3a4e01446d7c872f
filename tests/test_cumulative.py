"""expected_cumulative_purchases against simulated cohorts: at every time point the expected
total must match the simulated total within Monte Carlo error, for each purchase model."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import clvlab
from clvlab import ClvlabError, simulate
from clvlab.cumulative import expected_cumulative_purchases

PNBD = {"r": 0.55, "alpha": 10.58, "s": 0.61, "beta": 11.67}  # CDNOW's weekly estimates
BGNBD = {"r": 0.24, "alpha": 4.41, "a": 0.79, "b": 2.43}
TIMES = np.array([2.0, 8.0, 13.0, 26.0, 39.0, 52.0])


def _within_monte_carlo_error(expected, simulated_per_customer):
    """The simulated total (sum over customers of their counts) against the expectation: the
    customers are independent given their births, so the total's standard error is
    sqrt(n) x the per-customer standard deviation."""
    total = simulated_per_customer.sum(axis=0)
    error = np.sqrt(simulated_per_customer.shape[0]) * simulated_per_customer.std(axis=0, ddof=1)
    z = (total - np.asarray(expected)) / error
    assert np.all(np.abs(z) < 4), f"z-scores {np.round(z, 2)}"


def _repeat_counts_by_time(log, time_unit):
    """Each customer's repeat purchases by each time point of TIMES (time units since the first
    acquisition), and their births, from a simulated log."""
    start = log["date"].min()
    when = ((log["date"] - start) / pd.Timedelta(seconds=1)).to_numpy() \
        / clvlab.timeunits.unit_seconds(time_unit)
    customer = log["customer_id"].to_numpy()
    births = pd.Series(when).groupby(customer).min()
    repeat = when > births.reindex(customer).to_numpy()
    codes = births.index.get_indexer(customer[repeat])
    counts = np.zeros((births.size, TIMES.size))
    for j, t in enumerate(TIMES):
        counts[:, j] = np.bincount(codes[when[repeat] <= t], minlength=births.size)
    return births.to_numpy(), counts


@pytest.mark.parametrize("kind, model", [
    ("pareto-nbd", clvlab.ParetoNBD.from_params(time_unit="W", **PNBD)),
    ("bg-nbd", clvlab.BetaGeo.from_params(time_unit="W", **BGNBD)),
])
def test_expected_total_matches_a_simulated_cohort(kind, model):
    params = PNBD if kind == "pareto-nbd" else BGNBD
    log = simulate.transaction_log(20_000, model=kind, params=params, acquisition_period=13,
                                   observation_period=60, time_unit="W", seed=7)
    births, counts = _repeat_counts_by_time(log, "W")
    expected = expected_cumulative_purchases(model, births, TIMES)
    assert list(expected.index) == list(TIMES) and expected.name == "expected_cumulative_purchases"
    assert np.all(np.diff(expected.to_numpy()) > 0)
    _within_monte_carlo_error(expected, counts)


def test_mbg_nbd_total_matches_customers_of_each_age():
    """A customer born at b has age t - b at time t: the simulator draws each customer's
    purchases at that age, so the sum is one draw of the cohort's total at t."""
    params = {"r": 0.5, "alpha": 5.0, "a": 0.8, "b": 2.5}
    model = clvlab.ModifiedBetaGeo.from_params(time_unit="W", **params)
    births = np.random.default_rng(3).uniform(0, 13, 20_000)
    t = 30.0
    rfm = simulate.mbg_nbd(births.size, T=t - births, seed=4, **params)
    expected = expected_cumulative_purchases(model, births, [t])
    _within_monte_carlo_error(expected, rfm["frequency"].to_numpy(np.float64)[:, None])


def test_bg_bb_counts_whole_opportunities():
    params = {"alpha": 1.2, "beta": 0.75, "gamma": 0.66, "delta": 2.78}
    model = clvlab.BetaGeoBetaBinom.from_params(**params)
    births = np.random.default_rng(5).integers(0, 4, 20_000).astype(float)
    t = 10.0
    table = simulate.bg_bb(births.size, periods=(t - births).astype(np.int64), seed=6, **params)
    expected = expected_cumulative_purchases(model, births, [t])
    _within_monte_carlo_error(expected, table["frequency"].to_numpy(np.float64)[:, None])


def test_customers_count_only_after_their_birth():
    model = clvlab.ParetoNBD.from_params(time_unit="W", **PNBD)
    one = model.expected_purchases_new_customer(10.0)
    got = expected_cumulative_purchases(model, [0.0, 0.0, 20.0], [10.0, 20.0])
    assert got.iloc[0] == pytest.approx(2 * one)  # the third customer is not born yet
    assert got.iloc[1] == pytest.approx(2 * model.expected_purchases_new_customer(20.0))


def test_dates_are_converted_with_the_models_unit():
    days = clvlab.ParetoNBD.from_params(time_unit="D", r=0.55, alpha=74.0, s=0.61, beta=81.7)
    births = pd.to_datetime(["2024-01-01", "2024-01-01", "2024-01-15"])
    times = pd.to_datetime(["2024-02-01", "2024-03-01"])
    by_date = expected_cumulative_purchases(days, births, times)
    by_number = expected_cumulative_purchases(days, [0, 0, 14], [31, 60])
    np.testing.assert_allclose(by_date.to_numpy(), by_number.to_numpy())
    assert list(by_date.index) == list(times)
    # strings are dates too; a unit given for a model without one converts them
    bare = clvlab.ParetoNBD.from_params(r=0.55, alpha=74.0, s=0.61, beta=81.7)
    np.testing.assert_allclose(expected_cumulative_purchases(
        bare, ["2024-01-01", "2024-01-01", "2024-01-15"], ["2024-02-01", "2024-03-01"],
        time_unit="D").to_numpy(), by_number.to_numpy())


def test_refuses_what_it_cannot_compute():
    bare = clvlab.ParetoNBD.from_params(**PNBD)
    with pytest.raises(ClvlabError, match="no time unit.*time_unit="):
        expected_cumulative_purchases(bare, ["2024-01-01"], ["2024-02-01"])
    weeks = clvlab.ParetoNBD.from_params(time_unit="W", **PNBD)
    with pytest.raises(ClvlabError, match="time_unit='D' contradicts the model's time unit 'W'"):
        expected_cumulative_purchases(weeks, [0.0], [1.0], time_unit="D")
    with pytest.raises(ClvlabError, match=r"births must be finite.*births\[1\] is nan"):
        expected_cumulative_purchases(weeks, [0.0, np.nan], [1.0])
    with pytest.raises(ClvlabError, match="both be numbers"):
        expected_cumulative_purchases(weeks, [0.0], ["2024-01-01"])
    with pytest.raises(ClvlabError, match="births is empty"):
        expected_cumulative_purchases(weeks, [], [1.0])
    with pytest.raises(ClvlabError, match="got a GammaGamma"):
        expected_cumulative_purchases(clvlab.GammaGamma.from_params(p=6, q=4, v=15), [0.0], [1.0])
