"""The Spark engine of :func:`clvlab.data.events.event_features` and
:func:`~clvlab.data.events.basket_features` (the rules are documented there).

Call those with ``engine="spark"``; the functions here take their resolved
:class:`~clvlab.data.events_rules.LogPlan` (which carries the rules' wording; this module
imports :mod:`clvlab.data.events_rules`, never the front door that imports it). The log is
validated and aggregated in Spark; only the aggregates come to the driver, as a pandas DataFrame
of one row per customer and event type (per customer for baskets), from which the front door
builds the feature table as it does for the other engines. **The result is therefore always a
pandas DataFrame**, even for a Spark input: it has one row per customer, the size of an RFM
table, and feeds pandas models.

Dates are read by :mod:`clvlab.data.spark_dates` (the pandas engine's rules whatever the
session's time zone), to the microsecond. A pandas log or files are read with
:func:`clvlab.data.rfm_spark.read_log` (naive datetimes kept as wall-clock times), in the
session given as ``connection`` or the active one. Integer customer ids come back as int64.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from clvlab.core.errors import ClvlabError, DataValidationError
from clvlab.data.events_rules import BLANK_PATTERN
from clvlab.data.rfm_pandas import NUMBERS_ARE_NOT_DATES, date_rule, header_hint

__all__ = ["event_aggregates", "basket_aggregates"]

_INTEGERS = ("tinyint", "smallint", "int", "bigint")
_NUMBERS = _INTEGERS + ("float", "double")


def event_aggregates(events: Any, plan: Any, spark: Any = None) -> pd.DataFrame:
    """Validate an event log in Spark and aggregate it per customer and event type.

    Parameters
    ----------
    events : pyspark.sql.DataFrame, pandas.DataFrame, path, glob or list of paths
        The event log.
    plan : clvlab.data.events_rules.LogPlan
        The columns, date rules, cutoff, windows and event types.
    spark : pyspark.sql.SparkSession, optional
        The session that reads a pandas log or files; by default the active one.

    Returns
    -------
    pandas.DataFrame
        The columns of :func:`clvlab.data.events_duckdb.event_aggregates`.

    Raises
    ------
    DataValidationError
        When the log breaks a rule of :func:`clvlab.data.events.check_events`.
    ClvlabError
        When a pandas log or files are given without a Spark session.
    """
    from pyspark.sql import functions as F

    parsed = _parsed(_frame(events, plan, spark), plan)
    names = [row[0] for row in parsed.select("ev").distinct().collect()]
    plan.check_names(names, lambda name: _example(parsed, F.col("ev") == F.lit(name), plan))
    kept = parsed.where(F.col("us") <= F.lit(plan.cutoff_us))
    if plan.event_types is not None:
        kept = kept.where(F.col("ev").isin(list(plan.event_types)))
    us, val = F.col("us"), F.col("val")
    aggs = [F.count(F.lit(1)).alias("n"),
            *(F.count(F.when(us > F.lit(plan.since(d)), 1)).alias(f"n_{d}") for d in plan.windows),
            F.max(us).alias("last_us")]
    if plan.value_col is not None:
        aggs += [F.sum(val).alias("v"),
                 *(F.coalesce(F.sum(F.when(us > F.lit(plan.since(d)), val)), F.lit(0.0))
                   .alias(f"v_{d}") for d in plan.windows)]
    return kept.groupBy("cid", "ev").agg(*aggs).withColumnRenamed("ev", "event").toPandas()


def basket_aggregates(transactions: Any, plan: Any, spark: Any = None) -> pd.DataFrame:
    """Validate a purchase log's quantities in Spark and aggregate them per customer.

    Parameters
    ----------
    transactions : pyspark.sql.DataFrame, pandas.DataFrame, path, glob or list of paths
        The purchase log.
    plan : clvlab.data.events_rules.LogPlan
        With ``event_col`` None and the quantity column as ``value_col``.
    spark : pyspark.sql.SparkSession, optional
        As in :func:`event_aggregates`.

    Returns
    -------
    pandas.DataFrame
        The columns of :func:`clvlab.data.events_duckdb.basket_aggregates`.

    Raises
    ------
    DataValidationError, ClvlabError
        As :func:`event_aggregates`.
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    d = plan.windows[0]
    kept = (_parsed(_frame(transactions, plan, spark), plan)
            .where(F.col("us") <= F.lit(plan.cutoff_us))
            .withColumn("latest", F.max("us").over(Window.partitionBy("cid"))))
    recent = F.col("us") > F.lit(plan.since(d))
    q = F.col("val")
    return kept.groupBy("cid").agg(
        F.count(F.lit(1)).alias("n"), F.sum(q).alias("q_sum"), F.max(q).alias("q_max"),
        F.sum(F.when(F.col("us") == F.col("latest"), q)).alias("q_last"),
        F.count(F.when(recent, 1)).alias(f"n_{d}"),
        F.coalesce(F.sum(F.when(recent, q)), F.lit(0.0)).alias(f"q_sum_{d}")).toPandas()


def _frame(log: Any, plan: Any, spark: Any):
    """The log as a Spark DataFrame."""
    if hasattr(log, "sparkSession"):
        return log
    from pyspark.sql import SparkSession

    from clvlab.data.rfm_spark import read_log

    session = spark or SparkSession.getActiveSession()
    if session is None:
        raise ClvlabError("engine='spark' reads a pandas log or files in a Spark session: pass "
                          "connection=spark, or start one first (clvlab.spark.local_session())")
    return read_log(session, log, plan.date_col)


def _parsed(frame, plan: Any):
    """The log as ``cid``, ``d``, ``ev`` (text), ``us`` (wall-clock microseconds), ``val``
    (double); raises for the first rule it breaks, in the pandas engine's order."""
    from pyspark.sql import functions as F

    from clvlab.data.spark_dates import wall_micros

    plan.require_columns(list(frame.columns))
    if not frame.limit(1).collect():
        raise DataValidationError(None, plan.rule("empty"))
    types = dict(frame.dtypes)

    def column(name: str | None):
        return F.col("`" + name.replace("`", "``") + "`") if name is not None else F.lit(None)

    cid = column(plan.customer_col)
    if types[plan.customer_col] in _INTEGERS:
        cid = cid.cast("bigint")  # as pandas and DuckDB read integer ids from a file
    ev, val = column(plan.event_col), column(plan.value_col).cast("double")
    raw = frame.select(cid.alias("cid"), column(plan.date_col).alias("d"), ev.alias("ev"),
                       column(plan.value_col).alias("val"))
    if plan.event_col is not None:
        kind = types[plan.event_col]
        if kind != "string" and kind not in _INTEGERS:
            raise DataValidationError(plan.event_col, plan.rule("event_type", kind, "type"),
                                      _example(raw, F.lit(True), plan))
        ev = ev.cast("string")
    if plan.value_col is not None:
        kind = types[plan.value_col]
        if kind not in _NUMBERS and not kind.startswith("decimal"):
            row = _example(raw, F.col("val").isNotNull() & F.col("val").try_cast("double").isNull(),
                           plan) or _example(raw, F.lit(True), plan)
            raise DataValidationError(plan.value_col, plan.rule("value_type", kind, "type"), row,
                                      hint=header_hint(row))
    micros, zoned = wall_micros(frame, plan.date_col, plan.date_format, plan.timezone)
    text = types[plan.date_col] == "string" and plan.date_format is None
    def digits(dates):  # digits alone are a number, never a date (Spark would read "2024")
        return dates.rlike(r"^\s*[0-9]+\s*$") if text else F.lit(False)

    micros = F.when(~digits(column(plan.date_col)), micros)
    parsed = frame.select(cid.alias("cid"), column(plan.date_col).alias("d"), ev.alias("ev"),
                          micros.alias("us"), (zoned if zoned is not None else F.lit(False))
                          .alias("zoned"), val.alias("val"))
    no_id = F.col("cid").isNull()
    if types[plan.customer_col] in ("float", "double"):
        no_id = no_id | F.isnan("cid")  # a NaN id is missing to pandas
    us, d = F.col("us"), F.col("d")
    checks = [(plan.customer_col, plan.rule("no_id"), no_id),
              (plan.date_col, plan.rule("no_date"), d.isNull()),
              (plan.date_col, plan.rule("mixed_zones"), ~F.col("zoned")),
              (plan.date_col, NUMBERS_ARE_NOT_DATES, us.isNull() & digits(d)),
              (plan.date_col, date_rule(plan.date_format), us.isNull())]
    if plan.event_col is not None:
        checks.append((plan.event_col, plan.rule("no_event"),
                       F.col("ev").isNull() | F.col("ev").rlike("^" + BLANK_PATTERN + r"\z")))
    if plan.value_col is not None:
        v = F.col("val")
        checks += [(plan.value_col, plan.rule("value_nan"), v.isNull() | F.isnan(v)),
                   (plan.value_col, plan.rule("value_inf"), F.abs(v) == F.lit(float("inf")))]
        if plan.event_col is None:
            checks.append((plan.value_col, plan.rule("value_negative"), v < 0))
    found = parsed.select(F.count(F.when(F.col("zoned"), 1)).alias("zoned"), F.count(d).alias("dated"),
                          *(F.count(F.when(c, 1)).alias(f"c{i}") for i, (*_, c) in enumerate(checks))
                          ).collect()[0]
    for i, (name, rule, condition) in enumerate(checks):
        broken = found[f"c{i}"]
        if i == 2:  # mixed zones: some rows zoned, not all
            broken = 0 < found["zoned"] < found["dated"]
        if broken:
            row = _example(parsed, condition, plan)
            raise DataValidationError(name, rule, row, hint=header_hint(row))
    return parsed.drop("zoned")


def _example(frame, condition, plan: Any) -> dict[str, Any]:
    """The first row matching ``condition``, under the log's column names ({} when none)."""
    rows = frame.where(condition).select("cid", "d", "ev", "val").limit(1).collect()
    if not rows:
        return {}
    names = (plan.customer_col, plan.date_col, plan.event_col, plan.value_col)
    return {name: value for name, value in zip(names, rows[0]) if name is not None}
