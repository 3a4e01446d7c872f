"""Peak memory of the batch scoring job (`clvlab score`) at 1M and 10M customers.

Each size gets a synthetic Parquet log (every customer 1 + Poisson(1.5) purchases over a year,
amounts from a gamma), a BG/NBD + Gamma-Gamma CLV model registered in a throwaway sqlite MLflow
store, and a fresh `clvlab score` process whose peak resident memory is read from the kernel
(os.wait4), once per DuckDB memory limit. The job streams customers from DuckDB in chunks of
200,000, so its peak is the process's baseline (about 550 MiB of imports: MLflow, pandas,
pyarrow, numba, scipy) plus what DuckDB takes for the aggregation, which its memory limit caps.

    .venv/bin/python benchmarks/bench_scoring_memory.py [--sizes 1M,10M] [--memory-limits 2GB,1GB]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq


def parse_size(text: str) -> int:
    text = text.strip().upper()
    scale = {"K": 1_000, "M": 1_000_000}.get(text[-1], 1)
    return int(float(text.rstrip("KM")) * scale)


def write_log(path: Path, customers: int, seed: int = 0) -> int:
    """The log in row groups of 1M customers, so that writing it needs little memory."""
    rng = np.random.default_rng(seed)
    start = np.datetime64("2024-01-01T00:00:00", "s")
    writer, rows = None, 0
    for first in range(0, customers, 1_000_000):
        n = min(1_000_000, customers - first)
        counts = 1 + rng.poisson(1.5, n)
        ids = np.repeat(np.arange(first, first + n, dtype=np.int64), counts)
        seconds = rng.integers(0, 365 * 86_400, ids.size)
        table = pa.table({"customer_id": ids, "date": start + seconds.astype("timedelta64[s]"),
                          "amount": np.round(rng.gamma(2.0, 20.0, ids.size), 2)})
        writer = writer or pq.ParquetWriter(path, table.schema)
        writer.write_table(table)
        rows += ids.size
    writer.close()
    return rows


def run_job(args: list[str], env: dict, cwd: Path) -> tuple[float, float, str]:
    """Run `clvlab score` in a fresh process: (seconds, peak RSS in MiB, its last output)."""
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "clvlab.cli", "score", *args], env=env,
                               cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    _, status, usage = os.wait4(process.pid, 0)
    output = process.stdout.read().decode(errors="replace")
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"clvlab score failed ({process.returncode}):\n{output[-3000:]}")
    return time.perf_counter() - started, usage.ru_maxrss / 1024, output.strip().splitlines()[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1M,10M")
    parser.add_argument("--memory-limits", default="2GB,1GB", help="the job's DuckDB memory limits")
    options = parser.parse_args()
    import clvlab

    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{folder}/mlflow.db"}
        os.environ.update(env)
        os.chdir(folder)
        transaction = clvlab.BetaGeo.from_params(r=0.24, alpha=4.4, a=0.79, b=2.43, time_unit="W")
        spend = clvlab.GammaGamma.from_params(p=6.25, q=3.74, v=15.44, time_unit="W")
        clvlab.serving.log_clv_model(transaction, spend, registered_model_name="bench")
        print(f"{'customers':>12} {'transactions':>13} {'DuckDB limit':>13} {'seconds':>8} {'peak MiB':>9}")
        for size in [parse_size(s) for s in options.sizes.split(",")]:
            log = folder / f"log_{size}.parquet"
            rows = write_log(log, size)
            for limit in [m.strip() for m in options.memory_limits.split(",")]:
                out = folder / f"scores_{size}.parquet"
                seconds, peak, line = run_job(
                    ["--model", "models:/bench@challenger", "--transactions", str(log),
                     "--as-of", "2024-12-31", "-o", str(out), "--memory-limit", limit], env, folder)
                assert pd.read_parquet(out, columns=["clv"]).shape[0] == size, line
                print(f"{size:>12,} {rows:>13,} {limit:>13} {seconds:>8.1f} {peak:>9,.0f}", flush=True)
                out.unlink()
            log.unlink()


if __name__ == "__main__":
    main()
