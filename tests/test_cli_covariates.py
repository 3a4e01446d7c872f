"""The command line on a par with the API (issue 29): customer ids that survive every table the
commands write and read (items 2 and 15), ids written with leading zeros (item 11), covariates
and the dropout form on the command line (item 12), the time unit and the horizon of a scoring
printout (items 1 and 6), and warnings on one line (item 15)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import clvlab
from clvlab.cli import main

APPAREL = Path(__file__).resolve().parents[2] / "shared" / "data" / "apparel"

# a hand-written log and attributes file whose ids are zero-padded, as exports often are
LOG = """cust,date,amount
00001,2024-01-01,10
00001,2024-02-01,12
00001,2024-03-15,11
00002,2024-01-05,5
00003,2024-01-10,7
00003,2024-03-10,8
00003,2024-04-10,9
00010,2024-01-20,4
00010,2024-02-20,6
"""
ATTRIBUTES = """cust,channel
00010,shop
00003,web
00002,shop
00001,web
"""


@pytest.fixture()
def padded(tmp_path) -> tuple[Path, Path]:
    log, attributes = tmp_path / "log.csv", tmp_path / "attributes.csv"
    log.write_text(LOG)
    attributes.write_text(ATTRIBUTES)
    return log, attributes


def _rfm(log: Path, output: Path, *extra: str) -> int:
    return main(["rfm", str(log), "-o", str(output), "--customer-col", "cust", "--time-unit", "W",
                 "--amount-col", "amount", "--no-progress", *extra])


# item 2 and 15: ids survive ------------------------------------------------------------------

@pytest.mark.parametrize("suffix", ["csv", "parquet"])
@pytest.mark.parametrize("with_attributes", [False, True])
def test_rfm_writes_the_id_as_its_first_column_with_or_without_attributes(padded, tmp_path,
                                                                          suffix, with_attributes):
    log, attributes = padded
    output = tmp_path / f"rfm.{suffix}"
    extra = ["--attributes", str(attributes)] if with_attributes else []
    with pytest.warns(clvlab.ClvlabWarning) if with_attributes else _nothing():
        assert _rfm(log, output, *extra) == 0
    flat = pd.read_csv(output, dtype=str) if suffix == "csv" else pd.read_parquet(output)
    assert flat.columns[0] == "cust" and isinstance(flat.index, pd.RangeIndex)
    assert list(flat["cust"]) == ["00001", "00002", "00003", "00010"]
    if with_attributes:
        assert list(flat["channel"]) == ["web", "shop", "web", "shop"]
    if suffix == "parquet":  # read back without options: the id column is recorded
        table = clvlab.read_rfm(output)
        assert table.index.name == "cust" and table.index[0] == "00001"


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


@pytest.mark.parametrize("suffix", ["csv", "parquet"])
def test_predict_keeps_the_ids_of_every_format(padded, tmp_path, suffix, capsys):
    """Before: a CSV table gave an unnamed 0..n-1 index and a join put scores on the wrong
    customers; zero-padded ids lost their zeros."""
    log, _ = padded
    rfm, model = tmp_path / f"rfm.{suffix}", tmp_path / "m.json"
    assert _rfm(log, rfm) == 0
    unit = ["--time-unit", "W"] if suffix == "csv" else []
    id_col = ["--customer-col", "cust"] if suffix == "csv" else []
    clvlab.BetaGeo.from_params("W", r=0.5, alpha=5.0, a=0.5, b=3.0).save(model)
    for out_suffix in ("csv", "parquet"):
        output = tmp_path / f"scores.{out_suffix}"
        assert main(["predict", str(model), str(rfm), "--horizon", "10", "-o", str(output),
                     *unit, *id_col]) == 0
        flat = pd.read_csv(output, dtype={"cust": str}) if out_suffix == "csv" else \
            pd.read_parquet(output)
        assert flat.columns[0] == "cust"
        assert list(flat["cust"]) == ["00001", "00002", "00003", "00010"]
    printed = capsys.readouterr().out
    assert "id column 'cust'" in printed and "horizon 10 W (weeks)" in printed


def test_predict_refuses_a_table_whose_ids_it_cannot_find(padded, tmp_path, capsys):
    log, _ = padded
    rfm, model = tmp_path / "rfm.csv", tmp_path / "m.json"
    assert _rfm(log, rfm) == 0
    clvlab.BetaGeo.from_params("W", r=0.5, alpha=5.0, a=0.5, b=3.0).save(model)
    capsys.readouterr()
    assert main(["predict", str(model), str(rfm), "--horizon", "10", "--time-unit", "W",
                 "-o", str(tmp_path / "s.csv")]) == 1
    err = capsys.readouterr().err
    assert "customer ids of the RFM table" in err and "--customer-col cust" in err
    assert not (tmp_path / "s.csv").exists()


# item 1 and 6: the unit of a CSV table, the horizon and the spend per purchase ----------------

def test_predict_refuses_a_csv_table_without_time_unit_and_labels_its_printout(
        cdnow_sample, tmp_path, capsys):
    rfm = clvlab.rfm_summary(cdnow_sample.iloc[:1500], amount_col="amount", time_unit="W")
    rfm.to_csv(tmp_path / "rfm.csv")
    transaction = tmp_path / "p.json"
    spend = tmp_path / "g.json"
    clvlab.ParetoNBD().fit(rfm).save(transaction)
    clvlab.GammaGamma().fit(rfm[rfm["frequency"] > 0]).save(spend)
    command = ["predict", str(transaction), str(tmp_path / "rfm.csv"), "--horizon", "52",
               "--spend-model", str(spend), "-o", str(tmp_path / "s.csv")]
    assert main(command) == 1
    assert "--time-unit" in capsys.readouterr().err
    assert main(command + ["--time-unit", "W"]) == 0
    printed = capsys.readouterr().out
    assert "horizon 52 W (weeks)" in printed
    assert "expected spend per purchase (not a total)" in printed


# item 11: zero-padded ids ---------------------------------------------------------------------

def test_zero_padded_ids_match_between_log_and_attributes(padded, tmp_path, capsys):
    """Before: "00001" was text in the log and 1 in the attributes, and the command failed
    with "convert one to the other's type"."""
    log, attributes = padded
    with pytest.warns(clvlab.ClvlabWarning, match="read as text"):
        assert _rfm(log, tmp_path / "rfm.parquet", "--attributes", str(attributes)) == 0
    table = clvlab.read_rfm(tmp_path / "rfm.parquet")
    assert table.loc["00010", "channel"] == "shop" and table.loc["00001", "channel"] == "web"


def test_text_and_numeric_ids_are_matched_as_text_and_said_so(padded, tmp_path):
    """A Parquet attributes file with numbers against a log whose ids are text: matched as
    text (7 matches "7", never "007"), with a warning."""
    log = tmp_path / "plain.csv"
    log.write_text(LOG.replace("0000", "").replace("0001", "1"))  # ids 1, 2, 3, 10 as written
    numbers = pd.DataFrame({"cust": [1, 2, 3, 10], "channel": ["web", "shop", "web", "shop"]})
    numbers.to_parquet(tmp_path / "attributes.parquet", index=False)
    # the log read by DuckDB has numeric ids here; make the attributes text to cross the kinds
    text = numbers.assign(cust=numbers["cust"].astype(str))
    text.to_parquet(tmp_path / "text.parquet", index=False)
    with pytest.warns(clvlab.ClvlabWarning, match="matched as text"):
        assert _rfm(log, tmp_path / "rfm.parquet", "--attributes",
                    str(tmp_path / "text.parquet")) == 0
    table = clvlab.read_rfm(tmp_path / "rfm.parquet")
    assert table.loc[10, "channel"] == "shop"


# item 12: covariates on the command line -------------------------------------------------------

@pytest.fixture(scope="module")
def apparel_sample(tmp_path_factory) -> tuple[Path, Path]:
    """200 of the apparel retailer's customers (log and static covariates Gender, Channel)."""
    folder = tmp_path_factory.mktemp("apparel")
    log = pd.read_csv(APPAREL / "apparel_transactions.csv")
    covariates = pd.read_csv(APPAREL / "apparel_static_covariates.csv")
    kept = covariates["Id"].iloc[::3]
    log[log["Id"].isin(kept)].to_csv(folder / "log.csv", index=False)
    covariates[covariates["Id"].isin(kept)].to_csv(folder / "covariates.csv", index=False)
    return folder / "log.csv", folder / "covariates.csv"


APPAREL_LOG = ["--customer-col", "Id", "--date-col", "Date", "--amount-col", "Price"]


def test_backtest_takes_attributes_and_candidates_with_commas_in_brackets(apparel_sample,
                                                                          tmp_path, capsys):
    """Before: no --attributes, and "pareto-nbd[Gender,Channel]" was split at its comma."""
    log, covariates = apparel_sample
    output = tmp_path / "metrics.csv"
    assert main(["backtest", str(log), *APPAREL_LOG, "--cutoffs", "2006-12-31",
                 "--horizon", "52", "--attributes", str(covariates), "--candidates",
                 "pareto-nbd[Gender,Channel],bg-nbd[Gender,Channel;dropout_form=b],"
                 "historical-average", "-o", str(output), "--no-progress"]) == 0
    names = set(pd.read_csv(output)["candidate"])
    assert names == {"pareto-nbd[Gender,Channel]", "bg-nbd[Gender,Channel;dropout_form=b]",
                     "historical-average"}


def test_a_failing_candidate_is_reported_and_the_others_finish(apparel_sample, tmp_path,
                                                               capsys):
    """BG/NBD with dropout covariates in the a_and_b form has no interior maximum on the
    apparel data: before, the whole backtest stopped with a traceback; now it is reported
    with its cutoff and the others are in the table."""
    log, covariates = apparel_sample
    with pytest.warns(clvlab.ClvlabWarning, match="failed at cutoff 2006-12-31"):
        code = main(["backtest", str(log), *APPAREL_LOG, "--cutoffs", "2006-12-31",
                     "--horizon", "52", "--attributes", str(covariates), "--candidates",
                     "bg-nbd[Gender,Channel],historical-average", "-o",
                     str(tmp_path / "m.csv"), "--no-progress"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "bg-nbd[Gender,Channel] at cutoff 2006-12-31" in printed
    assert "no interior maximum" in printed
    assert set(pd.read_csv(tmp_path / "m.csv")["candidate"]) == {"historical-average"}


def test_fit_and_predict_with_attributes_and_the_dropout_form(apparel_sample, tmp_path, capsys):
    log, covariates = apparel_sample
    rfm, model = tmp_path / "rfm.parquet", tmp_path / "bg.json"
    assert main(["rfm", str(log), "-o", str(rfm), *APPAREL_LOG, "--time-unit", "W",
                 "--calibration-end", "2006-12-31", "--no-progress"]) == 0
    assert main(["fit", str(rfm), "--model", "bg-nbd", "--dropout-covariates", "Gender,Channel",
                 "--dropout-form", "b", "--attributes", str(covariates), "-o", str(model)]) == 0
    fitted = clvlab.load_model(model)
    assert fitted.dropout_form == "b"
    assert main(["fit", str(rfm), "--model", "pareto-nbd", "--dropout-form", "b",
                 "-o", str(tmp_path / "p.json")]) == 1
    assert "--dropout-form is a setting of bg-nbd and mbg-nbd" in capsys.readouterr().err
    # predict reads the covariates from --attributes (before: no such option)
    assert main(["predict", str(model), str(rfm), "--horizon", "52", "--attributes",
                 str(covariates), "-o", str(tmp_path / "s.csv")]) == 0
    scores = pd.read_csv(tmp_path / "s.csv")
    assert scores.columns[0] == "Id" and np.all(np.isfinite(scores["expected_purchases"]))
    assert main(["predict", str(model), str(rfm), "--horizon", "52",
                 "-o", str(tmp_path / "s2.csv")]) == 1
    assert "Gender" in capsys.readouterr().err


def test_fit_attributes_on_a_table_that_holds_them_names_the_columns(apparel_sample, tmp_path,
                                                                     capsys):
    """Before: AttributeError: 'DataFrame' object has no attribute 'dtype'."""
    log, covariates = apparel_sample
    rfm = tmp_path / "rfm.parquet"
    assert main(["rfm", str(log), "-o", str(rfm), *APPAREL_LOG, "--time-unit", "W",
                 "--attributes", str(covariates), "--no-progress"]) == 0
    assert main(["fit", str(rfm), "--model", "pareto-nbd", "--purchase-covariates", "Channel",
                 "--attributes", str(covariates), "-o", str(tmp_path / "p.json")]) == 1
    err = capsys.readouterr().err
    assert "['Gender', 'Channel']" in err and "already columns of the table" in err
    # the table's own columns serve without --attributes
    assert main(["fit", str(rfm), "--model", "pareto-nbd", "--purchase-covariates", "Channel",
                 "-o", str(tmp_path / "p.json")]) == 0


# item 15: warnings on one line ------------------------------------------------------------------

def test_warnings_print_as_one_line_without_python_source(padded, tmp_path):
    log, attributes = padded
    done = subprocess.run(
        [str(Path(sys.executable).with_name("clvlab")), "rfm", str(log), "-o",
         str(tmp_path / "r.csv"), "--customer-col", "cust", "--time-unit", "W", "--no-progress",
         "--attributes", str(attributes)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert lines and all(line.startswith("clvlab: warning: ") for line in lines), lines
    assert "return args.run" not in done.stderr and ".py:" not in done.stderr
