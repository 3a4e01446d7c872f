"""Monitoring a champion: do its forecasts come true, and is it time to retrain?

``monitor(scores, transactions, as_of)`` takes a scoring output (``clvlab score``'s Parquet or
CSV) and the transaction log up to ``as_of``, and compares what the scored customers did
between the scoring date and ``as_of`` with what the model that scored them expects over that
elapsed window. The model and its version, the scoring date, horizon and time unit come from
the file's record and its scoring run (:mod:`clvlab.ops.monitoring_runs`). The expectation
for an elapsed window shorter (or longer) than the scoring horizon is the registered model's
own prediction for that length, from each customer's RFM at the scoring date: nothing is
pro-rated. Figures (:mod:`clvlab.ops.monitoring_metrics`):

- realised against expected repeat purchases and spend over the window: totals, aggregate %
  error (100 (expected - realised) / realised), per-customer MAE;
- the tracking curve: cumulative repeat purchases since the scoring date, per time unit,
  with the central predictive band of the expected total (process noise and parameter
  uncertainty: :func:`clvlab.models.totals.cumulative_purchase_fan`), and the same band
  for spend (:func:`clvlab.models.totals.revenue_totals`) at ``as_of``;
- AUC and Brier score of P(any purchase in the window), and its calibration by decile;
- interval coverage when the scores hold intervals (at their level, over the window);
- input drift: the population stability index (PSI) of each RFM column of the table at
  ``as_of`` against the model's training profile (the decile bins of the table it was fitted
  on, saved with the model), or against the scored customers' RFM at the scoring date for a
  model saved without one (the result says which); and the share of customers at ``as_of``
  who were not scored (new).

A champion whose scores come through a churn adjuster or a challenger: the adjuster was
trained for its horizon and predicts no other window, so the purchase process (the tracking
curve and its bands, coverage, drift) is monitored through the transaction model it adjusts,
and when the elapsed window is the horizon, purchases' MAE and aggregate error, AUC, Brier
score and calibration are those of the adjusted scores (the base model's beside them as
``base_*``); before it, every figure is the base model's, and a note says so.

Verdict (``fine``, ``watch``, ``retrain``; every crossing is a reason, every figure that
could not be computed is listed as not checked). Defaults (:class:`Thresholds`):

- ``retrain`` when realised cumulative repeat purchases (or spend) at ``as_of`` lie outside
  the central 99.9 % predictive band of the expected total (``band_retrain``); ``watch``
  outside the 99 % band (``band_watch``);
- ``watch`` when AUC < 0.60 (``auc_watch``), the calibration error (customer-weighted mean
  ``|observed - predicted|`` over the deciles) > 0.05 (``calibration_watch``), coverage below the
  intervals' level by more than 0.05 (``coverage_shortfall``), PSI > 0.25 in a column of
  ``psi_columns`` (frequency, monetary_value), or more than 25 % of the customers at
  ``as_of`` new (``new_customers_watch``: a policy, not from the study: the scores are stale).

The simulation study behind them::

    .venv/bin/python benchmarks/bench_monitoring.py --replications 50 --output study.csv

50 replications a scenario (the one log whose Pareto/NBD fit ran past 60 s skipped: 49
used), 2,000 customers with CDNOW's Pareto/NBD and Gamma-Gamma parameters acquired over 13
weeks, fitted and scored at week 39 (26-week horizon, 90 % intervals), monitored 8 times in
the next 26 weeks with 100 parameter draws (about 75 minutes on the shared 2-core machine):

- no drift (weeks 1, 2, 3, 4, 6, 8, 13, 26): 8.2 % of runs said watch or retrain at some check
  and 2.0 % retrain (1.3 % and 0.3 % of checks), all from the bands: the purchases band was
  crossed in 0.5 % of checks, spend's in 1.5 % (its gamma tail is a little thin for a week or
  two of purchases; the one retrain was spend at week 1). With 95/99 % bands it was 14.3 %
  and 8.2 % of runs, which is why the defaults are 99/99.9 %.
- purchase rate halved at the scoring date: retrain within 2 weeks in every run (median 1,
  mean 1.4; 59 % at week 1, 100 % at week 2); 95/99 % bands: median 1, max 2.
- halved 8 weeks after it (diluted by 8 normal weeks; weeks 9-26): retrain a median 6 weeks
  after the change (mean 7.1, 90th percentile 13), watch a median 4 (90th percentile 8); 96 %
  said retrain within 18 weeks. 95/99 % bands: retrain a median 4 weeks after (90th 8).
- the other figures without drift: calibration error at most 0.045 (99th percentile 0.028),
  hence 0.05 (it grows with a halved rate: median 0.034 over the checks, 0.05 by week 13,
  and its noise grows as 1/sqrt(customers per decile): raise it for bases far below 2,000);
  AUC at least 0.76 and not lowered by the drift (ranking survives a uniform change), so
  0.60 is a floor for a broken ranking, not a detector; coverage of 90 % intervals at least
  0.957 (a discrete count over-covers), so a shortfall of 0.05 never fired; PSI of frequency
  at most 0.037 and of monetary_value 0.012 (0.25, the convention, never fired), while recency
  reached 0.196 and T exceeded 0.25 in 88 % of checks with no drift at all: they grow with
  the customers' age, so they are reported and not checked by default.

Exit codes of ``clvlab monitor`` (:data:`VERDICT_EXIT_CODES`): 0 fine, 3 watch, 4 retrain
(the command line's errors are 1, its usage errors 2).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np
import pandas as pd

from clvlab.core.errors import ClvlabError
from clvlab.data.tables import accepts_tables

__all__ = ["monitor", "monitor_forecasts", "MonitoringResult", "Thresholds", "decide",
           "VERDICT_EXIT_CODES", "VERDICTS", "BAND_DRAWS", "BAND_POINTS"]

VERDICTS = ("fine", "watch", "retrain")
#: ``clvlab monitor``'s exit status per verdict (its errors are 1, usage errors 2).
VERDICT_EXIT_CODES = {"fine": 0, "watch": 3, "retrain": 4}
#: Parameter draws behind the predictive bands, and the points of the tracking curve that get one.
BAND_DRAWS, BAND_POINTS = 100, 6


@dataclass(frozen=True)
class Thresholds:
    """When a monitored figure makes the verdict ``watch`` or ``retrain`` (module docstring).

    The fields are its attributes too.

    Parameters
    ----------
    band_watch, band_retrain : float, default 0.99, 0.999
        Levels of the central predictive band of the expected total
        (repeat purchases; spend when the model values them) that the realised total must lie
        in: outside the ``band_watch`` band is ``watch``, outside the ``band_retrain`` band
        ``retrain``.
    auc_watch : float, default 0.60
        ``watch`` when the AUC of P(any purchase) against activity is below it.
    calibration_watch : float, default 0.05
        ``watch`` when the calibration error exceeds it.
    coverage_shortfall : float, default 0.05
        ``watch`` when interval coverage is below its level by more than it.
    psi_watch : float, default 0.25
        ``watch`` when the PSI of one of ``psi_columns`` exceeds it.
    psi_columns : tuple of str, default ("frequency", "monetary_value")
        The RFM columns whose PSI the verdict checks.
    new_customers_watch : float, default 0.25
        ``watch`` when the share of customers at ``as_of`` not scored exceeds it.
    """

    band_watch: float = 0.99
    band_retrain: float = 0.999
    auc_watch: float = 0.60
    calibration_watch: float = 0.05
    coverage_shortfall: float = 0.05
    psi_watch: float = 0.25
    psi_columns: tuple[str, ...] = ("frequency", "monetary_value")
    new_customers_watch: float = 0.25

    @classmethod
    def of(cls, given: Any) -> "Thresholds":
        """Thresholds from None (the defaults), a Thresholds, or a dict of some of them.

        Parameters
        ----------
        given : None, Thresholds or dict
            The thresholds, or some of them by name.

        Returns
        -------
        Thresholds
            Checked.

        Raises
        ------
        ClvlabError
            Where ``given`` is of another type, names an unknown threshold, or a threshold is out of
            range (``band_watch`` must be below ``band_retrain``).
        """
        if given is None:
            given = {}
        if isinstance(given, Thresholds):
            given = asdict(given)
        if not isinstance(given, dict):
            raise ClvlabError(f"thresholds must be a dict such as {{'band_retrain': 0.99}} or a "
                              f"Thresholds, got {type(given).__name__}")
        names = [f.name for f in fields(cls)]
        unknown = sorted(set(given) - set(names))
        if unknown:
            raise ClvlabError(f"unknown threshold(s) {unknown}; the thresholds are {names}, e.g. "
                              "thresholds={'band_retrain': 0.99, 'psi_watch': 0.25}")
        values = {k: v for k, v in given.items() if v is not None}
        if isinstance(values.get("psi_columns"), str):
            values["psi_columns"] = tuple(c.strip() for c in values["psi_columns"].split(",") if c.strip())
        out = cls(**values)
        out._check()
        return out

    def _check(self) -> None:
        for name in ("band_watch", "band_retrain", "auc_watch", "calibration_watch",
                     "coverage_shortfall", "psi_watch", "new_customers_watch"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ClvlabError(f"threshold {name} must be a number, e.g. {getattr(Thresholds, name)}; "
                                  f"got {value!r}")
        for name in ("band_watch", "band_retrain"):
            if not 0 < getattr(self, name) < 1:
                raise ClvlabError(f"threshold {name} is a band's level, strictly between 0 and 1 "
                                  f"(e.g. 0.99 for the 99 % band); got {getattr(self, name)!r}")
        from clvlab.models.model_files import PROFILE_COLUMNS

        unknown = [c for c in self.psi_columns if c not in PROFILE_COLUMNS]
        if unknown:
            raise ClvlabError(f"threshold psi_columns (--psi-columns) names {unknown}; the RFM "
                              f"columns with a PSI are {list(PROFILE_COLUMNS)}, e.g. "
                              "'frequency,monetary_value'")
        if self.band_watch >= self.band_retrain:
            raise ClvlabError(f"threshold band_watch ({self.band_watch}) must be below band_retrain "
                              f"({self.band_retrain}): the watch band is the narrower one, e.g. 0.95 "
                              "and 0.99")


def decide(metrics: dict[str, float], thresholds: Thresholds) -> pd.DataFrame:
    """Each check of the verdict: ``check``, ``value``, ``threshold`` (a band's level for the
    band checks), ``rule`` (what passes, in words), ``status`` ("ok", "watch", "retrain" or "not
    checked") and ``reason`` (what crossed which threshold, or why it was not checked).

    Parameters
    ----------
    metrics : dict of str to float
        The monitoring figures.
    thresholds : Thresholds
        The thresholds to apply.

    Returns
    -------
    pandas.DataFrame
        One row per check, the columns above.
    """
    t, rows = thresholds, []
    for what, unit in (("purchases", "repeat purchases"), ("spend", "spend")):
        value = metrics.get(f"{what}_realised", math.nan)
        if f"{what}_expected" not in metrics:
            continue
        bands = {level: (metrics.get(f"{what}_lower_{100 * level:g}", math.nan),
                         metrics.get(f"{what}_upper_{100 * level:g}", math.nan))
                 for level in (t.band_retrain, t.band_watch)}
        status, reason = "ok", ""
        rule = " and ".join(f"in the {100 * level:g}% band [{low:,.0f}, {high:,.0f}]"
                            for level, (low, high) in sorted(bands.items()))
        if not all(np.isfinite([value, *bands[t.band_retrain], *bands[t.band_watch]])):
            status, reason = "not checked", f"the realised {unit} or their predictive band is unknown"
        else:
            for level, verdict in ((t.band_retrain, "retrain"), (t.band_watch, "watch")):
                low, high = bands[level]
                if not low <= value <= high:
                    status = verdict
                    reason = (f"realised {unit} {value:,.0f} lie outside the {100 * level:g}% "
                              f"predictive band [{low:,.0f}, {high:,.0f}] of the expected "
                              f"{metrics[f'{what}_expected']:,.0f} (band_{verdict} {level:g})")
                    break
        rows.append((f"{what}_band", value, t.band_watch, rule, status, reason))
    rows.append(_floor("activity_auc", metrics.get("activity_auc", math.nan), t.auc_watch,
                       "AUC of P(any purchase)", "auc_watch", below=True))
    rows.append(_floor("calibration_error", metrics.get("calibration_error", math.nan),
                       t.calibration_watch, "calibration error of P(any purchase)",
                       "calibration_watch", below=False))
    if "interval_coverage" in metrics:
        level = metrics.get("interval_level", math.nan)
        rows.append(_floor("interval_coverage", metrics["interval_coverage"],
                           level - t.coverage_shortfall, f"coverage of the {100 * level:g}% "
                           "intervals", "coverage_shortfall", below=True))
    for column in t.psi_columns:
        rows.append(_floor(f"psi.{column}", metrics.get(f"psi.{column}", math.nan), t.psi_watch,
                           f"PSI of {column}", "psi_watch", below=False))
    rows.append(_floor("new_customer_share", metrics.get("new_customer_share", math.nan),
                       t.new_customers_watch, "share of customers not scored (new)",
                       "new_customers_watch", below=False))
    return pd.DataFrame(rows, columns=["check", "value", "threshold", "rule", "status", "reason"])


def _floor(check, value, threshold, label, option, below: bool) -> tuple:
    rule = f"{'>=' if below else '<='} {threshold:.3g}"
    if not np.isfinite(value) or not np.isfinite(threshold):
        return (check, value, threshold, rule, "not checked", f"{label} is unknown (NaN)")
    crossed = value < threshold if below else value > threshold
    if not crossed:
        return (check, value, threshold, rule, "ok", "")
    side = "below" if below else "above"
    return (check, value, threshold, rule, "watch",
            f"{label} {value:.3g} is {side} {threshold:.3g} ({option})")


@dataclass
class MonitoringResult:
    """What a monitoring job found: the verdict and its reasons, the figures (``metrics``,
    ``summary()``), the calibration, drift and tracking tables, and where it all came from
    (``info``: the scoring run, model, dates, elapsed window).

    Parameters
    ----------
    verdict : {"fine", "watch", "retrain"}
        The verdict.
    checks : pandas.DataFrame
        Each check of the verdict (:func:`decide`).
    metrics : dict of str to float
        Every figure.
    calibration : pandas.DataFrame
        Predicted against realised activity and purchases, by bin.
    drift : pandas.DataFrame
        The PSI of each RFM column against the model's training profile.
    tracking : pandas.DataFrame
        Cumulative repeat purchases since the scoring date, realised and expected, with bands.
    thresholds : Thresholds
        The thresholds the verdict applied.
    info : dict
        Where it came from: the scoring run, model, dates and elapsed window.
    notes : list of str, optional
        What the figures should be read with.
    run_id : str, optional
        The monitoring run's MLflow id (None when not logged).
    """

    verdict: str
    checks: pd.DataFrame = field(repr=False)
    metrics: dict[str, float] = field(repr=False)
    calibration: pd.DataFrame = field(repr=False)
    drift: pd.DataFrame = field(repr=False)
    tracking: pd.DataFrame = field(repr=False)
    thresholds: Thresholds = field(repr=False)
    info: dict[str, Any] = field(repr=False)
    notes: list[str] = field(repr=False, default_factory=list)
    run_id: str | None = None

    @property
    def reasons(self) -> list[str]:
        """Why the verdict is not ``fine``: each check that crossed its threshold."""
        return [r for r in self.checks.loc[self.checks["status"].isin(["watch", "retrain"]), "reason"]]

    @property
    def not_checked(self) -> list[str]:
        """The checks that could not be made (their figure is NaN), with why."""
        rows = self.checks[self.checks["status"] == "not checked"]
        return [f"{c}: {r}" for c, r in zip(rows["check"], rows["reason"])]

    @property
    def exit_code(self) -> int:
        """``clvlab monitor``'s exit status for this verdict (:data:`VERDICT_EXIT_CODES`)."""
        return VERDICT_EXIT_CODES[self.verdict]

    def summary(self) -> pd.DataFrame:
        """Every figure (index ``metric``): ``value`` and, for those the verdict checks, the
        ``threshold`` and ``status``.

        Returns
        -------
        pandas.DataFrame
            Indexed by ``metric``: ``value``, ``threshold``, ``status``.
        """
        table = pd.DataFrame({"value": pd.Series(self.metrics, dtype=float)})
        checks = self.checks.set_index("check")
        table = table.join(checks[["threshold", "status"]], how="outer")
        table["value"] = table["value"].fillna(checks["value"].astype(float))  # the band checks
        table["status"] = table["status"].fillna("")
        table.index.name = "metric"
        return table

    def to_dict(self) -> dict[str, Any]:
        """The verdict, reasons, figures, thresholds, source and notes (JSON-ready but NaN).

        Returns
        -------
        dict
            ``verdict``, ``reasons``, ``not_checked``, ``metrics``, ``thresholds``, ``info``,
            ``notes``, ``run_id``.
        """
        return {"verdict": self.verdict, "reasons": self.reasons, "not_checked": self.not_checked,
                "metrics": dict(self.metrics), "thresholds": asdict(self.thresholds),
                "info": dict(self.info), "notes": list(self.notes), "run_id": self.run_id}

    def plot_tracking(self, ax=None):
        """:func:`clvlab.plotting.monitoring.plot_monitoring_tracking` of this result.

        Parameters
        ----------
        ax : matplotlib.axes.Axes, optional
            The axes to draw on; None: new ones.

        Returns
        -------
        matplotlib.axes.Axes
            The axes drawn on.
        """
        from clvlab.plotting.monitoring import plot_monitoring_tracking

        return plot_monitoring_tracking(self, ax=ax)

    def plot_drift(self, ax=None):
        """:func:`clvlab.plotting.monitoring.plot_drift` of this result.

        Parameters
        ----------
        ax : matplotlib.axes.Axes, optional
            The axes to draw on; None: new ones.

        Returns
        -------
        matplotlib.axes.Axes
            The axes drawn on.
        """
        from clvlab.plotting.monitoring import plot_drift

        return plot_drift(self, ax=ax)

    def __repr__(self) -> str:
        i = self.info
        head = (f"<MonitoringResult: {self.verdict.upper()}: {i.get('model_uri')} scored "
                f"{str(i.get('scored_as_of'))[:10]}, monitored to {str(i.get('as_of'))[:10]} "
                f"({i.get('elapsed', math.nan):.4g} {i.get('time_unit')}), "
                f"{int(self.metrics.get('customers_monitored', 0)):,} customers")
        lines = [head + (f", run {self.run_id}" if self.run_id else "") + ">"]
        lines += [f"  {reason}" for reason in self.reasons]
        if self.not_checked:
            lines.append(f"  not checked: {'; '.join(self.not_checked)}")
        return "\n".join(lines)


@accepts_tables("transactions", keyed=("scores",), customer_col="customer_col")
def monitor(scores: Any, transactions: Any, as_of: Any, *, model_uri: str | None = None,
            scored_as_of: Any = None, thresholds: Any = None,
            experiment: str | None = "clvlab-monitoring", log: bool = True,
            band_draws: int = BAND_DRAWS, band_points: int = BAND_POINTS, seed: int = 0,
            customer_col: str | None = None, **log_options: Any) -> MonitoringResult:
    """Monitor the forecasts of a scoring job at ``as_of`` (module docstring), and log it.

    Parameters
    ----------
    scores : str or Path
        A scoring output written by ``clvlab score`` (Parquet or CSV).
    transactions : str, Path, list or DataFrame
        The transaction log up to (at least) ``as_of``, as the scoring job read it.
    as_of : date
        The monitored date: purchases after the scoring date up to it are the realised ones.
    model_uri : str, optional
        The model that made the scores, when neither the file nor a scoring run records it;
        otherwise it must name the recorded version (a model alias is resolved to the version
        that scored, not to where the alias points now).
    scored_as_of : date, optional
        The scoring date, when nothing records it.
    thresholds : dict or Thresholds, optional
        Overrides of :class:`Thresholds`' defaults.
    experiment, log : the MLflow experiment of the monitoring run; ``log=False`` logs nothing.
    band_draws, band_points, seed : parameter draws behind the predictive bands, the points of
        the tracking curve that get a band (the last always does) and the draws' seed.
    customer_col : the log's id column (default: the scoring's, else ``customer_id``).
    **log_options : ``date_col``, ``amount_col`` (default "amount", used when the log has it),
        ``date_format``, ``timezone``, ``consent_col``, ``withdrawn``, ``delimiter``, ``decimal``:
        as in :func:`clvlab.ops.scoring.score`; ``allow_quiet_end``: accept a log whose last
        purchase is longer before ``as_of`` than any quiet spell since the scoring date (by
        default refused as cut short: its missing purchases would read as a failed forecast).

    Returns
    -------
    MonitoringResult
        With ``run_id`` the monitoring run's (None when ``log=False``).

    Raises
    ------
    ClvlabError
        For a file or model that cannot be found or read, dates out of order, a log that stops
        before ``as_of``, a model this job cannot re-predict (covariates), and bad options.
    """
    from clvlab.ops import monitoring_runs as runs
    from clvlab.ops.serving import load_clv_model
    from clvlab.ops.tracking import connect

    mlflow = connect()
    source = runs.find_scoring_source(mlflow, scores)
    uri = runs.pinned_model_uri(mlflow, source, model_uri)
    if source.as_of is None and scored_as_of is None:
        raise ClvlabError(f"nothing records the date {scores} were scored as of; give it, e.g. "
                          "scored_as_of='2024-06-30' (--scored-as-of 2024-06-30)")
    if source.as_of is not None and scored_as_of is not None and \
            pd.Timestamp(str(scored_as_of)) != pd.Timestamp(str(source.as_of)):
        raise ClvlabError(f"scored_as_of {scored_as_of!r} (--scored-as-of) contradicts the scoring "
                          f"date recorded for {scores} ({source.as_of}); leave it out")
    model = load_clv_model(uri)
    result = monitor_forecasts(
        model, runs.read_scores(scores), transactions, source.as_of or scored_as_of, as_of,
        time_unit=source.time_unit, horizon=source.horizon, interval_level=source.interval_level,
        quantiles=source.quantiles, thresholds=thresholds, band_draws=band_draws,
        band_points=band_points, seed=seed,
        customer_col=customer_col or source.customer_col or "customer_id", **log_options)
    result.info.update(scores=str(scores), scoring_run_id=source.run_id, model_uri=uri,
                       model_version=source.model_version, found_by=source.found_by)
    if source.run_id is None:
        result.notes.append("no scoring run was found for these scores; the monitoring run is "
                            "linked to the model only")
    if log:
        result.run_id = runs.log_monitoring_run(mlflow, result, experiment or "clvlab-monitoring")
    return result


@accepts_tables("transactions", keyed=("scores",))
def monitor_forecasts(model, scores: pd.DataFrame, transactions: Any, scored_as_of: Any,
                      as_of: Any, *, time_unit: str | None = None, horizon: float | None = None,
                      interval_level: float | None = None, quantiles: Any = None,
                      thresholds: Any = None, band_draws: int = BAND_DRAWS,
                      band_points: int = BAND_POINTS, seed: int = 0, band_levels: Any = (),
                      **log_options: Any) -> MonitoringResult:
    """The monitoring figures and verdict without MLflow: ``model`` (a
    :class:`clvlab.ops.serving.CLVModel`, or a transaction model) made ``scores`` (a table
    indexed by customer id, or a scoring output's path) as of ``scored_as_of``; the rest as
    :func:`monitor`; ``band_levels`` adds bands at other levels to the figures (the study
    computes several, to try other thresholds). What :func:`monitor` and the study call.

    Parameters
    ----------
    model : CLVModel or transaction model
        The model that made ``scores``.
    scores : pandas.DataFrame or str or pathlib.Path
        The scores, indexed by customer id, or a scoring output's path.
    transactions : pandas.DataFrame, path, glob or list of paths
        The transaction log up to (at least) ``as_of``.
    scored_as_of : str or datetime
        The scoring date.
    as_of : str or datetime
        The monitored date.
    time_unit : str, optional
        The model's time unit, where the model records none.
    horizon : float, optional
        The scoring horizon, in the time unit (None: unknown).
    interval_level : float, optional
        The level of the scores' prediction intervals, whose coverage is checked.
    quantiles : sequence of float, optional
        The levels of the scores' quantile columns, whose coverage is checked.
    thresholds : dict or Thresholds, optional
        Overrides of :class:`Thresholds`' defaults.
    band_draws : int, default BAND_DRAWS (100)
        Parameter draws behind the predictive bands.
    band_points : int, default BAND_POINTS (6)
        Points of the tracking curve that get a band.
    seed : int, default 0
        The draws' seed.
    band_levels : sequence of float, default ()
        Further band levels to compute.
    **log_options
        The log's options, as :func:`monitor`'s.

    Returns
    -------
    MonitoringResult
        With ``run_id`` None.

    Raises
    ------
    ClvlabError
        For bad thresholds or options, a model without a time unit, or a log that stops before
        ``as_of``.
    """
    from clvlab.ops.monitoring_data import observe
    from clvlab.ops.monitoring_runs import read_scores

    if not isinstance(scores, pd.DataFrame):
        scores = read_scores(scores)

    limits = Thresholds.of(thresholds)
    levels = sorted({limits.band_watch, limits.band_retrain, *map(float, band_levels)})
    observed = observe(model, scores, transactions, scored_as_of, as_of, time_unit=time_unit,
                       horizon=horizon, interval_level=interval_level, quantiles=quantiles,
                       levels=tuple(levels), band_draws=band_draws,
                       band_points=band_points, seed=seed, **log_options)
    checks = decide(observed.metrics, limits)
    observed.drift["checked"] = observed.drift["column"].isin(limits.psi_columns)
    status = set(checks["status"])
    verdict = "retrain" if "retrain" in status else "watch" if "watch" in status else "fine"
    return MonitoringResult(verdict, checks, observed.metrics, observed.calibration,
                            observed.drift, observed.tracking, limits, observed.info,
                            observed.notes)
