"""Customers' covariate paths: each customer's life cut into pieces of calendar periods, with the
time-varying covariates of each piece and the repeat purchases inside it.

The input rules (grid, gaps, coverage, values) are :mod:`clvlab.data.covariate_panel`'s. Every
engine selects the same rows (the RFM table's customers, the window of :func:`window_bounds`),
sorted by customer and period, and hands them to the same checks and piece builder
(:func:`build_pieces`), so their results are identical: pandas for a DataFrame; DuckDB for
Parquet/CSV files or a relation (selected inside DuckDB and streamed in batches, so the panel may
be larger than memory; the pieces, merged, are far smaller); Spark for a Spark DataFrame (checked
and cut into pieces on the executors, by customer, and the pieces collected).
"""

from __future__ import annotations

import functools
import os
import pickle
from dataclasses import dataclass
from typing import Any, Iterable, Iterator

import numpy as np
import pandas as pd

from clvlab.core.errors import ClvlabError, DataValidationError
from clvlab.core.timeunits import UNIT_SECONDS
from clvlab.data.covariate_panel import (RESERVED, US, PathWindow, calendar_rows, check_coverage,
                                         check_rows, floor_period, next_period,
                                         panel_frame_rows, path_window, weekday_of,
                                         window_bounds)

__all__ = ["CovariatePaths", "covariate_paths", "PieceSpec", "build_pieces", "repeat_counts"]

BATCH_ROWS = 1_000_000  # rows per batch streamed from DuckDB
INT_MAX, INT_MIN = np.iinfo(np.int64).max, np.iinfo(np.int64).min


@dataclass(frozen=True, eq=False)
class CovariatePaths:
    """Each customer's path as pieces of calendar periods.

    ``table``: one row per (customer, piece), sorted by the customer's position in the RFM table
    then ``start``; every customer has at least one row. Columns: ``customer`` (the RFM index
    value), ``start`` and ``end`` (float, time units since the customer's first purchase,
    contiguous from 0; exactly ``T`` at calibration_end and ``T + horizon`` at the path's end),
    ``repeat_purchases`` (int64, only with transactions: the calibration repeat purchases inside
    the piece, one at calibration_end itself in the piece ending there; 0 after
    calibration_end), then the covariates with the panel's values (not encoded). No piece
    straddles calibration_end; only a path of length 0 (T = 0, no horizon) has start == end.
    """

    table: pd.DataFrame
    covariates: tuple[str, ...]
    time_unit: str
    calibration_end: pd.Timestamp
    path_end: pd.Timestamp      # every customer's path reaches it (>= calibration_end)
    customers: pd.Index         # the RFM table's index, in its order

    @property
    def horizon(self) -> float:
        """(path_end - calibration_end) in time units; 0.0 for a fit's paths."""
        return (self.path_end - self.calibration_end) / pd.Timedelta(
            seconds=UNIT_SECONDS[self.time_unit])

    def offsets(self) -> np.ndarray:
        """int64 (N+1): customer i (RFM order) owns rows offsets[i]..offsets[i+1]-1."""
        counts = np.bincount(self.customers.get_indexer(self.table["customer"]),
                             minlength=len(self.customers))
        return np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)


def covariate_paths(panel: Any, rfm: pd.DataFrame, *, transactions: Any = None,
                    calendar: pd.DataFrame | None = None, horizon: float | None = None,
                    customer_col: str | None = None, period_col: str = "period",
                    covariates: Iterable[str] | None = None, merge: bool = True,
                    date_col: str | None = None, amount_col: str | None = None,
                    date_format: str | None = None, engine: str = "auto",
                    connection: Any = None) -> CovariatePaths:
    """Cut each customer's life into pieces of calendar periods carrying the covariates.

    Parameters
    ----------
    panel
        One row per (customer, period) (rules: :mod:`clvlab.data.covariate_panel`): a pandas
        DataFrame; a path, glob or list of Parquet or CSV files, or a DuckDB relation (DuckDB
        engine); a Spark DataFrame (Spark engine). None with a ``calendar``: only its covariates.
    rfm
        The RFM table of :func:`clvlab.rfm_summary` with its ``attrs["clvlab"]`` (time unit,
        calibration_end, merge period, time zone, customer column). A customer's first
        purchase is ``calibration_end - T``, which must land on the merge-period grid.
    transactions
        The log the table was built from (DataFrame, files or Spark DataFrame), read with the
        table's merge period and time zone and ``date_col``, ``amount_col``, ``date_format``
        (by default the table's attrs, when they record them, else rfm_summary's defaults).
        Gives ``repeat_purchases``: merged purchase periods after the first, up to
        calibration_end, as ``frequency`` counts them; each customer's total must equal it.
    calendar
        Covariates shared by all customers (pandas, e.g. :func:`seasonal_covariates`), one row
        per period, joined on the period (its column ``period_col`` if it has one, else
        ``"period"``); same rules, and it must cover every needed period.
    horizon
        Extend every path to ``calibration_end + horizon`` (time units), for predictions; the
        panel and calendar must cover it.
    customer_col, period_col
        The panel's columns (customer_col: by default the RFM table's customer column).
    covariates
        Columns to keep (of the panel and the calendar); all others by default.
    merge
        Merge neighbouring pieces of a customer with identical covariates (never across
        calibration_end); exact for the likelihood, and seasonal paths become far shorter.
    engine
        ``"auto"`` (by the panel's type), ``"pandas"``, or ``"duckdb"`` (a DataFrame too).
    connection
        DuckDB: a connection to use (e.g. with a memory_limit), or the one a relation belongs
        to (by default a private one; DuckDB's default connection for a relation).

    Raises
    ------
    DataValidationError naming the column, the rule and an example row (customer, period,
    value): a broken panel or calendar rule, an uncovered customer, a T off the merge grid,
    repeat purchases that do not add up to ``frequency``. ClvlabError for an RFM table without
    its attrs or a bad option.

    Example
    -------
    >>> paths = covariate_paths(dyncov, rfm, transactions=log, period_col="Cov.Date",
    ...                         calendar=seasonal_covariates("2005-01-02", "2006-12-31", "W",
    ...                                                      quarter=True))  # doctest: +SKIP
    """
    window = path_window(rfm, horizon, need_frequency=transactions is not None)
    names = (customer_col or window.customer_col, period_col)
    kind = _engine(engine, panel)
    cal_period = period_col if calendar is not None and period_col in calendar.columns \
        else "period"
    cal_columns = [] if calendar is None else [c for c in calendar.columns if c != cal_period]
    source: Any = None
    if kind == "duckdb":
        source = DuckDBRows(panel, window, names, connection)
    elif kind == "spark":
        source = SparkRows(panel, window, names)
    panel_columns = [] if panel is None else [
        c for c in (source.columns if source else panel.columns) if c not in names]
    panel_covs, cal_covs = _choose(covariates, panel_columns, cal_columns)
    try:
        if panel is not None and source is None:
            source = PandasRows(*panel_frame_rows(panel, window, customer_col=names[0],
                                                  period_col=period_col, covariates=panel_covs),
                                len(window.T))
        elif source is not None:
            source.select(panel_covs)
        weekday = None if source is None else first_weekday(*source.span)
        cal = None
        if calendar is not None:
            cal, weekday = calendar_rows(calendar, window, period_col=cal_period,
                                         covariates=cal_covs, weekday=weekday)
        first, last = window.needed(weekday)
        if cal is not None:
            p = cal["p"].to_numpy()
            check_coverage(first, last, np.full(len(first), p[0] if len(p) else INT_MAX),
                           np.full(len(first), p[-1] if len(p) else INT_MIN), window,
                           (None, cal_period), "the calendar")
        counts = None if transactions is None else repeat_counts(
            purchase_periods(transactions, window, date_col, amount_col, date_format,
                             rfm.attrs.get("clvlab", {})), window, weekday)
        spec = PieceSpec(window.time_unit, window.cal_us, window.end_us, window.horizon, merge,
                         counts is not None, cal, weekday, names, tuple(panel_covs))
        if source is None:
            pieces = build_pieces(_calendar_only(cal, first, last), window, counts, spec)
        else:
            pieces = source.pieces(window, counts, spec)
            check_coverage(first, last, *source.span, window, names)
    finally:
        if source is not None:
            source.close()
    return _finish(pieces, window, panel_covs + cal_covs, calendar, counts is not None)


def _engine(engine: str, panel: Any) -> str:
    if engine not in ("auto", "pandas", "duckdb"):
        raise ClvlabError(f"engine {engine!r} is not supported; use 'auto', 'pandas' or 'duckdb'")
    if hasattr(panel, "sparkSession"):
        return "spark"
    if isinstance(panel, (str, os.PathLike, list, tuple)) or type(panel).__name__ == \
            "DuckDBPyRelation":
        return "duckdb"
    if panel is not None and not isinstance(panel, pd.DataFrame):
        raise ClvlabError(f"panel must be a pandas or Spark DataFrame, Parquet/CSV files or a "
                          f"DuckDB relation, not {type(panel).__name__}")
    return "duckdb" if engine == "duckdb" and panel is not None else "pandas"


def _choose(wanted: Iterable[str] | None, panel: list[str], calendar: list[str]):
    wanted = list(panel) + list(calendar) if wanted is None else [str(c) for c in wanted]
    for name in wanted:
        if name in RESERVED:
            raise DataValidationError(name, f"a covariate may not be named like a column of the "
                                      f"paths table ({', '.join(RESERVED)}); rename it")
        if name in panel and name in calendar:
            raise DataValidationError(name, "is a column of both the panel and the calendar; "
                                      "rename one")
        if name not in panel and name not in calendar:
            raise DataValidationError(name, "covariate is in neither the panel nor the calendar",
                                      hint=f"columns present: {panel + calendar}")
    if not wanted:
        raise ClvlabError("no covariate: the panel and calendar hold only ids and periods")
    return [c for c in wanted if c in panel], [c for c in wanted if c in calendar]


def _calendar_only(cal: pd.DataFrame, first: np.ndarray, last: np.ndarray) -> pd.DataFrame:
    """Rows (pos, p) of every customer's needed periods, from a calendar alone."""
    p = cal["p"].to_numpy()
    lo, hi = np.searchsorted(p, first), np.searchsorted(p, last, "right")
    size = hi - lo
    pos = np.repeat(np.arange(len(first)), size)
    index = np.arange(len(pos)) - np.repeat(np.cumsum(size) - size, size) + lo[pos]
    return pd.DataFrame({"pos": pos, "p": p[index]})


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
    check_rows(rows, list(spec.covariates), spec.names, spec.time_unit, spec.weekday)
    return build_pieces(rows, window, counts, spec)


def _finish(pieces, window: PathWindow, covariates, calendar, has_counts) -> CovariatePaths:
    if not isinstance(pieces, pd.DataFrame):
        pieces = pd.concat(list(pieces), ignore_index=True)
    pos, start = pieces["pos"].to_numpy(), pieces["start"].to_numpy()
    if not np.all((pos[1:] > pos[:-1]) | ((pos[1:] == pos[:-1]) & (start[1:] >= start[:-1]))):
        pieces = pieces.iloc[np.lexsort((start, pos))].reset_index(drop=True)  # Spark's order
    pos = pieces.pop("pos").to_numpy()
    pieces.insert(0, "customer", window.customers.take(pos))
    for column in covariates:  # the calendar's dtypes (categories) from every engine
        if calendar is not None and column in calendar.columns:
            pieces[column] = pieces[column].astype(calendar[column].dtype)
    if has_counts:
        total = np.bincount(pos, weights=pieces["repeat_purchases"], minlength=len(window.T))
        if not np.array_equal(total, window.frequency):
            raise ClvlabError("internal: the pieces' repeat purchases do not add up to frequency")
    else:
        pieces = pieces.drop(columns="repeat_purchases")
    return CovariatePaths(table=pieces, covariates=tuple(covariates), time_unit=window.time_unit,
                          calibration_end=window.calibration_end, path_end=window.path_end,
                          customers=window.customers)


class PandasRows:
    """The pandas engine: the selected rows of a DataFrame panel, in batches."""

    def __init__(self, pos: np.ndarray, p: np.ndarray, batches: Iterator[pd.DataFrame], n: int):
        self.batches, self.span = batches, customer_span(n, pos, p)

    def pieces(self, window, counts, spec):
        return list(checked_pieces(self.batches, window, counts, spec))

    def close(self):
        self.batches = None


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


# ---- repeat purchases -------------------------------------------------------------------------

def purchase_periods(transactions, window: PathWindow, date_col, amount_col, date_format,
                     info: dict) -> pd.DataFrame:
    """``pos``, ``p`` (microseconds) of each merged calibration purchase period of the RFM
    table's customers: the periods rfm_summary counts (refund-only periods set aside)."""
    date_col = date_col or info.get("date_col") or "date"
    amount_col = amount_col or info.get("amount_col")
    date_format = date_format or info.get("date_format")
    if hasattr(transactions, "sparkSession"):
        return spark_purchases(transactions, window, date_col, amount_col, date_format)
    from clvlab.data.attributes import matching_ids
    from clvlab.data.rfm_io import read_files
    from clvlab.data.rfm_pandas import merge_periods, validated_columns
    from clvlab.data.rfm_rules import make_settings

    settings = make_settings(customer_col=window.customer_col, date_col=date_col,
                             amount_col=amount_col, time_unit=window.time_unit,
                             date_format=date_format, timezone=window.timezone,
                             merge_period=window.merge_period)
    frame = transactions if isinstance(transactions, pd.DataFrame) else read_files(transactions)
    ids, ts, amount = validated_columns(frame, settings)
    keep = (ts <= window.calibration_end).to_numpy()
    periods, _ = merge_periods(ids.to_numpy()[keep], ts[keep],
                               amount[keep] if amount is not None else None, False,
                               settings.merge_period)
    keys, log_keys = matching_ids(window.customers, pd.Index(periods["cid"]), "the RFM table",
                                  "the transactions")
    pos = keys.get_indexer(log_keys)
    return pd.DataFrame({"pos": pos, "p": periods["p"].to_numpy(np.int64) * US})[pos >= 0]


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


def spark_partition(batches: Iterator[pd.DataFrame], spec: PieceSpec, types: dict[str, str]):
    """Spark's mapInPandas function: check and cut one partition (rows sorted by pos, p), a
    broken rule returned as a row with the pickled error (raised on the driver). Covariates
    travel as c0, c1... (Spark cannot pass names with dots to pandas functions)."""
    names = list(spec.covariates) + ([] if spec.calendar is None else
                                     list(spec.calendar.columns[1:]))
    inner = {name: f"c{i}" for i, name in enumerate(names)}
    outer = {v: k for k, v in inner.items()}
    try:
        for pieces in checked_pieces((b.rename(columns=outer) for b in batches), None, None, spec):
            yield pieces.rename(columns=inner).astype(types).assign(error=None)
    except DataValidationError as exc:
        error = pickle.dumps((exc.column, exc.rule, exc.row, exc.hint))
        yield pd.DataFrame({**{c: [None] for c in types}, "error": [error]})


def raise_pickled(error: bytes) -> None:
    raise DataValidationError(*pickle.loads(error))


# ---- DuckDB and Spark: the same rows, selected where the panel lives ----------------------------

def customer_keys(window: PathWindow, panel_ids_are_text: bool) -> pd.DataFrame:
    """The table the panel joins: ``cid``, ``pos``, ``f``, ``T`` and the window's bounds ``lo``,
    ``hi`` (exclusive). Text ids against whole-number ids are matched as text (a warning)."""
    import warnings

    from clvlab.core.errors import ClvlabWarning
    from clvlab.data.attributes import ids_as_text

    ids = window.customers
    if panel_ids_are_text != (pd.api.types.infer_dtype(ids) in ("string", "empty")):
        sides = ("the covariate panel", "the RFM table")[::1 if panel_ids_are_text else -1]
        warnings.warn(f"customer ids are text in {sides[0]} and whole numbers in {sides[1]}: "
                      "they were matched as text (the number 7 matches '7', not '007')",
                      ClvlabWarning, stacklevel=4)
        ids = ids_as_text(ids)
    low, high = window_bounds(window)
    return pd.DataFrame({"cid": np.asarray(ids), "pos": np.arange(len(ids), dtype=np.int64),
                         "f": window.first_us, "T": window.T, "lo": low,
                         "hi": np.full(len(ids), high)})


def _bad_period(row, names) -> None:
    from clvlab.data.rfm_pandas import date_rule

    if row is not None:
        raise DataValidationError(names[1], "date is missing" if row[1] is None else
                                  date_rule(None), {names[0]: row[0], names[1]: row[1]})


class DuckDBRows:
    """The DuckDB engine: the panel's rows selected and sorted in DuckDB, streamed in batches."""

    def __init__(self, panel: Any, window: PathWindow, names: tuple[str, str], connection: Any):
        import duckdb

        from clvlab.data.rfm_duckdb import new_connection
        from clvlab.data.rfm_io import expand_paths, file_format

        self.window, self.names = window, names
        relation = type(panel).__name__ == "DuckDBPyRelation"
        self.base = connection or (duckdb.default_connection() if relation else new_connection())
        self.own = None if connection is not None or relation else self.base  # closed when done
        self.con = self.base.cursor()
        if isinstance(panel, pd.DataFrame) or relation:
            self.source = "clvlab_covariate_panel"
            try:
                self.con.register(self.source, panel)
            except duckdb.Error as exc:
                raise ClvlabError(f"DuckDB could not read the covariate panel ({exc}); a "
                                  "relation needs the connection it belongs to "
                                  "(connection=...)") from None
        else:
            files = expand_paths(panel)
            listed = "[" + ", ".join("'" + f.replace("'", "''") + "'" for f in files) + "]"
            self.source = (f"read_parquet({listed}, union_by_name = true)"
                           if file_format(files) == "parquet" else
                           f"read_csv({listed}, union_by_name = true, dateformat = '%Y-%m-%d')")
        try:
            self.types = {r[0]: r[1] for r in
                          self.con.execute(f"DESCRIBE SELECT * FROM {self.source}").fetchall()}
        except duckdb.Error as exc:
            raise ClvlabError(f"DuckDB could not read the covariate panel: {exc}") from None
        self.columns = list(self.types)

    def select(self, covariates: list[str]) -> None:
        from clvlab.data.rfm_pandas import NUMBERS_ARE_NOT_DATES, OFFSET_PATTERN

        customer, period = self.names
        for column in [customer, period, *covariates]:
            if column not in self.types:
                raise DataValidationError(column, "is missing from the covariate panel",
                                          hint=f"columns present: {self.columns}")
        text = self.types[customer] == "VARCHAR"
        keys = customer_keys(self.window, text)
        self.con.register("clvlab_covariate_customers", keys)
        kind, tz = self.types[period], self.window.timezone.replace("'", "''")
        if kind.startswith("TIMESTAMP WITH TIME ZONE"):
            p = f"epoch_us(timezone('{tz}', d))"
        elif kind.startswith(("TIMESTAMP", "DATE")):
            p = "epoch_us(CAST(d AS TIMESTAMP))"
        elif kind == "VARCHAR":
            p = (f"epoch_us(CASE WHEN regexp_matches(d, '{OFFSET_PATTERN}') THEN timezone('{tz}', "
                 "TRY_CAST(trim(d) AS TIMESTAMPTZ)) ELSE TRY_CAST(trim(d) AS TIMESTAMP) END)")
        else:
            raise DataValidationError(period, NUMBERS_ARE_NOT_DATES)
        cid = _ident(customer) if text or keys["cid"].dtype != object else \
            f"CAST({_ident(customer)} AS VARCHAR)"
        covs = "".join(f", {_ident(c)}" for c in covariates)
        self.con.execute(f"""CREATE OR REPLACE TEMP VIEW clvlab_covariate_all AS
            SELECT c.pos, s.cid, s.d, {p} AS p, c.lo, c.hi{covs}
            FROM (SELECT {cid} AS cid, {_ident(period)} AS d{covs} FROM {self.source}) s
            JOIN clvlab_covariate_customers c ON s.cid = c.cid""")
        span = self.con.execute("""SELECT pos, min(p) FILTER (WHERE p > lo AND p < hi) AS first,
            max(p) FILTER (WHERE p > lo AND p < hi) AS last,
            count(*) FILTER (WHERE p IS NULL) AS bad
            FROM clvlab_covariate_all GROUP BY pos""").df()
        if span["bad"].any():
            _bad_period(self.con.execute("SELECT cid, d FROM clvlab_covariate_all WHERE p IS "
                                         "NULL ORDER BY pos LIMIT 1").fetchone(), self.names)
        self.span = customer_span(len(keys), span["pos"].to_numpy(), span["first"], span["last"])

    def pieces(self, window, counts, spec):
        self.con.execute("SET preserve_insertion_order = true")  # sorted batches, in order
        reader = self.con.sql("SELECT * EXCLUDE (d, lo, hi) FROM clvlab_covariate_all WHERE "
                              "p > lo AND p < hi ORDER BY pos, p").to_arrow_reader(BATCH_ROWS)
        return list(checked_pieces((batch.to_pandas() for batch in reader), window, counts, spec))

    def close(self) -> None:
        self.con.close()  # drops its temp views and registered frames
        if self.own is not None:
            self.own.close()


def _ident(name: str) -> str:
    return '"' + str(name).replace('"', '""') + '"'


def _tick(name: str) -> str:
    return "`" + str(name).replace("`", "``") + "`"


SPARK_KINDS = {"tinyint": "bigint", "smallint": "bigint", "int": "bigint", "bigint": "bigint",
               "float": "double", "double": "double", "boolean": "boolean", "string": "string"}
PANDAS_KINDS = {"bigint": "int64", "double": "float64", "boolean": "bool", "string": "object"}


class SparkRows:
    """The Spark engine: the panel's rows selected in Spark, checked and cut into pieces on the
    executors (partitioned by customer, sorted by period), the pieces collected."""

    def __init__(self, panel: Any, window: PathWindow, names: tuple[str, str]):
        self.panel, self.window, self.names = panel, window, names
        self.columns = list(panel.columns)

    def select(self, covariates: list[str]) -> None:
        from pyspark.sql import functions as F

        from clvlab.data.covariate_panel import ACCEPTED
        from clvlab.data.spark_dates import wall_micros

        types = dict(self.panel.dtypes)
        for column in [*self.names, *covariates]:
            if column not in types:
                raise DataValidationError(column, "is missing from the covariate panel",
                                          hint=f"columns present: {self.columns}")
        self.kinds = {}
        for column in covariates:
            kind = SPARK_KINDS.get(types[column])
            kind = "double" if types[column].startswith("decimal") else kind
            if kind is None:
                raise DataValidationError(column, f"covariate must hold {ACCEPTED}, not "
                                                  f"{types[column]}; encode it first")
            self.kinds[column] = kind
        text = types[self.names[0]] == "string"
        keys = customer_keys(self.window, text)
        spark = self.panel.sparkSession
        cid = F.col(_tick(self.names[0]))
        micros, _ = wall_micros(self.panel, self.names[1], None, self.window.timezone)
        rows = self.panel.select(
            (cid if text or keys["cid"].dtype != object else cid.cast("string")).alias("cid"),
            F.col(_tick(self.names[1])).alias("d"), micros.alias("p"),
            *[F.col(_tick(c)).cast(self.kinds[c]).alias(f"c{i}") for i, c in enumerate(covariates)]
        ).join(F.broadcast(spark.createDataFrame(keys)), "cid")
        inside = (F.col("p") > F.col("lo")) & (F.col("p") < F.col("hi"))
        span = rows.groupBy("pos").agg(F.min(F.when(inside, F.col("p"))).alias("first"),
                                       F.max(F.when(inside, F.col("p"))).alias("last"),
                                       F.count_if(F.col("p").isNull()).alias("bad")).toPandas()
        if span["bad"].any():
            bad = rows.where("p IS NULL").orderBy("pos").select("cid", "d").limit(1).collect()
            _bad_period(tuple(bad[0]), self.names)
        self.span = customer_span(len(keys), span["pos"].to_numpy(), span["first"], span["last"])
        self.rows = rows.where(inside).drop("d", "lo", "hi")

    def pieces(self, window, counts, spec):
        rows = self.rows
        if counts is not None:
            from pyspark.sql.functions import broadcast
            counts = broadcast(rows.sparkSession.createDataFrame(counts))
            rows = rows.join(counts, ["pos", "p"], "left").fillna({"n": 0})
        kinds = dict(self.kinds)
        for column in ([] if spec.calendar is None else spec.calendar.columns[1:]):
            dtype = spec.calendar[column].dtype
            kinds[column] = "boolean" if pd.api.types.is_bool_dtype(dtype) else "bigint" if \
                pd.api.types.is_integer_dtype(dtype) else "double" if \
                pd.api.types.is_float_dtype(dtype) else "string"
        inner = {f"c{i}": name for i, name in enumerate(kinds)}
        kinds = {"pos": "bigint", "start": "double", "end": "double",
                 "repeat_purchases": "bigint", **{c: kinds[n] for c, n in inner.items()}}
        schema = ", ".join(f"{c} {k}" for c, k in kinds.items()) + ", error binary"
        work = functools.partial(spark_partition, spec=spec,
                                 types={c: PANDAS_KINDS[k] for c, k in kinds.items()})
        out = (rows.repartition("pos").sortWithinPartitions("pos", "p")
               .mapInPandas(work, schema).toPandas())
        errors = out["error"].dropna()
        if len(errors):
            raise_pickled(errors.iloc[0])
        return out.drop(columns="error").rename(columns=inner)

    def close(self) -> None:
        self.rows = None


def spark_purchases(log: Any, window: PathWindow, date_col: str, amount_col: str | None,
                    date_format: str | None) -> pd.DataFrame:
    """:func:`purchase_periods` of a Spark log, merged in Spark (only the customer-periods with
    a purchase are collected). Dates are read by the RFM Spark engine's rules."""
    from pyspark.sql import functions as F

    from clvlab.data.rfm_rules import MERGE_PERIODS
    from clvlab.data.spark_dates import wall_micros

    for column in (window.customer_col, date_col, amount_col):
        if column is not None and column not in log.columns:
            raise DataValidationError(column, "is missing from the transaction log",
                                      hint=f"columns present: {log.columns}")
    micros, _ = wall_micros(log, date_col, date_format, window.timezone)
    merge = MERGE_PERIODS[window.merge_period] * US
    buy = F.col(_tick(amount_col)).cast("double") >= 0 if amount_col else F.lit(True)
    cid = F.col(_tick(window.customer_col))
    text = dict(log.dtypes)[window.customer_col] == "string"
    keys = customer_keys(window, text)[["cid", "pos"]]
    periods = (log.select((cid if text or keys["cid"].dtype != object else cid.cast("string"))
                          .alias("cid"), micros.alias("us"), buy.alias("buy"))
               .where(F.col("us") <= F.lit(int(np.floor(window.cal_us))))
               .groupBy("cid", (F.col("us") - F.pmod("us", F.lit(merge))).alias("p"))
               .agg(F.max("buy").alias("buy")).where("buy"))
    keys = log.sparkSession.createDataFrame(keys)
    return periods.join(F.broadcast(keys), "cid").select("pos", "p").toPandas()
