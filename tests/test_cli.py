"""The clvlab command line: help everywhere, rfm from files, atomic and non-destructive outputs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import clvlab
from clvlab.cli import main

from conftest import CDNOW_SPLIT

SUBCOMMANDS = ["rfm", "simulate", "fit", "predict", "backtest", "register", "promote", "score",
               "experiment", "compare", "demo"]


def clvlab_executable() -> str:
    return str(Path(sys.executable).with_name("clvlab"))


@pytest.mark.parametrize("subcommand", SUBCOMMANDS)
def test_every_subcommand_has_help(subcommand):
    done = subprocess.run([clvlab_executable(), subcommand, "--help"], capture_output=True, text=True)
    assert done.returncode == 0
    assert f"usage: clvlab {subcommand}" in done.stdout


def test_top_level_help_lists_subcommands():
    done = subprocess.run([clvlab_executable(), "--help"], capture_output=True, text=True)
    assert done.returncode == 0
    for subcommand in SUBCOMMANDS:
        assert subcommand in done.stdout


@pytest.fixture()
def cdnow_parquet(tmp_path, cdnow_sample) -> Path:
    path = tmp_path / "log.parquet"
    cdnow_sample.to_parquet(path, index=False)
    return path


@pytest.mark.parametrize("suffix", ["parquet", "csv"])
def test_rfm_command_matches_the_library(cdnow_parquet, cdnow_sample, tmp_path, suffix, capsys):
    output = tmp_path / f"rfm.{suffix}"
    code = main(["rfm", str(cdnow_parquet), "-o", str(output), "--amount-col", "amount",
                 "--time-unit", "W", "--calibration-end", CDNOW_SPLIT["calibration_end"],
                 "--observation-end", CDNOW_SPLIT["observation_end"], "--no-progress"])
    assert code == 0
    assert "wrote 2,357 customers" in capsys.readouterr().out
    written = pd.read_parquet(output) if suffix == "parquet" else pd.read_csv(output)
    expected = clvlab.rfm_summary(cdnow_sample, amount_col="amount", time_unit="W", **CDNOW_SPLIT)
    written = written.set_index("customer_id")
    pd.testing.assert_frame_equal(written, expected, check_exact=False, rtol=1e-12,
                                  check_dtype=suffix == "parquet")


def test_rfm_refuses_to_overwrite_without_the_flag(cdnow_parquet, tmp_path, capsys):
    output = tmp_path / "rfm.parquet"
    output.write_text("precious")
    assert main(["rfm", str(cdnow_parquet), "-o", str(output)]) == 1
    assert "exists; pass overwrite=True (--overwrite)" in capsys.readouterr().err
    assert output.read_text() == "precious"
    assert main(["rfm", str(cdnow_parquet), "-o", str(cdnow_parquet), "--overwrite"]) == 1
    assert "is also an input" in capsys.readouterr().err


def test_failed_run_leaves_the_previous_output_and_no_temporary_files(cdnow_parquet, tmp_path, capsys):
    output = tmp_path / "rfm.parquet"
    output.write_text("yesterday's scores")
    code = main(["rfm", str(cdnow_parquet), "-o", str(output), "--overwrite",
                 "--calibration-end", "2001-01-01"])
    assert code == 1
    assert "calibration_end" in capsys.readouterr().err
    assert output.read_text() == "yesterday's scores"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["log.parquet", "rfm.parquet"]


def test_simulate_then_summarise(tmp_path, capsys):
    log_path = tmp_path / "sim.parquet"
    assert main(["simulate", "-o", str(log_path), "--customers", "2000", "--model", "bg-nbd",
                 "--params", "r=0.3", "--seed", "3"]) == 0
    log = pd.read_parquet(log_path)
    assert log["customer_id"].nunique() == 2000
    assert main(["rfm", str(log_path), "-o", str(tmp_path / "rfm.parquet"), "--time-unit", "W",
                 "--amount-col", "amount", "--no-progress"]) == 0
    assert len(pd.read_parquet(tmp_path / "rfm.parquet")) == 2000
    assert main(["simulate", "-o", str(log_path), "--params", "gamma=2"]) == 1
    assert "unknown parameter 'gamma'" in capsys.readouterr().err


def test_demo_runs_the_whole_path(tmp_path, capsys, tracking):
    assert main(["demo", "--output-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "2,357" in out and "1,882" in out
    assert len(pd.read_parquet(tmp_path / "cdnow_rfm.parquet")) == 2357
    assert "promoted to @champion" in out and "mlflow ui --backend-store-uri" in out
    scores = pd.read_parquet(tmp_path / "cdnow_scores.parquet")
    assert len(scores) == 2357 and np.all(np.isfinite(scores.to_numpy()))
