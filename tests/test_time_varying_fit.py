"""Fits and predictions along covariate paths (clvlab.models.time_varying*): the static model
as a special case, the saved model, and every refusal a user can meet."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import clvlab
from clvlab.core.errors import ClvlabError
from clvlab.data.covariate_paths import covariate_paths

APPAREL = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "apparel"


@pytest.fixture(scope="module")
def apparel():
    log = pd.read_csv(APPAREL / "apparel_transactions.csv", parse_dates=["Date"])
    panel = pd.read_csv(APPAREL / "apparel_dyncov.csv.gz", parse_dates=["Cov.Date"])
    rfm = clvlab.rfm_summary(log, customer_col="Id", date_col="Date", amount_col="Price",
                             time_unit="W", calibration_end="2006-12-31")
    paths = covariate_paths(panel, rfm, transactions=log, customer_col="Id",
                            period_col="Cov.Date", horizon=52, date_col="Date", amount_col="Price")
    static = pd.read_csv(APPAREL / "apparel_static_covariates.csv").set_index("Id")
    return rfm, paths, rfm.join(static)


@pytest.mark.parametrize("make", [
    lambda: clvlab.ParetoNBD(purchase_covariates=["Gender", "Channel"],
                             dropout_covariates=["Gender", "Channel"]),
    lambda: clvlab.BetaGeo(purchase_covariates=["Gender", "Channel"],
                           dropout_covariates=["Channel"], dropout_form="b"),
], ids=["pareto-nbd", "bg-nbd"])
def test_constant_paths_are_the_static_model(apparel, make):
    """Gender and Channel are constant along every path: the fit along paths is the static
    fit (same log-likelihood at the same optimum, same predictions)."""
    rfm, paths, with_static = apparel
    static = make().fit(with_static)
    along = make().fit(rfm, covariate_paths=paths)
    assert along.covariates_.time_varying == ("Gender", "Channel")
    assert along.log_likelihood_ == pytest.approx(static.log_likelihood_, abs=1e-6)
    np.testing.assert_allclose(along.params_.to_numpy(), static.params_.to_numpy(), rtol=2e-4)
    np.testing.assert_allclose(along.standard_errors_.to_numpy(),
                               static.standard_errors_.to_numpy(), rtol=2e-2)
    at = static.params_  # the same parameters: predictions agree to rounding
    along.params_ = at.copy()
    np.testing.assert_allclose(along.p_alive(rfm, covariate_paths=paths),
                               static.p_alive(with_static), rtol=1e-9)
    np.testing.assert_allclose(along.expected_purchases(rfm, 26, covariate_paths=paths),
                               static.expected_purchases(with_static, 26), rtol=1e-8)
    np.testing.assert_allclose(
        along.purchase_pmf(rfm, 26, max_n=5, tail=0.0, covariate_paths=paths).to_numpy(),
        static.purchase_pmf(with_static, 26, max_n=5, tail=0.0).to_numpy(), rtol=1e-7, atol=1e-12)


def test_season_fit_saved_and_refusals(apparel, tmp_path):
    rfm, paths, with_static = apparel
    model = clvlab.ParetoNBD(purchase_covariates=["High.Season", "Gender", "Channel"],
                             dropout_covariates=["Gender", "Channel"]).fit(rfm, covariate_paths=paths)
    assert model.params_["purchase.High.Season"] > 0.5  # more purchases in the high season
    summary = model.summary()
    assert "purchase.High.Season" in summary.index
    path = tmp_path / "tv.json"
    model.save(path)
    loaded = clvlab.load_model(path)
    np.testing.assert_array_equal(loaded.expected_purchases(rfm, 52, covariate_paths=paths),
                                  model.expected_purchases(rfm, 52, covariate_paths=paths))
    with pytest.raises(ClvlabError, match="covariate_paths=clvlab.covariate_paths"):
        loaded.p_alive(rfm)
    with pytest.raises(ClvlabError, match="must cover the horizon"):
        model.expected_purchases(rfm, 60, covariate_paths=paths)
    with pytest.raises(ClvlabError, match="covariate_paths are for a model fitted"):
        clvlab.ParetoNBD().fit(rfm).p_alive(rfm, covariate_paths=paths)
    with pytest.raises(ClvlabError, match="vary over time within customers"):
        clvlab.BetaGeo(dropout_covariates=["High.Season"]).fit(rfm, covariate_paths=paths)
    with pytest.raises(ClvlabError, match="neither in the covariate paths"):
        clvlab.ParetoNBD(purchase_covariates=["High.Season", "Nope"]).fit(rfm, covariate_paths=paths)
    with pytest.raises(ClvlabError, match=r"neither in the covariate paths .* did you mean "
                                          r"'High.Sesaon' -> 'High.Season'\?"):
        clvlab.ParetoNBD(purchase_covariates=["High.Sesaon"]).fit(rfm, covariate_paths=paths)
    with pytest.raises(ClvlabError, match="does not take time-varying covariates"):
        clvlab.ModifiedBetaGeo(purchase_covariates=["High.Season"]).fit(rfm, covariate_paths=paths)
    for spend in (clvlab.GammaGamma(spend_covariates=["High.Season"]), clvlab.LogNormalSpend()):
        with pytest.raises(ClvlabError, match="does not take time-varying covariates .* static"):
            spend.fit(rfm, covariate_paths=paths)


def test_clv_along_paths(apparel):
    rfm, paths, _ = apparel
    model = clvlab.ParetoNBD(purchase_covariates=["High.Season"]).fit(rfm, covariate_paths=paths)
    spend = clvlab.GammaGamma().fit(rfm[rfm["frequency"] > 0])
    valued = rfm[rfm["frequency"] > 0]
    discrete = clvlab.customer_lifetime_value(model, spend, valued, 52, 0.0, covariate_paths=paths)
    expected = model.expected_purchases(valued, 52, covariate_paths=paths)
    np.testing.assert_allclose(discrete, expected * spend.expected_spend(valued), rtol=1e-9)
    dect = clvlab.customer_lifetime_value(model, spend, valued, 52, 0.0, method="continuous",
                                          covariate_paths=paths)
    np.testing.assert_allclose(dect, discrete, rtol=1e-7)  # no discounting: the same sum
    discounted = clvlab.customer_lifetime_value(model, spend, valued, 52, 0.2, method="continuous",
                                                covariate_paths=paths)
    assert (discounted < dect).all()
    with pytest.raises(ClvlabError, match="covariate_paths"):
        clvlab.customer_lifetime_value(model, spend, valued, 52, 0.01)


def test_a_coefficient_that_runs_off_is_named(apparel):
    """On the apparel data no dropout is seen in the high season: its dropout coefficient runs
    towards -infinity. The fit says so (and a penalty gives it an interior maximum)."""
    rfm, paths, _ = apparel
    every = ["High.Season", "Gender", "Channel"]
    settings = dict(purchase_covariates=every, dropout_covariates=every)
    with pytest.warns(clvlab.ClvlabWarning, match="dropout.High.Season = .* ran off|boundary for dropout.High.Season"):
        clvlab.ParetoNBD(**settings).fit(rfm, covariate_paths=paths)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", clvlab.ClvlabWarning)
        penalised = clvlab.ParetoNBD(covariate_penalty=0.1, **settings).fit(rfm, covariate_paths=paths)
    assert np.isfinite(penalised.standard_errors_).all()


def test_log_likelihood_along_paths(apparel):
    """Per customer along the paths, summing to the fit's log-likelihood; a holdout's paths give
    its own; without paths a clear refusal."""
    rfm, paths, _ = apparel
    for model in (clvlab.ParetoNBD(purchase_covariates=["High.Season", "Gender"],
                                   dropout_covariates=["Channel"]),
                  clvlab.BetaGeo(purchase_covariates=["High.Season", "Gender"])):
        model.fit(rfm, covariate_paths=paths)
        rows = model.log_likelihood(rfm, per_customer=True, covariate_paths=paths)
        assert rows.index.equals(rfm.index) and np.isfinite(rows).all()
        assert rows.sum() == pytest.approx(model.log_likelihood_, abs=1e-8)
        assert model.log_likelihood(rfm, covariate_paths=paths) == pytest.approx(rows.sum())
        with pytest.raises(ClvlabError, match="log-likelihood needs each customer's covariate"):
            model.log_likelihood(rfm)
    with pytest.raises(ClvlabError, match="covariate_paths are for a model fitted"):
        clvlab.ParetoNBD().fit(rfm).log_likelihood(rfm, covariate_paths=paths)

    spend = clvlab.GammaGamma().fit(rfm)
    for call in (lambda: clvlab.purchase_totals(model, rfm, 26),
                 lambda: clvlab.revenue_totals(model, spend, rfm, 26),
                 lambda: clvlab.value_distribution(model, spend, rfm, 26)):
        with pytest.raises(ClvlabError, match="not available yet for a model fitted along "
                                              "covariate paths"):
            call()


def test_each_column_is_read_as_the_fit_read_it(apparel):
    """A column that varied along the fit's paths must come from paths again (the table's copy
    would be a constant: another model), and a static one stays static, with a warning when the
    paths' copy moves."""
    rfm, paths, with_static = apparel
    model = clvlab.ParetoNBD(purchase_covariates=["High.Season"],
                             dropout_covariates=["Gender"]).fit(
        with_static, covariate_paths=covariate_paths(
            _panel()[["Id", "Cov.Date", "High.Season"]], rfm, customer_col="Id",
            period_col="Cov.Date", transactions=_log(), date_col="Date", amount_col="Price"))
    assert model.covariates_.time_varying == ("High.Season",)
    expected = model.expected_purchases(with_static, 26, covariate_paths=paths)
    snapshot = with_static.assign(**{"High.Season": 1})
    without = covariate_paths(_panel()[["Id", "Cov.Date", "Gender"]], rfm, customer_col="Id",
                              period_col="Cov.Date", horizon=52)
    with pytest.raises(ClvlabError, match=r"fitted with \['High.Season'\] varying along the "
                                          r"covariate paths, but these paths do not hold it"):
        model.expected_purchases(snapshot, 26, covariate_paths=without)
    moving = _panel()
    moving.loc[(moving["Id"] == 2) & (moving["Cov.Date"] >= "2007-06-03"), "Gender"] = 1 - \
        moving.loc[moving["Id"] == 2, "Gender"].iloc[0]
    moved = covariate_paths(moving, rfm, customer_col="Id", period_col="Cov.Date", horizon=52)
    with pytest.warns(clvlab.ClvlabWarning, match=r"\['Gender'\] static .* not used"):
        again = model.expected_purchases(with_static, 26, covariate_paths=moved)
    np.testing.assert_array_equal(again, expected)


def test_an_unseen_level_names_the_customer_and_the_period(apparel):
    rfm, paths, _ = apparel
    log = _log()
    panel = _panel().assign(season=lambda p: p["High.Season"].map({0: "low", 1: "high"}))
    fit_paths = covariate_paths(panel[["Id", "Cov.Date", "season"]], rfm, transactions=log,
                                customer_col="Id", period_col="Cov.Date", horizon=52,
                                date_col="Date", amount_col="Price")
    model = clvlab.ParetoNBD(purchase_covariates=["season"]).fit(rfm, covariate_paths=fit_paths)
    panel.loc[(panel["Id"] == 7) & (panel["Cov.Date"] == "2007-03-04"), "season"] = "sale"
    odd = covariate_paths(panel[["Id", "Cov.Date", "season"]], rfm, customer_col="Id",
                          period_col="Cov.Date", horizon=52)
    with pytest.raises(clvlab.DataValidationError) as caught:
        model.p_alive(rfm, covariate_paths=odd)
    assert caught.value.column == "season" and "'sale'" in str(caught.value)
    assert caught.value.row["customer"] == 7 and "customer=7," in str(caught.value)
    assert caught.value.row["from"] == pd.Timestamp("2007-03-04")
    assert caught.value.row["to"] == pd.Timestamp("2007-03-11")


def _log():
    return pd.read_csv(APPAREL / "apparel_transactions.csv", parse_dates=["Date"])


def _panel():
    return pd.read_csv(APPAREL / "apparel_dyncov.csv.gz", parse_dates=["Cov.Date"])
