"""The challengers beside the BTYD models and the baselines: who wins which metric.

    .venv/bin/python benchmarks/challengers_backtest.py [--data cdnow|apparel|both]

CDNOW master (23,570 customers, weeks, 13-week horizon, cutoffs 1997-09-30, 1997-12-31,
1998-03-31) and CLVTools' apparel log (../shared/data/apparel: 250 customers, weeks, 52-week
horizon, cutoffs 2007-12-30 and 2008-12-28). Candidates: Pareto/NBD and BG/NBD with
Gamma-Gamma, Pareto/NBD with the churn adjuster, the challengers "ziln" and "gbm", and the
practitioners' baselines. Prints the mean of each metric over the cutoffs (all customers),
the winner of each metric (as clvlab.evaluation.metrics.ranking_key orders them) and the
wall time.
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import pandas as pd

from clvlab.data.datasets import load_cdnow
from clvlab.evaluation import backtest
from clvlab.evaluation.metrics import ranking_key

APPAREL = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "apparel"
CANDIDATES = ["pareto-nbd+gamma-gamma", "bg-nbd+gamma-gamma", "pareto-nbd+gamma-gamma+churn-adjuster",
              "ziln", "gbm", "historical-average", "arpu-churn", "active-90d"]
SHOWN = [("purchases", "mae"), ("purchases", "aggregate_pct_error"), ("purchases", "log_score"),
         ("purchases", "coverage_90"), ("spend", "mae"), ("spend", "normalized_gini"),
         ("spend", "decile_mape"), ("spend", "spearman"), ("activity", "auc"), ("activity", "brier")]


def run(name: str, log: pd.DataFrame, cutoffs: list[str], horizon: float, **options) -> None:
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = backtest(log, CANDIDATES, cutoffs, horizon, progress=False, interval_draws=0,
                          **options)
    seconds = time.perf_counter() - started
    table = result.metrics[result.metrics["cohort"] == "all"]
    means = table.groupby(["candidate", "target", "metric"])["value"].mean().unstack(["target", "metric"])
    means = means[[c for c in SHOWN if c in means.columns]]
    print(f"\n## {name}: {len(cutoffs)} cutoffs, horizon {horizon:g} weeks, {seconds:.0f} s\n")
    header = "| candidate | " + " | ".join(f"{t} {m}" for t, m in means.columns) + " |"
    print(header)
    print("|" + "---|" * (len(means.columns) + 1))
    for candidate, row in means.iterrows():
        cells = ["n/a" if pd.isna(v) else f"{v:.4g}" for v in row]
        print(f"| {candidate} | " + " | ".join(cells) + " |")
    print("\nwinners:")
    for (target, metric) in means.columns:
        column = means[(target, metric)].dropna()
        if column.empty:
            continue
        best = column.index[ranking_key(f"{target}_{metric}")(column).to_numpy().argmin()]
        print(f"  {target} {metric}: {best} ({column[best]:.4g})")
    failures = result.settings.get("failures") or []
    for failure in failures:
        print(f"  failed: {failure['candidate']} at {failure['cutoff']}: {failure['error'][:160]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", choices=["cdnow", "apparel", "both"], default="both")
    args = parser.parse_args()
    if args.data in ("cdnow", "both"):
        run("CDNOW master", load_cdnow(sample=False), ["1997-09-30", "1997-12-31", "1998-03-31"],
            13, amount_col="amount")
    if args.data in ("apparel", "both"):
        log = pd.read_csv(APPAREL / "apparel_transactions.csv")
        run("apparel", log, ["2007-12-30", "2008-12-28"], 52, customer_col="Id",
            date_col="Date", amount_col="Price")


if __name__ == "__main__":
    main()
