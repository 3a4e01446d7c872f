"""Backtests of logs without amounts (unknown spend stays unknown, candidates that need one are
refused up front) and results saved and loaded without MLflow."""

import json

import numpy as np
import pandas as pd
import pytest

import clvlab
from clvlab import ClvlabError
from clvlab.backtesting import (BacktestResult, Candidate, HistoricalAverage, RecentActivity,
                                default_candidates)

CUTOFF = "1997-09-30"


@pytest.fixture(scope="module")
def log_without_amounts():
    return clvlab.datasets.load_cdnow(sample=True).drop(columns="amount")


class _Seen(Candidate):
    """Keeps the calibration it was shown, predicts the historical average."""

    name = "seen"
    calibrations: list = []

    def fit(self, calibration, horizon):
        _Seen.calibrations.append(calibration)
        return self

    def predict(self, calibration, horizon):
        return HistoricalAverage().predict(calibration, horizon)


@pytest.fixture(scope="module")
def result_without_amounts(log_without_amounts):
    _Seen.calibrations = []
    return clvlab.backtest(log_without_amounts, ["bg-nbd", "historical-average", "active-90d", _Seen()],
                           cutoffs=[CUTOFF], horizon=13)


def test_unknown_spend_is_absent_not_zero(result_without_amounts):
    calibration = _Seen.calibrations[-1]
    # what candidates see: no monetary_value column and no value for a purchase (not 0)
    assert not calibration.has_amounts
    assert "monetary_value" not in calibration.rfm
    assert calibration.periods["value"].isna().all()
    assert np.isnan(calibration.order_value()).all()
    result = result_without_amounts
    assert "spend" not in set(result.metrics["target"])
    assert "actual_spend" not in result.predictions
    assert "expected_spend" not in result.predictions
    # the cohort table counts customers; revenue and LTV:CAC are unknown, so absent
    assert [c for c in result.cohorts.columns if "revenue" in c or "value" in c or "ltv" in c] == []
    assert result.cohorts["customers"].sum() == 2357
    assert np.isfinite(result.metrics["value"]).all()


def test_baselines_without_amounts_predict_no_spend(log_without_amounts):
    calibration, _ = clvlab.backtesting.calibration_data(log_without_amounts, CUTOFF, 13)
    for candidate in (HistoricalAverage(), RecentActivity(90)):
        predicted = candidate.fit(calibration, 13).predict(calibration, 13)
        assert list(predicted.columns) == ["expected_purchases", "p_active"]  # no spend of 0
        assert predicted["expected_purchases"].gt(0).any()


def test_calibration_data_without_a_horizon_has_no_outcome():
    log = clvlab.datasets.load_cdnow(sample=True)
    calibration, outcome = clvlab.backtesting.calibration_data(log, CUTOFF, amount_col="amount")
    assert outcome is None and calibration.has_amounts
    assert calibration.rfm["monetary_value"].notna().all()


def test_candidates_that_need_amounts_are_refused_up_front(log_without_amounts):
    with pytest.raises(ClvlabError, match="need an amount column") as error:
        clvlab.backtest(log_without_amounts, ["bg-nbd", "pareto-nbd+gamma-gamma", "historical-ltv",
                                              "arpu-churn"], cutoffs=[CUTOFF], horizon=13)
    message = str(error.value)
    for name in ("pareto-nbd + gamma-gamma", "historical-ltv", "arpu-churn"):
        assert name in message
    assert "'bg-nbd'" not in message.split("need an amount column")[0]
    assert "amount_col" in message
    with pytest.raises(ClvlabError, match="acquisition_cost needs amount_col"):
        clvlab.backtest(log_without_amounts, ["bg-nbd"], cutoffs=[CUTOFF], horizon=13,
                        acquisition_cost=20.0)


def test_default_candidates_run_with_and_without_amounts(log_without_amounts):
    with_amounts = default_candidates(has_amounts=True)
    assert "pareto-nbd+gamma-gamma" in with_amounts and "historical-ltv" in with_amounts
    without = default_candidates(has_amounts=False)
    assert {"pareto-nbd", "bg-nbd"} <= set(without)
    assert not any(clvlab.backtesting.make_candidate(n).needs_amounts for n in without)
    result = clvlab.backtest(log_without_amounts, without, cutoffs=[CUTOFF], horizon=13,
                             keep_predictions=False)
    assert set(result.metrics["candidate"]) == {clvlab.backtesting.make_candidate(n).name
                                                for n in without}


# save and load --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def result_with_amounts():
    log = clvlab.datasets.load_cdnow(sample=True)
    return clvlab.backtest(log, ["bg-nbd+gamma-gamma", "historical-average"],
                           cutoffs=[CUTOFF, "1997-12-31"], horizon=13, amount_col="amount",
                           acquisition_cost={"1997-01": 20.0, "1997-02": 25.0, "1997-03": 30.0})


def _assert_same(loaded: BacktestResult, original: BacktestResult) -> None:
    for name in ("metrics", "by_frequency", "tracking", "cohorts", "predictions"):
        if getattr(original, name) is None:
            assert getattr(loaded, name) is None
        else:
            pd.testing.assert_frame_equal(getattr(loaded, name), getattr(original, name))
    assert loaded.settings == original.settings


@pytest.mark.parametrize("which", ["result_with_amounts", "result_without_amounts"])
def test_save_and_load_round_trip(which, request, tmp_path):
    original = request.getfixturevalue(which)
    folder = original.save(tmp_path / "bt")
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        ["settings.json", "metrics.parquet", "by_frequency.parquet", "tracking.parquet",
         "cohorts.parquet", "predictions.parquet"])
    assert json.loads((folder / "settings.json").read_text())["settings"]["horizon"] == 13.0
    loaded = BacktestResult.load(folder)
    _assert_same(loaded, original)
    assert repr(loaded) == repr(original)
    assert [p.name for p in tmp_path.iterdir()] == ["bt"]  # no temporary left beside it


def test_save_without_predictions_and_overwrite_rules(result_with_amounts, tmp_path):
    slim = BacktestResult(result_with_amounts.metrics, result_with_amounts.by_frequency,
                          result_with_amounts.tracking, result_with_amounts.cohorts, None,
                          dict(result_with_amounts.settings))
    folder = tmp_path / "bt"
    slim.save(folder)
    _assert_same(BacktestResult.load(folder), slim)
    with pytest.raises(ClvlabError, match="exists; pass overwrite=True"):
        result_with_amounts.save(folder)
    result_with_amounts.save(folder, overwrite=True)
    _assert_same(BacktestResult.load(folder), result_with_amounts)
    # a folder that is not a saved backtest is never replaced, even with overwrite=True
    other = tmp_path / "data"
    other.mkdir()
    (other / "keep.csv").write_text("a\n1\n")
    with pytest.raises(ClvlabError, match="not a saved backtest"):
        result_with_amounts.save(other, overwrite=True)
    assert (other / "keep.csv").read_text() == "a\n1\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bt", "data"]


def test_load_names_what_is_wrong(result_with_amounts, tmp_path):
    with pytest.raises(ClvlabError, match="has no settings.json"):
        BacktestResult.load(tmp_path)
    folder = result_with_amounts.save(tmp_path / "bt")
    (folder / "tracking.parquet").unlink()
    with pytest.raises(ClvlabError, match="tracking.parquet is missing"):
        BacktestResult.load(folder)
    (folder / "settings.json").write_text("{not json")
    with pytest.raises(ClvlabError, match="not valid JSON"):
        BacktestResult.load(folder)
