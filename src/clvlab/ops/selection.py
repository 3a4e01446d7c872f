"""Selection and promotion by backtest: an experiment's declared rule picks the champion.

An experiment file may declare a rule in a ``[selection]`` table::

    [selection]
    registered_model = "cdnow-clv"   # the MLflow registered model it feeds
    target = "spend"                 # purchases, spend or activity
    metric = "normalized_gini"       # any metric the backtest writes for that target
    margin = 0.01                    # how much better than the champion, in the metric's units
    refresh = true                   # the champion's own candidate, refitted, replaces it

Running it (``clvlab experiment run`` or ``clvlab retrain``) then:

1. looks up the version behind ``@champion`` and its candidate (the version's
   ``clvlab.candidate`` tag); a champion whose candidate the experiment does not list is added to
   the backtest, so that both are scored on the same cutoffs and customers;
2. runs and logs the backtest, and ranks the candidates by the metric's mean over the cutoffs.
   Only candidates scored at every cutoff count, and only those that can be registered (the
   BTYD models, with their spend model or churn adjuster): a baseline can win the table but
   not the registry, and the decision says so. The challengers ``"ziln"`` and ``"gbm"`` register
   beside a BTYD model that serves them (:class:`clvlab.churn.ChallengerAdjustment`);
3. refits the best registrable candidate on the whole log (up to its last transaction),
   registers it as a new version with ``@challenger`` and promotes it to ``@champion`` when:
   there is no champion yet; or it is another candidate that beats the champion's score by at
   least ``margin`` (``better`` as :func:`clvlab.evaluation.metrics.ranking_key` defines it:
   higher AUC or Gini, lower MAE, a signed error or coverage closer to its target); or it is the
   champion's own candidate and ``refresh`` is true (a refit on newer data, not a change of
   model). Otherwise ``@champion`` stays where it was.

The rule, both scores, the backtest run and the decision are recorded as tags on the new
version (``clvlab.selection.*``) and on the backtest run, where ``clvlab compare`` shows them.
"""

from __future__ import annotations

import copy
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from clvlab.core.errors import ClvlabError
from clvlab.evaluation.metrics import TARGETS, describe_better, ranking_key
from clvlab.data.tables import accepts_tables

#: the metrics of a predictive distribution, written for purchases only
DISTRIBUTION_METRICS = {"log_score", "rps", "interval_width_90", "total_coverage_90",
                        *(f"{kind}coverage_{level}" for kind in ("", "pit_")
                          for level in (50, 80, 90, 95))}

__all__ = ["SelectionRule", "SelectionDecision", "parse_rule", "candidate_scores",
           "champion_candidate", "decide", "refit_and_register", "decisions", "SELECTION_KEYS"]

#: The keys a ``[selection]`` table may hold.
SELECTION_KEYS = {"registered_model", "target", "metric", "margin", "refresh"}


@dataclass(frozen=True)
class SelectionRule:
    """Which candidate wins (the mean of ``target``'s ``metric`` over the cutoffs) and by how
    much a challenger must beat the champion (``margin``, in the metric's units).

    Parameters
    ----------
    registered_model : str
        The MLflow registered model the winner is registered under.
    target : str
        ``"purchases"``, ``"spend"`` or ``"activity"``.
    metric : str
        A metric of that target, as the backtest logs it (``"normalized_gini"``...).
    margin : float, default 0.0
        How much a challenger must beat the champion by, in the metric's units.
    refresh : bool, default True
        Refit and replace the champion when its own candidate wins again.
    """

    registered_model: str
    target: str
    metric: str
    margin: float = 0.0
    refresh: bool = True

    @property
    def column(self) -> str:
        """The metric as the backtest logs it: ``spend_normalized_gini``."""
        return f"{self.target}_{self.metric}"

    def describe(self) -> str:
        """The rule in words: the metric, its direction and the margin.

        Returns
        -------
        str
            E.g. ``"spend normalized_gini over all cutoffs (higher is better); a challenger must
            beat the champion by at least 0.01"``.
        """
        return (f"{self.target} {self.metric} over all cutoffs ({describe_better(self.column)}); "
                f"a challenger must beat the champion by at least {self.margin:g}")

    def improvement(self, score: float, champion_score: float) -> float:
        """How much better ``score`` is than ``champion_score`` (positive: better), in the
        metric's units: ranking_key's order, so a signed error and a coverage count by their
        distance from their target.

        Parameters
        ----------
        score : float
            A challenger's score.
        champion_score : float
            The champion's score.

        Returns
        -------
        float
            The improvement; positive: ``score`` is better.
        """
        key = ranking_key(self.column)(pd.Series([score, champion_score])).to_numpy()
        return float(key[1] - key[0])


def parse_rule(path: Path | str, table: Any) -> SelectionRule:
    """The ``[selection]`` table of an experiment file as a rule; errors name the file and key.

    Parameters
    ----------
    path : str or pathlib.Path
        The experiment file (for the messages).
    table : dict
        Its ``[selection]`` table.

    Returns
    -------
    SelectionRule
        The rule.

    Raises
    ------
    ClvlabError
        Where the table is not a table, has an unknown key, lacks a required one, or a value is
        of the wrong type or not a metric the backtest writes.
    """
    where = f"{path}: [selection]"
    if not isinstance(table, dict):
        raise ClvlabError(f"{where} must be a table, e.g. [selection] with target = \"spend\"")
    unknown = set(table) - SELECTION_KEYS
    if unknown:
        raise ClvlabError(f"{where}: unknown key(s) {sorted(unknown)}; expected some of "
                          f"{sorted(SELECTION_KEYS)}")
    for key in ("registered_model", "target", "metric"):
        if not isinstance(table.get(key), str) or not table[key].strip():
            example = {"registered_model": '"cdnow-clv"', "target": '"spend"',
                       "metric": '"normalized_gini"'}[key]
            raise ClvlabError(f"{where} needs {key} as a text, e.g. {key} = {example}; got "
                              f"{table.get(key)!r}")
    target, metric = table["target"].strip().lower(), table["metric"].strip().lower()
    if target not in TARGETS:
        raise ClvlabError(f"{where}: target must be one of {list(TARGETS)}, got {target!r}")
    try:
        ranking_key(f"{target}_{metric}")
    except ClvlabError as exc:
        raise ClvlabError(f"{where}: metric {metric!r}: {exc}") from None
    # which target writes which metric (clvlab.evaluation.metrics): found before the backtest
    activity = {"auc", "brier"}
    if (target == "activity") != (metric in activity) or (
            target == "spend" and metric in DISTRIBUTION_METRICS):
        fits = sorted(activity) if target == "activity" else "mae, rmse, bias, " \
            "aggregate_pct_error, normalized_gini, top_decile_capture, spearman, decile_mape" + \
            (" and the distribution's (log_score, coverage_90...)" if target == "purchases" else "")
        raise ClvlabError(f"{where}: the backtest writes no {target}_{metric}; the {target} "
                          f"metrics are {fits}")
    margin = table.get("margin", 0.0)
    if isinstance(margin, bool) or not isinstance(margin, (int, float)) or not margin >= 0:
        raise ClvlabError(f"{where}: margin must be a number >= 0 in the metric's units (e.g. "
                          f"margin = 0.01 for an AUC or Gini one point higher), got {margin!r}")
    refresh = table.get("refresh", True)
    if not isinstance(refresh, bool):
        raise ClvlabError(f"{where}: refresh must be true or false, got {refresh!r}")
    return SelectionRule(table["registered_model"].strip(), target, metric, float(margin), refresh)


def same_candidate(a: str, b: str) -> bool:
    """Display names compared as the registry compares them: spaces do not count."""
    return a.replace(" ", "") == b.replace(" ", "")


def spec_of(name: str) -> str:
    """The candidate spec of a backtest's display name ("bg-nbd + churn adjuster" ->
    "bg-nbd+churn-adjuster"), which :func:`clvlab.evaluation.make_candidate` reads back."""
    return name.replace("churn adjuster", "churn-adjuster").replace(" + ", "+")


def registrable(name: str) -> bool:
    """Whether a candidate's fitted models can be registered as one CLV model: a transaction
    model, with its spend model or churn adjuster; not a baseline, a per-segment fit or a
    model with time-varying covariates (its scoring needs a panel the rule cannot supply)."""
    from clvlab.evaluation.candidate_names import make_candidate
    from clvlab.evaluation.candidates import ModelCandidate
    from clvlab.evaluation.challenger_candidate import ChallengerCandidate
    from clvlab.evaluation.time_varying_candidate import TimeVaryingCandidate

    try:
        candidate = make_candidate(spec_of(name))
    except ClvlabError:
        return False
    if isinstance(candidate, ChallengerCandidate):
        return True
    return isinstance(candidate, ModelCandidate) and not isinstance(candidate, TimeVaryingCandidate)


def candidate_scores(result, rule: SelectionRule) -> pd.DataFrame:
    """Each candidate's mean of the rule's metric over the cutoffs, best first: columns
    ``score``, ``cutoffs`` (at how many it was scored), ``complete`` (at all of them) and
    ``registrable``. A candidate without the metric (a baseline without a distribution) is
    absent; one that failed at a cutoff is kept but not ``complete``, so it cannot win.

    Parameters
    ----------
    result : BacktestResult
        The backtest's result.
    rule : SelectionRule
        The rule whose target and metric rank the candidates.

    Returns
    -------
    pandas.DataFrame
        Indexed by candidate: ``score``, ``cutoffs``, ``complete``, ``registrable``.

    Raises
    ------
    ClvlabError
        Where the backtest wrote the rule's metric for no candidate.
    """
    table = result.metrics
    rows = table[(table["cohort"] == "all") & (table["target"] == rule.target)
                 & (table["metric"] == rule.metric)]
    if rows.empty:
        raise ClvlabError(f"the backtest wrote no {rule.column} for any candidate; the rule "
                          f"[selection] needs a metric the candidates have (e.g. target = "
                          f"\"purchases\", metric = \"mae\")")
    cutoffs = len(result.settings["cutoffs"])
    grouped = rows.groupby("candidate")["value"]
    scores = pd.DataFrame({"score": grouped.mean(), "cutoffs": grouped.count()})
    scores["complete"] = scores["cutoffs"] == cutoffs
    scores["registrable"] = [registrable(name) for name in scores.index]
    order = ranking_key(rule.column)(scores["score"])
    return scores.assign(_key=order.to_numpy()).sort_values("_key", na_position="last") \
        .drop(columns="_key")


@dataclass
class SelectionDecision:
    """What the rule decided: the winner, the champion, both scores and whether it promoted.

    Parameters
    ----------
    rule : SelectionRule
        The rule applied.
    decision : str
        ``"first champion"``, ``"promoted"``, ``"refreshed"``, ``"kept"`` or ``"nothing to
        register"``.
    reason : str
        The decision in words.
    winner : str, optional
        The best registrable candidate.
    winner_score : float, optional
        Its score (NaN: none).
    champion : str, optional
        The champion's candidate name (None: no champion).
    champion_version : str, optional
        The champion's model version.
    champion_score : float, optional
        The champion's candidate's score (NaN: none on this backtest).
    leader : str, optional
        The best candidate of the table, registrable or not.
    version : str, optional
        The version registered for the winner.
    backtest_run : str, optional
        The backtest's MLflow run.
    scores : pandas.DataFrame, optional
        :func:`candidate_scores`' table.
    """

    rule: SelectionRule
    decision: str  # "first champion", "promoted", "refreshed", "kept", "nothing to register"
    reason: str
    winner: str | None = None
    winner_score: float = float("nan")
    champion: str | None = None
    champion_version: str | None = None
    champion_score: float = float("nan")
    leader: str | None = None  # the best candidate of the table, registrable or not
    version: str | None = None  # the version registered for the winner
    backtest_run: str | None = None
    scores: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False)

    @property
    def promoted(self) -> bool:
        """Whether the decision moves ``@champion`` (first champion, promoted, refreshed)."""
        return self.decision in ("first champion", "promoted", "refreshed")

    def tags(self) -> dict[str, str]:
        """The decision as MLflow tags (on the model version and the backtest run).

        Returns
        -------
        dict of str to str
            ``clvlab.selection.<field>`` -> value.
        """
        values = {"rule": json.dumps(asdict(self.rule)), "decision": self.decision,
                  "reason": self.reason[:4900], "winner": self.winner or "",
                  "winner_score": _text(self.winner_score), "champion": self.champion or "",
                  "champion_version": self.champion_version or "",
                  "champion_score": _text(self.champion_score), "version": self.version or "",
                  "backtest_run": self.backtest_run or ""}
        return {f"clvlab.selection.{k}": v for k, v in values.items()}

    def __repr__(self) -> str:
        lines = [f"selection by {self.rule.describe()}",
                 f"decision: {self.decision} — {self.reason}"]
        if self.version:
            lines.append(f"registered {self.rule.registered_model} version {self.version}"
                         + (" (@champion)" if self.promoted else " (@challenger)"))
        return "\n".join(lines)


def _text(value: float) -> str:
    return "" if value is None or not np.isfinite(value) else f"{value:.6g}"


def champion_candidate(registered_model: str) -> tuple[str, str] | None:
    """(version, candidate display name) behind ``@champion``, or None (no such model or alias).

    Parameters
    ----------
    registered_model : str
        The MLflow registered model.

    Returns
    -------
    tuple of (str, str) or None
        The version and its candidate's name, or None.

    Raises
    ------
    ClvlabError
        Where the champion version records no candidate.
    """
    from clvlab.ops.tracking import connect

    mlflow = connect()
    client = mlflow.MlflowClient()
    try:
        version = client.get_model_version_by_alias(registered_model, "champion")
    except mlflow.exceptions.MlflowException:
        return None
    candidate = version.tags.get("clvlab.candidate")
    if not candidate:
        raise ClvlabError(f"{registered_model} version {version.version} (@champion) records no "
                          "candidate (tag clvlab.candidate), so no backtest can score it against "
                          "the challengers; promote a version registered by clvlab")
    return str(version.version), candidate


def decide(scores: pd.DataFrame, rule: SelectionRule,
           champion: tuple[str, str] | None) -> SelectionDecision:
    """The rule applied to the backtest's scores (before anything is registered).

    Parameters
    ----------
    scores : pandas.DataFrame
        :func:`candidate_scores`' table.
    rule : SelectionRule
        The rule.
    champion : tuple of (str, str) or None
        The champion's version and candidate name (:func:`champion_candidate`), or None.

    Returns
    -------
    SelectionDecision
        Without ``version`` (nothing is registered yet).
    """
    leader = str(scores.index[0]) if len(scores) else None
    eligible = scores[scores["complete"] & scores["registrable"] & scores["score"].notna()]
    base = dict(rule=rule, scores=scores, leader=leader)
    if champion is not None:
        found = [n for n in scores.index if same_candidate(n, champion[1])]
        base.update(champion=champion[1], champion_version=champion[0],
                    champion_score=float(scores.loc[found[0], "score"]) if found else np.nan)
    if eligible.empty:
        return SelectionDecision(decision="nothing to register", **base, reason=(
            f"no candidate that can be registered was scored on {rule.column} at every cutoff"))
    winner, score = str(eligible.index[0]), float(eligible["score"].iloc[0])
    base.update(winner=winner, winner_score=score)
    beside = "" if leader == winner else (f"; the table's best, {leader!r}, cannot be "
                                          "registered (a baseline or a partial candidate)")
    if champion is None:
        return SelectionDecision(decision="first champion", **base,
                                 reason=f"{winner!r} is the best registrable candidate "
                                        f"({rule.column} {score:.4g}) and there is no champion{beside}")
    if same_candidate(winner, champion[1]):
        decision = "refreshed" if rule.refresh else "kept"
        what = ("refitted on the whole log, it replaces the champion (refresh = true)"
                if rule.refresh else "the champion stays as it was (refresh = false)")
        return SelectionDecision(decision=decision, **base, reason=(
            f"the champion's own candidate {winner!r} is still the best ({rule.column} "
            f"{score:.4g}); {what}{beside}"))
    champion_score = base["champion_score"]
    if not np.isfinite(champion_score):
        return SelectionDecision(decision="kept", **base, reason=(
            f"the champion's candidate {champion[1]!r} has no {rule.column} on this backtest, so "
            f"{winner!r} ({score:.4g}) cannot be shown to beat it; the champion stays"))
    gain = rule.improvement(score, champion_score)
    verdict = "promoted" if gain >= rule.margin else "kept"
    return SelectionDecision(decision=verdict, **base, reason=(
        f"{winner!r} scores {score:.4g} on {rule.column}, the champion ({champion[1]!r}, "
        f"version {champion[0]}) {champion_score:.4g}: better by {gain:.4g}, "
        f"{'at least' if verdict == 'promoted' else 'less than'} the margin {rule.margin:g}"
        f"{beside}"))


@accepts_tables("transactions")
def refit_and_register(decision: SelectionDecision, transactions: Any, horizon: float,
                       options: dict[str, Any], *, experiment_file: str | None = None) -> SelectionDecision:
    """Fit the winner on the whole log (up to its last transaction), register it under the
    rule's model with ``@challenger``, record the decision on the version and the backtest
    run, and move ``@champion`` when the decision promotes. ``options``: the log's columns and
    settings as :func:`clvlab.data.calibration.calibration_data` takes them.

    Parameters
    ----------
    decision : SelectionDecision
        What :func:`decide` decided.
    transactions : pandas.DataFrame, path, glob or list of paths
        The whole transaction log.
    horizon : float
        The backtest's horizon (what a churn adjuster or challenger trains for).
    options : dict
        The log's columns and settings (:func:`clvlab.backtesting.calibration_data`'s).
    experiment_file : str, optional
        The experiment file, recorded as a tag.

    Returns
    -------
    SelectionDecision
        ``decision``, with ``version`` set where a winner was registered.
    """
    from clvlab.data.calibration import calibration_data, load_log
    from clvlab.data.rfm_rules import make_settings
    from clvlab.evaluation.candidate_names import make_candidate
    from clvlab.ops.serving import log_clv_model
    from clvlab.ops.tracking import connect

    if decision.winner is None:
        _tag_run(decision)
        return decision
    defaults = {"customer_col": "customer_id", "date_col": "date", "amount_col": None,
                "time_unit": "W", "date_format": None, "timezone": "UTC"}
    settings = make_settings(**{k: options.get(k, v) for k, v in defaults.items()},
                             merge_period=None)
    _, _, ts, _ = load_log(transactions, settings)
    last = ts.max()
    calibration, _ = calibration_data(transactions, last, **options)
    candidate = make_candidate(spec_of(decision.winner)).fit(calibration, horizon)
    if hasattr(candidate, "challenger_"):
        transaction, spend, adjuster = _challenger_parts(candidate, calibration)
    else:
        transaction, spend = candidate.transaction_model_, candidate.spend_model_
        adjuster = getattr(candidate, "adjuster_", None)
    if adjuster is not None and not hasattr(adjuster, "candidate_name_"):
        # the deployed adjuster corrects the refitted model, as the candidate's predictions did
        adjuster = copy.copy(adjuster)
        adjuster.base_model_ = transaction
    rule = decision.rule
    tags = {**decision.tags(), "clvlab.selection.fitted_to": str(last.date()),
            **({"clvlab.experiment_file": Path(experiment_file).name} if experiment_file else {})}
    info = log_clv_model(transaction, spend, adjuster, registered_model_name=rule.registered_model,
                         alias="challenger", tags=tags,
                         attributes=options.get("customer_attributes"))
    decision.version = str(info.registered_model_version)
    client = connect().MlflowClient()
    for key, value in {**decision.tags(), "clvlab.selection.fitted_to": str(last.date())}.items():
        client.set_model_version_tag(rule.registered_model, decision.version, key, value)
    if decision.promoted:
        client.set_registered_model_alias(rule.registered_model, "champion", decision.version)
        if decision.backtest_run:
            client.set_model_version_tag(rule.registered_model, decision.version,
                                         "clvlab.promoted_on_backtest", decision.backtest_run)
            client.set_model_version_tag(rule.registered_model, decision.version,
                                         "clvlab.promoted_on_candidate", decision.winner)
    _tag_run(decision)
    return decision


def _challenger_parts(candidate, calibration):
    """A challenger's CLV model: its BTYD model (``"gbm"``'s offset model, refitted on the whole
    log; for ``"ziln"`` a Pareto/NBD fitted there, which gives p_alive and the purchases'
    timing), Gamma-Gamma when the log has amounts (the spend per purchase), and the challenger
    in the adjuster's place (:class:`clvlab.churn.ChallengerAdjustment`)."""
    from clvlab.churn import ChallengerAdjustment
    from clvlab.models.gamma_gamma import GammaGamma
    from clvlab.models.pareto_nbd import ParetoNBD

    rfm = calibration.rfm
    transaction = candidate.base_model_ or ParetoNBD().fit(rfm)
    spend = None
    if calibration.has_amounts:
        valued = (rfm["frequency"] > 0) & (rfm["monetary_value"] > 0)
        spend = GammaGamma().fit(rfm[valued])
    return transaction, spend, ChallengerAdjustment(candidate.challenger_, transaction,
                                                    candidate.name)


def _tag_run(decision: SelectionDecision) -> None:
    """The decision on the backtest run too, where ``clvlab compare`` reads it."""
    if not decision.backtest_run:
        return
    from clvlab.ops.tracking import connect

    client = connect().MlflowClient()
    for key, value in decision.tags().items():
        client.set_tag(decision.backtest_run, key, value)


def decisions(experiment: str) -> pd.DataFrame:
    """Every selection an experiment's runs made, newest first: the run, the rule, the winner
    and the champion with their scores, the decision and its reason, and the version
    registered (what ``clvlab compare`` prints under the leaderboard). Empty when no run of
    the experiment had a ``[selection]`` rule.

    Parameters
    ----------
    experiment : str
        The MLflow experiment's name.

    Returns
    -------
    pandas.DataFrame
        Columns ``run``, ``started``, ``rule``, ``winner``, ``winner_score``, ``champion``,
        ``champion_score``, ``decision``, ``version``, ``reason``.

    Raises
    ------
    ClvlabError
        Where there is no such experiment.
    """
    from clvlab.ops.tracking import connect

    mlflow = connect()
    if mlflow.get_experiment_by_name(experiment) is None:
        raise ClvlabError(f"no MLflow experiment named {experiment!r}")
    runs = mlflow.search_runs(experiment_names=[experiment],
                              filter_string="tags.`clvlab.kind` = 'backtest'")
    column = "tags.clvlab.selection.decision"
    if runs.empty or column not in runs:
        return pd.DataFrame(columns=["run", "started", "rule", "winner", "winner_score",
                                     "champion", "champion_score", "decision", "version", "reason"])
    runs = runs[runs[column].notna()].sort_values("start_time", ascending=False)
    rows = []
    for _, run in runs.iterrows():
        tag = lambda key: run.get(f"tags.clvlab.selection.{key}") or ""  # noqa: E731
        try:
            rule = SelectionRule(**json.loads(tag("rule")))
            described = f"{rule.column} (margin {rule.margin:g}) -> {rule.registered_model}"
        except (TypeError, ValueError):
            described = tag("rule")
        rows.append({"run": run.get("tags.mlflow.runName", run["run_id"]),
                     "started": run["start_time"], "rule": described, "winner": tag("winner"),
                     "winner_score": pd.to_numeric(tag("winner_score") or np.nan),
                     "champion": tag("champion"),
                     "champion_score": pd.to_numeric(tag("champion_score") or np.nan),
                     "decision": tag("decision"), "version": tag("version"),
                     "reason": tag("reason")})
    return pd.DataFrame(rows)
