"""The Spark scoring job applies churn adjusters and challengers: each bucket of customers goes
through the pandas features on a worker (clvlab.ops.spark_features), and the scores equal the
pandas job's, with an event log, consent and buckets without events included."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import clvlab
from clvlab.churn import ChurnAdjuster, churn_training_data
from clvlab.core.errors import ClvlabError
from clvlab.data.simulate_events import simulate_engagement
from clvlab.ops.scoring_inputs import input_chunks
from clvlab.ops.serving import CLVModel

pytest.importorskip("pyspark", reason="pip install clvlab[spark]")

from clvlab.ops.spark import score_job  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.once,
              pytest.mark.filterwarnings("ignore::clvlab.churn.UncheckedAdjustmentWarning")]

AS_OF, HORIZON = "1998-06-30", 13.0
PARAMS = {"horizon": HORIZON, "discount_rate": 0.01, "margin": 0.3}
LOG = dict(customer_col="customer_id", date_col="date", amount_col="amount", date_format=None,
           timezone="UTC")


def model_folder(folder, transaction, spend, adjuster):
    """A CLV model's data folder, with the file names serving gives its parts."""
    folder.mkdir()
    transaction.save(folder / "transaction_model.json")
    if spend is not None:
        spend.save(folder / "spend_model.json")
    challenger = hasattr(adjuster, "candidate_name_")
    adjuster.save(folder / ("challenger.json" if challenger else "churn_adjuster.json"))
    return folder


def pandas_job(folder, log, as_of, consent_col=None, events=None, unit="W", params=PARAMS,
               **event_options):
    """The pandas scoring job's scores (its inputs and the model's predict), by customer."""
    model = CLVModel.load(folder)
    options = {**LOG, "amount_col": "amount", "consent_col": consent_col, "withdrawn": None}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, _, chunks = input_chunks(model, log, as_of, unit, "pandas", 10**6, "1GB", options,
                                    {"delimiter": None, "decimal": "."}, events=events,
                                    event_options=event_options)
        inputs = pd.concat(list(chunks))
        return model.predict(inputs, params={**params, "time_unit": unit})


def spark_job(spark, folder, log, as_of, output, unit="W", params=PARAMS, **options):
    stats = score_job(spark, str(folder), log, as_of, str(output), params=params,
                      time_unit=unit, **{**LOG, **options})
    scores = pd.read_parquet(output)
    return stats, scores.set_index("customer_id").sort_index()


def assert_same_scores(got, want):
    assert list(got.columns) == list(want.columns)
    assert got.index.equals(want.index.sort_values())
    np.testing.assert_allclose(got.to_numpy(), want.sort_index().to_numpy(), rtol=1e-9, atol=0)


@pytest.fixture(scope="module")
def cdnow_models(cdnow_sample, tmp_path_factory):
    """A Pareto/NBD + Gamma-Gamma CLV model with a churn adjuster, and one with the "gbm"
    challenger in its place, fitted on the CDNOW sample."""
    from clvlab.data.calibration import calibration_data
    from clvlab.evaluation.candidate_names import make_candidate
    from clvlab.ops.selection import _challenger_parts

    root = tmp_path_factory.mktemp("adjusted")
    X, y = churn_training_data(cdnow_sample, "1997-09-30", HORIZON, amount_col="amount")
    rfm = clvlab.rfm_summary(cdnow_sample, amount_col="amount", time_unit="W",
                             observation_end=AS_OF)
    transaction = clvlab.ParetoNBD().fit(rfm)
    adjuster = ChurnAdjuster(clvlab.ParetoNBD(), horizon=HORIZON, gain_check=False).fit(X, y)
    adjuster.base_model_ = transaction
    adjusted = model_folder(root / "adjuster", transaction,
                            clvlab.GammaGamma().fit(rfm[rfm["frequency"] > 0]), adjuster)
    calibration, _ = calibration_data(cdnow_sample, AS_OF, amount_col="amount")
    candidate = make_candidate("gbm").fit(calibration, HORIZON)
    challenged = model_folder(root / "challenger", *_challenger_parts(candidate, calibration))
    return adjusted, challenged


def test_an_adjuster_scores_as_in_pandas_with_a_withdrawn_customer(spark, cdnow_sample,
                                                                   cdnow_models, tmp_path):
    log = cdnow_sample.assign(consent="yes")
    withdrawn = log["customer_id"].iloc[100]
    log.loc[log.index[log["customer_id"] == withdrawn][-1], "consent"] = "no"
    want = pandas_job(cdnow_models[0], log, AS_OF, consent_col="consent")
    assert withdrawn not in want.index and "clv" in want.columns
    stats, got = spark_job(spark, cdnow_models[0], log, AS_OF, tmp_path / "scores",
                           consent_col="consent", buckets=3)
    assert_same_scores(got, want)
    assert stats["customers_excluded"] == 1 and stats["customers_scored"] == len(want)
    assert stats["clv.sum"] == pytest.approx(want["clv"].sum(), rel=1e-9)
    # the adjuster moved the scores: they are not the base model's
    base = clvlab.score_customers(CLVModel.load(cdnow_models[0]).transaction, None, None,
                                  clvlab.rfm_summary(log, time_unit="W", observation_end=AS_OF,
                                                     consent_col="consent"), horizon=HORIZON)
    assert not np.allclose(got["expected_purchases"], base["expected_purchases"], rtol=1e-3)


def test_a_challenger_scores_as_in_pandas_through_the_scoring_job(spark, cdnow_sample,
                                                                  cdnow_models, tracking,
                                                                  tmp_path, monkeypatch):
    from clvlab.ops.scoring import score
    from clvlab.ops.serving import log_clv_model

    monkeypatch.setenv("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "false")
    model = CLVModel.load(cdnow_models[1])
    log_clv_model(model.transaction, model.spend, model.adjuster,
                  registered_model_name="spark-gbm-clv")
    # the log as a Parquet file of text dates in a format, and a time zone to respect
    source = tmp_path / "log.parquet"
    cdnow_sample.assign(date=cdnow_sample["date"].dt.strftime("%Y%m%d")).to_parquet(source)
    TEXT_DATES = {**LOG, "date_format": "%Y%m%d", "timezone": "Europe/Berlin"}
    job = score("models:/spark-gbm-clv@challenger", str(source), "19980630", tmp_path / "scores",
                engine="spark", spark=spark, **TEXT_DATES, **PARAMS)
    want = pandas_job(cdnow_models[1], cdnow_sample, AS_OF)
    assert_same_scores(job.read().sort_index(), want)
    assert job.customers_scored == cdnow_sample["customer_id"].nunique()
    with pytest.raises(ClvlabError, match="quantiles and prediction intervals.*the challenger 'gbm'"):
        score_job(spark, str(cdnow_models[1]), str(source), "19980630", str(tmp_path / "q"),
                  params={**PARAMS, "quantiles": [0.5]}, time_unit="W", **TEXT_DATES)
    with pytest.raises(ClvlabError, match="the challenger 'gbm' was trained for a horizon of 13"):
        score_job(spark, str(cdnow_models[1]), str(source), "19980630", str(tmp_path / "h"),
                  params={**PARAMS, "horizon": 26.0}, time_unit="W", **TEXT_DATES)
    assert not (tmp_path / "q").exists() and not (tmp_path / "h").exists()


HOURS = {"horizon": 13 * 168.0, "discount_rate": 0.0, "margin": 1.0}


@pytest.fixture(scope="module")
def engagement(tmp_path_factory):
    """A simulated purchase log and event log (with values) with text ids, and an adjuster
    trained on both in hours; the visitors who never bought have events too. Every purchase but
    one customer's is at midnight: most buckets hold no time of day, which an hourly log needs
    (a rule of the whole log)."""
    tx, events, _ = simulate_engagement(400, "2020-01-01", "2022-01-01", r=0.55, alpha=10.6,
                                        s=0.6, beta=11.7, visit_rate=4.0, email_rate=0.3, seed=3)
    timed = tx["customer_id"] == tx["customer_id"].iloc[0]
    tx["date"] = tx["date"].where(timed, tx["date"].dt.floor("D"))
    tx["customer_id"] = "c" + tx["customer_id"].astype(str)
    rng = np.random.default_rng(0)
    events = events.assign(customer_id="c" + events["customer_id"].astype(str),
                           value=rng.uniform(0, 5, len(events)).round(2))
    visitors = events.iloc[:50].assign(customer_id=[f"v{i}" for i in range(50)])
    events = pd.concat([events, visitors], ignore_index=True)
    X, y = churn_training_data(tx, "2021-06-30", HOURS["horizon"], amount_col="amount",
                               events=events, event_value_col="value", time_unit="h")
    rfm = clvlab.rfm_summary(tx, amount_col="amount", time_unit="h", observation_end="2021-09-30")
    transaction = clvlab.ParetoNBD().fit(rfm)
    adjuster = ChurnAdjuster(clvlab.ParetoNBD(), horizon=HOURS["horizon"],
                             gain_check=False).fit(X, y)
    adjuster.base_model_ = transaction
    assert "visit_value_30d" in adjuster.feature_names_in_
    folder = tmp_path_factory.mktemp("engagement") / "model"
    return tx, events, model_folder(folder, transaction, None, adjuster)


def test_an_adjuster_on_an_event_log_scores_as_in_pandas(spark, engagement, tmp_path):
    from pyspark.sql import functions as F

    tx, events, folder = engagement
    buckets = 4
    # the customers of bucket 0 (the job's hash of the ids) have no events at all
    ids = spark.createDataFrame(pd.DataFrame({"customer_id": tx["customer_id"].unique()}))
    bucket = F.pmod(F.xxhash64(F.col("customer_id").cast("string")), F.lit(buckets))
    silent = {r[0] for r in ids.where(bucket == 0).collect()}
    assert 0 < len(silent) < 200
    events = events[~events["customer_id"].isin(silent)]
    source = tmp_path / "events.csv"
    events.to_csv(source, index=False)
    as_of = "2021-09-30 12:00"
    want = pandas_job(folder, tx, as_of, events=str(source), event_value_col="value",
                      unit="h", params=HOURS)
    stats, got = spark_job(spark, folder, tx, as_of, tmp_path / "scores", events=str(source),
                           event_value_col="value", buckets=buckets, unit="h", params=HOURS)
    assert_same_scores(got, want)
    assert stats["customers_scored"] == len(want) and "clv.sum" not in stats
    assert silent <= set(got.index)  # scored with the features of customers without events


def test_what_the_spark_job_refuses_or_cannot_build(spark, engagement, tmp_path):
    tx, events, folder = engagement
    run = dict(params=HOURS, time_unit="h", **LOG)
    with pytest.raises(ClvlabError, match="give the event log it was trained with"):
        score_job(spark, str(folder), tx, "2021-09-30", str(tmp_path / "a"), **run)
    late = events.assign(date=events["date"] + pd.Timedelta(days=800))
    with pytest.raises(ClvlabError, match="no event at or before"):
        score_job(spark, str(folder), tx, "2021-09-30", str(tmp_path / "b"), events=late,
                  event_value_col="value", **run)
    broken = events.assign(value=events["value"].where(events.index != 7))
    with pytest.raises(ClvlabError, match="value is missing or NaN.*raised on a Spark worker"):
        score_job(spark, str(folder), tx, "2021-09-30", str(tmp_path / "c"), events=broken,
                  event_value_col="value", buckets=3, **run)
    assert not [p for p in tmp_path.iterdir()]  # nothing written, no staging left behind


def test_an_adjuster_on_basket_sizes_scores_as_in_pandas(spark, tmp_path):
    """The quantity column travels with the purchase rows to the buckets: the pandas job's
    basket features, the same refusal without it, and a bad quantity named from a worker."""
    tx, _, _ = simulate_engagement(300, "2020-01-01", "2022-01-01", r=0.55, alpha=10.6, s=0.6,
                                   beta=11.7, quantities=True, seed=6)
    X, y = churn_training_data(tx, "2021-06-30", HORIZON, amount_col="amount",
                               quantity_col="quantity")
    as_of = "2021-09-30"
    rfm = clvlab.rfm_summary(tx, amount_col="amount", time_unit="W", observation_end=as_of)
    adjuster = ChurnAdjuster(clvlab.ParetoNBD(), horizon=HORIZON, gain_check=False).fit(X, y)
    adjuster.base_model_ = clvlab.ParetoNBD().fit(rfm)
    assert "quantity_trend" in adjuster.feature_names_in_
    folder = model_folder(tmp_path / "model", adjuster.base_model_, None, adjuster)
    want = pandas_job(folder, tx, as_of, quantity_col="quantity")
    _, got = spark_job(spark, folder, tx, as_of, tmp_path / "scores", quantity_col="quantity",
                       buckets=3)
    assert_same_scores(got, want)
    with pytest.raises(ClvlabError, match=r"'quantity_mean'.*--quantity-col"):
        spark_job(spark, folder, tx, as_of, tmp_path / "a")
    row = tx.index[tx["date"] <= "2021-06-30"][4]
    broken = tx.assign(quantity=tx["quantity"].where(tx.index != row, -1))
    with pytest.raises(ClvlabError, match=r"column 'quantity': quantity is negative.*raised on "
                                          "a Spark worker"):
        spark_job(spark, folder, broken, as_of, tmp_path / "b", quantity_col="quantity",
                  buckets=3)
