"""Backtests of models with covariates (issue 22): candidates by name and as objects, the
customer attributes joined at each cutoff, and every per-candidate computation (holdout
predictions, P(any purchase), tracking curve, CLV, DERT, scores, cumulative purchases) at each
customer's own parameters."""

import numpy as np
import pandas as pd
import pytest

import clvlab
from clvlab import ClvlabError, DataValidationError
from clvlab.backtesting import ModelCandidate, calibration_data, make_candidate
from clvlab.data.simulate import segmented_transaction_log
from clvlab.models.clv import customer_lifetime_value, dert
from clvlab.models.cumulative import expected_cumulative_purchases
from clvlab.models.customer_scores import score_customers

# two segments whose purchase rates differ by 3x (E[lambda] = r / alpha) and whose dropout
# differs by 7.5x (E[mu] = s / beta): "low" buys less and leaves sooner
SEGMENTS = {"low": (1500, dict(r=2.0, alpha=30.0, s=1.0, beta=8.0)),
            "high": (1500, dict(r=2.0, alpha=10.0, s=1.0, beta=60.0))}


@pytest.fixture(scope="module")
def segmented():
    log, segment = segmented_transaction_log(SEGMENTS, seed=2, start="2024-01-01",
                                             acquisition_period=13, observation_period=52,
                                             spend=dict(p=6.0, q=4.0, v=15.0))
    return log, segment.to_frame()


@pytest.fixture(scope="module")
def result(segmented):
    log, attributes = segmented
    return clvlab.backtest(log, ["pareto-nbd", "pareto-nbd[segment]"], cutoffs=["2024-09-01"],
                           horizon=13, customer_attributes=attributes, progress=False)


# the backtest ---------------------------------------------------------------------------------

def test_the_covariate_model_beats_the_plain_one_where_the_segment_drives_behaviour(result):
    table = result.metrics[result.metrics["cohort"] == "all"].set_index(
        ["candidate", "target", "metric"])["value"]
    plain, covariate = "pareto-nbd", "pareto-nbd[segment]"
    # seed 2: MAE 0.713 -> 0.674, AUC 0.880 -> 0.895 (seeds 1 and 3 agree)
    assert table[covariate, "purchases", "mae"] < table[plain, "purchases", "mae"] - 0.02
    assert table[covariate, "activity", "auc"] > table[plain, "activity", "auc"] + 0.005
    assert table[covariate, "activity", "brier"] < table[plain, "activity", "brier"]


def test_the_tracking_curve_of_a_covariate_model_sums_its_own_predictions(segmented, result):
    log, attributes = segmented
    calibration, _ = calibration_data(log, "2024-09-01", 13, customer_attributes=attributes)
    candidate = make_candidate("pareto-nbd[segment]").fit(calibration, 13)
    horizons = np.array([3.0, 13.0])
    fast = candidate.total_expected_purchases(calibration, horizons)
    slow = [candidate.predict(calibration, h)["expected_purchases"].sum() for h in horizons]
    np.testing.assert_allclose(fast, slow, rtol=1e-10)
    curve = result.tracking[result.tracking["candidate"] == "pareto-nbd[segment]"]
    # the backtest's last point is the holdout total of its predictions
    predicted = result.predictions.query("candidate == 'pareto-nbd[segment]'")["expected_purchases"]
    assert curve["expected"].iloc[-1] == pytest.approx(predicted.sum(), rel=1e-10)


def test_the_fit_finds_the_segments_effects(segmented):
    log, attributes = segmented
    calibration, _ = calibration_data(log, "2024-09-01", 13, customer_attributes=attributes)
    candidate = make_candidate("pareto-nbd[segment]").fit(calibration, 13)
    coefficients = candidate.transaction_model_.params_
    # reference level "high": "low" buys at a third of the rate (-log 3 = -1.10) and drops out
    # 7.5 times as fast (log 7.5 = 2.01)
    assert coefficients["purchase.segment[low]"] == pytest.approx(-np.log(3), abs=0.2)
    assert coefficients["dropout.segment[low]"] == pytest.approx(np.log(7.5), abs=0.6)


def test_a_model_object_with_covariates_is_a_candidate_with_spend(segmented):
    log, attributes = segmented
    spend = clvlab.GammaGamma(spend_covariates=["segment"])
    transaction = clvlab.ParetoNBD(purchase_covariates=["segment"], dropout_covariates=["segment"])
    result = clvlab.backtest(log, [(transaction, spend)], cutoffs=["2024-09-01"], horizon=13,
                             amount_col="amount", customer_attributes=attributes, progress=False)
    name = "pareto-nbd[segment] + gamma-gamma[segment]"
    assert result.settings["candidates"] == [name]
    predicted = result.predictions
    assert np.isfinite(predicted["expected_spend"]).all() and (predicted["expected_spend"] > 0).all()
    assert f"predicted_value_per_customer[{name}]" in result.cohorts


# attributes: missing rows and missing columns --------------------------------------------------

def test_customers_without_attributes_are_an_error_with_their_number_and_one_of_them(segmented):
    log, attributes = segmented
    partial = attributes.drop(index=[5, 17, 2900])
    with pytest.raises(DataValidationError, match=r"no row for 3 of the \d+ customers, "
                                                  r"e\.g\. customer 5"):
        clvlab.backtest(log, ["pareto-nbd[segment]"], cutoffs=["2024-09-01"], horizon=13,
                        customer_attributes=partial, progress=False)


def test_a_candidate_reading_attributes_that_are_not_given_is_refused_before_any_work(segmented):
    log, attributes = segmented
    with pytest.raises(ClvlabError, match=r"reads the customer attributes \['segment'\].*"
                                          "customer_attributes="):
        clvlab.backtest(log, ["pareto-nbd", "pareto-nbd[segment]"], cutoffs=["2024-09-01"],
                        horizon=13, progress=False)
    with pytest.raises(ClvlabError, match=r"attribute\(s\) \['channel'\], which "
                                          r"customer_attributes lacks; it has \['segment'\]"):
        clvlab.backtest(log, [clvlab.BetaGeo(dropout_covariates=["channel"])],
                        cutoffs=["2024-09-01"], horizon=13, customer_attributes=attributes,
                        progress=False)


# names ------------------------------------------------------------------------------------------

def test_a_plain_list_moves_every_process_and_process_lists_move_theirs():
    candidate = make_candidate("pareto-nbd[gender,channel]+gamma-gamma")
    model = candidate.transaction_model
    assert model.purchase_covariates == model.dropout_covariates == ["gender", "channel"]
    assert candidate.spend_model.spend_covariates is None
    assert candidate.name == "pareto-nbd[gender,channel] + gamma-gamma"
    assert candidate.attribute_columns == ["gender", "channel"]

    candidate = make_candidate(" Pareto-NBD[purchase = Gender, channel ; dropout=channel] "
                               "+ gamma-gamma[Region]")
    model = candidate.transaction_model
    assert model.purchase_covariates == ["Gender", "channel"]  # columns keep their case
    assert model.dropout_covariates == ["channel"]
    assert candidate.spend_model.spend_covariates == ["Region"]
    assert candidate.attribute_columns == ["Gender", "channel", "Region"]
    assert candidate.name == "pareto-nbd[purchase=Gender,channel;dropout=channel] + gamma-gamma[Region]"

    candidate = make_candidate("bg-nbd[dropout=tenure_group]")
    assert candidate.transaction_model.purchase_covariates is None
    assert candidate.transaction_model.dropout_covariates == ["tenure_group"]


@pytest.mark.parametrize("name", ["pareto-nbd[segment]", "bg-nbd[purchase=a;dropout=b,c]",
                                  "mbg-nbd[a] + gamma-gamma[b]", "pareto-nbd + gamma-gamma[b]"])
def test_a_candidate_name_reads_back_as_the_same_candidate(name):
    candidate = make_candidate(name)
    again = make_candidate(candidate.name)
    assert isinstance(again, ModelCandidate) and again.name == candidate.name
    assert again.attribute_columns == candidate.attribute_columns


def test_a_model_object_is_named_by_its_covariates():
    assert make_candidate(clvlab.ParetoNBD(purchase_covariates=["g"], dropout_covariates=["g"])
                          ).name == "pareto-nbd[g]"
    assert make_candidate(clvlab.ParetoNBD(dropout_covariates=["g"])).name == "pareto-nbd[dropout=g]"
    assert make_candidate(clvlab.ParetoNBD()).name == "pareto-nbd"


@pytest.mark.parametrize("name, message", [
    ("pareto-nbd[spend=x]", r"'spend=x' is not 'process=columns'; the processes of pareto-nbd "
                            r"are \['purchase', 'dropout'\]"),
    ("gamma-gamma[dropout=x]", r"unknown candidate.*covariates go on a transaction model"),
    ("pareto-nbd+gamma-gamma[purchase=x]", r"the processes of gamma-gamma are \['spend'\]"),
    ("pareto-nbd[a,,b]", "empty covariate name"),
    ("pareto-nbd[a,a]", "covariate 'a' is listed twice"),
    ("pareto-nbd[purchase=a;purchase=b]", "the process 'purchase' is listed twice"),
    ("pareto-nbd[a", r"a '\[' is not closed"),
    ("pareto-nbd[a]]", "unbalanced or nested brackets"),
    ("pareto-nbd[a[b]]", "unbalanced or nested brackets"),
    ("pareto[a]", "unknown candidate 'pareto\\[a\\]'"),
    ("historical-average[a]", "covariates go on a transaction model"),
    ("pareto-nbd[a]+churn-adjuster", "covariates and the churn adjuster do not combine"),
    ("pareto-nbd[a] x", "cannot read 'pareto-nbd\\[a\\] x'"),
])
def test_names_that_cannot_be_read_are_clear_errors(name, message):
    with pytest.raises(ClvlabError, match=message):
        make_candidate(name)


def test_a_churn_adjusted_candidate_with_covariates_is_refused():
    from clvlab.evaluation.churn_candidate import ChurnAdjustedCandidate

    with pytest.raises(ClvlabError, match="covariates and the churn adjuster do not combine"):
        ChurnAdjustedCandidate(clvlab.ParetoNBD(purchase_covariates=["g"]))


# CLV, DERT, scores and cumulative purchases at each customer's own parameters -----------------

@pytest.fixture(scope="module")
def covariate_models():
    transaction = clvlab.ParetoNBD.from_params(
        time_unit="W", r=1.2, alpha=9.0, s=1.4, beta=20.0, levels={"segment": ["high", "low"]},
        coefficients={"purchase": {"segment[low]": -1.1}, "dropout": {"segment[low]": 2.0}})
    spend = clvlab.GammaGamma.from_params(time_unit="W", p=6.0, q=4.0, v=15.0,
                                          levels={"segment": ["high", "low"]},
                                          coefficients={"spend": {"segment[low]": 0.5}})
    return transaction, spend


@pytest.fixture(scope="module")
def table():
    rng = np.random.default_rng(4)
    n = 400
    T = rng.uniform(10, 40, n)
    recency = T * rng.uniform(0, 1, n)
    frequency = rng.poisson(3, n).astype(float)
    recency[frequency == 0] = 0.0
    out = pd.DataFrame({"frequency": frequency, "recency": recency, "T": T,
                        "monetary_value": np.where(frequency > 0, rng.gamma(5, 8, n), 0.0),
                        "segment": rng.choice(["high", "low"], n)},
                       index=pd.Index(np.arange(n) + 1000, name="customer_id"))
    out.attrs = {"clvlab": {"time_unit": "W"}}  # as rfm_summary records it
    return out


def _per_segment(transaction, spend, table, compute):
    """``compute(plain transaction model, plain spend model, rows)`` for each segment's rows,
    with the plain models at that segment's parameters, assembled in the table's order."""
    out = pd.Series(np.nan, index=table.index)
    for level, rows in table.groupby("segment"):
        plain = (transaction.for_attributes({"segment": level}),
                 spend.for_attributes({"segment": level}))
        out[rows.index] = np.asarray(compute(*plain, rows), dtype=float)
    return out.to_numpy()


@pytest.mark.parametrize("method, horizon", [("discrete", 26.0), ("continuous", 26.0),
                                             ("continuous", None)])
def test_clv_of_a_covariate_model_is_the_plain_models_at_each_customers_parameters(
        covariate_models, table, method, horizon):
    transaction, spend = covariate_models
    clv = customer_lifetime_value(transaction, spend, table, horizon, 0.01, 0.3, method=method)
    expected = _per_segment(transaction, spend, table, lambda t, s, rows: customer_lifetime_value(
        t, s, rows, horizon, 0.01, 0.3, method=method))
    np.testing.assert_allclose(clv.to_numpy(), expected, rtol=1e-12)
    # and the covariates matter: the baseline model's values are not these
    baseline = customer_lifetime_value(transaction.plain_at(transaction._check_fitted()),
                                       spend.plain_at(spend._check_fitted()), table, horizon,
                                       0.01, 0.3, method=method)
    low = (table["segment"] == "low").to_numpy()
    assert not np.allclose(clv.to_numpy()[low], baseline.to_numpy()[low], rtol=1e-3)


def test_dert_of_a_covariate_model_is_the_plain_models_at_each_customers_parameters(
        covariate_models, table):
    transaction, spend = covariate_models
    values = dert(transaction, table, 0.002, None)
    expected = _per_segment(transaction, spend, table,
                            lambda t, s, rows: dert(t, rows, 0.002, None))
    np.testing.assert_allclose(values, expected, rtol=1e-12)


def test_scores_of_a_covariate_model_read_its_covariates_from_the_table(covariate_models, table):
    transaction, spend = covariate_models
    scores = score_customers(transaction, spend, None, table, horizon=13, discount_rate=0.002)
    for column in ("p_alive", "expected_purchases", "expected_spend_per_purchase", "clv"):
        expected = _per_segment(transaction, spend, table, lambda t, s, rows: score_customers(
            t, s, None, rows, horizon=13, discount_rate=0.002)[column])
        np.testing.assert_allclose(scores[column].to_numpy(), expected, rtol=1e-12)
    with pytest.raises(ClvlabError, match=r"lacks the covariate column\(s\) \['segment'\]"):
        score_customers(transaction, None, None, table.drop(columns="segment"), horizon=13)


def test_cumulative_purchases_of_a_covariate_model_sum_each_customers_own_model(
        covariate_models, table):
    transaction, spend = covariate_models
    births = np.linspace(0, 20, len(table))
    times = [5.0, 20.0, 40.0]
    attributes = table[["segment"]]
    total = expected_cumulative_purchases(transaction, births, times, attributes=attributes)
    low = (table["segment"] == "low").to_numpy()
    parts = [expected_cumulative_purchases(transaction.for_attributes({"segment": level}),
                                           births[mask], times)
             for level, mask in (("low", low), ("high", ~low))]
    np.testing.assert_allclose(total.to_numpy(), (parts[0] + parts[1]).to_numpy(), rtol=1e-12)
    with pytest.raises(ClvlabError, match=r"has covariates \['segment'\].*pass attributes="):
        expected_cumulative_purchases(transaction, births, times)
    with pytest.raises(ClvlabError, match="attributes has 10 rows but there are 400 births"):
        expected_cumulative_purchases(transaction, births, times, attributes=attributes.iloc[:10])
    with pytest.raises(ClvlabError, match="for_attributes"):
        transaction.expected_purchases_new_customer(5.0)
