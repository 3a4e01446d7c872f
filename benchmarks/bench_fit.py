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
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from _isolated import run_worker

BG = dict(r=0.243, alpha=4.414, a=0.793, b=2.426)
PARETO = dict(r=0.553, alpha=10.58, s=0.606, beta=11.67)
SPEND = dict(p=6.25, q=3.74, v=15.44)
MODELS = ["bg-nbd", "pareto-nbd", "gamma-gamma"]


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


def measure(library: str, model: str, data: str, timeout: float, python: str | None = None) -> dict:
    command = [python or sys.executable, __file__, "--worker", library, model, data]
    return run_worker(command, timeout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", default="1000000", help="simulated customers (0 to skip)")
    parser.add_argument("--lifetimes-timeout", type=float, default=600)
    parser.add_argument("--pymc-python", default=None,
                        help="python of an environment with pymc-marketing: also time its MAP fits")
    parser.add_argument("--worker", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        import warnings

        warnings.simplefilter("ignore")
        print(json.dumps(worker(*args.worker)))
        return
    import clvlab

    print(f"clvlab {clvlab.__version__}, python {sys.version.split()[0]}")
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
