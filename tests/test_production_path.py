"""Issue 20's production path: the time unit travels with tables and models, one scoring function
serves every entry point, unknown is never 0, mistyped rates and margins are refused, and
Bayesian point fits report convergence only when it was checked."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import clvlab
from clvlab.cli import main
from clvlab.errors import ClvlabError

from conftest import CDNOW_SPLIT


def clvlab_executable() -> str:
    return str(Path(sys.executable).with_name("clvlab"))


@pytest.fixture(scope="module")
def cdnow_rfm(cdnow_sample) -> pd.DataFrame:
    return clvlab.rfm_summary(cdnow_sample, amount_col="amount", time_unit="W", **CDNOW_SPLIT)


@pytest.fixture(scope="module")
def fitted(cdnow_rfm):
    return clvlab.BetaGeo().fit(cdnow_rfm), clvlab.GammaGamma().fit(cdnow_rfm)


# --- 1. the time unit -------------------------------------------------------------------------
def test_a_model_of_durations_without_a_unit_cannot_be_saved(cdnow_rfm, tmp_path):
    bare = pd.DataFrame(cdnow_rfm)  # the same numbers, no attrs: the unit is unknown
    bare.attrs = {}
    model = clvlab.BetaGeo().fit(bare)
    assert model.time_unit_ is None
    with pytest.raises(ClvlabError, match="no time unit.*time_unit='W'"):
        model.save(tmp_path / "m.json")
    assert not (tmp_path / "m.json").exists()
    model = clvlab.BetaGeo().fit(bare, time_unit="weeks")
    model.save(tmp_path / "m.json")
    assert json.loads((tmp_path / "m.json").read_text())["time_unit"] == "W"
    with pytest.raises(ClvlabError, match="records its durations in 'W'"):
        clvlab.BetaGeo().fit(cdnow_rfm, time_unit="D")
    # spend has no durations: a Gamma-Gamma model saves without a unit
    clvlab.GammaGamma().fit(bare).save(tmp_path / "gg.json")


def test_a_model_without_a_unit_is_not_registered(cdnow_rfm):
    bare = pd.DataFrame(cdnow_rfm)
    bare.attrs = {}
    with pytest.raises(ClvlabError, match="no time unit"):
        clvlab.serving.log_clv_model(clvlab.BetaGeo().fit(bare))


def test_the_scoring_job_never_assumes_weeks(cdnow_rfm):
    from clvlab.scoring import _model_time_unit
    from clvlab.serving import CLVModel

    bare = pd.DataFrame(cdnow_rfm)
    bare.attrs = {}
    model = CLVModel(clvlab.BetaGeo().fit(bare))
    with pytest.raises(ClvlabError, match="records no time unit"):
        _model_time_unit("models:/x@champion", None, model)
    assert _model_time_unit("models:/x@champion", None, CLVModel(clvlab.BetaGeo().fit(cdnow_rfm))) == "W"


@pytest.fixture(scope="module")
def cli_files(tmp_path_factory, cdnow_sample):
    """A CDNOW log summarised by `clvlab rfm` in days and in weeks (Parquet), and in days (CSV)
    with the customer column named `cust`."""
    folder = tmp_path_factory.mktemp("cli")
    log = cdnow_sample.rename(columns={"customer_id": "cust"})
    log_path = folder / "log.parquet"
    log.to_parquet(log_path, index=False)
    for unit, suffix in (("D", "parquet"), ("W", "parquet"), ("D", "csv")):
        assert main(["rfm", str(log_path), "-o", str(folder / f"rfm_{unit}.{suffix}"),
                     "--customer-col", "cust", "--amount-col", "amount", "--time-unit", unit,
                     "--calibration-end", CDNOW_SPLIT["calibration_end"], "--no-progress"]) == 0
    return folder


def test_the_unit_travels_from_rfm_through_fit_to_predict(cli_files, capsys):
    folder = cli_files
    model_path, spend_path = folder / "days.json", folder / "spend.json"
    assert main(["fit", str(folder / "rfm_D.parquet"), "--model", "bg-nbd", "-o", str(model_path)]) == 0
    assert main(["fit", str(folder / "rfm_D.parquet"), "--model", "gamma-gamma", "-o",
                 str(spend_path)]) == 0
    assert json.loads(model_path.read_text())["time_unit"] == "D"
    out = folder / "pred.parquet"
    assert main(["predict", str(model_path), str(folder / "rfm_D.parquet"), "--horizon", "90",
                 "--spend-model", str(spend_path), "--discount-rate", "0.0002", "--margin", "0.3",
                 "-o", str(out)]) == 0
    predictions = pd.read_parquet(out)
    assert list(predictions.columns)[0] == "cust"  # the id column the rfm table recorded, first
    predictions = predictions.set_index("cust")
    # the same numbers as the Python API on the same table
    rfm = clvlab.read_rfm(folder / "rfm_D.parquet")
    model, spend = clvlab.load_model(model_path), clvlab.load_model(spend_path)
    pd.testing.assert_series_equal(predictions["expected_purchases"],
                                   model.expected_purchases(rfm, 90), check_names=False)
    want = clvlab.customer_lifetime_value(model, spend, rfm, 90, 0.0002, 0.3, unvalued="population")
    np.testing.assert_allclose(predictions["clv"], want, rtol=1e-12)
    # a days model on a weeks table: refused, nothing written
    capsys.readouterr()
    assert main(["predict", str(model_path), str(folder / "rfm_W.parquet"), "--horizon", "90",
                 "-o", str(folder / "wrong.parquet")]) == 1
    assert "is in weeks ('W') but the BetaGeo was fitted in days ('D')" in capsys.readouterr().err
    assert not (folder / "wrong.parquet").exists()


def test_a_csv_table_needs_its_unit(cli_files, capsys):
    folder = cli_files
    assert main(["fit", str(folder / "rfm_D.csv"), "--model", "pareto-nbd", "--customer-col",
                 "cust", "-o", str(folder / "p.json")]) == 1
    assert "--time-unit" in capsys.readouterr().err
    assert not (folder / "p.json").exists()
    assert main(["fit", str(folder / "rfm_D.csv"), "--model", "bg-nbd", "--customer-col", "cust",
                 "--time-unit", "D", "-o", str(folder / "b.json")]) == 0
    assert json.loads((folder / "b.json").read_text())["time_unit"] == "D"
    # a spend model has no durations, so its CSV needs no unit
    assert main(["fit", str(folder / "rfm_D.csv"), "--model", "gamma-gamma", "--customer-col",
                 "cust", "-o", str(folder / "g.json")]) == 0


# --- 4 and 5. one scoring function; unknown is absent -----------------------------------------
def test_every_entry_point_scores_alike_and_values_free_repeaters_the_same(fitted, cdnow_rfm, tmp_path):
    transaction, spend = fitted
    rfm = cdnow_rfm.copy()
    free = rfm.index[rfm["frequency"] > 0][:3]
    rfm.loc[free, "monetary_value"] = 0.0  # repeat purchases that were all free
    served = clvlab.serving.score_frame(transaction, spend, None, rfm, {"horizon": 26.0})
    assert np.all(np.isfinite(served.to_numpy()))
    assert served.attrs["clvlab"]["customers_unvalued"] == 3
    population = spend.expected_spend(rfm.loc[rfm["frequency"] == 0].head(1))  # no spend info
    np.testing.assert_allclose(served.loc[free, "expected_spend_per_purchase"], population.iloc[0])
    # clvlab predict: the same function, so the same numbers
    rfm.to_parquet(tmp_path / "rfm.parquet")
    transaction.save(tmp_path / "t.json")
    spend.save(tmp_path / "s.json")
    assert main(["predict", str(tmp_path / "t.json"), str(tmp_path / "rfm.parquet"), "--horizon",
                 "26", "--spend-model", str(tmp_path / "s.json"), "-o", str(tmp_path / "p.csv")]) == 0
    predicted = pd.read_csv(tmp_path / "p.csv", index_col=0)
    pd.testing.assert_frame_equal(predicted[served.columns], served, check_exact=False, rtol=1e-12)


def test_without_a_spend_model_there_is_no_spend_column(fitted, cdnow_rfm):
    transaction, _ = fitted
    scores = clvlab.serving.score_frame(transaction, None, None, cdnow_rfm.drop(columns="monetary_value"),
                                        {"horizon": 26.0})
    assert list(scores.columns) == ["p_alive", "probability_of_purchase", "expected_purchases"]
    with pytest.raises(ClvlabError, match="monetary_value.*amount column"):
        clvlab.serving.score_frame(transaction, fitted[1], None,
                                   cdnow_rfm.drop(columns="monetary_value"), {"horizon": 26.0})


def test_the_served_model_has_no_default_horizon(fitted, cdnow_rfm):
    with pytest.raises(ClvlabError, match="horizon is required"):
        clvlab.serving.score_frame(fitted[0], None, None, cdnow_rfm, {})
    with pytest.raises(ClvlabError, match="horizon must be a finite number > 0"):
        clvlab.serving.score_frame(fitted[0], None, None, cdnow_rfm, {"horizon": -5})


# --- 6. mistyped numbers ----------------------------------------------------------------------
@pytest.mark.parametrize("rate, margin, message", [
    (8, 0.3, "did you mean 0.08"),
    (0.001, 30, "did you mean 0.3"),
    (-0.01, 0.3, "must be >= 0"),
    (0.001, 0, r"in \(0, 1\]"),
    (1.0, 0.3, "below 1"),
])
def test_mistyped_rates_and_margins_say_what_was_meant(fitted, cdnow_rfm, rate, margin, message):
    transaction, spend = fitted
    with pytest.raises(ClvlabError, match=message):
        clvlab.customer_lifetime_value(transaction, spend, cdnow_rfm, 52, rate, margin)
    with pytest.raises(ClvlabError, match=message):
        clvlab.serving.score_frame(transaction, spend, None, cdnow_rfm,
                                   {"horizon": 52, "discount_rate": rate, "margin": margin})


def test_the_cli_refuses_a_percentage_rate(fitted, cdnow_rfm, tmp_path, capsys):
    transaction, spend = fitted
    cdnow_rfm.to_parquet(tmp_path / "rfm.parquet")
    transaction.save(tmp_path / "t.json")
    spend.save(tmp_path / "s.json")
    assert main(["predict", str(tmp_path / "t.json"), str(tmp_path / "rfm.parquet"), "--horizon",
                 "52", "--spend-model", str(tmp_path / "s.json"), "--discount-rate", "8",
                 "-o", str(tmp_path / "p.csv")]) == 1
    assert "did you mean 0.08" in capsys.readouterr().err
    assert not (tmp_path / "p.csv").exists()


def test_a_horizon_that_is_not_a_number_is_a_clear_error(fitted, cdnow_rfm):
    with pytest.raises(ClvlabError, match="must be a number .*the model's time units"):
        fitted[0].expected_purchases(cdnow_rfm, "26W")


# --- 8. Bayesian point fits and covariances ---------------------------------------------------
def test_an_indefinite_information_matrix_gives_no_covariance():
    from clvlab._fitting import _covariance

    # eigenvalues 1, 1, -10: the inverse has a positive diagonal, so a diagonal check passes it
    v = np.ones(3) / np.sqrt(3)
    information = np.eye(3) - 11 * np.outer(v, v)
    assert np.all(np.diag(np.linalg.inv(information)) > 0)
    p0 = np.ones(3)

    def loglik(p):
        gradient = -(information @ (p - p0))
        return np.array([0.0]), gradient[None, :]

    assert np.all(np.isnan(_covariance(loglik, np.array([1.0]), p0, 0.0)))
    definite = np.eye(3) + 0.5 * np.outer(v, v)

    def loglik_definite(p):
        return np.array([0.0]), -(definite @ (p - p0))[None, :]

    np.testing.assert_allclose(_covariance(loglik_definite, np.array([1.0]), p0, 0.0),
                               np.linalg.inv(definite), rtol=1e-6)


def test_no_draws_from_a_covariance_that_is_not_one(fitted, cdnow_rfm):
    transaction = clvlab.BetaGeo.from_params(r=0.24, alpha=4.4, a=0.79, b=2.4, time_unit="W")
    v = np.ones(4) / 2
    bad = np.diag(transaction.params_.to_numpy() ** 2) @ (np.eye(4) - 3 * np.outer(v, v))
    transaction.covariance_ = pd.DataFrame(bad, index=transaction.params_.index,
                                           columns=transaction.params_.index)
    with pytest.raises(ClvlabError, match="not positive definite"):
        transaction.posterior_predict("p_alive", cdnow_rfm.head(5))


def test_advi_check_tells_a_settled_loss_from_a_falling_one():
    from clvlab.bayes import advi_check

    rng = np.random.default_rng(0)
    settled = 1000 + rng.normal(0, 5, 30_000)
    assert advi_check(settled)["converged"] is True
    falling = 1000 + np.linspace(500, 0, 30_000) + rng.normal(0, 5, 30_000)
    check = advi_check(falling)
    assert check["converged"] is False and "still improving" in check["problems"][0]
    assert advi_check(np.r_[settled[:-10], [np.nan] * 10])["converged"] is False


def test_map_is_polished_to_the_mode_and_has_no_aic(cdnow_rfm, tmp_path, tracking):
    fit = clvlab.BetaGeo(method="map", progressbar=False).fit(cdnow_rfm)
    check = fit.convergence_
    assert check["converged"] is True and check["newton_gain"] < 1e-4
    assert np.isnan(fit.aic_) and np.isnan(fit.bic_)
    assert "at the MAP posterior mode" in repr(fit)
    fit.save(tmp_path / "map.json")
    loaded = clvlab.load_model(tmp_path / "map.json")
    assert np.isnan(loaded.aic_) and loaded.convergence_["converged"] is True
    import mlflow

    run = mlflow.get_run(clvlab.tracking.log_fit(fit, experiment="map-fits"))
    assert "log_likelihood_at_posterior_mode" in run.data.metrics
    assert not {"log_likelihood", "aic", "bic"} & set(run.data.metrics)


def test_a_map_point_short_of_the_mode_is_not_called_converged(cdnow_rfm):
    from clvlab import bayes
    from clvlab._fitting import compress

    model = clvlab.BetaGeo()
    data = model._data(cdnow_rfm)
    distinct, counts = compress(data, None)
    prepared = model._prepare(distinct)
    pymc_model = bayes.build_pymc_model(model, prepared, counts, None)
    names = list(model.param_names)
    start = {"r": 0.3, "alpha": 5.0, "a": 0.9, "b": 3.0}  # near, not at, the mode
    _, check = bayes.polish_map(pymc_model, names, start, max_steps=0)
    assert check["converged"] is False and "no mode found" in check["problems"][0]
    point, check = bayes.polish_map(pymc_model, names, start)
    assert check["converged"] is True
    mle = clvlab.BetaGeo().fit(cdnow_rfm).params_
    assert point["r"] == pytest.approx(mle["r"], rel=0.05)


# --- errors that help -------------------------------------------------------------------------
def test_loading_an_adjuster_as_a_model_points_to_the_adjuster(tmp_path):
    path = tmp_path / "adjuster.json"
    path.write_text(json.dumps({"schema_version": 2, "kind": "ChurnAdjuster"}))
    with pytest.raises(ClvlabError, match="churn adjuster.*ChurnAdjuster.load"):
        clvlab.load_model(path)


def test_a_toml_horizon_in_words_is_a_clear_error(tmp_path):
    path = tmp_path / "x.toml"
    path.write_text('[data]\nsource = "cdnow:sample"\n[backtest]\ncutoffs = ["1997-09-30"]\n'
                    'horizon = "13 weeks"\ncandidates = ["historical-average"]\n')
    with pytest.raises(ClvlabError, match=r"\[backtest\] horizon must be a number.*'13 weeks'"):
        clvlab.experiments.load_experiment(path)
    path.write_text('[data]\nsource = "cdnow:sample"\n[backtest]\ncutoffs = "1997-09-30"\n'
                    'horizon = 13\ncandidates = ["historical-average"]\n')
    with pytest.raises(ClvlabError, match="cutoffs must be a non-empty list"):
        clvlab.experiments.load_experiment(path)


def test_a_closed_pipe_ends_the_command_quietly(cli_files):
    done = subprocess.run(f"'{clvlab_executable()}' fit '{cli_files / 'rfm_W.parquet'}' --model "
                          f"bg-nbd -o '{cli_files / 'pipe.json'}' --overwrite | head -c 1",
                          shell=True, capture_output=True, text=True)
    assert "Traceback" not in done.stderr and "BrokenPipeError" not in done.stderr, done.stderr
    assert len(done.stdout) == 1


def test_the_demo_describes_its_whole_job_and_an_mlflow_ui_that_works_anywhere(tmp_path, monkeypatch):
    from clvlab.demo import mlflow_ui_command

    done = subprocess.run([clvlab_executable(), "demo", "--help"], capture_output=True, text=True)
    text = " ".join(done.stdout.split())
    for step in ("fit BG/NBD", "backtest", "register", "score every customer"):
        assert step in text
    monkeypatch.chdir(tmp_path)
    command = mlflow_ui_command("sqlite:///mlflow.db")
    assert f"sqlite:///{tmp_path}/mlflow.db" in command
    assert command.split()[0].startswith("/") and command.split()[0].endswith("/mlflow")


# --- 3. one definition of "better" ------------------------------------------------------------
def test_compare_ranks_signed_errors_by_size_and_shows_unknown_as_na(tracking, capsys):
    import mlflow

    mlflow.set_experiment("ranking")
    with mlflow.start_run(run_name="bt"):
        mlflow.set_tags({"clvlab.kind": "backtest"})
        mlflow.log_metrics({"worst.purchases_aggregate_pct_error": 40.0,
                            "best.purchases_aggregate_pct_error": -5.0,
                            "middle.purchases_aggregate_pct_error": 10.0,
                            "best.activity_auc": 0.8})
    board = clvlab.experiments.compare("ranking", sort_by="purchases_aggregate_pct_error")
    assert list(board["candidate"]) == ["best", "middle", "worst"]
    assert np.isnan(board.loc[board["candidate"] == "worst", "activity_auc"]).all()
    assert list(clvlab.experiments.compare("ranking", sort_by="activity_auc")["candidate"])[0] == "best"
    assert main(["compare", "ranking", "--sort-by", "purchases_aggregate_pct_error"]) == 0
    out = capsys.readouterr().out
    assert "n/a" in out and "None" not in out and "closest to 0 is best" in out


def test_european_csvs_through_the_command_line(cdnow_sample, tmp_path, tracking, capsys):
    """`;`-separated files with decimal commas, from a path: rfm and score (and the churn path's
    reader) take --delimiter and --decimal, and give what the same log gives in Parquet."""
    log = cdnow_sample.head(3000)
    european = tmp_path / "log.csv"
    log.to_csv(european, sep=";", decimal=",", index=False)
    assert main(["rfm", str(european), "-o", str(tmp_path / "eu.parquet"), "--amount-col", "amount",
                 "--time-unit", "W", "--delimiter", ";", "--decimal", ",", "--no-progress"]) == 0
    want = clvlab.rfm_summary(log, amount_col="amount", time_unit="W")
    got = clvlab.read_rfm(tmp_path / "eu.parquet")
    np.testing.assert_allclose(got["monetary_value"], want["monetary_value"], rtol=1e-12)
    transaction, spend = clvlab.BetaGeo().fit(want), clvlab.GammaGamma().fit(want)
    clvlab.serving.log_clv_model(transaction, spend, registered_model_name="eu")
    out = tmp_path / "s.parquet"
    assert main(["score", "--model", "models:/eu@challenger", "--transactions", str(european),
                 "--as-of", "1998-06-30", "--horizon", "26", "--delimiter", ";", "--decimal", ",",
                 "-o", str(out), "--no-progress"]) == 0
    scores = pd.read_parquet(out)
    assert len(scores) == len(want) and np.all(np.isfinite(scores["clv"]))


def test_the_cli_backtest_runs_by_default_on_a_log_without_amounts(cdnow_sample, tmp_path):
    """The default candidates used to all need amounts, so such a log failed by default; the
    log is a European CSV as well, read with --delimiter and --decimal."""
    log = cdnow_sample.drop(columns="amount")
    path = tmp_path / "log.csv"
    log.to_csv(path, sep=";", index=False)
    out = tmp_path / "metrics.csv"
    assert main(["backtest", str(path), "--cutoffs", "1997-09-30", "--horizon", "13",
                 "--delimiter", ";", "--decimal", ",", "-o", str(out), "--no-progress"]) == 0
    metrics = pd.read_csv(out)
    names = {clvlab.backtesting.make_candidate(c).name for c in
             clvlab.backtesting.default_candidates(False)}
    assert set(metrics["candidate"]) == names
    assert not metrics["target"].eq("spend").any()  # no spend, so no spend metrics, not zeros


def test_bg_nbd_new_customer_expectation_at_a_equal_to_one_is_silent_and_exact():
    """a = 1 makes the closed form inf x 0 (a divide-by-zero warning, then the quadrature);
    the value must come without a warning and equal the limit from either side."""
    import warnings

    params = dict(r=0.24, alpha=4.4, b=2.4, time_unit="W")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        at_one = clvlab.BetaGeo.from_params(a=1.0, **params).expected_purchases_new_customer(52)
    below = clvlab.BetaGeo.from_params(a=1 - 1e-4, **params).expected_purchases_new_customer(52)
    above = clvlab.BetaGeo.from_params(a=1 + 1e-4, **params).expected_purchases_new_customer(52)
    assert min(below, above) <= at_one <= max(below, above)
    assert at_one == pytest.approx((below + above) / 2, rel=1e-6)
