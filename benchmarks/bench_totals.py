"""Time and peak memory of totals with intervals (purchases and revenue, by a 10-level
segment) at 1,000,000 and 10,000,000 customers, with and without 100 parameter draws.

The customers are synthetic histories from the Pareto/NBD and Gamma-Gamma fits on CDNOW (the
"CDNOW-like fit"): ages uniform over CDNOW's 27-39 weeks, durations rounded to days as a log's
summary has them, spend to cents. The models are those fits (their covariances give the
draws). Peak memory is tracemalloc's peak over the call (NumPy and pandas allocations), beside
the table's own size; the totals never hold customers x draws.

    .venv/bin/python benchmarks/bench_totals.py [--sizes 1000000 10000000] [--draws 100]
"""

from __future__ import annotations

import argparse
import time
import tracemalloc

import numpy as np
import pandas as pd

import clvlab
from clvlab import bayes
from clvlab.data import simulate
from clvlab.models.totals import purchase_totals, revenue_totals

HORIZON = 13.0  # a quarter, in weeks


def fits():
    log = clvlab.datasets.load_cdnow(sample=True)
    rfm = clvlab.rfm_summary(log, amount_col="amount", time_unit="W",
                             calibration_end="1997-09-30", observation_end="1998-06-30")
    return clvlab.ParetoNBD().fit(rfm), clvlab.GammaGamma().fit(rfm)


def synthetic(n: int, transactions, spend, seed: int = 0) -> pd.DataFrame:
    """n customers drawn a million at a time from the fitted processes."""
    r, alpha, s, beta = transactions.params_.to_numpy()
    p, q, v = spend.params_.to_numpy()
    parts = []
    for i, start in enumerate(range(0, n, 1_000_000)):
        m = min(1_000_000, n - start)
        ages = np.random.default_rng((seed, i, 0)).uniform(27, 39, m)
        part = simulate.pareto_nbd(m, r=r, alpha=alpha, s=s, beta=beta, T=ages, seed=(seed, i, 1))
        days = np.where(part["frequency"] > 0, np.maximum(np.round(part["recency"] * 7), 1), 0)
        money = simulate.gamma_gamma_spend(part["frequency"].to_numpy(), p=p, q=q, v=v,
                                           seed=(seed, i, 2))["monetary_value"].to_numpy()
        parts.append(pd.DataFrame({
            "frequency": part["frequency"].to_numpy(), "recency": days / 7,
            "T": np.round(part["T"].to_numpy() * 7) / 7,
            "monetary_value": np.round(money, 2),
            "segment": np.random.default_rng((seed, i, 3)).integers(0, 10, m).astype(np.int8)}))
    table = pd.concat(parts, ignore_index=True)
    table.attrs = {"clvlab": {"time_unit": "W"}}
    return table


def measure(label: str, call) -> None:
    tracemalloc.start()
    tracemalloc.reset_peak()
    started = time.perf_counter()
    out = call()
    seconds = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    whole = out.loc[out.index[0]]
    print(f"{label:48s} {seconds:8.1f} s  peak {peak / 2**20:8.0f} MiB  "
          f"(segment {out.index[0]}: expected {whole['expected']:,.0f}, parameter share "
          f"{whole['parameter_share']:.3f})", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--draws", type=int, default=100)
    args = parser.parse_args()
    transactions, spend = fits()
    draws = (bayes.parameter_draws(transactions, args.draws, seed=0),
             bayes.parameter_draws(spend, args.draws, seed=1))
    for n in args.sizes:
        started = time.perf_counter()
        table = synthetic(n, transactions, spend)
        size = table.memory_usage(deep=True).sum() / 2**20
        print(f"\n{n:,} customers: table {size:.0f} MiB, made in "
              f"{time.perf_counter() - started:.1f} s", flush=True)
        for k in (0, args.draws):
            given = 0 if k == 0 else draws[0]
            measure(f"purchases, {k} draws", lambda: purchase_totals(
                transactions, table, HORIZON, by="segment", parameter_draws=given,
                check_durations=False))
            pair = 0 if k == 0 else draws
            measure(f"revenue,   {k} draws", lambda: revenue_totals(
                transactions, spend, table, HORIZON, by="segment", parameter_draws=pair,
                unvalued="population", check_durations=False))


if __name__ == "__main__":
    main()
