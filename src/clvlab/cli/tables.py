"""The tables the commands read and write, in one layout for every format.

- **Ids.** A table of customers is written with the customer id as its first column, named
  like the log's customer column, in CSV and Parquet alike (``clvlab rfm`` with or without
  ``--attributes``, ``clvlab predict``). A Parquet file also records the column's name (with
  the time unit) in its metadata, so reading it back needs no option; a CSV file cannot, so it
  is read by ``--customer-col`` or its ``customer_id`` column. A command that scores or joins
  customers refuses a table whose ids it cannot find, rather than number the rows 0..n-1 (a
  join on such numbers puts every score on another customer).
- **Ids written with leading zeros** (``"00017"``) are read as text, as written
  (:func:`clvlab.data.rfm_io.read_csv_file`), and ids that are text on one side and numbers on
  the other are matched as text (:func:`clvlab.data.attributes.matching_ids`); both say so.
- Every output is written atomically (:func:`clvlab.core.atomic.atomic_output`).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from clvlab.core.errors import ClvlabError
from clvlab.data.rfm_columns import SPEC

__all__ = ["output_format", "read_rfm_table", "read_attributes", "join_attribute_file",
           "write_customer_table"]

_RFM_NAMES = {column.name for column in SPEC}


def output_format(path: str) -> str:
    lower = path.lower()
    if lower.endswith((".parquet", ".pq")):
        return "parquet"
    if lower.endswith(".csv"):
        return "csv"
    raise ClvlabError(f"output {path!r} must end in .parquet or .csv")


def read_rfm_table(path: str, customer_col: str | None, time_unit: str | None, *,
                   needs_unit: bool = True, needs_ids: bool = False) -> pd.DataFrame:
    """The RFM table of ``path`` (see clvlab.read_rfm) indexed by customer id. ``needs_unit``:
    a table without a recorded unit needs ``--time-unit``; ``needs_ids``: a table whose id
    column is unknown is refused, naming the likely column."""
    from clvlab.data.rfm_io import read_rfm

    table = read_rfm(path, time_unit=time_unit, customer_col=customer_col,
                     require_time_unit=needs_unit)
    if needs_ids and table.index.name is None:
        candidates = [str(c) for c in table.columns if c not in _RFM_NAMES]
        likely = f"; e.g. --customer-col {candidates[0]}" if candidates else ""
        raise ClvlabError(
            f"the customer ids of the RFM table {path} are unknown: it records no customer "
            f"column and has no 'customer_id' column, so its rows would be numbered 0..n-1 and "
            f"a join on them would put each score on another customer. Pass --customer-col "
            f"with the id column (columns: {list(map(str, table.columns))}){likely}")
    return table


def read_attributes(path: str, customer_col: str, *, delimiter: str | None = None,
                    decimal: str | None = None) -> pd.DataFrame:
    """An attributes file (CSV or Parquet, with a ``customer_col`` column or indexed by id)
    as a table indexed by customer id, by clvlab.data.attributes' rules."""
    from clvlab.data.attributes import attribute_table, read_attribute_file

    try:
        frame = read_attribute_file(path, delimiter=delimiter, decimal=decimal)
    except ClvlabError as exc:
        raise ClvlabError(f"--attributes: {exc}") from None
    return attribute_table(frame, customer_col=customer_col)


def join_attribute_file(rfm: pd.DataFrame, path: str, customer_col: str | None) -> pd.DataFrame:
    """The RFM table with the attributes of ``path`` joined by customer id (a column the table
    already holds is refused, naming it)."""
    from clvlab.data.attributes import join_attributes

    column = customer_col or rfm.index.name or "customer_id"
    return join_attributes(rfm, read_attributes(path, column), customer_col=column)


def write_customer_table(table: pd.DataFrame, path: str, output_format: str,
                         info: dict[str, Any] | None = None) -> None:
    """``table`` (indexed by customer id) at ``path`` with the id as its first column; a
    Parquet file records ``info`` (time unit, customer column...) in its metadata."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from clvlab.data.rfm_io import parquet_metadata

    if table.index.name is None:
        raise ClvlabError("internal: a customer table to write has no named id index")
    flat = table.reset_index()
    if output_format == "csv":
        flat.to_csv(path, index=False)
        return
    arrow = pa.Table.from_pandas(flat, preserve_index=False)
    metadata = dict(arrow.schema.metadata or {})
    info = {**(info or {}), "customer_col": str(table.index.name)}
    metadata.update({key.encode(): value.encode() for key, value in parquet_metadata(info).items()})
    pq.write_table(arrow.replace_schema_metadata(metadata), path)
