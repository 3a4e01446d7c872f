"""Hostile input, fuzzed: every summary, fit and prediction returns finite, valid output or
raises a ClvlabError; never NaN, never a hang, never another exception.

Examples are derandomised (the same ones in every run, so CI does not fail at random); set
HYPOTHESIS_PROFILE=explore for a longer, randomised hunt. Each property is bounded in time twice:
hypothesis's per-example deadline and pytest-timeout on the whole test.
"""

from __future__ import annotations

import datetime
import os
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import clvlab
from clvlab import (BetaGeo, BetaGeoBetaBinom, ClvlabError, GammaGamma, ModifiedBetaGeo,
                    ParetoNBD, ShiftedBetaGeo)

EXPLORE = os.environ.get("HYPOTHESIS_PROFILE") == "explore"
FUZZ = settings(max_examples=400 if EXPLORE else 40, derandomize=not EXPLORE,
                deadline=datetime.timedelta(seconds=60), database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
TRANSACTION_MODELS = (BetaGeo, ModifiedBetaGeo, ParetoNBD)
BASE = pd.Timestamp("2024-01-01")

# long, and no code here differs between the two stacks: CI runs it on python3 only
pytestmark = pytest.mark.once


# --- hostile transaction logs ---------------------------------------------------------------
ID_KINDS = st.sampled_from(["int", "str", "mixed", "float", "category"])
ZONES = st.sampled_from(["naive", "utc", "berlin", "mixed-offsets", "naive+aware", "strings"])
AMOUNTS = st.one_of(st.floats(-1e6, 1e6, allow_nan=False), st.sampled_from(
    [0.0, 1e-12, -1e-12, 1e15, -1e15, 5e-324, 1e300, -5.0, 100.0]))


@st.composite
def logs(draw):
    n = draw(st.integers(0, 40))
    n_customers = draw(st.integers(1, 6))
    ids = draw(st.lists(st.integers(0, n_customers - 1), min_size=n, max_size=n))
    seconds = draw(st.lists(st.one_of(st.integers(0, 3 * 365 * 86400), st.just(0),
                                      st.integers(0, 86399)), min_size=n, max_size=n))
    amounts = draw(st.lists(AMOUNTS, min_size=n, max_size=n))
    frame = pd.DataFrame({"customer_id": ids, "date": [BASE + pd.Timedelta(seconds=s) for s in seconds],
                          "amount": amounts})
    if not n:  # pandas 3 makes an empty list of timestamps a float column
        frame["date"] = frame["date"].astype("datetime64[ns]")
    kind = draw(ID_KINDS)
    if kind == "str":
        frame["customer_id"] = "c" + frame["customer_id"].astype(str)
    elif kind == "mixed" and n:
        frame["customer_id"] = [i if j % 2 else f"{i}" for j, i in enumerate(ids)]
    elif kind == "float":
        frame["customer_id"] = frame["customer_id"].astype(float) + 0.5
    elif kind == "category":
        frame["customer_id"] = frame["customer_id"].astype("category")
    zone = draw(ZONES)
    if zone == "utc":
        frame["date"] = frame["date"].dt.tz_localize("UTC")
    elif zone == "berlin":
        frame["date"] = frame["date"].dt.tz_localize("Europe/Berlin", ambiguous="NaT",
                                                     nonexistent="shift_forward")
    elif zone in ("mixed-offsets", "naive+aware", "strings") and n:
        values = []
        for j, ts in enumerate(frame["date"]):
            if zone == "mixed-offsets":
                values.append(ts.tz_localize("UTC").tz_convert("Asia/Tokyo" if j % 2 else "America/Lima"))
            elif zone == "naive+aware":
                values.append(ts if j % 2 else ts.tz_localize("UTC"))
            else:
                values.append(ts.isoformat() + ("+05:30" if j % 3 == 0 else ""))
        frame["date"] = pd.Series(values, dtype=object)
    if n and draw(st.booleans()):  # duplicated rows
        frame = pd.concat([frame, frame.sample(frac=0.5, replace=True, random_state=0)])
    if n and draw(st.booleans()):  # unsorted
        frame = frame.sample(frac=1.0, random_state=1)
    return frame.reset_index(drop=True)


def _valid_summary(rfm: pd.DataFrame) -> None:
    clvlab.validate_rfm(rfm)
    assert np.isfinite(rfm.to_numpy(np.float64)).all()
    if "monetary_value" in rfm:
        assert (rfm["monetary_value"] >= 0).all()


def _outcome(call):
    """Run ``call``: its value, or None when it raised a ClvlabError (any other exception fails)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return call()
    except ClvlabError as exc:
        assert str(exc), "a clvlab error must say what is wrong"
        return None


def _check_transaction_model(model, rfm: pd.DataFrame) -> None:
    fitted = _outcome(lambda: model.fit(rfm))
    if fitted is None:
        return
    assert np.isfinite(fitted.params_.to_numpy()).all() and (fitted.params_ > 0).all()
    for horizon in (1e-6, 13.0, 1e4):
        scores = _outcome(lambda: fitted.scores(rfm, horizon))
        if scores is None:
            continue
        values = scores.to_numpy(np.float64)
        assert np.isfinite(values).all()
        assert ((scores["p_alive"] >= 0) & (scores["p_alive"] <= 1)).all()
        assert ((scores["probability_of_purchase"] >= -1e-12)
                & (scores["probability_of_purchase"] <= 1 + 1e-12)).all()
        assert (scores["expected_purchases"] >= -1e-9).all()
    new = _outcome(lambda: fitted.expected_purchases_new_customer(13.0))
    assert new is None or (np.isfinite(new) and new >= 0)


@pytest.fixture(scope="module")
def compiled():
    """The same path once on a valid log before the examples: in a fresh checkout the numba
    kernels compile on first use (their disk cache is empty), which took over a minute on a
    loaded CI machine and was charged to the first example's 60 s deadline."""
    log = clvlab.datasets.load_cdnow(sample=True).head(3000)
    for engine in ("pandas", "duckdb"):
        rfm = clvlab.rfm_summary(log, customer_col="customer_id", date_col="date",
                                 amount_col="amount", engine=engine, time_unit="W")
    for model in TRANSACTION_MODELS:
        _check_transaction_model(model(max_restarts=1), rfm)
    spend = GammaGamma(max_restarts=1).fit(rfm[rfm["frequency"] > 0])
    clvlab.customer_lifetime_value(BetaGeo().fit(rfm), spend, rfm, 52.0, 0.01,
                                   unvalued="population")


@pytest.mark.timeout(9000 if EXPLORE else 900)
@FUZZ
@given(logs(), st.sampled_from(["pandas", "duckdb"]), st.sampled_from(["D", "W", "h"]))
def test_hostile_logs_give_a_valid_summary_or_a_clvlab_error(compiled, log, engine, time_unit):
    rfm = _outcome(lambda: clvlab.rfm_summary(log, amount_col="amount", engine=engine,
                                              time_unit=time_unit))
    if rfm is None:
        return
    _valid_summary(rfm)
    for model in TRANSACTION_MODELS:
        _check_transaction_model(model(max_restarts=1), rfm)
    repeaters = rfm[rfm["frequency"] > 0]
    spend = _outcome(lambda: GammaGamma(max_restarts=1).fit(repeaters))
    if spend is not None:
        values = _outcome(lambda: spend.expected_spend(rfm, unvalued="population"))
        assert values is None or np.isfinite(values.to_numpy()).all()
        bg = _outcome(lambda: BetaGeo(max_restarts=1).fit(rfm))
        if bg is not None:
            clv = _outcome(lambda: clvlab.customer_lifetime_value(
                bg, spend, rfm, 52.0, 0.01, unvalued="population"))
            assert clv is None or np.isfinite(clv.to_numpy()).all()


def test_engines_agree_on_hostile_logs_they_both_accept():
    """Both engines accept or refuse the same hostile logs, and agree when they accept."""
    @FUZZ
    @given(logs())
    def check(log):
        by_pandas = _outcome(lambda: clvlab.rfm_summary(log, amount_col="amount", engine="pandas"))
        by_duckdb = _outcome(lambda: clvlab.rfm_summary(log, amount_col="amount", engine="duckdb"))
        assert (by_pandas is None) == (by_duckdb is None)
        if by_pandas is not None:
            pd.testing.assert_frame_equal(by_pandas, by_duckdb, check_exact=False, rtol=1e-9,
                                          check_index_type=False)

    check()


# --- degenerate RFM tables ------------------------------------------------------------------
SIZES = [1e-9, 1e-3, 0.5, 1.0, 52.0, 1e4, 1e7]


@st.composite
def rfm_tables(draw):
    n = draw(st.integers(1, 25))
    shape = draw(st.sampled_from(["mixed", "no-repeats", "recency=T", "tiny-T", "huge"]))
    rows = []
    for _ in range(n):
        T = draw(st.sampled_from(SIZES)) if shape != "tiny-T" else draw(st.sampled_from([1e-9, 1e-6]))
        if shape == "no-repeats":
            x = 0
        elif shape == "huge":
            x = draw(st.sampled_from([0, 1e4, 1e6]))
        else:
            x = draw(st.sampled_from([0, 1, 2, 7, 100]))
        if x == 0:
            recency = 0.0
        elif shape == "recency=T":
            recency = T
        else:
            recency = T * draw(st.sampled_from([1e-9, 0.5, 1.0]))
        money = draw(st.sampled_from([0.0, 1e-9, 1.0, 35.0, 1e9])) if x else 0.0
        rows.append((x, recency, T, money))
    return pd.DataFrame(rows, columns=["frequency", "recency", "T", "monetary_value"])


@pytest.mark.timeout(9000 if EXPLORE else 900)
@FUZZ
@given(rfm_tables())
def test_degenerate_rfm_tables_fit_and_predict_finitely_or_raise(rfm):
    _valid_summary(rfm)
    for model in TRANSACTION_MODELS:
        _check_transaction_model(model(max_restarts=1), rfm)
    spend = _outcome(lambda: GammaGamma(max_restarts=1).fit(rfm[rfm["frequency"] > 0]))
    if spend is not None:
        assert np.isfinite(spend.params_.to_numpy()).all()
        values = _outcome(lambda: spend.expected_spend(rfm, unvalued="population"))
        assert values is None or (np.isfinite(values.to_numpy()).all() and (values >= 0).all())


@st.composite
def discrete_tables(draw):
    n = draw(st.integers(1, 20))
    rows = []
    for _ in range(n):
        periods = draw(st.sampled_from([1, 2, 6, 50, 400]))
        x = draw(st.integers(0, periods))
        t_x = 0 if x == 0 else draw(st.integers(x, periods))
        rows.append((x, t_x, periods))
    return pd.DataFrame(rows, columns=["frequency", "recency", "periods"])


@pytest.mark.timeout(6000 if EXPLORE else 600)
@FUZZ
@given(discrete_tables())
def test_bg_bb_fits_and_predicts_finitely_or_raises(table):
    model = _outcome(lambda: BetaGeoBetaBinom(max_restarts=1).fit(table))
    if model is None:
        return
    assert np.isfinite(model.params_.to_numpy()).all()
    for call in (lambda: model.p_alive(table), lambda: model.expected_purchases(table, 5)):
        values = _outcome(call)
        assert values is None or np.isfinite(values.to_numpy()).all()


@pytest.mark.timeout(6000 if EXPLORE else 600)
@FUZZ
@given(st.lists(st.tuples(st.integers(1, 500), st.booleans()), min_size=1, max_size=30))
def test_shifted_beta_geo_fits_and_predicts_finitely_or_raises(rows):
    table = pd.DataFrame(rows, columns=["duration", "churned"])
    model = _outcome(lambda: ShiftedBetaGeo(max_restarts=1).fit(table))
    if model is None:
        return
    assert np.isfinite(model.params_.to_numpy()).all()
    survival = _outcome(lambda: model.survival(np.arange(1, 60)))
    assert survival is None or np.isfinite(survival).all()
    renewal = _outcome(lambda: model.renewal_probability(table))
    assert renewal is None or np.isfinite(renewal.to_numpy()).all()


# --- fixed hostile cases that a strategy would rarely reach ------------------------------------
@pytest.mark.timeout(300)
def test_a_million_purchases_of_one_customer_on_one_day():
    log = pd.DataFrame({"customer_id": np.zeros(1_000_000, dtype=np.int64),
                        "date": BASE + pd.to_timedelta(np.arange(1_000_000) % 86_400, unit="s"),
                        "amount": np.full(1_000_000, 2.5)})
    log = pd.concat([log, pd.DataFrame({"customer_id": [1, 1], "date": [BASE, BASE + pd.Timedelta(days=9)],
                                        "amount": [1.0, 2.0]})])
    for engine in ("pandas", "duckdb"):
        rfm = clvlab.rfm_summary(log, amount_col="amount", engine=engine)
        assert rfm.loc[0, "frequency"] == 0 and rfm.loc[1, "frequency"] == 1
        _valid_summary(rfm)


def test_one_customer_is_summarised_and_refused_by_the_models():
    log = pd.DataFrame({"customer_id": [7, 7, 7], "date": ["2024-01-01", "2024-01-05", "2024-02-01"],
                        "amount": [1.0, 2.0, 3.0]})
    rfm = clvlab.rfm_summary(log, amount_col="amount")
    assert len(rfm) == 1
    for model in TRANSACTION_MODELS:
        with pytest.raises(ClvlabError, match="more than one customer"):
            model().fit(rfm)


def test_refunds_larger_than_purchases_count_as_free_transactions():
    log = pd.DataFrame({"customer_id": [1, 1, 1, 2, 2], "amount": [10.0, -50.0, 5.0, 3.0, 4.0],
                        "date": ["2024-01-01", "2024-01-01", "2024-01-09", "2024-01-02", "2024-01-20"]})
    with pytest.warns(clvlab.ClvlabWarning, match="refund"):
        rfm = clvlab.rfm_summary(log, amount_col="amount", engine="pandas")
    assert rfm.loc[1, "frequency"] == 1 and rfm.loc[1, "monetary_value"] == 5.0
