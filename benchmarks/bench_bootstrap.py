"""Time of a 200-resample bootstrap of a fit: clvlab's serial, threaded and process-pool runs
on CDNOW (BG/NBD, Pareto/NBD, Gamma-Gamma) and on a larger simulated base, and CLVTools'
bootstrap in the same run when R and CLVTools are installed.

    .venv/bin/python benchmarks/bench_bootstrap.py [--n-boot 200] [--jobs 2] [--large 100000]

Each line: model, data, backend, workers, seconds, refits per second. The numbers decide
``bootstrap_fit``'s default backend (threads, or processes if they were faster).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

import clvlab
from clvlab import bayes
from clvlab.data import simulate


def cdnow():
    log = clvlab.datasets.load_cdnow(sample=True)
    return clvlab.rfm_summary(log, amount_col="amount", time_unit="W",
                              calibration_end="1997-09-30", observation_end="1998-06-30")


def large(n: int):
    """n Pareto/NBD customers at CDNOW's estimates, durations rounded to days."""
    ages = np.random.default_rng(0).uniform(26, 52, n)
    table = simulate.pareto_nbd(n, T=ages, seed=1, r=0.55, alpha=10.6, s=0.61, beta=11.7)
    days = np.where(table["frequency"] > 0, np.maximum(np.round(table["recency"] * 7), 1), 0)
    table = table.assign(recency=days / 7, T=np.round(table["T"] * 7) / 7)
    table.attrs = {"clvlab": {"time_unit": "W"}}
    return table[["frequency", "recency", "T"]]


def run(model, table, label: str, n_boot: int, jobs: int) -> dict:
    times = {}
    for backend, workers in (("serial", 1), ("threads", jobs), ("processes", jobs)):
        started = time.perf_counter()
        result = bayes.bootstrap_fit(model, table, n_boot=n_boot, seed=0, n_jobs=workers,
                                     backend="threads" if backend == "serial" else backend,
                                     store=False)
        seconds = time.perf_counter() - started
        times[backend] = seconds
        print(f"{type(model).__name__:11s} {label:16s} {backend:9s} {workers} worker(s) "
              f"{seconds:7.2f} s  {n_boot / seconds:7.1f} refits/s  failures {result.failures}",
              flush=True)
    return times


CLVTOOLS = """
suppressMessages(library(CLVTools))
data("cdnow")
clv <- clvdata(cdnow, date.format="ymd", time.unit="week", estimation.split="1997-09-30",
               name.id="Id", name.date="Date", name.price="Price")
fit <- pnbd(clv, verbose=FALSE)
t <- system.time(p <- predict(fit, uncertainty="boots", num.boots={n_boot}, verbose=FALSE))
cat(sprintf("CLVTools pnbd bootstrap of %d resamples: %.2f s elapsed\\n", {n_boot}, t[["elapsed"]]))
"""


def clvtools(n_boot: int) -> None:
    if shutil.which("Rscript") is None:
        print("CLVTools: not timed (Rscript is not installed on this machine)")
        return
    check = subprocess.run(["Rscript", "-e", "library(CLVTools)"], capture_output=True, text=True)
    if check.returncode != 0:
        print("CLVTools: not timed (R is installed, the CLVTools package is not)")
        return
    with tempfile.TemporaryDirectory() as folder:
        script = Path(folder) / "boot.R"
        script.write_text(CLVTOOLS.replace("{n_boot}", str(n_boot)))
        out = subprocess.run(["Rscript", str(script)], capture_output=True, text=True,
                             env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"})
        print(out.stdout.strip() or out.stderr.strip()[-500:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-boot", type=int, default=200)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--large", type=int, default=100_000,
                        help="customers of the simulated base (0: skip it)")
    args = parser.parse_args()
    rfm = cdnow()
    for cls in (clvlab.BetaGeo, clvlab.ParetoNBD, clvlab.GammaGamma):
        model = cls().fit(rfm)
        bayes.bootstrap_fit(model, rfm, n_boot=2, n_jobs=1, store=False)  # compiled, warm
        run(model, rfm, "CDNOW (2,357)", args.n_boot, args.jobs)
    if args.large:
        table = large(args.large)
        model = clvlab.ParetoNBD().fit(table)
        run(model, table, f"sim ({args.large:,})", max(args.n_boot // 4, 2), args.jobs)
    clvtools(args.n_boot)


if __name__ == "__main__":
    main()
