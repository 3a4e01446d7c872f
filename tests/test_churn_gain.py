"""The churn adjuster checks its own gain: on a window whose outcome is known it compares the
base model with the adjustment, applies the adjustment only where it helps beyond noise, says
so, and keeps the decision in its files."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.metrics import roc_auc_score

import clvlab
from clvlab import ChurnAdjuster, ClvlabError
from clvlab.backtesting import ModelCandidate, calibration_data
from clvlab.churn import (SPEND_FEATURES, ChurnAdjustedCandidate, GainCheck,
                          UncheckedAdjustmentWarning, check_gain, churn_training_data,
                          feature_frame, shift_back, window_purchases)
from clvlab.churn.gain import _weighted_auc

APPAREL = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "apparel"


@pytest.fixture(scope="module")
def log():
    return clvlab.datasets.load_cdnow(sample=True)


def _simulated(n=6000, seed=0):
    """Customers whose true P(any purchase) a 'classifier' knows and a 'base model' blurs."""
    rng = np.random.default_rng(seed)
    truth = 1 / (1 + np.exp(-rng.normal(-1.0, 1.5, n)))
    purchases = rng.binomial(1, truth) * (1 + rng.poisson(1.0, n))
    blurred = 1 / (1 + np.exp(-(0.3 * np.log(truth / (1 - truth)) - 1.0 + rng.normal(0, 1.0, n))))
    per_buyer = 2.0  # E[N | N >= 1] of the simulation
    return truth, blurred, purchases, per_buyer


def test_weighted_auc_is_the_auc_of_the_repeated_rows():
    rng = np.random.default_rng(1)
    score = rng.integers(0, 20, 500) / 20.0  # many ties
    positive = rng.random(500) < 0.3
    counts = rng.poisson(1.0, (3, 500)).astype(float)
    for row, auc in zip(counts, _weighted_auc(score, positive, counts)):
        repeated = np.repeat(np.arange(500), row.astype(int))
        assert auc == pytest.approx(roc_auc_score(positive[repeated], score[repeated]), abs=1e-12)


def test_check_keeps_a_real_gain():
    truth, blurred, purchases, per_buyer = _simulated()
    check = check_gain(blurred * per_buyer, blurred, truth, purchases)
    assert check.activity_weight > 0 and check.count_weight > 0
    assert check.metrics["brier"]["chosen"] < check.metrics["brier"]["base"]
    assert check.metrics["auc"]["chosen"] > check.metrics["auc"]["base"]
    assert check.metrics["mae"]["chosen"] < check.metrics["mae"]["base"]
    assert check.customers == len(truth)


def test_check_refuses_harm_and_noise():
    truth, _, purchases, per_buyer = _simulated()
    # the base model knows the truth; the classifier adds noise: nothing to gain
    rng = np.random.default_rng(2)
    noisy = np.clip(truth + rng.normal(0, 0.1, len(truth)), 0.001, 0.999)
    check = check_gain(truth * per_buyer, truth, noisy, purchases)
    assert (check.activity_weight, check.count_weight) == (0.0, 0.0)
    assert check.metrics["mae"]["chosen"] == check.metrics["mae"]["base"]
    assert "left alone" in check.reason
    # the CDNOW failure: a classifier of another age raises the rare buyers' P(any purchase)
    raised = np.where(truth < 0.2, truth * 2.4, truth).clip(max=0.999)
    assert check_gain(truth * per_buyer, truth, raised, purchases).count_weight == 0.0
    # lower expectations for all gain MAE on a log of mostly zeros, but the classifier's
    # P(any purchase) is worse: no count adjustment without an activity gain
    halved = truth * 0.5
    lowered = check_gain(truth * per_buyer, truth, halved, purchases)
    assert lowered.metrics["mae"]["adjusted"] < lowered.metrics["mae"]["base"]
    assert (lowered.activity_weight, lowered.count_weight) == (0.0, 0.0)
    # one outcome only: no check, and the base model is left alone
    assert check_gain(truth, truth, truth, np.zeros(len(truth))).reason.startswith("no check possible")


def _apparel(cutoff):
    transactions = pd.read_csv(APPAREL / "apparel_transactions.csv")
    attributes = pd.read_csv(APPAREL / "apparel_static_covariates.csv").set_index("Id").astype(float)
    return calibration_data(transactions, cutoff, 52, customer_col="Id", date_col="Date",
                            customer_attributes=attributes)


def test_check_on_the_apparel_log_finds_the_harm_and_leaves_the_base_model():
    """The issue's case: on the apparel log the unchecked adjuster lowered the AUC at every
    cutoff. At 2007-12-30 the check (trained at 2005-12-31, window 2006-12-31 to 2007-12-30)
    sees the same harm the unchecked adjuster did at 2006-12-31, and predictions are the base
    model's."""
    calibration, _ = _apparel("2007-12-30")
    adjusted = ChurnAdjustedCandidate(clvlab.ParetoNBD()).fit(calibration, 52)
    check = adjusted.decision_
    assert check.customers == 600
    assert check.metrics["auc"]["adjusted"] < check.metrics["auc"]["base"]
    assert check.metrics["mae"]["adjusted"] > check.metrics["mae"]["base"]
    assert (check.activity_weight, check.count_weight) == (0.0, 0.0)
    base = ModelCandidate(clvlab.ParetoNBD()).fit(calibration, 52)
    pd.testing.assert_frame_equal(adjusted.predict(calibration, 52), base.predict(calibration, 52))


def test_no_check_possible_leaves_the_base_model_alone(log):
    # 1997-06-30 less two 13-week horizons is before the first CDNOW purchase: nothing to check
    calibration, _ = calibration_data(log, "1997-06-30", 13, amount_col="amount")
    adjusted = ChurnAdjustedCandidate(clvlab.BetaGeo()).fit(calibration, 13)
    assert adjusted.decision_.reason.startswith("no check possible")
    assert adjusted.adjuster_ is None
    base = ModelCandidate(clvlab.BetaGeo()).fit(calibration, 13)
    pd.testing.assert_frame_equal(adjusted.predict(calibration, 13), base.predict(calibration, 13))
    # unchecked, the old behaviour: the full adjustment
    with pytest.warns(UncheckedAdjustmentWarning):  # an explicit opt-out, and it says so
        unchecked = ChurnAdjustedCandidate(clvlab.BetaGeo(), check_gain=False).fit(calibration, 13)
    assert unchecked.decision_ is None and unchecked.adjuster_.count_weight_ == 1.0
    assert not np.allclose(unchecked.predict(calibration, 13)["expected_purchases"],
                           base.predict(calibration, 13)["expected_purchases"])


def test_window_purchases_are_the_outcome_of_the_earlier_view(log):
    calibration, _ = calibration_data(log, "1997-12-31", 13, amount_col="amount")
    earlier, active = shift_back(calibration, 13)
    purchases = window_purchases(calibration, 13)
    direct, outcome = calibration_data(log, pd.Timestamp("1997-12-31") - pd.Timedelta(weeks=13), 13,
                                       amount_col="amount")
    assert purchases.index.equals(earlier.rfm.index)
    np.testing.assert_array_equal(purchases.to_numpy(), outcome.to_numpy())
    np.testing.assert_array_equal(purchases.to_numpy() > 0, active.to_numpy())


def test_weights_shrink_the_adjustment_and_travel_with_the_file(log, tmp_path):
    X, y = churn_training_data(log, "1997-09-30", 13, amount_col="amount")
    with pytest.warns(UncheckedAdjustmentWarning):
        adjuster = ChurnAdjuster(clvlab.BetaGeo(), horizon=13, gain_check=False).fit(X, y)
    assert "not checked" in adjuster.summary() and "not checked" in repr(adjuster)
    full = adjuster.adjusted_activity(X)
    check = GainCheck(0.5, 0.0, 100, "a gain in activity only: expected purchases left to the "
                      "base model", {"auc": {"base": 0.8, "adjusted": 0.82, "chosen": 0.81}})
    adjuster.use_check(check)
    half = adjuster.adjusted_activity(X)
    base = full["base_probability_of_purchase"]
    np.testing.assert_allclose(half["probability_of_purchase"],
                               base + 0.5 * (full["probability_of_purchase"] - base))
    np.testing.assert_array_equal(half["adjustment_factor"], 1.0)
    rfm = X[["frequency", "recency", "T"]]
    np.testing.assert_allclose(adjuster.expected_purchases(X),
                               adjuster.base_model_.expected_purchases(rfm, 13))
    assert "activity weight 0.5" in adjuster.summary() and "left to the base model" in adjuster.summary()
    assert "counts weight 0" in repr(adjuster)
    adjuster.save(tmp_path / "a.json")
    loaded = ChurnAdjuster.load(tmp_path / "a.json")
    assert loaded.check_ == check and loaded.activity_weight_ == 0.5 and loaded.count_weight_ == 0.0
    pd.testing.assert_frame_equal(loaded.adjusted_activity(X), half)
    # a file of version 1 (before the weights) applied the whole adjustment, and still does
    payload = json.loads((tmp_path / "a.json").read_text())
    for key in ("activity_weight", "count_weight", "check"):
        del payload[key]
    payload["schema_version"] = 1
    (tmp_path / "a.json").write_text(json.dumps(payload))
    old = ChurnAdjuster.load(tmp_path / "a.json")
    assert (old.activity_weight_, old.count_weight_, old.check_) == (1.0, 1.0, None)
    pd.testing.assert_frame_equal(old.adjusted_activity(X), full)
    with pytest.raises(ClvlabError, match="GainCheck"):
        adjuster.use_check({"activity_weight": 1})


def test_threads_are_a_setting(log):
    adjuster = ChurnAdjuster(clvlab.BetaGeo(), horizon=13, n_threads=None)
    assert clone(adjuster).get_params()["n_threads"] is None
    assert ChurnAdjuster().get_params()["n_threads"] == 1


def test_a_log_without_amounts_has_no_spend_features(log):
    """Unknown spend is no feature: without an amount column the classifier sees no
    monetary_value or order values (a column of zeros, or NaN, would be all it could learn)."""
    calibration, _ = calibration_data(log, "1997-12-31", 13)
    X = feature_frame(calibration)
    assert not set(SPEND_FEATURES) & set(X.columns)
    assert np.all(np.isfinite(X.to_numpy()))
    earlier, _ = shift_back(calibration, 13)
    assert "monetary_value" not in earlier.rfm.columns
    with pytest.warns(UncheckedAdjustmentWarning):
        predicted = ChurnAdjustedCandidate(clvlab.BetaGeo(), check_gain=False).fit(calibration, 13) \
            .predict(calibration, 13)
    assert np.all(np.isfinite(predicted.to_numpy()))
