"""The outcome of a backtest: tidy tables, a readable summary and plots."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from clvlab.core.errors import ClvlabError
from clvlab.plotting.diagnostics import axes_or_new
from clvlab.evaluation.metrics import describe_better, ranking_key

__all__ = ["BacktestResult"]

HEADLINE = [("purchases", "mae"), ("purchases", "rmse"), ("purchases", "bias"),
            ("purchases", "aggregate_pct_error"), ("spend", "mae"), ("spend", "aggregate_pct_error"),
            ("spend", "normalized_gini"), ("spend", "top_decile_capture"), ("spend", "spearman"),
            ("activity", "auc"), ("activity", "brier"),
            # the predictive distribution's (candidates with one; n/a for the baselines)
            ("purchases", "coverage_90"), ("purchases", "log_score"),
            ("purchases", "total_coverage_90")]


@dataclass
class BacktestResult:
    """Tables of a backtest (every one tidy, one row per observation).

    ``metrics``: cutoff x cohort (``"all"`` or an acquisition cohort) x candidate x target
    (purchases, spend, activity) x metric, with the number of customers. A metric that is
    undefined on the data (Spearman of a constant prediction, AUC with one class) has no row.
    ``by_frequency``: mean predicted and actual holdout purchases by calibration frequency.
    ``tracking``: cumulative holdout purchases, expected and actual, over the window.
    ``cohorts``: realised and predicted value per acquisition cohort (and LTV:CAC); without
    amounts only the customers (value is unknown, so its columns are absent, not 0).
    ``predictions``: every customer's predictions and outcomes (``keep_predictions=True``).
    :meth:`save` and :meth:`load` keep a result in a folder without MLflow.

    Parameters
    ----------
    metrics : pandas.DataFrame
        Columns ``cutoff``, ``cohort``, ``candidate``, ``target``, ``metric``, ``value`` and the
        number of customers.
    by_frequency : pandas.DataFrame
        Mean predicted and actual holdout purchases by calibration frequency, per cutoff and
        candidate.
    tracking : pandas.DataFrame
        Cumulative holdout purchases, expected and actual, per cutoff, candidate and time.
    cohorts : pandas.DataFrame
        Realised and predicted value per acquisition cohort.
    predictions : pandas.DataFrame or None
        Every customer's predictions and outcomes, or None (``keep_predictions=False``).
    settings : dict, optional
        The backtest's settings (cutoffs, horizon, time unit, candidates, failures...).
    """

    metrics: pd.DataFrame
    by_frequency: pd.DataFrame
    tracking: pd.DataFrame
    cohorts: pd.DataFrame
    predictions: pd.DataFrame | None
    settings: dict[str, Any] = field(default_factory=dict)

    def save(self, folder, *, overwrite: bool = False):
        """Save the tables (Parquet) and settings (JSON) in a folder, without MLflow.

        Parameters
        ----------
        folder : path of the folder to create.
        overwrite : replace an existing saved backtest there (other folders are never replaced).

        Returns
        -------
        pathlib.Path
            The folder. It is written beside its place and renamed into it, so it is never
            left half-written.
        """
        from clvlab.evaluation.result_io import save_result

        return save_result(self, folder, overwrite=overwrite)

    @classmethod
    def load(cls, folder) -> "BacktestResult":
        """A result saved by :meth:`save`, with every table and setting as it was.

        Parameters
        ----------
        folder : the folder :meth:`save` wrote.

        Returns
        -------
        BacktestResult
        """
        from clvlab.evaluation.result_io import load_result

        tables, settings = load_result(folder)
        return cls(**tables, settings=settings)

    def summary(self, cohort: str = "all") -> pd.DataFrame:
        """Candidates x (target, metric), averaged over the cutoffs. A cell is NaN only where the
        metric is undefined for that candidate (e.g. Spearman of a constant prediction).

        Parameters
        ----------
        cohort : str, default "all"
            ``"all"`` or an acquisition cohort of the ``metrics`` table.

        Returns
        -------
        pandas.DataFrame
            One row per candidate, columns (target, metric), the headline metrics first.

        Raises
        ------
        ClvlabError
            Where the cohort has no metrics.
        """
        rows = self.metrics[self.metrics["cohort"] == cohort]
        if rows.empty:
            raise ClvlabError(f"no metrics for cohort {cohort!r}")
        table = rows.pivot_table(index="candidate", columns=["target", "metric"], values="value",
                                 aggfunc="mean", sort=False)
        order = [c for c in HEADLINE if c in table.columns]
        rest = [c for c in table.columns if c not in order]
        return table[order + rest]

    def per_cutoff(self, target: str, metric: str, cohort: str = "all") -> pd.DataFrame:
        """One metric as cutoffs x candidates.

        Parameters
        ----------
        target : str
            ``"purchases"``, ``"spend"`` or ``"activity"``.
        metric : str
            A metric of that target (``"mae"``, ``"auc"``...).
        cohort : str, default "all"
            ``"all"`` or an acquisition cohort.

        Returns
        -------
        pandas.DataFrame
            Cutoffs x candidates.

        Raises
        ------
        ClvlabError
            Where the backtest has no such metric.
        """
        rows = self.metrics[(self.metrics["cohort"] == cohort) & (self.metrics["target"] == target)
                            & (self.metrics["metric"] == metric)]
        if rows.empty:
            raise ClvlabError(f"no {target} {metric} in this backtest")
        return rows.pivot(index="cutoff", columns="candidate", values="value")

    def best(self, target: str, metric: str) -> str:
        """The candidate with the best mean of one metric over the cutoffs (all customers).

        Parameters
        ----------
        target : str
            ``"purchases"``, ``"spend"`` or ``"activity"``.
        metric : str
            A metric of that target; "best" follows the metric's own direction.

        Returns
        -------
        str
            The candidate's name.

        Raises
        ------
        ClvlabError
            Where the backtest has no such metric.
        """
        return str(_shortfall(self.per_cutoff(target, metric).mean(), metric).idxmin())

    def __repr__(self) -> str:
        settings = self.settings
        horizon = settings.get("horizon")
        horizon = "n/a" if horizon is None else f"{horizon:g} {settings.get('time_unit') or ''}".strip()
        cutoffs = [str(c)[:10] if str(c).endswith("00:00:00") or len(str(c)) <= 10 else str(c)
                   for c in settings.get("cutoffs", [])]
        shown = ", ".join(cutoffs) if len(cutoffs) <= 6 else \
            f"{', '.join(cutoffs[:3])}, ..., {cutoffs[-1]}"
        head = (f"Backtest: {len(cutoffs)} cutoffs ({shown}), horizon {horizon}, "
                f"{len(settings.get('candidates', []))} candidates (means over cutoffs, all customers)")
        with pd.option_context("display.width", 200, "display.max_columns", 20,
                               "display.float_format", "{:.4g}".format):
            return (head + "\n" + self._headline().to_string(na_rep="n/a")
                    + self._winners_text() + self._failures_text())

    def winners(self) -> pd.DataFrame:
        """The best candidate on each headline metric (means over the cutoffs, all
        customers), by the metric's own direction (``describe_better``): one row per metric
        with ``best``, its ``value`` and ``direction``; candidates without the metric (n/a)
        take no part.

        Returns
        -------
        pandas.DataFrame
            Columns ``target``, ``metric``, ``best``, ``value``, ``direction``.
        """
        return _winners_of(self.summary())

    def _winners_text(self) -> str:
        """Who wins each metric, one line per candidate that wins any."""
        table = self.summary()
        won = _winners_of(table)
        if won.empty or table.shape[0] < 2:
            return ""
        lines = [f"  {best}: " + ", ".join(f"{r.target} {r.metric}" for r in group.itertuples())
                 for best, group in won.groupby("best", sort=False)]
        return "\nbest on each metric:\n" + "\n".join(lines)

    def _failures_text(self) -> str:
        """The candidates that refused the data at a cutoff: their means cover the others."""
        failures = self.settings.get("failures") or []
        if not failures:
            return ""
        lines = [f"failed: {f['candidate']} at cutoff {f['cutoff']}: {f['error']}" for f in failures]
        return ("\n" + "\n".join(lines) + "\n(a candidate's means cover only the cutoffs where "
                "it ran)")

    def _headline(self) -> pd.DataFrame:
        """The summary's headline metrics, with flat column names (e.g. ``purchases mae``)."""
        table = self.summary()
        table = table[[c for c in HEADLINE if c in table.columns]]
        table.columns = [f"{target} {metric}".replace("aggregate_pct_error", "agg %err")
                         .replace("normalized_gini", "gini").replace("top_decile_capture", "top10%")
                         .replace("total_coverage_90", "total cov90").replace("coverage_90", "cov90")
                         .replace("log_score", "log score")
                         for target, metric in table.columns]
        return table

    def _repr_html_(self) -> str:
        import html

        failures = self._failures_text().strip()
        return ("<p>" + repr(self).splitlines()[0] + "</p>"
                + self._headline().to_html(float_format="{:.4g}".format, na_rep="n/a")
                + ("<pre>" + html.escape(failures) + "</pre>" if failures else ""))

    # plots ------------------------------------------------------------------------------------

    def _cutoff(self, cutoff: str | None) -> str:
        cutoffs = list(self.tracking["cutoff"].unique())
        if cutoff is None:
            return cutoffs[-1]
        if cutoff not in cutoffs:
            raise ClvlabError(f"cutoff {cutoff!r} is not in this backtest; it has {cutoffs}")
        return cutoff

    def plot_tracking(self, cutoff: str | None = None, candidates=None, ax=None):
        """Cumulative holdout purchases after a cutoff: actual against each candidate's expected.

        Parameters
        ----------
        cutoff : str, optional
            One of the backtest's cutoffs; None: the last.
        candidates : list of str, optional
            The candidates to draw; None: all.
        ax : matplotlib.axes.Axes, optional
            The axes to draw on; None: new ones.

        Returns
        -------
        matplotlib.axes.Axes
            The axes drawn on.

        Raises
        ------
        ClvlabError
            Where the cutoff is not one of the backtest's.
        """
        ax = axes_or_new(ax)
        cutoff = self._cutoff(cutoff)
        rows = self.tracking[self.tracking["cutoff"] == cutoff]
        _actual_against_candidates(ax, rows, candidates, lambda part: np.r_[0, part["t"]],
                                   lambda part: np.r_[0, part["actual"]],
                                   lambda part: np.r_[0, part["expected"]])
        ax.set_xlabel(f"time after the cutoff ({self.settings.get('time_unit', '')})")
        ax.set_ylabel("cumulative repeat purchases")
        ax.set_title(f"Tracking after {cutoff}")
        ax.legend(fontsize="small")
        return ax

    def plot_conditional_expectations(self, cutoff: str | None = None, candidates=None, ax=None):
        """Mean holdout purchases by calibration frequency: actual against each candidate.

        Parameters
        ----------
        cutoff : str, optional
            One of the backtest's cutoffs; None: the last.
        candidates : list of str, optional
            The candidates to draw; None: all.
        ax : matplotlib.axes.Axes, optional
            The axes to draw on; None: new ones.

        Returns
        -------
        matplotlib.axes.Axes
            The axes drawn on.

        Raises
        ------
        ClvlabError
            Where the cutoff is not one of the backtest's.
        """
        ax = axes_or_new(ax)
        cutoff = self._cutoff(cutoff)
        rows = self.by_frequency[self.by_frequency["cutoff"] == cutoff]
        labels = rows["calibration_frequency"].unique()
        positions = np.arange(len(labels))
        _actual_against_candidates(ax, rows, candidates, lambda part: positions,
                                   lambda part: part["actual"], lambda part: part["predicted"],
                                   marker=".")
        ax.set_xticks(positions, labels)
        ax.set_xlabel("repeat purchases in calibration")
        ax.set_ylabel("mean holdout purchases")
        ax.set_title(f"Conditional expectations, cutoff {cutoff}")
        ax.legend(fontsize="small")
        return ax

    def plot_comparison(self, target: str = "activity", metric: str = "auc", cohort: str = "all",
                        ax=None):
        """One metric for every candidate: a bar for its mean over the cutoffs, best at the top,
        and a dot for each cutoff (the spread shows whether a lead holds at every cutoff).

        Parameters
        ----------
        target : str, default "activity"
            ``"purchases"``, ``"spend"`` or ``"activity"``.
        metric : str, default "auc"
            A metric of that target.
        cohort : str, default "all"
            ``"all"`` or an acquisition cohort.
        ax : matplotlib.axes.Axes, optional
            The axes to draw on; None: new ones.

        Returns
        -------
        matplotlib.axes.Axes
            The axes drawn on.

        Raises
        ------
        ClvlabError
            Where the backtest has no such metric.
        """
        table = self.per_cutoff(target, metric, cohort)
        means = table.mean()
        order = _shortfall(means, metric).sort_values(ascending=False).index  # best last: on top
        ax = axes_or_new(ax, size=(7, 0.45 * len(order) + 1.5))
        position = np.arange(len(order))
        ax.barh(position, means[order], color="#9ecae1", label="mean over cutoffs")
        markers = "os^Dv<>p"
        for i, cutoff in enumerate(table.index):
            ax.plot(table.loc[cutoff, order], position, ls="none", marker=markers[i % len(markers)],
                    color="black", ms=4, label=f"cutoff {cutoff}")
        ax.set_yticks(position, list(order), fontsize="small")
        better = describe_better(metric)
        ax.set_xlabel(f"{target} {metric} ({better}; best at the top)")
        ax.set_title(f"Backtest: {target} {metric}" + ("" if cohort == "all" else f", cohort {cohort}"))
        if better == describe_better("bias"):  # a signed error: 0 is the mark to read from
            ax.axvline(0, color="grey", lw=0.8)
        if metric == "auc":  # 0.5 is a coin flip: start there so that differences show
            ax.set_xlim(min(0.5, float(np.nanmin(table.to_numpy())) - 0.02), 1.0)
        ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
        return ax

    def plot_deciles(self, candidate: str, cutoff: str | None = None, target: str = "spend", ax=None):
        """Customers in deciles of one candidate's prediction: mean predicted against actual.

        Parameters
        ----------
        candidate : str
            The candidate whose prediction makes the deciles.
        cutoff : str, optional
            One of the backtest's cutoffs; None: the last.
        target : {"spend", "purchases"}, default "spend"
            What is predicted and compared.
        ax : matplotlib.axes.Axes, optional
            The axes to draw on; None: new ones.

        Returns
        -------
        matplotlib.axes.Axes
            The axes drawn on.

        Raises
        ------
        ClvlabError
            Where the backtest kept no predictions (``keep_predictions=True``), or has none of that
            candidate at the cutoff, or the candidate does not predict the target.
        """
        if self.predictions is None:
            raise ClvlabError("the decile chart needs the backtest run with keep_predictions=True")
        ax = axes_or_new(ax)
        cutoff = self._cutoff(cutoff)
        rows = self.predictions[(self.predictions["cutoff"] == cutoff)
                                & (self.predictions["candidate"] == candidate)]
        if rows.empty:
            raise ClvlabError(f"no predictions of {candidate!r} at {cutoff}")
        column = {"spend": "expected_spend", "purchases": "expected_purchases"}[target]
        if column not in rows:
            raise ClvlabError(f"{candidate!r} does not predict {target}")
        order = np.argsort(-rows[column].to_numpy(), kind="stable")
        decile = np.empty(len(rows), dtype=np.int64)
        decile[order] = np.arange(len(rows)) * 10 // len(rows) + 1
        table = pd.DataFrame({"decile": decile, "predicted": rows[column].to_numpy(),
                              "actual": rows[f"actual_{target}"].to_numpy()}).groupby("decile").mean()
        width = 0.4
        ax.bar(table.index - width / 2, table["predicted"], width, label="predicted")
        ax.bar(table.index + width / 2, table["actual"], width, label="actual")
        ax.set_xticks(table.index)
        ax.set_xlabel(f"decile of predicted {target} (1 = highest)")
        ax.set_ylabel(f"mean holdout {target} per customer")
        ax.set_title(f"{candidate}, cutoff {cutoff}")
        ax.legend(fontsize="small")
        return ax


def _shortfall(means: pd.Series, metric: str) -> pd.Series:
    """Candidates' mean metric turned so that smaller is better (the best is its minimum)."""
    return ranking_key(metric)(means)


def _actual_against_candidates(ax, rows, candidates, x, actual, predicted, marker=None) -> None:
    """The actual curve in black, then each candidate's dashed; x, actual and predicted take
    one candidate's rows."""
    names = candidates or list(rows["candidate"].unique())
    first = rows[rows["candidate"] == names[0]]
    ax.plot(x(first), actual(first), color="black", lw=2, marker="o" if marker else None,
            label="actual")
    for name in names:
        part = rows[rows["candidate"] == name]
        ax.plot(x(part), predicted(part), lw=1.2, ls="--", marker=marker, label=name)


def _winners_of(table: pd.DataFrame) -> pd.DataFrame:
    """BacktestResult.winners of a summary table (computed once by the caller)."""
    rows = []
    for target, metric in [c for c in HEADLINE if c in table.columns]:
        values = table[(target, metric)].dropna()
        if values.empty:
            continue
        best = ranking_key(metric)(values).idxmin()
        rows.append({"target": target, "metric": metric, "best": best,
                     "value": float(values[best]), "direction": describe_better(metric)})
    return pd.DataFrame(rows, columns=["target", "metric", "best", "value", "direction"])
