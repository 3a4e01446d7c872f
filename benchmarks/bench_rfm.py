"""Time transaction-log-to-RFM summaries: clvlab (DuckDB, pandas) against lifetimes, same data, one run.

    make bench                                   # the default sizes
    .venv-bench/bin/python benchmarks/bench_rfm.py --sizes 1M,10M,100M --lifetimes-max 1M

Every measurement runs in a fresh subprocess, so "peak MiB" is that process's peak resident set
(imports and the loaded log included). Logs are simulated (Pareto/NBD purchases, Gamma-Gamma
spend, 13 weeks of acquisition, 52 weeks observed) and cached as Parquet in benchmarks/data/.

What is timed:
- clvlab duckdb: rfm_summary(path) straight from the Parquet file (reading included);
- clvlab pandas: rfm_summary(frame, engine="pandas") on a DataFrame already in memory (reading
  excluded; engine="auto" would hand a frame this large to DuckDB);
- lifetimes: summary_data_from_transaction_data(frame) on the same DataFrame (reading excluded).
All three build daily-merged summaries with monetary value, measured in days.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
PARAMS = {"r": 1.0, "alpha": 5.0, "s": 0.6, "beta": 20.0}  # about 9 transactions per customer
SPEND = {"p": 6.25, "q": 3.74, "v": 15.44}
CHUNK_CUSTOMERS = 1_000_000


def parse_size(text: str) -> int:
    text = text.strip().upper()
    scale = {"K": 1_000, "M": 1_000_000, "B": 1_000_000_000}.get(text[-1], 1)
    return int(float(text[:-1] if text[-1] in "KMB" else text) * scale)


def simulated_log(transactions: int, data_dir: Path) -> Path:
    """A cached Parquet log of at least ``transactions`` rows, written chunk by chunk."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from clvlab.simulate import transaction_log

    path = data_dir / f"log_{transactions}.parquet"
    if path.exists():
        return path
    data_dir.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    written, chunk, writer = 0, 0, None
    started = time.perf_counter()
    while written < transactions:
        customers = min(CHUNK_CUSTOMERS, max(1_000, (transactions - written) // 8))
        log = transaction_log(customers, model="pareto-nbd", params=PARAMS, spend=SPEND,
                              seed=1000 + chunk)
        log["customer_id"] += chunk * CHUNK_CUSTOMERS
        log = log.iloc[: transactions - written]
        table = pa.Table.from_pandas(log, preserve_index=False)
        writer = writer or pq.ParquetWriter(temporary, table.schema)
        writer.write_table(table, row_group_size=1_000_000)
        written += len(log)
        chunk += 1
    writer.close()
    os.replace(temporary, path)
    print(f"  simulated {written:,} transactions in {time.perf_counter() - started:.0f} s -> {path}",
          flush=True)
    return path


def worker(engine: str, path: str, memory_limit: str) -> dict:
    """One measurement in this (fresh) process."""
    import pandas as pd

    result: dict = {"engine": engine}
    if engine == "duckdb":
        import duckdb

        import clvlab

        connection = duckdb.connect()
        connection.execute(f"SET memory_limit = '{memory_limit}'")
        connection.execute("SET preserve_insertion_order = false")
        started = time.perf_counter()
        rfm = clvlab.rfm_summary(path, amount_col="amount", time_unit="D", connection=connection)
        result["seconds"] = time.perf_counter() - started
    else:
        started = time.perf_counter()
        frame = pd.read_parquet(path)
        result["read_seconds"] = time.perf_counter() - started
        end = frame["date"].max()
        started = time.perf_counter()
        if engine == "pandas":
            import clvlab

            rfm = clvlab.rfm_summary(frame, amount_col="amount", time_unit="D", engine="pandas")
        else:
            from lifetimes.utils import summary_data_from_transaction_data

            rfm = summary_data_from_transaction_data(
                frame, "customer_id", "date", monetary_value_col="amount",
                observation_period_end=end, freq="D")
        result["seconds"] = time.perf_counter() - started
    result["peak_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result["customers"] = int(len(rfm))
    # T differs by design (lifetimes ends observation at a period, clvlab at the timestamp)
    result["checksum"] = [int(rfm["frequency"].sum()), float(rfm["recency"].sum())]
    return result


def measure(engine: str, path: Path, memory_limit: str, timeout: float) -> dict:
    command = [sys.executable, __file__, "--worker", engine, str(path), "--memory-limit", memory_limit]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"engine": engine, "error": f"over {timeout:.0f} s"}
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["?"])[-1]
        return {"engine": engine, "error": last[:100]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="100k,1M,10M", help="transactions per log, e.g. 1M,100M")
    parser.add_argument("--lifetimes-max", default="1M", help="largest log given to lifetimes")
    parser.add_argument("--pandas-max", default="10M", help="largest log given to the pandas engine")
    parser.add_argument("--memory-limit", default="2GB", help="DuckDB memory limit")
    parser.add_argument("--timeout", type=float, default=1800)
    parser.add_argument("--data-dir", default=str(HERE / "data"))
    parser.add_argument("--worker", nargs=2, metavar=("ENGINE", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(*args.worker, args.memory_limit)))
        return

    import clvlab

    print(f"clvlab {clvlab.__version__}, python {sys.version.split()[0]}, {os.cpu_count()} cores")
    try:
        import lifetimes

        print(f"lifetimes {lifetimes.__version__}")
    except ImportError:
        print("lifetimes is not installed: run `make bench` (it builds .venv-bench)")
    rows = []
    for size in [parse_size(s) for s in args.sizes.split(",")]:
        path = simulated_log(size, Path(args.data_dir))
        engines = ["duckdb"]
        if size <= parse_size(args.pandas_max):
            engines.append("pandas")
        if size <= parse_size(args.lifetimes_max):
            engines.append("lifetimes")
        results = {engine: measure(engine, path, args.memory_limit, args.timeout) for engine in engines}
        checksums = {tuple(r["checksum"]) for r in results.values() if "checksum" in r}
        for engine, result in results.items():
            rows.append((size, engine, result, len(checksums) == 1))
            print(format_row(size, engine, result, results), flush=True)
        print(f"  results agree across engines: {'yes' if len(checksums) == 1 else 'NO'}", flush=True)


def format_row(size: int, engine: str, result: dict, results: dict) -> str:
    label = f"{size:>12,} tx  {engine:<10}"
    if "error" in result:
        return f"{label} failed: {result['error']}"
    text = f"{label} {result['seconds']:9.2f} s  peak {result['peak_mib']:8.0f} MiB  " \
           f"{result['customers']:>11,} customers"
    peer = results.get("lifetimes", {})
    if engine != "lifetimes" and "seconds" in peer:
        text += f"  {peer['seconds'] / result['seconds']:7.1f}x faster than lifetimes"
    return text


if __name__ == "__main__":
    main()
