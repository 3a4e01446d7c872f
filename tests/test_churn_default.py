"""The churn adjuster as the user guide shows it (docs/guide/churn.md; issue 29, item 4):
``fit`` checks its own gain on held-out customers, so the default adjuster is never worse than
its base model; it falls back to the base model with a warning naming the metrics, the check is
learned state (repr, summary, files), and an unchecked adjuster is an explicit opt-out that
warns.

Before the check was the default, ``ChurnAdjuster(...).fit(X, y)`` applied the full adjustment:
on the apparel log it made every metric worse (purchases MAE 0.451 -> 0.475, AUC 0.918 -> 0.902,
Brier 0.088 -> 0.094, 52 weeks after 2008-12-28), as it does below where the features are noise.
"""

import json
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import clvlab
from clvlab import ChurnAdjuster, ClvlabError
from clvlab.churn import (AdjustmentFallbackWarning, GainCheck, UncheckedAdjustmentWarning,
                          churn_training_data)

HORIZON = 13.0


def _logistic():
    """A fast classifier (an unscaled logistic regression took 11 s to converge here)."""
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))


def _simulated(informative: bool, n: int = 3000, seed: int = 1):
    """X, y and purchases (13 weeks after 2024-11-01) for a log of two halves of customers,
    with the attributes ``segment`` and ``noise``. Informative: the second half drops out 25
    times faster and ``segment`` says which half a customer is in (the RFM summary cannot).
    Not: both halves alike, ``segment`` a coin flip; every feature beyond the RFM summary is
    noise (a Pareto/NBD log: the summary holds all there is to know)."""
    slow, fast = dict(r=0.8, alpha=5.0, s=1.0, beta=40.0), dict(r=0.8, alpha=5.0, s=1.0, beta=1.5)
    log, segment = clvlab.simulate.segmented_transaction_log(
        {0.0: (n // 2, slow), 1.0: (n // 2, fast if informative else slow)}, seed=seed,
        acquisition_period=26, observation_period=78, spend=dict(p=6.0, q=4.0, v=15.0))
    rng = np.random.default_rng(seed)
    attributes = pd.DataFrame({"segment": segment, "noise": rng.normal(size=len(segment))})
    if not informative:
        attributes["segment"] = rng.integers(0, 2, len(segment)).astype(np.float64)
    return churn_training_data(log, "2024-11-01", HORIZON, with_purchases=True,
                               amount_col="amount", customer_attributes=attributes)


def _held_out_metrics(adjuster, X, purchases):
    """Purchases MAE, activity AUC and Brier score of the adjuster's base model and of the
    adjuster on customers it never saw."""
    rfm = X[["frequency", "recency", "T"]]
    active = purchases.to_numpy() > 0
    base = adjuster.base_model_
    out = {}
    for name, p, e in (("base", base.probability_of_purchase(rfm, HORIZON),
                        base.expected_purchases(rfm, HORIZON)),
                       ("adjusted", adjuster.probability_of_purchase(X),
                        adjuster.expected_purchases(X))):
        p, e = p.to_numpy(), e.to_numpy()
        out[name] = {"mae": np.abs(purchases.to_numpy() - e).mean(),
                     "auc": roc_auc_score(active, p), "brier": np.mean((p - active) ** 2)}
    return out["base"], out["adjusted"]


def _halves(X, y, purchases):
    train = X.index.to_numpy() % 2 == 0
    return (X[train], y[train], purchases[train]), (X[~train], purchases[~train])


@pytest.fixture(scope="module")
def noise():
    return _simulated(informative=False)


@pytest.fixture(scope="module")
def informative():
    return _simulated(informative=True)


def test_default_adjuster_is_never_worse_than_its_base_model_on_noise(noise):
    """The user guide's call (docs/guide/churn.md), fit(X, y), where nothing beyond the RFM
    summary predicts churn: on customers it never saw, the adjuster is not worse than its base
    model on any metric (the unchecked adjustment was worse on all three)."""
    (X, y, _), (X_new, purchases_new) = _halves(*noise)
    with pytest.warns(AdjustmentFallbackWarning, match="activity AUC .* Brier") as caught:
        adjuster = ChurnAdjuster(clvlab.ParetoNBD(), horizon=HORIZON).fit(X, y)
    assert "held-out customers" in str(caught[0].message)
    base, adjusted = _held_out_metrics(adjuster, X_new, purchases_new)
    assert adjusted["mae"] <= base["mae"] + 1e-12
    assert adjusted["auc"] >= base["auc"] - 1e-12
    assert adjusted["brier"] <= base["brier"] + 1e-12
    # the fallback is exact: the base model's P(any purchase) and an adjustment factor of 1
    assert (adjuster.activity_weight_, adjuster.count_weight_) == (0.0, 0.0)
    np.testing.assert_array_equal(adjuster.adjustment_factor(X_new), 1.0)
    rfm = X_new[["frequency", "recency", "T"]]
    np.testing.assert_array_equal(adjuster.probability_of_purchase(X_new),
                                  adjuster.base_model_.probability_of_purchase(rfm, HORIZON))
    np.testing.assert_array_equal(adjuster.predict_proba(X_new)[:, 0],
                                  adjuster.probability_of_purchase(X_new))
    # the check and what it found are learned state, shown where a user looks
    assert adjuster.checked_ and adjuster.gain_ == {"auc": 0.0, "brier": 0.0}
    assert adjuster.check_.customers == len(X)
    assert "held-out customers" in adjuster.check_.source and "3-fold" in adjuster.check_.source
    assert "checked: no gain, base model's predictions" in repr(adjuster)
    assert "base model left alone" in adjuster.summary()
    assert "held-out customers" in adjuster.summary()


def test_unchecked_adjustment_is_worse_on_noise_and_an_explicit_opt_out(noise):
    """What the default did before: the full adjustment, worse than the base model on held-out
    customers; now only with gain_check=False, and with a warning."""
    (X, y, _), (X_new, purchases_new) = _halves(*noise)
    with pytest.warns(UncheckedAdjustmentWarning, match="unchecked"):
        unchecked = ChurnAdjuster(clvlab.ParetoNBD(), horizon=HORIZON, gain_check=False).fit(X, y)
    base, adjusted = _held_out_metrics(unchecked, X_new, purchases_new)
    assert adjusted["mae"] > base["mae"] and adjusted["auc"] < base["auc"]
    assert adjusted["brier"] > base["brier"]
    assert (unchecked.activity_weight_, unchecked.count_weight_) == (1.0, 1.0)
    assert not unchecked.checked_ and unchecked.check_ is None and unchecked.gain_ is None
    assert "not checked" in repr(unchecked) and "not checked" in unchecked.summary()


def test_default_adjuster_helps_where_a_feature_drives_churn(informative):
    """A segment that drives dropout, which the RFM summary cannot see: the check keeps the
    adjustment and the held-out customers' activity AUC and Brier score improve; given the
    purchase counts, the check also judges the expected purchases, and they are not worse."""
    (X, y, purchases), (X_new, purchases_new) = _halves(*informative)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AdjustmentFallbackWarning)  # counts: asserted below
        adjuster = ChurnAdjuster(clvlab.ParetoNBD(), horizon=HORIZON).fit(X, y, purchases)
    assert adjuster.checked_ and adjuster.activity_weight_ > 0
    assert adjuster.gain_["auc"] > 0 and adjuster.gain_["brier"] > 0 and adjuster.gain_["mae"] >= 0
    base, adjusted = _held_out_metrics(adjuster, X_new, purchases_new)
    assert adjusted["auc"] > base["auc"] + 0.005
    assert adjusted["brier"] < base["brier"]
    assert adjusted["mae"] <= base["mae"] + 1e-12 or adjuster.count_weight_ > 0
    assert set(adjuster.check_.metrics) == {"mae", "auc", "brier"}


def test_without_purchase_counts_the_expectations_stay_the_base_models(informative):
    (X, y, _), (X_new, _) = _halves(*informative)
    with pytest.warns(AdjustmentFallbackWarning, match="no purchase counts"):
        adjuster = ChurnAdjuster(clvlab.ParetoNBD(), horizon=HORIZON).fit(X, y)
    assert adjuster.activity_weight_ > 0 and adjuster.count_weight_ == 0.0
    assert "mae" not in adjuster.check_.metrics
    np.testing.assert_array_equal(adjuster.adjustment_factor(X_new), 1.0)


def test_check_state_travels_with_the_file_and_clone_stays_unfitted(noise, tmp_path):
    (X, y, purchases), (X_new, _) = _halves(*noise)
    adjuster = ChurnAdjuster(clvlab.BetaGeo(), _logistic(), horizon=HORIZON, check_folds=2)
    fresh = clone(adjuster)
    assert fresh.get_params()["gain_check"] is True and fresh.get_params()["check_folds"] == 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AdjustmentFallbackWarning)
        assert adjuster.fit(X, y, purchases) is adjuster
    assert not hasattr(clone(adjuster), "checked_")
    adjuster.save(tmp_path / "a.json")
    payload = json.loads((tmp_path / "a.json").read_text())
    assert payload["checked"] is True and "held-out" in payload["check"]["source"]
    loaded = ChurnAdjuster.load(tmp_path / "a.json")
    assert loaded.checked_ and loaded.check_ == adjuster.check_ and loaded.gain_ == adjuster.gain_
    pd.testing.assert_frame_equal(loaded.adjusted_activity(X_new), adjuster.adjusted_activity(X_new))
    assert repr(loaded).endswith(repr(adjuster).split("#")[1])
    # an unchecked one says so in its file
    with pytest.warns(UncheckedAdjustmentWarning):
        unchecked = clone(adjuster).set_params(gain_check=False).fit(X, y)
    unchecked.save(tmp_path / "u.json")
    again = ChurnAdjuster.load(tmp_path / "u.json")
    assert not again.checked_ and again.gain_ is None and "not checked" in again.summary()


def test_a_later_window_check_replaces_the_cross_validated_one(noise):
    (X, y, _), _ = _halves(*noise)
    with pytest.warns(AdjustmentFallbackWarning):
        adjuster = ChurnAdjuster(clvlab.ParetoNBD(), _logistic(), horizon=HORIZON).fit(X, y)
    later = GainCheck(0.5, 0.0, 100, "a gain in activity only: expected purchases left to the "
                      "base model", {"auc": {"base": 0.8, "adjusted": 0.82, "chosen": 0.81}},
                      source="a window with a known outcome (100 customers)")
    adjuster.use_check(later)
    assert adjuster.activity_weight_ == 0.5 and adjuster.checked_
    assert adjuster.gain_ == pytest.approx({"auc": 0.01})


def test_bad_check_settings_and_purchases_are_refused(noise):
    (X, y, purchases), _ = _halves(*noise)
    with pytest.raises(ClvlabError, match="check_folds"):
        ChurnAdjuster(horizon=HORIZON, check_folds=1).fit(X, y)
    with pytest.raises(ClvlabError, match="gain_check must be True or False"):
        ChurnAdjuster(horizon=HORIZON, gain_check="yes").fit(X, y)
    wrong = purchases.copy()
    wrong.iloc[np.flatnonzero(y.to_numpy() == 1)[0]] = 2.0
    with pytest.raises(ClvlabError, match="purchases and y disagree for 1 customer"):
        ChurnAdjuster(horizon=HORIZON).fit(X, y, wrong)
    with pytest.raises(ClvlabError, match="one count >= 0 per row"):
        ChurnAdjuster(horizon=HORIZON).fit(X, y, purchases[:-1])


def test_too_few_of_one_outcome_to_check_falls_back():
    """Fewer customers of the rarer outcome than folds: no check is possible, and the base
    model stands, with a warning saying why."""
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"frequency": rng.integers(0, 5, 200).astype(float)})
    X["T"] = rng.uniform(20, 40, 200)
    X["recency"] = X["T"] * rng.uniform(0, 1, 200) * (X["frequency"] > 0)
    X = X[["frequency", "recency", "T"]]
    y = np.zeros(200, dtype=np.int64)
    y[:2] = 1
    with pytest.warns(AdjustmentFallbackWarning, match="no check possible .*fewer than the 3 folds"):
        adjuster = ChurnAdjuster(clvlab.BetaGeo(), LogisticRegression(), horizon=HORIZON).fit(X, y)
    assert (adjuster.activity_weight_, adjuster.count_weight_) == (0.0, 0.0)
    np.testing.assert_array_equal(adjuster.adjustment_factor(X), 1.0)


# --- found by a new user's trial (issue 29) ------------------------------------------------------

def _cdnow_with_region():
    from clvlab.datasets import load_cdnow

    log = load_cdnow(sample=True)
    ids = log["customer_id"].unique()
    region = np.where(ids % 3 == 0, "north", np.where(ids % 3 == 1, "south", "east"))
    return log, pd.DataFrame({"region": region}, index=pd.Index(ids, name="customer_id"))


def test_labels_for_another_horizon_are_refused():
    """Labels of 13 weeks given to an adjuster of 26: its check compared 26-week predictions
    with 13-week outcomes and approved the adjustment, in silence."""
    from clvlab.churn import churn_training_data

    log, _ = _cdnow_with_region()
    X, y, purchases = churn_training_data(log, "1997-12-31", horizon=13, amount_col="amount",
                                          with_purchases=True)
    with pytest.raises(clvlab.ClvlabError, match="horizon of 13.*horizon of 26"):
        clvlab.ChurnAdjuster(clvlab.ParetoNBD(), horizon=26).fit(X, y, purchases)


def test_a_text_attribute_is_a_feature_and_the_adjuster_loads_again(tmp_path):
    """A text column joined as an attribute was refused by fit ('features must be numbers'),
    and made categorical by hand, the saved adjuster could not be loaded (untrusted types)."""
    from clvlab.churn import churn_training_data

    log, attributes = _cdnow_with_region()
    X, y = churn_training_data(log, "1997-12-31", horizon=13, amount_col="amount",
                               customer_attributes=attributes)
    assert isinstance(X["region"].dtype, pd.CategoricalDtype)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UncheckedAdjustmentWarning)
        adjuster = clvlab.ChurnAdjuster(clvlab.ParetoNBD(), horizon=13, gain_check=False).fit(X, y)
    adjuster.save(tmp_path / "a.json")
    loaded = clvlab.ChurnAdjuster.load(tmp_path / "a.json")
    np.testing.assert_allclose(loaded.probability_of_purchase(X), adjuster.probability_of_purchase(X))
