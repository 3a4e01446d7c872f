"""A model's constructor settings: their rules, checked in one place, and their repr.

scikit-learn's convention, which the models follow: the constructor stores each setting
unchanged (so ``get_params``, ``set_params`` and ``clone`` can rebuild a model from them) and
``fit`` checks them before any work. A check in the constructor would miss every value given
later through ``set_params``.
"""

from __future__ import annotations

import inspect
from typing import Any, Callable

import numpy as np

from clvlab.core.errors import ClvlabError
from clvlab.inference.bayes import METHODS, NUTS_SAMPLERS, default_nuts_sampler
from clvlab.models.covariates import PROCESS_SETTINGS

__all__ = ["check_settings", "settings_repr"]

#: seeds the samplers accept besides None and whole numbers >= 0 (``bayes`` turns them into one
#: integer seed through ``np.random.default_rng``)
SEED_TYPES = (np.random.Generator, np.random.SeedSequence, np.random.BitGenerator)


def _whole(value: Any) -> bool:
    # bool is an int to Python, but draws=True is a slip, not a count
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _number(value: Any) -> bool:
    # plain int and float only: the penalty is written to the model file as it is, and JSON
    # cannot write a NumPy scalar other than float64 (a float)
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _rules(model) -> list[tuple[str, Callable[[Any], bool], str]]:
    """(setting, test of its value, the rule in words), in the constructor's order."""
    default_accept = type(model).default_target_accept
    return [
        ("penalty", lambda v: _number(v) and v >= 0, "a number >= 0"),
        ("max_restarts", lambda v: _whole(v) and v >= 0, "a whole number >= 0"),
        ("method", lambda v: isinstance(v, str) and v in METHODS, f"one of {list(METHODS)}"),
        ("draws", lambda v: _whole(v) and v >= 1, "a whole number >= 1"),
        ("tune", lambda v: _whole(v) and v >= 0, "a whole number >= 0"),
        ("chains", lambda v: _whole(v) and v >= 1, "a whole number >= 1"),
        ("priors", lambda v: v is None or isinstance(v, dict),
         "None or a dict {parameter name: callable(name) -> PyMC random variable}"),
        ("random_seed", lambda v: v is None or (_whole(v) and v >= 0) or isinstance(v, SEED_TYPES),
         "None, a whole number >= 0 or a NumPy Generator, SeedSequence or BitGenerator"),
        ("progressbar", lambda v: isinstance(v, (bool, np.bool_)), "True or False"),
        ("nuts_sampler", lambda v: v is None or (isinstance(v, str) and v in NUTS_SAMPLERS),
         f"one of {list(NUTS_SAMPLERS)} or None (the default, {default_nuts_sampler()!r})"),
        ("target_accept", lambda v: v is None or (_number(v) and 0 < v < 1),
         f"None (the model's default, {default_accept:g}) or a number between 0 and 1"),
        *[(name, _column_list, "None or a list of distinct column names")
          for name in ("purchase_covariates", "dropout_covariates", "spend_covariates",
                       "shared_covariates")],
        ("covariate_penalty", lambda v: _number(v) and v >= 0, "a number >= 0"),
        ("start_params", lambda v: v is None or (isinstance(v, dict) and all(
            isinstance(k, str) and _number(x) and np.isfinite(x) for k, x in v.items())),
         "None or a dict {parameter name: finite number}"),
    ]


def _column_list(value: Any) -> bool:
    return value is None or (isinstance(value, (list, tuple)) and len(set(value)) == len(value)
                             and all(isinstance(v, str) for v in value))


def check_settings(model) -> None:
    """Raise a ClvlabError naming the first setting of ``model`` that breaks its rule.

    Every setting is checked whatever the method, so that a bad Bayesian setting on a model
    fitted by maximum likelihood is found when it is made, not when the method is switched.
    """
    rules = _rules(model)
    forms = getattr(type(model), "DROPOUT_FORMS", None)
    if forms is not None:  # the BG/NBD family's own setting
        rules.append(("dropout_form", lambda v: isinstance(v, str) and v in forms,
                      f"one of {list(forms)}"))
    for name, test, rule in rules:
        value = getattr(model, name)
        if not test(value):
            raise ClvlabError(f"{name} must be {rule}, got {value!r}")
    priors = model.priors or {}
    unknown = sorted(name for name in priors
                     if name not in model.param_names and not _may_be_coefficient(model, name))
    if unknown:  # the same words as clvlab.bayes.build_pymc_model, which checks it again
        coefficients = any(getattr(model, setting, None) for setting in PROCESS_SETTINGS)
        raise ClvlabError(
            f"priors given for unknown parameters {unknown}; {type(model).__name__} has "
            f"{list(model.param_names)}" + (" and a coefficient per covariate, named "
                                            "process.column ('purchase.gender', 'dropout.channel"
                                            "[web]', 'shared.age')" if coefficients else ""))
    for name, prior in priors.items():
        if not callable(prior):
            raise ClvlabError(f"priors must map each parameter name to a callable(name) -> PyMC "
                              f"random variable; priors[{name!r}] is {prior!r}")


def _may_be_coefficient(model, name: Any) -> bool:
    """Whether ``name`` can name a coefficient of the model's covariate settings:
    ``process.column``, ``process.column[level]`` for a text column, ``shared.column``. The
    exact names (the levels) are known only once the fit has read the table; the fit checks
    them again then (``clvlab.bayes.build_pymc_model``)."""
    if not isinstance(name, str) or "." not in name:
        return False
    process, covariate = name.split(".", 1)
    if process == "shared":
        columns = model.shared_covariates or []
    else:
        setting = next((s for s, p in PROCESS_SETTINGS.items() if p == process), None)
        columns = (getattr(model, setting, None) or []) if setting else []
    level = covariate.endswith("]") and "[" in covariate
    column = covariate[:covariate.index("[")] if level else covariate
    return covariate in columns or column in columns


def settings_repr(model) -> str:
    """``Name(penalty=..., <the other settings that differ from their defaults>)``.

    scikit-learn's repr shows only the changed settings; ``penalty`` is always shown, as this
    repr always showed it (``BetaGeo(penalty=0.0)``). Settings are compared by their repr, as
    scikit-learn does, so that a setting holding an array or a generator compares at all.
    """
    shown = []
    for name, parameter in inspect.signature(type(model).__init__).parameters.items():
        if name == "self":
            continue
        value = getattr(model, name)
        if name == "penalty" or repr(value) != repr(parameter.default):
            shown.append(f"{name}={value!r}")
    return f"{type(model).__name__}({', '.join(shown)})"
