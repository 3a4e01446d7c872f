"""Customer attributes for the scoring job of a model with covariates.

A model with covariates (channel, gender, region...) reads each customer's attributes beside
the RFM columns. The scoring job takes them from one of two places:

- an **attributes table** (``attributes=``, ``--attributes FILE``): CSV or Parquet (or a
  DataFrame) with the customer id column (``customer_col``) or indexed by id, one row per
  customer, by the rules of :mod:`clvlab.data.attributes` (ids, repeated ids, types);
- else **the log's own columns**: each attribute must then be one value per customer over the
  log's rows (a value that changes within a customer is an error naming the column and the
  customer: a covariate is known at acquisition and does not change).

A scored customer without attributes (no row in the table; in the log, no value on any of the
customer's rows) is never scored at a made-up baseline and never dropped silently: by default
the job fails with their number and an example id (``missing_attributes="raise"``); with
``missing_attributes="skip"`` (``--missing-attributes skip``) they are left out and their number
is printed and logged (metric ``customers_without_attributes``). A missing value in a row
that exists is an error either way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import pandas as pd

from clvlab.core.errors import ClvlabError, DataValidationError

__all__ = ["MISSING_ATTRIBUTES", "AttributeJoin", "attribute_source", "log_attributes",
           "check_missing_policy", "missing_error", "read_attribute_table"]

#: what the scoring job does with customers who have no attributes
MISSING_ATTRIBUTES = ("raise", "skip")


def check_missing_policy(policy: str) -> str:
    if policy not in MISSING_ATTRIBUTES:
        raise ClvlabError(f"missing_attributes must be one of {list(MISSING_ATTRIBUTES)} "
                          f"(fail with their number, or leave them out), got {policy!r}")
    return policy


class AttributeJoin:
    """Joins the attributes onto the scoring job's chunks of model inputs (indexed by customer
    id) and counts the customers without any. With ``policy="raise"``, once one is found no
    chunk is scored any more (the rest are only counted) and :meth:`finish` raises with the
    total; with ``"skip"`` they are left out of the chunks."""

    def __init__(self, table: pd.DataFrame, source: str, policy: str = "raise",
                 needed_by: str = "the model's covariates"):
        self.table = table
        self.source = source
        self.needed_by = needed_by
        self.policy = check_missing_policy(policy)
        self.customers = 0
        self.missing = 0
        self.example: Any = None

    def join(self, inputs: pd.DataFrame) -> pd.DataFrame | None:
        keys = self._keys(inputs.index)
        found = keys.isin(self.table.index)
        self.customers += len(inputs)
        if not found.all():
            if self.example is None:
                self.example = _plain(inputs.index[~found][0])
            self.missing += int((~found).sum())
        if self.policy == "raise" and self.missing:
            return None
        kept = inputs[found]
        joined = pd.concat([kept, self.table.loc[keys[found]].set_axis(kept.index)], axis=1)
        joined.attrs = inputs.attrs
        return joined

    def _keys(self, ids: pd.Index) -> pd.Index:
        """The chunk's ids as keys of the table: both as text when one side's ids are text and
        the other's whole numbers (said once, by a warning)."""
        from clvlab.data.attributes import matching_ids

        if not getattr(self, "_matched", False):
            self._matched = True
            keys, table_keys = matching_ids(ids, self.table.index, "the log", self.source)
            self._as_text = table_keys is not self.table.index
            self.table = self.table.set_axis(table_keys)
            return keys
        if self._as_text:
            from clvlab.data.attributes import ids_as_text

            return ids_as_text(ids)
        return ids

    def chunks(self, chunks: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        """The chunks with their attributes; raises at the end when customers lacked them."""
        for inputs in chunks:
            joined = self.join(inputs)
            if joined is not None and len(joined):
                yield joined
        self.finish()

    def finish(self) -> None:
        if self.policy == "raise" and self.missing:
            raise missing_error(self.missing, self.customers, self.example, self.source,
                                none_matched=self.missing == self.customers and len(self.table) > 0,
                                table_example=_plain(self.table.index[0]) if len(self.table) else None,
                                needed_by=self.needed_by)


def missing_error(missing: int, customers: int, example: Any, source: str, *,
                  none_matched: bool = False, table_example: Any = None,
                  needed_by: str = "the model's covariates") -> ClvlabError:
    """The scoring job's refusal of customers without attributes (every engine's words);
    ``needed_by`` says what reads them (the model's covariates, the totals' groupings)."""
    hint = ""
    if none_matched:
        hint = (f"; no customer matched: are the ids of {source} of the log's type (the log's "
                f"ids look like {example!r}, the table's like {table_example!r})?")
    return ClvlabError(
        f"{missing:,} of the {customers:,} customers to score have no attributes in {source} "
        f"(e.g. customer {example!r}), and {needed_by} need them; nothing was "
        "written. Give them attributes, or pass missing_attributes='skip' "
        f"(--missing-attributes skip) to leave them out{hint}")


def attribute_source(attributes: Any, columns: Sequence[str], *, customer_col: str,
                     transactions: Any, csv_options: dict[str, Any]) -> tuple[pd.DataFrame, str]:
    """(table of the ``columns`` indexed by customer id, a name for it in messages): from the
    attributes table when given, else from the log's columns."""
    if attributes is None:
        log = _log_columns(transactions, [customer_col, *columns], csv_options)
        return log_attributes(log, columns, customer_col=customer_col), "the log"
    from clvlab.data.attributes import attribute_table

    name = f"the attributes table {attributes}" if isinstance(attributes, (str, Path)) else \
        "the attributes table"
    table = attribute_table(read_attribute_table(attributes, csv_options),
                            customer_col=customer_col)
    absent = [c for c in columns if c not in table.columns]
    if absent:
        raise ClvlabError(f"the model reads the customer attribute column(s) {absent} (its "
                          f"covariates), which {name} lacks (it has {list(table.columns)})")
    return table[list(columns)], name


def read_attribute_table(attributes: Any, csv_options: dict[str, Any]) -> pd.DataFrame:
    """A DataFrame as it is; a CSV or Parquet file read by
    :func:`clvlab.data.attributes.read_attribute_file` (a Parquet file keeps its index; a CSV
    file's ids written with leading zeros stay text)."""
    if not isinstance(attributes, (str, Path)):
        return attributes
    from clvlab.data.attributes import read_attribute_file

    return read_attribute_file(attributes, delimiter=csv_options.get("delimiter"),
                               decimal=csv_options.get("decimal"))


def log_attributes(log: pd.DataFrame, columns: Sequence[str], *, customer_col: str) -> pd.DataFrame:
    """Each customer's one value of each column of the log (indexed by customer id); customers
    with no value of some column on any row are left out (the join counts them)."""
    absent = [c for c in columns if c not in log.columns]
    if absent:
        raise ClvlabError(f"the model reads the customer attribute column(s) {absent} (its "
                          f"covariates), which the log lacks (it has {list(log.columns)}); "
                          "give the attributes as a table (attributes=..., --attributes FILE)")
    rows = log[log[customer_col].notna()]
    grouped = rows.groupby(customer_col, sort=False)
    for column in columns:
        distinct = grouped[column].nunique(dropna=True)
        changing = distinct.index[distinct.to_numpy() > 1]
        if len(changing):
            customer = _plain(changing[0])
            values = sorted({str(v) for v in rows.loc[rows[customer_col] == changing[0], column]
                             .dropna()})
            raise DataValidationError(
                column, f"changes within customer {customer!r} in the log ({', '.join(values[:4])}"
                        f"{', ...' if len(values) > 4 else ''}; {len(changing):,} customers in all): "
                        "a covariate is one value per customer, known at acquisition; give each "
                        "customer's value in an attributes table (attributes=..., --attributes FILE)",
                {customer_col: customer, column: values[0]})
    table = grouped[list(columns)].first()  # the first value that is not missing
    return table.dropna()


def _log_columns(transactions: Any, columns: list[str], csv_options: dict[str, Any]) -> pd.DataFrame:
    """Only ``columns`` of the log (a DataFrame, or CSV or Parquet files)."""
    if isinstance(transactions, pd.DataFrame):
        return transactions
    from clvlab.data.rfm_io import expand_paths, file_format

    files = expand_paths(transactions)
    parquet = file_format(files) == "parquet"
    frames = []
    for path in files:
        if parquet:
            import pyarrow.parquet as pq

            present = set(pq.read_schema(path).names)
            frames.append(pd.read_parquet(path, columns=[c for c in columns if c in present]))
        else:
            delimiter = csv_options.get("delimiter")
            frames.append(pd.read_csv(path, sep=delimiter, decimal=csv_options.get("decimal") or ".",
                                      engine="python" if delimiter is None else "c",
                                      usecols=lambda name: name in columns))
    return pd.concat(frames, ignore_index=True)


def _plain(value: Any) -> Any:
    """A numpy scalar as its Python value, so a message reads "customer 7", not np.int64(7)."""
    return value.item() if isinstance(value, np.generic) else value
