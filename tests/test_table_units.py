"""Issue 29, items 1, 3, 5 (covariates), 6 and 13: wrong numbers are never silent.

1. A table whose time unit is unknown (pandas dropped ``attrs`` in a merge, a CSV read, a JSON
   payload) is refused by every prediction of a model that knows its unit, unless the caller
   states it; durations that look like another unit are refused even under a label.
3. A summary built far past the log's last transaction warns and records how far.
5. A numeric covariate outside the values seen at fit warns.
6. The scoring function's spend column is named per purchase.
13. Numbers given as text are refused by one rule everywhere; swapped models are named.
"""

from __future__ import annotations

import io
import warnings

import numpy as np
import pandas as pd
import pytest

import clvlab
from clvlab import BetaGeo, GammaGamma, ParetoNBD, score_customers
from clvlab.datasets import load_cdnow, load_cdnow_summary
from clvlab.models.clv import customer_lifetime_value
from clvlab.models.table_units import REFUSE_NATS_PER_CUSTOMER, duration_evidence

# Fader, Hardie & Lee's CDNOW estimates (weeks)
PNBD = dict(r=0.5534, alpha=10.5802, s=0.6061, beta=11.6711)
BG = dict(r=0.2426, alpha=4.4136, a=0.7930, b=2.4259)
SPEND = dict(p=6.25, q=3.74, v=15.44)


@pytest.fixture(scope="module")
def weeks():
    return load_cdnow_summary()


@pytest.fixture(scope="module")
def fitted(weeks):
    """Models fitted on CDNOW in weeks: they know the ages they were fitted on (median_T_)."""
    return {"ParetoNBD": ParetoNBD().fit(weeks), "BetaGeo": BetaGeo().fit(weeks)}


def _unlabelled(table: pd.DataFrame) -> pd.DataFrame:
    """The table as pandas gives it back from a CSV file: the same numbers, no unit."""
    buffer = io.StringIO()
    table.to_csv(buffer)
    buffer.seek(0)
    return pd.read_csv(buffer, index_col=0)


def _in_days(table: pd.DataFrame) -> pd.DataFrame:
    out = table.assign(recency=table["recency"] * 7, T=table["T"] * 7)
    out.attrs = {}
    return out


def _predictions(model, spend):
    """Every public way a model scores a table: (name, call(table, **unit))."""
    return [
        ("p_alive", lambda t, **k: model.p_alive(t, **k)),
        ("expected_purchases", lambda t, **k: model.expected_purchases(t, 52, **k)),
        ("probability_of_purchase", lambda t, **k: model.probability_of_purchase(t, 52, **k)),
        ("purchase_probability", lambda t, **k: model.purchase_probability(0, 52, t, **k)),
        ("scores", lambda t, **k: model.scores(t, 52, **k)),
        ("log_likelihood", lambda t, **k: model.log_likelihood(t, per_customer=True, **k)),
        ("customer_lifetime_value",
         lambda t, **k: customer_lifetime_value(model, spend, t, 52, 0.01, **k)),
        ("score_customers",
         lambda t, **k: score_customers(model, spend, None, t, horizon=52, **k)),
    ]


@pytest.mark.parametrize("model_class, params", [(ParetoNBD, PNBD), (BetaGeo, BG)])
def test_a_table_that_lost_its_unit_is_refused_by_every_prediction_unless_stated(
        weeks, model_class, params):
    """The grocer's case: a weeks model scored a days table read back from CSV in silence (673
    expected purchases instead of 3,991). Read back from CSV the table has no unit: refused;
    stated, the result is the labelled table's."""
    model = model_class.from_params(time_unit="W", **params)
    spend = GammaGamma.from_params(**SPEND)
    unlabelled = _unlabelled(weeks)
    assert unlabelled.attrs == {}
    for name, predict in _predictions(model, spend):
        with pytest.raises(clvlab.ClvlabError, match="does not record the time unit"):
            predict(unlabelled)
        expected, stated = predict(weeks), predict(unlabelled, time_unit="W")
        if isinstance(expected, pd.Series):
            np.testing.assert_allclose(stated.to_numpy(), expected.to_numpy(), rtol=1e-12,
                                       err_msg=name)
        else:
            np.testing.assert_allclose(stated.to_numpy(float), expected.to_numpy(float),
                                       rtol=1e-12, err_msg=name)
        with pytest.raises(clvlab.ClvlabError, match="is in days"):
            predict(unlabelled, time_unit="D")


def test_a_merge_drops_the_unit_and_the_prediction_says_so(weeks):
    model = ParetoNBD.from_params(time_unit="W", **PNBD)
    extra = pd.DataFrame({"segment": ["a"] * len(weeks)}, index=weeks.index)
    merged = weeks.reset_index().merge(extra.reset_index(), on="customer_id").set_index("customer_id")
    if merged.attrs:  # a pandas that keeps attrs through merge makes this case moot
        merged.attrs = {}
    with pytest.raises(clvlab.ClvlabError, match="time_unit='W'"):
        model.expected_purchases(merged, 52)


@pytest.mark.parametrize("name", ["ParetoNBD", "BetaGeo"])
def test_durations_in_another_unit_are_refused_under_any_label(weeks, fitted, name):
    """A days table labelled weeks (or stated as weeks) is caught by the durations: the model
    explains the histories far better in days, and the ages are 7 times the fit's. Every
    prediction refuses it, naming both units; check_durations=False is the explicit way
    through."""
    model = fitted[name]
    spend = GammaGamma.from_params(**SPEND)
    days = _in_days(weeks)
    labelled = days.copy()
    labelled.attrs = {"clvlab": {"time_unit": "W"}}
    for name, predict in _predictions(model, spend):
        for call in (lambda: predict(days, time_unit="W"), lambda: predict(labelled)):
            with pytest.raises(clvlab.ClvlabError, match=r"look like days \('D'\)") as error:
                call()
            assert "weeks ('W')" in str(error.value), name
        predict(labelled, check_durations=False)  # stated by the caller: scored
    # months too, the other way
    months = weeks.assign(recency=weeks["recency"] / 4.348, T=weeks["T"] / 4.348)
    with pytest.raises(clvlab.ClvlabError, match=r"look like months"):
        model.p_alive(months)


def test_younger_and_older_cohorts_in_the_right_unit_are_not_refused(weeks, fitted):
    """Customers much younger or much older than the fit's (T of 27-39 weeks) pass, as does a
    small table."""
    model = fitted["ParetoNBD"]
    young = weeks[weeks["T"] < 30]
    old = weeks.assign(T=weeks["T"] + 300)  # the same customers scored 6 years later
    small = weeks.sample(50, random_state=1)
    for table in (young, old, small):
        gains = duration_evidence(model, table)
        assert max(gains.values()) < 0, gains
        model.expected_purchases(table, 52)
    # and the evidence for days, on a days table, is far beyond the threshold
    assert duration_evidence(model, _in_days(weeks))["D"] > 2 * REFUSE_NATS_PER_CUSTOMER * len(weeks)


def test_simulated_customers_in_days_are_told_from_weeks():
    """On a simulated log (not CDNOW) in days, a model fitted in weeks refuses the days table
    and accepts a weeks table of the same customers."""
    from clvlab.simulate import pareto_nbd

    sim = pareto_nbd(3_000, T=np.random.default_rng(3).uniform(5, 60, 3_000), seed=4,
                     **dict(r=0.8, alpha=6.0, s=0.5, beta=20.0))
    table = sim[["frequency", "recency", "T"]]
    model = ParetoNBD().fit(table, time_unit="W")
    model.p_alive(table, time_unit="W")
    with pytest.raises(clvlab.ClvlabError, match="look like days"):
        model.p_alive(_in_days(table), time_unit="W")


def test_covariate_models_check_their_tables_too(weeks):
    table = weeks.assign(flag=(weeks.index % 2).astype(float))
    model = ParetoNBD(purchase_covariates=["flag"]).fit(table)
    model.expected_purchases(table, 52)
    with pytest.raises(clvlab.ClvlabError, match="does not record the time unit"):
        model.expected_purchases(_unlabelled(table), 52)
    with pytest.raises(clvlab.ClvlabError, match="look like days"):
        model.expected_purchases(_in_days(table), 52, time_unit="W")


def test_models_without_durations_need_no_unit(weeks):
    spend = GammaGamma.from_params(**SPEND)
    unlabelled = _unlabelled(weeks)
    pd.testing.assert_series_equal(spend.expected_spend(unlabelled), spend.expected_spend(weeks))
    # and a model fitted without a unit cannot check one (it cannot be saved either)
    ParetoNBD.from_params(**PNBD).p_alive(unlabelled)


def test_a_population_unlike_the_fit_is_not_taken_for_another_unit(weeks, fitted):
    """Customers far more active than the fit's, in the right unit, favour a longer unit by the
    likelihood (more purchases fit longer durations), but their ages are the fit's: scored."""
    model = fitted["BetaGeo"]
    active = weeks.assign(frequency=weeks["frequency"] * 4 + 2,
                          recency=np.maximum(weeks["recency"], weeks["T"] * 0.9))
    gains = duration_evidence(model, active)
    assert max(gains.values()) > REFUSE_NATS_PER_CUSTOMER * len(active)  # the likelihood alone
    model.expected_purchases(active, 52)


def test_a_model_made_from_parameters_checks_the_stated_unit_only(weeks):
    """from_params knows no fit's ages: a days table stated as weeks is not caught (the
    documented limit), a missing or contradicting unit still is."""
    model = ParetoNBD.from_params(time_unit="W", **PNBD)
    model.p_alive(_in_days(weeks), time_unit="W")
    with pytest.raises(clvlab.ClvlabError, match="does not record"):
        model.p_alive(_in_days(weeks))


def test_the_fits_ages_survive_the_model_file(tmp_path, fitted, weeks):
    path = tmp_path / "m.json"
    fitted["ParetoNBD"].save(path)
    loaded = clvlab.load_model(path)
    assert loaded.median_T_ == fitted["ParetoNBD"].median_T_
    with pytest.raises(clvlab.ClvlabError, match="look like days"):
        loaded.p_alive(_in_days(weeks), time_unit="W")


def test_a_fitted_model_refuses_a_days_table_of_its_own_customers():
    log = load_cdnow(sample=True)
    weeks = clvlab.rfm_summary(log, customer_col="customer_id", date_col="date",
                               amount_col="amount", time_unit="W",
                               calibration_end="1997-09-30")
    days = clvlab.rfm_summary(log, customer_col="customer_id", date_col="date",
                              amount_col="amount", time_unit="D",
                              calibration_end="1997-09-30")
    model = ParetoNBD().fit(weeks)
    with pytest.raises(clvlab.ClvlabError, match="is in days"):
        model.expected_purchases(days, 52)
    days.attrs = {"clvlab": {"time_unit": "W"}}  # a wrong label
    with pytest.raises(clvlab.ClvlabError, match="look like days"):
        model.expected_purchases(days, 52)


# --- item 13: numbers as text, swapped models ---------------------------------------------------

def test_numbers_given_as_text_are_refused_by_one_rule_everywhere(weeks):
    model = ParetoNBD.from_params(time_unit="W", **PNBD)
    spend = GammaGamma.from_params(**SPEND)
    calls = {
        "expected_purchases": lambda: model.expected_purchases(weeks, "52"),
        "probability_of_purchase": lambda: model.probability_of_purchase(weeks, "52"),
        "expected_purchases_new_customer": lambda: model.expected_purchases_new_customer("52"),
        "customer_lifetime_value": lambda: customer_lifetime_value(model, spend, weeks, "52", 0.01),
        "customer_lifetime_value period": lambda: customer_lifetime_value(
            model, spend, weeks, 52, 0.01, period="4"),
        "score_customers": lambda: score_customers(model, spend, None, weeks, horizon="52"),
        "discount_rate": lambda: customer_lifetime_value(model, spend, weeks, 52, "0.01"),
    }
    for name, call in calls.items():
        with pytest.raises(clvlab.ClvlabError, match="must be a (finite )?number") as error:
            call()
        assert "isfinite" not in str(error.value), name


def test_swapped_models_are_named(weeks):
    model = ParetoNBD.from_params(time_unit="W", **PNBD)
    spend = GammaGamma.from_params(**SPEND)
    with pytest.raises(clvlab.ClvlabError, match="swapped"):
        customer_lifetime_value(spend, model, weeks, 52, 0.01)
    with pytest.raises(clvlab.ClvlabError, match="swapped"):
        score_customers(spend, model, None, weeks, horizon=52)
    with pytest.raises(clvlab.ClvlabError, match="spend_model must be a spend model"):
        score_customers(model, model, None, weeks, horizon=52)


# --- item 6: the spend column says it is per purchase ------------------------------------------

def test_the_scoring_spend_column_is_per_purchase_and_clv_is_the_total(weeks):
    model = ParetoNBD.from_params(time_unit="W", **PNBD)
    spend = GammaGamma.from_params(**SPEND)
    scores = score_customers(model, spend, None, weeks, horizon=52)
    assert "expected_spend" not in scores.columns
    per_purchase = scores["expected_spend_per_purchase"]
    pd.testing.assert_series_equal(per_purchase, spend.expected_spend(weeks, unvalued="population"),
                                   check_names=False)
    # undiscounted, CLV over the horizon is purchases x spend per purchase
    np.testing.assert_allclose(scores["clv"], scores["expected_purchases"] * per_purchase,
                               rtol=1e-9)


# --- item 3: far past the log's end -----------------------------------------------------------

def test_a_summary_far_past_the_logs_end_warns_and_records_how_far():
    """CDNOW's log ends 1998-06-30; scored as of 2003, every customer looks 5 years silent."""
    log = load_cdnow(sample=True)
    options = dict(customer_col="customer_id", date_col="date", amount_col="amount",
                   time_unit="W")
    with pytest.warns(clvlab.ClvlabWarning, match=r"years\) after the log's last transaction"):
        late = clvlab.rfm_summary(log, observation_end="2003-06-30", **options)
    assert late.attrs["clvlab"]["units_after_last_transaction"] == pytest.approx(
        (pd.Timestamp("2003-06-30") - pd.Timestamp("1998-06-30")).days / 7)
    assert late.attrs["clvlab"]["last_transaction"].startswith("1998-06-30")
    with warnings.catch_warnings():
        warnings.simplefilter("error", clvlab.ClvlabWarning)
        on_time = clvlab.rfm_summary(log, observation_end="1998-07-01", **options)
    assert on_time.attrs["clvlab"]["units_after_last_transaction"] == pytest.approx(1 / 7)
    # the DuckDB engine says the same
    with pytest.warns(clvlab.ClvlabWarning, match="after the log's last transaction"):
        clvlab.rfm_summary(log, observation_end="2003-06-30", engine="duckdb", **options)


# --- item 5: covariates outside what the fit saw -------------------------------------------------

def test_a_covariate_value_never_seen_at_fit_warns(tmp_path):
    rng = np.random.default_rng(0)
    from clvlab.simulate import pareto_nbd

    sim = pareto_nbd(800, T=rng.uniform(20, 40, 800), seed=1, **PNBD)
    table = sim[["frequency", "recency", "T"]].assign(
        channel=rng.integers(0, 2, 800).astype(float), age=rng.uniform(20, 60, 800))
    model = ParetoNBD(purchase_covariates=["channel", "age"]).fit(table, time_unit="W")
    with warnings.catch_warnings():
        warnings.simplefilter("error", clvlab.ClvlabWarning)
        model.expected_purchases(table, 10, time_unit="W")
    for column, value, says in (("channel", 2.0, r"only the values \[0.0, 1.0\]"),
                                ("channel", 0.5, r"only the values"),
                                ("age", 85.0, "values from 20")):
        odd = table.copy()
        odd.loc[odd.index[3], column] = value
        with pytest.warns(clvlab.ClvlabWarning, match=f"'{column}'.*{says}"):
            model.expected_purchases(odd, 10, time_unit="W")
    path = tmp_path / "m.json"
    model.save(path)
    loaded = clvlab.load_model(path)
    odd = table.assign(channel=2.0)
    with pytest.warns(clvlab.ClvlabWarning, match="never saw"):
        loaded.expected_purchases(odd, 10, time_unit="W")


def test_a_spend_model_in_the_adjuster_slot_is_named(weeks):
    model = ParetoNBD.from_params(time_unit="W", **PNBD)
    spend = GammaGamma.from_params(**SPEND)
    with pytest.raises(clvlab.ClvlabError, match="churn_adjuster must be a fitted"):
        score_customers(model, None, spend, weeks, horizon=52)
