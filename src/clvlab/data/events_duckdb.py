"""The DuckDB engine of :func:`clvlab.data.events.event_features` and
:func:`~clvlab.data.events.basket_features` (the rules are documented there).

Call those with ``engine="duckdb"``; the functions here take their resolved
:class:`~clvlab.data.events_rules.LogPlan` (which carries the rules' wording; this module
imports :mod:`clvlab.data.events_rules`, never the front door that imports it) and return the
per-customer aggregates from which the front door builds the feature table, as it does for the
pandas engine.

Files (Parquet, CSV) are scanned in place, never read into pandas: one scan counts the rows that
break a rule, and only when one does is an example row fetched for the message. A DataFrame is
scanned where it lies. Dates are read by the rules of :mod:`clvlab.data.rfm_duckdb` (naive text
cast, zoned text converted to the time zone, ``date_format`` through ``strptime``), to the
microsecond: a pandas column in nanoseconds is floored, as the pandas engine floors it.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from clvlab.core.errors import ClvlabError, DataValidationError
from clvlab.data.events_rules import BLANK_PATTERN
from clvlab.data.rfm_io import expand_paths, file_format
from clvlab.data.rfm_duckdb import NAN_SQL
from clvlab.data.rfm_pandas import NUMBERS_ARE_NOT_DATES, OFFSET_PATTERN, check_ids, date_rule, \
    header_hint

__all__ = ["event_aggregates", "basket_aggregates"]


_INTEGERS = {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT",
             "UINTEGER", "UBIGINT"}
_NUMBERS = _INTEGERS | {"FLOAT", "DOUBLE"}


def event_aggregates(events: Any, plan: Any, connection: Any = None) -> pd.DataFrame:
    """Validate an event log and aggregate it per customer and event type.

    Parameters
    ----------
    events : DataFrame, path, glob or list of paths
        The event log (CSV or Parquet files are scanned by DuckDB).
    plan : clvlab.data.events_rules.LogPlan
        The columns, date rules, cutoff, windows and event types.
    connection : duckdb.DuckDBPyConnection, optional
        A database to work in (e.g. with a ``memory_limit``); a private in-memory one by default.

    Returns
    -------
    DataFrame with one row per customer and event type with an event at or before the cutoff:
    ``cid``, ``event``, ``n`` (events), ``n_<d>`` (events in each of ``plan.windows``),
    ``last_us`` (microseconds of the last event) and, with a value column, ``v`` and ``v_<d>``
    (value sums).

    Raises
    ------
    DataValidationError
        When the log breaks a rule of :func:`clvlab.data.events.check_events`.
    ClvlabError
        When DuckDB cannot read the files.
    """
    import duckdb

    con = _connect(connection, plan)
    try:
        _register(con, events, plan)
        names = [row[0] for row in con.execute(
            "SELECT DISTINCT ev FROM clvlab_ev_parsed").fetchall()]
        plan.check_names(names, lambda name: _example(con, "ev = ?", plan, [name]))
        return con.execute(_event_sql(plan)).df()
    except duckdb.Error as exc:  # unreadable files, CSV dialects, disk full
        raise ClvlabError(f"DuckDB could not read the event log: {exc}") from exc
    finally:
        con.close()  # drops this cursor's temp views


def basket_aggregates(transactions: Any, plan: Any, connection: Any = None) -> pd.DataFrame:
    """Validate a purchase log's quantities and aggregate them per customer.

    Parameters
    ----------
    transactions : DataFrame, path, glob or list of paths
        The purchase log.
    plan : clvlab.data.events_rules.LogPlan
        With ``event_col`` None and the quantity column as ``value_col``.
    connection : duckdb.DuckDBPyConnection, optional
        As in :func:`event_aggregates`.

    Returns
    -------
    DataFrame with one row per customer with a row at or before the cutoff: ``cid``, ``n``
    (orders), ``q_sum``, ``q_max``, ``q_last`` (the quantities at the latest instant, added),
    ``n_<d>`` and ``q_sum_<d>`` (orders and quantities in the window ``plan.windows[0]``).

    Raises
    ------
    DataValidationError, ClvlabError
        As :func:`event_aggregates`.
    """
    import duckdb

    con = _connect(connection, plan)
    try:
        _register(con, transactions, plan)
        return con.execute(_basket_sql(plan)).df()
    except duckdb.Error as exc:
        raise ClvlabError(f"DuckDB could not read the transaction log: {exc}") from exc
    finally:
        con.close()


def _connect(connection: Any, plan: Any):
    from clvlab.data.rfm_duckdb import session_cursor

    return session_cursor(connection, plan.timezone)


def _quote(text: Any) -> str:
    return str(text).replace("'", "''")


def _ident(name: str) -> str:
    return '"' + str(name).replace('"', '""') + '"'


def _source(con: Any, log: Any, plan: Any) -> tuple[str, list[str]]:
    """The log as a relation DuckDB scans, and its columns."""
    if isinstance(log, pd.DataFrame):
        frame = log
        for column in (plan.customer_col, plan.event_col):
            if column in frame.columns and isinstance(frame[column].dtype, pd.CategoricalDtype):
                # the pandas engine sees the categories' values; so does DuckDB then
                frame = frame.assign(**{column: frame[column].astype(
                    frame[column].cat.categories.dtype)})
        if plan.customer_col in frame.columns:  # the mixed-type check needs Python objects
            check_ids(frame, frame[plan.customer_col], plan.customer_col)
        con.register("clvlab_ev_frame", frame)
        return "clvlab_ev_frame", [str(c) for c in frame.columns]
    files = expand_paths(log)
    file_list = "[" + ", ".join(f"'{_quote(f)}'" for f in files) + "]"
    if file_format(files) == "parquet":
        source = f"read_parquet({file_list}, union_by_name = true)"
        return source, [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()]
    # dates and event names as text: clvlab's rules read them, never the CSV sniffer's guess
    source = f"read_csv({file_list}, union_by_name = true"
    columns = [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {source})").fetchall()]
    text = [c for c in (plan.date_col, plan.event_col) if c in columns]
    if text:
        source += ", types = {" + ", ".join(f"'{_quote(c)}': 'VARCHAR'" for c in text) + "}"
    return source + ")", columns


def _register(con: Any, log: Any, plan: Any) -> None:
    """The views ``clvlab_ev_raw`` (the columns as given) and ``clvlab_ev_parsed`` (``cid``,
    ``d``, ``ev`` as text, ``us`` wall-clock microseconds, ``val`` as DOUBLE); raise for the
    first rule the log breaks, in the pandas engine's order."""
    source, columns = _source(con, log, plan)
    plan.require_columns(columns)
    ev = _ident(plan.event_col) if plan.event_col is not None else "NULL"
    val = _ident(plan.value_col) if plan.value_col is not None else "NULL"
    con.execute(f"""CREATE OR REPLACE TEMP VIEW clvlab_ev_raw AS
        SELECT {_ident(plan.customer_col)} AS cid, {_ident(plan.date_col)} AS d, {ev} AS ev,
               {val} AS val FROM {source}""")
    if con.execute("SELECT 1 FROM clvlab_ev_raw LIMIT 1").fetchone() is None:
        raise DataValidationError(None, plan.rule("empty"))  # before any rule on the types
    types = {row[0]: row[1] for row in con.execute("DESCRIBE clvlab_ev_raw").fetchall()}
    us = _micros_sql(con, types["d"], plan)
    event = "NULL"
    if plan.event_col is not None:
        if types["ev"] not in _INTEGERS and types["ev"] != "VARCHAR":
            raise DataValidationError(plan.event_col, plan.rule("event_type", types["ev"], "type"),
                                      _example(con, "true", plan, raw=True))
        event = "ev" if types["ev"] == "VARCHAR" else "CAST(ev AS VARCHAR)"
    value = "NULL"
    if plan.value_col is not None:
        if types["val"] not in _NUMBERS and not types["val"].startswith("DECIMAL"):
            condition = "val IS NOT NULL AND TRY_CAST(trim(CAST(val AS VARCHAR)) AS DOUBLE) IS NULL"
            row = _example(con, condition, plan, raw=True) or _example(con, "true", plan, raw=True)
            raise DataValidationError(plan.value_col, plan.rule("value_type", types["val"], "type"),
                                      row, hint=header_hint(row))
        value = "CAST(val AS DOUBLE)"
    con.execute(f"""CREATE OR REPLACE TEMP VIEW clvlab_ev_parsed AS
        SELECT cid, d, {event} AS ev, {us} AS us, {value} AS val FROM clvlab_ev_raw""")
    # one scan counts the rows breaking each rule (an example is fetched only for a broken one)
    no_id = "cid IS NULL" + (" OR " + NAN_SQL.format("cid") if types["cid"] in ("FLOAT", "DOUBLE")
                             else "")
    checks = [(plan.customer_col, plan.rule("no_id"), no_id),
              (plan.date_col, plan.rule("no_date"), "d IS NULL"),
              (plan.date_col, NUMBERS_ARE_NOT_DATES, "us IS NULL AND regexp_full_match("
               "trim(CAST(d AS VARCHAR)), '[0-9]+')" if plan.date_format is None else "false"),
              (plan.date_col, date_rule(plan.date_format), "us IS NULL")]
    if plan.event_col is not None:
        checks.append((plan.event_col, plan.rule("no_event"),
                       f"ev IS NULL OR regexp_full_match(ev, '{BLANK_PATTERN}')"))
    if plan.value_col is not None:
        checks += [(plan.value_col, plan.rule("value_nan"),
                    "val IS NULL OR " + NAN_SQL.format("val")),
                   (plan.value_col, plan.rule("value_inf"), "isinf(val)")]
        if plan.event_col is None:
            checks.append((plan.value_col, plan.rule("value_negative"), "val < 0"))
    found = con.execute("SELECT " + ", ".join(f"count(*) FILTER (WHERE {c})" for *_, c in checks)
                        + " FROM clvlab_ev_parsed").fetchone()
    for (column, rule, condition), count in zip(checks, found):
        if count:
            row = _example(con, condition, plan)
            raise DataValidationError(column, rule, row, hint=header_hint(row))


def _micros_sql(con: Any, date_type: str, plan: Any) -> str:
    """SQL for the wall-clock microseconds since 1970 of the raw date ``d`` in the plan's zone
    (NULL where it does not parse), after the checks on the date column's type."""
    tz = _quote(plan.timezone)
    if date_type.startswith("TIMESTAMP WITH TIME ZONE"):
        return f"epoch_us(timezone('{tz}', d))"
    if date_type == "TIMESTAMP_NS":
        # floored as numpy floors nanoseconds (a cast to TIMESTAMP would round them)
        return "(epoch_ns(d) - ((epoch_ns(d) % 1000) + 1000) % 1000) // 1000"
    if date_type.startswith(("TIMESTAMP", "DATE")):
        return "epoch_us(CAST(d AS TIMESTAMP))"
    if plan.date_format is not None:
        return f"epoch_us(try_strptime(CAST(d AS VARCHAR), '{_quote(plan.date_format)}'))"
    if date_type != "VARCHAR":
        raise DataValidationError(plan.date_col, NUMBERS_ARE_NOT_DATES,
                                  _example(con, "true", plan, raw=True))
    zoned, dated = con.execute(f"""SELECT count(*) FILTER (WHERE regexp_matches(d,
        '{OFFSET_PATTERN}')), count(d) FROM clvlab_ev_raw""").fetchone()
    if 0 < zoned < dated:
        raise DataValidationError(plan.date_col, plan.rule("mixed_zones"), _example(
            con, f"NOT regexp_matches(d, '{OFFSET_PATTERN}')", plan, raw=True))
    if zoned:
        # naive text is read in the session's zone (the plan's), zoned text converted to it
        return f"epoch_us(timezone('{tz}', TRY_CAST(trim(d) AS TIMESTAMPTZ)))"
    # digits alone are a number, never a date (the pandas engine's rule); trim() keeps DuckDB
    # from pushing the cast into its CSV reader, where TRY_CAST raises instead of giving NULL
    return ("CASE WHEN NOT regexp_full_match(trim(d), '[0-9]+') "
            "THEN epoch_us(TRY_CAST(trim(d) AS TIMESTAMP)) END")


def _example(con: Any, condition: str, plan: Any, params: list | None = None,
             raw: bool = False) -> dict[str, Any]:
    """The first row matching ``condition``, under the log's column names ({} when none)."""
    view = "clvlab_ev_raw" if raw else "clvlab_ev_parsed"
    # an aggregate's FILTER, not WHERE ... LIMIT 1, as in rfm_duckdb._example (a Parquet
    # scan's pushed-down WHERE misses NaN values)
    found = con.execute(f"SELECT first(struct_pack(c := cid, d := d, e := ev, v := val)) "
                        f"FILTER (WHERE {condition}) FROM {view}", params).fetchone()[0]
    if found is None:
        return {}
    row = (found["c"], found["d"], found["e"], found["v"])
    names = (plan.customer_col, plan.date_col, plan.event_col, plan.value_col)
    return {name: value for name, value in zip(names, row) if name is not None}


def _event_sql(plan: Any) -> str:
    counts = [f"count(*) FILTER (WHERE us > {plan.since(d)}) AS n_{d}" for d in plan.windows]
    sums = []
    if plan.value_col is not None:
        sums = ["sum(val) AS v"] + [f"coalesce(sum(val) FILTER (WHERE us > {plan.since(d)}), "
                                    f"0.0) AS v_{d}" for d in plan.windows]
    only = ""
    if plan.event_types is not None:
        listed = ", ".join(f"'{_quote(t)}'" for t in plan.event_types)
        only = f" AND ev IN ({listed})" if listed else " AND false"
    columns = ["cid", "ev AS event", "count(*) AS n", *counts, "max(us) AS last_us", *sums]
    return (f"SELECT {', '.join(columns)} FROM clvlab_ev_parsed "
            f"WHERE us <= {plan.cutoff_us}{only} GROUP BY cid, ev")


def _basket_sql(plan: Any) -> str:
    d = plan.windows[0]
    return f"""WITH kept AS (
        SELECT cid, us, val AS q, max(us) OVER (PARTITION BY cid) AS latest
        FROM clvlab_ev_parsed WHERE us <= {plan.cutoff_us})
    SELECT cid, count(*) AS n, sum(q) AS q_sum, max(q) AS q_max,
        sum(q) FILTER (WHERE us = latest) AS q_last,
        count(*) FILTER (WHERE us > {plan.since(d)}) AS n_{d},
        coalesce(sum(q) FILTER (WHERE us > {plan.since(d)}), 0.0) AS q_sum_{d}
    FROM kept GROUP BY cid"""
