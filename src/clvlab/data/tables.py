"""Tables from polars and Arrow, accepted wherever clvlab takes a pandas DataFrame.

clvlab computes in pandas, NumPy and DuckDB. A table of another library is taken at the edge of
each public function (:func:`accepts_tables`) and made a pandas DataFrame once, by one rule
written here, so that every function reads polars and Arrow alike:

- **Kinds.** A polars ``DataFrame`` or ``LazyFrame`` (collected), a pyarrow ``Table``,
  ``RecordBatch`` or ``RecordBatchReader``, and any object that offers the Arrow C stream
  interface (``__arrow_c_stream__``: nanoarrow, other data-frame libraries), but a DuckDB
  relation, which the functions that take one read in DuckDB.
  polars is never imported by clvlab: a polars table is recognised by its type's module, so
  clvlab works, polars tables aside, without it installed.
- **Conversion.** Through Arrow (polars' ``to_arrow`` shares its buffers): dates become
  ``datetime64`` (Arrow's ``date32`` would otherwise become Python objects), decimal columns
  (common in tables that come from a database) become float64, dictionary (categorical)
  columns pandas Categoricals, time zones are kept. Nothing else is changed: a wrong type is
  refused by the same rule, naming the same column, as in a pandas DataFrame.
- **Customer ids.** polars and Arrow tables have no index. A table clvlab keys by customer
  (an RFM table, attributes, a feature matrix) takes its ids from the index that pandas
  recorded in an Arrow table's metadata (``pa.Table.from_pandas``), else from a column: the one
  the caller names (``customer_col``), else ``customer_id`` when the table has it. A table
  without any is keyed by row position, as pandas' default index would be.
- **Without a copy where DuckDB can scan them.** :func:`rfm_summary` on the DuckDB engine
  registers an Arrow or polars table with DuckDB as it is (:func:`arrow_source`); the log is
  never converted to pandas.
- **Results.** A function that returns a table built from its input (:func:`rfm_summary`,
  :func:`score_customers`, the feature tables) returns it in the input's kind
  (:func:`like_input`): polars for polars, a pyarrow Table for Arrow, with the customer ids as
  the first column and ``attrs["clvlab"]`` (the time unit, the window) in the Arrow schema's
  metadata, where :func:`to_pandas` finds it again. polars tables carry no metadata, so a polars
  RFM table does not record its time unit: say it (``time_unit=``), as for a CSV read by
  pandas. Per-customer predictions of a model are pandas Series and DataFrames whatever the
  input (as scikit-learn's ``predict`` returns NumPy arrays whatever the input), indexed by the
  ids found as above.
"""

from __future__ import annotations

import functools
import inspect
import json
from typing import Any, Callable, Iterable

import pandas as pd

from clvlab.core.errors import ClvlabError

__all__ = ["table_kind", "is_foreign_table", "to_pandas", "arrow_source", "like_input",
           "accepts_tables", "pandas_arguments", "converts", "converted_arguments", "ID_COLUMN",
           "ATTRS_KEY"]

#: the attribute naming the arguments a public function converts (tests/test_tables.py checks
#: that every public function taking a table has one)
MARK = "__clvlab_tables__"

ID_COLUMN = "customer_id"  # rfm_summary's and the command line's default customer column
ATTRS_KEY = b"PANDAS_ATTRS"  # where pandas keeps df.attrs in Arrow metadata (to_parquet too)


def table_kind(obj: Any) -> str | None:
    """``"pandas"``, ``"polars"``, ``"arrow"`` or None (not a table: a path, a list of paths,
    a Spark DataFrame...). Never imports polars or pyarrow to find out."""
    if isinstance(obj, pd.DataFrame):
        return "pandas"
    module = type(obj).__module__ or ""
    if module.startswith("polars") and type(obj).__name__ in ("DataFrame", "LazyFrame"):
        return "polars"
    if module.startswith("pyarrow") and type(obj).__name__ in (
            "Table", "RecordBatch", "RecordBatchReader"):
        return "arrow"
    if module.startswith(("pyspark", "duckdb")):
        return None  # Spark has its own engine (clvlab.spark); DuckDB relations are read by
        # the functions that take them (covariate_paths' DuckDB engine), as they are
    if hasattr(obj, "__arrow_c_stream__") and not isinstance(obj, (str, bytes)):
        return "arrow"
    return None


def is_foreign_table(obj: Any) -> bool:
    """A polars or Arrow table (anything :func:`to_pandas` converts)."""
    return table_kind(obj) in ("polars", "arrow")


def arrow_source(obj: Any) -> Any:
    """A polars or Arrow table as a pyarrow Table, which DuckDB scans in place (polars shares
    its buffers with it; a stream is read into memory once, as the engines read the log more
    than once)."""
    import pyarrow as pa

    if table_kind(obj) == "polars":
        frame = obj.collect() if type(obj).__name__ == "LazyFrame" else obj
        return frame.to_arrow()
    if isinstance(obj, pa.Table):
        return obj
    if isinstance(obj, pa.RecordBatchReader):  # read once: every engine scans the log twice
        return obj.read_all()
    if isinstance(obj, pa.RecordBatch):
        return pa.Table.from_batches([obj])
    return pa.table(obj)  # the Arrow C stream interface


def to_pandas(obj: Any, *, keyed: bool = False, customer_col: str | None = None,
              what: str = "the table") -> Any:
    """``obj`` as a pandas DataFrame when it is a polars or Arrow table; anything else is
    returned as it is (a pandas DataFrame, a path, None...).

    ``keyed``: the table is one row per customer (an RFM table, attributes, features): the
    index pandas recorded in its Arrow metadata (``pa.Table.from_pandas``) is restored, else its
    customer-id column (``customer_col``, else ``customer_id``) becomes the index. A named ``customer_col`` that is missing is left to
    the caller's own check, which names it.
    """
    if not is_foreign_table(obj):
        return obj
    import pyarrow as pa

    table = arrow_source(obj)
    metadata = table.schema.metadata or {}
    table = _plain_types(table)
    recorded_index = b"pandas" in metadata and _pandas_index_columns(metadata)
    try:
        frame = table.to_pandas(date_as_object=False)
    except (pa.ArrowException, ValueError, TypeError) as error:
        raise ClvlabError(f"{what} could not be read from its Arrow form: {error}") from error
    if ATTRS_KEY in metadata:
        try:
            frame.attrs = json.loads(metadata[ATTRS_KEY])
        except ValueError:
            pass  # not clvlab's or pandas' own: the table simply records nothing
    if keyed and not recorded_index:
        for column in (customer_col, ID_COLUMN):
            if column is not None and column in frame.columns:
                frame = frame.set_index(column)
                break
    return frame


def _pandas_index_columns(metadata: dict) -> bool:
    """Whether pandas' own metadata (``pa.Table.from_pandas``) records a named index."""
    try:
        columns = json.loads(metadata[b"pandas"]).get("index_columns", [])
    except ValueError:
        return False
    return any(isinstance(column, str) for column in columns)


def _plain_types(table: Any) -> Any:
    """Decimal columns as float64 and Arrow's string views as strings: types that pandas would
    otherwise hold as Python objects."""
    import pyarrow as pa

    fields = []
    changed = False
    for field in table.schema:
        kind = field.type
        if pa.types.is_decimal(kind):
            kind, changed = pa.float64(), True
        elif hasattr(pa.types, "is_string_view") and pa.types.is_string_view(kind):
            kind, changed = pa.large_string(), True
        fields.append(field.with_type(kind))
    if not changed:
        return table
    return table.cast(pa.schema(fields, metadata=table.schema.metadata))


def like_input(result: pd.DataFrame, kind: str | None) -> Any:
    """A pandas result in the kind of the input it came from: polars or a pyarrow Table, the
    index as the first column(s) and, for Arrow, ``attrs`` in the schema's metadata; a pandas
    result for any other kind."""
    if kind not in ("polars", "arrow"):
        return result
    import pyarrow as pa

    named_index = any(name is not None for name in result.index.names)
    table = pa.Table.from_pandas(result, preserve_index=True if named_index else False)
    if named_index:  # the ids first, as a reader expects them; pandas' metadata still names
        ids = [name for name in result.index.names if name in table.column_names]  # the index
        table = table.select(ids + [name for name in table.column_names if name not in ids])
    if result.attrs:
        table = table.replace_schema_metadata(
            {**(table.schema.metadata or {}), ATTRS_KEY: json.dumps(result.attrs, default=str)})
    if kind == "arrow":
        return table
    import polars as pl  # the input was a polars table: polars is installed

    return pl.from_arrow(table)


def converts(*names: str) -> Callable:
    """Mark a function that converts its arguments ``names`` itself (with :func:`to_pandas`,
    or natively as :func:`rfm_summary` does), for :func:`converted_arguments`."""
    def mark(function: Callable) -> Callable:
        setattr(function, MARK, tuple(dict.fromkeys(converted_arguments(function) + names)))
        return function

    return mark


def converted_arguments(function: Callable) -> tuple[str, ...]:
    """The arguments of ``function`` that accept polars and Arrow tables (its mark)."""
    return tuple(getattr(function, MARK, ()))


def pandas_arguments(signature: inspect.Signature, keyed: Iterable[str], args: tuple,
                     kwargs: dict) -> tuple[tuple, dict]:
    """``args`` and ``kwargs`` of a call to a function of ``signature`` with its arguments
    named in ``keyed`` (one row per customer) made pandas DataFrames where they are polars or
    Arrow tables; the call unchanged otherwise (the common case costs one bind)."""
    if not _any_foreign(args, kwargs):
        return args, kwargs
    bound = signature.bind_partial(*args, **kwargs)
    changed = False
    for name in keyed:
        value = bound.arguments.get(name)
        if is_foreign_table(value):
            bound.arguments[name] = to_pandas(value, keyed=True,
                                              what=f"{name} ({type(value).__name__})")
            changed = True
    return (bound.args, bound.kwargs) if changed else (args, kwargs)


def _any_foreign(args: tuple, kwargs: dict) -> bool:
    """Whether any argument is a polars or Arrow table (cheaper than binding the call)."""
    return any(is_foreign_table(value) for value in args) or \
        any(is_foreign_table(value) for value in kwargs.values())


def accepts_tables(*names: str, keyed: Iterable[str] = (), customer_col: str | None = None,
                   follow: str | None = None) -> Callable:
    """Decorate a public function so that its arguments ``names`` (and ``keyed``: one row per
    customer) accept polars and Arrow tables, converted by :func:`to_pandas` before it runs.
    ``customer_col``: the function's parameter that names the customer column, if it has one.
    ``follow``: the argument whose kind the function's table result takes (:func:`like_input`).
    """
    keyed = tuple(keyed)
    wanted = tuple(names) + keyed

    def decorate(function: Callable) -> Callable:
        signature = inspect.signature(function)
        missing = [name for name in wanted if name not in signature.parameters]
        if missing:
            raise TypeError(f"{function.__qualname__} has no parameter {missing}")

        @functools.wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if not _any_foreign(args, kwargs):  # pandas, paths: the call as it is
                return function(*args, **kwargs)
            bound = signature.bind_partial(*args, **kwargs)
            if not any(is_foreign_table(bound.arguments.get(name)) for name in wanted):
                return function(*args, **kwargs)
            kind = table_kind(bound.arguments.get(follow)) if follow else None
            column = None
            if customer_col is not None:
                column = bound.arguments.get(customer_col,
                                             signature.parameters[customer_col].default)
                column = column if isinstance(column, str) else None
            for name in wanted:
                if name in bound.arguments:
                    bound.arguments[name] = to_pandas(
                        bound.arguments[name], keyed=name in keyed, customer_col=column,
                        what=f"{name} ({type(bound.arguments[name]).__name__})")
            result = function(*bound.args, **bound.kwargs)
            if kind is not None and isinstance(result, pd.DataFrame):
                return like_input(result, kind)
            return result

        return converts(*wanted)(wrapper)

    return decorate
