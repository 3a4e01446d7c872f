"""The machine-learning challengers (clvlab.churn.ziln, clvlab.churn.gbm_poisson): the ZILN
model against a simulated population whose truth is known, the Poisson offset against its
definition, the scikit-learn contract, files without pickles, and bad input."""

import json
import math

import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from scipy import stats
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.metrics import mean_poisson_deviance
from sklearn.utils import estimator_checks

from clvlab import ClvlabError
from clvlab.churn.challenger_files import TRUSTED_TYPES
from clvlab.churn.gbm_poisson import GBMPoissonChallenger
from clvlab.churn.ziln import ZILNChallenger
from clvlab.core.errors import DataValidationError

SIGMA = 0.6  # the simulated log-spend scale


def population(n, seed):
    """Features that set P(buy), a log-normal spend among buyers and 1 + Poisson purchases."""
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=n), rng.random(n)
    channel = pd.Categorical(rng.choice(["web", "shop", "app"], n), categories=["app", "shop", "web"])
    effect = np.select([channel == "web", channel == "shop"], [0.5, 0.0], -0.5)
    p = 1 / (1 + np.exp(-(-0.3 + 1.2 * x1 + effect)))
    mu, rate = 3 + 0.5 * x2 + 0.3 * x1, np.exp(0.2 + 0.5 * x2)
    buy = rng.random(n) < p
    purchases = np.where(buy, 1 + rng.poisson(rate), 0).astype(float)
    spend = np.where(buy, np.exp(mu + SIGMA * rng.normal(size=n)), 0.0)
    noise = rng.normal(size=n)
    noise[rng.random(n) < 0.05] = np.nan  # missing values pass through
    X = pd.DataFrame({"x1": x1, "x2": x2, "channel": channel, "noise": noise})
    truth = {"p": p, "spend": p * np.exp(mu + SIGMA ** 2 / 2), "purchases": p * (1 + rate)}
    return X, purchases, spend, truth


@pytest.fixture(scope="module")
def ziln():
    X, purchases, spend, _ = population(5000, seed=1)
    return ZILNChallenger(max_iter=100, learning_rate=0.1).fit(X, purchases, spend)


@pytest.fixture(scope="module")
def fresh(ziln):
    X, purchases, spend, truth = population(20000, seed=2)
    return X, purchases, spend, truth, ziln.predict(X)


# ZILN: the truth of a simulated population --------------------------------------------------------

def test_ziln_mean_spend_and_purchases_match_the_truth(ziln, fresh):
    X, _, _, truth, predicted = fresh
    assert list(predicted.columns) == ["expected_purchases", "p_active", "expected_spend"]
    assert predicted.index.equals(X.index)
    ratio = predicted["expected_spend"].mean() / truth["spend"].mean()
    assert abs(ratio - 1) < 0.04, ratio
    # the median exp(mu) would be low by exp(-sigma^2/2): the correction matters here
    assert ziln.spend_sigma_ == pytest.approx(SIGMA, abs=0.06)
    assert ratio * math.exp(-ziln.spend_sigma_ ** 2 / 2) < 0.9
    # purchases: 1 + Poisson among buyers, which the log-normal censored at 1 only approximates
    # (measured: the mean among buyers 2.4 % high, all customers 4.7 %, of which 1.6 % is the
    # training sample's share of buyers)
    ratio = predicted["expected_purchases"].mean() / truth["purchases"].mean()
    assert abs(ratio - 1) < 0.07, ratio
    among_buyers = (predicted["expected_purchases"] / predicted["p_active"]).mean()
    assert among_buyers / (truth["purchases"] / truth["p"]).mean() == pytest.approx(1, abs=0.04)


def test_ziln_p_active_is_calibrated_by_decile(fresh):
    _, purchases, _, truth, predicted = fresh
    p = predicted["p_active"].to_numpy()
    deciles = np.array_split(np.argsort(p), 10)
    gaps = [abs(p[d].mean() - truth["p"][d].mean()) for d in deciles]
    realised = [abs(p[d].mean() - (purchases[d] > 0).mean()) for d in deciles]
    assert max(gaps) < 0.04, gaps
    assert max(realised) < 0.05, realised


def test_ziln_quantiles_cover_as_the_mixture_says(ziln, fresh):
    X, purchases, spend, _, predicted = fresh
    levels = (0.1, 0.5, 0.8, 0.95)
    q = ziln.predict_quantiles(X, levels, target="spend")
    assert list(q.columns) == ["spend_q0.1", "spend_q0.5", "spend_q0.8", "spend_q0.95"]
    w = predicted["p_active"].to_numpy() * ziln.spend_positive_share_
    for level, column in zip(levels, q.columns):
        # P(Y <= q) is the level above the mass at 0, and 1 - w where the quantile is 0
        nominal = np.mean(np.maximum(level, 1 - w))
        assert np.mean(spend <= q[column].to_numpy()) == pytest.approx(nominal, abs=0.015)
        assert np.all((q[column] == 0) == (level <= 1 - w))
    counts = ziln.predict_quantiles(X, levels, target="purchases").to_numpy()
    assert np.all((counts == 0) | (counts >= 1))
    assert np.all(np.diff(counts, axis=1) >= 0)


def test_ziln_draws_are_the_predictive_distribution(ziln, fresh):
    X = fresh[0].iloc[:300]
    draws = ziln.sample(X, n_draws=2000, seed=5)
    assert set(draws) == {"active", "purchases", "spend"} and draws["spend"].shape == (300, 2000)
    assert np.all(draws["spend"][~draws["active"]] == 0) and np.all(draws["purchases"][draws["active"]] >= 1)
    predicted = ziln.predict(X)
    for name, column in [("spend", "expected_spend"), ("purchases", "expected_purchases")]:
        assert draws[name].mean() == pytest.approx(predicted[column].mean(), rel=0.03)
    parameters = ziln.predictive_parameters(X)
    assert list(parameters.columns) == ["p_active", "w_purchases", "mu_purchases", "sigma_purchases",
                                        "w_spend", "mu_spend", "sigma_spend"]
    np.testing.assert_allclose(parameters["w_spend"] * np.exp(parameters["mu_spend"]
                                                              + parameters["sigma_spend"] ** 2 / 2),
                               predicted["expected_spend"], rtol=1e-12)
    again = ziln.sample(X, n_draws=2000, seed=5)
    np.testing.assert_array_equal(again["spend"], draws["spend"])


def test_ziln_without_spend_predicts_no_spend():
    X, purchases, _, _ = population(600, seed=3)
    model = ZILNChallenger(max_iter=10).fit(X, purchases)
    assert list(model.predict(X).columns) == ["expected_purchases", "p_active"]
    assert "spend" not in model.sample(X.iloc[:5], n_draws=3)
    with pytest.raises(ClvlabError, match="fitted without spend"):
        model.predict_quantiles(X, 0.5)
    assert list(model.summary().index) == ["activity", "purchases"]


# GBM Poisson: the offset ------------------------------------------------------------------------

def grouped(seed=3, n=400):
    rng = np.random.default_rng(seed)
    group = rng.integers(0, 2, n).astype(float)
    e = rng.gamma(2.0, 0.5, n)
    y = rng.poisson(e * np.where(group == 1, 1.8, 0.6)).astype(float)
    return pd.DataFrame({"group": group, "base_expected_purchases": e}), y


def stumps(**settings):
    return GBMPoissonChallenger(max_depth=1, min_samples_leaf=1, l2_regularization=0.0, **settings)


def test_poisson_deviance_with_an_offset_is_the_weighted_deviance_of_the_ratio():
    X, y = grouped()
    e, r = X["base_expected_purchases"].to_numpy(), np.random.default_rng(0).gamma(2.0, 0.6, len(y))
    offset = mean_poisson_deviance(y, e * r) * len(y)
    ratio = mean_poisson_deviance(y / e, r, sample_weight=e) * e.sum()
    assert ratio == pytest.approx(offset, rel=1e-12)


def test_one_boosting_step_is_the_offset_models_newton_step():
    X, y = grouped()
    e, group = X["base_expected_purchases"].to_numpy(), X["group"].to_numpy()
    model = stumps(max_iter=1, learning_rate=1.0).fit(X, y)
    r0 = y.sum() / e.sum()  # the offset model's intercept: exp(b) = sum y / sum e
    leaf = {k: -np.sum((e * r0 - y)[group == k]) / np.sum((e * r0)[group == k]) for k in (0, 1)}
    by_hand = e * r0 * np.exp(np.where(group == 1, leaf[1], leaf[0]))
    np.testing.assert_allclose(model.predict(X)["expected_purchases"], by_hand, rtol=1e-7)


def test_a_constant_ratio_gives_the_base_expectation_times_the_ratio():
    rng = np.random.default_rng(4)
    y = rng.integers(1, 9, 300).astype(float)
    group = rng.integers(0, 2, 300).astype(float)
    ratio = np.where(group == 1, 2.5, 0.8)
    X = pd.DataFrame({"group": group, "base_expected_purchases": y / ratio})
    overall = stumps(max_iter=5).fit(X.assign(base_expected_purchases=y / 1.7), y)
    np.testing.assert_allclose(overall.predict(X)["expected_purchases"], 1.7 * X["base_expected_purchases"],
                               rtol=1e-6)
    by_group = stumps(max_iter=60, learning_rate=1.0).fit(X, y)
    np.testing.assert_allclose(by_group.predict(X)["expected_purchases"], y, rtol=1e-5)


def test_poisson_predictions_quantiles_and_the_base_settings():
    X, y = grouped(n=600)
    spend = y * 20.0
    model = GBMPoissonChallenger(max_iter=20).fit(X, y, spend)
    out = model.predict(X)
    assert list(out.columns) == ["expected_purchases", "p_active", "expected_spend"]
    np.testing.assert_allclose(out["p_active"], 1 - np.exp(-out["expected_purchases"]), rtol=1e-12)
    assert np.all(out["expected_spend"] > 0)
    q = model.predict_quantiles(X, (0.1, 0.9))
    np.testing.assert_array_equal(q["purchases_q0.9"], stats.poisson.ppf(0.9, out["expected_purchases"]))
    assert model.sample(X, n_draws=4, seed=1)["purchases"].shape == (600, 4)
    with pytest.raises(ClvlabError, match="purchases only"):
        model.predict_quantiles(X, 0.5, target="spend")
    assert GBMPoissonChallenger(base="feature", max_iter=5).fit(X, y).design_columns_ == list(X.columns)
    alone = GBMPoissonChallenger(base=None, max_iter=5).fit(X, y)
    assert alone.design_columns_ == ["group"]
    assert alone.predict(X.assign(base_expected_purchases=-1.0)).notna().all().all()
    assert list(model.summary()["customers"]) == [600, 600]


# the scikit-learn contract -------------------------------------------------------------------------

@pytest.mark.parametrize("check", ["check_parameters_default_constructible",
                                   "check_get_params_invariance", "check_set_params",
                                   "check_no_attributes_set_in_init", "check_estimator_repr",
                                   "check_estimator_cloneable"])
@pytest.mark.parametrize("challenger", [ZILNChallenger, GBMPoissonChallenger], ids=lambda c: c.__name__)
def test_scikit_learns_own_checks_pass(challenger, check):
    getattr(estimator_checks, check)(challenger.__name__, challenger())


def test_clone_and_repr(ziln):
    copy = clone(ziln)
    assert copy.get_params() == ziln.get_params() and not hasattr(copy, "training_")
    assert "fitted: activity on 5000" in repr(ziln) and "fitted" not in repr(copy)
    assert list(ziln.summary().columns) == ["target", "customers", "in_sample_deviance", "sigma"]


# files -----------------------------------------------------------------------------------------

def test_saved_challengers_load_with_identical_predictions(ziln, fresh, tmp_path):
    X = fresh[0].iloc[:500]
    ziln.save(tmp_path / "ziln.json")
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "ziln.activity.skops", "ziln.json", "ziln.purchases.skops", "ziln.spend.skops"]
    loaded = ZILNChallenger.load(tmp_path / "ziln.json")
    pd.testing.assert_frame_equal(loaded.predict(X), ziln.predict(X))
    pd.testing.assert_frame_equal(loaded.predict_quantiles(X), ziln.predict_quantiles(X))
    pd.testing.assert_frame_equal(loaded.summary(), ziln.summary())
    Xg, y = grouped()
    poisson = GBMPoissonChallenger(max_iter=10).fit(Xg.assign(channel=pd.Categorical(
        np.where(y > 1, "a", "b"))), y, y * 3.0)
    Xg = Xg.assign(channel=pd.Categorical(np.where(y > 1, "a", "b")))
    poisson.save(tmp_path / "poisson.json")
    back = GBMPoissonChallenger.load(tmp_path / "poisson.json")
    pd.testing.assert_frame_equal(back.predict(Xg), poisson.predict(Xg))
    assert back.get_params() == poisson.get_params()
    with pytest.raises(ClvlabError, match="kind 'GBMPoissonChallenger', not a ZILNChallenger"):
        ZILNChallenger.load(tmp_path / "poisson.json")


def test_the_trusted_types_are_those_of_the_default_challengers(ziln):
    Xg, y = grouped()
    poisson = GBMPoissonChallenger(max_iter=3).fit(Xg.assign(c=pd.Categorical(y > 1)), y, y)
    found = set()
    for part in [ziln.activity_model_, ziln.purchase_model_, ziln.spend_model_,
                 poisson.purchase_model_, poisson.spend_model_]:
        found |= set(sio.get_untrusted_types(data=sio.dumps(part)))
    assert found == set(TRUSTED_TYPES)


def test_untrusted_altered_and_foreign_files_are_refused(ziln, tmp_path):
    from sklearn.preprocessing import FunctionTransformer

    path = tmp_path / "model.json"
    ziln.save(path)
    part = tmp_path / "model.spend.skops"
    sio.dump(FunctionTransformer(func=math.sqrt), part)
    with pytest.raises(ClvlabError, match="SHA-256 differs"):
        ZILNChallenger.load(path)
    payload = json.loads(path.read_text())
    payload["parts"]["spend"]["sha256"] = __import__("hashlib").sha256(part.read_bytes()).hexdigest()
    path.write_text(json.dumps(payload))
    with pytest.raises(ClvlabError, match=r"types clvlab does not trust: \['math.sqrt'\]"):
        ZILNChallenger.load(path)
    assert ZILNChallenger.load(path, trusted=["math.sqrt"]).spend_model_.func is math.sqrt
    path.write_text(json.dumps({**payload, "schema_version": 99}))
    with pytest.raises(ClvlabError, match="schema version 99"):
        ZILNChallenger.load(path)
    path.write_text("{not json")
    with pytest.raises(ClvlabError, match="not a readable ZILNChallenger file"):
        ZILNChallenger.load(path)


# bad input -------------------------------------------------------------------------------------

def test_bad_input_names_the_column_and_the_rule(ziln, fresh):
    X, purchases, spend, _, _ = fresh
    X, purchases, spend = X.iloc[:200], purchases[:200], spend[:200]
    with pytest.raises(DataValidationError, match="column 'x2': is missing from X"):
        ziln.predict(X.drop(columns="x2"))
    with pytest.raises(ClvlabError, match=r"\['extra'\] that the challenger was not fitted with"):
        ziln.predict(X.assign(extra=1.0))
    with pytest.raises(DataValidationError, match="column 'channel': was categorical in fit"):
        ziln.predict(X.assign(channel=1.0))
    bad = purchases.copy()
    bad[3] = -1
    with pytest.raises(DataValidationError, match=r"column 'purchases': .*whole numbers >= 0.*<row>=3"):
        ZILNChallenger().fit(X, bad)
    with pytest.raises(DataValidationError, match="whole numbers"):
        GBMPoissonChallenger(base=None).fit(X, purchases + 0.5)
    with pytest.raises(ClvlabError, match=r"one value a row of X \(200 rows\), got shape \(199,\)"):
        ZILNChallenger().fit(X, purchases[:-1])
    with pytest.raises(DataValidationError, match="spend must be 0 where purchases are 0"):
        ZILNChallenger().fit(X, np.zeros(200) + (np.arange(200) < 100), np.ones(200))
    with pytest.raises(DataValidationError, match="column 'x1': .*not infinite; example row: {<row>=0"):
        ZILNChallenger().fit(X.assign(x1=np.r_[np.inf, X["x1"].to_numpy()[1:]]), purchases)
    with pytest.raises(DataValidationError, match="column 'name': features must be numbers"):
        ZILNChallenger().fit(X.assign(name="a"), purchases)
    with pytest.raises(ClvlabError, match="needs at least 3 buyers and 3 non-buyers"):
        ZILNChallenger().fit(X, np.ones(200))
    with pytest.raises(ClvlabError, match="calibration must be"):
        ZILNChallenger(calibration="platt").fit(X, purchases)
    with pytest.raises(ClvlabError, match="horizon of 26 but this challenger predicts a horizon of 13"):
        labelled = X.copy()
        labelled.attrs = {"clvlab": {"label_horizon": 26.0}}
        ZILNChallenger().fit(labelled, purchases)


def test_poisson_refuses_a_missing_or_non_positive_base(fresh):
    X, purchases = fresh[0].iloc[:200], fresh[1][:200]
    with pytest.raises(DataValidationError, match="column 'base_expected_purchases': is missing"):
        GBMPoissonChallenger().fit(X, purchases)
    with pytest.raises(DataValidationError, match="'base_expected_purchases': is missing"):
        GBMPoissonChallenger(base="feature").fit(X, purchases)
    base = np.r_[1.0, 0.0, np.ones(198)]
    with pytest.raises(DataValidationError, match=r"> 0 with base='offset'.*<row>=1.*base_expected_purchases=0.0"):
        GBMPoissonChallenger().fit(X.assign(base_expected_purchases=base), purchases)
    model = GBMPoissonChallenger(max_iter=3).fit(X.assign(base_expected_purchases=1.0), purchases)
    with pytest.raises(DataValidationError, match="base_expected_purchases"):
        model.predict(X.assign(base_expected_purchases=np.nan))
    with pytest.raises(ClvlabError, match="base must be"):
        GBMPoissonChallenger(base="ratio").fit(X, purchases)
    with pytest.raises(ClvlabError, match="purchases are 0 for every customer"):
        model.fit(X.assign(base_expected_purchases=1.0), np.zeros(200))
    with pytest.raises(NotFittedError):  # a fit that failed leaves no half-fitted model
        model.predict(X.assign(base_expected_purchases=1.0))
