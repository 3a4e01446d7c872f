"""The simulation study behind clvlab monitor's thresholds: false alarms without drift, and how
soon a halved purchase rate is caught.

Each replication draws a CDNOW-like log (Pareto/NBD r=0.55, alpha=10.6, s=0.61, beta=11.7 with
Gamma-Gamma spend p=6.25, q=3.74, v=15.44; customers acquired over the first 13 weeks, observed
for 65), fits Pareto/NBD and Gamma-Gamma on the RFM at week 39, scores every customer there
(26-week horizon, 90 % intervals) and monitors the scores at 8 dates after the scoring date
(weeks 1, 2, 3, 4, 6, 8, 13, 26; for drift@8 weeks 9, 10, 11, 12, 14, 16, 21, 26) with
clvlab.ops.monitoring.monitor_forecasts (what `clvlab monitor` runs, without MLflow, with its
default bands: 100 parameter draws), under three scenarios:

- ``none``: the process goes on unchanged (false alarms);
- ``drift@0``: every purchase after the scoring date is kept with probability 0.5 (thinning a
  Poisson process: the purchase rate halves at the scoring date);
- ``drift@8``: the same from 8 weeks after the scoring date.

It prints the share of runs and of checks whose verdict was watch or retrain, each rule's share
of checks it fired in, the detection delay (weeks from the drift's start to the first check
saying retrain; to the first watch), and the percentiles of each checked figure without drift
(where a threshold sits against the noise). ``--output rows.csv`` keeps every check's figures,
so other thresholds can be tried without simulating again (``--rescore rows.csv``).

    .venv/bin/python benchmarks/bench_monitoring.py --replications 50 --output /tmp/mon.csv
"""

from __future__ import annotations

import argparse
import signal
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

import clvlab
from clvlab.data.simulate import transaction_log
from clvlab.ops.monitoring import Thresholds, decide, monitor_forecasts
from clvlab.ops.serving import CLVModel

PARAMS = {"r": 0.55, "alpha": 10.6, "s": 0.61, "beta": 11.7}
SPEND = {"p": 6.25, "q": 3.74, "v": 15.44}
START, SCORED_WEEK, HORIZON = pd.Timestamp("2024-01-01"), 39, 26
SCENARIOS = {"none": None, "drift@0": 0, "drift@8": 8}
#: a Pareto/NBD fit that runs longer is given up (its parameters ran off to where the
#: likelihood needs mpmath: one of the first 23 logs took minutes) and the replication skipped
FIT_SECONDS = 60
#: the bands every check computes, so that any pair of them can be tried as thresholds
BAND_LEVELS = (0.95, 0.99, 0.999)
CHECKS = {"none": (1, 2, 3, 4, 6, 8, 13, 26), "drift@0": (1, 2, 3, 4, 6, 8, 13, 26),
          "drift@8": (9, 10, 11, 12, 14, 16, 21, 26)}


def drifted_log(log: pd.DataFrame, after: pd.Timestamp, keep: float, seed: int) -> pd.DataFrame:
    """The log with each purchase after ``after`` kept with probability ``keep`` (the purchase
    rate times ``keep`` from then on)."""
    rng = np.random.default_rng(seed)
    late = (log["date"] > after).to_numpy()
    dropped = late & (rng.random(len(log)) >= keep)
    return log[~dropped].reset_index(drop=True)


def replication(customers: int, seed: int, scenario: str) -> list[dict]:
    log = transaction_log(customers, model="pareto-nbd", params=PARAMS, spend=SPEND,
                          observation_period=SCORED_WEEK + HORIZON, seed=seed)
    scored = START + pd.Timedelta(weeks=SCORED_WEEK)
    if SCENARIOS[scenario] is not None:
        log = drifted_log(log, scored + pd.Timedelta(weeks=SCENARIOS[scenario]), 0.5, seed + 1)
    rfm = clvlab.rfm_summary(log, amount_col="amount", time_unit="W", observation_end=scored)
    model = _fit(rfm)
    if model is None:
        return [{"scenario": scenario, "seed": seed, "week": -1, "fit_timeout": 1.0}]
    scores = model.predict(rfm, params={"horizon": HORIZON, "time_unit": "W", "interval_level": 0.9})
    rows = []
    for week in CHECKS[scenario]:
        result = monitor_forecasts(model, scores, log, scored, scored + pd.Timedelta(weeks=week),
                                   horizon=HORIZON, interval_level=0.9, band_points=1,
                                   band_levels=BAND_LEVELS)
        rows.append({"scenario": scenario, "seed": seed, "week": week, **result.metrics})
    return rows


class _Slow(Exception):
    pass


def _alarm(signum, frame):
    raise _Slow()


def _fit(rfm: pd.DataFrame) -> CLVModel | None:
    """Pareto/NBD and Gamma-Gamma, or None when the Pareto/NBD fit outruns FIT_SECONDS."""
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(FIT_SECONDS)
    try:
        transaction = clvlab.ParetoNBD().fit(rfm)
    except _Slow:
        return None
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    return CLVModel(transaction, clvlab.GammaGamma().fit(rfm))


def verdicts(rows: pd.DataFrame, thresholds: Thresholds) -> pd.DataFrame:
    """Each check's verdict and the status of each rule under ``thresholds``."""
    out = []
    for _, row in rows.iterrows():
        metrics = {k: v for k, v in row.items() if k not in ("scenario", "seed", "week")
                   and isinstance(v, (int, float)) and not (isinstance(v, float) and np.isnan(v))}
        checks = decide(metrics, thresholds)
        status = set(checks["status"])
        verdict = "retrain" if "retrain" in status else "watch" if "watch" in status else "fine"
        out.append({"scenario": row["scenario"], "seed": row["seed"], "week": row["week"],
                    "verdict": verdict, **dict(zip(checks["check"], checks["status"]))})
    return pd.DataFrame(out)


def report(rows: pd.DataFrame, thresholds: Thresholds) -> None:
    if "fit_timeout" in rows:
        skipped = rows[rows["fit_timeout"] == 1]
        print(f"replications skipped for a Pareto/NBD fit over {FIT_SECONDS} s: {len(skipped)} "
              f"({', '.join(f'{a} seed {b}' for a, b in zip(skipped['scenario'], skipped['seed']))})")
        rows = rows[rows["fit_timeout"] != 1].drop(columns="fit_timeout")
    table = verdicts(rows, thresholds)
    print(f"thresholds: {thresholds}")
    for scenario, part in table.groupby("scenario", sort=False):
        runs = part.groupby("seed")["verdict"]
        print(f"\n== {scenario}: {runs.ngroups} replications, {len(part)} checks "
              f"(weeks {', '.join(map(str, CHECKS[scenario]))})")
        print(f"  runs with a watch or retrain at some check: {runs.apply(lambda v: (v != 'fine').any()).mean():.1%}; "
              f"with a retrain: {runs.apply(lambda v: (v == 'retrain').any()).mean():.1%}")
        print(f"  checks saying watch: {(part['verdict'] == 'watch').mean():.1%}, retrain: "
              f"{(part['verdict'] == 'retrain').mean():.1%}")
        rules = [c for c in part.columns if c not in ("scenario", "seed", "week", "verdict")]
        fired = {rule: part[rule].isin(["watch", "retrain"]).mean() for rule in rules}
        print("  checks each rule fired in: " + ", ".join(f"{k} {v:.1%}" for k, v in fired.items()))
        start = SCENARIOS.get(scenario)
        if start is not None:
            for verdict in ("retrain", "watch"):
                hits = part[part["verdict"].isin(["retrain"] if verdict == "retrain"
                                                  else ["watch", "retrain"])]
                hits = hits[hits["week"] > start].groupby("seed")["week"].min() - start
                delays = hits.reindex(part["seed"].unique())
                print(f"  weeks from the drift to the first {verdict}: median "
                      f"{delays.median():.0f}, mean {delays.mean():.1f}, 90th percentile "
                      f"{delays.quantile(0.9):.0f}, max {delays.max():.0f}; caught within "
                      f"{CHECKS[scenario][-1] - start} weeks in {delays.notna().mean():.0%} of runs")
        by_week = part.groupby("week")["verdict"].apply(lambda v: (v == "retrain").mean())
        print("  share saying retrain by week: " + ", ".join(f"{w}: {v:.0%}" for w, v in by_week.items()))
    quiet = rows[rows["scenario"] == "none"]
    if len(quiet):
        print("\nchecked figures without drift (percentiles 1, 5, 50, 95, 99):")
        for column in ("activity_auc", "calibration_error", "interval_coverage", "purchases_z",
                       "purchases_aggregate_pct_error", "psi.frequency", "psi.monetary_value",
                       "psi.recency", "psi.T"):
            values = quiet[column].dropna()
            print(f"  {column:30s} " + "  ".join(f"{np.percentile(values, q):9.4f}" for q in (1, 5, 50, 95, 99)))
        drifted = rows[rows["scenario"] == "drift@0"]
        if len(drifted):
            print("and with the rate halved at the scoring date (same percentiles):")
            for column in ("activity_auc", "calibration_error", "interval_coverage", "purchases_z"):
                values = drifted[column].dropna()
                print(f"  {column:30s} " + "  ".join(f"{np.percentile(values, q):9.4f}" for q in (1, 5, 50, 95, 99)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replications", type=int, default=50)
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--output", default=None, help="CSV of every check's figures")
    parser.add_argument("--rescore", default=None, help="report on a saved CSV, no simulation")
    parser.add_argument("--resume", action="store_true",
                        help="keep the replications already in --output and run the others")
    parser.add_argument("--thresholds", default=None,
                        help="overrides, e.g. band_watch=0.95,auc_watch=0.6")
    args = parser.parse_args()
    given = {}
    for item in (args.thresholds or "").split(","):
        if item.strip():
            name, _, value = item.partition("=")
            given[name.strip()] = value if name.strip() == "psi_columns" else float(value)
    thresholds = Thresholds.of({k: (tuple(v.split("+")) if k == "psi_columns" else v)
                                for k, v in given.items()})
    if args.rescore:
        report(pd.read_csv(args.rescore), thresholds)
        return
    warnings.simplefilter("ignore")
    started, rows = time.perf_counter(), []
    if args.resume and args.output and Path(args.output).exists():
        rows = pd.read_csv(args.output).to_dict("records")
    done = {(r["scenario"], r["seed"]) for r in rows}
    for scenario in args.scenarios.split(","):
        for k in range(args.replications):
            if (scenario, args.seed + 1000 * k) in done:
                continue
            rows += replication(args.customers, args.seed + 1000 * k, scenario)
            if args.output:  # kept as it goes: a long study interrupted keeps what it did
                pd.DataFrame(rows).to_csv(args.output, index=False)
        print(f"{scenario}: {args.replications} replications done at "
              f"{time.perf_counter() - started:.0f} s", flush=True)
    frame = pd.DataFrame(rows)
    print(f"{args.replications} replications x 8 checks per scenario, "
          f"{args.customers:,} customers, in {time.perf_counter() - started:.0f} s")
    report(frame, thresholds)


if __name__ == "__main__":
    main()
