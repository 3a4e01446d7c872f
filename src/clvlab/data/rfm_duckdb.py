"""The DuckDB engine of :func:`clvlab.rfm_summary` (the rules are documented there).

The log is scanned twice: a cheap scan counts bad rows (missing ids, unparseable dates, bad
amounts) and finds the time range; the second aggregates rows into customer-periods and then
customers. (Folding the counts into the aggregation was measured slower: the extra aggregates
run once per customer-period.) Only when a count is non-zero is the log scanned again, to find an
example row for the error. Only the per-customer table is materialised, so memory grows with the
number of customers, not of transactions; DuckDB spills the aggregation to disk when needed.
"""

from __future__ import annotations

import os
import tempfile
from typing import Any

import pandas as pd

from clvlab.core.errors import ClvlabError, DataValidationError
from clvlab.data.rfm_rules import (Settings, Window, check_customers, describe, resolve_window,
                                   rfm_columns_sql)
from clvlab.data.rfm_io import expand_paths, file_format, parquet_metadata
from clvlab.data.tables import arrow_source, is_foreign_table
from clvlab.data.rfm_pandas import (NUMBERS_ARE_NOT_DATES, OFFSET_PATTERN as _OFFSET_REGEX,
                                    amount_hint, date_rule, header_hint)


def summarise(transactions: Any, settings: Settings, calibration_end: Any, observation_end: Any,
              connection: Any = None, progress: bool = False) -> tuple[pd.DataFrame, dict[str, int]]:
    con = _connect(connection, settings, progress)
    try:
        window, counts, _ = _aggregate(con, transactions, settings, calibration_end, observation_end)
        # The final columns come straight from SQL, sorted there: no intermediate copies in
        # pandas, which matters at tens of millions of customers.
        table = con.execute(_final_select_sql(settings, window)).df()
        table = table.set_index(settings.customer_col)
        table.attrs["clvlab"] = describe(settings, window, counts)
        return table, counts
    finally:
        con.close()  # drops this cursor's temp views and tables


def iter_summary(transactions: Any, settings: Settings, calibration_end: Any, observation_end: Any,
                 chunk_rows: int, connection: Any = None):
    """The RFM summary in chunks of ``chunk_rows`` customers (sorted by id), for jobs whose
    memory must not grow with the number of customers. Aggregates eagerly, then returns
    (``attrs["clvlab"]`` with the number of customers, an iterator of DataFrames); the DuckDB
    cursor is closed when the iterator is exhausted or discarded."""
    con = _connect(connection, settings, False)
    try:
        window, counts, n_customers = _aggregate(con, transactions, settings, calibration_end,
                                                 observation_end)
        # sorted chunks: without insertion order DuckDB hands sorted runs over out of order
        con.execute("SET preserve_insertion_order = true")
        reader = con.sql(_final_select_sql(settings, window)).to_arrow_reader(chunk_rows)
    except BaseException:
        con.close()
        raise
    info = {**describe(settings, window, counts), "customers": n_customers}

    def chunks():
        try:
            for batch in reader:
                table = batch.to_pandas().set_index(settings.customer_col)
                table.attrs["clvlab"] = info
                yield table
        finally:
            con.close()

    return info, chunks()


def write_table(transactions: Any, path: str, output_format: str, settings: Settings,
                calibration_end: Any, observation_end: Any, connection: Any = None,
                progress: bool = False) -> dict[str, Any]:
    """Write the RFM summary straight to a Parquet or CSV file without building it in pandas.

    Used by the command line for logs whose customer table may not fit in memory. The caller
    makes it atomic (``path`` is a temporary file). A Parquet file records what
    ``attrs["clvlab"]`` holds (time unit, customer column, window) in its key-value metadata,
    where :func:`clvlab.read_rfm` and ``pandas.read_parquet`` find it; a CSV file cannot.
    Returns that, with the number of customers.
    """
    con = _connect(connection, settings, progress)
    try:
        window, counts, n_customers = _aggregate(con, transactions, settings, calibration_end,
                                                 observation_end)
        info = describe(settings, window, counts)
        if output_format == "parquet":
            pairs = ", ".join(f"{key}: '{_quote(value)}'"
                              for key, value in parquet_metadata(info).items())
            fmt = f"FORMAT parquet, KV_METADATA {{{pairs}}}"
        else:
            fmt = "FORMAT csv, HEADER true"
        con.execute(f"COPY ({_final_select_sql(settings, window)}) TO '{_quote(path)}' ({fmt})")
        return {"customers": n_customers, **info}
    finally:
        con.close()  # drops this cursor's temp views and tables


def _aggregate(con: Any, transactions: Any, settings: Settings, calibration_end: Any,
               observation_end: Any):
    """Validate the log, then build the per-customer table ``clvlab_customers``.

    Returns the window, the set-aside counts and the number of customers in the summary.
    """
    import duckdb

    try:
        try:
            excluded, stats = _scan(con, transactions, settings, dates_as_text=False)
        except (duckdb.ConversionException, duckdb.InvalidInputException):
            # the CSV reader met a date after its sample that is not ISO 8601: read the dates as
            # text, so that clvlab's rule (and message, with the row) decides
            excluded, stats = _scan(con, transactions, settings, dates_as_text=True)
        if stats["n_rows"] == 0:
            raise DataValidationError(None, "the transaction log is empty" if not excluded else
                                      f"no transactions are left after excluding the {excluded} "
                                      "customers who withdrew consent")
        if stats["bad_id"] or stats["bad_date"] or stats["bad_amount"] or stats["all_midnight"]:
            _explain_bad_rows(con, settings)  # raises
        window = resolve_window(pd.Timestamp(stats["first"]), pd.Timestamp(stats["last"]),
                                calibration_end, observation_end, settings)
        con.execute(f"CREATE OR REPLACE TEMP TABLE clvlab_customers AS "
                    f"{_customer_sql(settings, window)}")
        counts = con.execute("""SELECT coalesce(sum(refund_only), 0), coalesce(sum(zeroed), 0),
            count(*) FILTER (WHERE n_cal = 0 AND n_hold > 0), count(*) FILTER (WHERE n_cal > 0)
            FROM clvlab_customers""").fetchone()
    except duckdb.Error as exc:  # unreadable files, CSV dialect problems, casts, disk full
        raise ClvlabError(f"DuckDB could not summarise the transaction log: {exc}") from exc
    check_customers(int(counts[3]), window)
    found = {"refund_only_periods": int(counts[0]), "negative_periods_zeroed": int(counts[1]),
             "customers_first_seen_after_cut": int(counts[2])}
    if excluded is not None:
        found["customers_excluded"] = excluded
    return window, found, int(counts[3])


def _scan(con: Any, transactions: Any, settings: Settings, dates_as_text: bool):
    """Register the log, check its types and count what the rules need; (excluded, stats)."""
    excluded = _register_source(con, transactions, settings, dates_as_text)
    _check_types(con, settings)
    midnight = "bool_and(ts = date_trunc('day', ts))" if settings.time_unit == "h" else "false"
    # NaN also by equality: DuckDB 2.0 skips a Parquet file's NaN rows under isnan() alone (its
    # statistics leave NaN out), and NaN equals NaN in DuckDB
    bad_amount = f"count(*) FILTER (WHERE amt IS NULL OR {NAN_SQL.format('amt')} OR isinf(amt))" \
        if settings.amount_col else "0"
    stats = con.execute(f"""SELECT count(*) AS n_rows,
        count(*) FILTER (WHERE cid IS NULL) AS bad_id,
        count(*) FILTER (WHERE ts IS NULL) AS bad_date, {bad_amount} AS bad_amount,
        min(ts) AS first, max(ts) AS last, {midnight} AS all_midnight
        FROM clvlab_parsed""").df().iloc[0]
    return excluded, stats


#: a NaN test for DuckDB SQL (``{}``: the column): see _scan
NAN_SQL = "(isnan({0}) OR {0} = 'nan'::DOUBLE)"

_SHARED: dict[int, Any] = {}  # process id -> in-memory database (DuckDB is not fork-safe)


def new_connection(memory_limit: str | None = None):
    """An in-memory DuckDB database set up for clvlab's aggregations: insertion order not kept
    (less memory), spilling to the system's temporary folder (not the working directory), and
    ``memory_limit`` (e.g. "2GB") when given."""
    import duckdb

    config = {"preserve_insertion_order": False,
              "temp_directory": os.path.join(tempfile.gettempdir(), f"clvlab_duckdb_{os.getpid()}")}
    if memory_limit:
        config["memory_limit"] = str(memory_limit)
    try:
        return duckdb.connect(config=config)
    except duckdb.Error as exc:
        raise ClvlabError(f"DuckDB refused the settings {config} ({exc}); a memory limit is "
                          "written like '2GB'") from None


def _connect(connection: Any, settings: Settings, progress: bool):
    return session_cursor(connection, settings.timezone, progress)


def session_cursor(connection: Any, timezone: str, progress: bool = False):
    """A fresh cursor (its own temp objects and session settings) on the user's database or on a
    process-wide in-memory one; reusing the database saves its start-up and keeps its caches.
    Every DuckDB engine of the data layer (the RFM summary, the event features) takes its
    cursors here, so they share one database per process."""
    if connection is None:
        connection = _SHARED.get(os.getpid())
        if connection is None:
            connection = _SHARED[os.getpid()] = new_connection()
    cursor = connection.cursor()
    cursor.execute(f"SET TimeZone = '{_quote(timezone)}'")
    cursor.execute(f"SET enable_progress_bar = {'true' if progress else 'false'}")
    return cursor


def _quote(text: str) -> str:
    return str(text).replace("'", "''")


def _ident(name: str) -> str:
    return '"' + str(name).replace('"', '""') + '"'


def _register_source(con: Any, transactions: Any, settings: Settings,
                     dates_as_text: bool = False) -> int | None:
    if isinstance(transactions, pd.DataFrame):
        from clvlab.data.rfm_pandas import check_ids  # the mixed-type check needs Python objects

        if settings.customer_col in transactions.columns:
            check_ids(transactions, transactions[settings.customer_col], settings.customer_col)
        con.register("clvlab_frame", transactions)
        source, columns = "clvlab_frame", list(transactions.columns)
    elif is_foreign_table(transactions):  # a pyarrow Table or stream, scanned in place
        con.register("clvlab_frame", arrow_source(transactions))
        source = "clvlab_frame"
        columns = [row[0] for row in con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()]
    else:
        files = expand_paths(transactions)
        file_list = "[" + ", ".join(f"'{_quote(f)}'" for f in files) + "]"
        if file_format(files) == "parquet":
            source = f"read_parquet({file_list}, union_by_name = true)"
        else:
            # DuckDB's sniffer would guess a date layout such as %d/%m/%Y from a sample, which
            # clvlab never does: it may only read ISO dates (YYYY-MM-DD) itself, the fast path
            # for large logs; any other date column is read as text and parsed by clvlab's rule.
            source = (f"read_csv({file_list}, union_by_name = true{_csv_options(settings)}, "
                      "dateformat = '%Y-%m-%d'")
            kinds = dict(row[:2] for row in con.execute(f"DESCRIBE SELECT * FROM {source})").fetchall())
            if settings.date_col in kinds and (dates_as_text or settings.date_format is not None
                                               or kinds[settings.date_col] != "DATE"):
                source += f", types = {{'{_quote(settings.date_col)}': 'VARCHAR'}}"
            source += ")"
        columns = [row[0] for row in con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()]
    for column in [settings.customer_col, settings.date_col, settings.amount_col]:
        if column is not None and column not in columns:
            raise DataValidationError(column, "is missing from the transaction log",
                                      hint=f"columns present: {columns}")
    amount = _ident(settings.amount_col) if settings.amount_col else "NULL"
    excluded = None
    if settings.consent_col is not None or settings.withdrawn is not None:
        excluded = _exclusion_view(con, source, columns, settings, amount)
        source = "clvlab_consented"
    con.execute(f"""CREATE OR REPLACE TEMP VIEW clvlab_raw AS
        SELECT {_ident(settings.customer_col)} AS cid, {_ident(settings.date_col)} AS d,
               {amount} AS amt FROM {source}""")
    date_type = {row[0]: row[1] for row in con.execute("DESCRIBE clvlab_raw").fetchall()}["d"]
    _parsed_view(con, _timestamp_sql(date_type, settings), settings)
    return excluded


def _parsed_view(con: Any, timestamp_sql: str, settings: Settings) -> None:
    """The view ``clvlab_parsed``: ids, raw dates, naive timestamps ``ts`` and numeric amounts."""
    amount_type = {row[0]: row[1] for row in con.execute("DESCRIBE clvlab_raw").fetchall()}["amt"]
    con.execute(f"""CREATE OR REPLACE TEMP VIEW clvlab_parsed AS
        SELECT cid, d, {timestamp_sql} AS ts, {_amount_sql(amount_type, settings)} AS amt
        FROM clvlab_raw""")


def _csv_options(settings: Settings) -> str:
    """read_csv options for the user's dialect (delimiter, decimal mark)."""
    options = ""
    if settings.delimiter is not None:
        options += f", delim = '{_quote(settings.delimiter)}'"
    if settings.decimal != ".":
        options += f", decimal_separator = '{_quote(settings.decimal)}'"
    return options


def _amount_sql(amount_type: str, settings: Settings) -> str:
    """Amounts with a decimal comma may arrive as text (a DataFrame column, or a CSV column the
    sniffer left as text): read them by the decimal rule. Text that stays unreadable is NULL
    here and refused by _check_types, which looks at the raw text."""
    if amount_type == "VARCHAR" and settings.decimal == ",":
        return "TRY_CAST(replace(trim(amt), ',', '.') AS DOUBLE)"
    return "amt"


def _exclusion_view(con: Any, source: str, columns: list[str], settings: Settings, amount: str) -> int:
    """The view ``clvlab_consented``: the log without customers who withdrew consent (the rule
    of clvlab.privacy). Returns how many customers were left out."""
    from clvlab.data.privacy import consent_sql

    cid = f"CAST({_ident(settings.customer_col)} AS VARCHAR)"
    conditions = []
    if settings.withdrawn:
        con.register("clvlab_withdrawn", pd.DataFrame({"cid": sorted(settings.withdrawn)}, dtype=object))
        conditions.append(f"{cid} IN (SELECT cid FROM clvlab_withdrawn)")
    if settings.consent_col is not None:
        if settings.consent_col not in columns:
            raise DataValidationError(settings.consent_col, "is missing from the transaction log",
                                      hint=f"columns present: {columns}")
        flag = consent_sql(_ident(settings.consent_col))
        bad = con.execute(f"""SELECT {_ident(settings.customer_col)}, {_ident(settings.date_col)},
            {_ident(settings.consent_col)} FROM {source} WHERE ({flag}) IS NULL LIMIT 1""").fetchone()
        if bad is not None:
            raise DataValidationError(
                settings.consent_col, "consent must be true/false, 1/0 or yes/no (missing values "
                "are refused)", dict(zip([settings.customer_col, settings.date_col,
                                          settings.consent_col], bad)))
        conditions.append(f"NOT ({flag})")
    where = " OR ".join(conditions) or "false"
    con.execute(f"CREATE OR REPLACE TEMP TABLE clvlab_excluded AS SELECT DISTINCT {cid} AS cid "
                f"FROM {source} WHERE {where}")
    con.execute(f"CREATE OR REPLACE TEMP VIEW clvlab_consented AS SELECT * FROM {source} "
                f"WHERE {cid} NOT IN (SELECT cid FROM clvlab_excluded)")
    return int(con.execute("SELECT count(*) FROM clvlab_excluded").fetchone()[0])


# trim() also keeps DuckDB from pushing the cast into its CSV reader, where a TRY_CAST raises on
# the first value it cannot read (seen with DuckDB 1.4/2.0) instead of giving NULL
_TEXT_TO_TIMESTAMP = "TRY_CAST(trim(d) AS TIMESTAMP)"


def _timestamp_sql(date_type: str, settings: Settings) -> str:
    """SQL turning the raw date column into a naive timestamp in the user's time zone."""
    tz = _quote(settings.timezone)
    if date_type.startswith("TIMESTAMP WITH TIME ZONE"):
        return f"timezone('{tz}', d)"
    if date_type.startswith(("TIMESTAMP", "DATE")):
        return "CAST(d AS TIMESTAMP)"
    if settings.date_format is not None:
        fmt = _quote(settings.date_format)
        return f"try_strptime(CAST(d AS VARCHAR), '{fmt}')"
    if date_type in ("VARCHAR",):
        # Naive strings are read in the session time zone (set to the user's), zoned ones converted.
        return f"timezone('{tz}', TRY_CAST(trim(d) AS TIMESTAMPTZ))"
    return "NULL::TIMESTAMP"  # numbers without a format: refused by validation


def _check_types(con: Any, settings: Settings) -> None:
    """Checks on the column types, and the mixed-zone check that only text dates need."""
    types = {row[0]: row[1] for row in con.execute("DESCRIBE clvlab_raw").fetchall()}
    if settings.amount_col:
        _check_amount_type(con, types["amt"], settings)
    if types["d"] == "VARCHAR" and settings.date_format is None:
        zoned, dated = con.execute(f"""SELECT count(*) FILTER (WHERE regexp_matches(d, '{_OFFSET_REGEX}')),
            count(d) FROM clvlab_raw""").fetchone()
        if 0 < zoned < dated:
            raise DataValidationError(
                settings.date_col, "timestamps mix naive values and values with a UTC offset; the "
                                   "naive ones are ambiguous",
                _example(con, f"NOT regexp_matches(d, '{_OFFSET_REGEX}')", settings))
        if zoned == 0:
            # All naive: they are wall-clock times already in the user's zone, as in the pandas
            # engine, so a plain cast reads them; the zone-aware cast and conversion back took
            # 2.5x as long on a 2-million-row CSV (and would move times in a DST gap).
            _parsed_view(con, _TEXT_TO_TIMESTAMP, settings)
    if types["d"] not in ("VARCHAR",) and not types["d"].startswith(("TIMESTAMP", "DATE")) \
            and settings.date_format is None:
        raise DataValidationError(settings.date_col, NUMBERS_ARE_NOT_DATES,
                                  _example(con, "true", settings))


def _check_amount_type(con: Any, amount_type: str, settings: Settings) -> None:
    """Amounts must be numbers, or text with decimal commas when ``decimal=","``; the row shown
    is one that cannot be read (a repeated header row, a currency sign), not merely the first."""
    text_amounts = amount_type == "VARCHAR" and settings.decimal == ","
    if not text_amounts and (amount_type in _NUMERIC_TYPES or amount_type.startswith("DECIMAL")):
        return
    as_text = "trim(CAST(r.amt AS VARCHAR))"
    readable = f"TRY_CAST(replace({as_text}, ',', '.') AS DOUBLE)" if text_amounts \
        else f"TRY_CAST({as_text} AS DOUBLE)"
    row = _example(con, f"r.amt IS NOT NULL AND {readable} IS NULL", settings, raw=True)
    if text_amounts and not row:
        return  # every text amount reads by the decimal rule
    row = row or _example(con, "true", settings, raw=True)
    rule = "(a number written with a decimal comma)" if text_amounts else f"(type is {amount_type})"
    raise DataValidationError(settings.amount_col, f"amount must be numeric {rule}", row,
                              hint=header_hint(row) or amount_hint(row.get(settings.amount_col),
                                                                   settings.decimal))


def _explain_bad_rows(con: Any, settings: Settings) -> None:
    """The aggregates found bad rows: raise for the first rule broken, with an example row."""
    checks = [(settings.customer_col, "customer id is missing", "cid IS NULL"),
              (settings.date_col, "date is missing", "d IS NULL")]
    if settings.date_format is None:
        # integers read as text from a CSV file: the same message as integers in a DataFrame
        checks.append((settings.date_col, NUMBERS_ARE_NOT_DATES,
                       "ts IS NULL AND regexp_full_match(trim(CAST(d AS VARCHAR)), '[0-9]+')"))
    checks.append((settings.date_col, date_rule(settings.date_format), "ts IS NULL"))
    if settings.amount_col:
        checks += [(settings.amount_col, "amount is missing or NaN",
                    "amt IS NULL OR " + NAN_SQL.format("amt")),
                   (settings.amount_col, "amount is infinite", "isinf(amt)")]
    for column, rule, condition in checks:
        row = _example(con, condition, settings)
        if row:
            raise DataValidationError(column, rule, row, hint=header_hint(row))
    raise DataValidationError(settings.date_col, "time_unit='h' needs timestamps with a time of "
                              "day, but every timestamp is at midnight", _example(con, "true", settings))


_NUMERIC_TYPES = {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT",
                  "UINTEGER", "UBIGINT", "FLOAT", "DOUBLE"}


def _example(con: Any, condition: str, settings: Settings, raw: bool = False) -> dict[str, Any]:
    """The first row of the log matching ``condition``, under the user's column names (with the
    amount as written when ``raw``; ``condition`` then reads the raw columns as ``r.``)."""
    source, column = ("clvlab_raw r", "r.") if raw else ("clvlab_parsed", "")
    # an aggregate's FILTER, not WHERE ... LIMIT 1: DuckDB 2.0 pushes a WHERE into a Parquet
    # scan, whose statistics leave NaN out, and would find no row with a NaN amount
    found = con.execute(f"SELECT first(struct_pack(c := {column}cid, d := {column}d, "
                        f"a := {column}amt)) FILTER (WHERE {condition}) FROM {source}").fetchone()[0]
    if found is None:
        return {}
    row = (found["c"], found["d"], found["a"])
    names = [settings.customer_col, settings.date_col, settings.amount_col]
    return {name: value for name, value in zip(names, row) if name is not None}


def periods_sql(settings: Settings, window: Window) -> str:
    """``WITH periods AS (...), valued AS (...)``: the validated log (``clvlab_parsed``, from
    :func:`prepare`) merged into customer-periods by the summary's one merge rule (``cid``,
    ``holdout``, ``p`` in epoch seconds, ``value`` after the refund rule, ``purchase``), for
    the summary's aggregates here and the churn adjuster's behaviour features
    (:mod:`clvlab.churn.behaviour_duckdb`)."""
    obs = f"TIMESTAMP '{window.observation_end.isoformat(sep=' ')}'"
    cal = f"TIMESTAMP '{window.calibration_end.isoformat(sep=' ')}'"
    holdout = f"ts > {cal}" if window.has_holdout else "false"
    trunc = "hour" if settings.merge_period == "h" else "day"
    value = "CAST(amt AS DOUBLE)" if settings.amount_col else "0.0"
    purchase = "amt >= 0" if settings.amount_col else "true"
    return f"""
    WITH periods AS (
        SELECT cid, {holdout} AS holdout, epoch(date_trunc('{trunc}', ts)) AS p,
               sum({value}) AS raw_value, bool_or({purchase}) AS purchase
        FROM clvlab_parsed WHERE ts <= {obs}
        GROUP BY ALL
    ), valued AS (
        SELECT *, greatest(raw_value, 0.0) AS value FROM periods
    )"""


def _customer_sql(settings: Settings, window: Window) -> str:
    """Per-customer aggregates over customer-periods, mirroring rfm_pandas.summarise."""
    cal_rows = "purchase AND NOT holdout"
    return f"""{periods_sql(settings, window)}
    SELECT cid,
        count(*) FILTER (WHERE {cal_rows}) AS n_cal,
        min(p) FILTER (WHERE {cal_rows}) AS first_p,
        max(p) FILTER (WHERE {cal_rows}) AS last_p,
        sum(value) FILTER (WHERE {cal_rows}) AS total,
        arg_min(value, p) FILTER (WHERE {cal_rows}) AS first_value,
        count(*) FILTER (WHERE purchase AND holdout) AS n_hold,
        coalesce(sum(value) FILTER (WHERE purchase AND holdout), 0.0) AS total_hold,
        count(*) FILTER (WHERE NOT purchase) AS refund_only,
        count(*) FILTER (WHERE purchase AND raw_value < 0) AS zeroed
    FROM valued GROUP BY cid"""


def prepare(con: Any, transactions: Any, settings: Settings, calibration_end: Any,
            observation_end: Any) -> tuple[Window, dict]:
    """Validate the log into the session's ``clvlab_parsed`` and build ``clvlab_customers``
    (what :func:`summary_select_sql` reads); the window and the set-aside counts."""
    window, counts, _ = _aggregate(con, transactions, settings, calibration_end, observation_end)
    return window, counts


def summary_select_sql(settings: Settings, window) -> str:
    """The summary's public columns over ``clvlab_customers``, sorted by customer id."""
    return _final_select_sql(settings, window)


def quoted(name: str) -> str:
    """A column name as a DuckDB identifier."""
    return _ident(name)


def _final_select_sql(settings: Settings, window) -> str:
    """The public RFM columns computed in SQL, rendered from their one definition
    (clvlab.data.rfm_columns) as the pandas engine evaluates it."""
    columns = rfm_columns_sql(settings, window, double_literal, _ident)
    return (f"SELECT {', '.join(columns)} FROM clvlab_customers WHERE n_cal > 0 "
            f"ORDER BY cid")


def double_literal(value: float) -> str:
    """A DOUBLE literal that parses to exactly ``value`` (a bare 0.1 would be a DECIMAL)."""
    return f"CAST('{float(value)!r}' AS DOUBLE)"
