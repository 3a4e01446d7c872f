"""Customers' covariate paths: each customer's life cut into pieces of calendar periods, with the
time-varying covariates of each piece and the repeat purchases inside it.

The input rules (grid, gaps, coverage, values) are :mod:`clvlab.data.covariate_panel`'s. Every
engine selects the same rows (the RFM table's customers, the window of
:func:`~clvlab.data.covariate_panel.window_bounds`), sorted by customer and period, and hands
them to the same checks and piece builder (:mod:`clvlab.data.covariate_pieces`), so their
results are identical: pandas for a DataFrame (:class:`PandasRows`, here); DuckDB for Parquet/CSV
files or a relation (selected inside DuckDB and streamed in batches, so the panel may be larger
than memory; the pieces, merged, are far smaller); Spark for a Spark DataFrame (checked and cut
into pieces on the executors, by customer, and the pieces collected). Those two engines are in
:mod:`clvlab.data.covariate_engines`.

This module is the front door (:func:`covariate_paths`, :class:`CovariatePaths`); it re-exports
:class:`~clvlab.data.covariate_pieces.PieceSpec`, ``build_pieces`` and ``repeat_counts``, which
were first defined here.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Iterable, Iterator

import numpy as np
import pandas as pd

from clvlab.core.errors import ClvlabError, DataValidationError
from clvlab.core.timeunits import UNIT_SECONDS
from clvlab.data.covariate_engines import DuckDBRows, SparkRows, spark_purchases
from clvlab.data.covariate_inputs import (calendar_period_column, index_as_columns, read_calendar,
                                          zone_hint)
from clvlab.data.covariate_panel import (RESERVED, US, PathWindow, calendar_rows, check_coverage,
                                         panel_frame_rows, path_window)
from clvlab.data.covariate_pieces import (INT_MAX, INT_MIN, PieceSpec, build_pieces,
                                          checked_pieces, customer_span, panel_anchor,
                                          repeat_counts)
from clvlab.data.tables import accepts_tables

__all__ = ["CovariatePaths", "covariate_paths", "PieceSpec", "build_pieces", "repeat_counts"]


@dataclass(frozen=True, eq=False)
class CovariatePaths:
    """Each customer's path as pieces of calendar periods.

    Parameters
    ----------
    table : pandas.DataFrame
        One row per (customer, piece), sorted by the customer's position in the RFM table
        then ``start``; every customer has at least one row. Columns: ``customer`` (the RFM index
        value), ``start`` and ``end`` (float, time units since the customer's first purchase,
        contiguous from 0; exactly ``T`` at calibration_end and ``T + horizon`` at the path's end),
        ``repeat_purchases`` (int64, only with transactions: the calibration repeat purchases inside
        the piece, one at calibration_end itself in the piece ending there; 0 after
        calibration_end), then the covariates with the panel's values (not encoded). No piece
        straddles calibration_end; only a path of length 0 (T = 0, no horizon) has start == end.
    covariates : tuple of str
        The covariate columns of ``table``.
    time_unit : str
        The time unit of ``start`` and ``end``.
    calibration_end : pandas.Timestamp
        The RFM table's calibration end.
    path_end : pandas.Timestamp
        Where the paths end (``calibration_end + horizon``).
    customers : pandas.Index
        The RFM table's index: the customers, in its order.
    """

    table: pd.DataFrame
    covariates: tuple[str, ...]
    time_unit: str
    calibration_end: pd.Timestamp
    path_end: pd.Timestamp      # every customer's path reaches it (>= calibration_end)
    customers: pd.Index         # the RFM table's index, in its order

    def __repr__(self) -> str:  # the dataclass's would print the whole table and index
        return (f"<CovariatePaths: {len(self.table):,} pieces for {len(self.customers):,} "
                f"customers; covariates {list(self.covariates)}; time unit {self.time_unit}; "
                f"calibration end {self.calibration_end:%Y-%m-%d %H:%M}, path end "
                f"{self.path_end:%Y-%m-%d %H:%M} (horizon {self.horizon:g})>")

    @property
    def horizon(self) -> float:
        """(path_end - calibration_end) in time units; 0.0 for a fit's paths."""
        return (self.path_end - self.calibration_end) / pd.Timedelta(
            seconds=UNIT_SECONDS[self.time_unit])

    def offsets(self) -> np.ndarray:
        """int64 (N+1): customer i (RFM order) owns rows offsets[i]..offsets[i+1]-1.

        Returns
        -------
        numpy.ndarray
            int64, one more than the customers.
        """
        counts = np.bincount(self.customers.get_indexer(self.table["customer"]),
                             minlength=len(self.customers))
        return np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)


@accepts_tables("panel", "transactions", "calendar", keyed=("rfm",))
def covariate_paths(panel: Any, rfm: pd.DataFrame, *, transactions: Any = None,
                    calendar: Any = None, horizon: float | None = None,
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
        DataFrame (its customer and period columns may be index levels, e.g. a panel indexed
        by (customer, period)), or a polars DataFrame or a pyarrow Table
        (:mod:`clvlab.data.tables`: converted to pandas first); a path, glob or list of Parquet
        or CSV files with the same columns, or a DuckDB relation (DuckDB engine); a Spark
        DataFrame (Spark engine). None with a ``calendar``: only its covariates.
    rfm
        The RFM table of :func:`clvlab.rfm_summary` with its ``attrs["clvlab"]`` (time unit,
        calibration_end, merge period, time zone, customer column): a pandas DataFrame, or a
        pyarrow Table that keeps them in its schema's metadata, as rfm_summary's Arrow result
        does (a polars DataFrame records no attrs). A customer's first purchase is
        ``calibration_end - T``, which must land on the merge-period grid.
    transactions
        The log the table was built from (a pandas or polars DataFrame or a pyarrow Table,
        files or a Spark DataFrame), read with the table's merge period and time zone and
        ``date_col``, ``amount_col``, ``date_format`` (by default the table's attrs, when they
        record them, else rfm_summary's defaults).
        Gives ``repeat_purchases``: merged purchase periods after the first, up to
        calibration_end, as ``frequency`` counts them; each customer's total must equal it.
    calendar
        Covariates shared by all customers, one row per period: a pandas DataFrame (e.g.
        :func:`seasonal_covariates`), a polars DataFrame or a pyarrow Table, or a Parquet/CSV
        file (a path, glob or list), joined on the period: its own column ``"period"`` (which
        seasonal_covariates makes), or, in a calendar without one, ``period_col`` (a calendar
        with both holding dates is refused); same rules, and it must cover every needed period.
        Its weeks start on the panel's weekday. Periods, the panel's too, are datetimes or ISO
        8601 text (``date_format`` is the log's only: convert others with
        ``pd.to_datetime(..., format=...)`` first).
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
    date_col, amount_col, date_format
        The log's date and amount columns and its date format (above): by default those the
        table's attrs record, else rfm_summary's defaults.

    Returns
    -------
    CovariatePaths
        Each customer's path.

    Raises
    ------
    DataValidationError naming the column, the rule and an example row (customer, period,
    value): a broken panel or calendar rule, an uncovered customer, a T off the merge grid,
    repeat purchases that do not add up to ``frequency``. ClvlabError for an RFM table without
    its attrs or a bad option.

    Examples
    --------
    >>> paths = covariate_paths(dyncov, rfm, transactions=log, period_col="Cov.Date",
    ...                         calendar=seasonal_covariates("2005-01-02", "2006-12-31", "W",
    ...                                                      quarter=True))  # doctest: +SKIP
    """
    window = path_window(rfm, horizon, need_frequency=transactions is not None)
    names = (customer_col or window.customer_col, period_col)
    kind = _engine(engine, panel)
    panel = index_as_columns(panel, names)
    calendar = read_calendar(calendar)
    cal_period = None if calendar is None else calendar_period_column(calendar, period_col)
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
        weekday, anchor, hint = None, None, None
        if source is not None:
            weekday, anchor, first_us = panel_anchor(*source.span, window, names)
            hint = zone_hint("panel", period_col, source.zone, window.timezone, first_us)
        cal = None
        if calendar is not None:
            cal, weekday = calendar_rows(calendar, window, period_col=cal_period,
                                         covariates=cal_covs, weekday=weekday, anchor=anchor)
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
                         counts is not None, cal, weekday, names, tuple(panel_covs), anchor, hint)
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

    def __init__(self, pos: np.ndarray, p: np.ndarray, batches: Iterator[pd.DataFrame],
                 zone: str | None, n: int):
        self.batches, self.span, self.zone = batches, customer_span(n, pos, p), zone

    def pieces(self, window, counts, spec):
        return list(checked_pieces(self.batches, window, counts, spec))

    def close(self):
        self.batches = None


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
