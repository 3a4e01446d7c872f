"""Covariate paths: pieces of a small hand-made example computed by hand, repeat purchases
against frequency, merging (exact: the same covariate at every instant, the same lengths and
counts), the engines against each other (pandas, DuckDB on a DataFrame, files and a relation,
Spark), and CLVTools' apparel data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import clvlab
from clvlab.core.errors import ClvlabError, ClvlabWarning, DataValidationError
from clvlab.data.covariate_panel import seasonal_covariates
from clvlab.data.covariate_paths import covariate_paths

from conftest import SHARED_DATA

APPAREL = SHARED_DATA / "apparel"
CAL = "2024-01-31"  # a Wednesday; the panel's weeks start on Mondays

#: a buys Wed 01-03, 01-10, Sat 01-20, Sun 01-28 and has a refund-only day 01-25; b buys Mon
#: 01-15 twice (one merged purchase), Wed 01-24 and after the cut; c first buys on 01-31 (T = 0)
LOG = pd.DataFrame({
    "customer_id": ["a", "a", "a", "a", "a", "b", "b", "b", "c", "b"],
    "date": ["2024-01-03", "2024-01-10", "2024-01-20", "2024-01-25", "2024-01-28",
             "2024-01-15", "2024-01-15", "2024-01-24", "2024-01-31", "2024-02-05"],
    "amount": [10.0, 5.0, 5.0, -3.0, 7.0, 8.0, 1.0, 4.0, 9.0, 2.0]})

X = {"a": [1, 1, 2, 2, 2, 3], "b": [0, 0, 5, 5, 6, 6], "c": [0, 0, 0, 0, 7, 7]}


@pytest.fixture(scope="module")
def rfm() -> pd.DataFrame:
    with pytest.warns(ClvlabWarning, match="held only refunds"):
        table = clvlab.rfm_summary(LOG, amount_col="amount", time_unit="W", calibration_end=CAL)
    assert table["frequency"].tolist() == [3, 1, 0]
    return table


@pytest.fixture(scope="module")
def panel() -> pd.DataFrame:
    weeks = pd.date_range("2024-01-01", periods=6, freq="7D")  # Mondays 01-01 ... 02-05
    return pd.DataFrame({"customer_id": np.repeat(list(X), 6), "period": np.tile(weeks, 3),
                         "x": np.concatenate(list(X.values())).astype(np.int64),
                         "segment": "s1"})


def paths_of(panel, rfm, **kwargs):
    return covariate_paths(panel, rfm, transactions=LOG, amount_col="amount", **kwargs)


def expected(rows) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["customer", "start", "end", "repeat_purchases", "x"]) \
        .assign(segment="s1")


def assert_table(got: pd.DataFrame, want: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(got.reset_index(drop=True), want, check_exact=True,
                                  check_dtype=False, check_index_type=False)


def test_hand_computed_pieces_without_merging(rfm, panel):
    """a's first purchase is Wed 01-03: its week gives [0, 5/7); T = 4 weeks ends in the week of
    01-29 at calibration_end (Wed 01-31). Refund-only 01-25 is no purchase; a's Sunday 01-28
    purchase is in the week of 01-22. c's path has length 0: one piece [0, 0]."""
    paths = paths_of(panel, rfm, merge=False)
    assert_table(paths.table, expected([
        ("a", 0, 5 / 7, 0, 1), ("a", 5 / 7, 12 / 7, 1, 1), ("a", 12 / 7, 19 / 7, 1, 2),
        ("a", 19 / 7, 26 / 7, 1, 2), ("a", 26 / 7, 4.0, 0, 2),
        ("b", 0, 1, 0, 5), ("b", 1, 2, 1, 5), ("b", 2, 16 / 7, 0, 6),
        ("c", 0, 0, 0, 7)]))
    assert paths.table["repeat_purchases"].dtype == np.int64
    assert paths.horizon == 0.0 and paths.path_end == pd.Timestamp(CAL)
    assert paths.offsets().tolist() == [0, 5, 8, 9]


def test_hand_computed_pieces_merged(rfm, panel):
    paths = paths_of(panel, rfm)
    assert_table(paths.table, expected([
        ("a", 0, 12 / 7, 1, 1), ("a", 12 / 7, 4.0, 2, 2),
        ("b", 0, 2, 1, 5), ("b", 2, 16 / 7, 0, 6), ("c", 0, 0, 0, 7)]))
    ends = paths.table.groupby("customer")["end"].last()
    assert (ends.to_numpy() == rfm["T"].to_numpy()).all()  # exactly T, bit for bit


def test_hand_computed_pieces_to_a_horizon(rfm, panel):
    """Horizon 1 week: paths run to Wed 02-07. The week of 01-29 is split at calibration_end;
    pieces after it never merge with pieces before it, but do with each other (b, c)."""
    paths = paths_of(panel, rfm, horizon=1)
    t_b = rfm.loc["b", "T"]
    assert_table(paths.table, expected([
        ("a", 0, 12 / 7, 1, 1), ("a", 12 / 7, 4.0, 2, 2), ("a", 4.0, 33 / 7, 0, 2),
        ("a", 33 / 7, 5.0, 0, 3),
        ("b", 0, 2, 1, 5), ("b", 2, t_b, 0, 6), ("b", t_b, t_b + 1, 0, 6),
        ("c", 0, 1, 0, 7)]))
    assert paths.horizon == 1.0 and paths.path_end == pd.Timestamp("2024-02-07")
    # a repr one reads (the dataclass's printed the whole table)
    assert repr(paths).startswith("<CovariatePaths: 8 pieces for 3 customers; covariates [")
    assert "path end 2024-02-07 00:00 (horizon 1)>" in repr(paths)


def test_repeat_purchases_must_match_frequency(rfm, panel):
    """Without amount_col (a table that does not record it: written by hand, or by an older
    clvlab) the refund-only day counts as a purchase: a has 4, the table 3."""
    unrecorded = rfm.copy()
    unrecorded.attrs = {"clvlab": {k: v for k, v in rfm.attrs["clvlab"].items()
                                   if k != "amount_col"}}
    with pytest.raises(DataValidationError, match="do not match the RFM table") as info:
        covariate_paths(panel, unrecorded, transactions=LOG)
    assert info.value.row == {"customer_id": "a", "frequency": 3}
    assert "amount_col" in info.value.hint
    with pytest.raises(DataValidationError, match="no purchase for customer 'c'"):
        covariate_paths(panel, rfm, transactions=LOG[LOG["customer_id"] != "c"],
                        amount_col="amount")


def test_transactions_from_a_file(rfm, panel, tmp_path):
    LOG.to_csv(tmp_path / "log.csv", index=False)
    from_file = covariate_paths(panel, rfm, transactions=tmp_path / "log.csv",
                                amount_col="amount").table
    pd.testing.assert_frame_equal(from_file, paths_of(panel, rfm).table)


def test_the_log_is_read_with_the_settings_the_table_records(rfm, panel, tmp_path):
    """rfm_summary records date_col, amount_col and date_format in attrs["clvlab"] (every
    engine, and a Parquet file through read_rfm), and covariate_paths reads the log with them:
    the same pieces as with the options repeated; a table without them reads rfm_summary's
    defaults (date_col "date"), which this log does not have."""
    from clvlab.data.rfm_io import read_rfm

    log = LOG.rename(columns={"customer_id": "Id", "date": "When", "amount": "Price"})
    log["When"] = pd.to_datetime(log["When"]).dt.strftime("%d/%m/%Y")
    options = dict(date_col="When", amount_col="Price", date_format="%d/%m/%Y")
    with pytest.warns(ClvlabWarning, match="held only refunds"):
        table = clvlab.rfm_summary(log, customer_col="Id", time_unit="W", calibration_end=CAL,
                                   **options)
    with pytest.warns(ClvlabWarning, match="held only refunds"):
        duckdb_table = clvlab.rfm_summary(log, customer_col="Id", time_unit="W",
                                          calibration_end=CAL, engine="duckdb", **options)
    info = table.attrs["clvlab"]
    assert {k: info[k] for k in options} == options and duckdb_table.attrs == table.attrs
    table.to_parquet(tmp_path / "rfm.parquet")
    from_file = read_rfm(tmp_path / "rfm.parquet")
    assert from_file.attrs == table.attrs
    want = paths_of(panel, rfm).table
    for summary in (table, from_file):
        got = covariate_paths(panel, summary, transactions=log, customer_col="customer_id").table
        pd.testing.assert_frame_equal(got, want)
        repeated = covariate_paths(panel, summary, transactions=log, customer_col="customer_id",
                                   **options).table
        pd.testing.assert_frame_equal(repeated, want)
    unrecorded = table.copy()
    unrecorded.attrs = {"clvlab": {k: v for k, v in info.items() if k not in options}}
    with pytest.raises(DataValidationError, match="missing from the transaction log") as error:
        covariate_paths(panel, unrecorded, transactions=log, customer_col="customer_id")
    assert error.value.column == "date"


def test_purchase_at_calibration_end_is_in_the_piece_ending_there():
    """calibration_end on a period boundary (Monday 01-29): a purchase that day is in the
    calibration period (date-only logs) and in the last piece before it, never after it."""
    log = pd.DataFrame({"customer_id": [1, 1, 1], "date": ["2024-01-08", "2024-01-29",
                                                           "2024-02-10"]})
    rfm = clvlab.rfm_summary(log, time_unit="W", calibration_end="2024-01-29")
    panel = pd.DataFrame({"customer_id": 1, "period": pd.date_range("2024-01-08", periods=4,
                                                                    freq="7D"),
                          "x": [1.0, 2.0, 3.0, 4.0]})
    table = covariate_paths(panel, rfm, transactions=log, horizon=1).table
    assert table["end"].tolist() == [1.0, 2.0, 3.0, 4.0]
    assert table["repeat_purchases"].tolist() == [0, 0, 1, 0]


def _value_at(table: pd.DataFrame, customer, times: np.ndarray, column: str) -> np.ndarray:
    rows = table[table["customer"] == customer]
    at = np.searchsorted(rows["end"].to_numpy(), times, side="right")
    return rows[column].to_numpy()[at]


def test_merging_is_exact_on_apparel_with_a_seasonal_calendar(apparel_paths_inputs):
    """Merged and unmerged paths: the same covariates at 2,000 random instants of every path,
    the same total length and repeat purchases per customer, contiguous pieces."""
    dyncov, rfm, log = apparel_paths_inputs
    calendar = seasonal_covariates("2005-01-02", "2007-12-30", "W", quarter=True,
                                   holidays={"christmas": "12-25"})
    kwargs = dict(transactions=log, calendar=calendar, period_col="Cov.Date", date_col="Date",
                  amount_col="Price", horizon=26)
    whole = covariate_paths(dyncov, rfm, merge=False, **kwargs).table
    merged = covariate_paths(dyncov, rfm, **kwargs).table
    assert len(merged) < len(whole) / 4
    for table in (whole, merged):
        by = table.groupby("customer", sort=False)
        assert (by["start"].first() == 0).all() and (by["end"].last() == 130).all()
        same = table["customer"].to_numpy()[1:] == table["customer"].to_numpy()[:-1]
        assert (table["start"].to_numpy()[1:][same] == table["end"].to_numpy()[:-1][same]).all()
    assert (merged.groupby("customer")["repeat_purchases"].sum()
            == rfm["frequency"]).all()
    rng = np.random.default_rng(0)
    for customer in rng.choice(rfm.index, 20, replace=False):
        times = rng.uniform(0, 130, 100)
        for column in ("High.Season", "Gender", "quarter", "christmas"):
            assert (_value_at(whole, customer, times, column)
                    == _value_at(merged, customer, times, column)).all()


@pytest.fixture(scope="module")
def apparel_paths_inputs():
    if not (APPAREL / "apparel_dyncov.csv.gz").exists():
        pytest.skip("../shared/data/apparel (CLVTools' apparel data) is not beside the checkout")
    log = pd.read_csv(APPAREL / "apparel_transactions.csv")
    rfm = clvlab.rfm_summary(log, customer_col="Id", date_col="Date", amount_col="Price",
                             time_unit="W", calibration_end="2006-12-31")
    return pd.read_csv(APPAREL / "apparel_dyncov.csv.gz"), rfm, log


def test_apparel_paths(apparel_paths_inputs):
    """600 customers, all first seen Sun 2005-01-02, T = 104 weeks; High.Season switches on and
    off four times in two years, Gender and Channel never: 9 merged pieces per customer."""
    dyncov, rfm, log = apparel_paths_inputs
    paths = covariate_paths(dyncov, rfm, transactions=log, period_col="Cov.Date",
                            date_col="Date", amount_col="Price")
    table = paths.table
    assert paths.covariates == ("High.Season", "Gender", "Channel")
    assert len(table) == 600 * 9 and table["customer"].nunique() == 600
    assert (table.groupby("customer")["end"].last() == 104).all()
    assert table["end"].sub(table["start"]).sum() == 600 * 104
    assert table["repeat_purchases"].sum() == rfm["frequency"].sum()
    weeks_high = table["end"].sub(table["start"]).where(table["High.Season"] == 1).sum() / 600
    assert weeks_high == (dyncov.loc[dyncov["Cov.Date"] < "2006-12-31", "High.Season"]
                          .sum() / 600)
    unmerged = covariate_paths(dyncov, rfm, transactions=log, period_col="Cov.Date",
                               date_col="Date", merge=False).table
    assert len(unmerged) == 600 * 104
    # each repeat purchase (a day after the first, by calibration_end) placed by its age in weeks
    days = pd.to_datetime(log["Date"]).dt.floor("D")
    bought = pd.DataFrame({"customer": log["Id"], "day": days}).drop_duplicates()
    bought = bought[bought["day"] <= "2006-12-31"]
    age = (bought["day"] - pd.Timestamp("2005-01-02")).dt.days / 7
    bought = bought[age > 0].assign(week=np.minimum(np.floor(age[age > 0]), 103).astype(int))
    expected = bought.groupby(["customer", "week"]).size()
    got = unmerged.assign(week=unmerged["start"].astype(int)).set_index(["customer", "week"])
    assert (got["repeat_purchases"][got["repeat_purchases"] > 0] == expected).all()
    assert got["repeat_purchases"].sum() == expected.sum()


def test_engines_agree_on_apparel(apparel_paths_inputs, tmp_path):
    """pandas, DuckDB on the DataFrame, on the CSV file, on a Parquet file and on a relation."""
    import duckdb

    dyncov, rfm, log = apparel_paths_inputs
    kwargs = dict(transactions=log, period_col="Cov.Date", date_col="Date", amount_col="Price",
                  horizon=52)
    reference = covariate_paths(dyncov, rfm, **kwargs).table
    parquet = tmp_path / "dyncov.parquet"
    dyncov.assign(**{"Cov.Date": pd.to_datetime(dyncov["Cov.Date"])}).to_parquet(parquet)
    connection = duckdb.connect()
    relation = connection.sql(f"SELECT * FROM read_parquet('{parquet}')")
    for panel, extra in ((dyncov, {"engine": "duckdb"}), (APPAREL / "apparel_dyncov.csv.gz", {}),
                         (str(parquet), {}), (relation, {"connection": connection})):
        got = covariate_paths(panel, rfm, **kwargs, **extra).table
        pd.testing.assert_frame_equal(got, reference, check_exact=True)
    assert not connection.execute("SELECT * FROM duckdb_views() WHERE NOT internal").fetchall()
    with pytest.raises(ClvlabError, match="needs the connection it belongs to"):
        covariate_paths(relation, rfm, **kwargs, connection=duckdb.connect())


def test_calendar_from_a_file(rfm, panel, tmp_path):
    """A calendar given as a Parquet or CSV file (CSV periods are text, parsed as dates) gives
    the pieces of the DataFrame; anything else is refused with a ClvlabError."""
    calendar = pd.DataFrame({"period": pd.date_range("2024-01-01", periods=6, freq="7D"),
                             "promo": [0, 1, 0, 0, 1, 0]})
    want = paths_of(panel, rfm, calendar=calendar).table
    calendar.to_parquet(tmp_path / "cal.parquet")
    calendar.to_csv(tmp_path / "cal.csv", index=False)
    for path in (tmp_path / "cal.parquet", str(tmp_path / "cal.csv")):
        assert_table(paths_of(panel, rfm, calendar=path).table, want)
    with pytest.raises(ClvlabError, match="not an existing Parquet"):
        paths_of(panel, rfm, calendar=str(tmp_path / "nope.parquet"))
    with pytest.raises(ClvlabError, match="calendar must be a pandas DataFrame .* not dict"):
        paths_of(panel, rfm, calendar={"period": []})


@pytest.mark.parametrize("suffix", ["parquet", "csv"])
def test_panel_files_with_different_columns_name_the_file(rfm, panel, tmp_path, suffix):
    def write(frame, name):
        path = tmp_path / f"{name}.{suffix}"
        frame.to_parquet(path) if suffix == "parquet" else frame.to_csv(path, index=False)

    write(panel, "panel_1")
    write(panel.rename(columns={"period": "week"}), "panel_2")
    with pytest.raises(DataValidationError) as info:
        paths_of(str(tmp_path / f"panel_*.{suffix}"), rfm)
    assert info.value.column == "period"
    assert f"is missing from 1 of the 2 covariate panel files (1 have it), e.g. " \
           f"{tmp_path / f'panel_2.{suffix}'}" in info.value.rule
    assert "narrow the glob" in info.value.hint
    write(panel.drop(columns="segment"), "panel_2")
    with pytest.raises(DataValidationError, match="'segment': is missing from 1 of the 2"):
        paths_of(str(tmp_path / f"panel_*.{suffix}"), rfm)


def test_calendar_alone_and_text_ids_against_numbers(apparel_paths_inputs):
    dyncov, rfm, _ = apparel_paths_inputs
    calendar = seasonal_covariates("2005-01-02", "2006-12-31", "W", month=True)
    table = covariate_paths(None, rfm, calendar=calendar).table
    assert len(table) == 600 * 24 and list(table.columns) == ["customer", "start", "end", "month"]
    assert table["month"].dtype == calendar["month"].dtype
    text = dyncov.assign(Id=dyncov["Id"].astype(str))
    with pytest.warns(ClvlabWarning, match="matched as text"):
        got = covariate_paths(text, rfm, period_col="Cov.Date").table
    pd.testing.assert_frame_equal(got, covariate_paths(dyncov, rfm, period_col="Cov.Date").table)


@pytest.mark.once("newest")  # Spark on the newest Python, and an even split of CI's time
@pytest.mark.slow
def test_spark_engine_matches_pandas(spark, apparel_paths_inputs):
    """Panel and log as Spark DataFrames: the same pieces, the same error message (a third of
    the customers: Spark's jobs cost seconds each)."""
    dyncov, _, log = apparel_paths_inputs
    log, dyncov = log[log["Id"] <= 200], dyncov[dyncov["Id"] <= 200].reset_index(drop=True)
    rfm = clvlab.rfm_summary(log, customer_col="Id", date_col="Date", amount_col="Price",
                             time_unit="W", calibration_end="2006-12-31")
    calendar = seasonal_covariates("2005-01-02", "2008-01-06", "W", quarter=True)
    kwargs = dict(calendar=calendar, period_col="Cov.Date", date_col="Date", amount_col="Price",
                  horizon=52)
    reference = covariate_paths(dyncov, rfm, transactions=log, **kwargs).table
    got = covariate_paths(spark.createDataFrame(dyncov), rfm,
                          transactions=spark.createDataFrame(log), **kwargs).table
    pd.testing.assert_frame_equal(got, reference, check_exact=True)
    broken = dyncov.drop(index=10)  # a gap for customer 1
    with pytest.raises(DataValidationError) as pandas_error:
        covariate_paths(broken, rfm, **kwargs)
    with pytest.raises(DataValidationError) as spark_error:
        covariate_paths(spark.createDataFrame(broken), rfm, **kwargs)
    assert str(spark_error.value) == str(pandas_error.value)
