"""The distinct rows a fit works on: every model's likelihood is evaluated once per distinct
data row, weighted by how many customers share it (CDNOW's 2,357 customers are 1,016 distinct
(x, t_x, T) rows), and its kernels once per distinct level of a column.

``group_rows`` and ``levels`` are pandas' factorize(sort=True) with its answers to the bit; up to
``_COMPILED_ROWS`` rows (and for levels at any size) the same algorithm runs compiled, without
pandas' per-call costs, which dominated a small fit's fixed costs (issue 33).
"""

from __future__ import annotations

from typing import Sequence

import numba
import numpy as np
import pandas as pd

__all__ = ["group_rows", "compress", "levels"]


def group_rows(columns: Sequence[np.ndarray],
               first_levels: tuple[np.ndarray, np.ndarray] | None = None
               ) -> tuple[list[np.ndarray], np.ndarray]:
    """The distinct rows of ``columns`` (sorted) and each row's index among them.

    Rows are grouped by hashing (each column factorised, the codes combined into one integer
    key), which is linear in the rows; sorting rows as np.unique(axis=0) does took 4 s on
    1,000,000 customers. ``first_levels``: ``levels(columns[0])``, when the caller has it: its
    inverse is the factorisation this function would compute for that column (the same call),
    so the column is not factorised again.
    """
    columns = [np.asarray(c, dtype=np.float64) for c in columns]
    n = len(columns[0])
    if n == 1:  # a covariate group of one customer (a continuous covariate): 20,000 of them
        return list(columns), np.zeros(1, dtype=np.int64)  # spent 7 s in np.unique below
    if n <= 64:  # pandas' per-call overhead (~0.1 ms) dominates tiny inputs: a covariate group
        unique, inverse = np.unique(np.column_stack(columns), axis=0, return_inverse=True)
        return [unique[:, i] for i in range(unique.shape[1])], inverse.ravel()
    if n <= _COMPILED_ROWS and not any(np.isnan(c).any() for c in columns):
        # the same algorithm compiled (``_group_compiled``): a CDNOW fit's 2,357 rows in 0.09
        # ms, not pandas' 0.33 (four factorize calls of ~0.06 ms each, mostly per-call costs)
        representative, inverse = _group_compiled(np.vstack(columns))
        return [column[representative] for column in columns], inverse
    key = np.zeros(n, dtype=np.int64)
    radix = 1
    for i, column in enumerate(columns):
        if i == 0 and first_levels is not None:
            distinct, codes = first_levels
        else:
            codes, distinct = pd.factorize(column, sort=True)
        if radix * max(len(distinct), 1) >= 2**62:
            # the combined key would overflow: renumber the rows seen so far (at most n
            # codes, sorted so the key's order stays the rows' order) and go on from there
            key, kept = pd.factorize(key, sort=True)
            key = key.astype(np.int64)
            radix = max(len(kept), 1)
        key = key * len(distinct) + codes
        radix *= max(len(distinct), 1)
    inverse, keys = pd.factorize(key, sort=True)
    representative = np.empty(len(keys), dtype=np.int64)
    representative[inverse] = np.arange(n)  # any row of a group will do: they are identical
    return [column[representative] for column in columns], inverse


def compress(columns: Sequence[np.ndarray], weights: np.ndarray | None = None):
    """Distinct rows of ``columns`` and their total weights.

    A fit's cost then grows with the number of distinct rows, not of customers. Returns the
    distinct columns (a list of arrays) and the weights; rows of zero total weight are dropped.
    """
    distinct, inverse = group_rows(columns)
    w = np.ones(len(inverse)) if weights is None else np.asarray(weights, dtype=np.float64)
    totals = np.bincount(inverse, weights=w, minlength=len(distinct[0]))
    keep = totals > 0
    return [column[keep] for column in distinct], totals[keep]


def levels(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct values and the index of each entry among them: (levels, inverse).

    Purchase counts take few distinct values even over 100,000s of distinct rows, so the
    special functions of x (log-gamma, digamma, beta) are evaluated once per level and gathered.
    """
    values = np.asarray(values, dtype=np.float64)
    if values.size == 1:
        return values.reshape(1), np.zeros(1, dtype=np.int64)
    if values.size <= 64:  # as in group_rows: tiny inputs (covariate groups) skip pandas
        distinct, inverse = np.unique(values, return_inverse=True)
        return distinct, inverse.ravel()
    if values.ndim == 1 and not np.isnan(values).any():
        # pandas' answer, compiled (``_factorize_float``): 1,016 values in 6 us, not 40
        values = np.ascontiguousarray(values)
        inverse, first = _factorize_float(values)
        return values[first], inverse
    inverse, distinct = pd.factorize(values, sort=True)
    return np.asarray(distinct, dtype=np.float64), inverse


# --- compiled grouping: pandas' factorize(sort=True) and group_rows' algorithm, without pandas'
# per-call costs (a CDNOW fit factorised 2,357 rows four times and its 1,016 distinct rows
# three times more). The same answers to the bit (tests/test_fit_overhead.py): -0.0 and 0.0 are
# one value, a value's level is its first entry (pandas' uniques), a row group's representative
# its last row (group_rows' ``representative[inverse] = arange(n)``). NaN goes to pandas.

#: group_rows compiles up to this many rows; beyond, pandas' factorize (its hash tables and
#: sorts scale better: 50,000 rows took 9 ms compiled, 4 ms in pandas)
_COMPILED_ROWS = 5_000
_NEGATIVE_ZERO = np.uint64(0x8000000000000000)


@numba.njit(cache=True, nogil=True)
def _hash_ids(bits):  # pragma: no cover - compiled
    """Each entry's id among the distinct 64-bit patterns (ids in order of first appearance),
    and each id's first and last entry: an open-addressing hash table (Fibonacci hashing)."""
    n = bits.size
    size, shift = 16, 60
    while size < 2 * n:
        size *= 2
        shift -= 1
    table = np.full(size, -1, np.int64)
    seen = np.empty(n, np.uint64)
    first = np.empty(n, np.int64)
    last = np.empty(n, np.int64)
    ids = np.empty(n, np.int64)
    count = 0
    for i in range(n):
        b = bits[i]
        slot = np.int64(((b ^ (b >> np.uint64(31))) * np.uint64(0x9E3779B97F4A7C15))
                        >> np.uint64(shift))
        while True:
            g = table[slot]
            if g < 0:
                table[slot] = count
                seen[count] = b
                first[count] = i
                last[count] = i
                ids[i] = count
                count += 1
                break
            if seen[g] == b:
                ids[i] = g
                last[g] = i
                break
            slot = (slot + 1) & (size - 1)
    return ids, first[:count], last[:count]


@numba.njit(cache=True, nogil=True)
def _ranked(ids, keys):  # pragma: no cover - compiled
    """(each entry's rank among the distinct ``keys`` (one per id), the ids in key order)."""
    order = np.argsort(keys)
    rank = np.empty(order.size, np.int64)
    for r in range(order.size):
        rank[order[r]] = r
    codes = np.empty(ids.size, np.int64)
    for i in range(ids.size):
        codes[i] = rank[ids[i]]
    return codes, order


@numba.njit(cache=True, nogil=True)
def _factorize_float(column):  # pragma: no cover - compiled
    """pd.factorize(column, sort=True) for a float64 column without NaN: (codes, the first
    entry of each distinct value, in sorted order)."""
    bits = np.empty(column.size, np.uint64)
    raw = column.view(np.uint64)
    for i in range(column.size):
        bits[i] = np.uint64(0) if raw[i] == _NEGATIVE_ZERO else raw[i]  # -0.0 is 0.0
    ids, first, _ = _hash_ids(bits)
    codes, order = _ranked(ids, column[first])
    return codes, first[order]


@numba.njit(cache=True, nogil=True)
def _factorize_key(key):  # pragma: no cover - compiled
    """pd.factorize(key, sort=True) for int64 keys: (codes, the last entry of each distinct
    key, in sorted order)."""
    ids, _, last = _hash_ids(key.view(np.uint64))
    codes, order = _ranked(ids, key[last])
    return codes, last[order]


@numba.njit(cache=True, nogil=True)
def _group_compiled(values):  # pragma: no cover - compiled
    """``group_rows`` of the rows of ``values`` (columns x rows, float64, no NaN): (each
    group's representative row, groups sorted; each row's group). Each column factorised, the
    codes combined into one integer key (renumbered where it would overflow), the key
    factorised: group_rows' pandas steps."""
    n = values.shape[1]
    key = np.zeros(n, np.int64)
    radix = 1
    for c in range(values.shape[0]):
        codes, firsts = _factorize_float(np.ascontiguousarray(values[c]))
        distinct = max(firsts.size, 1)
        if radix >= 2 ** 62 // distinct:  # radix * distinct >= 2**62
            key, kept = _factorize_key(key)
            radix = max(kept.size, 1)
        for i in range(n):
            key[i] = key[i] * firsts.size + codes[i]
        radix *= distinct
    return _factorize_key(key)[::-1]
