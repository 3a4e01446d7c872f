"""lifetimes.utils' model-based helpers on clvlab: discounted customer lifetime value
(``clvlab.customer_lifetime_value``'s discrete method), a cohort's expected cumulative
transactions (``clvlab.expected_cumulative_purchases``) and a customer's P(alive) path."""

from __future__ import annotations

import numpy as np
import pandas as pd

from clvlab.lifetimes._base import BaseFitter

__all__ = ["customer_lifetime_value", "expected_cumulative_transactions", "calculate_alive_path",
           "CLV_FACTORS", "clvlab_transaction_model"]

#: lifetimes' months in each unit of T (``freq`` of customer_lifetime_value)
CLV_FACTORS = {"W": 4.345, "M": 1.0, "D": 30, "H": 30 * 24}


def clvlab_transaction_model(model):
    """The clvlab continuous-time transaction model behind ``model`` (a fitter of this package
    or a clvlab model), or None for anything else (a lifetimes fitter)."""
    native = model._model() if isinstance(model, BaseFitter) else model
    return native if hasattr(native, "expected_purchases_by_horizon") else None


def customer_lifetime_value(transaction_prediction_model, frequency, recency, T, monetary_value,
                            time=12, discount_rate=0.01, freq="D"):
    """
    Compute the average lifetime value for a group of one or more customers, with discounted
    cash flow: for each month k = 1..time, the expected purchases in that month times
    ``monetary_value``, discounted by (1 + discount_rate)^k (lifetimes.utils'
    ``_customer_lifetime_value``).

    The expected purchases come from clvlab (``expected_purchases_by_horizon``, what
    ``clvlab.customer_lifetime_value(..., method="discrete", period=<a month>)`` sums) when the
    model is a fitter of this package or a clvlab model, else from the model's ``predict``.

    Parameters
    ----------
    transaction_prediction_model:
        the model to predict future transactions
    frequency, recency, T: array_like
        the customers' histories, T in units of ``freq``.
    monetary_value: array_like
        the monetary value of a transaction (usually Gamma-Gamma's expected profit).
    time: int, optional
        the lifetime expected for the user in months. Default: 12
    discount_rate: float, optional
        the monthly adjusted discount rate. Default: 0.01
    freq: string, optional
        "D", "H", "M" or "W": the unit of T (a month is 30 days, 720 hours or 4.345 weeks).

    Returns
    -------
    :obj: Series
        series with customer ids as index and the estimated customer lifetime values as values
    """
    factor = CLV_FACTORS[freq]
    index = frequency.index if isinstance(frequency, pd.Series) else \
        pd.RangeIndex(np.atleast_1d(np.asarray(frequency)).shape[0])
    edges = np.arange(1, time + 1) * factor
    native = clvlab_transaction_model(transaction_prediction_model)
    if native is not None:
        table = pd.DataFrame({"frequency": np.atleast_1d(np.asarray(frequency, dtype=np.float64)),
                              "recency": np.atleast_1d(np.asarray(recency, dtype=np.float64)),
                              "T": np.atleast_1d(np.asarray(T, dtype=np.float64))})
        cumulative = native.expected_purchases_by_horizon(table, edges).to_numpy()
    else:  # another library's model: its own predictions, as lifetimes computes them
        cumulative = np.column_stack([np.asarray(transaction_prediction_model.predict(
            edge, frequency, recency, T), dtype=np.float64) for edge in edges])
    in_period = np.diff(cumulative, axis=1, prepend=0.0)
    discount = (1.0 + discount_rate) ** (edges / factor)
    value = np.atleast_1d(np.asarray(monetary_value, dtype=np.float64))[:, None]
    clv = (value * in_period / discount).sum(axis=1)
    return pd.Series(clv, index=index, name="clv")


def expected_cumulative_transactions(model, transactions, datetime_col, customer_id_col, t,
                                     datetime_format=None, freq="D", freq_multiplier=1,
                                     set_index_date=False):
    """
    Get expected and actual repeated cumulative transactions of the cohort in
    ``transactions``, period by period (Fader, Hardie & Lee's tracking curve).

    Transactions of a customer in one ``freq`` period are one; a customer's first period is
    their birth. The expected cumulative repeat transactions at period i sum each customer's
    new-customer expectation at age (i - birth) / freq_multiplier
    (``clvlab.expected_cumulative_purchases``); the actual ones count the repeat periods
    before period i.

    Parameters
    ----------
    model:
        A fitted model (a fitter of this package, a clvlab model, or any object with
        ``expected_number_of_purchases_up_to_time``).
    transactions: :obj: DataFrame
        the transaction log
    datetime_col, customer_id_col: string
        its columns
    t: int
        the number of time units since the begining of data for which we want to calculate
        cumulative transactions
    datetime_format: string, optional
        a strptime format for ``datetime_col``
    freq: string, optional
        Default: 'D' for days.
    freq_multiplier: int, optional
        Default: 1: periods per unit of the model's time.
    set_index_date: bool, optional
        when True set date as Pandas DataFrame index, default False - number of time units

    Returns
    -------
    :obj: DataFrame
        A dataframe with columns actual, predicted
    """
    dates = pd.to_datetime(transactions[datetime_col], format=datetime_format)
    start_date = dates.min()
    start = start_date.to_period(freq)
    periods = pd.DatetimeIndex(dates).to_period(freq)
    log = pd.DataFrame({"cid": transactions[customer_id_col].to_numpy(),
                        "offset": periods.asi8 - start.ordinal})
    log = log[log["offset"] <= t].drop_duplicates()
    births = log.groupby("cid")["offset"].min()
    repeat = log[log["offset"] > log["cid"].map(births)]
    steps = np.arange(freq_multiplier, t + 1, freq_multiplier)
    native = clvlab_transaction_model(model)
    if native is not None:
        from clvlab.models.cumulative import expected_cumulative_purchases

        predicted = expected_cumulative_purchases(
            native, births.to_numpy(np.float64) / freq_multiplier,
            steps / freq_multiplier).to_numpy() if len(steps) else np.array([])
    else:
        sizes = births.value_counts()
        predicted = []
        for i in steps:
            times = (i - sizes.index.to_numpy()).astype(float)
            keep = times > 0
            expected = model.expected_number_of_purchases_up_to_time(times[keep] / freq_multiplier)
            predicted.append(float(np.sum(np.asarray(expected) * sizes.to_numpy()[keep])))
    counts = np.bincount(repeat["offset"].to_numpy(np.int64), minlength=t + 1)
    actual = [int(counts[:i].sum()) for i in steps]
    if set_index_date:
        date_periods = pd.date_range(start_date, periods=t + 1, freq=freq).to_period(freq)
        index = date_periods[freq_multiplier - 1: -1: freq_multiplier]
    else:
        index = range(0, t // freq_multiplier)
    return pd.DataFrame({"actual": actual, "predicted": list(np.asarray(predicted, float))},
                        index=index)


def calculate_alive_path(model, transactions, datetime_col, t, freq="D"):
    """
    Calculate the alive path for plotting the alive history of one customer: P(alive) at the
    end of each ``freq`` period from their first purchase to period t (purchases in one period
    are one, the first one ignored).

    Parameters
    ----------
    model:
        A fitted model with ``conditional_probability_alive(frequency, recency, T)``
    transactions: DataFrame
        the transactions history of the customer
    datetime_col: string
        the column in the transactions that denotes the datetime the purchase was made
    t: array_like
        the number of time units since the birth for which we want to draw the p_alive
    freq: string, optional
        Default: 'D' for days.

    Returns
    -------
    :obj: Series
        P(alive) (floats) as a function of T, the age of the customer
    """
    history = pd.DataFrame({"transactions": 1},
                           index=pd.DatetimeIndex(pd.to_datetime(transactions[datetime_col])))
    purchases = history.resample(freq).sum()["transactions"].to_numpy()
    purchases = np.append(purchases, [0] * max(t + 1 - len(purchases), 0))
    bought = purchases > 0
    age = np.arange(len(purchases), dtype=np.float64)
    frequency = np.cumsum(bought) - 1.0
    recency = pd.Series(np.where(bought, age, np.nan)).ffill().fillna(0).to_numpy()
    alive = model.conditional_probability_alive(frequency, recency, age)
    return pd.Series(np.asarray(alive, dtype=np.float64).ravel())
