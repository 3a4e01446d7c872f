"""Candidates by name: ``"pareto-nbd+gamma-gamma"``, ``"bg-nbd+churn-adjuster"``,
``"historical-average"``, ``"active-90d"``..., and the comparison a backtest runs by default.

Model names come from the model registry (:mod:`clvlab.models.registry`), so a registered
transaction model is a candidate, alone, with a spend model and with the churn adjuster.

A model name may carry covariates in brackets: customer attributes (``backtest``'s
``customer_attributes``) that the model reads (:mod:`clvlab.models.covariates`).

- ``"pareto-nbd[gender,channel]"``: a plain list moves every process the model has, so here
  the columns are both purchase and dropout covariates; ``"gamma-gamma[channel]"`` gives spend
  covariates. So ``"pareto-nbd[gender,channel]+gamma-gamma[channel]"`` is a candidate.
- ``"pareto-nbd[purchase=gender,channel;dropout=channel]"``: one list per process, separated by
  ``;`` (processes: ``purchase`` and ``dropout`` for the transaction models, ``spend`` for
  Gamma-Gamma); a process left out has no covariates. ``shared=col,...`` gives columns of
  both purchase and dropout one coefficient (``shared_covariates``).
- ``"bg-nbd[channel;dropout_form=b]"``: BG/NBD and MBG/NBD take ``dropout_form=b`` (the
  dropout covariates move the mean dropout probability; ``clvlab fit --dropout-form b``) as
  one more item; the default is ``a_and_b``.
- Time-varying covariates: when the backtest has a ``covariate_panel`` or ``calendar``, the
  bracket columns of a Pareto/NBD or BG/NBD that they hold are read along each customer's path
  (``"pareto-nbd[High.Season,Gender]"``), the others from ``customer_attributes``
  (:mod:`clvlab.evaluation.time_varying_cutoffs`). The name is the same; the backtest decides.
- On the command line, ``--candidates`` splits at the commas outside brackets
  (:func:`split_candidates`): ``"pareto-nbd[gender,channel],bg-nbd"`` is two candidates.

Model names are read in any case, column names exactly as written (spaces around them
dropped). A column whose name holds one of ``+ [ ] , ; =`` cannot be named this way: pass the
model object instead (``ParetoNBD(purchase_covariates=[...])``), which is a candidate too.
Covariates and the churn adjuster do not combine yet.

The machine-learning challengers (:mod:`clvlab.evaluation.challenger_candidate`): ``"ziln"``
(zero-inflated log-normal gradient boosting) and ``"gbm"`` (Poisson gradient boosting on a
Pareto/NBD offset; ``"bg-nbd+gbm"`` on another model's), trained one horizon back on the
features of :func:`clvlab.churn.feature_frame` (with ``events=``, the event log's too; with
``quantity_col=``, the basket sizes').
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

__all__ = ["make_candidate", "default_candidates", "split_candidates", "CANDIDATE_NAMES"]


CANDIDATE_NAMES = (*registry.names("transaction"), "<model>+gamma-gamma",
                   "<model>[+gamma-gamma]+churn-adjuster", "<model>[col,...]",
                   "<model>[purchase=col,...;dropout=col,...]",
                   "bg-nbd[col,...;dropout_form=b]", "gamma-gamma[col,...]",
                   "ziln", "gbm", "<model>+gbm", "ziln-handover-<k>",
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
    a name such as ``"pareto-nbd+gamma-gamma"``, ``"pareto-nbd[channel]+gamma-gamma"`` (with
    covariates: see the module's docstring), ``"historical-average"`` or ``"active-90d"``.

    Parameters
    ----------
    spec : Candidate, BaseModel, tuple or str
        A candidate (returned as it is), a clvlab model, a (transaction model, spend model)
        pair, or a candidate's name.

    Returns
    -------
    Candidate
        The candidate: a ModelCandidate for models, a baseline or model candidate for a name.

    Raises
    ------
    ClvlabError
        Where ``spec`` is of another type or an unknown name.
    """
    if isinstance(spec, Candidate):
        return spec
    if isinstance(spec, BaseModel):
        return ModelCandidate(spec)
    if isinstance(spec, tuple) and len(spec) == 2 and all(isinstance(m, BaseModel) for m in spec):
        return ModelCandidate(*spec)
    if not isinstance(spec, str):
        raise ClvlabError(f"a candidate must be a name, a clvlab model or a (transaction, spend) "
                          f"pair, not {type(spec).__name__}")
    if "[" in spec or "]" in spec:
        return _with_covariates(spec)
    name = spec.strip().lower().replace(" ", "")
    transaction = registry.names("transaction")
    spend_models = registry.names("spend")
    simple = {"historical-average": baselines.HistoricalAverage,
              "historical-ltv": baselines.HistoricalLTV, "arpu-churn": baselines.ArpuChurn,
              "aov-frequency-lifespan": baselines.AovFrequencyLifespan}
    handover = re.fullmatch(r"ziln-handover-(\d+)", name)
    if handover:
        from clvlab.evaluation.challenger_candidate import HandoverCandidate

        return HandoverCandidate(min_purchases=int(handover.group(1)))
    if name in ("ziln", "gbm") or (name.endswith("+gbm") and name[:-4] in transaction):
        from clvlab.evaluation.challenger_candidate import ChallengerCandidate

        base = registry.by_name(name[:-4]).model_class() if name.endswith("+gbm") else None
        return ChallengerCandidate(name.rpartition("+")[2], base)
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


# --- names with covariates -------------------------------------------------------------------
_PART = re.compile(r"\s*([A-Za-z0-9_.-]+)\s*(?:\[([^\[\]]*)\])?\s*")


def _with_covariates(spec: str) -> ModelCandidate:
    """``"<transaction model>[...]"`` optionally ``+ "<spend model>[...]"``: see the module."""
    parts = _split_outside_brackets(spec)
    parsed = []
    for part in parts:
        match = _PART.fullmatch(part)
        if match is None:
            raise ClvlabError(f"candidate {spec!r}: cannot read {part.strip()!r}; a model with "
                              "covariates is written like 'pareto-nbd[gender,channel]' or "
                              "'pareto-nbd[purchase=gender;dropout=channel]'")
        parsed.append((match.group(1).lower(), match.group(2)))
    names = [name for name, _ in parsed]
    if "churn-adjuster" in names:
        raise ClvlabError(f"candidate {spec!r}: covariates and the churn adjuster do not combine "
                          "yet (the adjuster's training views carry no customer attributes); "
                          "backtest them as two candidates")
    transaction, spend_models = registry.names("transaction"), registry.names("spend")
    if not (len(parsed) in (1, 2) and names[0] in transaction
            and (len(parsed) == 1 or names[1] in spend_models)):
        raise ClvlabError(f"unknown candidate {spec!r}: covariates go on a transaction model "
                          f"({', '.join(transaction)}), optionally '+' a spend model "
                          f"({', '.join(spend_models)}), e.g. 'pareto-nbd[channel]+gamma-gamma'")
    models = [_model(name, covariates, spec) for name, covariates in parsed]
    return ModelCandidate(*models)


def _split_outside_brackets(spec: str) -> list[str]:
    """``spec`` split at the ``+`` outside brackets; unbalanced brackets are an error."""
    parts, depth, current = [], 0, ""
    for char in spec:
        depth += {"[": 1, "]": -1}.get(char, 0)
        if depth not in (0, 1):
            raise ClvlabError(f"candidate {spec!r}: unbalanced or nested brackets")
        if char == "+" and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    if depth:
        raise ClvlabError(f"candidate {spec!r}: a '[' is not closed")
    return [*parts, current]


def _model(name: str, text: str | None, spec: str) -> BaseModel:
    """The registered model ``name`` with the settings that ``text`` (the bracket's content, or
    None) names: ``;``-separated items, each a plain column list (every process), a
    ``process=columns`` list, ``shared=columns`` or ``dropout_form=b``."""
    model_class = registry.by_name(name).model_class
    if text is None:
        return model_class()
    offered = list(dict.fromkeys(process for process, _ in model_class().covariate_links().values()))
    where = f"candidate {spec!r}, model {name!r}"
    settings: dict[str, list[str]] = {}
    options: dict[str, str] = {}
    plain: list[str] | None = None
    for item in text.split(";"):
        key, equals, value = item.partition("=")
        key = key.strip().lower()
        if not equals:
            if plain is not None:
                raise ClvlabError(f"{where}: two plain column lists; write one, e.g. "
                                  f"'{name}[gender,channel]', or one per process, e.g. "
                                  f"'{name}[{offered[0]}=gender;{offered[-1]}=channel]'")
            plain = _columns(item, where)
        elif key == "dropout_form":
            options["dropout_form"] = _dropout_form(model_class, value, name, where, options)
        elif key in offered or (key == "shared" and {"purchase", "dropout"} <= set(offered)):
            if f"{key}_covariates" in settings:
                raise ClvlabError(f"{where}: the process {key!r} is listed twice")
            settings[f"{key}_covariates"] = _columns(value, where)
        else:
            forms = ", 'dropout_form=b'" if hasattr(model_class, "DROPOUT_FORMS") else ""
            raise ClvlabError(f"{where}: {item.strip()!r} is not 'process=columns'; the processes "
                              f"of {name} are {offered}, e.g. '{name}[{offered[0]}=channel]'"
                              f"{forms}")
    if plain is not None:
        if any(k != "shared_covariates" for k in settings):
            raise ClvlabError(f"{where}: a plain column list (every process) and per-process "
                              "lists do not combine; write one list per process instead")
        settings = {**{f"{process}_covariates": plain for process in offered}, **settings}
    return model_class(**settings, **options)


def _dropout_form(model_class, value: str, name: str, where: str, options: dict) -> str:
    forms = getattr(model_class, "DROPOUT_FORMS", None)
    if forms is None:
        raise ClvlabError(f"{where}: dropout_form is a setting of bg-nbd and mbg-nbd, not of "
                          f"{name}")
    if "dropout_form" in options:
        raise ClvlabError(f"{where}: dropout_form is given twice")
    form = value.strip()
    if form not in forms:
        raise ClvlabError(f"{where}: dropout_form={form!r} is not one of {list(forms)}, e.g. "
                          f"'{name}[channel;dropout_form=b]'")
    return form


def split_candidates(text: str) -> list[str]:
    """A comma-separated list of candidate names (``--candidates``) split at the commas outside
    brackets: ``"pareto-nbd[Gender,Channel],bg-nbd"`` is two candidates."""
    names, depth, current = [], 0, ""
    for char in text:
        depth += {"[": 1, "]": -1}.get(char, 0)
        if char == "," and depth == 0:
            names.append(current)
            current = ""
        else:
            current += char
    if depth != 0:
        raise ClvlabError(f"candidates {text!r}: a '[' is not closed (or a ']' not opened)")
    names = [name.strip() for name in [*names, current]]
    if not all(names):
        raise ClvlabError(f"candidates {text!r}: an empty name between commas")
    return names


def _columns(text: str, where: str) -> list[str]:
    columns = [column.strip() for column in text.split(",")]
    if not all(columns):
        raise ClvlabError(f"{where}: empty covariate name in [{text}]; list attribute columns "
                          "separated by commas, e.g. [gender,channel]")
    bad = [c for c in columns if any(ch in c for ch in "=;")]
    if bad:
        raise ClvlabError(f"{where}: covariate name {bad[0]!r} holds '=' or ';'")
    repeated = sorted({c for c in columns if columns.count(c) > 1})
    if repeated:
        raise ClvlabError(f"{where}: covariate {repeated[0]!r} is listed twice")
    return columns
