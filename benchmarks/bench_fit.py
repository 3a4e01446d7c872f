"""Time maximum-likelihood fits: clvlab against lifetimes, same data, same run, ratios printed.

    make bench-venv && .venv-bench/bin/python benchmarks/bench_fit.py
    .venv-bench/bin/python benchmarks/bench_fit.py --customers 1000000 --lifetimes-timeout 600

Data: the CDNOW sample (weeks, 2,357 customers), and simulated customers at daily resolution
(as rfm_summary reports them, in weeks) from the published CDNOW parameters. Each library fits
in a fresh subprocess; the time is the best of nine fit calls on CDNOW (``--repeats``; with
``--rounds`` that many fresh processes a library, alternating with the other's, pooled) and of
three on the simulated customers, the median beside it (wall time, and apart CPU time; on a
shared machine the least is a quiet moment, the median the typical fit; clvlab's includes standard
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

Time-varying covariates (issue 31), ``--only time-varying``: the Pareto/NBD on CLVTools' apparel
data with High.Season (weekly, from apparel_dyncov.csv.gz), Gender and Channel, two specs: the
identified one (all three in the purchase process, Gender and Channel in the dropout process)
and CLVTools' vignette spec (all three in both; clvlab's fit warns that dropout.High.Season runs
off towards -inf, the warning is recorded, not shown). clvlab's time is building the covariate
paths plus the fit, the least wall and, apart, the least CPU time of ``--tv-repeats`` tries in
a fresh process after one untimed try (numba's compilation, first-call costs). CLVTools' fits
of the vignette spec (``--clvtools-dyncov-fits``; its default optimizer Nelder-Mead and L-BFGS-B,
both from the vignette's start values) run once each through ``benchmarks/clvtools_dyncov.R``
with OMP_NUM_THREADS=1 (minutes each; its header says how to install CLVTools), or their JSON
is read from ``--clvtools-dyncov-json``, or CLVTools' CPU seconds are given with
``--clvtools-dyncov-seconds``. Then ``bench_tv_scale.py`` (``--tv-customers``, 0 to skip):
100,000 customers x 104 weeks with a per-customer weekly promotion, each stage (rfm_summary,
covariate_paths with the pandas and the DuckDB engine, the fits) timed with its peak memory:

    .venv/bin/python benchmarks/bench_fit.py --only time-varying
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
# fits timed per library, model and data set (the least of them counts): a CDNOW fit takes
# milliseconds, where one preemption on a shared machine is as long as the fit
FIT_REPEATS = {"cdnow": 9}
# issue 33: on CDNOW, clvlab at least this many times faster than lifetimes (wall time)
PLAIN_GOALS = {"bg-nbd": 20.0, "pareto-nbd": 50.0}
APPAREL = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "apparel"
# the simulated covariate effects: purchase and dropout move both ways, as on real data
BINARY = {"purchase": {"x1": 0.3, "x2": -0.2}, "dropout": {"x1": -0.4, "x2": 0.5}}
CONTINUOUS = {"purchase": {"z": 0.3}, "dropout": {"z": -0.3}}
# CLVTools 0.12.1 on the apparel data, Gender and Channel in both processes (its vignette's fit)
CLVTOOLS_APPAREL_LL = -5821.0627
CLVTOOLS_SCRIPT = Path(__file__).resolve().parent / "clvtools_apparel.R"
CLVTOOLS_DYNCOV_SCRIPT = Path(__file__).resolve().parent / "clvtools_dyncov.R"
# time-varying Pareto/NBD on the apparel data: (purchase covariates, dropout covariates)
TV_SPECS = {
    "identified": (["High.Season", "Gender", "Channel"], ["Gender", "Channel"]),
    "vignette": (["High.Season", "Gender", "Channel"], ["High.Season", "Gender", "Channel"]),
}
TV_GOAL_SECONDS, TV_GOAL_RATIO = 5.0, 50.0  # issue 31: under 5 s, at least 50x faster than CLVTools
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


def worker(library: str, model: str, data: str, repeats: int | str | None = None) -> dict:
    """The least wall time and, apart, the least CPU time of ``repeats`` fits in this process
    (``FIT_REPEATS`` unless given; the first call pays one-time import costs), and the median
    of each (on a shared machine the least is one quiet moment, the median the typical fit)."""
    import numpy as np

    import clvlab

    rfm = dataset(data)
    ours = {"bg-nbd": clvlab.BetaGeo, "pareto-nbd": clvlab.ParetoNBD,
            "gamma-gamma": clvlab.GammaGamma}[model]
    walls, cpus = [], []
    repeats = int(repeats or 0) or FIT_REPEATS.get(data, 3)
    if library == "pymc-marketing":
        repeats = 1  # tens of seconds a fit, most of it graph compilation
    for _ in range(repeats):
        if library == "pymc-marketing":
            from pymc_marketing.clv import BetaGeoModel, ParetoNBDModel

            frame = rfm.reset_index(names="customer_id")[["customer_id", "frequency", "recency", "T"]]
            cls = BetaGeoModel if model == "bg-nbd" else ParetoNBDModel
            started, started_cpu = time.perf_counter(), time.process_time()
            peer = cls(data=frame)
            peer.fit(method="map", progressbar=False)
            params = np.array([float(peer.idata.posterior[n].mean()) for n in ours.param_names])
        elif library == "clvlab":
            started, started_cpu = time.perf_counter(), time.process_time()
            fitted = ours().fit(rfm)
            params = fitted.params_.to_numpy()
        else:
            from lifetimes import BetaGeoFitter, GammaGammaFitter, ParetoNBDFitter

            repeaters = rfm[rfm["frequency"] > 0]
            started, started_cpu = time.perf_counter(), time.process_time()
            if model == "gamma-gamma":
                fitted = GammaGammaFitter().fit(repeaters["frequency"], repeaters["monetary_value"])
            else:
                cls = BetaGeoFitter if model == "bg-nbd" else ParetoNBDFitter
                fitted = cls().fit(rfm["frequency"], rfm["recency"], rfm["T"])
            params = np.asarray(fitted.params_, dtype=float)
            if model == "pareto-nbd":  # lifetimes orders them r, alpha, s, beta as we do
                params = params[[0, 1, 2, 3]]
        walls.append(time.perf_counter() - started)
        cpus.append(time.process_time() - started_cpu)
    # the log-likelihood of either library's estimates, by the same (clvlab's) function
    reference = ours.from_params(**dict(zip(ours.param_names, params)))
    rows = rfm[rfm["frequency"] > 0] if model == "gamma-gamma" else rfm
    data_arrays = reference._data(rows)
    values, _ = ours._loglik(params, data_arrays) if model != "pareto-nbd" else \
        ours._loglik(params, data_arrays, gradient=False)
    result = {"seconds": min(walls), "cpu_seconds": min(cpus), "repeats": repeats,
              "median_seconds": float(np.median(walls)), "median_cpu_seconds": float(np.median(cpus)),
              "walls": walls, "cpus": cpus,
              "log_likelihood": float(values.sum()), "params": [round(float(v), 4) for v in params]}
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


def time_varying_worker(apparel_dir: str, repeats: int) -> dict:
    """Per spec of TV_SPECS: the least wall and, apart, least CPU time of building the covariate
    paths plus the fit, over ``repeats`` tries after one untimed one (numba's compilation)."""
    import textwrap
    import warnings

    import pandas as pd

    import clvlab

    folder = Path(apparel_dir)
    log = pd.read_csv(folder / "apparel_transactions.csv", parse_dates=["Date"])
    panel = pd.read_csv(folder / "apparel_dyncov.csv.gz", parse_dates=["Cov.Date"])
    attributes = panel.groupby("Id")[["Gender", "Channel"]].first()
    rfm = clvlab.rfm_summary(log, customer_col="Id", date_col="Date", amount_col="Price",
                             time_unit="W", calibration_end="2006-12-31",
                             customer_attributes=attributes)

    def paths_and_fit(purchase: list, dropout: list):
        paths = clvlab.covariate_paths(panel, rfm, transactions=log, customer_col="Id",
                                       period_col="Cov.Date", covariates=["High.Season"])
        built = time.perf_counter()
        model = clvlab.ParetoNBD(purchase_covariates=purchase, dropout_covariates=dropout)
        return paths, model.fit(rfm, covariate_paths=paths), built

    results = {}
    for spec, (purchase, dropout) in TV_SPECS.items():
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            started = time.perf_counter()
            paths_and_fit(purchase, dropout)
            first = time.perf_counter() - started
        wall = cpu = paths_wall = fit_wall = float("inf")
        for _ in range(repeats):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                started, started_cpu = time.perf_counter(), time.process_time()
                paths, fitted, built = paths_and_fit(purchase, dropout)
                done, done_cpu = time.perf_counter(), time.process_time()
            wall, cpu = min(wall, done - started), min(cpu, done_cpu - started_cpu)
            paths_wall, fit_wall = min(paths_wall, built - started), min(fit_wall, done - built)
        results[spec] = {
            "seconds": wall, "cpu_seconds": cpu, "paths_seconds": paths_wall, "fit_seconds": fit_wall,
            "first_seconds": first, "log_likelihood": float(fitted.log_likelihood_),
            "converged": fitted.convergence_.get("converged"), "pieces": len(paths.table),
            "customers": len(rfm), "params": {k: round(float(v), 4) for k, v in fitted.params_.items()},
            "params_full": {k: float(v) for k, v in fitted.params_.items()},
            "warnings": sorted({textwrap.shorten(str(w.message), 150) for w in caught})}
    return results


def _clvtools_env(args) -> dict | str:
    """The environment Rscript runs CLVTools in, or why it cannot."""
    if shutil.which("Rscript") is None:
        return "Rscript is not on PATH"
    env = dict(os.environ, R_LIBS=args.r_library, TZ=os.environ.get("TZ", "UTC"))
    if args.clvtools_threads:
        env["OMP_NUM_THREADS"] = str(args.clvtools_threads)
    loads = subprocess.run(["Rscript", "-e", "library(CLVTools)"], env=env, capture_output=True, text=True)
    return env if loads.returncode == 0 else f"CLVTools does not load from {args.r_library}"


def clvtools_ll_at(args, params: dict) -> float | str:
    """CLVTools' log-likelihood (clvtools_dyncov.R --ll-at) at clvlab's estimates ``params``
    (clvlab's names), or why it was not computed."""
    import tempfile

    env = _clvtools_env(args)
    if isinstance(env, str):
        return env
    names = {k.replace("purchase.", "trans.").replace("dropout.", "life."): v for k, v in params.items()}
    names.setdefault("life.High.Season", 0.0)  # the identified spec leaves it out of the dropout
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "params.json").write_text(json.dumps(names))
        done = subprocess.run(["Rscript", str(CLVTOOLS_DYNCOV_SCRIPT), "--data", str(args.apparel_dir),
                               "--ll-at", str(Path(folder) / "params.json"), str(Path(folder) / "ll.csv")],
                              env=env, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        return ((done.stderr.strip().splitlines() or ["?"])[-1])[:160]
    return float(json.loads(done.stdout)["total_ll"])


def clvtools_dyncov(args) -> dict:
    """CLVTools' time-varying fits ({"fits": {name: {...}}, "setup": ...} as clvtools_dyncov.R
    prints them), from --clvtools-dyncov-json or run now; or {"error": why}."""
    if args.clvtools_dyncov_json:
        try:
            return json.loads(Path(args.clvtools_dyncov_json).read_text())
        except (OSError, ValueError) as error:
            return {"error": f"cannot read {args.clvtools_dyncov_json}: {error}"}
    env = _clvtools_env(args)
    if isinstance(env, str):
        return {"error": env}
    command = ["Rscript", str(CLVTOOLS_DYNCOV_SCRIPT), "--data", str(args.apparel_dir),
               "--fits", args.clvtools_dyncov_fits]
    print(f"    running {' '.join(command[1:])} (OMP_NUM_THREADS="
          f"{env.get('OMP_NUM_THREADS', 'default')}; minutes a fit)", flush=True)
    try:
        done = subprocess.run(command, env=env, capture_output=True, text=True,
                              timeout=args.clvtools_dyncov_timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"over {args.clvtools_dyncov_timeout:.0f} s (--clvtools-dyncov-timeout)"}
    if done.returncode != 0:
        return {"error": ((done.stderr.strip().splitlines() or ["?"])[-1])[:160]}
    try:
        return json.loads(done.stdout)
    except ValueError:
        return {"error": "clvtools_dyncov.R printed no JSON"}


def time_varying_section(args) -> None:
    print("\nPareto/NBD with time-varying covariates on CLVTools' apparel data (weeks, calibration "
          "end 2006-12-31; High.Season weekly, Gender and Channel constant)")
    if not (Path(args.apparel_dir) / "apparel_dyncov.csv.gz").exists():
        print(f"  skipped: no apparel_dyncov.csv.gz in {args.apparel_dir} (--apparel-dir)")
    else:
        ours = run_worker([sys.executable, __file__, "--tv-worker", str(args.tv_repeats),
                           "--apparel-dir", str(args.apparel_dir)], args.covariate_timeout)
        print(f"  clvlab: covariate paths + fit, least wall and least CPU time of {args.tv_repeats} "
              "in a fresh process after an untimed first (numba's compilation)")
        if "error" in ours:
            print(f"    failed: {ours['error']}")
            return
        for spec, (purchase, dropout) in TV_SPECS.items():
            fit = ours[spec]
            verdict = "within" if fit["seconds"] < TV_GOAL_SECONDS else "over"
            print(f"    {spec}: purchase {purchase}, dropout {dropout}\n"
                  f"      {fit['seconds']:.3f} s wall ({fit['paths_seconds']:.3f} paths + "
                  f"{fit['fit_seconds']:.3f} fit, best apart), {fit['cpu_seconds']:.3f} s CPU  "
                  f"log-likelihood {fit['log_likelihood']:.4f}  converged {fit['converged']}  "
                  f"({fit['customers']} customers, {fit['pieces']:,} pieces; first try "
                  f"{fit['first_seconds']:.2f} s); {verdict} the {TV_GOAL_SECONDS:g} s goal")
            print(f"      params {fit['params']}")
            for warning in fit["warnings"]:
                print(f"      warned: {warning}")
            if not args.clvtools_dyncov_json:  # the same likelihood? CLVTools' at our estimates
                theirs = clvtools_ll_at(args, fit["params_full"])
                if isinstance(theirs, float):
                    print(f"      CLVTools' log-likelihood at these estimates {theirs:.6f} "
                          f"(clvlab {fit['log_likelihood'] - theirs:+.1e})", flush=True)
        print_clvtools_dyncov(args, ours["vignette"])
    if int(args.tv_customers):
        from bench_tv_scale import scale_section

        scale_section(int(args.tv_customers), timeout=args.covariate_timeout)


def print_clvtools_dyncov(args, ours: dict) -> None:
    """CLVTools' fits of the vignette spec beside clvlab's (``ours``)."""
    peer = clvtools_dyncov(args)
    if "error" in peer:
        print(f"    CLVTools not measured: {peer['error']}. To install it:\n{CLVTOOLS_INSTALL}")
        if args.clvtools_dyncov_seconds:
            print(f"    CLVTools {args.clvtools_dyncov_seconds:.1f} s CPU (given): CLVTools/clvlab "
                  f"CPU {args.clvtools_dyncov_seconds / ours['cpu_seconds']:.0f}x")
        return
    setup = peer.get("setup", {})
    print(f"  CLVTools {setup.get('CLVTools')} ({setup.get('R')}, optimx {setup.get('optimx')}, "
          f"OMP_NUM_THREADS={setup.get('OMP_NUM_THREADS')}): pnbd() with High.Season, Gender, Channel "
          "in both processes (the vignette spec), one fit each (covariate walks, optimization, "
          "optimx's KKT check and Hessian)" + (f", from {args.clvtools_dyncov_json}"
                                                if args.clvtools_dyncov_json else ""))
    for name, fit in peer.get("fits", {}).items():
        cpu, wall = float(fit["cpu_seconds"]), float(fit["wall_seconds"])
        ratio = cpu / ours["cpu_seconds"]
        verdict = "meets" if ratio >= TV_GOAL_RATIO else "misses"
        print(f"    {name} ({fit['optimizer']}): {wall:.1f} s wall, {cpu:.1f} s CPU  log-likelihood "
              f"{float(fit['ll']):.4f} (clvlab {ours['log_likelihood'] - float(fit['ll']):+.4f})  "
              f"convergence {fit['convergence']} kkt1 {fit.get('kkt1')} kkt2 {fit.get('kkt2')} "
              f"fevals {fit.get('fevals')}")
        print(f"      CLVTools/clvlab: CPU {ratio:.0f}x, wall {wall / ours['seconds']:.0f}x "
              f"({verdict} the {TV_GOAL_RATIO:g}x goal)")
        print(f"      estimates {{{', '.join(f'{k}: {float(v):.4g}' for k, v in fit['estimates'].items())}}}",
              flush=True)


def measure(library: str, model: str, data: str, timeout: float, python: str | None = None,
            repeats: int | None = None) -> dict:
    command = [python or sys.executable, __file__, "--worker", library, model, data]
    if repeats:
        command.append(str(repeats))
    return run_worker(command, timeout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", default="1000000", help="simulated customers (0 to skip)")
    parser.add_argument("--lifetimes-timeout", type=float, default=600)
    parser.add_argument("--pymc-python", default=None,
                        help="python of an environment with pymc-marketing: also time its MAP fits")
    parser.add_argument("--only", choices=["plain", "covariates", "time-varying"], default=None,
                        help="run one section: the lifetimes comparison, the covariate fits or the "
                             "time-varying covariate fits")
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
    parser.add_argument("--tv-repeats", type=int, default=10,
                        help="timed clvlab fits per time-varying apparel spec (best of them)")
    parser.add_argument("--tv-customers", default="100000",
                        help="simulated customers x 104 weeks for the time-varying scale stages (0 to skip)")
    parser.add_argument("--clvtools-dyncov-fits", default="nm_vignette,lbfgsb_vignette",
                        help="clvtools_dyncov.R's fits to run (nm_vignette, nm_default, "
                             "lbfgsb_vignette, lbfgsb_default)")
    parser.add_argument("--clvtools-dyncov-json", default=None,
                        help="read CLVTools' time-varying fits from this output of clvtools_dyncov.R "
                             "instead of running it")
    parser.add_argument("--clvtools-dyncov-seconds", type=float, default=None,
                        help="CLVTools' CPU time of the time-varying apparel fit, measured elsewhere "
                             "(used where CLVTools is absent)")
    parser.add_argument("--clvtools-dyncov-timeout", type=float, default=3600,
                        help="seconds allowed to clvtools_dyncov.R (all its fits)")
    parser.add_argument("--repeats", type=int, default=None,
                        help=f"fits per library and model on CDNOW (default {FIT_REPEATS['cdnow']}; "
                             "the least and the median are printed)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="on CDNOW, run each library's fits in this many fresh processes, "
                             "alternately (the least and median over all of them)")
    parser.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    parser.add_argument("--tv-worker", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--covariate-timeout", type=float, default=1200,
                        help="seconds allowed to each covariate benchmark (all its fits)")
    parser.add_argument("--covariate-worker", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.tv_worker:  # records its warnings itself
        print(json.dumps(time_varying_worker(args.apparel_dir, args.tv_worker)))
        return
    if args.worker or args.covariate_worker:
        import warnings

        warnings.simplefilter("ignore")
        print(json.dumps(worker(*args.worker) if args.worker
                         else covariate_worker(args.covariate_worker[0], args.apparel_dir,
                                              int(args.covariate_worker[1]))))
        return
    import clvlab

    print(f"clvlab {clvlab.__version__}, python {sys.version.split()[0]}")
    if args.only in (None, "plain"):
        plain_section(args)
    if args.only in (None, "covariates"):
        covariates_section(args)
    if args.only in (None, "time-varying"):
        time_varying_section(args)


def plain_section(args) -> None:
    datasets = ["cdnow"] + ([args.customers] if int(args.customers) else [])
    for data in datasets:
        label = "CDNOW sample" if data == "cdnow" else f"{int(data):,} simulated customers"
        print(f"\n{label}")
        for model in MODELS:
            repeats = args.repeats if data == "cdnow" else None
            rounds = max(args.rounds, 1) if data == "cdnow" else 1
            mine, theirs = [], []
            for _ in range(rounds):  # alternately: a busy spell falls on both libraries
                mine.append(measure("clvlab", model, data, 600, repeats=repeats))
                theirs.append(measure("lifetimes", model, data, args.lifetimes_timeout,
                                      repeats=repeats))
            ours, peer = _pooled(mine), _pooled(theirs)
            print(f"  {model:<12} clvlab {_describe(ours)}")
            print(f"  {'':<12} lifetimes {_describe(peer)}")
            if "seconds" in ours and "seconds" in peer:
                ratio = peer["seconds"] / ours["seconds"]
                goal = PLAIN_GOALS.get(model) if data == "cdnow" else None
                verdict = "" if goal is None else \
                    f" ({'meets' if ratio >= goal else 'misses'} the {goal:g}x goal)"
                print(f"  {'':<12} clvlab is {ratio:.1f}x faster{verdict}; CPU time "
                      f"{peer['cpu_seconds'] / ours['cpu_seconds']:.1f}x; medians: wall "
                      f"{peer['median_seconds'] / ours['median_seconds']:.1f}x, CPU "
                      f"{peer['median_cpu_seconds'] / ours['median_cpu_seconds']:.1f}x", flush=True)
            if args.pymc_python and data == "cdnow" and model != "gamma-gamma":
                pmm = measure("pymc-marketing", model, data, 900, args.pymc_python)
                print(f"  {'':<12} pymc-marketing MAP {_describe(pmm)}")
                if "seconds" in ours and "seconds" in pmm:
                    print(f"  {'':<12} clvlab is {pmm['seconds'] / ours['seconds']:.0f}x faster "
                          "than pymc-marketing's MAP", flush=True)


def _pooled(results: list[dict]) -> dict:
    """One library's rounds of ``worker`` as one measurement: the least and the median of all
    their fits (the first round's estimates); the first failure, where one failed."""
    import numpy as np

    for result in results:
        if "error" in result:
            return result
    if len(results) == 1:
        return results[0]
    walls = [t for result in results for t in result["walls"]]
    cpus = [t for result in results for t in result["cpus"]]
    pooled = dict(results[0], walls=walls, cpus=cpus, repeats=len(walls))
    pooled.update(seconds=min(walls), cpu_seconds=min(cpus), median_seconds=float(np.median(walls)),
                  median_cpu_seconds=float(np.median(cpus)))
    return pooled


def _describe(result: dict) -> str:
    if "error" in result:
        return f"failed: {result['error']}"
    text = (f"{result['seconds']:8.4f} s ({result['cpu_seconds']:.4f} s CPU, least of "
            f"{result['repeats']}")
    if "median_seconds" in result:
        text += f"; median {result['median_seconds']:.4f} s, {result['median_cpu_seconds']:.4f} s CPU"
    text += f")  log-likelihood {result['log_likelihood']:.2f}  params {result['params']}"
    if "distinct_rows" in result:
        text += f"  ({result['distinct_rows']:,} distinct rows)"
    return text


if __name__ == "__main__":
    main()
