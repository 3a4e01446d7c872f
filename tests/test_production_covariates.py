"""Issue 22 on the production path: models with covariates saved, registered, loaded through the
pyfunc and scored by the scoring job give the in-memory models' predictions; the signature lists
the covariate columns; the job reads attributes from a table or from the log and refuses
customers without them with a count; `clvlab fit` fits covariates; experiments declare them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import clvlab
from clvlab import ClvlabError
from clvlab.cli import main
from clvlab.errors import DataValidationError

PARAMS = {"horizon": 26.0, "discount_rate": 0.01, "margin": 0.5}
AS_OF = "1998-06-30"


def with_attributes(frame: pd.DataFrame, ids) -> pd.DataFrame:
    """channel (text, three levels), vip (bool) and age (a number): functions of the id, so
    constant per customer."""
    ids = np.asarray(ids)
    return frame.assign(channel=np.array(["store", "web", "phone"])[ids % 3], vip=ids % 5 == 0,
                        age=20.0 + ids % 7)


@pytest.fixture(scope="module")
def log(cdnow_sample) -> pd.DataFrame:
    return with_attributes(cdnow_sample, cdnow_sample["customer_id"])


@pytest.fixture(scope="module")
def attributes(log) -> pd.DataFrame:
    return log.groupby("customer_id")[["channel", "vip", "age"]].first()


@pytest.fixture(scope="module")
def rfm(cdnow_sample, attributes) -> pd.DataFrame:
    """The summary as of the scoring date, with the attributes."""
    summary = clvlab.rfm_summary(cdnow_sample, amount_col="amount", time_unit="W",
                                 observation_end=AS_OF)
    table = pd.concat([summary, attributes.reindex(summary.index)], axis=1)
    table.attrs = dict(summary.attrs)
    return table


@pytest.fixture(scope="module")
def models(rfm):
    transaction = clvlab.ParetoNBD(purchase_covariates=["channel", "vip"],
                                   dropout_covariates=["vip", "age"]).fit(rfm)
    spend = clvlab.GammaGamma(spend_covariates=["channel"]).fit(rfm[rfm["frequency"] > 0])
    return transaction, spend


def in_memory_scores(models, table, horizon=PARAMS["horizon"]) -> pd.DataFrame:
    transaction, spend = models
    return pd.DataFrame({
        "p_alive": transaction.p_alive(table),
        "expected_purchases": transaction.expected_purchases(table, horizon),
        "expected_spend_per_purchase": spend.expected_spend(table, unvalued="population"),
        "clv": clvlab.customer_lifetime_value(transaction, spend, table, horizon,
                                              PARAMS["discount_rate"], PARAMS["margin"],
                                              unvalued="population")})


def assert_scores_match(got: pd.DataFrame, want: pd.DataFrame) -> None:
    np.testing.assert_allclose(got[want.columns].to_numpy(), want.to_numpy(), rtol=1e-9)


def test_the_models_really_differ_by_attribute(models, rfm):
    """Otherwise every comparison below would pass with the covariates ignored."""
    transaction, spend = models
    plain = clvlab.ParetoNBD().fit(rfm)
    assert np.abs(transaction.p_alive(rfm) - plain.p_alive(rfm)).max() > 1e-3
    assert spend.params_["spend.channel[web]"] != 0


def test_score_frame_scores_each_customer_at_their_attributes(models, rfm):
    got = clvlab.serving.score_frame(*models, None, rfm.sample(frac=1, random_state=0), PARAMS)
    want = in_memory_scores(models, rfm)
    assert set(got.index) == set(rfm.index)
    assert_scores_match(got.loc[rfm.index], want)
    with pytest.raises(ClvlabError, match=r"attribute column\(s\) \['vip', 'age'\].*lacks"):
        clvlab.serving.score_frame(*models, None, rfm.drop(columns=["vip", "age"]), PARAMS)
    unseen = rfm.assign(channel=rfm["channel"].where(rfm.index != rfm.index[3], "kiosk"))
    with pytest.raises(DataValidationError, match="'kiosk'.*did not see"):
        clvlab.serving.score_frame(*models, None, unseen, PARAMS)


def test_saved_and_registered_model_predicts_as_in_memory(tracking, models, rfm, tmp_path,
                                                          monkeypatch):
    import mlflow

    monkeypatch.setenv("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "false")
    transaction, spend = models
    transaction.save(tmp_path / "t.json")
    spend.save(tmp_path / "s.json")
    loaded = (clvlab.load_model(tmp_path / "t.json"), clvlab.load_model(tmp_path / "s.json"))
    assert_scores_match(in_memory_scores(loaded, rfm), in_memory_scores(models, rfm))

    info = clvlab.serving.log_clv_model(*loaded, registered_model_name="cov-clv", attributes=rfm)
    signature = mlflow.models.get_model_info("models:/cov-clv@challenger").signature
    types = {spec["name"]: spec["type"] for spec in signature.inputs.to_dict()}
    # numbers are "any" (MLflow's "double" refused rfm_summary's int64 counts), checked as numbers
    assert types == {"frequency": "any", "recency": "any", "T": "any",
                     "monetary_value": "any", "channel": "string", "vip": "boolean",
                     "age": "any"}
    assert info.metadata["covariates"] == ["channel", "vip", "age"]
    pyfunc = mlflow.pyfunc.load_model("models:/cov-clv@challenger")
    numbers = ["frequency", "recency", "T", "monetary_value"]
    inputs = rfm[numbers + ["channel", "vip", "age"]].astype(dict.fromkeys(numbers, np.float64))
    got = pyfunc.predict(inputs, params={**PARAMS, "time_unit": "W"})
    assert_scores_match(got.set_axis(rfm.index), in_memory_scores(models, rfm))
    with pytest.raises(Exception, match="missing inputs.*channel"):
        pyfunc.predict(inputs.drop(columns="channel"), params={**PARAMS, "time_unit": "W"})
    # without a table to tell booleans from numbers, a boolean covariate is a number input
    assert main(["register", str(tmp_path / "t.json"), "--spend-model", str(tmp_path / "s.json"),
                 "--name", "cov-clv-numbers"]) == 0
    signature = mlflow.models.get_model_info("models:/cov-clv-numbers@challenger").signature
    assert {s["name"]: s["type"] for s in signature.inputs.to_dict()}["vip"] == "any"


def test_scoring_job_joins_an_attributes_table(tracking, models, log, attributes, rfm, tmp_path,
                                               capsys):
    import mlflow

    source, table = tmp_path / "log.parquet", tmp_path / "attributes.parquet"
    log.drop(columns=["channel", "vip", "age"]).to_parquet(source)
    attributes.to_parquet(table)
    clvlab.serving.log_clv_model(*models, registered_model_name="cov-score", attributes=rfm)
    out = tmp_path / "scores.parquet"
    score = ["score", "--model", "models:/cov-score@challenger", "--transactions", str(source),
             "--as-of", AS_OF, "--horizon", "26", "--discount-rate", "0.01", "--margin", "0.5"]
    assert main(score + ["-o", str(out), "--attributes", str(table), "--chunk-rows", "500"]) == 0
    assert_scores_match(pd.read_parquet(out).set_index(rfm.index.name).loc[rfm.index], in_memory_scores(models, rfm))
    run = mlflow.search_runs(experiment_names=["clvlab-scoring"]).iloc[0]
    assert run["metrics.customers_without_attributes"] == 0

    # 40 customers without a row: refused with the count and an example; the output stays
    before = out.read_bytes()
    partial = tmp_path / "partial.csv"
    attributes.iloc[40:].to_csv(partial)
    with pytest.raises(ClvlabError, match=r"40 of the 2,357 customers to score have no "
                                          r"attributes.*customer 1\b.*nothing was written"):
        clvlab.scoring.score("models:/cov-score@challenger", str(source), AS_OF, out,
                             horizon=26, overwrite=True, attributes=partial, chunk_rows=500)
    assert out.read_bytes() == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".scores")]
    # opted in: left out and counted, the others scored as before
    capsys.readouterr()
    assert main(score + ["-o", str(tmp_path / "skip.csv"), "--attributes", str(partial),
                         "--missing-attributes", "skip"]) == 0
    assert "left out 40 customers without attributes" in capsys.readouterr().out
    kept = pd.read_csv(tmp_path / "skip.csv", index_col="customer_id")
    assert len(kept) == 2357 - 40 and not kept.index.isin(attributes.index[:40]).any()
    assert_scores_match(kept, in_memory_scores(models, rfm).loc[kept.index])
    run = mlflow.search_runs(experiment_names=["clvlab-scoring"]).iloc[0]
    assert run["metrics.customers_without_attributes"] == 40
    assert run["metrics.customers_scored"] == 2357 - 40
    with pytest.raises(ClvlabError, match="missing_attributes must be one of"):
        clvlab.scoring.score("models:/cov-score@challenger", str(source), AS_OF,
                             tmp_path / "x.csv", horizon=26, missing_attributes="ignore")


def test_scoring_job_reads_constant_columns_of_the_log(tracking, models, log, rfm, tmp_path):
    clvlab.serving.log_clv_model(*models, registered_model_name="cov-log")
    source = tmp_path / "log.csv"
    log.to_csv(source, index=False)
    job = clvlab.scoring.score("models:/cov-log@challenger", str(source), AS_OF,
                               tmp_path / "scores.parquet", horizon=26, discount_rate=0.01,
                               margin=0.5)
    assert job.customers_scored == 2357
    assert_scores_match(job.read().loc[rfm.index], in_memory_scores(models, rfm))
    # a DataFrame log, scored by pandas, the same
    job = clvlab.scoring.score("models:/cov-log@challenger", log, AS_OF, tmp_path / "pd.parquet",
                               horizon=26, discount_rate=0.01, margin=0.5, engine="pandas")
    assert_scores_match(job.read().loc[rfm.index], in_memory_scores(models, rfm))

    changing = log.copy()
    rows = changing.index[changing["customer_id"] == 7]
    changing.loc[rows[-1], "channel"] = "web" if changing.loc[rows[0], "channel"] != "web" else "store"
    with pytest.raises(DataValidationError, match=r"column 'channel': changes within customer 7\b"):
        clvlab.scoring.score("models:/cov-log@challenger", changing, AS_OF,
                             tmp_path / "bad.parquet", horizon=26)
    # a customer whose rows never say: without attributes, counted
    unknown = log.assign(vip=log["vip"].astype(object).where(log["customer_id"] > 3))
    with pytest.raises(ClvlabError, match="3 of the 2,357 customers .* in the log"):
        clvlab.scoring.score("models:/cov-log@challenger", unknown, AS_OF,
                             tmp_path / "bad.parquet", horizon=26)
    with pytest.raises(ClvlabError, match=r"\['age'\].*which the log lacks"):
        clvlab.scoring.score("models:/cov-log@challenger", log.drop(columns="age"), AS_OF,
                             tmp_path / "bad.parquet", horizon=26)
    assert not list(tmp_path.glob("bad*"))


def test_clvlab_fit_fits_covariates_from_an_attributes_file(models, log, attributes, tmp_path,
                                                            capsys):
    log.drop(columns=["channel", "vip", "age"]).to_parquet(tmp_path / "log.parquet")
    attributes.to_csv(tmp_path / "attributes.csv")
    summary = tmp_path / "rfm.parquet"
    assert main(["rfm", str(tmp_path / "log.parquet"), "-o", str(summary), "--time-unit", "W",
                 "--amount-col", "amount", "--observation-end", AS_OF, "--no-progress"]) == 0
    fit = ["fit", str(summary), "--model", "pareto-nbd", "--attributes",
           str(tmp_path / "attributes.csv"), "--purchase-covariates", "channel, vip",
           "--dropout-covariates", "vip,age"]
    assert main(fit + ["-o", str(tmp_path / "m.json")]) == 0
    assert "purchase.channel[web]" in capsys.readouterr().out
    fitted = clvlab.load_model(tmp_path / "m.json")
    pd.testing.assert_series_equal(fitted.params_, models[0].params_, rtol=1e-6)
    assert fitted.purchase_covariates == ["channel", "vip"]
    attributes.iloc[5:].to_csv(tmp_path / "partial.csv")
    assert main(["fit", str(summary), "--model", "gamma-gamma", "--spend-covariates", "channel",
                 "--attributes", str(tmp_path / "partial.csv"), "-o", str(tmp_path / "g.json")]) == 1
    assert "no row for 5 of the 2357 customers" in capsys.readouterr().err
    # a column neither the table nor --attributes has
    assert main(fit[:4] + ["--purchase-covariates", "region", "-o", str(tmp_path / "r.json")]) == 1
    assert "region" in capsys.readouterr().err


def test_experiments_declare_covariate_candidates_and_their_attributes(attributes, tmp_path,
                                                                       monkeypatch):
    spec = tmp_path / "cov.toml"
    candidates = '["pareto-nbd[channel,vip]+gamma-gamma", "pareto-nbd+gamma-gamma"]'
    body = ('[data]\nsource = "cdnow:sample"\namount_col = "amount"\n{extra}[backtest]\n'
            'cutoffs = ["1997-09-30"]\nhorizon = 13\ncandidates = {candidates}\n'
            'churn_adjuster = true\n')
    spec.write_text(body.format(extra="", candidates=candidates))
    with pytest.raises(ClvlabError, match=r"read customer attributes.*attributes = "):
        clvlab.experiments.load_experiment(spec)
    spec.write_text(body.format(extra="attributes = 3\n", candidates=candidates))
    with pytest.raises(ClvlabError, match="attributes must be a file name"):
        clvlab.experiments.load_experiment(spec)
    spec.write_text(body.format(extra='attributes = "attrs.csv"\n', candidates=candidates))
    attributes.to_csv(tmp_path / "attrs.csv")
    seen = {}

    def backtest(transactions, candidates, cutoffs, horizon, **options):
        seen.update(candidates=candidates, **options)
        raise RuntimeError("stop here: the backtest is the evaluation layer's")

    monkeypatch.setattr(clvlab.evaluation, "backtest", backtest)
    monkeypatch.setattr(clvlab.ops.tracking, "connect", lambda: None)
    with pytest.raises(RuntimeError, match="stop here"):
        clvlab.experiments.run_experiment(spec)
    # the attributes reach the backtest by customer id; only the plain candidate gets an adjuster
    pd.testing.assert_frame_equal(seen["customer_attributes"], attributes)
    assert seen["candidates"] == ["pareto-nbd[channel,vip]+gamma-gamma", "pareto-nbd+gamma-gamma",
                                  "pareto-nbd+gamma-gamma+churn-adjuster"]
