"""Backtesting: metrics against independent computations, baselines against their formulas,
no leakage across the cutoff, and a simulation where the generating model must win."""

import math

import matplotlib
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import brier_score_loss, roc_auc_score

from conftest import scramble_after

import clvlab
import clvlab.cli
from clvlab import ClvlabError, DataValidationError
from clvlab.backtesting import (ArpuChurn, Candidate, HistoricalAverage, HistoricalLTV,
                                BacktestResult, ModelCandidate, RecentActivity, make_candidate,
                                metrics)

matplotlib.use("Agg")


@pytest.fixture(scope="module")
def cdnow_sample_log():
    return clvlab.datasets.load_cdnow(sample=True)


@pytest.fixture(scope="module")
def sample_result(cdnow_sample_log):
    return clvlab.backtest(
        cdnow_sample_log, ["pareto-nbd+gamma-gamma", "bg-nbd", "historical-average",
                           "historical-ltv", "arpu-churn", "aov-frequency-lifespan", "active-90d"],
        cutoffs=["1997-09-30", "1997-12-31"], horizon=13, amount_col="amount",
        acquisition_cost=20.0)


# metrics ------------------------------------------------------------------------------------

def test_auc_and_brier_equal_scikit_learn():
    rng = np.random.default_rng(0)
    p = np.round(rng.uniform(size=500), 2)  # rounded: ties must count one half
    y = rng.uniform(size=500) < p
    got = metrics.activity_metrics(p, y)
    assert got["auc"] == pytest.approx(roc_auc_score(y, p), abs=1e-12)
    assert got["brier"] == pytest.approx(brier_score_loss(y, p), abs=1e-12)
    assert math.isnan(metrics.activity_metrics(p, np.zeros(500, dtype=bool))["auc"])


def test_gini_and_top_decile_on_known_orderings():
    actual = np.arange(1.0, 101.0)
    assert metrics.normalized_gini(actual, actual) == pytest.approx(1.0)
    assert metrics.normalized_gini(-actual, actual) == pytest.approx(-1.0)
    assert metrics.normalized_gini(np.ones(100), actual) == 0.0
    # the top 10 of 1..100 hold (91 + ... + 100) / 5050 of the value
    assert metrics.top_decile_capture(actual, actual) == pytest.approx(955 / 5050)
    # a constant prediction captures a tenth, whatever the order of the rows
    assert metrics.top_decile_capture(np.ones(100), actual) == pytest.approx(0.1)
    assert math.isnan(metrics.normalized_gini(actual, np.zeros(100)))


def test_error_metrics_by_hand():
    got = metrics.error_metrics(np.array([1.0, 2.0, 4.0]), np.array([0.0, 2.0, 8.0]))
    assert got["mae"] == pytest.approx(5 / 3)
    assert got["rmse"] == pytest.approx(math.sqrt(17 / 3))
    assert got["bias"] == pytest.approx(-1.0)
    assert got["aggregate_pct_error"] == pytest.approx(100 * (7 - 10) / 10)
    assert math.isnan(metrics.error_metrics(np.ones(3), np.zeros(3))["aggregate_pct_error"])
    ranking = metrics.ranking_metrics(np.ones(3), np.array([0.0, 1.0, 2.0]))
    assert math.isnan(ranking["spearman"])


def test_one_definition_of_better_per_metric():
    values = pd.Series({"a": -5.0, "b": 30.0, "c": 2.0, "d": None, "e": -40.0}, dtype=object)
    # a signed error ranks by its size: the worst (|-40|) last, the unknown after it
    key = metrics.ranking_key("purchases_aggregate_pct_error")
    assert list(values.sort_values(key=key, na_position="last").index) == ["c", "a", "b", "e", "d"]
    assert metrics.ranking_key("spend_pct_error")(values).tolist()[:3] == [5.0, 30.0, 2.0]
    auc = pd.Series({"a": 0.7, "b": 0.9})
    assert list(auc.sort_values(key=metrics.ranking_key("activity_auc")).index) == ["b", "a"]
    assert list(auc.sort_values(key=metrics.ranking_key("brier")).index) == ["a", "b"]
    assert metrics.describe_better("purchases_mae") == "lower is better"
    assert metrics.describe_better("activity auc") == "higher is better"
    assert metrics.describe_better("bias") == "closest to 0 is best"
    with pytest.raises(ClvlabError, match="unknown metric 'purchases_mape'.*purchases_mae"):
        metrics.ranking_key("purchases_mape")


def test_not_computable_metrics_are_nan_and_have_no_row():
    got = {**metrics.error_metrics(np.ones(3), np.zeros(3)),
           **metrics.ranking_metrics(np.ones(3), np.zeros(3)),
           **metrics.activity_metrics(np.full(3, 0.5), np.zeros(3))}
    undefined = {k for k, v in got.items() if v is None or math.isnan(v)}
    assert undefined == {"aggregate_pct_error", "normalized_gini", "top_decile_capture",
                         "spearman", "auc", "decile_mape"}
    assert all(isinstance(v, float) for v in got.values())  # NaN, never None


# the backtest on CDNOW -----------------------------------------------------------------------

def test_backtest_tables_are_tidy_and_finite(sample_result):
    table = sample_result.metrics
    assert list(table.columns) == ["cutoff", "cohort", "customers", "candidate", "target",
                                   "metric", "value"]
    assert np.all(np.isfinite(table["value"]))
    assert not table.duplicated(["cutoff", "cohort", "candidate", "target", "metric"]).any()
    assert set(table["cutoff"]) == {"1997-09-30", "1997-12-31"}
    assert set(table["cohort"]) == {"all", "1997-01", "1997-02", "1997-03"}
    # every customer of the sample was acquired in Q1 1997, so "all" holds the 2,357
    assert set(table.loc[table["cohort"] == "all", "customers"]) == {2357}
    cohorts = table[(table["cohort"] != "all") & (table["metric"] == "mae")]
    assert cohorts.groupby(["cutoff", "candidate", "target"])["customers"].sum().eq(2357).all()
    # bg-nbd has no spend model: no spend rows rather than NaN
    assert not ((table["candidate"] == "bg-nbd") & (table["target"] == "spend")).any()
    summary = sample_result.summary()
    assert ("activity", "auc") in summary.columns
    assert "pareto-nbd + gamma-gamma" in repr(sample_result)
    # bg-nbd predicts no spend: its spend cells are unknown, shown as n/a
    assert "n/a" in repr(sample_result) and "NaN" not in repr(sample_result)


def test_holdout_outcomes_match_rfm_summary(cdnow_sample_log, sample_result):
    rfm = clvlab.rfm_summary(cdnow_sample_log, amount_col="amount", time_unit="W",
                             calibration_end="1997-09-30",
                             observation_end=pd.Timestamp("1997-09-30") + pd.Timedelta(weeks=13))
    rows = sample_result.predictions
    rows = rows[(rows["cutoff"] == "1997-09-30") & (rows["candidate"] == "bg-nbd")]
    np.testing.assert_array_equal(rows["actual_purchases"], rfm["frequency_holdout"])
    np.testing.assert_allclose(rows["actual_spend"],
                               rfm["frequency_holdout"] * rfm["monetary_value_holdout"])
    model = clvlab.BetaGeo().fit(rfm)
    np.testing.assert_allclose(rows["expected_purchases"], model.expected_purchases(rfm, 13),
                               rtol=1e-6)
    mae = sample_result.per_cutoff("purchases", "mae").loc["1997-09-30", "bg-nbd"]
    assert mae == pytest.approx(np.mean(np.abs(rows["expected_purchases"] - rows["actual_purchases"])))


def test_models_beat_the_population_baseline_on_cdnow(sample_result):
    summary = sample_result.summary()
    pareto = summary.loc["pareto-nbd + gamma-gamma"]
    assert pareto[("activity", "auc")] > summary.loc["historical-ltv", ("activity", "auc")]
    assert abs(pareto[("purchases", "aggregate_pct_error")]) < 20
    assert sample_result.best("activity", "auc") in ("pareto-nbd + gamma-gamma", "bg-nbd")


def test_the_result_says_who_wins_each_metric_by_its_direction(sample_result):
    summary = sample_result.summary()
    won = sample_result.winners().set_index(["target", "metric"])
    mae = summary[("purchases", "mae")]
    assert won.loc[("purchases", "mae"), "best"] == mae.idxmin()
    auc = summary[("activity", "auc")]
    assert won.loc[("activity", "auc"), "best"] == auc.idxmax()
    error = summary[("purchases", "aggregate_pct_error")]
    assert won.loc[("purchases", "aggregate_pct_error"), "best"] == error.abs().idxmin()
    assert "best on each metric:" in repr(sample_result)
    assert f"  {mae.idxmin()}: purchases mae" in repr(sample_result)


def test_cohort_table_and_ltv_to_cac(sample_result):
    cohorts = sample_result.cohorts
    first = cohorts[cohorts["cutoff"] == "1997-09-30"].set_index("cohort")
    assert first["customers"].sum() == 2357
    assert first["acquisition_cost"].eq(20.0).all()
    expected = (first["calibration_revenue"] + first["holdout_revenue"]) / first["customers"] / 20
    np.testing.assert_allclose(first["realised_ltv_to_cac"], expected)
    assert "predicted_ltv_to_cac[pareto-nbd + gamma-gamma]" in first.columns


def test_plots_render(sample_result, tmp_path):
    import matplotlib.pyplot as plt

    for draw in (lambda ax: sample_result.plot_tracking(ax=ax),
                 lambda ax: sample_result.plot_conditional_expectations(ax=ax),
                 lambda ax: sample_result.plot_deciles("pareto-nbd + gamma-gamma", ax=ax)):
        fig, ax = plt.subplots()
        assert draw(ax) is ax
        fig.savefig(tmp_path / "plot.png")
        plt.close(fig)
        assert (tmp_path / "plot.png").stat().st_size > 10_000


@pytest.mark.parametrize("target, metric", [("activity", "auc"), ("purchases", "mae"),
                                            ("purchases", "bias")])
def test_comparison_plot_puts_the_best_candidate_on_top(sample_result, target, metric, tmp_path):
    import matplotlib.pyplot as plt

    ax = sample_result.plot_comparison(target, metric)
    labels = [tick.get_text() for tick in ax.get_yticklabels()]
    assert labels[-1] == sample_result.best(target, metric)  # the top bar
    assert sorted(labels) == sorted(sample_result.per_cutoff(target, metric).columns)
    bars = [patch.get_width() for patch in ax.patches]
    np.testing.assert_allclose(bars, sample_result.per_cutoff(target, metric).mean()[labels])
    ax.figure.savefig(tmp_path / "comparison.png")
    plt.close(ax.figure)
    assert (tmp_path / "comparison.png").stat().st_size > 10_000


def test_tracking_ends_at_the_holdout_totals(sample_result):
    tracking = sample_result.tracking
    last = tracking.groupby(["cutoff", "candidate"]).tail(1).set_index(["cutoff", "candidate"])
    predictions = sample_result.predictions.groupby(["cutoff", "candidate"])
    np.testing.assert_allclose(last["actual"], predictions["actual_purchases"].sum().loc[last.index])
    np.testing.assert_allclose(last["expected"],
                               predictions["expected_purchases"].sum().loc[last.index], rtol=1e-9)


def test_fast_tracking_curve_equals_predicting_each_horizon(cdnow_sample_log):
    """The tracking curve of a model candidate comes from one call over distinct histories; it
    must equal predicting every horizon, and a subclass that changes the predictions (as the
    churn adjuster does) must be tracked through its own predict."""
    calibration, _ = clvlab.backtesting.calibration_data(cdnow_sample_log, "1997-09-30", 13,
                                                         amount_col="amount")
    horizons = 13 * np.arange(1, 14) / 13

    class Doubled(ModelCandidate):
        def predict(self, calibration, horizon):
            out = super().predict(calibration, horizon)
            return out.assign(expected_purchases=2 * out["expected_purchases"])

    for model in (clvlab.ParetoNBD(), clvlab.BetaGeo()):
        candidate = ModelCandidate(model).fit(calibration, 13)
        slow = Candidate.total_expected_purchases(candidate, calibration, horizons)
        np.testing.assert_allclose(candidate.total_expected_purchases(calibration, horizons), slow,
                                   rtol=1e-12)
        doubled = Doubled(model).fit(calibration, 13)
        np.testing.assert_allclose(doubled.total_expected_purchases(calibration, horizons),
                                   2 * slow, rtol=1e-12)
    for baseline in (HistoricalAverage(), HistoricalLTV(), RecentActivity(90)):
        np.testing.assert_allclose(baseline.total_expected_purchases(calibration, horizons),
                                   Candidate.total_expected_purchases(baseline, calibration, horizons),
                                   rtol=1e-12)
    # a baseline counts its activity periods once per calibration, not once per calibration seen
    arpu = ArpuChurn()
    later, _ = clvlab.backtesting.calibration_data(cdnow_sample_log, "1997-12-31", 13,
                                                   amount_col="amount")
    first = arpu.predict(calibration, 13)["expected_spend"].sum()
    assert arpu.predict(later, 13)["expected_spend"].sum() != first
    assert ArpuChurn().predict(later, 13)["expected_spend"].sum() == arpu.predict(later, 13)["expected_spend"].sum()


# no leakage ---------------------------------------------------------------------------------

class _Recorder(Candidate):
    """Keeps what it was shown, predicts the historical average."""

    name = "recorder"
    seen: list = []

    def fit(self, calibration, horizon):
        _Recorder.seen.append(calibration)
        return self

    def predict(self, calibration, horizon):
        return HistoricalAverage().predict(calibration, horizon)


def test_candidates_see_nothing_after_the_cutoff(cdnow_sample_log):
    cutoff = pd.Timestamp("1997-09-30")
    scrambled = scramble_after(cdnow_sample_log, cutoff)
    _Recorder.seen = []
    results = [clvlab.backtest(log, [_Recorder(), "pareto-nbd+gamma-gamma"], cutoffs=[cutoff],
                               horizon=13, amount_col="amount")
               for log in (cdnow_sample_log, scrambled)]
    original, changed = _Recorder.seen
    pd.testing.assert_frame_equal(original.rfm, changed.rfm)
    pd.testing.assert_frame_equal(original.periods, changed.periods)
    assert original.periods["age"].min() >= 0
    assert "frequency_holdout" not in original.rfm
    first, second = (r.predictions.set_index("candidate", append=True) for r in results)
    pd.testing.assert_series_equal(first["expected_spend"], second["expected_spend"])
    assert not first["actual_spend"].equals(second["actual_spend"])


def test_customers_acquired_after_the_cutoff_are_left_out():
    log = pd.DataFrame({"customer_id": [1, 1, 2, 2, 3, 3],
                        "date": pd.to_datetime(["2024-01-01", "2024-01-20", "2024-01-05",
                                                "2024-03-01", "2024-02-10", "2024-03-20"])})
    result = clvlab.backtest(log, ["historical-average"], cutoffs=["2024-02-01"], horizon=6)
    assert list(result.predictions.index) == [1, 2]
    assert list(result.predictions["actual_purchases"]) == [0, 1]


def test_cutoffs_follow_the_date_columns_rule():
    """'01/02/2024' is 2 January to pandas' guess; with the log's day-first date_format it is
    1 February, and without a date_format it is refused rather than guessed."""
    log = pd.DataFrame({"customer_id": [1, 1, 2, 2, 3, 3],
                        "date": ["01/01/2024", "20/01/2024", "05/01/2024", "01/03/2024",
                                 "10/02/2024", "20/03/2024"]})
    result = clvlab.backtest(log, ["historical-average"], cutoffs=["01/02/2024"], horizon=6,
                             date_format="%d/%m/%Y")
    assert result.settings["cutoffs"] == ["2024-02-01T00:00:00"]
    assert list(result.predictions.index) == [1, 2]  # customer 3 came on 10 February
    iso = log.assign(date=pd.to_datetime(log["date"], format="%d/%m/%Y"))
    with pytest.raises(ClvlabError, match="cutoff='01/02/2024' is not a date in ISO 8601"):
        clvlab.backtest(iso, ["historical-average"], cutoffs=["01/02/2024"], horizon=6)


# baselines ----------------------------------------------------------------------------------

def _tiny_log():
    # customer 1: purchases every 2 weeks from week 0 (5 purchases), customer 2: one purchase
    dates = [pd.Timestamp("2024-01-01") + pd.Timedelta(weeks=2 * k) for k in range(5)]
    return pd.DataFrame({"customer_id": [1] * 5 + [2],
                         "date": dates + [pd.Timestamp("2024-02-26")],
                         "amount": [10.0, 20.0, 30.0, 40.0, 50.0, 7.0]})


def test_historical_average_and_ltv_formulas():
    log = pd.concat([_tiny_log(), pd.DataFrame({"customer_id": [1], "date": [pd.Timestamp("2024-06-01")],
                                                "amount": [1.0]})])
    result = clvlab.backtest(log, ["historical-average", "historical-ltv"], cutoffs=["2024-03-04"],
                             horizon=6, amount_col="amount")
    p = result.predictions.set_index("candidate", append=True)
    # customer 1: x = 4 repeats over T = 9 weeks; average order 30
    average = p.loc[(1, "historical-average")]
    assert average["expected_purchases"] == pytest.approx(4 / 9 * 6)
    assert average["expected_spend"] == pytest.approx(4 / 9 * 6 * 30)
    assert average["p_active"] == pytest.approx(1 - math.exp(-4 / 9 * 6))
    assert p.loc[(2, "historical-average"), "expected_purchases"] == 0
    # population: repeat revenue 140 over 9 + 1 customer-weeks
    ltv = p.xs("historical-ltv", level=1)
    assert ltv["expected_spend"].tolist() == pytest.approx([140 / 10 * 6] * 2)
    assert ltv["expected_purchases"].tolist() == pytest.approx([4 / 10 * 6] * 2)


def test_arpu_churn_and_activity_rule_on_a_known_log():
    # months counted back from the cutoff (0 = the last): customers 0-4 buy in months 4..0,
    # customers 5-9 in months 4..2 only
    rows = []
    cutoff = pd.Timestamp("2024-07-01")
    month = pd.Timedelta(days=30.436875)
    for customer in range(10):
        last = 5 if customer < 5 else 3
        for k in range(1, last + 1):
            rows.append((customer, cutoff - (6 - k) * month + pd.Timedelta(days=3), 10.0))
    rows.append((0, cutoff + pd.Timedelta(days=100), 1.0))
    log = pd.DataFrame(rows, columns=["customer_id", "date", "amount"])
    log["date"] = log["date"].dt.floor("D")
    calibration_result = clvlab.backtest(log, [ArpuChurn(lookback=5), RecentActivity(days=35)],
                                         cutoffs=[cutoff], horizon=8, amount_col="amount")
    p = calibration_result.predictions.set_index("candidate", append=True)
    # active in month k+1 and still in month k: 10 of 10, 10 of 10, 5 of 10, 5 of 5
    churn = 5 / 35
    keep = 1 - churn
    months = 8 / (30.436875 / 7)
    survival = sum(keep ** j for j in range(1, int(months) + 1)) + (months - int(months)) * keep ** (int(months) + 1)
    arpu = 10.0  # one 10-dollar order per active customer-month
    assert p.loc[(0, "arpu-churn"), "expected_spend"] == pytest.approx(arpu * survival)
    assert p.loc[(0, "arpu-churn"), "p_active"] == pytest.approx(keep)
    assert p.loc[(7, "arpu-churn"), "expected_spend"] == 0  # inactive in the last month
    assert p.loc[(0, "active-35d"), "p_active"] == 1.0
    assert p.loc[(7, "active-35d"), "p_active"] == 0.0


def test_make_candidate_names_and_errors():
    assert make_candidate("pareto-nbd+gamma-gamma").name == "pareto-nbd + gamma-gamma"
    assert make_candidate("active-13w").name == "active-91d"
    assert isinstance(make_candidate((clvlab.BetaGeo(), clvlab.GammaGamma())), ModelCandidate)
    assert isinstance(make_candidate("historical-ltv"), HistoricalLTV)
    with pytest.raises(ClvlabError, match="unknown candidate 'pareto'"):
        make_candidate("pareto")


def test_bad_backtest_input_is_named(cdnow_sample_log):
    with pytest.raises(DataValidationError, match="holdout window would be incomplete"):
        clvlab.backtest(cdnow_sample_log, ["bg-nbd"], cutoffs=["1998-05-01"], horizon=13)
    with pytest.raises(DataValidationError, match="before the first transaction"):
        clvlab.backtest(cdnow_sample_log, ["bg-nbd"], cutoffs=["1996-05-01"], horizon=13)
    with pytest.raises(ClvlabError, match="need an amount column"):
        clvlab.backtest(cdnow_sample_log, ["bg-nbd+gamma-gamma"], cutoffs=["1997-09-30"], horizon=13)
    with pytest.raises(ClvlabError, match="horizon"):
        clvlab.backtest(cdnow_sample_log, ["bg-nbd"], cutoffs=["1997-09-30"], horizon=0)
    with pytest.raises(ClvlabError, match=r"horizon must be a number of time units \(time_unit='W'\).*'26W'"):
        clvlab.backtest(cdnow_sample_log, ["bg-nbd"], cutoffs=["1997-09-30"], horizon="26W")
    for cutoff in ("1996-05-01", "1998-05-01"):  # cutoffs are an option, not a column
        with pytest.raises(DataValidationError, match="option cutoffs: cutoff") as error:
            clvlab.backtest(cdnow_sample_log, ["bg-nbd"], cutoffs=[cutoff], horizon=13)
        assert "column" not in str(error.value)
    with pytest.raises(ClvlabError, match="cohort_freq='ME' is not a pandas period code"):
        clvlab.backtest(cdnow_sample_log, ["bg-nbd"], cutoffs=["1997-09-30"], horizon=13,
                        cohort_freq="ME")
    with pytest.raises(ClvlabError, match="tracking_points must be a whole number >= 1.*2.5"):
        clvlab.backtest(cdnow_sample_log, ["bg-nbd"], cutoffs=["1997-09-30"], horizon=13,
                        tracking_points=2.5)
    with pytest.raises(ClvlabError, match="two candidates are named"):
        clvlab.backtest(cdnow_sample_log, ["bg-nbd", clvlab.BetaGeo()], cutoffs=["1997-09-30"],
                        horizon=13)


# the truth is known ----------------------------------------------------------------------------

def test_the_generating_model_beats_a_misspecified_one():
    """Pareto/NBD data with fast dropout: BG/NBD (which keeps every customer without repeats
    alive) overpredicts; the generating model's errors are smaller."""
    log = clvlab.simulate.transaction_log(
        5000, model="pareto-nbd", params=dict(r=0.8, alpha=4.0, s=1.5, beta=6.0),
        acquisition_period=13, observation_period=78, seed=1)
    # point predictions only: the distributions' metrics are test_backtest_intervals.py's
    result = clvlab.backtest(log, ["pareto-nbd", "bg-nbd"], cutoffs=["2024-09-01", "2024-12-01"],
                             horizon=13, intervals=False)
    summary = result.summary()
    pareto, bg = summary.loc["pareto-nbd"], summary.loc["bg-nbd"]
    assert pareto[("purchases", "mae")] < 0.9 * bg[("purchases", "mae")]
    assert abs(pareto[("purchases", "aggregate_pct_error")]) < 10
    assert abs(bg[("purchases", "aggregate_pct_error")]) > 15
    assert pareto[("activity", "brier")] < bg[("activity", "brier")]


def test_cli_backtest_writes_the_metrics(cdnow_sample_log, tmp_path, capsys):
    source = tmp_path / "log.csv"
    cdnow_sample_log.to_csv(source, index=False)
    out = tmp_path / "metrics.parquet"
    code = clvlab.cli.main(["backtest", str(source), "--cutoffs", "1997-09-30", "--horizon", "13",
                            "--candidates", "bg-nbd+gamma-gamma,historical-average",
                            "--amount-col", "amount", "-o", str(out), "--no-progress"])
    assert code == 0
    table = pd.read_parquet(out)
    assert set(table["candidate"]) == {"bg-nbd + gamma-gamma", "historical-average"}
    assert "bg-nbd + gamma-gamma" in capsys.readouterr().out
    assert clvlab.cli.main(["backtest", str(source), "--cutoffs", "1997-09-30", "--horizon", "13",
                            "--amount-col", "amount", "-o", str(out), "--no-progress"]) == 1
    assert "exists" in capsys.readouterr().err


# issue 29: one refusing candidate does not stop the others ----------------------------------

class _RefusesAt(HistoricalAverage):
    """A baseline that refuses the data at one cutoff (as a model without an interior maximum
    does), or fails there with a plain Python error."""

    def __init__(self, cutoff: str, error=ClvlabError):
        super().__init__()
        self.name, self.cutoff, self.error = "refuses", cutoff, error

    def fit(self, calibration, horizon):
        if str(calibration.cutoff.date()) == self.cutoff:
            raise self.error("no interior maximum here")
        return super().fit(calibration, horizon)


def test_a_refusing_candidate_is_recorded_with_its_cutoff_and_the_others_finish(cdnow_sample_log,
                                                                                 tmp_path):
    """Before: the first refusal stopped the whole backtest, without naming the cutoff."""
    cutoffs = ["1997-06-30", "1997-09-30"]
    with pytest.warns(clvlab.ClvlabWarning, match="'refuses' failed at cutoff 1997-09-30"):
        result = clvlab.backtest(cdnow_sample_log, [_RefusesAt("1997-09-30"), "bg-nbd"], cutoffs,
                                 13, amount_col="amount", progress=False)
    assert result.settings["failures"] == [{"cutoff": "1997-09-30", "candidate": "refuses",
                                            "error": "no interior maximum here"}]
    ran = result.metrics.groupby("candidate")["cutoff"].unique()
    assert list(ran["refuses"]) == ["1997-06-30"] and len(ran["bg-nbd"]) == 2
    assert BacktestResult.load(result.save(tmp_path / "saved")).settings["failures"] \
        == result.settings["failures"]
    with pytest.raises(ZeroDivisionError) as caught:  # a fault, not a refusal: stop, saying where
        clvlab.backtest(cdnow_sample_log, [_RefusesAt("1997-09-30", ZeroDivisionError)],
                        cutoffs, 13, progress=False)
    assert "candidate 'refuses' at cutoff 1997-09-30" in "".join(caught.value.__notes__)
    with pytest.warns(clvlab.ClvlabWarning), \
            pytest.raises(ClvlabError, match="every candidate failed at every cutoff"):
        clvlab.backtest(cdnow_sample_log, [_RefusesAt("1997-09-30")], cutoffs[1:], 13,
                        progress=False)


def test_candidate_lists_split_outside_brackets_and_names_carry_the_dropout_form():
    from clvlab.evaluation.candidate_names import split_candidates

    assert split_candidates("pareto-nbd[Gender,Channel]+gamma-gamma[Channel], bg-nbd") == \
        ["pareto-nbd[Gender,Channel]+gamma-gamma[Channel]", "bg-nbd"]
    with pytest.raises(ClvlabError, match="not closed"):
        split_candidates("pareto-nbd[Gender,Channel")
    for name in ("bg-nbd[Gender,Channel;dropout_form=b]",
                 "mbg-nbd[purchase=Gender;dropout=Channel;dropout_form=b]",
                 "pareto-nbd[Gender,Channel;shared=Gender]"):
        candidate = make_candidate(name)
        assert candidate.name == name and make_candidate(candidate.name).name == name
    assert make_candidate("bg-nbd[Channel;dropout_form=b]").transaction_model.dropout_form == "b"
    with pytest.raises(ClvlabError, match="dropout_form is a setting of bg-nbd and mbg-nbd"):
        make_candidate("pareto-nbd[Channel;dropout_form=b]")
    with pytest.raises(ClvlabError, match=r"dropout_form='c' is not one of"):
        make_candidate("bg-nbd[Channel;dropout_form=c]")
