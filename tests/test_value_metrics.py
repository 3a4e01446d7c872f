"""The value metrics of Wang, Liu & Miao (2019) in the backtest (clvlab.evaluation.metrics),
against the formulas of the paper's code (github.com/google/lifetime_value, metrics.py)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from clvlab.evaluation import metrics
from clvlab.evaluation.metrics import decile_mape, normalized_gini, ranking_key


def google_gini(actual, predicted):
    """lifetime_value.metrics.cumulative_true + gini_from_gain, for data without ties."""
    def gain(order_by):
        frame = pd.DataFrame({"y": actual, "key": order_by}).sort_values("key", ascending=False)
        return (frame["y"].cumsum() / frame["y"].sum()).to_numpy()

    raw = lambda curve: 2 * curve.sum() / len(curve) - 1.0  # noqa: E731
    return raw(gain(predicted)) / raw(gain(actual))


def google_decile_mape(actual, predicted):
    """lifetime_value.metrics.decile_stats and the notebooks' mean of its decile_mape."""
    decile = pd.qcut(predicted, q=10, labels=[str(i) for i in range(10)])
    frame = pd.DataFrame({"y": actual, "p": predicted, "decile": decile})
    means = frame.groupby("decile", observed=False)[["y", "p"]].mean()
    return float((np.abs(means["p"] - means["y"]) / means["y"]).mean())


def test_the_gini_is_the_papers_up_to_its_discrete_sum():
    rng = np.random.default_rng(1)
    for n in (50, 2000):
        actual = rng.lognormal(2, 1, n) * (rng.random(n) < 0.4)
        predicted = actual * rng.lognormal(0, 0.7, n) + rng.random(n)
        ours, paper = normalized_gini(predicted, actual), google_gini(actual, predicted)
        # the paper's sum scores a constant prediction 1/n over the perfect Gini: O(1/n) apart
        assert abs(ours - paper) <= 2.0 / n / google_gini(actual, actual + 1e-9 * rng.random(n))


def test_spearman_is_scipys():
    rng = np.random.default_rng(4)
    actual = np.round(rng.lognormal(0, 1, 300), 1)  # ties
    predicted = np.round(actual + rng.normal(0, 1, 300))
    out = metrics.ranking_metrics(predicted, actual)
    assert out["spearman"] == pytest.approx(stats.spearmanr(predicted, actual).statistic, rel=1e-12)


def test_decile_mape_by_hand_and_as_the_paper():
    predicted = np.arange(20.0)
    actual = np.r_[np.full(18, 10.0), 30.0, 50.0]
    pairs_p = predicted.reshape(10, 2).mean(axis=1)  # qcut into 10 pairs by prediction
    pairs_a = actual.reshape(10, 2).mean(axis=1)
    expected = np.mean(np.abs(pairs_p - pairs_a) / pairs_a)
    assert decile_mape(predicted, actual) == pytest.approx(expected, rel=1e-14)
    assert decile_mape(predicted, actual) == pytest.approx(google_decile_mape(actual, predicted),
                                                           rel=1e-13)
    rng = np.random.default_rng(2)
    actual = rng.lognormal(2, 1, 1003)
    predicted = actual * rng.lognormal(0, 0.5, 1003)
    assert decile_mape(predicted, actual) == pytest.approx(google_decile_mape(actual, predicted),
                                                           rel=1e-12)
    assert decile_mape(actual, actual) == 0.0
    assert decile_mape(2 * actual, actual) == pytest.approx(1.0)
    assert metrics.ranking_metrics(predicted, actual)["decile_mape"] == decile_mape(predicted, actual)
    assert ranking_key("spend_decile_mape")(pd.Series([0.3, 0.1])).tolist() == [0.3, 0.1]


def test_decile_mape_ties_share_a_bucket_whatever_the_order():
    rng = np.random.default_rng(3)
    predicted = np.r_[np.zeros(60), rng.random(40)]  # 60 % tied at 0: pandas.qcut refuses
    actual = rng.random(100) + 0.1
    with pytest.raises(ValueError):
        pd.qcut(predicted, 10)
    value = decile_mape(predicted, actual)
    zero = abs(0 - actual[:60].mean()) / actual[:60].mean()  # the zeros: one bucket
    rest = [abs(predicted[60:][b].mean() - actual[60:][b].mean()) / actual[60:][b].mean()
            for b in np.array_split(np.argsort(predicted[60:]), 4)]  # the others: four
    assert value == pytest.approx(np.mean([zero, *rest]), rel=1e-12)
    shuffle = rng.permutation(100)
    assert decile_mape(predicted[shuffle], actual[shuffle]) == pytest.approx(value, rel=1e-14)


def test_decile_mape_is_nan_without_customers_or_with_a_nan_prediction():
    assert math.isnan(decile_mape(np.array([np.nan, 1.0]), np.array([1.0, 2.0])))
    assert math.isnan(decile_mape(np.array([]), np.array([])))


def test_deciles_that_realised_nothing_are_pooled_upwards_not_nan():
    """The lowest deciles of a short horizon realise nothing: each is pooled with the deciles
    above it until the pool realised something (the paper's code gives infinity there)."""
    predicted = np.arange(20.0)
    actual = np.r_[np.zeros(4), np.full(14, 10.0), 0.0, 0.0]  # deciles 0, 1 and 9 realise 0
    pools = [np.arange(0, 6), *[np.arange(i, i + 2) for i in range(6, 16, 2)], np.arange(16, 20)]
    expected = np.mean([abs(predicted[p].mean() - actual[p].mean()) / actual[p].mean()
                        for p in pools])
    assert decile_mape(predicted, actual) == pytest.approx(expected, rel=1e-14)
    assert np.isfinite(decile_mape(predicted, actual))
    assert np.isnan(decile_mape(predicted, np.zeros(20)))  # nobody realised anything
    assert np.isnan(decile_mape(np.r_[np.nan, predicted[1:]], actual))
