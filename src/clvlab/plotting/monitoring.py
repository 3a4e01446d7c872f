"""Monitoring plots (matplotlib): a champion's forecasts against what happened since it scored
(:mod:`clvlab.ops.monitoring`). Each function draws on ``ax`` (a new figure's axes when None)
and returns the Axes.

- :func:`plot_monitoring_tracking`: realised against expected cumulative repeat purchases since
  the scoring date, with the predictive bands where they were computed.
- :func:`plot_drift`: the population stability index of each RFM column, with the 0.1
  (moderate) and 0.25 (shift) lines.

They take the tables (``tracking``, ``drift``), or anything that holds them as attributes
(a ``MonitoringResult``): this layer does not import the job that makes them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from clvlab.core.errors import ClvlabError
from clvlab.plotting.diagnostics import axes_or_new
from clvlab.plotting.labels import unit_plural

__all__ = ["plot_monitoring_tracking", "plot_drift", "PSI_LINES"]

#: the conventional PSI readings drawn on the drift plot: moderate above 0.1, a shift above 0.25
PSI_LINES = (0.1, 0.25)


def _table(source: Any, name: str, columns: set[str], function: str) -> pd.DataFrame:
    """``source`` itself when it is the table, else its attribute ``name``; its columns checked."""
    table = source if isinstance(source, pd.DataFrame) else getattr(source, name, None)
    if not isinstance(table, pd.DataFrame) or not columns <= set(table.columns):
        have = list(table.columns) if isinstance(table, pd.DataFrame) else type(source).__name__
        raise ClvlabError(f"{function} takes a monitoring result or its {name} table (columns "
                          f"{sorted(columns)}); got {have}")
    return table


def plot_monitoring_tracking(result: Any, ax=None, *, time_unit: str | None = None):
    """Cumulative repeat purchases of the scored customers since the scoring date: realised,
    expected, and the central predictive bands (widest palest) at the times they were computed.

    Parameters
    ----------
    result : MonitoringResult or pandas.DataFrame
        A monitoring result, or its ``tracking`` table (``t``, ``expected``, ``realised`` and
        ``lower <l>%``/``upper <l>%`` columns, NaN where no band was computed).
    ax : matplotlib Axes, optional
    time_unit : str, optional
        The axis' unit when ``result`` is a bare table (a result says it in ``info``).

    Returns
    -------
    matplotlib.axes.Axes
    """
    table = _table(result, "tracking", {"t", "expected", "realised"}, "plot_monitoring_tracking")
    info = getattr(result, "info", {}) or {}
    unit = time_unit or info.get("time_unit")
    ax = axes_or_new(ax)
    t = np.r_[0.0, table["t"].to_numpy(np.float64)]
    levels = sorted({float(c.split()[1].rstrip("%")) for c in table.columns
                     if c.startswith("lower ")}, reverse=True)
    for i, level in enumerate(levels):
        rows = table[[f"lower {level:g}%", f"upper {level:g}%"]].notna().all(axis=1)
        if rows.any():
            band = table[rows]
            ax.fill_between(np.r_[0.0, band["t"]], np.r_[0.0, band[f"lower {level:g}%"]],
                            np.r_[0.0, band[f"upper {level:g}%"]], color="C0",
                            alpha=0.15 + 0.2 * i, linewidth=0, label=f"{level:g}% band")
    ax.plot(t, np.r_[0.0, table["expected"]], color="C0", linewidth=2, label="expected")
    ax.plot(t, np.r_[0.0, table["realised"]], color="black", marker="o", markersize=3,
            linewidth=1, label="realised")
    ax.set_xlabel(f"time since the scoring date ({unit_plural(unit)})")
    ax.set_ylabel("cumulative repeat purchases (count)")
    verdict = getattr(result, "verdict", None)
    ax.set_title("Forecast against realised purchases" + (f": {verdict}" if verdict else ""))
    ax.set_ylim(bottom=0)
    ax.legend(loc="upper left", frameon=False)
    return ax


def plot_drift(result: Any, ax=None):
    """The population stability index of each RFM column at the monitored date against the
    model's reference (its training profile), with the 0.1 and 0.25 lines; columns without a
    figure (NaN) are marked "n/a", and columns the verdict does not check (``checked`` False
    in the table) are drawn pale and hatched.

    Parameters
    ----------
    result : MonitoringResult or pandas.DataFrame
        A monitoring result, or its ``drift`` table (``column``, ``psi``, optionally
        ``checked`` and ``reference``).
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.axes.Axes
    """
    table = _table(result, "drift", {"column", "psi"}, "plot_drift")
    ax = axes_or_new(ax)
    values = table["psi"].to_numpy(np.float64)
    known = np.isfinite(values)
    colours = np.where(values > PSI_LINES[1], "C3", np.where(values > PSI_LINES[0], "C1", "C2"))
    positions = np.arange(len(table))
    checked = table["checked"].to_numpy(bool) if "checked" in table else np.ones(len(table), bool)
    for mask, style in ((known & checked, {}),
                        (known & ~checked, {"alpha": 0.35, "hatch": "//"})):
        ax.bar(positions[mask], values[mask], color=colours[mask], **style)
    for x in positions[~known]:
        ax.text(x, 0.0, "n/a", ha="center", va="bottom")
    for line, label in zip(PSI_LINES, ("moderate (0.1)", "shift (0.25)")):
        ax.axhline(line, color="grey", linestyle="--" if line == PSI_LINES[0] else "-",
                   linewidth=1, label=label)
    ax.set_xticks(positions, [c if k else f"{c}\n(reported, not checked)"
                              for c, k in zip(table["column"], checked)])
    reference = table["reference"].iloc[0] if "reference" in table and len(table) else None
    ax.set(ylabel="population stability index",
           title="Input drift" + (f" against the {reference}" if reference else ""))
    top = np.nanmax(values) if known.any() else 0.0
    ax.set_ylim(0, max(0.3, 1.1 * top))
    ax.legend(loc="upper left", frameon=False)
    return ax
