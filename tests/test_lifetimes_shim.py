"""clvlab.lifetimes against lifetimes 0.11.3, without lifetimes: its outputs for a handful of
customers, its parameters and its signatures are stored in tests/data/lifetimes_reference.json
by benchmarks/lifetimes_migration.py (run in .venv-bench, which has lifetimes).

Predictions are compared at lifetimes' own parameters (``params_`` set, as lifetimes allows),
to 1e-6 relative, so that the formulas are compared and not the optimisers; fitted parameters
are compared with the tolerance that lifetimes' optimiser stopping short allows, and the
objective must be at least as good as lifetimes'. Where lifetimes is wrong (its Pareto/NBD
numerics) the reference holds the 50-digit truth, which clvlab must match.
"""

from __future__ import annotations

import inspect
import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import clvlab.lifetimes as lifetimes
from clvlab.lifetimes import datasets, plotting, utils

REF = json.loads((Path(__file__).parent / "data" / "lifetimes_reference.json").read_text())
SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
RTOL = 1e-6


def close(actual, expected, rtol=RTOL, atol=0.0):
    np.testing.assert_allclose(np.asarray(actual, dtype=float), np.asarray(expected, dtype=float),
                               rtol=rtol, atol=atol)


@pytest.fixture(scope="module")
def summary():
    return datasets.load_cdnow_summary_data_with_monetary_value()


@pytest.fixture(scope="module")
def customers(summary):
    return summary.loc[REF["customers"]]


def at_reference(fitter, params):
    fitter.params_ = pd.Series(params)[list(fitter._param_names)]
    return fitter


@pytest.fixture(scope="module")
def fitted(summary):
    x, r, T = summary["frequency"], summary["recency"], summary["T"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {"bgnbd": lifetimes.BetaGeoFitter().fit(x, r, T),
                "mbgnbd": lifetimes.ModifiedBetaGeoFitter().fit(x, r, T),
                "pareto": lifetimes.ParetoNBDFitter().fit(x, r, T)}


# --- the API ---------------------------------------------------------------------------------
def _ours(key: str):
    owner, name = key.split(".")
    module = {"utils": utils, "plotting": plotting, "datasets": datasets}.get(owner)
    return getattr(module if module is not None else getattr(lifetimes, owner), name)


@pytest.mark.parametrize("key", sorted(REF["signatures"]))
def test_signature_is_lifetimes(key):
    assert list(inspect.signature(_ours(key)).parameters) == REF["signatures"][key]


def test_import_names():
    for name in ("BetaGeoFitter", "ParetoNBDFitter", "GammaGammaFitter", "ModifiedBetaGeoFitter",
                 "BetaGeoBetaBinomFitter", "__version__"):
        assert name in lifetimes.__all__ and hasattr(lifetimes, name)
    assert lifetimes.plotting is plotting and lifetimes.datasets is datasets


# --- data sets -------------------------------------------------------------------------------
def test_cdnow_summary_as_lifetimes_loads_it(summary):
    frame = datasets.load_cdnow_summary(index_col=[0])
    assert list(frame.columns) == ["frequency", "recency", "T"] and len(frame) == 2357
    close(frame.loc[REF["customers"], "recency"], REF["inputs"]["recency"], rtol=0)
    assert summary.index.name == "customer_id"
    close(summary.loc[REF["customers"], "monetary_value"], REF["inputs"]["monetary_value"], rtol=0)
    assert list(datasets.load_donations().columns) == ["frequency", "recency", "periods", "weights"]


@pytest.mark.parametrize("name", ["CDNOW_master.txt", "CDNOW_sample.txt", "donations.csv",
                                  "cdnow_customers_summary_with_transactions.csv"])
def test_rebuilt_files_are_the_published_bytes(name):
    if not (SHARED / name).exists():
        pytest.skip("the shared reference data are not here")
    assert datasets.dataset_bytes(name) == (SHARED / name).read_bytes()


def test_example_transactions_are_not_bundled():
    with pytest.raises(ValueError, match="not bundled"):
        datasets.load_transaction_data()


# --- BG/NBD, MBG/NBD, Pareto/NBD -----------------------------------------------------------------
#: fitted parameters against lifetimes': lifetimes' BFGS stops at a mean gradient of 1e-7 (tol),
#: so its estimates are a few 1e-6 from the maximum clvlab reaches
FIT_RTOL = {"bgnbd": 1e-4, "mbgnbd": 1e-4}


@pytest.mark.parametrize("label", ["bgnbd", "mbgnbd"])
def test_fit_reaches_lifetimes_maximum(label, fitted):
    ref, ours = REF[label], fitted[label]
    close(ours.params_, pd.Series(ref["params"])[ours.params_.index], rtol=FIT_RTOL[label])
    assert ours._negative_log_likelihood_ <= ref["negative_log_likelihood"] + 1e-12
    close(ours._negative_log_likelihood_, ref["negative_log_likelihood"], rtol=1e-9)
    close(ours.standard_errors_, pd.Series(ref["se"])[ours.params_.index], rtol=1e-3)
    assert list(ours.summary.columns) == ["coef", "se(coef)", "lower 95% bound", "upper 95% bound"]
    assert list(ours.data.columns) == ["frequency", "recency", "T", "weights"]


def test_pareto_fit_beats_lifetimes_nelder_mead(fitted):
    ours = fitted["pareto"]
    # lifetimes' Nelder-Mead (tol 1e-4, random start) stops short of the maximum
    assert ours._negative_log_likelihood_ <= REF["pareto"]["negative_log_likelihood"]
    close(ours.params_, pd.Series(REF["pareto"]["clvlab_params"])[ours.params_.index], rtol=1e-4)


@pytest.mark.parametrize("label", ["bgnbd", "mbgnbd", "pareto"])
def test_predictions_at_lifetimes_parameters(label, fitted, customers):
    ref = REF[label]
    model = at_reference(type(fitted[label])(), ref["params"])
    model.data = fitted[label].data
    x, r, T = customers["frequency"], customers["recency"], customers["T"]
    if label != "pareto":  # lifetimes' Pareto/NBD numerics: against the truth below
        close(model.conditional_expected_number_of_purchases_up_to_time(10, x, r, T),
              ref["conditional_expected_10"])
        close(model.predict(52, x, r, T), ref["conditional_expected_52"])
        close(model.conditional_probability_alive(x, r, T), ref["p_alive"])
        close(model.conditional_probability_alive_matrix(10, 20), ref["p_alive_matrix"])
    close(model.expected_number_of_purchases_up_to_time(np.array([1.0, 10, 39, 78])), ref["expected_new"])
    if "prob_n" in ref:
        close([model.probability_of_n_purchases_up_to_time(39, n) for n in range(4)], ref["prob_n"])


def test_pareto_predictions_are_the_exact_values(customers):
    ref = REF["pareto"]
    model = at_reference(lifetimes.ParetoNBDFitter(), ref["params"])
    x, r, T = customers["frequency"], customers["recency"], customers["T"]
    close(model.conditional_probability_alive(x, r, T), ref["truth_p_alive"])
    close(model.conditional_expected_number_of_purchases_up_to_time(10, x, r, T),
          ref["truth_conditional_expected_10"])


def test_pareto_where_lifetimes_is_wrong():
    """lifetimes' conditional PMF loses digits in its tails (a difference of log-sum-exp terms)
    and its P(alive) underflows to 0 for very unlikely customers; clvlab's are the exact values."""
    ref = REF["pareto"]
    model = at_reference(lifetimes.ParetoNBDFitter(), ref["params"])
    for case in ref["pmf_tails"]:
        ours = model.conditional_probability_of_n_purchases_up_to_time(
            case["n"], case["t"], case["frequency"], case["recency"], case["T"])
        close(ours, case["truth"], rtol=1e-10)
        assert abs(case["lifetimes"] - case["truth"]) > 1e-6 * case["truth"]
    extreme = ref["underflow"]
    model = at_reference(lifetimes.ParetoNBDFitter(), extreme["params"])
    args = (extreme["frequency"], extreme["recency"], extreme["T"])
    assert extreme["lifetimes_p_alive"] == 0.0
    close(model.conditional_probability_alive(*args), extreme["truth_p_alive"], rtol=1e-10)
    close(model.conditional_expected_number_of_purchases_up_to_time(10, *args),
          extreme["truth_conditional_expected_10"], rtol=1e-10)


@pytest.mark.parametrize("label", ["bgnbd", "mbgnbd", "gamma_gamma", "bgbb"])
def test_clvlab_fit_is_nearer_lifetimes_own_optimum(label):
    """At clvlab's estimates the gradient of lifetimes' own objective is smaller than at
    lifetimes' (its BFGS stops at tol=1e-7): the fitted parameters differ by that."""
    optimum = REF[label]["optimum"]
    assert optimum["gradient_at_clvlab_fit"] < optimum["gradient_at_lifetimes_fit"] / 5
    assert optimum["objective_at_clvlab_fit"] <= optimum["objective_at_lifetimes_fit"] + 1e-15


def test_return_types_are_lifetimes(fitted, customers):
    bgf, pnbd = fitted["bgnbd"], fitted["pareto"]
    x, r, T = customers["frequency"], customers["recency"], customers["T"]
    assert isinstance(bgf.predict(10, x, r, T), pd.Series)
    assert isinstance(bgf.conditional_probability_alive(x, r, T), np.ndarray)
    assert isinstance(pnbd.conditional_probability_alive(x, r, T), pd.Series)
    assert np.ndim(bgf.conditional_expected_number_of_purchases_up_to_time(10, 2, 30.4, 38.9)) == 0
    assert bgf.conditional_probability_alive(0, 0, 10).shape == (1,)
    assert bgf.expected_number_of_purchases_up_to_time(0) == 0.0
    assert bgf.conditional_probability_alive_matrix().shape == (39, 30)


def test_penalizer_is_lifetimes_objective(summary):
    ref = REF["bgnbd_penalized"]
    fitter = lifetimes.BetaGeoFitter(penalizer_coef=ref["penalizer_coef"])
    fitter.fit(summary["frequency"], summary["recency"], summary["T"])
    close(fitter.params_, pd.Series(ref["params"])[fitter.params_.index], rtol=1e-4)
    assert fitter._negative_log_likelihood_ <= ref["negative_log_likelihood"] + 1e-12


def test_weights_give_the_same_fit(summary, fitted):
    groups = summary.groupby(["frequency", "recency", "T"]).size().reset_index(name="weights")
    fitter = lifetimes.BetaGeoFitter().fit(groups["frequency"], groups["recency"], groups["T"],
                                           weights=groups["weights"])
    close(fitter.params_, fitted["bgnbd"].params_, rtol=1e-6)


def test_bad_inputs_are_refused_as_lifetimes_refuses_them():
    with pytest.raises(ValueError, match="recency vector are larger"):
        lifetimes.BetaGeoFitter().fit([1, 2], [5.0, 3.0], [4.0, 6.0])
    with pytest.raises(ValueError, match="non-integer"):
        lifetimes.BetaGeoFitter().fit([1.5, 2], [3.0, 3.0], [4.0, 6.0])
    with pytest.raises(ValueError, match="not been fit"):
        lifetimes.BetaGeoFitter().conditional_probability_alive(1, 1, 2)


# --- Gamma-Gamma and CLV --------------------------------------------------------------------------
def test_gamma_gamma_and_clv(summary, customers):
    ref = REF["gamma_gamma"]
    returning = summary[summary["frequency"] > 0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ggf = lifetimes.GammaGammaFitter().fit(returning["frequency"], returning["monetary_value"])
    close(ggf.params_, pd.Series(ref["params"])[ggf.params_.index], rtol=1e-4)
    assert ggf._negative_log_likelihood_ <= ref["negative_log_likelihood"] + 1e-12
    at_reference(ggf, ref["params"])
    close(ggf.conditional_expected_average_profit(customers["frequency"], customers["monetary_value"]),
          ref["expected_profit"])
    bgf = at_reference(lifetimes.BetaGeoFitter(), REF["bgnbd"]["params"])
    clv = ggf.customer_lifetime_value(bgf, customers["frequency"], customers["recency"],
                                      customers["T"], customers["monetary_value"], time=12,
                                      discount_rate=0.01, freq="W")
    assert isinstance(clv, pd.Series) and list(clv.index) == REF["customers"] and clv.name == "clv"
    close(clv, ref["clv_W_12"])


def test_clv_is_the_native_clv(summary, fitted):
    """The shim's CLV is clvlab.customer_lifetime_value with a month as the period."""
    import clvlab

    returning = summary[summary["frequency"] > 0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ggf = lifetimes.GammaGammaFitter().fit(returning["frequency"], returning["monetary_value"])
    bgf = fitted["bgnbd"]
    shim = ggf.customer_lifetime_value(bgf, summary["frequency"], summary["recency"], summary["T"],
                                       summary["monetary_value"], time=6, freq="W")
    native = clvlab.customer_lifetime_value(bgf._model(), ggf._model(), summary, 6 * 4.345, 0.01,
                                            period=4.345, time_unit="W")
    close(shim, native, rtol=1e-12)


def test_gamma_gamma_q_constraint(summary):
    """lifetimes bounds q >= 1 with q_constraint; where the bound does not bind the fit is the
    same (clvlab fits no bound and refuses a maximum at q < 1)."""
    returning = summary[summary["frequency"] > 0]
    args = (returning["frequency"], returning["monetary_value"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        free = lifetimes.GammaGammaFitter().fit(*args)
        bound = lifetimes.GammaGammaFitter().fit(*args, q_constraint=True)
    assert free.params_["q"] > 1
    close(bound.params_, free.params_, rtol=1e-12)
    with pytest.raises(ValueError, match="non-positive"):
        lifetimes.GammaGammaFitter().fit(args[0], args[1] * 0)


# --- BG/BB -----------------------------------------------------------------------------------
def test_bgbb_on_the_donations():
    ref = REF["bgbb"]
    d = datasets.load_donations()
    bb = lifetimes.BetaGeoBetaBinomFitter().fit(d["frequency"], d["recency"], d["periods"], d["weights"])
    close(bb.params_, pd.Series(ref["params"])[bb.params_.index], rtol=1e-4)
    assert bb._negative_log_likelihood_ <= ref["negative_log_likelihood"] + 1e-12
    close(bb.standard_errors_, pd.Series(ref["se"])[bb.params_.index], rtol=1e-3)
    at_reference(bb, ref["params"])
    args = (d["frequency"], d["recency"], d["periods"])
    close(bb.conditional_expected_number_of_purchases_up_to_time(5, *args), ref["conditional_expected_5"])
    close(bb.conditional_probability_alive(1, *args), ref["p_alive_1"])
    close(bb.conditional_probability_alive(0, *args), ref["p_alive_0"])
    close(bb.expected_number_of_transactions_in_first_n_periods(6)["model"], ref["first_6_periods"])


# --- summaries of a transaction log -----------------------------------------------------------
@pytest.fixture(scope="module")
def cdnow_log():
    return datasets.load_dataset("CDNOW_master.txt", sep=r"\s+", dtype={"date": str})


@pytest.mark.parametrize("label", sorted(REF["summary_data"]))
def test_summary_data_is_lifetimes(label, cdnow_log):
    ref = REF["summary_data"][label]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours = utils.summary_data_from_transaction_data(
            cdnow_log, "customer_id", "date", monetary_value_col="dollar_value",
            datetime_format="%Y%m%d", **ref["kwargs"])
    assert ours.index.name == "customer_id" and (ours.dtypes == float).all()
    assert list(ours.columns) == ["frequency", "recency", "T", "monetary_value"]
    for column in ours.columns:
        close(ours.loc[ref["customers"], column], ref[column], rtol=1e-12)


def test_freq_lifetimes_cannot_do():
    """lifetimes raises for freq="M" (numpy has no fixed month); clvlab's mean month is used.
    Periods shorter than an hour are refused: clvlab merges per hour at the finest."""
    log = pd.DataFrame({"id": [1, 1, 2], "date": pd.to_datetime(["2020-01-03", "2020-02-10", "2020-03-30"])})
    months = utils.summary_data_from_transaction_data(log, "id", "date", freq="M")
    close(months["T"], [60 / 30.436875, 0.0], rtol=1e-15)  # month starts: Jan 1 to Mar 1
    with pytest.raises(ValueError, match="shorter than an hour"):
        utils.summary_data_from_transaction_data(log, "id", "date", freq="min")


def test_calibration_and_holdout_is_lifetimes(cdnow_log):
    ref = REF["calibration_holdout_W"]
    ours = utils.calibration_and_holdout_data(
        cdnow_log, "customer_id", "date", "19970930", observation_period_end="19980630",
        freq="W", datetime_format="%Y%m%d", monetary_value_col="dollar_value")
    assert list(ours.columns) == [c for c in ref if c != "customers"]
    for column in ours.columns:
        if column != "monetary_value_holdout":  # a mean over holdout periods, not raw rows
            close(ours.loc[ref["customers"], column], ref[column], rtol=1e-12)


def test_expected_cumulative_transactions_is_lifetimes():
    ref = REF["tracking"]
    sample = datasets.load_dataset("CDNOW_sample.txt", sep=r"\s+", header=None, dtype={2: str},
                                   names=["master_id", "customer_id", "date", "cds", "value"])
    model = at_reference(lifetimes.BetaGeoFitter(), ref["params"])
    track = utils.expected_cumulative_transactions(model, sample, "date", "customer_id", ref["t"],
                                                   datetime_format="%Y%m%d")
    assert list(track.columns) == ["actual", "predicted"] and len(track) == ref["t"]
    close(track.loc[ref["days"], "actual"], ref["actual"], rtol=0)
    close(track.loc[ref["days"], "predicted"], ref["predicted"])


# --- files and plots ------------------------------------------------------------------------------
def test_save_model_writes_clvlab_json(tmp_path, fitted, customers):
    import clvlab

    bgf = fitted["bgnbd"]
    path = tmp_path / "bgf.json"
    bgf.save_model(str(path))
    content = json.loads(path.read_text())  # JSON, not a pickle
    assert content["model"] == "BetaGeo" and content["lifetimes"]["fitter"] == "BetaGeoFitter"
    native = clvlab.load_model(path)
    close(native.params_, bgf.params_, rtol=1e-15)
    loaded = lifetimes.BetaGeoFitter()
    loaded.load_model(str(path))
    x, r, T = customers["frequency"], customers["recency"], customers["T"]
    close(loaded.predict(10, x, r, T), bgf.predict(10, x, r, T), rtol=1e-15)
    close(loaded.summary, bgf.summary, rtol=1e-12)
    assert loaded.data is None and loaded.conditional_probability_alive_matrix().shape == (39, 30)
    with pytest.raises(ValueError, match="holds a BetaGeo"):
        lifetimes.ParetoNBDFitter().load_model(str(path))
    assert content["time_unit"] is None  # lifetimes' data carry no unit
    weekly = lifetimes.BetaGeoFitter().fit(customers["frequency"], customers["recency"],
                                           customers["T"], time_unit="W")
    weekly.save_model(str(tmp_path / "weekly.json"))
    assert clvlab.load_model(tmp_path / "weekly.json").time_unit_ == "W"


def test_plots_draw(fitted, summary, cdnow_log):
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    bgf = fitted["bgnbd"]
    sample = cdnow_log[cdnow_log["customer_id"] <= 300]
    holdout = utils.calibration_and_holdout_data(sample, "customer_id", "date", "19970930",
                                                 freq="W", datetime_format="%Y%m%d")
    draws = [lambda: plotting.plot_period_transactions(bgf),
             lambda: plotting.plot_calibration_purchases_vs_holdout_purchases(bgf, holdout),
             lambda: plotting.plot_frequency_recency_matrix(bgf, max_frequency=10, max_recency=20),
             lambda: plotting.plot_probability_alive_matrix(bgf),
             lambda: plotting.plot_expected_repeat_purchases(bgf, label="BG/NBD"),
             lambda: plotting.plot_history_alive(
                 bgf, 60, sample[sample["customer_id"] == 2].assign(
                     date=lambda f: pd.to_datetime(f["date"], format="%Y%m%d")), "date", freq="W"),
             lambda: plotting.plot_transaction_rate_heterogeneity(bgf),
             lambda: plotting.plot_dropout_rate_heterogeneity(bgf)]
    for draw in draws:
        assert draw() is not None
        plt.close("all")
