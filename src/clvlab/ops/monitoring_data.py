"""What a monitoring job observes (:mod:`clvlab.ops.monitoring`): the scored customers' RFM at
the scoring date and what they did after it, the model's expectation over the elapsed window,
and the customer base at the monitored date.

The log is read once into pandas (by the data layer's rules: dates, zones, consent, merged
days) and summarised twice: with the scoring date as calibration end (each scored customer's
history then, and their purchases and spend after it) and as of the monitored date (the base
whose drift is measured). Its memory therefore grows with the log, unlike the scoring job's.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from clvlab.core.errors import ClvlabError, ClvlabWarning, warn
from clvlab.core.timeunits import UNIT_SECONDS
from clvlab.ops import monitoring_metrics as figures

__all__ = ["Observed", "observe", "check_log_reaches"]

RFM = ["frequency", "recency", "T"]


@dataclass
class Observed:
    """The figures and tables of one monitoring (metrics: name -> number, NaN when unknown)."""

    metrics: dict[str, float]
    calibration: pd.DataFrame
    drift: pd.DataFrame
    tracking: pd.DataFrame
    info: dict[str, Any]
    notes: list[str] = field(default_factory=list)


def check_log_reaches(ts: pd.Series, start: pd.Timestamp, end: pd.Timestamp,
                      allow_quiet_end: bool = False) -> str | None:
    """Refuse a log that stops before ``end`` (an old extract): its missing purchases would
    count as none, and the forecasts would look far too high (a false "retrain").

    A log may end a little before ``end`` because nobody bought in the last hours or days; it
    is taken as cut short when the silence at its end is longer than every quiet spell between
    the purchases of the monitored window (``start`` to its last purchase), the scoring date
    included. With ``allow_quiet_end`` (nobody bought, and the log is complete) it is only
    noted. Returns the note to report, or None when the log reaches ``end``."""
    last = ts.max()
    if last >= end:
        return None
    times = pd.Series(ts)
    since = np.sort((times[(times > start) & (times <= end)] - start).dt.total_seconds())
    longest = pd.Timedelta(seconds=float(np.diff(since, prepend=0.0).max()) if len(since) else 0)
    silence = end - last
    if silence > longest and not allow_quiet_end:
        spells = (f"a longer silence than any between purchases since the scoring date "
                  f"{_when(start)} (the longest: {_span(longest)})") if len(since) else \
            f"no purchase at all after the scoring date {_when(start)}"
        raise ClvlabError(
            f"the log ends {_when(last)}, {_span(silence)} before as_of {_when(end)}: {spells}, so "
            "the log looks cut short; its missing purchases would count as none and make the "
            f"forecasts look wrong. Monitor as of its end (as_of='{_when(last)}'), or, if the "
            "log is complete and nobody bought, say so: allow_quiet_end=True (--allow-quiet-end)")
    return (f"the log ends {_when(last)}, {_span(silence)} before as_of {_when(end)}: purchases after "
            "its end are counted as none")


def _span(length: pd.Timedelta) -> str:
    """A duration as a user would say it: "46 days", "1 day 6 hours", "3 hours"."""
    days, hours = length.days, length.seconds // 3600
    parts = [f"{days} day{'s' if days != 1 else ''}"] if days else []
    parts += [f"{hours} hour{'s' if hours != 1 else ''}"] if hours or not days else []
    return " ".join(parts)


def _when(moment: pd.Timestamp) -> str:
    """A date, or a date and time when it is not midnight (as a user would type it)."""
    naive = moment.tz_localize(None) if moment.tzinfo else moment
    return str(naive.date()) if naive == naive.normalize() else str(naive)


def observe(model, scores: pd.DataFrame, transactions: Any, scored_as_of: Any, as_of: Any, *,
            time_unit: str | None, horizon: float | None, interval_level: float | None,
            quantiles: Any, levels: tuple[float, ...], band_draws: int, band_points: int,
            seed: int = 0, customer_col: str = "customer_id", date_col: str = "date",
            amount_col: str | None = "amount", date_format: str | None = None,
            timezone: str = "UTC", consent_col: str | None = None, withdrawn: Any = None,
            delimiter: str | None = None, decimal: str = ".",
            allow_quiet_end: bool = False) -> Observed:
    """Join ``scores`` with the log and compute every figure (see :mod:`clvlab.ops.monitoring`).
    A log whose last purchase is further before ``as_of`` than any quiet spell inside the
    monitored window is refused as cut short (``check_log_reaches``), unless
    ``allow_quiet_end``."""
    from clvlab.data.calibration import CutoffView, load_log
    from clvlab.data.rfm import rfm_summary
    from clvlab.data.rfm_io import parse_option_date, read_files
    from clvlab.data.rfm_rules import make_settings

    transaction, spend, adjuster = _parts(model)
    unit = time_unit or getattr(transaction, "time_unit_", None)
    if unit is None:
        raise ClvlabError("the model records no time unit and the scores none either; register "
                          "a model fitted on a table that records its unit")
    frame = transactions if isinstance(transactions, pd.DataFrame) else \
        read_files(transactions, delimiter, decimal)
    if amount_col and amount_col not in frame.columns:
        if spend is not None:
            raise ClvlabError(f"amount_col {amount_col!r} (--amount-col) is not a column of the log "
                              f"(it has {list(frame.columns)}); the model values purchases, so its "
                              "spend is monitored from the log's amounts, e.g. amount_col='amount'")
        amount_col = None
    settings = make_settings(customer_col=customer_col, date_col=date_col, amount_col=amount_col,
                             time_unit=unit, date_format=date_format, timezone=timezone,
                             merge_period=None, consent_col=consent_col, withdrawn=withdrawn,
                             delimiter=delimiter, decimal=decimal)
    frame, ids, ts, amount = load_log(frame, settings)
    start = parse_option_date(scored_as_of, "scored_as_of", date_format=date_format, timezone=timezone)
    end = parse_option_date(as_of, "as_of", date_format=date_format, timezone=timezone)
    if not end > start:
        raise ClvlabError(f"as_of ({end.date()}) must come after the scoring date ({start.date()}): "
                          f"the forecasts are compared with what happened in between, e.g. "
                          f"as_of='{(start + pd.Timedelta(days=91)).date()}'")
    elapsed = (end - start).total_seconds() / UNIT_SECONDS[unit]
    options = dict(customer_col=customer_col, date_col=date_col, amount_col=amount_col,
                   time_unit=unit, date_format=date_format, timezone=timezone)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ClvlabWarning)  # "past the log": said once, below
        then = rfm_summary(frame, calibration_end=start, observation_end=end, **options)
        now = rfm_summary(frame, observation_end=end, **options)
    notes = []
    quiet = check_log_reaches(ts, start, end, allow_quiet_end)
    if quiet:
        notes.append(quiet)
    scores = scores.copy()
    scored, missing = _matched(scores, then.index)
    if missing:
        warn(f"monitor: {missing:,} scored customers are not in the log before the "
                      f"scoring date (the first: {scores.index[~scores.index.isin(scored)][0]!r}); "
                      "they are left out", ClvlabWarning)
    if len(scored) == 0:
        raise ClvlabError(f"no scored customer is in the log before the scoring date {start.date()} "
                          f"(scores ids such as {list(scores.index[:3])}, log ids such as "
                          f"{list(then.index[:3])}); is it the log that was scored, with its "
                          f"customer column {customer_col!r}?")
    rfm = then.loc[scored]
    rfm.attrs = then.attrs
    view = CutoffView(rfm, ids, ts, amount, start, end, settings)
    table = rfm[RFM + (["monetary_value"] if spend is not None else [])].astype(np.float64)
    table.attrs = {"clvlab": {"time_unit": unit}}
    metrics = {"customers_scored": float(len(scores)), "customers_monitored": float(len(scored)),
               "customers_missing_from_log": float(missing), "elapsed": elapsed,
               "horizon": math.nan if horizon is None else float(horizon)}
    metrics.update(_forecast_figures(transaction, spend, table, view, elapsed, levels,
                                     band_draws, seed, notes))
    if adjuster is not None:
        metrics.update(_adjusted_figures(adjuster, scores.loc[scored], view, elapsed, horizon,
                                         metrics, notes))
    activity = figures.calibration_table(metrics.pop("_p_any"), view.actual_purchases > 0)
    metrics["calibration_error"] = figures.calibration_error(activity)
    metrics["calibration_max_error"] = float(activity["difference"].abs().max()) \
        if len(activity) else math.nan
    metrics.update(_coverage(transaction, scores.loc[scored], table, view.actual_purchases,
                             elapsed, horizon, interval_level, quantiles, notes))
    tracking, note = figures.tracking_curve(transaction, table[RFM], view.holdout_times, elapsed,
                                            levels=levels, band_points=band_points,
                                            draws=band_draws, seed=seed)
    notes += [note] if note else []
    tracking.insert(1, "date", start + pd.to_timedelta(tracking["t"] * UNIT_SECONDS[unit], unit="s"))
    last = tracking.iloc[-1]
    metrics.update({"purchases_expected": float(last["expected"]),
                    "purchases_total_sd": float(last["total_sd"]),
                    "purchases_z": float((last["realised"] - last["expected"]) / last["total_sd"])})
    for column in figures.band_columns(levels):
        side, level = column.split()
        metrics[f"purchases_{side}_{level.rstrip('%')}"] = float(last[column])
    drift, reference = _drift(transaction, now, rfm, notes)
    metrics.update({f"psi.{c}": float(v) for c, v in zip(drift["column"], drift["psi"])})
    new = int((~now.index.isin(scores.index)).sum())
    metrics.update(customers_at_as_of=float(len(now)), new_customers=float(new),
                   new_customer_share=new / len(now) if len(now) else math.nan)
    info = {"scored_as_of": str(start), "as_of": str(end), "elapsed": elapsed, "time_unit": unit,
            "horizon": horizon, "drift_reference": reference,
            "beyond_horizon": horizon is not None and elapsed > float(horizon) + 1e-9}
    if info["beyond_horizon"]:
        notes.append(f"the elapsed window ({elapsed:.4g} {unit}) is longer than the scoring "
                     f"horizon ({horizon:g}): the expectation is the model's for the whole window")
    return Observed(metrics, activity, drift, tracking, info, notes)


def _parts(model):
    """The transaction, spend and adjusting parts of a CLV model (or a lone transaction model),
    refusing what the job cannot re-predict over another window."""
    transaction = getattr(model, "transaction", model)
    spend = getattr(model, "spend", None)
    if any(hasattr(part, "covariates_") for part in (transaction, spend) if part is not None):
        raise ClvlabError("the model has covariates; monitoring re-predicts from the RFM columns "
                          "alone and does not join customer attributes or covariate panels yet")
    return transaction, spend, getattr(model, "adjuster", None)


#: The figures a churn adjuster's (or a challenger's) scores replace at their horizon.
ADJUSTED = ("purchases_mae", "purchases_aggregate_pct_error", "activity_auc", "activity_brier")


def _adjusted_figures(adjuster, scores: pd.DataFrame, view, elapsed: float,
                      horizon: float | None, base: dict, notes: list[str]) -> dict[str, float]:
    """A champion whose scores come through a churn adjuster or a challenger: the adjuster was
    trained for one horizon and predicts nothing over another window, so the purchase process
    (tracking curve, bands, coverage, drift) is monitored through the transaction model it
    adjusts, and the adjusted forecasts themselves (the scores' expected purchases and P(any
    purchase)) are compared with what happened when the elapsed window is their horizon. The
    base model's figures stay beside them (``base_<name>``)."""
    from clvlab.evaluation.metrics import activity_metrics, error_metrics
    from clvlab.models.customer_scores import adjuster_role

    role = adjuster_role(adjuster)
    trained = float(adjuster.horizon)
    out = {f"base_{name}": base.get(name, math.nan) for name in ADJUSTED}
    if not math.isclose(elapsed, trained, rel_tol=1e-9, abs_tol=1e-9):
        notes.append(f"the scores come through {role}, trained for a horizon of {trained:g}: "
                     f"over {elapsed:.4g} their own forecasts are not defined, so every figure "
                     "is the transaction model's it adjusts; monitor at the horizon (as_of = "
                     "the scoring date + the horizon) to check the adjusted forecasts too")
        return out
    needed = {"expected_purchases", "probability_of_purchase"}
    if not needed <= set(scores.columns):
        notes.append(f"the scores lack {sorted(needed - set(scores.columns))}: {role}'s "
                     "forecasts are not checked")
        return out
    actual = view.actual_purchases
    errors = error_metrics(scores["expected_purchases"].to_numpy(np.float64), actual)
    activity = activity_metrics(scores["probability_of_purchase"].to_numpy(np.float64), actual > 0)
    notes.append(f"the scores come through {role}: at its horizon ({trained:g}) purchases' MAE, "
                 "aggregate error, AUC and Brier score are its forecasts'; the tracking curve, "
                 "bands, coverage and drift are the transaction model's it adjusts (base_* "
                 "figures: that model's forecasts)")
    out.update(purchases_mae=errors["mae"], purchases_aggregate_pct_error=errors["aggregate_pct_error"],
               activity_auc=activity["auc"], activity_brier=activity["brier"],
               purchases_expected_adjusted=float(scores["expected_purchases"].sum()),
               _p_any=scores["probability_of_purchase"].to_numpy(np.float64))
    return out


def _matched(scores: pd.DataFrame, ids: pd.Index) -> tuple[pd.Index, int]:
    """The scored ids found in the log's ids (compared as text when one side is text and the
    other numbers: ``scores`` is re-indexed in the log's type), and how many were not found."""
    index = scores.index
    if index.dtype.kind != ids.dtype.kind:
        lookup = pd.Series(ids, index=ids.astype(str))
        found = lookup.reindex(index.astype(str))
        scores.index = pd.Index(np.where(found.notna(), found.to_numpy(object), index.to_numpy(object)),
                                name=index.name)
        index = scores.index
    inside = index.isin(ids)
    return pd.Index(index[inside]), int((~inside).sum())


def _forecast_figures(transaction, spend, table, view, elapsed, levels, draws, seed, notes):
    """Expected against realised purchases and spend over the window, and activity."""
    from clvlab.evaluation.metrics import activity_metrics, error_metrics
    from clvlab.models.customer_scores import score_customers
    from clvlab.models.totals import revenue_totals

    predicted = score_customers(transaction, spend, None, table, horizon=elapsed)
    actual = view.actual_purchases
    out = {"purchases_realised": float(actual.sum()),
           "_p_any": predicted["probability_of_purchase"].to_numpy()}
    errors = error_metrics(predicted["expected_purchases"].to_numpy(), actual)
    out.update(purchases_mae=errors["mae"], purchases_aggregate_pct_error=errors["aggregate_pct_error"])
    activity = activity_metrics(out["_p_any"], actual > 0)
    out.update(activity_auc=activity["auc"], activity_brier=activity["brier"])
    if spend is None or view.actual_spend is None:
        return out
    realised = view.actual_spend
    errors = error_metrics(predicted["clv"].to_numpy(), realised)  # discount 0, margin 1: spend
    out.update(spend_expected=float(predicted["clv"].sum()), spend_realised=float(realised.sum()),
               spend_mae=errors["mae"], spend_aggregate_pct_error=errors["aggregate_pct_error"])
    for level in levels:
        try:
            band = revenue_totals(transaction, spend, table, elapsed, level=level,
                                  parameter_draws=draws, seed=seed, unvalued="population").iloc[0]
        except ClvlabError as exc:
            notes.append(f"spend's predictive band is unknown ({exc})")
            break
        out[f"spend_lower_{100 * level:g}"] = float(band[f"lower {100 * level:g}%"])
        out[f"spend_upper_{100 * level:g}"] = float(band[f"upper {100 * level:g}%"])
    return out


def _coverage(transaction, scores, table, actual, elapsed, horizon, level, quantiles, notes):
    """Coverage of the scores' intervals, re-predicted at their level over the elapsed window
    (the scores' own columns when the window is their horizon)."""
    lows = [q for q in (quantiles or []) if q < 0.5]
    highs = [q for q in (quantiles or []) if q > 0.5]
    if {"purchases_lower", "purchases_upper"} <= set(scores.columns):
        if level is None:
            notes.append("the scores hold intervals of an unrecorded level: coverage not checked")
            return {"interval_coverage": math.nan, "interval_level": math.nan}
        if horizon is not None and abs(elapsed - float(horizon)) < 1e-9:
            lower, upper = scores["purchases_lower"], scores["purchases_upper"]
        else:
            interval = transaction.prediction_interval(table[RFM], elapsed, level)
            lower, upper = interval["lower"], interval["upper"]
    elif lows and highs:
        low, high = min(lows), max(highs)
        level = high - low
        bounds = transaction.purchase_quantiles(table[RFM], elapsed, (low, high))
        lower, upper = bounds.iloc[:, 0], bounds.iloc[:, 1]
    else:
        return {}
    coverage = figures.interval_coverage(actual, np.asarray(lower, float), np.asarray(upper, float))
    return {"interval_coverage": coverage, "interval_level": float(level)}


def _drift(transaction, now: pd.DataFrame, scored_rfm: pd.DataFrame, notes: list[str]):
    """PSI per RFM column of the base at as_of, against the training profile, else against the
    scored customers' RFM at the scoring date."""
    profile = getattr(transaction, "training_profile_", None)
    if profile is not None:
        reference = f"training profile ({profile['customers']:,.0f} customers)"
    else:
        profile = figures.reference_profile(scored_rfm)
        reference = "scored customers' RFM at the scoring date"
        notes.append("the model holds no training profile (saved before clvlab recorded one): "
                     "drift is measured against the scored customers' RFM at the scoring date")
    if profile is None:
        notes.append("too few customers for a drift reference: PSI not computed")
    return figures.drift_table(now, profile, reference), reference
