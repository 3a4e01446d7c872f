"""MBG/NBD, BG/BB and the shifted-beta-geometric: likelihoods against mpmath references,
published estimates, parameter recovery and predictions against simulation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import clvlab
import reference
from clvlab import (BetaGeo, BetaGeoBetaBinom, ClvlabError, DataValidationError,
                    ModifiedBetaGeo, ShiftedBetaGeo, simulate)
from clvlab.datasets import load_cdnow_summary, load_donations, load_sbg_survival

TOLERANCE = 1e-9


def log_uniform(rng, low, high, size):
    return np.exp(rng.uniform(np.log(low), np.log(high), size))


def assert_close(ours, ref, case):
    assert np.isfinite(ours), f"not finite at {case}"
    assert abs(ours - ref) <= TOLERANCE * max(1.0, abs(ref)), f"{ours} vs {ref} at {list(case)}"


@pytest.fixture(scope="module")
def donations():
    return load_donations()


# --- likelihoods against independent references ------------------------------------------------
def test_mbg_nbd_matches_mpmath_on_3000_inputs():
    rng = np.random.default_rng(3)
    n = 3000
    params = [log_uniform(rng, 1e-3, 1e3, n) for _ in range(4)]
    kind = rng.integers(0, 4, n)
    x = np.where(kind == 0, 0.0, np.floor(log_uniform(rng, 1, 10_000, n)))
    T = log_uniform(rng, 0.1, 500, n)
    t_x = np.where(x == 0, 0.0, np.where(kind == 1, T, T * rng.uniform(0.001, 1, n)))
    for case in np.column_stack([*params, x, t_x, T]):
        values, _ = ModifiedBetaGeo._loglik(case[:4], [case[4:5], case[5:6], case[6:7]])
        assert_close(float(values[0]), reference.mbg_nbd_loglik(*case), case)


def test_bg_bb_matches_term_by_term_mpmath_on_2000_inputs():
    rng = np.random.default_rng(4)
    n = 2000
    params = [log_uniform(rng, 1e-2, 1e3, n) for _ in range(4)]
    periods = np.where(rng.uniform(size=n) < 0.8, rng.integers(1, 12, n), rng.integers(12, 200, n))
    t_x = np.floor(rng.uniform(0, 1, n) * (periods + 1))
    x = np.where(t_x == 0, 0, np.floor(rng.uniform(0, 1, n) * t_x) + 1)
    x = np.minimum(x, t_x)
    for case in np.column_stack([*params, x, t_x, periods]).astype(float):
        values, _ = BetaGeoBetaBinom._loglik(case[:4], [case[4:5], case[5:6], case[6:7]])
        assert_close(float(values[0]), reference.bg_bb_loglik(*case), case)


def test_bg_bb_rows_of_different_lengths_equal_row_by_row():
    """Rows with 0 to 50 opportunities in one call give each row's own value and gradient."""
    data = load_donations()
    columns = [data[c].to_numpy(float) for c in ("frequency", "recency", "periods")]
    columns = [np.concatenate([c, [0.0, 3.0, 40.0]]) for c in columns[:2]] + [
        np.concatenate([columns[2], [0.0, 50.0, 40.0]])]
    params = np.array([1.2, 0.75, 0.66, 2.8])
    whole, grads = BetaGeoBetaBinom._loglik(params, columns)
    singles = [BetaGeoBetaBinom._loglik(params, [c[i:i + 1] for c in columns]) for i in range(len(whole))]
    np.testing.assert_allclose(whole, [v[0] for v, _ in singles], rtol=1e-13)
    np.testing.assert_allclose(grads, np.vstack([g for _, g in singles]), rtol=1e-13)


def test_sbg_matches_product_of_retention_rates():
    rng = np.random.default_rng(5)
    for _ in range(2000):
        alpha, beta = log_uniform(rng, 1e-3, 1e3, 2)
        duration = int(rng.integers(1, 500))
        churned = bool(rng.integers(0, 2))
        values, _ = ShiftedBetaGeo._loglik(np.array([alpha, beta]),
                                           [np.array([float(duration)]), np.array([float(churned)])])
        case = (alpha, beta, duration, churned)
        assert_close(float(values[0]), reference.sbg_loglik(*case), case)


@pytest.mark.parametrize("model_class,table_of,centre", [
    (ModifiedBetaGeo, lambda: load_cdnow_summary(), [0.52, 6.2, 0.89, 1.6]),
    (BetaGeoBetaBinom, lambda: load_donations(), [1.2, 0.75, 0.66, 2.8]),
    (ShiftedBetaGeo, lambda: clvlab.durations_from_survivors(load_sbg_survival()["regular"]),
     [0.7, 1.2]),
])
def test_exact_gradients_match_central_differences(model_class, table_of, centre):
    model = model_class()
    data = model._prepare(model._data(table_of()))
    rng = np.random.default_rng(0)
    for _ in range(5):
        params = np.array(centre) * np.exp(rng.uniform(-1.5, 1.5, len(centre)))
        gradient = model_class._loglik(params, data)[1].sum(axis=0)
        for i in range(len(params)):
            h = 1e-6 * params[i]
            up, down = params.copy(), params.copy()
            up[i] += h
            down[i] -= h
            numeric = (model_class._loglik(up, data)[0].sum()
                       - model_class._loglik(down, data)[0].sum()) / (2 * h)
            assert gradient[i] == pytest.approx(numeric, rel=1e-5, abs=1e-6)


# --- published estimates ---------------------------------------------------------------------
def test_mbg_nbd_reproduces_btydplus_on_cdnow():
    """BTYDplus's mbgnbd.EstimateParameters on the CDNOW sample: r 0.525, alpha 6.183,
    a 0.891, b 1.614 (as lifetimes' test suite quotes them)."""
    rfm = load_cdnow_summary()
    model = ModifiedBetaGeo().fit(rfm)
    np.testing.assert_allclose(model.params_, [0.525, 6.183, 0.891, 1.614], atol=1.5e-3)
    # the log-likelihood at the optimum, with the value at the published estimates no higher
    published = ModifiedBetaGeo.from_params(r=0.525, alpha=6.183, a=0.891, b=1.614)
    data = model._data(rfm)
    at_published = float(ModifiedBetaGeo._loglik(published.params_.to_numpy(), data)[0].sum())
    assert model.log_likelihood_ == pytest.approx(-9582.13, abs=0.01)
    assert -0.01 < model.log_likelihood_ - at_published < 0.01
    # one parameter more than BG/NBD and a higher likelihood on the same data
    assert model.log_likelihood_ > BetaGeo().fit(rfm).log_likelihood_


def test_bg_bb_reproduces_fader_hardie_shang_on_donations(donations):
    """FHS (2010), 11,104 donors of the 1995 cohort: alpha 1.204, beta 0.750, gamma 0.657,
    delta 2.783, LL -33,225.6."""
    model = BetaGeoBetaBinom().fit(donations, weights=donations["weights"])
    np.testing.assert_allclose(model.params_, [1.204, 0.750, 0.657, 2.783], atol=1e-3)
    assert model.log_likelihood_ == pytest.approx(-33225.6, abs=0.05)
    assert model.n_customers_ == 11104
    assert np.all(np.isfinite(model.standard_errors_))


@pytest.mark.parametrize("cohort,published,log_likelihood", [
    ("regular", [0.704, 1.182], -1680.3), ("high_end", [0.668, 3.806], -1611.2)])
def test_sbg_reproduces_fader_hardie_2007(cohort, published, log_likelihood):
    durations = clvlab.durations_from_survivors(load_sbg_survival()[cohort])
    model = ShiftedBetaGeo().fit(durations, weights=durations["weight"])
    np.testing.assert_allclose(model.params_, published, atol=1e-3)
    assert model.log_likelihood_ == pytest.approx(log_likelihood, abs=0.05)
    assert model.n_customers_ == 1000


# --- recovery by simulation ------------------------------------------------------------------
def _within(model, truth, k=3.0):
    distance = np.abs(model.params_.to_numpy() - np.array(truth)) / model.standard_errors_.to_numpy()
    assert np.all(distance < k), (model.params_.to_dict(), truth, distance)


def test_mbg_nbd_recovers_parameters_and_predicts_the_holdout():
    truth = dict(r=0.6, alpha=5.0, a=0.9, b=2.0)
    T = np.random.default_rng(1).uniform(20, 60, 40_000)
    data = simulate.mbg_nbd(40_000, **truth, T=T, T_holdout=40, seed=2)
    model = ModifiedBetaGeo().fit(data)
    _within(model, list(truth.values()))
    known = ModifiedBetaGeo.from_params(**truth)
    expected = known.expected_purchases(data, 40).sum()
    assert expected == pytest.approx(data["frequency_holdout"].sum(), rel=0.03)
    # P(alive) is calibrated, also for customers without repeat purchases (BG/NBD says 1)
    p = known.p_alive(data)
    zero = data["frequency"] == 0
    assert p[zero].mean() == pytest.approx(data.loc[zero, "alive"].mean(), abs=0.01)
    assert p[~zero].mean() == pytest.approx(data.loc[~zero, "alive"].mean(), abs=0.01)
    # new customers: expected repeat purchases by 40 = mean of a fresh simulation
    fresh = simulate.mbg_nbd(100_000, **truth, T=40.0, seed=3)
    assert known.expected_purchases_new_customer(40) == pytest.approx(fresh["frequency"].mean(), rel=0.02)
    assert known.purchase_probability(0, 40) == pytest.approx((fresh["frequency"] == 0).mean(), abs=0.005)


def test_bg_bb_recovers_parameters_and_predicts_the_holdout():
    truth = dict(alpha=1.2, beta=0.75, gamma=0.66, delta=2.8)
    data = simulate.bg_bb(60_000, **truth, periods=6, periods_holdout=5, seed=4)
    model = BetaGeoBetaBinom().fit(data)
    _within(model, list(truth.values()))
    known = BetaGeoBetaBinom.from_params(**truth)
    by_x = pd.DataFrame({"x": data["frequency"], "actual": data["frequency_holdout"],
                         "expected": known.expected_purchases(data, 5)}).groupby("x").sum()
    np.testing.assert_allclose(by_x["expected"], by_x["actual"], rtol=0.06)
    # P(alive at the next opportunity) against the simulated survival of one more death draw
    alive_next = data["alive"] & (np.random.default_rng(5).uniform(size=len(data)) >= data["theta_"])
    assert known.p_alive(data).mean() == pytest.approx(alive_next.mean(), abs=0.005)
    # the conditional PMF of holdout purchases, aggregated
    for k in (0, 1, 5):
        share = (data["frequency_holdout"] == k).mean()
        assert known.purchase_probability(k, 5, data).mean() == pytest.approx(share, abs=0.006)


def test_bg_bb_new_customer_pmf_and_expectation_match_simulation():
    truth = dict(alpha=1.2, beta=0.75, gamma=0.66, delta=2.8)
    model = BetaGeoBetaBinom.from_params(**truth)
    data = simulate.bg_bb(200_000, **truth, periods=8, seed=6)
    pmf = np.array([model.purchase_probability(k, 8) for k in range(9)])
    assert pmf.sum() == pytest.approx(1.0, abs=1e-12)
    observed = np.bincount(data["frequency"], minlength=9) / len(data)
    np.testing.assert_allclose(pmf, observed, atol=0.004)
    assert model.expected_purchases_new_customer(8) == pytest.approx(data["frequency"].mean(), rel=0.01)
    # the closed form at gamma = 1 (its limit) equals the sum it stands for
    near_one = BetaGeoBetaBinom.from_params(alpha=1.0, beta=1.0, gamma=1.0, delta=2.0)
    direct = sum(0.5 * 2.0 / (2.0 + k) for k in range(1, 11))  # E[p] * E[(1-theta)^k], Beta(1, 2)
    assert near_one.expected_purchases_new_customer(10) == pytest.approx(direct, rel=1e-12)


def test_bg_bb_dert_equals_the_discounted_sum(donations):
    model = BetaGeoBetaBinom.from_params(alpha=1.204, beta=0.750, gamma=0.657, delta=2.783)
    d = 0.1
    dert = model.discounted_expected_transactions(donations, d).to_numpy()
    # sum over future opportunities of (expected purchases at n + k) / (1 + d)^k
    cumulative = np.column_stack([model.expected_purchases(donations, k).to_numpy()
                                  for k in range(1, 401)])
    per_k = np.diff(np.column_stack([np.zeros(len(donations)), cumulative]), axis=1)
    direct = per_k @ (1 + d) ** -np.arange(1, 401)
    np.testing.assert_allclose(dert, direct, rtol=1e-8)
    with pytest.raises(ClvlabError, match="discount_rate"):
        model.discounted_expected_transactions(donations, 0.0)


def test_sbg_recovers_parameters_and_projects_survival():
    truth = dict(alpha=0.7, beta=1.2)
    data = simulate.shifted_beta_geometric(50_000, **truth, periods=7, seed=7)
    model = ShiftedBetaGeo().fit(data)
    _within(model, list(truth.values()))
    known = ShiftedBetaGeo.from_params(**truth)
    lifetimes = data["lifetime_"].to_numpy()
    for t in (1, 3, 7, 15):   # survival beyond the observed 7 periods, too
        assert known.survival(t) == pytest.approx((lifetimes > t).mean(), abs=0.006)
    assert known.churn_probability(2) == pytest.approx((lifetimes == 2).mean(), abs=0.005)
    survivors = known.project_survivors(1000, 7)
    assert survivors.iloc[0] == 1000 and survivors.is_monotonic_decreasing
    rates = known.retention_rate(np.arange(1, 10))
    assert np.all(np.diff(rates) > 0)  # retention rises with tenure under heterogeneity
    assert rates[0] == pytest.approx(known.survival(1))


def test_sbg_residual_lifetime_against_summation_and_simulation():
    model = ShiftedBetaGeo.from_params(alpha=0.704, beta=1.182)
    table = pd.DataFrame({"duration": [0, 1, 4, 3], "churned": [False, False, False, True]})
    d = 0.1
    derl = model.expected_residual_lifetime(table, d).to_numpy()
    for row, n in enumerate([0, 1, 4]):
        # payment for period n + k needs T > n + k - 1, discounted by (1 + d)^-(k-1)
        k = np.arange(1, 20_000)
        survive = np.exp(np.cumsum(np.log((1.182 + n + k - 1) / (0.704 + 1.182 + n + k - 1))))
        assert derl[row] == pytest.approx(np.sum(survive * (1 + d) ** -(k - 1.0)), rel=1e-9)
    assert derl[3] == 0.0
    np.testing.assert_allclose(model.renewal_probability(table), [1.182 / 1.886, 2.182 / 2.886,
                                                                  5.182 / 5.886, 0.0])
    # simulation: customers who renewed once (in period 2), their discounted future renewals
    rng = np.random.default_rng(8)
    theta = rng.beta(0.704, 1.182, 2_000_000)
    lifetime = rng.geometric(theta)
    renewed_once = lifetime > 1
    future = lifetime[renewed_once] - 2  # renewals into periods 3 .. lifetime
    paid = (1 - (1 + d) ** -future.astype(float)) / (1 - 1 / (1 + d))
    assert derl[1] == pytest.approx(paid.mean(), rel=0.01)


# --- inputs from logs --------------------------------------------------------------------------
def _donation_log(donations):
    """A transaction log consistent with the donation summary (one pattern per donor)."""
    rng = np.random.default_rng(0)
    customer, dates = [], []
    cid = 0
    for x, t_x, _, w in donations[["frequency", "recency", "periods", "weights"]].itertuples(index=False):
        for _ in range(int(w)):
            years = [1995]
            if x > 0:
                years += [1995 + int(v) for v in rng.choice(np.arange(1, t_x), size=x - 1, replace=False)]
                years.append(1995 + int(t_x))
            for y in years:
                customer.append(cid)
                dates.append(pd.Timestamp(year=y, month=int(rng.integers(1, 13)), day=int(rng.integers(1, 28))))
            cid += 1
    return pd.DataFrame({"customer_id": customer, "date": dates})


def test_discrete_rfm_summary_rebuilds_the_donation_data(donations):
    log = _donation_log(donations)
    # a second gift in the same year is one opportunity taken, not two
    log = pd.concat([log, log.iloc[:50].assign(date=lambda f: f["date"] + pd.Timedelta(days=1))])
    summary = clvlab.discrete_rfm_summary(log, period="Y", calibration_end="2002-01-01")
    counts = summary.groupby(["frequency", "recency", "periods"]).size().rename("weights").reset_index()
    expected = donations.sort_values(["frequency", "recency"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(counts, expected[["frequency", "recency", "periods", "weights"]],
                                  check_dtype=False)
    model = BetaGeoBetaBinom().fit(summary)
    assert model.log_likelihood_ == pytest.approx(-33225.6, abs=0.05)


def test_discrete_rfm_summary_holdout_and_rules():
    log = pd.DataFrame({"customer_id": [1, 1, 1, 1, 2, 2, 3],
                        "date": pd.to_datetime(["2020-01-05", "2020-03-01", "2020-03-20", "2020-06-02",
                                                "2020-02-10", "2020-02-11", "2020-07-01"])})
    s = clvlab.discrete_rfm_summary(log, period="M", calibration_end="2020-05-01",
                                    observation_end="2020-07-01")
    assert s.loc[1].tolist() == [1, 2, 3, 1, 2]   # March taken; June in the holdout
    assert s.loc[2].tolist() == [0, 0, 2, 0, 2]   # two gifts in its first month
    assert 3 not in s.index and s.attrs["clvlab"]["customers_after_cut"] == 1
    weekly = clvlab.discrete_rfm_summary(log, period="W", calibration_end="2020-04-27")  # a Monday
    assert weekly.loc[1, "periods"] == 16
    with pytest.raises(ClvlabError, match="not the start of a 'M' period; use 2020-05-01 or 2020-06-01"):
        clvlab.discrete_rfm_summary(log, period="M", calibration_end="2020-05-15")
    with pytest.raises(ClvlabError, match="period 'fortnight'"):
        clvlab.discrete_rfm_summary(log, period="fortnight")
    with pytest.raises(DataValidationError, match="'date'.*is missing"):
        clvlab.discrete_rfm_summary(log.drop(columns="date"))


def test_contract_durations_rules():
    subs = pd.DataFrame({"start": ["2024-01-15", "2024-01-15", "2024-01-15", "2024-01-15",
                                   "2024-02-01", "2024-08-01"],
                         "end": ["2024-03-14", "2024-03-15", None, "2024-01-15", "2025-01-01", None]},
                        index=pd.Index(list("abcdef"), name="customer"))
    with pytest.warns(clvlab.ClvlabWarning, match="1 subscriptions start after"):
        out = clvlab.contract_durations(subs, observation_end="2024-06-01")
    assert out["duration"].to_dict() == {"a": 2, "b": 2, "c": 4, "d": 1, "e": 4}
    assert out["churned"].to_dict() == {"a": True, "b": True, "c": False, "d": True, "e": False}
    yearly = clvlab.contract_durations(subs.iloc[:5], observation_end="2026-01-20", period="Y")
    assert yearly["duration"].to_dict() == {"a": 1, "b": 1, "c": 2, "d": 1, "e": 1}
    bad = subs.assign(end=["2023-01-01", None, None, None, None, None])
    with pytest.raises(DataValidationError, match="'end'.*cannot end before it starts.*<row>='a'"):
        clvlab.contract_durations(bad, observation_end="2024-06-01")


def test_simulated_contracts_round_trip_through_dates():
    data = simulate.shifted_beta_geometric(20_000, alpha=0.7, beta=1.2, periods=12, seed=9)
    start = pd.Timestamp("2023-01-10")
    end = [start + pd.DateOffset(months=int(k)) if c else None
           for k, c in zip(data["duration"], data["churned"])]
    subs = pd.DataFrame({"start": start, "end": end})
    out = clvlab.contract_durations(subs, observation_end=start + pd.DateOffset(months=12))
    np.testing.assert_array_equal(out["duration"], data["duration"])
    np.testing.assert_array_equal(out["churned"], data["churned"])


# --- validation, files, Bayesian fits --------------------------------------------------------
@pytest.mark.parametrize("change,column,rule", [
    ({"frequency": [3]}, "frequency", "frequency must be <= recency"),
    ({"recency": [7]}, "recency", "must be <= periods"),
    ({"periods": [2.5]}, "periods", "whole number"),
    ({"frequency": [0], "recency": [2]}, "recency", "recency must be 0"),
    ({"frequency": [np.nan]}, "frequency", "missing or NaN"),
])
def test_discrete_table_errors_name_column_rule_and_row(change, column, rule):
    table = pd.DataFrame({"frequency": [2.0], "recency": [2.0], "periods": [6.0]}, index=["d1"])
    for name, values in change.items():
        table[name] = values
    with pytest.raises(DataValidationError, match=rule) as info:
        BetaGeoBetaBinom().fit(pd.concat([load_donations(), table]))
    assert info.value.column == column and info.value.row["<row>"] == "d1"


def test_duration_table_errors():
    with pytest.raises(DataValidationError, match="duration must be >= 1 for a churned customer"):
        ShiftedBetaGeo().fit(pd.DataFrame({"duration": [0, 2], "churned": [True, False]}))
    with pytest.raises(DataValidationError, match="'churned'.*True/False"):
        ShiftedBetaGeo().fit(pd.DataFrame({"duration": [1, 2], "churned": [2, 0]}))
    with pytest.raises(ClvlabError, match="nobody churned"):
        ShiftedBetaGeo().fit(pd.DataFrame({"duration": [1, 2], "churned": [False, False]}))


@pytest.mark.parametrize("model_class,table_of", [
    (ModifiedBetaGeo, load_cdnow_summary), (BetaGeoBetaBinom, load_donations),
    (ShiftedBetaGeo, lambda: clvlab.durations_from_survivors(load_sbg_survival()["regular"]))])
def test_save_and_load_round_trip(tmp_path, model_class, table_of):
    table = table_of()
    weights = table.get("weights", table.get("weight"))
    model = model_class().fit(table, weights=weights)
    model.save(tmp_path / "model.json")
    loaded = clvlab.load_model(tmp_path / "model.json")
    assert type(loaded) is model_class
    pd.testing.assert_series_equal(loaded.params_, model.params_)
    pd.testing.assert_frame_equal(loaded.summary(), model.summary())


def test_bayesian_fit_through_the_same_entry_point():
    durations = clvlab.durations_from_survivors(load_sbg_survival()["high_end"])
    mle = ShiftedBetaGeo().fit(durations, weights=durations["weight"])
    nuts = ShiftedBetaGeo(method="nuts", draws=500, tune=500, chains=2, random_seed=3,
                          progressbar=False).fit(durations, weights=durations["weight"])
    c = nuts.convergence_
    assert c["divergences"] == 0 and c["max_r_hat"] < 1.02 and c["min_ess_bulk"] > 200, c
    summary = nuts.summary()
    assert (np.abs(summary["mean"] - mle.params_) / summary["sd"] < 2).all()
    band = nuts.posterior_predict("expected_residual_lifetime", durations.iloc[:3], n_draws=100,
                                  discount_rate=0.1)
    assert (band["parameter_3%"] <= band["mean"]).all() and (band["mean"] <= band["parameter_97%"]).all()
    bgbb = BetaGeoBetaBinom(method="map").fit(load_donations(), weights=load_donations()["weights"])
    np.testing.assert_allclose(bgbb.params_, [1.204, 0.750, 0.657, 2.783], rtol=0.05)
