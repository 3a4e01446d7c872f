"""NUTS on CDNOW: clvlab against pymc-marketing, same draws and chains, same run; ESS per second.

    make bench-bayes-venv     # pymc-marketing 0.19.2, PyMC 5, Python 3.11: .venv-bench-pymc
    .venv-bench-pymc/bin/python benchmarks/bench_bayes.py [--draws 1000 --tune 1000 --chains 4]
    .venv-bench-pymc/bin/python benchmarks/bench_bayes.py --simulated 100000 --models "" --only clvlab

    # pymc-marketing 1.3, PyMC 6, nutpie, Python 3.12: .venv-bench-pymc6
    "$(pyenv root)/versions/3.12.1/bin/python" -m venv .venv-bench-pymc6
    .venv-bench-pymc6/bin/pip install -e . -r benchmarks/requirements-bayes-pymc6.txt
    .venv-bench-pymc6/bin/python benchmarks/bench_bayes.py [--simulated 100000]

Each library runs in a fresh subprocess; the wall time covers importing the library, building
the model, compiling and sampling (everything a user waits for; only building the data frame
is left out), with chains on min(chains, cores) processes (threads for nutpie). Each side uses
its fastest sampler: pymc-marketing takes nutpie wherever nutpie is installed (--peer-sampler
to choose), clvlab its own default (--clvlab-sampler to choose). ESS is ArviZ's bulk ESS, the
minimum over the parameters; r_hat the maximum. pymc-marketing lives in its own environment
(it does not install beside lifetimes' pins). The same script runs against pymc-marketing 0.19
(ArviZ 0.23, InferenceData) and 1.x (ArviZ 1.x, xarray DataTree).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from importlib.metadata import PackageNotFoundError, version

from _isolated import run_worker

PARETO = dict(r=0.553, alpha=10.58, s=0.606, beta=11.67)
PEER = "pymc-marketing"


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


def installed(package: str) -> str | None:
    try:
        return version(package)
    except PackageNotFoundError:
        return None


def default_peer_sampler() -> str:
    """nutpie where it is installed (pymc-marketing 1.x's fastest sampler), else PyMC's NUTS."""
    return "nutpie" if importlib.util.find_spec("nutpie") is not None else "pymc"


def _dataset(group):
    """An xarray Dataset: a group of an InferenceData (ArviZ 0.x) or ArviZ's answer on one
    already is; a DataTree node (PyMC 6, ArviZ 1.x) is converted."""
    return group.to_dataset() if hasattr(group, "to_dataset") else group


def diagnostics(idata, names: list[str]) -> dict:
    """Minimum bulk ESS, maximum r_hat, divergences and means, for InferenceData or DataTree."""
    try:
        from arviz import ess, rhat
    except ImportError:  # an ArviZ 1.x without the re-exports: they live in arviz_stats
        from arviz_stats import ess, rhat
    posterior = _dataset(idata["posterior"])[names]
    ess_bulk = _dataset(ess(posterior, method="bulk"))
    r_hat = _dataset(rhat(posterior))
    return {"min_ess_bulk": min(float(ess_bulk[n]) for n in names),
            "max_r_hat": max(float(r_hat[n]) for n in names),
            "divergences": int(_dataset(idata["sample_stats"])["diverging"].sum()),
            "means": {n: round(float(posterior[n].mean()), 4) for n in names}}


def clvlab_default_sampler(cls) -> str:
    """The sampler clvlab picks when given no nuts_sampler (for the report only)."""
    import inspect

    import clvlab

    chooser = getattr(clvlab.bayes, "default_nuts_sampler", None)
    if chooser is not None:
        return chooser()
    parameter = inspect.signature(cls).parameters.get("nuts_sampler")
    return "pymc" if parameter is None or parameter.default is None else str(parameter.default)


def worker(library: str, model: str, data: str, draws: int, tune: int, chains: int,
           sampler: str | None) -> dict:
    import warnings

    import pandas as pd

    warnings.simplefilter("ignore")
    # the table was written by the parent (with clvlab): read with pandas alone, so that the
    # clock below covers importing each library, clvlab's import included
    rfm = pd.read_parquet(data)
    names = ["r", "alpha", "a", "b"] if model == "bg-nbd" else ["r", "alpha", "s", "beta"]
    started = time.perf_counter()
    if library == "clvlab":
        import clvlab

        cls = clvlab.BetaGeo if model == "bg-nbd" else clvlab.ParetoNBD
        options = {} if sampler is None else {"nuts_sampler": sampler}
        fitted = cls(method="nuts", draws=draws, tune=tune, chains=chains, random_seed=1,
                     progressbar=False, **options).fit(rfm)
        idata = fitted.idata_
        seconds = time.perf_counter() - started
        if sampler is None:
            sampler = f"{clvlab_default_sampler(cls)} (clvlab default)"
    else:
        from pymc_marketing.clv import BetaGeoModel, ParetoNBDModel

        frame = rfm.rename_axis(None).reset_index(names="customer_id")[
            ["customer_id", "frequency", "recency", "T"]]
        cls = BetaGeoModel if model == "bg-nbd" else ParetoNBDModel
        # Data goes to fit(): pymc-marketing 1.x's constructors take none, and 0.19 takes it
        # there too (its constructor's data is deprecated). Extra keyword arguments reach
        # pm.sample on both. method="mcmc" must be explicit: ParetoNBDModel.fit defaults to MAP.
        idata = cls().fit(frame, method="mcmc", draws=draws, tune=tune, chains=chains,
                          random_seed=1, progressbar=False, nuts_sampler=sampler or "pymc")
        seconds = time.perf_counter() - started
        sampler = sampler or "pymc"
    result = {"seconds": seconds, "sampler": sampler}
    result.update(diagnostics(idata, names))
    return result


def measure(library, model, data, draws, tune, chains, sampler, timeout) -> dict:
    command = [sys.executable, __file__, "--worker", library, model, data,
               "--draws", str(draws), "--tune", str(tune), "--chains", str(chains)]
    if sampler:
        command += ["--worker-sampler", sampler]
    return run_worker(command, timeout)


def header(libraries: list[str], samplers: dict[str, str | None]) -> str:
    packages = ["pymc", "pytensor", "arviz"]
    packages += ["clvlab"] if "clvlab" in libraries else []
    packages += [PEER] if PEER in libraries else []
    if "nutpie" in samplers.values() or installed("nutpie"):
        packages.append("nutpie")
    found = [f"{p} {installed(p) or 'not installed'}" for p in packages]
    return f"Python {platform.python_version()}, " + ", ".join(found)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--tune", type=int, default=1000)
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--simulated", default="0", help="also Pareto/NBD on this many simulated customers")
    parser.add_argument("--only", choices=["clvlab", PEER], default=None)
    parser.add_argument("--models", default="bg-nbd,pareto-nbd")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per measurement")
    parser.add_argument("--clvlab-sampler", default=None,
                        help="clvlab's nuts_sampler (default: clvlab's own default)")
    parser.add_argument("--peer-sampler", default=None,
                        help="pymc-marketing's nuts_sampler (default: nutpie where installed, else pymc)")
    parser.add_argument("--worker", nargs=3, help=argparse.SUPPRESS)
    parser.add_argument("--worker-sampler", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(*args.worker, args.draws, args.tune, args.chains, args.worker_sampler)))
        return
    libraries = [args.only] if args.only else ["clvlab", PEER]
    samplers = {"clvlab": args.clvlab_sampler, PEER: args.peer_sampler or default_peer_sampler()}
    runs = [("cdnow", m) for m in args.models.split(",") if m]
    if int(args.simulated):
        runs.append((args.simulated, "pareto-nbd"))
    tables = tempfile.mkdtemp(prefix="bench-bayes-")
    files = {}
    for data, _ in runs:  # each data set once, as Parquet, so workers need no clvlab to read it
        if data not in files:
            files[data] = os.path.join(tables, f"{data}.parquet")
            table = dataset(data)[["frequency", "recency", "T"]]
            table.attrs = {}
            table.to_parquet(files[data])
    print(header(libraries, samplers))
    print(f"NUTS, {args.chains} chains x ({args.tune} tune + {args.draws} draws); wall time from "
          f"import to posterior in a fresh process; ESS = minimum bulk ESS over the parameters",
          flush=True)
    for data, model in runs:
        label = "CDNOW sample" if data == "cdnow" else f"{int(data):,} simulated customers"
        results = {}
        for library in libraries:
            result = measure(library, model, files[data], args.draws, args.tune, args.chains,
                             samplers[library], args.timeout)
            results[library] = result
            if "error" in result:
                print(f"  {label:<28} {model:<11} {library:<15} failed: {result['error']}", flush=True)
                continue
            rate = result["min_ess_bulk"] / result["seconds"]
            result["ess_per_s"] = rate
            print(f"  {label:<28} {model:<11} {library:<15} {result['seconds']:7.1f} s  "
                  f"min bulk ESS {result['min_ess_bulk']:6.0f}  {rate:7.1f} ESS/s  "
                  f"max r_hat {result['max_r_hat']:.3f}  divergences {result['divergences']}  "
                  f"sampler {result['sampler']}  means {result['means']}", flush=True)
        if len(results) == 2 and all("ess_per_s" in r for r in results.values()):
            ratio = results["clvlab"]["ess_per_s"] / results[PEER]["ess_per_s"]
            print(f"  {'':<28} {model:<11} ESS/s ratio clvlab/{PEER}: {ratio:.2f}", flush=True)
    shutil.rmtree(tables, ignore_errors=True)


if __name__ == "__main__":
    main()
