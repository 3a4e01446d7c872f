"""The documented rules of rfm_summary, each on a small hand-made log, by both engines."""

from __future__ import annotations

import warnings

import pandas as pd
import pytest

import clvlab
from clvlab import ClvlabWarning

from conftest import both_engines


def log(*rows, columns=("customer_id", "date", "amount")) -> pd.DataFrame:
    frame = pd.DataFrame(list(rows), columns=list(columns))
    frame["date"] = pd.to_datetime(frame["date"], format="ISO8601")
    return frame


def test_frequency_recency_T_and_spend_exclude_the_first_purchase():
    rfm = both_engines(log(("a", "2024-01-01", 10.0), ("a", "2024-01-05", 20.0),
                           ("a", "2024-01-11", 40.0), ("b", "2024-01-03", 5.0)),
                       amount_col="amount", observation_end="2024-01-21")
    assert rfm.loc["a"].to_dict() == {"frequency": 2, "recency": 10.0, "T": 20.0,
                                      "monetary_value": 30.0}
    assert rfm.loc["b"].to_dict() == {"frequency": 0, "recency": 0.0, "T": 18.0,
                                      "monetary_value": 0.0}
    assert rfm["frequency"].dtype == "int64" and rfm.index.name == "customer_id"


def test_same_day_purchases_merge_and_their_amounts_add():
    rfm = both_engines(log(("a", "2024-01-01 09:00", 10.0), ("a", "2024-01-01 18:30", 5.0),
                           ("a", "2024-01-02 08:00", 7.0), ("a", "2024-01-02 20:00", 3.0)),
                       amount_col="amount")
    assert rfm.loc["a", "frequency"] == 1
    assert rfm.loc["a", "monetary_value"] == 10.0
    # times are those of the period starts: recency is a whole number of days
    assert rfm.loc["a", "recency"] == 1.0


def test_hours_merge_within_the_hour():
    rfm = both_engines(log(("a", "2024-01-01 09:05", 1.0), ("a", "2024-01-01 09:55", 1.0),
                           ("a", "2024-01-01 12:10", 1.0)), amount_col="amount", time_unit="h",
                       observation_end="2024-01-01 15:00")
    assert rfm.loc["a"].to_dict() == {"frequency": 1, "recency": 3.0, "T": 6.0,
                                      "monetary_value": 1.0}


def test_cut_is_on_raw_timestamps_and_midnight_is_calibration():
    rfm = both_engines(log(("a", "2024-01-01", 1.0), ("a", "2024-01-10 00:00", 1.0),
                           ("a", "2024-01-10 10:00", 1.0), ("a", "2024-01-12", 1.0)),
                       amount_col="amount", calibration_end="2024-01-10")
    # the midnight purchase is in calibration; the 10:00 one the same day is in the holdout
    assert rfm.loc["a", "frequency"] == 1
    assert rfm.loc["a", "recency"] == 9.0 and rfm.loc["a", "T"] == 9.0
    assert rfm.loc["a", "frequency_holdout"] == 2
    assert rfm.loc["a", "duration_holdout"] == 2.0


def test_customers_first_seen_after_the_cut_are_left_out_and_counted():
    rfm = both_engines(log(("a", "2024-01-01", 1.0), ("a", "2024-01-20", 2.0),
                           ("b", "2024-01-15", 1.0)),
                       amount_col="amount", calibration_end="2024-01-10")
    assert list(rfm.index) == ["a"]
    assert rfm.attrs["clvlab"]["customers_first_seen_after_cut"] == 1
    assert rfm.loc["a", "frequency_holdout"] == 1
    assert rfm.loc["a", "monetary_value_holdout"] == 2.0


def test_rows_after_observation_end_are_ignored():
    rfm = both_engines(log(("a", "2024-01-01", 1.0), ("a", "2024-01-05", 1.0),
                           ("a", "2024-02-01", 1.0)),
                       amount_col="amount", calibration_end="2024-01-03",
                       observation_end="2024-01-10")
    assert rfm.loc["a", "frequency_holdout"] == 1
    assert rfm.loc["a", "duration_holdout"] == 7.0


def test_observation_end_may_lie_after_the_data_for_scoring_today():
    rfm = both_engines(log(("a", "2024-01-01", 1.0)), amount_col="amount",
                       observation_end="2024-03-01")
    assert rfm.loc["a", "T"] == 60.0


def test_customer_first_seen_on_the_last_day_has_age_zero():
    rfm = both_engines(log(("a", "2024-01-01", 1.0), ("b", "2024-01-05", 1.0)), amount_col="amount")
    assert rfm.loc["b"].to_dict() == {"frequency": 0, "recency": 0.0, "T": 0.0, "monetary_value": 0.0}
    clvlab.validate_rfm(rfm)  # and such a table passes validation


def test_zero_value_purchases_are_transactions():
    rfm = both_engines(log(("a", "2024-01-01", 10.0), ("a", "2024-01-02", 0.0),
                           ("a", "2024-01-03", 4.0)), amount_col="amount")
    assert rfm.loc["a", "frequency"] == 2
    assert rfm.loc["a", "monetary_value"] == 2.0


def test_refunds_net_within_the_day_and_never_count_as_purchases():
    frame = log(("a", "2024-01-01", 10.0), ("a", "2024-01-02", 30.0), ("a", "2024-01-02", -10.0),
                ("a", "2024-01-04", -5.0),  # refund-only day: set aside
                ("a", "2024-01-06", 4.0), ("a", "2024-01-06", -9.0),  # refund > purchase: value 0
                ("b", "2024-01-01", 3.0))
    with pytest.warns(ClvlabWarning, match="1 customer-periods held only refunds.*1 transactions"):
        rfm = clvlab.rfm_summary(frame, amount_col="amount", engine="pandas")
    with pytest.warns(ClvlabWarning):
        assert rfm.equals(clvlab.rfm_summary(frame, amount_col="amount", engine="duckdb"))
    assert rfm.loc["a"].to_dict() == {"frequency": 2, "recency": 5.0, "T": 5.0,
                                      "monetary_value": 10.0}  # (20 + 0) / 2
    assert rfm.attrs["clvlab"]["refund_only_periods"] == 1
    assert rfm.attrs["clvlab"]["negative_periods_zeroed"] == 1


def test_a_refund_does_not_move_the_first_purchase():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ClvlabWarning)
        rfm = both_engines(log(("a", "2023-12-20", -5.0), ("a", "2024-01-01", 10.0),
                               ("a", "2024-01-03", 1.0)), amount_col="amount")
    assert rfm.loc["a", "T"] == 2.0 and rfm.loc["a", "frequency"] == 1


def test_without_amounts_there_are_no_spend_columns():
    rfm = both_engines(log(("a", "2024-01-01", 1.0), ("a", "2024-01-03", 1.0))[["customer_id", "date"]],
                       calibration_end="2024-01-02")
    assert list(rfm.columns) == ["frequency", "recency", "T", "frequency_holdout", "duration_holdout"]


def test_zoned_timestamps_are_cut_into_days_of_the_chosen_time_zone():
    # 23:30 UTC on Jan 1 and 00:30 UTC on Jan 2 are both Jan 2 in Berlin (UTC+1): one transaction
    frame = pd.DataFrame({"customer_id": [1, 1, 1],
                          "date": pd.to_datetime(["2024-01-01 23:30", "2024-01-02 00:30",
                                                  "2024-01-05 12:00"]).tz_localize("UTC"),
                          "amount": [1.0, 2.0, 3.0]})
    in_berlin = both_engines(frame, amount_col="amount", timezone="Europe/Berlin")
    assert in_berlin.loc[1, "frequency"] == 1 and in_berlin.loc[1, "recency"] == 3.0
    in_utc = both_engines(frame, amount_col="amount")
    assert in_utc.loc[1, "frequency"] == 2


def test_naive_cut_is_read_in_the_chosen_time_zone_and_zoned_cut_is_converted():
    frame = pd.DataFrame({"customer_id": [1, 1, 1],
                          "date": pd.to_datetime(["2024-01-01 08:00", "2024-01-03 08:00",
                                                  "2024-01-06 08:00"]).tz_localize("Asia/Tokyo"),
                          "amount": [1.0, 1.0, 1.0]})
    naive_cut = both_engines(frame, timezone="Asia/Tokyo", calibration_end="2024-01-03 08:00")
    zoned_cut = both_engines(frame, timezone="Asia/Tokyo",
                             calibration_end=pd.Timestamp("2024-01-02 23:00", tz="UTC"))
    assert naive_cut.loc[1, "frequency"] == zoned_cut.loc[1, "frequency"] == 1


def test_iso_text_dates_with_offsets_are_converted():
    frame = pd.DataFrame({"customer_id": [1, 1],
                          "date": ["2024-01-01T23:30:00+00:00", "2024-01-02T00:30:00+01:00"]})
    rfm = both_engines(frame)  # both are 23:30 UTC on Jan 1: one transaction
    assert rfm.loc[1, "frequency"] == 0


def test_string_customer_ids_keep_their_type_and_sort():
    rfm = both_engines(log(("b", "2024-01-02", 1.0), ("a", "2024-01-01", 1.0)))
    assert list(rfm.index) == ["a", "b"]
