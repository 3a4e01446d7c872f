"""Issue 29, the production path: every fit method registers, loads and scores; registration
reports the convergence diagnostics and refuses an unconverged fit unless forced; each part of a
CLV model is of its kind; a promotion's evidence is a backtest of that model's candidate on data
in its unit; the served model takes clvlab's own RFM tables (int64 counts) through plain
``mlflow.pyfunc`` and needs the unit of a table that lost it (a pyfunc payload has no attrs)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import clvlab
from clvlab import ClvlabError
from clvlab.cli import main

CALIBRATION_END = "1997-09-30"


@pytest.fixture(scope="module")
def cdnow():
    log = clvlab.datasets.load_cdnow(sample=True)
    rfm = clvlab.rfm_summary(log, amount_col="amount", time_unit="W", calibration_end=CALIBRATION_END)
    return log, rfm


@pytest.fixture(scope="module")
def mle(cdnow):
    _, rfm = cdnow
    return clvlab.BetaGeo().fit(rfm), clvlab.GammaGamma().fit(rfm)


def _predict(uri: str, table: pd.DataFrame, **params):
    import mlflow

    return mlflow.pyfunc.load_model(uri).predict(table, params={"horizon": 13.0, **params})


def _client():
    import mlflow

    return mlflow.MlflowClient()


def _registered(name: str) -> bool:
    return bool(_client().search_registered_models(f"name = '{name}'"))


# --- 10. the signature takes clvlab's own tables ------------------------------------------------
def test_the_served_model_takes_what_rfm_summary_and_read_rfm_produce(tracking, cdnow, mle, tmp_path):
    _, rfm = cdnow
    transaction, spend = mle
    clvlab.serving.log_clv_model(transaction, spend, registered_model_name="reg-int64")
    uri = "models:/reg-int64@challenger"
    assert rfm["frequency"].dtype == np.int64  # what rfm_summary produces
    want = clvlab.score_customers(transaction, spend, None, rfm, horizon=13.0)
    got = _predict(uri, rfm, time_unit="W")  # holdout columns too: ignored
    np.testing.assert_allclose(got["clv"], want["clv"], rtol=1e-12)
    # read_rfm of clvlab's own file, and of a hand-written CSV whose every column is int64
    rfm.to_parquet(tmp_path / "rfm.parquet")
    table = clvlab.read_rfm(tmp_path / "rfm.parquet")
    np.testing.assert_allclose(_predict(uri, table, time_unit="W")["clv"], want["clv"], rtol=1e-12)
    (tmp_path / "hand.csv").write_text("customer_id,frequency,recency,T,monetary_value\n"
                                       "a,2,10,30,5\nb,0,0,30,0\nc,7,28,39,12\n")
    table = clvlab.read_rfm(tmp_path / "hand.csv", time_unit="W")
    assert (table.dtypes == np.int64).all()
    got = _predict(uri, table, time_unit="W")
    want = clvlab.score_customers(transaction, spend, None, table, horizon=13.0)
    np.testing.assert_allclose(got.to_numpy(), want.to_numpy(), rtol=1e-12)
    # floats still go in (a table built by other tools, JSON numbers with a point)
    got = _predict(uri, table.astype(np.float64), time_unit="W")
    np.testing.assert_allclose(got.to_numpy(), want.to_numpy(), rtol=1e-12)


def test_an_integer_covariate_goes_in_and_text_in_a_number_column_is_named(tracking, cdnow):
    _, rfm = cdnow
    table = rfm.assign(store=np.arange(len(rfm)) % 3)  # int64, values 0, 1, 2
    assert table["store"].dtype == np.int64
    model = clvlab.BetaGeo(purchase_covariates=["store"]).fit(table)
    clvlab.serving.log_clv_model(model, registered_model_name="reg-int-covariate")
    uri = "models:/reg-int-covariate@challenger"
    got = _predict(uri, table, time_unit="W")
    np.testing.assert_allclose(got["expected_purchases"], model.expected_purchases(table, 13.0),
                               rtol=1e-12)
    bad = table.head(3).astype({"T": object})
    bad.loc[bad.index[0], "T"] = "thirty"
    with pytest.raises(ClvlabError, match="'T'.*not a number.*'thirty'"):
        _predict(uri, bad, time_unit="W")


# --- 1. a pyfunc payload carries no unit: the caller states it ----------------------------------
def test_the_served_model_needs_the_unit_of_a_table_that_lost_it(tracking, cdnow, mle):
    _, rfm = cdnow
    clvlab.serving.log_clv_model(*mle, registered_model_name="reg-unit")
    uri = "models:/reg-unit@challenger"
    signature = clvlab.serving._signature(*mle, None)
    assert "time_unit" in [p.name for p in signature.params.params]
    bare = pd.DataFrame(rfm)
    bare.attrs = {}
    with pytest.raises(ClvlabError, match="time.unit"):
        _predict(uri, bare)  # no unit anywhere: refused, never assumed
    with pytest.raises(ClvlabError, match="'D'.*'W'|'W'.*'D'"):
        _predict(uri, bare, time_unit="D")
    got = _predict(uri, bare, time_unit="weeks")
    want = clvlab.score_customers(*mle, None, rfm, horizon=13.0)
    np.testing.assert_allclose(got["clv"], want["clv"], rtol=1e-12)


# --- 8. each part of its kind ---------------------------------------------------------------------
def test_each_part_of_a_clv_model_must_be_of_its_kind(tracking, cdnow, mle, tmp_path, capsys):
    from clvlab.churn import ChurnAdjuster, churn_training_data

    log, rfm = cdnow
    transaction, spend = mle
    with pytest.raises(ClvlabError, match="GammaGamma.*spend model.*transaction model.*pareto-nbd"):
        clvlab.serving.log_clv_model(spend, registered_model_name="reg-kinds")
    with pytest.raises(ClvlabError, match="spend model.*BetaGeo.*transaction model.*gamma-gamma"):
        clvlab.serving.log_clv_model(transaction, transaction, registered_model_name="reg-kinds")
    with pytest.raises(ClvlabError, match="churn adjuster.*GammaGamma.*ChurnAdjuster"):
        clvlab.serving.log_clv_model(transaction, spend, spend, registered_model_name="reg-kinds")
    bgbb = clvlab.BetaGeoBetaBinom.from_params(alpha=1.0, beta=1.0, gamma=1.0, delta=1.0,
                                               time_unit="W")
    with pytest.raises(ClvlabError, match="BetaGeoBetaBinom.*discrete"):
        clvlab.serving.log_clv_model(bgbb, registered_model_name="reg-kinds")
    X, y = churn_training_data(log, CALIBRATION_END, 13, amount_col="amount")
    adjuster = ChurnAdjuster(clvlab.BetaGeo(), horizon=13).fit(X, y)
    with pytest.raises(ClvlabError, match="transaction model.*ChurnAdjuster"):
        clvlab.serving.log_clv_model(adjuster, registered_model_name="reg-kinds")
    assert not _registered("reg-kinds")
    # the loading paths too (a model registered before the check): named, not an AttributeError
    with pytest.raises(ClvlabError, match="GammaGamma.*spend model"):
        clvlab.serving.CLVModel(spend)
    with pytest.raises(ClvlabError, match="GammaGamma.*spend model"):
        clvlab.serving.score_frame(spend, None, None, rfm, {"horizon": 13.0})
    # the command line: the swapped files, refused with the same message
    transaction.save(tmp_path / "t.json")
    spend.save(tmp_path / "s.json")
    capsys.readouterr()
    assert main(["register", str(tmp_path / "s.json"), "--spend-model", str(tmp_path / "t.json"),
                 "--name", "reg-kinds"]) == 1
    assert "GammaGamma" in capsys.readouterr().err
    assert not _registered("reg-kinds")


# --- 7. every fit method registers, loads and scores; convergence reported and checked ---------
ADVI_TEST_STEPS = 2000


@pytest.fixture(scope="module")
def bayes_fits(cdnow):
    """Tiny Bayesian fits of 400 customers, made once per method when first asked for."""
    _, rfm = cdnow
    small = rfm.iloc[:400]
    cache = {}

    def fit(method):
        if method not in cache:
            from clvlab.inference import bayes

            before = getattr(bayes, "ADVI_STEPS", None)  # a fixed step count, if ADVI has one
            if before is not None:
                bayes.ADVI_STEPS = ADVI_TEST_STEPS
            try:
                settings = dict(method=method, draws=50, tune=50, chains=2, random_seed=1,
                                progressbar=False)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    cache[method] = (clvlab.BetaGeo(**settings).fit(small),
                                     clvlab.GammaGamma(**settings).fit(small))
            finally:
                if before is not None:
                    bayes.ADVI_STEPS = before
        return cache[method]

    return fit


@pytest.mark.slow
@pytest.mark.parametrize("method", ["nuts", "advi", "map"])
def test_every_fit_method_registers_loads_and_scores(tracking, cdnow, mle, bayes_fits, method,
                                                     tmp_path, monkeypatch):
    import mlflow

    monkeypatch.setenv("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "false")
    log, rfm = cdnow
    transaction, spend = bayes_fits(method)
    name = f"reg-{method}"
    # tiny NUTS runs have too few effective draws: registered only when forced
    info = clvlab.serving.log_clv_model(transaction, spend, registered_model_name=name,
                                        force=method == "nuts")
    uri = f"models:/{name}@challenger"
    loaded = clvlab.serving.load_clv_model(uri)
    assert loaded.transaction.method == method
    want = clvlab.score_customers(transaction, spend, None, rfm, horizon=13.0)
    got = loaded.predict(rfm, {"horizon": 13.0})
    np.testing.assert_allclose(got.to_numpy(), want.to_numpy(), rtol=1e-12)
    np.testing.assert_allclose(_predict(uri, rfm, time_unit="W").to_numpy(), want.to_numpy(),
                               rtol=1e-12)
    assert main(["promote", name]) == 0
    out = tmp_path / "scores.parquet"
    log.to_parquet(tmp_path / "log.parquet", index=False)
    assert main(["score", "--model", f"models:/{name}@champion", "--transactions",
                 str(tmp_path / "log.parquet"), "--as-of", "1998-06-30", "--horizon", "13",
                 "-o", str(out), "--no-progress"]) == 0
    assert len(pd.read_parquet(out)) == log["customer_id"].nunique()
    # the diagnostics travel with the registered version
    reported = mlflow.models.get_model_info(uri).metadata["convergence"]
    assert reported["transaction_model"]["method"] == method
    tags = _client().get_model_version(name, info.registered_model_version).tags
    assert tags["clvlab.transaction_model.method"] == method


def test_the_mle_registers_with_its_convergence_reported(tracking, mle):
    import mlflow

    info = clvlab.serving.log_clv_model(*mle, registered_model_name="reg-mle")
    reported = mlflow.models.get_model_info("models:/reg-mle@challenger").metadata["convergence"]
    assert reported["transaction_model"]["converged"] is True
    assert reported["spend_model"]["method"] == "mle"
    tags = _client().get_model_version("reg-mle", info.registered_model_version).tags
    assert tags["clvlab.transaction_model.converged"] == "True"


@pytest.mark.slow
def test_an_unconverged_fit_is_refused_unless_forced(tracking, bayes_fits, tmp_path, capsys):
    transaction, spend = bayes_fits("nuts")
    diag = transaction.convergence_
    assert diag["converged"] is False and diag["max_r_hat"] > 1.01
    with pytest.raises(ClvlabError, match=r"BetaGeo.*not converged.*r_hat up to.*force=True"):
        clvlab.serving.log_clv_model(transaction, spend, registered_model_name="reg-unconverged")
    assert not _registered("reg-unconverged")
    transaction.save(tmp_path / "t.json")
    spend.save(tmp_path / "s.json")
    capsys.readouterr()
    assert main(["register", str(tmp_path / "t.json"), "--spend-model", str(tmp_path / "s.json"),
                 "--name", "reg-unconverged"]) == 1
    err = capsys.readouterr().err
    assert "r_hat up to" in err and "--force" in err
    assert not _registered("reg-unconverged")
    assert main(["register", str(tmp_path / "t.json"), "--spend-model", str(tmp_path / "s.json"),
                 "--name", "reg-unconverged", "--force"]) == 0
    out = capsys.readouterr().out
    assert "r_hat" in out and "forced" in out
    tags = _client().get_model_version("reg-unconverged", "1").tags
    assert tags["clvlab.forced"] == "true" and tags["clvlab.transaction_model.converged"] == "False"


def test_an_unconverged_maximum_likelihood_fit_is_refused_too(tracking, mle):
    transaction, spend = mle
    stuck = clvlab.BetaGeo.from_params(time_unit="W", **transaction.params_.to_dict())
    stuck.method = "mle"
    stuck.convergence_ = {"converged": False, "message": "ABNORMAL_TERMINATION_IN_LNSRCH"}
    with pytest.raises(ClvlabError, match="ABNORMAL_TERMINATION.*force=True"):
        clvlab.serving.log_clv_model(stuck, spend, registered_model_name="reg-stuck")
    assert not _registered("reg-stuck")


# --- 9. the evidence of a promotion --------------------------------------------------------------
@pytest.fixture(scope="module")
def backtests(cdnow, mlflow_store):
    """Backtests on every fourth CDNOW customer: one in weeks of Pareto/NBD + Gamma-Gamma, one in weeks
    of BG/NBD + Gamma-Gamma and one in days of Pareto/NBD + Gamma-Gamma (run ids)."""
    import os

    log, _ = cdnow
    log = log[log["customer_id"].isin(log["customer_id"].unique()[::4])]
    folder, uri = mlflow_store
    before, os.environ["MLFLOW_TRACKING_URI"] = os.environ.get("MLFLOW_TRACKING_URI"), uri
    try:
        runs = {}
        for key, candidates, unit in (("pnbd-W", ["pareto-nbd+gamma-gamma", "historical-average"], "W"),
                                      ("bgnbd-W", ["bg-nbd+gamma-gamma"], "W"),
                                      ("pnbd-D", ["pareto-nbd+gamma-gamma"], "D")):
            result = clvlab.backtest(log, candidates, cutoffs=[CALIBRATION_END],
                                     horizon=13 if unit == "W" else 91, amount_col="amount",
                                     time_unit=unit, progress=False)
            runs[key] = clvlab.tracking.log_backtest(result, experiment="reg-evidence",
                                                     plots=False)
    finally:
        if before is None:
            del os.environ["MLFLOW_TRACKING_URI"]
        else:
            os.environ["MLFLOW_TRACKING_URI"] = before
    return runs


def test_a_promotion_needs_a_backtest_of_that_model_in_its_unit(tracking, cdnow, backtests, capsys):
    _, rfm = cdnow
    model = clvlab.ParetoNBD().fit(rfm), clvlab.GammaGamma().fit(rfm)
    clvlab.serving.log_clv_model(*model, registered_model_name="reg-evidence")
    with pytest.raises(ClvlabError, match=r"'pareto-nbd \+ gamma-gamma'.*bg-nbd \+ gamma-gamma"):
        clvlab.serving.promote("reg-evidence", backtest_run=backtests["bgnbd-W"])
    with pytest.raises(ClvlabError, match=r"time unit 'D'.*'W'"):
        clvlab.serving.promote("reg-evidence", backtest_run=backtests["pnbd-D"])
    capsys.readouterr()
    assert main(["promote", "reg-evidence", "--backtest-run", backtests["bgnbd-W"]]) == 1
    assert "pareto-nbd + gamma-gamma" in capsys.readouterr().err
    with pytest.raises(ClvlabError, match="no alias 'champion'"):
        clvlab.serving.resolve_version("reg-evidence", "champion")  # nothing was moved
    version = clvlab.serving.promote("reg-evidence", backtest_run=backtests["pnbd-W"])
    tags = _client().get_model_version("reg-evidence", version).tags
    assert tags["clvlab.promoted_on_backtest"] == backtests["pnbd-W"]
    assert tags["clvlab.promoted_on_candidate"] == "pareto-nbd + gamma-gamma"


def test_a_backtest_records_what_a_promotion_compares(tracking, backtests):
    import json

    import mlflow

    run = _client().get_run(backtests["pnbd-D"])
    assert run.data.tags["clvlab.time_unit"] == "D"
    local = mlflow.artifacts.download_artifacts(run_id=backtests["pnbd-D"],
                                                artifact_path="backtest/settings.json")
    settings = json.loads(open(local).read())
    assert settings["time_unit"] == "D"
    assert settings["candidates"] == ["pareto-nbd + gamma-gamma"]


def test_a_model_file_may_name_only_its_own_posterior(tmp_path):
    """A Bayesian fit's posterior travels beside its JSON; the JSON may not point elsewhere."""
    import json

    folder = tmp_path / "model"
    data = folder / "data" / "clv_model"
    data.mkdir(parents=True)
    (folder / "MLmodel").write_text("flavors:\n  python_function:\n    loader_module: "
                                    "clvlab.serving\n    data: data/clv_model\n")
    (data / "transaction_model.posterior.nc").write_bytes(b"")
    (data / "transaction_model.json").write_text(json.dumps(
        {"posterior_file": "transaction_model.posterior.nc"}))
    assert clvlab.serving.check_model_files(folder) == data
    (data / "transaction_model.json").write_text(json.dumps({"posterior_file": "../../x.nc"}))
    with pytest.raises(ClvlabError, match="names the posterior file '../../x.nc'"):
        clvlab.serving.check_model_files(folder)
    (data / "model.posterior.nc").write_bytes(b"")
    with pytest.raises(ClvlabError, match="unexpected file"):
        clvlab.serving.check_model_files(folder)
