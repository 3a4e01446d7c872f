"""The champion's whole life against a real `mlflow server` on 127.0.0.1, through the command
line: an experiment promotes the winner under its rule, a worse challenger is refused, the
champion scores the base, a monitoring run watches the forecasts, and a retraining on the
grown log refreshes the champion."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from clvlab.data.datasets import load_cdnow
from clvlab.ops.selection import decisions

from conftest import mlflow_server

pytestmark = [pytest.mark.slow, pytest.mark.once]

MODEL = "loop-clv"


def clvlab(*args: str, env: dict, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "clvlab.cli", *args], capture_output=True,
                          text=True, env=env, cwd=cwd, timeout=600)


def experiment(folder: Path, name: str, source: str, candidates: list[str], margin: float) -> Path:
    path = folder / f"{name}.toml"
    path.write_text(f"""name = "loop"
[data]
source = "{source}"
amount_col = "amount"
time_unit = "W"
[backtest]
rolling_cutoffs = 1
horizon = 13
candidates = {json.dumps(candidates)}
intervals = false
[selection]
registered_model = "{MODEL}"
target = "activity"
metric = "auc"
margin = {margin}
""")
    return path


def test_experiment_promotion_refusal_scoring_monitoring_and_retraining(tmp_path, monkeypatch):
    log = load_cdnow(sample=True)
    log[log["date"] <= "1997-09-30"].to_csv(tmp_path / "log_1997-09.csv", index=False)
    log[log["date"] <= "1998-03-31"].to_csv(tmp_path / "log_1998-03.csv", index=False)
    with mlflow_server(tmp_path) as uri:
        env = {**os.environ, "MLFLOW_TRACKING_URI": uri}
        env.pop("MLFLOW_EXPERIMENT_ID", None)
        # 1. the first run: no champion yet, the best registrable candidate becomes it
        first = clvlab("experiment", "run", str(experiment(
            tmp_path, "first", "log_1997-09.csv", ["bg-nbd+gamma-gamma", "historical-average"],
            0.01)), "--no-progress", env=env, cwd=tmp_path)
        assert first.returncode == 0, first.stderr
        assert "decision: first champion" in first.stdout
        # 2. a challenger that cannot beat it by the margin is registered but not promoted
        second = clvlab("retrain", str(experiment(tmp_path, "second", "log_1997-09.csv",
                                                  ["pareto-nbd+gamma-gamma"], 0.5)),
                        "--no-progress", env=env, cwd=tmp_path)
        assert second.returncode == 0, second.stderr
        assert "decision: kept" in second.stdout, second.stdout
        shown = clvlab("compare", "loop", env=env, cwd=tmp_path)
        assert "kept, version 2" in shown.stdout and "first champion, version 1" in shown.stdout
        monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)  # the API reads the same server
        made = decisions("loop")
        assert list(made["decision"]) == ["kept", "first champion"]
        assert made["champion_score"].notna().iloc[0] and made["winner_score"].notna().all()
        # 3. the champion (version 1) scores every customer as of the end of the first log
        scored = clvlab("score", "--model", f"models:/{MODEL}@champion", "--transactions",
                        "log_1997-09.csv", "--as-of", "1997-09-30", "-o", "scores.parquet",
                        "--horizon", "26", "--amount-col", "amount", env=env, cwd=tmp_path)
        assert scored.returncode == 0, scored.stderr
        # 4. monitoring half a year on: the verdict is the exit status, the run is linked
        watched = clvlab("monitor", "--scores", "scores.parquet", "--transactions",
                         "log_1998-03.csv", "--as-of", "1998-03-31", "--amount-col", "amount",
                         "--band-draws", "20", env=env, cwd=tmp_path)
        assert watched.returncode in (0, 3, 4), watched.stderr
        verdict = {0: "fine", 3: "watch", 4: "retrain"}[watched.returncode]
        assert verdict in watched.stdout
        import mlflow

        mlflow.set_tracking_uri(uri)
        client = mlflow.MlflowClient()
        runs = mlflow.search_runs(search_all_experiments=True,
                                  filter_string="tags.`clvlab.kind` = 'monitoring'")
        assert len(runs) == 1
        scoring = mlflow.search_runs(search_all_experiments=True,
                                     filter_string="tags.`clvlab.kind` = 'scoring'")
        monitoring = runs.iloc[0]
        assert scoring["run_id"].iloc[0] in set(monitoring.filter(like="tags.").astype(str))
        assert str(client.get_model_version_by_alias(MODEL, "champion").version) == "1"
        # 5. retraining on the grown log: the champion's own candidate, refitted, replaces it
        third = clvlab("retrain", str(experiment(tmp_path, "third", "log_1998-03.csv",
                                                 ["bg-nbd+gamma-gamma"], 0.01)),
                       "--no-progress", env=env, cwd=tmp_path)
        assert third.returncode == 0, third.stderr
        assert "decision: refreshed" in third.stdout, third.stdout
        champion = client.get_model_version_by_alias(MODEL, "champion")
        assert str(champion.version) == "3"
        backtest_run = champion.tags["clvlab.selection.backtest_run"]
        assert client.get_run(backtest_run).data.tags["clvlab.selection.decision"] == "refreshed"
        assert champion.tags["clvlab.selection.fitted_to"] == "1998-03-31"
        assert champion.tags["clvlab.selection.champion_version"] == "1"
