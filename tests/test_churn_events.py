"""Features beyond RFM in the backtest: an event log seen by the churn adjuster and the
challengers ("ziln", "gbm"), with nothing after a cutoff (benchmarks/churn_events.py measures
the gains over several seeds)."""

from __future__ import annotations

import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from clvlab.churn import feature_frame, shift_back
from clvlab.core.errors import ClvlabError, ClvlabWarning
from clvlab.data.calibration import calibration_data
from clvlab.data.simulate_events import simulate_engagement
from clvlab.evaluation import backtest
from clvlab.models.pareto_nbd import ParetoNBD

CUTOFF, HORIZON = pd.Timestamp("2021-09-30"), 13.0
PARAMS = dict(r=0.55, alpha=10.6, s=0.6, beta=11.7)


@pytest.fixture(scope="module")
def engagement():
    return simulate_engagement(3000, "2020-01-01", "2022-01-01", **PARAMS, visit_rate=4.0, seed=1)


def auc_of(result, candidate):
    rows = result.metrics.query("cohort == 'all' and target == 'activity' and metric == 'auc' "
                                "and candidate == @candidate")
    return float(rows["value"].iloc[0])


def test_the_adjuster_with_events_sees_dropout_the_purchases_do_not_show_yet(engagement):
    tx, events, truth = engagement
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = backtest(tx, ["pareto-nbd", "pareto-nbd+churn-adjuster"], [CUTOFF], HORIZON,
                          amount_col="amount", events=events, progress=False, intervals=False)
    base, adjusted = auc_of(result, "pareto-nbd"), auc_of(result, "pareto-nbd + churn adjuster")
    # the oracle knows who is alive at the cutoff: the base model's P(any | alive), or 0
    calibration, outcome = calibration_data(tx, CUTOFF, HORIZON, amount_col="amount")
    model = ParetoNBD().fit(calibration.rfm)
    p_any = model.probability_of_purchase(calibration.rfm, HORIZON).to_numpy()
    alive = (truth.loc[calibration.rfm.index, "dropout"] > CUTOFF).to_numpy()
    oracle = roc_auc_score(outcome > 0, np.where(alive, p_any / model.p_alive(calibration.rfm), 0))
    assert base == pytest.approx(roc_auc_score(outcome > 0, p_any), abs=1e-9)
    assert adjusted - base >= 0.03, (base, adjusted, oracle)
    assert (adjusted - base) / (oracle - base) >= 0.6, (base, adjusted, oracle)


def test_an_uninformative_event_log_does_not_make_the_adjuster_worse():
    tx, events, _ = simulate_engagement(3000, "2020-01-01", "2022-01-01", **PARAMS,
                                        visit_rate=4.0, visits_stop="never", seed=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = backtest(tx, ["pareto-nbd", "pareto-nbd+churn-adjuster"], [CUTOFF], HORIZON,
                          amount_col="amount", events=events, progress=False, intervals=False)
    assert auc_of(result, "pareto-nbd + churn adjuster") >= auc_of(result, "pareto-nbd") - 0.005


def test_no_event_after_the_cutoff_reaches_the_features(engagement):
    tx, events, _ = engagement
    calibration, _ = calibration_data(tx, CUTOFF, HORIZON, amount_col="amount", events=events)
    later = events.assign(date=events["date"] + pd.Timedelta(days=400))  # all moved past it
    both = pd.concat([events[events["date"] <= CUTOFF], later[later["date"] > CUTOFF]])
    moved, _ = calibration_data(tx, CUTOFF, HORIZON, amount_col="amount", events=both)
    pd.testing.assert_frame_equal(feature_frame(calibration), feature_frame(moved))
    earlier, _ = shift_back(calibration, HORIZON)
    assert earlier.events["ts"].max() <= earlier.cutoff
    features = feature_frame(earlier)
    assert {"visit_count_30d", "visit_since_last"} <= set(features.columns)
    # a customer without any visit: counts 0, the time since the last one unknown (NaN)
    never = features["visit_count"] == 0
    assert never.any() and features.loc[never, "visit_since_last"].isna().all()


def test_event_ids_of_another_kind_are_refused_not_read_as_no_visits(engagement):
    tx, events, _ = engagement
    text_ids = events.assign(customer_id="c" + events["customer_id"].astype(str))
    with pytest.raises(ClvlabError, match="events: the event log's customer ids match none"):
        calibration_data(tx, CUTOFF, HORIZON, amount_col="amount", events=text_ids)
    with pytest.raises(ClvlabError, match="events: the event log's customer ids match none"):
        backtest(tx, ["gbm"], [CUTOFF], HORIZON, amount_col="amount", events=text_ids,
                 progress=False)  # refused up front, not a candidate's failure at a cutoff
    # ids that match only in part (here: 3 % of the customers) are said, once
    few = tx["customer_id"].drop_duplicates().iloc[:max(1, tx["customer_id"].nunique() // 33)]
    with pytest.warns(ClvlabWarning, match=r"only \d+ of the purchase log's [\d,]+ customers"):
        calibration_data(tx, CUTOFF, HORIZON, amount_col="amount",
                         events=events[events["customer_id"].isin(few)])


def test_the_challengers_backtest_beside_the_models_on_the_command_line(engagement, tmp_path):
    tx, events, _ = engagement
    tx.to_csv(tmp_path / "log.csv", index=False)
    events.to_csv(tmp_path / "events.csv", index=False)
    out = tmp_path / "metrics.csv"
    run = subprocess.run([sys.executable, "-m", "clvlab.cli", "backtest", str(tmp_path / "log.csv"),
                          "--cutoffs", "2021-09-30", "--horizon", "13", "--amount-col", "amount",
                          "--candidates", "pareto-nbd+gamma-gamma,ziln,gbm", "--events",
                          str(tmp_path / "events.csv"), "-o", str(out), "--no-progress",
                          "--interval-draws", "0"], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    metrics = pd.read_csv(out)
    table = metrics.query("cohort == 'all'").pivot_table(index="candidate",
                                                         columns=["target", "metric"],
                                                         values="value")
    assert {"ziln", "gbm", "pareto-nbd + gamma-gamma"} == set(table.index)
    for candidate in ("ziln", "gbm"):  # every target, the value metrics and the distribution
        row = table.loc[candidate]
        # (decile_mape: the lowest deciles realised no spend, pooled upwards, not NaN)
        for key in [("spend", "normalized_gini"), ("spend", "spearman"), ("spend", "decile_mape"),
                    ("activity", "auc"), ("purchases", "coverage_90"), ("purchases", "log_score")]:
            assert np.isfinite(row[key]), (candidate, key)
    # the events carry dropout: both challengers rank activity above the plain model
    assert table.loc["gbm", ("activity", "auc")] > table.loc["pareto-nbd + gamma-gamma",
                                                              ("activity", "auc")]
