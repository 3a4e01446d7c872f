"""Rules every RFM table must keep before a model sees it.

A model given a table that breaks one of them would return NaN or a silently wrong fit, so each
rule raises a :class:`~clvlab.errors.DataValidationError` that names the column, the rule and the
first offending row.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .errors import DataValidationError, example_row as _row

__all__ = ["validate_rfm"]


def validate_rfm(rfm: pd.DataFrame, *, require_monetary: bool = False,
                 columns: dict[str, str] | None = None) -> pd.DataFrame:
    """Check an RFM table and return it unchanged.

    Parameters
    ----------
    rfm
        One row per customer with ``frequency``, ``recency`` and ``T`` (as from
        :func:`clvlab.rfm_summary`), optionally ``monetary_value`` and the holdout columns.
    require_monetary
        Also require ``monetary_value``.
    columns
        Map from clvlab's names to the table's, e.g. ``{"frequency": "x", "recency": "t_x"}``.

    Rules
    -----
    frequency, recency and T present, numeric, finite; frequency a non-negative integer;
    recency >= 0 and recency <= T; recency = 0 without repeat purchases and > 0 with them;
    T > 0, except T = 0 for a customer without repeats (first seen at the cut, as
    ``rfm_summary`` reports customers acquired on the last day); monetary_value finite and
    >= 0; frequency_holdout a non-negative integer; duration_holdout > 0.
    """
    if not isinstance(rfm, pd.DataFrame):
        raise DataValidationError(None, f"an RFM table must be a DataFrame, not {type(rfm).__name__}")
    names = {name: (columns or {}).get(name, name) for name in
             ("frequency", "recency", "T", "monetary_value", "frequency_holdout", "duration_holdout")}
    required = ["frequency", "recency", "T"] + (["monetary_value"] if require_monetary else [])
    for name in required:
        if names[name] not in rfm.columns:
            raise DataValidationError(names[name], "is missing from the RFM table",
                                      hint=f"columns present: {list(rfm.columns)}")
    if len(rfm) == 0:
        raise DataValidationError(None, "the RFM table has no rows")

    values = {name: _numeric(rfm, names[name]) for name in names if names[name] in rfm.columns}
    x, t_x, T = values["frequency"], values["recency"], values["T"]

    def check(name: str, bad: np.ndarray, rule: str) -> None:
        if bad.any():
            position = int(np.flatnonzero(bad)[0])
            raise DataValidationError(names[name], rule, _row(rfm, position))

    check("frequency", x < 0, "frequency (repeat purchases) must be >= 0")
    check("frequency", x != np.floor(x), "frequency (repeat purchases) must be a whole number")
    check("recency", t_x < 0, "recency must be >= 0")
    check("T", T < 0, "T (age) must be > 0")
    check("T", (T == 0) & (x > 0), "T (age) must be > 0 for a customer with repeat purchases")
    check("recency", t_x > T, "recency must be <= T (the last purchase cannot come after the cut)")
    check("recency", (x == 0) & (t_x != 0), "recency must be 0 for a customer without repeat purchases")
    check("recency", (x > 0) & (t_x == 0),
          "recency must be > 0 for a customer with repeat purchases (they come after the first)")
    if "monetary_value" in values:
        check("monetary_value", values["monetary_value"] < 0, "monetary_value must be >= 0")
    if "frequency_holdout" in values:
        fh = values["frequency_holdout"]
        check("frequency_holdout", (fh < 0) | (fh != np.floor(fh)),
              "frequency_holdout must be a whole number >= 0")
    if "duration_holdout" in values:
        check("duration_holdout", values["duration_holdout"] <= 0, "duration_holdout must be > 0")
    return rfm


def _numeric(rfm: pd.DataFrame, column: str) -> np.ndarray:
    series = rfm[column]
    if not pd.api.types.is_numeric_dtype(series.dtype) or pd.api.types.is_bool_dtype(series.dtype):
        raise DataValidationError(column, f"must be numeric (dtype is {series.dtype})", _row(rfm, 0))
    values = series.to_numpy(dtype=np.float64, na_value=np.nan)
    bad = ~np.isfinite(values)
    if bad.any():
        position = int(np.flatnonzero(bad)[0])
        rule = "is missing or NaN" if np.isnan(values[position]) else "is infinite"
        raise DataValidationError(column, rule, _row(rfm, position))
    return values
