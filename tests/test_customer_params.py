"""Predictions at each customer's own parameters in one vectorised pass (issue 30, item 1):
the same values as group by group, in parts on threads, and the row grouping they rest on."""

import numpy as np
import pandas as pd
import pytest

import clvlab
from clvlab.inference.mle import group_rows
from clvlab.models import customer_params
from clvlab.models.transaction import TransactionModel


def _table(n: int = 400, seed: int = 3) -> pd.DataFrame:
    rfm = clvlab.datasets.load_cdnow_summary().sample(n, replace=True, random_state=seed)
    rfm = rfm.reset_index(drop=True)
    rng = np.random.default_rng(seed)
    rfm["income"] = rng.normal(size=n)
    rfm["channel"] = rng.choice(["web", "shop"], size=n)
    rfm.attrs["time_unit"] = "W"
    return rfm


MODELS = {
    "bg-nbd": lambda: clvlab.BetaGeo.from_params(
        "W", r=0.24, alpha=4.4, a=0.79, b=2.4, levels={"channel": ["shop", "web"]},
        coefficients={"purchase": {"income": 0.3, "channel[web]": -0.4}, "dropout": {"income": -0.2}}),
    "pareto-nbd": lambda: clvlab.ParetoNBD.from_params(
        "W", r=0.55, alpha=10.6, s=0.6, beta=11.7,
        coefficients={"purchase": {"income": 0.3}, "dropout": {"income": 0.5}}),
}


def _predictions(model, rfm):
    return pd.concat([model.p_alive(rfm), model.expected_purchases(rfm, 39),
                      model.scores(rfm, 13),
                      model.expected_purchases_by_horizon(rfm, [4.0, 52.0])], axis=1)


@pytest.mark.parametrize("name", list(MODELS))
def test_one_pass_equals_group_by_group_and_parts_on_threads_equal_one_part(name, monkeypatch):
    model, rfm = MODELS[name](), _table()
    one_pass = _predictions(model, rfm)
    monkeypatch.setattr(TransactionModel, "row_predictions", False)
    by_group = _predictions(model, rfm)
    monkeypatch.setattr(TransactionModel, "row_predictions", True)
    pd.testing.assert_frame_equal(one_pass, by_group, rtol=1e-12, atol=1e-15)
    monkeypatch.setattr(customer_params, "PARALLEL_FROM_ROWS", 10)
    monkeypatch.setattr(customer_params, "PREDICTION_THREADS", 3)
    pd.testing.assert_frame_equal(_predictions(model, rfm), one_pass, rtol=0, atol=0)


def test_customers_with_the_same_history_and_parameters_are_predicted_once(monkeypatch):
    model = MODELS["bg-nbd"]()
    rfm = _table()
    rfm["income"] = np.round(rfm["income"])  # few distinct values: many shared rows
    seen = []
    original = customer_params.row_model

    def counting(model, params):
        seen.append(len(params))
        return original(model, params)

    monkeypatch.setattr(customer_params, "row_model", counting)
    values = model.p_alive(rfm)
    distinct = len(rfm[["frequency", "recency", "T", "income", "channel"]].drop_duplicates())
    assert seen == [distinct] and distinct < len(rfm)
    assert values.index.equals(rfm.index)


def test_a_row_model_refuses_to_be_read_as_one_set_of_parameters():
    model = MODELS["bg-nbd"]()
    rfm = _table(20)
    rows = customer_params.row_model(model, customer_params.customer_parameters(model, rfm))
    assert rows._check_fitted().shape == (4, 20)
    assert rows.params_.isna().all()  # code reading params_ gets NaN, never row 0's values


def test_group_rows_renumbers_when_the_combined_key_would_overflow():
    rng = np.random.default_rng(0)
    n = 5_000
    columns = [rng.integers(0, 40, n).astype(float)] + [rng.normal(size=n) for _ in range(6)]
    columns[3][::2] = columns[3][1::2]  # repeated values somewhere
    columns = [np.tile(c[:2_500], 2) for c in columns]  # every row twice
    distinct, inverse = group_rows(columns)
    unique, expected = np.unique(np.column_stack(columns), axis=0, return_inverse=True)
    np.testing.assert_array_equal(np.column_stack(distinct), unique)  # sorted, as np.unique
    np.testing.assert_array_equal(inverse, expected.ravel())
