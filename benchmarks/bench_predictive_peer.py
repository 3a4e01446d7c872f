"""Per-customer intervals at scale against pymc-marketing 1.3's posterior predictions, in the
same run: `make bench-bayes6-venv && .venv-bench-pymc6/bin/python benchmarks/bench_predictive_peer.py`.

pymc-marketing's per-customer prediction with uncertainty is ``expected_purchases`` over its
posterior draws (chains x draws x customers in memory): an interval for the expected value,
with no process noise. clvlab's is ``prediction_interval``: the predictive distribution of the
count (process noise), exactly, with or without parameter draws mixed in (here 100 draws of
the asymptotic normal of the MLE). Both models are BG/NBD fitted on CDNOW's 2,357 customers
(weeks); the bases are CDNOW's histories resampled; the horizon is 39 weeks. Each measurement
runs in a fresh process (``_isolated``) under a 16 GB address-space cap, so a peer that runs
out of memory is reported as such; peak memory is the process's maximum resident set.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from _isolated import run_worker  # noqa: E402

HORIZON = 39
MEMORY_CAP = 16 * 2**30


def _base(n: int):
    from clvlab.datasets import load_cdnow_summary

    rfm = load_cdnow_summary().sample(n, replace=True, random_state=1).reset_index(drop=True)
    rfm.attrs["time_unit"] = "W"
    return rfm


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def worker_clvlab(n: int, draws: int) -> dict:
    import clvlab
    from clvlab.datasets import load_cdnow_summary
    from clvlab.inference.uncertainty import parameter_draws

    model = clvlab.BetaGeo().fit(load_cdnow_summary())
    rfm = _base(n)
    parameters = parameter_draws(model, draws, seed=0) if draws else None
    model.prediction_interval(rfm.head(1000), HORIZON, level=0.9, parameter_draws=parameters)
    start = time.perf_counter()
    out = model.prediction_interval(rfm, HORIZON, level=0.9, parameter_draws=parameters)
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "peak_mb": _peak_mb(), "mean_width": float((out.upper - out.lower).mean())}


def worker_pymc_marketing(n: int, draws: int) -> dict:
    import numpy as np
    from pymc_marketing.clv import BetaGeoModel
    from clvlab.datasets import load_cdnow_summary

    data = load_cdnow_summary().rename_axis(None).reset_index(names="customer_id")[
        ["customer_id", "frequency", "recency", "T"]]
    model = BetaGeoModel()
    # 1.x takes the data in fit(); extra keywords reach pm.sample (see bench_bayes.py)
    model.fit(data, method="mcmc", chains=2, draws=draws // 2, tune=500, progressbar=False,
              random_seed=0)
    rfm = _base(n)[["frequency", "recency", "T"]].assign(customer_id=np.arange(n))
    start = time.perf_counter()
    expected = model.expected_purchases(data=rfm, future_t=HORIZON)
    low, high = np.quantile(expected.values.reshape(-1, n), [0.05, 0.95], axis=0)
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "peak_mb": _peak_mb(), "mean_width": float((high - low).mean())}


def _cap() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))


def measure(which: str, n: int, draws: int, timeout: float) -> dict:
    return run_worker([sys.executable, __file__, "--worker", which, "--n", str(n),
                       "--draws", str(draws)], timeout, preexec_fn=_cap)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", default=None)
    parser.add_argument("--n", type=int, default=0)
    parser.add_argument("--draws", type=int, default=0)
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--timeout", type=float, default=900)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    if args.worker:
        answer = (worker_clvlab if args.worker == "clvlab" else worker_pymc_marketing)(args.n, args.draws)
        print(json.dumps(answer))
        return
    try:
        import pymc_marketing  # noqa: F401
        peer = True
    except ImportError:
        peer = False
        print("pymc-marketing is not installed in this environment: run this with "
              ".venv-bench-pymc6/bin/python (make bench-bayes6-venv); clvlab only")
    runs = [("clvlab prediction interval, point estimate", "clvlab", 0),
            ("clvlab prediction interval, 100 parameter draws", "clvlab", 100)]
    if peer:
        runs.append(("pymc-marketing 1.3 expected_purchases, 1,000 posterior draws",
                     "pymc_marketing", 1000))
    print(f"{'customers':>10}  {'what':<62} {'seconds':>9} {'peak MB':>9} {'mean 90% width':>15}")
    for n in (int(s) for s in args.sizes.split(",")):
        for label, which, draws in runs:
            result = measure(which, n, draws, args.timeout)
            if "error" in result:
                print(f"{n:>10,}  {label:<62} {'failed: ' + result['error']}", flush=True)
                continue
            print(f"{n:>10,}  {label:<62} {result['seconds']:9.2f} {result['peak_mb']:9.0f} "
                  f"{result['mean_width']:15.3f}", flush=True)


if __name__ == "__main__":
    main()
