"""Time-varying covariates through the production path (issue 31): the pyfunc's scoring function
with the covariate panel in its params, the scoring job (`clvlab score --covariates`) and the
registered pyfunc (a local MLflow store) give the model's own predictions along each customer's
path, exactly; every misuse is refused before any work with the option to use.

Data: CLVTools' apparel customers (../shared/data/apparel, read in place), weeks, scored as of
2006-12-31 over 52 weeks (the panel reaches 2010-12-26)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import clvlab
from clvlab import ClvlabError
from clvlab.cli import main
from clvlab.ops.serving import score_frame

APPAREL = Path(__file__).resolve().parents[2] / "shared" / "data" / "apparel"
LOG, PANEL = APPAREL / "apparel_transactions.csv", APPAREL / "apparel_dyncov.csv.gz"
AS_OF, HORIZON, RATE, MARGIN = "2006-12-31", 52.0, 0.002, 0.4
PURCHASE, DROPOUT = ["High.Season", "Gender"], ["High.Season"]
#: the pyfunc's params of a time-varying model (the panel as a file, as where it is served)
PARAMS = {"horizon": HORIZON, "discount_rate": RATE, "margin": MARGIN, "time_unit": "W",
          "covariates": str(PANEL), "panel_customer_col": "Id", "period_col": "Cov.Date"}


def paths_of(rfm, horizon=HORIZON, **options):
    from clvlab.data.covariate_paths import covariate_paths

    return covariate_paths(pd.read_csv(PANEL), rfm, customer_col="Id", period_col="Cov.Date",
                           horizon=horizon, **options)


@pytest.fixture(scope="module")
def fitted() -> dict:
    """The summary as of the scoring date, a Pareto/NBD fitted along the paths (High.Season
    moves purchasing and dropout, Gender purchasing), a Gamma-Gamma, and the API's scores."""
    if not PANEL.exists():
        pytest.skip("../shared/data/apparel (CLVTools' apparel data) is not beside the checkout")
    log = pd.read_csv(LOG)
    # by DuckDB, as the scoring job summarises a log file (pandas' mean spend can differ from
    # DuckDB's in the last bit, and CLV with it)
    rfm = clvlab.rfm_summary(str(LOG), customer_col="Id", date_col="Date", amount_col="Price",
                             time_unit="W", observation_end=AS_OF, engine="duckdb")
    fit_paths = paths_of(rfm, horizon=None, transactions=log, date_col="Date",
                         amount_col="Price", covariates=PURCHASE)
    model = clvlab.ParetoNBD(purchase_covariates=PURCHASE, dropout_covariates=DROPOUT).fit(
        rfm, covariate_paths=fit_paths)
    spend = clvlab.GammaGamma().fit(rfm[rfm["frequency"] > 0])
    paths = paths_of(rfm, covariates=PURCHASE)
    want = model.scores(rfm, HORIZON, covariate_paths=paths)
    want["clv"] = clvlab.customer_lifetime_value(model, spend, rfm, HORIZON, RATE, MARGIN,
                                                 unvalued="population", covariate_paths=paths)
    return {"rfm": rfm, "model": model, "spend": spend, "paths": paths, "want": want}


def assert_exact(got: pd.DataFrame, want: pd.DataFrame) -> None:
    """The same numbers to rounding: the discounting's matrix product (BLAS, threaded) may
    round the last bit differently between two runs of the same code (seen in CLV, 5e-16)."""
    assert list(got.index) == list(want.index)
    for column in want.columns:
        np.testing.assert_allclose(got[column].to_numpy(), want[column].to_numpy(), rtol=1e-13,
                                   atol=0, err_msg=column)


def test_score_frame_scores_along_each_customers_path(fitted):
    rfm, model, spend = fitted["rfm"], fitted["model"], fitted["spend"]
    # a table of rfm_summary: ids in its index, the window in its attrs
    got = score_frame(model, spend, None, rfm, {**PARAMS, "covariates": pd.read_csv(PANEL)})
    assert_exact(got, fitted["want"])
    assert got.attrs["clvlab"]["horizon"] == HORIZON
    # a payload (what MLflow hands over): ids a column, no attrs, rows in any order; the
    # scores come back in the rows' order and index
    rows = rfm.reset_index()[["Id", "frequency", "recency", "T", "monetary_value"]]
    rows = rows.sample(frac=1, random_state=1)
    rows.attrs = {}
    got = score_frame(model, spend, None, rows, {**PARAMS, "as_of": AS_OF, "customer_col": "Id"})
    assert list(got.index) == list(rows.index)
    assert_exact(got.set_axis(rows["Id"]).loc[rfm.index].rename_axis("Id"), fitted["want"])


def test_score_frame_refuses_what_it_cannot_score_along_paths(fitted):
    rfm, model, spend = fitted["rfm"], fitted["model"], fitted["spend"]
    without = {k: v for k, v in PARAMS.items() if k != "covariates"}
    with pytest.raises(ClvlabError, match=r"fitted with time-varying covariates \['High.Season', "
                                          r"'Gender'\].*params=\{'covariates'"):
        score_frame(model, spend, None, rfm, without)
    plain = clvlab.ParetoNBD().fit(rfm)
    with pytest.raises(ClvlabError, match=r"a covariate panel \(params=\{'covariates'.*is for a "
                                          "model fitted with time-varying covariates.*"
                                          "this ParetoNBD was not"):
        score_frame(plain, None, None, rfm, PARAMS)
    rows = rfm.reset_index(drop=True)[["frequency", "recency", "T"]]
    with pytest.raises(ClvlabError, match="no customer id column 'Id'"):
        score_frame(model, None, None, rows, {**PARAMS, "customer_col": "Id", "as_of": AS_OF})
    rows = rfm.reset_index()[["Id", "frequency", "recency", "T"]]
    rows.attrs = {}  # a payload records no window
    with pytest.raises(ClvlabError, match="T is measured to is unknown.*'as_of'"):
        score_frame(model, None, None, rows, {**PARAMS, "customer_col": "Id"})
    with pytest.raises(ClvlabError, match="as_of 2007-06-30 00:00:00 differs from the "
                                          "calibration end 2006-12-31"):
        score_frame(model, None, None, rfm, {**PARAMS, "as_of": "2007-06-30"})
    with pytest.raises(ClvlabError, match="CLV quantiles.*not available along covariate paths"):
        score_frame(model, spend, None, rfm, {**PARAMS, "quantiles": [0.5]})
    with pytest.raises(ClvlabError, match=r"unknown scoring parameter\(s\) \['panel'\]"):
        score_frame(model, None, None, rfm, {**PARAMS, "panel": str(PANEL)})


def test_score_frame_adds_the_purchase_interval_along_the_paths(fitted):
    rfm, model = fitted["rfm"], fitted["model"]
    got = score_frame(model, None, None, rfm, {**PARAMS, "interval_level": 0.9,
                                               "quantiles": [0.1, 0.5]})
    paths = fitted["paths"]
    interval = model.prediction_interval(rfm, HORIZON, level=0.9, covariate_paths=paths)
    quantiles = model.purchase_quantiles(rfm, HORIZON, q=[0.1, 0.5], covariate_paths=paths)
    np.testing.assert_array_equal(got["purchases_lower"], interval["lower"])
    np.testing.assert_array_equal(got["purchases_upper"], interval["upper"])
    np.testing.assert_array_equal(got["purchases_q0.5"], quantiles.iloc[:, 1])


@pytest.fixture(scope="module")
def registered(fitted, mlflow_store, tmp_path_factory):
    """The models registered once as "tv-clv" (customer id column "Id") in the session's
    local MLflow store (sqlite, in its own folder: nothing is started)."""
    folder, uri = mlflow_store
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", uri)
        patch.chdir(folder)
        clvlab.serving.log_clv_model(fitted["model"], fitted["spend"],
                                     registered_model_name="tv-clv", customer_col="Id")
    return uri


@pytest.fixture
def store(registered, mlflow_store, monkeypatch):
    folder, uri = mlflow_store
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.chdir(folder)
    monkeypatch.setenv("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "false")


@pytest.mark.slow  # MLflow: a store, a registration, scoring runs
def test_the_registered_pyfunc_scores_along_the_paths(fitted, store):
    import mlflow

    info = mlflow.models.get_model_info("models:/tv-clv@challenger")
    inputs = {spec["name"]: spec["type"] for spec in info.signature.inputs.to_dict()}
    # the id joins each row to its path; the time-varying columns come from the panel
    assert inputs == {"Id": "any", "frequency": "any", "recency": "any", "T": "any",
                      "monetary_value": "any"}
    params = {spec["name"]: spec["default"] for spec in info.signature.params.to_dict()}
    assert params["customer_col"] == "Id" and params["covariates"] is None
    assert info.metadata["time_varying_covariates"] == PURCHASE
    pyfunc = mlflow.pyfunc.load_model("models:/tv-clv@challenger")
    rows = fitted["rfm"].reset_index()[["Id", "frequency", "recency", "T", "monetary_value"]]
    got = pyfunc.predict(rows, params={**PARAMS, "as_of": AS_OF})
    assert_exact(got.set_axis(fitted["rfm"].index), fitted["want"])
    without = {k: v for k, v in PARAMS.items() if k != "covariates"}
    with pytest.raises(ClvlabError, match="fitted with time-varying covariates.*'covariates'"):
        pyfunc.predict(rows, params={**without, "as_of": AS_OF})


def _score(tmp_path, *extra: str) -> list[str]:
    return ["score", "--model", "models:/tv-clv@challenger", "--transactions", str(LOG),
            "--as-of", AS_OF, "--horizon", str(HORIZON), "--discount-rate", str(RATE),
            "--margin", str(MARGIN), "--customer-col", "Id", "--date-col", "Date",
            "--amount-col", "Price", "-o", str(tmp_path / "scores.parquet"), *extra]


@pytest.mark.slow  # MLflow: a store, a registration, scoring runs
def test_the_scoring_job_scores_along_the_paths(fitted, store, tmp_path):
    import mlflow

    panel = ["--covariates", str(PANEL), "--period-col", "Cov.Date"]
    assert main(_score(tmp_path, *panel)) == 0
    got = pd.read_parquet(tmp_path / "scores.parquet").set_index("Id")
    assert_exact(got[fitted["want"].columns], fitted["want"])
    run = mlflow.search_runs(experiment_names=["clvlab-scoring"]).iloc[0]
    assert run["params.covariates"] == str(PANEL)
    # in chunks: each chunk's paths are its customers'; the discounting's matrix product may
    # round differently with another number of rows, nothing else
    assert main(_score(tmp_path, *panel, "--chunk-rows", "170", "--overwrite")) == 0
    chunked = pd.read_parquet(tmp_path / "scores.parquet").set_index("Id")
    np.testing.assert_allclose(chunked[fitted["want"].columns], fitted["want"], rtol=1e-13)


@pytest.mark.slow  # MLflow: a store, a registration, scoring runs
def test_the_scoring_job_refuses_before_any_work(fitted, store, tmp_path, capsys):
    def fails(argv, *parts):
        assert main(argv) == 1
        error = capsys.readouterr().err
        for part in parts:
            assert part in error, (part, error)

    fails(_score(tmp_path), "fitted with time-varying covariates", "--covariates PANEL")
    fitted["model"].save(tmp_path / "tv.json")  # clvlab fit's file is not a scoring job's model
    fails([*_score(tmp_path)[:1], "--model", str(tmp_path / "tv.json"), *_score(tmp_path)[3:]],
          "cannot load the model", "is a model file", "clvlab predict MODEL.json TABLE",
          "clvlab register MODEL.json")
    panel = ["--covariates", str(PANEL), "--period-col", "Cov.Date"]
    fails(_score(tmp_path, *panel, "--totals-by", "all"), "--totals-by",
          "not available along covariate paths")
    fails(_score(tmp_path, *panel, "--quantiles", "0.5"), "CLV quantiles", "--quantiles")
    fails(_score(tmp_path, *panel, "--engine", "spark"), "engine='spark'", "--engine duckdb")
    fails(_score(tmp_path, "--covariates", str(tmp_path / "none.parquet")), "--covariates",
          "does not exist")
    # the panel ends 2010-12-26: the data layer's message reaches the user unchanged
    fails(_score(tmp_path, *panel, "--horizon", "300"), "Cov.Date", "for every customer")
    assert not (tmp_path / "scores.parquet").exists()
