"""The calendar grid that covariate panels, calendars and paths live on: a period of the RFM
table's time unit is named by its start, an int64 count of microseconds since 1970 (wall-clock
time in the table's zone), and this module does the arithmetic on such starts.

- ``"h"``: on the hour; ``"D"``: at midnight; ``"W"``: at midnight on one weekday (the anchor,
  Monday 0 ... Sunday 6); ``"M"``: at midnight on the 1st of a calendar month.
- :func:`floor_period` (the start of the period holding an instant), :func:`next_period` (the
  start of the following one), :func:`weekday_of`, :func:`as_micros` (timestamps to starts).

It sits below :mod:`clvlab.data.covariate_panel` (the panel's rules) and
:mod:`clvlab.data.seasonal` (the calendar generator), which both read it, so that the panel
module can re-export ``seasonal_covariates`` without an import cycle.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from clvlab.core.errors import DataValidationError
from clvlab.core.timeunits import UNIT_SECONDS

__all__ = ["US", "DAY_US", "WEEKDAYS", "RESERVED", "grid_rule", "week_anchor", "weekday_mismatch",
           "floor_period", "next_period", "weekday_of", "as_micros", "timestamp"]

US = 1_000_000  # microseconds per second: every period start is whole microseconds since 1970
DAY_US = 86_400 * US
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
#: names no covariate may take: the paths table's own columns and those of the rows engines pass
RESERVED = ("customer", "start", "end", "repeat_purchases", "pos", "cid", "p", "f", "T", "n",
            "error")


def grid_rule(unit: str, weekday: int | None = None, anchor: str | None = None) -> str:
    """The alignment rule of ``unit``'s periods, in words, for messages; ``anchor`` says where
    the weekly grid's weekday comes from (e.g. :func:`week_anchor`)."""
    anchor = anchor or f"here {WEEKDAYS[weekday or 0]}, the weekday of the first row"
    return {"h": "periods of time_unit 'h' start on the hour (minutes and seconds 0)",
            "D": "periods of time_unit 'D' start at midnight",
            "W": "periods of time_unit 'W' start at midnight on one weekday, the same for every "
                 f"row of the panel and the calendar ({anchor})",
            "M": "periods of time_unit 'M' start at midnight on the 1st of a calendar month"}[unit]


def week_anchor(where: str, weekday: int, row: dict[str, Any]) -> str:
    """Where the weekly grid's weekday comes from, for messages: the ``where``'s first row
    (``row``: its customer and period as the user knows them)."""
    shown = ", ".join(f"{k}={v}" for k, v in row.items())
    return (f"the {where}'s weeks start on {WEEKDAYS[weekday]}, the weekday of its first row "
            f"({shown})")


def weekday_mismatch(period_col: str, first_us: int, weekday: int,
                     anchor: str | None) -> DataValidationError:
    """The error of a calendar whose weeks (its first row ``first_us``, at midnight) start on
    another weekday than the panel's ``weekday`` (``anchor``: the panel's first row, in words)."""
    own = WEEKDAYS[int(weekday_of(first_us))]
    start = timestamp(floor_period(first_us, "W", weekday))
    panel = anchor or f"the panel's weeks start on {WEEKDAYS[weekday]}"
    return DataValidationError(
        period_col, f"the calendar's weeks start on {own} (its first row, the example) but "
                    f"{panel}; periods of time_unit 'W' start on the same weekday in the panel "
                    "and the calendar", {period_col: timestamp(first_us)},
        hint=f"make the calendar's weeks start on {WEEKDAYS[weekday]}, e.g. "
             f"seasonal_covariates('{start:%Y-%m-%d}', ..., 'W') (a {WEEKDAYS[weekday]})")


def floor_period(us: np.ndarray, unit: str, weekday: int | None = None) -> np.ndarray:
    """Start (int64 microseconds since 1970) of the period holding each instant ``us``."""
    us = np.asarray(us, dtype=np.int64)
    if unit == "M":
        return us.astype("datetime64[us]").astype("datetime64[M]").astype("datetime64[us]") \
            .astype(np.int64)
    if unit == "W":
        days = us // DAY_US  # floor division: right before 1970 too
        return (days - (days + 3 - (weekday or 0)) % 7) * DAY_US  # 1970-01-01 was a Thursday
    step = UNIT_SECONDS[unit] * US
    return us - us % step


def next_period(us: np.ndarray, unit: str) -> np.ndarray:
    """Start of the period after the one starting at ``us`` (int64 microseconds)."""
    us = np.asarray(us, dtype=np.int64)
    if unit == "M":
        months = us.astype("datetime64[us]").astype("datetime64[M]") + np.timedelta64(1, "M")
        return months.astype("datetime64[us]").astype(np.int64)
    return us + UNIT_SECONDS[unit] * US


def weekday_of(us: np.ndarray) -> np.ndarray:
    """Weekday of each instant, Monday 0 ... Sunday 6."""
    return (np.asarray(us, dtype=np.int64) // DAY_US + 3) % 7


def as_micros(ts: Any) -> np.ndarray:
    """Naive timestamps (a Series, Index or scalar) as int64 microseconds since 1970."""
    values = ts.to_numpy() if hasattr(ts, "to_numpy") else np.asarray(ts)
    return values.astype("datetime64[us]").astype(np.int64)


def timestamp(us: Any) -> pd.Timestamp:
    """A period start (int64 microseconds) as a naive Timestamp, for messages."""
    return pd.Timestamp(int(us), unit="us")
