"""One cutoff's view of a transaction log: what a model may see there, and what came after.

A backtest fits its candidates on :class:`Calibration` (the summary, the merged transactions and
the customers' attributes up to a cutoff) and scores them on the outcomes of the window after it
(:class:`CutoffView`); the churn adjuster trains on the same view, shifted back. Both take it
from here, so the two can never disagree about which purchase falls on which side of a cutoff.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from clvlab.core.errors import ClvlabError, DataValidationError
from clvlab.core.timeunits import UNIT_SECONDS
from clvlab.data.attributes import check_attributes
from clvlab.data.rfm import rfm_summary
from clvlab.data.rfm_io import parse_option_date, read_files
from clvlab.data.rfm_rules import epoch_seconds, make_settings
from clvlab.data.rfm_pandas import merge_periods, validated_columns
from clvlab.data.tables import accepts_tables

__all__ = ["Calibration", "CutoffView", "calibration_data", "load_log", "check_cutoffs",
           "checked_horizon", "parse_cutoff", "read_events", "read_orders"]


@dataclass(frozen=True)
class Calibration:
    """The data of one cutoff that a candidate may use.

    Nothing after the cutoff is in any of the tables.

    Parameters
    ----------
    rfm : pandas.DataFrame
        The calibration summary (frequency, recency, T, and monetary_value when the log
        has amounts) of the customers acquired by the cutoff.
    periods : pandas.DataFrame
        Their calibration transactions after merging, one row per customer and day with ``cid``,
        ``age`` (time units from the transaction to the cutoff) and ``value`` (NaN when the log has
        no amounts: unknown, not 0).
    cutoff : pandas.Timestamp
        The calibration cutoff.
    time_unit : str
        The summary's time unit (``"D"``, ``"W"``...).
    attributes : pandas.DataFrame, optional
        Static customer attributes the user supplied (channel, region...), indexed like ``rfm``,
        or None.
    events : pandas.DataFrame, optional
        The user's event log (visits, e-mails opened...) as
        :func:`clvlab.data.events.check_events` normalises it (``cid``, ``ts``, ``event``,
        ``value`` when it has values), up to the cutoff only, or None.
    event_types : tuple of str, optional
        The event names of the whole log, so that every cutoff's features have the same columns.
    orders : pandas.DataFrame, optional
        With a quantity column (items per order), the purchase log's orders as
        :func:`read_orders` normalises them (``cid``, ``ts``, ``value``: the quantity), one per row
        of the log (not merged by day, unlike ``periods``: the rule of
        :func:`clvlab.data.events.basket_features`), up to the cutoff only, or None.
    """

    rfm: pd.DataFrame
    periods: pd.DataFrame
    cutoff: pd.Timestamp
    time_unit: str
    attributes: pd.DataFrame | None = None
    events: pd.DataFrame | None = None
    event_types: tuple[str, ...] | None = None
    orders: pd.DataFrame | None = None

    def events_until(self, cutoff: pd.Timestamp) -> pd.DataFrame | None:
        """The events at or before ``cutoff`` (an earlier view's), or None without events.

        Parameters
        ----------
        cutoff : pandas.Timestamp
            An earlier cutoff.

        Returns
        -------
        pandas.DataFrame or None
            The events at or before it, or None without events.
        """
        return None if self.events is None else self.events[self.events["ts"] <= cutoff]

    def orders_until(self, cutoff: pd.Timestamp) -> pd.DataFrame | None:
        """The orders at or before ``cutoff`` (an earlier view's), or None without quantities.

        Parameters
        ----------
        cutoff : pandas.Timestamp
            An earlier cutoff.

        Returns
        -------
        pandas.DataFrame or None
            The orders at or before it, or None without quantities.
        """
        return None if self.orders is None else self.orders[self.orders["ts"] <= cutoff]

    @property
    def has_amounts(self) -> bool:
        """Whether the log had an amount column: without one the summary has no
        ``monetary_value`` and no spend can be predicted or measured."""
        return "monetary_value" in self.rfm.columns

    def days_to_units(self, days: float) -> float:
        """A number of days in the summary's time unit.

        Parameters
        ----------
        days : float
            A duration in days.

        Returns
        -------
        float
            The same duration in ``time_unit`` (7 days are 1.0 with weeks).
        """
        return days * 86_400 / UNIT_SECONDS[self.time_unit]

    def order_value(self) -> np.ndarray:
        """Each customer's average order value over all calibration purchases (first included);
        NaN without amounts.

        Returns
        -------
        numpy.ndarray
            One value per customer of ``rfm``, in its order.
        """
        return self._order_value.copy()

    @functools.cached_property
    def _order_value(self) -> np.ndarray:
        # computed once per cutoff: baselines ask for it at every point of the tracking curve
        mean = self.periods.groupby("cid")["value"].mean()
        return mean.reindex(self.rfm.index).to_numpy(np.float64)


@accepts_tables("transactions", "events", keyed=("customer_attributes",),
                customer_col="customer_col")
def calibration_data(transactions: Any, cutoff: Any, horizon: float | None = None, *,
                     customer_col: str = "customer_id", date_col: str = "date",
                     amount_col: str | None = None, time_unit: str = "W",
                     date_format: str | None = None, timezone: str = "UTC",
                     customer_attributes: pd.DataFrame | None = None, events: Any = None,
                     event_col: str = "event", event_value_col: str | None = None,
                     quantity_col: str | None = None) -> tuple[Calibration, pd.Series | None]:
    """What a candidate sees at ``cutoff`` (a :class:`Calibration`) and, with ``horizon``, each
    customer's purchases in the window after it (else None): the backtest's view of one cutoff,
    for training or scoring outside a backtest (e.g. the churn adjuster's features).
    ``events``: an event log (:func:`clvlab.data.events.check_events`: the log's customer and
    date columns, ``event_col`` and optionally ``event_value_col``), kept up to the cutoff.
    ``quantity_col``: the log's items-per-order column, whose orders up to the cutoff give the
    basket features (:func:`read_orders`).

    Parameters
    ----------
    transactions : pandas or polars DataFrame, pyarrow Table, path, glob or list of paths
        The transaction log: a pandas or polars DataFrame or a pyarrow Table
        (:mod:`clvlab.data.tables`), or CSV or Parquet files.
    cutoff : str, datetime or pandas.Timestamp
        The calibration cutoff (text read by the date column's rule).
    horizon : float, optional
        The window after the cutoff, in ``time_unit``; None: no outcome.
    customer_col, date_col : str, default "customer_id", "date"
        The log's id and date columns.
    amount_col : str, optional
        The log's amount column; None: no amounts (no spend).
    time_unit : str, default "W"
        The summary's time unit.
    date_format : str, optional
        The date column's strptime format (None: ISO 8601).
    timezone : str, default "UTC"
        The time zone the dates are read in.
    customer_attributes : pandas or polars DataFrame or pyarrow Table, optional
        Static customer attributes: a pandas DataFrame indexed by customer id, or a polars
        DataFrame or a pyarrow Table with the ids in its ``customer_col`` column
        (:mod:`clvlab.data.tables`).
    events : pandas or polars DataFrame, pyarrow Table, path, glob or list of paths, optional
        An event log (above): a pandas or polars DataFrame or a pyarrow Table, or CSV or
        Parquet files.
    event_col : str, default "event"
        The event log's event-name column.
    event_value_col : str, optional
        The event log's value column.
    quantity_col : str, optional
        The log's items-per-order column (above).

    Returns
    -------
    calibration : Calibration
        The cutoff's view.
    outcome : pandas.Series or None
        With ``horizon``, each calibration customer's purchases in the window after the cutoff;
        else None.

    Raises
    ------
    ClvlabError
        Where the horizon is not a number of time units > 0, or the cutoff is not a date.
    DataValidationError
        Where the log breaks a rule of :func:`clvlab.rfm_summary`, or the cutoff is before the
        first purchase or leaves no whole window after it.
    """
    settings = make_settings(customer_col=customer_col, date_col=date_col, amount_col=amount_col,
                             time_unit=time_unit, date_format=date_format, timezone=timezone,
                             merge_period=None)
    frame, ids, ts, amount = load_log(transactions, settings)
    unit = UNIT_SECONDS[settings.time_unit]
    if horizon is not None:
        horizon = checked_horizon(horizon, settings.time_unit)
    if horizon is None:
        cutoff = parse_cutoff(cutoff, settings)
        end, holdout_end = cutoff, None
    else:
        cutoff = check_cutoffs([cutoff], ts, horizon * unit, settings)[0]
        end = holdout_end = cutoff + pd.Timedelta(seconds=horizon * unit)
    rfm = rfm_summary(frame, customer_col=customer_col, date_col=date_col, amount_col=amount_col,
                      time_unit=settings.time_unit, calibration_end=None if horizon is None else cutoff,
                      observation_end=end if holdout_end is not None else cutoff,
                      date_format=date_format, timezone=timezone, engine="pandas")
    event_log = read_events(events, settings, event_col, event_value_col)
    if event_log is not None:
        from clvlab.data.events import check_event_ids

        check_event_ids(event_log["cid"], ids, "events: ")
    window = CutoffView(rfm, ids, ts, amount, cutoff, end, settings, customer_attributes,
                        events=event_log, orders=read_orders(frame, settings, quantity_col))
    outcome = None if horizon is None else pd.Series(window.actual_purchases, index=rfm.index,
                                                     name="holdout_purchases")
    return window.calibration, outcome


class CutoffView:
    """One cutoff's data: the calibration view candidates see, and the outcomes they don't."""

    def __init__(self, rfm, ids, ts, amount, cutoff, end, settings, attributes=None, events=None,
                 orders=None):
        keep = (ts <= end).to_numpy() & (rfm.index.get_indexer(ids) >= 0)
        holdout = (ts[keep] > cutoff).to_numpy()
        periods, _ = merge_periods(ids.to_numpy()[keep], ts[keep],
                                   amount[keep] if amount is not None else None, holdout,
                                   settings.merge_period)
        unit = float(UNIT_SECONDS[settings.time_unit])
        offset = (periods["p"].to_numpy(np.float64) - epoch_seconds(cutoff)) / unit
        periods = periods.assign(age=-offset)
        self.holdout_times = periods.loc[periods["holdout"], "age"].to_numpy() * -1.0
        # without amounts the summary has no monetary_value and the periods' value is NaN:
        # unknown, so that nothing downstream can mistake it for a spend of 0
        self.has_amounts = amount is not None
        if not self.has_amounts:
            periods = periods.assign(value=np.nan)
        calibration_rfm = rfm.drop(columns=[c for c in rfm.columns if c.endswith("_holdout")])
        calibration_rfm.attrs = rfm.attrs
        self.calibration = Calibration(
            rfm=calibration_rfm, cutoff=cutoff, time_unit=settings.time_unit,
            periods=periods.loc[~periods["holdout"], ["cid", "age", "value"]].reset_index(drop=True),
            attributes=attributes_for(attributes, rfm.index),
            events=None if events is None else events[events["ts"] <= cutoff],
            event_types=None if events is None else tuple(sorted(events["event"].unique())),
            orders=None if orders is None else orders[orders["ts"] <= cutoff])
        # outcomes: None where unknown (no holdout window: calibration_data without a horizon;
        # no amounts: no spend), never zeros
        self.actual_purchases = self.actual_spend = None
        if "frequency_holdout" in rfm:
            self.actual_purchases = rfm["frequency_holdout"].to_numpy(np.float64)
            if self.has_amounts:
                self.actual_spend = (self.actual_purchases
                                     * rfm["monetary_value_holdout"].to_numpy(np.float64))


def read_events(events: Any, settings, event_col: str = "event",
                value_col: str | None = None) -> pd.DataFrame | None:
    """An event log, validated and normalised once (:func:`clvlab.data.events.check_events`)
    with the purchase log's customer and date columns and date rules; None stays None."""
    if events is None:
        return None
    from clvlab.data.events import check_events

    return check_events(events, customer_col=settings.customer_col, date_col=settings.date_col,
                        event_col=event_col, value_col=value_col, timezone=settings.timezone,
                        date_format=settings.date_format)


def read_orders(frame: pd.DataFrame, settings, quantity_col: str | None) -> pd.DataFrame | None:
    """The purchase log's orders with their quantity (``cid``, ``ts``, ``value``), one per row:
    validated once by :func:`clvlab.data.events.basket_features`' rules (a quantity that is
    not numeric, missing, NaN, infinite or negative is refused, naming the column, the rule and
    an example row), with the log's customer and date columns and date rules; None without a
    quantity column. ``frame``: the log as :func:`load_log` returns it (consent applied)."""
    if quantity_col is None:
        return None
    from clvlab.data.events import check_events

    # event_col=None: a purchase log's plan, whose value is a quantity (the basket rules)
    return check_events(frame, customer_col=settings.customer_col, date_col=settings.date_col,
                        event_col=None, value_col=quantity_col, timezone=settings.timezone,
                        date_format=settings.date_format)


def attributes_for(attributes: pd.DataFrame | None, index: pd.Index) -> pd.DataFrame | None:
    """The user's static customer attributes for these customers, or a named error: the rules
    of :func:`clvlab.rfm_summary`'s ``customer_attributes`` (:mod:`clvlab.data.attributes`),
    but an attribute may share an RFM column's name here (the RFM table is kept apart)."""
    if attributes is None:
        return None
    return check_attributes(attributes, index, customer_col=index.name or "customer_id",
                            reserved=())


def load_log(transactions: Any, settings):
    """The log as a DataFrame (files read into pandas) and its validated id, timestamp and
    amount columns."""
    from clvlab.data.privacy import consented_log

    frame = transactions if isinstance(transactions, pd.DataFrame) else \
        read_files(transactions, settings.delimiter, settings.decimal)
    frame = consented_log(frame, settings.customer_col, settings.consent_col, settings.withdrawn)
    return (frame, *validated_columns(frame, settings))


def checked_horizon(horizon: Any, time_unit: str) -> float:
    """The horizon as a float, or an error that says it is a number of time units."""
    if isinstance(horizon, (bool, np.bool_)) or not isinstance(horizon, (int, float, np.number)):
        raise ClvlabError(f"horizon must be a number of time units (time_unit={time_unit!r}), "
                          f"e.g. horizon=26 for 26 of them, not {horizon!r}")
    if not (np.isfinite(horizon) and horizon > 0):
        raise ClvlabError(f"horizon must be a number of time units > 0 (time_unit={time_unit!r}), "
                          f"got {horizon!r}")
    return float(horizon)


def check_cutoffs(cutoffs: Any, ts: pd.Series, horizon: float, settings) -> list[pd.Timestamp]:
    """The cutoffs as sorted timestamps, each with a whole holdout window of data after it.
    They are an option, not a column of the log: errors name the option ``cutoffs``. Text is
    read by the date column's rule (ISO 8601 or its date_format), never guessed."""
    if isinstance(cutoffs, (str, pd.Timestamp)) or not hasattr(cutoffs, "__iter__"):
        cutoffs = [cutoffs]
    parsed = sorted({parse_cutoff(c, settings) for c in cutoffs})
    if not parsed:
        raise ClvlabError("no cutoffs given: the option cutoffs needs at least one date, "
                          "e.g. cutoffs=['1997-09-30']")
    first, last = ts.min(), ts.max()
    for cutoff in parsed:
        if cutoff < first:
            raise DataValidationError(None, f"option cutoffs: cutoff {cutoff} is before the first "
                                            f"transaction ({first}); a cutoff needs customers "
                                            "acquired before it")
        if cutoff + pd.Timedelta(seconds=horizon) > last + pd.Timedelta(days=1):
            raise DataValidationError(
                None, f"option cutoffs: cutoff {cutoff} plus the horizon ends after the data "
                      f"({last}): its holdout window would be incomplete; use an earlier cutoff "
                      "or a shorter horizon")
    return parsed


def parse_cutoff(value: Any, settings) -> pd.Timestamp:
    if value is None:
        raise ClvlabError("cutoff=None is not a date; each cutoff is a date such as '1997-09-30'")
    return parse_option_date(value, "cutoff", date_format=settings.date_format,
                             timezone=settings.timezone)
