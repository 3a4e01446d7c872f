"""The one definition of each RFM column (clvlab.data.rfm_columns): numpy and SQL agree to the
bit, every public column is defined once, and every engine's output is exactly the spec's."""

from __future__ import annotations

import dataclasses
import warnings

import duckdb
import numpy as np
import pandas as pd
import pytest

import clvlab
from clvlab.churn import shift_back
from clvlab.data.calibration import calibration_data
from clvlab.data.rfm import HOLDOUT_COLUMNS, RFM_COLUMNS
from clvlab.data.rfm_columns import (AGGREGATES, CONSTANTS, SPEC, Aggregate, Constant, columns_for,
                                     evaluate, render_sql)
from clvlab.data.rfm_duckdb import double_literal
from clvlab.data.rfm_rules import Window, finish, make_settings, rfm_columns_sql
from clvlab.core.timeunits import UNIT_SECONDS

PUBLIC = RFM_COLUMNS + ["monetary_value"] + HOLDOUT_COLUMNS
COMBINATIONS = [(amounts, holdout) for amounts in (False, True) for holdout in (False, True)]


def duckdb_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def random_aggregates(rng: np.random.Generator, n: int = 3_000) -> pd.DataFrame:
    """Per-customer aggregates as the engines build them, with the edge cases the columns
    treat apart: one calibration period (n_cal == 1, no repeats), no holdout purchase
    (n_hold == 0), and period starts at fractional seconds."""
    n_cal = rng.choice([1, 1, 1, 2, 3, 7, 40], n)
    first_p = 8.7e8 + rng.uniform(0, 3e7, n)  # fractional seconds, in the CDNOW years
    last_p = np.where(n_cal > 1, first_p + rng.uniform(0, 3e7, n), first_p)
    values = rng.gamma(2.0, 30.0, (n, 2))
    values[: n // 2] = values[: n // 2].round(2)  # amounts in cents, and arbitrary doubles
    n_hold = rng.choice([0, 0, 0, 1, 5], n)
    return pd.DataFrame({
        "cid": np.arange(n),
        "n_cal": n_cal.astype(np.int64),
        "first_p": first_p, "last_p": last_p,
        "total": values[:, 0] * n_cal, "first_value": values[:, 1],
        "n_hold": n_hold.astype(np.int64),
        "total_hold": np.where(n_hold > 0, rng.gamma(2.0, 50.0, n), 0.0),
    })


def in_duckdb(aggregates: pd.DataFrame, columns_sql: list[str]) -> pd.DataFrame:
    con = duckdb.connect()
    try:
        con.register("aggregates", aggregates)
        return con.execute(f"SELECT {', '.join(columns_sql)} FROM aggregates ORDER BY cid").df()
    finally:
        con.close()


def assert_same_bits(left: pd.Series | np.ndarray, right: pd.Series | np.ndarray, name: str) -> None:
    left, right = np.asarray(left), np.asarray(right)
    assert left.dtype == right.dtype, (name, left.dtype, right.dtype)
    differ = left.view(np.uint64) != right.view(np.uint64)  # -0.0 != 0.0, NaN == its own bits
    assert not differ.any(), f"{name}: {differ.sum()} rows differ, e.g. {left[differ][:3]} vs {right[differ][:3]}"


def test_each_public_column_is_defined_once():
    names = [column.name for column in SPEC]
    assert len(names) == len(set(names)), names
    assert names == PUBLIC  # in the summary's order
    assert [c.name for c in SPEC if c.dtype == np.int64] == ["frequency", "frequency_holdout"]
    assert [c.name for c in SPEC if c.amounts] == ["monetary_value", "monetary_value_holdout"]
    assert [c.name for c in SPEC if c.holdout] == HOLDOUT_COLUMNS


def leaves(node) -> list:
    if isinstance(node, (Aggregate, Constant)):
        return [node]
    return [leaf for field in dataclasses.fields(node)
            if dataclasses.is_dataclass(value := getattr(node, field.name))
            for leaf in leaves(value)]


def test_columns_read_only_the_aggregates_and_constants():
    for column in SPEC:
        for leaf in leaves(column.expr):
            assert leaf.name in (AGGREGATES if isinstance(leaf, Aggregate) else CONSTANTS), \
                (column.name, leaf.name)
        # a column without amounts never reads an amount aggregate: a log without amounts has none
        read = {leaf.name for leaf in leaves(column.expr)}
        assert column.amounts or not read & {"total", "first_value", "total_hold"}, column.name


@pytest.mark.parametrize("unit", sorted(UNIT_SECONDS))
def test_numpy_equals_duckdb_on_random_aggregates(unit):
    rng = np.random.default_rng(len(unit))
    aggregates = random_aggregates(rng)
    constants = {"unit_seconds": float(UNIT_SECONDS[unit]),
                 "calibration_end": aggregates["last_p"].max() + 0.123457,
                 "observation_end": aggregates["last_p"].max() + 9.87e6 + 0.5}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # np.where's discarded divisions by zero must not warn
        by_numpy = evaluate(list(SPEC), aggregates, constants, len(aggregates))
    by_sql = in_duckdb(aggregates, ["cid"] + render_sql(list(SPEC), constants, double_literal,
                                                          duckdb_ident))
    assert list(by_sql.columns[1:]) == list(by_numpy) == PUBLIC
    for name, values in by_numpy.items():
        assert_same_bits(values, by_sql[name], name)
    # the edge cases are there, and their columns take the documented values
    single, no_hold = aggregates["n_cal"] == 1, aggregates["n_hold"] == 0
    assert single.sum() > 100 and no_hold.sum() > 100
    assert (by_numpy["monetary_value"][single] == 0.0).all()
    assert (by_numpy["monetary_value_holdout"][no_hold] == 0.0).all()
    assert (by_numpy["recency"][single] == 0.0).all()
    assert (by_numpy["frequency"] == aggregates["n_cal"] - 1).all()


@pytest.mark.parametrize("amounts, holdout", COMBINATIONS)
def test_pandas_engine_and_rendered_sql_agree_for_each_kind_of_summary(amounts, holdout):
    """finish (the pandas engine's last step) against the SQL the DuckDB and Spark engines run
    (rfm_columns_sql), on one set of aggregates and a window ending at fractional seconds."""
    settings = make_settings(customer_col="customer_id", date_col="date",
                             amount_col="amount" if amounts else None, time_unit="W",
                             date_format=None, timezone="UTC", merge_period=None)
    calibration_end = pd.Timestamp("1998-03-01 10:11:12.345678")
    window = Window(calibration_end=calibration_end, has_holdout=holdout,
                    observation_end=calibration_end + pd.Timedelta("37D 01:02:03.000001")
                    if holdout else calibration_end)
    aggregates = random_aggregates(np.random.default_rng(7))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        by_pandas = finish(aggregates.set_index("cid"), settings, window, counts={})
    by_sql = in_duckdb(aggregates, rfm_columns_sql(settings, window, double_literal, duckdb_ident))
    by_sql = by_sql.set_index("customer_id")
    expected = [column.name for column in columns_for(amounts, holdout)]
    assert list(by_pandas.columns) == list(by_sql.columns) == expected
    assert by_pandas.index.equals(by_sql.index)
    for name in expected:
        assert_same_bits(by_pandas[name], by_sql[name], name)


@pytest.mark.parametrize("amounts, holdout", COMBINATIONS)
def test_every_engine_outputs_exactly_the_columns_of_the_spec(cdnow_sample, amounts, holdout):
    """A column added to an engine's output but not to the spec (or the other way) fails here."""
    options = dict(amount_col="amount" if amounts else None, time_unit="W",
                   calibration_end="1997-09-30" if holdout else None)
    expected = [column.name for column in columns_for(amounts, holdout)]
    dtypes = {column.name: np.dtype(column.dtype) for column in SPEC}
    for engine in ("pandas", "duckdb"):
        rfm = clvlab.rfm_summary(cdnow_sample, engine=engine, **options)
        assert list(rfm.columns) == expected, engine
        assert {name: rfm[name].dtype for name in rfm} == {name: dtypes[name] for name in expected}


@pytest.mark.parametrize("amount_col", ["amount", None])
def test_shift_back_summary_has_the_columns_of_the_spec(cdnow_sample, amount_col):
    calibration, _ = calibration_data(cdnow_sample, "1997-12-31", 13, amount_col=amount_col)
    earlier, _ = shift_back(calibration, 13)
    expected = columns_for(amounts=amount_col is not None, holdout=False)
    assert list(earlier.rfm.columns) == [column.name for column in expected]
    assert [earlier.rfm[c.name].dtype for c in expected] == [np.dtype(c.dtype) for c in expected]
