"""The DuckDB engine of the churn adjuster's behaviour features
(:func:`clvlab.churn.features.behaviour_features`, whose docstring defines them).

:func:`behaviour_features_duckdb` reads a transaction log (a DataFrame, or CSV/Parquet files
scanned in place, never loaded into pandas), validates it and merges its transactions into
periods by the RFM summary's DuckDB engine (:mod:`clvlab.data.rfm_duckdb`: the same SQL, so the
same merge rule, refund rule and checks), computes in SQL the per-customer aggregates of
:func:`clvlab.churn.features.behaviour_aggregates` next to the summary's recency, T and
monetary_value, and builds the features from them with
:func:`clvlab.churn.features.behaviour_table`, the one definition of each feature shared with
the pandas engine. Only the per-customer table comes back to pandas.

The SQL aggregates and the pandas ones are two writings of the same rules: the link between them
is tests/test_behaviour_duckdb.py (equal to ``behaviour_features(calibration_data(log,
cutoff)[0])`` to 1e-9 relative, counts exactly). Equal, not identical: sums and means may
differ in the last bits (DuckDB adds in another order), which is why the scoring job does not
build a churn adjuster's or challenger's inputs here yet: a tree trained on the pandas features
can put a customer on the other side of a split that lies exactly on one of their values.

It takes the summary's validation, merge rule and columns from :mod:`clvlab.data.rfm_duckdb`
(``prepare``, ``periods_sql``, ``summary_select_sql``): one merge rule, not a copy.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from clvlab.churn.features import BEHAVIOUR_AGGREGATES, TOLERANCE, behaviour_table
from clvlab.core.errors import ClvlabError
from clvlab.core.timeunits import UNIT_SECONDS
from clvlab.data import rfm_duckdb
from clvlab.data.rfm_rules import describe, epoch_seconds, make_settings, report_set_aside
from clvlab.data.tables import accepts_tables

__all__ = ["behaviour_features_duckdb"]


@accepts_tables("transactions", follow="transactions")
def behaviour_features_duckdb(transactions: Any, cutoff: Any, *, customer_col: str = "customer_id",
                              date_col: str = "date", amount_col: str | None = None,
                              time_unit: str = "W", date_format: str | None = None,
                              timezone: str = "UTC", consent_col: str | None = None,
                              withdrawn: Any = None, delimiter: str | None = None,
                              decimal: str | None = ".", connection: Any = None,
                              customers: Any = None, with_summary: bool = False) -> pd.DataFrame:
    """The behaviour features of every customer acquired by ``cutoff``, from the log up to it,
    computed by DuckDB: the table of
    ``behaviour_features(calibration_data(transactions, cutoff, ...)[0])`` (its docstring
    defines the features; without ``amount_col`` the spend features are left out).

    Parameters
    ----------
    transactions : DataFrame, path, glob or list of paths
        The purchase log; CSV and Parquet files are scanned by DuckDB, not read into pandas.
    cutoff : date
        The calibration cutoff (text read by the date column's rule); transactions after it
        are ignored.
    customer_col, date_col, amount_col, time_unit, date_format, timezone : str or None
        The options of :func:`clvlab.rfm_summary`, with the same rules.
    consent_col, withdrawn, delimiter, decimal : optional
        The options of :func:`clvlab.rfm_summary` of these names, with the same rules.
    connection : duckdb.DuckDBPyConnection, optional
        A database to work in (e.g. with a ``memory_limit``); clvlab's shared in-memory one by
        default (:func:`clvlab.data.rfm_duckdb.session_cursor`).
    customers : sequence of ids, optional
        Only these customers, in this order; one without a purchase up to the cutoff is an
        error, as in the pandas engine. All customers acquired by the cutoff, sorted by id, by
        default.
    with_summary : bool
        Put the summary's ``frequency``, ``recency`` and ``T`` first, as
        :func:`clvlab.churn.features.feature_frame` does (the churn adjuster's ``X`` of a log
        without events, quantities or attributes).

    Returns
    -------
    DataFrame indexed by customer id (named ``customer_col``), the columns of
    :data:`clvlab.churn.features.BEHAVIOUR_FEATURES` (less the spend features without amounts),
    with the RFM summary's ``attrs["clvlab"]``.
    """
    import duckdb

    settings = make_settings(customer_col=customer_col, date_col=date_col, amount_col=amount_col,
                             time_unit=time_unit, date_format=date_format, timezone=timezone,
                             merge_period=None, consent_col=consent_col, withdrawn=withdrawn,
                             delimiter=delimiter, decimal=decimal)
    unit = float(UNIT_SECONDS[settings.time_unit])

    def days_to_units(days: float) -> float:  # Calibration.days_to_units
        return days * 86_400 / unit

    if isinstance(transactions, pd.DataFrame) and isinstance(
            transactions.get(customer_col, pd.Series(dtype=object)).dtype, pd.CategoricalDtype):
        # categorical ids as their categories' values, as rfm_summary reads them
        ids = transactions[customer_col]
        transactions = transactions.assign(**{customer_col: ids.astype(ids.cat.categories.dtype)})
    con = rfm_duckdb.session_cursor(connection, settings.timezone)
    try:
        # the summary's validation and per-customer table (calibration_data's window: the
        # summary observed at the cutoff, without holdout), then the periods it merged
        window, counts = rfm_duckdb.prepare(con, transactions, settings, None, cutoff)
        sql = _behaviour_sql(settings, window, unit, days_to_units)
        try:
            table = con.execute(sql).df()
        except duckdb.Error as exc:
            raise ClvlabError(f"DuckDB could not compute the behaviour features: {exc}") from exc
    finally:
        con.close()  # drops this cursor's temp views and tables
    report_set_aside(counts)  # the refund rule's warning, as rfm_summary's
    rfm = table.set_index(settings.customer_col)
    rfm.attrs["clvlab"] = describe(settings, window, counts)
    aggregates = rfm[[f"b_{name}" for name in BEHAVIOUR_AGGREGATES]]
    aggregates.columns = list(BEHAVIOUR_AGGREGATES)
    if customers is not None:
        wanted = pd.Index(customers, name=settings.customer_col)
        missing = wanted[rfm.index.get_indexer(wanted) < 0]
        if len(missing):
            raise ClvlabError(f"a customer of the summary has no transactions in the log up to "
                              f"the cutoff: {missing[0]!r}")
        rfm = rfm.loc[wanted]
    out = behaviour_table(aggregates, rfm, settings.amount_col is not None, days_to_units)
    if with_summary:
        out = pd.concat([rfm[["frequency", "recency", "T"]].astype(np.float64), out], axis=1)
    out.attrs = dict(rfm.attrs)
    return out


def _behaviour_sql(settings, window, unit: float, days_to_units) -> str:
    """The summary's columns (recency, T, monetary_value) and the behaviour aggregates
    (``b_<name>`` for :data:`BEHAVIOUR_AGGREGATES`) of the customers acquired by the cutoff,
    sorted by id: :func:`clvlab.churn.features.behaviour_aggregates` in SQL."""
    double = rfm_duckdb.double_literal
    cut = double(epoch_seconds(window.calibration_end))
    w30, w90 = (double(days_to_units(days) - TOLERANCE) for days in (30, 90))
    rfm = f"SELECT * FROM ({rfm_duckdb.summary_select_sql(settings, window)})"
    cid = rfm_duckdb.quoted(settings.customer_col)
    return f"""{rfm_duckdb.periods_sql(settings, window)},
    clvlab_b_cal AS (
        SELECT cid, p, value, -((p - {cut}) / {double(unit)}) AS age
        FROM valued WHERE purchase AND NOT holdout
    ), clvlab_b_gaps AS (
        SELECT *, -(age - lag(age) OVER (PARTITION BY cid ORDER BY p)) AS gap FROM clvlab_b_cal
    ), clvlab_b AS (
        SELECT cid, count(*) AS b_n, avg(value) AS b_mean, stddev_pop(value) AS b_std,
            arg_max(value, p) AS b_last, max(value) AS b_max,
            avg(gap) AS b_gap_mean, stddev_pop(gap) AS b_gap_std,
            count(*) FILTER (WHERE age < {w30}) AS b_last_30,
            count(*) FILTER (WHERE age < {w90}) AS b_last_90,
            sum(value) FILTER (WHERE age < {w90}) AS b_spend_90
        FROM clvlab_b_gaps GROUP BY cid
    ), clvlab_b_rfm AS ({rfm})
    SELECT r.*, b.* EXCLUDE (cid)
    FROM clvlab_b_rfm r JOIN clvlab_b b ON r.{cid} = b.cid
    ORDER BY r.{cid}"""
