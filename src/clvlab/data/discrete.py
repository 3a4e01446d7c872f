"""Inputs of the discrete-time and contractual models, built from logs.

- :func:`discrete_rfm_summary`: a transaction log -> BG/BB's summary (``frequency``,
  ``recency``, ``periods``) over calendar periods (the purchase opportunities).
- :func:`contract_durations`: subscriptions with start and end dates -> the shifted-beta-
  geometric input (``duration``, ``churned``).

Periods are calendar periods: ``"D"`` days, ``"W"`` weeks starting on Monday, ``"M"`` calendar
months, ``"Q"`` quarters, ``"Y"`` years. (The continuous-time models use fixed-length time
units instead; see :mod:`clvlab.core.timeunits`.)
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from clvlab.core.errors import ClvlabError, ClvlabWarning, DataValidationError, example_row, warn
from clvlab.data.rfm_pandas import check_ids, parse_dates
from clvlab.data.tables import accepts_tables

__all__ = ["PERIODS", "discrete_rfm_summary", "contract_durations"]

PERIODS = ("D", "W", "M", "Q", "Y")
_MONTHS = {"M": 1, "Q": 3, "Y": 12}


@accepts_tables("transactions", follow="transactions")
def discrete_rfm_summary(transactions: pd.DataFrame, *, customer_col: str = "customer_id",
                         date_col: str = "date", period: str = "Y", calibration_end: Any = None,
                         observation_end: Any = None, date_format: str | None = None,
                         timezone: str = "UTC") -> pd.DataFrame:
    """Summarise a transaction log over discrete purchase opportunities (for BG/BB).

    Every calendar ``period`` after the one of a customer's first purchase is one opportunity.
    Returns, per customer (indexed by id, sorted): ``frequency`` (opportunities with at least
    one purchase), ``recency`` (the last of them, counted from the first purchase's period; 0
    without any) and ``periods`` (opportunities up to the calibration end); with
    ``observation_end`` also ``frequency_holdout`` and ``periods_holdout``.

    Parameters
    ----------
    transactions : pandas or polars DataFrame or pyarrow Table
        The transaction log: a pandas or polars DataFrame or a pyarrow Table
        (:mod:`clvlab.data.tables`).
    customer_col, date_col : str, default "customer_id", "date"
        Its id and date columns.
    period : str, default "Y"
        The length of an opportunity, a calendar period (``"Y"``, ``"Q"``, ``"M"``...).
    calibration_end : str or datetime, optional
        The calibration's end, a period boundary (None: the end of the last purchase's period).
    observation_end : str or datetime, optional
        The holdout's end, a period boundary (None: no holdout columns).
    date_format : str, optional
        The date column's strptime format (None: ISO 8601).
    timezone : str, default "UTC"
        The time zone the dates are read in.

    Returns
    -------
    pandas.DataFrame, polars.DataFrame or pyarrow.Table
        Per customer (indexed by id, sorted): ``frequency``, ``recency``, ``periods`` and, with
        ``observation_end``, ``frequency_holdout`` and ``periods_holdout``. The input's kind
        for a polars or Arrow log (a polars DataFrame, a pyarrow Table: the customer ids as the
        first column), else a pandas DataFrame.

    Raises
    ------
    DataValidationError
        Where the log is not a DataFrame, is empty or lacks a column, or a date is unreadable.
    ClvlabError
        Where ``period`` is not supported, a cut is not a period boundary, or
        ``observation_end`` is before ``calibration_end``.

    Notes
    -----
    - ``calibration_end`` and ``observation_end`` must be period boundaries (the first instant
      of a period, e.g. "2002-01-01" for years): a cut inside a period would leave a partial
      opportunity. A purchase belongs to the calibration when its timestamp is before
      ``calibration_end``. Without ``calibration_end`` the calibration runs to the end of the
      period of the last purchase.
    - Several purchases in one period are one purchase (an opportunity is taken or not).
    - Customers first seen at or after ``calibration_end`` are not in the summary; their count
      is in ``result.attrs["clvlab"]``. Purchases at or after ``observation_end`` are ignored.
    """
    code = _period_code(period)
    frame = _checked_frame(transactions, [customer_col, date_col], "transaction log")
    check_ids(frame, frame[customer_col], customer_col)
    ordinal = _ordinals(parse_dates(frame, date_col, date_format, timezone), code)
    cal = _boundary(calibration_end, "calibration_end", code, timezone)
    cal = int(ordinal.max()) + 1 if cal is None else cal
    obs = _boundary(observation_end, "observation_end", code, timezone)
    if obs is not None and obs < cal:
        raise ClvlabError(f"observation_end {observation_end!r} is before calibration_end "
                          f"{calibration_end!r}")
    table = pd.DataFrame({"customer": frame[customer_col].to_numpy(), "period": ordinal})
    first = table.groupby("customer", sort=True)["period"].min()
    acquired = first[first < cal]
    late = int((first >= cal).sum())
    if obs is not None:
        table = table[table["period"] < obs]
    table = table.drop_duplicates()
    table = table[table["customer"].isin(acquired.index)]
    table = table.assign(first=table["customer"].map(acquired))
    repeat = table[(table["period"] > table["first"]) & (table["period"] < cal)]
    by_customer = repeat.groupby("customer", sort=True)["period"]
    result = pd.DataFrame(index=acquired.index)
    result["frequency"] = by_customer.size().reindex(acquired.index, fill_value=0).astype(np.int64)
    last = by_customer.max().reindex(acquired.index)
    result["recency"] = (last - acquired).fillna(0).astype(np.int64)
    result["periods"] = (cal - 1 - acquired).astype(np.int64)
    if obs is not None:
        holdout = table[table["period"] >= cal].groupby("customer", sort=True).size()
        result["frequency_holdout"] = holdout.reindex(acquired.index, fill_value=0).astype(np.int64)
        result["periods_holdout"] = np.int64(obs - cal)
    result.index.name = customer_col
    result.attrs["clvlab"] = {"period": code, "customers_after_cut": late,
                              "calibration_end": str(_period_start(cal, code))}
    return result


@accepts_tables("subscriptions", follow="subscriptions")
def contract_durations(subscriptions: pd.DataFrame, *, start_col: str = "start",
                       end_col: str = "end", observation_end: Any, period: str = "M",
                       date_format: str | None = None, timezone: str = "UTC") -> pd.DataFrame:
    """Subscriptions (one row each, start date and end date) -> ``duration`` and ``churned``,
    the shifted-beta-geometric input, keeping the table's index.

    Parameters
    ----------
    subscriptions : pandas or polars DataFrame or pyarrow Table
        One row per subscription: a pandas or polars DataFrame or a pyarrow Table
        (:mod:`clvlab.data.tables`).
    start_col, end_col : str, default "start", "end"
        Its start and end date columns (an end may be missing: still active).
    observation_end : str or datetime
        The end of observation.
    period : str, default "M"
        The length of a renewal period (``"M"``: calendar months, ``"Y"``...).
    date_format : str, optional
        The dates' strptime format (None: ISO 8601).
    timezone : str, default "UTC"
        The time zone the dates are read in.

    Returns
    -------
    pandas.DataFrame, polars.DataFrame or pyarrow.Table
        ``duration`` and ``churned``, on the table's index. The input's kind for a polars or
        Arrow table (a polars DataFrame, a pyarrow Table, in the table's row order), else a
        pandas DataFrame.

    Raises
    ------
    DataValidationError
        Where an end is before its start, the table is empty or lacks a column, or a date is
        unreadable.
    ClvlabError
        Where ``period`` is not supported.

    Notes
    -----
    - A subscription with no end (missing), or one that ends after ``observation_end``, is
      active: ``churned`` False and ``duration`` the renewals made by ``observation_end``
      (whole periods since the start).
    - One that ended by ``observation_end`` churned in period ``duration`` (>= 1): the number
      of periods begun before the end (an end exactly on a renewal date does not begin one).
    - Whole calendar months count from the start's day and time of day: 2024-01-15 to
      2024-03-14 is one month; to 2024-03-15, two.
    - An end before its start is an error naming the row. Subscriptions that start after
      ``observation_end`` are left out, with a warning that counts them.
    """
    code = _period_code(period)
    frame = _checked_frame(subscriptions, [start_col, end_col], "subscription table")
    start = parse_dates(frame, start_col, date_format, timezone)
    ends = frame[end_col]
    has_end = ends.notna().to_numpy()
    end = pd.Series(pd.NaT, index=frame.index, dtype="datetime64[ns]")
    if has_end.any():
        end.loc[has_end] = parse_dates(frame.loc[has_end], end_col, date_format, timezone).astype(
            "datetime64[ns]")
    start = start.astype("datetime64[ns]")
    obs = pd.Timestamp(observation_end)
    if obs.tzinfo is not None:
        obs = obs.tz_convert(timezone).tz_localize(None)
    backwards = (has_end & (end < start).to_numpy())
    if backwards.any():
        raise DataValidationError(end_col, "a subscription cannot end before it starts",
                                  example_row(frame, int(np.flatnonzero(backwards)[0])))
    keep = (start <= obs).to_numpy()
    if not keep.all():
        warn(f"{int((~keep).sum())} subscriptions start after observation_end and are "
                      "left out", ClvlabWarning)
    churned = has_end & (end <= obs).to_numpy()
    stop = end.where(churned, obs)
    whole, exact = _elapsed(start, stop, code)
    duration = np.where(churned, np.maximum(np.where(exact, whole, whole + 1), 1), whole)
    result = pd.DataFrame({"duration": duration.astype(np.int64), "churned": churned},
                          index=frame.index)
    return result[keep]


# --- calendar arithmetic ------------------------------------------------------------------------
def _period_code(period: str) -> str:
    if period not in PERIODS:
        raise ClvlabError(f"period {period!r} is not supported; use one of {list(PERIODS)} (days, "
                          "weeks from Monday, calendar months, quarters, years)")
    return period


def _ordinals(ts: pd.Series, code: str) -> np.ndarray:
    """Index of each timestamp's calendar period (consecutive periods differ by 1)."""
    values = ts.to_numpy().astype("datetime64[ns]")
    if code == "D":
        return values.astype("datetime64[D]").astype(np.int64)
    if code == "W":  # 1970-01-01 was a Thursday: Monday-based weeks start 3 days earlier
        return (values.astype("datetime64[D]").astype(np.int64) + 3) // 7
    months = values.astype("datetime64[M]").astype(np.int64)
    return months // _MONTHS[code]


def _period_start(ordinal: int, code: str) -> pd.Timestamp:
    if code == "D":
        return pd.Timestamp(np.datetime64(int(ordinal), "D"))
    if code == "W":
        return pd.Timestamp(np.datetime64(int(ordinal) * 7 - 3, "D"))
    return pd.Timestamp(np.datetime64(int(ordinal) * _MONTHS[code], "M"))


def _boundary(value: Any, name: str, code: str, timezone: str) -> int | None:
    """The ordinal of the period that starts at ``value``; an error if it starts no period."""
    if value is None:
        return None
    ts = pd.Timestamp(value)
    if ts.tzinfo is not None:
        ts = ts.tz_convert(timezone).tz_localize(None)
    ordinal = int(_ordinals(pd.Series([ts]), code)[0])
    if _period_start(ordinal, code) != ts:
        raise ClvlabError(f"{name}={value!r} is not the start of a {code!r} period; use "
                          f"{_period_start(ordinal, code).date()} or "
                          f"{_period_start(ordinal + 1, code).date()}")
    return ordinal


def _elapsed(start: pd.Series, stop: pd.Series, code: str) -> tuple[np.ndarray, np.ndarray]:
    """Whole periods from start to stop, and whether stop is exactly a renewal date."""
    a, b = start.to_numpy().astype("datetime64[ns]"), stop.to_numpy().astype("datetime64[ns]")
    if code in ("D", "W"):
        length = np.timedelta64(1 if code == "D" else 7, "D").astype("timedelta64[ns]")
        gap = b - a
        return gap // length, gap % length == np.timedelta64(0, "ns")
    months = b.astype("datetime64[M]").astype(np.int64) - a.astype("datetime64[M]").astype(np.int64)
    # the rest of the month (day and time of day) decides whether the last month is complete
    rest_a = a - a.astype("datetime64[M]").astype("datetime64[ns]")
    rest_b = b - b.astype("datetime64[M]").astype("datetime64[ns]")
    months = months - (rest_b < rest_a)
    step = _MONTHS[code]
    return months // step, (months % step == 0) & (rest_b == rest_a)


def _checked_frame(frame: Any, columns: list[str], what: str) -> pd.DataFrame:
    if not isinstance(frame, pd.DataFrame):
        raise DataValidationError(None, f"the {what} must be a DataFrame, not {type(frame).__name__}")
    for column in columns:
        if column not in frame.columns:
            raise DataValidationError(column, f"is missing from the {what}",
                                      hint=f"columns present: {list(frame.columns)}")
    if len(frame) == 0:
        raise DataValidationError(None, f"the {what} is empty")
    return frame
