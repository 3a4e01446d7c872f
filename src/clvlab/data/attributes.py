"""Static customer attributes (channel, region, acquisition offer...) joined to an RFM summary.

The rules, the same for every engine (pandas, DuckDB, Spark), for backtests and for the models
that read attribute columns:

- **Known at acquisition.** An attribute is one value per customer that does not change over the
  customer's life and is known when the customer is acquired. A value learnt later (a loyalty
  tier, last month's segment) leaks the future into a calibration period and makes a backtest
  look better than the model is; clvlab cannot see this, so the user must ensure it.
- **Ids.** The frame is indexed by customer id, or has a column named like the log's customer
  column (``customer_col``), which is then used. An unnamed default index (0, 1, 2...) is refused:
  it is far more often a forgotten ``set_index`` than the ids. Each id has one row at most; rows
  of customers who are not in the summary are ignored; every customer of the summary needs a row.
  When one side's ids are text and the other's whole numbers (a log read as text, an
  attributes CSV read as numbers), both are matched as text, with a warning that says so: id
  ``7`` matches ``"7"``, never ``"007"`` (a file read by :func:`read_attribute_file` keeps
  such leading zeros).
- **Types.** Numbers (int, float), booleans, and text or categories (str values, pandas'
  string dtype, a Categorical): the models one-hot encode text and categories themselves.
  Anything else (datetimes, durations, objects mixing types, lists) is refused: encode it first
  (e.g. acquisition year as a number).
- **Values.** No missing value (NaN, None, NA) and no infinite number for any customer of the
  summary: a model cannot guess them, and dropping those customers silently would bias the fit.
- **Names.** No attribute may take the name of an RFM column (``frequency``, ``recency``, ``T``,
  ``monetary_value`` and the holdout columns), whether or not the summary has that column.

Each broken rule raises a :class:`~clvlab.core.errors.DataValidationError` naming the column,
the rule and an example customer.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd

from clvlab.core.errors import ClvlabError, ClvlabWarning, DataValidationError, shown, warn
from clvlab.data.rfm_columns import SPEC

__all__ = ["RESERVED_NAMES", "attribute_table", "check_attributes", "check_attribute_columns",
           "join_attributes", "join_spark_attributes", "matching_ids", "ids_as_text",
           "read_attribute_file"]

#: Names no attribute may take: the public RFM columns of any summary.
RESERVED_NAMES: tuple[str, ...] = tuple(column.name for column in SPEC)

ACCEPTED = "numbers, booleans, text or categories"
WHERE = "customer_attributes"


def attribute_table(attributes: Any, *, customer_col: str,
                    reserved: Iterable[str] = RESERVED_NAMES) -> pd.DataFrame:
    """The user's attributes indexed by customer id, with the rules on ids, names and types
    checked (values are checked per customer by :func:`check_attributes`)."""
    if not isinstance(attributes, pd.DataFrame):
        raise ClvlabError(f"{WHERE} must be a pandas DataFrame indexed by customer id (or with a "
                          f"{customer_col!r} column), not {type(attributes).__name__}")
    if customer_col in attributes.columns:
        table = attributes.set_index(customer_col)
    elif isinstance(attributes.index, pd.RangeIndex) and attributes.index.name is None:
        raise DataValidationError(
            customer_col, f"{WHERE} needs the customer ids: a column {customer_col!r} or an index "
                          "of ids; it has neither (only a default 0, 1, 2... index)",
            hint=f"columns present: {list(attributes.columns)}")
    else:
        table = attributes
    table = table[table.index.notna()]  # a row without an id belongs to no customer
    reserved = tuple(reserved)
    id_name = table.index.name or customer_col
    repeated = table.index.duplicated(keep=False)
    if repeated.any():
        first = table.index[repeated][0]
        raise DataValidationError(
            id_name, f"{WHERE} has more than one row for a customer "
                     f"(repeated ids: {int(table.index.duplicated().sum())}), e.g. customer "
                     f"{_plain(first)!r}; each customer's attributes are one row")
    for column in table.columns:
        if column in reserved:
            raise DataValidationError(
                column, f"an attribute in {WHERE} may not take the name of an RFM column "
                        f"({', '.join(reserved)}); rename it", _example(table, 0, column)
                if len(table) else None)
        _check_kind(table, column, WHERE)
    return table


def check_attributes(attributes: Any, ids: Sequence[Any] | pd.Index, *, customer_col: str,
                     reserved: Iterable[str] = RESERVED_NAMES) -> pd.DataFrame:
    """The attributes of the customers ``ids``, in their order, every rule checked.

    ``attributes``: a DataFrame indexed by customer id or with a ``customer_col`` column (see
    the module's rules). Returns a DataFrame indexed by ``ids`` (named ``customer_col``) with
    the attribute columns in the frame's order and dtypes.
    """
    table = attribute_table(attributes, customer_col=customer_col, reserved=reserved)
    ids = pd.Index(ids)
    keys, table_keys = matching_ids(ids, table.index, "the summary", WHERE)
    table = table.set_axis(table_keys)
    found = keys.isin(table.index)
    if not found.all():
        missing = ids[~found]
        hint = None
        if not found.any() and len(table):
            hint = (f"no customer matched: the summary's ids look like {_plain(ids[0])!r} "
                    f"({ids.dtype}) and {WHERE}' ids like {_plain(table.index[0])!r} "
                    f"({table.index.dtype}); are they the same ids, written the same way?")
        raise DataValidationError(
            customer_col, f"{WHERE} has no row for {len(missing)} of the {len(ids)} customers, "
                          f"e.g. customer {_plain(missing[0])!r}", hint=hint)
    aligned = table.loc[keys]
    aligned.index = ids.rename(customer_col)
    for column in aligned.columns:
        _check_values(aligned, column, WHERE)
    return aligned


def check_attribute_columns(frame: pd.DataFrame, columns: Iterable[str], *,
                            where: str) -> pd.DataFrame:
    """Check the attribute ``columns`` of ``frame`` (indexed by customer id, e.g. an RFM table a
    model reads) by the module's type and value rules; return ``frame`` unchanged. ``where``
    names the table in messages ("the RFM table")."""
    for column in columns:
        if column not in frame.columns:
            raise DataValidationError(column, f"is missing from {where}",
                                      hint=f"columns present: {list(frame.columns)}")
        _check_kind(frame, column, where)
        _check_values(frame, column, where)
    return frame


def join_attributes(rfm: pd.DataFrame, attributes: Any, *, customer_col: str) -> pd.DataFrame:
    """The RFM table with each customer's attributes appended after its columns, and their
    names in ``attrs["clvlab"]["attributes"]`` (kept by ``to_parquet`` and :func:`read_rfm`).
    An attribute named like a column the table already has (e.g. a table summarised with
    these attributes) is refused: neither copy is chosen silently."""
    table = check_attributes(attributes, rfm.index, customer_col=customer_col)
    both = [str(c) for c in table.columns if c in rfm.columns]
    if both:
        same = all(_same_values(rfm[c], table[c]) for c in both)
        raise DataValidationError(
            both[0], f"the attribute column(s) {both} of {WHERE} are already columns of the "
                     f"table they would be joined to ({'with the same values' if same else 'with other values'}"
                     "); use the table's own columns (drop the attributes, --attributes on the "
                     "command line) or remove the columns from one of the two",
            {rfm.index.name or "<row>": _plain(rfm.index[0]),
             f"{both[0]} (table)": _plain(rfm[both[0]].iloc[0]),
             f"{both[0]} ({WHERE})": _plain(table[both[0]].iloc[0])} if len(rfm) else None)
    joined = pd.concat([rfm, table.set_axis(rfm.index)], axis=1)
    joined.attrs = {**rfm.attrs, "clvlab": {**rfm.attrs.get("clvlab", {}),
                                             "attributes": [str(c) for c in table.columns]}}
    return joined


def _same_values(left: pd.Series, right: pd.Series) -> bool:
    try:
        return bool((left.to_numpy() == right.to_numpy()).all())
    except (TypeError, ValueError):
        return False


def read_attribute_file(path: str | Path, *, delimiter: str | None = None,
                        decimal: str | None = None) -> pd.DataFrame:
    """An attributes file as a DataFrame: Parquet with its pandas index (of ids) kept, or CSV
    read as logs are (:func:`clvlab.data.rfm_io.read_files`: ids written with leading zeros
    stay text, with a warning)."""
    from clvlab.data.rfm_io import read_files

    if not Path(path).is_file():
        raise ClvlabError(f"the attributes file {path} does not exist")
    if str(path).lower().endswith((".parquet", ".pq")):
        return pd.read_parquet(path)
    return read_files(str(path), delimiter=delimiter, decimal=decimal)


def _id_kind(index: pd.Index) -> str:
    """"text", "integer" or "other" for an index of customer ids."""
    if pd.api.types.is_integer_dtype(index.dtype) and not pd.api.types.is_bool_dtype(index.dtype):
        return "integer"
    if pd.api.types.is_float_dtype(index.dtype):
        values = index.to_numpy(dtype=np.float64)
        finite = values[np.isfinite(values)]
        if np.array_equal(finite, np.round(finite)):
            return "integer"  # whole numbers held as floats (an id column with a gap)
    if isinstance(index.dtype, pd.StringDtype) or pd.api.types.infer_dtype(
            index, skipna=True) in ("string", "empty"):
        return "text"
    return "other"


def ids_as_text(index: pd.Index) -> pd.Index:
    """Customer ids as text keys (whole numbers without a decimal point: 7 -> "7")."""
    return _as_text(index, _id_kind(index))


def _as_text(index: pd.Index, kind: str) -> pd.Index:
    if kind == "integer":
        index = pd.Index(index.to_numpy(dtype=np.float64).astype(np.int64)
                         if pd.api.types.is_float_dtype(index.dtype) else index)
    return pd.Index([None if v is None or (isinstance(v, float) and np.isnan(v)) else str(v)
                     for v in index], dtype=object, name=index.name)


def matching_ids(ids: pd.Index, table_ids: pd.Index, ids_source: str,
                 table_source: str) -> tuple[pd.Index, pd.Index]:
    """The two indexes of customer ids as keys that can match: as they are, or both as text
    when one side is text and the other whole numbers (with a warning that says so)."""
    kinds = _id_kind(ids), _id_kind(table_ids)
    if set(kinds) != {"text", "integer"}:
        return ids, table_ids
    text_side, number_side = (ids_source, table_source) if kinds[0] == "text" else \
        (table_source, ids_source)
    text_example = (ids if kinds[0] == "text" else table_ids)
    text_example = _plain(text_example[0]) if len(text_example) else None
    warn(f"customer ids are text in {text_side} (e.g. {text_example!r}) and whole "
                  f"numbers in {number_side}: they were matched as text (the number 7 matches "
                  "'7', not '007')", ClvlabWarning)
    return _as_text(ids, kinds[0]), _as_text(table_ids, kinds[1])


def _plain(value: Any) -> Any:
    """A numpy scalar as its Python value, so a message reads "customer 7", not np.int64(7)."""
    return value.item() if isinstance(value, np.generic) else value


def _example(frame: pd.DataFrame, position: int, column: str) -> dict[str, Any]:
    return {frame.index.name or "<row>": _plain(frame.index[position]),
            str(column): frame[column].iloc[position]}


def _kind_problem(series: pd.Series) -> tuple[str, np.ndarray] | None:
    """Why a column's type is refused and a mask of the offending rows, or None."""
    dtype = series.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        categories = dtype.categories
        if isinstance(categories.dtype, pd.StringDtype) or _plain_number(categories.dtype) or (
                pd.api.types.is_object_dtype(categories.dtype)
                and all(isinstance(v, str) for v in categories)):
            return None
        return (f"categories must be text or numbers (they are {categories.dtype})",
                series.notna().to_numpy())
    if pd.api.types.is_bool_dtype(dtype) or _plain_number(dtype) \
            or isinstance(dtype, pd.StringDtype):
        return None
    if pd.api.types.is_object_dtype(dtype):
        # text held as Python objects: every present value must be a str
        bad = np.fromiter((not (v is None or isinstance(v, str) or _is_nan(v)) for v in series),
                          dtype=bool, count=len(series))
        if bad.any():
            value = series.iloc[int(np.flatnonzero(bad)[0])]
            return (f"values must be {ACCEPTED}; this column holds Python objects "
                    f"({type(value).__name__} among them): convert it to one type", bad)
        return None
    return f"must hold {ACCEPTED}, not {dtype}; encode it first", np.ones(len(series), dtype=bool)


def _plain_number(dtype: Any) -> bool:
    """int and float (numpy's or pandas' nullable ones); never complex, booleans apart."""
    return (pd.api.types.is_integer_dtype(dtype) or pd.api.types.is_float_dtype(dtype)) \
        and not pd.api.types.is_bool_dtype(dtype)


def _is_nan(value: Any) -> bool:
    return value is pd.NA or value is pd.NaT or (isinstance(value, float) and np.isnan(value))


def _check_kind(frame: pd.DataFrame, column: str, where: str) -> None:
    problem = _kind_problem(frame[column])
    if problem is not None and problem[1].any():
        rule, bad = problem
        raise DataValidationError(column, f"attribute in {where}: {rule}",
                                  _example(frame, int(np.flatnonzero(bad)[0]), column))


def _check_values(frame: pd.DataFrame, column: str, where: str) -> None:
    series = frame[column]
    missing = series.isna().to_numpy()
    if missing.any():
        raise DataValidationError(column, f"attribute in {where} is missing (NaN, None or NA); "
                                          "every customer needs a value",
                                  _example(frame, int(np.flatnonzero(missing)[0]), column))
    if _plain_number(series.dtype):
        infinite = np.isinf(series.to_numpy(dtype=np.float64))
        if infinite.any():
            raise DataValidationError(column, f"attribute in {where} is infinite",
                                      _example(frame, int(np.flatnonzero(infinite)[0]), column))


# ---- Spark: the same rules on a Spark summary -------------------------------------------------

SPARK_NUMBERS = ("tinyint", "smallint", "int", "bigint", "float", "double")
SPARK_TEXT = ("string",)


def join_spark_attributes(frame, attributes: Any, *, customer_col: str):
    """A Spark summary (``frame``, the customer id in ``customer_col``) joined in Spark with the
    attributes (a pandas or Spark DataFrame), by the module's rules. Returns (joined frame,
    attribute names, pandas dtypes to restore or None). Only counts and one example row per
    broken rule reach the driver; the example is the first customer by id, as in pandas."""
    from pyspark.sql import functions as F

    spark = frame.sparkSession
    dtypes = None
    if isinstance(attributes, pd.DataFrame):
        table = attribute_table(attributes, customer_col=customer_col)
        dtypes = dict(table.dtypes)
        # Spark has no categories or pandas string dtype: their values travel as text
        plain = table.apply(lambda s: s.astype(object) if isinstance(
            s.dtype, (pd.CategoricalDtype, pd.StringDtype)) else s)
        attributes = spark.createDataFrame(plain.rename_axis(customer_col).reset_index())
        names = [str(c) for c in table.columns]
    elif hasattr(attributes, "sparkSession"):
        names = _check_spark_table(attributes, customer_col)
    else:
        raise ClvlabError(f"{WHERE} must be a pandas or Spark DataFrame, not "
                          f"{type(attributes).__name__}")
    kinds = dict(attributes.dtypes)
    summary_kind = dict(frame.dtypes)[customer_col]
    as_text = (summary_kind in SPARK_TEXT) != (kinds[customer_col] in SPARK_TEXT)
    if as_text:  # one side text, the other numbers: match as text, as in pandas
        text_side = "the summary" if summary_kind in SPARK_TEXT else WHERE
        warn(f"customer ids are text in {text_side} and numbers in the other table "
                      f"({summary_kind} and {kinds[customer_col]}): they were matched as text "
                      "(the number 7 matches '7', not '007')", ClvlabWarning)
        if kinds[customer_col] not in SPARK_TEXT:
            attributes = attributes.withColumn(customer_col, _spark_text_id(customer_col))
            kinds[customer_col] = "string"
    columns = [F.col(f"`{customer_col}`")] + [
        F.col(f"`{n}`").cast("double").alias(n) if kinds[n].startswith("decimal")
        else F.col(f"`{n}`") for n in names]
    right = attributes.where(F.col(f"`{customer_col}`").isNotNull()).select(
        *columns, F.lit(True).alias("__clvlab_found"))
    if as_text and summary_kind not in SPARK_TEXT:
        # the summary keeps its numeric ids; the join goes through their text
        key = "__clvlab_id_text"
        right = right.withColumnRenamed(customer_col, key)
        joined = frame.join(right, on=_spark_text_id(customer_col) == F.col(key),
                            how="left").drop(key)
    else:
        joined = frame.join(right, on=customer_col, how="left")
    bad = {n: _spark_missing(n, kinds[n]) for n in names}
    counts = joined.select(
        F.count_if(F.col("__clvlab_found").isNull()).alias("__missing"),
        F.count(F.lit(1)).alias("__n"),
        *[F.count_if(bad[n]).alias(n) for n in names]).collect()[0]
    by_id = F.col(f"`{customer_col}`")
    if counts["__missing"]:
        first = joined.where(F.col("__clvlab_found").isNull()).select(by_id) \
            .orderBy(by_id).limit(1).collect()[0][0]
        raise DataValidationError(
            customer_col, f"{WHERE} has no row for {counts['__missing']} of the {counts['__n']} "
                          f"customers, e.g. customer {shown(first)}")
    for n in names:
        if counts[n]:
            row = joined.where(bad[n]).select(by_id, F.col(f"`{n}`")).orderBy(by_id) \
                .limit(1).collect()[0]
            value = row[1]
            rule = "is infinite" if value is not None and not np.isnan(value) else \
                "is missing (NaN, None or NA); every customer needs a value"
            raise DataValidationError(n, f"attribute in {WHERE} {rule}",
                                      {customer_col: row[0], n: value})
    ordered = frame.columns + names
    return joined.select(*[F.col(f"`{c}`") for c in ordered]), names, dtypes


def _spark_text_id(customer_col: str):
    """A Spark id column as text, whole numbers without a decimal point (7.0 -> "7")."""
    from pyspark.sql import functions as F

    column = F.col(f"`{customer_col}`")
    return F.when(column == F.floor(column), column.cast("bigint").cast("string")) \
        .otherwise(column.cast("string"))


def _check_spark_table(attributes, customer_col: str) -> list[str]:
    """The attribute names of a Spark frame, after the rules on ids, names and types."""
    from pyspark.sql import functions as F

    kinds = dict(attributes.dtypes)
    if customer_col not in kinds:
        raise DataValidationError(customer_col, f"{WHERE} (a Spark DataFrame) needs a column "
                                                f"{customer_col!r} of customer ids",
                                  hint=f"columns present: {list(kinds)}")
    names = [c for c in attributes.columns if c != customer_col]
    by_id = F.col(f"`{customer_col}`")
    repeated = (attributes.where(by_id.isNotNull()).groupBy(by_id).count()
                .where("count > 1").orderBy(by_id).limit(1).collect())
    if repeated:
        raise DataValidationError(
            customer_col, f"{WHERE} has more than one row for a customer, e.g. customer "
                          f"{repeated[0][0]!r}; each customer's attributes are one row")
    for name in names:
        kind = kinds[name]
        if name in RESERVED_NAMES:
            rule = (f"an attribute in {WHERE} may not take the name of an RFM column "
                    f"({', '.join(RESERVED_NAMES)}); rename it")
        elif not (kind in SPARK_NUMBERS or kind in SPARK_TEXT or kind == "boolean"
                  or kind.startswith(("decimal", "varchar", "char"))):
            rule = f"attribute in {WHERE}: must hold {ACCEPTED}, not {kind}; encode it first"
        else:
            continue
        row = attributes.select(by_id, F.col(f"`{name}`")).limit(1).collect()
        raise DataValidationError(name, rule, {customer_col: row[0][0], name: row[0][1]}
                                  if row else None)
    return names


def _spark_missing(name: str, kind: str):
    """Spark's condition for a missing or infinite value (a NaN is no NULL to Spark)."""
    from pyspark.sql import functions as F

    column = F.col(f"`{name}`")
    if kind in ("float", "double"):
        return column.isNull() | F.isnan(column) | (F.abs(column) == float("inf"))
    return column.isNull()
