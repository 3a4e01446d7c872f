"""clvlab on Spark: the same RFM as the pandas engine, the same fits, the same scores.

One local[2] Spark session on 127.0.0.1 for the whole run (conftest.py), stopped at its end."""

import contextlib
import warnings

import numpy as np
import pandas as pd
import pytest

import clvlab
from clvlab.cli import main

pyspark = pytest.importorskip("pyspark", reason="pip install clvlab[spark]")

from clvlab import spark as clv_spark  # noqa: E402
from conftest import assert_same_rfm  # noqa: E402


@pytest.mark.slow
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


@pytest.mark.slow
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


def test_spark_scores_with_the_one_scoring_function(spark, cdnow_sample):
    """Without a spend model Spark writes no spend columns (it wrote expected_spend = clv = 0.0
    and filled a missing monetary_value with 0); its scores are score_customers' scores."""
    options = dict(time_unit="W", calibration_end="1997-09-30")
    log = cdnow_sample.drop(columns="amount")
    summary = clv_spark.rfm_summary(spark.createDataFrame(log), **options)
    rfm = clvlab.rfm_summary(log, **options)
    transaction = clvlab.BetaGeo().fit(rfm)
    scores = clv_spark.score(summary.frame, transaction, horizon=13.0).toPandas()
    assert list(scores.columns) == ["customer_id", "p_alive", "probability_of_purchase",
                                    "expected_purchases"]
    want = clvlab.score_customers(transaction, None, None, rfm, horizon=13.0)
    got = scores.set_index("customer_id").sort_index()
    np.testing.assert_allclose(got[want.columns].to_numpy(), want.to_numpy(), rtol=1e-10)
    with pytest.raises(clvlab.ClvlabError, match="did you mean 0.08"):
        clv_spark.score(summary.frame, transaction, horizon=13.0, discount_rate=8)
    with pytest.raises(TypeError):  # the horizon has no default: it is in the model's unit
        clv_spark.score(summary.frame, transaction)


@pytest.mark.slow
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
    want = pd.read_parquet(tmp_path / "duck.parquet").set_index("customer_id")  # id first, as spark
    np.testing.assert_allclose(got[want.columns].to_numpy(), want.to_numpy(), rtol=1e-9)
    with pytest.raises(clvlab.ClvlabError, match="exists"):
        clvlab.scoring.score("models:/spark-clv@challenger", str(source), "1998-06-30",
                             tmp_path / "spark_scores", engine="spark", spark=spark)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".spark_scores")]


@pytest.mark.slow
def test_spark_job_adds_the_same_quantiles_and_totals_as_duckdb(spark, cdnow_sample, tracking,
                                                                tmp_path, monkeypatch):
    """Issue 30: --quantiles, --interval-level and --totals-by on Spark give the DuckDB job's
    columns and totals (sums per group and draw on the workers; small groups exact on one
    worker each); no customer row is collected."""
    monkeypatch.setenv("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "false")
    log = cdnow_sample[cdnow_sample["customer_id"] <= 1200]
    source = tmp_path / "log.parquet"
    log.to_parquet(source)
    ids = np.sort(log["customer_id"].unique())
    pd.DataFrame({"customer_id": ids, "channel": np.where(ids % 4 == 0, "web", "store")}).to_csv(
        tmp_path / "channel.csv", index=False)
    rfm = clvlab.rfm_summary(log, amount_col="amount", time_unit="W")
    transaction = clvlab.ParetoNBD().fit(rfm)
    clvlab.serving.log_clv_model(transaction, clvlab.GammaGamma().fit(rfm[rfm["frequency"] > 0]),
                                 registered_model_name="spark-intervals")
    options = dict(horizon=13, quantiles="0.1,0.9", interval_level=0.8, totals_by="channel,all",
                   attributes=str(tmp_path / "channel.csv"), parameter_draws=8, seed=1,
                   progress=False)
    duck = clvlab.scoring.score("models:/spark-intervals@challenger", str(source), "1998-06-30",
                                tmp_path / "duck.parquet", **options)
    job = clvlab.scoring.score("models:/spark-intervals@challenger", str(source), "1998-06-30",
                               tmp_path / "spark_scores", engine="spark", spark=spark, **options)
    got = pd.read_parquet(tmp_path / "spark_scores").set_index("customer_id").sort_index()
    want = duck.read()
    assert list(got.columns) == list(want.columns)
    assert got["purchases_q0.9"].dtype == np.int64 and "clv_q0.9" in got
    exact = [c for c in want.columns if c.startswith("purchases_")]
    np.testing.assert_array_equal(got[exact].to_numpy(), want[exact].to_numpy())
    simulated = ["clv_q0.1", "clv_q0.9"]  # Monte Carlo: Spark's batches draw other futures
    np.testing.assert_allclose(got.drop(columns=exact + simulated).to_numpy(),
                               want.drop(columns=exact + simulated).to_numpy(), rtol=1e-9)
    np.testing.assert_allclose(got[simulated].mean(), want[simulated].mean(), rtol=0.05, atol=0.1)
    assert job.totals_output == tmp_path / "spark_scores.totals.parquet"
    spark_totals, duck_totals = job.read_totals(), duck.read_totals()
    assert set(duck_totals["distribution"]) == {"exact", "normal", "gamma"}
    pd.testing.assert_frame_equal(spark_totals, duck_totals, check_exact=False, rtol=1e-9)
    # the same on any Spark table of customers: clv_spark.totals
    from clvlab.inference.uncertainty import parameter_draws
    from clvlab.models.totals import purchase_totals

    table = rfm.assign(tier=np.where(rfm["frequency"] > 2, "high", "low")).reset_index()
    got = clv_spark.totals(spark.createDataFrame(table), transaction, horizon=13.0, by="tier",
                           parameter_draws=8, seed=1).set_index("group")
    want = purchase_totals(transaction, rfm.assign(tier=table["tier"].to_numpy()), 13.0,
                           by="tier", parameter_draws=parameter_draws(transaction, 8, 1))
    np.testing.assert_allclose(got[["expected", "total_sd", "lower 90%", "upper 90%"]],
                               want[["expected", "total_sd", "lower 90%", "upper 90%"]], rtol=1e-9)


# --- dates as the pandas engine reads them, whatever the Spark session's settings --------------

@contextlib.contextmanager
def session_conf(spark, **settings):
    """Run with Spark SQL settings (dots written as underscores) changed, then put them back."""
    names = {key.replace("_", "."): value for key, value in settings.items()}
    before = {name: spark.conf.get(name, None) for name in names}
    try:
        for name, value in names.items():
            spark.conf.set(name, value)
        yield
    finally:
        for name, value in before.items():
            spark.conf.unset(name) if value is None else spark.conf.set(name, value)


def zone(spark, name):
    return session_conf(spark, spark_sql_session_timeZone=name)


def string_log(dates):
    """Three customers' purchases on the given date strings (one customer per third)."""
    ids = ["a", "b", "c"] * (len(dates) // 3 + 1)
    return pd.DataFrame({"customer_id": ids[:len(dates)], "date": list(dates),
                         "amount": np.arange(1.0, len(dates) + 1.0)})


def same_as_pandas(spark, log, **options):
    """The Spark engine's table equals the pandas engine's, attrs included."""
    options.setdefault("amount_col", "amount")
    want = clvlab.rfm_summary(log, engine="pandas", **options)
    got = clv_spark.rfm_summary(spark.createDataFrame(log), **options).to_pandas()
    assert_same_rfm(got.rename_axis(want.index.name), want)


def same_refusal(spark, log, **options):
    """Both engines refuse the log, naming the same column and rule."""
    with pytest.raises(clvlab.errors.DataValidationError) as pandas_error:
        clvlab.rfm_summary(log, engine="pandas", **options)
    with pytest.raises(clvlab.errors.DataValidationError) as spark_error:
        clv_spark.rfm_summary(spark.createDataFrame(log), **options)
    assert (spark_error.value.column, spark_error.value.rule) == \
        (pandas_error.value.column, pandas_error.value.rule)
    return spark_error.value


# Each log ends on a late hour, so that a shift of the day (or of the hour: the default
# observation end is the last timestamp) shows in T and in the window's attrs.
STRING_DATES = {
    # plain dates end in "-01", which a loose offset pattern takes for a UTC offset
    # (and both engines skip leading blanks)
    "plain dates": ["2024-03-01", "2024-03-02", "2024-03-05", "2024-03-08", " 2024-03-11",
                    "2024-03-20", "2024-03-21"],
    # fractions of a second count (the last timestamp is the default observation end)
    "naive date-times": ["2024-03-01 10:15:00", "2024-03-01T23:30", "2024-03-05 00:10:00",
                         "2024-03-08 13:00:00", "2024-03-11 02:00:00", "2024-03-20 09:00:00",
                         "2024-03-21 23:59:59.5"],
    "Z": ["2024-03-01T10:15:00Z", "2024-03-01T23:30:00Z", "2024-03-05T00:10:00Z",
          "2024-03-08T13:00:00Z", "2024-03-11T02:00:00Z", "2024-03-20T09:00:00Z",
          "2024-03-21T23:59:59.25Z"],
    "+05:30 and -08:00": ["2024-03-01T10:15:00+05:30", "2024-03-01T23:30:00-08:00",
                          "2024-03-05T00:10:00+05:30", "2024-03-08 13:00:00 -0800",
                          "2024-03-11T02:00:00+05:30", "2024-03-20T09:00:00-08:00",
                          "2024-03-21T23:59:59-08:00"],
}


@pytest.mark.parametrize("case", list(STRING_DATES))
@pytest.mark.parametrize("session_zone", ["Asia/Tokyo", "America/Los_Angeles"])
def test_string_dates_read_as_the_pandas_engine_reads_them_in_any_session_zone(spark, session_zone,
                                                                             case):
    log = string_log(STRING_DATES[case])
    with zone(spark, session_zone):
        for timezone in ("America/New_York", "Asia/Kolkata"):
            try:
                same_as_pandas(spark, log, timezone=timezone)
                same_as_pandas(spark, log, timezone=timezone, calibration_end="2024-03-10")
            except AssertionError as error:
                raise AssertionError(f"user time zone {timezone}: {error}") from None


def test_offsets_are_kept_when_the_session_types_timestamps_without_zone(spark):
    # spark.sql.timestampType=TIMESTAMP_NTZ turns "CAST(x AS TIMESTAMP)" into a cast that drops
    # the offset, and makes to_timestamp return wall-clock times
    with session_conf(spark, spark_sql_timestampType="TIMESTAMP_NTZ",
                      spark_sql_session_timeZone="Asia/Tokyo"):
        same_as_pandas(spark, string_log(STRING_DATES["+05:30 and -08:00"]),
                       timezone="America/New_York")
        same_as_pandas(spark, string_log(["2024-03-01 10:15", "2024-03-05 23:30",
                                          "2024-03-10 02:30", "2024-03-20 09:00"]),
                       date_format="%Y-%m-%d %H:%M", time_unit="h", timezone="Asia/Kolkata")


FORMATTED_DATES = {
    # 02:30 on 2024-03-10 does not exist in Los Angeles (clocks jump from 2:00 to 3:00): parsed
    # in the session's zone it would become 03:30
    "a wall-clock time the session's zone skips": (
        ["2024-03-01 10:15:00", "2024-03-05 23:30:00", "2024-03-10 02:30:00", "2024-03-20 09:00:00"],
        dict(date_format="%Y-%m-%d %H:%M:%S", time_unit="h", timezone="Asia/Tokyo")),
    "literal letters": (["2024-03-01T10h15", "2024-03-05T23h30", "2024-03-20T09h00"],
                        dict(date_format="%Y-%m-%dT%Hh%M")),
    # strptime reads one-digit months and days
    "one-digit fields": (["2024-3-1", "2024-3-5", "2024-03-20", "2024-4-2"],
                         dict(date_format="%Y-%m-%d")),
    # numbers are dates only with a format, read as their text
    "numbers": ([20240301, 20240305, 20240320, 20240402], dict(date_format="%Y%m%d")),
}


@pytest.mark.parametrize("case", list(FORMATTED_DATES))
def test_date_formats_are_read_as_the_pandas_engine_reads_them(spark, case):
    dates, options = FORMATTED_DATES[case]
    with zone(spark, "America/Los_Angeles"):
        same_as_pandas(spark, string_log(dates), **options)


def test_numbers_without_a_date_format_are_refused(spark):
    error = same_refusal(spark, string_log([20240301, 20240305, 20240320]))
    assert "date_format" in error.rule and error.row["date"] in (20240301, 20240305, 20240320)


def test_a_naive_date_time_among_zoned_ones_is_refused(spark):
    with zone(spark, "Asia/Tokyo"):
        error = same_refusal(spark, string_log(["2024-03-01T10:00:00+05:30", "2024-03-02 10:00:00",
                                                "2024-03-05T10:00:00Z"]))
    assert error.column == "date" and "mix" in error.rule
    assert error.row["date"] == "2024-03-02 10:00:00"


# text Spark's cast reads but pandas' ISO 8601 parser refuses: trailing blanks, zone names, a
# signed year, a trailing newline
@pytest.mark.parametrize("bad", ["2024-03-02 ", "2024-03-02T10:00:00 UTC",
                                 "2024-03-02T10:00:00Europe/Berlin", "+2024-03-02", "2024-03-02\n"])
def test_dates_the_pandas_engine_refuses_are_refused(spark, bad):
    with zone(spark, "Asia/Tokyo"):
        error = same_refusal(spark, string_log(["2024-03-01", bad, "2024-03-05"]))
    assert error.column == "date" and "ISO 8601" in error.rule and error.row["date"] == bad


def test_a_missing_date_is_named_as_missing(spark):
    error = same_refusal(spark, string_log(["2024-03-01", None, "2024-03-05"]))
    assert error.column == "date" and error.rule == "date is missing"


def test_the_scoring_jobs_reader_keeps_wall_clock_times(spark, tmp_path):
    # naive times from pandas or from a CSV are wall-clock times in the user's zone (as the
    # pandas engine reads them), not instants in the session's zone; 02:30 on 2024-03-10 does
    # not exist in Los Angeles
    dates = ["2024-03-01 10:15:00", "2024-03-05 23:30:00", "2024-03-10 02:30:00",
             "2024-03-20 09:00:00", "2024-03-21 22:00:00"]
    csv = tmp_path / "log.csv"
    string_log(dates).to_csv(csv, index=False)
    frame = string_log(dates).assign(date=lambda t: pd.to_datetime(t["date"], format="ISO8601"))
    options = dict(amount_col="amount", timezone="America/New_York", time_unit="h")
    with zone(spark, "America/Los_Angeles"):
        for source in (frame, str(csv)):
            want = clvlab.rfm_summary(source, engine="pandas", **options)
            got = clv_spark.rfm_summary(clv_spark.read_log(spark, source), **options).to_pandas()
            assert_same_rfm(got.rename_axis(want.index.name), want)
        mixed = tmp_path / "mixed.csv"
        string_log(dates[:2] + ["2024-03-10T02:30:00+05:30"]).to_csv(mixed, index=False)
        with pytest.raises(clvlab.errors.DataValidationError, match="mix"):
            clv_spark.rfm_summary(clv_spark.read_log(spark, str(mixed)), **options)


def test_withdrawn_ids_match_as_pandas_matches_them(spark):
    # pandas compares str(id) with the list: 12345678.0 is "12345678.0", which Spark's own text of
    # the double ("1.2345678E7") is not
    log = pd.DataFrame({"customer_id": [1.0, 12345678.0, 2.5, 1.0, 12345678.0],
                        "date": ["2024-03-01", "2024-03-02", "2024-03-03", "2024-03-09",
                                 "2024-03-10"], "amount": [1.0, 2.0, 3.0, 4.0, 5.0]})
    for withdrawn in (["12345678.0"], ["1", "2.5"]):
        same_as_pandas(spark, log, withdrawn=withdrawn)


def test_an_hourly_unit_on_dates_without_times_is_refused(spark):
    error = same_refusal(spark, string_log(["2024-03-01", "2024-03-02", "2024-03-05"]),
                         time_unit="h")
    assert error.column == "date" and "midnight" in error.rule


def test_a_lenient_legacy_date_parser_is_refused(spark):
    with session_conf(spark, spark_sql_legacy_timeParserPolicy="LEGACY"):
        with pytest.raises(clvlab.ClvlabError, match="timeParserPolicy"):
            clv_spark.rfm_summary(spark.createDataFrame(string_log(["2024-02-30", "2024-03-01"])),
                                  date_format="%Y-%m-%d")


def test_parquet_logs_keep_wall_clock_times_whatever_the_session_infers(spark, tmp_path):
    # with inferTimestampNTZ off, Spark reads a naive Parquet column as instants at UTC
    dates = ["2024-03-01 10:15:00", "2024-03-05 23:30:00.25", "2024-03-10 02:30:00",
             "2024-03-20 09:00:00", "2024-03-21 22:00:00"]
    path = tmp_path / "log.parquet"
    string_log(dates).assign(date=lambda t: pd.to_datetime(t["date"], format="ISO8601")
                             .astype("datetime64[us]")).to_parquet(path)
    options = dict(amount_col="amount", timezone="Asia/Tokyo", time_unit="h")
    want = clvlab.rfm_summary(str(path), engine="pandas", **options)
    with session_conf(spark, spark_sql_session_timeZone="America/Los_Angeles",
                      spark_sql_parquet_inferTimestampNTZ_enabled="false"):
        got = clv_spark.rfm_summary(clv_spark.read_log(spark, str(path)), **options).to_pandas()
    assert_same_rfm(got.rename_axis(want.index.name), want)
    nanos = tmp_path / "nanos.parquet"
    string_log(dates).assign(date=lambda t: pd.to_datetime(t["date"], format="ISO8601")
                             .astype("datetime64[ns]")).to_parquet(nanos)
    with pytest.raises(clvlab.errors.DataValidationError, match="coerce_timestamps"):
        clv_spark.read_log(spark, str(nanos))


def test_a_nan_customer_id_is_missing(spark):
    # NaN, not NULL, as a Parquet or CSV log of float ids holds it
    rows = [(1.0, "2024-03-01"), (float("nan"), "2024-03-02"), (2.0, "2024-03-05")]
    log = pd.DataFrame(rows, columns=["customer_id", "date"])
    with pytest.raises(clvlab.errors.DataValidationError) as pandas_error:
        clvlab.rfm_summary(log, engine="pandas")
    with pytest.raises(clvlab.errors.DataValidationError) as spark_error:
        clv_spark.rfm_summary(spark.createDataFrame(rows, "customer_id double, date string"))
    assert (spark_error.value.column, spark_error.value.rule) == \
        (pandas_error.value.column, pandas_error.value.rule) == ("customer_id", "customer id is missing")


def test_csv_logs_with_other_delimiters_and_decimal_commas_read_as_pandas_reads_them(spark,
                                                                                      tmp_path):
    # a tab-separated file (sniffed, as pandas does) and a European one (";" and "12,50")
    log = string_log(["2024-03-01", "2024-03-02", "2024-03-05", "2024-03-08", "2024-03-20"])
    log["amount"] = [12.5, 3.25, 7.0, 1.5, 2.75]
    tabs = tmp_path / "log.tsv"
    log.to_csv(tabs, sep="\t", index=False)
    european = tmp_path / "log.csv"
    log.to_csv(european, sep=";", decimal=",", index=False)
    for path, csv_options in ((tabs, {}), (european, dict(delimiter=";", decimal=","))):
        want = clvlab.rfm_summary(str(path), engine="pandas", amount_col="amount", **csv_options)
        frame = clv_spark.read_log(spark, str(path), amount_col="amount", **csv_options)
        got = clv_spark.rfm_summary(frame, amount_col="amount").to_pandas()
        assert_same_rfm(got.rename_axis(want.index.name), want)
