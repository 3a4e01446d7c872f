"""The tracking plot of models fitted with time-varying covariates (issue 31; matplotlib,
imported only when drawn): the cohort's repeat purchases per time unit, actual against expected
from each model (with time-varying covariates, with static or no covariates), over the
calibration period (each customer as a new customer along their path) and the holdout
(conditional on their history). :func:`time_varying_tracking` returns the data that
:func:`plot_time_varying_tracking` draws unchanged.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from clvlab.core.errors import ClvlabError, DataValidationError
from clvlab.core.timeunits import UNIT_SECONDS
from clvlab.plotting.diagnostics import axes_or_new
from clvlab.plotting.labels import clvlab_attrs, named_models, unit_singular
from clvlab.data.tables import accepts_tables

__all__ = ["time_varying_tracking", "plot_time_varying_tracking",
           "pareto_nbd_new_customer_expected"]


def pareto_nbd_new_customer_expected(own: np.ndarray, offsets: np.ndarray, seg_end: np.ndarray,
                                     eta_p: np.ndarray, eta_d: np.ndarray,
                                     ages: np.ndarray) -> np.ndarray:
    """A new customer's expected repeat purchases by each age along their covariate path
    (time-varying Pareto/NBD): ``E[X(t)] = r/alpha int_0^t exp(eta_p(u)) (beta/(beta + B(u)))^s du``
    (alive at u with probability ``(beta/(beta + B(u)))^s``, B the dropout clock). On a segment
    of length l from u0, with ``Q0 = beta + B(u0)``, ``d = exp(eta_d)``, ``rho = d l / Q0``,
    ``L = log1p(rho)``, the piece is ``exp(eta_p) / d (beta/Q0)^s Q0 L phi((s - 1) L)``,
    ``phi(y) = (1 - e^-y) / y`` (exact at and near s = 1).

    ``own`` (N, 4): each customer's (r, alpha, s, beta); segments as the kernels take them;
    ``ages`` (N, E): ages in [0, path end]. Returns (N, E).

    Parameters
    ----------
    own : numpy.ndarray
        (N, 4): each customer's (r, alpha, s, beta).
    offsets : numpy.ndarray
        (N + 1,): customer i's segments are ``offsets[i]:offsets[i + 1]``.
    seg_end : numpy.ndarray
        Each segment's end, as an age.
    eta_p, eta_d : numpy.ndarray
        Each segment's linear predictor of the purchase and dropout processes.
    ages : numpy.ndarray
        (N, E): ages in [0, path end].

    Returns
    -------
    numpy.ndarray
        (N, E): the expected repeat purchases by each age.
    """
    n = len(offsets) - 1
    counts = np.diff(offsets)
    owner = np.repeat(np.arange(n), counts)
    first = np.zeros(len(seg_end), bool)
    first[offsets[:-1][counts > 0]] = True
    u0 = np.where(first, 0.0, np.r_[0.0, seg_end[:-1]])
    length = seg_end - u0
    d = np.exp(eta_d)
    r, alpha, s, beta = (own[owner, j] for j in range(4))
    dropout_clock = d * length
    before = np.cumsum(dropout_clock) - dropout_clock  # B at each segment's start
    before -= np.repeat(before[offsets[:-1][counts > 0]], counts[counts > 0])

    def piece(span, k):
        q0 = beta[k] + before[k]
        log_growth = np.log1p(d[k] * span / q0)
        y = (s[k] - 1.0) * log_growth
        phi = np.where(np.abs(y) < 1e-8, 1.0 - y / 2, -np.expm1(-y) / np.where(y == 0, 1.0, y))
        return (np.exp(eta_p[k]) / d[k] * (beta[k] / q0) ** s[k] * q0 * log_growth * phi
                * r[k] / alpha[k])

    whole = piece(length, np.arange(len(seg_end)))
    done = np.cumsum(whole) - whole  # the pieces before each segment, within its customer
    done -= np.repeat(done[offsets[:-1][counts > 0]], counts[counts > 0])
    ages = np.asarray(ages, np.float64)
    width = float(seg_end.max(initial=0.0)) + 2.0
    keys = owner * width + seg_end
    who = np.repeat(np.arange(n)[:, None], ages.shape[1], axis=1)
    k = np.searchsorted(keys, (who * width + ages).ravel(), side="left")
    k = np.minimum(k, np.repeat(offsets[1:] - 1, ages.shape[1]))
    span = np.clip(ages.ravel() - u0[k], 0.0, length[k])
    return (done[k] + piece(span, k)).reshape(ages.shape)


@accepts_tables("transactions", keyed=("rfm",))
def time_varying_tracking(models, rfm: pd.DataFrame, transactions: pd.DataFrame,
                          covariate_paths: Any, *, customer_col: str | None = None,
                          date_col: str | None = None, amount_col: str | None = None,
                          date_format: str | None = None,
                          horizon: float | None = None) -> pd.DataFrame:
    """The cohort's repeat purchases per time unit, actual and expected by each model.

    Time is cut into bins ``(j, j + 1]`` time units from the calibration end (the RFM table's
    ``calibration_end``), j < 0 in the calibration period, j >= 0 in the holdout; a purchase
    is counted in the bin that starts at or before it (a day's merged purchases in the bin
    that starts that day). For each bin: ``actual``, the cohort's repeat purchases in the log (merged per day or hour as
    :func:`clvlab.rfm_summary` counts them); for each model, ``expected[label]``:

    - calibration bins: the fit, each customer's expected repeat purchases as a new customer
      from their first purchase (unconditional; a time-varying Pareto/NBD along its path,
      :func:`pareto_nbd_new_customer_expected`; a time-varying BG/NBD the plain BG/NBD in
      its purchase clock; a static model :func:`clvlab.models.cumulative.expected_cumulative_purchases`);
    - holdout bins: the conditional expectation given each customer's calibration history
      (``expected_purchases_by_horizon``; time-varying models along ``covariate_paths``).

    Parameters
    ----------
    models : a fitted model, a list or a dict {label: model}; time-varying ones predict along
        ``covariate_paths``, the others from ``rfm`` (with their static covariate columns).
    rfm : the calibration summary the models were fitted on (``attrs["clvlab"]``).
    transactions : the log the summary came from; ``customer_col``, ``date_col``,
        ``amount_col``, ``date_format`` as in :func:`clvlab.rfm_summary`, by default those the
        summary records (as :func:`clvlab.covariate_paths` takes them; ``date`` when none).
    covariate_paths : the customers' paths, reaching the holdout (``horizon=``).
    customer_col, date_col, amount_col, date_format : str, optional
        The log's columns and date format, as above (None: those the summary records).
    horizon : holdout bins (whole time units); default: as far as both the paths and the
        log reach.

    Returns
    -------
    DataFrame, one row per bin: ``start`` (the bin's start date), ``t`` (its end, time units
    from the calibration end), ``part`` ("calibration" or "holdout"), ``actual`` and one
    ``expected[label]`` column per model.
    """
    from clvlab.data.calibration import CutoffView, load_log
    from clvlab.data.rfm_rules import make_settings
    from clvlab.data.log_columns import log_column_hint, log_columns

    info = clvlab_attrs(rfm)
    if "calibration_end" not in info or "time_unit" not in info:
        raise ClvlabError("time_varying_tracking needs the RFM table of rfm_summary with its "
                          "attrs['clvlab'] (calibration_end, time_unit)")
    unit, cutoff = info["time_unit"], pd.Timestamp(info["calibration_end"])
    seconds = UNIT_SECONDS[unit]
    given = {"date_col": date_col, "amount_col": amount_col, "date_format": date_format}
    chosen = log_columns(rfm, **given)
    settings = make_settings(customer_col=customer_col or info.get("customer_col") or "customer_id",
                             **chosen, time_unit=unit, timezone=info.get("timezone", "UTC"),
                             merge_period=info.get("merge_period"))
    try:
        frame, ids, ts, amount = load_log(transactions, settings)
    except DataValidationError as exc:
        raise log_column_hint(exc, rfm, given, chosen, lambda key, name: f"{key}={name!r}") \
            from None
    reach = min(covariate_paths.horizon, ((ts.max() - cutoff).total_seconds() + 86_400) / seconds)
    holdout = int(np.floor((reach if horizon is None else min(horizon, reach)) + 1e-9))
    end = cutoff + pd.Timedelta(seconds=holdout * seconds)
    view = CutoffView(rfm, ids, ts, amount, cutoff, end, settings)
    periods = view.calibration.periods
    repeat_ages = periods["age"][periods["age"] < periods.groupby("cid")["age"].transform("max")]
    T = rfm["T"].to_numpy(np.float64)
    first_bin = -int(np.ceil(T.max() - 1e-9))
    bins = np.arange(first_bin, holdout)
    # a purchase at time x (units from the calibration end; a merged purchase stands at the
    # start of its day or hour and stands for all of it) is in bin j = floor(x), the bin that
    # starts at or before it: a day's purchases go to the bin that starts that day, where
    # ceil(x) - 1 put a purchase standing at a bin's start into the bin before. A calibration
    # purchase at the calibration end itself (x = 0: a log of dates at midnight) is in the
    # last calibration bin, as the RFM table counts it.
    calibration = np.minimum(np.floor(-repeat_ages.to_numpy(np.float64) + 1e-9), -1)
    after = np.maximum(np.floor(view.holdout_times + 1e-9), 0)
    index = np.r_[calibration, after].astype(np.int64) - first_bin
    table = pd.DataFrame({
        "start": cutoff + pd.to_timedelta(bins * seconds, unit="s"), "t": bins + 1.0,
        "part": np.where(bins < 0, "calibration", "holdout"),
        "actual": np.bincount(index[(index >= 0) & (index < len(bins))],
                              minlength=len(bins)).astype(np.float64)})
    edges = np.arange(first_bin, 1, dtype=np.float64)  # calibration edges, up to 0
    for label, model in named_models(models, "time_varying_tracking"):
        fit = np.diff(_new_customer_totals(model, rfm, covariate_paths, T, edges))
        if holdout:
            horizons = np.arange(1.0, holdout + 1)
            along = _along(model, covariate_paths)
            by = model.expected_purchases_by_horizon(rfm, horizons, **along).to_numpy(np.float64)
            fit = np.r_[fit, np.diff(np.r_[0.0, by.sum(axis=0)])]
        table[f"expected[{label}]"] = fit
    table.attrs = {"calibration_end": cutoff, "time_unit": unit}
    return table


def _along(model, paths) -> dict:
    from clvlab.models.time_varying import is_time_varying

    return {"covariate_paths": paths} if is_time_varying(model) else {}


def _new_customer_totals(model, rfm, paths, T, edges) -> np.ndarray:
    """Sum over customers of E[X(clip(T_i + e, 0, T_i))] at each calibration edge e."""
    from clvlab.models.time_varying import is_time_varying

    if not is_time_varying(model):
        from clvlab.models.cumulative import expected_cumulative_purchases

        attributes = rfm if hasattr(model, "covariates_") else None
        return expected_cumulative_purchases(model, -T, edges, attributes=attributes).to_numpy()
    from clvlab.models.time_varying_predict import PathPredictor

    predictor = PathPredictor(model, rfm, paths)
    ages = np.clip(T[:, None] + edges[None, :], 0.0, T[:, None])
    seg = predictor.segments
    if predictor.name == "ParetoNBD":
        values = pareto_nbd_new_customer_expected(predictor.own, seg.offsets, seg.seg_end,
                                                  predictor.eta["purchase"],
                                                  predictor.eta["dropout"], ages)
        return values.sum(axis=0)
    from clvlab.models.tv_bgnbd import purchase_clock

    # BG/NBD: the plain model in the purchase clock A(t), per distinct own parameters
    clock = np.column_stack([purchase_clock(seg.offsets, seg.seg_end, predictor.eta["purchase"],
                                            ages[:, j]) for j in range(ages.shape[1])])
    distinct, group = np.unique(predictor.own, axis=0, return_inverse=True)
    expected = np.zeros_like(clock)  # 0 at clock 0 (a horizon the plain model refuses)
    for g, own in enumerate(distinct):
        cells = (group.ravel() == g)[:, None] & (clock > 0)
        expected[cells] = model.plain_at(own).expected_purchases_new_customer(clock[cells])
    return expected.sum(axis=0)


@accepts_tables("transactions", keyed=("rfm",))
def plot_time_varying_tracking(models, rfm: pd.DataFrame, transactions: pd.DataFrame,
                               covariate_paths: Any, *, customer_col: str | None = None,
                               date_col: str | None = None, amount_col: str | None = None,
                               date_format: str | None = None, horizon: float | None = None,
                               ax=None):
    """:func:`time_varying_tracking` drawn: the actual repeat purchases per time unit (black)
    and each model's expectation (dashed) over calendar time, the calibration end marked.
    Returns the Axes.

    Parameters
    ----------
    models : ParetoNBD, BetaGeo or sequence of them
        As in :func:`time_varying_tracking`.
    rfm : pandas.DataFrame
        As in :func:`time_varying_tracking`.
    transactions : pandas.DataFrame
        As in :func:`time_varying_tracking`.
    covariate_paths : CovariatePaths
        As in :func:`time_varying_tracking`.
    customer_col, date_col, amount_col, date_format : str, optional
        As in :func:`time_varying_tracking`.
    horizon : float, optional
        As in :func:`time_varying_tracking`.
    ax : matplotlib.axes.Axes, optional
        The axes to draw on; None: new ones.

    Returns
    -------
    matplotlib.axes.Axes
        The axes drawn on.

    Raises
    ------
    ClvlabError
        As :func:`time_varying_tracking`.
    """
    table = time_varying_tracking(models, rfm, transactions, covariate_paths,
                                  customer_col=customer_col, date_col=date_col,
                                  amount_col=amount_col, date_format=date_format, horizon=horizon)
    ax = axes_or_new(ax, size=(10, 4.5))
    x = table["start"]
    ax.plot(x, table["actual"], color="black", lw=1.5, label="actual")
    for column in [c for c in table.columns if c.startswith("expected[")]:
        ax.plot(x, table[column], ls="--", lw=1.2, label=column[len("expected["):-1])
    ax.axvline(table.attrs["calibration_end"], color="grey", linestyle=":",
               label="calibration end")
    unit = table.attrs["time_unit"]
    ax.set(xlabel="calendar time (bin start)",
           ylabel=f"repeat purchases per {unit_singular(unit)}",
           title="Tracking: calibration fit (new-customer expectation), holdout conditional on "
                 "each customer's history")
    ax.legend(fontsize="small")
    return ax
