"""RFM tables on disk and logs from files: the time unit travels with the table, dates given as
options follow the date column's rule, and file readers give the DataFrame path's errors."""

from __future__ import annotations

import datetime
import json
import warnings

import numpy as np
import pandas as pd
import pytest

import clvlab
from clvlab import ClvlabError, DataValidationError
from clvlab import rfm as rfm_module
from clvlab import rfm_duckdb
from clvlab.rfm import parse_option_date, read_rfm

ENGINES = ["pandas", "duckdb"]


def small_log() -> pd.DataFrame:
    return pd.DataFrame({
        "cust": ["a", "a", "b", "c", "c", "a"],
        "date": ["2024-01-01", "2024-01-09", "2024-01-03", "2024-01-04", "2024-02-20", "2024-03-01"],
        "amount": [10.0, 12.5, 3.0, 8.0, 9.0, 4.0],
    })


def write_with_cli_engine(tmp_path, output_format="parquet", **options):
    """What ``clvlab rfm -o`` does: DuckDB writes the table straight to the file."""
    source = tmp_path / "log.csv"
    small_log().to_csv(source, index=False)
    settings = rfm_module.make_settings(customer_col="cust", date_col="date", amount_col="amount",
                                        time_unit=options.pop("time_unit", "D"), date_format=None,
                                        timezone="UTC", merge_period=None)
    target = tmp_path / f"rfm.{output_format}"
    info = rfm_duckdb.write_table([str(source)], str(target), output_format, settings,
                                  options.get("calibration_end"), options.get("observation_end"))
    return target, info


# ---- 1. the time unit travels with every RFM table ------------------------------------------

def test_duckdb_parquet_output_records_the_unit_and_the_window(tmp_path):
    import pyarrow.parquet as pq

    path, info = write_with_cli_engine(tmp_path, time_unit="W", calibration_end="2024-02-01")
    recorded = json.loads(pq.read_schema(path).metadata[b"clvlab"])
    assert recorded["time_unit"] == "W" and recorded["customer_col"] == "cust"
    assert recorded["calibration_end"] == "2024-02-01T00:00:00"
    assert recorded["observation_end"] == "2024-03-01T00:00:00"
    # plain pandas sees the same facts, as it does for a table pandas wrote
    assert pd.read_parquet(path).attrs["clvlab"]["time_unit"] == "W"


def test_read_rfm_gives_back_what_rfm_summary_returned(tmp_path):
    path, _ = write_with_cli_engine(tmp_path, time_unit="W", calibration_end="2024-02-01")
    expected = clvlab.rfm_summary(small_log(), customer_col="cust", amount_col="amount",
                                  time_unit="W", calibration_end="2024-02-01")
    got = read_rfm(path)
    pd.testing.assert_frame_equal(got, expected)
    assert got.attrs == expected.attrs and got.attrs["clvlab"]["time_unit"] == "W"


def test_pandas_to_parquet_keeps_attrs_and_read_rfm_restores_them(tmp_path):
    expected = clvlab.rfm_summary(small_log(), customer_col="cust", time_unit="D")
    expected.to_parquet(tmp_path / "rfm.pq")
    got = read_rfm(tmp_path / "rfm.pq")
    pd.testing.assert_frame_equal(got, expected)
    assert got.attrs == expected.attrs


def test_a_csv_needs_the_unit_and_gets_it(tmp_path):
    path, _ = write_with_cli_engine(tmp_path, output_format="csv")
    with pytest.raises(ClvlabError, match=r"time unit .* unknown.*time_unit=.*--time-unit"):
        read_rfm(path)
    table = read_rfm(path, time_unit="days", customer_col="cust")
    assert table.attrs["clvlab"]["time_unit"] == "D" and table.index.name == "cust"
    assert list(table.index) == ["a", "b", "c"]


def test_a_parquet_file_without_a_unit_is_refused_without_time_unit(tmp_path):
    pd.DataFrame({"customer_id": [1], "frequency": [0], "recency": [0.0], "T": [3.0]}).to_parquet(
        tmp_path / "plain.parquet", index=False)
    with pytest.raises(ClvlabError, match="unknown"):
        read_rfm(tmp_path / "plain.parquet")
    assert read_rfm(tmp_path / "plain.parquet", time_unit="W").attrs["clvlab"]["time_unit"] == "W"


def test_a_unit_that_contradicts_the_file_is_an_error(tmp_path):
    path, _ = write_with_cli_engine(tmp_path, time_unit="D")
    with pytest.raises(ClvlabError, match=r"'D'.*'W'|'W'.*'D'"):
        read_rfm(path, time_unit="W")
    assert read_rfm(path, time_unit="day").attrs["clvlab"]["time_unit"] == "D"


def test_a_customer_column_named_but_missing_is_an_error(tmp_path):
    path, _ = write_with_cli_engine(tmp_path)
    with pytest.raises(DataValidationError, match="'customer_id'.*missing"):
        read_rfm(path, customer_col="customer_id")


def test_unknown_file_kinds_and_missing_files(tmp_path):
    with pytest.raises(ClvlabError, match="does not exist"):
        read_rfm(tmp_path / "nothing.parquet", time_unit="D")
    (tmp_path / "rfm.xlsx").write_bytes(b"PK")
    with pytest.raises(ClvlabError, match=r"\.parquet.*\.csv"):
        read_rfm(tmp_path / "rfm.xlsx", time_unit="D")


# ---- 2. dates given as options follow the date column's rule --------------------------------

@pytest.mark.parametrize("value", ["05/06/2007", "06.05.2007", "May 6, 2007", 20070506])
def test_ambiguous_option_dates_are_refused(value):
    with pytest.raises(ClvlabError) as caught:
        parse_option_date(value, "calibration_end")
    message = str(caught.value)
    assert "calibration_end" in message and repr(value) in message and "ISO 8601" in message


def test_option_dates_follow_the_given_date_format():
    assert parse_option_date("05/06/2007", "calibration_end", date_format="%d/%m/%Y") \
        == pd.Timestamp("2007-06-05")
    assert parse_option_date(20070605, "cutoff", date_format="%Y%m%d") == pd.Timestamp("2007-06-05")
    # ISO still reads as ISO when it cannot be confused with the format
    assert parse_option_date("2007-06-05", "as_of", date_format="%d/%m/%Y") == pd.Timestamp("2007-06-05")
    with pytest.raises(ClvlabError, match=r"as_of='06\.05\.2007'.*'%d/%m/%Y'"):
        parse_option_date("06.05.2007", "as_of", date_format="%d/%m/%Y")


def test_a_text_that_reads_two_ways_is_refused():
    # 2007-01-02 is 2 January in ISO 8601 and 1 February in %Y-%d-%m
    with pytest.raises(ClvlabError, match="two ways"):
        parse_option_date("2007-01-02", "cutoff", date_format="%Y-%d-%m")
    # digits alone are a number, read only by the format, as in the date column
    assert parse_option_date("20070102", "cutoff", date_format="%Y%d%m") == pd.Timestamp("2007-02-01")
    with pytest.raises(ClvlabError, match="cutoff='20070102'"):
        parse_option_date("20070102", "cutoff")


def test_timestamps_pass_through_and_zoned_ones_are_converted():
    assert parse_option_date(pd.Timestamp("2024-01-02 03:00"), "x") == pd.Timestamp("2024-01-02 03:00")
    assert parse_option_date(datetime.date(2024, 1, 2), "x") == pd.Timestamp("2024-01-02")
    assert parse_option_date("2024-01-02T03:00+02:00", "x", timezone="UTC") \
        == pd.Timestamp("2024-01-02 01:00")
    assert parse_option_date(None, "x") is None
    with pytest.raises(ClvlabError, match="x="):
        parse_option_date(3.5, "x")


@pytest.mark.parametrize("engine", ENGINES)
def test_rfm_summary_reads_calibration_end_by_the_date_format(engine):
    log = small_log().assign(date=lambda f: pd.to_datetime(f["date"]).dt.strftime("%d/%m/%Y"))
    rfm = clvlab.rfm_summary(log, customer_col="cust", date_format="%d/%m/%Y",
                             calibration_end="01/02/2024", engine=engine)
    assert rfm.attrs["clvlab"]["calibration_end"] == "2024-02-01T00:00:00"
    with pytest.raises(ClvlabError, match="calibration_end"):
        clvlab.rfm_summary(small_log(), customer_col="cust", calibration_end="01/02/2024",
                           engine=engine)


# ---- 3. logs read from files give the DataFrame path's errors -------------------------------

def write_csv(tmp_path, text, name="log.csv"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize("engine", ENGINES)
def test_non_iso_dates_in_a_file_name_the_column_the_rule_and_the_option(tmp_path, engine):
    path = write_csv(tmp_path, "customer_id,date,amount\n1,05/06/2007,10\n1,13/06/2007,12\n"
                               "2,01/07/2007,3\n")
    with pytest.raises(DataValidationError) as caught:
        clvlab.rfm_summary(path, amount_col="amount", engine=engine)
    message = str(caught.value)
    assert caught.value.column == "date" and "ISO 8601" in message and "05/06/2007" in message
    assert "date_format" in message and "--date-format" in message
    assert len(message.splitlines()) == 1


@pytest.mark.parametrize("engine", ENGINES)
def test_dates_in_a_file_are_never_guessed_day_first(tmp_path, engine):
    # every value reads as day/month/year, which a CSV sniffer would happily guess
    path = write_csv(tmp_path, "customer_id,date\n1,13/06/2007\n1,14/06/2007\n2,15/07/2007\n")
    with pytest.raises(DataValidationError, match="ISO 8601"):
        clvlab.rfm_summary(path, engine=engine)


@pytest.mark.parametrize("engine", ENGINES)
def test_a_repeated_header_row_is_the_example(tmp_path, engine):
    path = write_csv(tmp_path, "customer_id,date,amount\n1,2007-05-06,10\n1,2007-06-13,12\n"
                               "customer_id,date,amount\n2,2007-07-01,3\n")
    with pytest.raises(DataValidationError) as caught:
        clvlab.rfm_summary(path, amount_col="amount", engine=engine)
    assert "date='date'" in str(caught.value) or "amount='amount'" in str(caught.value)
    assert "header" in str(caught.value)


# ---- 4. European CSVs ----------------------------------------------------------------------

EUROPEAN = "customer_id;date;amount\n1;2007-05-06;10,50\n1;2007-06-13;12,00\n2;2007-07-01;3,25\n"


@pytest.mark.parametrize("engine", ENGINES)
def test_semicolons_and_decimal_commas_are_read_with_the_options(tmp_path, engine):
    path = write_csv(tmp_path, EUROPEAN)
    rfm = clvlab.rfm_summary(path, amount_col="amount", delimiter=";", decimal=",", engine=engine)
    assert rfm.loc[1, "monetary_value"] == 12.0 and rfm.loc[1, "frequency"] == 1


@pytest.mark.parametrize("engine", ENGINES)
def test_a_decimal_comma_without_the_option_gets_a_hint(tmp_path, engine):
    path = write_csv(tmp_path, EUROPEAN)
    with pytest.raises(DataValidationError, match=r"'amount'.*numeric.*decimal=','.*--decimal"):
        clvlab.rfm_summary(path, amount_col="amount", delimiter=";", engine=engine)


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("amount", ["€12,50", "$12.50"])
def test_a_currency_sign_gets_a_hint(tmp_path, engine, amount):
    text = f'customer_id;date;amount\n1;2007-05-06;{amount}\n1;2007-06-13;{amount}\n'
    path = write_csv(tmp_path, text)
    decimal = "," if "," in amount else "."
    with pytest.raises(DataValidationError, match="currency sign") as caught:
        clvlab.rfm_summary(path, amount_col="amount", delimiter=";", decimal=decimal, engine=engine)
    assert amount in str(caught.value) and caught.value.column == "amount"


@pytest.mark.parametrize("engine", ENGINES)
def test_decimal_commas_in_a_text_column_of_a_dataframe(engine):
    log = small_log().assign(amount=["10,00", "12,50", "3,00", "8,00", "9,00", "4,00"])
    rfm = clvlab.rfm_summary(log, customer_col="cust", amount_col="amount", decimal=",",
                             engine=engine)
    assert rfm.loc["a", "monetary_value"] == pytest.approx(8.25)


@pytest.mark.parametrize("option, value, words", [
    ("delimiter", ";;", "one character"), ("decimal", ";", "'.' or ','"),
])
def test_bad_reader_options(option, value, words):
    with pytest.raises(ClvlabError, match=f"{option}.*{words}"):
        clvlab.rfm_summary(small_log(), customer_col="cust", **{option: value})


def test_delimiter_and_decimal_must_differ():
    with pytest.raises(ClvlabError, match="delimiter.*decimal"):
        clvlab.rfm_summary(small_log(), customer_col="cust", delimiter=",", decimal=",")


# ---- 5. categorical ids: identical inputs, identical outputs --------------------------------

@pytest.mark.parametrize("categories", [["2", "100", "10", "1"], [100, 2, 10, 1]])
def test_engines_agree_on_categorical_ids_index_included(categories):
    values = ["1", "10", "100", "2", "1", "10"]
    if isinstance(categories[0], int):
        values = [int(v) for v in values]
    log = pd.DataFrame({"customer_id": pd.Categorical(values, categories=categories),
                        "date": pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-03",
                                                "2024-01-04", "2024-02-01", "2024-03-01"])})
    by_pandas = clvlab.rfm_summary(log, engine="pandas")
    by_duckdb = clvlab.rfm_summary(log, engine="duckdb")
    pd.testing.assert_frame_equal(by_pandas, by_duckdb, check_exact=True)
    assert by_pandas.index.dtype == by_duckdb.index.dtype
    assert list(by_pandas.index) == sorted(values[:4], key=lambda v: (v,))


@pytest.mark.parametrize("engine", ENGINES)
def test_a_file_without_the_date_column_names_it(tmp_path, engine):
    path = write_csv(tmp_path, "customer_id,when\n1,2024-01-01\n")
    with pytest.raises(DataValidationError, match="'date': is missing.*'when'"):
        clvlab.rfm_summary(path, engine=engine)


def test_a_non_iso_date_after_the_readers_sample_gets_clvlabs_message(tmp_path):
    # DuckDB reads ISO dates itself (the fast path) after sniffing a sample of about 20,000
    # rows; a bad date after the sample must still end in clvlab's message, not a cast error
    rows = [f"{i % 500},2024-01-{1 + i % 28:02d}" for i in range(30_000)] + ["7,31/01/2024"]
    path = write_csv(tmp_path, "customer_id,date\n" + "\n".join(rows) + "\n")
    with pytest.raises(DataValidationError, match="ISO 8601.*--date-format.*31/01/2024"):
        clvlab.rfm_summary(path, engine="duckdb")


def test_iso_dates_and_timestamps_in_a_csv_read_alike_by_both_engines(tmp_path):
    text = ("customer_id,date\n1,2024-01-02 10:30:00\n1,2024-01-09 08:00:00\n2,2024-01-03 23:59:00\n"
            "2,2024-02-01 00:00:00\n")
    path = write_csv(tmp_path, text)
    by_pandas = clvlab.rfm_summary(path, engine="pandas", time_unit="h")
    by_duckdb = clvlab.rfm_summary(path, engine="duckdb", time_unit="h")
    pd.testing.assert_frame_equal(by_pandas, by_duckdb, check_exact=True)


@pytest.mark.parametrize("engine", ENGINES)
def test_digit_only_date_text_is_a_number_for_both_engines(engine):
    # "20240105" read from a CSV is an integer; held as text it must not become a date in one
    # engine (ISO 8601's basic format) and an error in the other
    log = small_log().assign(date=["20240101", "20240109", "20240103", "20240104", "20240220",
                                   "20240301"])
    with pytest.raises(DataValidationError, match="numbers are not dates.*--date-format"):
        clvlab.rfm_summary(log, customer_col="cust", engine=engine)
    assert clvlab.rfm_summary(log, customer_col="cust", engine=engine,
                              date_format="%Y%m%d").loc["a", "frequency"] == 2


# issue 29: ids written with leading zeros ----------------------------------------------------

def test_csv_ids_written_with_leading_zeros_stay_text(tmp_path):
    """Before: "00017" was read as the number 17 by every pandas reader of the commands (RFM
    tables, attributes files, logs of the pandas engine), and ids no longer matched."""
    from clvlab.data.rfm_io import read_files

    (tmp_path / "log.csv").write_text("cust,date,n\n00017,2024-01-01,1\n00017,2024-01-02,2\n"
                                      "123,2024-01-03,3\n,2024-01-04,4\n")
    with pytest.warns(clvlab.ClvlabWarning, match=r"column 'cust' .*'00017'.*read as text"):
        log = read_files(tmp_path / "log.csv")
    assert list(log["cust"][:3]) == ["00017", "00017", "123"] and log["cust"].isna().iloc[3]
    assert log["n"].dtype == np.int64  # other numbers as before
    (tmp_path / "rfm.csv").write_text("cust,frequency,recency,T\n00017,1,2.0,5.0\n"
                                      "00018,0,0.0,4.0\n")
    with pytest.warns(clvlab.ClvlabWarning):
        table = read_rfm(tmp_path / "rfm.csv", time_unit="W", customer_col="cust")
    assert list(table.index) == ["00017", "00018"]
    (tmp_path / "plain.csv").write_text("cust,frequency,recency,T\n17,1,2.0,5.0\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert read_rfm(tmp_path / "plain.csv", time_unit="W", customer_col="cust").index[0] == 17
