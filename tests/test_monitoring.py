"""clvlab monitor: PSI, the training profile, the verdict's rules, a simulated drift caught
within the documented weeks, and the command line end to end against a local MLflow store."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import clvlab
from clvlab.core.errors import ClvlabError, ClvlabWarning
from clvlab.data.simulate import transaction_log
from clvlab.models import model_files
from clvlab.models.base import model_from_dict
from clvlab.ops import monitoring_metrics as figures
from clvlab.ops.monitoring import (VERDICT_EXIT_CODES, MonitoringResult, Thresholds, decide,
                                   monitor_forecasts)
from clvlab.ops.serving import CLVModel

PARAMS = {"r": 0.55, "alpha": 10.6, "s": 0.61, "beta": 11.7}
SPEND = {"p": 6.25, "q": 3.74, "v": 15.44}
START = pd.Timestamp("2024-01-01")
SCORED = START + pd.Timedelta(weeks=39)
#: the simulation study's detection delay for a purchase rate halved at the scoring date
#: (benchmarks/bench_monitoring.py, drift@0; see clvlab.ops.monitoring's docstring)
RETRAIN_WITHIN_WEEKS = 2


def simulated_log(customers=2000, seed=11, halve_after=None, spend=False) -> pd.DataFrame:
    """A CDNOW-like Pareto/NBD log over 65 weeks (customers acquired in the first 13); with
    ``halve_after``, each purchase after that date is kept with probability 1/2: the purchase
    rate halves there (thinning a Poisson process)."""
    log = transaction_log(customers, model="pareto-nbd", params=PARAMS,
                          spend=SPEND if spend else None, observation_period=65, seed=seed)
    if halve_after is not None:
        late = (log["date"] > halve_after).to_numpy()
        dropped = late & (np.random.default_rng(seed + 1).random(len(log)) >= 0.5)
        log = log[~dropped].reset_index(drop=True)
    return log


def fitted(log, spend=False):
    rfm = clvlab.rfm_summary(log, amount_col="amount" if spend else None, time_unit="W",
                             observation_end=SCORED)
    model = CLVModel(clvlab.ParetoNBD().fit(rfm), clvlab.GammaGamma().fit(rfm) if spend else None)
    return model, rfm


# --- PSI and the training profile -----------------------------------------------------------
def test_psi_is_the_hand_computation():
    # (0.4 - 0.5) ln(0.4 / 0.5) + (0.4 - 0.3) ln(0.4 / 0.3) + 0
    assert figures.psi([0.5, 0.3, 0.2], [0.4, 0.4, 0.2]) == pytest.approx(
        0.1 * math.log(1.25) + 0.1 * math.log(4 / 3), rel=1e-12)
    assert figures.psi([5, 3, 2], [40, 40, 20]) == pytest.approx(0.0510826, rel=1e-5)  # counts
    assert figures.psi([0.5, 0.5], [0.5, 0.5]) == 0.0
    # an empty bin is floored at 1e-4, not infinite
    assert figures.psi([0.5, 0.5], [1.0, 0.0]) == pytest.approx(
        (1 - 0.5) * math.log(1 / 0.5) + (1e-4 - 0.5) * math.log(1e-4 / 0.5))
    assert math.isnan(figures.psi([0.5, 0.5], [0, 0]))
    # a profile by hand: one edge at 1 (bins (-inf, 1], (1, inf)), half the customers each;
    # the current table has 3 of 4 at or below 1
    profile = {"columns": {"frequency": {"edges": [1.0], "shares": [0.5, 0.5]}}}
    table = figures.drift_table(pd.DataFrame({"frequency": [0, 1, 1, 2]}), profile, "by hand")
    row = table.set_index("column").loc["frequency"]
    assert row["psi"] == pytest.approx(0.25 * math.log(1.5) + 0.25 * math.log(2))  # 0.2747
    assert row["reading"] == "shift" and row["reference"] == "by hand"


def test_fitted_models_carry_a_training_profile_that_files_keep(tmp_path):
    log = simulated_log(customers=600, spend=True)
    model, rfm = fitted(log, spend=True)
    profile = model.transaction.training_profile_
    assert profile["customers"] == len(rfm)
    assert set(profile["columns"]) == {"frequency", "recency", "T", "monetary_value"}
    for entry in profile["columns"].values():
        assert np.all(np.diff(entry["edges"]) > 0) and len(entry["edges"]) <= 9
        assert len(entry["shares"]) == len(entry["edges"]) + 1
        assert sum(entry["shares"]) == pytest.approx(1.0, abs=1e-5)
    # the fit table's own PSI against its profile is 0
    assert figures.drift_table(rfm, profile, "self")["psi"].abs().max() < 1e-4
    assert not hasattr(model.spend, "training_profile_")  # transaction models only
    path = tmp_path / "pnbd.json"
    model.transaction.save(path)
    assert clvlab.load_model(path).training_profile_ == profile
    payload = json.loads(path.read_text())
    del payload["training_profile"]  # a file written before the profile: loads without it
    assert not hasattr(model_from_dict(payload), "training_profile_")
    payload["training_profile"] = {"columns": {"T": {"edges": [2.0, 1.0], "shares": [0.5, 0.3, 0.2]}}}
    with pytest.raises(ClvlabError, match="malformed.*edges must increase"):
        model_from_dict(payload)
    assert model_files.training_profile(rfm.head(99)) is None  # too few customers for deciles


# --- the verdict ----------------------------------------------------------------------------
def metrics(**overrides):
    base = {"purchases_expected": 100.0, "purchases_realised": 100.0,  # the default bands
            "purchases_lower_99": 80.0, "purchases_upper_99": 120.0,
            "purchases_lower_99.9": 70.0, "purchases_upper_99.9": 130.0,
            "activity_auc": 0.8, "calibration_error": 0.02, "psi.frequency": 0.01,
            "psi.monetary_value": math.nan, "new_customer_share": 0.0}
    return {**base, **overrides}


def verdict_of(checks):
    status = set(checks["status"])
    return "retrain" if "retrain" in status else "watch" if "watch" in status else "fine"


def test_the_verdict_follows_the_thresholds_and_says_what_it_did_not_check():
    limits = Thresholds()
    checks = decide(metrics(), limits)
    assert verdict_of(checks) == "fine"
    unchecked = checks[checks["status"] == "not checked"]
    assert list(unchecked["check"]) == ["psi.monetary_value"]  # NaN: not checked, never 0
    watch = decide(metrics(purchases_realised=125.0), limits)
    assert verdict_of(watch) == "watch"
    assert "outside the 99% predictive band [80, 120]" in watch.set_index("check").loc[
        "purchases_band", "reason"]
    assert verdict_of(decide(metrics(purchases_realised=60.0), limits)) == "retrain"
    narrower = Thresholds.of({"band_watch": 0.9, "band_retrain": 0.99})
    unknown = decide(metrics(purchases_realised=125.0), narrower).set_index("check")
    assert unknown.loc["purchases_band", "status"] == "not checked"  # no 90% band was computed
    assert verdict_of(decide(metrics(purchases_realised=125.0, purchases_lower_90=90.0,
                                     purchases_upper_90=110.0), narrower)) == "retrain"
    assert verdict_of(decide(metrics(activity_auc=0.55), limits)) == "watch"
    assert verdict_of(decide(metrics(calibration_error=0.2), limits)) == "watch"
    assert verdict_of(decide(metrics(**{"psi.frequency": 0.3}), limits)) == "watch"
    assert verdict_of(decide(metrics(new_customer_share=0.4), limits)) == "watch"
    coverage = decide(metrics(interval_coverage=0.7, interval_level=0.9), limits)
    assert "coverage of the 90% intervals 0.7 is below 0.85" in " ".join(coverage["reason"])
    everyone = decide(metrics(activity_auc=math.nan), limits)  # e.g. everyone bought
    assert verdict_of(everyone) == "fine"
    assert everyone.set_index("check").loc["activity_auc", "status"] == "not checked"
    with pytest.raises(ClvlabError, match=r"unknown threshold\(s\) \['band'\]"):
        Thresholds.of({"band": 0.9})
    with pytest.raises(ClvlabError, match="band_watch .* must be below band_retrain"):
        Thresholds.of({"band_watch": 0.99, "band_retrain": 0.95})
    with pytest.raises(ClvlabError, match="strictly between 0 and 1"):
        Thresholds.of({"band_retrain": 99})
    assert Thresholds.of({"psi_columns": "frequency, T"}).psi_columns == ("frequency", "T")
    assert set(VERDICT_EXIT_CODES.values()) == {0, 3, 4}  # the CLI's errors are 1 and 2


# --- a simulated drift ----------------------------------------------------------------------
def test_a_halved_purchase_rate_says_retrain_within_the_documented_weeks_and_none_says_fine():
    warnings.simplefilter("ignore", ClvlabWarning)  # fits and logs that end early: not the point
    steady = simulated_log()
    model, rfm = fitted(steady)
    scores = model.predict(rfm, params={"horizon": 26, "time_unit": "W", "interval_level": 0.9})
    for weeks in (4, 13, 26):
        result = monitor_forecasts(model, scores, steady, SCORED, SCORED + pd.Timedelta(weeks=weeks),
                                   horizon=26, interval_level=0.9, band_points=1)
        assert result.verdict == "fine", (weeks, result)
    # at the horizon the expectation is the scores' own: the RFM at the scoring date is rebuilt
    assert result.metrics["purchases_expected"] == pytest.approx(scores["expected_purchases"].sum(),
                                                                 rel=1e-9)
    assert result.metrics["interval_coverage"] >= 0.9

    drifted = simulated_log(halve_after=SCORED)
    model, rfm = fitted(drifted)  # the same history up to the scoring date: same fit
    scores = model.predict(rfm, params={"horizon": 26, "time_unit": "W"})
    verdicts = {}
    for weeks in (1, RETRAIN_WITHIN_WEEKS, 8):
        result = monitor_forecasts(model, scores, drifted, SCORED,
                                   SCORED + pd.Timedelta(weeks=weeks), band_points=1)
        verdicts[weeks] = result.verdict
    assert verdicts[RETRAIN_WITHIN_WEEKS] == verdicts[8] == "retrain", verdicts
    assert "realised repeat purchases" in result.reasons[0] and "99.9% predictive band" in result.reasons[0]
    assert result.metrics["purchases_z"] < -3
    assert result.exit_code == 4


def test_a_model_without_a_profile_is_measured_against_the_rfm_at_the_scoring_date():
    warnings.simplefilter("ignore", ClvlabWarning)  # fits and logs that end early: not the point
    log = simulated_log(customers=800)
    model, rfm = fitted(log)
    del model.transaction.training_profile_  # as a model saved before the profile
    scores = model.predict(rfm, params={"horizon": 13, "time_unit": "W"})
    result = monitor_forecasts(model, scores, log, SCORED, SCORED + pd.Timedelta(weeks=6),
                               band_points=2, band_draws=20)
    assert result.info["drift_reference"] == "scored customers' RFM at the scoring date"
    assert any("no training profile" in note for note in result.notes)
    assert list(result.drift["checked"]) == [True, False, False]  # no monetary_value here
    assert result.tracking["lower 99%"].notna().sum() == 2
    summary = result.summary()
    assert summary.loc["activity_auc", "status"] == "ok" and "purchases_band" in summary.index
    text = repr(result)
    assert text.startswith("<MonitoringResult: FINE") and "800 customers" in text
    with pytest.raises(ClvlabError, match=r"as_of \(2024-09-01\) must come after the scoring date"):
        monitor_forecasts(model, scores, log, SCORED, "2024-09-01")


def test_a_log_cut_short_is_refused_and_a_quiet_end_is_accepted_when_said():
    """A log that stops weeks before as_of (an old extract) would count the missing purchases
    as none: a false "retrain". Refused, unless the user says the log is complete; a log that
    ends a day before as_of (nobody bought on the last day) is only noted."""
    warnings.simplefilter("ignore", ClvlabWarning)
    log = simulated_log(customers=800)
    model, rfm = fitted(log)
    scores = model.predict(rfm, params={"horizon": 13, "time_unit": "W"})
    extract = log[log["date"] <= SCORED + pd.Timedelta(weeks=4)]
    as_of = SCORED + pd.Timedelta(weeks=8)
    with pytest.raises(ClvlabError, match=r"looks cut short.*allow_quiet_end=True"):
        monitor_forecasts(model, scores, extract, SCORED, as_of, band_points=1, band_draws=20)
    said = monitor_forecasts(model, scores, extract, SCORED, as_of, band_points=1, band_draws=20,
                             allow_quiet_end=True)
    assert said.verdict == "retrain"  # what the cut log would have said, as the user asked
    assert any("purchases after its end are counted as none" in n for n in said.notes)
    last = extract["date"].max()
    quiet = monitor_forecasts(model, scores, extract, SCORED, last + pd.Timedelta(days=1),
                              band_points=1, band_draws=20)
    assert any("counted as none" in n for n in quiet.notes) and quiet.verdict == "fine"


def test_a_champion_with_a_churn_adjuster_is_monitored_through_its_base_and_at_its_horizon():
    """The adjuster predicts one horizon: before it every figure is the base model's (said so);
    at it, purchases' MAE, aggregate error, AUC and calibration are the adjusted scores'."""
    from clvlab.churn import ChurnAdjuster, churn_training_data
    from clvlab.ops.scoring_inputs import input_chunks

    warnings.simplefilter("ignore", ClvlabWarning)
    log = simulated_log(customers=800)
    horizon = 13.0
    X, y = churn_training_data(log, SCORED, horizon, amount_col=None, time_unit="W")
    base, rfm = fitted(log)
    adjuster = ChurnAdjuster(clvlab.ParetoNBD(), horizon=horizon, gain_check=False).fit(X, y)
    adjuster.base_model_ = base.transaction
    model = CLVModel(base.transaction, None, adjuster)
    options = {"customer_col": "customer_id", "date_col": "date", "amount_col": None,
               "date_format": None, "timezone": "UTC", "consent_col": None, "withdrawn": None}
    _, _, chunks = input_chunks(model, log, SCORED, "W", "pandas", 10**6, "1GB", options,
                                {"delimiter": None, "decimal": "."})
    scores = model.predict(pd.concat(list(chunks)), params={"horizon": horizon, "time_unit": "W"})
    before = monitor_forecasts(model, scores, log, SCORED, SCORED + pd.Timedelta(weeks=6),
                               band_points=1, band_draws=20)
    assert any("over 6 their own forecasts are not defined" in n for n in before.notes)
    assert before.metrics["purchases_mae"] == before.metrics["base_purchases_mae"]
    at = monitor_forecasts(model, scores, log, SCORED, SCORED + pd.Timedelta(weeks=13),
                           band_points=1, band_draws=20)
    actual = at.metrics["purchases_realised"]
    assert at.metrics["purchases_expected_adjusted"] == pytest.approx(
        scores["expected_purchases"].sum(), rel=1e-12)
    assert at.metrics["purchases_aggregate_pct_error"] == pytest.approx(
        100 * (scores["expected_purchases"].sum() - actual) / actual, rel=1e-9)
    assert at.metrics["activity_auc"] != at.metrics["base_activity_auc"]
    assert at.verdict == "fine", at
    assert any("come through the churn adjuster" in n for n in at.notes)
    # the command line prints the adjusted scores' figures and the base model's apart
    from clvlab.cli.monitor import _figures

    keys = ["purchases_expected", "purchases_realised", "purchases_aggregate_pct_error",
            "activity_auc"]
    table = _figures(at, keys)
    assert list(table.columns) == ["scores (adjusted)", "base model"]
    assert table.loc["purchases_expected", "scores (adjusted)"] == pytest.approx(
        scores["expected_purchases"].sum(), rel=1e-12)
    assert table.loc["purchases_aggregate_pct_error", "base model"] == \
        at.metrics["base_purchases_aggregate_pct_error"]
    assert np.isnan(_figures(before, keys).loc["activity_auc", "scores (adjusted)"])


def test_a_model_without_parameter_uncertainty_gets_a_band_of_process_noise_and_says_so():
    log = simulated_log(customers=500)
    known = clvlab.ParetoNBD.from_params(time_unit="W", **PARAMS)  # no covariance to draw from
    rfm = clvlab.rfm_summary(log, time_unit="W", observation_end=SCORED)
    scores = known.scores(rfm, 13)
    result = monitor_forecasts(known, scores, log, SCORED, SCORED + pd.Timedelta(weeks=4),
                               band_points=1)
    assert any("process noise only" in note for note in result.notes)
    assert np.isfinite(result.metrics["purchases_lower_99"])


def test_the_plots_take_the_tables_or_the_result(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from clvlab.plotting.monitoring import plot_drift, plot_monitoring_tracking

    tracking = pd.DataFrame({"t": [1.0, 2.0], "expected": [10.0, 20.0], "realised": [9.0, 25.0],
                             "lower 95%": [np.nan, 15.0], "upper 95%": [np.nan, 26.0]})
    ax = plot_monitoring_tracking(tracking, time_unit="W")
    assert ax.get_xlabel() == "time since the scoring date (weeks)"
    drift = pd.DataFrame({"column": ["frequency", "T"], "psi": [0.05, np.nan],
                          "checked": [True, False]})
    assert len(plot_drift(drift).patches) == 1  # T has no figure: "n/a"
    with pytest.raises(ClvlabError, match="plot_drift takes a monitoring result or its drift table"):
        plot_drift(tracking)
    plt.close("all")


# --- the command line, end to end -----------------------------------------------------------
@pytest.mark.once
@pytest.mark.slow  # MLflow's store, registration, two scoring jobs, four monitorings: ~25 s
def test_the_command_line_monitors_a_registered_champion_with_exit_codes(tracking, tmp_path, capsys):
    """register -> score (Parquet and CSV) -> monitor: fine (0), watch (3) by a tighter
    threshold, retrain (4) on a drifted log, in a real process too; errors stay 1."""
    import mlflow

    from clvlab.cli import main

    warnings.simplefilter("ignore", ClvlabWarning)  # fits and logs that end early: not the point
    steady = simulated_log(customers=1200, seed=5, spend=True)
    drifted = simulated_log(customers=1200, seed=5, spend=True, halve_after=SCORED)
    steady.to_parquet(tmp_path / "steady.parquet", index=False)
    drifted.to_parquet(tmp_path / "drifted.parquet", index=False)
    model, _ = fitted(steady, spend=True)
    model.transaction.save(tmp_path / "pnbd.json")
    model.spend.save(tmp_path / "gg.json")
    assert main(["register", str(tmp_path / "pnbd.json"), "--spend-model", str(tmp_path / "gg.json"),
                 "--name", "monitored-clv"]) == 0
    assert main(["promote", "monitored-clv"]) == 0
    scored = str(SCORED.date())
    for name in ("scores.parquet", "scores.csv"):
        assert main(["score", "--model", "models:/monitored-clv@champion", "--transactions",
                     str(tmp_path / "steady.parquet"), "--as-of", scored, "--horizon", "26",
                     "--interval-level", "0.9", "-o", str(tmp_path / name), "--no-progress"]) == 0
    capsys.readouterr()
    monitor = ["monitor", "--scores", str(tmp_path / "scores.parquet"), "--as-of", "2024-11-11",
               "--band-points", "2"]
    out_dir = tmp_path / "monitoring"
    assert main(monitor + ["--transactions", str(tmp_path / "steady.parquet"),
                           "--output-dir", str(out_dir)]) == 0
    printed = capsys.readouterr().out
    assert "verdict: fine (exit status 0)" in printed and "found by the file's metadata" in printed
    assert "calibration of P(any purchase) by decile" in printed
    assert sorted(p.name for p in out_dir.iterdir()) == sorted(
        ["summary.csv", "calibration.csv", "drift.csv", "tracking.csv", "monitoring.json",
         "tracking.png", "drift.png"])
    assert (out_dir / "tracking.png").read_bytes().startswith(b"\x89PNG")
    # the same files again without --overwrite: refused before anything is done
    assert main(monitor + ["--transactions", str(tmp_path / "steady.parquet"),
                           "--output-dir", str(out_dir)]) == 1
    assert "pass --overwrite" in capsys.readouterr().err
    # watch: a tighter threshold than the figure (the CSV scores: found by the output tag)
    assert main(["monitor", "--scores", str(tmp_path / "scores.csv"), "--as-of", "2024-11-11",
                 "--transactions", str(tmp_path / "steady.parquet"), "--watch-auc", "0.99",
                 "--band-points", "1", "--no-log"]) == 3
    printed = capsys.readouterr().out
    assert "verdict: watch (exit status 3)" in printed and "auc_watch" in printed
    assert "the scoring run's output tag" in printed
    # an error (as_of before the scoring date) is 1, not a verdict
    assert main(["monitor", "--scores", str(tmp_path / "scores.parquet"), "--as-of", "2024-01-31",
                 "--transactions", str(tmp_path / "steady.parquet"), "--no-log"]) == 1
    assert "must come after the scoring date" in capsys.readouterr().err
    assert main(["monitor", "--scores", str(tmp_path / "scores.parquet"), "--as-of", "2024-11-11",
                 "--transactions", str(tmp_path / "steady.parquet"), "--no-log",
                 "--model-uri", "models:/monitored-clv/2"]) == 1
    assert "is not the model that made the scores (models:/monitored-clv/1" in capsys.readouterr().err
    # retrain, as a scheduler sees it: the process's exit status
    done = subprocess.run([str(Path(sys.executable).with_name("clvlab")), *monitor,
                           "--transactions", str(tmp_path / "drifted.parquet")],
                          capture_output=True, text=True)
    assert done.returncode == 4, done.stderr
    assert "verdict: retrain (exit status 4)" in done.stdout
    run_id = done.stdout.split("logged monitoring run ")[1].split()[0]
    run = mlflow.MlflowClient().get_run(run_id)
    scoring_run = run.data.tags["clvlab.scoring_run_id"]
    assert run.data.tags["clvlab.kind"] == "monitoring" and run.data.tags["clvlab.verdict"] == "retrain"
    assert run.data.tags["model_uri"] == "models:/monitored-clv/1"
    assert run.data.tags["model_version"] == "1" and run.data.tags["scored_as_of"].startswith(scored)
    assert run.data.metrics["purchases_realised"] < run.data.metrics["purchases_lower_99.9"]
    artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(run_id, "monitoring")}
    assert {"monitoring/tracking.png", "monitoring/drift.csv", "monitoring/calibration.csv"} <= artifacts
    version = mlflow.MlflowClient().get_model_version("monitored-clv", "1")
    assert version.tags["clvlab.last_monitoring"] == run_id
    assert mlflow.MlflowClient().get_run(scoring_run).data.tags["clvlab.last_monitoring"] == run_id
    # the API gives the same numbers as the command line
    from clvlab.ops.monitoring import monitor as monitor_api

    again = monitor_api(tmp_path / "scores.parquet", tmp_path / "drifted.parquet", "2024-11-11",
                        band_points=2, log=False)
    assert isinstance(again, MonitoringResult) and again.verdict == "retrain"
    assert again.metrics["purchases_lower_99"] == pytest.approx(run.data.metrics["purchases_lower_99"])
    assert again.metrics["spend_realised"] == pytest.approx(run.data.metrics["spend_realised"])


def test_monitor_has_help_that_documents_the_exit_codes(capsys):
    from clvlab.cli import main

    with pytest.raises(SystemExit) as done:
        main(["monitor", "--help"])
    assert done.value.code == 0
    printed = " ".join(capsys.readouterr().out.split())
    assert "usage: clvlab monitor" in printed and "0 fine, 3 watch, 4 retrain" in printed
