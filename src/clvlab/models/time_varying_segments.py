"""Each customer's covariate path as the kernels read it: flattened, encoded segments.

A ``CovariatePaths`` (``clvlab.data.covariate_paths``) holds the raw pieces of calendar periods
in customer time. The kernels of the time-varying models want, per customer i, the segments
``offsets[i]..offsets[i+1]-1`` with their ends (``seg_end``, in the model's time unit since the
first purchase), their encoded covariates (one row each) and their repeat purchases. This module
builds that once per table: it puts the customers in the RFM table's order, adds static columns
taken from the RFM table (constant along the path, which is exactly the static-covariate model),
encodes each distinct covariate row once (a seasonal panel has a handful), and merges consecutive
segments whose encoded covariates are equal (exact: the rates are the same there), never across
the calibration end, so the fit's part of a path is a prefix of the prediction's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from clvlab.core.errors import ClvlabError, ClvlabWarning, DataValidationError, shown, warn
from clvlab.core.timeunits import UNIT_SECONDS

__all__ = ["Segments", "path_segments", "static_rows"]

#: relative tolerance when a path's calibration part must end at the customer's age T
_END_TOLERANCE = 1e-9


@dataclass
class Segments:
    """Flattened segments of N customers (the kernels' layout, see the module)."""

    offsets: np.ndarray      # int64 (N + 1)
    seg_end: np.ndarray      # float64 (n_seg,)
    covariates: np.ndarray   # float64 (n_seg, encoded covariates), on the user's scale
    counts: np.ndarray       # float64 (n_seg,): repeat purchases inside (0 where unknown)
    calibration: np.ndarray  # bool (n_seg,): the segment lies before the calibration end
    has_counts: bool         # whether the paths carried repeat purchases

    @property
    def n_customers(self) -> int:
        return len(self.offsets) - 1

    def customer_of_segment(self) -> np.ndarray:
        return np.repeat(np.arange(self.n_customers), np.diff(self.offsets))

    def first_rows(self) -> np.ndarray:
        """Each customer's first segment's covariates (a static covariate's value)."""
        return self.covariates[self.offsets[:-1]]

    def calibration_part(self) -> "Segments":
        """The segments before the calibration end (a prefix of every customer's)."""
        keep = self.calibration
        offsets = np.zeros(self.n_customers + 1, np.int64)
        offsets[1:] = np.cumsum(np.add.reduceat(keep.astype(np.int64), self.offsets[:-1])
                                if len(keep) else np.zeros(self.n_customers, np.int64))
        return Segments(offsets, self.seg_end[keep], self.covariates[keep], self.counts[keep],
                        self.calibration[keep], self.has_counts)


def _customer_runs(customer: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(first row of each run of equal ids, the run's id) of a column sorted by customer."""
    if len(customer) == 0:
        return np.zeros(0, np.int64), customer[:0]
    change = np.ones(len(customer), bool)
    change[1:] = customer[1:] != customer[:-1]
    starts = np.flatnonzero(change)
    return starts, customer[starts]


def static_rows(rfm: pd.DataFrame, columns: list[str], model: str,
                paths_hold: tuple[str, ...] = ()) -> pd.DataFrame:
    """The static covariates the RFM table gives (one row per customer)."""
    missing = [c for c in columns if c not in rfm.columns]
    if missing:
        raise ClvlabError(
            f"{model}: the covariates {missing} are neither in the covariate paths (they hold "
            f"{list(paths_hold)}) nor columns of the RFM table (it has "
            f"{[c for c in rfm.columns][:12]}): join them to the table (rfm_summary(..., "
            "customer_attributes=frame)) or build the paths from a panel that holds them")
    return rfm[columns]


def _split_columns(paths, columns: list[str], varying: list[str] | None, model: str):
    """(path columns, static columns). A fitted model says which columns varied along its paths
    (``varying``): those must come from the paths, the others from the RFM table, whatever else
    the paths hold, so that a prediction treats every column as the fit did (a time-varying
    column read from the table would be a constant, a static one read from a path would vary:
    either changes the model without a word)."""
    if varying is None:  # a fit: the paths decide
        return ([c for c in columns if c in paths.covariates],
                [c for c in columns if c not in paths.covariates])
    absent = [c for c in varying if c not in paths.covariates]
    if absent:
        raise ClvlabError(
            f"{model} was fitted with {absent} varying along the covariate paths, but these paths "
            f"do not hold {'it' if len(absent) == 1 else 'them'} (they hold "
            f"{list(paths.covariates)}): build them from the panel or calendar the fit used "
            "(clvlab.covariate_paths(panel, rfm, calendar=..., horizon=...)); a column of the "
            "RFM table would hold it constant, which is another model")
    static = [c for c in columns if c not in varying]
    table = paths.table
    moving = [c for c in static if c in paths.covariates
              and (table.groupby("customer", sort=False)[c].nunique(dropna=False) > 1).any()]
    if moving:
        warn(
            f"{model} was fitted with {moving} static (a column of the RFM table), so it reads "
            f"{'it' if len(moving) == 1 else 'them'} from the table; the values changing along "
            "these covariate paths are not used. To let them vary, refit with paths that hold "
            "them", ClvlabWarning)
    return list(varying), static


def path_segments(paths, rfm: pd.DataFrame, columns: list[str], encoder, *,
                  model: str, merge: bool = True, varying: list[str] | None = None) -> Segments:
    """The encoded segments of the RFM table's customers, in its order.

    ``columns``: the raw covariate columns the model uses. For a fit (``varying=None``) those in
    ``paths.covariates`` come from the path, the others from the RFM table (static); a fitted
    model gives ``varying``, the columns that came from its paths (see ``_split_columns``).
    ``encoder``: the model's ``CovariateEncoder`` (its ``transform`` runs once per distinct
    covariate row)."""
    table = paths.table
    T = rfm["T"].to_numpy(np.float64)
    path_columns, static_columns = _split_columns(paths, columns, varying, model)
    ids = table["customer"].to_numpy()
    starts, run_ids = _customer_runs(ids)
    lengths = np.diff(np.append(starts, len(ids)))
    where = pd.Index(run_ids).get_indexer(rfm.index)
    if (where < 0).any():
        position = int(np.flatnonzero(where < 0)[0])
        raise ClvlabError(
            f"{model}: customer {shown(rfm.index[position])} of the RFM table has no covariate path "
            f"({(where < 0).sum():,} customers have none); build the paths from this table: "
            "clvlab.covariate_paths(panel, rfm, ...)")
    # gather each customer's rows in the table's order (rows of one customer are contiguous)
    count = lengths[where]
    offsets = np.zeros(len(rfm) + 1, np.int64)
    offsets[1:] = np.cumsum(count)
    rows = np.repeat(starts[where] - offsets[:-1], count) + np.arange(offsets[-1])
    seg_end = table["end"].to_numpy(np.float64)[rows]
    customer = np.repeat(np.arange(len(rfm)), count)
    raw = table.iloc[rows][path_columns].reset_index(drop=True) if path_columns else pd.DataFrame(index=range(len(rows)))
    if static_columns:
        static = static_rows(rfm, static_columns, model, tuple(paths.covariates))
        for name in static_columns:
            raw[name] = static[name].to_numpy()[customer]
    raw = raw[columns] if columns else raw
    if "repeat_purchases" in table.columns:
        counts, has_counts = table["repeat_purchases"].to_numpy(np.float64)[rows], True
    else:
        counts, has_counts = np.zeros(len(rows)), False
    # the calibration part ends at T: the builder split every path there
    scale = np.maximum(np.abs(T[customer]), 1.0)
    calibration = seg_end <= T[customer] + _END_TOLERANCE * scale
    last_calibration = _last_true_per_customer(calibration, offsets)
    bad = (last_calibration < 0) | ~np.isclose(
        np.where(last_calibration >= 0, seg_end[np.maximum(last_calibration, 0)], np.nan), T,
        rtol=_END_TOLERANCE, atol=_END_TOLERANCE)
    if bad.any():
        position = int(np.flatnonzero(bad)[0])
        reached = seg_end[last_calibration[position]] if last_calibration[position] >= 0 else 0.0
        raise ClvlabError(
            f"{model}: the covariate path of customer {shown(rfm.index[position])} does not end its "
            f"calibration part at the customer's age T = {T[position]:g} (it reaches "
            f"{reached:g}); the paths and the RFM table must share the calibration end and the "
            "time unit: build the paths from this table (clvlab.covariate_paths(panel, rfm, ...))")
    try:
        encoded = _encode(raw, encoder, model)
    except DataValidationError as error:
        raise _where(error, paths, rfm, customer, offsets, seg_end) from None
    segments = Segments(offsets, seg_end, encoded, counts, calibration, has_counts)
    return _merged(segments) if merge else segments


def _last_true_per_customer(flags: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """The index of each customer's last True flag (-1 where none)."""
    positions = np.where(flags, np.arange(len(flags)), -1)
    out = np.full(len(offsets) - 1, -1, np.int64)
    nonempty = np.diff(offsets) > 0
    if len(positions):
        out[nonempty] = np.maximum.reduceat(positions, offsets[:-1][nonempty])
    return out


def _encode(raw: pd.DataFrame, encoder, model: str) -> np.ndarray:
    """``encoder.transform`` once per distinct covariate row, spread back. An encoder's error
    names the segment (its position in ``raw``) under "<row>"."""
    if raw.shape[1] == 0:
        return np.empty((len(raw), 0))
    codes = raw.groupby(list(raw.columns), sort=False, dropna=False).ngroup().to_numpy()
    if (codes < 0).any():  # a missing value: let the encoder name it
        return encoder.transform(raw, model=model)
    first = np.full(codes.max() + 1, -1, np.int64)
    order = np.arange(len(codes))[::-1]
    first[codes[order]] = order
    distinct = raw.iloc[first].reset_index(drop=True)
    try:
        return encoder.transform(distinct, model=model)[codes]
    except DataValidationError as error:
        if error.row is not None and isinstance(error.row.get("<row>"), (int, np.integer)):
            error.row["<row>"] = int(first[error.row["<row>"]])
        raise


def _where(error: DataValidationError, paths, rfm, customer, offsets, seg_end):
    """The encoder's error with the customer and the calendar period of the segment at fault
    in place of a position in an internal table."""
    row = dict(error.row or {})
    position = row.pop("<row>", None)
    if not isinstance(position, (int, np.integer)) or not 0 <= position < len(customer):
        return error
    i = int(customer[position])
    start = seg_end[position - 1] if position > offsets[i] else 0.0
    unit = pd.Timedelta(seconds=UNIT_SECONDS[paths.time_unit])
    first_purchase = paths.calibration_end - float(rfm["T"].iloc[i]) * unit
    label = rfm.index[i]
    where = {"customer": label.item() if isinstance(label, np.generic) else label,
             "from": (first_purchase + float(start) * unit).round("s"),
             "to": (first_purchase + float(seg_end[position]) * unit).round("s")}
    return DataValidationError(error.column, error.rule, {**where, **row}, error.hint)


def _merged(segments: Segments) -> Segments:
    """Consecutive segments of a customer with equal covariates (and on the same side of the
    calibration end) become one: the rates are equal there, so every integral is unchanged."""
    n = len(segments.seg_end)
    if n == 0:
        return segments
    starts_customer = np.zeros(n, bool)
    starts_customer[segments.offsets[:-1][np.diff(segments.offsets) > 0]] = True
    new = starts_customer.copy()
    new[1:] |= np.any(segments.covariates[1:] != segments.covariates[:-1], axis=1)
    new[1:] |= segments.calibration[1:] != segments.calibration[:-1]
    group = np.cumsum(new) - 1
    keep_last = np.append(np.flatnonzero(new[1:]), n - 1)  # last row of each merged run
    counts = np.bincount(group, weights=segments.counts, minlength=group[-1] + 1)
    per_customer = np.add.reduceat(new.astype(np.int64), segments.offsets[:-1]) if n else 0
    per_customer = np.where(np.diff(segments.offsets) > 0, per_customer, 0)
    offsets = np.zeros(len(segments.offsets), np.int64)
    offsets[1:] = np.cumsum(per_customer)
    return Segments(offsets, segments.seg_end[keep_last], segments.covariates[keep_last],
                    counts, segments.calibration[keep_last], segments.has_counts)
