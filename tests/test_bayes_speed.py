"""Predictions with parameter uncertainty on many covariate groups (issue 29, items 5 and 14):
the same numbers group by group as draw by draw, the covariate groups found once, a cost estimate
and a progress bar on long runs, and columns that say what the intervals are.

Speed itself is measured, not asserted: benchmarks/bench_bayes_speed.py."""

from __future__ import annotations

import io
import sys
import warnings

import numpy as np
import pandas as pd
import pytest

import clvlab
from clvlab import bayes
from clvlab.data import simulate
from clvlab.inference import uncertainty
from clvlab.models import customer_params
from clvlab.models.covariate_encoding import CovariateEncoder
from clvlab.models.gamma_gamma import GammaGamma
from clvlab.models.transaction import TransactionModel


@pytest.fixture(scope="module")
def rfm() -> pd.DataFrame:
    """60 Pareto/NBD customers with a continuous covariate (a covariate group each) and a 0/1."""
    n = 60
    rng = np.random.default_rng(0)
    attributes = pd.DataFrame({"income": rng.normal(0, 1, n), "gender": rng.integers(0, 2, n)},
                              index=pd.RangeIndex(n, name="customer_id"))
    table = simulate.with_covariates(
        "pareto-nbd", n, params={"r": 0.8, "alpha": 8.0, "s": 0.6, "beta": 10.0},
        coefficients={"purchase": {"income": 0.3}, "dropout": {"gender": 0.3}},
        attributes=attributes, T=39.0, seed=1)
    table["monetary_value"] = np.where(table["frequency"] > 0, rng.gamma(5.0, 8.0, n), 0.0)
    table.attrs = {"clvlab": {"time_unit": "W"}}
    return table[["frequency", "recency", "T", "income", "gender", "monetary_value"]]


@pytest.fixture(scope="module")
def models(rfm):
    transaction = clvlab.ParetoNBD.from_params(
        time_unit="W", r=0.8, alpha=8.0, s=0.6, beta=10.0,
        coefficients={"purchase": {"income": 0.3}, "dropout": {"gender": 0.3}})
    names = list(transaction.params_.index)
    transaction.covariance_ = pd.DataFrame(np.diag((0.05 * np.abs(transaction.params_)) ** 2 + 1e-4),
                                           index=names, columns=names)
    spend = clvlab.GammaGamma(spend_covariates=["gender"]).fit(rfm[rfm["frequency"] > 0])
    return transaction, spend


def expected(model, chunk):
    return model.expected_purchases(chunk, t=52)


@pytest.fixture
def by_group(monkeypatch):
    """The path of a model class whose predictions need one value per parameter: covariate
    group by covariate group (every clvlab model now predicts in one pass: issue 30)."""
    monkeypatch.setattr(TransactionModel, "row_predictions", False)
    monkeypatch.setattr(GammaGamma, "row_predictions", False)


def test_one_pass_per_draw_equals_group_by_group(rfm, models, monkeypatch):
    """Issue 30: each draw's model predicts the whole chunk at once, each customer at their own
    parameters; the numbers are the group-by-group path's."""
    calls = []
    original = customer_params.row_model

    def counting(model, params):
        calls.append(len(params))
        return original(model, params)

    monkeypatch.setattr(customer_params, "row_model", counting)
    one_pass = bayes.posterior_summary(models[0], expected, rfm, n_draws=20, rowwise=True)
    assert calls == [60] * 20  # one vectorised call a draw, not one per covariate group
    monkeypatch.setattr(TransactionModel, "row_predictions", False)
    grouped = bayes.posterior_summary(models[0], expected, rfm, n_draws=20, rowwise=True)
    pd.testing.assert_frame_equal(one_pass, grouped, rtol=1e-12)


def test_group_by_group_equals_draw_by_draw(rfm, models, by_group):
    transaction, spend = models
    a = bayes.posterior_summary(transaction, expected, rfm, n_draws=12, rowwise=True)
    b = bayes.posterior_summary(transaction, expected, rfm, n_draws=12, rowwise=False)
    pd.testing.assert_frame_equal(a, b, rtol=1e-12)

    def clv(t, s, chunk):
        return clvlab.customer_lifetime_value(t, s, chunk, horizon=52, discount_rate=0.01)

    few = rfm.head(12)  # two models with covariates: groups of both models' covariates
    a = bayes.posterior_summary([transaction, spend], clv, few, n_draws=3, rowwise=True)
    b = bayes.posterior_summary([transaction, spend], clv, few, n_draws=3, rowwise=False)
    pd.testing.assert_frame_equal(a, b, rtol=1e-12)
    draws = bayes.posterior_summary(transaction, expected, rfm, n_draws=5, rowwise=True,
                                    return_draws=True)
    np.testing.assert_allclose(draws.to_numpy(), bayes.posterior_summary(
        transaction, expected, rfm, n_draws=5, return_draws=True).to_numpy(), rtol=1e-12)


def test_covariates_are_encoded_once_not_once_per_draw(rfm, models, monkeypatch, by_group):
    """Draw by draw, each draw's model splits the table into its covariate groups again (the
    encoding, the grouping, a plain model and a table slice per group); group by group, the
    groups are found once for all the draws."""
    calls = []
    original = CovariateEncoder.transform

    def counting(self, *args, **kwargs):
        calls.append(1)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(CovariateEncoder, "transform", counting)
    bayes.posterior_summary(models[0], expected, rfm, n_draws=20, rowwise=True)
    assert len(calls) <= 2, len(calls)  # finding identical customers; none per draw


def test_the_cost_is_estimated_up_front_and_from_the_first_draw(rfm, models, monkeypatch, caplog,
                                                               by_group):
    monkeypatch.setattr(uncertainty, "ESTIMATE_WARN_SECONDS", 0.0)
    with caplog.at_level("INFO", logger="clvlab"), \
            pytest.warns(clvlab.ClvlabWarning, match=r"the parameter draws will take about .* "
                         r"10 draws x 60 distinct customers in 60 covariate groups, 600 "
                         r"evaluations"):
        bayes.posterior_summary(models[0], expected, rfm, n_draws=10, rowwise=True)
    assert "10 draws x 60 distinct customers in 60 covariate groups: 600 model evaluations" \
        in caplog.text
    monkeypatch.setattr(uncertainty, "ESTIMATE_WARN_SECONDS", 60.0)
    with warnings.catch_warnings():  # quick runs say nothing
        warnings.simplefilter("error", clvlab.ClvlabWarning)
        bayes.posterior_summary(models[0], expected, rfm, n_draws=10, rowwise=True)


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_many_model_evaluations_show_a_bar_by_default(rfm, models, monkeypatch, by_group):
    """A bar by default (someone watching) once the evaluations are many, not only the values:
    60 customers x 40 draws is 2,400 values, but 2,400 evaluations of a model."""
    monkeypatch.setattr(sys, "stderr", _Terminal())
    bayes.posterior_summary(models[0], expected, rfm, n_draws=40, rowwise=True)
    assert "parameter draws" in sys.stderr.getvalue() and "40/40" in sys.stderr.getvalue()
    plain = clvlab.ParetoNBD.from_params(time_unit="W", r=0.8, alpha=8.0, s=0.6, beta=10.0)
    plain.covariance_ = pd.DataFrame(np.diag([1e-3] * 4), index=plain.params_.index,
                                     columns=plain.params_.index)
    monkeypatch.setattr(sys, "stderr", _Terminal())
    bayes.posterior_summary(plain, expected, rfm, n_draws=40)  # 40 evaluations: no bar
    assert sys.stderr.getvalue() == ""


def test_columns_say_they_are_the_parameter_uncertainty_of_the_prediction(rfm, models):
    """They are the spread of an expected value over the parameters, not a prediction interval
    of the customer's counts (such intervals held about 2 % of holdout counts)."""
    out = bayes.posterior_summary(models[0], expected, rfm, n_draws=10, level=0.9)
    assert list(out.columns) == ["mean", "parameter_sd", "parameter_5%", "parameter_95%"]
    assert bayes.summary_columns(0.94) == ["mean", "parameter_sd", "parameter_3%", "parameter_97%"]
    assert "not a prediction interval" in bayes.posterior_summary.__doc__


def test_each_chunk_is_checked_at_its_first_draw_not_at_every_draw(monkeypatch):
    """The RFM rules are checked on a chunk's first draw only (the same table, the same
    prediction); a table that breaks them is still refused, at that first draw."""
    from clvlab.data import validation

    fitted_to = simulate.bg_nbd(500, r=0.24, alpha=4.4, a=0.79, b=2.4, T=40.0, seed=2)
    fitted_to.attrs = {"clvlab": {"time_unit": "W"}}
    model = clvlab.BetaGeo().fit(fitted_to[["frequency", "recency", "T"]])
    table = pd.DataFrame({"frequency": [0, 2, 8], "recency": [0.0, 30.0, 38.0],
                          "T": [40.0, 40.0, 40.0]})
    table.attrs = {"clvlab": {"time_unit": "W"}}
    checks = []
    original = validation._numeric

    def counting(frame, column):
        checks.append(column)
        return original(frame, column)

    monkeypatch.setattr(validation, "_numeric", counting)
    summary = model.posterior_predict("expected_purchases", table, n_draws=30, t=52)
    assert summary["mean"].notna().all()
    per_check = 3  # frequency, recency, T
    assert len(checks) <= 3 * per_check, len(checks)  # the caller's, the chunk's: not 30 times
    broken = table.assign(recency=[0.0, 45.0, 38.0])
    with pytest.raises(clvlab.ClvlabError, match="recency must be <= T"):
        model.posterior_predict("expected_purchases", broken, n_draws=30, t=52)


@pytest.mark.parametrize("model_class", ["BetaGeo", "ParetoNBD", "ModifiedBetaGeo"])
def test_draws_in_blocks_equal_draws_one_by_one(model_class, monkeypatch):
    """Many draws of a small table in one pass of row models (``_block_values``) give the
    numbers a model per draw gives: expected purchases, P(alive) and CLV with a spend model."""
    log = simulate.transaction_log(1500, model="pareto-nbd", params={"r": 0.6, "alpha": 9.0,
                                   "s": 0.7, "beta": 11.0}, spend={"p": 6.0, "q": 3.7, "v": 15.0},
                                   observation_period=52, seed=4)
    rfm = clvlab.rfm_summary(log, amount_col="amount", time_unit="W")
    model = getattr(clvlab, model_class)().fit(rfm)
    spend = GammaGamma().fit(rfm[rfm["frequency"] > 0])
    table = rfm.head(40)
    clv = lambda m, s, chunk: clvlab.customer_lifetime_value(  # noqa: E731
        m, s, chunk, horizon=26, discount_rate=0.01)
    cases = [(model, lambda m, chunk: m.expected_purchases(chunk, 13)),
             (model, lambda m, chunk: m.p_alive(chunk)), ([model, spend], clv)]
    for models, predict in cases:
        blocks = bayes.posterior_summary(models, predict, table, n_draws=60, return_draws=True)
        monkeypatch.setattr(uncertainty, "_block_values", lambda *a: None)  # one by one
        single = bayes.posterior_summary(models, predict, table, n_draws=60, return_draws=True)
        monkeypatch.undo()
        np.testing.assert_allclose(blocks.to_numpy(), single.to_numpy(), rtol=1e-12)
    monkeypatch.setattr(uncertainty, "BLOCK_ROWS", 7 * len(table))  # several blocks
    several = bayes.posterior_summary(model, cases[0][1], table, n_draws=60, return_draws=True)
    monkeypatch.undo()
    np.testing.assert_allclose(several.to_numpy(), bayes.posterior_summary(
        model, cases[0][1], table, n_draws=60, return_draws=True).to_numpy(), rtol=1e-13)
