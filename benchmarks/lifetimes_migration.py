"""lifetimes 0.11.3 against clvlab.lifetimes, in the same run: lifetimes' quickstart through both
APIs, the largest relative differences per quantity printed, and lifetimes' outputs for a
handful of customers written to tests/data/lifetimes_reference.json (what
tests/test_lifetimes_shim.py compares with, without lifetimes installed).

    make bench-venv && .venv-bench/bin/python benchmarks/lifetimes_migration.py
    .venv-bench/bin/python benchmarks/lifetimes_migration.py --no-write   # compare only

Data: the CDNOW sample's calibration summary (weeks), the CDNOW master log (days) and the
donations data (BG/BB), as both libraries bundle them (clvlab.lifetimes rebuilds lifetimes'
files byte for byte; checked first). Each quantity is compared twice: with each library at its
own fit ("fit"), and with clvlab.lifetimes given lifetimes' parameters ("same params"), which
separates the optimisers from the formulas. Where lifetimes' numbers are wrong (its Pareto/NBD
numerics), the truth is computed with mpmath at 50 digits from the same formula, and both are
compared with it.
"""

from __future__ import annotations

import argparse
import inspect
import json
import time
import warnings
from pathlib import Path

import mpmath
import numpy as np
import pandas as pd

import clvlab.lifetimes as shim
import lifetimes
from clvlab.lifetimes import datasets as shim_datasets
from clvlab.lifetimes import utils as shim_utils
from lifetimes import datasets as lt_datasets
from lifetimes import utils as lt_utils

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "tests" / "data" / "lifetimes_reference.json"
CUSTOMERS = [1, 2, 3, 18, 100, 1516, 2160, 2357]  # CDNOW sample ids: light, heavy, new
ROWS: list[tuple[str, str, float]] = []  # (quantity, comparison, max relative difference)


def rel(a, b) -> float:
    a, b = np.asarray(a, dtype=float).ravel(), np.asarray(b, dtype=float).ravel()
    scale = np.maximum(np.abs(b), 1e-300)
    return float(np.max(np.abs(a - b) / scale)) if a.size else 0.0


def record(quantity, comparison, ours, theirs):
    value = rel(ours, theirs)
    ROWS.append((quantity, comparison, value))
    return value


def at(fitter, params):
    """A copy of a clvlab.lifetimes fitter at other parameters (lifetimes' own)."""
    other = type(fitter)()
    other.__dict__.update(fitter.__dict__)
    other.params_ = pd.Series(dict(params))[fitter.params_.index]
    return other


def signatures() -> dict[str, list[str]]:
    """Parameter names of every public function and method of lifetimes' API, in order."""
    out = {}
    classes = [lifetimes.BetaGeoFitter, lifetimes.ParetoNBDFitter, lifetimes.ModifiedBetaGeoFitter,
               lifetimes.BetaGeoBetaBinomFitter, lifetimes.GammaGammaFitter]
    for cls in classes:
        for name, member in inspect.getmembers(cls, inspect.isfunction):
            if not name.startswith("_") or name == "__init__":
                out[f"{cls.__name__}.{name}"] = list(inspect.signature(member).parameters)
    import lifetimes.plotting as lt_plotting

    for module, names in ((lt_utils, lt_utils.__all__ + ["_customer_lifetime_value"]),
                          (lt_plotting, lt_plotting.__all__),
                          (lt_datasets, lt_datasets.__all__ + ["load_dataset"])):
        for name in names:
            out[f"{module.__name__.split('.')[-1]}.{name}"] = list(
                inspect.signature(getattr(module, name)).parameters)
    return out


def check_datasets():
    for name in ("cdnow_customers_summary.csv", "cdnow_customers_summary_with_transactions.csv",
                 "donations.csv", "CDNOW_master.txt", "CDNOW_sample.txt"):
        ours = shim_datasets.dataset_bytes(name)
        theirs = (Path(lifetimes.__file__).parent / "datasets" / name).read_bytes()
        print(f"  dataset {name}: {'identical bytes' if ours == theirs else 'DIFFERENT'}")
        assert ours == theirs, name


def fit_both(name, args, kwargs=None, seed=None):
    kwargs = kwargs or {}
    times = {}
    out = []
    for lib in (lifetimes, shim):
        if seed is not None:
            np.random.seed(seed)
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fitted = getattr(lib, name)().fit(*args, **kwargs)
        times[lib.__name__] = time.perf_counter() - start
        out.append(fitted)
    print(f"  {name}: lifetimes {times['lifetimes']:.2f} s, clvlab.lifetimes "
          f"{times['clvlab.lifetimes']:.2f} s")
    return out


def transaction_block(label, lt_model, cl_model, summary, idx, ref):
    x, r, T = summary["frequency"], summary["recency"], summary["T"]
    lt_params = lt_model.params_
    same = at(cl_model, lt_params)
    record(f"{label} params", "fit", cl_model.params_, lt_params)
    record(f"{label} objective (_negative_log_likelihood_)", "fit",
           cl_model._negative_log_likelihood_, lt_model._negative_log_likelihood_)
    print(f"  {label} objective: lifetimes {lt_model._negative_log_likelihood_:.10f}, "
          f"clvlab.lifetimes {cl_model._negative_log_likelihood_:.10f} (lower is better)")
    block = {"params": dict(lt_params), "clvlab_params": dict(cl_model.params_),
             "negative_log_likelihood": float(lt_model._negative_log_likelihood_)}
    if hasattr(lt_model, "standard_errors_"):
        record(f"{label} standard errors", "fit", cl_model.standard_errors_, lt_model.standard_errors_)
        block["se"] = dict(lt_model.standard_errors_)
    quantities = {
        "conditional_expected_10": lambda m: m.conditional_expected_number_of_purchases_up_to_time(10, x, r, T),
        "conditional_expected_52": lambda m: m.conditional_expected_number_of_purchases_up_to_time(52, x, r, T),
        "p_alive": lambda m: m.conditional_probability_alive(x, r, T),
        "expected_new": lambda m: m.expected_number_of_purchases_up_to_time(np.array([1.0, 10, 39, 78])),
    }
    if hasattr(lt_model, "probability_of_n_purchases_up_to_time"):
        quantities["prob_n"] = lambda m: [m.probability_of_n_purchases_up_to_time(39, n) for n in range(4)]
    if hasattr(lt_model, "conditional_probability_of_n_purchases_up_to_time"):
        quantities["conditional_prob_n"] = lambda m: [np.asarray(
            m.conditional_probability_of_n_purchases_up_to_time(n, 10, x[idx], r[idx], T[idx]))
            for n in range(3)]
    quantities["p_alive_matrix"] = lambda m: m.conditional_probability_alive_matrix(10, 20)
    for key, compute in quantities.items():
        theirs = np.asarray(compute(lt_model), dtype=float)
        record(f"{label} {key}", "fit", compute(cl_model), theirs)
        record(f"{label} {key}", "same params", compute(same), theirs)
        values = theirs if key in ("expected_new", "prob_n", "p_alive_matrix", "conditional_prob_n") \
            else np.asarray(theirs)[np.asarray(summary.index.get_indexer(idx))]
        block[key] = np.asarray(values, dtype=float).tolist()
    ref[label] = block


def _alive_at_50_digits(params, x, t_x, T):
    """The Pareto/NBD's P(alive) and its inputs as 50-digit numbers (Fader & Hardie's note 009,
    eqs. 18-20, the formulas lifetimes implements)."""
    mpmath.mp.dps = 50
    r, alpha, s, beta = (mpmath.mpf(float(v)) for v in params)
    x, t_x, T = (mpmath.mpf(float(v)) for v in (x, t_x, T))
    if alpha >= beta:
        a1 = mpmath.hyp2f1(r + s + x, s + 1, r + s + x + 1, (alpha - beta) / (alpha + t_x))
        a2 = mpmath.hyp2f1(r + s + x, s + 1, r + s + x + 1, (alpha - beta) / (alpha + T))
        A0 = a1 / (alpha + t_x) ** (r + s + x) - a2 / (alpha + T) ** (r + s + x)
    else:
        a1 = mpmath.hyp2f1(r + s + x, r + x, r + s + x + 1, (beta - alpha) / (beta + t_x))
        a2 = mpmath.hyp2f1(r + s + x, r + x, r + s + x + 1, (beta - alpha) / (beta + T))
        A0 = a1 / (beta + t_x) ** (r + s + x) - a2 / (beta + T) ** (r + s + x)
    alive = 1 / (1 + s / (r + s + x) * (alpha + T) ** (r + x) * (beta + T) ** s * A0)
    return alive, (r, alpha, s, beta, x, T)


def pareto_truth(params, x, t_x, T, t):
    """P(alive) and the conditional expectation of the Pareto/NBD at 50 digits (note 009,
    eqs. 18-20 and 41)."""
    alive, (r, alpha, s, beta, x, T) = _alive_at_50_digits(params, x, t_x, T)
    t = mpmath.mpf(float(t))
    expected = alive * (r + x) * (beta + T) / ((alpha + T) * (s - 1)) * (
        1 - ((beta + T) / (beta + T + t)) ** (s - 1))
    return float(alive), float(expected)


def conditional_pmf_truth(params, n, t, x, t_x, T):
    """P(n purchases in (T, T+t] | history) of the Pareto/NBD at 50 digits: P(alive) times
    [S(t) NB(n | t) + int_0^t f(tau) NB(n | tau) dtau] (lifetime tau ~ Pareto II given alive,
    the purchase rate marginalised to a negative binomial), plus 1 - P(alive) at n = 0."""
    alive, (r, alpha, s, beta, x, T) = _alive_at_50_digits(params, x, t_x, T)
    t = mpmath.mpf(float(t))
    a, A, B = r + x, alpha + T, beta + T
    nb = lambda tau: (mpmath.gamma(a + n) / (mpmath.gamma(a) * mpmath.factorial(n))  # noqa: E731
                      * (A / (A + tau)) ** a * (tau / (A + tau)) ** n)
    part = (B / (B + t)) ** s * nb(t) + mpmath.quad(
        lambda tau: s / B * (1 + tau / B) ** (-(s + 1)) * nb(tau), [0, t])
    return float(alive * part + (1 - alive) * (n == 0))


def own_objective(lt_model, params, args):
    """lifetimes' own objective (its _negative_log_likelihood) at ``params`` (natural, unscaled)
    and the largest absolute entry of its gradient (autograd; None for the Pareto/NBD, whose
    objective autograd cannot differentiate)."""
    scale = getattr(lt_model, "_scale", 1.0)
    p = pd.Series(dict(params))[lt_model.params_.index].copy()
    for name in ("alpha", "beta"):
        if name in p.index and isinstance(lt_model, (lifetimes.BetaGeoFitter, lifetimes.ParetoNBDFitter)):
            p[name] *= scale
    f = type(lt_model)._negative_log_likelihood
    if isinstance(lt_model, lifetimes.ParetoNBDFitter):
        return float(f(p.to_numpy(), *args)), None
    from autograd import grad

    x0 = np.log(p.to_numpy())
    return float(f(x0, *args)), float(np.max(np.abs(grad(f)(x0, *args))))


def optimum_check(label, lt_model, cl_model, args):
    """Which fit is nearer the maximum of lifetimes' own objective."""
    theirs, g_theirs = own_objective(lt_model, lt_model.params_, args)
    ours, g_ours = own_objective(lt_model, cl_model.params_, args)
    grads = "" if g_theirs is None else f"; largest gradient entry {g_theirs:.1e} vs {g_ours:.1e}"
    print(f"  {label}: lifetimes' objective at its fit {theirs:.12f}, at clvlab's {ours:.12f}{grads}")
    return {"objective_at_lifetimes_fit": theirs, "objective_at_clvlab_fit": ours,
            "gradient_at_lifetimes_fit": g_theirs, "gradient_at_clvlab_fit": g_ours}


def main(write: bool) -> None:
    ref: dict = {"lifetimes_version": lifetimes.__version__, "customers": CUSTOMERS,
                 "generated_by": "benchmarks/lifetimes_migration.py"}
    print("lifetimes", lifetimes.__version__, "| pandas", pd.__version__, "| numpy", np.__version__)
    check_datasets()
    summary = lt_datasets.load_cdnow_summary_data_with_monetary_value()
    pd.testing.assert_frame_equal(summary, shim_datasets.load_cdnow_summary_data_with_monetary_value())
    idx = pd.Index(CUSTOMERS)
    ref["inputs"] = {c: summary.loc[CUSTOMERS, c].tolist()
                     for c in ("frequency", "recency", "T", "monetary_value")}
    x, r, T = summary["frequency"], summary["recency"], summary["T"]

    # --- BG/NBD and MBG/NBD (the quickstart) ---------------------------------------------
    lt_bgf, cl_bgf = fit_both("BetaGeoFitter", (x, r, T))
    transaction_block("bgnbd", lt_bgf, cl_bgf, summary, idx, ref)
    pen = [getattr(lib, "BetaGeoFitter")(penalizer_coef=0.01).fit(x, r, T) for lib in (lifetimes, shim)]
    record("bgnbd penalizer_coef=0.01 params", "fit", pen[1].params_, pen[0].params_)
    ref["bgnbd_penalized"] = {"penalizer_coef": 0.01, "params": dict(pen[0].params_),
                              "negative_log_likelihood": float(pen[0]._negative_log_likelihood_)}
    lt_mbg, cl_mbg = fit_both("ModifiedBetaGeoFitter", (x, r, T))
    transaction_block("mbgnbd", lt_mbg, cl_mbg, summary, idx, ref)
    weights = np.ones(len(x), dtype=int)
    for label, lt_model, cl_model in (("bgnbd", lt_bgf, cl_bgf), ("mbgnbd", lt_mbg, cl_mbg)):
        args = (x.to_numpy().astype(int), r.to_numpy() * lt_model._scale,
                T.to_numpy() * lt_model._scale, weights, 0.0)
        ref[label]["optimum"] = optimum_check(label, lt_model, cl_model, args)
    v_lt, v_cl = lt_bgf.variance_matrix_.to_numpy(), cl_bgf.variance_matrix_.to_numpy()
    record("bgnbd variance_matrix_ diagonal", "fit", np.diag(v_cl), np.diag(v_lt))
    record("bgnbd variance_matrix_ off-diagonal", "fit", v_cl[~np.eye(4, dtype=bool)], v_lt[~np.eye(4, dtype=bool)])
    print(f"  lifetimes' variance_matrix_ asymmetry: max |V - V.T| = {np.max(np.abs(v_lt - v_lt.T)):.3g} "
          f"(clvlab.lifetimes: {np.max(np.abs(v_cl - v_cl.T)):.3g})")

    # --- Gamma-Gamma and CLV ---------------------------------------------------------------
    returning = summary[summary["frequency"] > 0]
    lt_ggf, cl_ggf = fit_both("GammaGammaFitter", (returning["frequency"], returning["monetary_value"]))
    record("gamma-gamma params", "fit", cl_ggf.params_, lt_ggf.params_)
    record("gamma-gamma standard errors", "fit", cl_ggf.standard_errors_, lt_ggf.standard_errors_)
    record("gamma-gamma objective", "fit", cl_ggf._negative_log_likelihood_, lt_ggf._negative_log_likelihood_)
    gg_same = at(cl_ggf, lt_ggf.params_)
    gg_args = (returning["frequency"].to_numpy(float), returning["monetary_value"].to_numpy(float),
               np.ones(len(returning), dtype=int), 0.0)
    gg_optimum = optimum_check("gamma-gamma", lt_ggf, cl_ggf, gg_args)
    profit = lt_ggf.conditional_expected_average_profit(summary["frequency"], summary["monetary_value"])
    record("conditional_expected_average_profit", "fit",
           cl_ggf.conditional_expected_average_profit(summary["frequency"], summary["monetary_value"]), profit)
    record("conditional_expected_average_profit", "same params",
           gg_same.conditional_expected_average_profit(summary["frequency"], summary["monetary_value"]), profit)
    clv_args = (summary["frequency"], summary["recency"], summary["T"], summary["monetary_value"])
    lt_clv = lt_ggf.customer_lifetime_value(lt_bgf, *clv_args, time=12, discount_rate=0.01, freq="W")
    record("customer_lifetime_value (W, 12 months)", "fit",
           cl_ggf.customer_lifetime_value(cl_bgf, *clv_args, time=12, discount_rate=0.01, freq="W"), lt_clv)
    record("customer_lifetime_value (W, 12 months)", "same params",
           gg_same.customer_lifetime_value(at(cl_bgf, lt_bgf.params_), *clv_args, time=12,
                                           discount_rate=0.01, freq="W"), lt_clv)
    ref["gamma_gamma"] = {"params": dict(lt_ggf.params_), "se": dict(lt_ggf.standard_errors_),
                          "negative_log_likelihood": float(lt_ggf._negative_log_likelihood_),
                          "expected_profit": profit.loc[CUSTOMERS].tolist(),
                          "clv_W_12": lt_clv.loc[CUSTOMERS].tolist(), "optimum": gg_optimum}

    # --- Pareto/NBD -----------------------------------------------------------------------
    lt_pnbd, cl_pnbd = fit_both("ParetoNBDFitter", (x, r, T), seed=0)
    transaction_block("pareto", lt_pnbd, cl_pnbd, summary, idx, ref)
    same = at(cl_pnbd, lt_pnbd.params_)
    truth = np.array([pareto_truth(lt_pnbd.params_, *row, 10) for row in zip(x, r, T)])
    lt_alive = np.asarray(lt_pnbd.conditional_probability_alive(x, r, T), dtype=float)
    lt_expected = np.asarray(lt_pnbd.conditional_expected_number_of_purchases_up_to_time(10, x, r, T))
    for what, ours, theirs, exact in (
            ("p_alive", same.conditional_probability_alive(x, r, T), lt_alive, truth[:, 0]),
            ("conditional_expected_10", same.conditional_expected_number_of_purchases_up_to_time(10, x, r, T),
             lt_expected, truth[:, 1])):
        record(f"pareto {what} vs 50-digit truth", "clvlab.lifetimes", ours, exact)
        record(f"pareto {what} vs 50-digit truth", "lifetimes", theirs, exact)
        worst = int(np.nanargmax(np.abs(theirs - exact) / exact))
        print(f"  pareto {what}: lifetimes' worst customer {summary.index[worst]} "
              f"(x={x.iloc[worst]}, t_x={r.iloc[worst]}, T={T.iloc[worst]}): lifetimes "
              f"{theirs[worst]:.10g}, truth {exact[worst]:.10g}")
    ref["pareto"]["optimum"] = optimum_check(
        "pareto", lt_pnbd, cl_pnbd, (x.to_numpy().astype(int), r.to_numpy() * lt_pnbd._scale,
                                     T.to_numpy() * lt_pnbd._scale, np.ones(len(x), dtype=int), 0.0))
    tails = []
    for t in (10, 39):
        theirs = np.array([np.asarray(lt_pnbd.conditional_probability_of_n_purchases_up_to_time(
            n, t, x, r, T), dtype=float) for n in range(40)])
        ours = np.array([np.asarray(same.conditional_probability_of_n_purchases_up_to_time(
            n, t, x, r, T), dtype=float) for n in range(40)])
        shown = ours > 1e-12
        record(f"pareto conditional pmf n<40 t={t} (P > 1e-12)", "same params", ours[shown], theirs[shown])
        gap = np.where(shown, np.abs(theirs - ours) / np.maximum(ours, 1e-300), 0.0)
        for n, i in np.argwhere(gap > 1e-6)[np.argsort(-gap[gap > 1e-6])][:3]:
            exact = conditional_pmf_truth(lt_pnbd.params_, n, t, x.iloc[i], r.iloc[i], T.iloc[i])
            tails.append({"n": int(n), "t": t, "frequency": float(x.iloc[i]), "recency": float(r.iloc[i]),
                          "T": float(T.iloc[i]), "truth": exact, "lifetimes": float(theirs[n, i])})
            print(f"  pareto P(X={n} in {t}) of customer {summary.index[i]}: lifetimes {theirs[n, i]:.10g} "
                  f"(rel. error {abs(theirs[n, i] - exact) / exact:.1e}), clvlab {ours[n, i]:.10g} "
                  f"(rel. error {abs(ours[n, i] - exact) / exact:.1e})")
    ref["pareto"]["pmf_tails"] = tails
    extreme = {"params": {"r": 1.0, "alpha": 1.0, "s": 2.0, "beta": 100.0}, "frequency": 100,
               "recency": 0.39, "T": 39.0}
    probe = type(lt_pnbd)()
    probe.params_ = pd.Series(extreme["params"])
    extreme["lifetimes_p_alive"] = float(np.asarray(probe.conditional_probability_alive(100, 0.39, 39.0)))
    extreme["truth_p_alive"], extreme["truth_conditional_expected_10"] = pareto_truth(
        probe.params_, 100, 0.39, 39.0, 10)
    print(f"  pareto p_alive underflow: lifetimes {extreme['lifetimes_p_alive']:.3g}, "
          f"truth {extreme['truth_p_alive']:.6g}")
    ref["pareto"]["underflow"] = extreme
    ref["pareto"]["truth_p_alive"] = truth[summary.index.get_indexer(idx), 0].tolist()
    ref["pareto"]["truth_conditional_expected_10"] = truth[summary.index.get_indexer(idx), 1].tolist()

    # --- BG/BB on the donations --------------------------------------------------------------
    donations = lt_datasets.load_donations()
    args = (donations["frequency"], donations["recency"], donations["periods"], donations["weights"])
    lt_bb, cl_bb = fit_both("BetaGeoBetaBinomFitter", args)
    bb_same = at(cl_bb, lt_bb.params_)
    record("bgbb params", "fit", cl_bb.params_, lt_bb.params_)
    record("bgbb standard errors", "fit", cl_bb.standard_errors_, lt_bb.standard_errors_)
    record("bgbb objective", "fit", cl_bb._negative_log_likelihood_, lt_bb._negative_log_likelihood_)
    ref["bgbb"] = {"params": dict(lt_bb.params_), "se": dict(lt_bb.standard_errors_),
                   "negative_log_likelihood": float(lt_bb._negative_log_likelihood_),
                   "optimum": optimum_check("bgbb", lt_bb, cl_bb, tuple(np.asarray(a) for a in args) + (0.0,))}
    d = donations
    for key, compute in {
        "conditional_expected_5": lambda m: m.conditional_expected_number_of_purchases_up_to_time(
            5, d["frequency"], d["recency"], d["periods"]),
        "p_alive_1": lambda m: m.conditional_probability_alive(1, d["frequency"], d["recency"], d["periods"]),
        "p_alive_0": lambda m: m.conditional_probability_alive(0, d["frequency"], d["recency"], d["periods"]),
        "first_6_periods": lambda m: m.expected_number_of_transactions_in_first_n_periods(6)["model"],
    }.items():
        theirs = np.asarray(compute(lt_bb), dtype=float)
        record(f"bgbb {key}", "fit", compute(cl_bb), theirs)
        record(f"bgbb {key}", "same params", compute(bb_same), theirs)
        ref["bgbb"][key] = theirs.tolist()

    # --- summaries of the CDNOW log ----------------------------------------------------------
    log = lt_datasets.load_dataset("CDNOW_master.txt", sep=r"\s+", dtype={"date": str})
    ref["summary_data"] = {}
    ids = [1, 2, 4, 18, 100, 1516, 23570]
    for label, kwargs in (("D", {}), ("W", {"freq": "W"}), ("h24", {"freq": "h", "freq_multiplier": 24}),
                          ("D_first", {"include_first_transaction": True}),
                          ("D_end", {"observation_period_end": "19970930"})):
        frames = []
        for utils in (lt_utils, shim_utils):
            start = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                frames.append(utils.summary_data_from_transaction_data(
                    log, "customer_id", "date", monetary_value_col="dollar_value",
                    datetime_format="%Y%m%d", **kwargs))
            print(f"  summary_data_from_transaction_data {label} ({utils.__name__}): "
                  f"{time.perf_counter() - start:.2f} s")
        theirs, ours = frames
        assert list(ours.index) == list(theirs.index) and list(ours.columns) == list(theirs.columns)
        for column in theirs.columns:
            record(f"summary_data {label} {column}", "same log", ours[column], theirs[column])
        ref["summary_data"][label] = {"kwargs": kwargs, "customers": ids,
                                      **{c: theirs.loc[ids, c].tolist() for c in theirs.columns}}
    text = log.assign(date=pd.to_datetime(log["date"], format="%Y%m%d").dt.strftime("%d/%m/%Y"))
    ends = [u.summary_data_from_transaction_data(text, "customer_id", "date", datetime_format="%d/%m/%Y")
            for u in (lt_utils, shim_utils)]
    print(f"  dates as %d/%m/%Y text, default observation end: lifetimes {len(ends[0])} customers, "
          f"max T {ends[0]['T'].max():g} days; clvlab.lifetimes {len(ends[1])} customers, "
          f"max T {ends[1]['T'].max():g} days")
    ref["text_dates_max_T"] = {"lifetimes": float(ends[0]["T"].max()), "clvlab": float(ends[1]["T"].max())}
    try:
        lt_utils.summary_data_from_transaction_data(log, "customer_id", "date", datetime_format="%Y%m%d",
                                                    freq="M")
        print("  lifetimes freq='M': ran")
    except Exception as exc:  # noqa: BLE001 - what lifetimes does is the finding
        print(f"  lifetimes freq='M': {type(exc).__name__}: {exc}")
    frames = [u.calibration_and_holdout_data(log, "customer_id", "date", "19970930",
                                             observation_period_end="19980630", freq="W",
                                             datetime_format="%Y%m%d", monetary_value_col="dollar_value")
              for u in (lt_utils, shim_utils)]
    for column in frames[0].columns:
        record(f"calibration_and_holdout W {column}", "same log", frames[1][column], frames[0][column])
    ref["calibration_holdout_W"] = {"customers": ids, **{c: frames[0].loc[ids, c].tolist()
                                                         for c in frames[0].columns}}

    # --- tracking: BG/NBD in days on the CDNOW sample log ------------------------------------
    sample = lt_datasets.load_dataset("CDNOW_sample.txt", sep=r"\s+", header=None, dtype={2: str},
                                      names=["master_id", "customer_id", "date", "cds", "value"])
    cal = lt_utils.summary_data_from_transaction_data(
        sample[sample["date"] <= "19970930"], "customer_id", "date", datetime_format="%Y%m%d",
        observation_period_end="19970930")
    lt_day, cl_day = fit_both("BetaGeoFitter", (cal["frequency"], cal["recency"], cal["T"]))
    track = [u.expected_cumulative_transactions(m, sample, "date", "customer_id", 546, datetime_format="%Y%m%d")
             for u, m in ((lt_utils, lt_day), (shim_utils, at(cl_day, lt_day.params_)))]
    record("expected_cumulative_transactions actual", "same params", track[1]["actual"], track[0]["actual"])
    record("expected_cumulative_transactions predicted", "same params", track[1]["predicted"], track[0]["predicted"])
    ref["tracking"] = {"params": dict(lt_day.params_), "t": 546, "days": [1, 30, 100, 273, 400, 545],
                       **{c: track[0].loc[[1, 30, 100, 273, 400, 545], c].tolist() for c in ("actual", "predicted")}}

    ref["signatures"] = signatures()
    print()
    print(f"{'quantity':62s} {'comparison':18s} max rel. diff")
    for quantity, comparison, value in ROWS:
        print(f"{quantity:62s} {comparison:18s} {value:.2e}")
    if write:
        REFERENCE.parent.mkdir(parents=True, exist_ok=True)
        REFERENCE.write_text(json.dumps(ref, indent=1, default=float) + "\n")
        print(f"\nwrote {REFERENCE.relative_to(ROOT)}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-write", action="store_true", help="compare only; leave the JSON as it is")
    main(write=not parser.parse_args().no_write)
