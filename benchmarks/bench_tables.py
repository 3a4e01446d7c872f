"""RFM summaries of one simulated transaction log held as pandas, polars and Arrow: the same
result, and what each costs (issue 33).

    .venv/bin/python benchmarks/bench_tables.py                 # 2,000,000 rows
    .venv/bin/python benchmarks/bench_tables.py --rows 10000000

The log: ``--customers`` customers with Poisson purchase counts over two years, daily dates,
amounts to the cent; each kind holds the same values (built once in NumPy). For each kind and
engine, the least wall time of ``--repeats`` calls of ``clvlab.rfm_summary`` (weeks, a
calibration cut one year in), and whether the result equals the pandas engine's on the pandas
log (counts and durations exactly, spend to 1e-12). "arrow in place" is the DuckDB engine
scanning the Arrow (or polars) buffers without a pandas copy; the "pandas" engine converts a
polars or Arrow log to pandas once. polars is optional: without it, its rows are skipped.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
import pyarrow as pa

import clvlab
from clvlab.data.tables import to_pandas


def simulated_log(rows: int, customers: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, customers, rows)
    days = rng.integers(0, 730, rows)
    amounts = np.round(rng.gamma(2.0, 20.0, rows), 2)
    dates = pd.Timestamp("2022-01-01") + pd.to_timedelta(days, unit="D")
    return pd.DataFrame({"customer_id": ids, "date": dates.as_unit("us"), "amount": amounts})


def timed(call, repeats: int):
    best, result = float("inf"), None
    for _ in range(repeats):
        started = time.perf_counter()
        result = call()
        best = min(best, time.perf_counter() - started)
    return best, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--customers", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    log = simulated_log(args.rows, args.customers, args.seed)
    kinds = {"pandas": log, "arrow": pa.Table.from_pandas(log, preserve_index=False)}
    try:
        import polars as pl

        kinds["polars"] = pl.from_arrow(kinds["arrow"])
    except ImportError:
        print("polars is not installed: its rows are skipped (pip install clvlab[polars])")
    options = dict(amount_col="amount", time_unit="W", calibration_end="2023-01-01")

    reference = None
    print(f"{args.rows:,} rows, {args.customers:,} customers; least of {args.repeats} calls")
    print(f"{'input':8} {'engine':8} {'seconds':>8} {'vs pandas/duckdb':>17}  equal")
    baseline = None
    for engine in ("duckdb", "pandas"):
        for kind, table in kinds.items():
            seconds, result = timed(lambda: clvlab.rfm_summary(table, engine=engine, **options),
                                    args.repeats)
            frame = to_pandas(result, keyed=True)
            if reference is None:
                reference = clvlab.rfm_summary(log, engine="pandas", **options)
            equal = _equal(frame, reference)
            if baseline is None:
                baseline = seconds
            print(f"{kind:8} {engine:8} {seconds:8.3f} {seconds / baseline:16.2f}x  {equal}")


def _equal(frame: pd.DataFrame, reference: pd.DataFrame) -> bool:
    if list(frame.columns) != list(reference.columns) or not frame.index.equals(reference.index):
        return False
    for column in frame.columns:
        left, right = frame[column].to_numpy(), reference[column].to_numpy()
        if column.startswith("monetary"):
            if not np.allclose(left, right, rtol=1e-12, atol=0):
                return False
        elif not np.array_equal(left, right):
            return False
    return True


if __name__ == "__main__":
    main()
