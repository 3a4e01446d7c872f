"""Diagnostic plots (matplotlib). Every function draws on ``ax`` (a new figure's axes when
None) and returns the Axes, so plots compose into a user's own figures.

- :func:`plot_frequency_histogram`: customers by repeat purchases, data against the model.
- :func:`plot_calibration_holdout`: mean holdout purchases by calibration frequency, actual and
  expected for one model or several (needs an RFM table with ``frequency_holdout``/
  ``duration_holdout``).
- :func:`plot_tracking`: cumulative or per-period repeat purchases of a cohort, actual and
  expected (:func:`clvlab.models.cumulative.expected_cumulative_purchases`).
- :func:`plot_p_alive_matrix`, :func:`plot_expected_purchases_matrix`: heat maps over frequency
  and recency for a customer of age T.
- :func:`plot_p_alive_history`: one customer's P(alive) over time, with their purchases, from
  their purchase times or from a transaction log and their id.
- :func:`plot_clv_distribution`, :func:`plot_clv_deciles`: the spread of CLV and its deciles
  (decile 1 = the top customers, as in the backtest's decile chart).
- :func:`plot_posteriors`: posterior densities of a Bayesian fit's parameters.
- :func:`model_label`: the name a legend shows for a model ("Pareto/NBD", "BG/NBD", ...).
Backtest plots are methods of :class:`~clvlab.backtesting.BacktestResult`.

Time units are never assumed: a plot takes the unit from the model, the RFM table's
``attrs["clvlab"]["time_unit"]`` or its ``time_unit`` argument. A plot that converts dates into
model time refuses to draw without one; a plot that only labels its axes says "time units".
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from clvlab.plotting.labels import (amount_words, clvlab_attrs, model_label, named_models,
                                    resolve_unit, unit_plural, unit_singular)
from clvlab.models.cumulative import expected_cumulative_purchases
from clvlab.core.errors import ClvlabError
from clvlab.core.timeunits import UNIT_SECONDS
from clvlab.data.tables import accepts_tables

__all__ = ["plot_frequency_histogram", "plot_calibration_holdout", "plot_tracking",
           "plot_p_alive_matrix", "plot_expected_purchases_matrix", "plot_p_alive_history",
           "plot_clv_distribution", "plot_clv_deciles", "plot_posteriors", "model_label"]

def _column(frame: pd.DataFrame, option: str, name: Any, source: str = "") -> Any:
    if name not in frame.columns:
        raise ClvlabError(f"{option} {name!r}{source} is not a column of the transactions; its "
                          f"columns are {list(frame.columns)}")
    return name


def axes_or_new(ax, size=(7, 4.5)):
    """The caller's axes, or the axes of a new figure (every plot takes ``ax=None``)."""
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=size)[1]


@accepts_tables(keyed=("rfm",))
def plot_frequency_histogram(model, rfm: pd.DataFrame, max_frequency: int = 7, ax=None):
    """Customers by repeat purchases in calibration: the data against the model's expectation
    for customers of the same ages (the model's new-customer distribution at each T).

    Parameters
    ----------
    model : BetaGeo, ModifiedBetaGeo, ParetoNBD or BetaGeoBetaBinom
        A fitted transaction model.
    rfm : pandas.DataFrame
        The calibration summary (``frequency``, ``T``), in the model's time unit.
    max_frequency : int, default 7
        The last bar holds the customers with this many repeat purchases or more.
    ax : matplotlib.axes.Axes, optional
        The axes to draw on; None: new ones.

    Returns
    -------
    matplotlib.axes.Axes
        The axes drawn on.

    Raises
    ------
    ClvlabError
        Where the model has no purchase distribution or the table's time unit is not the model's.
    """
    ax = axes_or_new(ax)
    if not hasattr(model, "_new_customer_pmf"):
        raise ClvlabError(f"{model_label(model)} has no purchase distribution to plot")
    # the ages T go straight into the model's distribution: a table in another unit than the
    # model's would draw a wrong expectation without a word
    resolve_unit(named_models(model, "plot_frequency_histogram"), rfm)
    ages, counts = np.unique(np.maximum(rfm["T"].to_numpy(np.float64), 1e-9), return_counts=True)
    expected = [float(counts @ np.atleast_1d(model._new_customer_pmf(n, ages)))
                for n in range(max_frequency)]
    expected.append(len(rfm) - sum(expected))
    observed = np.bincount(np.minimum(rfm["frequency"].to_numpy(np.int64), max_frequency),
                           minlength=max_frequency + 1)
    positions = np.arange(max_frequency + 1)
    ax.bar(positions - 0.2, observed, 0.4, label="data")
    ax.bar(positions + 0.2, expected, 0.4, label=model_label(model))
    ax.set_xticks(positions, [str(i) for i in range(max_frequency)] + [f"{max_frequency}+"])
    ax.set(xlabel="repeat purchases in calibration", ylabel="customers",
           title="Frequency of repeat purchases")
    ax.legend()
    return ax


_STYLES = ("s--", "^--", "D--", "v--", "P--", "X--")


@accepts_tables(keyed=("rfm",))
def plot_calibration_holdout(model, rfm: pd.DataFrame, max_frequency: int = 7, ax=None, *,
                             time_unit: str | None = None):
    """Mean holdout purchases by calibration frequency: actual against each model's conditional
    expectation (the classic calibration/holdout check).

    Parameters
    ----------
    model
        A fitted transaction model, a list of them (legends show their names, numbered when
        two would read the same) or a dict of legend label to model.
    rfm
        An RFM table with ``frequency_holdout`` and ``duration_holdout``.
    max_frequency
        Customers with this many repeat purchases or more form the last group.
    ax
        The matplotlib Axes to draw on (a new figure's when None).
    time_unit
        The unit of the holdout's length, for the axis label, when neither the models nor the
        table record one; refused when it contradicts theirs.

    Returns
    -------
    The Axes: the actual curve first, then one curve per model in the given order.
    """
    ax = axes_or_new(ax)
    models = named_models(model, "plot_calibration_holdout")
    for column in ("frequency_holdout", "duration_holdout"):
        if column not in rfm:
            raise ClvlabError(f"the RFM table has no {column!r}: build it with calibration_end")
    unit = resolve_unit(models, rfm, time_unit)
    horizon = float(rfm["duration_holdout"].iloc[0])
    group = np.minimum(rfm["frequency"].to_numpy(np.int64), max_frequency)
    table = pd.DataFrame({"group": group, "actual": rfm["frequency_holdout"].to_numpy(np.float64)})
    for i, (_, fitted) in enumerate(models):
        table[i] = fitted.expected_purchases(rfm, horizon).to_numpy()
    table = table.groupby("group").mean()
    ax.plot(table.index, table["actual"], "o-", color="black", label="actual")
    for i, (label, _) in enumerate(models):
        ax.plot(table.index, table[i], _STYLES[i % len(_STYLES)], label=label)
    ax.set_xticks(table.index, [str(i) if i < max_frequency else f"{i}+" for i in table.index])
    ax.set(xlabel="repeat purchases in calibration",
           ylabel=f"mean purchases in the holdout ({amount_words(horizon, unit)})",
           title="Calibration against holdout")
    ax.legend()
    return ax


@accepts_tables("transactions", keyed=("rfm",))
def plot_tracking(model, rfm: pd.DataFrame, transactions: pd.DataFrame, *,
                  customer_col: str | None = None, date_col: str | None = None,
                  calibration_end: Any = None, time_unit: str | None = None,
                  cumulative: bool = True, ax=None):
    """Repeat purchases of the cohort in ``rfm`` period by period (in the model's time unit):
    the log's against the model's expectation.

    Parameters
    ----------
    model
        A fitted transaction model, or a list or dict of them (as in
        :func:`plot_calibration_holdout`).
    rfm
        The cohort's RFM table; its customers are the ones tracked.
    transactions
        The transaction log (rows of one customer in one day, or hour, are one purchase, as in
        ``rfm_summary``).
    customer_col, date_col
        Columns of ``transactions``. By default the customer column the RFM table records
        (``attrs["clvlab"]["customer_col"]``, else its index name) and its date column (else
        ``"date"``).
    calibration_end
        Draws the cut at this date.
    time_unit
        The unit of the model, needed when neither the model nor the table records one;
        refused when it contradicts theirs.
    cumulative
        Cumulative purchases (default) or purchases per time unit.
    ax
        The matplotlib Axes to draw on.

    Returns
    -------
    The Axes: the actual curve, one expected curve per model
    (:func:`clvlab.models.cumulative.expected_cumulative_purchases`), and the cut.
    """
    ax = axes_or_new(ax)
    models = named_models(model, "plot_tracking")
    unit = resolve_unit(models, rfm, time_unit, required_for="plot_tracking")
    seconds = UNIT_SECONDS[unit]
    info = clvlab_attrs(rfm)
    source = ""
    if customer_col is None:
        customer_col, source = info.get("customer_col") or rfm.index.name, " (the RFM table's)"
        if customer_col is None:
            raise ClvlabError("plot_tracking needs customer_col: the RFM table records no "
                              "customer column (no attrs['clvlab']['customer_col'], no index "
                              "name); pass customer_col=, one of the log's columns "
                              f"{list(transactions.columns)}")
    _column(transactions, "customer_col", customer_col, source)
    date_col = _column(transactions, "date_col", date_col or info.get("date_col") or "date")
    log = transactions[transactions[customer_col].isin(rfm.index)]
    # calendar days in the table's zone and purchases in one merge period as one purchase, as
    # rfm_summary counts them
    zone = info.get("timezone") or "UTC"
    dates = _naive(pd.to_datetime(log[date_col]), zone).dt.floor(info.get("merge_period") or "D")
    merged = pd.DataFrame({"cid": log[customer_col].to_numpy(),
                           "day": dates.to_numpy()}).drop_duplicates()
    first = merged.groupby("cid")["day"].transform("min")
    repeat = merged[merged["day"] > first]
    start = merged["day"].min()
    # whole periods only: a last, partial one would show a false drop in the per-period curve
    days_covered = (merged["day"].max() - start).total_seconds() + 86_400
    periods = max(int(days_covered // seconds), 1)
    edges = np.arange(periods + 1, dtype=np.float64)
    actual = np.histogram((repeat["day"] - start).dt.total_seconds() / seconds, bins=edges)[0]
    birth_days = merged.groupby("cid")["day"].min()
    births = (birth_days - start).dt.total_seconds().to_numpy() / seconds
    x = edges[1:]
    ax.plot(x, np.cumsum(actual) if cumulative else actual, color="black", label="actual")
    for label, fitted in models:
        # a model with covariates sums each customer's own expectation: their attributes are
        # the RFM table's columns
        attributes = rfm.loc[birth_days.index] if hasattr(fitted, "covariates_") else None
        expected = expected_cumulative_purchases(fitted, births, x, attributes=attributes).to_numpy()
        ax.plot(x, expected if cumulative else np.diff(np.r_[0.0, expected]), "--", label=label)
    ax.set_ylabel("cumulative repeat purchases" if cumulative
                  else f"repeat purchases per {unit_singular(unit)}")
    if calibration_end is not None:
        cut = (_naive(pd.Series([pd.Timestamp(calibration_end)]), zone).iloc[0]
               - start).total_seconds() / seconds
        ax.axvline(cut, color="grey", linestyle=":", label="calibration end")
    ax.set(xlabel=f"time since the first acquisition ({unit_plural(unit)})", title="Tracking")
    ax.legend()
    return ax


def _naive(dates: pd.Series, zone: str) -> pd.Series:
    """Zoned timestamps as wall-clock times in ``zone``; naive ones are taken as already so."""
    return dates.dt.tz_convert(zone).dt.tz_localize(None) if dates.dt.tz is not None else dates


def _matrix(model, T: float, max_frequency: int, grid: int, what: str, horizon: float,
            unit: str | None):
    frequency = np.arange(1, max_frequency + 1)
    recency = np.linspace(T / grid, T, grid)
    x, t_x = np.meshgrid(frequency, recency, indexing="ij")
    rfm = pd.DataFrame({"frequency": x.ravel(), "recency": t_x.ravel(), "T": T})
    rfm.attrs = {"clvlab": {"time_unit": unit}}
    values = (model.p_alive(rfm) if what == "p_alive"
              else model.expected_purchases(rfm, horizon)).to_numpy().reshape(x.shape)
    return frequency, recency, values


def _heatmap(ax, frequency, recency, values, title, label, unit):
    image = ax.imshow(values, origin="lower", aspect="auto", cmap="viridis",
                      extent=(recency[0], recency[-1], frequency[0] - 0.5, frequency[-1] + 0.5))
    ax.figure.colorbar(image, ax=ax, label=label)
    ax.set(xlabel=f"recency (time of the last purchase, {unit_plural(unit)})",
           ylabel="repeat purchases", title=title)
    return ax


def plot_p_alive_matrix(model, T: float, max_frequency: int = 30, grid: int = 60, ax=None, *,
                        time_unit: str | None = None):
    """P(alive) of a customer of age ``T`` (in the model's time unit, or ``time_unit`` when
    it records none) for every frequency and recency.

    Parameters
    ----------
    model : BetaGeo, ModifiedBetaGeo or ParetoNBD
        A fitted transaction model (without covariates).
    T : float
        The customers' age, in the model's time unit.
    max_frequency : int, default 30
        Frequencies 1..max_frequency.
    grid : int, default 60
        Recencies on a grid of this many points in (0, T].
    ax : matplotlib.axes.Axes, optional
        The axes to draw on; None: new ones.
    time_unit : str, optional
        The model's time unit, for a model that records none.

    Returns
    -------
    matplotlib.axes.Axes
        The axes drawn on.
    """
    ax = axes_or_new(ax)
    unit = resolve_unit(named_models(model, "plot_p_alive_matrix"), None, time_unit)
    frequency, recency, values = _matrix(model, T, max_frequency, grid, "p_alive", 0.0, unit)
    return _heatmap(ax, frequency, recency, values, f"P(alive) at age T = {amount_words(T, unit)}",
                    "P(alive)", unit)


def plot_expected_purchases_matrix(model, T: float, horizon: float, max_frequency: int = 30,
                                   grid: int = 60, ax=None, *, time_unit: str | None = None):
    """Expected purchases in the next ``horizon`` for every frequency and recency at age T
    (both in the model's time unit, or ``time_unit`` when it records none).

    Parameters
    ----------
    model : BetaGeo, ModifiedBetaGeo or ParetoNBD
        A fitted transaction model (without covariates).
    T : float
        The customers' age, in the model's time unit.
    horizon : float
        The window after T, in the model's time unit.
    max_frequency : int, default 30
        Frequencies 1..max_frequency.
    grid : int, default 60
        Recencies on a grid of this many points in (0, T].
    ax : matplotlib.axes.Axes, optional
        The axes to draw on; None: new ones.
    time_unit : str, optional
        The model's time unit, for a model that records none.

    Returns
    -------
    matplotlib.axes.Axes
        The axes drawn on.
    """
    ax = axes_or_new(ax)
    unit = resolve_unit(named_models(model, "plot_expected_purchases_matrix"), None, time_unit)
    frequency, recency, values = _matrix(model, T, max_frequency, grid, "expected", horizon, unit)
    return _heatmap(ax, frequency, recency, values,
                    f"Expected purchases in the next {amount_words(horizon, unit)} at age "
                    f"T = {amount_words(T, unit)}", "expected purchases", unit)


def plot_p_alive_history(model, purchase_times=None, until: Any = None, points: int = 200,
                         ax=None, *, customer_id: Any = None, customer_col: str = "customer_id",
                         date_col: str = "date", merge_period: str = "D",
                         time_unit: str | None = None):
    """One customer's P(alive) from their first purchase to ``until``, with their purchases.

    Parameters
    ----------
    model
        A fitted transaction model.
    purchase_times
        Either the customer's purchase times in the model's time unit since their first
        purchase (starting with 0, the first purchase), or a transaction log (a DataFrame),
        whose rows of ``customer_id`` are taken (all rows when ``customer_id`` is None), as
        lifetimes' ``plot_history_alive``.
    until
        The end of the curve: with times, a number of time units since the first purchase
        (required); with a log, that or a date, by default the log's last date. Purchases
        after a date ``until`` are left out (P(alive) as it was known then).
    points
        Points of the curve (the purchase moments are added).
    ax
        The matplotlib Axes to draw on.
    customer_id, customer_col, date_col
        With a log: the customer and the log's columns.
    merge_period
        With a log: purchases in one calendar day ("D") or hour ("h") are one, as in
        ``rfm_summary``.
    time_unit
        The model's unit when it records none (needed with a log, to convert dates);
        refused when it contradicts the model's.

    Returns
    -------
    The Axes: the P(alive) curve first, then a dotted line at each purchase.
    """
    ax = axes_or_new(ax)
    what = "plot_p_alive_history from a transaction log"
    is_log = isinstance(purchase_times, pd.DataFrame)
    unit = resolve_unit([(model_label(model), model)], None, time_unit,
                         required_for=what if is_log else None)
    title = "P(alive) history (dotted: purchases)"
    if is_log:
        times, until, first = _history_from_log(purchase_times, customer_id, customer_col,
                                                date_col, merge_period, until, unit)
        who = "" if customer_id is None else f" of customer {customer_id}"
        title = f"P(alive){who} from {first:%Y-%m-%d} (dotted: purchases)"
    else:
        times = np.sort(np.asarray(purchase_times, dtype=np.float64))
    if until is None:
        raise ClvlabError("plot_p_alive_history needs until, the end of the curve in time units "
                          "since the first purchase (e.g. until=52)")
    until = float(until)
    if times.size == 0 or times[0] != 0 or until < times[-1]:
        raise ClvlabError("purchase_times must start at 0 (the first purchase) and end by until; "
                          f"got {times[:5].tolist()} and until={until:g}")
    grid = np.union1d(np.linspace(0, until, points)[1:], times[1:])
    frequency = np.searchsorted(times, grid, side="right") - 1
    recency = times[frequency]
    rfm = pd.DataFrame({"frequency": frequency, "recency": recency, "T": grid})
    rfm.attrs = {"clvlab": {"time_unit": unit}}
    ax.plot(grid, model.p_alive(rfm).to_numpy(), label="P(alive)")
    for moment in times:
        ax.axvline(moment, color="grey", linestyle=":", linewidth=1)
    ax.set(xlabel=f"time since the first purchase ({unit_plural(unit)})", ylabel="P(alive)",
           ylim=(0, 1.05), title=title)
    return ax


def _history_from_log(log: pd.DataFrame, customer_id, customer_col, date_col, merge_period,
                      until, unit):
    """A customer's purchase times (time units since their first), ``until`` in the same
    clock, and the first purchase's date."""
    _column(log, "date_col", date_col)
    rows = log
    if customer_id is None and customer_col in log.columns and log[customer_col].nunique() > 1:
        # the purchases of several customers merged into one history would be nobody's
        raise ClvlabError(f"the log holds {log[customer_col].nunique():,} customers in "
                          f"{customer_col!r}; pass customer_id= (e.g. "
                          f"customer_id={log[customer_col].iloc[0]!r})")
    if customer_id is not None:
        ids = log[_column(log, "customer_col", customer_col)]
        rows = log[ids == customer_id]
        if rows.empty:
            example = ids.iloc[0] if len(ids) else None
            raise ClvlabError(f"customer_id {customer_id!r} is not in the {customer_col!r} "
                              f"column of the transactions (e.g. {example!r})")
    if rows.empty:
        raise ClvlabError("the transaction log is empty: there is no purchase to plot")
    if merge_period not in ("D", "h"):
        raise ClvlabError(f"merge_period {merge_period!r} is not supported; use 'D' or 'h'")
    dates = pd.DatetimeIndex(pd.to_datetime(rows[date_col])).floor(merge_period)
    dates = dates.unique().sort_values()
    first = dates[0]
    seconds = float(UNIT_SECONDS[unit])

    def since_first(moment) -> float:
        return (moment - first).total_seconds() / seconds

    if until is None:
        until = since_first(pd.Timestamp(pd.to_datetime(log[date_col]).max()))
    elif not isinstance(until, (int, float, np.integer, np.floating)):
        moment = pd.Timestamp(until)
        if moment.tzinfo is None and first.tzinfo is not None:
            moment = moment.tz_localize(first.tzinfo)  # a naive date in the log's own zone
        dates = dates[dates <= moment]  # what was known at that date
        if dates.empty:
            raise ClvlabError(f"until={until!r} is before the customer's first purchase ({first})")
        until = since_first(moment)
    times = np.asarray([since_first(moment) for moment in dates], dtype=np.float64)
    return times, until, first


def plot_clv_distribution(clv: pd.Series, bins: int = 50, ax=None):
    """Histogram of CLV on a log scale (customers valued 0 or unknown (NaN) are counted in the
    title; the lowest 0.5% of positive values go into the first bar, so that a few near-zero
    values do not stretch the axis over decades nobody is in).

    Parameters
    ----------
    clv : pandas.Series or array-like
        Each customer's CLV.
    bins : int, default 50
        Bars, on a log scale.
    ax : matplotlib.axes.Axes, optional
        The axes to draw on; None: new ones.

    Returns
    -------
    matplotlib.axes.Axes
        The axes drawn on.

    Raises
    ------
    ClvlabError
        Where no customer has a positive CLV.
    """
    ax = axes_or_new(ax)
    values = np.asarray(clv, dtype=np.float64)
    positive = values[values > 0]
    if positive.size == 0:
        raise ClvlabError("no customer has a positive CLV to plot")
    low, high = np.quantile(positive, 0.005), positive.max()
    edges = np.logspace(np.log10(low), np.log10(high), bins + 1) if high > low \
        else np.array([low / 1.1, high * 1.1])
    ax.hist(np.clip(positive, edges[0], None), bins=edges)
    ax.set_xscale("log")
    # an unknown CLV (NaN: no spend model, an unvalued customer) is neither 0 nor drawn
    unknown = int(np.isnan(values).sum())
    note = f", {unknown:,} unknown" if unknown else ""
    ax.set(xlabel="CLV", ylabel="customers",
           title=f"CLV of {values.size:,} customers ({(values <= 0).sum():,} at 0{note})")
    return ax


def plot_clv_deciles(clv: pd.Series, actual: pd.Series | None = None, ax=None):
    """Share of the total CLV in each decile of customers ranked by CLV (and, with ``actual``,
    the share of realised value those customers brought).

    Parameters
    ----------
    clv : pandas.Series or array-like
        Each customer's predicted CLV.
    actual : pandas.Series or array-like, optional
        Each customer's realised value, in the same order.
    ax : matplotlib.axes.Axes, optional
        The axes to draw on; None: new ones.

    Returns
    -------
    matplotlib.axes.Axes
        The axes drawn on.
    """
    ax = axes_or_new(ax)
    values = pd.Series(np.asarray(clv, dtype=np.float64))
    # decile 1 holds the top customers, as in BacktestResult.plot_deciles: one orientation
    decile = pd.qcut(values.rank(method="first", ascending=False), 10, labels=False) + 1
    share = values.groupby(decile).sum() / values.sum()
    positions = np.arange(1, 11)
    width = 0.4 if actual is not None else 0.8
    ax.bar(positions - (0.2 if actual is not None else 0), share.reindex(positions, fill_value=0),
           width, label="predicted CLV")
    if actual is not None:
        realised = pd.Series(np.asarray(actual, dtype=np.float64))
        ax.bar(positions + 0.2, (realised.groupby(decile).sum() / realised.sum())
               .reindex(positions, fill_value=0), width, label="realised value")
        ax.legend()
    ax.set_xticks(positions)
    ax.set(xlabel="decile of customers by CLV (1 = highest)", ylabel="share of the total",
           title="CLV by decile")
    return ax


def plot_posteriors(model, ax=None):
    """Posterior densities of every parameter of a Bayesian fit (one axis per parameter; ``ax``
    may be an array of axes). Returns the axes.

    Parameters
    ----------
    model : BaseModel
        A model fitted with ``method="nuts"`` or ``"advi"``.
    ax : matplotlib.axes.Axes or array of Axes, optional
        One axis per parameter; None: a new row of them.

    Returns
    -------
    numpy.ndarray
        The axes drawn on.

    Raises
    ------
    ClvlabError
        Where the model has no posterior.
    """
    idata = getattr(model, "idata_", None)
    if idata is None:
        raise ClvlabError(f"this {model_label(model)} has no posterior: fit it with "
                          "method='nuts' or 'advi'")
    from scipy import stats

    names = list(model.param_names)
    if ax is None:
        import matplotlib.pyplot as plt

        ax = plt.subplots(1, len(names), figsize=(3.2 * len(names), 3))[1]
    axes = np.atleast_1d(ax)
    for axis, name in zip(axes, names):
        draws = idata.posterior[name].to_numpy().ravel()
        grid = np.linspace(*np.quantile(draws, [0.001, 0.999]), 200)
        axis.plot(grid, stats.gaussian_kde(draws)(grid))
        axis.axvline(float(np.mean(draws)), color="grey", linestyle=":")
        axis.set(title=name, yticks=[])
    return axes
