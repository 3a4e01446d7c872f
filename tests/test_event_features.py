"""Features beyond RFM from event logs and basket sizes (clvlab.data.events), their DuckDB and
Spark engines, and the engagement simulator (clvlab.data.simulate_events).

Conventions under test: the cutoff is inclusive; a window of d days is (cutoff - d days,
cutoff], so an event exactly d days before the cutoff is outside it; E_trend is
count_30d / (count_90d / 3); unknown is NaN, counts are 0."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from clvlab.core.errors import ClvlabError, ClvlabWarning, DataValidationError
from clvlab.data.events import basket_features, check_events, event_features, feature_name
from clvlab.data.simulate_events import simulate_engagement

from conftest import scramble_after

CUTOFF = "2024-03-31 12:00"


@pytest.fixture(scope="module")
def tiny_log() -> pd.DataFrame:
    """Customer 1's visits sit on the edges of the windows; customer 2 has a return and a
    visit after the cutoff; customer 3 only acts after the cutoff."""
    rows = [(1, "2024-03-31 12:00", "visit", 1.0),    # at the cutoff: counts, in every window
            (1, "2024-03-24 12:00:01", "visit", 2.0),  # 1 s inside the 7-day window
            (1, "2024-03-24 12:00", "visit", 4.0),     # exactly 7 days before: outside it
            (1, "2024-03-01 12:00", "visit", 8.0),     # exactly 30 days before: outside it
            (1, "2024-01-01", "e-mail open", 16.0),    # 90.5 days before: outside 90 days
            (2, "2024-03-30 12:00", "return", -25.0),  # returns may carry negative values
            (2, "2024-03-31 12:00:01", "visit", 64.0),  # 1 s after the cutoff: ignored
            (3, "2024-04-02", "visit", 128.0)]
    return pd.DataFrame(rows, columns=["customer_id", "date", "event", "amount"])


def test_features_by_hand_on_the_edges_of_the_windows(tiny_log):
    got = event_features(tiny_log, CUTOFF, value_col="amount", time_unit="D")
    assert got.index.tolist() == [1, 2] and got.index.name == "customer_id"
    per_event = ["count", "count_7d", "count_30d", "count_90d", "since_last", "trend", "value",
                 "value_7d", "value_30d", "value_90d"]
    assert list(got.columns) == [f"{e}_{c}" for e in ("e_mail_open", "return", "visit")
                                 for c in per_event]
    visit = got.loc[1, [f"visit_{c}" for c in per_event]].to_numpy()
    # count 4; 7d: the cutoff and 1 s inside; 30d: + the one at exactly 7 days; 90d: all 4
    # trend: 3 in 30 days / (4 in 90 days / 3); values: 1+2+4+8, 1+2, 1+2+4, 15
    np.testing.assert_allclose(visit, [4, 2, 3, 4, 0.0, 3 / (4 / 3), 15, 3, 7, 15], rtol=1e-15)
    assert got.loc[1, "e_mail_open_count"] == 1 and got.loc[1, "e_mail_open_count_90d"] == 0
    assert got.loc[1, "e_mail_open_since_last"] == pytest.approx(90.5)
    assert np.isnan(got.loc[1, "e_mail_open_trend"])  # nothing in 90 days: no pace to compare
    assert got.loc[2, "return_since_last"] == 1.0 and got.loc[2, "return_value"] == -25.0
    assert got.loc[2, "visit_count"] == 0 and np.isnan(got.loc[2, "visit_since_last"])
    assert got.loc[2, "visit_value"] == 0.0
    counts = [c for c in got.columns if "_count" in c]
    assert (got[counts].dtypes == np.int64).all()
    assert (got.drop(columns=counts).dtypes == np.float64).all()


def test_unknown_customers_get_zero_counts_and_unknown_recency(tiny_log):
    got = event_features(tiny_log, CUTOFF, customers=[3, 99, 1], windows_days=[30], time_unit="W")
    assert got.index.tolist() == [3, 99, 1]
    assert got.loc[[3, 99], ["visit_count", "visit_count_30d", "return_count"]].eq(0).all().all()
    assert got.loc[[3, 99], ["visit_since_last", "visit_trend"]].isna().all().all()
    assert got.loc[1, "visit_since_last"] == 0.0
    assert got.loc[1, "e_mail_open_since_last"] == pytest.approx(90.5 / 7)
    with pytest.raises(ClvlabError, match="repeated"):
        event_features(tiny_log, CUTOFF, customers=[1, 1])
    with pytest.raises(ClvlabError, match="no customer would match"):
        event_features(tiny_log, CUTOFF, customers=["1", "2"])


def test_nothing_after_the_cutoff_leaks_in(tiny_log):
    log = pd.concat([tiny_log] * 3, ignore_index=True)
    before = event_features(log, CUTOFF, value_col="amount")
    dated = log.assign(date=pd.to_datetime(log["date"], format="ISO8601"))
    after = event_features(scramble_after(dated, CUTOFF), CUTOFF, value_col="amount")
    pd.testing.assert_frame_equal(before, after)


def test_event_types_fix_the_columns_and_names_are_sanitised(tiny_log):
    assert feature_name("e-mail open") == "e_mail_open" and feature_name("Ok_1") == "Ok_1"
    got = event_features(tiny_log, CUTOFF, event_types=["visit", "call centre"], windows_days=())
    assert list(got.columns) == [f"{e}_{c}" for e in ("call_centre", "visit")
                                 for c in ("count", "since_last", "trend")]
    assert got["call_centre_count"].eq(0).all() and got.index.tolist() == [1]
    with pytest.raises(ClvlabError, match="both become"):
        event_features(tiny_log, CUTOFF, event_types=["a b", "a-b"])


def test_check_events_normalises_the_log():
    log = pd.DataFrame({"cid": ["a", "b"], "when": ["2024-03-01T10:00+01:00", "2024-03-02T00:00Z"],
                        "kind": [7, 8], "v": [1, -2]})
    got = check_events(log, customer_col="cid", date_col="when", event_col="kind", value_col="v",
                       timezone="Europe/Berlin")
    assert list(got.columns) == ["cid", "ts", "event", "value"]
    assert got["ts"].tolist() == [pd.Timestamp("2024-03-01 10:00"), pd.Timestamp("2024-03-02 01:00")]
    assert got["event"].tolist() == ["7", "8"] and got["value"].dtype == np.float64


def assert_same_features(left: pd.DataFrame, right: pd.DataFrame) -> None:
    """Counts and durations to the bit; sums up to summation order."""
    assert list(left.columns) == list(right.columns) and left.index.equals(right.index)
    assert left.index.dtype == right.index.dtype and left.index.name == right.index.name
    for column in left.columns:
        exact = not any(part in column for part in ("_value", "quantity_mean", "quantity_trend"))
        pd.testing.assert_series_equal(left[column], right[column], check_exact=exact, rtol=1e-12)


@pytest.fixture(scope="module")
def engagement():
    tx, events, truth = simulate_engagement(300, "2024-01-01", "2024-12-31", r=0.9, alpha=4.0,
                                            s=0.6, beta=10.0, email_rate=0.5, lead_weeks=2,
                                            quantities=True, seed=3)
    events["value"] = np.round(np.random.default_rng(0).normal(size=len(events)), 2)
    return tx, events, truth


@pytest.mark.parametrize("source", ["frame", "parquet", "csv"])
def test_duckdb_gives_the_pandas_engines_features(engagement, source, tmp_path):
    tx, events, truth = engagement
    if source != "frame":
        events_path, tx_path = tmp_path / f"events.{source}", tmp_path / f"tx.{source}"
        for frame, path in ((events, events_path), (tx, tx_path)):
            frame.to_parquet(path) if source == "parquet" else frame.to_csv(path, index=False)
        events, tx = str(events_path), str(tx_path)
    options = dict(value_col="value", customers=truth.index, time_unit="D")
    want = event_features(events, "2024-09-30 18:00", **options)
    assert want["visit_count"].sum() > 100 and want["email_open_count"].sum() > 100
    assert_same_features(want, event_features(events, "2024-09-30 18:00", engine="duckdb",
                                              **options))
    want = basket_features(tx, "2024-09-30")
    assert want["quantity_trend"].notna().sum() > 10
    assert_same_features(want, basket_features(tx, "2024-09-30", engine="duckdb"))


def test_engines_read_zoned_and_nanosecond_times_alike():
    log = pd.DataFrame({"customer_id": ["x", "x", "y"], "event": ["visit"] * 3,
                        "date": ["2024-03-31T23:30:00-04:00", "2024-04-01T03:30:01Z",
                                 "2024-03-01T00:00:00+00:00"]})
    options = dict(timezone="America/New_York", time_unit="h")
    want = event_features(log, "2024-03-31 23:30", **options)
    assert want.loc["x", "visit_count"] == 1 and want.loc["x", "visit_since_last"] == 0.0
    assert_same_features(want, event_features(log, "2024-03-31 23:30", engine="duckdb", **options))
    nanos = pd.DataFrame({"customer_id": [1, 1], "event": ["visit"] * 2, "date": pd.to_datetime(
        ["2024-03-31 11:59:59.9999995", "2024-03-01"], format="ISO8601").astype("datetime64[ns]")})
    want = event_features(nanos, CUTOFF, time_unit="h")
    assert want.loc[1, "visit_since_last"] == pytest.approx(1e-6 / 3600)  # floored to the us
    assert_same_features(want, event_features(nanos, CUTOFF, time_unit="h", engine="duckdb"))


def test_basket_features_by_hand():
    tx = pd.DataFrame({"customer_id": [1, 1, 1, 1, 2, 2, 3],
                       "date": ["2023-11-01", "2024-03-01", "2024-03-31", "2024-03-31",
                                "2024-03-01", "2024-04-01", "2024-04-02"],
                       "quantity": [6, 1, 2, 3, 0, 5, 4]})
    for engine in ("pandas", "duckdb"):
        got = basket_features(tx, "2024-03-31", customers=[1, 2, 3], engine=engine)
        assert list(got.columns) == ["quantity_mean", "quantity_last", "quantity_trend",
                                     "quantity_max"]
        # customer 1: mean 12/4; the last instant holds 2 + 3; the last 90 days 6/3 over 3
        np.testing.assert_allclose(got.loc[1].to_numpy(), [3.0, 5.0, 2 / 3, 6.0], rtol=1e-15)
        assert got.loc[2, "quantity_mean"] == 0 and np.isnan(got.loc[2, "quantity_trend"])
        assert got.loc[3].isna().all()  # no order by the cutoff: unknown
    with pytest.raises(DataValidationError, match="'quantity': quantity is negative.*example row"):
        basket_features(tx.assign(quantity=[1, -1, 1, 1, 1, 1, 1]), "2024-03-31")


BASE = pd.DataFrame({"customer_id": [1, 2, 3], "date": ["2024-03-01", "2024-03-02", "2024-03-03"],
                     "event": ["visit", "visit", "call"], "amount": [1.0, 2.0, 3.0]})
BROKEN = {  # (column changed, new values or None to drop it, the rule's words)
    "missing column": ("event", None, "is missing from the event log.*did you mean 'event' -> 'evnt'"),
    "missing id": ("customer_id", [1, None, 3], "customer id is missing"),
    "missing date": ("date", ["2024-03-01", None, "2024-03-03"], "date is missing"),
    "unparseable date": ("date", ["2024-03-01", "05/06/2024", "2024-03-03"], "not a parseable date"),
    "digits date": ("date", ["2024-03-01", "20240302", "2024-03-03"], "numbers are not dates"),
    "empty event": ("event", ["visit", " ", "call"], "event name is missing or empty"),
    "no event": ("event", ["visit", None, "call"], "event name is missing or empty"),
    "float event": ("event", [1.5, 2.0, 3.0], "event name must be text"),
    "colliding events": ("event", ["e-mail", "e mail", "call"], "'e mail' and 'e-mail' both"),
    "text value": ("amount", ["1", "x", "3"], "value must be numeric"),
    "NaN value": ("amount", [1.0, np.nan, 3.0], "value is missing or NaN"),
    "infinite value": ("amount", [1.0, np.inf, 3.0], "value is infinite"),
}


@pytest.mark.parametrize("engine", ["pandas", "duckdb"])
@pytest.mark.parametrize("case", list(BROKEN))
def test_each_broken_rule_names_the_column_and_shows_a_row(case, engine):
    column, values, rule = BROKEN[case]
    log = BASE.drop(columns=column).assign(evnt="x") if values is None else \
        BASE.assign(**{column: values})
    with pytest.raises(DataValidationError, match=rule) as caught:
        event_features(log, CUTOFF, value_col="amount", engine=engine)
    assert caught.value.column == column and str(caught.value).startswith(f"column {column!r}")
    assert values is None or "example row: {" in str(caught.value)


@pytest.mark.parametrize("engine", ["pandas", "duckdb"])
def test_event_names_that_differ_only_in_case_are_warned_of(tiny_log, engine):
    log = tiny_log.assign(event=tiny_log["event"].replace({"return": "Visit"}))
    with pytest.warns(ClvlabWarning, match="event names 'Visit' and 'visit' differ only in case"):
        got = event_features(log, CUTOFF, engine=engine)
    assert {"Visit_count", "visit_count"} <= set(got.columns)  # kept apart, as written


def test_options_are_checked(tiny_log):
    with pytest.raises(ClvlabError, match="'pandas', 'duckdb' or 'spark'"):
        event_features(tiny_log, CUTOFF, engine="polars")
    with pytest.raises(ClvlabError, match="cutoff"):
        event_features(tiny_log, None)
    with pytest.raises(ClvlabError, match="cutoff='31/03/2024' is not a date"):
        event_features(tiny_log, "31/03/2024")
    with pytest.raises(ClvlabError, match="whole numbers of days"):
        event_features(tiny_log, CUTOFF, windows_days=(7, 2.5))
    with pytest.raises(DataValidationError, match="the event log is empty"):
        event_features(tiny_log.iloc[:0], CUTOFF, engine="duckdb")


@pytest.mark.once
@pytest.mark.slow
def test_spark_gives_the_pandas_engines_features(spark, engagement, tmp_path):
    from clvlab.data.rfm_spark import read_log

    tx, events, truth = engagement
    options = dict(value_col="value", customers=truth.index, time_unit="D")
    want = event_features(events, "2024-09-30 18:00", **options)
    assert_same_features(want, event_features(read_log(spark, events), "2024-09-30 18:00",
                                              engine="spark", **options))
    tx.to_csv(tmp_path / "tx.csv", index=False)
    assert_same_features(basket_features(tx, "2024-09-30"), basket_features(
        str(tmp_path / "tx.csv"), "2024-09-30", engine="spark", connection=spark))
    with pytest.raises(DataValidationError, match="'e mail' and 'e-mail' both.*example row"):
        event_features(BASE.assign(event=["e-mail", "e mail", "call"]), CUTOFF, engine="spark",
                       connection=spark)


def test_simulator_is_reproducible_and_engagement_fades_before_dropout():
    options = dict(r=0.9, alpha=4.0, s=0.6, beta=10.0, email_rate=0.3, lead_weeks=3.0)
    tx, events, truth = simulate_engagement(400, "2024-01-01", "2024-12-31", seed=7, **options)
    again = simulate_engagement(400, "2024-01-01", "2024-12-31", seed=7, **options)
    for left, right in zip((tx, events, truth), again):
        pd.testing.assert_frame_equal(left, right)
    assert not tx.equals(simulate_engagement(400, "2024-01-01", "2024-12-31", seed=8, **options)[0])
    assert set(events["event"]) == {"visit", "email_open"}
    assert list(tx.columns) == ["customer_id", "date", "amount"]
    end = pd.Timestamp("2024-12-31")
    assert tx["date"].max() <= end and events["date"].max() <= end
    joined = events.join(truth, on="customer_id")
    assert (joined["date"] <= joined["dropout"] - pd.Timedelta(weeks=3)).all()
    assert (joined["date"] >= joined["acquired"]).all()
    bought = tx.join(truth, on="customer_id")
    assert (bought["date"] <= bought["dropout"]).all() and (bought["date"] >= bought["acquired"]).all()
    first = tx.groupby("customer_id")["date"].min()
    assert first.equals(truth["acquired"].rename("date"))  # acquisition is the first purchase
    assert truth["acquired"].max() <= pd.Timestamp("2024-07-02")  # the first half of the year
    # engagement that never stops goes on after dropout for some customers
    _, lasting, truth = simulate_engagement(400, "2024-01-01", "2024-12-31", seed=7,
                                            **{**options, "email_rate": 0.0}, visits_stop="never")
    assert (lasting.join(truth, on="customer_id").eval("date > dropout")).any()
    with pytest.raises(ClvlabError, match="visits_stop"):
        simulate_engagement(10, "2024-01-01", "2024-12-31", visits_stop="sometimes", **options)
