"""The piece builder every engine of :func:`clvlab.data.covariate_paths.covariate_paths` shares:
rows of a panel (customer position ``pos``, period start ``p`` in microseconds, covariates),
sorted by customer and period, checked by the panel's rules and cut into pieces of a customer's
path (:func:`build_pieces`, through :func:`checked_pieces` for batches), and the repeat purchases
per calendar period that the pieces count (:func:`repeat_counts`).

Kept apart from the engines (:mod:`clvlab.data.covariate_engines`) and the front door so that
both import it and neither imports the other in a circle; :class:`PieceSpec` and the functions
here are picklable, for Spark's executors.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Iterator

import numpy as np
import pandas as pd

from clvlab.core.errors import DataValidationError
from clvlab.core.timeunits import UNIT_SECONDS
from clvlab.data.covariate_grid import US, floor_period, next_period, week_anchor, weekday_of
from clvlab.data.covariate_panel import PathWindow, check_rows

__all__ = ["PieceSpec", "build_pieces", "checked_pieces", "customer_span", "first_weekday",
           "panel_anchor", "repeat_counts", "INT_MAX", "INT_MIN"]

INT_MAX, INT_MIN = np.iinfo(np.int64).max, np.iinfo(np.int64).min


@dataclass(frozen=True)
class PieceSpec:
    """What checking and cutting rows needs besides them (picklable, for Spark's executors)."""

    time_unit: str
    cal_us: float
    end_us: float
    horizon: float
    merge: bool
    counts: bool
    calendar: pd.DataFrame | None  # p and the calendar's covariates, or None
    weekday: int | None            # the weekly grid's anchor (Monday 0)
    names: tuple[str, str]         # the panel's customer and period columns
    covariates: tuple[str, ...]    # the panel's covariates (the calendar's are in calendar)
    anchor: str | None = None      # where the weekday comes from, in words (grid messages)
    zone_hint: str | None = None   # zoned periods converted to the table's zone (grid messages)


def build_pieces(rows: pd.DataFrame, window: PathWindow | None, counts: pd.DataFrame | None,
                 spec: PieceSpec) -> pd.DataFrame:
    """Pieces of rows ``pos`` (customer position), ``p`` (period start, microseconds) and the
    panel's covariates, sorted by (pos, p), whole customers only (``cid``, ``f``, ``T``, ``n``
    optional: ``f`` and ``T`` are read from ``window`` when absent, ``n`` from ``counts``).

    Period [p, next) is clipped to [first purchase f, path end E] and split at calibration_end;
    ``start``/``end`` are (boundary - f) / unit, except calibration_end, which is T exactly, and
    E, which is T + horizon. With ``spec.merge`` neighbours of a customer with equal covariates
    merge (never across calibration_end): ``end`` from the last, counts added.
    """
    pos, p = rows["pos"].to_numpy(np.int64), rows["p"].to_numpy(np.int64)
    f = rows["f"].to_numpy(np.int64) if "f" in rows else window.first_us[pos]
    T = rows["T"].to_numpy(np.float64) if "T" in rows else window.T[pos]
    after = next_period(p, spec.time_unit)
    a = np.maximum(p, f).astype(np.float64)
    b = np.minimum(after.astype(np.float64), spec.end_us)
    empty = (f >= spec.end_us) & (p <= f) & (f < after)  # a path of length 0 keeps one piece
    keep = np.flatnonzero((b > a) | empty)
    split = (a[keep] < spec.cal_us) & (spec.cal_us < b[keep])
    reps = 1 + split.astype(np.int64)
    take = np.repeat(keep, reps)
    second = np.zeros(len(take), bool)  # the part after calibration_end of a split period
    second[(np.cumsum(reps) - 1)[split]] = True
    A, B = a[take], b[take]
    B[np.flatnonzero(second) - 1] = spec.cal_us
    A[second] = spec.cal_us
    ft, Tt, unit = f[take].astype(np.float64), T[take], float(UNIT_SECONDS[spec.time_unit] * US)
    start = np.where(A == spec.cal_us, Tt, (A - ft) / unit)
    end = np.where(B == spec.cal_us, Tt,
                   np.where(B == spec.end_us, Tt + spec.horizon, (B - ft) / unit))
    n = np.zeros(len(take), np.int64)
    if spec.counts:
        n = rows["n"].to_numpy(np.int64)[take] if "n" in rows else pd.DataFrame(
            {"pos": pos[take], "p": p[take]}).merge(counts, on=["pos", "p"], how="left")["n"] \
            .fillna(0).to_numpy(np.int64)
        n[second] = 0
    calendar = spec.calendar
    at = None if calendar is None else np.searchsorted(calendar["p"].to_numpy(), p[take])
    if spec.merge and len(take):
        new = np.ones(len(take), bool)  # where a merged piece starts
        new[1:] = (pos[take][1:] != pos[take][:-1]) | (A[1:] == spec.cal_us)
        for column in spec.covariates:
            new[1:] |= _changes(rows[column], take)
        for column in ([] if calendar is None else calendar.columns[1:]):
            new[1:] |= _changes(calendar[column], at)
        heads = np.flatnonzero(new)
        start, end = start[heads], end[np.r_[heads[1:] - 1, len(take) - 1]]
        n, take = np.add.reduceat(n, heads), take[heads]
        at = None if at is None else at[heads]
    table = pd.DataFrame({"pos": pos[take], "start": start, "end": end, "repeat_purchases": n})
    for column in spec.covariates:
        table[column] = rows[column].iloc[take].reset_index(drop=True)
    for column in ([] if calendar is None else calendar.columns[1:]):
        table[column] = calendar[column].iloc[at].reset_index(drop=True)
    return table


def _changes(values: pd.Series, take: np.ndarray) -> np.ndarray:
    """Whether each value of ``values[take]`` differs from the one before (exact equality)."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        values = values.cat.codes
    if isinstance(values.dtype, np.dtype):
        taken = values.to_numpy()[take]
        return taken[1:] != taken[:-1]
    taken = values.array.take(take)  # text in Arrow or pandas' string dtype: compared in place
    return np.asarray(taken[1:] != taken[:-1], dtype=bool)


def checked_pieces(batches: Iterable[pd.DataFrame], window: PathWindow | None,
                   counts: pd.DataFrame | None, spec: PieceSpec) -> Iterator[pd.DataFrame]:
    """Check and cut batches of rows sorted by (pos, p): a customer cut by a batch boundary is
    held back and joined to the next batch, so that checks and merging see whole customers."""
    carry = None
    for batch in batches:
        if carry is not None and len(carry):
            batch = pd.concat([carry, batch], ignore_index=True)
        if len(batch) == 0:
            continue
        pos = batch["pos"].to_numpy()
        cut = int(np.searchsorted(pos, pos[-1], "left"))
        carry = batch.iloc[cut:]
        if cut:
            yield _checked(batch.iloc[:cut], window, counts, spec)
    if carry is not None and len(carry):
        yield _checked(carry, window, counts, spec)


def _checked(rows, window, counts, spec) -> pd.DataFrame:
    check_rows(rows, list(spec.covariates), spec.names, spec.time_unit, spec.weekday,
               spec.anchor, spec.zone_hint)
    return build_pieces(rows, window, counts, spec)


def customer_span(n: int, pos: np.ndarray, first: np.ndarray, last: np.ndarray | None = None):
    """First and last period start of each of ``n`` customers' rows (INT_MAX, INT_MIN: none):
    from rows sorted by (pos, p) (``first`` is p, ``last`` None), or from per-customer minima
    and maxima (NaN where a customer has no rows)."""
    low, high = np.full(n, INT_MAX), np.full(n, INT_MIN)
    if last is None:
        head = np.flatnonzero(np.concatenate([[True], pos[1:] != pos[:-1]])) if len(pos) else pos
        tail = np.concatenate([head[1:] - 1, [len(pos) - 1]]) if len(pos) else pos
        low[pos[head]], high[pos[tail]] = first[head], first[tail]
    else:
        seen = np.flatnonzero(pd.notna(first))
        low[pos[seen]] = np.asarray(first, np.float64)[seen].astype(np.int64)
        high[pos[seen]] = np.asarray(last, np.float64)[seen].astype(np.int64)
    return low, high


def first_weekday(low: np.ndarray, high: np.ndarray) -> int | None:
    """The weekly anchor: the weekday of the first row in (customer, period) order."""
    seen = np.flatnonzero(low != INT_MAX)
    return int(weekday_of(low[seen[0]])) if len(seen) else None


def panel_anchor(low: np.ndarray, high: np.ndarray, window: PathWindow,
                 names: tuple[str, str]) -> tuple[int | None, str | None, int | None]:
    """The weekly anchor, where it comes from in words (the panel's first row in (customer,
    period) order, as the user knows it) and that row's period start (None: no rows)."""
    seen = np.flatnonzero(low != INT_MAX)
    if not len(seen):
        return None, None, None
    first = int(low[seen[0]])
    weekday = int(weekday_of(first))
    customer = window.customers[seen[0]]
    row = {names[0]: customer.item() if isinstance(customer, np.generic) else customer,
           names[1]: pd.Timestamp(first, unit="us")}
    return weekday, week_anchor("panel", weekday, row), first


def repeat_counts(purchases: pd.DataFrame, window: PathWindow, weekday: int | None) -> pd.DataFrame:
    """Repeat purchases per (pos, calendar period start ``p``), ``n``, from the purchase periods
    ``pos, p``; each customer's first purchase and frequency are checked against the table."""
    purchases = purchases.sort_values(["pos", "p"], kind="stable")
    pos, p = purchases["pos"].to_numpy(np.int64), purchases["p"].to_numpy(np.int64)
    n = np.bincount(pos, minlength=len(window.T))
    head = np.concatenate([[True], pos[1:] != pos[:-1]])
    first = np.full(len(window.T), INT_MIN)
    first[pos[head]] = p[head]
    wrong = (n - 1 != window.frequency) | (first != window.first_us)
    if wrong.any():
        i = int(np.flatnonzero(wrong)[0])
        found = "no purchase" if n[i] == 0 else (
            f"{n[i] - 1} repeat purchases after a first purchase at "
            f"{pd.Timestamp(first[i], unit='us')}")
        customer = window.customers[i]
        customer = customer.item() if isinstance(customer, np.generic) else customer
        raise DataValidationError(
            "frequency", f"the transactions do not match the RFM table: by calibration_end the "
            f"log has {found} for customer {customer!r}; the table has frequency "
            f"{window.frequency[i]} and a first purchase at "
            f"{pd.Timestamp(window.first_us[i], unit='us')}",
            {window.customer_col: customer, "frequency": int(window.frequency[i])},
            hint="pass the log the table was built from, with its date_col, amount_col (refunds "
                 "are no purchases) and date_format; the merge period and time zone are the "
                 "table's")
    # a purchase at calibration_end itself belongs to the last piece before it
    at = np.where(p >= window.cal_us, p - 1, p)[~head]
    counted = pd.DataFrame({"pos": pos[~head], "p": floor_period(at, window.time_unit, weekday)})
    return counted.groupby(["pos", "p"], sort=True).size().rename("n").reset_index()
