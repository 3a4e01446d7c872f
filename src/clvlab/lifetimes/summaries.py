"""lifetimes.utils' summaries of a transaction log, on ``clvlab.rfm_summary``.

lifetimes counts time in periods of ``freq``: every timestamp is moved to the start of its
period (a day, an hour, a week starting on Monday...), purchases of one customer in one period
are one, the end of observation is moved to the start of its period too, and recency and T are
the distances between period starts in units of ``freq``, divided by ``freq_multiplier``. The
functions here move the timestamps to their period starts as lifetimes does and let
``rfm_summary`` do the rest in days (merging per day, or per hour for hourly periods), then
express the distances in ``freq``: the same numbers, exactly, as lifetimes 0.11.3's.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["summary_data_from_transaction_data", "calibration_and_holdout_data",
           "unit_seconds", "period_starts"]

_HOUR, _DAY = 3_600, 86_400
#: seconds of the units that are not fixed lengths: clvlab's mean Gregorian month and year
_CALENDAR_UNITS = {"M": 30.436875 * _DAY, "Y": 365.2425 * _DAY}


def _freq(freq: str) -> str:
    """pandas 3 spells hours "h" (lifetimes' docs wrote "H")."""
    return "h" if freq == "H" else freq


def unit_seconds(freq: str) -> float:
    """Seconds in one unit of ``freq`` as lifetimes divides by it (``np.timedelta64(1, freq)``;
    anchored weeks such as "W-SUN" are weeks, a month or year clvlab's mean one)."""
    from pandas.tseries.frequencies import to_offset

    base = _freq(freq).split("-")[0]
    if base in _CALENDAR_UNITS or base in ("MS", "ME", "YS", "YE", "A"):
        return _CALENDAR_UNITS["Y" if base[0] in "YA" else "M"]
    try:
        return float(np.timedelta64(1, base) / np.timedelta64(1, "s"))
    except (TypeError, ValueError):
        return to_offset(_freq(freq)).nanos / 1e9


def period_starts(dates: pd.Series, freq: str) -> pd.Series:
    """Each timestamp moved to the start of its ``freq`` period, as lifetimes does."""
    return dates.dt.to_period(_freq(freq)).dt.to_timestamp()


def _merge_period(freq: str) -> str:
    """clvlab's merge period for ``freq``'s periods: "h" for hours, "D" from a day up (the
    timestamps are period starts then, so one period's purchases share a day)."""
    from pandas.tseries.frequencies import to_offset
    from pandas.tseries.offsets import Tick

    from clvlab.core.errors import ClvlabError

    try:
        offset = to_offset(_freq(freq))
    except ValueError:  # a period spelled for Periods only ("M" on pandas 3): a month or more
        return "D"
    if not isinstance(offset, Tick) or offset.nanos >= _DAY * 10**9:
        return "D"
    if offset.nanos >= _HOUR * 10**9:
        return "h"
    raise ClvlabError("freq={!r} is shorter than an hour: clvlab merges purchases per hour at the "
                      "finest (rfm_summary's merge_period)".format(freq))


def summary_data_from_transaction_data(transactions, customer_id_col, datetime_col,
                                       monetary_value_col=None, datetime_format=None,
                                       observation_period_end=None, freq="D", freq_multiplier=1,
                                       include_first_transaction=False):
    """
    Return summary data from transactions: a DataFrame of the form
    customer_id, frequency, recency, T [, monetary_value], built by ``clvlab.rfm_summary``.

    Parameters
    ----------
    transactions: :obj: DataFrame
        a Pandas DataFrame that contains the customer_id col and the datetime col.
    customer_id_col: string
        the column in transactions DataFrame that denotes the customer_id
    datetime_col:  string
        the column in transactions that denotes the datetime the purchase was made.
    monetary_value_col: string, optional
        the columns in the transactions that denotes the monetary value of the transaction.
    datetime_format: string, optional
        a strptime format for the datetime column.
    observation_period_end: datetime, optional
        the final date of the study (its period's start). Events after it are truncated.
        Defaults to the last date of the log.
    freq: string, optional
        Default: 'D' for days; 'h' for hours, 'W' for weeks (starting on Monday)...
    freq_multiplier: int, optional
        Default: 1. With freq='h' and freq_multiplier=24, recency and T are in days with
        hourly precision.
    include_first_transaction: bool, optional
        Default: False. Count (and average the value of) the first transaction too.

    Returns
    -------
    :obj: DataFrame:
        customer_id, frequency, recency, T [, monetary_value], floats
    """
    from clvlab.data.rfm import rfm_summary

    dates = pd.to_datetime(transactions[datetime_col], format=datetime_format)
    if observation_period_end is None:
        observation_period_end = dates.max()
    end = pd.to_datetime(observation_period_end, format=datetime_format).to_period(_freq(freq)) \
        .to_timestamp()
    frame = pd.DataFrame({customer_id_col: transactions[customer_id_col].to_numpy(),
                          datetime_col: period_starts(dates, freq).to_numpy()})
    if monetary_value_col:
        frame[monetary_value_col] = transactions[monetary_value_col].to_numpy()
    frame = frame[frame[datetime_col] <= end]
    rfm = rfm_summary(frame, customer_col=customer_id_col, date_col=datetime_col,
                      amount_col=monetary_value_col or None, time_unit="D",
                      merge_period=_merge_period(freq), observation_end=end)
    per_unit = unit_seconds(freq)
    out = pd.DataFrame(index=rfm.index)
    out["frequency"] = rfm["frequency"].astype(float) + (1.0 if include_first_transaction else 0.0)
    for column in ("recency", "T"):  # whole seconds between period starts, then in freq's unit
        seconds = np.rint(rfm[column].to_numpy(np.float64) * _DAY)
        out[column] = seconds / per_unit / freq_multiplier
    if monetary_value_col:
        value = rfm["monetary_value"].to_numpy(np.float64)
        if include_first_transaction:
            repeats = rfm["frequency"].to_numpy(np.float64)
            first = _first_period_values(frame, customer_id_col, datetime_col,
                                         monetary_value_col).reindex(rfm.index).to_numpy()
            value = (value * repeats + first) / (repeats + 1)
        out["monetary_value"] = value
    out.index.name = customer_id_col
    return out.astype(float)


def _first_period_values(frame, customer_col, date_col, amount_col) -> pd.Series:
    """Each customer's value in their first period (amounts of the period added up)."""
    totals = frame.groupby([customer_col, date_col])[amount_col].sum()
    return totals.groupby(level=0).first().clip(lower=0.0)


def calibration_and_holdout_data(transactions, customer_id_col, datetime_col,
                                 calibration_period_end, observation_period_end=None, freq="D",
                                 freq_multiplier=1, datetime_format=None, monetary_value_col=None,
                                 include_first_transaction=False):
    """
    Create a summary of each customer over a calibration and holdout period.

    The calibration period holds the transactions at or before ``calibration_period_end``
    (raw timestamps), summarised by ``summary_data_from_transaction_data`` as of that date's
    period; the holdout those after it up to ``observation_period_end``, counted per period.

    Parameters
    ----------
    transactions: :obj: DataFrame
        a Pandas DataFrame that contains the customer_id col and the datetime col.
    customer_id_col, datetime_col: string
        its columns.
    calibration_period_end: :obj: datetime
        a period to limit the calibration to, inclusive.
    observation_period_end: :obj: datetime, optional
        the final date of the study; defaults to the last date of the log.
    freq, freq_multiplier, datetime_format, monetary_value_col, include_first_transaction:
        as ``summary_data_from_transaction_data``.

    Returns
    -------
    :obj: DataFrame
        A dataframe with columns frequency_cal, recency_cal, T_cal, frequency_holdout,
        duration_holdout (and monetary_value_cal, monetary_value_holdout with a value column;
        monetary_value_holdout is the mean value of the holdout *periods*, as frequency_holdout
        counts them, while lifetimes averages the raw rows).
    """
    dates = pd.to_datetime(transactions[datetime_col], format=datetime_format)
    if observation_period_end is None:
        observation_period_end = dates.max()
    observation_period_end = pd.to_datetime(observation_period_end, format=datetime_format)
    calibration_period_end = pd.to_datetime(calibration_period_end, format=datetime_format)
    columns = [customer_id_col, datetime_col] + ([monetary_value_col] if monetary_value_col else [])
    log = transactions[columns].copy()
    log[datetime_col] = dates

    calibration = summary_data_from_transaction_data(
        log[dates <= calibration_period_end], customer_id_col, datetime_col,
        monetary_value_col=monetary_value_col, observation_period_end=calibration_period_end,
        freq=freq, freq_multiplier=freq_multiplier,
        include_first_transaction=include_first_transaction)
    calibration.columns = [c + "_cal" for c in calibration.columns]

    holdout = log[(dates > calibration_period_end) & (dates <= observation_period_end)]
    if holdout.empty:
        raise ValueError("There is no data available. Check the `observation_period_end` and  "
                         "`calibration_period_end` and confirm that values in `transactions` "
                         "occur prior to those dates.")
    holdout = holdout.assign(**{datetime_col: holdout[datetime_col].dt.to_period(_freq(freq))})
    grouped = holdout.groupby([customer_id_col, datetime_col], sort=False)
    periods = grouped[monetary_value_col].sum() if monetary_value_col else grouped.size()
    summary = pd.DataFrame({"frequency_holdout": periods.groupby(level=0).size()})
    if monetary_value_col:
        summary["monetary_value_holdout"] = periods.groupby(level=0).mean()
    combined = calibration.join(summary, how="left").fillna(0)
    combined["frequency_holdout"] = combined["frequency_holdout"].astype(float)
    delta = (observation_period_end.to_period(_freq(freq))
             - calibration_period_end.to_period(_freq(freq))).n
    combined["duration_holdout"] = delta / freq_multiplier
    return combined
