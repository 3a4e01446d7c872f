"""Features beyond RFM at a cutoff: from event logs (visits, e-mails opened, returns, support
contacts: any table of ``customer_id, date, event[, value]``) and from the basket size (a
quantity column) of the purchase log. Nothing after the cutoff is used.

This module is the front door (``check_events``, ``event_features``, ``basket_features``) and
the pandas engine (DuckDB's is :mod:`clvlab.data.events_duckdb`, Spark's
:mod:`clvlab.data.events_spark`). The rules are in :mod:`clvlab.data.events_rules`: the
constants, the rules' wording, :func:`feature_name` and the :class:`LogPlan` on which they reach
the engines, so that no engine imports this module (which imports them). Every engine validates
the log by the same rules and wording and aggregates it per customer and event type; the feature
table is built from those aggregates here, once, so that no two engines can define a column
differently. Conventions, in every engine:

- Dates are read as :func:`clvlab.rfm_summary` reads them (ISO 8601 or ``date_format``, zoned
  values converted to ``timezone``, naive ones taken as wall-clock times there), and so is the
  cutoff (:func:`~clvlab.data.rfm_io.parse_option_date`). Times count to the microsecond
  (DuckDB's and Spark's resolution; pandas' nanoseconds are floored).
- **The cutoff is inclusive**: an event at the cutoff instant counts, a later one never does.
- **A window of d days is (cutoff - d days, cutoff]**: an event exactly d days before the
  cutoff is outside it, so that a 7-day window holds seven whole days and not an eighth instant.
- **Trend**: ``E_trend = count_30d / (count_90d / 3)``, the pace of the last 30 days against
  that of the last 90: 1 steady, above 1 rising (at most 3), 0 none in the last 30 days; NaN
  without any event in the last 90 days (no pace to compare). A customer younger than 90 days
  has a 90-day pace diluted by the time before acquisition, so a trend above 1 is expected there.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd

from clvlab.core.errors import ClvlabError, ClvlabWarning, DataValidationError, example_row
from clvlab.core.errors import warn as clvlab_warn
from clvlab.core.timeunits import UNIT_SECONDS, normalize_time_unit
from clvlab.data.events_rules import BASKET_TREND_DAYS, BLANK_PATTERN, ENGINES, TREND_DAYS, \
    LogPlan, customer_ids, feature_name, feature_rows, resolve_event_types, resolve_plan, \
    resolve_windows
from clvlab.data.rfm_io import read_files
from clvlab.data.rfm_pandas import check_ids, header_hint, parse_dates
from clvlab.data.tables import accepts_tables

__all__ = ["check_events", "event_features", "basket_features", "feature_name", "LogPlan",
           "check_event_ids",
           "ENGINES", "TREND_DAYS", "BASKET_TREND_DAYS", "BLANK_PATTERN"]


@accepts_tables("events", follow="events")
def check_events(events: Any, *, customer_col: str = "customer_id", date_col: str = "date",
                 event_col: str = "event", value_col: str | None = None, timezone: str = "UTC",
                 date_format: str | None = None) -> pd.DataFrame:
    """Validate an event log and return it normalised.

    Parameters
    ----------
    events : DataFrame, path, glob or list of paths
        One row per event; CSV or Parquet files are read first (as ``rfm_summary`` reads them).
    customer_col, date_col, event_col, value_col : str
        The log's columns; ``value_col`` (an amount, a duration...) is optional.
    timezone, date_format
        How dates are read: the rules of :func:`clvlab.rfm_summary`.

    Returns
    -------
    DataFrame on the log's index: ``cid`` (the ids as given), ``ts`` (naive datetimes in
    ``timezone``, floored to the microsecond), ``event`` (text; whole numbers as their digits)
    and, with ``value_col``, ``value`` (float64; negative values such as returns are kept).

    Raises
    ------
    DataValidationError
        Naming the column, the rule and an example row: a missing column (with a close match),
        an empty log, a missing id or ids of mixed types, a missing or unparseable date, an
        event name missing, blank or not text, a value not numeric, missing, NaN or infinite,
        two event names that give one feature name.
    ClvlabError
        For an unknown time zone.
    """
    return _normalised(events, resolve_plan(customer_col, date_col, event_col, value_col,
                                            timezone, date_format))


#: Below this share of the purchase log's customers with any event, ``check_event_ids`` warns.
LOW_EVENT_COVERAGE = 0.10


def check_event_ids(event_ids: pd.Series, purchase_ids: Any, where: str = "",
                    warn: bool = True) -> None:
    """The event log must speak of the purchase log's customers: refused when no id is shared
    (ids of another kind, text against numbers, or of another system: all-zero features would
    read as customers who never visited); a ``ClvlabWarning`` when under
    ``LOW_EVENT_COVERAGE`` of the purchase log's customers have any event, which is either
    what the events are (e-mails to a few subscribers) or ids that match only in part (the
    entry points warn once; ``warn=False`` for each cutoff's view after them)."""
    customers = pd.Index(pd.unique(np.asarray(purchase_ids)))
    if len(event_ids) == 0 or len(customers) == 0:
        return
    covered = customers.isin(pd.unique(np.asarray(event_ids)))
    plain = lambda value: value.item() if isinstance(value, np.generic) else value  # noqa: E731
    sample = f"event ids like {plain(event_ids.iloc[0])!r}, {event_ids.dtype}; purchase ids " \
             f"like {plain(customers[0])!r}, {customers.dtype}"
    if not covered.any():
        raise ClvlabError(f"{where}the event log's customer ids match none of the purchase "
                          f"log's ({sample}); give both logs the same ids, of the same type")
    if warn and covered.mean() < LOW_EVENT_COVERAGE:
        clvlab_warn(f"{where}only {covered.sum():,} of the purchase log's {len(customers):,} "
                      f"customers ({covered.mean():.1%}) have any event ({sample}); the others "
                      "get the features of customers without events. If every customer should "
                      "have events, the ids match only in part: check their format",
                      ClvlabWarning)


def _normalised(log: Any, plan: LogPlan) -> pd.DataFrame:
    """The pandas engine's validation: ``cid``, ``ts``, ``event`` (event logs), ``value``."""
    frame = log if isinstance(log, pd.DataFrame) else read_files(log)
    plan.require_columns(list(frame.columns))
    if len(frame) == 0:
        raise DataValidationError(None, plan.rule("empty"))
    ids = _plain(frame[plan.customer_col])
    check_ids(frame, ids, plan.customer_col)
    ts = parse_dates(frame, plan.date_col, plan.date_format, plan.timezone)
    out = pd.DataFrame({"cid": ids.array, "ts": ts.dt.floor("us").array}, index=frame.index)
    if plan.event_col is not None:
        names = _event_names(frame, plan)
        firsts = pd.Series(names).drop_duplicates()  # indexed by position
        positions = dict(zip(firsts, firsts.index))
        plan.check_names(list(positions), lambda name: example_row(frame, positions[name]))
        out["event"] = names
    if plan.value_col is not None:
        out["value"] = _values(frame, plan)
    return out


def _plain(values: pd.Series) -> pd.Series:
    """Categorical values as their categories' type, as the SQL engines see them."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        return values.astype(values.cat.categories.dtype)
    return values


def _first(mask: Any) -> int:
    return int(np.flatnonzero(np.asarray(mask))[0])


def _event_names(frame: pd.DataFrame, plan: LogPlan) -> np.ndarray:
    raw = _plain(frame[plan.event_col])
    missing = raw.isna().to_numpy()
    if pd.api.types.is_integer_dtype(raw.dtype):
        pass  # codes: their digits, as SQL's CAST(... AS VARCHAR) writes them
    elif raw.dtype == object or pd.api.types.is_string_dtype(raw.dtype):
        wrong = ~(raw.map(lambda v: isinstance(v, str)).to_numpy(dtype=bool) | missing)
        if wrong.any():
            row = example_row(frame, _first(wrong))
            kinds = sorted({type(v).__name__ for v in raw[~missing]})
            raise DataValidationError(plan.event_col, plan.rule(
                "event_type", f"object holding {', '.join(kinds)}"), row)
    else:
        raise DataValidationError(plan.event_col, plan.rule("event_type", raw.dtype),
                                  example_row(frame, 0))
    names = np.array([str(v) if ok else "" for v, ok in zip(raw.to_numpy(dtype=object), ~missing)],
                     dtype=object)
    blank = re.compile(BLANK_PATTERN)
    empty = missing | np.array([blank.fullmatch(v) is not None for v in names], dtype=bool)
    if empty.any():
        raise DataValidationError(plan.event_col, plan.rule("no_event"),
                                  example_row(frame, _first(empty)))
    return names


def _values(frame: pd.DataFrame, plan: LogPlan) -> np.ndarray:
    column = plan.value_col
    raw = frame[column]
    if not pd.api.types.is_numeric_dtype(raw.dtype) or pd.api.types.is_bool_dtype(raw.dtype):
        unreadable = pd.to_numeric(raw, errors="coerce").isna().to_numpy() & raw.notna().to_numpy()
        row = example_row(frame, _first(unreadable) if unreadable.any() else 0)
        raise DataValidationError(column, plan.rule("value_type", raw.dtype), row,
                                  hint=header_hint(row))
    values = raw.to_numpy(dtype=np.float64, na_value=np.nan)
    for key, bad in (("value_nan", np.isnan(values)), ("value_inf", np.isinf(values)),
                     ("value_negative", values < 0 if plan.event_col is None else None)):
        if bad is not None and bad.any():
            raise DataValidationError(column, plan.rule(key), example_row(frame, _first(bad)))
    return values


def _micros(ts: pd.Series) -> np.ndarray:
    """Wall-clock microseconds since 1970 (floored), as the SQL engines count them."""
    return ts.to_numpy().astype("datetime64[us]").astype(np.int64)


def _aggregate(log: Any, plan: LogPlan, engine: Any, connection: Any) -> pd.DataFrame:
    """The log's aggregates by ``engine`` (per customer and event type, or per customer)."""
    if engine not in ENGINES:
        raise ClvlabError(f"engine {engine!r} is not supported; use 'pandas', 'duckdb' or 'spark'")
    events = plan.event_col is not None
    if engine == "pandas":
        frame = _normalised(log, plan)
        return _pandas_events(frame, plan) if events else _pandas_baskets(frame, plan)
    if engine == "duckdb":
        from clvlab.data import events_duckdb as module
    else:
        from clvlab.data import events_spark as module
    return (module.event_aggregates if events else module.basket_aggregates)(log, plan, connection)


@accepts_tables("events", follow="events")
def event_features(events: Any, cutoff: Any, *, customers: Any = None, time_unit: str = "W",
                   windows_days: Any = (7, 30, 90), event_types: Any = None,
                   engine: str = "pandas", connection: Any = None,
                   customer_col: str = "customer_id", date_col: str = "date",
                   event_col: str = "event", value_col: str | None = None,
                   timezone: str = "UTC", date_format: str | None = None) -> pd.DataFrame:
    """Per-customer features of an event log at a cutoff (conventions: the module's docstring).

    Parameters
    ----------
    events : DataFrame, path, glob or list of paths, or a Spark DataFrame (engine="spark")
        The event log, as :func:`check_events` takes it.
    cutoff : date or text
        The calibration cutoff, read by the date column's rule (ISO 8601 or ``date_format``).
    customers : array-like, optional
        Ids to return rows for, in this order (e.g. an RFM table's index). By default the
        customers with an event (of ``event_types``) at or before the cutoff, sorted by id.
    time_unit : str
        Unit of ``E_since_last``: "h", "D", "W" or "M" (:mod:`clvlab.core.timeunits`).
    windows_days : sequence of int
        The windows of ``E_count_<d>d`` and ``E_value_<d>d``, in whole days.
    event_types : sequence of str, optional
        The event types to make columns for (others are ignored; one absent from the log gets
        zero counts). By default the types seen at or before the cutoff; give them to keep the
        columns the same from one cutoff to the next.
    engine : {"pandas", "duckdb", "spark"}
        Identical results. DuckDB scans files in place; Spark takes a Spark DataFrame (or a
        pandas frame or files, with the active session or ``connection``).
    connection
        A DuckDB connection (engine="duckdb") or a SparkSession (engine="spark").
    customer_col, date_col, event_col, value_col, timezone, date_format
        As in :func:`check_events`.

    Returns
    -------
    DataFrame indexed by customer id (named ``customer_col``) with, for each event type E (by
    its :func:`feature_name`, in sorted order): ``E_count`` (events up to the cutoff),
    ``E_count_<d>d`` for each window, ``E_since_last`` (cutoff minus the last event, in
    ``time_unit``; NaN without one: unknown, never 0), ``E_trend`` and, with ``value_col``,
    ``E_value`` and ``E_value_<d>d`` (sums; 0 without events). Counts are int64, the rest
    float64; customers without events have counts 0.

    Raises
    ------
    DataValidationError
        As :func:`check_events`, in every engine.
    ClvlabError
        For a missing or unreadable cutoff, an unknown engine, time unit or time zone, windows
        that are not whole days >= 1, repeated customers, or customers whose ids are of
        another kind (text, numbers) than the log's.
    """
    unit = normalize_time_unit(time_unit)
    windows = resolve_windows(windows_days)
    types = resolve_event_types(event_types, event_col)
    plan = resolve_plan(customer_col, date_col, event_col, value_col, timezone, date_format,
                        cutoff, sorted(set(windows) | set(TREND_DAYS)), types)
    agg = _aggregate(events, plan, engine, connection)
    if types is None:
        types = tuple(sorted(set(agg["event"])))
    index = feature_rows(agg["cid"], customers, customer_col)
    unit_us = UNIT_SECONDS[unit] * 1_000_000
    columns: dict[str, np.ndarray] = {}
    for name, kind in sorted((feature_name(t), t) for t in types):
        part = agg[agg["event"] == kind].set_index("cid")
        part.index = customer_ids(part.index)

        def count(column: str) -> np.ndarray:
            return part[column].reindex(index, fill_value=0).to_numpy(dtype=np.int64)

        columns[f"{name}_count"] = count("n")
        for d in windows:
            columns[f"{name}_count_{d}d"] = count(f"n_{d}")
        since = (plan.cutoff_us - part["last_us"].astype(np.int64)) / unit_us
        columns[f"{name}_since_last"] = since.reindex(index).to_numpy(dtype=np.float64)
        recent, longer = count(f"n_{TREND_DAYS[0]}"), count(f"n_{TREND_DAYS[1]}")
        pace = longer / (TREND_DAYS[1] / TREND_DAYS[0])  # count_90d / 3: a 30-day pace
        columns[f"{name}_trend"] = np.divide(recent, pace, out=np.full(len(index), np.nan),
                                             where=longer > 0)
        if value_col is not None:
            for suffix, column in [("", "v"), *((f"_{d}d", f"v_{d}") for d in windows)]:
                columns[f"{name}_value{suffix}"] = part[column].reindex(
                    index, fill_value=0.0).to_numpy(dtype=np.float64)
    return pd.DataFrame(columns, index=index)


def _pandas_events(log: pd.DataFrame, plan: LogPlan) -> pd.DataFrame:
    """The per-customer-and-event aggregates every engine returns (see events_duckdb)."""
    us = _micros(log["ts"])
    keep = us <= plan.cutoff_us
    if plan.event_types is not None:
        keep &= log["event"].isin(plan.event_types).to_numpy()
    us = us[keep]
    rows = pd.DataFrame({"cid": log["cid"].array[keep], "event": log["event"].array[keep],
                         "last_us": us})
    spec = {"n": ("last_us", "size"), "last_us": ("last_us", "max")}
    value = log["value"].to_numpy()[keep] if plan.value_col is not None else None
    if value is not None:
        rows["v"] = value
        spec["v"] = ("v", "sum")
    for d in plan.windows:
        inside = us > plan.since(d)
        rows[f"n_{d}"] = inside
        spec[f"n_{d}"] = (f"n_{d}", "sum")
        if value is not None:
            rows[f"v_{d}"] = np.where(inside, value, 0.0)
            spec[f"v_{d}"] = (f"v_{d}", "sum")
    return rows.groupby(["cid", "event"], sort=False).agg(**spec).reset_index()


@accepts_tables("transactions", follow="transactions")
def basket_features(transactions: Any, cutoff: Any, *, customer_col: str = "customer_id",
                    date_col: str = "date", quantity_col: str = "quantity",
                    customers: Any = None, time_unit: str = "W", engine: str = "pandas",
                    connection: Any = None, timezone: str = "UTC",
                    date_format: str | None = None) -> pd.DataFrame:
    """Per-customer basket-size features of a purchase log at a cutoff (inclusive).

    An order is a row of the log (rows are not merged by day, unlike ``rfm_summary``).

    Parameters
    ----------
    transactions : DataFrame, path, glob or list of paths, or a Spark DataFrame
        The purchase log; its ``quantity_col`` holds numbers >= 0 (items per order). A
        DataFrame is a pandas or polars DataFrame or a pyarrow Table
        (:mod:`clvlab.data.tables`).
    cutoff, customer_col, date_col, engine, connection, timezone, date_format
        As in :func:`event_features`.
    customers : array-like, optional
        Ids to return rows for, in this order; by default the customers with a row at or
        before the cutoff, sorted. Customers without one get NaN everywhere (unknown).
    time_unit : str, default "W"
        Checked, for symmetry with :func:`event_features`; no basket column is a duration.
    quantity_col : str, default "quantity"
        The log's items-per-order column.

    Returns
    -------
    DataFrame indexed by customer id with float64 columns ``quantity_mean`` (mean items per
    order), ``quantity_last`` (of the latest order; orders at the same latest instant add
    up), ``quantity_trend`` (mean of the orders in the last 90 days over the overall mean;
    NaN without an order in 90 days or with an overall mean of 0) and ``quantity_max``. The
    input's kind for a polars or Arrow log (a polars DataFrame, a pyarrow Table: the customer
    ids as the first column), else a pandas DataFrame.

    Raises
    ------
    DataValidationError
        As :func:`check_events` for columns, ids and dates, and for a quantity that is not
        numeric, missing, NaN, infinite or negative.
    ClvlabError
        As :func:`event_features`.
    """
    normalize_time_unit(time_unit)
    plan = resolve_plan(customer_col, date_col, None, quantity_col, timezone, date_format,
                        cutoff, (BASKET_TREND_DAYS,))
    agg = _aggregate(transactions, plan, engine, connection)
    index = feature_rows(agg["cid"], customers, customer_col)
    agg = agg.set_index(customer_ids(agg["cid"])).reindex(index)
    n, total, last, most, n90, total90 = (agg[c].to_numpy(dtype=np.float64) for c in (
        "n", "q_sum", "q_last", "q_max", f"n_{BASKET_TREND_DAYS}", f"q_sum_{BASKET_TREND_DAYS}"))
    with np.errstate(divide="ignore", invalid="ignore"):  # NaN rows: customers without orders
        mean = total / n
        trend = np.where((n90 > 0) & (mean > 0), total90 / n90 / mean, np.nan)
    return pd.DataFrame({"quantity_mean": mean, "quantity_last": last, "quantity_trend": trend,
                         "quantity_max": most}, index=index)


def _pandas_baskets(log: pd.DataFrame, plan: LogPlan) -> pd.DataFrame:
    """Per-customer aggregates: ``n``, ``q_sum``, ``q_max``, ``q_last``, ``n_90``, ``q_sum_90``."""
    us = _micros(log["ts"])
    keep = us <= plan.cutoff_us
    us, q = us[keep], log["value"].to_numpy()[keep]
    rows = pd.DataFrame({"cid": log["cid"].array[keep], "us": us, "q": q})
    latest = rows.groupby("cid", sort=False)["us"].transform("max").to_numpy()
    recent = us > plan.since(BASKET_TREND_DAYS)
    rows["q_last"] = np.where(us == latest, q, 0.0)
    rows["recent"] = recent
    rows["q_recent"] = np.where(recent, q, 0.0)
    return rows.groupby("cid", sort=False).agg(
        n=("us", "size"), q_sum=("q", "sum"), q_max=("q", "max"), q_last=("q_last", "sum"),
        **{f"n_{BASKET_TREND_DAYS}": ("recent", "sum"),
           f"q_sum_{BASKET_TREND_DAYS}": ("q_recent", "sum")}).reset_index()
