"""Recovery of known coefficients from simulated customer bases with time-varying covariates
(100,000 customers acquired over 26 weeks and followed to week 104): every estimate of the
Pareto/NBD and the BG/NBD within 3 standard errors of the truth, end to end (the simulator, the
RFM summary, the covariate paths from a calendar and static attributes, the fit)."""

import numpy as np
import pandas as pd
import pytest

import clvlab
from clvlab import simulate

START = pd.Timestamp("2020-01-05")  # a Sunday: weeks start on Sundays
N = 100_000


def _calendar():
    calendar = clvlab.seasonal_covariates(START, START + pd.Timedelta(weeks=104), "W", fourier=1)
    # a high season of about 17 weeks a year around New Year
    calendar["high_season"] = (calendar["fourier_cos_1"] > 0.5).astype(float)
    return calendar[["period", "high_season"]]


def _fit(sample, attributes, model):
    end = START + pd.Timedelta(weeks=104)
    # purchases merged by the hour, not the day: the simulated rates reach a few a week, and
    # merging same-day purchases would bias the season's effect (it removes more in the season)
    rfm = clvlab.rfm_summary(sample.transactions, time_unit="W", merge_period="h",
                             observation_end=end, customer_attributes=attributes)
    paths = clvlab.covariate_paths(None, rfm, transactions=sample.transactions,
                                   calendar=_calendar())
    return model.fit(rfm, covariate_paths=paths)


def _attributes():
    rng = np.random.default_rng(1)
    return pd.DataFrame({"web": rng.integers(0, 2, N).astype(float)},
                        index=pd.RangeIndex(N, name="customer_id"))


def _check(model, truth):
    summary = model.summary()
    z = (summary["estimate"] - pd.Series(truth)) / summary["std_error"]
    print(pd.DataFrame({"estimate": summary["estimate"], "truth": pd.Series(truth), "z": z}))
    assert np.all(np.abs(z) < 3), z


@pytest.mark.once
@pytest.mark.slow
def test_pareto_nbd_recovers_time_varying_coefficients():
    attributes = _attributes()
    truth = {"r": 0.8, "alpha": 10.0, "s": 0.6, "beta": 30.0}
    coefficients = {"purchase": {"high_season": 0.7, "web": 0.3},
                    "dropout": {"high_season": -0.5, "web": 0.4}}
    sample = simulate.pareto_nbd_time_varying(
        N, params=truth, coefficients=coefficients, calendar=_calendar(), attributes=attributes,
        start=START, periods=104, acquisition_periods=26, seed=7)
    model = _fit(sample, attributes, clvlab.ParetoNBD(purchase_covariates=["high_season", "web"],
                                                      dropout_covariates=["high_season", "web"]))
    _check(model, {**truth, **{f"{p}.{c}": g for p, cs in coefficients.items()
                               for c, g in cs.items()}})


@pytest.mark.once
@pytest.mark.slow
def test_bg_nbd_recovers_time_varying_purchase_coefficients():
    attributes = _attributes()
    truth = {"r": 0.8, "alpha": 10.0, "a": 0.8, "b": 3.0}
    coefficients = {"purchase": {"high_season": 0.7, "web": 0.3}, "dropout": {"web": 0.4}}
    sample = simulate.bg_nbd_time_varying(
        N, params=truth, coefficients=coefficients, calendar=_calendar(), attributes=attributes,
        start=START, periods=104, acquisition_periods=26, seed=3, dropout_form="b")
    model = _fit(sample, attributes, clvlab.BetaGeo(purchase_covariates=["high_season", "web"],
                                                    dropout_covariates=["web"], dropout_form="b"))
    _check(model, {**truth, **{f"{p}.{c}": g for p, cs in coefficients.items()
                               for c, g in cs.items()}})
