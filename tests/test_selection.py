"""Selection and promotion by an experiment's [selection] rule (clvlab.ops.selection)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from clvlab.core.errors import ClvlabError
from clvlab.ops.experiments import load_experiment
from clvlab.ops.selection import SelectionRule, decide, parse_rule

RULE = SelectionRule("m", "activity", "auc", margin=0.01)


def scores(**values) -> pd.DataFrame:
    names = list(values)
    frame = pd.DataFrame({"score": [values[n] for n in names], "cutoffs": 2, "complete": True,
                          "registrable": [not n.startswith("historical") for n in names]},
                         index=[n.replace("_", " + ").replace("pnbd", "pareto-nbd")
                                .replace("bgnbd", "bg-nbd") for n in names])
    return frame.sort_values("score", ascending=False)


def test_the_first_champion_is_the_best_registrable_candidate_not_a_baseline():
    table = scores(historical=0.9, pnbd=0.85, bgnbd=0.84)
    table.index = ["historical-average", "pareto-nbd", "bg-nbd"]
    made = decide(table, RULE, None)
    assert made.decision == "first champion" and made.promoted
    assert made.winner == "pareto-nbd" and made.leader == "historical-average"
    assert "cannot be registered" in made.reason


@pytest.mark.parametrize("challenger, decision", [(0.86, "kept"), (0.87, "promoted"),
                                                  (0.8699, "kept")])
def test_a_challenger_must_beat_the_champion_by_the_margin(challenger, decision):
    table = pd.DataFrame({"score": [challenger, 0.86], "cutoffs": 2, "complete": True,
                          "registrable": True}, index=["bg-nbd", "pareto-nbd"])
    table = table.sort_values("score", ascending=False, kind="stable")
    made = decide(table, RULE, ("3", "pareto-nbd"))
    if table.index[0] == "pareto-nbd":  # a tie: the champion's own candidate leads
        assert made.decision == "refreshed"
        return
    assert made.decision == decision, made.reason
    assert made.champion_score == 0.86 and made.champion_version == "3"


def test_lower_is_better_metrics_and_signed_errors_count_by_their_direction():
    mae = SelectionRule("m", "purchases", "mae", margin=0.05)
    assert mae.improvement(0.20, 0.30) == pytest.approx(0.10)
    bias = SelectionRule("m", "purchases", "aggregate_pct_error", margin=1.0)
    assert bias.improvement(-2.0, 5.0) == pytest.approx(3.0)  # |-2| is 3 better than |5|
    coverage = SelectionRule("m", "purchases", "coverage_90")
    assert coverage.improvement(0.89, 0.80) == pytest.approx(0.09)


def test_the_champions_own_candidate_is_refreshed_or_kept_as_the_rule_says():
    table = pd.DataFrame({"score": [0.9, 0.8], "cutoffs": 2, "complete": True,
                          "registrable": True}, index=["pareto-nbd + gamma-gamma", "bg-nbd"])
    assert decide(table, RULE, ("1", "pareto-nbd + gamma-gamma")).decision == "refreshed"
    no_refresh = SelectionRule("m", "activity", "auc", refresh=False)
    assert decide(table, no_refresh, ("1", "pareto-nbd + gamma-gamma")).decision == "kept"


def test_a_candidate_missing_a_cutoff_cannot_win():
    table = pd.DataFrame({"score": [0.95, 0.8], "cutoffs": [1, 2], "complete": [False, True],
                          "registrable": True}, index=["bg-nbd", "pareto-nbd"])
    assert decide(table, RULE, None).winner == "pareto-nbd"
    table["complete"] = False
    assert decide(table, RULE, None).decision == "nothing to register"


def test_a_selection_that_registers_nothing_fails_the_command(monkeypatch, tmp_path, capsys):
    """A scheduled retraining that registered nothing exits 1 with the reason, not 0."""
    from types import SimpleNamespace

    from clvlab.cli import main
    from clvlab.ops import experiments

    table = pd.DataFrame({"score": [float("nan")], "cutoffs": [1], "complete": [True],
                          "registrable": True}, index=["bg-nbd"])
    made = decide(table, RULE, None)
    monkeypatch.setattr(experiments, "load_experiment",
                        lambda path: {"name": "x", "selection": {"registered_model": "m"}})
    monkeypatch.setattr(experiments, "run_experiment", lambda path, progress=None: SimpleNamespace(
        result="<backtest>", run_id="r1", selection=made))
    assert main(["retrain", str(tmp_path / "x.toml")]) == 1
    captured = capsys.readouterr()
    assert "nothing was registered: no candidate that can be registered" in captured.err


@pytest.mark.parametrize("table, message", [
    ({"target": "spend", "metric": "auc"}, "needs registered_model"),
    ({"registered_model": "m", "target": "revenue", "metric": "mae"}, "target must be one of"),
    ({"registered_model": "m", "target": "spend", "metric": "accuracy"}, "metric 'accuracy'"),
    ({"registered_model": "m", "target": "spend", "metric": "mae", "margin": -1}, "margin must"),
    ({"registered_model": "m", "target": "spend", "metric": "mae", "refresh": "yes"}, "refresh"),
    ({"registered_model": "m", "target": "spend", "metric": "mae", "alias": "x"}, "unknown key"),
])
def test_a_bad_rule_is_refused_naming_the_file_and_key(table, message):
    with pytest.raises(ClvlabError, match=message) as caught:
        parse_rule("exp.toml", table)
    assert "exp.toml: [selection]" in str(caught.value)


def experiment(folder: Path, candidates: list[str], **selection_keys) -> Path:
    rule = "\n".join(f"{k} = {v!r}".replace("'", '"').replace("True", "true")
                     .replace("False", "false") for k, v in selection_keys.items())
    path = folder / "exp.toml"
    path.write_text(f"""name = "selection-test"
[data]
source = "cdnow:sample"
amount_col = "amount"
time_unit = "W"
[backtest]
rolling_cutoffs = 1
horizon = 13
candidates = {candidates!r}
intervals = false
[selection]
registered_model = "selection-clv"
{rule}
""".replace("'", '"'))
    return path


def test_rolling_cutoffs_end_one_horizon_before_the_log_and_exclude_fixed_ones(tmp_path):
    path = experiment(tmp_path, ["bg-nbd"], target="activity", metric="auc")
    config = load_experiment(path)
    assert config["selection"].column == "activity_auc"
    path.write_text(path.read_text().replace("rolling_cutoffs = 1",
                                             'rolling_cutoffs = 1\ncutoffs = ["1997-09-30"]'))
    with pytest.raises(ClvlabError, match="not both"):
        load_experiment(path)


@pytest.mark.parametrize("path", sorted((Path(__file__).resolve().parents[1] / "experiments")
                                        .glob("*.toml")), ids=lambda p: p.name)
def test_every_shipped_experiment_file_loads(path):
    config = load_experiment(path)
    if path.name == "cdnow_champion.toml":
        assert config["selection"].column == "spend_normalized_gini"
        assert config["backtest"]["rolling_cutoffs"] == 3


@pytest.mark.parametrize("target, metric", [("spend", "auc"), ("activity", "mae"),
                                            ("spend", "log_score")])
def test_a_metric_the_target_does_not_write_is_refused_before_the_backtest(target, metric):
    with pytest.raises(ClvlabError, match=f"writes no {target}_{metric}"):
        parse_rule("exp.toml", {"registered_model": "m", "target": target, "metric": metric})


def test_too_many_rolling_cutoffs_name_the_option_and_the_most_the_log_holds(tmp_path):
    from clvlab.ops.experiments import _rolling_cutoffs
    from clvlab.data.datasets import load_cdnow

    with pytest.raises(ClvlabError, match=r"rolling_cutoffs = 50: .* use rolling_cutoffs = \d"):
        _rolling_cutoffs(load_cdnow(sample=True), {"amount_col": "amount"},
                         {"horizon": 13, "rolling_cutoffs": 50})
