"""Labels of clvlab's plots: the names legends show for models and the time units axes show.

Kept apart from :mod:`clvlab.plotting` so that other plots (backtest results) can name models
and units the same way.
"""

from __future__ import annotations

from typing import Any

from clvlab.core.errors import ClvlabError
from clvlab.core.timeunits import normalize_time_unit

__all__ = ["model_label", "named_models", "resolve_unit", "clvlab_attrs", "unit_plural",
           "unit_singular", "amount_words"]

# The names the literature and the documentation use; class names are for code, not for readers.
_DISPLAY_NAMES = {"ParetoNBD": "Pareto/NBD", "BetaGeo": "BG/NBD", "ModifiedBetaGeo": "MBG/NBD",
                  "GammaGamma": "Gamma-Gamma", "BetaGeoBetaBinom": "BG/BB",
                  "ShiftedBetaGeo": "sBG"}
_UNIT_WORDS = {"h": ("hour", "hours"), "D": ("day", "days"), "W": ("week", "weeks"),
               "M": ("month", "months")}


def model_label(model) -> str:
    """The name a legend shows for ``model``.

    Parameters
    ----------
    model
        A clvlab model (fitted or not), or any object.

    Returns
    -------
    str
        The model's own ``display_name`` when it has one; else the name of the clvlab model
        it is (or derives from): "Pareto/NBD", "BG/NBD", "MBG/NBD", "Gamma-Gamma", "BG/BB",
        "sBG"; else its class name.
    """
    own = getattr(model, "display_name", None)
    if isinstance(own, str) and own:
        return own
    for cls in type(model).__mro__:  # a subclass of a clvlab model is still that model
        if cls.__module__.startswith("clvlab.") and cls.__name__ in _DISPLAY_NAMES:
            return _DISPLAY_NAMES[cls.__name__]
    return type(model).__name__


def named_models(models, what: str) -> list[tuple[str, Any]]:
    """(legend label, model) pairs from one model, a list (labels from model_label, numbered
    when two would read the same) or a dict (its keys are the labels)."""
    if isinstance(models, dict):
        pairs = [(str(label), model) for label, model in models.items()]
    elif isinstance(models, (list, tuple)):
        pairs, seen = [], {}
        for model in models:
            label = model_label(model)
            seen[label] = seen.get(label, 0) + 1
            pairs.append((label if seen[label] == 1 else f"{label} ({seen[label]})", model))
    else:
        pairs = [(model_label(models), models)]
    if not pairs:
        raise ClvlabError(f"{what} needs at least one model; got an empty {type(models).__name__}")
    return pairs


def clvlab_attrs(rfm) -> dict:
    attrs = getattr(rfm, "attrs", None) or {}
    info = attrs.get("clvlab") if isinstance(attrs, dict) else None
    return info if isinstance(info, dict) else {}


def resolve_unit(models, rfm=None, time_unit: str | None = None, *,
                  required_for: str | None = None) -> str | None:
    """The one time unit of the models, the table and the argument; an error when they
    disagree, or when none is known and ``required_for`` names what needs one."""
    sources = [(f"the model {label}", getattr(model, "time_unit_", None))
               for label, model in models]
    sources.append(("the RFM table", clvlab_attrs(rfm).get("time_unit")))
    known = [(source, normalize_time_unit(unit)) for source, unit in sources if unit is not None]
    if time_unit is not None:
        unit = normalize_time_unit(time_unit)
        for source, other in known:
            if other != unit:
                raise ClvlabError(f"time_unit={unit!r} contradicts the time unit {other!r} of "
                                  f"{source}; leave time_unit out or rebuild/refit in {unit!r}")
        return unit
    if len({unit for _, unit in known}) > 1:
        listed = ", ".join(f"{source} {unit!r}" for source, unit in known)
        raise ClvlabError(f"the time units differ ({listed}): one plot needs one unit; rebuild "
                          "the table or refit the models in the same unit")
    if known:
        return known[0][1]
    if required_for is not None:
        raise ClvlabError(f"{required_for} needs a time unit, and neither the model nor the RFM "
                          "table records one; pass time_unit= (e.g. time_unit='W'), the unit "
                          "the model was fitted in")
    return None


def unit_plural(unit: str | None) -> str:
    return _UNIT_WORDS[unit][1] if unit else "time units"


def unit_singular(unit: str | None) -> str:
    return _UNIT_WORDS[unit][0] if unit else "time unit"


def amount_words(value: float, unit: str | None) -> str:
    return f"{value:g} {unit_singular(unit) if value == 1 else unit_plural(unit)}"
