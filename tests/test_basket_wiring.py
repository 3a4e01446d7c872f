"""Basket sizes (a purchase log's items-per-order column) wired as the event log is: the
calibration carries each order's quantity up to its cutoff, ``feature_frame`` adds
``basket_features``' columns, the backtest, the command line and experiments take
``quantity_col``, and a model trained on them is scored only with it."""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pandas as pd
import pytest

from clvlab.churn import BASKET_FEATURES, ChurnAdjuster, churn_training_data, feature_frame, \
    shift_back
from clvlab.core.errors import ClvlabError, DataValidationError
from clvlab.data.calibration import calibration_data
from clvlab.data.events import basket_features
from clvlab.data.simulate_events import simulate_engagement

pytestmark = pytest.mark.filterwarnings("ignore::clvlab.churn.UncheckedAdjustmentWarning")

CUTOFF, AS_OF, HORIZON = "2021-06-30", "2021-09-30", 13.0
OPTIONS = dict(customer_col="customer_id", date_col="date", amount_col="amount",
               date_format=None, timezone="UTC")


@pytest.fixture(scope="module")
def log():
    """A small simulated purchase log with ``items`` per order (seeded: a basket size per
    customer, Poisson around it)."""
    tx, _, _ = simulate_engagement(300, "2020-01-01", "2022-01-01", r=0.55, alpha=10.6, s=0.6,
                                   beta=11.7, seed=4)
    rng = np.random.default_rng(7)
    tx = tx.assign(items=1 + rng.poisson(rng.gamma(2.0, 1.0, tx["customer_id"].max() + 1)
                                         [tx["customer_id"].to_numpy()]))
    return tx


def basket_columns(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[list(BASKET_FEATURES)]


def test_the_features_of_a_hand_made_log_are_basket_features():
    log = pd.DataFrame({
        "customer_id": [1, 1, 1, 2, 2, 3, 1, 2],
        "date": ["2024-01-05", "2024-03-30", "2024-03-30", "2024-02-01", "2024-03-31",
                 "2024-03-01", "2024-04-02", "2024-05-01"],
        "amount": [10.0, 5.0, 7.0, 3.0, 4.0, 9.0, 1.0, 1.0],
        "items": [6, 2, 4, 0, 3, 5, 99, 99]})  # the last two rows: after the cutoff
    calibration, _ = calibration_data(log, "2024-03-31", amount_col="amount", time_unit="D",
                                      quantity_col="items")
    X = feature_frame(calibration)
    want = basket_features(log, "2024-03-31", quantity_col="items",
                           customers=calibration.rfm.index)
    pd.testing.assert_frame_equal(basket_columns(X), want)
    # customer 1: two orders on one day are two orders (mean 12/3), the last day's add up
    np.testing.assert_allclose(X.loc[1, list(BASKET_FEATURES)], [4.0, 6.0, 1.0, 6.0])
    assert calibration.orders["ts"].max() <= calibration.cutoff and len(calibration.orders) == 6
    assert not set(BASKET_FEATURES) & set(feature_frame(calibration_data(
        log, "2024-03-31", amount_col="amount", time_unit="D")[0]).columns)
    # a customer without quantities is unknown (NaN), not a basket of 0
    without_3 = dataclasses.replace(calibration,
                                    orders=calibration.orders[calibration.orders["cid"] != 3])
    assert basket_columns(feature_frame(without_3)).loc[3].isna().all()


def test_the_view_one_horizon_back_carries_the_orders_up_to_its_cutoff(log):
    calibration, _ = calibration_data(log, AS_OF, amount_col="amount", quantity_col="items")
    earlier, _ = shift_back(calibration, HORIZON)
    assert earlier.orders["ts"].max() <= earlier.cutoff < calibration.orders["ts"].max()
    want = basket_features(log, earlier.cutoff, quantity_col="items",
                           customers=earlier.rfm.index)
    pd.testing.assert_frame_equal(basket_columns(feature_frame(earlier)), want)
    # nothing after the cutoff: other quantities later change no feature
    later = log.assign(items=log["items"].where(log["date"] <= AS_OF, 1000))
    moved, _ = calibration_data(later, AS_OF, amount_col="amount", quantity_col="items")
    pd.testing.assert_frame_equal(feature_frame(moved), feature_frame(calibration))


def test_bad_quantities_are_refused_by_the_basket_rules(log):
    negative = log.assign(items=log["items"].where(log.index != 5, -2))
    with pytest.raises(DataValidationError, match=r"column 'items': quantity is negative.*"
                                                  r"example row: \{<row>=5, .*items=-2"):
        calibration_data(negative, CUTOFF, amount_col="amount", quantity_col="items")
    text = log.assign(items=log["items"].astype(str).where(log.index != 3, "two"))
    with pytest.raises(DataValidationError, match=r"column 'items': quantity must be numeric"
                                                  r".*example row: \{<row>=3, .*items='two'"):
        churn_training_data(text, CUTOFF, HORIZON, amount_col="amount", quantity_col="items")
    with pytest.raises(DataValidationError, match=r"column 'item': is missing from the "
                                                  r"transaction log.*'item' -> 'items'"):
        calibration_data(log, CUTOFF, amount_col="amount", quantity_col="item")


def test_a_gbm_backtest_learns_from_basket_size_on_the_command_line(log, tmp_path, monkeypatch,
                                                                    capsys):
    from clvlab.cli import main
    from clvlab.evaluation import challenger_candidate

    seen = []

    def spy(calibration):
        frame = feature_frame(calibration)
        seen.append(list(frame.columns))
        return frame

    monkeypatch.setattr(challenger_candidate, "feature_frame", spy)
    log.to_csv(tmp_path / "log.csv", index=False)
    out = tmp_path / "metrics.csv"
    command = ["backtest", str(tmp_path / "log.csv"), "--cutoffs", CUTOFF, "--horizon", "13",
               "--amount-col", "amount", "--candidates", "gbm", "--quantity-col", "items",
               "-o", str(out), "--no-progress", "--no-intervals"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main(command) == 0
    assert len(seen) == 2  # trained one horizon back, predicting at the cutoff
    assert all("quantity_mean" in columns and "quantity_trend" in columns for columns in seen)
    metrics = pd.read_csv(out)
    assert set(metrics["candidate"]) == {"gbm"} and metrics["value"].notna().all()
    seen.clear()
    assert main([c if c != "items" else "basket" for c in command] + ["--overwrite"]) == 1
    assert "column 'basket': is missing from the transaction log" in capsys.readouterr().err
    assert not seen  # refused before any candidate ran


def test_the_command_line_options_parse():
    from clvlab.cli.app import _parser

    score = ["score", "--model", "models:/m@champion", "--transactions", "log.csv",
             "--as-of", AS_OF, "-o", "scores.csv", "--horizon", "13"]
    assert _parser(score).parse_args(score).quantity_col is None
    args = _parser(score).parse_args(score + ["--quantity-col", "items"])
    assert args.quantity_col == "items"
    backtest = ["backtest", "log.csv", "--cutoffs", CUTOFF, "--horizon", "13", "-o", "m.csv",
                "--quantity-col", "items"]
    assert _parser(backtest).parse_args(backtest).quantity_col == "items"


@pytest.fixture(scope="module")
def trained(log, tmp_path_factory):
    """A churn adjuster and a "gbm" challenger trained with the basket features, in CLV model
    folders (their files record the features they read)."""
    from clvlab.evaluation.candidate_names import make_candidate
    from clvlab.models.pareto_nbd import ParetoNBD
    from clvlab.ops.selection import _challenger_parts

    root = tmp_path_factory.mktemp("basket")
    X, y = churn_training_data(log, CUTOFF, HORIZON, amount_col="amount", quantity_col="items")
    adjuster = ChurnAdjuster(ParetoNBD(), horizon=HORIZON, gain_check=False).fit(X, y)
    adjusted = root / "adjuster"
    adjusted.mkdir()
    adjuster.base_model_.save(adjusted / "transaction_model.json")
    adjuster.save(adjusted / "churn_adjuster.json")
    calibration, _ = calibration_data(log, AS_OF, amount_col="amount", quantity_col="items")
    transaction, _, challenger = _challenger_parts(make_candidate("gbm").fit(calibration, HORIZON),
                                                   calibration)
    challenged = root / "challenger"
    challenged.mkdir()
    transaction.save(challenged / "transaction_model.json")
    challenger.save(challenged / "challenger.json")
    return {"adjuster": adjusted, "challenger": challenged}


@pytest.mark.parametrize("kind", ["adjuster", "challenger"])
@pytest.mark.parametrize("engine", ["pandas", "duckdb"])
def test_a_model_trained_on_baskets_is_scored_only_with_the_quantity_column(log, trained, kind,
                                                                            engine):
    from clvlab.ops.scoring_inputs import input_chunks
    from clvlab.ops.serving import CLVModel

    model = CLVModel.load(trained[kind])
    assert "quantity_mean" in model.adjuster.feature_names_in_  # read back from its files
    options = {**OPTIONS, "consent_col": None, "withdrawn": None}

    def inputs(transactions=log, **event_options):
        _, _, chunks = input_chunks(model, transactions, AS_OF, "W", engine, 10**6, "1GB",
                                    options, {"delimiter": None, "decimal": "."},
                                    event_options=event_options)
        return pd.concat(list(chunks))

    with pytest.raises(ClvlabError, match=r"quantity_mean.*--quantity-col"):
        inputs()
    got = inputs(quantity_col="items")
    want = basket_features(log, AS_OF, quantity_col="items", customers=got.index)
    pd.testing.assert_frame_equal(got[list(BASKET_FEATURES)], want)
    scores = model.predict(got, params={"horizon": HORIZON, "discount_rate": 0.0, "margin": 1.0,
                                        "time_unit": "W"})
    assert len(scores) == len(got) and np.isfinite(scores["probability_of_purchase"]).all()
    with pytest.raises(DataValidationError, match=r"column 'items': quantity is missing or "
                                                  r"NaN; example row: \{<row>=9"):
        inputs(log.assign(items=log["items"].where(log.index != 9)), quantity_col="items")


def test_experiments_accept_a_quantity_column(log, tmp_path, monkeypatch):
    import clvlab.evaluation
    import clvlab.ops.tracking
    from clvlab.ops.experiments import load_experiment, run_experiment

    log.to_csv(tmp_path / "log.csv", index=False)
    base = ('name = "x"\n[backtest]\ncutoffs = ["2021-06-30"]\nhorizon = 13\n'
            'candidates = ["gbm"]\n[data]\nsource = "log.csv"\namount_col = "amount"\n')
    good = tmp_path / "good.toml"
    good.write_text(base + 'quantity_col = "items"\n')
    assert load_experiment(good)["data"]["quantity_col"] == "items"
    bad = tmp_path / "bad.toml"
    bad.write_text(base + "quantity_col = 3\n")
    with pytest.raises(ClvlabError, match=r"\[data\] quantity_col must be a column name"):
        load_experiment(bad)

    class Reached(Exception):
        pass

    def backtest(*args, **kwargs):
        raise Reached(kwargs)

    monkeypatch.setattr(clvlab.ops.tracking, "connect", lambda: None)
    monkeypatch.setattr(clvlab.evaluation, "backtest", backtest)
    with pytest.raises(Reached) as reached:
        run_experiment(good, progress=False)
    assert reached.value.args[0]["quantity_col"] == "items"


@pytest.mark.once
def test_the_scoring_job_on_the_command_line_needs_the_quantity_column(log, trained,
                                                                       scratch_store, capsys):
    from clvlab.cli import main
    from clvlab.ops.serving import CLVModel, log_clv_model

    model = CLVModel.load(trained["adjuster"])
    log_clv_model(model.transaction, None, model.adjuster, registered_model_name="basket-clv")
    log.to_csv(scratch_store / "log.csv", index=False)
    command = ["score", "--model", "models:/basket-clv@challenger", "--transactions", "log.csv",
               "--as-of", AS_OF, "-o", "scores.csv", "--horizon", "13", "--amount-col", "amount",
               "--no-progress"]
    assert main(command) == 1
    assert "--quantity-col" in capsys.readouterr().err
    assert not (scratch_store / "scores.csv").exists()
    assert main(command + ["--quantity-col", "items"]) == 0
    scores = pd.read_csv(scratch_store / "scores.csv").set_index("customer_id")
    X = churn_training_data(log, AS_OF, amount_col="amount", quantity_col="items")
    np.testing.assert_allclose(scores.loc[X.index, "probability_of_purchase"],
                               model.adjuster.probability_of_purchase(X), rtol=1e-9)
