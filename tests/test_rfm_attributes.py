"""Static customer attributes joined to the RFM summary (issue 22): the same table and the same
errors from the pandas, DuckDB and Spark engines, kept through Parquet, checked in backtests."""

import warnings

import numpy as np
import pandas as pd
import pytest

import clvlab
from clvlab.cli import main
from clvlab.core.errors import DataValidationError
from clvlab.data.attributes import check_attribute_columns
from clvlab.data.calibration import calibration_data
from clvlab.data.rfm_io import read_rfm

OPTIONS = dict(amount_col="amount", time_unit="D", calibration_end="2024-01-06")


@pytest.fixture()
def log() -> pd.DataFrame:
    rows = [("a", "2024-01-01", 10.0), ("a", "2024-01-04", 5.0), ("a", "2024-01-08", 2.0),
            ("b", "2024-01-02", 30.0), ("c", "2024-01-03", 1.0), ("c", "2024-01-05", 2.5),
            ("c", "2024-01-09", 4.0), ("d", "2024-01-07", 9.0)]  # d: first seen after the cut
    return pd.DataFrame(rows, columns=["customer_id", "date", "amount"])


@pytest.fixture()
def attributes() -> pd.DataFrame:
    """Every accepted kind, rows out of the summary's order, one customer (z) not in the log."""
    return pd.DataFrame({
        "customer_id": ["c", "z", "a", "b", "d"],
        "channel": pd.Categorical(["web", "web", "shop", "web", "shop"], categories=["web", "shop"]),
        "vip": [True, False, False, True, True],
        "age": np.array([31, 40, 52, 27, 60], dtype=np.int32),
        "region": ["north", "west", "south", "north", "east"],
        "income": [1.5, 2.0, 0.5, 3.25, 1.0],
    })


def expected_table(log, attributes) -> pd.DataFrame:
    """The join written out by hand: the summary, then the attributes of its customers."""
    rfm = clvlab.rfm_summary(log, engine="pandas", **OPTIONS)
    by_id = attributes.set_index("customer_id")
    want = rfm.copy()
    for column in by_id.columns:
        want[column] = by_id[column].reindex(rfm.index).astype(by_id[column].dtype)
    return want


def run(engine: str, log: pd.DataFrame, attributes, tmp_path=None, spark=None) -> pd.DataFrame:
    """The joined summary from one engine: DuckDB reads the log from a CSV file."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", clvlab.ClvlabWarning)
        if engine == "spark":
            from clvlab import spark as clv_spark

            return clv_spark.rfm_summary(spark.createDataFrame(log), customer_attributes=attributes,
                                         **OPTIONS).to_pandas()
        source = log
        if engine == "duckdb":
            source = tmp_path / "log.csv"
            log.to_csv(source, index=False)
        return clvlab.rfm_summary(source, engine=engine, customer_attributes=attributes, **OPTIONS)


@pytest.mark.parametrize("engine", ["pandas", "duckdb"])
@pytest.mark.parametrize("indexed", [False, True], ids=["id column", "id index"])
def test_attributes_follow_the_rfm_columns_with_their_dtypes(engine, indexed, log, attributes,
                                                               tmp_path):
    given = attributes.set_index("customer_id") if indexed else attributes
    got = run(engine, log, given, tmp_path)
    want = expected_table(log, attributes)
    assert list(got.columns) == ["frequency", "recency", "T", "monetary_value",
                                 "frequency_holdout", "monetary_value_holdout", "duration_holdout",
                                 "channel", "vip", "age", "region", "income"]
    assert list(got.index) == ["a", "b", "c"]  # z (not in the log) and d (after the cut) left out
    assert got["channel"].dtype == attributes["channel"].dtype  # categories and their order kept
    assert got["vip"].dtype == bool and got["age"].dtype == np.int32
    pd.testing.assert_frame_equal(got, want, check_index_type=False)
    assert got.attrs["clvlab"]["attributes"] == ["channel", "vip", "age", "region", "income"]
    # the summary's own metadata is untouched
    plain = clvlab.rfm_summary(log, engine="pandas", **OPTIONS).attrs["clvlab"]
    assert {k: v for k, v in got.attrs["clvlab"].items() if k != "attributes"} == plain


def test_a_summary_without_attributes_records_none(log):
    assert "attributes" not in clvlab.rfm_summary(log, **OPTIONS).attrs["clvlab"]


def test_parquet_keeps_the_attribute_list_and_dtypes(log, attributes, tmp_path):
    table = clvlab.rfm_summary(log, customer_attributes=attributes, **OPTIONS)
    path = tmp_path / "rfm.parquet"
    table.to_parquet(path)
    back = read_rfm(path)
    assert back.attrs["clvlab"]["attributes"] == ["channel", "vip", "age", "region", "income"]
    assert back.attrs["clvlab"]["time_unit"] == "D"
    pd.testing.assert_frame_equal(back, table)


def test_the_command_line_joins_an_attributes_file(log, attributes, tmp_path, capsys):
    log.to_csv(tmp_path / "log.csv", index=False)
    attributes.drop(columns="channel").to_csv(tmp_path / "attributes.csv", index=False)
    output = tmp_path / "rfm.parquet"
    code = main(["rfm", str(tmp_path / "log.csv"), "-o", str(output), "--amount-col", "amount",
                 "--calibration-end", OPTIONS["calibration_end"], "--no-progress",
                 "--attributes", str(tmp_path / "attributes.csv")])
    assert code == 0, capsys.readouterr().err
    assert "wrote 3 customers" in capsys.readouterr().out
    back = read_rfm(output)
    assert back.attrs["clvlab"]["attributes"] == ["vip", "age", "region", "income"]
    want = expected_table(log, attributes.drop(columns="channel"))
    assert back["region"].tolist() == want["region"].tolist()
    np.testing.assert_array_equal(back["income"], want["income"])
    # a customer without a row fails the command with the library's message
    attributes.iloc[1:].to_csv(tmp_path / "attributes.csv", index=False)
    assert main(["rfm", str(tmp_path / "log.csv"), "-o", str(tmp_path / "again.parquet"),
                 "--no-progress", "--attributes", str(tmp_path / "attributes.csv")]) == 1
    assert "no row for 1 of the 4 customers, e.g. customer 'c'" in capsys.readouterr().err


def _broken(attributes: pd.DataFrame, case: str) -> pd.DataFrame:
    frame = attributes.copy()
    if case == "missing customer":
        return frame[frame["customer_id"] != "b"]
    if case == "NaN":
        frame.loc[frame["customer_id"] == "b", "income"] = np.nan
    elif case == "None in text":
        frame["region"] = frame["region"].astype(object)
        frame.loc[frame["customer_id"] == "b", "region"] = None
    elif case == "infinite":
        frame.loc[frame["customer_id"] == "b", "income"] = np.inf
    elif case == "datetime":
        frame["signup"] = pd.Timestamp("2023-12-01")
    elif case == "duplicate ids":
        frame = pd.concat([frame, frame[frame["customer_id"] == "b"]])
    elif case == "clash":
        frame = frame.rename(columns={"income": "recency"})
    return frame


# (case, column named, customer named) for each rule; the customer shown is the first in the
# summary's order (missing customer, values) or in the frame (types, ids, names)
BROKEN = [("missing customer", "customer_id", "b"), ("NaN", "income", "b"),
          ("None in text", "region", "b"), ("infinite", "income", "b"),
          ("datetime", "signup", "c"), ("duplicate ids", "customer_id", "b"),
          ("clash", "recency", "c")]


@pytest.mark.parametrize("engine", ["pandas", "duckdb"])
@pytest.mark.parametrize("case, column, customer", BROKEN, ids=[b[0] for b in BROKEN])
def test_each_broken_rule_names_the_column_and_a_customer(engine, case, column, customer, log,
                                                          attributes, tmp_path):
    with pytest.raises(DataValidationError) as caught:
        run(engine, log, _broken(attributes, case), tmp_path)
    assert caught.value.column == column
    assert f"customer {customer!r}" in str(caught.value) or \
        f"customer_id={customer!r}" in str(caught.value)


def test_other_refusals_say_why(log, attributes):
    mixed = attributes.assign(code=pd.Series(["x", 1, "y", "z", "w"], dtype=object))
    with pytest.raises(DataValidationError, match=r"column 'code'.*int among them.*customer_id='z', code=1"):
        clvlab.rfm_summary(log, customer_attributes=mixed, **OPTIONS)
    unnamed = attributes.drop(columns="customer_id")  # ids forgotten: a default 0, 1, 2... index
    with pytest.raises(DataValidationError, match="needs the customer ids"):
        clvlab.rfm_summary(log, customer_attributes=unnamed, **OPTIONS)
    numbered = attributes.assign(customer_id=range(5))
    # text ids against numbers: matched as text (issue 29), which finds none of them here
    with pytest.warns(clvlab.ClvlabWarning, match="matched as text"), \
            pytest.raises(DataValidationError, match="no customer matched: the summary's ids "
                                                     "look like 'a'"):
        clvlab.rfm_summary(log, customer_attributes=numbered, **OPTIONS)
    with pytest.raises(clvlab.ClvlabError, match="must be a pandas DataFrame"):
        clvlab.rfm_summary(log, customer_attributes=attributes.to_dict(), **OPTIONS)


def test_check_attribute_columns_reads_a_models_table(log, attributes):
    table = clvlab.rfm_summary(log, customer_attributes=attributes, **OPTIONS)
    assert check_attribute_columns(table, ["channel", "income"], where="the RFM table") is table
    table.loc["c", "income"] = np.nan
    with pytest.raises(DataValidationError,
                       match=r"column 'income'.*the RFM table.*customer_id='c'"):
        check_attribute_columns(table, ["vip", "income"], where="the RFM table")
    with pytest.raises(DataValidationError, match="column 'tenure': is missing from the RFM table"):
        check_attribute_columns(table, ["tenure"], where="the RFM table")
    table["when"] = pd.Timestamp("2024-01-01")
    with pytest.raises(DataValidationError, match=r"'when'.*not datetime64.*customer_id='a'"):
        check_attribute_columns(table, ["when"], where="the RFM table")


def test_backtests_check_attributes_by_the_same_rules(log, attributes):
    by_id = attributes.set_index("customer_id")
    calibration, _ = calibration_data(log, "2024-01-06", 3, amount_col="amount", time_unit="D",
                                      customer_attributes=by_id)
    pd.testing.assert_frame_equal(calibration.attributes, by_id.loc[["a", "b", "c"]],
                                  check_index_type=False)
    # the RFM table is kept apart in a backtest: an attribute may share an RFM column's name
    renamed = by_id.rename(columns={"income": "recency"})
    calibration, _ = calibration_data(log, "2024-01-06", 3, amount_col="amount", time_unit="D",
                                      customer_attributes=renamed)
    assert list(calibration.attributes.columns) == list(renamed.columns)
    for case, column, customer in [("NaN", "income", "b"), ("datetime", "signup", "c")]:
        with pytest.raises(DataValidationError) as caught:
            calibration_data(log, "2024-01-06", 3, amount_col="amount", time_unit="D",
                             customer_attributes=_broken(attributes, case).set_index("customer_id"))
        assert caught.value.column == column and f"customer_id={customer!r}" in str(caught.value)


# ---- Spark ----------------------------------------------------------------------------------


@pytest.mark.once
@pytest.mark.slow  # a Spark session and its first jobs: about 25 s
def test_spark_joins_the_same_table_from_pandas_or_spark_attributes(spark, log, attributes):
    want = expected_table(log, attributes)
    got = run("spark", log, attributes, spark=spark)
    pd.testing.assert_frame_equal(got, want, check_index_type=False)
    assert got.attrs == clvlab.rfm_summary(log, customer_attributes=attributes, **OPTIONS).attrs
    # a Spark frame has no categories: its text comes back as text, the rest as in pandas
    as_text = attributes.assign(channel=attributes["channel"].astype(str))
    got = run("spark", log, spark.createDataFrame(as_text), spark=spark)
    pd.testing.assert_frame_equal(got, expected_table(log, as_text), check_index_type=False,
                                  check_dtype=False)
    assert got["vip"].dtype == bool and got.attrs["clvlab"]["attributes"] == list(as_text.columns[1:])


@pytest.mark.slow
@pytest.mark.parametrize("case, column, customer", BROKEN, ids=[b[0] for b in BROKEN])
def test_spark_names_the_same_column_and_customer(spark, case, column, customer, log, attributes):
    broken = _broken(attributes, case)
    for given in (broken, spark.createDataFrame(broken)):
        with pytest.raises(DataValidationError) as caught:
            run("spark", log, given, spark=spark)
        assert caught.value.column == column
        assert f"customer {customer!r}" in str(caught.value) or \
            f"customer_id={customer!r}" in str(caught.value)


# issue 29: ids of two kinds, and attributes the table already holds ------------------------------

def test_text_ids_and_whole_numbers_are_matched_as_text_with_a_warning():
    """Before: "convert one to the other's type", which a command-line user cannot do."""
    from clvlab.data.attributes import check_attributes

    ids = pd.Index(["7", "10", "007"], name="customer_id")
    attributes = pd.DataFrame({"channel": ["web", "shop", "mail"]},
                              index=pd.Index([7, 10, 8], name="customer_id"))
    with pytest.warns(clvlab.ClvlabWarning, match="matched as text"), \
            pytest.raises(DataValidationError, match="no row for 1 of the 3 customers, e.g. "
                                                     "customer '007'"):
        check_attributes(attributes, ids, customer_col="customer_id")  # 7 is "7", not "007"
    with pytest.warns(clvlab.ClvlabWarning, match="matched as text"):
        aligned = check_attributes(attributes, ids[:2], customer_col="customer_id")
    assert list(aligned["channel"]) == ["web", "shop"] and list(aligned.index) == ["7", "10"]
    # whole numbers held as floats (an id column with a gap) match too
    floats = attributes.set_axis(pd.Index([7.0, 10.0, 8.0], name="customer_id"))
    with pytest.warns(clvlab.ClvlabWarning):
        assert list(check_attributes(floats, ids[:2], customer_col="customer_id")["channel"]) \
            == ["web", "shop"]


def test_attributes_the_table_already_holds_are_refused_by_name(log, attributes):
    """Before: AttributeError: 'DataFrame' object has no attribute 'dtype'."""
    from clvlab.data.attributes import join_attributes

    table = clvlab.rfm_summary(log, customer_attributes=attributes, **OPTIONS)
    with pytest.raises(DataValidationError, match=r"already columns of the table .*with the "
                                                  r"same values"):
        join_attributes(table, attributes, customer_col="customer_id")


def test_the_scoring_join_matches_text_and_numeric_ids_as_text(tmp_path):
    """`clvlab score --attributes`' join (before: "no customer matched" for a log read as text
    and an attributes file read as numbers); a zero-padded file keeps its zeros."""
    from clvlab.ops.scoring_attributes import AttributeJoin, read_attribute_table

    (tmp_path / "attributes.csv").write_text("cust,channel\n00001,web\n00002,shop\n")
    with pytest.warns(clvlab.ClvlabWarning, match="leading zeros"):
        table = read_attribute_table(str(tmp_path / "attributes.csv"), {}).set_index("cust")
    inputs = pd.DataFrame({"frequency": [1, 0]}, index=pd.Index(["00002", "00001"], name="cust"))
    joined = AttributeJoin(table, "the attributes table").join(inputs)
    assert list(joined["channel"]) == ["shop", "web"]
    numbers = pd.DataFrame({"channel": ["web", "shop"]}, index=pd.Index([1, 2], name="cust"))
    texts = pd.DataFrame({"frequency": [1, 0]}, index=pd.Index(["2", "1"], name="cust"))
    with pytest.warns(clvlab.ClvlabWarning, match="matched as text"):
        joined = AttributeJoin(numbers, "the attributes table").join(texts)
    assert list(joined["channel"]) == ["shop", "web"] and list(joined.index) == ["2", "1"]
