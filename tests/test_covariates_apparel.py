"""CLVTools' apparel data: clvlab's Pareto/NBD with and without static covariates against the
estimates CLVTools publishes for it (issue 22).

CLVTools (``pnbd(clv.apparel, ...)``, weekly, estimation split 2006-12-31, every customer
observed for T = 104 weeks): without covariates LL -5848.0978, r 1.4490, alpha 48.6361,
s 0.5613, beta 46.8844; with Gender and Channel in both processes LL -5821.0627. CLVTools'
"trans" coefficients are clvlab's purchase ones and "life" its dropout ones, with the same form
(alpha_i = alpha exp(-x'g_trans), beta_i = beta exp(-x'g_life)), so they compare as they are.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import clvlab
from clvlab import BetaGeo, ClvlabError, ParetoNBD, lr_test

from conftest import SHARED_DATA

APPAREL = SHARED_DATA / "apparel"
COVARIATES = ["Gender", "Channel"]

PLAIN_LL = -5848.0978
PLAIN = {"r": 1.4490, "alpha": 48.6361, "s": 0.5613, "beta": 46.8844}
COVARIATE_LL = -5821.0627
#: CLVTools' estimate and standard error of each parameter, under clvlab's names
WITH_COVARIATES = {
    "r": (1.8387, 0.3457), "alpha": (92.9435, 16.9749), "s": (0.5913, 0.2603),
    "beta": (49.5048, 36.1444), "dropout.Gender": (-0.6428, 0.2956),
    "dropout.Channel": (0.7902, 0.3058), "purchase.Gender": (0.2860, 0.1041),
    "purchase.Channel": (0.6239, 0.1049),
}


@pytest.fixture(scope="module")
def apparel() -> pd.DataFrame:
    if not (APPAREL / "apparel_transactions.csv").exists():
        pytest.skip("../shared/data/apparel (CLVTools' apparel data) is not beside the checkout")
    log = pd.read_csv(APPAREL / "apparel_transactions.csv", parse_dates=["Date"])
    attributes = pd.read_csv(APPAREL / "apparel_static_covariates.csv").set_index("Id")
    rfm = clvlab.rfm_summary(log, customer_col="Id", date_col="Date", time_unit="W",
                             calibration_end="2006-12-31")
    table = rfm[["frequency", "recency", "T"]].join(attributes)
    table.attrs = {"clvlab": {"time_unit": "W"}}
    assert len(table) == 600 and (table["T"] == 104).all()
    return table


@pytest.fixture(scope="module")
def plain(apparel):
    return ParetoNBD().fit(apparel)


@pytest.fixture(scope="module")
def with_covariates(apparel):
    return ParetoNBD(purchase_covariates=COVARIATES, dropout_covariates=COVARIATES).fit(apparel)


def test_plain_pareto_nbd_reproduces_clvtools(plain):
    # the maximum agrees to CLVTools' printed precision, and clvlab's is not lower
    assert plain.log_likelihood_ == pytest.approx(PLAIN_LL, abs=5e-5)
    assert plain.log_likelihood_ >= PLAIN_LL - 1e-4
    # the estimates lie on a flat ridge (s and beta have standard errors of 50% and 75%), where
    # two optimisers stop 1e-4 apart relatively: r 1.448939, alpha 48.63488 against the 4
    # decimals CLVTools prints
    for name, value in PLAIN.items():
        assert plain.params_[name] == pytest.approx(value, rel=1e-4), name


def test_covariate_fit_reproduces_clvtools(with_covariates):
    model = with_covariates
    assert model.log_likelihood_ == pytest.approx(COVARIATE_LL, abs=1e-3)
    assert model.log_likelihood_ >= COVARIATE_LL - 1e-4  # clvlab finds -5821.06269
    assert set(model.params_.index) == set(WITH_COVARIATES)
    for name, (estimate, std_error) in WITH_COVARIATES.items():
        if "." in name:  # coefficients
            assert model.params_[name] == pytest.approx(estimate, rel=3e-3, abs=2e-3), name
        else:
            assert model.params_[name] == pytest.approx(estimate, rel=3e-3), name
        assert model.standard_errors_[name] == pytest.approx(std_error, rel=0.01), name


def test_covariate_fit_is_the_likelihood_at_each_customers_parameters(apparel, with_covariates):
    per_customer = with_covariates.log_likelihood(apparel, per_customer=True)
    assert per_customer.sum() == pytest.approx(with_covariates.log_likelihood_, rel=1e-10)
    # the Gender = 1, Channel = 1 customers by hand: alpha and beta scaled by exp(-x'g)
    params = with_covariates.params_
    both = apparel[(apparel["Gender"] == 1) & (apparel["Channel"] == 1)]
    own = ParetoNBD.from_params(
        time_unit="W", r=params["r"], s=params["s"],
        alpha=params["alpha"] * np.exp(-(params["purchase.Gender"] + params["purchase.Channel"])),
        beta=params["beta"] * np.exp(-(params["dropout.Gender"] + params["dropout.Channel"])))
    np.testing.assert_allclose(own.log_likelihood(both, per_customer=True), per_customer[both.index],
                               rtol=1e-12)


def test_lr_test_of_the_covariates(plain, with_covariates):
    out = lr_test(plain, with_covariates)
    assert out.df == 4
    published = 2 * (COVARIATE_LL - PLAIN_LL)  # 54.0702 from CLVTools' two log-likelihoods
    assert out.statistic == pytest.approx(published, abs=2e-3)
    assert out.p_value == pytest.approx(stats.chi2.sf(published, 4), rel=1e-3)
    assert 1e-11 < out.p_value < 1e-10  # 5.1e-11: a readable number, not 0


def test_bg_nbd_with_dropout_covariates_scaling_a_and_b_has_no_interior_maximum(apparel):
    with pytest.raises(ClvlabError, match="no interior maximum") as caught:
        BetaGeo(purchase_covariates=COVARIATES, dropout_covariates=COVARIATES).fit(apparel)
    message = str(caught.value)
    assert "['Gender', 'Channel']" in message and "dropout_form='b'" in message


def test_bg_nbd_with_dropout_covariates_moving_b_fits_with_finite_standard_errors(apparel):
    model = BetaGeo(purchase_covariates=COVARIATES, dropout_covariates=COVARIATES,
                    dropout_form="b").fit(apparel)
    assert model.convergence_["converged"]
    assert np.all(np.isfinite(model.standard_errors_)) and (model.standard_errors_ > 0).all()
    assert model.log_likelihood_ > BetaGeo().fit(apparel).log_likelihood_ + 10
    # the purchase effects agree with the Pareto/NBD's in sign and roughly in size
    assert 0.2 < model.params_["purchase.Gender"] < 0.6 and 0.4 < model.params_["purchase.Channel"] < 0.8
