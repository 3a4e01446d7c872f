"""Issue 22 on Spark: fits read the covariate columns, scoring carries them through, the scoring
job joins the attributes in Spark (from a table or the log's columns) and counts the customers
without them. The run's one local[2] Spark session on 127.0.0.1 (conftest.py)."""

import numpy as np
import pandas as pd
import pytest

import clvlab

pyspark = pytest.importorskip("pyspark", reason="pip install clvlab[spark]")

from clvlab import spark as clv_spark  # noqa: E402

AS_OF = "1998-06-30"
PARAMS = {"horizon": 26.0, "discount_rate": 0.01, "margin": 1.0}


@pytest.fixture(scope="module")
def log(cdnow_sample):
    ids = cdnow_sample["customer_id"].to_numpy()
    return cdnow_sample.assign(channel=np.array(["store", "web", "phone"])[ids % 3],
                               vip=ids % 5 == 0)


@pytest.fixture(scope="module")
def attributes(log):
    return log.groupby("customer_id")[["channel", "vip"]].first()


@pytest.fixture(scope="module")
def rfm(cdnow_sample, attributes):
    return clvlab.rfm_summary(cdnow_sample, amount_col="amount", time_unit="W",
                              observation_end=AS_OF, customer_attributes=attributes)


@pytest.fixture(scope="module")
def models(rfm):
    return (clvlab.BetaGeo(purchase_covariates=["channel"], dropout_covariates=["vip"],
                           dropout_form="b").fit(rfm),
            clvlab.GammaGamma(spend_covariates=["vip"]).fit(rfm[rfm["frequency"] > 0]))


def test_spark_fits_and_scores_with_covariates(spark, cdnow_sample, attributes, rfm, models):
    summary = clv_spark.rfm_summary(spark.createDataFrame(cdnow_sample), amount_col="amount",
                                    time_unit="W", observation_end=AS_OF,
                                    customer_attributes=attributes)
    transaction, spend = models
    fitted = clv_spark.fit(clvlab.BetaGeo(purchase_covariates=["channel"],
                                          dropout_covariates=["vip"], dropout_form="b"), summary)
    # the same optimum up to the optimiser's tolerance (weighted distinct rows against rows)
    np.testing.assert_allclose(fitted.params_, transaction.params_, rtol=1e-5, atol=1e-6)
    assert list(fitted.params_.index) == list(transaction.params_.index)
    scores = clv_spark.score(summary.frame, transaction, spend, **PARAMS).toPandas()
    got = scores.set_index("customer_id").loc[rfm.index]
    want = clvlab.serving.score_frame(transaction, spend, None, rfm, PARAMS)
    np.testing.assert_allclose(got[want.columns].to_numpy(), want.to_numpy(), rtol=1e-10)
    assert not np.allclose(got["p_alive"], clvlab.BetaGeo().fit(rfm).p_alive(rfm), rtol=1e-3)
    with pytest.raises(clvlab.ClvlabError, match=r"\['channel', 'vip'\].*lacks"):
        clv_spark.score(summary.frame.drop("channel", "vip"), transaction, spend, **PARAMS)


@pytest.mark.once
@pytest.mark.slow
def test_spark_scoring_job_joins_attributes_and_counts_the_missing(spark, tracking, log,
                                                                   attributes, rfm, models,
                                                                   tmp_path):
    source = tmp_path / "log.parquet"
    log.to_parquet(source)
    clvlab.serving.log_clv_model(*models, registered_model_name="spark-cov")
    want = clvlab.serving.score_frame(*models, None, rfm, PARAMS)
    score = dict(horizon=26, discount_rate=0.01, engine="spark", spark=spark)
    # the attributes from the log's columns, then from a table without 30 customers
    job = clvlab.scoring.score("models:/spark-cov@challenger", str(source), AS_OF,
                               tmp_path / "from_log", **score)
    got = pd.read_parquet(tmp_path / "from_log").set_index("customer_id").loc[rfm.index]
    np.testing.assert_allclose(got[want.columns].to_numpy(), want.to_numpy(), rtol=1e-9)
    assert job.stats["customers_without_attributes"] == 0
    attributes.iloc[30:].to_parquet(tmp_path / "partial.parquet")
    with pytest.raises(clvlab.ClvlabError, match=r"30 of the 2,357 customers to score have no "
                                                 r"attributes.*customer 1\b"):
        clvlab.scoring.score("models:/spark-cov@challenger", str(source), AS_OF,
                             tmp_path / "partial", attributes=tmp_path / "partial.parquet", **score)
    assert not (tmp_path / "partial").exists()
    job = clvlab.scoring.score("models:/spark-cov@challenger", str(source), AS_OF,
                               tmp_path / "skipped", attributes=tmp_path / "partial.parquet",
                               missing_attributes="skip", **score)
    assert job.customers_scored == 2357 - 30 and job.stats["customers_without_attributes"] == 30
    rows = log.index[log["customer_id"] == 7]
    changing = log.assign(channel=log["channel"].where(log.index != rows[-1], "kiosk"))
    changing.to_parquet(tmp_path / "changing.parquet")
    with pytest.raises(clvlab.errors.DataValidationError, match="'channel': changes within"):
        clvlab.scoring.score("models:/spark-cov@challenger", str(tmp_path / "changing.parquet"),
                             AS_OF, tmp_path / "changing", **score)
