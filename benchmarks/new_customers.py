"""New customers: from how many repeat purchases does the BTYD model beat the ZILN challenger?

    .venv/bin/python benchmarks/new_customers.py [--data cdnow|apparel|simulated|all]

Backtests Pareto/NBD + Gamma-Gamma, the "ziln" challenger and the hand-over candidates
"ziln-handover-<k>" (ZILN for customers with fewer than k repeat purchases, the BTYD model
from k on) on CDNOW master (13 weeks, cutoffs 1997-09-30, 1997-12-31, 1998-03-31) and the
apparel log (52 weeks, cutoffs 2007-12-30, 2008-12-28), keeping every customer's predictions;
prints, by calibration frequency (repeat purchases), the customers and the purchases and spend
MAE of each candidate, pooled over the cutoffs, and the overall MAEs of the hand-overs.
``simulated``: 6,000 customers of clvlab.simulate.engagement (seed 3, Pareto/NBD with CDNOW's
parameters, visits that stop at dropout) with the event log, cutoffs 2021-06-30 and
2021-09-30, 13 weeks, where the challenger sees what the BTYD model cannot; also the
activity AUC and spend Gini of each candidate.
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from clvlab.data.datasets import load_cdnow
from clvlab.evaluation import backtest

APPAREL = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "apparel"
CANDIDATES = ["pareto-nbd+gamma-gamma", "ziln", "ziln-handover-1", "ziln-handover-2",
              "ziln-handover-3"]


def run(name: str, log: pd.DataFrame, cutoffs: list[str], horizon: float, **options) -> None:
    """Backtest CANDIDATES and print the MAE by calibration frequency and overall."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = backtest(log, CANDIDATES, cutoffs, horizon, progress=False, intervals=False,
                          keep_predictions=True, **options)
    rows = result.predictions
    rows = rows.assign(frequency=np.minimum(rows["calibration_frequency"], 5).astype(int),  # 5+
                       purchases_error=(rows["expected_purchases"] - rows["actual_purchases"]).abs(),
                       spend_error=(rows["expected_spend"] - rows["actual_spend"]).abs())
    names = ["pareto-nbd + gamma-gamma", "ziln"]  # the backtest's display names
    pair = rows[rows["candidate"].isin(names)]
    table = pair.pivot_table(index="frequency", columns="candidate",
                             values=["purchases_error", "spend_error"], aggfunc="mean")
    table.columns = [f"{target.split('_')[0]} MAE, {candidate}" for target, candidate in table.columns]
    table.insert(0, "customer-cutoffs", pair[pair["candidate"] == names[0]].groupby("frequency").size())
    print(f"\n## {name} (frequency 5 = 5 or more repeat purchases; MAE pooled over the cutoffs)\n")
    with pd.option_context("display.width", 200):
        print(table.round(4).to_string())
    overall = result.metrics.query("cohort == 'all' and metric in ['mae', 'auc', 'normalized_gini']"
                                   " and target != 'purchases' or metric == 'mae'").groupby(
        ["candidate", "target", "metric"])["value"].mean().unstack(["target", "metric"])
    print("\noverall (mean over cutoffs):")
    print(overall.round(4).to_string())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", choices=["cdnow", "apparel", "simulated", "all"], default="all")
    args = parser.parse_args()
    if args.data in ("simulated", "all"):
        from clvlab.data.simulate_events import simulate_engagement

        log, events, _ = simulate_engagement(6000, "2020-01-01", "2022-01-01", r=0.55,
                                             alpha=10.6, s=0.6, beta=11.7, visit_rate=4.0, seed=3)
        run("simulated engagement base with its event log", log, ["2021-06-30", "2021-09-30"],
            13, amount_col="amount", events=events)
    if args.data in ("cdnow", "all"):
        run("CDNOW master", load_cdnow(sample=False), ["1997-09-30", "1997-12-31", "1998-03-31"],
            13, amount_col="amount")
    if args.data in ("apparel", "all"):
        run("apparel", pd.read_csv(APPAREL / "apparel_transactions.csv"),
            ["2007-12-30", "2008-12-28"], 52, customer_col="Id", date_col="Date",
            amount_col="Price")


if __name__ == "__main__":
    main()
