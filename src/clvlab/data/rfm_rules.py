"""The rules every RFM engine follows: the user's settings checked once, the observation window
resolved against the data, and the metadata a summary carries.

:mod:`clvlab.data.rfm` is the front door (``rfm_summary``); the engines (``rfm_pandas``,
``rfm_duckdb``, ``rfm_spark``) import from here and never from the front door, so that the
imports run one way: front door -> engines -> rules.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from clvlab.core.errors import ClvlabError, ClvlabWarning, DataValidationError, warn
from clvlab.core.timeunits import UNIT_NAMES, UNIT_SECONDS, normalize_time_unit
from clvlab.data.rfm_columns import columns_for, evaluate, render_sql
from clvlab.data.rfm_io import parse_option_date

RFM_COLUMNS = ["frequency", "recency", "T"]
HOLDOUT_COLUMNS = ["frequency_holdout", "monetary_value_holdout", "duration_holdout"]

MERGE_PERIODS = {"h": 3_600, "D": 86_400}


@dataclass(frozen=True)
class Window:
    """The resolved observation window, as naive timestamps in the user's time zone."""

    calibration_end: pd.Timestamp  # T is measured to here; equal to observation_end without holdout
    observation_end: pd.Timestamp
    has_holdout: bool
    last_transaction: pd.Timestamp | None = None  # the log's last, to say how far past it we are


@dataclass(frozen=True)
class Settings:
    customer_col: str
    date_col: str
    amount_col: str | None
    time_unit: str
    merge_period: str
    timezone: str
    date_format: str | None
    consent_col: str | None = None         # see clvlab.privacy
    withdrawn: frozenset | None = None     # withdrawn customer ids, as text
    delimiter: str | None = None           # CSV field separator; None: sniffed by the reader
    decimal: str = "."                     # decimal mark of amounts in CSV files and text columns

    @property
    def unit_seconds(self) -> int:
        return UNIT_SECONDS[self.time_unit]

    @property
    def merge_seconds(self) -> int:
        return MERGE_PERIODS[self.merge_period]


def make_settings(*, customer_col: str, date_col: str, amount_col: str | None, time_unit: str,
                  date_format: str | None, timezone: str, merge_period: str | None,
                  consent_col: str | None = None, withdrawn: Any = None,
                  delimiter: str | None = None, decimal: str | None = ".") -> Settings:
    """Check the user's options once, for every engine and the command line."""
    from clvlab.data.privacy import withdrawn_ids

    delimiter, decimal = _csv_options(delimiter, decimal)
    return Settings(customer_col=customer_col, date_col=date_col, amount_col=amount_col,
                    time_unit=normalize_time_unit(time_unit),
                    merge_period=_merge_period(merge_period, time_unit),
                    timezone=_check_timezone(timezone), date_format=date_format,
                    consent_col=consent_col,
                    withdrawn=frozenset(withdrawn_ids(withdrawn)) if withdrawn is not None else None,
                    delimiter=delimiter, decimal=decimal)


def _csv_options(delimiter: str | None, decimal: str | None) -> tuple[str | None, str]:
    decimal = "." if decimal is None else decimal
    if delimiter in ("\\t", "tab"):  # a tab is hard to type on a command line
        delimiter = "\t"
    if delimiter is not None and (not isinstance(delimiter, str) or len(delimiter) != 1):
        raise ClvlabError(f"delimiter={delimiter!r} (--delimiter) must be one character, e.g. ';' "
                          "or ',' (or 'tab'); leave it out to have it detected")
    if decimal not in (".", ","):
        raise ClvlabError(f"decimal={decimal!r} (--decimal) must be '.' or ','")
    if delimiter == decimal:
        raise ClvlabError(f"delimiter and decimal (--delimiter, --decimal) are both {decimal!r}; "
                          "a CSV with decimal commas separates its fields with another "
                          "character, usually ';'")
    return delimiter, decimal


def resolve_window(first: pd.Timestamp, last: pd.Timestamp, calibration_end: Any,
                   observation_end: Any, settings: Settings) -> Window:
    """Check the user's window against the data's time range and fill in the defaults."""
    obs = parse_option_date(observation_end, "observation_end", date_format=settings.date_format,
                            timezone=settings.timezone)
    cal = parse_option_date(calibration_end, "calibration_end", date_format=settings.date_format,
                            timezone=settings.timezone)
    if cal is None:
        obs = last if obs is None else obs
        if obs < first:
            raise DataValidationError(
                None, f"observation_end ({obs}) is before the first transaction ({first})")
        window = Window(calibration_end=obs, observation_end=obs, has_holdout=False,
                        last_transaction=last)
        warn_if_past_the_log(first, last, obs, settings)
        return window
    if cal < first:
        raise DataValidationError(
            None, f"calibration_end ({cal}) is before the first transaction ({first}): "
                  "no customer would be in the calibration period")
    if cal >= last:
        raise DataValidationError(
            None, f"calibration_end ({cal}) is at or after the last transaction ({last}): "
                  "the holdout period would hold no data")
    obs = last if obs is None else obs
    if obs <= cal:
        raise DataValidationError(
            None, f"observation_end ({obs}) must be after calibration_end ({cal})")
    warn_if_past_the_log(first, last, obs, settings)
    return Window(calibration_end=cal, observation_end=obs, has_holdout=True,
                  last_transaction=last)


#: the part of the log's span by which the window may end after its last transaction before a
#: warning (a daily job scoring yesterday's log is 1 day past it; a log that stopped years ago is
#: far past it)
PAST_THE_LOG_SHARE = 0.1


def units_past_the_log(last: pd.Timestamp, end: pd.Timestamp, settings: Settings) -> float:
    """How many time units ``end`` is after the log's last transaction (0 when it is not)."""
    return max((end - last) / pd.Timedelta(seconds=settings.unit_seconds), 0.0)


def past_the_log_metrics(info: dict[str, Any], time_unit: str) -> dict[str, float]:
    """How far a summary's end is past the log's last transaction, as a scoring run logs it
    (``weeks_after_last_transaction``, in the model's unit); {} when the summary does not say."""
    gap = info.get("units_after_last_transaction")
    return {} if gap is None else {f"{UNIT_NAMES[time_unit]}_after_last_transaction": float(gap)}


def warn_if_past_the_log(first: pd.Timestamp, last: pd.Timestamp, end: pd.Timestamp,
                         settings: Settings) -> None:
    """Warn when the window ends far after the log's last transaction: the log says nothing
    about that time, so every customer looks as if they bought nothing in it, and predictions
    fall in silence (the CDNOW sample scored 5 years late: 52-week expected purchases 2,029 ->
    17.4)."""
    gap = units_past_the_log(last, end, settings)
    span = max((last - first) / pd.Timedelta(seconds=settings.unit_seconds), 0.0)
    if gap <= 1.0 or gap <= PAST_THE_LOG_SHARE * span:
        return
    unit = UNIT_NAMES[settings.time_unit]
    years = (end - last) / pd.Timedelta(days=365.2425)
    warn(
        f"the summary is as of {end}, {gap:,.1f} {unit} ({years:.1f} years) after the log's last "
        f"transaction ({last}): the log says nothing about that time, so every customer is "
        f"scored as if they had bought nothing in it, and P(alive) and expected purchases fall. "
        f"If the log stops early (an old extract), build the summary as of its last date.",
        ClvlabWarning)


def check_customers(n_customers: int, window: Window) -> None:
    """An RFM table without customers is a mistake in the window or the data, never a result."""
    if n_customers == 0:
        raise DataValidationError(
            None, f"no customer made a purchase (a row with amount >= 0) by "
                  f"{window.calibration_end}; the log holds only refunds there")


def finish(table: pd.DataFrame, settings: Settings, window: Window,
           counts: dict[str, int]) -> pd.DataFrame:
    """Shape the pandas engine's per-customer aggregates into the public RFM table.

    ``table`` is indexed by customer id and holds the aggregates of
    :data:`clvlab.data.rfm_columns.AGGREGATES`; the columns are evaluated from their one
    definition there, which the DuckDB and Spark engines render as SQL (:func:`rfm_columns_sql`).
    """
    columns = columns_for(settings.amount_col is not None, window.has_holdout)
    values = evaluate(columns, table, window_constants(settings, window), len(table))
    out = pd.DataFrame(values, index=table.index)
    out.index.name = settings.customer_col
    out = out.sort_index()
    out.attrs["clvlab"] = describe(settings, window, counts)
    return out


def rfm_columns_sql(settings: Settings, window: Window, double, ident) -> list[str]:
    """The customer id and the public RFM columns as SQL over a table of the per-customer
    aggregates (and ``cid``), rendered from :data:`clvlab.data.rfm_columns.SPEC` as
    :func:`finish` evaluates them. Shared by the DuckDB and Spark engines; ``double`` writes an
    exact DOUBLE literal and ``ident`` quotes a name in each dialect."""
    columns = columns_for(bool(settings.amount_col), window.has_holdout)
    return [f"cid AS {ident(settings.customer_col)}",
            *render_sql(columns, window_constants(settings, window), double, ident)]


def window_constants(settings: Settings, window: Window) -> dict[str, float]:
    """The constants the RFM columns read (:data:`clvlab.data.rfm_columns.CONSTANTS`)."""
    return {"unit_seconds": float(settings.unit_seconds),
            "calibration_end": epoch_seconds(window.calibration_end),
            "observation_end": epoch_seconds(window.observation_end)}


def describe(settings: Settings, window: Window, counts: dict[str, int]) -> dict[str, Any]:
    """The metadata every engine attaches as ``attrs["clvlab"]`` (and a Parquet file keeps).

    The log's columns and date format (``date_col``, ``amount_col``, ``date_format``; None when
    not given) are recorded with the merge period and time zone, so that whatever reads the log
    again for this table (``covariate_paths(..., transactions=log)``) reads it the same way."""
    return {"time_unit": settings.time_unit, "customer_col": settings.customer_col,
            "date_col": settings.date_col, "amount_col": settings.amount_col,
            "date_format": settings.date_format, "merge_period": settings.merge_period,
            "timezone": settings.timezone, "calibration_end": window.calibration_end.isoformat(),
            "observation_end": window.observation_end.isoformat(),
            **({} if window.last_transaction is None else {
                "last_transaction": window.last_transaction.isoformat(),
                "units_after_last_transaction": units_past_the_log(
                    window.last_transaction, window.observation_end, settings)}),
            **counts}


def epoch_seconds(ts: pd.Timestamp) -> float:
    """Seconds since 1970 of a naive timestamp, as both engines compute durations from it."""
    return (ts - pd.Timestamp(0)) / pd.Timedelta(seconds=1)


def _merge_period(merge_period: str | None, time_unit: str) -> str:
    if merge_period is None:
        return "h" if normalize_time_unit(time_unit) == "h" else "D"
    if merge_period not in MERGE_PERIODS:
        raise ClvlabError(f"merge_period {merge_period!r} is not supported; use 'D' or 'h'")
    return merge_period


def _check_timezone(timezone: str) -> str:
    try:
        pd.Timestamp("2000-01-01", tz=timezone)
    except Exception:  # pytz/zoneinfo raise various types for unknown zones
        raise ClvlabError(f"timezone {timezone!r} is not a known time zone (e.g. 'UTC', "
                          "'Europe/Berlin')") from None
    return timezone


def report_set_aside(counts: dict[str, Any]) -> None:
    """Warn about transactions that the refund rule set aside or valued at 0."""
    notes = []
    if counts.get("refund_only_periods"):
        notes.append(f"{counts['refund_only_periods']} customer-periods held only refunds and "
                     "were set aside")
    if counts.get("negative_periods_zeroed"):
        notes.append(f"{counts['negative_periods_zeroed']} transactions had refunds larger than "
                     "their purchases and count with value 0")
    if notes:
        warn("; ".join(notes) + " (see rfm_summary's refund rule)", ClvlabWarning)
