"""The backtest table of docs/guide/backtesting.md: every candidate on the CDNOW master log (23,570 customers).

    .venv/bin/python benchmarks/backtest_cdnow.py

Cutoffs 1997-09-30, 1997-12-31 and 1998-03-31, a 13-week holdout window after each, weeks as
the time unit; prints the mean of each metric over the cutoffs as a Markdown table, the
activity AUC at each cutoff, and the churn adjuster against its unadjusted model per cutoff.
"""

import time

import pandas as pd

import clvlab

CANDIDATES = ["pareto-nbd+gamma-gamma", "pareto-nbd+gamma-gamma+churn-adjuster",
              "bg-nbd+gamma-gamma", "bg-nbd+gamma-gamma+churn-adjuster", "mbg-nbd+gamma-gamma",
              "historical-average", "historical-ltv", "arpu-churn", "aov-frequency-lifespan",
              "active-90d"]


def markdown(frame, digits=3) -> str:
    header = "| " + " | ".join([frame.index.name or ""] + list(frame.columns)) + " |"
    rule = "|---" + "|---:" * len(frame.columns) + "|"
    rows = ["| " + " | ".join([str(i)] + ["n/a" if v != v else f"{v:.{digits}f}" for v in row]) + " |"
            for i, row in zip(frame.index, frame.to_numpy())]
    return "\n".join([header, rule, *rows])


def main() -> None:
    log = clvlab.datasets.load_cdnow(sample=False)
    started = time.perf_counter()
    result = clvlab.backtest(log, CANDIDATES, cutoffs=["1997-09-30", "1997-12-31", "1998-03-31"],
                             horizon=13, amount_col="amount", keep_predictions=False)
    print(f"{log['customer_id'].nunique():,} customers, {len(CANDIDATES)} candidates, 3 cutoffs "
          f"in {time.perf_counter() - started:.1f} s\n")
    print(markdown(result._headline()))
    print()
    print(markdown(result.per_cutoff("activity", "auc").T))
    print()
    rows = {}
    for base in ("pareto-nbd + gamma-gamma", "bg-nbd + gamma-gamma"):
        for target, metric in (("activity", "auc"), ("activity", "brier"), ("purchases", "mae")):
            table = result.per_cutoff(target, metric)
            for cutoff in [*table.index, "mean"]:
                pair = table.mean() if cutoff == "mean" else table.loc[cutoff]
                plain, adjusted = pair[base], pair[f"{base} + churn adjuster"]
                rows[f"{base}, {target} {metric}, {cutoff}"] = (plain, adjusted, adjusted - plain)
    frame = pd.DataFrame.from_dict(rows, orient="index",
                                   columns=["unadjusted", "adjusted", "difference"])
    print(markdown(frame.rename_axis("model, metric, cutoff"), 4))

if __name__ == "__main__":
    main()
