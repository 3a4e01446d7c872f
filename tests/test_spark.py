"""clvlab on Spark: the same RFM as the pandas engine, the same fits, the same scores.

One local[2] Spark session on 127.0.0.1 for the module, stopped at its end."""

import warnings

import numpy as np
import pandas as pd
import pytest

import clvlab
from clvlab.cli import main

pyspark = pytest.importorskip("pyspark", reason="pip install clvlab[spark]")

from clvlab import spark as clv_spark  # noqa: E402
from conftest import assert_same_rfm  # noqa: E402


@pytest.fixture(scope="module")
def spark():
    warnings.filterwarnings("ignore", message=".*PySpark does not yet fully support pandas.*")
    session = clv_spark.local_session(cores=2, app_name="clvlab-tests", fast_start=True)
    session.conf.set("spark.sql.session.timeZone", "UTC")
    yield session
    session.stop()


def test_rfm_equals_the_pandas_engine_on_the_cdnow_master_log(spark, cdnow_master):
    options = dict(amount_col="amount", time_unit="W", calibration_end="1997-09-30",
                   observation_end="1998-06-30")
    got = clv_spark.rfm_summary(spark.createDataFrame(cdnow_master), **options).to_pandas()
    want = clvlab.rfm_summary(cdnow_master, engine="pandas", **options)
    assert_same_rfm(got.rename_axis(want.index.name), want)
    assert got.attrs == want.attrs
    assert len(got) == 23_570


def test_rfm_rules_on_a_log_with_refunds_zones_and_hours(spark):
    # zoned text timestamps seen from New York, refunds larger than purchases, a refund-only day,
    # two purchases in one hour, customers first seen after the cut
    rows = [("a", "2024-03-01T10:15:00+00:00", 10.0), ("a", "2024-03-01T10:45:00+00:00", 5.0),
            ("a", "2024-03-02T03:00:00+00:00", 7.0),   # 22:00 on 03-01 in New York
            ("a", "2024-03-05T12:00:00+00:00", -20.0), ("a", "2024-03-05T13:00:00+00:00", 4.0),
            ("b", "2024-03-03T09:00:00+00:00", 30.0), ("b", "2024-03-04T09:00:00+00:00", -5.0),
            ("b", "2024-03-20T09:00:00+00:00", 12.5), ("c", "2024-03-18T09:00:00+00:00", 1.0),
            ("c", "2024-03-25T09:00:00+00:00", 2.0), ("d", "2024-03-02T00:30:00+00:00", 0.0)]
    log = pd.DataFrame(rows, columns=["customer_id", "date", "amount"])
    for unit, merge in (("D", None), ("h", "h")):
        options = dict(amount_col="amount", time_unit=unit, merge_period=merge,
                       timezone="America/New_York", calibration_end="2024-03-10",
                       observation_end="2024-03-31")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", clvlab.ClvlabWarning)
            want = clvlab.rfm_summary(log, engine="pandas", **options)
            got = clv_spark.rfm_summary(spark.createDataFrame(log), **options).to_pandas()
        assert_same_rfm(got.rename_axis(want.index.name), want)
        assert got.attrs == want.attrs


def test_consent_leaves_the_same_customers_out_as_the_pandas_engine(spark, cdnow_sample):
    log = cdnow_sample.assign(consent=np.where(cdnow_sample["customer_id"] % 7 == 0, "no", "yes"))
    options = dict(amount_col="amount", time_unit="W", consent_col="consent",
                   withdrawn=["1", "2", "3"])
    want = clvlab.rfm_summary(log, engine="pandas", **options)
    got = clv_spark.rfm_summary(spark.createDataFrame(log), **options).to_pandas()
    assert_same_rfm(got.rename_axis(want.index.name), want)
    assert got.attrs == want.attrs and want.attrs["clvlab"]["customers_excluded"] > 300


def test_fit_and_score_equal_the_pandas_path(spark, cdnow_sample):
    options = dict(amount_col="amount", time_unit="W", calibration_end="1997-09-30")
    summary = clv_spark.rfm_summary(spark.createDataFrame(cdnow_sample), **options)
    rfm = clvlab.rfm_summary(cdnow_sample, **options)
    for model in (clvlab.ParetoNBD(), clvlab.BetaGeo()):
        got = clv_spark.fit(model, summary)
        want = type(model)().fit(rfm)
        np.testing.assert_allclose(got.params_, want.params_, rtol=1e-7)
        assert got.n_customers_ == 2357 and got.time_unit_ == "W"
    spend = clv_spark.fit(clvlab.GammaGamma(), clv_spark.SparkSummary(
        summary.frame.where("frequency > 0 AND monetary_value > 0"), summary.info))
    np.testing.assert_allclose(spend.params_, clvlab.GammaGamma().fit(
        rfm[(rfm["frequency"] > 0) & (rfm["monetary_value"] > 0)]).params_, rtol=1e-7)
    transaction = clvlab.ParetoNBD().fit(rfm)
    scores = clv_spark.score(summary.frame, transaction, spend, horizon=26.0,
                             discount_rate=0.01).toPandas().set_index("customer_id").sort_index()
    want = clvlab.serving.score_frame(transaction, spend, None, rfm,
                                      {"horizon": 26.0, "discount_rate": 0.01})
    np.testing.assert_allclose(scores[want.columns].to_numpy(), want.to_numpy(), rtol=1e-10)


def test_scoring_job_on_spark_matches_duckdb(spark, cdnow_sample, tracking, tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "false")
    source = tmp_path / "log.parquet"
    cdnow_sample.to_parquet(source)
    rfm = clvlab.rfm_summary(cdnow_sample, amount_col="amount", time_unit="W")
    clvlab.serving.log_clv_model(clvlab.BetaGeo().fit(rfm),
                                 clvlab.GammaGamma().fit(rfm[rfm["frequency"] > 0]),
                                 registered_model_name="spark-clv")
    args = ["score", "--model", "models:/spark-clv@challenger", "--transactions", str(source),
            "--as-of", "1998-06-30", "--horizon", "39"]
    assert main(args + ["-o", str(tmp_path / "duck.parquet")]) == 0
    clvlab.scoring.score("models:/spark-clv@challenger", str(source), "1998-06-30",
                         tmp_path / "spark_scores", horizon=39, engine="spark", spark=spark)
    got = pd.read_parquet(tmp_path / "spark_scores").set_index("customer_id").sort_index()
    want = pd.read_parquet(tmp_path / "duck.parquet")
    np.testing.assert_allclose(got[want.columns].to_numpy(), want.to_numpy(), rtol=1e-9)
    with pytest.raises(clvlab.ClvlabError, match="exists"):
        clvlab.scoring.score("models:/spark-clv@challenger", str(source), "1998-06-30",
                             tmp_path / "spark_scores", engine="spark", spark=spark)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".spark_scores")]
