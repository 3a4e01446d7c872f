"""New customers: from how many repeat purchases does the BTYD model beat the ZILN challenger?

    .venv/bin/python benchmarks/new_customers.py [--data cdnow|apparel|both]

Backtests Pareto/NBD + Gamma-Gamma, the "ziln" challenger and the hand-over candidates
"ziln-handover-<k>" (ZILN for customers with fewer than k repeat purchases, the BTYD model
from k on) on CDNOW master (13 weeks, cutoffs 1997-09-30, 1997-12-31, 1998-03-31) and the
apparel log (52 weeks, cutoffs 2007-12-30, 2008-12-28), keeping every customer's predictions;
prints, by calibration frequency (repeat purchases), the customers and the purchases and spend
MAE of each candidate, pooled over the cutoffs, and the overall MAEs of the hand-overs.
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
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = backtest(log, CANDIDATES, cutoffs, horizon, progress=False, intervals=False,
                          keep_predictions=True, **options)
    rows = result.predictions
    rows = rows.assign(frequency=np.minimum(rows["calibration_frequency"], 5).astype(int),
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
    overall = result.metrics.query("cohort == 'all' and metric == 'mae'").groupby(
        ["candidate", "target"])["value"].mean().unstack()
    print("\noverall MAE (mean over cutoffs):")
    print(overall.round(4).to_string())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", choices=["cdnow", "apparel", "both"], default="both")
    args = parser.parse_args()
    if args.data in ("cdnow", "both"):
        run("CDNOW master", load_cdnow(sample=False), ["1997-09-30", "1997-12-31", "1998-03-31"],
            13, amount_col="amount")
    if args.data in ("apparel", "both"):
        run("apparel", pd.read_csv(APPAREL / "apparel_transactions.csv"),
            ["2007-12-30", "2008-12-28"], 52, customer_col="Id", date_col="Date",
            amount_col="Price")


if __name__ == "__main__":
    main()
