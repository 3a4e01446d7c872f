"""Time maximum-likelihood fits: clvlab against lifetimes, same data, same run, ratios printed.

    make bench-venv && .venv-bench/bin/python benchmarks/bench_fit.py
    .venv-bench/bin/python benchmarks/bench_fit.py --customers 1000000 --lifetimes-timeout 600

Data: the CDNOW sample (weeks, 2,357 customers), and simulated customers at daily resolution
(as rfm_summary reports them, in weeks) from the published CDNOW parameters. Each library fits
in a fresh subprocess; the time is the best of three fit calls (clvlab's includes standard
errors from the Hessian; lifetimes' Pareto/NBD gives none). Both libraries' estimates are scored
with the same log-likelihood function, so "equal or better log-likelihood" is compared like
with like. pymc-marketing does not install beside lifetimes' pins, so its MAP fits (BG/NBD and
Pareto/NBD, CDNOW only: one fit each, compilation included, as a user waits for it) run in its
own environment when ``--pymc-python .venv-bench-pymc/bin/python`` is given
(``make bench-bayes-venv`` builds it).

Covariates (issue 22), clvlab against CLVTools, the R peer (no Python peer fits them): when
``Rscript`` is on PATH and CLVTools loads from ``--r-library`` (default $R_LIBS, else /opt/rlib),
``benchmarks/clvtools_apparel.R`` times CLVTools' apparel fits in the same run and the ratios
clvlab/CLVTools of CPU and wall time are printed (its header says how to install CLVTools);
otherwise CLVTools' time may be a figure given with ``--clvtools-seconds``:
Pareto/NBD with Gender and Channel in both processes on CLVTools' apparel data (weeks,
calibration end 2006-12-31, ``--apparel-dir``), on ``--covariate-customers`` simulated
customers with two 0/1 covariates in both processes, and on ``--continuous-customers`` with
one normal covariate in both processes (every customer a covariate group of their own). Each
is the least wall time and, apart, the least CPU time (``time.process_time``, all threads) of
several fits (10 on the apparel data, 3 on the binary covariates, 1 with the continuous one); ``--only covariates`` skips the lifetimes comparison, which needs ``.venv-bench``:

    .venv/bin/python benchmarks/bench_fit.py --only covariates
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from _isolated import run_worker

BG = dict(r=0.243, alpha=4.414, a=0.793, b=2.426)
PARETO = dict(r=0.553, alpha=10.58, s=0.606, beta=11.67)
SPEND = dict(p=6.25, q=3.74, v=15.44)
MODELS = ["bg-nbd", "pareto-nbd", "gamma-gamma"]
APPAREL = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "apparel"
# the simulated covariate effects: purchase and dropout move both ways, as on real data
BINARY = {"purchase": {"x1": 0.3, "x2": -0.2}, "dropout": {"x1": -0.4, "x2": 0.5}}
CONTINUOUS = {"purchase": {"z": 0.3}, "dropout": {"z": -0.3}}
# CLVTools 0.12.1 on the apparel data, Gender and Channel in both processes (its vignette's fit)
CLVTOOLS_APPAREL_LL = -5821.0627
CLVTOOLS_SCRIPT = Path(__file__).resolve().parent / "clvtools_apparel.R"
# how clvtools_apparel.R's measurements were set up (Debian bookworm, as root)
CLVTOOLS_INSTALL = """\
      apt-get install -y --no-install-recommends r-base-core r-cran-data.table r-cran-digest \\
        r-cran-formula r-cran-ggplot2 r-cran-lubridate r-cran-numderiv r-cran-matrix r-cran-mass \\
        r-cran-optimx r-cran-rcpp r-cran-rcpparmadillo r-cran-rcppgsl r-cran-testthat \\
        libgsl-dev gfortran liblapack-dev libblas-dev
      git clone https://github.com/bachmannpatrick/CLVTools /tmp/clvtools-src   # v0.12.1
      mkdir -p /opt/rlib && R CMD INSTALL --no-docs --no-multiarch --library=/opt/rlib /tmp/clvtools-src"""


def dataset(name: str):
    import numpy as np

    import clvlab

    if name == "cdnow":
        log = clvlab.datasets.load_cdnow(sample=True)
        return clvlab.rfm_summary(log, amount_col="amount", time_unit="W",
                                  calibration_end="1997-09-30", observation_end="1998-06-30")
    n = int(name)
    rng = np.random.default_rng(1)
    T = np.round(rng.uniform(13, 52, n) * 7) / 7
    rfm = clvlab.simulate.pareto_nbd(n, **PARETO, T=T, seed=2)
    rfm["recency"] = np.floor(rfm["recency"] * 7) / 7
    rfm.loc[(rfm["frequency"] > 0) & (rfm["recency"] == 0), "recency"] = 1 / 7
    rfm["monetary_value"] = clvlab.simulate.gamma_gamma_spend(rfm["frequency"], **SPEND, seed=3)[
        "monetary_value"].round(2).clip(lower=0.01)
    return rfm[["frequency", "recency", "T", "monetary_value"]]


def worker(library: str, model: str, data: str, repeats: int = 3) -> dict:
    """Best of ``repeats`` fits in this process (the first call pays one-time import costs)."""
    import numpy as np

    import clvlab

    rfm = dataset(data)
    ours = {"bg-nbd": clvlab.BetaGeo, "pareto-nbd": clvlab.ParetoNBD,
            "gamma-gamma": clvlab.GammaGamma}[model]
    best = float("inf")
    if library == "pymc-marketing":
        repeats = 1  # tens of seconds a fit, most of it graph compilation
    for _ in range(repeats):
        if library == "pymc-marketing":
            from pymc_marketing.clv import BetaGeoModel, ParetoNBDModel

            frame = rfm.reset_index(names="customer_id")[["customer_id", "frequency", "recency", "T"]]
            cls = BetaGeoModel if model == "bg-nbd" else ParetoNBDModel
            started = time.perf_counter()
            peer = cls(data=frame)
            peer.fit(method="map", progressbar=False)
            best = min(best, time.perf_counter() - started)
            params = np.array([float(peer.idata.posterior[n].mean()) for n in ours.param_names])
        elif library == "clvlab":
            started = time.perf_counter()
            fitted = ours().fit(rfm)
            best = min(best, time.perf_counter() - started)
            params = fitted.params_.to_numpy()
        else:
            from lifetimes import BetaGeoFitter, GammaGammaFitter, ParetoNBDFitter

            repeaters = rfm[rfm["frequency"] > 0]
            started = time.perf_counter()
            if model == "gamma-gamma":
                fitted = GammaGammaFitter().fit(repeaters["frequency"], repeaters["monetary_value"])
            else:
                cls = BetaGeoFitter if model == "bg-nbd" else ParetoNBDFitter
                fitted = cls().fit(rfm["frequency"], rfm["recency"], rfm["T"])
            best = min(best, time.perf_counter() - started)
            params = np.asarray(fitted.params_, dtype=float)
            if model == "pareto-nbd":  # lifetimes orders them r, alpha, s, beta as we do
                params = params[[0, 1, 2, 3]]
    # the log-likelihood of either library's estimates, by the same (clvlab's) function
    reference = ours.from_params(**dict(zip(ours.param_names, params)))
    rows = rfm[rfm["frequency"] > 0] if model == "gamma-gamma" else rfm
    data_arrays = reference._data(rows)
    values, _ = ours._loglik(params, data_arrays) if model != "pareto-nbd" else \
        ours._loglik(params, data_arrays, gradient=False)
    result = {"seconds": best, "log_likelihood": float(values.sum()),
              "params": [round(float(v), 4) for v in params]}
    if library == "clvlab":
        result["distinct_rows"] = fitted.n_distinct_rows_
    return result


def covariate_dataset(data: str, apparel_dir: str | Path = APPAREL):
    """(RFM table with the covariate columns, their names) of one covariate benchmark."""
    import numpy as np
    import pandas as pd

    import clvlab

    if data == "apparel":
        folder = Path(apparel_dir)
        log = pd.read_csv(folder / "apparel_transactions.csv", parse_dates=["Date"])
        covariates = pd.read_csv(folder / "apparel_static_covariates.csv").set_index("Id")
        rfm = clvlab.rfm_summary(log, customer_col="Id", date_col="Date", time_unit="W",
                                 calibration_end="2006-12-31")
        return rfm[["frequency", "recency", "T"]].join(covariates), ["Gender", "Channel"]
    kind, n = data.split(":")
    n = int(n)
    rng = np.random.default_rng(1)
    T = np.round(rng.uniform(13, 52, n) * 7) / 7
    if kind == "binary":
        rfm = clvlab.simulate.with_covariates("pareto-nbd", n, params=PARETO, coefficients=BINARY,
                                              T=T, seed=2)
    else:
        attributes = pd.DataFrame({"z": rng.normal(size=n)}, index=pd.RangeIndex(n, name="customer_id"))
        rfm = clvlab.simulate.with_covariates("pareto-nbd", n, params=PARETO, coefficients=CONTINUOUS,
                                              attributes=attributes, T=T, seed=2)
    rfm["recency"] = np.floor(rfm["recency"] * 7) / 7  # daily resolution, as in dataset()
    rfm.loc[(rfm["frequency"] > 0) & (rfm["recency"] == 0), "recency"] = 1 / 7
    names = list(BINARY["purchase"]) if kind == "binary" else ["z"]
    return rfm[["frequency", "recency", "T", *names]], names


def covariate_worker(data: str, apparel_dir: str, repeats: int) -> dict:
    """Best of ``repeats`` Pareto/NBD fits with covariates in both processes: wall and CPU
    time apart. A first, untimed fit on the apparel data pays numba's compilation and the
    one-time costs of the imports (a fit on a million rows would take longer than them)."""
    import clvlab

    warm, warm_names = covariate_dataset("apparel", apparel_dir) if Path(apparel_dir).exists() \
        else covariate_dataset("binary:1000")
    clvlab.ParetoNBD(purchase_covariates=warm_names, dropout_covariates=warm_names).fit(warm)

    rfm, names = covariate_dataset(data, apparel_dir)
    wall = cpu = float("inf")
    for _ in range(repeats):
        started, started_cpu = time.perf_counter(), time.process_time()
        fitted = clvlab.ParetoNBD(purchase_covariates=names, dropout_covariates=names).fit(rfm)
        wall = min(wall, time.perf_counter() - started)
        cpu = min(cpu, time.process_time() - started_cpu)
    groups = len(rfm[names].drop_duplicates())
    return {"seconds": wall, "cpu_seconds": cpu, "log_likelihood": float(fitted.log_likelihood_),
            "params": {k: round(float(v), 4) for k, v in fitted.params_.items()},
            "distinct_rows": fitted.n_distinct_rows_, "groups": groups, "customers": len(rfm)}


def clvtools_apparel(args) -> dict:
    """CLVTools' apparel fits timed by clvtools_apparel.R: {case: {key: value}}, or {"error": why}.

    CLVTools is built with OpenMP (through Armadillo): on a loaded two-core machine its
    covariate fit from the vignette's start values took 8-18 s with OpenMP's default threads
    against under 1 s with one (waiting threads spinning is the likely cause), so the threads
    are capped at ``--clvtools-threads`` (1 unless told; 0 leaves OpenMP's default)."""
    if shutil.which("Rscript") is None:
        return {"error": "Rscript is not on PATH"}
    env = dict(os.environ, R_LIBS=args.r_library, TZ=os.environ.get("TZ", "UTC"))
    if args.clvtools_threads:
        env["OMP_NUM_THREADS"] = str(args.clvtools_threads)
    loads = subprocess.run(["Rscript", "-e", "library(CLVTools)"], env=env, capture_output=True, text=True)
    if loads.returncode != 0:
        return {"error": f"CLVTools does not load from {args.r_library}"}
    try:
        done = subprocess.run(["Rscript", str(CLVTOOLS_SCRIPT), str(args.apparel_dir),
                               str(args.clvtools_repetitions)], env=env, capture_output=True,
                              text=True, timeout=args.covariate_timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"over {args.covariate_timeout:.0f} s"}
    if done.returncode != 0:
        return {"error": ((done.stderr.strip().splitlines() or ["?"])[-1])[:160]}
    cases = {}
    for line in done.stdout.splitlines():
        library, case, *fields = line.split(" ")
        if library == "clvtools":
            cases[case] = dict(field.split("=", 1) for field in fields)
    return cases


def print_clvtools(args, ours: dict) -> None:
    """CLVTools' apparel fits beside clvlab's (``ours``), or how to install CLVTools."""
    peer = clvtools_apparel(args)
    if "error" in peer:
        print(f"    CLVTools not measured: {peer['error']}. To install it:\n{CLVTOOLS_INSTALL}")
        return
    threads = args.clvtools_threads or "default"
    print(f"    CLVTools {peer['setup']['version']} (R {peer['setup']['R']}, OpenMP threads "
          f"{threads}; least wall and least CPU time of n fits, summary built inside the fit)")
    for case, label in [("pnbd_static", "vignette start values"), ("pnbd_static_default", "default start")]:
        fit = peer[case]
        cpu, wall = float(fit["cpu"]), float(fit["wall"])
        print(f"      pnbd + Gender, Channel, {label}: {wall:.3f} s wall, {cpu:.3f} s CPU "
              f"(n={fit['n']})  log-likelihood {float(fit['ll']):.4f}  "
              f"clvlab/CLVTools: CPU {ours['cpu_seconds'] / cpu:.3f}, wall {ours['seconds'] / wall:.3f}")
    for case, label in [("pnbd", "pnbd, no covariates, vignette start"),
                        ("pnbd_default", "pnbd, no covariates, default start"),
                        ("bgnbd_static", "bgnbd + Gender, Channel, default start")]:
        fit = peer[case]
        shown = {k: v for k, v in fit.items() if k not in ("cpu", "wall", "n", "ll")}
        print(f"      {label}: {float(fit['wall']):.3f} s wall, {float(fit['cpu']):.3f} s CPU "
              f"(n={fit['n']})  log-likelihood {float(fit['ll']):.4f}  {shown}", flush=True)


def covariates_section(args) -> None:
    print("\nPareto/NBD with covariates in both processes (clvlab; least wall and least CPU time)")
    # (data, label, fits): a fit on the apparel data takes tens of milliseconds, so timings on
    # a shared machine need many tries; one customer per covariate group takes minutes a fit
    runs = [("apparel", "CLVTools' apparel data, Gender + Channel", 10)]
    if int(args.covariate_customers):
        runs.append((f"binary:{args.covariate_customers}",
                     f"{int(args.covariate_customers):,} simulated, two 0/1 covariates", 3))
    if int(args.continuous_customers):
        runs.append((f"continuous:{args.continuous_customers}",
                     f"{int(args.continuous_customers):,} simulated, one normal covariate", 1))
    for data, label, fits in runs:
        if data == "apparel" and not (Path(args.apparel_dir) / "apparel_transactions.csv").exists():
            print(f"  {label}: skipped, no apparel data in {args.apparel_dir} (--apparel-dir)")
            continue
        result = run_worker([sys.executable, __file__, "--covariate-worker", data, str(fits),
                             "--apparel-dir", str(args.apparel_dir)], args.covariate_timeout)
        print(f"  {label} (best of {fits})")
        if "error" in result:
            print(f"    failed: {result['error']}")
            continue
        print(f"    {result['seconds']:8.3f} s wall, {result['cpu_seconds']:.3f} s CPU  "
              f"log-likelihood {result['log_likelihood']:.4f}  ({result['customers']:,} customers, "
              f"{result['distinct_rows']:,} distinct rows, {result['groups']:,} covariate groups)")
        print(f"    params {result['params']}")
        if data == "apparel":
            print(f"    CLVTools' log-likelihood {CLVTOOLS_APPAREL_LL:.4f} (clvlab "
                  f"{result['log_likelihood'] - CLVTOOLS_APPAREL_LL:+.4f})")
            print_clvtools(args, result)
            if args.clvtools_seconds:
                print(f"    CLVTools {args.clvtools_seconds:.3f} s CPU (given): clvlab is "
                      f"{args.clvtools_seconds / result['cpu_seconds']:.1f}x faster in CPU time",
                      flush=True)
        elif data.startswith("binary"):
            verdict = "within" if result["seconds"] < 10 else "over"
            print(f"    {verdict} the 10 s goal for a million customers", flush=True)


def measure(library: str, model: str, data: str, timeout: float, python: str | None = None) -> dict:
    command = [python or sys.executable, __file__, "--worker", library, model, data]
    return run_worker(command, timeout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", default="1000000", help="simulated customers (0 to skip)")
    parser.add_argument("--lifetimes-timeout", type=float, default=600)
    parser.add_argument("--pymc-python", default=None,
                        help="python of an environment with pymc-marketing: also time its MAP fits")
    parser.add_argument("--only", choices=["plain", "covariates"], default=None,
                        help="run one section: the lifetimes comparison or the covariate fits")
    parser.add_argument("--covariate-customers", default="1000000",
                        help="simulated customers with two 0/1 covariates (0 to skip)")
    parser.add_argument("--continuous-customers", default="100000",
                        help="simulated customers with one continuous covariate (0 to skip)")
    parser.add_argument("--apparel-dir", default=str(APPAREL),
                        help="folder of CLVTools' apparel CSV files")
    parser.add_argument("--clvtools-seconds", type=float, default=None,
                        help="CLVTools' CPU time of the apparel fit, measured elsewhere: print the ratio")
    parser.add_argument("--r-library", default=os.environ.get("R_LIBS") or "/opt/rlib",
                        help="R library holding CLVTools (default $R_LIBS, else /opt/rlib)")
    parser.add_argument("--clvtools-repetitions", type=int, default=10,
                        help="timed CLVTools fits per case (at least 3 once a case has taken a minute)")
    parser.add_argument("--clvtools-threads", type=int, default=1,
                        help="OMP_NUM_THREADS for CLVTools (0: OpenMP's default)")
    parser.add_argument("--worker", nargs=3, help=argparse.SUPPRESS)
    parser.add_argument("--covariate-timeout", type=float, default=1200,
                        help="seconds allowed to each covariate benchmark (all its fits)")
    parser.add_argument("--covariate-worker", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker or args.covariate_worker:
        import warnings

        warnings.simplefilter("ignore")
        print(json.dumps(worker(*args.worker) if args.worker
                         else covariate_worker(args.covariate_worker[0], args.apparel_dir,
                                              int(args.covariate_worker[1]))))
        return
    import clvlab

    print(f"clvlab {clvlab.__version__}, python {sys.version.split()[0]}")
    if args.only != "covariates":
        plain_section(args)
    if args.only != "plain":
        covariates_section(args)


def plain_section(args) -> None:
    datasets = ["cdnow"] + ([args.customers] if int(args.customers) else [])
    for data in datasets:
        label = "CDNOW sample" if data == "cdnow" else f"{int(data):,} simulated customers"
        print(f"\n{label}")
        for model in MODELS:
            ours = measure("clvlab", model, data, 600)
            peer = measure("lifetimes", model, data, args.lifetimes_timeout)
            print(f"  {model:<12} clvlab {_describe(ours)}")
            print(f"  {'':<12} lifetimes {_describe(peer)}")
            if "seconds" in ours and "seconds" in peer:
                print(f"  {'':<12} clvlab is {peer['seconds'] / ours['seconds']:.1f}x faster", flush=True)
            if args.pymc_python and data == "cdnow" and model != "gamma-gamma":
                pmm = measure("pymc-marketing", model, data, 900, args.pymc_python)
                print(f"  {'':<12} pymc-marketing MAP {_describe(pmm)}")
                if "seconds" in ours and "seconds" in pmm:
                    print(f"  {'':<12} clvlab is {pmm['seconds'] / ours['seconds']:.0f}x faster "
                          "than pymc-marketing's MAP", flush=True)


def _describe(result: dict) -> str:
    if "error" in result:
        return f"failed: {result['error']}"
    text = f"{result['seconds']:8.3f} s  log-likelihood {result['log_likelihood']:.2f}  params {result['params']}"
    if "distinct_rows" in result:
        text += f"  ({result['distinct_rows']:,} distinct rows)"
    return text


if __name__ == "__main__":
    main()
