"""Pictures of uncertainty: a cohort's fan chart, and one customer's predictive distribution.

- :func:`plot_fan_chart`: the cohort's cumulative purchases after the calibration end, the
  expected path and central intervals at several levels (``cumulative_purchase_fan``), with
  the actual path when known.
- :func:`plot_predictive_distribution`: one customer's PMF of purchases over a horizon, as
  bars, with the expected value, the interval of that *mean* over the parameters' uncertainty
  (narrow), and the prediction interval of the *count* (wide): the difference between "how
  sure are we of the customer's expected purchases" and "how many will the customer make".

Both draw on ``ax`` (a new figure's axes when None) and return the Axes.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from clvlab.core.errors import ClvlabError
from clvlab.models import totals_moments
from clvlab.models.table_units import checked, table_in_model_unit
from clvlab.models.totals_distribution import pmf_quantiles
from clvlab.models.transaction import check_horizon
from clvlab.plotting.labels import amount_words, model_label, unit_plural

__all__ = ["plot_fan_chart", "plot_predictive_distribution"]


def _axes(ax, size=(7, 4.5)):
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=size)[1]


def plot_fan_chart(fan: pd.DataFrame, actual: Any = None, ax=None):
    """A fan chart of a cohort's cumulative purchases after the calibration end.

    Parameters
    ----------
    fan : pandas.DataFrame
        ``clvlab.models.totals.cumulative_purchase_fan``'s result: indexed by time, with
        ``expected`` and ``lower <l>%``/``upper <l>%`` columns.
    actual : array-like or pandas.Series, optional
        The cohort's actual cumulative purchases at the fan's times (a Series indexed by time
        is matched to them).
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.axes.Axes

    Raises
    ------
    ClvlabError
        When ``fan`` lacks the columns, or ``actual`` does not match its times.
    """
    levels = sorted({float(c.split()[1].rstrip("%")) for c in fan.columns
                     if c.startswith("lower ")}, reverse=True)
    if "expected" not in fan.columns or not levels:
        raise ClvlabError("plot_fan_chart takes cumulative_purchase_fan's table (columns "
                          f"'expected', 'lower <l>%', 'upper <l>%'); got columns {list(fan.columns)}")
    ax = _axes(ax)
    times = fan.index.to_numpy(np.float64)
    unit = fan.attrs.get("time_unit")
    for i, level in enumerate(levels):  # widest first, palest
        ax.fill_between(times, fan[f"lower {level:g}%"], fan[f"upper {level:g}%"],
                        color="C0", alpha=0.15 + 0.2 * i, linewidth=0,
                        label=f"{level:g}% interval")
    ax.plot(times, fan["expected"], color="C0", linewidth=2, label="expected")
    if actual is not None:
        values = _actual_at(actual, fan.index)
        ax.plot(times, values, color="black", marker="o", markersize=3, linewidth=1,
                label="actual")
    ax.set_xlabel(f"time since the calibration end ({unit_plural(unit)})")
    ax.set_ylabel("cumulative purchases of the cohort (count)")
    customers = fan.attrs.get("customers")
    ax.set_title("Cohort purchases after the calibration end"
                 + (f" ({customers:,} customers)" if customers else ""))
    ax.set_ylim(bottom=0)
    ax.legend(loc="upper left", frameon=False)
    return ax


def _actual_at(actual: Any, times: pd.Index) -> np.ndarray:
    if isinstance(actual, pd.Series):
        matched = actual.reindex(times)
        if matched.isna().any():
            raise ClvlabError("actual, a Series, must hold a value at each of the fan's times "
                              f"{list(times)}; it is indexed {list(actual.index)[:10]}")
        return matched.to_numpy(np.float64)
    values = np.asarray(actual, dtype=np.float64)
    if values.shape != (len(times),):
        raise ClvlabError(f"actual must give one value per time of the fan ({len(times)}), "
                          f"got shape {values.shape}")
    return values


def plot_predictive_distribution(model, rfm_row, t: float, ax=None, *, level: float = 0.9,
                                 parameter_draws: Any = None, seed: Any = 0,
                                 time_unit: str | None = None):
    """One customer's predictive distribution of purchases in (T, T + t], with its two
    intervals.

    Bars: P(N = n), the PMF given the history, averaged over the parameter draws (process and
    parameter uncertainty); those inside the prediction interval are coloured. Marked: the
    expected value (a line); the ``level`` interval of the expected value over the parameter
    draws (a band: the uncertainty of a mean, what ``posterior_predict`` reports); and the
    ``level`` prediction interval of the count itself (a bar above the PMF, from its
    quantiles: where the customer's purchases will fall).

    Parameters
    ----------
    model : a fitted transaction model
    rfm_row : pandas.DataFrame or pandas.Series
        One customer: ``rfm.loc[[customer_id]]`` (a one-row table keeps the table's time
        unit) or ``rfm.loc[customer_id]`` with ``time_unit``.
    t : float
        The horizon, in the model's time unit.
    ax : matplotlib Axes, optional
    level : float
        Both intervals' level.
    parameter_draws, seed
        As in ``clvlab.models.totals.purchase_totals`` (0: the estimates only, so the
        interval of the mean is a point).
    time_unit : str, optional
        The row's time unit when it records none.

    Returns
    -------
    matplotlib.axes.Axes

    Raises
    ------
    ClvlabError
        When ``rfm_row`` is not one customer, or as the predictions raise.
    """
    if isinstance(rfm_row, pd.Series):
        row = rfm_row.to_frame().T.infer_objects()
    elif isinstance(rfm_row, pd.DataFrame) and len(rfm_row) == 1:
        row = rfm_row
    else:
        raise ClvlabError("rfm_row must be one customer: rfm.loc[[customer_id]] (a one-row "
                          f"table) or rfm.loc[customer_id]; got {type(rfm_row).__name__}"
                          + (f" of {len(rfm_row)} rows" if hasattr(rfm_row, "__len__") else ""))
    if not 0 < level < 1:
        raise ClvlabError(f"level must be between 0 and 1, got {level!r}")
    horizon = float(check_horizon(t))
    row = table_in_model_unit(model, row, time_unit)
    at_draws = totals_moments.models_at_draws([model], parameter_draws, seed)
    with checked():
        pmfs = [totals_moments.purchase_pmf(at[0], row, horizon)[0] for at in at_draws]
        means = np.array([totals_moments.purchase_moments(at[0], row, horizon)[0][0]
                          for at in at_draws])
    width = max(len(p) for p in pmfs)
    pmf = np.mean([np.pad(p, (0, width - len(p))) for p in pmfs], axis=0)
    low_q, high_q = (1 - level) / 2, (1 + level) / 2
    low, high = pmf_quantiles(pmf, [low_q, high_q])[:, 0]
    mean_low, mean_high = np.quantile(means, [low_q, high_q])
    expected = float(means.mean())
    shown = int(max(high + 2, np.ceil(expected) + 2,
                    np.searchsorted(np.cumsum(pmf), 0.999) + 1))
    n = np.arange(min(shown, len(pmf)))
    ax = _axes(ax)
    inside = (n >= low) & (n <= high)
    heights = pmf[:len(n)]
    ax.bar(n, heights, color=np.where(inside, "C0", "lightgray"), width=0.8,
           label="P(n purchases), the parameters' uncertainty included")
    top = 1.08 * float(heights.max())
    ax.plot([low - 0.4, high + 0.4], [top, top], color="C0", linewidth=3,
            solid_capstyle="butt",
            label=f"{100 * level:g}% prediction interval of the count: {low}-{high}")
    ax.axvspan(mean_low, mean_high, color="C3", alpha=0.25,
               label=f"{100 * level:g}% interval of the expected value: "
                     f"{mean_low:.2f}-{mean_high:.2f}")
    ax.axvline(expected, color="C3", linewidth=2, label=f"expected purchases {expected:.2f}")
    ax.set_ylim(0, 1.75 * float(heights.max()))  # room for the legend above the bars
    unit = getattr(model, "time_unit_", None)
    ax.set_xlabel(f"purchases in the next {amount_words(horizon, unit)} (count)")
    ax.set_ylabel("probability")
    who = row.index[0]
    history = ", ".join(f"{c} {row[c].iloc[0]:.3g}" for c in ("frequency", "recency", "T")
                        if c in row.columns)
    ax.set_title(f"{model_label(model)}: customer {who} ({history})")
    ax.set_xticks(n if len(n) <= 20 else n[::max(len(n) // 10, 1)])
    ax.legend(loc="upper right", frameon=False, fontsize="small")
    return ax
