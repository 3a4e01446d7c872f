"""What a CLV model must be to be registered, and what may be the evidence of its promotion.

- **Each part of its kind.** The transaction model must be a model of the registry's kind
  "transaction" (BG/NBD, MBG/NBD, Pareto/NBD), the spend model one of kind "spend"
  (Gamma-Gamma), the churn adjuster a :class:`clvlab.churn.ChurnAdjuster`
  (:func:`check_parts`). Checked when logging, when loading and when scoring, so a part in the
  wrong place is a named error, never an AttributeError in the middle of a job.
- **Converged.** Registration reports each model's convergence diagnostics (those its fit
  recorded in ``convergence_``: r_hat, divergences and ESS after NUTS, the ELBO check after
  ADVI, the Newton check after MAP, the optimizer's status after maximum likelihood) and refuses
  a fit that its own checks call unconverged (the thresholds of
  :func:`clvlab.inference.bayes.diagnostics`: r_hat < 1.01 with several chains, no divergent
  transition, bulk ESS > 400), unless forced (:func:`convergence_report`, :func:`check_converged`).
- **Evidence of a promotion.** A backtest supports a promotion only when it ran in the model's
  time unit and among its candidates is the registered model's own (:func:`candidate_name`:
  ``"pareto-nbd[channel] + gamma-gamma"``) with metrics (:func:`check_evidence`).
"""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path
from typing import Any

from clvlab.core.errors import ClvlabError
from clvlab.core.timeunits import normalize_time_unit

__all__ = ["PARTS", "check_parts", "convergence_report", "check_converged",
           "convergence_tags", "describe_convergence", "candidate_name", "check_evidence",
           "backtest_settings"]

#: each part of a CLV model: (its name in messages, the registry kind it must be, how to pass it)
PARTS = {"transaction": ("transaction model", "transaction", "the first argument (command line: "
                                                             "the model file)"),
         "spend": ("spend model", "spend", "spend_model= (--spend-model)"),
         "adjuster": ("churn adjuster", None, "churn_adjuster= (--churn-adjuster; a challenger: "
                                              "--challenger)")}
#: the diagnostics kept in the report and as tags, when a fit recorded them
_NUMBERS = ("max_r_hat", "divergences", "min_ess_bulk", "min_ess_tail", "chains", "draws",
            "steps", "loss_drop_last_tenth", "newton_steps", "newton_gain", "gradient_norm",
            "iterations")
_TEXTS = ("message", "sampler")
_REMEDY = {"nuts": "sample longer (tune=2000, more draws, chains >= 2) or with tighter priors",
           "advi": "fit with method='nuts', or with tighter priors",
           "map": "fit with method='mle' (more restarts) or 'nuts'",
           "mle": "refit with more restarts (max_restarts=10) or a small penalty (penalty=0.01), "
                  "and check the table's time unit"}


# --- kinds ---------------------------------------------------------------------------------

def check_parts(transaction: Any, spend: Any = None, adjuster: Any = None) -> None:
    """Refuse a part that is not of its kind, naming what was given and what is expected."""
    from clvlab.churn import ChallengerAdjustment, ChurnAdjuster
    from clvlab.models import registry
    from clvlab.models.registry import kind_of

    for part, model in (("transaction", transaction), ("spend", spend), ("adjuster", adjuster)):
        if model is None and part != "transaction":
            continue
        role, kind, where = PARTS[part]
        if kind is None:
            if isinstance(model, (ChurnAdjuster, ChallengerAdjustment)):
                continue
            expected = "a fitted clvlab.ChurnAdjuster or a challenger (ChallengerAdjustment)"
        else:
            if kind_of(model) == kind:
                continue
            expected = f"a {kind} model ({', '.join(registry.names(kind))})"
        raise ClvlabError(
            f"the {role} is {_described(model)}; a CLV model's {role} must be {expected}. Pass "
            "each model in its place: the transaction model first, the Gamma-Gamma model as "
            "spend_model= (--spend-model), the churn adjuster as churn_adjuster= "
            f"(--churn-adjuster); here the {role} came as {where}")


def _described(model: Any) -> str:
    from clvlab.churn import ChurnAdjuster
    from clvlab.models import registry
    from clvlab.models.registry import kind_of

    name = type(model).__name__
    if model is None:
        return "missing (None)"
    if isinstance(model, ChurnAdjuster):
        return "a ChurnAdjuster (a churn adjuster, not a model of the registry)"
    kind = kind_of(model)
    if kind is None:
        return f"a {name}, which is not a clvlab model"
    return f"a {name}, a {kind} model ({', '.join(registry.names(kind))})"


# --- convergence ---------------------------------------------------------------------------
def convergence_report(transaction: Any, spend: Any = None) -> dict[str, dict[str, Any]]:
    """Each model's diagnostics, JSON-ready: {"transaction_model": {...}, "spend_model": {...}}
    with the method, ``converged`` (True, False, or None when nothing checked it: a MAP point
    with priors on another scale, a model made with ``from_params``), the problems found and
    the diagnostics' numbers."""
    report = {}
    for key, model in (("transaction_model", transaction), ("spend_model", spend)):
        if model is None:
            continue
        diag = getattr(model, "convergence_", None)
        method = getattr(model, "method", "mle")
        entry: dict[str, Any] = {"model": type(model).__name__, "method": method}
        if not isinstance(diag, dict):
            entry.update(converged=None, problems=["no fit recorded (parameters given with "
                                                   "from_params): nothing to check"])
            report[key] = entry
            continue
        converged = diag.get("converged")
        problems = [str(p) for p in diag.get("problems") or []]
        if converged is False and not problems:  # maximum likelihood: the optimizer's words
            problems = [f"the optimizer stopped without converging ({diag.get('message', 'no message')})"]
        entry.update(converged=None if converged is None else bool(converged), problems=problems)
        entry.update({k: _number(diag[k]) for k in _NUMBERS if _number(diag.get(k)) is not None})
        entry.update({k: str(diag[k]) for k in _TEXTS if diag.get(k) is not None})
        report[key] = entry
    return report


def _number(value: Any) -> float | int | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if isinstance(value, int):
        return value
    return float(value) if math.isfinite(value) else None


def check_converged(report: dict[str, dict[str, Any]], force: bool = False) -> list[str]:
    """Refuse an unconverged model unless ``force``; returns the parts that were unconverged
    (registered anyway when forced)."""
    failed = [key for key, entry in report.items() if entry["converged"] is False]
    if failed and not force:
        lines = [f"the {key.replace('_', ' ')} {report[key]['model']} ({report[key]['method']}) is "
                 f"not converged: {'; '.join(report[key]['problems'])}" for key in failed]
        remedies = sorted({_REMEDY.get(report[key]["method"], "refit") for key in failed})
        raise ClvlabError(
            f"{'. '.join(lines)}. Its scores would rest on estimates its own checks do not "
            f"trust, so it is not registered: {'; '.join(remedies)}. To register it anyway, "
            "pass force=True (command line: clvlab register --force); the diagnostics are "
            "recorded on the model version either way")
    return failed


def convergence_tags(report: dict[str, dict[str, Any]], forced: list[str]) -> dict[str, str]:
    """The report as MLflow tags (``clvlab.<part>.<diagnostic>``), and ``clvlab.forced``."""
    tags = {}
    for key, entry in report.items():
        for name, value in entry.items():
            if name == "problems":
                value = "; ".join(value) if value else "none"
            tags[f"clvlab.{key}.{name}"] = str(value)[:5000]
    if forced:
        tags["clvlab.forced"] = "true"
        tags["clvlab.forced_parts"] = ",".join(forced)
    return tags


def describe_convergence(report: dict[str, dict[str, Any]], forced: list[str] = ()) -> list[str]:
    """One line per model for the command line."""
    lines = []
    for key, entry in report.items():
        state = {True: "converged", False: "NOT converged", None: "convergence not checked"}[entry["converged"]]
        numbers = []
        if "max_r_hat" in entry:
            numbers.append(f"max r_hat {entry['max_r_hat']:.3f}")
        if "divergences" in entry:
            numbers.append(f"{entry['divergences']} divergences")
        if "min_ess_bulk" in entry:
            numbers.append(f"min bulk ESS {entry['min_ess_bulk']:.0f}")
        if entry["problems"]:
            numbers.append("; ".join(entry["problems"]))
        detail = f" ({', '.join(numbers)})" if numbers else ""
        suffix = " - registered because forced" if key in forced else ""
        lines.append(f"{key.replace('_', ' ')} {entry['model']} ({entry['method']}): {state}"
                     f"{detail}{suffix}")
    return lines


# --- the evidence of a promotion -------------------------------------------------------------
def candidate_name(transaction: Any, spend: Any = None, adjuster: Any = None) -> str:
    """The name a backtest gives the candidate that these models make
    (``"pareto-nbd[channel] + gamma-gamma"``, ``"bg-nbd + churn adjuster"``; a challenger's,
    ``"ziln"`` or ``"gbm"``, whatever BTYD model serves it)."""
    from clvlab.evaluation.candidates import model_name

    challenger = getattr(adjuster, "candidate_name_", None)
    if challenger is not None:  # the challenger is the candidate; its BTYD model serves it
        return challenger
    parts = [model_name(m) for m in (transaction, spend) if m is not None]
    return " + ".join(parts + (["churn adjuster"] if adjuster is not None else []))


def backtest_settings(client, run) -> dict[str, Any]:
    """A logged backtest's settings: its ``backtest/settings.json`` (logged since issue 29),
    else what its parameters and tags hold (time unit, candidate names)."""
    try:
        with tempfile.TemporaryDirectory() as folder:
            path = client.download_artifacts(run.info.run_id, "backtest/settings.json", folder)
            return json.loads(Path(path).read_text())
    except Exception:  # an older run: no such artifact
        pass
    params, tags = run.data.params, run.data.tags
    try:
        candidates = list(json.loads(tags.get("clvlab.candidates", "{}")).values())
    except json.JSONDecodeError:  # cut at MLflow's tag length
        candidates = [c for c in params.get("candidates", "").split("; ") if c]
    return {"time_unit": params.get("time_unit") or tags.get("clvlab.time_unit"),
            "candidates": candidates}


def check_evidence(client, run_id: str, model, label: str) -> str:
    """Refuse ``run_id`` as the evidence for ``model`` (a :class:`clvlab.serving.CLVModel`;
    ``label`` names it in messages) unless it is a clvlab backtest in the model's time unit
    whose candidates include the model's own, with metrics. Returns that candidate's name."""
    from mlflow.exceptions import MlflowException

    from clvlab.ops.tracking import metric_key

    try:
        run = client.get_run(run_id)
    except MlflowException:
        raise ClvlabError(f"run {run_id} does not exist") from None
    kind = run.data.tags.get("clvlab.kind")
    if kind != "backtest":
        raise ClvlabError(f"run {run_id} is not a clvlab backtest (kind {kind!r}); promote on "
                          "the parent run of a backtest (clvlab.tracking.log_backtest's id)")
    settings = backtest_settings(client, run)
    wanted = candidate_name(model.transaction, model.spend, model.adjuster)
    model_unit = getattr(model.transaction, "time_unit_", None)
    how = (f"backtest the candidate {wanted!r} on this model's data in {model_unit!r} and "
           "promote on that run, or promote without --backtest-run (no evidence recorded)")
    unit = settings.get("time_unit")
    if unit is None or model_unit is None or normalize_time_unit(unit) != normalize_time_unit(model_unit):
        raise ClvlabError(f"backtest run {run_id} cannot support {label}: the backtest ran in "
                          f"time unit {unit!r} and the model is in {model_unit!r}, so its "
                          f"numbers are not this model's; {how}")
    candidates = [str(c) for c in settings.get("candidates") or []]
    matches = [c for c in candidates if c.replace(" ", "") == wanted.replace(" ", "")]
    if not matches:
        raise ClvlabError(f"backtest run {run_id} did not test {label}, which is the candidate "
                          f"{wanted!r}; the backtest's candidates were {candidates}; {how}")
    prefix = metric_key(matches[0]) + "."
    if not any(key.startswith(prefix) for key in run.data.metrics):
        raise ClvlabError(f"backtest run {run_id} has no metrics for the candidate "
                          f"{matches[0]!r} (it failed at every cutoff?), so it is no evidence "
                          f"for {label}; {how}")
    return matches[0]
