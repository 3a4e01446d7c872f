"""Calendar covariates shared by all customers (:func:`seasonal_covariates`): month, quarter,
holidays and Fourier terms of the year, one row per period of the RFM table's time unit, on the
grid of :mod:`clvlab.data.covariate_grid`. The result is a ``calendar`` for
:func:`clvlab.data.covariate_paths.covariate_paths` and obeys the panel's rules
(:mod:`clvlab.data.covariate_panel`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from clvlab.core.errors import ClvlabError
from clvlab.core.timeunits import UNIT_SECONDS, normalize_time_unit
from clvlab.data.covariate_grid import (DAY_US, RESERVED, US, WEEKDAYS, as_micros, floor_period,
                                        grid_rule, next_period, weekday_of)
from clvlab.data.rfm_io import parse_option_date

__all__ = ["seasonal_covariates"]


def seasonal_covariates(start: Any, end: Any, time_unit: str, *, month: bool = False,
                        quarter: bool = False, holidays: dict[str, Any] | None = None,
                        fourier: int = 0, year_length: float | None = None) -> pd.DataFrame:
    """Calendar covariates shared by all customers, one row per period: a ``calendar`` for
    :func:`clvlab.data.covariate_paths.covariate_paths`.

    Parameters
    ----------
    start, end
        The first period's start (a period start of ``time_unit``: on the hour, at midnight,
        a month's 1st; for weeks, its weekday sets the weeks' first day) and the last instant to
        cover: periods run from ``start`` to the one holding ``end``. Timestamps or ISO 8601.
    time_unit
        ``"h"``, ``"D"``, ``"W"`` or ``"M"`` (calendar months), as the RFM table's.
    month, quarter
        A column ``month`` ("01" ... "12") or ``quarter`` ("Q1" ... "Q4"): the month (quarter)
        holding the period's midpoint, i.e. most of the period; a Categorical with all 12 (4)
        categories, so that a model's one-hot encoding has a fixed set of columns.
    holidays
        ``{name: [dates]}`` or ``{name: "MM-DD"}`` (every year). Column ``name`` is 1 for the
        periods that overlap the holiday's day, else 0 (int64; hourly periods: the 24 hours of
        the day).
    fourier
        K: columns ``fourier_sin_k`` and ``fourier_cos_k`` for k = 1..K, sin and cos of
        ``2 pi k t / year_length`` with ``t`` the period's midpoint in time units since
        1970-01-01 00:00 (so the phase is about 0 at New Year).
    year_length
        The year in time units; by default 365.2425 days (52.1775 weeks, 12 months).

    Returns
    -------
    pandas.DataFrame
        One row per period: ``period`` (its start), then the columns asked for.

    Raises
    ------
    ClvlabError
        Where ``start`` is not a period start, ``end`` is before it, no column is asked for,
        ``fourier`` is not a whole number >= 0, or a holiday's name is taken or its dates are
        not dates or ``"MM-DD"``.

    Examples
    --------
    >>> cal = seasonal_covariates("2005-01-02", "2006-12-31", "W", month=True,
    ...                           holidays={"christmas": "12-25"}, fourier=1)
    >>> list(cal.columns)
    ['period', 'month', 'christmas', 'fourier_sin_1', 'fourier_cos_1']
    >>> cal.loc[cal["christmas"] == 1, "period"].dt.date.astype(str).tolist()
    ['2005-12-25', '2006-12-24']
    """
    unit = normalize_time_unit(time_unit)
    first, last = (parse_option_date(value, name) for value, name in
                   ((start, "start"), (end, "end")))
    first_us, last_us = int(as_micros(first)), int(as_micros(last))
    weekday = int(weekday_of(first_us))
    if floor_period(first_us, unit, weekday) != first_us or (unit != "h" and first_us % DAY_US):
        anchor = f"here {WEEKDAYS[weekday]}, the weekday of start"
        raise ClvlabError(f"start={start!r} is not a period start: "
                          f"{grid_rule(unit, weekday, anchor)}")
    if last_us < first_us:
        raise ClvlabError(f"end={end!r} is before start={start!r}")
    if unit == "M":
        one = np.timedelta64(1, "M")
        months = np.arange(np.datetime64(first, "M"), np.datetime64(last, "M") + one)
        us = months.astype("datetime64[us]").astype(np.int64)
    else:
        us = np.arange(first_us, last_us + 1, UNIT_SECONDS[unit] * US, dtype=np.int64)
    after = next_period(us, unit)
    middle = pd.to_datetime((us + (after - us) // 2).astype("datetime64[us]"))
    out = pd.DataFrame({"period": pd.to_datetime(us.astype("datetime64[us]"))})
    if month:
        out["month"] = pd.Categorical([f"{m:02d}" for m in middle.month],
                                      categories=[f"{m:02d}" for m in range(1, 13)])
    if quarter:
        out["quarter"] = pd.Categorical([f"Q{q}" for q in middle.quarter],
                                        categories=["Q1", "Q2", "Q3", "Q4"])
    for name, dates in (holidays or {}).items():
        if name in out.columns or name in RESERVED:
            raise ClvlabError(f"holidays: the name {name!r} is taken; name the holiday otherwise")
        days = _holiday_days(name, dates, middle.year.min() - 1, middle.year.max() + 1)
        # the day [d, d + 1 day) overlaps [us, after) when d < after and d + 1 day > us
        hits = np.zeros(len(us), np.int64)
        for day in days:
            hits[np.searchsorted(after, day, "right"):np.searchsorted(us, day + DAY_US, "left")] = 1
        out[name] = hits
    if fourier:
        if isinstance(fourier, bool) or not isinstance(fourier, (int, np.integer)) or fourier < 0:
            raise ClvlabError(f"fourier must be a whole number of terms >= 0, not {fourier!r}")
        length = year_length or 365.2425 * 86_400 / UNIT_SECONDS[unit]
        t = (us + (after - us) / 2) / (UNIT_SECONDS[unit] * US)
        for k in range(1, int(fourier) + 1):
            out[f"fourier_sin_{k}"] = np.sin(2 * np.pi * k * t / length)
            out[f"fourier_cos_{k}"] = np.cos(2 * np.pi * k * t / length)
    if len(out.columns) == 1:
        raise ClvlabError("seasonal_covariates: choose at least one of month, quarter, holidays "
                          "or fourier")
    return out


def _holiday_days(name: str, dates: Any, first_year: int, last_year: int) -> list[int]:
    """Midnights (microseconds) of a holiday: a list of dates, or "MM-DD" in every year."""
    if isinstance(dates, str):
        try:
            month, day = (int(part) for part in dates.split("-"))
            pd.Timestamp(2000, month, day)  # a leap year: 02-29 is a valid recurring day
        except (ValueError, TypeError):
            raise ClvlabError(f"holidays[{name!r}]={dates!r} is not 'MM-DD' (e.g. '12-25') or "
                              "a list of dates") from None
        days = []
        for year in range(first_year, last_year + 1):
            try:
                days.append(pd.Timestamp(year, month, day))
            except ValueError:  # 02-29 outside leap years
                continue
    else:
        days = [parse_option_date(value, f"holidays[{name!r}]") for value in dates]
    return sorted(int(as_micros(d.normalize())) for d in days)
