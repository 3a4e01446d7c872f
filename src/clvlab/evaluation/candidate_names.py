"""Candidates by name: ``"pareto-nbd+gamma-gamma"``, ``"bg-nbd+churn-adjuster"``,
``"historical-average"``, ``"active-90d"``..., and the comparison a backtest runs by default.

Model names come from the model registry (:mod:`clvlab.models.registry`), so a registered
transaction model is a candidate, alone, with a spend model and with the churn adjuster.
"""

from __future__ import annotations

import re
from typing import Any

from clvlab.core.errors import ClvlabError
from clvlab.evaluation import baselines
from clvlab.evaluation.candidates import Candidate, ModelCandidate
from clvlab.evaluation.churn_candidate import ChurnAdjustedCandidate
from clvlab.models import registry
from clvlab.models.base import BaseModel

__all__ = ["make_candidate", "default_candidates", "CANDIDATE_NAMES"]


CANDIDATE_NAMES = (*registry.names("transaction"), "<model>+gamma-gamma",
                   "<model>[+gamma-gamma]+churn-adjuster",
                   "historical-average", "historical-ltv", "arpu-churn",
                   "aov-frequency-lifespan", "active-<N>d (or -<N>w)")


# the default comparison: the models with their spend model and every practitioners' formula;
# without amounts, the transaction models alone and the baselines that need no spend
_DEFAULTS_WITH_AMOUNTS = ("pareto-nbd+gamma-gamma", "bg-nbd+gamma-gamma", "historical-average",
                          "historical-ltv", "arpu-churn", "aov-frequency-lifespan", "active-90d")
_DEFAULTS_WITHOUT_AMOUNTS = ("pareto-nbd", "bg-nbd", "historical-average", "active-90d")


def default_candidates(has_amounts: bool) -> list[str]:
    """The candidate names a backtest compares by default.

    Parameters
    ----------
    has_amounts : whether the log has an amount column.

    Returns
    -------
    list of str
        With amounts: Pareto/NBD and BG/NBD with Gamma-Gamma and every baseline. Without:
        Pareto/NBD, BG/NBD, ``historical-average`` and ``active-90d`` (the candidates that
        predict purchases and activity without a spend), so that such a log backtests by
        default.
    """
    return list(_DEFAULTS_WITH_AMOUNTS if has_amounts else _DEFAULTS_WITHOUT_AMOUNTS)


def make_candidate(spec: Any) -> Candidate:
    """A candidate from a Candidate, a clvlab model, a (transaction model, spend model) pair or
    a name such as ``"pareto-nbd+gamma-gamma"``, ``"historical-average"`` or ``"active-90d"``."""
    if isinstance(spec, Candidate):
        return spec
    if isinstance(spec, BaseModel):
        return ModelCandidate(spec)
    if isinstance(spec, tuple) and len(spec) == 2 and all(isinstance(m, BaseModel) for m in spec):
        return ModelCandidate(*spec)
    if not isinstance(spec, str):
        raise ClvlabError(f"a candidate must be a name, a clvlab model or a (transaction, spend) "
                          f"pair, not {type(spec).__name__}")
    name = spec.strip().lower().replace(" ", "")
    transaction = registry.names("transaction")
    spend_models = registry.names("spend")
    simple = {"historical-average": baselines.HistoricalAverage,
              "historical-ltv": baselines.HistoricalLTV, "arpu-churn": baselines.ArpuChurn,
              "aov-frequency-lifespan": baselines.AovFrequencyLifespan}
    model, *rest = name.split("+")
    adjusted = rest[-1:] == ["churn-adjuster"]
    rest = rest[:-1] if adjusted else rest
    if model in transaction and (rest == [] or (len(rest) == 1 and rest[0] in spend_models)):
        transaction_model = registry.by_name(model).model_class()
        spend = registry.by_name(rest[0]).model_class() if rest else None
        if adjusted:
            return ChurnAdjustedCandidate(transaction_model, spend)
        return ModelCandidate(transaction_model, spend)
    if name in simple:
        return simple[name]()
    match = re.fullmatch(r"active-(\d+(?:\.\d+)?)([dw])", name)
    if match:
        days = float(match.group(1)) * (7 if match.group(2) == "w" else 1)
        return baselines.RecentActivity(days)
    raise ClvlabError(f"unknown candidate {spec!r}; use one of {', '.join(CANDIDATE_NAMES)}")
