"""Rules every RFM table must keep before a model sees it.

A model given a table that breaks one of them would return NaN or a silently wrong fit, so each
rule raises a :class:`~clvlab.core.errors.DataValidationError` that names the column, the rule and the
first offending row.
"""

from __future__ import annotations

import contextlib
from contextvars import ContextVar
from typing import Any, Iterator

import numpy as np
import pandas as pd

from clvlab.core.errors import DataValidationError, example_row as _row
from clvlab.data.tables import converts, is_foreign_table, to_pandas

__all__ = ["validate_rfm", "validate_discrete_rfm", "validate_durations", "validated"]

#: The table (the object itself) whose RFM rules have been checked in this context: a loop that
#: predicts one table at many parameter draws checks it once, not at every draw.
_VALIDATED: ContextVar[pd.DataFrame | None] = ContextVar("clvlab_validated_rfm", default=None)


@contextlib.contextmanager
def validated(rfm: pd.DataFrame) -> Iterator[None]:
    """Within this block ``validate_rfm`` passes ``rfm`` (this object, unchanged by the caller)
    without checking it again. Only for a table a first call has just checked with the same
    options: ``posterior_summary`` enters it after a chunk's first draw has been predicted."""
    token = _VALIDATED.set(rfm)
    try:
        yield
    finally:
        _VALIDATED.reset(token)


@converts("rfm")
def validate_rfm(rfm: pd.DataFrame, *, require_monetary: bool = False,
                 columns: dict[str, str] | None = None) -> pd.DataFrame:
    """Check an RFM table and return it unchanged.

    Parameters
    ----------
    rfm
        One row per customer with ``frequency``, ``recency`` and ``T`` (as from
        :func:`clvlab.rfm_summary`), optionally ``monetary_value`` and the holdout columns: a
        pandas or polars DataFrame or a pyarrow Table (:mod:`clvlab.data.tables`; a polars or
        Arrow table is checked as pandas).
    require_monetary
        Also require ``monetary_value``.
    columns
        Map from clvlab's names to the table's, e.g. ``{"frequency": "x", "recency": "t_x"}``.

    Returns
    -------
    pandas.DataFrame, polars.DataFrame or pyarrow.Table
        ``rfm`` itself (a polars or Arrow table as given, not converted).

    Raises
    ------
    DataValidationError
        Naming the column, the rule and an example row, for a broken rule.

    Notes
    -----
    frequency, recency and T present, numeric, finite; frequency a non-negative integer;
    recency >= 0 and recency <= T; recency = 0 without repeat purchases and > 0 with them;
    T > 0, except T = 0 for a customer without repeats (first seen at the cut, as
    ``rfm_summary`` reports customers acquired on the last day); monetary_value finite and
    >= 0; frequency_holdout a non-negative integer; duration_holdout > 0.
    """
    if rfm is _VALIDATED.get():
        return rfm
    if is_foreign_table(rfm):  # a polars or Arrow table: checked as pandas, returned as given
        validate_rfm(to_pandas(rfm, keyed=True), require_monetary=require_monetary,
                     columns=columns)
        return rfm
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


def validate_discrete_rfm(table: pd.DataFrame) -> pd.DataFrame:
    """Check a discrete-time summary (BG/BB) and return it unchanged.

    Rules: ``frequency``, ``recency`` and ``periods`` present, numeric, finite, whole numbers;
    periods >= 0; 0 <= frequency <= recency <= periods (x purchases happen at distinct
    opportunities 1..recency); recency = 0 exactly when frequency = 0; ``frequency_holdout``
    (when present) a whole number between 0 and ``periods_holdout``.
    """
    _check_frame(table, ("frequency", "recency", "periods"), "discrete-time summary")
    values = {c: _numeric(table, c) for c in ("frequency", "recency", "periods",
                                              "frequency_holdout", "periods_holdout")
              if c in table.columns}
    x, t_x, n = values["frequency"], values["recency"], values["periods"]
    check = _checker(table)
    for column, v in values.items():
        check(column, (v < 0) | (v != np.floor(v)), f"{column} must be a whole number >= 0")
    check("recency", t_x > n, "recency (the last opportunity with a purchase) must be <= periods")
    check("frequency", x > t_x, "frequency must be <= recency (one purchase per opportunity at most)")
    check("recency", (x == 0) & (t_x != 0), "recency must be 0 for a customer without purchases")
    if "frequency_holdout" in values and "periods_holdout" in values:
        check("frequency_holdout", values["frequency_holdout"] > values["periods_holdout"],
              "frequency_holdout must be <= periods_holdout")
    return table


def validate_durations(table: pd.DataFrame) -> pd.DataFrame:
    """Check contract durations (shifted-beta-geometric) and return the table unchanged.

    Rules: ``duration`` present, numeric, a whole number >= 0; ``churned`` present, boolean
    (or 0/1); a churned customer has duration >= 1 (the period in which they left).
    """
    _check_frame(table, ("duration", "churned"), "duration table")
    duration = _numeric(table, "duration")
    churned = _flags(table, "churned")
    check = _checker(table)
    check("duration", (duration < 0) | (duration != np.floor(duration)),
          "duration (periods) must be a whole number >= 0")
    check("duration", churned & (duration < 1),
          "duration must be >= 1 for a churned customer (the period in which they left)")
    return table


def _check_frame(table: Any, required: tuple[str, ...], what: str) -> None:
    if not isinstance(table, pd.DataFrame):
        raise DataValidationError(None, f"a {what} must be a DataFrame, not {type(table).__name__}")
    for name in required:
        if name not in table.columns:
            raise DataValidationError(name, f"is missing from the {what}",
                                      hint=f"columns present: {list(table.columns)}")
    if len(table) == 0:
        raise DataValidationError(None, f"the {what} has no rows")


def _checker(table: pd.DataFrame):
    def check(column: str, bad: np.ndarray, rule: str) -> None:
        if bad.any():
            raise DataValidationError(column, rule, _row(table, int(np.flatnonzero(bad)[0])))
    return check


def _flags(table: pd.DataFrame, column: str) -> np.ndarray:
    series = table[column]
    if pd.api.types.is_bool_dtype(series.dtype):
        missing = series.isna().to_numpy()
        if missing.any():
            raise DataValidationError(column, "is missing", _row(table, int(np.flatnonzero(missing)[0])))
        return series.to_numpy(dtype=bool)
    values = _numeric(table, column)
    bad = (values != 0) & (values != 1)
    if bad.any():
        raise DataValidationError(column, "must be True/False (or 1/0)",
                                  _row(table, int(np.flatnonzero(bad)[0])))
    return values == 1
