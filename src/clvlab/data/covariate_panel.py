"""Time-varying covariates: the rules a covariate panel obeys, each customer's path window, and
the rows of a panel or calendar a path may use.

A **panel** is a long table with one row per customer and calendar period: the customer id, the
period's start and the covariate values that hold through that period. A **calendar** is the same
without customers (values shared by everyone, e.g. :func:`seasonal_covariates`). The rules, the
same in every engine of :func:`clvlab.data.covariate_paths.covariate_paths`:

- **Grid.** Periods are calendar periods of the RFM table's time unit, each row naming its start:
  ``"h"`` on the hour, ``"D"`` at midnight, ``"W"`` at midnight on one weekday (the weekday of
  the panel's first row; a calendar must use the same), ``"M"`` at midnight on the 1st of a
  month. Times are wall-clock times in the RFM table's time zone, read like the log's dates (a
  zoned timestamp is converted to that zone).
- **Rows.** One row per (customer, period), consecutive periods exactly one period apart (no
  gaps), covering every customer of the RFM table from the period holding their first purchase
  to the one holding the path's end (``calibration_end``, or ``calibration_end + horizon``).
  Only the rows a path may use are read and checked: those of the RFM table's customers whose
  period starts before the path's end and less than one period before the customer's first
  purchase (:func:`window_bounds`). Other rows (other customers, rows without a customer id,
  earlier or later periods) are ignored without a check, so one panel serves many summaries.
- **Values.** Numbers (finite), booleans, or text/categories (encoded later by the models); no
  missing value. A covariate constant over a customer's life is fine.

Each broken rule raises a :class:`~clvlab.core.errors.DataValidationError` naming the column,
the rule and an example row (customer, period, value).

The grid's arithmetic is :mod:`clvlab.data.covariate_grid`'s and the calendar generator
:mod:`clvlab.data.seasonal`'s; both are re-exported here (``seasonal_covariates``,
``floor_period``, ...), where they were first defined.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from clvlab.core.errors import ClvlabError, DataValidationError
from clvlab.core.timeunits import normalize_time_unit
from clvlab.data.attributes import matching_ids
from clvlab.data.covariate_grid import (DAY_US, RESERVED, US, WEEKDAYS, as_micros, floor_period,
                                        grid_rule, next_period, timestamp, week_anchor,
                                        weekday_mismatch, weekday_of)
from clvlab.data.covariate_inputs import parse_periods, zone_hint, zone_of
from clvlab.data.rfm_rules import epoch_seconds, make_settings
from clvlab.data.seasonal import seasonal_covariates

__all__ = ["PathWindow", "path_window", "floor_period", "next_period", "weekday_of", "grid_rule",
           "as_micros", "example", "check_rows", "window_bounds", "panel_frame_rows",
           "calendar_rows", "check_coverage", "seasonal_covariates", "WEEKDAYS", "RESERVED", "US",
           "DAY_US", "timestamp", "ACCEPTED"]

ACCEPTED = "numbers, booleans, text or categories"
MISSING_RULE = "covariate value is missing (NaN, None or NA); every row needs a value"
INFINITE_RULE = "covariate value is infinite"
DUPLICATE_RULE = "two rows for the same customer and period; each (customer, period) is one row"


def gap_rule(unit: str) -> str:
    step = {"h": "one hour", "D": "one day", "W": "one week", "M": "one calendar month"}[unit]
    return (f"a gap: a customer's consecutive periods must start exactly {step} apart "
            "(no period may be left out)")


@dataclass(frozen=True)
class PathWindow:
    """What the RFM table says about each customer's path: its customers (index, in order),
    first purchase (``first_us``, microseconds on the table's merge-period grid), ``T``,
    ``frequency`` (or None), and the window's constants (time unit, calibration and path end)."""

    customers: pd.Index
    first_us: np.ndarray
    T: np.ndarray
    frequency: np.ndarray | None
    time_unit: str
    calibration_end: pd.Timestamp
    path_end: pd.Timestamp
    horizon: float  # (path_end - calibration_end) in time units: 0.0 without one
    timezone: str
    merge_period: str
    customer_col: str

    @property
    def cal_us(self) -> float:
        return epoch_seconds(self.calibration_end) * US

    @property
    def end_us(self) -> float:
        return epoch_seconds(self.path_end) * US

    def needed(self, weekday: int | None) -> tuple[np.ndarray, np.ndarray]:
        """The first and last period start each customer's path needs: from the period holding
        the first purchase to the one holding the last instant before the path's end (a path
        of length 0, T = 0 without a horizon, needs the period of its first purchase)."""
        first = floor_period(self.first_us, self.time_unit, weekday)
        last_instant = np.int64(np.ceil(self.end_us)) - 1
        return first, floor_period(np.maximum(self.first_us, last_instant), self.time_unit, weekday)


def path_window(rfm: Any, horizon: Any = None, need_frequency: bool = False) -> PathWindow:
    """The customers and first purchases of an RFM table: first purchase = calibration_end - T
    time units, which must land on the table's merge-period grid (a day or an hour)."""
    from clvlab.data.calibration import checked_horizon

    if not isinstance(rfm, pd.DataFrame):
        raise ClvlabError(f"rfm must be the pandas RFM table of rfm_summary (or read_rfm), not "
                          f"{type(rfm).__name__}; a Spark summary: pass summary.to_pandas()")
    info = rfm.attrs.get("clvlab") or {}
    if "calibration_end" not in info or "time_unit" not in info:
        raise ClvlabError(
            "the RFM table does not record its calibration_end and time_unit (attrs['clvlab'], "
            "which rfm_summary writes and read_rfm restores from a Parquet file); covariate "
            "paths need them to place each customer's first purchase in calendar time: build "
            "the table with clvlab.rfm_summary, or keep its attrs when you copy it")
    for column in ["T"] + (["frequency"] if need_frequency else []):
        if column not in rfm.columns:
            raise DataValidationError(column, "is missing from the RFM table",
                                      hint=f"columns present: {list(rfm.columns)}")
    unit = normalize_time_unit(info["time_unit"])
    settings = make_settings(customer_col=info.get("customer_col") or rfm.index.name
                             or "customer_id", date_col="date", amount_col=None, time_unit=unit,
                             date_format=None, timezone=info.get("timezone", "UTC"),
                             merge_period=info.get("merge_period"))
    cal = pd.Timestamp(info["calibration_end"])
    T = rfm["T"].to_numpy(dtype=np.float64)
    first_s = epoch_seconds(cal) - T * settings.unit_seconds
    on_grid = np.round(first_s / settings.merge_seconds) * settings.merge_seconds
    # T from rfm_summary is exact to about 1e-7 s; a rounded T (a CSV with 2 decimals) is not
    bad = ~(np.abs(first_s - on_grid) <= 1.0) | ~(T >= 0)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataValidationError(
            "T", f"calibration_end - T must be the start of a merge period "
                 f"({settings.merge_period!r}: the first purchase's day or hour), as in a table "
                 "of rfm_summary; this T is rounded, negative or missing",
            {settings.customer_col: _plain(rfm.index[i]), "T": T[i], "calibration_end": cal})
    if rfm.index.has_duplicates:
        raise DataValidationError(settings.customer_col, "the RFM table repeats a customer",
                                  {settings.customer_col:
                                   _plain(rfm.index[rfm.index.duplicated()][0])})
    h = 0.0 if horizon is None else checked_horizon(horizon, unit)
    end = cal + pd.Timedelta(seconds=h * settings.unit_seconds)
    return PathWindow(customers=rfm.index, first_us=(on_grid * US).astype(np.int64), T=T,
                      frequency=rfm["frequency"].to_numpy(np.int64) if need_frequency else None,
                      time_unit=unit, calibration_end=cal, path_end=end,
                      horizon=(end - cal) / pd.Timedelta(seconds=settings.unit_seconds),
                      timezone=settings.timezone, merge_period=settings.merge_period,
                      customer_col=settings.customer_col)


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def example(names: tuple[str | None, str], customer: Any, period_us: Any, column: str | None = None,
            value: Any = None) -> dict[str, Any]:
    """The example row of a message: customer, period start and the offending value."""
    row = {} if names[0] is None else {names[0]: _plain(customer)}
    row[names[1]] = timestamp(period_us)
    if column is not None:
        row[column] = _plain(value)
    return row


def covariate_problem(series: pd.Series) -> str | None:
    """Why a covariate column's type is refused, or None (numbers, booleans, text, categories).
    Object columns may hold str or bool values (with missing ones, which are another rule)."""
    dtype = series.dtype
    if isinstance(dtype, pd.CategoricalDtype) or pd.api.types.is_bool_dtype(dtype) \
            or isinstance(dtype, pd.StringDtype) or (
            pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_complex_dtype(dtype)):
        return None
    if pd.api.types.is_object_dtype(dtype):
        kinds = {type(v) for v in series.dropna().unique()}
        if kinds <= {str} or kinds <= {bool, np.bool_}:
            return None
    return f"covariate must hold {ACCEPTED}, not {dtype}; encode it first"


def check_rows(rows: pd.DataFrame, covariates: list[str], names: tuple[str | None, str],
               time_unit: str, weekday: int, anchor: str | None = None,
               hint: str | None = None) -> None:
    """The value and grid rules on rows ``cid`` (or none, for a calendar), ``p`` (period start,
    int64 microseconds) and the covariates, sorted by (customer, period), whole customers only.
    A grid message says where the weekday comes from (``anchor``) and adds ``hint`` (a zone's
    conversion, :func:`~clvlab.data.covariate_inputs.zone_hint`)."""
    us = rows["p"].to_numpy(np.int64)
    ids = rows["cid"].to_numpy() if "cid" in rows else np.zeros(len(rows))
    for column in covariates:
        series = rows[column]
        bad, rule = series.isna().to_numpy(), MISSING_RULE
        if not bad.any():
            problem = covariate_problem(series)
            bad, rule = np.full(len(series), problem is not None), problem
        if not bad.any() and pd.api.types.is_float_dtype(series.dtype):
            bad, rule = np.isinf(series.to_numpy(np.float64)), INFINITE_RULE
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise DataValidationError(column, rule, example(names, ids[i], us[i], column,
                                                            series.iloc[i]))
    aligned = floor_period(us, time_unit, weekday) == us
    if not aligned.all():
        i = int(np.flatnonzero(~aligned)[0])
        raise DataValidationError(names[1], grid_rule(time_unit, weekday, anchor),
                                  example(names, ids[i], us[i]), hint=hint)
    pos = rows["pos"].to_numpy() if "pos" in rows else np.zeros(len(rows))
    same = np.concatenate([[False], pos[1:] == pos[:-1]])
    previous = np.concatenate([[0], us[:-1]])
    duplicate = same & (us == previous)
    if duplicate.any():
        i = int(np.flatnonzero(duplicate)[0])
        raise DataValidationError(names[1], DUPLICATE_RULE, example(names, ids[i], us[i]))
    gap = same & (next_period(previous, time_unit) != us)
    if gap.any():
        i = int(np.flatnonzero(gap)[0])
        raise DataValidationError(names[1], gap_rule(time_unit) + " (the previous row's period "
                                  f"starts {timestamp(us[i - 1])})", example(names, ids[i], us[i]))


def window_bounds(window: PathWindow) -> tuple[np.ndarray, float]:
    """The rows a path may use: periods starting after ``first purchase - the longest period``
    (exclusive, per customer) and before the path's end. Rows outside are ignored unchecked;
    the bound needs no weekly anchor, so every engine filters alike before the checks."""
    longest = {"h": 3_600, "D": 86_400, "W": 7 * 86_400, "M": 31 * 86_400}[window.time_unit]
    return window.first_us - longest * US, window.end_us


def panel_frame_rows(panel: pd.DataFrame, window: PathWindow, *, customer_col: str,
                     period_col: str, covariates: list[str], batch_rows: int = 1_000_000):
    """The pandas panel's rows a path may use (:func:`window_bounds`) of the RFM table's
    customers, sorted by (pos, p), as batches of ``batch_rows``: DataFrames of ``pos`` (the
    customer's position in the table), ``cid``, ``p`` (period start, microseconds) and the
    covariates (gathered batch by batch: a copy of the whole panel is never made). Periods are
    parsed, and refused when missing or no date, first. Returns (pos, p, batches, zone): the
    zone of zoned periods (:func:`~clvlab.data.covariate_inputs.zone_of`) or None."""
    for column in [customer_col, period_col, *covariates]:
        if column not in panel.columns:
            raise DataValidationError(column, "is missing from the covariate panel",
                                      hint=f"columns present: {list(panel.columns)}")
    ids = panel[customer_col]
    present = np.flatnonzero(ids.notna().to_numpy())
    keys, panel_keys = matching_ids(window.customers, pd.Index(ids.iloc[present]),
                                    "the RFM table", "the covariate panel")
    pos = keys.get_indexer(panel_keys)
    rows = present[pos >= 0]
    pos = pos[pos >= 0].astype(np.int64)
    at = [panel.columns.get_loc(c) for c in (customer_col, period_col)]
    us = as_micros(parse_periods(panel.iloc[rows, at], period_col, window.timezone, "panel"))
    low, high = window_bounds(window)
    inside = np.flatnonzero((us > low[pos]) & (us < high))
    rows, pos, us = rows[inside], pos[inside], us[inside]
    if len(pos) > 1 and not bool(np.all((pos[1:] > pos[:-1]) | ((pos[1:] == pos[:-1])
                                                                  & (us[1:] >= us[:-1])))):
        order = np.lexsort((us, pos))  # most panels come sorted: skip the sort then
        rows, pos, us = rows[order], pos[order], us[order]
    columns = [panel.columns.get_loc(c) for c in (customer_col, *covariates)]

    def batches():
        for i in range(0, len(rows), batch_rows):
            batch = panel.iloc[rows[i:i + batch_rows], columns].reset_index(drop=True)
            batch.columns = ["cid", *covariates]
            batch.insert(0, "p", us[i:i + batch_rows])
            batch.insert(0, "pos", pos[i:i + batch_rows])
            yield batch

    return pos, us, batches(), zone_of(panel[period_col])


def calendar_rows(calendar: pd.DataFrame, window: PathWindow, *, period_col: str,
                  covariates: list[str], weekday: int | None,
                  anchor: str | None = None) -> tuple[pd.DataFrame, int]:
    """The calendar's rows ``p`` and covariates, sorted by period and checked by the panel's
    rules; its first row sets the weekly anchor when ``weekday`` is None (no panel), else its
    weeks must start on the panel's ``weekday`` (``anchor``: the panel's first row, in words)."""
    for column in [period_col, *covariates]:
        if column not in calendar.columns:
            raise DataValidationError(column, "is missing from the calendar",
                                      hint=f"columns present: {list(calendar.columns)}")
    frame = calendar[[period_col, *covariates]].reset_index(drop=True)
    us = as_micros(parse_periods(frame, period_col, window.timezone, "calendar"))
    order = np.argsort(us, kind="stable")
    out = frame.iloc[order, 1:].reset_index(drop=True)
    out.insert(0, "p", us[order])
    first = int(us[order[0]]) if len(us) else None
    hint = zone_hint("calendar", period_col, zone_of(frame[period_col]), window.timezone, first)
    own = None if first is None else int(weekday_of(first))
    if weekday is None or first is None:
        weekday = 6 if own is None else own
        anchor = week_anchor("calendar", weekday, {period_col: timestamp(first)}) \
            if first is not None else None
    elif window.time_unit == "W" and own != weekday and first % DAY_US == 0:
        raise weekday_mismatch(period_col, first, weekday, anchor)
    check_rows(out, covariates, (None, period_col), window.time_unit, weekday, anchor, hint)
    return out, weekday


def check_coverage(first: np.ndarray, last: np.ndarray, have_first: np.ndarray,
                   have_last: np.ndarray, window: PathWindow, names: tuple[str | None, str],
                   where: str = "the covariate panel") -> None:
    """Every customer's rows (gap-free: ``have_first``..``have_last``, int64 max/min when it has
    none) reach from its ``first`` to its ``last`` needed period; else name the first uncovered
    customer (in the RFM table's order) and period."""
    missing_start = have_first > first
    uncovered = missing_start | (have_last < last)
    if not uncovered.any():
        return
    i = int(np.flatnonzero(uncovered)[0])
    period = first[i] if missing_start[i] else next_period(have_last[i:i + 1], window.time_unit)[0]
    end = ("calibration_end " if window.horizon == 0 else "calibration_end + horizon ") + \
        str(window.path_end)
    if names[0] is None and (have_first != np.iinfo(np.int64).max).all():  # a calendar: one table for all
        early = bool(missing_start.any())
        at = first[missing_start].min() if early else \
            next_period(np.array([have_last.max()]), window.time_unit)[0]
        rule = (f"{where} starts with the period {timestamp(have_first.max())}, after the one "
                f"holding the first purchase of customer {_plain(window.customers[i])!r} "
                f"({timestamp(at)})") if early else (
                f"{where} ends with the period starting {timestamp(have_last.max())}, but the "
                f"paths need every period up to the one holding {end}")
        raise DataValidationError(names[1], rule, {names[1]: timestamp(at)}, hint=(
            f"a calendar covers every period from {timestamp(first.min())} to the one holding "
            f"{window.path_end}, e.g. clvlab.seasonal_covariates(start, end, ...) over that span"))
    if (have_last < last).all() and not missing_start.any() and have_last.max() == have_last.min():
        raise DataValidationError(  # the whole panel stops short, not one customer
            names[1], f"{where} ends with the period starting {timestamp(have_last.max())} for "
                      f"every customer, but the paths need every period up to the one holding "
                      f"{end}", example((names[0] or window.customer_col, names[1]),
                                        window.customers[i], period),
            hint=f"extend {where} to {window.path_end} (the covariates expected over the "
                 "horizon), or build the paths with a shorter horizon")
    hint = None if (have_first != np.iinfo(np.int64).max).any() else (
        f"no row of {where} is in the window of a customer of the RFM table: are they the same "
        f"ids (the table's look like {_plain(window.customers[0])!r}) and periods?")
    raise DataValidationError(
        names[1], f"{where} does not cover customer {_plain(window.customers[i])!r}: it has no "
                  f"row for the period starting {timestamp(period)}; every customer needs a row "
                  f"for each period from the one holding their first purchase "
                  f"({timestamp(window.first_us[i])}) to the one holding the path's end ({end})",
        example((names[0] or window.customer_col, names[1]), window.customers[i], period),
        hint=hint)
