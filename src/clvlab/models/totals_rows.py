"""The rows totals work on: each customer's group, the distinct (history, covariates, group)
rows with the customers each stands for, and the distinct purchase histories among them.

Customers are compressed ``chunk_size`` at a time and the chunks' distinct rows once more, so
a table of 10,000,000 customers is never copied whole; what is kept grows with the distinct
rows (a few hundred thousand for day-resolution histories), not with the customers.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from clvlab.core.errors import ClvlabError, DataValidationError, example_row
from clvlab.inference.grouping import group_rows

__all__ = ["group_codes", "row_weights", "distinct_rows", "distinct_histories", "history_index",
           "CHUNK_ROWS"]

#: labels coded this many at a time
CHUNK_ROWS = 200_000


def group_codes(rfm: pd.DataFrame, by: Any) -> tuple[np.ndarray, list, str]:
    """(group code per row, sorted labels, index name), without an object array per customer
    (a million Python labels would cost more memory than the totals)."""
    if by is None:
        return np.zeros(len(rfm), np.int32), ["all"], "group"
    if isinstance(by, str):
        if by not in rfm.columns:
            raise ClvlabError(f"by={by!r} is not a column of the table; pass a column name, one "
                              f"label per row, or None; its columns are {list(rfm.columns)}")
        values, name = rfm[by], by
    else:
        if isinstance(by, pd.Series) and not by.index.equals(rfm.index):
            raise ClvlabError("by, a Series, must have the table's index (one label per "
                              "customer, aligned); pass by.reindex(rfm.index) or an array")
        values = by if isinstance(by, pd.Series) else pd.Series(np.asarray(by))
        name = getattr(by, "name", None) or "group"
        if len(values) != len(rfm):
            raise ClvlabError(f"by must give one label per row of the table ({len(rfm)}), "
                              f"got {len(values)}")
    missing = values.isna().to_numpy()
    if missing.any():
        raise DataValidationError(name if isinstance(by, str) else "by",
                                  "has a missing group label; every customer needs a group",
                                  example_row(rfm, int(np.flatnonzero(missing)[0])))
    # the labels from the distinct values, then the codes a chunk at a time: factorizing ten
    # million labels at once held 160 MiB of hash table and int64 codes
    labels = pd.factorize(pd.unique(values), sort=True)[1]
    index = pd.Index(labels)
    codes = np.empty(len(values), np.int32)
    for start in range(0, len(values), CHUNK_ROWS):
        codes[start:start + CHUNK_ROWS] = index.get_indexer(values.iloc[start:start + CHUNK_ROWS])
    return codes, list(labels), name


def row_weights(rfm: pd.DataFrame, weights: Any) -> np.ndarray | None:
    """Customers per row of a compressed table: whole numbers >= 0, one per row (None: one
    customer a row)."""
    if weights is None:
        return None
    values = np.asarray(weights.to_numpy() if isinstance(weights, pd.Series) else weights,
                        dtype=np.float64)
    if (values.shape != (len(rfm),) or not np.all(np.isfinite(values)) or np.any(values < 0)
            or np.any(values != np.round(values))):
        raise ClvlabError("weights must give the customers each row stands for: one whole "
                          "number >= 0 per row of the table (e.g. donations['weights']), got "
                          f"{np.asarray(weights).shape[:1] or 'a scalar'} values")
    return values


def distinct_rows(models: list, rfm: pd.DataFrame, codes: np.ndarray, chunk_size: int,
                  weights: np.ndarray | None = None):
    """The distinct (model columns, encoded covariates, group) rows: a table of one customer
    per distinct row (its original columns), how many customers each stands for, and its
    group. Each chunk is compressed together with the distinct rows found so far, so memory
    follows the distinct rows, never the customers."""
    columns = list(dict.fromkeys(c for m in models for c in getattr(m, "columns", ())
                                 if c in rfm.columns))
    kept: list = []     # [key columns (rows x columns), a customer of each row, customers]
    pending: list = []  # chunks' distinct rows not yet compressed with the kept ones
    for start in range(0, len(rfm), chunk_size):
        part = rfm.iloc[start:start + chunk_size]
        numbers = [part[c].to_numpy(np.float64) for c in columns]
        for m in models:
            if hasattr(m, "covariates_"):
                numbers += list(m.covariates_.encoder.transform(part, model=type(m).__name__).T)
        numbers.append(codes[start:start + chunk_size].astype(np.float64))
        counts = np.ones(len(part)) if weights is None else weights[start:start + chunk_size]
        pending.append(_compressed(np.column_stack(numbers),
                                   np.arange(start, start + len(part)), counts))
        # merged when the pending rows outnumber the kept ones: memory stays within about
        # twice the distinct rows, and each row is rehashed a few times, not once a chunk
        if sum(len(p[0]) for p in pending) >= max(len(kept[0]) if kept else 0, chunk_size):
            kept = _merged(([kept] if kept else []) + pending)
            pending = []
    key, first, weight = _merged(([kept] if kept else []) + pending)
    table = rfm.iloc[first]
    table.attrs = dict(rfm.attrs)
    return table, weight, key[:, -1].astype(np.int64)


def _compressed(key: np.ndarray, rows: np.ndarray, counts: np.ndarray):
    """(distinct rows of key, a row position of each, summed counts)."""
    distinct, inverse = group_rows(list(key.T))
    first = np.empty(len(distinct[0]), np.int64)
    first[inverse] = rows  # any customer of a distinct row stands for it
    return np.column_stack(distinct), first, np.bincount(inverse, weights=counts,
                                                         minlength=len(first))


def _merged(parts: list):
    if len(parts) == 1:
        return parts[0]
    return _compressed(np.vstack([p[0] for p in parts]), np.concatenate([p[1] for p in parts]),
                       np.concatenate([p[2] for p in parts]))


def distinct_histories(model, table: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    """The distinct purchase histories (the model's columns and covariates) among the rows,
    and each row's history."""
    _, inverse = group_rows(_history_columns(model, table))
    first = np.empty(inverse.max() + 1, np.int64)
    first[inverse] = np.arange(len(inverse))
    histories = table.iloc[first]
    histories.attrs = dict(table.attrs)
    return histories, inverse


def history_index(model, rfm: pd.DataFrame, chunk_size: int) -> tuple[pd.DataFrame, np.ndarray]:
    """The distinct purchase histories of the customers (as ``distinct_histories``) and each
    customer's, found ``chunk_size`` customers at a time: the histories first (compressed
    chunk by chunk), then each chunk's rows matched to them by hashing the two together."""
    histories, _, _ = distinct_rows([model], rfm, np.zeros(len(rfm), np.int32), chunk_size)
    known = _history_columns(model, histories)
    index = np.empty(len(rfm), np.int32 if len(histories) < 2**31 else np.int64)
    for start in range(0, len(rfm), chunk_size):
        part = _history_columns(model, rfm.iloc[start:start + chunk_size])
        _, inverse = group_rows([np.concatenate([a, b]) for a, b in zip(known, part)])
        to_history = np.empty(inverse.max() + 1, np.int64)
        to_history[inverse[:len(histories)]] = np.arange(len(histories))
        index[start:start + len(part[0])] = to_history[inverse[len(histories):]]
    return histories, index


def _history_columns(model, table: pd.DataFrame) -> list[np.ndarray]:
    numbers = [table[c].to_numpy(np.float64) for c in model.columns]
    if hasattr(model, "covariates_"):
        numbers += list(model.covariates_.encoder.transform(table, model=type(model).__name__).T)
    return numbers
