"""Timings of issue 29, item 14: MAP, ADVI and posterior_predict with a continuous covariate.

    .venv/bin/python benchmarks/bench_bayes_speed.py map            # CDNOW, MLE vs MAP
    .venv/bin/python benchmarks/bench_bayes_speed.py advi [--seed 1]  # CDNOW, steps and time
    .venv/bin/python benchmarks/bench_bayes_speed.py predict [--customers 5000 --draws 5]

Each prints one JSON line. ``predict`` times ``bayes.posterior_summary`` of expected purchases
over 52 weeks, draw by draw (rowwise=False, what posterior_predict did) and group by group
(rowwise=True), on simulated Pareto/NBD customers with a continuous covariate on both
processes (a covariate group per customer), and extrapolates to 200 draws; then
``posterior_predict`` with 200 draws on issue 30's path (each draw one vectorised pass),
measured. Timings exclude
importing PyMC (done first) but include PyTensor compilation.
"""

from __future__ import annotations

import argparse
import json
import time


def cdnow():
    import clvlab

    return clvlab.datasets.load_cdnow_summary()


def bench_map(args) -> dict:
    import clvlab

    rfm, out = cdnow(), {}
    for name in ("BetaGeo", "ParetoNBD"):
        cls = getattr(clvlab, name)
        for label, settings in (("mle", {}), ("map", {"method": "map", "progressbar": False})):
            cls(**settings).fit(rfm)  # warm: numba kernels and caches
            start = time.perf_counter()
            fitted = cls(**settings).fit(rfm)
            out[f"{name} {label} s"] = round(time.perf_counter() - start, 3)
            out[f"{name} {label} params"] = fitted.params_.round(5).to_dict()
    return out


def bench_advi(args) -> dict:
    import clvlab

    rfm, out = cdnow(), {}
    for name in ("BetaGeo", "ParetoNBD"):
        start = time.perf_counter()
        fitted = getattr(clvlab, name)(method="advi", random_seed=args.seed,
                                       progressbar=False).fit(rfm)
        c = fitted.convergence_
        out[name] = {"s": round(time.perf_counter() - start, 1), "steps": c["steps"],
                     "converged": c["converged"], "params": fitted.params_.round(4).to_dict()}
    return out


def bench_predict(args) -> dict:
    import numpy as np
    import pandas as pd

    import clvlab
    from clvlab import bayes, simulate

    n = args.customers
    rng = np.random.default_rng(0)
    attributes = pd.DataFrame({"income": rng.normal(0, 1, n)},
                              index=pd.RangeIndex(n, name="customer_id"))
    table = simulate.with_covariates(
        "pareto-nbd", n, params=dict(r=0.553, alpha=10.58, s=0.606, beta=11.67),
        coefficients={"purchase": {"income": 0.3}, "dropout": {"income": -0.2}},
        attributes=attributes, T=39.0, seed=1)
    rfm = table[["frequency", "recency", "T", "income"]].copy()
    rfm.attrs["clvlab"] = {"time_unit": "W"}
    model = clvlab.ParetoNBD(purchase_covariates=["income"], dropout_covariates=["income"]).fit(rfm)
    from clvlab.models.transaction import TransactionModel

    out = {"customers": n, "draws": args.draws}
    for rowwise in (False, True):
        TransactionModel.row_predictions = False  # the paths before issue 30
        try:
            start = time.perf_counter()
            bayes.posterior_summary(model, lambda m, chunk: m.expected_purchases(chunk, t=52), rfm,
                                    n_draws=args.draws, rowwise=rowwise, progress=False)
            seconds = time.perf_counter() - start
        finally:
            TransactionModel.row_predictions = True
        key = "group by group" if rowwise else "draw by draw"
        out[f"{key} s"] = round(seconds, 1)
        out[f"{key} ms per evaluation"] = round(1000 * seconds / (args.draws * n), 3)
        out[f"{key} 200 draws min (extrapolated)"] = round(seconds / args.draws * 200 / 60, 1)
    # issue 30: each draw's model predicts every customer at their own parameters in one pass
    start = time.perf_counter()
    model.posterior_predict("expected_purchases", rfm, t=52, n_draws=200, progress=False)
    out["one pass 200 draws s (measured)"] = round(time.perf_counter() - start, 1)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["map", "advi", "predict"])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--customers", type=int, default=5000)
    parser.add_argument("--draws", type=int, default=5)
    args = parser.parse_args()
    from clvlab.inference import compat

    compat.pymc()
    result = {"map": bench_map, "advi": bench_advi, "predict": bench_predict}[args.what](args)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
