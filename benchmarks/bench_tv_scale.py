"""Time-varying covariates at scale: each stage timed, its peak memory measured, in its own process.

    .venv/bin/python benchmarks/bench_tv_scale.py                      # 100,000 customers x 104 weeks
    .venv/bin/python benchmarks/bench_tv_scale.py --customers 20000 --no-bgnbd

The hardest case for the piece builder: every customer has a weekly 0/1 promotion of their own
(on in a week with probability 0.3, independently, so neighbouring weeks seldom merge) beside a
seasonal calendar flag (``high_season``: the first Fourier cosine of the year above 0.5);
Pareto/NBD with both in both processes (purchase +0.7, +0.4; dropout -0.5, -0.3), customers
acquired over the first 26 weeks, hourly purchase timestamps merged per hour (simulate
.pareto_nbd_time_varying). The simulation runs in its own process, which writes the
transactions and the panel as Parquet and is not counted. Then, each in a fresh process that
reads its inputs first (not counted): rfm_summary; covariate_paths with the pandas engine
(the panel read into pandas first); covariate_paths with the DuckDB engine, which reads the
Parquet files itself and streams the sorted panel in customer batches; the Pareto/NBD fit
(a small simulated fit first pays numba's compilation, not counted); and the BG/NBD fit with
the covariates in the purchase process. Per stage: wall and CPU seconds (``time.process_time``,
all threads) and the process's peak resident memory during the stage (the kernel's VmHWM,
reset with /proc/self/clear_refs after the inputs are read; where that is refused, the
process's lifetime peak, ru_maxrss, inputs included), with the resident memory of the inputs.
"""

from __future__ import annotations

import argparse
import json
import pickle
import resource
import sys
import tempfile
import time
from pathlib import Path

from _isolated import run_worker

START = "2020-01-05"  # a Sunday: weekly periods start on it
PARAMS = {"r": 0.8, "alpha": 10.0, "s": 0.6, "beta": 30.0}
COEFFICIENTS = {"purchase": {"high_season": 0.7, "promo": 0.4},
                "dropout": {"high_season": -0.5, "promo": -0.3}}
COVARIATES = ["high_season", "promo"]
STAGES = ["rfm", "paths-pandas", "paths-duckdb", "fit-pareto-nbd", "fit-bg-nbd"]
GOAL_SECONDS = 60  # issue 31: 100,000 customers x 104 weeks fitted in under a minute


def simulate(customers: int, weeks: int, seed: int = 7):
    """The simulated sample (clvlab.simulate.TimeVaryingSample)."""
    import pandas as pd

    import clvlab

    start = pd.Timestamp(START)
    calendar = clvlab.seasonal_covariates(start, start + pd.Timedelta(weeks=weeks), "W", fourier=1)
    calendar["high_season"] = (calendar["fourier_cos_1"] > 0.5).astype(float)
    return clvlab.simulate.pareto_nbd_time_varying(
        customers, params=PARAMS, coefficients=COEFFICIENTS, calendar=calendar[["period", "high_season"]],
        varying={"promo": 0.3}, start=start, periods=weeks, acquisition_periods=min(26, weeks),
        seed=seed)


def _rfm(transactions, weeks: int):
    import pandas as pd

    import clvlab

    return clvlab.rfm_summary(transactions, time_unit="W", merge_period="h",
                              observation_end=pd.Timestamp(START) + pd.Timedelta(weeks=weeks))


def _memory_mb(field: str) -> float:
    """VmRSS or VmHWM of this process in MB (0.0 where /proc is missing)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _reset_peak() -> bool:
    """Reset the kernel's peak-RSS mark (VmHWM) to the current RSS; False where refused."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return _memory_mb("VmHWM") > 0
    except OSError:
        return False


def _warm_up() -> None:
    """numba's compilation of both time-varying fits, on a small sample (not counted)."""
    import clvlab

    small = simulate(500, 30, seed=1)
    rfm = _rfm(small.transactions, 30)
    paths = clvlab.covariate_paths(small.panel, rfm, transactions=small.transactions,
                                   customer_col="customer_id", period_col="period")
    clvlab.ParetoNBD(purchase_covariates=COVARIATES, dropout_covariates=COVARIATES).fit(
        rfm, covariate_paths=paths)
    clvlab.BetaGeo(purchase_covariates=COVARIATES).fit(rfm, covariate_paths=paths)


def stage_worker(stage: str, folder: str, spec: str) -> dict:
    """One stage in this (fresh) process: inputs read first, then the stage timed and measured.
    ``spec``: "CUSTOMERS:WEEKS" to simulate, else WEEKS."""
    import warnings

    import pandas as pd

    import clvlab

    warnings.simplefilter("ignore")
    work = Path(folder)
    tx_file, panel_file = work / "transactions.parquet", work / "panel.parquet"
    extra: dict = {}
    if stage == "simulate":
        started = time.perf_counter()
        customers, weeks = (int(part) for part in spec.split(":"))
        sample = simulate(customers, weeks)
        sample.transactions.to_parquet(tx_file)
        sample.panel.to_parquet(panel_file)
        return {"seconds": time.perf_counter() - started, "transactions": len(sample.transactions),
                "panel_rows": len(sample.panel),
                "panel_mb": sample.panel.memory_usage(deep=True).sum() / 2**20}
    loaded = time.perf_counter()
    if stage.startswith("fit"):
        _warm_up()
    if stage in ("rfm", "paths-pandas"):
        transactions = pd.read_parquet(tx_file)
    if stage != "rfm":
        rfm = pd.read_pickle(work / "rfm.pkl")  # a pickle keeps its attrs, which covariate_paths reads
    if stage == "paths-pandas":
        panel = pd.read_parquet(panel_file)
    if stage.startswith("fit"):
        with open(work / "paths.pkl", "rb") as file:
            paths = pickle.load(file)
    loaded = time.perf_counter() - loaded
    inputs_mb = _memory_mb("VmRSS")
    exact_peak = _reset_peak()

    started, started_cpu = time.perf_counter(), time.process_time()
    if stage == "rfm":
        rfm = _rfm(transactions, weeks=int(spec))
    elif stage == "paths-pandas":
        paths = clvlab.covariate_paths(panel, rfm, transactions=transactions, engine="pandas",
                                       customer_col="customer_id", period_col="period")
    elif stage == "paths-duckdb":
        paths = clvlab.covariate_paths(str(panel_file), rfm, transactions=str(tx_file), engine="duckdb",
                                       customer_col="customer_id", period_col="period")
    elif stage == "fit-pareto-nbd":
        model = clvlab.ParetoNBD(purchase_covariates=COVARIATES, dropout_covariates=COVARIATES)
        fitted = model.fit(rfm, covariate_paths=paths)
    elif stage == "fit-bg-nbd":
        fitted = clvlab.BetaGeo(purchase_covariates=COVARIATES).fit(rfm, covariate_paths=paths)
    seconds, cpu = time.perf_counter() - started, time.process_time() - started_cpu
    peak = _memory_mb("VmHWM") if exact_peak else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    if stage == "rfm":
        rfm.to_pickle(work / "rfm.pkl")
        extra = {"customers": len(rfm), "repeat_purchases": int(rfm["frequency"].sum())}
    elif stage.startswith("paths"):
        extra = {"pieces": len(paths.table)}
        if stage == "paths-pandas":
            with open(work / "paths.pkl", "wb") as file:
                pickle.dump(paths, file, protocol=pickle.HIGHEST_PROTOCOL)
        else:  # the same pieces as the pandas engine's
            with open(work / "paths.pkl", "rb") as file:
                reference = pickle.load(file).table
            extra["same_as_pandas"] = bool(paths.table.reset_index(drop=True).equals(
                reference.reset_index(drop=True)))
    else:
        extra = {"log_likelihood": float(fitted.log_likelihood_),
                 "converged": fitted.convergence_.get("converged"),
                 "iterations": fitted.convergence_.get("iterations"),
                 "distinct_rows": int(fitted.n_distinct_rows_),
                 "params": {k: round(float(v), 3) for k, v in fitted.params_.items()}}
    return {"seconds": seconds, "cpu_seconds": cpu, "peak_mb": peak, "inputs_mb": inputs_mb,
            "peak_is_stage": exact_peak, "load_seconds": loaded, **extra}


def scale_section(customers: int, weeks: int = 104, timeout: float = 1800, bgnbd: bool = True,
                  folder: str | None = None) -> dict:
    """Run and print every stage; {stage: result}."""
    print(f"\nTime-varying covariates at scale: {customers:,} simulated customers x {weeks} weeks, "
          "a per-customer weekly 0/1 promotion + a seasonal calendar flag, Pareto/NBD (each stage "
          "in a fresh process; wall, CPU (all threads) and peak resident memory of the stage)")
    results: dict = {}
    with tempfile.TemporaryDirectory(prefix="clvlab-tv-scale-", dir=folder) as work:
        def run(stage: str, spec: str) -> dict:
            result = run_worker([sys.executable, __file__, "--stage", stage, work, spec], timeout)
            results[stage] = result
            return result

        simulated = run("simulate", f"{customers}:{weeks}")
        if "error" in simulated:
            print(f"  simulation failed: {simulated['error']}")
            return results
        print(f"  simulated (not counted) in {simulated['seconds']:.1f} s: "
              f"{simulated['transactions']:,} transactions, panel {simulated['panel_rows']:,} rows "
              f"({simulated['panel_mb']:.0f} MB in pandas)", flush=True)
        for stage in STAGES:
            if stage == "fit-bg-nbd" and not bgnbd:
                continue
            result = run(stage, str(weeks))
            if "error" in result:
                print(f"  {stage:<15} failed: {result['error']}", flush=True)
                if stage in ("rfm", "paths-pandas"):
                    return results
                continue
            peak = "peak" if result["peak_is_stage"] else "process lifetime peak"
            line = (f"  {stage:<15} {result['seconds']:8.2f} s wall {result['cpu_seconds']:8.2f} s CPU  "
                    f"{peak} {result['peak_mb']:6.0f} MB (before it {result['inputs_mb']:.0f} MB; set-up "
                    f"{result['load_seconds']:.1f} s, not counted)")
            if stage == "rfm":
                line += f"  {result['customers']:,} customers, {result['repeat_purchases']:,} repeat purchases"
            elif stage.startswith("paths"):
                line += f"  {result['pieces']:,} pieces"
                if "same_as_pandas" in result:
                    line += ", the same as pandas'" if result["same_as_pandas"] else ", DIFFERENT from pandas'"
            print(line)
            if stage.startswith("fit"):
                verdict = "within" if result["seconds"] < GOAL_SECONDS else "over"
                print(f"  {'':<15} log-likelihood {result['log_likelihood']:.2f}, converged "
                      f"{result['converged']} in {result['iterations']} iterations, "
                      f"{result['distinct_rows']:,} distinct rows; {verdict} "
                      f"the {GOAL_SECONDS} s goal; params {result['params']}", flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--weeks", type=int, default=104)
    parser.add_argument("--timeout", type=float, default=1800, help="seconds allowed to each stage")
    parser.add_argument("--no-bgnbd", action="store_true", help="skip the BG/NBD fit")
    parser.add_argument("--workdir", default=None, help="where the temporary Parquet files go")
    parser.add_argument("--stage", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.stage:
        print(json.dumps(stage_worker(*args.stage)))
        return
    import clvlab

    print(f"clvlab {clvlab.__version__}, python {sys.version.split()[0]}")
    scale_section(args.customers, args.weeks, args.timeout, not args.no_bgnbd, args.workdir)


if __name__ == "__main__":
    main()
