"""The DuckDB and Spark engines of :func:`clvlab.data.covariate_paths.covariate_paths`: the same
rows the pandas engine selects (the RFM table's customers, the window of
:func:`clvlab.data.covariate_panel.window_bounds`), selected where the panel lives.

- :class:`DuckDBRows`: Parquet/CSV files, a DuckDB relation or a DataFrame; the rows selected and
  sorted inside DuckDB and streamed in batches of :data:`BATCH_ROWS` to the shared checks and
  piece builder (:mod:`clvlab.data.covariate_pieces`), so the panel may be larger than memory.
- :class:`SparkRows`: a Spark DataFrame; checked and cut into pieces on the executors
  (:func:`spark_partition`, partitioned by customer), the pieces collected; a broken rule comes
  back pickled and is raised on the driver (:func:`raise_pickled`) with the pandas message.
- :func:`spark_purchases`: the merged purchase periods of a Spark transaction log.

Each engine object has ``columns`` (the panel's), ``select(covariates)`` (which sets ``span``,
each customer's first and last period in the window), ``pieces(window, counts, spec)`` and
``close()``, as the pandas engine (:class:`clvlab.data.covariate_paths.PandasRows`).
"""

from __future__ import annotations

import functools
import pickle
from typing import Any, Iterator

import numpy as np
import pandas as pd

from clvlab.core.errors import ClvlabError, DataValidationError, warn
from clvlab.data.covariate_grid import US
from clvlab.data.covariate_inputs import files_lacking, period_rule
from clvlab.data.covariate_panel import ACCEPTED, PathWindow, window_bounds
from clvlab.data.covariate_pieces import PieceSpec, checked_pieces, customer_span

__all__ = ["DuckDBRows", "SparkRows", "spark_purchases", "spark_partition", "raise_pickled",
           "customer_keys", "BATCH_ROWS"]

BATCH_ROWS = 1_000_000  # rows per batch streamed from DuckDB


def customer_keys(window: PathWindow, panel_ids_are_text: bool) -> pd.DataFrame:
    """The table the panel joins: ``cid``, ``pos``, ``f``, ``T`` and the window's bounds ``lo``,
    ``hi`` (exclusive). Text ids against whole-number ids are matched as text (a warning)."""
    from clvlab.core.errors import ClvlabWarning
    from clvlab.data.attributes import ids_as_text

    ids = window.customers
    if panel_ids_are_text != (pd.api.types.infer_dtype(ids) in ("string", "empty")):
        sides = ("the covariate panel", "the RFM table")[::1 if panel_ids_are_text else -1]
        warn(f"customer ids are text in {sides[0]} and whole numbers in {sides[1]}: "
                      "they were matched as text (the number 7 matches '7', not '007')",
                      ClvlabWarning)
        ids = ids_as_text(ids)
    low, high = window_bounds(window)
    return pd.DataFrame({"cid": np.asarray(ids), "pos": np.arange(len(ids), dtype=np.int64),
                         "f": window.first_us, "T": window.T, "lo": low,
                         "hi": np.full(len(ids), high)})


def _bad_period(row, names) -> None:
    if row is not None:
        raise DataValidationError(names[1], "date is missing" if row[1] is None else
                                  period_rule(names[1], "panel"),
                                  {names[0]: row[0], names[1]: row[1]})


class DuckDBRows:
    """The DuckDB engine: the panel's rows selected and sorted in DuckDB, streamed in batches."""

    def __init__(self, panel: Any, window: PathWindow, names: tuple[str, str], connection: Any):
        import duckdb

        from clvlab.data.rfm_duckdb import new_connection
        from clvlab.data.rfm_io import expand_paths, file_format

        self.window, self.names, self.files, self.reader, self.zone = window, names, [], "", None
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
            self.files = files = expand_paths(panel)
            listed = "[" + ", ".join("'" + f.replace("'", "''") + "'" for f in files) + "]"
            self.reader = ("read_parquet({}, union_by_name = true)"
                           if file_format(files) == "parquet" else
                           "read_csv({}, union_by_name = true, dateformat = '%Y-%m-%d')")
            self.source = self.reader.format(listed)
        try:
            self.types = {r[0]: r[1] for r in
                          self.con.execute(f"DESCRIBE SELECT * FROM {self.source}").fetchall()}
        except duckdb.Error as exc:
            raise ClvlabError(f"DuckDB could not read the covariate panel: {exc}") from None
        self.columns = list(self.types)

    def select(self, covariates: list[str]) -> None:
        from clvlab.data.rfm_pandas import OFFSET_PATTERN

        customer, period = self.names
        for column in [customer, period, *covariates]:
            if column not in self.types:
                raise DataValidationError(column, "is missing from the covariate panel",
                                          hint=f"columns present: {self.columns}")
        files_lacking(self.con, self.files, self.reader, [customer, period, *covariates])
        text = self.types[customer] == "VARCHAR"
        keys = customer_keys(self.window, text)
        self.con.register("clvlab_covariate_customers", keys)
        kind, tz = self.types[period], self.window.timezone.replace("'", "''")
        if kind.startswith("TIMESTAMP WITH TIME ZONE"):
            p, self.zone = f"epoch_us(timezone('{tz}', d))", "TIMESTAMP WITH TIME ZONE"
        elif kind.startswith(("TIMESTAMP", "DATE")):
            p = "epoch_us(CAST(d AS TIMESTAMP))"
        elif kind == "VARCHAR":
            p = (f"epoch_us(CASE WHEN regexp_matches(d, '{OFFSET_PATTERN}') THEN timezone('{tz}', "
                 "TRY_CAST(trim(d) AS TIMESTAMPTZ)) ELSE TRY_CAST(trim(d) AS TIMESTAMP) END)")
        else:
            raise DataValidationError(period, period_rule(period, "panel", numbers=True))
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
        self.panel, self.window, self.names, self.zone = panel, window, names, None
        self.columns = list(panel.columns)

    def select(self, covariates: list[str]) -> None:
        from pyspark.sql import functions as F

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
    """Raise on the driver the error :func:`spark_partition` pickled on an executor."""
    raise DataValidationError(*pickle.loads(error))


def spark_purchases(log: Any, window: PathWindow, date_col: str, amount_col: str | None,
                    date_format: str | None) -> pd.DataFrame:
    """:func:`clvlab.data.covariate_paths.purchase_periods` of a Spark log, merged in Spark
    (only the customer-periods with a purchase are collected). Dates are read by the RFM Spark
    engine's rules."""
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
