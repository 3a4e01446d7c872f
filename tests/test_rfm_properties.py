"""Property tests: on random logs (refunds, same-day bursts, random cuts) the engines agree."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import clvlab
from clvlab import ClvlabError, ClvlabWarning

from conftest import assert_same_rfm

START = pd.Timestamp("2024-03-01")


@st.composite
def logs(draw):
    n = draw(st.integers(1, 40))
    customers = draw(st.lists(st.integers(1, 6), min_size=n, max_size=n))
    seconds = draw(st.lists(st.integers(0, 60 * 86_400), min_size=n, max_size=n))
    cents = draw(st.lists(st.integers(-3_000, 10_000), min_size=n, max_size=n))
    frame = pd.DataFrame({"customer_id": customers,
                          "date": START + pd.to_timedelta(seconds, unit="s"),
                          "amount": np.array(cents) / 100.0})
    cut = draw(st.one_of(st.none(), st.integers(0, 60 * 86_400)))
    cut = None if cut is None else START + pd.Timedelta(seconds=cut)
    unit = draw(st.sampled_from(["D", "W", "M", "h"]))
    # ids as numbers, text or categories (in an order that is not the sorted one): the engines
    # must agree on the index too, dtype and order included
    ids = draw(st.sampled_from(["int", "str", "category"]))
    if ids != "int":
        text = frame["customer_id"].map(lambda i: f"c{i * 7}")  # c14 sorts before c7 as text
        frame["customer_id"] = text if ids == "str" else pd.Categorical(
            text, categories=sorted(text.unique(), reverse=True))
    return frame, cut, unit


def run(frame, engine, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ClvlabWarning)
        try:
            return clvlab.rfm_summary(frame, engine=engine, **kwargs)
        except ClvlabError as exc:
            return exc


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(logs())
def test_engines_agree_on_random_logs(case):
    frame, cut, unit = case
    kwargs = dict(amount_col="amount", calibration_end=cut, time_unit=unit)
    by_pandas, by_duckdb = run(frame, "pandas", **kwargs), run(frame, "duckdb", **kwargs)
    if isinstance(by_pandas, Exception) or isinstance(by_duckdb, Exception):
        rule = lambda error: str(error).split("; example row")[0]  # noqa: E731
        assert type(by_pandas) is type(by_duckdb) and rule(by_pandas) == rule(by_duckdb)
        return
    assert_same_rfm(by_pandas, by_duckdb)
    assert by_pandas.index.dtype == by_duckdb.index.dtype and by_pandas.index.is_monotonic_increasing
    clvlab.validate_rfm(by_pandas)
    # conservation: every purchase day before the cut is the first purchase or a repeat
    purchases = frame[frame["amount"] >= 0]
    merge = "h" if unit == "h" else "D"
    if cut is not None:
        purchases = purchases[purchases["date"] <= cut]
    days = purchases.assign(day=purchases["date"].dt.floor(merge)).groupby(["customer_id", "day"])
    assert int(by_pandas["frequency"].sum()) + len(by_pandas) == days.ngroups


@pytest.mark.slow
def test_engines_agree_on_a_large_simulated_log_from_parquet(tmp_path):
    from clvlab.simulate import transaction_log

    log = transaction_log(200_000, model="bg-nbd", params=dict(r=0.8, alpha=4.0, a=0.8, b=2.5),
                          spend=dict(p=6.0, q=3.7, v=15.0), seed=11)
    refunds = log.sample(frac=0.01, random_state=1).assign(amount=lambda f: -f["amount"] / 2)
    log = pd.concat([log, refunds], ignore_index=True)
    path = tmp_path / "log.parquet"
    log.to_parquet(path, index=False)
    kwargs = dict(amount_col="amount", time_unit="W", calibration_end="2024-09-01 12:00")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ClvlabWarning)
        by_pandas = clvlab.rfm_summary(log, **kwargs)
        by_duckdb = clvlab.rfm_summary(str(path), **kwargs)
    assert_same_rfm(by_pandas, by_duckdb)
    assert len(by_pandas) > 150_000 and by_pandas["frequency_holdout"].sum() > 0
