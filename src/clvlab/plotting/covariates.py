"""Plots of covariate models and of customer segments (matplotlib, imported only when drawn).

- :func:`plot_coefficients`: a forest plot of a covariate model's coefficients, each with its
  interval from ``model.summary(level)``, grouped by the process it moves, with a line at 0.
- :func:`plot_segments`: P(alive) and expected purchases over a horizon, segment by segment
  (any column of the RFM table, or a Series beside it), as box plots of the customers'
  values or as mean bars with their confidence intervals.

Like the diagnostics, every function draws on ``ax`` (new axes when None) and returns it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from clvlab.core.errors import ClvlabError
from clvlab.plotting.diagnostics import axes_or_new
from clvlab.plotting.labels import amount_words, model_label, named_models, resolve_unit
from clvlab.data.tables import accepts_tables

__all__ = ["plot_coefficients", "plot_segments"]

# What a positive coefficient means in each process (the sign convention of every model), so
# that a reader of the plot does not have to look it up.
_PROCESS_WORDS = {"purchase": "purchase (+ = more purchasing)",
                  "dropout": "dropout (+ = faster dropout)",
                  "spend": "spend (+ = more spend)",
                  "shared": "shared by purchase and dropout"}
_MAX_SEGMENTS = 30


def plot_coefficients(model, level: float = 0.95, ax=None):
    """A forest plot of a fitted covariate model's coefficients.

    Parameters
    ----------
    model
        A model fitted with covariates (``purchase_covariates``, ``dropout_covariates``,
        ``spend_covariates``).
    level
        The level of the intervals, as in ``model.summary(level)``.
    ax
        The matplotlib Axes to draw on (a new figure's when None).

    Returns
    -------
    The Axes: one error bar series per process (points at the estimates, bars from the
    summary's lower to upper bound), labelled in the legend, and a vertical line at 0.
    Coefficients read from top to bottom in the summary's order, one group per process.
    """
    if not hasattr(model, "params_"):
        raise ClvlabError(f"this {model_label(model)} is not fitted: fit it with covariates first")
    design = getattr(model, "covariates_", None)
    if design is None:
        raise ClvlabError(f"this {model_label(model)} has no covariates, so there are no "
                          "coefficients to plot: fit it with purchase_covariates=, "
                          "dropout_covariates= or spend_covariates=")
    table = model.summary(level)
    pct = f"{100 * level:g}%"
    lower, upper = f"lower {pct}", f"upper {pct}"
    missing = [c for c in ("estimate", lower, upper) if c not in table.columns]
    if missing:
        raise ClvlabError(f"the summary of this {model_label(model)} has no {missing} columns "
                          f"(it has {list(table.columns)}): no intervals to plot")
    names = list(design.coefficient_names)
    rows = table.loc[names]
    processes = list(dict.fromkeys(name.split(".", 1)[0] for name in names))
    own_figure = ax is None
    ax = axes_or_new(ax, size=(7, 1.5 + 0.4 * (len(names) + len(processes))))
    if own_figure:  # long covariate names ("channel[web]") stay inside the figure
        ax.figure.set_layout_engine("constrained")
    # top to bottom in the summary's order, with an empty row between processes
    position, ticks, labels = 0.0, [], []
    for process in processes:
        members = [name for name in names if name.split(".", 1)[0] == process]
        y = -(position + np.arange(len(members)))
        estimate = rows.loc[members, "estimate"].to_numpy(np.float64)
        spread = np.vstack([estimate - rows.loc[members, lower].to_numpy(np.float64),
                            rows.loc[members, upper].to_numpy(np.float64) - estimate])
        ax.errorbar(estimate, y, xerr=spread, fmt="o", capsize=3,
                    label=_PROCESS_WORDS.get(process, process))
        ticks.extend(y)
        labels.extend(name.split(".", 1)[1] for name in members)
        position += len(members) + 1
    ax.axvline(0.0, color="grey", linestyle="--", linewidth=1)
    ax.set_yticks(ticks, labels)
    ax.set_ylim(-(position - 1) + 0.5, 0.5)
    ax.set(xlabel=f"coefficient (points: estimates; bars: {pct} intervals)",
           title=f"{model_label(model)} covariate coefficients")
    ax.legend(loc="best", fontsize="small")
    return ax


@accepts_tables(keyed=("rfm",))
def plot_segments(model, rfm: pd.DataFrame, segment: Any, horizon: float, *,
                  kind: str = "box", level: float = 0.95, ax=None):
    """P(alive) and expected purchases in the next ``horizon``, segment by segment.

    Parameters
    ----------
    model
        A fitted transaction model (with or without covariates): it needs ``p_alive`` and
        ``expected_purchases``.
    rfm
        The customers' RFM table (with the model's covariate columns, if it has any).
    segment
        The name of a column of ``rfm``, or a Series on the table's index (or an array with
        one value per row) giving each customer's segment. At most 30 segments: bin a
        continuous column first (``pd.cut``).
    horizon
        The horizon of the expected purchases, in the model's time unit.
    kind
        "box": the distribution of the customers' values in each segment (quartiles,
        whiskers at 1.5 IQR, no outlier points, a marker at the mean); "mean": each
        segment's mean as a bar with its confidence interval at ``level``
        (mean +/- z sd / sqrt(n)).
    level
        The level of the intervals with ``kind="mean"``.
    ax
        Two matplotlib Axes (P(alive), then expected purchases); a new figure's when None.

    Returns
    -------
    The two Axes. Segments are in sorted order (a categorical's own order), each labelled
    with its number of customers.
    """
    if kind not in ("box", "mean"):
        raise ClvlabError(f"kind must be 'box' or 'mean', got {kind!r}")
    if not (hasattr(model, "p_alive") and hasattr(model, "expected_purchases")):
        raise ClvlabError(f"{model_label(model)} is not a transaction model: it has no p_alive "
                          "and expected_purchases to plot by segment")
    if not 0 < level < 1:
        raise ClvlabError(f"level must be between 0 and 1, got {level!r}")
    labels = _segments(rfm, segment)
    unit = resolve_unit(named_models(model, "plot_segments"), rfm)
    horizon_words = amount_words(float(horizon), unit)
    values = {"P(alive)": np.asarray(model.p_alive(rfm), dtype=np.float64),
              f"expected purchases, next {horizon_words}":
                  np.asarray(model.expected_purchases(rfm, horizon), dtype=np.float64)}
    name = segment if np.ndim(segment) == 0 else (getattr(segment, "name", None) or "segment")
    own_figure = ax is None
    if own_figure:
        import matplotlib.pyplot as plt

        width = max(9.0, 2.2 * len(labels.categories))
        ax = plt.subplots(1, 2, figsize=(width, 4.5), layout="constrained")[1]
    axes = np.atleast_1d(ax).ravel()
    if axes.size != 2:
        raise ClvlabError(f"plot_segments draws on two axes (P(alive), expected purchases); "
                          f"got {axes.size}")
    codes = labels.codes
    ticks = [f"{category}\n(n={np.sum(codes == i):,})" for i, category in enumerate(labels.categories)]
    positions = np.arange(1, len(ticks) + 1)
    z = stats.norm.ppf(0.5 + level / 2)
    for axis, (what, value) in zip(axes, values.items()):
        groups = [value[codes == i] for i in range(len(ticks))]
        if kind == "box":
            axis.boxplot(groups, positions=positions, widths=0.6, showfliers=False,
                         showmeans=True)
        else:
            means = np.array([g.mean() for g in groups])
            # a segment of one customer has no spread to estimate: no interval
            half = np.array([z * g.std(ddof=1) / np.sqrt(g.size) if g.size > 1 else np.nan
                             for g in groups])
            axis.bar(positions, means, 0.6, yerr=half, capsize=4)
        axis.set_xticks(positions, ticks)
        axis.set(xlabel=str(name), ylabel=what if kind == "box" else f"mean {what}", title=what)
    axes[0].set_ylim(0, 1.05)
    if own_figure:
        how = ("boxes: quartiles; whiskers: 1.5 IQR; triangles: means" if kind == "box"
               else f"means with their {100 * level:g}% intervals")
        axes[0].figure.suptitle(f"{model_label(model)} by {name} ({how})")
    return axes


def _segments(rfm: pd.DataFrame, segment: Any) -> pd.Categorical:
    """Each customer's segment, as a categorical with only the segments that occur."""
    if isinstance(segment, pd.Series):
        if not segment.index.equals(rfm.index):
            if not segment.index.is_unique or not rfm.index.isin(segment.index).all():
                raise ClvlabError("the segment Series must have one value for every customer of "
                                  "the RFM table, on its index")
            segment = segment.reindex(rfm.index)
        column = segment
    elif np.ndim(segment) == 0:  # a column's name
        if segment not in rfm.columns:
            raise ClvlabError(f"segment {segment!r} is not a column of the RFM table; its columns "
                              f"are {list(rfm.columns)} (or pass a Series on its index)")
        column = rfm[segment]
    elif np.ndim(segment) == 1 and len(segment) == len(rfm):
        column = pd.Series(np.asarray(segment), index=rfm.index)
    else:
        raise ClvlabError(f"segment must be a column name, a Series on the RFM table's index "
                          f"or one value per row ({len(rfm):,}); got shape {np.shape(segment)}")
    if column.isna().any():
        raise ClvlabError(f"{int(column.isna().sum()):,} customers have no segment (missing "
                          "values): fill them (e.g. with 'unknown') or leave those customers out")
    labels = pd.Categorical(column)
    labels = labels.remove_unused_categories()
    if len(labels.categories) > _MAX_SEGMENTS:
        raise ClvlabError(f"segment has {len(labels.categories):,} distinct values; at most "
                          f"{_MAX_SEGMENTS} make a readable plot: bin it first (pd.cut, pd.qcut)")
    if len(labels.categories) == 0:
        raise ClvlabError("the RFM table has no customers to plot")
    return labels
