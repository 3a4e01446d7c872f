"""polars and Arrow tables wherever a pandas DataFrame is taken (issue 33): the transaction log,
RFM tables, attributes, event logs and scoring inputs, through rfm -> fit -> predict -> backtest
-> score, with results equal to pandas'; clvlab without polars installed (a subprocess that
cannot import it) reads Arrow and never imports polars itself."""

from __future__ import annotations

import decimal
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

import clvlab
from clvlab.core.errors import DataValidationError
from clvlab.data.tables import like_input, table_kind, to_pandas

pl = pytest.importorskip("polars")  # the dev extra installs it; the last test runs without it

SPLIT = dict(amount_col="amount", time_unit="W", calibration_end="1997-09-30",
             observation_end="1998-06-30")


def _kinds(frame: pd.DataFrame) -> dict:
    return {"polars": pl.from_pandas(frame),
            "arrow": pa.Table.from_pandas(frame, preserve_index=False)}


@pytest.fixture(scope="module")
def reference(cdnow_sample):
    rfm = clvlab.rfm_summary(cdnow_sample, **SPLIT)
    return rfm, clvlab.ParetoNBD().fit(rfm), clvlab.GammaGamma().fit(rfm)


@pytest.mark.parametrize("engine", ["pandas", "duckdb"])
@pytest.mark.parametrize("kind", ["polars", "arrow"])
def test_rfm_summary_of_a_polars_or_arrow_log_equals_pandas_and_comes_back_in_its_kind(
        cdnow_sample, reference, kind, engine):
    rfm = reference[0]
    result = clvlab.rfm_summary(_kinds(cdnow_sample)[kind], engine=engine, **SPLIT)
    assert table_kind(result) == kind
    columns = result.columns if kind == "polars" else result.column_names
    assert list(columns) == ["customer_id", *rfm.columns]  # the ids first
    back = to_pandas(result, keyed=True)
    pd.testing.assert_frame_equal(back, rfm, check_exact=False, rtol=1e-12)
    if kind == "arrow":  # the time unit and window travel in the schema's metadata
        assert back.attrs == rfm.attrs


def test_duckdb_scans_an_arrow_log_in_place(cdnow_sample, reference, monkeypatch):
    """The DuckDB engine registers the Arrow table itself: no pandas conversion of the log."""
    from clvlab.data import tables

    def refuse(*args, **kwargs):
        raise AssertionError("the log was converted to pandas")

    table = pa.Table.from_pandas(cdnow_sample, preserve_index=False)
    monkeypatch.setattr(tables, "to_pandas", refuse)
    from clvlab.data import rfm as rfm_module

    monkeypatch.setattr(rfm_module, "to_pandas", lambda value, **kw: value if value is None
                        else refuse())
    result = clvlab.rfm_summary(table, engine="duckdb", **SPLIT)
    monkeypatch.undo()
    pd.testing.assert_frame_equal(to_pandas(result, keyed=True), reference[0],
                                  check_exact=False, rtol=1e-12)


@pytest.mark.parametrize("kind", ["polars", "arrow"])
def test_fit_predict_clv_and_scores_from_a_polars_or_arrow_rfm_table_equal_pandas(
        reference, kind):
    rfm, pareto, spend = reference
    table = like_input(rfm, kind)
    # Arrow keeps the time unit in its metadata; a polars table carries none and says it
    unit = {"time_unit": "W"} if kind == "polars" else {}
    model = clvlab.ParetoNBD().fit(table, **unit)
    np.testing.assert_array_equal(model.params_.to_numpy(), pareto.params_.to_numpy())
    assert model.time_unit_ == "W"
    gg = clvlab.GammaGamma().fit(table, **unit)
    np.testing.assert_array_equal(gg.params_.to_numpy(), spend.params_.to_numpy())
    pd.testing.assert_series_equal(model.expected_purchases(table, 13, **unit),
                                   pareto.expected_purchases(rfm, 13))
    pd.testing.assert_series_equal(model.p_alive(table, **unit), pareto.p_alive(rfm))
    pd.testing.assert_frame_equal(model.prediction_interval(table, 13, **unit),
                                  pareto.prediction_interval(rfm, 13))
    pd.testing.assert_series_equal(
        clvlab.customer_lifetime_value(model, gg, table, 52, 0.01, **unit),
        clvlab.customer_lifetime_value(pareto, spend, rfm, 52, 0.01))
    pd.testing.assert_frame_equal(clvlab.purchase_totals(model, table, 13, **unit),
                                  clvlab.purchase_totals(pareto, rfm, 13))
    scores = clvlab.score_customers(model, gg, None, table, horizon=13, **unit)
    assert table_kind(scores) == kind  # a table built from the input comes back in its kind
    pd.testing.assert_frame_equal(to_pandas(scores, keyed=True),
                                  clvlab.score_customers(pareto, spend, None, rfm, horizon=13),
                                  check_dtype=False)
    assert clvlab.validate_rfm(table) is table  # checked, returned as given


def test_a_polars_table_without_ids_is_keyed_by_position(reference):
    rfm, pareto, _ = reference
    table = pl.from_pandas(rfm.reset_index(drop=True))
    predicted = pareto.expected_purchases(table, 13, time_unit="W")
    assert predicted.index.equals(pd.RangeIndex(len(rfm)))
    np.testing.assert_array_equal(predicted.to_numpy(), pareto.expected_purchases(rfm, 13))


def test_a_polars_rfm_table_without_its_unit_is_refused_by_a_model_of_durations(reference):
    rfm, pareto, _ = reference
    with pytest.raises(clvlab.ClvlabError, match="does not record the time unit"):
        pareto.expected_purchases(pl.from_pandas(rfm.reset_index()), 13)


@pytest.mark.slow
@pytest.mark.once  # pandas, DuckDB and Arrow only: no code that differs between the stacks
@pytest.mark.parametrize("kind", ["polars", "arrow"])
def test_backtest_of_a_polars_or_arrow_log_equals_pandas(cdnow_sample, kind):
    ids = np.sort(cdnow_sample["customer_id"].unique())
    channel = pd.DataFrame({"customer_id": ids, "channel": np.where(ids % 3 == 0, "web", "store")})
    options = dict(cutoffs=["1997-06-30", "1997-09-30"], horizon=13, amount_col="amount",
                   intervals=False, progress=False)
    expected = clvlab.backtest(cdnow_sample, ["pareto-nbd"],
                               customer_attributes=channel.set_index("customer_id"), **options)
    result = clvlab.backtest(_kinds(cdnow_sample)[kind], ["pareto-nbd"],
                             customer_attributes=_kinds(channel)[kind], **options)
    pd.testing.assert_frame_equal(result.metrics, expected.metrics)


@pytest.mark.parametrize("kind", ["polars", "arrow"])
def test_event_features_and_attributes_from_polars_or_arrow(cdnow_sample, kind):
    sample = cdnow_sample.iloc[::3]
    events = pd.DataFrame({"customer_id": sample["customer_id"].to_numpy(),
                           "date": sample["date"].to_numpy(),
                           "event": np.where(np.arange(len(sample)) % 2, "visit", "email")})
    expected = clvlab.event_features(events, "1997-09-30")
    result = clvlab.event_features(_kinds(events)[kind], "1997-09-30")
    assert table_kind(result) == kind
    pd.testing.assert_frame_equal(to_pandas(result, keyed=True), expected, check_names=False)

    ids = np.sort(cdnow_sample["customer_id"].unique())
    channel = pd.DataFrame({"customer_id": ids, "channel": np.where(ids % 2, "web", "store")})
    with_attributes = clvlab.rfm_summary(cdnow_sample, customer_attributes=_kinds(channel)[kind],
                                         **SPLIT)
    assert (with_attributes["channel"] == channel.set_index("customer_id")["channel"]
            .reindex(with_attributes.index)).all()


@pytest.mark.parametrize("kind", ["polars", "arrow"])
def test_bad_input_in_polars_or_arrow_names_the_column_and_the_row(cdnow_sample, kind):
    log = cdnow_sample.head(50).copy()
    log.loc[log.index[7], "amount"] = np.inf
    with pytest.raises(DataValidationError, match="amount") as error:
        clvlab.rfm_summary(_kinds(log)[kind], engine="pandas", amount_col="amount")
    assert "infinite" in str(error.value)
    with pytest.raises(DataValidationError, match="frequency"):
        clvlab.ParetoNBD().fit(like_input(pd.DataFrame({"frequency": [1, -1],
                                                        "recency": [2.0, 0.0],
                                                        "T": [3.0, 3.0]}), kind),
                               time_unit="W")


def test_arrow_kinds_decimals_streams_and_lazy_frames(cdnow_sample, reference):
    """Decimal amounts (from a database) read as numbers; a record batch, a stream, any object
    with the Arrow C stream interface and a polars LazyFrame are tables too."""
    rfm = reference[0]
    table = pa.Table.from_pandas(cdnow_sample, preserve_index=False)
    amounts = [decimal.Decimal(f"{value:.2f}") for value in cdnow_sample["amount"]]
    as_decimal = table.set_column(table.column_names.index("amount"), "amount",
                                  pa.array(amounts, pa.decimal128(12, 2)))

    class Stream:  # only the Arrow PyCapsule interface, as another library would offer
        def __init__(self, table):
            self.table = table

        def __arrow_c_stream__(self, requested_schema=None):
            return self.table.__arrow_c_stream__(requested_schema)

    sources = {"decimal": as_decimal, "batch": table.combine_chunks().to_batches()[0],
               "stream": Stream(table), "lazy": pl.from_arrow(table).lazy(),
               "reader": pa.RecordBatchReader.from_batches(table.schema, table.to_batches())}
    for name, source in sources.items():
        for engine in ("pandas", "duckdb"):
            if name == "reader" and engine == "duckdb":
                source = pa.RecordBatchReader.from_batches(table.schema, table.to_batches())
            result = clvlab.rfm_summary(source, engine=engine, **SPLIT)
            pd.testing.assert_frame_equal(to_pandas(result, keyed=True), rfm, check_exact=False,
                                          rtol=1e-9, obj=f"{name}, {engine}")


def test_clvlab_without_polars_reads_arrow_and_never_imports_polars(tmp_path):
    """polars is an optional extra: with it blocked, Arrow tables work end to end and nothing
    in clvlab imports polars."""
    script = textwrap.dedent("""
        import sys
        sys.modules["polars"] = None  # import polars now raises ImportError
        import pandas as pd, pyarrow as pa
        import clvlab
        from clvlab.data import datasets
        log = pa.Table.from_pandas(datasets.load_cdnow(sample=True), preserve_index=False)
        rfm = clvlab.rfm_summary(log, amount_col="amount", time_unit="W",
                                 calibration_end="1997-09-30")
        assert isinstance(rfm, pa.Table), type(rfm)
        model = clvlab.ParetoNBD().fit(rfm)
        print(round(float(model.expected_purchases(rfm, 13).sum()), 6))
        assert sys.modules["polars"] is None
    """)
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    assert float(run.stdout.strip()) > 0


@pytest.mark.slow
@pytest.mark.once
def test_the_scoring_job_scores_a_polars_or_arrow_log_as_it_scores_pandas(
        cdnow_sample, reference, tracking):
    """The batch scoring job (clvlab.scoring.score) from a registered model: a polars or Arrow
    log and attributes give the file that the pandas log gives."""
    _, pareto, spend = reference
    clvlab.serving.log_clv_model(pareto, spend, registered_model_name="tables")
    ids = np.sort(cdnow_sample["customer_id"].unique())
    channel = pd.DataFrame({"customer_id": ids, "channel": np.where(ids % 3 == 0, "web", "store")})
    folder = tracking[0]
    written = {}
    for kind, engine in (("pandas", "pandas"), ("polars", "pandas"), ("arrow", "pandas"),
                         ("polars", "duckdb")):
        log = cdnow_sample if kind == "pandas" else _kinds(cdnow_sample)[kind]
        attributes = channel.set_index("customer_id") if kind == "pandas" else \
            _kinds(channel)[kind]
        job = clvlab.scoring.score("models:/tables@challenger", log, "1998-06-30",
                                   folder / f"tables-{kind}-{engine}.parquet", horizon=13,
                                   engine=engine, attributes=attributes, progress=False)
        written[kind, engine] = job.read()
    for key in [("polars", "pandas"), ("arrow", "pandas"), ("polars", "duckdb")]:
        pd.testing.assert_frame_equal(written[key], written["pandas", "pandas"], check_exact=False,
                                      rtol=1e-12, obj=str(key))


# Public callables whose table is not a user's: result containers and decisions built from
# clvlab's own pandas output, a fan chart of cumulative_purchase_fan's (indexed by time), and a
# TOML table (the experiment file's [selection]).
NOT_USER_TABLES = {
    "CovariatePaths.__init__", "BacktestResult.__init__", "Calibration.__init__",
    "MonitoringResult.__init__", "SelectionDecision.__init__", "plot_fan_chart", "decide",
    "parse_rule",
}
# table parameters typed Any (they also take paths)
TABLE_PARAMETERS = {"transactions", "events", "log", "panel", "calendar", "attributes",
                    "customer_attributes", "rfm", "table", "X", "frame", "scores",
                    "subscriptions", "covariate_panel", "fan"}


def _public_callables():
    """Every public function and method the reference documents (docs/api_pages.py's list)."""
    import importlib
    import inspect
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "docs"))
    try:
        import api_pages
    finally:
        sys.path.pop(0)
    seen = set()
    for module_name in ["clvlab", *api_pages.MODULES]:
        if module_name == "clvlab.ops.spark":
            continue  # Spark DataFrames: its own engine (and pyspark, imported by the module)
        module = importlib.import_module(module_name)
        for name in getattr(module, "__all__", []):
            obj = getattr(module, name, None)
            if obj is None or id(obj) in seen or inspect.ismodule(obj):
                continue
            seen.add(id(obj))
            if inspect.isclass(obj):
                for member, function in inspect.getmembers(obj, callable):
                    if not (getattr(function, "__module__", None) or "").startswith("clvlab"):
                        continue  # scikit-learn's own (score, get_params) call clvlab's methods
                    if not member.startswith("_") or member == "__init__":
                        yield f"{name}.{member}", function
            elif callable(obj):
                yield name, obj


def test_every_public_function_that_takes_a_table_takes_polars_and_arrow():
    """A new public function with a table parameter fails here until it converts polars and
    Arrow (clvlab.data.tables.accepts_tables, or its own conversion marked with converts)."""
    import inspect

    from clvlab.data.tables import converted_arguments

    missing = []
    for name, function in _public_callables():
        if name in NOT_USER_TABLES:
            continue
        try:
            parameters = inspect.signature(function).parameters
        except (TypeError, ValueError):
            continue
        tables = [p for p, spec in parameters.items()
                  if "DataFrame" in str(spec.annotation)
                  or (p in TABLE_PARAMETERS and spec.annotation in ("Any", inspect.Parameter.empty))]
        # a method is marked on the class's function (inspect.unwrap keeps the marks visible)
        unconverted = [p for p in tables if p not in converted_arguments(function)]
        if unconverted:
            missing.append(f"{name}{unconverted}")
    assert not missing, f"{len(missing)} public callables take tables as pandas only: {missing}"


@pytest.mark.parametrize("kind", ["polars", "arrow"])
def test_the_churn_adjuster_and_a_challenger_take_polars_or_arrow_features(cdnow_sample, kind):
    X, y, purchases = clvlab.churn.churn_training_data(
        _kinds(cdnow_sample)[kind], "1997-09-30", 13, amount_col="amount", with_purchases=True)
    X_pandas, y_pandas, _ = clvlab.churn.churn_training_data(
        cdnow_sample, "1997-09-30", 13, amount_col="amount", with_purchases=True)
    pd.testing.assert_frame_equal(X, X_pandas)
    table = like_input(X, kind)  # the ids as the customer_id column
    adjuster = clvlab.ChurnAdjuster(gain_check=False).fit(table, pl.Series(y.to_numpy()))
    reference = clvlab.ChurnAdjuster(gain_check=False).fit(X, y)
    pd.testing.assert_series_equal(adjuster.probability_of_purchase(table),
                                   reference.probability_of_purchase(X))
    gbm = clvlab.GBMPoissonChallenger(base=None, max_iter=50).fit(table, purchases.to_numpy())
    expected = clvlab.GBMPoissonChallenger(base=None, max_iter=50).fit(X, purchases).predict(X)
    pd.testing.assert_frame_equal(gbm.predict(table), expected)


def test_warnings_point_at_the_users_line_through_the_converting_edges(cdnow_sample):
    """A warning from inside clvlab names the user's call, not a wrapper (clvlab.core.errors.warn):
    the polars edge, the churn adjuster and the summary add frames of their own."""
    import warnings

    X, y = clvlab.churn.churn_training_data(cdnow_sample, "1997-09-30", 13, amount_col="amount")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        clvlab.ChurnAdjuster(gain_check=False).fit(pl.from_pandas(X.reset_index()), y)
        clvlab.rfm_summary(_kinds(cdnow_sample)["arrow"], observation_end="2005-01-01")
    assert {w.category.__name__ for w in caught} >= {"UncheckedAdjustmentWarning", "ClvlabWarning"}
    assert {w.filename for w in caught} == {__file__}, [(w.filename, w.lineno) for w in caught]


def test_clvlab_warns_through_one_function():
    """Every warning goes through clvlab.core.errors.warn, which finds the user's frame: a
    hand-counted stacklevel points into clvlab as soon as a wrapper is added."""
    from pathlib import Path

    src = Path(clvlab.__file__).parent
    direct = [str(path.relative_to(src)) for path in src.rglob("*.py")
              if "warnings.warn(" in path.read_text(encoding="utf-8")
              and path.relative_to(src).as_posix() != "core/errors.py"]
    assert not direct, f"warnings.warn called directly in {direct}"


def test_a_nan_amount_in_a_parquet_file_is_named_as_such(tmp_path):
    """A Parquet file written by Arrow (or polars) keeps NaN as NaN, which DuckDB's pushed-down
    WHERE misses: the error must still name the amount and its row, not another rule."""
    import pyarrow.parquet as pq

    import datetime

    dates = [datetime.date(2020, 1, 1), datetime.date(2020, 2, 1), datetime.date(2020, 1, 5)]
    table = pa.table({"customer_id": [1, 1, 2], "amount": [1.0, float("nan"), 2.0],
                      "date": pa.array(dates, pa.date32())})
    pq.write_table(table, tmp_path / "log.parquet")
    with pytest.raises(DataValidationError, match="'amount': amount is missing or NaN") as error:
        clvlab.rfm_summary(str(tmp_path / "log.parquet"), amount_col="amount", time_unit="W")
    assert "2020-02-01" in str(error.value)
    events = pa.table({"customer_id": [1, 2], "date": table["date"].slice(0, 2),
                       "event": ["visit", "visit"], "value": [float("nan"), 3.0]})
    pq.write_table(events, tmp_path / "events.parquet")
    with pytest.raises(DataValidationError, match="value"):
        clvlab.event_features(str(tmp_path / "events.parquet"), "2020-03-01", engine="duckdb",
                              value_col="value")
