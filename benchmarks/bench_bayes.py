"""NUTS on CDNOW: clvlab against pymc-marketing, same draws and chains, same run; ESS per second.

    make bench-bayes-venv
    .venv-bench-pymc/bin/python benchmarks/bench_bayes.py [--draws 1000 --tune 1000 --chains 4]
    .venv-bench-pymc/bin/python benchmarks/bench_bayes.py --simulated 100000 --models "" --only clvlab

Each library runs in a fresh subprocess; the wall time covers building the model, compiling
and sampling (everything a user waits for), with PyMC's NUTS in both and chains on
min(chains, cores) processes. ESS is ArviZ's bulk ESS, the minimum over the parameters.
pymc-marketing lives in its own environment (it does not install beside lifetimes' pins).
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from _isolated import run_worker

PARETO = dict(r=0.553, alpha=10.58, s=0.606, beta=11.67)


def dataset(name: str):
    import numpy as np

    import clvlab

    if name == "cdnow":
        return clvlab.datasets.load_cdnow_summary()
    n = int(name)
    rng = np.random.default_rng(1)
    T = np.round(rng.uniform(13, 52, n) * 7) / 7
    rfm = clvlab.simulate.pareto_nbd(n, **PARETO, T=T, seed=2)
    rfm["recency"] = np.floor(rfm["recency"] * 7) / 7
    rfm.loc[(rfm["frequency"] > 0) & (rfm["recency"] == 0), "recency"] = 1 / 7
    return rfm[["frequency", "recency", "T"]]


def worker(library: str, model: str, data: str, draws: int, tune: int, chains: int) -> dict:
    import warnings

    import arviz as az

    warnings.simplefilter("ignore")
    rfm = dataset(data)
    names = ["r", "alpha", "a", "b"] if model == "bg-nbd" else ["r", "alpha", "s", "beta"]
    started = time.perf_counter()
    if library == "clvlab":
        import clvlab

        cls = clvlab.BetaGeo if model == "bg-nbd" else clvlab.ParetoNBD
        fitted = cls(method="nuts", draws=draws, tune=tune, chains=chains, random_seed=1,
                     progressbar=False).fit(rfm)
        idata = fitted.idata_
    else:
        from pymc_marketing.clv import BetaGeoModel, ParetoNBDModel

        frame = rfm.reset_index(names="customer_id")[["customer_id", "frequency", "recency", "T"]]
        cls = BetaGeoModel if model == "bg-nbd" else ParetoNBDModel
        peer = cls(data=frame)
        idata = peer.fit(method="mcmc", draws=draws, tune=tune, chains=chains, random_seed=1,
                         progressbar=False)
    seconds = time.perf_counter() - started
    ess = az.ess(idata.posterior[names])
    rhat = az.rhat(idata.posterior[names])
    divergences = int(idata.sample_stats["diverging"].sum())
    return {"seconds": seconds, "min_ess_bulk": float(min(ess[n] for n in names)),
            "max_r_hat": float(max(rhat[n] for n in names)), "divergences": divergences,
            "means": {n: round(float(idata.posterior[n].mean()), 4) for n in names}}


def measure(library, model, data, draws, tune, chains, timeout) -> dict:
    command = [sys.executable, __file__, "--worker", library, model, data,
               "--draws", str(draws), "--tune", str(tune), "--chains", str(chains)]
    return run_worker(command, timeout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--tune", type=int, default=1000)
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--simulated", default="0", help="also Pareto/NBD on this many simulated customers")
    parser.add_argument("--only", choices=["clvlab", "pymc-marketing"], default=None)
    parser.add_argument("--models", default="bg-nbd,pareto-nbd")
    parser.add_argument("--timeout", type=float, default=1800)
    parser.add_argument("--worker", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(*args.worker, args.draws, args.tune, args.chains)))
        return
    libraries = [args.only] if args.only else ["clvlab", "pymc-marketing"]
    runs = [("cdnow", m) for m in args.models.split(",") if m]
    if int(args.simulated):
        runs.append((args.simulated, "pareto-nbd"))
    print(f"NUTS, {args.chains} chains x ({args.tune} tune + {args.draws} draws)")
    for data, model in runs:
        label = "CDNOW sample" if data == "cdnow" else f"{int(data):,} simulated customers"
        results = {}
        for library in libraries:
            result = measure(library, model, data, args.draws, args.tune, args.chains, args.timeout)
            results[library] = result
            if "error" in result:
                print(f"  {label:<28} {model:<11} {library:<15} failed: {result['error']}", flush=True)
                continue
            rate = result["min_ess_bulk"] / result["seconds"]
            result["ess_per_s"] = rate
            print(f"  {label:<28} {model:<11} {library:<15} {result['seconds']:7.1f} s  "
                  f"min bulk ESS {result['min_ess_bulk']:6.0f}  {rate:6.1f} ESS/s  "
                  f"max r_hat {result['max_r_hat']:.3f}  divergences {result['divergences']}  "
                  f"means {result['means']}", flush=True)
        if all("ess_per_s" in r for r in results.values()) and len(results) == 2:
            ratio = results["clvlab"]["ess_per_s"] / results["pymc-marketing"]["ess_per_s"]
            print(f"  {'':<28} {model:<11} clvlab has {ratio:.1f}x the ESS per second", flush=True)


if __name__ == "__main__":
    main()
