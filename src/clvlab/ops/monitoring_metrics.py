"""The figures of a monitoring job (:mod:`clvlab.ops.monitoring`): input drift (population
stability), calibration of P(any purchase) by decile, interval coverage and the cumulative
tracking curve with its predictive band.

Each function takes arrays or tables already joined by customer, so the job and the simulation
study (``benchmarks/bench_monitoring.py``) compute the same numbers. A figure that cannot be
computed is NaN, never 0.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from clvlab.core.errors import ClvlabError
from clvlab.models.model_files import PROFILE_COLUMNS, profile_bins, training_profile

__all__ = ["PSI_FLOOR", "psi", "drift_table", "calibration_table", "calibration_error",
           "interval_coverage", "tracking_curve", "band_columns", "reference_profile",
           "DRIFT_MODERATE", "DRIFT_SHIFT"]

#: shares below this are taken as it in the PSI (an empty bin would make it infinite)
PSI_FLOOR = 1e-4
#: the conventional reading of a PSI: below 0.1 stable, 0.1-0.25 a moderate shift, above a shift
DRIFT_MODERATE, DRIFT_SHIFT = 0.1, 0.25


def psi(expected: Any, actual: Any, floor: float = PSI_FLOOR) -> float:
    """Population stability index ``sum((a - e) * ln(a / e))`` over bins.

    Parameters
    ----------
    expected, actual : array-like
        The reference's and the current table's share of customers in each bin (each is
        normalised to sum to 1).
    floor : float
        Shares are taken as at least this (an empty bin would give an infinite index).

    Returns
    -------
    float
        The index (0: the same distribution); NaN when either side has no customers.
    """
    e, a = np.asarray(expected, np.float64), np.asarray(actual, np.float64)
    if e.shape != a.shape or e.ndim != 1:
        raise ClvlabError(f"psi needs two share vectors of one length, got {e.shape} and {a.shape}")
    if not (e.sum() > 0 and a.sum() > 0):
        return math.nan
    e, a = np.maximum(e / e.sum(), floor), np.maximum(a / a.sum(), floor)
    return float(np.sum((a - e) * np.log(a / e)))


def drift_table(current: pd.DataFrame, profile: dict | None, reference: str) -> pd.DataFrame:
    """The PSI of each profiled column of ``current`` (the RFM table at the monitored date)
    against ``profile`` (a training profile, :func:`clvlab.models.model_files.training_profile`).

    Returns one row per column: ``psi``, ``bins``, ``reading`` ("stable", "moderate", "shift"
    or "not checked") and ``reference`` (what the profile describes). Columns the current
    table lacks, or no profile at all, give NaN.
    """
    rows = []
    columns = (profile or {}).get("columns", {})
    for column in PROFILE_COLUMNS:
        entry = columns.get(column)
        if entry is None and column not in current.columns:
            continue
        value = math.nan
        if entry is not None and column in current.columns:
            values = current[column].to_numpy(np.float64)
            values = values[np.isfinite(values)]
            counts = np.bincount(profile_bins(values, entry["edges"]),
                                 minlength=len(entry["shares"]))
            value = psi(entry["shares"], counts)
        rows.append({"column": column, "psi": value,
                     "bins": len(entry["shares"]) if entry is not None else 0,
                     "reading": _reading(value), "reference": reference})
    return pd.DataFrame(rows, columns=["column", "psi", "bins", "reading", "reference"])


def reference_profile(rfm: pd.DataFrame) -> dict | None:
    """A profile of ``rfm`` built as a fit builds its training profile (the fallback reference
    when the model holds none)."""
    return training_profile(rfm)


def _reading(value: float) -> str:
    if not np.isfinite(value):
        return "not checked"
    return "shift" if value > DRIFT_SHIFT else "moderate" if value > DRIFT_MODERATE else "stable"


def calibration_table(predicted: np.ndarray, active: np.ndarray, bins: int = 10) -> pd.DataFrame:
    """P(any purchase) against the share that did buy, by decile of the prediction.

    Returns one row per decile (1 = the lowest predictions; ties may merge deciles):
    ``customers``, ``predicted`` (mean P), ``observed`` (share active) and ``difference``
    (observed - predicted).
    """
    predicted = np.asarray(predicted, np.float64)
    active = np.asarray(active, np.float64)
    columns = ["decile", "customers", "predicted", "observed", "difference"]
    if len(predicted) == 0:
        return pd.DataFrame(columns=columns)
    ranks = pd.Series(predicted).rank(method="first").to_numpy()
    decile = np.minimum((ranks - 1) * bins // len(predicted), bins - 1).astype(int) + 1
    frame = pd.DataFrame({"decile": decile, "p": predicted, "a": active})
    table = frame.groupby("decile").agg(customers=("p", "size"), predicted=("p", "mean"),
                                        observed=("a", "mean")).reset_index()
    table["difference"] = table["observed"] - table["predicted"]
    return table[columns]


def calibration_error(table: pd.DataFrame) -> float:
    """The customer-weighted mean of |observed - predicted| over the deciles (the expected
    calibration error); NaN for an empty table."""
    if table.empty:
        return math.nan
    return float(np.average(np.abs(table["difference"]), weights=table["customers"]))


def interval_coverage(actual: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> float:
    """The share of customers whose realised purchases lie in [lower, upper] (NaN if none)."""
    actual = np.asarray(actual, np.float64)
    if actual.size == 0:
        return math.nan
    return float(np.mean((actual >= lower) & (actual <= upper)))


def band_columns(levels: Any) -> list[str]:
    """The tracking table's band columns for ``levels``: ``lower 95%``, ``upper 95%``..."""
    return [c for level in levels for c in (f"lower {100 * level:g}%", f"upper {100 * level:g}%")]


def tracking_curve(transaction, rfm: pd.DataFrame, holdout_times: np.ndarray, elapsed: float, *,
                   levels: Any, band_points: int, draws: int, seed: Any = 0,
                   points: int = 60) -> tuple[pd.DataFrame, str]:
    """Cumulative repeat purchases of the scored customers since the scoring date, realised
    and expected, with the central predictive band of the expected total at ``levels``.

    ``times``: each whole time unit up to ``elapsed`` and ``elapsed`` itself (at most
    ``points``, evenly spaced beyond that). The expected total is the model's at every time;
    the band (:func:`clvlab.models.totals.cumulative_purchase_fan`, ``draws`` parameter draws
    on top of the process noise) at ``band_points`` of them, evenly spread and always the last
    one (the others are NaN: not computed, to bound the job's time). A model without a source
    of parameter draws gets the band of process noise alone, and the note says so.

    Returns the table (``t``, ``expected``, ``realised``, ``total_sd`` and the band columns)
    and a note ("" when the band carries parameter uncertainty).
    """
    from clvlab.models.totals import cumulative_purchase_fan

    whole = np.arange(1.0, math.floor(elapsed) + 1.0)
    times = np.unique(np.append(whole[whole < elapsed - 1e-9], elapsed))
    if len(times) > points:
        times = np.linspace(elapsed / points, elapsed, points)
    realised = np.searchsorted(np.sort(np.asarray(holdout_times, np.float64)), times + 1e-9)
    expected = np.array([float(transaction.expected_purchases(rfm, t).sum()) for t in times])
    table = pd.DataFrame({"t": times, "expected": expected, "realised": realised.astype(float),
                          "total_sd": math.nan})
    for column in band_columns(levels):
        table[column] = math.nan
    k = max(1, min(int(band_points), len(times)))
    at = np.unique(np.round(np.linspace(len(times) - 1, 0, k)).astype(int))  # the last always
    note = ""
    try:
        fan = cumulative_purchase_fan(transaction, rfm, times[at], levels=tuple(levels),
                                      parameter_draws=int(draws), seed=seed)
    except ClvlabError as exc:  # no parameter draws (no finite covariance, no posterior)
        fan = cumulative_purchase_fan(transaction, rfm, times[at], levels=tuple(levels),
                                      parameter_draws=0, seed=seed)
        note = (f"the predictive band holds process noise only, no parameter uncertainty "
                f"({exc}); it is narrower than the model's whole uncertainty")
    for column in ["total_sd", *band_columns(levels)]:
        table.loc[at, column] = fan[column].to_numpy()
    return table, note
