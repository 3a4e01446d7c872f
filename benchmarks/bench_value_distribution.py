"""Time and peak memory of ``clvlab.value_distribution`` at 100,000 and 1,000,000 customers.

Each size runs in a fresh process: a synthetic RFM table (Pareto/NBD and Gamma-Gamma at
CDNOW's published parameters, ages uniform on 1-78 weeks), the true models, then
``value_distribution(..., horizon=52, discount_rate=0.0015, n_draws=200)``. Reported: the
seconds of the call, the process's peak resident memory (``ru_maxrss``) and its resident memory
before the call (imports, the table, the compiled kernels warmed on 1,000 customers), so the
difference is what the call added: it simulates ``CHUNK_VALUES`` (customer, draw) pairs at a
time, so the difference should stay flat as the table grows (its output, 10 float columns, is
80 MB at 1M customers).

    .venv/bin/python benchmarks/bench_value_distribution.py [--sizes 100K,1M] [--draws 200]
        [--spend gamma-gamma|lognormal]
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _isolated import run_worker  # noqa: E402

PARAMS = dict(r=0.55, alpha=10.58, s=0.61, beta=11.67)


def parse_size(text: str) -> int:
    text = text.strip().upper()
    scale = {"K": 1_000, "M": 1_000_000}.get(text[-1], 1)
    return int(float(text.rstrip("KM")) * scale)


def resident_mib() -> float:
    """The current resident memory of this process (Linux /proc)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def worker(customers: int, draws: int, spend_name: str) -> dict:
    import numpy as np

    import clvlab
    from clvlab.data import simulate

    rng = np.random.default_rng(0)
    rfm = simulate.pareto_nbd(customers, T=rng.uniform(1, 78, customers), seed=rng, **PARAMS)
    rfm = rfm[["frequency", "recency", "T"]].copy()
    rfm["monetary_value"] = simulate.gamma_gamma_spend(rfm["frequency"], p=6.25, q=3.74,
                                                       v=15.44, seed=rng)["monetary_value"].to_numpy()
    transaction = clvlab.ParetoNBD.from_params(time_unit="W", **PARAMS)
    spend = (clvlab.GammaGamma.from_params(p=6.25, q=3.74, v=15.44) if spend_name == "gamma-gamma"
             else clvlab.LogNormalSpend.from_params(median=26.8, sigma=0.56, tau=0.48))
    options = dict(discount_rate=0.0015, n_draws=draws, seed=1, time_unit="W")
    clvlab.value_distribution(transaction, spend, rfm.iloc[:1_000], 52, **options)  # compile
    before = resident_mib()
    started = time.perf_counter()
    out = clvlab.value_distribution(transaction, spend, rfm, 52, **options)
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"customers": customers, "draws": draws, "spend": spend_name, "seconds": seconds,
            "peak_mib": peak, "before_mib": before, "output_mib": out.memory_usage().sum() / 2**20,
            "clv_mean_total": float(out["clv_mean"].sum())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100K,1M")
    parser.add_argument("--draws", type=int, default=200)
    parser.add_argument("--spend", default="gamma-gamma", choices=["gamma-gamma", "lognormal"])
    parser.add_argument("--worker", nargs=3, help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.worker:
        customers, draws, spend = options.worker
        print(json.dumps(worker(int(customers), int(draws), spend)))
        return
    print(f"{'customers':>10} {'draws':>6} {'seconds':>8} {'peak MiB':>9} {'before':>7} "
          f"{'added':>7} {'output':>7}")
    for size in options.sizes.split(","):
        customers = parse_size(size)
        result = run_worker([sys.executable, __file__, "--worker", str(customers),
                             str(options.draws), options.spend], timeout=3_600)
        if "error" in result:
            print(f"{customers:>10,} error: {result['error']}")
            continue
        print(f"{customers:>10,} {result['draws']:>6} {result['seconds']:>8.1f} "
              f"{result['peak_mib']:>9.0f} {result['before_mib']:>7.0f} "
              f"{result['peak_mib'] - result['before_mib']:>7.0f} {result['output_mib']:>7.0f}")


if __name__ == "__main__":
    main()
