"""The Spark engine of :func:`clvlab.rfm_summary`: RFM summaries of a Spark DataFrame.

``pip install clvlab[spark]``. The RFM rules are those of :func:`clvlab.rfm_summary`; the
per-customer aggregates are the DuckDB engine's, in Spark SQL, and the public columns are
rendered from their one definition (:mod:`clvlab.data.rfm_columns`): the results equal the
pandas and DuckDB engines' (tested on the CDNOW master log). Dates are read by the pandas
engine's rules whatever the session's settings (``spark.sql.session.timeZone``,
``spark.sql.timestampType``): see :mod:`clvlab.data.spark_dates`. A Spark TIMESTAMP column holds
instants; Spark turns naive pandas datetimes into instants in the session's zone, so pass a
pandas log through :func:`read_log` (which keeps them as TIMESTAMP_NTZ wall-clock times) or as
text. The jobs on a summary (fits, scoring) are in :mod:`clvlab.ops.spark` (``clvlab.spark``).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import Any

import pandas as pd

from clvlab.core.errors import DataValidationError
from clvlab.data.rfm_columns import SPEC
from clvlab.data.rfm_rules import describe, make_settings, resolve_window, rfm_columns_sql
from clvlab.data.rfm_pandas import date_rule
from clvlab.data.spark_dates import MICROS_PER_DAY, pandas_schema, parquet_log, wall_micros

__all__ = ["SparkSummary", "local_session", "rfm_summary", "read_log"]


@dataclass(frozen=True)
class SparkSummary:
    """An RFM summary in Spark: ``frame`` (one row per customer, the columns of
    :func:`clvlab.rfm_summary`, the customer id a column) and ``info`` (what the pandas table
    keeps in ``attrs["clvlab"]``: time unit, window...).

    Parameters
    ----------
    frame : pyspark.sql.DataFrame
        One row per customer, the customer id a column.
    info : dict
        What the pandas table keeps in ``attrs["clvlab"]``.
    attribute_dtypes : dict, optional
        The pandas dtypes of customer attributes given as a pandas DataFrame, restored by
        :meth:`to_pandas`.
    """

    frame: Any
    info: dict[str, Any]
    #: pandas dtypes of customer attributes given as a pandas DataFrame, restored by
    #: :meth:`to_pandas` (Spark has no categories)
    attribute_dtypes: dict[str, Any] | None = None

    def to_pandas(self) -> pd.DataFrame:
        """The pandas table :func:`clvlab.rfm_summary` would give: indexed by customer id,
        sorted, integer counts, with ``attrs``.

        Returns
        -------
        pandas.DataFrame
            The summary, collected to the driver.
        """
        table = self.frame.toPandas()
        table = table.set_index(table.columns[0]).sort_index()
        for column in SPEC:  # the dtypes of the pandas engine
            if column.name in table:
                table[column.name] = table[column.name].astype(column.dtype)
        for name, dtype in (self.attribute_dtypes or {}).items():
            table[name] = table[name].astype(dtype)
        table.attrs["clvlab"] = dict(self.info)
        return table


def local_session(cores: int = 2, app_name: str = "clvlab", fast_start: bool = False):
    """A local Spark session bound to 127.0.0.1, UI off, few shuffle partitions, for
    single-machine use and tests. Workers run this Python (PYSPARK_PYTHON). ``fast_start``
    limits the JVM to its quick compiler and serial GC: seconds faster to start (tests), many
    times slower on real data (10M transactions: see benchmarks/bench_scale.py).

    Parameters
    ----------
    cores : int, default 2
        Local worker threads (``local[cores]``).
    app_name : str, default "clvlab"
        The application's name.
    fast_start : bool, default False
        Start the JVM for speed of starting (above).

    Returns
    -------
    pyspark.sql.SparkSession
        The session (an existing one is returned by Spark's builder).
    """
    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    builder = SparkSession.builder.master(f"local[{cores}]").appName(app_name)
    if fast_start:
        builder = builder.config("spark.driver.extraJavaOptions",
                                 "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC")
    return (builder
            .config("spark.driver.host", "127.0.0.1")
            .config("spark.driver.bindAddress", "127.0.0.1")
            .config("spark.ui.enabled", "false")
            .config("spark.sql.shuffle.partitions", str(2 * cores))
            .config("spark.sql.execution.arrow.pyspark.enabled", "true")
            .getOrCreate())


def rfm_summary(frame, *, customer_col: str = "customer_id", date_col: str = "date",
                amount_col: str | None = None, time_unit: str = "D", calibration_end: Any = None,
                observation_end: Any = None, date_format: str | None = None,
                timezone: str = "UTC", merge_period: str | None = None,
                consent_col: str | None = None, withdrawn: Any = None,
                delimiter: str | None = None, decimal: str | None = None,
                customer_attributes: Any = None):
    """The RFM summary of a Spark DataFrame of transactions, as a :class:`SparkSummary`.

    Same parameters, rules, columns (customer id, frequency, recency, T, monetary_value and the
    holdout columns) and values as :func:`clvlab.rfm_summary`, consent included. Nothing is
    collected to the driver but the log's time range, the number of customers left out for
    consent (and one example row when a rule is broken).

    Parameters
    ----------
    frame : pyspark.sql.DataFrame
        The transactions. Dates may be TIMESTAMP (instants, seen in ``timezone``),
        TIMESTAMP_NTZ or DATE (wall-clock times), ISO 8601 text (zoned when a UTC offset follows
        a time of day, naive otherwise; a mix is refused) or text/numbers in ``date_format``
        (%Y %m %d %H %M %S). Times are kept to the microsecond (Spark's resolution).
    customer_col, date_col, amount_col, time_unit, calibration_end, observation_end : optional
        As in :func:`clvlab.rfm_summary`.
    date_format, timezone, merge_period, consent_col, withdrawn : optional
        As in :func:`clvlab.rfm_summary`.
    delimiter, decimal : str, optional
        Accepted for :func:`clvlab.rfm_summary`'s signature and unused: a Spark DataFrame is
        already parsed (:func:`read_log` reads CSV files with them).
    customer_attributes : pandas.DataFrame or pyspark.sql.DataFrame, optional
        Static attributes joined in Spark, by :func:`clvlab.rfm_summary`'s rules
        (:mod:`clvlab.data.attributes`). A pandas frame is indexed by customer id or has a
        ``customer_col`` column; a Spark frame has that column. Spark decimals become doubles;
        a pandas frame's dtypes (categories among them) come back in :meth:`SparkSummary.to_pandas`.
        The checks collect counts and, for a broken rule, the first offending customer by id.

    Returns
    -------
    SparkSummary
        The summary (a lazy Spark DataFrame) and its metadata.

    Raises
    ------
    DataValidationError
        When the log breaks one of the pandas engine's rules, with the column, the rule and an
        example row.
    """
    from pyspark.sql import functions as F

    settings = make_settings(customer_col=customer_col, date_col=date_col, amount_col=amount_col,
                             time_unit=time_unit, date_format=date_format, timezone=timezone,
                             merge_period=merge_period, consent_col=consent_col, withdrawn=withdrawn)
    excluded = None
    if consent_col is not None or withdrawn is not None:
        frame, excluded = _exclude_withdrawn(frame, settings)
    spark = frame.sparkSession
    types = dict(frame.dtypes)
    for column in (customer_col, date_col, amount_col):
        if column is not None and column not in types:
            raise DataValidationError(column, "is missing from the transaction log",
                                      hint=f"columns present: {list(types)}")
    if amount_col is not None and types[amount_col] not in (
            "double", "float", "int", "bigint", "smallint", "tinyint") \
            and not types[amount_col].startswith("decimal"):
        raise DataValidationError(amount_col, f"amount must be numeric (type is {types[amount_col]})")
    view = f"clvlab_tx_{id(frame)}"
    frame.createOrReplaceTempView(view)
    amount = f"CAST(`{amount_col}` AS DOUBLE)" if amount_col else "CAST(NULL AS DOUBLE)"
    micros, zoned = wall_micros(frame, date_col, date_format, settings.timezone)
    # us: wall-clock microseconds, whole numbers, so the window and the periods are exact
    parsed = spark.table(view).select(
        F.col(f"`{customer_col}`").alias("cid"), F.col(f"`{date_col}`").alias("d"),
        micros.alias("us"),
        (zoned if zoned is not None else F.lit(False)).alias("zoned"), F.expr(amount).alias("amt"))
    parsed.createOrReplaceTempView(view + "_p")
    # a NaN id is missing to pandas, not to Spark's IS NULL
    no_id = "cid IS NULL" + (" OR isnan(cid)" if types[customer_col] in ("double", "float") else "")
    stats = spark.sql(f"""SELECT count(*) AS n, count_if({no_id}) AS bad_id,
        count_if(d IS NULL) AS no_date, count_if(zoned) AS zoned, count_if(us IS NULL) AS bad_date,
        count_if(pmod(us, {MICROS_PER_DAY}) <> 0) AS timed,
        count_if({'amt IS NULL OR isnan(amt) OR abs(amt) = double("inf")' if amount_col else 'false'}) AS bad_amount,
        min(us) AS first, max(us) AS last FROM {view}_p""").collect()[0]
    if stats["n"] == 0:
        raise DataValidationError(None, "the transaction log is empty")
    # the pandas engine's rules, in its order
    for broken, column, rule, condition in (
            (stats["bad_id"], customer_col, "customer id is missing", no_id),
            (stats["no_date"], date_col, "date is missing", "d IS NULL"),
            (0 < stats["zoned"] < stats["n"], date_col, "timestamps mix naive values and values "
             "with a UTC offset; the naive ones are ambiguous", "NOT zoned"),
            (stats["bad_date"], date_col, date_rule(date_format), "us IS NULL"),
            (settings.time_unit == "h" and not stats["timed"], date_col, "time_unit='h' needs "
             "timestamps with a time of day, but every timestamp is at midnight", "true"),
            (stats["bad_amount"], amount_col, "amount is missing, NaN or infinite",
             'amt IS NULL OR isnan(amt) OR abs(amt) = double("inf")')):
        if broken:
            row = spark.sql(f"SELECT cid, d, amt FROM {view}_p WHERE {condition} LIMIT 1").collect()[0]
            raise DataValidationError(column, rule, {customer_col: row["cid"], date_col: row["d"],
                                                     **({amount_col: row["amt"]} if amount_col else {})})
    first = pd.Timestamp(stats["first"], unit="us")
    last = pd.Timestamp(stats["last"], unit="us")
    window = resolve_window(first, last, calibration_end, observation_end, settings)
    customers_sql, final_sql = _summary_sql(view + "_p", settings, window)
    # the per-customer aggregates are kept (memory, then disk) for the set-aside counts and the
    # final columns, so the log is aggregated once
    customers = spark.sql(customers_sql).persist()
    customers.createOrReplaceTempView(view + "_c")
    counts = spark.sql(f"""SELECT coalesce(sum(refund_only), 0) AS refund_only,
        coalesce(sum(zeroed), 0) AS zeroed, count_if(n_cal = 0 AND n_hold > 0) AS after_cut,
        count_if(n_cal > 0) AS n FROM {view}_c""").collect()[0]
    if counts["n"] == 0:
        raise DataValidationError(None, f"no customer made a purchase (a row with amount >= 0) "
                                        f"by {window.calibration_end}")
    result = spark.sql(final_sql.format(customers=view + "_c"))
    found = {"refund_only_periods": int(counts["refund_only"]),
             "negative_periods_zeroed": int(counts["zeroed"]),
             "customers_first_seen_after_cut": int(counts["after_cut"])}
    if excluded is not None:
        found["customers_excluded"] = excluded
    info = describe(settings, window, found)
    if customer_attributes is None:
        return SparkSummary(result, info)
    from clvlab.data.attributes import join_spark_attributes

    result, names, dtypes = join_spark_attributes(result, customer_attributes,
                                                  customer_col=customer_col)
    return SparkSummary(result, {**info, "attributes": names}, dtypes)


def _exclude_withdrawn(frame, settings):
    """The log without customers who withdrew consent (clvlab.privacy's rule) and their number."""
    from pyspark.sql import functions as F

    from clvlab.data.privacy import consent_sql

    cid = F.col(f"`{settings.customer_col}`").cast("string")
    excluded = F.lit(False)
    if settings.withdrawn:
        excluded = excluded | _withdrawn(frame, settings.customer_col, settings.withdrawn)
    if settings.consent_col is not None:
        if settings.consent_col not in frame.columns:
            raise DataValidationError(settings.consent_col, "is missing from the transaction log",
                                      hint=f"columns present: {frame.columns}")
        flag = F.expr(consent_sql(f"`{settings.consent_col}`").replace("VARCHAR", "STRING"))
        bad = frame.where(flag.isNull()).limit(1).collect()
        if bad:
            raise DataValidationError(settings.consent_col, "consent must be true/false, 1/0 or "
                                      "yes/no (missing values are refused)", bad[0].asDict())
        excluded = excluded | ~flag
    ids = frame.where(excluded).select(cid.alias("cid")).distinct().persist()
    count = ids.count()
    kept = frame.join(ids, cid == ids["cid"], "left_anti") if count else frame
    return kept, int(count)


def _withdrawn(frame, customer_col: str, withdrawn) -> Any:
    """Whether a row's customer id is in ``withdrawn`` (text), by pandas' rule: ``str(id)`` is
    listed. Spark's text of a double (1.0E7) or a boolean (true) is not Python's (10000000.0,
    True), so those ids are matched as the values whose Python text is listed."""
    from pyspark.sql import functions as F

    column = F.col(f"`{customer_col}`")
    kind = dict(frame.dtypes)[customer_col]
    if kind == "double":
        values = []
        for text in withdrawn:
            try:
                value = float(text)
            except ValueError:
                continue
            if str(value) == text:
                values.append(value)
        return column.isin(values) if values else F.lit(False)
    if kind == "boolean":
        values = [value for value in (True, False) if str(value) in withdrawn]
        return column.isin(values) if values else F.lit(False)
    return column.cast("string").isin(sorted(withdrawn))


def _double(value: float) -> str:
    """A DOUBLE literal that is exactly ``value`` (a bare 86400.0 is a DECIMAL in Spark SQL)."""
    return f"{float(value)!r}D"


def _micros(ts: pd.Timestamp) -> str:
    """A BIGINT literal: the whole microseconds since 1970 of a naive timestamp (floored)."""
    return f"{(ts - pd.Timestamp(0)) // pd.Timedelta(microseconds=1)}L"


def _summary_sql(view: str, settings, window) -> tuple[str, str]:
    """The per-customer aggregates (mirroring rfm_duckdb._customer_sql) and the final columns
    (mirroring rfm_duckdb._final_select_sql, with ``{customers}`` for the aggregates' view)."""
    # in whole microseconds, where the dates are exact: us > floor(cal) iff us > cal
    cal = _micros(window.calibration_end)
    obs = _micros(window.observation_end)
    # period starts from whole microseconds, exactly (as pandas' floor of the timestamp)
    merge = int(settings.merge_seconds) * 1_000_000
    period = f"(us - pmod(us, {merge}L)) / 1000000.0D"
    holdout = f"us > {cal}" if window.has_holdout else "false"
    purchase = "amt >= 0" if settings.amount_col else "true"
    value = "coalesce(amt, 0.0D)"
    cal_rows = "purchase AND NOT holdout"
    columns = rfm_columns_sql(settings, window, _double, lambda name: f"`{name}`")
    return f"""
    WITH periods AS (
        SELECT cid, {holdout} AS holdout, {period} AS p,
               sum({value}) AS raw_value, bool_or({purchase}) AS purchase
        FROM {view} WHERE us <= {obs}
        GROUP BY cid, {holdout}, {period}
    ), valued AS (
        SELECT *, greatest(raw_value, 0.0D) AS value FROM periods
    ), customers AS (
        SELECT cid,
            count_if({cal_rows}) AS n_cal,
            min(CASE WHEN {cal_rows} THEN p END) AS first_p,
            max(CASE WHEN {cal_rows} THEN p END) AS last_p,
            sum(CASE WHEN {cal_rows} THEN value END) AS total,
            min_by(CASE WHEN {cal_rows} THEN value END, CASE WHEN {cal_rows} THEN p END) AS first_value,
            count_if(purchase AND holdout) AS n_hold,
            coalesce(sum(CASE WHEN purchase AND holdout THEN value END), 0.0D) AS total_hold,
            count_if(NOT purchase) AS refund_only,
            count_if(purchase AND raw_value < 0) AS zeroed
        FROM valued GROUP BY cid
    )
    SELECT * FROM customers""", f"SELECT {', '.join(columns)} FROM {{customers}} WHERE n_cal > 0"


def read_log(spark, transactions: Any, date_col: str = "date", *, amount_col: str | None = None,
             delimiter: str | None = None, decimal: str | None = None):
    """The transactions as a Spark DataFrame, naive times kept as wall-clock times.

    Parameters
    ----------
    spark : pyspark.sql.SparkSession
    transactions : str, path, list of them, pandas.DataFrame or pyspark.sql.DataFrame
        CSV or Parquet files (a path, glob or list); a pandas DataFrame is converted, a Spark
        one passed through.
    date_col : str
        The date column of a CSV, read as text.
    amount_col, delimiter, decimal
        CSV only, as the pandas engine's reader: the delimiter (None: sniffed from the first
        line, as pandas does) and the decimal mark of ``amount_col`` ("." by default).

    Returns
    -------
    pyspark.sql.DataFrame

    Notes
    -----
    As the pandas engine reads them: a pandas column of naive datetimes becomes TIMESTAMP_NTZ
    (Spark would read it as instants in the session's zone), so does a Parquet file's (whatever
    ``spark.sql.parquet.inferTimestampNTZ.enabled`` says), and a CSV's ``date_col`` stays text
    for :func:`rfm_summary`'s ISO 8601 rules (Spark's schema inference would read naive and
    zoned text alike as instants in the session's zone).
    """
    from clvlab.data.rfm_io import expand_paths, file_format

    if isinstance(transactions, pd.DataFrame):
        return spark.createDataFrame(transactions, schema=pandas_schema(transactions))
    if hasattr(transactions, "sparkSession"):
        return transactions

    files = expand_paths(transactions)
    if file_format(files) == "parquet":
        return parquet_log(spark, files)
    from pyspark.sql import functions as F
    from pyspark.sql.types import StringType

    reader = spark.read.option("header", "true").option("sep", delimiter or _sniff(files[0]))
    schema = reader.option("inferSchema", "true").csv(files).schema
    comma = decimal == "," and amount_col in schema.fieldNames()
    for column in (date_col, amount_col if comma else None):
        if column in schema.fieldNames():
            schema[column].dataType = StringType()
    frame = reader.schema(schema).csv(files)
    if comma:
        # "12,50" is 12.5; text that is still no number becomes NULL, refused as a missing amount
        amount = F.regexp_replace(F.trim(F.col(f"`{amount_col}`")), ",", ".")
        frame = frame.withColumn(amount_col, amount.try_cast("double"))
    return frame


def _sniff(path: str) -> str:
    """The delimiter of a CSV file, sniffed from its first line as pandas' python reader does."""
    import csv
    import gzip

    opener = gzip.open if path.lower().endswith(".gz") else open
    with opener(path, "rt", errors="replace") as handle:
        line = handle.readline()
    try:
        return csv.Sniffer().sniff(line).delimiter
    except csv.Error:
        return ","
