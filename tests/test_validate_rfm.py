"""Every rule of validate_rfm: a DataValidationError naming the column, the rule and the row."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import clvlab
from clvlab import DataValidationError
from clvlab.datasets import load_cdnow_summary


def good_rfm() -> pd.DataFrame:
    return pd.DataFrame({"frequency": [0, 2, 5], "recency": [0.0, 10.0, 30.0],
                         "T": [40.0, 38.0, 30.0], "monetary_value": [0.0, 12.0, 20.0]},
                        index=pd.Index([101, 102, 103], name="customer_id"))


def broken(column, position, value) -> pd.DataFrame:
    frame = good_rfm()
    if isinstance(value, float):
        frame[column] = frame[column].astype("float64")
    frame.iloc[position, frame.columns.get_loc(column)] = value
    return frame


@pytest.mark.parametrize("column, position, value, rule", [
    ("frequency", 1, -1, "must be >= 0"),
    ("frequency", 1, 1.5, "must be a whole number"),
    ("frequency", 2, np.nan, "is missing or NaN"),
    ("recency", 1, np.inf, "is infinite"),
    ("recency", 1, -2.0, "recency must be >= 0"),
    ("recency", 1, 39.0, "recency must be <= T"),
    ("recency", 0, 3.0, "recency must be 0 for a customer without repeat purchases"),
    ("recency", 1, 0.0, "recency must be > 0 for a customer with repeat purchases"),
    ("T", 0, -1.0, "T (age) must be > 0"),
    ("T", 2, 0.0, "T (age) must be > 0 for a customer with repeat purchases"),
    ("monetary_value", 2, -5.0, "monetary_value must be >= 0"),
])
def test_each_rule_names_column_rule_and_row(column, position, value, rule):
    frame = broken(column, position, value)
    with pytest.raises(DataValidationError) as caught:
        clvlab.validate_rfm(frame)
    error = caught.value
    assert error.column == column
    assert rule in str(error)
    assert error.row["<row>"] == frame.index[position]
    assert f"'{column}'" in str(error) and str(frame.index[position]) in str(error)


def test_age_zero_with_repeat_purchases_is_refused():
    frame = pd.DataFrame({"frequency": [1], "recency": [0.0], "T": [0.0]})
    with pytest.raises(DataValidationError, match="T \\(age\\) must be > 0 for a customer with repeat"):
        clvlab.validate_rfm(frame)


def test_missing_and_non_numeric_columns():
    with pytest.raises(DataValidationError, match="'T': is missing"):
        clvlab.validate_rfm(good_rfm().drop(columns="T"))
    with pytest.raises(DataValidationError, match="'monetary_value': is missing"):
        clvlab.validate_rfm(good_rfm().drop(columns="monetary_value"), require_monetary=True)
    with pytest.raises(DataValidationError, match="'recency': must be numeric"):
        clvlab.validate_rfm(good_rfm().assign(recency=["0", "10", "30"]))
    with pytest.raises(DataValidationError, match="no rows"):
        clvlab.validate_rfm(good_rfm().iloc[:0])
    with pytest.raises(DataValidationError, match="must be a DataFrame"):
        clvlab.validate_rfm(good_rfm().to_numpy())


def test_holdout_columns_are_checked_when_present():
    with pytest.raises(DataValidationError, match="'frequency_holdout': frequency_holdout must be a whole"):
        clvlab.validate_rfm(good_rfm().assign(frequency_holdout=[0, -1, 2]))
    with pytest.raises(DataValidationError, match="'duration_holdout': duration_holdout must be > 0"):
        clvlab.validate_rfm(good_rfm().assign(duration_holdout=0.0))


def test_renamed_columns_and_published_summary_pass():
    renamed = good_rfm().rename(columns={"frequency": "x", "recency": "t_x"})
    assert clvlab.validate_rfm(renamed, columns={"frequency": "x", "recency": "t_x"}) is renamed
    clvlab.validate_rfm(load_cdnow_summary(), require_monetary=True)
