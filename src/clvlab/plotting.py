"""Diagnostic plots (matplotlib). Every function draws on ``ax`` (a new figure's axes when
None) and returns the Axes, so plots compose into a user's own figures.

- :func:`plot_frequency_histogram`: customers by repeat purchases, data against the model.
- :func:`plot_calibration_holdout`: mean holdout purchases by calibration frequency, actual and
  expected (needs an RFM table with ``frequency_holdout``/``duration_holdout``).
- :func:`plot_tracking`: cumulative or weekly repeat purchases of a cohort, actual and expected.
- :func:`plot_p_alive_matrix`, :func:`plot_expected_purchases_matrix`: heat maps over frequency
  and recency for a customer of age T.
- :func:`plot_p_alive_history`: one customer's P(alive) over time, with their purchases.
- :func:`plot_clv_distribution`, :func:`plot_clv_deciles`: the spread of CLV and its deciles.
- :func:`plot_posteriors`: posterior densities of a Bayesian fit's parameters.
Backtest plots are methods of :class:`~clvlab.backtesting.BacktestResult`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .errors import ClvlabError

__all__ = ["plot_frequency_histogram", "plot_calibration_holdout", "plot_tracking",
           "plot_p_alive_matrix", "plot_expected_purchases_matrix", "plot_p_alive_history",
           "plot_clv_distribution", "plot_clv_deciles", "plot_posteriors"]


def _axes(ax, size=(7, 4.5)):
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=size)[1]


def plot_frequency_histogram(model, rfm: pd.DataFrame, max_frequency: int = 7, ax=None):
    """Customers by repeat purchases in calibration: the data against the model's expectation
    for customers of the same ages (the model's new-customer distribution at each T)."""
    ax = _axes(ax)
    if not hasattr(model, "_new_customer_pmf"):
        raise ClvlabError(f"{type(model).__name__} has no purchase distribution to plot")
    ages, counts = np.unique(np.maximum(rfm["T"].to_numpy(np.float64), 1e-9), return_counts=True)
    expected = [float(counts @ np.atleast_1d(model._new_customer_pmf(n, ages)))
                for n in range(max_frequency)]
    expected.append(len(rfm) - sum(expected))
    observed = np.bincount(np.minimum(rfm["frequency"].to_numpy(np.int64), max_frequency),
                           minlength=max_frequency + 1)
    positions = np.arange(max_frequency + 1)
    ax.bar(positions - 0.2, observed, 0.4, label="data")
    ax.bar(positions + 0.2, expected, 0.4, label=type(model).__name__)
    ax.set_xticks(positions, [str(i) for i in range(max_frequency)] + [f"{max_frequency}+"])
    ax.set(xlabel="repeat purchases in calibration", ylabel="customers",
           title="Frequency of repeat purchases")
    ax.legend()
    return ax


def plot_calibration_holdout(model, rfm: pd.DataFrame, max_frequency: int = 7, ax=None):
    """Mean holdout purchases by calibration frequency: actual against the model's conditional
    expectation (the classic calibration/holdout check)."""
    ax = _axes(ax)
    for column in ("frequency_holdout", "duration_holdout"):
        if column not in rfm:
            raise ClvlabError(f"the RFM table has no {column!r}: build it with calibration_end")
    horizon = float(rfm["duration_holdout"].iloc[0])
    expected = model.expected_purchases(rfm, horizon)
    group = np.minimum(rfm["frequency"].to_numpy(np.int64), max_frequency)
    table = pd.DataFrame({"group": group, "actual": rfm["frequency_holdout"].to_numpy(np.float64),
                          "expected": expected.to_numpy()}).groupby("group").mean()
    ax.plot(table.index, table["actual"], "o-", label="actual")
    ax.plot(table.index, table["expected"], "s--", label=type(model).__name__)
    ax.set_xticks(table.index, [str(i) if i < max_frequency else f"{i}+" for i in table.index])
    ax.set(xlabel="repeat purchases in calibration",
           ylabel=f"mean purchases in the holdout ({horizon:g})",
           title="Calibration against holdout")
    ax.legend()
    return ax


def plot_tracking(model, rfm: pd.DataFrame, transactions: pd.DataFrame, *, customer_col: str =
                  "customer_id", date_col: str = "date", calibration_end: Any = None,
                  time_unit: str | None = None, cumulative: bool = True, ax=None):
    """Repeat purchases of the cohort in ``rfm`` week by week (in the model's time unit): the
    log's against the model's expectation (each customer from their first purchase, summed).
    ``transactions`` is the merged log, one row per customer and day, e.g. the log itself
    when it has one purchase a day; ``calibration_end`` draws the cut."""
    from .timeunits import UNIT_SECONDS, normalize_time_unit

    ax = _axes(ax)
    unit = normalize_time_unit(time_unit or getattr(model, "time_unit_", None) or "W")
    seconds = UNIT_SECONDS[unit]
    log = transactions[transactions[customer_col].isin(rfm.index)]
    dates = pd.to_datetime(log[date_col]).dt.floor("D")
    merged = pd.DataFrame({"cid": log[customer_col].to_numpy(), "day": dates.to_numpy()}).drop_duplicates()
    first = merged.groupby("cid")["day"].transform("min")
    repeat = merged[merged["day"] > first]
    start = merged["day"].min()
    # whole periods only: a last, partial one would show a false drop in the weekly curve
    days_covered = (merged["day"].max() - start).total_seconds() + 86_400
    periods = max(int(days_covered // seconds), 1)
    edges = np.arange(periods + 1, dtype=np.float64)
    actual = np.histogram((repeat["day"] - start).dt.total_seconds() / seconds, bins=edges)[0]
    births = (merged.groupby("cid")["day"].min() - start).dt.total_seconds().to_numpy() / seconds
    expected_cum = np.array([_expected_cohort(model, births, t) for t in edges[1:]])
    expected = np.diff(np.r_[0.0, expected_cum])
    x = edges[1:]
    if cumulative:
        ax.plot(x, np.cumsum(actual), label="actual")
        ax.plot(x, expected_cum, "--", label=type(model).__name__)
        ax.set_ylabel("cumulative repeat purchases")
    else:
        ax.plot(x, actual, label="actual")
        ax.plot(x, expected, "--", label=type(model).__name__)
        ax.set_ylabel(f"repeat purchases per {unit}")
    if calibration_end is not None:
        cut = (pd.Timestamp(calibration_end) - start).total_seconds() / seconds
        ax.axvline(cut, color="grey", linestyle=":", label="calibration end")
    ax.set(xlabel=f"time since the first acquisition ({unit})", title="Tracking")
    ax.legend()
    return ax


def _expected_cohort(model, births: np.ndarray, t: float) -> float:
    ages, counts = np.unique(np.maximum(t - births, 0.0), return_counts=True)
    alive = ages > 0
    if not alive.any():
        return 0.0
    return float(counts[alive] @ np.atleast_1d(model.expected_purchases_new_customer(ages[alive])))


def _matrix(model, T: float, max_frequency: int, grid: int, what: str, horizon: float):
    frequency = np.arange(1, max_frequency + 1)
    recency = np.linspace(T / grid, T, grid)
    x, t_x = np.meshgrid(frequency, recency, indexing="ij")
    rfm = pd.DataFrame({"frequency": x.ravel(), "recency": t_x.ravel(), "T": T})
    rfm.attrs = {"clvlab": {"time_unit": getattr(model, "time_unit_", None)}}
    values = (model.p_alive(rfm) if what == "p_alive"
              else model.expected_purchases(rfm, horizon)).to_numpy().reshape(x.shape)
    return frequency, recency, values


def _heatmap(ax, frequency, recency, values, title, label):
    image = ax.imshow(values, origin="lower", aspect="auto", cmap="viridis",
                      extent=(recency[0], recency[-1], frequency[0] - 0.5, frequency[-1] + 0.5))
    ax.figure.colorbar(image, ax=ax, label=label)
    ax.set(xlabel="recency (time of the last purchase)", ylabel="repeat purchases", title=title)
    return ax


def plot_p_alive_matrix(model, T: float, max_frequency: int = 30, grid: int = 60, ax=None):
    """P(alive) of a customer of age ``T`` for every frequency and recency."""
    ax = _axes(ax)
    frequency, recency, values = _matrix(model, T, max_frequency, grid, "p_alive", 0.0)
    return _heatmap(ax, frequency, recency, values, f"P(alive) at age T = {T:g}", "P(alive)")


def plot_expected_purchases_matrix(model, T: float, horizon: float, max_frequency: int = 30,
                                   grid: int = 60, ax=None):
    """Expected purchases in the next ``horizon`` for every frequency and recency at age T."""
    ax = _axes(ax)
    frequency, recency, values = _matrix(model, T, max_frequency, grid, "expected", horizon)
    return _heatmap(ax, frequency, recency, values,
                    f"Expected purchases in {horizon:g} at age T = {T:g}", "expected purchases")


def plot_p_alive_history(model, purchase_times, until: float, points: int = 200, ax=None):
    """One customer's P(alive) from their first purchase to ``until`` (times in the model's time
    unit since the first purchase; ``purchase_times`` includes 0, the first purchase)."""
    ax = _axes(ax)
    times = np.sort(np.asarray(purchase_times, dtype=np.float64))
    if times.size == 0 or times[0] != 0 or until <= times[-1]:
        raise ClvlabError("purchase_times must start at 0 (the first purchase) and end before until")
    grid = np.union1d(np.linspace(0, until, points)[1:], times[1:])
    frequency = np.searchsorted(times, grid, side="right") - 1
    recency = times[frequency]
    rfm = pd.DataFrame({"frequency": frequency, "recency": recency, "T": grid})
    rfm.attrs = {"clvlab": {"time_unit": getattr(model, "time_unit_", None)}}
    ax.plot(grid, model.p_alive(rfm).to_numpy(), label="P(alive)")
    for moment in times:
        ax.axvline(moment, color="grey", linestyle=":", linewidth=1)
    ax.set(xlabel="time since the first purchase", ylabel="P(alive)", ylim=(0, 1.05),
           title="P(alive) history (dotted: purchases)")
    return ax


def plot_clv_distribution(clv: pd.Series, bins: int = 50, ax=None):
    """Histogram of CLV on a log scale (customers valued 0 are counted in the title; the
    lowest 0.5% of positive values go into the first bar, so that a few near-zero values do
    not stretch the axis over decades nobody is in)."""
    ax = _axes(ax)
    values = np.asarray(clv, dtype=np.float64)
    positive = values[values > 0]
    if positive.size == 0:
        raise ClvlabError("no customer has a positive CLV to plot")
    low, high = np.quantile(positive, 0.005), positive.max()
    edges = np.logspace(np.log10(low), np.log10(high), bins + 1) if high > low \
        else np.array([low / 1.1, high * 1.1])
    ax.hist(np.clip(positive, edges[0], None), bins=edges)
    ax.set_xscale("log")
    ax.set(xlabel="CLV", ylabel="customers",
           title=f"CLV of {values.size:,} customers ({(values <= 0).sum():,} at 0)")
    return ax


def plot_clv_deciles(clv: pd.Series, actual: pd.Series | None = None, ax=None):
    """Share of the total CLV in each decile of customers ranked by CLV (and, with ``actual``,
    the share of realised value those customers brought)."""
    ax = _axes(ax)
    values = pd.Series(np.asarray(clv, dtype=np.float64))
    decile = pd.qcut(values.rank(method="first"), 10, labels=False) + 1
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
    ax.set(xlabel="decile of customers by CLV (10 = highest)", ylabel="share of the total",
           title="CLV by decile")
    return ax


def plot_posteriors(model, ax=None):
    """Posterior densities of every parameter of a Bayesian fit (one axis per parameter; ``ax``
    may be an array of axes). Returns the axes."""
    idata = getattr(model, "idata_", None)
    if idata is None:
        raise ClvlabError(f"this {type(model).__name__} has no posterior: fit it with "
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
