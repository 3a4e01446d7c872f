"""The rules every event-log engine follows, and the feature tables built from their aggregates.

Here are the constants (windows of the trend, the blank-name pattern), the wording of each rule,
:func:`feature_name`, the :class:`LogPlan` that carries the columns, cutoff, windows and rules to
an engine, the checks of the user's options that resolve a plan (``resolve_plan``,
``resolve_windows``, ``resolve_event_types``), and the customer index of a feature table
(``customer_ids``, ``feature_rows``). :mod:`clvlab.data.events` is the front door
(``event_features``, ``basket_features``, ``check_events``) and the pandas engine; the other
engines (:mod:`clvlab.data.events_duckdb`, :mod:`clvlab.data.events_spark`) may import from here
and never from the front door, so that the imports run one way: front door -> engines -> rules.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import pandas as pd

from clvlab.core.errors import ClvlabError, ClvlabWarning, DataValidationError, did_you_mean, warn
from clvlab.core.numbers import number
from clvlab.data.rfm_io import parse_option_date

__all__ = ["feature_name", "LogPlan", "ENGINES", "TREND_DAYS", "BASKET_TREND_DAYS", "DAY_US",
           "BLANK_PATTERN", "resolve_plan", "resolve_windows", "resolve_event_types",
           "customer_ids", "feature_rows"]

ENGINES = ("pandas", "duckdb", "spark")
TREND_DAYS = (30, 90)      # E_trend compares the pace of these two windows
BASKET_TREND_DAYS = 90     # quantity_trend: the mean of this window over the overall mean
DAY_US = 86_400_000_000
BLANK_PATTERN = r"[ \t\r\n]*"  # an event name of blanks only is empty (in every engine's regex)

_RULES = {
    "empty": "the {log} is empty",
    "no_id": "customer id is missing",
    "no_date": "date is missing",
    "mixed_zones": "timestamps mix naive values and values with a UTC offset; the naive ones "
                   "are ambiguous",
    "event_type": "event name must be text or a whole number ({kind} is {dtype})",
    "no_event": "event name is missing or empty",
    "value_type": "{value} must be numeric ({kind} is {dtype})",
    "value_nan": "{value} is missing or NaN",
    "value_inf": "{value} is infinite",
    "value_negative": "quantity is negative (an order holds 0 or more items; leave returns out "
                      "of the quantity column, or log them as events)",
}


def feature_name(event: str) -> str:
    """The name an event type takes in feature columns.

    Parameters
    ----------
    event : str
        An event type as the log writes it.

    Returns
    -------
    str
        ``event`` with every character outside ``[A-Za-z0-9_]`` replaced by ``_``
        (``"e-mail open"`` -> ``"e_mail_open"``).
    """
    return re.sub(r"[^A-Za-z0-9_]", "_", str(event))


@dataclass(frozen=True)
class LogPlan:
    """What an engine needs to read a log and aggregate it, with the rules' wording.

    ``event_col`` None means a purchase log (basket features), whose ``value_col`` is the
    quantity. ``cutoff_us`` is the cutoff's wall-clock microseconds since 1970, ``windows`` the
    windows (days) in which the engines count events, ``event_types`` the types to aggregate
    (None: all)."""

    customer_col: str
    date_col: str
    event_col: str | None
    value_col: str | None
    timezone: str = "UTC"
    date_format: str | None = None
    cutoff_us: int = 0
    windows: tuple[int, ...] = ()
    event_types: tuple[str, ...] | None = None

    @property
    def log(self) -> str:
        return "event log" if self.event_col is not None else "transaction log"

    @property
    def value(self) -> str:
        return "value" if self.event_col is not None else "quantity"

    def since(self, days: int) -> int:
        """Events with microseconds above this are within ``days`` of the cutoff."""
        return self.cutoff_us - int(days) * DAY_US

    def rule(self, key: str, dtype: Any = None, kind: str = "dtype") -> str:
        """The wording of a rule, the same in every engine."""
        return _RULES[key].format(log=self.log, value=self.value, dtype=dtype, kind=kind)

    def require_columns(self, present: list[str]) -> None:
        """Raise a DataValidationError for the first of the plan's columns missing from
        ``present`` (the log's columns), with the columns present and a close match."""
        present = [str(c) for c in present]
        for column in (self.customer_col, self.date_col, self.event_col, self.value_col):
            if column is not None and column not in present:
                raise DataValidationError(
                    column, f"is missing from the {self.log}",
                    hint=f"columns present: {present}{did_you_mean([column], present)}")

    def check_names(self, names: list[str], example: Callable[[str], Any] | None = None) -> None:
        """Raise a DataValidationError for two event names that give one feature name;
        ``example(name)`` is a row of the log with that name, for the message."""
        seen: dict[str, str] = {}
        for name in sorted(names):
            clean = feature_name(name)
            if clean in seen:
                raise DataValidationError(
                    self.event_col, f"event names {seen[clean]!r} and {name!r} both become the "
                    f"feature name {clean!r} (feature names keep A-Z, a-z, 0-9 and _)",
                    example(name) if example is not None else None,
                    hint="rename one of them (or merge them, if they are one event)")
            seen[clean] = name
        folded: dict[str, str] = {}
        for name in sorted(names):
            other = folded.setdefault(feature_name(name).casefold(), name)
            if other != name:  # two features, but most likely one event spelt two ways
                warn(
                    f"{self.event_col or 'event_types'}: event names {other!r} and {name!r} "
                    "differ only in case "
                    "and become two sets of features; if they are one event, write them alike "
                    "(e.g. lower-case the column) before building features", ClvlabWarning)


def resolve_plan(customer_col, date_col, event_col, value_col, timezone, date_format,
                 cutoff=None, windows=(), event_types=None) -> LogPlan:
    """The :class:`LogPlan` of the user's options: the time zone checked, the cutoff read by
    the date column's rule (needed when there are windows)."""
    try:
        pd.Timestamp("2000-01-01", tz=timezone)
    except Exception:  # pytz/zoneinfo raise various types for unknown zones
        raise ClvlabError(f"timezone {timezone!r} is not a known time zone (e.g. 'UTC', "
                          "'Europe/Berlin')") from None
    cutoff_us = 0
    if cutoff is not None or windows:
        if cutoff is None:
            raise ClvlabError("cutoff=None is not a date; give the cutoff, e.g. '2024-03-31'")
        ts = parse_option_date(cutoff, "cutoff", date_format=date_format, timezone=timezone)
        cutoff_us = (ts - pd.Timestamp(0)) // pd.Timedelta(microseconds=1)
    return LogPlan(customer_col, date_col, event_col, value_col, timezone, date_format,
                   int(cutoff_us), tuple(windows), event_types)


def resolve_windows(windows_days: Any) -> tuple[int, ...]:
    """``windows_days`` as whole days >= 1, distinct and sorted."""
    days = []
    for value in ([windows_days] if np.ndim(windows_days) == 0 else list(windows_days)):
        d = number(value, "windows_days", "whole days")
        if not (d.is_integer() and d >= 1):
            raise ClvlabError(f"windows_days must be whole numbers of days >= 1, got {value!r}")
        days.append(int(d))
    return tuple(sorted(set(days)))


def resolve_event_types(event_types: Any, event_col: str) -> tuple[str, ...] | None:
    """``event_types`` as a tuple of distinct, non-blank texts with distinct feature names
    (None: all the types the log holds)."""
    if event_types is None:
        return None
    types = [event_types] if isinstance(event_types, str) else list(event_types)
    if not all(isinstance(t, str) and re.fullmatch(BLANK_PATTERN, t) is None for t in types) \
            or len(set(types)) != len(types):
        raise ClvlabError(f"event_types must be distinct, non-empty texts, got {event_types!r}")
    LogPlan("", "", event_col, None).check_names(types)
    return tuple(types)


def customer_ids(values: Any) -> pd.Index:
    """Customer ids as one index type whatever the engine returned (text as pandas' string
    type, not object)."""
    index = pd.Index(values)
    if index.dtype == object and pd.api.types.infer_dtype(index, skipna=False) == "string":
        index = index.astype(str)
    return index


def feature_rows(log_ids: Any, customers: Any, name: str) -> pd.Index:
    """The rows of a feature table: ``customers`` in their order, else the log's ids sorted."""
    found = customer_ids(pd.unique(np.asarray(log_ids)) if len(log_ids) else log_ids)
    if customers is None:
        return found.sort_values().rename(name)
    index = customer_ids(customers)
    if index.has_duplicates:
        raise ClvlabError(f"customers holds repeated ids, e.g. {index[index.duplicated()][0]!r}")
    if len(found) and len(index) and \
            pd.api.types.is_numeric_dtype(found.dtype) != pd.api.types.is_numeric_dtype(index.dtype):
        raise ClvlabError(f"customers holds ids of dtype {index.dtype}, the log's customer ids "
                          f"are of dtype {found.dtype}: no customer would match; convert one")
    return index.rename(name)
