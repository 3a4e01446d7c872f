"""Peak memory of per-customer posterior predictions: clvlab against pymc-marketing.

    make bench-bayes-venv
    .venv-bench-pymc/bin/python benchmarks/bench_posterior_memory.py
    .venv-bench-pymc/bin/python benchmarks/bench_posterior_memory.py --clvlab-sizes 1000000 --only clvlab

Both libraries fit BG/NBD by NUTS on the CDNOW sample (4 chains x 1000 draws), then predict the
expected purchases in the next 39 weeks, with a 94% interval per customer, for N simulated
customers (weekly data, ages 13 to 78 weeks) using every posterior draw (4,000). Each library runs
in a fresh process per size; the figure is the process's peak resident memory (ru_maxrss), and a
process that exceeds --memory-limit-gib of address space fails with MemoryError instead of
bringing the machine down.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time

from _isolated import run_worker

BG = dict(r=0.243, alpha=4.414, a=0.793, b=2.426)


def simulated(n: int):
    import numpy as np

    import clvlab

    rng = np.random.default_rng(1)
    T = np.round(rng.uniform(13, 78, n))
    rfm = clvlab.simulate.bg_nbd(n, **BG, T=T, seed=2)
    rfm["recency"] = np.floor(rfm["recency"])
    rfm.loc[(rfm["frequency"] > 0) & (rfm["recency"] == 0), "recency"] = 1.0
    return rfm[["frequency", "recency", "T"]]


def worker(library: str, n: int, draws: int) -> dict:
    import warnings

    import numpy as np

    import clvlab

    warnings.simplefilter("ignore")
    cdnow = clvlab.datasets.load_cdnow_summary()
    rfm = simulated(n)
    if library == "clvlab":
        model = clvlab.BetaGeo(method="nuts", draws=draws, chains=4, random_seed=1,
                               progressbar=False).fit(cdnow)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        started = time.perf_counter()
        result = model.posterior_predict("expected_purchases", rfm, t=39, n_draws=4 * draws)
        interval = result[["3%", "97%"]].to_numpy()
    else:
        from pymc_marketing.clv import BetaGeoModel

        frame = cdnow.reset_index(names="customer_id")[["customer_id", "frequency", "recency", "T"]]
        peer = BetaGeoModel(data=frame)
        peer.fit(method="mcmc", draws=draws, chains=4, random_seed=1, progressbar=False)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        started = time.perf_counter()
        data = rfm.reset_index(names="customer_id")
        data["customer_id"] = np.arange(len(data))
        expected = peer.expected_purchases(data, future_t=39)
        stacked = expected.stack(sample=("chain", "draw")).transpose("customer_id", "sample")
        interval = np.quantile(stacked.to_numpy(), [0.03, 0.97], axis=1).T
    seconds = time.perf_counter() - started
    if not np.all(np.isfinite(interval)):
        raise RuntimeError("non-finite interval")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    return {"seconds": seconds, "peak_mib": peak / 1024, "before_mib": before / 1024,
            "median_width": float(np.median(interval[:, 1] - interval[:, 0]))}


def measure(library: str, n: int, draws: int, limit_gib: float, timeout: float) -> dict:
    command = [sys.executable, __file__, "--worker", library, str(n), "--draws", str(draws)]

    def cap_memory():  # runs in the child: MemoryError instead of the kernel's OOM killer
        limit = int(limit_gib * 2**30)
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    return run_worker(command, timeout, preexec_fn=cap_memory)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clvlab-sizes", default="200000,1000000")
    parser.add_argument("--pymc-sizes", default="50000,100000,200000")
    parser.add_argument("--draws", type=int, default=1000, help="draws per chain (4 chains)")
    parser.add_argument("--only", choices=["clvlab", "pymc-marketing"], default=None)
    parser.add_argument("--memory-limit-gib", type=float, default=18)
    parser.add_argument("--timeout", type=float, default=1200)
    parser.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker[0], int(args.worker[1]), args.draws)))
        return
    plan = []
    if args.only in (None, "clvlab"):
        plan += [("clvlab", int(n)) for n in args.clvlab_sizes.split(",") if n]
    if args.only in (None, "pymc-marketing"):
        plan += [("pymc-marketing", int(n)) for n in args.pymc_sizes.split(",") if n]
    print(f"BG/NBD expected purchases in 39 weeks with a 94% interval, {4 * args.draws} posterior "
          f"draws, address space capped at {args.memory_limit_gib:g} GiB")
    for library, n in plan:
        result = measure(library, n, args.draws, args.memory_limit_gib, args.timeout)
        if "error" in result:
            print(f"  {library:<15} {n:>10,} customers  failed: {result['error']}", flush=True)
            continue
        print(f"  {library:<15} {n:>10,} customers  {result['seconds']:7.1f} s  peak "
              f"{result['peak_mib']:8,.0f} MiB (after the fit {result['before_mib']:6,.0f} MiB)  "
              f"median interval width {result['median_width']:.3f}", flush=True)


if __name__ == "__main__":
    main()
