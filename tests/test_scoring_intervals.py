"""Issue 30, item 6: prediction intervals and totals through the scoring job, the command line
and the served model. Every path gives the model's own quantiles and intervals, and totals
equal to ``purchase_totals``/``revenue_totals`` for the same parameter draws; bad options are
refused before any work, naming the option, the rule and an example."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import clvlab
from clvlab.cli import main
from clvlab.errors import ClvlabError
from clvlab.inference.uncertainty import parameter_draws
from clvlab.models.totals import purchase_totals, revenue_totals

AS_OF = "1998-06-30"
HORIZON = 13.0
LEVELS = [0.05, 0.5, 0.95]
DRAWS, SEED = 12, 3
CLV_DRAWS = 50  # simulated futures a customer (200 by default): enough to compare, and quick


@pytest.fixture(scope="module")
def files(tmp_path_factory, cdnow_sample):
    """The CDNOW sample log (Parquet) and each customer's channel (CSV)."""
    folder = tmp_path_factory.mktemp("intervals")
    cdnow_sample.to_parquet(folder / "log.parquet")
    ids = np.sort(cdnow_sample["customer_id"].unique())
    channel = pd.DataFrame({"customer_id": ids, "channel": np.where(ids % 3 == 0, "web", "store")})
    channel.to_csv(folder / "channel.csv", index=False)
    return folder, channel.set_index("customer_id")


@pytest.fixture(scope="module")
def models(cdnow_sample):
    rfm = clvlab.rfm_summary(cdnow_sample, amount_col="amount", time_unit="W",
                             observation_end="1998-03-31")
    return clvlab.ParetoNBD().fit(rfm), clvlab.GammaGamma().fit(rfm[rfm["frequency"] > 0])


@pytest.fixture(scope="module")
def registered(mlflow_store, models):
    """The models registered once in the session's store as ``intervals@challenger``."""
    folder, uri = mlflow_store
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", uri)
        patch.chdir(folder)
        clvlab.serving.log_clv_model(*models, registered_model_name="intervals")
    return "models:/intervals@challenger"


@pytest.fixture(scope="module")
def rfm_now(cdnow_sample, files):
    """What the job scores: every customer as of AS_OF, with their channel."""
    rfm = clvlab.rfm_summary(cdnow_sample, amount_col="amount", time_unit="W",
                             observation_end=AS_OF)
    table = rfm.join(files[1])
    table.attrs = rfm.attrs
    return table


def _score_args(registered, folder, output, *extra):
    return ["score", "--model", registered, "--transactions", str(folder / "log.parquet"),
            "--as-of", AS_OF, "--horizon", str(HORIZON), "-o", str(output), "--no-progress",
            *extra]


def _expected_totals(models, rfm_now, by):
    transaction, spend = models
    draws = (parameter_draws(transaction, DRAWS, SEED), parameter_draws(spend, DRAWS, SEED))
    purchases = purchase_totals(transaction, rfm_now, HORIZON, by=by, level=0.9,
                                parameter_draws=draws[0])
    revenue = revenue_totals(transaction, spend, rfm_now, HORIZON, by=by, level=0.9,
                             parameter_draws=draws, unvalued="population")
    return {"purchases": purchases, "revenue": revenue}


def _check_totals(written: pd.DataFrame, models, rfm_now) -> None:
    """Every row of the job's totals equals purchase_totals/revenue_totals (same draws)."""
    for by in ("channel", "all"):
        want = _expected_totals(models, rfm_now, None if by == "all" else by)
        for quantity, table in want.items():
            got = written[(written["by"] == by) & (written["quantity"] == quantity)]
            got = got.set_index("group")
            assert list(got.index) == [str(label) for label in table.index]
            assert list(got["customers"]) == list(table["customers"])
            assert list(got["distribution"]) == list(table["distribution"])
            numbers = ["expected", "process_sd", "parameter_sd", "total_sd", "lower 90%",
                       "upper 90%"]
            np.testing.assert_allclose(got[numbers].to_numpy(np.float64),
                                       table[numbers].to_numpy(np.float64), rtol=1e-9)
    # both ways of the job: a small group's exact distribution from its kept rows (web: 785
    # customers), a large one's from the sums per draw (store: 1,572; the base)
    channels = written[(written["by"] == "channel") & (written["quantity"] == "purchases")]
    assert dict(zip(channels["group"], channels["distribution"])) == {"store": "normal",
                                                                     "web": "exact"}
    base = written[(written["by"] == "all") & (written["quantity"] == "purchases")]
    assert list(base["distribution"]) == ["normal"] and base["customers"].iloc[0] == len(rfm_now)


def test_the_command_line_adds_the_models_quantiles_and_the_totals_of_purchase_totals(
        registered, files, models, rfm_now, tracking, capsys):
    folder, _ = files
    output = folder / "cli.parquet"
    assert main(_score_args(registered, folder, output, "--quantiles", "0.05,0.5,0.95",
                            "--interval-level", "0.9", "--totals-by", "channel", "--totals-by",
                            "all", "--attributes", str(folder / "channel.csv"),
                            "--parameter-draws", str(DRAWS), "--seed", str(SEED),
                            "--clv-draws", str(CLV_DRAWS))) == 0
    printed = capsys.readouterr().out
    assert "totals per group" in printed and "cli.totals.parquet" in printed
    scores = pd.read_parquet(output).set_index("customer_id")
    transaction, spend = models
    want = transaction.purchase_quantiles(rfm_now, HORIZON, q=LEVELS)
    pd.testing.assert_frame_equal(scores[list(want.columns)], want, check_exact=True,
                                  check_names=False)
    interval = transaction.prediction_interval(rfm_now, HORIZON, level=0.9)
    np.testing.assert_array_equal(scores["purchases_lower"], interval["lower"])
    np.testing.assert_array_equal(scores["purchases_upper"], interval["upper"])
    # the CLV quantiles: value_distribution's Monte Carlo, --clv-draws futures a customer, --seed
    from clvlab.models.value_distribution import value_distribution

    scored = clvlab.rfm_summary(str(folder / "log.parquet"), amount_col="amount", time_unit="W",
                                observation_end=AS_OF, engine="duckdb")  # the job's table
    simulated = value_distribution(transaction, spend, scored, HORIZON, quantiles=LEVELS,
                                   n_draws=CLV_DRAWS, seed=SEED, unvalued="population")
    for q in LEVELS:  # the same draws (a quantile's interpolation may differ in the last bit)
        np.testing.assert_allclose(scores[f"clv_q{q:g}"], simulated[f"clv_{100 * q:g}%"],
                                   rtol=1e-12)
    written = pd.read_parquet(folder / "cli.totals.parquet")
    _check_totals(written, models, rfm_now)
    import mlflow

    run = mlflow.search_runs(experiment_names=["clvlab-scoring"]).iloc[0]
    assert run["params.quantiles"] == "0.05,0.5,0.95" and run["params.interval_level"] == "0.9"
    assert run["params.parameter_draws"] == str(DRAWS) and run["params.totals_by"] == "channel,all"
    assert run["params.clv_quantile_draws"] == str(CLV_DRAWS)
    assert run["params.parameter_uncertainty"] == "auto"
    artifacts = [a.path for a in mlflow.MlflowClient().list_artifacts(run["run_id"], "totals")]
    assert artifacts == ["totals/cli.totals.parquet"]


def test_the_python_api_and_the_pandas_path_give_the_same_columns_and_totals(
        registered, files, models, rfm_now, tracking):
    folder, channel = files
    log = pd.read_parquet(folder / "log.parquet")
    jobs = {}
    for engine, name in (("duckdb", "api.csv"), ("pandas", "pandas.parquet")):
        jobs[engine] = clvlab.scoring.score(
            registered, log if engine == "pandas" else str(folder / "log.parquet"), AS_OF,
            folder / name, horizon=HORIZON, engine=engine, quantiles=LEVELS, interval_level=0.9,
            totals_by="channel,all", attributes=channel, parameter_draws=DRAWS, seed=SEED,
            clv_draws=CLV_DRAWS, progress=False)
    duck, pandas_ = jobs["duckdb"].read(), jobs["pandas"].read()
    assert list(duck.columns) == list(pandas_.columns)
    simulated = [c for c in duck.columns if c.startswith("clv_q")]
    assert simulated == ["clv_q0.05", "clv_q0.5", "clv_q0.95"]
    pd.testing.assert_frame_equal(duck.drop(columns=simulated), pandas_.drop(columns=simulated),
                                  check_exact=False, rtol=1e-12, check_dtype=False,
                                  check_names=False)
    # Monte Carlo of the same seed: the engines' spends differ in the last bits (summation
    # order), which moves a few simulated futures; nearly every customer's quantiles agree
    same = np.isclose(duck[simulated].to_numpy(), pandas_[simulated].to_numpy(), rtol=1e-9)
    assert same.all(axis=1).mean() > 0.98
    assert jobs["duckdb"].totals_output.name == "api.totals.csv"
    for job in jobs.values():
        _check_totals(job.read_totals(), models, rfm_now)


def test_the_served_model_gives_the_same_columns_as_the_scoring_job(registered, files, models,
                                                                   rfm_now, tracking):
    import mlflow

    folder, _ = files
    served = mlflow.pyfunc.load_model(registered)
    inputs = rfm_now[["frequency", "recency", "T", "monetary_value"]]
    params = {"horizon": HORIZON, "time_unit": "W", "quantiles": LEVELS, "interval_level": 0.9,
              "clv_draws": CLV_DRAWS}
    got = served.predict(inputs, params=params)
    job = clvlab.scoring.score(registered, str(folder / "log.parquet"), AS_OF,
                               folder / "for_pyfunc.parquet", horizon=HORIZON, quantiles=LEVELS,
                               interval_level=0.9, clv_draws=CLV_DRAWS, progress=False).read()
    assert list(got.columns) == list(job.columns)
    np.testing.assert_allclose(got.to_numpy(np.float64), job.to_numpy(np.float64), rtol=1e-12)
    want = models[0].purchase_quantiles(rfm_now, HORIZON, q=LEVELS)
    np.testing.assert_array_equal(got[list(want.columns)].to_numpy(), want.to_numpy())
    # called directly, the served function also takes the levels as a comma string
    direct = clvlab.serving.score_frame(*models, None, inputs, {**params, "quantiles": "0.05,0.5,0.95"})
    pd.testing.assert_frame_equal(direct, got, check_names=False)
    with pytest.raises(ClvlabError, match=r"quantiles must be levels strictly between 0 and 1.*"
                                          r"e\.g\. 0\.05,0\.5,0\.95"):
        clvlab.serving.score_frame(*models, None, inputs, {**params, "quantiles": [5]})


@pytest.mark.parametrize("options, words", [
    (["--quantiles", "5"], ["--quantiles", "strictly between 0 and 1", "e.g. 0.05,0.5,0.95",
                            "did you mean 0.05"]),
    (["--quantiles", "0.5,0.5"], ["--quantiles", "lists a level twice", "e.g. 0.05,0.5,0.95"]),
    (["--interval-level", "90"], ["--interval-level", "strictly between 0 and 1", "e.g. 0.9",
                                  "did you mean 0.9"]),
    (["--totals-by", "chanel"], ["--totals-by", "'chanel'", "not a column of",
                                 "e.g. --totals-by channel", "--totals-by all"]),
    (["--totals-by", "all", "--parameter-draws", "0"], ["--parameter-draws", ">= 1",
                                                        "e.g. 200"]),
])
def test_bad_options_are_refused_before_any_work(registered, files, tracking, capsys, options,
                                                 words):
    folder, _ = files
    output = folder / "refused.parquet"
    assert main(_score_args(registered, folder, output, *options)) == 1
    error = capsys.readouterr().err
    for word in words:
        assert word in error, (word, error)
    assert not output.exists() and not (folder / "refused.totals.parquet").exists()


def test_an_existing_totals_file_is_never_overwritten_without_the_flag(registered, files,
                                                                       tracking, capsys):
    folder, _ = files
    output = folder / "kept.parquet"
    (folder / "kept.totals.parquet").write_bytes(b"the user's own file")
    assert main(_score_args(registered, folder, output, "--totals-by", "all",
                            "--parameter-uncertainty", "none")) == 1
    error = capsys.readouterr().err
    assert "kept.totals.parquet exists" in error and "--overwrite" in error
    assert (folder / "kept.totals.parquet").read_bytes() == b"the user's own file"
    assert not output.exists()
    assert main(_score_args(registered, folder, output, "--totals-by", "all", "--overwrite",
                            "--parameter-uncertainty", "none")) == 0
    totals = pd.read_parquet(folder / "kept.totals.parquet")
    assert set(totals["quantity"]) == {"purchases", "revenue"}
    assert (totals["parameter_sd"] == 0).all()  # no parameter draws: process noise only


def test_a_customer_without_a_group_label_is_named(registered, files, tracking):
    folder, channel = files
    holes = channel.copy()
    holes.iloc[5, 0] = None
    with pytest.raises(ClvlabError, match=r"column 'channel': has no value for a customer.*"
                                          r"--totals-by"):
        clvlab.scoring.score(registered, str(folder / "log.parquet"), AS_OF,
                             folder / "holes.parquet", horizon=HORIZON, totals_by="channel",
                             attributes=holes, parameter_uncertainty="none", progress=False)
    assert not (folder / "holes.parquet").exists()


def test_clvlab_predict_adds_the_same_columns(files, models, tmp_path, capsys):
    folder, _ = files
    transaction, spend = models
    transaction.save(tmp_path / "t.json")
    spend.save(tmp_path / "s.json")
    assert main(["rfm", str(folder / "log.parquet"), "-o", str(tmp_path / "rfm.parquet"),
                 "--amount-col", "amount", "--time-unit", "W", "--observation-end", AS_OF,
                 "--no-progress"]) == 0
    assert main(["predict", str(tmp_path / "t.json"), str(tmp_path / "rfm.parquet"), "--horizon",
                 "13", "--spend-model", str(tmp_path / "s.json"), "--quantiles", "0.05,0.5,0.95",
                 "--interval-level", "0.9", "--clv-draws", str(CLV_DRAWS),
                 "-o", str(tmp_path / "p.parquet")]) == 0
    assert "purchases_q<q>: the q-quantile" in capsys.readouterr().out
    got = pd.read_parquet(tmp_path / "p.parquet").set_index("customer_id")
    rfm = clvlab.read_rfm(tmp_path / "rfm.parquet")
    want = clvlab.serving.score_frame(transaction, spend, None, rfm,
                                      {"horizon": HORIZON, "quantiles": LEVELS,
                                       "interval_level": 0.9, "clv_draws": CLV_DRAWS})
    pd.testing.assert_frame_equal(got, want, check_names=False)
    assert main(["predict", str(tmp_path / "t.json"), str(tmp_path / "rfm.parquet"), "--horizon",
                 "13", "--interval-level", "1.5", "-o", str(tmp_path / "q.parquet")]) == 1
    error = capsys.readouterr().err
    assert "(--interval-level) must be a coverage strictly between 0 and 1, e.g. 0.9" in error
    assert "did you mean" not in error  # 1.5 is no percentage
    assert not (tmp_path / "q.parquet").exists()
