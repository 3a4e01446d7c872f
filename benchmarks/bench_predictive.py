"""Time and peak memory of the predictive distributions of purchases at 1,000,000 customers.

Synthetic histories from a CDNOW-like fit (``simulate.LOG_MODEL_EXAMPLES``: Pareto/NBD r=0.55,
alpha=10.6, s=0.61, beta=11.7; BG/NBD r=0.24, alpha=4.4, a=0.79, b=2.43), ages uniform over
the first 13 weeks' acquisitions as in CDNOW (T from 26 to 39 weeks), horizon 39 weeks. Each
operation runs twice: once timed, once under tracemalloc for its peak of Python-visible memory
(NumPy's arrays included), so the timing is not slowed by the tracing.

    .venv/bin/python benchmarks/bench_predictive.py [--customers 1000000] [--draws 10]
"""

from __future__ import annotations

import argparse
import gc
import time
import tracemalloc

import numpy as np

from clvlab.data import simulate
from clvlab.models.bg_nbd import BetaGeo
from clvlab.models.pareto_nbd import ParetoNBD


def measure(operation) -> tuple[float, float]:
    """(seconds, peak MiB under tracemalloc) of ``operation()``."""
    gc.collect()
    started = time.perf_counter()
    operation()
    seconds = time.perf_counter() - started
    gc.collect()
    tracemalloc.start()
    operation()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return seconds, peak / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--draws", type=int, default=10, help="simulations per customer")
    parser.add_argument("--horizon", type=float, default=39.0)
    args = parser.parse_args()
    n, t = args.customers, args.horizon
    ages = np.random.default_rng(0).uniform(26.0, 39.0, n)
    models = {
        "pareto-nbd": (ParetoNBD.from_params(**simulate.LOG_MODEL_EXAMPLES["pareto-nbd"]),
                       simulate.pareto_nbd(n, T=ages, seed=1, **simulate.LOG_MODEL_EXAMPLES["pareto-nbd"])),
        "bg-nbd": (BetaGeo.from_params(**simulate.LOG_MODEL_EXAMPLES["bg-nbd"]),
                   simulate.bg_nbd(n, T=ages, seed=2, **simulate.LOG_MODEL_EXAMPLES["bg-nbd"])),
    }
    rows = []
    for name, (model, rfm) in models.items():
        rfm = rfm[["frequency", "recency", "T"]]
        operations = {
            "purchase_quantiles (5/50/95 %)": lambda: model.purchase_quantiles(rfm, t),
            "prediction_interval (90 %)": lambda: model.prediction_interval(rfm, t),
            "purchase_moments": lambda: model.purchase_moments(rfm, t),
            f"draw_future_purchases ({args.draws} draws)":
                lambda: model.draw_future_purchases(rfm, t, n_draws=args.draws, seed=0),
            "expected_purchases (for scale)": lambda: model.expected_purchases(rfm, t),
        }
        for label, operation in operations.items():
            seconds, peak = measure(operation)
            rows.append((name, label, seconds, peak))
            print(f"{name:<11} {label:<36} {seconds:8.2f} s {peak:9.0f} MiB", flush=True)
    print()
    print(f"{n:,} customers, horizon {t:g} weeks")
    print("| model | operation | seconds | peak MiB (tracemalloc) |")
    print("|---|---|---:|---:|")
    for name, label, seconds, peak in rows:
        print(f"| {name} | {label} | {seconds:.2f} | {peak:,.0f} |")


if __name__ == "__main__":
    main()
