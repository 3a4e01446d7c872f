"""The clvlab command line: help everywhere, rfm from files, atomic and non-destructive outputs."""

from __future__ import annotations

import re
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
               "experiment", "retrain", "compare", "monitor", "demo"]


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
    listed = re.findall(r"^    (\w+)", done.stdout.split("positional arguments:")[1].split(
        "options:")[0], flags=re.M)
    assert listed == SUBCOMMANDS  # a new subcommand is listed here, and so gets its help test


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


def test_every_command_runs_its_body_end_to_end(cdnow_parquet, tmp_path, capsys, tracking):
    """rfm -> fit -> predict -> backtest -> register -> promote -> score -> experiment -> compare,
    each through the command line, each output checked (not only --help)."""
    folder = tmp_path
    rfm_path, model_path, spend_path = folder / "rfm.parquet", folder / "p.json", folder / "g.json"
    assert main(["rfm", str(cdnow_parquet), "-o", str(rfm_path), "--amount-col", "amount",
                 "--time-unit", "W", "--calibration-end", "1997-09-30", "--no-progress"]) == 0
    assert main(["fit", str(rfm_path), "--model", "pareto-nbd", "-o", str(model_path)]) == 0
    assert main(["fit", str(rfm_path), "--model", "gamma-gamma", "-o", str(spend_path)]) == 0
    out = capsys.readouterr().out
    assert "<ParetoNBD: r=" in out and "converged: True; AIC" in out
    pareto = clvlab.load_model(model_path)
    assert pareto.time_unit_ == "W"
    np.testing.assert_allclose(pareto.params_, [0.5534, 10.58, 0.6061, 11.67], rtol=2e-3)

    assert main(["predict", str(model_path), str(rfm_path), "--horizon", "39", "--spend-model",
                 str(spend_path), "--discount-rate", "0.0015", "--margin", "0.3",
                 "-o", str(folder / "pred.csv")]) == 0
    predicted = pd.read_csv(folder / "pred.csv", index_col="customer_id")
    assert len(predicted) == 2357 and set(predicted.columns) >= {"p_alive", "clv"}
    rfm = clvlab.read_rfm(rfm_path)
    np.testing.assert_allclose(predicted["expected_purchases"].sum(),
                               pareto.expected_purchases(rfm, 39).sum(), rtol=1e-9)

    assert main(["backtest", str(cdnow_parquet), "--cutoffs", "1997-09-30", "--horizon", "13",
                 "--amount-col", "amount", "--candidates", "bg-nbd+gamma-gamma,historical-average",
                 "-o", str(folder / "metrics.csv"), "--no-progress"]) == 0
    metrics = pd.read_csv(folder / "metrics.csv")
    assert set(metrics["candidate"]) == {"bg-nbd + gamma-gamma", "historical-average"}

    capsys.readouterr()
    assert main(["register", str(model_path), "--spend-model", str(spend_path), "--name", "e2e"]) == 0
    shown = capsys.readouterr().out
    assert "registered e2e version 1" in shown
    assert f"parts: transaction model ParetoNBD; spend model from {spend_path}" in shown
    assert main(["promote", "e2e"]) == 0
    assert "models:/e2e@champion is now version 1" in capsys.readouterr().out
    scores_path = folder / "scores.parquet"
    assert main(["score", "--model", "models:/e2e@champion", "--transactions", str(cdnow_parquet),
                 "--as-of", "1998-06-30", "--horizon", "26", "-o", str(scores_path),
                 "--no-progress"]) == 0
    assert "mean CLV" in capsys.readouterr().out
    scores = pd.read_parquet(scores_path)
    assert len(scores) == 2357 and np.all(np.isfinite(scores.to_numpy()))

    experiment = folder / "e2e.toml"
    experiment.write_text(f'name = "e2e-experiment"\n[data]\nsource = "{cdnow_parquet}"\n'
                          'amount_col = "amount"\ntime_unit = "W"\n[backtest]\n'
                          'cutoffs = ["1997-09-30"]\nhorizon = 13\n'
                          'candidates = ["historical-average", "active-90d"]\n')
    assert main(["experiment", "run", str(experiment), "--no-progress"]) == 0
    assert "clvlab compare e2e-experiment" in capsys.readouterr().out
    assert main(["compare", "e2e-experiment"]) == 0
    board = capsys.readouterr().out
    assert "historical-average" in board and "active-90d" in board


def test_score_needs_no_amounts_for_a_model_without_spend(cdnow_parquet, cdnow_sample, tmp_path,
                                                          capsys, tracking):
    """A log without amounts scores with a transaction-only model (before: --amount-col ""), and
    the scores have no spend columns (before: expected_spend = clv = 0.0)."""
    log = cdnow_sample.drop(columns="amount")
    log_path = tmp_path / "no_amounts.csv"
    log.to_csv(log_path, index=False)
    rfm = clvlab.rfm_summary(log, time_unit="W", observation_end="1997-09-30")
    clvlab.serving.log_clv_model(clvlab.BetaGeo().fit(rfm), registered_model_name="no-spend")
    out = tmp_path / "s.csv"
    assert main(["score", "--model", "models:/no-spend@challenger", "--transactions", str(log_path),
                 "--as-of", "1998-06-30", "--horizon", "26", "-o", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "no CLV (the model has no spend model)" in printed and "0.00" not in printed
    scores = pd.read_csv(out, index_col=0)
    assert list(scores.columns) == ["p_alive", "probability_of_purchase", "expected_purchases"]
