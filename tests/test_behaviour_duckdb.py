"""The churn adjuster's behaviour features in DuckDB equal the pandas engine's.

:func:`clvlab.churn.behaviour_duckdb.behaviour_features_duckdb` computes the per-customer
aggregates in SQL and :func:`clvlab.churn.features.behaviour_features` in pandas; both build the
features with :func:`clvlab.churn.features.behaviour_table`. These tests are the link between the
two aggregations: equal to 1e-9 relative (counts exactly), on a simulated log, on edge cases, on
files, without amounts, in hours and with text ids.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("duckdb")

from clvlab.churn.behaviour_duckdb import behaviour_features_duckdb  # noqa: E402
from clvlab.churn.features import BEHAVIOUR_FEATURES, SPEND_FEATURES, behaviour_features  # noqa: E402
from clvlab.core.errors import ClvlabError, ClvlabWarning  # noqa: E402
from clvlab.data.calibration import calibration_data  # noqa: E402
from clvlab.data.simulate import transaction_log  # noqa: E402

COUNTS = ("purchases_last_30d", "purchases_last_90d")
# the edge cases' refunds: both engines warn (the refund rule), checked in test_edge_cases
pytestmark = pytest.mark.filterwarnings("ignore:.*refund rule")


def pandas_features(log, cutoff, **options):
    return behaviour_features(calibration_data(log, cutoff, **options)[0])


def assert_same(got: pd.DataFrame, expected: pd.DataFrame) -> None:
    assert list(got.columns) == list(expected.columns)
    assert list(got.index) == list(expected.index)
    assert got.index.name == expected.index.name
    for column in expected.columns:
        a, b = got[column].to_numpy(np.float64), expected[column].to_numpy(np.float64)
        if column in COUNTS:
            np.testing.assert_array_equal(a, b, err_msg=column)
        else:
            # a spread of equal values is 0 in one engine and ~1e-15 in the other
            np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12 * (1 + np.abs(b).max()),
                                       err_msg=column)


@pytest.fixture(scope="module")
def simulated():
    return transaction_log(600, model="pareto-nbd",
                           params={"r": 0.6, "alpha": 9.0, "s": 0.8, "beta": 12.0},
                           spend={"p": 6.0, "q": 4.0, "v": 15.0}, seed=3, start="2024-01-01")


def edge_log() -> pd.DataFrame:
    """Cutoff 2024-06-30: one purchase; two; several on one day; purchases exactly 30 and 90
    days before the cutoff; one after it; zero amounts; a refund that nets a day below 0; a
    refund-only day; a customer acquired after the cutoff."""
    rows = [
        (1, "2024-03-01 10:00", 20.0),                                   # one purchase
        (2, "2024-02-01 09:00", 10.0), (2, "2024-04-15 12:00", 30.0),    # two
        (3, "2024-01-05 08:00", 5.0), (3, "2024-03-10 09:00", 7.0),
        (3, "2024-03-10 17:00", 8.0), (3, "2024-03-10 23:59", 1.0),      # merged into one day
        (3, "2024-04-01", 12.0),                                         # exactly 90 days before
        (3, "2024-05-31", 4.0),                                          # exactly 30 days before
        (3, "2024-06-29 18:00", 9.0), (3, "2024-07-02", 100.0),          # the last one: after
        (4, "2024-02-02", 0.0), (4, "2024-05-20", 0.0), (4, "2024-06-10", 0.0),  # zero amounts
        (5, "2024-01-10", 15.0), (5, "2024-04-02 10:00", 6.0), (5, "2024-04-02 11:00", -9.0),
        (5, "2024-05-01", -3.0), (5, "2024-06-01", 11.0),                # refunds
        (6, "2024-07-05", 50.0),                                         # after the cutoff only
    ]
    return pd.DataFrame(rows, columns=["customer_id", "date", "amount"]).assign(
        date=lambda f: pd.to_datetime(f["date"], format="ISO8601"))


def test_a_simulated_log(simulated):
    got = behaviour_features_duckdb(simulated, "2024-09-30", amount_col="amount")
    assert list(got.columns) == list(BEHAVIOUR_FEATURES)
    assert len(got) > 300
    assert_same(got, pandas_features(simulated, "2024-09-30", amount_col="amount"))


@pytest.mark.parametrize("time_unit", ["W", "D"])
def test_edge_cases(time_unit):
    log = edge_log()
    with pytest.warns(ClvlabWarning, match="1 customer-periods held only refunds"):
        got = behaviour_features_duckdb(log, "2024-06-30", amount_col="amount",
                                        time_unit=time_unit)
    assert_same(got, pandas_features(log, "2024-06-30", amount_col="amount", time_unit=time_unit))
    assert list(got.index) == [1, 2, 3, 4, 5]
    # customer 3: the same-day purchases are one period, the 90- and 30-day-old ones are outside
    # their windows, the purchase after the cutoff is not seen
    three = got.loc[3]
    assert three["purchases_last_30d"] == 1 and three["purchases_last_90d"] == 2
    assert three["spend_last_90d"] == pytest.approx(13.0)
    assert three["order_value_max"] == pytest.approx(16.0)
    assert got.loc[1, "gap_cv"] == 0 and got.loc[2, "gap_cv"] == 0
    assert got.loc[4, "order_value_trend"] == 1.0


def test_without_amounts_the_spend_features_are_absent(simulated):
    log = simulated.drop(columns="amount")
    got = behaviour_features_duckdb(log, "2024-09-30")
    assert not set(SPEND_FEATURES) & set(got.columns)
    assert_same(got, pandas_features(log, "2024-09-30"))


def test_hours_as_time_unit():
    log = edge_log()
    cutoff = "2024-06-30 12:00"
    got = behaviour_features_duckdb(log, cutoff, amount_col="amount", time_unit="h")
    assert_same(got, pandas_features(log, cutoff, amount_col="amount", time_unit="h"))


def test_text_ids(simulated):
    log = simulated.assign(customer_id="c" + simulated["customer_id"].astype(str))
    got = behaviour_features_duckdb(log, "2024-09-30", amount_col="amount")
    assert got.index[0].startswith("c")
    assert_same(got, pandas_features(log, "2024-09-30", amount_col="amount"))


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_files_are_scanned(tmp_path, simulated, fmt):
    half = len(simulated) // 2
    for i, part in enumerate((simulated.iloc[:half], simulated.iloc[half:])):
        path = tmp_path / f"log_{i}.{fmt}"
        part.to_csv(path, index=False) if fmt == "csv" else part.to_parquet(path, index=False)
    got = behaviour_features_duckdb(str(tmp_path / f"log_*.{fmt}"), "2024-09-30",
                                    amount_col="amount")
    assert_same(got, pandas_features(simulated, "2024-09-30", amount_col="amount"))


def test_chosen_customers():
    log = edge_log()
    got = behaviour_features_duckdb(log, "2024-06-30", amount_col="amount", customers=[5, 2])
    expected = pandas_features(log, "2024-06-30", amount_col="amount")
    assert_same(got, expected.loc[[5, 2]])
    with pytest.raises(ClvlabError, match="no transactions"):
        behaviour_features_duckdb(log, "2024-06-30", amount_col="amount", customers=[6])



def test_with_the_summary_it_is_the_adjusters_input_without_events(simulated):
    """``with_summary=True``: frequency, recency and T first, as churn_training_data's X of a
    log without events, quantities or attributes."""
    from clvlab.churn import churn_training_data

    got = behaviour_features_duckdb(simulated, "2024-09-30", amount_col="amount",
                                    with_summary=True)
    assert_same(got, churn_training_data(simulated, "2024-09-30", amount_col="amount"))
