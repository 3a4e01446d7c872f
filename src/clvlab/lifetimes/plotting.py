"""lifetimes.plotting's functions, with its names and arguments (matplotlib imported only when a
plot is drawn). ``plot_period_transactions`` draws clvlab's ``plot_frequency_histogram`` (the
model's exact expected counts in place of lifetimes' one simulated sample); the others draw what
lifetimes draws, from the predictions of this package's fitters. ``clvlab.plotting`` has the
native plots: ``plot_calibration_holdout``, ``plot_tracking``, ``plot_p_alive_matrix``,
``plot_expected_purchases_matrix``, ``plot_p_alive_history``."""

from __future__ import annotations

import numpy as np
import pandas as pd

from clvlab.lifetimes.predictions import (calculate_alive_path, clvlab_transaction_model,
                                          expected_cumulative_transactions)

__all__ = [
    "plot_period_transactions",
    "plot_calibration_purchases_vs_holdout_purchases",
    "plot_frequency_recency_matrix",
    "plot_probability_alive_matrix",
    "plot_expected_repeat_purchases",
    "plot_history_alive",
    "plot_cumulative_transactions",
    "plot_incremental_transactions",
    "plot_transaction_rate_heterogeneity",
    "plot_dropout_rate_heterogeneity",
]


def _customers(model) -> pd.DataFrame:
    """The fit's data, one row per customer (rows repeated by their weights)."""
    data = model.data
    return data.iloc[np.repeat(np.arange(len(data)), np.asarray(data["weights"], dtype=np.int64))]


def plot_period_transactions(model, max_frequency=7, title="Frequency of Repeat Transactions",
                             xlabel="Number of Calibration Period Transactions", ylabel="Customers",
                             **kwargs):
    """
    Plot the customers by number of repeat transactions in the fit's data against the model's
    expected counts (clvlab's ``plot_frequency_histogram``; the last bar is max_frequency or
    more). ``label`` (two legend labels) and ``ax`` are read from kwargs.

    Returns
    -------
    axes: matplotlib.AxesSubplot
    """
    from matplotlib import pyplot as plt

    labels = kwargs.pop("label", ["Actual", "Model"])
    ax = kwargs.pop("ax", None)
    if ax is None:
        ax = plt.subplots(figsize=kwargs.pop("figsize", (7, 4.5)))[1]
    native = clvlab_transaction_model(model)
    data = _customers(model)
    if native is not None:
        from clvlab.plotting.diagnostics import plot_frequency_histogram

        plot_frequency_histogram(native, data[["frequency", "recency", "T"]], max_frequency, ax=ax)
    else:  # BG/BB: the expected customers with each count at their own number of periods
        counts = data["frequency"].to_numpy(np.int64)
        periods, n = np.unique(data["n_periods"].to_numpy(np.int64), return_counts=True)
        fitted = model._model()
        expected = [sum(c * fitted.purchase_probability(k, int(p)) for p, c in zip(periods, n) if p >= 1)
                    for k in range(max_frequency)]
        observed = np.bincount(np.minimum(counts, max_frequency), minlength=max_frequency + 1)
        positions = np.arange(max_frequency)
        ax.bar(positions - 0.2, observed[:max_frequency], 0.4)
        ax.bar(positions + 0.2, expected, 0.4)
    ax.legend(labels)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    return ax


def plot_calibration_purchases_vs_holdout_purchases(model, calibration_holdout_matrix,
                                                    kind="frequency_cal", n=7, **kwargs):
    """
    Plot the mean holdout purchases against the model's conditional expectation, by
    ``kind``: "frequency_cal", "recency_cal", "T_cal" or "time_since_last_purchase" (the
    first n groups). Input: ``calibration_and_holdout_data``'s table.

    Returns
    -------
    axes: matplotlib.AxesSubplot
    """
    from matplotlib import pyplot as plt

    x_labels = {
        "frequency_cal": "Purchases in calibration period",
        "recency_cal": "Age of customer at last purchase",
        "T_cal": "Age of customer at the end of calibration period",
        "time_since_last_purchase": "Time since user made last purchase",
    }
    summary = calibration_holdout_matrix.copy()
    duration_holdout = summary.iloc[0]["duration_holdout"]
    summary["model_predictions"] = model.conditional_expected_number_of_purchases_up_to_time(
        duration_holdout, summary["frequency_cal"], summary["recency_cal"], summary["T_cal"])
    if kind == "time_since_last_purchase":
        summary["time_since_last_purchase"] = summary["T_cal"] - summary["recency_cal"]
    ax = summary.groupby(kind)[["frequency_holdout", "model_predictions"]].mean().iloc[:n].plot(**kwargs)
    plt.title("Actual Purchases in Holdout Period vs Predicted Purchases")
    plt.xlabel(x_labels[kind])
    plt.ylabel("Average of Purchases in Holdout Period")
    plt.legend()
    return ax


def _heatmap(z, title, xlabel, ylabel, kwargs):
    from matplotlib import pyplot as plt

    interpolation = kwargs.pop("interpolation", "none")
    ax = plt.subplot(111)
    pcm = ax.imshow(z, interpolation=interpolation, **kwargs)
    plt.xlabel(xlabel)
    plt.ylabel(ylabel)
    plt.title(title)
    forceAspect(ax)
    plt.colorbar(pcm, ax=ax)
    return ax


def plot_frequency_recency_matrix(model, T=1, max_frequency=None, max_recency=None, title=None,
                                  xlabel="Customer's Historical Frequency",
                                  ylabel="Customer's Recency", **kwargs):
    """
    Plot the expected transactions in the next T units of time by a customer's frequency and
    recency (rows: recency 0..max_recency, columns: frequency 0..max_frequency, age
    max_recency).

    Returns
    -------
    axes: matplotlib.AxesSubplot
    """
    if max_frequency is None:
        max_frequency = int(model._data_max("frequency"))
    if max_recency is None:
        max_recency = int(model._data_max("T"))
    recency, frequency = np.meshgrid(np.arange(max_recency + 1), np.arange(max_frequency + 1),
                                     indexing="ij")
    z = np.asarray(model.conditional_expected_number_of_purchases_up_to_time(
        T, frequency.ravel(), recency.ravel(), max_recency), dtype=np.float64).reshape(recency.shape)
    if title is None:
        title = ("Expected Number of Future Purchases for {} Unit{} of Time,".format(T, "s"[T == 1:])
                 + "\nby Frequency and Recency of a Customer")
    return _heatmap(z, title, xlabel, ylabel, kwargs)


_ALIVE_TITLE = "Probability Customer is Alive,\nby Frequency and Recency of a Customer"


def plot_probability_alive_matrix(model, max_frequency=None, max_recency=None, title=_ALIVE_TITLE,
                                  xlabel="Customer's Historical Frequency",
                                  ylabel="Customer's Recency", **kwargs):
    """
    Plot the probability a customer is alive by frequency and recency
    (``model.conditional_probability_alive_matrix``).

    Returns
    -------
    axes: matplotlib.AxesSubplot
    """
    z = model.conditional_probability_alive_matrix(max_frequency, max_recency)
    return _heatmap(z, title, xlabel, ylabel, kwargs)


def plot_expected_repeat_purchases(model, title="Expected Number of Repeat Purchases per Customer",
                                   xlabel="Time Since First Purchase", ax=None, label=None, **kwargs):
    """
    Plot a new customer's expected repeat purchases over the fit's ages (solid) and half as
    long again (dashed).

    Returns
    -------
    axes: matplotlib.AxesSubplot
    """
    from matplotlib import pyplot as plt

    if ax is None:
        ax = plt.subplot(111)
    color = kwargs.pop("c", None) or kwargs.pop("color", None)
    max_T = model._data_max("T")
    times = np.linspace(0, max_T, 100)
    line = ax.plot(times, model.expected_number_of_purchases_up_to_time(times), color=color,
                   label=label, **kwargs)[0]
    times = np.linspace(max_T, 1.5 * max_T, 100)
    ax.plot(times, model.expected_number_of_purchases_up_to_time(times), color=line.get_color(),
            ls="--", **kwargs)
    plt.title(title)
    plt.xlabel(xlabel)
    plt.legend(loc="lower right")
    return ax


def plot_history_alive(model, t, transactions, datetime_col, freq="D", start_date=None, ax=None,
                       **kwargs):
    """
    Draw one customer's probability of being alive over time (``calculate_alive_path``), with
    their purchases as dashed lines.

    Returns
    -------
    axes: matplotlib.AxesSubplot
    """
    from matplotlib import pyplot as plt

    if start_date is None:
        start_date = min(transactions[datetime_col])
    if ax is None:
        ax = plt.subplot(111)
    history = pd.DataFrame({"transactions": 1},
                           index=pd.DatetimeIndex(pd.to_datetime(transactions[datetime_col])))
    history = history.resample(freq).sum()
    path = calculate_alive_path(model, transactions, datetime_col, t, freq)
    path_dates = pd.date_range(start=min(transactions[datetime_col]), periods=len(path), freq=freq)
    plt.plot(path_dates, path, "-", label="P_alive")
    payment_dates = history[history["transactions"] >= 1].index
    plt.vlines(payment_dates.values, ymin=0, ymax=1, colors="r", linestyles="dashed", label="purchases")
    plt.ylim(0, 1.0)
    plt.yticks(np.arange(0, 1.1, 0.1))
    plt.xlim(start_date, path_dates[-1])
    plt.legend(loc=3)
    plt.ylabel("P_alive")
    plt.title("History of P_alive")
    return ax


def _tracking(model, transactions, datetime_col, customer_id_col, t, t_cal, datetime_format,
              freq, set_index_date, title, xlabel, ylabel, ax, incremental, kwargs):
    from matplotlib import pyplot as plt

    if ax is None:
        ax = plt.subplot(111)
    frame = expected_cumulative_transactions(model, transactions, datetime_col, customer_id_col, t,
                                             datetime_format=datetime_format, freq=freq,
                                             set_index_date=set_index_date)
    if incremental:
        frame = frame.apply(lambda x: x - x.shift(1))
    ax = frame.plot(ax=ax, title=title, **kwargs)
    if set_index_date:
        x_vline = frame.index[int(t_cal)]
        xlabel = "date"
    else:
        x_vline = t_cal
    ax.axvline(x=x_vline, color="r", linestyle="--")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    return ax


def plot_cumulative_transactions(model, transactions, datetime_col, customer_id_col, t, t_cal,
                                 datetime_format=None, freq="D", set_index_date=False,
                                 title="Tracking Cumulative Transactions", xlabel="day",
                                 ylabel="Cumulative Transactions", ax=None, **kwargs):
    """
    Plot the predicted and actual cumulative transactions of the cohort
    (``expected_cumulative_transactions``), with a line at t_cal.

    Returns
    -------
    axes: matplotlib.AxesSubplot
    """
    return _tracking(model, transactions, datetime_col, customer_id_col, t, t_cal, datetime_format,
                     freq, set_index_date, title, xlabel, ylabel, ax, False, kwargs)


def plot_incremental_transactions(model, transactions, datetime_col, customer_id_col, t, t_cal,
                                  datetime_format=None, freq="D", set_index_date=False,
                                  title="Tracking Daily Transactions", xlabel="day",
                                  ylabel="Transactions", ax=None, **kwargs):
    """
    Plot the predicted and actual transactions of the cohort in each period, with a line at
    t_cal.

    Returns
    -------
    axes: matplotlib.AxesSubplot
    """
    return _tracking(model, transactions, datetime_col, customer_id_col, t, t_cal, datetime_format,
                     freq, set_index_date, title, xlabel, ylabel, ax, True, kwargs)


def _density(rv, title, suptitle, xlabel, ylabel, suptitle_fontsize, kwargs):
    from matplotlib import pyplot as plt

    x = np.linspace(0, rv.ppf(0.99), 100)
    fig, ax = plt.subplots(1)
    fig.suptitle(suptitle, fontsize=suptitle_fontsize, fontweight="bold")
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    fig.tight_layout(rect=[0, 0.03, 1, 0.95])
    ax.plot(x, rv.pdf(x), **kwargs)
    return ax


def plot_transaction_rate_heterogeneity(model, suptitle="Heterogeneity in Transaction Rate",
                                        xlabel="Transaction Rate", ylabel="Density",
                                        suptitle_fontsize=14, **kwargs):
    """
    Plot the estimated gamma distribution of lambda (customers' propensities to purchase).

    Returns
    -------
    axes: matplotlib.AxesSubplot
    """
    from scipy import stats

    r, alpha = model._unload_params("r", "alpha")
    title = "mean: {:.3f}, var: {:.3f}".format(r / alpha, r / alpha ** 2)
    return _density(stats.gamma(r, scale=1 / alpha), title, suptitle, xlabel, ylabel,
                    suptitle_fontsize, kwargs)


def plot_dropout_rate_heterogeneity(model, suptitle="Heterogeneity in Dropout Probability",
                                    xlabel="Dropout Probability p", ylabel="Density",
                                    suptitle_fontsize=14, **kwargs):
    """
    Plot the estimated beta distribution of p, customers' probability of dropping out
    immediately after a transaction (BG/NBD, MBG/NBD).

    Returns
    -------
    axes: matplotlib.AxesSubplot
    """
    from scipy import stats

    a, b = model._unload_params("a", "b")
    title = "mean: {:.3f}, var: {:.3f}".format(a / (a + b), a * b / ((a + b) ** 2) / (a + b + 1))
    return _density(stats.beta(a, b), title, suptitle, xlabel, ylabel, suptitle_fontsize, kwargs)


def forceAspect(ax, aspect=1):
    """Make the image of ``ax`` square (lifetimes' helper)."""
    im = ax.get_images()
    extent = im[0].get_extent()
    ax.set_aspect(abs((extent[1] - extent[0]) / (extent[3] - extent[2])) / aspect)
