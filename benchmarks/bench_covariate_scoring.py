"""Scoring with a continuous covariate: every customer at their own parameters, before and after
issue 30's vectorised path (`.venv/bin/python benchmarks/bench_covariate_scoring.py`).

"Before" is the path that predicted each covariate group with a plain model (still the path of
a model class without ``row_predictions``; switched on here by setting the class attribute to
False), timed on small bases because it grows at ~2 ms a group; "after" is the vectorised
path, timed up to 1,000,000 customers. The job: P(alive), 39-week expected purchases and a
52-week CLV (weekly discounting, Gamma-Gamma spend) of CDNOW-like customers (CDNOW's weekly
summary resampled) with one continuous covariate on the purchase and the dropout process,
for BG/NBD and Pareto/NBD, and the same job without covariates (which the change must not
slow). Each figure is the best of ``--repeat`` runs in this process (warm: compiled code and
caches loaded); the machine is shared, so the best is the fair figure.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np

import clvlab
from clvlab.datasets import load_cdnow_summary
from clvlab.models.transaction import TransactionModel

warnings.simplefilter("ignore")


def base(n: int, seed: int = 1):
    rfm = load_cdnow_summary().sample(n, replace=True, random_state=seed).reset_index(drop=True)
    rfm["income"] = np.random.default_rng(seed).normal(size=n)
    rfm.attrs["time_unit"] = "W"
    return rfm


def models(covariates: bool):
    coefficients = {"purchase": {"income": 0.3}, "dropout": {"income": -0.2}} if covariates else None
    return {
        "BG/NBD": clvlab.BetaGeo.from_params("W", r=0.243, alpha=4.41, a=0.793, b=2.43,
                                             coefficients=coefficients),
        "Pareto/NBD": clvlab.ParetoNBD.from_params("W", r=0.553, alpha=10.58, s=0.606,
                                                   beta=11.67, coefficients=coefficients),
    }


SPEND = clvlab.GammaGamma.from_params(p=6.25, q=3.74, v=15.44)


def job(model, rfm) -> float:
    start = time.perf_counter()
    model.p_alive(rfm)
    model.expected_purchases(rfm, 39)
    clvlab.customer_lifetime_value(model, SPEND, rfm, horizon=52, discount_rate=0.0015)
    return time.perf_counter() - start


def best(model, rfm, repeat: int) -> float:
    return min(job(model, rfm) for _ in range(repeat))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="5000,20000,1000000")
    parser.add_argument("--before-sizes", default="5000")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    before_sizes = [int(s) for s in args.before_sizes.split(",") if s]
    rows = []
    for n in sizes:
        rfm = base(n)
        rfm["monetary_value"] = rfm["monetary_value"].where(rfm["frequency"] > 0, 0.0)
        for name, model in models(True).items():
            job(model, rfm.head(2000))  # warm-up: compile and load caches
            after = best(model, rfm, args.repeat)
            before = float("nan")
            if n in before_sizes:
                TransactionModel.row_predictions = False
                try:
                    before = best(model, rfm, 1)
                finally:
                    TransactionModel.row_predictions = True
            plain = models(False)[name]
            job(plain, rfm.head(2000))
            no_covariates = best(plain, rfm, args.repeat)
            rows.append((n, name, before, after, no_covariates))
            print(f"{n:>9,} {name:<11} before {before:8.2f} s  after {after:7.3f} s  "
                  f"without covariates {no_covariates:7.3f} s", flush=True)
    print("\ncustomers  model       by group (before)  one pass (after)  speed-up  without covariates")
    for n, name, before, after, plain in rows:
        ratio = f"{before / after:8.0f}x" if np.isfinite(before) else "       -"
        before_text = f"{before:8.2f} s" if np.isfinite(before) else "         -"
        print(f"{n:>9,}  {name:<11} {before_text:>17}  {after:14.3f} s  {ratio}  {plain:12.3f} s")


if __name__ == "__main__":
    main()
