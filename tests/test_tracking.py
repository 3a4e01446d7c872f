"""MLflow: tracked fits and backtests, the packaged CLV model without pickles, aliases, the
scoring job, experiments; one test against a real `mlflow server` on 127.0.0.1."""

import socket
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import clvlab
from clvlab import ClvlabError
from clvlab.cli import main

from conftest import mlflow_server

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def cdnow():
    log = clvlab.datasets.load_cdnow(sample=True)
    rfm = clvlab.rfm_summary(log, amount_col="amount", time_unit="W", calibration_end="1997-09-30")
    return log, rfm


@pytest.fixture(scope="module")
def models(cdnow):
    _, rfm = cdnow
    return clvlab.ParetoNBD().fit(rfm), clvlab.GammaGamma().fit(rfm)


def _client():
    import mlflow

    return mlflow.MlflowClient()


def test_log_fit_records_estimates_errors_data_and_plots(tracking, cdnow, models):
    _, rfm = cdnow
    run_id = clvlab.tracking.log_fit(models[0], rfm, experiment="test-fits")
    run = _client().get_run(run_id)
    assert float(run.data.params["r"]) == pytest.approx(models[0].params_["r"])
    assert run.data.metrics["se.r"] == pytest.approx(models[0].standard_errors_["r"])
    assert run.data.metrics["log_likelihood"] == pytest.approx(models[0].log_likelihood_)
    assert {"aic", "bic", "n_customers"} <= set(run.data.metrics)
    tags = run.data.tags
    assert tags["clvlab.kind"] == "fit" and tags["clvlab.time_unit"] == "W"
    assert tags["data.customers"] == "2357" and len(tags["data.digest"]) == 64
    assert tags["data.calibration_end"].startswith("1997-09-30") and "version.clvlab" in tags
    artifacts = {a.path for a in _client().list_artifacts(run_id, "fit")}
    assert {"fit/model.json", "fit/summary.csv", "fit/frequency_histogram.png"} <= artifacts
    assert clvlab.tracking.data_digest(rfm) == clvlab.tracking.data_digest(rfm.copy())


def test_log_backtest_has_a_run_per_cutoff_and_candidate(tracking, cdnow):
    log, _ = cdnow
    result = clvlab.backtest(log, ["pareto-nbd+gamma-gamma", "historical-average"],
                             cutoffs=["1997-09-30", "1998-03-31"], horizon=13, amount_col="amount")
    parent = clvlab.tracking.log_backtest(result, experiment="test-backtests")
    client = _client()
    run = client.get_run(parent)
    mean_auc = result.per_cutoff("activity", "auc")["pareto-nbd + gamma-gamma"].mean()
    assert run.data.metrics["pareto-nbd_gamma-gamma.activity_auc"] == pytest.approx(mean_auc)
    children = client.search_runs([run.info.experiment_id],
                                  f"tags.mlflow.parentRunId = '{parent}'")
    assert len(children) == 4
    child = next(c for c in children if c.data.tags["candidate"] == "historical-average"
                 and c.data.tags["cutoff"] == "1998-03-31")
    expected = result.per_cutoff("purchases", "mae").loc["1998-03-31", "historical-average"]
    assert child.data.metrics["purchases_mae"] == pytest.approx(expected)
    names = {a.path for a in client.list_artifacts(parent, "backtest")}
    assert {"backtest/metrics.csv", "backtest/cohorts.csv", "backtest/tracking.png"} <= names


def test_clv_model_registers_promotes_and_predicts_without_pickles(tracking, cdnow, models, monkeypatch):
    import mlflow

    monkeypatch.setenv("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "false")
    _, rfm = cdnow
    transaction, spend = models
    info = clvlab.serving.log_clv_model(transaction, spend, registered_model_name="test-clv")
    assert clvlab.serving.resolve_version("test-clv", "challenger") == str(info.registered_model_version)
    with pytest.raises(ClvlabError, match="no alias 'champion'"):
        clvlab.serving.resolve_version("test-clv", "champion")
    with pytest.raises(ClvlabError, match="not a clvlab backtest"):
        clvlab.serving.promote("test-clv", backtest_run=mlflow.search_runs(
            experiment_names=["test-fits"]).iloc[0]["run_id"])
    assert main(["promote", "test-clv"]) == 0
    model = mlflow.pyfunc.load_model("models:/test-clv@champion")
    inputs = rfm[["frequency", "recency", "T", "monetary_value"]].astype(np.float64)
    # a payload carries no time unit: the caller states it (issue 29)
    got = model.predict(inputs, params={"horizon": 39.0, "discount_rate": 0.01, "margin": 0.3,
                                        "time_unit": "W"})
    assert list(got.columns) == clvlab.serving.OUTPUT_COLUMNS
    np.testing.assert_allclose(got["expected_purchases"], transaction.expected_purchases(rfm, 39))
    np.testing.assert_allclose(got["clv"], clvlab.customer_lifetime_value(
        transaction, spend, rfm, 39, 0.01, 0.3))
    # no pickle among the model's files: JSON models and the MLmodel description
    local = Path(mlflow.artifacts.download_artifacts(info.model_uri))
    files = {p.name for p in local.rglob("*") if p.is_file()}
    assert {"transaction_model.json", "spend_model.json", "MLmodel"} <= files
    assert not [f for f in files if f.endswith((".pkl", ".pickle", ".cloudpickle"))]
    signature = mlflow.models.get_model_info("models:/test-clv@champion").signature
    assert signature.params.to_dict()[0]["name"] == "horizon"


def test_churn_adjusted_model_scores_from_its_features(tracking, cdnow, tmp_path, monkeypatch):
    from clvlab.churn import churn_training_data

    monkeypatch.setenv("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "false")
    log, _ = cdnow
    X, y = churn_training_data(log, "1997-09-30", 13, amount_col="amount")
    adjuster = clvlab.ChurnAdjuster(clvlab.BetaGeo(), horizon=13).fit(X, y)
    rfm_now = clvlab.rfm_summary(log, amount_col="amount", time_unit="W")
    transaction = clvlab.BetaGeo().fit(rfm_now)
    spend = clvlab.GammaGamma().fit(rfm_now)
    clvlab.serving.log_clv_model(transaction, spend, adjuster, registered_model_name="test-churn")
    scores = clvlab.scoring.score("models:/test-churn@challenger", log, "1998-06-30",
                                  tmp_path / "s.parquet", horizon=13).read()
    X_now = churn_training_data(log, "1998-06-30", amount_col="amount")
    np.testing.assert_allclose(scores["probability_of_purchase"],
                               adjuster.probability_of_purchase(X_now), rtol=1e-9)
    with pytest.raises(ClvlabError, match="trained for a horizon of 13"):
        clvlab.scoring.score("models:/test-churn@challenger", log, "1998-06-30",
                             tmp_path / "t.parquet", horizon=52)
    assert not (tmp_path / "t.parquet").exists()


def test_an_adjuster_with_customer_attributes_scores_from_an_attributes_file(
        tracking, cdnow, tmp_path):
    """The scoring job could not build an adjuster's attribute features ('cannot build from a
    transaction log'), with or without --attributes: it reads them from the attributes file."""
    import warnings

    from clvlab.churn import churn_training_data
    from clvlab.cli import main

    log, _ = cdnow
    ids = log["customer_id"].unique()
    attributes = pd.DataFrame({"customer_id": ids, "vip": (ids % 4 == 0).astype(float)})
    attributes.to_csv(tmp_path / "attributes.csv", index=False)
    X, y = churn_training_data(log, "1997-09-30", 13, amount_col="amount",
                               customer_attributes=attributes.set_index("customer_id"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        adjuster = clvlab.ChurnAdjuster(clvlab.BetaGeo(), horizon=13, gain_check=False).fit(X, y)
    rfm_now = clvlab.rfm_summary(log, amount_col="amount", time_unit="W")
    clvlab.serving.log_clv_model(clvlab.BetaGeo().fit(rfm_now), None, adjuster,
                                 registered_model_name="test-churn-vip")
    log.to_csv(tmp_path / "log.csv", index=False)
    assert main(["score", "--model", "models:/test-churn-vip@challenger", "--transactions",
                 str(tmp_path / "log.csv"), "--as-of", "1998-06-30", "--horizon", "13",
                 "--attributes", str(tmp_path / "attributes.csv"),
                 "-o", str(tmp_path / "s.csv")]) == 0
    scores = pd.read_csv(tmp_path / "s.csv", index_col=0)
    X_now = churn_training_data(log, "1998-06-30", amount_col="amount",
                                customer_attributes=attributes.set_index("customer_id"))
    np.testing.assert_allclose(scores.loc[X_now.index, "probability_of_purchase"],
                               adjuster.probability_of_purchase(X_now), rtol=1e-9)


def test_scoring_job_writes_atomically_and_logs_a_run(tracking, cdnow, models, tmp_path):
    log, _ = cdnow
    source = tmp_path / "log.parquet"
    log.to_parquet(source)
    clvlab.serving.log_clv_model(*models, registered_model_name="test-score")
    out = tmp_path / "scores.parquet"
    assert main(["score", "--model", "models:/test-score@challenger", "--transactions", str(source),
                 "--as-of", "1998-06-30", "-o", str(out), "--horizon", "26"]) == 0
    scores = pd.read_parquet(out)
    assert len(scores) == 2357 and np.all(np.isfinite(scores.to_numpy()))
    rfm = clvlab.rfm_summary(log, amount_col="amount", time_unit="W", observation_end="1998-06-30")
    np.testing.assert_allclose(scores["expected_purchases"], models[0].expected_purchases(rfm, 26))
    import mlflow

    run = mlflow.search_runs(experiment_names=["clvlab-scoring"]).iloc[0]
    assert run["metrics.customers_scored"] == 2357
    assert run["tags.model_version"] == "1" and "metrics.clv.p90" in run
    before = out.read_bytes()
    assert main(["score", "--model", "models:/test-score@challenger", "--transactions", str(source),
                 "--as-of", "1998-06-30", "-o", str(out), "--horizon", "26"]) == 1  # exists, no --overwrite
    with pytest.raises(ClvlabError, match="cannot load the model"):
        clvlab.scoring.score("models:/no-such-model@champion", str(source), "1998-06-30", out,
                             overwrite=True, horizon=52)
    assert out.read_bytes() == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".scores")]


def test_unreachable_server_fails_fast_and_writes_nothing(tmp_path, monkeypatch, cdnow):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{port}")
    started = time.perf_counter()
    with pytest.raises(ClvlabError, match="unreachable"):
        clvlab.scoring.score("models:/x@champion", cdnow[0], "1998-06-30", tmp_path / "s.parquet",
                             horizon=52)
    assert time.perf_counter() - started < 10
    assert list(tmp_path.iterdir()) == []


def test_experiment_file_runs_and_compares(tracking, tmp_path, capsys):
    path = tmp_path / "quick.toml"
    path.write_text((REPO / "experiments" / "cdnow_quick.toml").read_text()
                    .replace('name = "cdnow-quick"', 'name = "test-experiment"')
                    .replace('cutoffs = ["1997-09-30", "1998-03-31"]', 'cutoffs = ["1997-09-30"]'))
    assert main(["experiment", "run", str(path), "--no-progress"]) == 0
    assert main(["compare", "test-experiment"]) == 0
    out = capsys.readouterr().out
    assert "pareto-nbd + gamma-gamma" in out and "activity_auc" in out
    board = clvlab.experiments.compare("test-experiment")
    assert board["activity_auc"].is_monotonic_decreasing
    (tmp_path / "bad.toml").write_text('[data]\nsource = "cdnow:sample"\nfoo = 1\n[backtest]\n')
    with pytest.raises(ClvlabError, match="unknown key"):
        clvlab.experiments.load_experiment(tmp_path / "bad.toml")


@pytest.mark.once
@pytest.mark.slow
def test_whole_path_against_a_real_server(tmp_path, cdnow, models, monkeypatch):
    """A real `mlflow server` on 127.0.0.1 (its own process group, stopped afterwards): fit,
    backtest, register, promote and score over HTTP."""
    with mlflow_server(tmp_path) as uri:
        monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
        monkeypatch.setenv("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "false")
        monkeypatch.chdir(tmp_path)
        log, rfm = cdnow
        clvlab.tracking.log_fit(models[0], rfm, experiment="server-path")
        result = clvlab.backtest(log, ["pareto-nbd+gamma-gamma", "historical-average"],
                                 cutoffs=["1997-09-30"], horizon=13, amount_col="amount")
        backtest_run = clvlab.tracking.log_backtest(result, experiment="server-path")
        clvlab.serving.log_clv_model(*models, registered_model_name="server-clv")
        assert clvlab.serving.promote("server-clv", backtest_run=backtest_run) == "1"
        job = clvlab.scoring.score("models:/server-clv@champion", log, "1998-06-30",
                                   tmp_path / "scores.parquet", horizon=52)
        assert job.customers_scored == 2357 and len(job.read()) == 2357
        board = clvlab.experiments.compare("server-path")
        assert set(board["candidate"]) == {"pareto-nbd + gamma-gamma", "historical-average"}
        assert list((tmp_path / "artifacts").rglob("transaction_model.json"))
