"""The one list of clvlab's models: each model's name, class, kind and simulator.

Everything that offers a choice of models asks here: the command line (``clvlab fit --model``),
backtest candidates (``"mbg-nbd+gamma-gamma"``) and their names, experiments (which candidates
may take a churn adjuster) and the posterior predictive checks (which process to simulate). The
columns a model reads are its class's ``columns``, next to the likelihood that reads them.

Adding a model: write its module (the class, with ``param_names`` and ``columns``), then add one
``RegisteredModel`` line below. Nothing else names models.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from clvlab.core.errors import ClvlabError
from clvlab.data import simulate
from clvlab.models.base import BaseModel
from clvlab.models.bg_bb import BetaGeoBetaBinom
from clvlab.models.bg_nbd import BetaGeo
from clvlab.models.gamma_gamma import GammaGamma
from clvlab.models.lognormal_spend import LogNormalSpend
from clvlab.models.modified_bg_nbd import ModifiedBetaGeo
from clvlab.models.pareto_nbd import ParetoNBD
from clvlab.models.shifted_beta_geo import ShiftedBetaGeo

__all__ = ["RegisteredModel", "MODELS", "KINDS", "by_name", "entry_for", "names", "kind_of",
           "check_kind"]

#: what a model predicts, and so where it may be used
KINDS = {
    "transaction": "repeat purchases in continuous time (frequency, recency, T): a backtest "
                   "candidate, alone or with a spend model",
    "spend": "the value of a purchase (frequency, monetary_value): the '+<name>' of a candidate",
    "discrete": "purchases at discrete opportunities (BG/BB's frequency, recency, periods)",
    "durations": "contract renewals (sBG's duration, churned)",
}


@dataclass(frozen=True)
class RegisteredModel:
    """One model of the registry.

    ``name``: how users name it (command line, candidates, experiment files). ``simulator``:
    for transaction models, ``simulator(n_customers, T=ages, seed=rng, **params)`` draws the
    calibration summaries of customers of the given ages (``simulate.bg_nbd``'s signature); the
    posterior predictive check compares its frequency histogram with the data's.
    """

    name: str
    model_class: type[BaseModel]
    kind: str
    simulator: Callable | None = None

    @property
    def columns(self) -> tuple[str, ...]:
        return self.model_class.columns


MODELS: tuple[RegisteredModel, ...] = (
    RegisteredModel("bg-nbd", BetaGeo, "transaction", simulate.bg_nbd),
    RegisteredModel("mbg-nbd", ModifiedBetaGeo, "transaction", simulate.mbg_nbd),
    RegisteredModel("pareto-nbd", ParetoNBD, "transaction", simulate.pareto_nbd),
    RegisteredModel("gamma-gamma", GammaGamma, "spend"),
    RegisteredModel("lognormal", LogNormalSpend, "spend"),
    RegisteredModel("bg-bb", BetaGeoBetaBinom, "discrete"),
    RegisteredModel("sbg", ShiftedBetaGeo, "durations"),
)


def names(kind: str | None = None) -> list[str]:
    """The registered names, in registry order, of one ``kind`` or of all."""
    if kind is not None and kind not in KINDS:
        raise ClvlabError(f"kind must be one of {sorted(KINDS)}, got {kind!r}")
    return [entry.name for entry in MODELS if kind is None or entry.kind == kind]


def by_name(name: str, kind: str | None = None) -> RegisteredModel:
    """The model registered as ``name`` (of ``kind``, when given), or an error listing them."""
    for entry in MODELS:
        if entry.name == name and (kind is None or entry.kind == kind):
            return entry
    what = f"{kind} model" if kind else "model"
    raise ClvlabError(f"unknown {what} {name!r}; use one of {names(kind)}")


def entry_for(model: BaseModel | type[BaseModel]) -> RegisteredModel:
    """The entry of a model (or model class): its exact class, so that MBG/NBD (a subclass of
    BG/NBD) is never taken for BG/NBD."""
    cls = model if isinstance(model, type) else type(model)
    for entry in MODELS:
        if entry.model_class is cls:
            return entry
    raise ClvlabError(f"{cls.__name__} is not a registered clvlab model; registered: "
                      f"{[entry.model_class.__name__ for entry in MODELS]}")


def kind_of(model: object) -> str | None:
    """The kind of a model (or model class), a subclass a user wrote included; None for an
    object that is no registered model's instance."""
    cls = model if isinstance(model, type) else type(model)
    kinds = {entry.kind for entry in MODELS if issubclass(cls, entry.model_class)}
    return kinds.pop() if len(kinds) == 1 else None


def check_kind(model: object, kind: str, role: str) -> None:
    """``model`` is a fitted-or-not model of ``kind``, or an error naming ``role`` (the
    argument), what it needs and what was given, e.g. a Gamma-Gamma given as the transaction
    model."""
    found = kind_of(model)
    if found == kind:
        return
    given = (f"a {type(model).__name__} (a {found} model)" if found
             else f"{type(model).__name__!s}, which is not a registered clvlab model")
    hint = ""
    if {found, kind} == {"transaction", "spend"}:
        hint = "; the transaction and spend models look swapped (the transaction model comes first)"
    raise ClvlabError(f"{role} must be a {kind} model (one of {names(kind)}); got {given}{hint}")


def _check_registry() -> None:
    # one line per model and per name, every kind known: a slip here would misroute a model
    seen_names = [entry.name for entry in MODELS]
    seen_classes = [entry.model_class for entry in MODELS]
    if len(set(seen_names)) != len(MODELS) or len(set(seen_classes)) != len(MODELS):
        raise ClvlabError("the model registry lists a name or a class twice")
    unknown = [entry.name for entry in MODELS if entry.kind not in KINDS]
    if unknown:
        raise ClvlabError(f"the model registry has models of unknown kind: {unknown}")


_check_registry()
