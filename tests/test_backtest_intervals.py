"""Issue 30, item 6: backtests score predictive distributions. On data simulated from a known
Pareto/NBD, the true model's 90 % intervals cover what they should within Monte Carlo error,
its log score is the log of its own PMF at the realised counts, the cohort total's interval is
purchase_totals'; a baseline without a distribution gets NaN (no row), never 0; the metrics
reach MLflow, the leaderboard and the command line."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest

import clvlab
from clvlab.backtesting import Candidate
from clvlab.cli import main
from clvlab.errors import ClvlabWarning
from clvlab.evaluation.interval_metrics import customer_scores
from clvlab.inference.uncertainty import parameter_draws
from clvlab.models.totals import purchase_totals

TRUE = dict(r=0.8, alpha=4.0, s=1.5, beta=6.0)
CUTOFFS = ["2024-07-01", "2024-09-30"]
HORIZON = 13.0
DRAWS = 20


class TrueParameters(Candidate):
    """The generating model itself: nothing is fitted, so its intervals are the truth's."""

    name = "truth"

    def __init__(self):
        self.model = clvlab.ParetoNBD.from_params(time_unit="W", **TRUE)

    def predict(self, calibration, horizon):
        scores = self.model.scores(calibration.rfm, horizon)
        return pd.DataFrame({"expected_purchases": scores["expected_purchases"],
                             "p_active": scores["probability_of_purchase"]})

    def purchase_distribution(self, calibration):
        return self.model, calibration.rfm


@pytest.fixture(scope="module")
def log():
    return clvlab.simulate.transaction_log(6000, model="pareto-nbd", params=TRUE,
                                           acquisition_period=13, observation_period=52, seed=7)


@pytest.fixture(scope="module")
def result(log):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        backtest = clvlab.backtest(log, {"truth": TrueParameters(), "pareto-nbd": "pareto-nbd",
                                         "historical-average": "historical-average"},
                                   cutoffs=CUTOFFS, horizon=HORIZON, interval_draws=DRAWS,
                                   progress=False)
    backtest.caught = [str(w.message) for w in caught if issubclass(w.category, ClvlabWarning)]
    return backtest


def _calibration(log, cutoff):
    end = pd.Timestamp(cutoff) + pd.Timedelta(weeks=HORIZON)
    return clvlab.rfm_summary(log, time_unit="W", calibration_end=cutoff, observation_end=end)


def test_the_true_models_intervals_cover_within_monte_carlo_error(result, log):
    """The PIT coverage of a correct model's L % interval has expectation L exactly; the plain
    interval's coverage has the model's own P(lower <= X <= upper), at least L."""
    truth = TrueParameters().model
    for cutoff in CUTOFFS:
        rfm = _calibration(log, cutoff)
        n = len(rfm)
        for level in (50, 90):
            pit = result.per_cutoff("purchases", f"pit_coverage_{level}").loc[cutoff, "truth"]
            bound = 4 * math.sqrt(level / 100 * (1 - level / 100) / n)
            assert abs(pit - level / 100) < bound, (cutoff, level, pit, bound)
        interval = truth.prediction_interval(rfm, HORIZON, level=0.9)
        upper = truth.purchase_cdf(rfm, interval["upper"].to_numpy(), HORIZON).to_numpy()
        below = truth.purchase_cdf(rfm, np.maximum(interval["lower"].to_numpy() - 1, 0),
                                   HORIZON).to_numpy()
        inside = upper - np.where(interval["lower"].to_numpy() > 0, below, 0.0)
        expected, sd = inside.mean(), math.sqrt(np.sum(inside * (1 - inside))) / n
        covered = result.per_cutoff("purchases", "coverage_90").loc[cutoff, "truth"]
        assert expected >= 0.9 and abs(covered - expected) < 4 * sd + 1e-12, (covered, expected)
        # the log score: the mean log of the truth's PMF at the counts, by its CDF
        x = rfm["frequency_holdout"].to_numpy()
        p = truth.purchase_cdf(rfm, x, HORIZON).to_numpy() - np.where(
            x > 0, truth.purchase_cdf(rfm, np.maximum(x - 1, 0), HORIZON).to_numpy(), 0.0)
        score = result.per_cutoff("purchases", "log_score").loc[cutoff, "truth"]
        assert score == pytest.approx(np.mean(np.log(p)), rel=1e-6)


def test_the_fitted_model_is_calibrated_too_and_its_total_is_purchase_totals(result, log):
    summary = result.summary()
    fitted = summary.loc["pareto-nbd", ("purchases", "pit_coverage_90")]
    assert abs(fitted - 0.9) < 0.03
    assert summary.loc["pareto-nbd", ("purchases", "log_score")] < 0
    totals = result.per_cutoff("purchases", "total_coverage_90")["pareto-nbd"]
    for cutoff in CUTOFFS:
        rfm = _calibration(log, cutoff)
        model = clvlab.ParetoNBD().fit(rfm)
        interval = purchase_totals(model, rfm, HORIZON, level=0.9,
                                   parameter_draws=parameter_draws(model, DRAWS, 0)).iloc[0]
        actual = rfm["frequency_holdout"].sum()
        assert totals.loc[cutoff] == float(interval["lower 90%"] <= actual <= interval["upper 90%"])
    # the truth has no parameter draws (from_params): its total is left out, said once a cutoff
    assert "truth" not in totals.index.tolist() or totals.get("truth") is None
    assert sum("'truth'" in m and "total_coverage_90 is left out" in m for m in result.caught) \
        == len(CUTOFFS)


def test_a_baseline_without_a_distribution_gets_nan_never_zero(result):
    rows = result.metrics[result.metrics["candidate"] == "historical-average"]
    assert not rows["metric"].str.contains("coverage|log_score|rps").any()
    summary = result.summary()
    for metric in ("coverage_90", "pit_coverage_90", "log_score", "rps", "total_coverage_90"):
        assert math.isnan(summary.loc["historical-average", ("purchases", metric)])
    row = [line for line in repr(result).splitlines() if line.startswith("historical-average")]
    assert row and "n/a" in row[0]  # the baseline's row prints n/a
    # every cohort of the distribution's candidates has the metrics
    truth = result.metrics[(result.metrics["candidate"] == "truth")
                           & (result.metrics["metric"] == "coverage_95")]
    assert set(truth["cohort"]) > {"all"} and truth["value"].between(0, 1).all()


def test_the_scores_of_one_pmf_by_hand():
    """PMF (0.5, 0.3, 0.2) and a count of 1: CDF (0.5, 0.8, 1)."""

    class Fixed:
        def purchase_pmf(self, table, t, max_n=None, tail=1e-8):
            return pd.DataFrame([[0.5, 0.3, 0.2]] * len(table), index=table.index)

    scores = customer_scores(Fixed(), pd.DataFrame(index=[7]), 13.0, np.array([1]))
    assert scores["log_p"][0] == pytest.approx(math.log(0.3))
    assert scores["rps"][0] == pytest.approx(0.5 ** 2 + 0.2 ** 2)  # (0.5 - 0)^2 + (0.8 - 1)^2
    assert scores["covered_90"][0] == 1.0 and scores["width_90"][0] == 2.0  # [0, 2]
    assert scores["covered_50"][0] == 1.0  # [0, 1]: the 25 % and 75 % quantiles
    assert scores["pit_90"][0] == pytest.approx(1.0)  # [0.5, 0.8] lies inside [0.05, 0.95]
    assert scores["pit_50"][0] == pytest.approx(0.25 / 0.3)  # [0.5, 0.75] of [0.5, 0.8]
    below = customer_scores(Fixed(), pd.DataFrame(index=[7]), 13.0, np.array([2]))
    assert below["covered_50"][0] == 0.0 and below["pit_50"][0] == 0.0


def test_metrics_reach_mlflow_and_the_leaderboard_ranks_coverage_by_its_distance(
        result, tracking, capsys):
    from clvlab.evaluation.metrics import describe_better, ranking_key

    run_id = clvlab.tracking.log_backtest(result, experiment="intervals-bt", plots=False)
    import mlflow

    logged = mlflow.MlflowClient().get_run(run_id).data.metrics
    mean = result.per_cutoff("purchases", "coverage_90")["pareto-nbd"].mean()
    assert logged["pareto-nbd.purchases_coverage_90"] == pytest.approx(mean)
    assert "historical-average.purchases_coverage_90" not in logged
    board = clvlab.experiments.compare("intervals-bt", sort_by="purchases_pit_coverage_90",
                                       metrics="purchases_coverage_90,purchases_log_score")
    assert list(board.columns[-3:]) == ["purchases_coverage_90", "purchases_log_score",
                                        "purchases_pit_coverage_90"]
    assert board["candidate"].iloc[-1] == "historical-average"  # unknown sorts last
    assert math.isnan(board["purchases_log_score"].iloc[-1])
    distance = ranking_key("purchases_coverage_90")(pd.Series([0.85, 0.97, 0.9]))
    assert list(distance.round(12)) == [0.05, 0.07, 0.0]
    assert describe_better("purchases_coverage_90") == "closest to its nominal level is best"
    assert main(["compare", "intervals-bt", "--metrics", "purchases_coverage_90,purchases_rps",
                 "--sort-by", "purchases_rps"]) == 0
    printed = capsys.readouterr().out
    assert "purchases_rps" in printed and "n/a" in printed
    assert main(["compare", "intervals-bt", "--metrics", "purchases_coverage_09x"]) == 1
    assert "unknown metric 'purchases_coverage_09x'" in capsys.readouterr().err


def test_the_command_line_backtest_prints_the_interval_columns(log, tmp_path, capsys):
    small = log[log["customer_id"] < 800]
    small.to_csv(tmp_path / "log.csv", index=False)
    assert main(["backtest", str(tmp_path / "log.csv"), "--cutoffs", CUTOFFS[0], "--horizon", "13",
                 "--candidates", "bg-nbd,historical-average", "--interval-draws", "5",
                 "-o", str(tmp_path / "metrics.csv"), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "purchases cov90" in printed and "purchases log score" in printed
    assert "log score: mean natural log" in printed
    metrics = pd.read_csv(tmp_path / "metrics.csv")
    bg = metrics[(metrics["candidate"] == "bg-nbd") & (metrics["cohort"] == "all")]
    assert {"coverage_90", "log_score", "rps", "total_coverage_90"} <= set(bg["metric"])
    assert main(["backtest", str(tmp_path / "log.csv"), "--cutoffs", CUTOFFS[0], "--horizon", "13",
                 "--candidates", "bg-nbd", "--no-intervals", "-o", str(tmp_path / "plain.csv"),
                 "--no-progress"]) == 0
    assert not pd.read_csv(tmp_path / "plain.csv")["metric"].str.contains("coverage").any()


def test_an_experiment_file_sets_the_interval_options(tmp_path):
    from clvlab.errors import ClvlabError

    base = ('name = "x"\n[data]\nsource = "cdnow:sample"\n[backtest]\ncutoffs = ["1997-09-30"]\n'
            'horizon = 13\ncandidates = ["bg-nbd"]\n')
    good = tmp_path / "good.toml"
    good.write_text(base + "intervals = false\ninterval_draws = 10\n")
    settings = clvlab.experiments.load_experiment(good)["backtest"]
    assert settings["intervals"] is False and settings["interval_draws"] == 10
    for bad, words in (("intervals = \"yes\"\n", "intervals must be true or false"),
                       ("interval_draws = -1\n", "interval_draws must be a whole number >= 0")):
        path = tmp_path / "bad.toml"
        path.write_text(base + bad)
        with pytest.raises(ClvlabError, match=words):
            clvlab.experiments.load_experiment(path)
