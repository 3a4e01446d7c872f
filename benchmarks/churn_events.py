"""Does an engagement log let the churn adjuster see dropout before the purchases show it?

    .venv/bin/python benchmarks/churn_events.py [--seeds 5] [--customers 4000] [--lead-weeks 0]

Simulated bases (clvlab.data.simulate_events.simulate_engagement: Pareto/NBD purchases with
CDNOW-like parameters r=0.55, alpha=10.6, s=0.6, beta=11.7 per week, two years from
2020-01-01, half the customers acquired in the first year; visits at 4x each customer's
purchase rate). The cutoff is 2021-09-30, the horizon 13 weeks. Per seed, on the customers
acquired by the cutoff, the activity AUC (any purchase in the 13 weeks) of:

- base: Pareto/NBD's P(any purchase) fitted at the cutoff;
- adjuster: the backtest candidate ``pareto-nbd+churn-adjuster`` with ``events=`` (trained one
  horizon back, its gain checked one more horizon back);
- oracle: the base model's P(any purchase | alive) for the customers truly alive at the
  cutoff and 0 for the others (what knowing each customer's state would give);

and ``recovered`` = (adjuster - base) / (oracle - base). Two logs per seed: "engagement" (visits
stop at dropout, ``--lead-weeks`` before it) and "RFM-only" (visits go on to the end whatever
the customer does: the log says nothing the purchases do not), where the adjuster must not be
worse than the base model beyond noise.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from clvlab.data.calibration import calibration_data
from clvlab.data.simulate_events import simulate_engagement
from clvlab.evaluation import backtest
from clvlab.models.pareto_nbd import ParetoNBD

PARAMS = dict(r=0.55, alpha=10.6, s=0.6, beta=11.7)
CUTOFF, HORIZON = pd.Timestamp("2021-09-30"), 13.0


def one(seed: int, customers: int, lead: float, stop: str) -> dict[str, float]:
    tx, events, truth = simulate_engagement(customers, "2020-01-01", "2022-01-01", **PARAMS,
                                            visit_rate=4.0, visits_stop=stop, lead_weeks=lead,
                                            seed=seed)
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = backtest(tx, ["pareto-nbd+churn-adjuster"], [CUTOFF], HORIZON,
                          amount_col="amount", events=events, progress=False, intervals=False)
    seconds = time.perf_counter() - started
    rows = result.metrics.query("cohort == 'all' and target == 'activity' and metric == 'auc'")
    adjuster = float(rows["value"].iloc[0])
    calibration, outcome = calibration_data(tx, CUTOFF, HORIZON, amount_col="amount")
    model = ParetoNBD().fit(calibration.rfm)
    p_any = model.probability_of_purchase(calibration.rfm, HORIZON).to_numpy()
    alive = (truth.loc[calibration.rfm.index, "dropout"] > CUTOFF).to_numpy()
    oracle = np.where(alive, p_any / model.p_alive(calibration.rfm).to_numpy(), 0.0)
    active = outcome.to_numpy() > 0
    base = roc_auc_score(active, p_any)
    best = roc_auc_score(active, oracle)
    return {"seed": seed, "log": "engagement" if stop == "at_dropout" else "RFM-only",
            "customers": len(active), "base": base, "adjuster": adjuster, "oracle": best,
            "gain": adjuster - base, "oracle_gain": best - base,
            "recovered": (adjuster - base) / (best - base), "seconds": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--customers", type=int, default=4000)
    parser.add_argument("--lead-weeks", type=float, default=0.0)
    args = parser.parse_args()
    rows = [one(seed, args.customers, args.lead_weeks, stop)
            for seed in range(1, args.seeds + 1) for stop in ("at_dropout", "never")]
    table = pd.DataFrame(rows)
    with pd.option_context("display.width", 160, "display.max_columns", 20):
        print(table.round(4).to_string(index=False))
        print("\nmeans by log:")
        print(table.groupby("log")[["base", "adjuster", "oracle", "gain", "oracle_gain",
                                    "recovered", "seconds"]].mean().round(4).to_string())
        print("min gain by log:", table.groupby("log")["gain"].min().round(4).to_dict())


if __name__ == "__main__":
    main()
