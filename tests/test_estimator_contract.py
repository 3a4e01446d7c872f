"""The models are scikit-learn estimators, as ChurnAdjuster is (issue 21): get_params,
set_params and clone; a repr of the settings; settings checked when fitting; one fit block,
written and read back by one list (``FIT_BLOCK``)."""

import copy
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, clone
from sklearn.exceptions import NotFittedError
from sklearn.utils import estimator_checks
from sklearn.utils.validation import check_is_fitted

import clvlab
from clvlab import ClvlabError
from clvlab.churn import ChurnAdjuster
from clvlab.datasets import load_cdnow_summary
from clvlab.models import (BetaGeo, BetaGeoBetaBinom, GammaGamma, ModifiedBetaGeo, ParetoNBD,
                           ShiftedBetaGeo)
from clvlab.models.base import FIT_BLOCK
from clvlab.models.base import model_from_dict
from clvlab.models.settings import check_settings

MODELS = [BetaGeo, ModifiedBetaGeo, ParetoNBD, GammaGamma, clvlab.LogNormalSpend, BetaGeoBetaBinom,
          ShiftedBetaGeo]
SETTINGS = ["chains", "draws", "max_restarts", "method", "nuts_sampler", "penalty", "priors",
            "progressbar", "random_seed", "target_accept", "tune"]
# issue 22's covariate settings, which every model has; the BG/NBD family also has dropout_form
COVARIATE_SETTINGS = ["covariate_penalty", "dropout_covariates", "purchase_covariates",
                      "shared_covariates", "spend_covariates", "start_params"]


def _prior(name):  # a module-level function: deep copies of it are itself
    raise AssertionError("never sampled in these tests")


@pytest.fixture(scope="module")
def rfm():
    return load_cdnow_summary()


@pytest.fixture(scope="module")
def fitted(rfm):
    return BetaGeo().fit(rfm)


@pytest.mark.parametrize("check", ["check_parameters_default_constructible",
                                   "check_get_params_invariance", "check_set_params",
                                   "check_no_attributes_set_in_init", "check_estimator_repr",
                                   "check_estimator_cloneable"])
@pytest.mark.parametrize("model_class", MODELS, ids=lambda c: c.__name__)
def test_scikit_learns_own_checks_pass(model_class, check):
    getattr(estimator_checks, check)(model_class.__name__, model_class())


@pytest.mark.parametrize("model_class", MODELS, ids=lambda c: c.__name__)
def test_get_params_set_params_and_clone_round_trip(model_class):
    model = model_class()
    assert isinstance(model, BaseEstimator)
    own = ["dropout_form"] if hasattr(model, "dropout_form") else []
    assert sorted(model.get_params(deep=True)) == sorted(SETTINGS + COVARIATE_SETTINGS + own)
    defaults = {name: model.get_params()[name] for name in COVARIATE_SETTINGS + own}
    settings = {"penalty": 0.05, "max_restarts": 2, "method": "map", "draws": 10, "tune": 5,
                "chains": 2, "priors": {model_class.param_names[0]: _prior}, "random_seed": 7,
                "progressbar": False, "nuts_sampler": "nutpie", "target_accept": 0.9}
    assert model.set_params(**settings) is model
    assert model.get_params() == {**settings, **defaults}
    copied = clone(model)
    assert type(copied) is model_class and copied is not model
    assert copied.get_params() == {**settings, **defaults}
    assert copied.priors is not model.priors  # clone copies the settings, it does not share them
    assert model_class(**settings).get_params() == {**settings, **defaults}
    with pytest.raises(ValueError, match="Invalid parameter 'alpha'"):
        model.set_params(alpha=1.0)  # a parameter of the model, not a setting


@pytest.mark.parametrize("model_class", MODELS, ids=lambda c: c.__name__)
def test_clone_of_an_unfitted_model_is_its_deep_copy(model_class):
    """What the backtest engine may use in place of copy.deepcopy for its (unfitted) templates."""
    model = model_class(penalty=0.01, priors={model_class.param_names[0]: _prior}, random_seed=3)
    assert vars(clone(model)) == vars(copy.deepcopy(model))
    seeded = model_class(random_seed=np.random.default_rng(5))
    cloned, deep = clone(seeded), copy.deepcopy(seeded)
    assert cloned.random_seed is not seeded.random_seed
    assert cloned.random_seed.bit_generator.state == deep.random_seed.bit_generator.state


def test_clone_of_a_fitted_model_is_unfitted_with_the_same_settings(rfm, fitted):
    learned = {name for name in vars(fitted) if name.endswith("_")}
    assert learned == {"params_", "covariance_", "standard_errors_", "time_unit_", "median_T_",
                       "training_profile_",
                       *(key + "_" for key in FIT_BLOCK)}
    assert not any(name.endswith("_") for name in vars(BetaGeo()))
    check_is_fitted(fitted)
    fresh = clone(fitted)
    assert not learned & set(vars(fresh))
    with pytest.raises(NotFittedError):
        check_is_fitted(fresh)
    assert fresh.get_params() == fitted.get_params()
    assert fresh.fit(rfm).to_dict() == fitted.to_dict()  # and it fits to the same model

    known = ParetoNBD.from_params(r=0.55, alpha=10.6, s=0.61, beta=11.7, time_unit="W")
    assert repr(clone(known)) == "ParetoNBD(penalty=0.0)"


def test_the_repr_shows_the_settings_until_fitted(fitted):
    assert repr(BetaGeo()) == "BetaGeo(penalty=0.0)"  # the repr before issue 21, kept
    assert repr(BetaGeo(penalty=0.01)) == "BetaGeo(penalty=0.01)"
    assert repr(ParetoNBD(method="nuts", chains=2, nuts_sampler="nutpie")) == \
        "ParetoNBD(penalty=0.0, method='nuts', chains=2, nuts_sampler='nutpie')"
    assert repr(GammaGamma().set_params(max_restarts=1)) == "GammaGamma(penalty=0.0, max_restarts=1)"
    assert repr(fitted).startswith("<BetaGeo: r=0.2426, alpha=4.414, a=0.7929, b=2.426; "
                                   "log-likelihood -9582.43 on 2,357 customers")


def test_jupyter_shows_clvlabs_view_not_scikit_learns_diagram(fitted):
    """IPython asks _repr_mimebundle_ first; BaseEstimator's would answer with its diagram."""
    for model in (fitted, BetaGeo()):
        bundle = model._repr_mimebundle_()
        assert bundle == {"text/plain": repr(model), "text/html": model._repr_html_()}
    assert "<table" in fitted._repr_html_() and "<table" not in BetaGeo()._repr_html_()
    formatters = pytest.importorskip("IPython.core.formatters")
    shown, _ = formatters.DisplayFormatter().format(fitted)
    assert shown["text/html"] == fitted._repr_html_() and shown["text/plain"] == repr(fitted)


BAD_SETTINGS = [
    ("penalty", -0.1, "a number >= 0"),
    ("penalty", "0.1", "a number >= 0"),
    ("max_restarts", -1, "a whole number >= 0"),
    ("max_restarts", 2.0, "a whole number >= 0"),
    ("max_restarts", True, "a whole number >= 0"),
    ("method", "mcmc", "one of ['mle', 'map', 'nuts', 'advi']"),
    ("draws", 0, "a whole number >= 1"),
    ("tune", -1, "a whole number >= 0"),
    ("chains", 1.5, "a whole number >= 1"),
    ("priors", [("r", _prior)], "None or a dict"),
    ("random_seed", -1, "None, a whole number >= 0 or a NumPy Generator"),
    ("random_seed", "42", "None, a whole number >= 0 or a NumPy Generator"),
    ("random_seed", np.random.RandomState(0), "None, a whole number >= 0 or a NumPy Generator"),
    ("progressbar", "no", "True or False"),
    ("nuts_sampler", "blackjax", "one of ['nutpie', 'pymc'] or None"),
    ("target_accept", 1.0, "None (the model's default, 0.8) or a number between 0 and 1"),
    ("target_accept", "0.9", "a number between 0 and 1"),
]


def stable_id(value) -> str:
    """repr without memory addresses: pytest-xdist's workers must collect the same test ids."""
    return re.sub(r" at 0x[0-9a-fA-F]+", "", repr(value))


@pytest.mark.parametrize("setting, value, rule", BAD_SETTINGS,
                         ids=[f"{s}={stable_id(v)}" for s, v, _ in BAD_SETTINGS])
def test_a_bad_setting_is_refused_at_fit_before_any_work(setting, value, rule):
    model = BetaGeo().set_params(**{setting: value})  # stored unchecked, as scikit-learn does
    assert model.get_params()[setting] is value
    # an empty frame: reading the data would raise a DataValidationError (a ClvlabError subclass)
    with pytest.raises(ClvlabError) as info:
        model.fit(pd.DataFrame())
    assert type(info.value) is ClvlabError
    message = str(info.value)
    assert message == f"{setting} must be {rule}, got {value!r}" or (
        message.startswith(f"{setting} must be ") and rule in message and repr(value) in message)


def test_priors_must_name_parameters_and_give_callables():
    with pytest.raises(ClvlabError, match=r"priors given for unknown parameters \['rho'\]; "
                                          r"BetaGeo has \['r', 'alpha', 'a', 'b'\]"):
        BetaGeo(priors={"rho": _prior}).fit(pd.DataFrame())
    with pytest.raises(ClvlabError, match=r"priors\['s'\] is 3.0"):
        ParetoNBD(priors={"s": 3.0}).fit(pd.DataFrame())


@pytest.mark.parametrize("settings", [
    {},
    {"penalty": 0, "max_restarts": 0, "tune": 0, "draws": np.int64(5)},
    {"random_seed": 0}, {"random_seed": np.int64(3)},
    {"random_seed": np.random.default_rng(1)}, {"random_seed": np.random.SeedSequence(2)},
    {"random_seed": np.random.PCG64(3)},
    {"progressbar": np.bool_(False)}, {"nuts_sampler": "pymc"}, {"target_accept": 0.95},
    {"method": "advi", "priors": {"r": _prior, "b": _prior}},
], ids=stable_id)
def test_good_settings_pass(settings):
    check_settings(BetaGeo(**settings))


def test_a_fitted_model_round_trips_through_json(fitted):
    payload = json.loads(json.dumps(fitted.to_dict(), allow_nan=False))
    assert list(payload["fit"]) == list(FIT_BLOCK)  # the file's order is FIT_BLOCK's
    loaded = model_from_dict(payload)
    pd.testing.assert_series_equal(loaded.params_, fitted.params_)
    pd.testing.assert_frame_equal(loaded.covariance_, fitted.covariance_)
    pd.testing.assert_series_equal(loaded.standard_errors_, fitted.standard_errors_)
    for key in FIT_BLOCK:
        assert getattr(loaded, key + "_") == getattr(fitted, key + "_"), key
    assert loaded.time_unit_ == fitted.time_unit_ == "W"
    assert loaded.to_dict() == fitted.to_dict()
    assert repr(loaded) == repr(fitted)


def test_null_criteria_read_back_as_nan_and_known_parameters_have_no_fit_block(fitted):
    payload = fitted.to_dict()
    payload["fit"].update(aic=None, bic=None)  # what a Bayesian fit writes
    loaded = model_from_dict(payload)
    assert np.isnan(loaded.aic_) and np.isnan(loaded.bic_)
    assert loaded.to_dict()["fit"] == payload["fit"]
    del payload["fit"]["convergence"]
    with pytest.raises(ClvlabError, match="malformed.*'convergence'"):
        model_from_dict(payload)

    known = BetaGeo.from_params(r=0.24, alpha=4.4, a=0.79, b=2.4, time_unit="W").to_dict()
    assert "fit" not in known and known["covariance"] is None
    assert model_from_dict(known).to_dict() == known


def test_a_model_file_written_before_issue_21_loads_and_writes_the_same_json():
    path = Path(__file__).parent / "data" / "bg-nuts-pymc5-arviz0.json"
    written = json.loads(path.read_text())
    model = clvlab.load_model(path)
    again = model.to_dict()
    for key in ("clvlab_version", "posterior_file"):
        written.pop(key), again.pop(key, None)
    assert again == written


def test_a_churn_adjuster_clones_its_base_model_like_any_setting(fitted):
    adjuster = ChurnAdjuster(BetaGeo(penalty=0.01), horizon=13)
    assert adjuster.get_params(deep=True)["base_model__penalty"] == 0.01
    assert adjuster.set_params(base_model__max_restarts=1).base_model.max_restarts == 1
    assert not hasattr(clone(ChurnAdjuster(fitted)).base_model, "params_")
    # used as given (refit_base=False), the fitted base model is part of the setting: clone
    # keeps it, as it did when the models were not estimators
    kept = clone(ChurnAdjuster(fitted, refit_base=False)).base_model
    assert kept is not fitted
    pd.testing.assert_series_equal(kept.params_, fitted.params_)


def test_the_seed_has_one_name_in_every_estimator():
    """Models and the churn adjuster both take ``random_seed``; the adjuster's former
    ``random_state`` still works, with a FutureWarning, and gives the same classifier seed."""
    import inspect
    import warnings as warnings_module

    from clvlab import BetaGeo, ChurnAdjuster
    from clvlab.churn import default_classifier

    for estimator in (BetaGeo, ChurnAdjuster):
        assert "random_seed" in inspect.signature(estimator).parameters
    assert ChurnAdjuster(random_seed=7)._seed() == 7
    with warnings_module.catch_warnings():
        warnings_module.simplefilter("error")
        assert ChurnAdjuster()._seed() == 0
    with pytest.warns(FutureWarning, match="now random_seed"):
        assert ChurnAdjuster(random_state=5)._seed() == 5
    assert default_classifier(random_seed=3).cv.random_state == 3
