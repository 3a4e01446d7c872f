"""The challengers as registered CLV models: a ZILN or GBM-Poisson challenger in the place of
the churn adjuster (clvlab.churn.ChallengerAdjustment), saved without pickles, scored by the
served model and the scoring job, and promoted on a backtest of its own candidate."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from clvlab.churn import ChallengerAdjustment, feature_frame
from clvlab.core.errors import ClvlabError
from clvlab.data.calibration import calibration_data
from clvlab.evaluation.candidate_names import make_candidate
from clvlab.models.customer_scores import score_customers
from clvlab.ops.selection import _challenger_parts

AS_OF, HORIZON = "1998-06-30", 13.0


@pytest.fixture(scope="module")
def fitted(cdnow_sample):
    calibration, _ = calibration_data(cdnow_sample, AS_OF, amount_col="amount")
    parts = {}
    for spec in ("ziln", "gbm"):
        candidate = make_candidate(spec).fit(calibration, HORIZON)
        parts[spec] = (candidate, _challenger_parts(candidate, calibration))
    return calibration, parts


@pytest.mark.parametrize("spec", ["ziln", "gbm"])
def test_scores_are_the_candidates_predictions(fitted, spec):
    calibration, parts = fitted
    candidate, (transaction, spend, adjustment) = parts[spec]
    X = feature_frame(calibration)
    scores = score_customers(transaction, spend, adjustment, X, horizon=HORIZON)
    predicted = candidate.predict(calibration, HORIZON)
    np.testing.assert_allclose(scores["expected_purchases"], predicted["expected_purchases"],
                               rtol=1e-10)
    np.testing.assert_allclose(scores["probability_of_purchase"], predicted["p_active"],
                               rtol=1e-10)
    # CLV: the BTYD model's, scaled to the challenger's spend (undiscounted: equal to it)
    np.testing.assert_allclose(scores["clv"], predicted["expected_spend"], rtol=1e-8)
    np.testing.assert_allclose(scores["p_alive"], transaction.p_alive(calibration.rfm))
    with pytest.raises(ClvlabError, match=f"the challenger '{spec}' was trained for a horizon of 13"):
        score_customers(transaction, spend, adjustment, X, horizon=26)


def test_files_round_trip_without_pickles_and_refuse_another_kind(fitted, tmp_path):
    calibration, parts = fitted
    _, (transaction, spend, adjustment) = parts["gbm"]
    adjustment.save(tmp_path / "challenger.json")
    assert json.loads((tmp_path / "challenger.json").read_text())["candidate"] == "gbm"
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "challenger.json", "challenger.purchases.skops", "challenger.spend.skops"]
    loaded = ChallengerAdjustment.load(tmp_path / "challenger.json")
    loaded.base_model_ = transaction
    X = feature_frame(calibration)
    pd.testing.assert_frame_equal(loaded.adjusted_activity(X), adjustment.adjusted_activity(X))
    transaction.save(tmp_path / "model.json")
    with pytest.raises(ClvlabError, match="not a challenger"):
        ChallengerAdjustment.load(tmp_path / "model.json")


@pytest.mark.once
def test_a_registered_challenger_is_scored_by_the_job_and_promoted_on_its_backtest(
        fitted, scratch_store, cdnow_sample):
    from clvlab.ops.serving import load_clv_model, log_clv_model, promote

    calibration, parts = fitted
    _, (transaction, spend, adjustment) = parts["ziln"]
    log_clv_model(transaction, spend, adjustment, registered_model_name="ziln-clv")
    model = load_clv_model("models:/ziln-clv@challenger")
    assert isinstance(model.adjuster, ChallengerAdjustment) and model.adjuster.base_model_ is not None
    cdnow_sample.to_csv(scratch_store / "log.csv", index=False)
    run = subprocess.run([sys.executable, "-m", "clvlab.cli", "score", "--model",
                          "models:/ziln-clv@challenger", "--transactions", "log.csv",
                          "--as-of", AS_OF, "-o", "scores.parquet", "--horizon", "13",
                          "--amount-col", "amount"], capture_output=True, text=True,
                         cwd=scratch_store)
    assert run.returncode == 0, run.stderr
    scores = pd.read_parquet(scratch_store / "scores.parquet").set_index("customer_id")
    expected = score_customers(transaction, spend, adjustment, feature_frame(calibration),
                               horizon=HORIZON)
    np.testing.assert_allclose(scores.loc[expected.index, "clv"], expected["clv"], rtol=1e-9)
    # the evidence of a promotion must have backtested the candidate "ziln"
    from clvlab.evaluation import backtest
    from clvlab.ops.tracking import log_backtest

    result = backtest(cdnow_sample, ["pareto-nbd+gamma-gamma"], ["1998-03-31"], 13,
                      amount_col="amount", progress=False, intervals=False)
    other = log_backtest(result, experiment="evidence")
    with pytest.raises(ClvlabError, match="did not test .*'ziln'"):
        promote("ziln-clv", backtest_run=other)


@pytest.mark.once
def test_the_scoring_job_reads_the_event_log_a_model_was_trained_on(scratch_store):
    from clvlab.churn import ChurnAdjuster, churn_training_data
    from clvlab.data.simulate_events import simulate_engagement
    from clvlab.models.pareto_nbd import ParetoNBD
    from clvlab.ops.serving import log_clv_model

    log, events, _ = simulate_engagement(600, "2020-01-01", "2022-01-01", r=0.55, alpha=10.6,
                                         s=0.6, beta=11.7, visit_rate=4.0, seed=5)
    X, y = churn_training_data(log, "2021-06-30", 13, amount_col="amount", events=events)
    adjuster = ChurnAdjuster(ParetoNBD(), horizon=13, gain_check=False).fit(X, y)
    assert "visit_since_last" in adjuster.feature_names_in_
    log_clv_model(adjuster.base_model_, None, adjuster, registered_model_name="events-clv")
    log.to_csv(scratch_store / "log.csv", index=False)
    events.to_csv(scratch_store / "events.csv", index=False)
    command = [sys.executable, "-m", "clvlab.cli", "score", "--model", "models:/events-clv@challenger",
               "--transactions", "log.csv", "--as-of", "2021-09-30", "-o", "scores.csv",
               "--horizon", "13", "--amount-col", "amount", "--engine", "pandas"]
    missing = subprocess.run(command, capture_output=True, text=True, cwd=scratch_store)
    assert missing.returncode != 0 and "--events FILE" in missing.stderr
    run = subprocess.run(command + ["--events", "events.csv"], capture_output=True, text=True,
                         cwd=scratch_store)
    assert run.returncode == 0, run.stderr
    scores = pd.read_csv(scratch_store / "scores.csv").set_index("customer_id")
    X_now = churn_training_data(log, "2021-09-30", amount_col="amount", events=events)
    expected = adjuster.probability_of_purchase(X_now)
    np.testing.assert_allclose(scores.loc[X_now.index, "probability_of_purchase"], expected,
                               rtol=1e-9)
