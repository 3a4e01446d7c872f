"""How clvlab's cost grows with the data: RFM (pandas, DuckDB, local Spark), fits, scoring.

    .venv/bin/python benchmarks/bench_scale.py [--sizes 1M,10M,100M] [--spark-max 10M] [--pandas-max 10M]

Logs are the simulated Parquet logs of bench_rfm.py (Pareto/NBD purchases, about 9 transactions
a customer, days), cached in benchmarks/data/. Every measurement runs in a fresh process; "peak"
is that process's resident set (for Spark the Python driver only: the JVM is another process).

- rfm: the summary with a holdout (DuckDB from the file; pandas on the frame in memory; Spark
  from the file through spark.read, local[2]);
- fit (DuckDB worker): BG/NBD, Pareto/NBD and Gamma-Gamma by maximum likelihood on the summary,
  with the number of distinct rows the fit works on;
- score (DuckDB worker): p_alive, expected purchases and P(any purchase) over 52 weeks for
  every customer (``model.scores``: once per distinct history), one thread, as customers per
  second per core;
- end to end (DuckDB worker): log file -> RFM -> fits -> scores -> Parquet file.
The growth exponent is the slope of log(time) against log(transactions) between sizes.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import sys
import time
from pathlib import Path

from _isolated import run_worker
from bench_rfm import parse_size, simulated_log

HERE = Path(__file__).resolve().parent
CUT = "2024-10-01"  # calibration end inside the simulated year


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def worker(engine: str, path: str) -> dict:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import warnings

    import numpy as np
    import pandas as pd

    import clvlab

    warnings.simplefilter("ignore")
    out: dict = {}
    options = dict(amount_col="amount", time_unit="D", calibration_end=CUT)
    if engine == "spark":
        from clvlab import spark as clv_spark

        session = clv_spark.local_session(cores=2)
        session.conf.set("spark.sql.session.timeZone", "UTC")
        started = time.perf_counter()
        summary = clv_spark.rfm_summary(session.read.parquet(path), **options)
        summary.frame.write.format("noop").mode("overwrite").save()
        out["rfm_s"] = time.perf_counter() - started
        started = time.perf_counter()
        clv_spark.fit(clvlab.BetaGeo(), summary)
        out["fit_bg_s"] = time.perf_counter() - started
        session.stop()
        out["peak_mib"] = _peak_mib()
        return out
    if engine == "pandas":
        frame = pd.read_parquet(path)
        started = time.perf_counter()
        rfm = clvlab.rfm_summary(frame, engine="pandas", **options)
        out["rfm_s"] = time.perf_counter() - started
        out["customers"] = len(rfm)
        out["peak_mib"] = _peak_mib()
        return out
    total = time.perf_counter()
    started = total
    rfm = clvlab.rfm_summary(path, **options)
    out["rfm_s"] = time.perf_counter() - started
    out["customers"] = len(rfm)
    for name, model in (("bg", clvlab.BetaGeo()), ("pareto", clvlab.ParetoNBD()),
                        ("gg", clvlab.GammaGamma())):
        started = time.perf_counter()
        table = rfm[(rfm["frequency"] > 0) & (rfm["monetary_value"] > 0)] if name == "gg" else rfm
        fitted = model.fit(table)
        out[f"fit_{name}_s"] = time.perf_counter() - started
        out[f"distinct_{name}"] = int(fitted.n_distinct_rows_)
        out[f"model_{name}"] = fitted
    scores = {}
    for name in ("bg", "pareto"):
        model = out.pop(f"model_{name}")
        started = time.perf_counter()
        scores[name] = model.scores(rfm, 364.0)
        out[f"score_{name}_per_s"] = len(rfm) / (time.perf_counter() - started)
    out.pop("model_gg")
    target = HERE / "data" / "scores.parquet"
    scores["pareto"].to_parquet(target)
    out["end_to_end_s"] = time.perf_counter() - total
    target.unlink()
    out["peak_mib"] = _peak_mib()
    assert np.all(np.isfinite(scores["pareto"].to_numpy()))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1M,10M,100M")
    parser.add_argument("--pandas-max", default="10M")
    parser.add_argument("--spark-max", default="10M")
    parser.add_argument("--engines", default="duckdb,pandas,spark")
    parser.add_argument("--timeout", type=float, default=1200)
    parser.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(*args.worker)))
        return
    sizes = [parse_size(s) for s in args.sizes.split(",")]
    limits = {"pandas": parse_size(args.pandas_max), "spark": parse_size(args.spark_max),
              "duckdb": max(sizes)}
    results: dict[tuple[str, int], dict] = {}
    for size in sizes:
        path = simulated_log(size, HERE / "data")
        for engine in args.engines.split(","):
            if size > limits[engine]:
                continue
            result = run_worker([sys.executable, __file__, "--worker", engine, str(path)], args.timeout)
            results[(engine, size)] = result
            if "error" in result:
                print(f"{size:>13,} tx  {engine:<7} failed: {result['error']}", flush=True)
                continue
            line = f"{size:>13,} tx  {engine:<7} rfm {result['rfm_s']:7.2f} s  peak {result['peak_mib']:7,.0f} MiB"
            if engine == "duckdb":
                line += (f"  customers {result['customers']:>11,}"
                         f"  fit BG {result['fit_bg_s']:5.2f} s ({result['distinct_bg']:,} distinct)"
                         f"  Pareto {result['fit_pareto_s']:5.2f} s ({result['distinct_pareto']:,})"
                         f"  GG {result['fit_gg_s']:5.2f} s ({result['distinct_gg']:,})"
                         f"  score BG {result['score_bg_per_s'] / 1e6:5.2f}M/s"
                         f"  Pareto {result['score_pareto_per_s'] / 1e6:5.2f}M/s per core"
                         f"  end to end {result['end_to_end_s']:6.1f} s")
            if engine == "spark":
                line += f"  fit BG on collected distinct rows {result['fit_bg_s']:5.2f} s"
            print(line, flush=True)
    print("\ngrowth exponents (slope of log time against log transactions):")
    for engine, key in (("duckdb", "rfm_s"), ("pandas", "rfm_s"), ("spark", "rfm_s"),
                        ("duckdb", "end_to_end_s"), ("duckdb", "fit_pareto_s")):
        points = [(size, results[(engine, size)][key]) for size in sizes
                  if "error" not in results.get((engine, size), {"error": 1})]
        for (n0, t0), (n1, t1) in zip(points, points[1:]):
            slope = math.log(t1 / t0) / math.log(n1 / n0)
            print(f"  {engine:<7} {key:<13} {n0:>12,} -> {n1:>12,}: {slope:5.2f}")


if __name__ == "__main__":
    sys.path.insert(0, str(HERE))
    main()
