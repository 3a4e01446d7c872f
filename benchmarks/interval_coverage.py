"""The interval table of docs/guide/predictive.md: how often each model's per-customer 90 % prediction intervals of
holdout purchases held the realised counts, and its mean log score, on CDNOW and the apparel data.

    .venv/bin/python benchmarks/interval_coverage.py [--draws 100]

- CDNOW: the master log (23,570 customers, ``clvlab.datasets.load_cdnow(sample=False)``), the
  classic split: calibration to 1997-09-30, a 39-week holdout (to 1998-06-30), weeks.
- apparel: ``../shared/data/apparel/apparel_transactions.csv`` (600 customers, CLVTools' example
  data), calibration to 2006-12-31 (CLVTools' 104 weeks), a 52-week holdout, weeks.

Every number comes through ``clvlab.backtest`` (one cutoff each), as a user would get it, except
the model's own expected coverage and the total's interval, which refit the same model (the
fit is deterministic) to show the interval itself. Columns:

- ``cov90``: share of customers whose holdout count lay in their central 90 % interval
  (``prediction_interval``); a count is discrete, so a calibrated model covers at least 90 %;
- ``claimed``: the same share as the model expects it (the mean over customers of its own
  P(lower <= X <= upper)): ``cov90`` well below it means the intervals are too narrow;
- ``PIT cov90``: the discreteness-free form (expectation exactly 0.90 for a correct model);
- ``log score``: mean natural log of the PMF at the realised count (nats; higher is better);
- ``RPS``: ranked probability score (lower is better);
- ``total 90 %``: the 90 % interval of the cohort's total holdout purchases
  (``purchase_totals``, ``--draws`` parameter draws from the asymptotic normal) and the
  realised total.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd

import clvlab
from clvlab.evaluation.interval_metrics import customer_scores
from clvlab.models.totals import purchase_totals

APPAREL = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "apparel"
MODELS = {"bg-nbd": clvlab.BetaGeo, "mbg-nbd": clvlab.ModifiedBetaGeo, "pareto-nbd": clvlab.ParetoNBD}


def datasets():
    """(name, log, cutoff, horizon in weeks) of each data set."""
    cdnow = clvlab.datasets.load_cdnow(sample=False)
    apparel = pd.read_csv(APPAREL / "apparel_transactions.csv", parse_dates=["Date"])
    apparel = apparel.rename(columns={"Id": "customer_id", "Date": "date", "Price": "amount"})
    return [("CDNOW master", cdnow, "1997-09-30", 39.0), ("apparel", apparel, "2006-12-31", 52.0)]


def rows_for(name, log, cutoff, horizon, draws):
    started = time.perf_counter()
    result = clvlab.backtest(log, [*MODELS, "historical-average"], cutoffs=[cutoff],
                             horizon=horizon, interval_draws=draws, progress=False,
                             keep_predictions=False)
    seconds = time.perf_counter() - started
    end = pd.Timestamp(cutoff) + pd.Timedelta(weeks=horizon)
    rfm = clvlab.rfm_summary(log, time_unit="W", calibration_end=cutoff, observation_end=end)
    actual = rfm["frequency_holdout"].to_numpy()
    summary = result.summary()["purchases"]
    out = []
    for candidate in [*MODELS, "historical-average"]:
        row = {"data": name, "model": candidate, "customers": len(rfm)}
        row.update({key: summary.loc[candidate].get(metric, np.nan) for key, metric in
                    (("cov90", "coverage_90"), ("PIT cov90", "pit_coverage_90"),
                     ("log score", "log_score"), ("RPS", "rps"))})
        if candidate in MODELS:
            model = MODELS[candidate]().fit(rfm)
            interval = model.prediction_interval(rfm, horizon, level=0.9)
            upper = model.purchase_cdf(rfm, interval["upper"].to_numpy(), horizon).to_numpy()
            below = model.purchase_cdf(rfm, np.maximum(interval["lower"].to_numpy() - 1, 0),
                                       horizon).to_numpy()
            row["claimed"] = float(np.mean(upper - np.where(interval["lower"] > 0, below, 0.0)))
            scores = customer_scores(model, rfm, horizon, actual)
            assert abs(scores["covered_90"].mean() - row["cov90"]) < 1e-12  # the same numbers
            total = purchase_totals(model, rfm, horizon, level=0.9, parameter_draws=draws).iloc[0]
            row["total 90 %"] = f"{total['lower 90%']:,.0f} to {total['upper 90%']:,.0f}"
        else:
            row["claimed"], row["total 90 %"] = np.nan, "n/a"
        row["actual total"] = f"{actual.sum():,.0f}"
        out.append(row)
    print(f"{name}: {len(rfm):,} customers, cutoff {cutoff}, {horizon:g}-week holdout; "
          f"backtest {seconds:.1f} s")
    return out


def markdown(frame: pd.DataFrame) -> str:
    def cell(value):
        if isinstance(value, str):
            return value
        if value != value:
            return "n/a"
        if isinstance(value, (int, np.integer)):
            return f"{value:,}"
        return f"{value:.3f}"

    lines = ["| " + " | ".join(frame.columns) + " |",
             "|---|---|" + "---:|" * (len(frame.columns) - 2)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=100,
                        help="parameter draws behind the totals' intervals (default 100)")
    args = parser.parse_args()
    rows = []
    for name, log, cutoff, horizon in datasets():
        rows += rows_for(name, log, cutoff, horizon, args.draws)
    table = pd.DataFrame(rows)[["data", "model", "customers", "cov90", "claimed", "PIT cov90",
                                "log score", "RPS", "total 90 %", "actual total"]]
    print()
    print(markdown(table))


if __name__ == "__main__":
    main()
