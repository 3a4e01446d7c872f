"""Rolling-origin backtests: fit at each cutoff, predict the holdout window, compare."""

from __future__ import annotations

import copy
import math
import time
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from clvlab.core.errors import ClvlabError, ClvlabWarning, shown, warn
from clvlab.core.progress import progress_bar
from clvlab.core.timeunits import UNIT_SECONDS
from clvlab.data.calibration import (CutoffView, check_cutoffs, checked_horizon, load_log,
                                     read_events, read_orders)
from clvlab.data.events import check_event_ids
from clvlab.data.rfm import rfm_summary
from clvlab.data.rfm_rules import make_settings
from clvlab.evaluation import interval_metrics, metrics
from clvlab.evaluation.interval_metrics import INTERVAL_DRAWS
from clvlab.evaluation.candidate_names import default_candidates, make_candidate
from clvlab.evaluation.candidates import Candidate
from clvlab.evaluation.cohort_value import cohort_ltv
from clvlab.evaluation.result import BacktestResult
from clvlab.evaluation.time_varying_candidate import TimeVaryingCandidate
from clvlab.evaluation.time_varying_cutoffs import (CutoffPaths, covariate_source,
                                                    time_varying_candidates, with_paths)
from clvlab.data.tables import accepts_tables

__all__ = ["backtest"]


@accepts_tables("transactions", "events", "covariate_panel", "calendar", keyed=("customer_attributes",),
                customer_col="customer_col")
def backtest(transactions: Any, candidates: Sequence[Any] | Mapping[str, Any],
             cutoffs: Sequence[Any], horizon: float, *, customer_col: str = "customer_id",
             date_col: str = "date", amount_col: str | None = None, time_unit: str = "W",
             date_format: str | None = None, timezone: str = "UTC", cohort_freq: str = "M",
             acquisition_cost: float | Mapping[str, float] | None = None,
             customer_attributes: pd.DataFrame | None = None, tracking_points: int = 13,
             keep_predictions: bool = True, progress: bool | None = None,
             consent_col: str | None = None, withdrawn: Any = None,
             delimiter: str | None = None, decimal: str = ".", intervals: bool = True,
             interval_draws: int = INTERVAL_DRAWS, covariate_panel: Any = None,
             calendar: pd.DataFrame | None = None, covariate_customer_col: str | None = None,
             covariate_period_col: str = "period", events: Any = None, event_col: str = "event",
             event_value_col: str | None = None, quantity_col: str | None = None
             ) -> BacktestResult:
    """Backtest candidates against held-out data at several calibration cutoffs.

    At each cutoff the calibration summary is built from the log up to the cutoff, with only
    the customers acquired by then (:func:`clvlab.rfm_summary`'s rules, with the cutoff as
    ``calibration_end`` and the end of the holdout window as ``observation_end``). Each
    candidate is fitted afresh on it and predicts, per customer, the purchases, spend and
    P(at least one purchase) in the next ``horizon`` time units, which are compared with what
    those customers did. Customers acquired after a cutoff play no part in that cutoff.

    Parameters
    ----------
    transactions : pandas or polars DataFrame, pyarrow Table, path or glob
        A transaction log: a pandas or polars DataFrame or a pyarrow Table
        (:mod:`clvlab.data.tables`), or a path or glob of CSV or Parquet files.
    candidates : sequence or mapping
        Names (``"pareto-nbd+gamma-gamma"``, ``"bg-nbd"``, ``"historical-average"``,
        ``"historical-ltv"``, ``"arpu-churn"``, ``"aov-frequency-lifespan"``, ``"active-90d"``),
        clvlab models, (transaction model, spend model) pairs or
        :class:`~clvlab.backtesting.Candidate` objects; a mapping gives them display names.
        :func:`~clvlab.backtesting.default_candidates` lists a default comparison.
    cutoffs : sequence of str, datetime or pandas.Timestamp
        Calibration ends: timestamps, or text read by the date column's rule (ISO 8601, or
        ``date_format``); each needs a whole holdout window of data after it.
    horizon : float
        Length of the holdout window, a number of ``time_unit`` (``13`` with weeks, not
        ``"13W"``).
    customer_col, date_col : str, default "customer_id", "date"
        The log's id and date columns, as in :func:`clvlab.rfm_summary`.
    amount_col : str, optional
        Spend column; without it only purchases and activity are compared, spend columns are
        absent (not 0), and candidates that need a spend (a spend model, the LTV, ARPU and AOV
        formulas) are refused before any fit.
    time_unit : str, default "W"
        The time unit of the summaries and of ``horizon``.
    date_format : str, optional
        The date column's strptime format (None: ISO 8601), as in :func:`clvlab.rfm_summary`.
    timezone : str, default "UTC"
        The time zone the dates are read in, as in :func:`clvlab.rfm_summary`.
    cohort_freq : str, default "M"
        Pandas period code of the acquisition cohorts (``"M"``: month of the first purchase;
        ``"Q"``, ``"Y"``...). Metrics are reported for all customers and per cohort.
    acquisition_cost : float or mapping of str to float, optional
        Cost of acquiring one customer, a number or a mapping from cohort label (e.g.
        ``"1997-01"``) to a number; adds LTV:CAC to the cohort table (needs amount_col).
    customer_attributes : pandas or polars DataFrame or pyarrow Table, optional
        Static attributes per customer (channel, region...), indexed by customer id (a pandas
        DataFrame; a polars DataFrame or a pyarrow Table with the ids in its ``customer_col``
        column), that candidates may use: models with covariates
        (``"pareto-nbd[channel]+gamma-gamma"``, or a model built with ``purchase_covariates``...)
        read their columns, joined onto each cutoff's calibration summary, and the churn
        adjuster and :class:`~clvlab.backtesting.PerSegment` may too. Every customer of every
        cutoff needs a row (else an error gives their number and one of them). They must be
        known at acquisition: time-varying attributes would leak the future into earlier
        cutoffs.
    tracking_points : int, default 13
        Points of the cumulative tracking curve over the holdout window.
    keep_predictions : bool, default True
        Keep every customer's predictions (for decile charts and own analysis).
    progress : bool, optional
        A progress bar over cutoffs x candidates (None: when someone is watching, in a
        notebook or on a terminal; see :mod:`clvlab.core.progress`).
    consent_col, withdrawn : optional
        Leave out customers who withdrew consent (:mod:`clvlab.privacy`); their number is
        ``result.settings["customers_excluded"]``.
    delimiter, decimal : str, optional
        The dialect of CSV files (e.g. ``";"`` and ``","``), as in :func:`clvlab.rfm_summary`.
    intervals : bool, default True
        Score the predictive distributions of the candidates that have one (the BTYD models):
        per cutoff, the coverage of each customer's 50/80/90/95 % prediction interval of
        holdout purchases (and its PIT form), the mean log score (nats) and the ranked
        probability score of the PMF at the realised count, and whether the cohort total's
        90 % interval held it (:mod:`clvlab.evaluation.interval_metrics`; target
        ``purchases``). Baselines have none of them (absent in the tables, n/a in summaries).
    interval_draws : int, default INTERVAL_DRAWS (50)
        Parameter draws behind the total's interval (0: leave it out).
    covariate_panel, calendar : pandas or polars DataFrame, pyarrow Table or path, optional
        Time-varying covariates (:mod:`clvlab.evaluation.time_varying_cutoffs`). The panel:
        one row per customer and period (``covariate_customer_col``, by default
        ``customer_col``; ``covariate_period_col``, the period's start; covariate columns), a
        DataFrame or Parquet/CSV files (:func:`clvlab.covariate_paths`'s rules); the calendar:
        covariates shared by every customer, one row per period (e.g.
        :func:`clvlab.seasonal_covariates`). Either DataFrame is a pandas or polars DataFrame
        or a pyarrow Table. A bracket column of a Pareto/NBD or BG/NBD candidate that the
        panel or calendar holds is read along each customer's path
        (``"pareto-nbd[High.Season,Gender]"``: High.Season from the panel, Gender from
        ``customer_attributes`` unless the panel holds it too); at each cutoff the paths come
        from the calibration summary and the log up to the cutoff, and reach the holdout's
        end with the covariates as supplied (the realised path, or a calendar known in
        advance: an oracle of the future covariates). Spend covariates stay static. Such a
        candidate has every metric but ``total_coverage_90`` (no parameter draws along paths).
    covariate_customer_col : str, optional
        The covariate panel's customer column (None: ``customer_col``).
    covariate_period_col : str, default "period"
        The covariate panel's period column.
    events, event_col, event_value_col : optional
        An event log beside the purchases (visits, e-mails opened, returns, support contacts:
        ``customer_col``, ``date_col``, ``event_col`` (default ``"event"``) and optionally
        ``event_value_col``; a pandas or polars DataFrame or a pyarrow Table, or CSV/Parquet
        files), validated once by :func:`clvlab.data.events.check_events`. At each cutoff the
        candidates that learn from features (the churn adjuster, ``"ziln"``, ``"gbm"``) see
        its windowed counts, sums and recencies up to the cutoff
        (:func:`clvlab.churn.event_frame`); the BTYD models do not. A candidate column in
        neither the attributes nor the panel/calendar is an error.
    quantity_col : str, optional
        The log's items-per-order column: those candidates also see the basket sizes up to the
        cutoff, each row an order (:func:`clvlab.churn.basket_frame`).

    Returns
    -------
    :class:`~clvlab.backtesting.BacktestResult`. A candidate that refuses the data at a cutoff
    (a ClvlabError: a fit without an interior maximum, a prediction out of range...) is left
    out of that cutoff with a warning naming it and the cutoff, and recorded in
    ``settings["failures"]`` (cutoff, candidate, error); the others go on, and its means are
    over the cutoffs where it ran. Any other exception stops the backtest, with a note naming
    the candidate and the cutoff. When every candidate fails everywhere, a ClvlabError lists why.
    """
    settings = make_settings(customer_col=customer_col, date_col=date_col, amount_col=amount_col,
                             time_unit=time_unit, date_format=date_format, timezone=timezone,
                             merge_period=None, consent_col=consent_col, withdrawn=withdrawn,
                             delimiter=delimiter, decimal=decimal)
    named = _named_candidates(candidates)
    source = covariate_source(covariate_panel, calendar, customer_col=covariate_customer_col,
                              period_col=covariate_period_col, log_customer_col=customer_col)
    if source is None:
        _check_candidate_attributes(named, customer_attributes)
    else:
        named = time_varying_candidates(named, source, customer_attributes)
    if amount_col is None:
        _refuse_spend_candidates(named)
        if acquisition_cost is not None:
            raise ClvlabError("acquisition_cost needs amount_col: LTV:CAC compares the revenue "
                              "of a cohort with its cost, and a log without amounts has no revenue")
    horizon = checked_horizon(horizon, settings.time_unit)
    if (isinstance(tracking_points, bool) or not isinstance(tracking_points, (int, np.integer))
            or tracking_points < 1):
        raise ClvlabError(f"tracking_points must be a whole number >= 1 (points of the tracking "
                          f"curve, e.g. 13), got {tracking_points!r}")
    _check_cohort_freq(cohort_freq)
    if (isinstance(interval_draws, bool) or not isinstance(interval_draws, (int, np.integer))
            or interval_draws < 0):
        raise ClvlabError(f"interval_draws must be a whole number >= 0 (parameter draws behind "
                          f"the total's interval, e.g. 50; 0 leaves it out), got {interval_draws!r}")
    draws = int(interval_draws) if intervals else None
    frame, ids, ts, amount = load_log(transactions, settings)
    # validated once; each cutoff's view keeps the events up to it (read_events' rules)
    event_log = read_events(events, settings, event_col, event_value_col)
    if event_log is not None:
        check_event_ids(event_log["cid"], ids, "events: ")
    orders = read_orders(frame, settings, quantity_col)  # validated once, as the events are
    unit = UNIT_SECONDS[settings.time_unit]
    cutoffs = check_cutoffs(cutoffs, ts, horizon * unit, settings)
    pieces: dict[str, list[pd.DataFrame]] = {k: [] for k in
                                             ("metrics", "frequency", "tracking", "cohorts", "predictions")}
    failures: list[dict[str, str]] = []
    with progress_bar(len(cutoffs) * len(named), "backtest", progress, unit="fit") as bar:
        for cutoff in cutoffs:
            end = cutoff + pd.Timedelta(seconds=horizon * unit)
            rfm = rfm_summary(frame, customer_col=customer_col, date_col=date_col,
                              amount_col=amount_col, time_unit=settings.time_unit,
                              calibration_end=cutoff, observation_end=end, date_format=date_format,
                              timezone=timezone, engine="pandas")
            window = _Window(rfm, ids, ts, amount, cutoff, end, settings, cohort_freq,
                             customer_attributes, event_log, orders)
            if source is not None:  # the cutoff's covariate paths, built once per column set
                window.calibration = with_paths(window.calibration, CutoffPaths(
                    source, window.calibration.rfm, frame, horizon, date_col=date_col,
                    amount_col=amount_col, date_format=date_format))
            label = cutoff.isoformat(sep=" ").removesuffix(" 00:00:00")
            cohort_rows = [window.cohort_table()]
            for name, template in named.items():
                started = time.perf_counter()
                try:
                    parts = _run_candidate(template, window, rfm, name, label, horizon,
                                           tracking_points, amount_col, keep_predictions, draws)
                except ClvlabError as exc:  # a refusal: recorded, and the others go on
                    failures.append({"cutoff": label, "candidate": name, "error": str(exc)})
                    warn(f"backtest: candidate {name!r} failed at cutoff {label} and "
                                  f"is left out there (the others go on): {exc}",
                                  ClvlabWarning)
                except Exception as exc:  # a fault: stop, saying where
                    exc.add_note(f"(clvlab.backtest: candidate {name!r} at cutoff {label})")
                    raise
                else:
                    for key, value in parts.items():
                        if key == "cohort":
                            cohort_rows.append(value)
                        else:
                            pieces[key].append(value)
                bar.set_postfix_str(f"cutoff {label}: {name} {time.perf_counter() - started:.1f} s")
                bar.update()
            pieces["cohorts"].append(cohort_ltv(cohort_rows, label, acquisition_cost))
    if not pieces["metrics"]:
        raise ClvlabError("every candidate failed at every cutoff: " + "; ".join(
            f"{f['candidate']!r} at {f['cutoff']}: {f['error']}" for f in failures))
    return BacktestResult(
        metrics=pd.concat(pieces["metrics"], ignore_index=True),
        by_frequency=pd.concat(pieces["frequency"], ignore_index=True),
        tracking=pd.concat(pieces["tracking"], ignore_index=True),
        cohorts=pd.concat(pieces["cohorts"], ignore_index=True),
        predictions=(pd.concat(pieces["predictions"]) if keep_predictions else None),
        settings={"horizon": float(horizon), "time_unit": settings.time_unit,
                  "cutoffs": [c.isoformat() for c in cutoffs], "cohort_freq": cohort_freq,
                  "candidates": list(named), "amount_col": amount_col,
                  "customers_excluded": int(frame.attrs.get("customers_excluded", 0)),
                  "failures": failures, "intervals": bool(intervals),
                  "interval_draws": int(interval_draws) if intervals else 0,
                  **({} if source is None else {"covariates": source.describe(), "time_varying": {
                      name: list(c.path_columns) for name, c in named.items()
                      if isinstance(c, TimeVaryingCandidate)}})})


def _run_candidate(template: Candidate, window: "_Window", rfm: pd.DataFrame, name: str,
                   label: str, horizon: float, tracking_points: int, amount_col: str | None,
                   keep_predictions: bool, interval_draws: int | None = None) -> dict[str, pd.DataFrame]:
    """One candidate at one cutoff: a fresh copy fitted, its predictions checked and scored.
    Returns the result's pieces (all or, when it fails, none: nothing half-done is kept)."""
    candidate = copy.deepcopy(template).fit(window.calibration, horizon)
    predicted = _checked(candidate.predict(window.calibration, horizon), rfm, name, label)
    if amount_col is None:
        predicted = predicted.drop(columns="expected_spend", errors="ignore")
    scored = [window.metrics(predicted, name, label),
              window.distribution_metrics(candidate, name, label, horizon, interval_draws)]
    parts = {"metrics": pd.concat([t for t in scored if t is not None], ignore_index=True),
             "frequency": metrics.by_frequency(
                 rfm["frequency"].to_numpy(), predicted["expected_purchases"].to_numpy(),
                 window.actual_purchases).reset_index().assign(cutoff=label, candidate=name),
             "tracking": window.tracking(candidate, name, label, horizon, tracking_points)}
    if "expected_spend" in predicted:
        parts["cohort"] = window.cohort_predicted(predicted["expected_spend"], name)
    if keep_predictions:
        outcomes = {"actual_purchases": window.actual_purchases}
        if window.actual_spend is not None:  # no amounts: no column, not zeros
            outcomes["actual_spend"] = window.actual_spend
        parts["predictions"] = predicted.assign(cutoff=label, candidate=name, **outcomes,
                                                calibration_frequency=rfm["frequency"].to_numpy())
    return parts


def _refuse_spend_candidates(named: Mapping[str, Candidate]) -> None:
    """Refuse, before any fit, the candidates whose formula needs spend on a log without an
    amount column (they would otherwise fail mid-run or value purchases at 0)."""
    needing = [name for name, candidate in named.items() if candidate.needs_amounts]
    if needing:
        raise ClvlabError(
            f"candidates {needing} need an amount column (a spend model, or an LTV, ARPU or AOV "
            f"formula), but no amount_col was given; pass amount_col, or backtest the "
            f"candidates that need none, e.g. {default_candidates(has_amounts=False)}")


def _check_candidate_attributes(named: Mapping[str, Candidate], attributes: Any) -> None:
    """Before any work: each candidate's covariates are columns of ``customer_attributes``."""
    for name, candidate in named.items():
        columns = getattr(candidate, "attribute_columns", [])
        if not columns:
            continue
        if attributes is None:
            raise ClvlabError(f"candidate {name!r} reads the customer attributes {columns} (its "
                              "covariates); pass them as backtest(..., customer_attributes=...), "
                              "a DataFrame indexed by customer id")
        present = set(getattr(attributes, "columns", []))
        absent = [c for c in columns if c not in present]
        if absent:
            raise ClvlabError(f"candidate {name!r} reads the customer attribute(s) {absent}, "
                              f"which customer_attributes lacks; it has {sorted(map(str, present))}")


def _check_cohort_freq(cohort_freq: Any) -> None:
    """A pandas period code, or an error that names the option (pandas' own is about 'freq')."""
    try:
        pd.Period("2000-01-01", freq=cohort_freq)
    except (ValueError, TypeError, AttributeError):
        raise ClvlabError(f"cohort_freq={cohort_freq!r} is not a pandas period code; use e.g. "
                          "'M' (month of the first purchase), 'Q', 'Y' or 'W'") from None


def _named_candidates(candidates: Any) -> dict[str, Candidate]:
    if isinstance(candidates, Mapping):
        named = {str(k): make_candidate(v) for k, v in candidates.items()}
    else:
        if isinstance(candidates, (str, Candidate)):
            candidates = [candidates]
        named = {}
        for spec in candidates:
            candidate = make_candidate(spec)
            if candidate.name in named:
                raise ClvlabError(f"two candidates are named {candidate.name!r}; pass a mapping "
                                  "of names to candidates")
            named[candidate.name] = candidate
    if not named:
        raise ClvlabError("no candidates to backtest")
    return named


def _checked(predicted: Any, rfm: pd.DataFrame, name: str, cutoff: str) -> pd.DataFrame:
    if not isinstance(predicted, pd.DataFrame) or not predicted.index.equals(rfm.index):
        raise ClvlabError(f"candidate {name!r} must return a DataFrame indexed like the "
                          f"calibration summary (cutoff {cutoff})")
    for column in ("expected_purchases", "p_active"):
        if column not in predicted:
            raise ClvlabError(f"candidate {name!r} returned no {column!r} column")
    for column in ("expected_purchases", "p_active", "expected_spend"):
        if column in predicted:
            values = predicted[column].to_numpy(np.float64)
            bad = ~np.isfinite(values) | (values < 0) | ((values > 1) if column == "p_active" else False)
            if bad.any():
                where = predicted.index[np.flatnonzero(bad)[0]]
                raise ClvlabError(f"candidate {name!r} predicted {column} = {values[bad][0]!r} for "
                                  f"customer {shown(where)} at cutoff {cutoff}")
    return predicted


class _Window(CutoffView):
    """One cutoff's view, scored: candidates' metrics, tracking curves and cohort tables."""

    def __init__(self, rfm, ids, ts, amount, cutoff, end, settings, cohort_freq, attributes=None,
                 events=None, orders=None):
        super().__init__(rfm, ids, ts, amount, cutoff, end, settings, attributes, events, orders)
        # each customer's acquisition cohort: the period of the first purchase
        unit = float(UNIT_SECONDS[settings.time_unit])
        first = cutoff - pd.to_timedelta(rfm["T"].to_numpy() * unit, unit="s")
        self.cohort = pd.Series(pd.DatetimeIndex(first).to_period(cohort_freq).astype(str),
                                index=rfm.index)

    def metrics(self, predicted: pd.DataFrame, name: str, cutoff: str) -> pd.DataFrame:
        rows = []
        groups = [("all", np.ones(len(self.cohort), dtype=bool))]
        groups += [(c, (self.cohort == c).to_numpy()) for c in sorted(self.cohort.unique())]
        for cohort, mask in groups:
            targets = [("purchases", predicted["expected_purchases"].to_numpy(), self.actual_purchases)]
            if "expected_spend" in predicted and self.actual_spend is not None:
                targets.append(("spend", predicted["expected_spend"].to_numpy(), self.actual_spend))
            values: list[tuple[str, str, float]] = []
            for target, pred, actual in targets:
                scores = {**metrics.error_metrics(pred[mask], actual[mask]),
                          **metrics.ranking_metrics(pred[mask], actual[mask])}
                values += [(target, k, v) for k, v in scores.items()]
            activity = metrics.activity_metrics(predicted["p_active"].to_numpy()[mask],
                                                self.actual_purchases[mask] > 0)
            values += [("activity", k, v) for k, v in activity.items()]
            # a metric not computable on this data (NaN) has no row
            rows += [(cutoff, cohort, int(mask.sum()), name, t, k, v)
                     for t, k, v in values if not math.isnan(v)]
        return pd.DataFrame(rows, columns=["cutoff", "cohort", "customers", "candidate", "target",
                                           "metric", "value"])

    def distribution_metrics(self, candidate, name, cutoff, horizon, draws) -> pd.DataFrame | None:
        """The interval metrics of a candidate with a distribution of purchases (None without
        one, or with ``draws`` None); a model that cannot give it here is warned of, and the
        candidate's other metrics stand."""
        columns = ["cutoff", "cohort", "customers", "candidate", "target", "metric", "value"]
        distribution = None if draws is None else candidate.purchase_distribution(self.calibration)
        if distribution is None:
            return None
        groups = [("all", np.ones(len(self.cohort), dtype=bool))]
        groups += [(c, (self.cohort == c).to_numpy()) for c in sorted(self.cohort.unique())]
        model, table, *options = distribution  # (model, table[, purchase_pmf options])
        try:
            rows = interval_metrics.metric_rows(model, table, horizon, self.actual_purchases,
                                                groups, draws=draws,
                                                label=f"{name!r} at cutoff {cutoff}",
                                                options=options[0] if options else None)
        except ClvlabError as exc:
            warn(f"backtest: the predictive distribution of {name!r} at cutoff {cutoff} "
                          f"could not be scored, its interval metrics are left out: {exc}",
                          ClvlabWarning)
            return None
        return pd.DataFrame([(cutoff, cohort, n, name, "purchases", metric, value)
                             for cohort, n, metric, value in rows if not math.isnan(value)],
                            columns=columns)

    def tracking(self, candidate, name, cutoff, horizon, points) -> pd.DataFrame:
        times = horizon * np.arange(1, points + 1) / points
        expected = np.asarray(candidate.total_expected_purchases(self.calibration, times),
                              dtype=np.float64)
        if expected.shape != times.shape:
            raise ClvlabError(f"candidate {name!r} returned {expected.size} tracking totals for "
                              f"{times.size} horizons (cutoff {cutoff})")
        actual = [int(np.sum(self.holdout_times < t + 1e-9)) for t in times]
        return pd.DataFrame({"cutoff": cutoff, "candidate": name, "t": times,
                             "expected": expected, "actual": actual})

    def cohort_table(self) -> pd.DataFrame:
        """Customers per acquisition cohort and, with amounts, their revenue (without amounts
        the revenue columns are absent, not 0)."""
        if not self.has_amounts:
            return self.cohort.groupby(self.cohort).size().rename("customers").to_frame()
        periods = self.calibration.periods
        revenue = periods.groupby("cid")["value"].sum().reindex(self.cohort.index, fill_value=0.0)
        frame = pd.DataFrame({"cohort": self.cohort, "calibration_revenue": revenue,
                              "holdout_revenue": self.actual_spend})
        return frame.groupby("cohort").agg(customers=("cohort", "size"),
                                           calibration_revenue=("calibration_revenue", "sum"),
                                           holdout_revenue=("holdout_revenue", "sum"))

    def cohort_predicted(self, spend: pd.Series, name: str) -> pd.DataFrame:
        return spend.groupby(self.cohort).sum().rename(f"predicted_holdout_revenue[{name}]").to_frame()
