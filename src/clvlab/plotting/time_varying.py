"""Plots of models fitted with time-varying covariates (issue 31; matplotlib, imported only when
drawn). Each plot has a function that returns its data, which the plot draws unchanged.

- :func:`time_varying_multipliers` / :func:`plot_time_varying_multipliers`: the fitted
  multipliers ``exp(x(t)' g)`` of the purchase and dropout rates over calendar time, along a
  calendar or one customer's covariate path, with a pointwise band from the coefficients'
  covariance.
- :func:`time_varying_tracking` / :func:`plot_time_varying_tracking`: the cohort's repeat
  purchases per time unit, actual against expected from each model (with time-varying
  covariates, with static or no covariates), over the calibration period and the holdout.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from clvlab.core.errors import ClvlabError
from clvlab.core.timeunits import UNIT_SECONDS
from clvlab.plotting.diagnostics import axes_or_new
from clvlab.plotting.labels import model_label

__all__ = ["time_varying_multipliers", "plot_time_varying_multipliers", "time_varying_tracking",
           "plot_time_varying_tracking", "pareto_nbd_new_customer_expected"]

# the tracking plot lives in its own module; its names are this module's too
from clvlab.plotting.time_varying_tracking import (  # noqa: E402
    pareto_nbd_new_customer_expected, plot_time_varying_tracking, time_varying_tracking)
from clvlab.data.tables import accepts_tables

_PROCESS_WORDS = {"purchase": "purchase rate (+ = more purchasing)",
                  "dropout": "dropout rate (+ = faster dropout)"}


def _time_varying_design(model):
    design = getattr(model, "covariates_", None)
    if design is None or not getattr(design, "time_varying", ()):
        raise ClvlabError(f"this {model_label(model)} was not fitted with time-varying covariates "
                          "(fit(rfm, covariate_paths=...)): it has no multipliers over time")
    return design


@accepts_tables("calendar")
def time_varying_multipliers(model, calendar: pd.DataFrame | None = None, *,
                             covariate_paths: Any = None, customer: Any = None,
                             covariates: Any = None, level: float = 0.95,
                             period_col: str = "period") -> pd.DataFrame:
    """The fitted rate multipliers over calendar time, with their pointwise intervals.

    For each process p (purchase; dropout in the Pareto/NBD) and each calendar period, the
    multiplier ``exp(eta_p(t))``, ``eta_p(t) = x_c(t)' g_p`` over the model's path covariates
    ``c`` (all of them, or those named by ``covariates``; a covariate the table lacks is an
    error; static covariates, which only scale a customer's whole curve, are left out;
    ``attrs["covariates"]`` names the ones in, ``attrs["customer"]`` the path's). The
    interval is ``exp(eta +/- z se)``, ``se^2 = (x_c' A_p) Sigma (A_p' x_c)`` with ``Sigma`` the
    coefficients' covariance (``model.covariance_``): the delta method, exact for the linear
    predictor under the fit's normal approximation; NaN without a covariance.

    Parameters
    ----------
    model : a ParetoNBD or BG/NBD fitted with ``covariate_paths``.
    calendar : one row per period: ``period_col`` (the period's start) and covariate columns
        (e.g. :func:`clvlab.seasonal_covariates`, or a panel's rows of one customer).
    covariate_paths, customer : instead of a calendar, one customer's path
        (:class:`clvlab.CovariatePaths`; ``customer`` its id, needed when the paths hold more
        than one customer), placed in calendar time from the path's end.
    covariates : the time-varying covariates to show (default: all the model's).
    level : the intervals' level.
    period_col : the calendar's period column.

    Returns
    -------
    DataFrame with one row per period and process: ``start``, ``end`` (Timestamps),
    ``process``, ``eta``, ``se``, ``multiplier``, ``lower``, ``upper``.
    """
    design = _time_varying_design(model)
    if not 0 < level < 1:
        raise ClvlabError(f"level must be between 0 and 1, got {level!r}")
    if (calendar is None) == (covariate_paths is None):
        raise ClvlabError("give either calendar= (one row per period) or covariate_paths= (with "
                          "customer=, one customer's path)")
    unit = model.time_unit_ if getattr(model, "time_unit_", None) else None
    rows, start, end = (_calendar_rows(calendar, period_col, unit) if calendar is not None
                        else _path_rows(covariate_paths, customer))
    columns = _columns(design.time_varying, covariates, rows, calendar is not None)
    encoder = design.encoder
    names = encoder.names_for(columns)
    sub = type(encoder)(columns=columns,
                        levels={c: encoder.levels[c] for c in columns if c in encoder.levels},
                        scales={n: encoder.scales[n] for n in names},
                        seen={c: encoder.seen[c] for c in columns if c in encoder.seen})
    x = sub.transform(rows, model=type(model).__name__)
    at = [encoder.names.index(n) for n in names]
    coefficients = list(design.coefficient_names)
    values = model.params_[coefficients].to_numpy(np.float64)
    covariance = getattr(model, "covariance_", None)
    sigma = (np.full((len(values),) * 2, np.nan) if covariance is None
             else covariance.loc[coefficients, coefficients].to_numpy(np.float64))
    z = stats.norm.ppf(0.5 + level / 2)
    parts = []
    for process, matrix in design.maps().items():
        loading = x @ matrix[at]  # eta = loading @ coefficients
        if not np.any(matrix[at]):
            continue  # the process reads none of these covariates
        eta = loading @ values
        se = np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", loading, sigma, loading), 0.0))
        with np.errstate(over="ignore"):  # an unidentified coefficient: a band without bound
            parts.append(pd.DataFrame({"start": start, "end": end, "process": process,
                                       "eta": eta, "se": se, "multiplier": np.exp(eta),
                                       "lower": np.exp(eta - z * se),
                                       "upper": np.exp(eta + z * se)}))
    if not parts:
        raise ClvlabError(f"no process of this {model_label(model)} reads {columns}")
    table = pd.concat(parts, ignore_index=True)
    table.attrs = {"covariates": columns, "level": level,
                   "customer": None if calendar is not None else _plain(rows["customer"].iloc[0])}
    return table


def _columns(varying, covariates, rows: pd.DataFrame, calendar: bool) -> list[str]:
    """The covariates to show: all the model's (or ``covariates``), each a column of ``rows``."""
    chosen = list(varying) if covariates is None else (
        [covariates] if isinstance(covariates, str) else list(covariates))
    if not chosen or any(c not in varying for c in chosen):
        raise ClvlabError(f"covariates= must name some of the model's time-varying covariates "
                          f"{list(varying)}, e.g. covariates={list(varying)[:1]}; got {chosen}")
    missing, held = ([c for c in chosen if (c in rows.columns) == inside] for inside in (0, 1))
    if missing:
        raise ClvlabError(
            f"the {'calendar lacks' if calendar else 'covariate paths lack'} the time-varying "
            f"covariate(s) {missing} (columns: {list(map(str, rows.columns))}), so the "
            f"multipliers would leave their effect out: add the column(s), a value per period"
            + (f", or draw only the others on purpose: covariates={held}" if held else ""))
    return chosen


def _plain(value):
    """An id as the user wrote it (1001, not np.int64(1001))."""
    return value.item() if isinstance(value, np.generic) else value


def _calendar_rows(calendar, period_col, unit):
    if not isinstance(calendar, pd.DataFrame) or period_col not in calendar.columns:
        raise ClvlabError(f"calendar must be a DataFrame with a period column {period_col!r}")
    rows = calendar.sort_values(period_col, kind="stable").reset_index(drop=True)
    start = pd.DatetimeIndex(pd.to_datetime(rows[period_col]))
    if len(start) > 1:
        after = start[-1] + (start[-1] - start[-2])
    else:
        after = start[-1] + pd.Timedelta(seconds=UNIT_SECONDS[unit or "D"])
    return rows, start, start[1:].append(pd.DatetimeIndex([after]))


def _path_rows(paths, customer):
    table = paths.table
    ids = table["customer"].drop_duplicates()
    if customer is None and len(ids) > 1:  # whose? the longest path as the example
        longest = _plain(table["customer"].iloc[int(np.argmax(table["end"].to_numpy()))])
        raise ClvlabError(f"the covariate paths hold {len(ids):,} customers: name the one to "
                          f"draw with customer=, e.g. customer={longest!r} (the longest path)")
    customer = ids.iloc[0] if customer is None else customer
    rows = table[table["customer"] == customer].reset_index(drop=True)
    if rows.empty:
        raise ClvlabError(f"customer {_plain(customer)!r} is not in the covariate paths; "
                          f"they hold e.g. {[_plain(c) for c in ids.iloc[:3]]}")
    seconds = UNIT_SECONDS[paths.time_unit]
    # the path ends at path_end; its length is T + horizon, so time u is path_end - (length - u)
    length = float(rows["end"].iloc[-1])

    def calendar_time(u):
        return paths.path_end - pd.to_timedelta((length - u.to_numpy(np.float64)) * seconds,
                                                unit="s")

    return rows, pd.DatetimeIndex(calendar_time(rows["start"])), pd.DatetimeIndex(
        calendar_time(rows["end"]))


@accepts_tables("calendar")
def plot_time_varying_multipliers(model, calendar: pd.DataFrame | None = None, *,
                                  covariate_paths: Any = None, customer: Any = None,
                                  covariates: Any = None, level: float = 0.95,
                                  period_col: str = "period", ax=None):
    """:func:`time_varying_multipliers` drawn: one step line per process over calendar time
    (the multiplier holds through each period), its band shaded, a line at 1 (no effect).
    Returns the Axes.

    Parameters
    ----------
    model : ParetoNBD or BetaGeo
        A model fitted with time-varying covariates.
    calendar : pandas.DataFrame, optional
        As in :func:`time_varying_multipliers`.
    covariate_paths, customer, covariates : optional
        As in :func:`time_varying_multipliers`.
    level : float, default 0.95
        The bands' level.
    period_col : str, default "period"
        The calendar's period column.
    ax : matplotlib.axes.Axes, optional
        The axes to draw on; None: new ones.

    Returns
    -------
    matplotlib.axes.Axes
        The axes drawn on.

    Raises
    ------
    ClvlabError
        As :func:`time_varying_multipliers`.
    """
    import textwrap

    table = time_varying_multipliers(model, calendar, covariate_paths=covariate_paths,
                                     customer=customer, covariates=covariates, level=level,
                                     period_col=period_col)
    ours, ax = ax is None, axes_or_new(ax, size=(9, 4.5))
    for process, part in table.groupby("process", sort=False):
        x = np.r_[part["start"].to_numpy(), part["end"].to_numpy()[-1:]]

        def stepped(column, frame=part):
            return np.r_[frame[column].to_numpy(), frame[column].to_numpy()[-1:]]

        line, = ax.step(x, stepped("multiplier"), where="post",
                        label=_PROCESS_WORDS.get(process, process))
        bounded = np.isfinite(stepped("lower")) & np.isfinite(stepped("upper")) \
            & (stepped("lower") > 0)
        if bounded.any():  # no band where the covariance is unknown or the bound infinite
            ax.fill_between(x, stepped("lower"), stepped("upper"), where=bounded, step="post",
                            alpha=0.25, color=line.get_color(), linewidth=0)
    ax.axhline(1.0, color="grey", linestyle="--", linewidth=1)
    ax.set_yscale("log")  # a multiplier's band is symmetric on the log scale
    who = table.attrs["customer"]
    where = "the calendar" if who is None else f"the path of customer {_plain(who)}"
    lines = (f"{model_label(model)}: multipliers of {', '.join(table.attrs['covariates'])}",
             f"along {where} ({100 * level:g}% pointwise bands)")
    width = max(30, int(0.85 * ax.figure.get_figwidth() * 72 / 7.2))  # chars of a 12pt title
    ax.set(xlabel="calendar time", ylabel="rate multiplier exp(x(t)'g)",
           title="\n".join(textwrap.fill(line, width) for line in lines))
    ax.legend(fontsize="small")
    if ours:  # a figure of our own: room for a title of several lines
        ax.figure.tight_layout()
    return ax
