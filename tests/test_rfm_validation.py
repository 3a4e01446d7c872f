"""Every rule of the transaction-log validation: a clvlab error naming column, rule and row."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import clvlab
from clvlab import ClvlabError, DataValidationError

ENGINES = ["pandas", "duckdb"]


def good_log() -> pd.DataFrame:
    return pd.DataFrame({
        "customer_id": [1, 1, 2, 3, 3],
        "date": pd.to_datetime(["2024-01-01", "2024-01-05", "2024-01-02", "2024-01-03", "2024-01-09"]),
        "amount": [10.0, 12.5, 3.0, 8.0, 9.0],
    })


def with_value(column: str, position: int, value, dtype=None) -> pd.DataFrame:
    frame = good_log()
    values = frame[column].astype(object if dtype is None else dtype).tolist()
    values[position] = value
    frame[column] = pd.Series(values, dtype=dtype)
    return frame


def expect_error(frame, match_parts, engine, error=DataValidationError, **kwargs):
    kwargs.setdefault("amount_col", "amount")
    with pytest.raises(error) as caught:
        clvlab.rfm_summary(frame, engine=engine, **kwargs)
    message = str(caught.value)
    for part in match_parts:
        assert part in message, f"{part!r} not in {message!r}"
    assert isinstance(caught.value, ValueError)
    return caught.value


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("column", ["customer_id", "date", "amount"])
def test_missing_column(engine, column):
    err = expect_error(good_log().drop(columns=column), [repr(column), "is missing"], engine)
    assert err.column == column


@pytest.mark.parametrize("engine", ENGINES)
def test_missing_customer_id(engine):
    frame = good_log().astype({"customer_id": "float64"})
    frame.loc[3, "customer_id"] = np.nan
    err = expect_error(frame, ["'customer_id'", "customer id is missing", "8.0"], engine)
    assert err.row is not None


@pytest.mark.parametrize("engine", ENGINES)
def test_missing_date(engine):
    frame = good_log()
    frame.loc[2, "date"] = pd.NaT
    expect_error(frame, ["'date'", "date is missing", "3.0"], engine)


@pytest.mark.parametrize("engine", ENGINES)
def test_unparseable_date(engine):
    frame = good_log().assign(date=["2024-01-01", "2024-01-05", "not a date", "2024-01-03", "2024-01-09"])
    expect_error(frame, ["'date'", "not a parseable date", "not a date"], engine)


@pytest.mark.parametrize("engine", ENGINES)
def test_numbers_are_not_dates_without_a_format(engine):
    frame = good_log().assign(date=[20240101, 20240105, 20240102, 20240103, 20240109])
    expect_error(frame, ["'date'", "numbers are not dates", "date_format"], engine)


@pytest.mark.parametrize("engine", ENGINES)
def test_date_not_in_the_given_format(engine):
    frame = good_log().assign(date=["20240101", "20240105", "2024-01-02", "20240103", "20240109"])
    expect_error(frame, ["'date'", "not a date in format '%Y%m%d'", "2024-01-02"], engine,
                 date_format="%Y%m%d")


@pytest.mark.parametrize("engine", ENGINES)
def test_non_numeric_amount(engine):
    frame = good_log().assign(amount=["10", "12.5", "three", "8", "9"])
    expect_error(frame, ["'amount'", "must be numeric"], engine)


@pytest.mark.parametrize("engine", ENGINES)
def test_nan_amount(engine):
    frame = good_log()
    frame.loc[4, "amount"] = np.nan
    expect_error(frame, ["'amount'", "missing or NaN", "2024-01-09"], engine)


@pytest.mark.parametrize("engine", ENGINES)
def test_infinite_amount(engine):
    frame = good_log()
    frame.loc[1, "amount"] = np.inf
    expect_error(frame, ["'amount'", "infinite", "2024-01-05"], engine)


@pytest.mark.parametrize("engine", ENGINES)
def test_empty_log(engine):
    expect_error(good_log().iloc[:0], ["empty"], engine)


@pytest.mark.parametrize("engine", ENGINES)
def test_mixed_customer_id_types(engine):
    frame = with_value("customer_id", 2, "2")
    expect_error(frame, ["'customer_id'", "mix types", "'2'"], engine)


@pytest.mark.parametrize("engine", ENGINES)
def test_mixed_naive_and_zoned_timestamps(engine):
    frame = good_log().assign(date=["2024-01-01", "2024-01-05T10:00:00+02:00", "2024-01-02",
                                    "2024-01-03", "2024-01-09"])
    expect_error(frame, ["'date'", "mix naive values and values with a UTC offset"], engine)


@pytest.mark.parametrize("engine", ENGINES)
def test_calibration_end_before_the_data(engine):
    expect_error(good_log(), ["calibration_end", "before the first transaction"], engine,
                 calibration_end="2023-12-01")


@pytest.mark.parametrize("engine", ENGINES)
def test_calibration_end_after_the_data(engine):
    expect_error(good_log(), ["calibration_end", "at or after the last transaction"], engine,
                 calibration_end="2024-01-09")


@pytest.mark.parametrize("engine", ENGINES)
def test_observation_end_before_calibration_end(engine):
    expect_error(good_log(), ["observation_end", "must be after calibration_end"], engine,
                 calibration_end="2024-01-04", observation_end="2024-01-03")


@pytest.mark.parametrize("engine", ENGINES)
def test_observation_end_before_the_data(engine):
    expect_error(good_log(), ["observation_end", "before the first transaction"], engine,
                 observation_end="2023-06-01")


@pytest.mark.parametrize("engine", ENGINES)
def test_hours_need_a_time_of_day(engine):
    expect_error(good_log(), ["'date'", "time_unit='h' needs timestamps with a time of day"],
                 engine, time_unit="h")


@pytest.mark.parametrize("argument, value, words", [
    ("time_unit", "fortnight", "time_unit 'fortnight' is not supported"),
    ("timezone", "Mars/Olympus", "not a known time zone"),
    ("merge_period", "W", "merge_period 'W' is not supported"),
    ("engine", "spark-ish", "engine 'spark-ish' is not supported"),
    ("calibration_end", "the day after", "calibration_end='the day after' is not a date"),
])
def test_bad_arguments(argument, value, words):
    with pytest.raises(ClvlabError, match=words):
        clvlab.rfm_summary(good_log(), **{argument: value})


def test_missing_files_and_unknown_formats(tmp_path):
    with pytest.raises(ClvlabError, match="no transaction file matches"):
        clvlab.rfm_summary(str(tmp_path / "nothing-*.parquet"))
    (tmp_path / "log.json").write_text("{}")
    with pytest.raises(ClvlabError, match="must all be CSV .* or all Parquet"):
        clvlab.rfm_summary(str(tmp_path / "log.json"))


def test_unreadable_file_becomes_a_clvlab_error(tmp_path):
    path = tmp_path / "broken.parquet"
    path.write_bytes(b"PAR1 this is not a parquet file")
    with pytest.raises(ClvlabError, match="DuckDB could not summarise"):
        clvlab.rfm_summary(str(path))
