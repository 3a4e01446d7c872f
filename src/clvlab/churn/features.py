"""What the churn classifier sees beyond the RFM summary, built from the log up to a cutoff.

Every feature of a customer at a cutoff comes from their transactions at or before it
(``Calibration.periods``: merged transactions with their ``age``, the time from the transaction
to the cutoff) and from static attributes the user supplies. Features are finite for every
customer: where a feature needs two purchases and a customer has one, it takes the value
documented below, not NaN, so any scikit-learn classifier can use them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from clvlab.data.calibration import Calibration
from clvlab.data.rfm_columns import columns_for, evaluate
from clvlab.core.errors import ClvlabError

__all__ = ["BEHAVIOUR_FEATURES", "SPEND_FEATURES", "BASKET_FEATURES", "behaviour_features",
           "behaviour_aggregates", "behaviour_table",
           "feature_frame", "event_frame", "basket_frame", "shift_back", "window_purchases",
           "window_spend"]

TOLERANCE = 1e-9  # time units

BEHAVIOUR_FEATURES = (
    "monetary_value", "order_value_mean", "order_value_std", "order_value_last",
    "order_value_trend", "order_value_max", "gap_mean", "gap_cv", "time_since_last",
    "overdue", "purchases_last_30d", "purchases_last_90d", "spend_last_90d",
)
# the features made of amounts: a log without an amount column has none of them (its spend is
# unknown, not 0, and a classifier must not learn from a column of made-up zeros)
SPEND_FEATURES = ("monetary_value", "order_value_mean", "order_value_std", "order_value_last",
                  "order_value_trend", "order_value_max", "spend_last_90d")
# the columns of clvlab.data.events.basket_features: a model that learnt from them needs the
# purchase log's quantity column to be scored (its feature_names_in_ records them)
BASKET_FEATURES = ("quantity_mean", "quantity_last", "quantity_trend", "quantity_max")


def behaviour_features(calibration: Calibration) -> pd.DataFrame:
    """Spend pattern, regularity and timing of each customer's purchases (time in the summary's
    unit). ``gap_mean``: mean time between purchases (T for a single purchase: at least that
    long); ``gap_cv``: their coefficient of variation (0 with fewer than three purchases);
    ``overdue``: time since the last purchase over the customer's own ``gap_mean``;
    ``order_value_trend``: last order value over the customer's mean (1 when the mean is 0).
    Without amounts (no ``monetary_value`` in the summary) the spend features
    (``SPEND_FEATURES``) are left out.

    The DuckDB engine, :func:`clvlab.churn.behaviour_duckdb.behaviour_features_duckdb`, reads a
    log (DataFrame or files) instead of a calibration view: it computes the per-customer
    aggregates of :func:`behaviour_aggregates` in SQL and shares :func:`behaviour_table`, the
    one definition of the features from them. The two aggregations are tied by a test
    (tests/test_behaviour_duckdb.py: equal to 1e-9 relative, counts exactly).

    Parameters
    ----------
    calibration : clvlab.evaluation.Calibration
        The calibration view at a cutoff (:func:`clvlab.evaluation.calibration_data`).

    Returns
    -------
    pandas.DataFrame
        One row per customer of the calibration summary, indexed as it: the columns of
        ``BEHAVIOUR_FEATURES`` (less ``SPEND_FEATURES`` without amounts).
    """
    frame = behaviour_aggregates(calibration.periods, calibration.days_to_units)
    return behaviour_table(frame, calibration.rfm, _has_amounts(calibration),
                           calibration.days_to_units)


#: the per-customer aggregates of the merged periods that the behaviour features are made of
BEHAVIOUR_AGGREGATES = ("n", "mean", "std", "last", "max", "gap_mean", "gap_std", "last_30",
                        "last_90", "spend_90")


def behaviour_aggregates(periods: pd.DataFrame, days_to_units) -> pd.DataFrame:
    """Per customer of ``periods`` (``Calibration.periods``): ``n`` periods; ``mean``, ``std``
    (ddof=0), ``last`` (the latest) and ``max`` of their values; ``gap_mean`` and ``gap_std``
    (ddof=0) of the times between consecutive periods (NaN with one period); ``last_30`` and
    ``last_90``, the periods younger than 30 and 90 days (less :data:`TOLERANCE`), NaN with none;
    ``spend_90``, their values' sum. ``days_to_units``: days to the summary's time unit."""
    ordered = periods.sort_values(["cid", "age"], ascending=[True, False], kind="stable")
    by_customer = ordered.groupby("cid", sort=False)
    gaps = -by_customer["age"].diff()  # ages fall as time goes on
    frame = pd.DataFrame({"n": by_customer.size(),
                          "mean": by_customer["value"].mean(),
                          "std": by_customer["value"].std(ddof=0),
                          "last": by_customer["value"].last(),
                          "max": by_customer["value"].max(),
                          "gap_mean": gaps.groupby(ordered["cid"]).mean(),
                          "gap_std": gaps.groupby(ordered["cid"]).std(ddof=0)})
    # the tolerance makes a window's edge the same whether ages were measured from this cutoff
    # or shifted from a later one (shift_back): 30 days is 30/7 weeks, inexact in binary
    recent = {days: (periods["age"] < days_to_units(days) - TOLERANCE) for days in (30, 90)}
    frame["last_30"] = periods[recent[30]].groupby("cid").size()
    frame["last_90"] = periods[recent[90]].groupby("cid").size()
    frame["spend_90"] = periods[recent[90]].groupby("cid")["value"].sum()
    return frame


def behaviour_table(frame: pd.DataFrame, rfm: pd.DataFrame, has_amounts: bool,
                    days_to_units) -> pd.DataFrame:
    """The behaviour features (:func:`behaviour_features`) of the customers of ``rfm`` (the
    calibration summary: recency, T, monetary_value) from their aggregates ``frame``
    (:data:`BEHAVIOUR_AGGREGATES`, indexed by customer; what the pandas and DuckDB engines
    compute): the one definition of each feature, shared by both engines."""
    frame = frame.reindex(rfm.index)
    if frame["n"].isna().any():
        raise ClvlabError("a customer of the summary has no transactions in the log up to the cutoff")
    T = rfm["T"].to_numpy(np.float64)
    n = frame["n"].to_numpy(np.float64)
    gap_mean = np.where(n >= 2, frame["gap_mean"].to_numpy(np.float64), T)
    gap_mean = np.maximum(np.nan_to_num(gap_mean, nan=0.0), days_to_units(1))
    gap_cv = np.where(n >= 3, frame["gap_std"].to_numpy(np.float64) / gap_mean, 0.0)
    since = T - rfm["recency"].to_numpy(np.float64)
    mean = frame["mean"].to_numpy(np.float64)
    out = pd.DataFrame({
        "monetary_value": (rfm["monetary_value"].to_numpy(np.float64) if has_amounts
                           else np.full(len(rfm), np.nan)),  # dropped below
        "order_value_mean": mean,
        "order_value_std": frame["std"].to_numpy(np.float64),
        "order_value_last": frame["last"].to_numpy(np.float64),
        "order_value_trend": np.divide(frame["last"].to_numpy(np.float64), mean,
                                       out=np.ones(len(mean)), where=mean > 0),
        "order_value_max": frame["max"].to_numpy(np.float64),
        "gap_mean": gap_mean,
        "gap_cv": np.nan_to_num(gap_cv, nan=0.0),
        "time_since_last": since,
        "overdue": since / gap_mean,
        "purchases_last_30d": frame["last_30"].fillna(0).to_numpy(np.float64),
        "purchases_last_90d": frame["last_90"].fillna(0).to_numpy(np.float64),
        "spend_last_90d": frame["spend_90"].fillna(0.0).to_numpy(np.float64),
    }, index=rfm.index)
    if not has_amounts:
        out = out.drop(columns=list(SPEND_FEATURES))
    return out


def _has_amounts(calibration: Calibration) -> bool:
    """Whether the log had amounts: the backtest leaves monetary_value out of the summary (and
    the periods' value NaN) when it had none."""
    return "monetary_value" in calibration.rfm.columns


def feature_frame(calibration: Calibration) -> pd.DataFrame:
    """The classifier's input at a cutoff: frequency, recency, T, the behaviour features, the
    basket features when the log has a quantity column (:func:`basket_frame`), the event log's
    features (:func:`event_frame`) and the user's attributes, one row per customer (the ``X``
    of :class:`ChurnAdjuster` and of the challengers).

    Parameters
    ----------
    calibration : clvlab.evaluation.Calibration
        The calibration view at a cutoff (:func:`clvlab.evaluation.calibration_data`).

    Returns
    -------
    pandas.DataFrame
        One row per customer of the summary, with the summary's ``attrs`` (its time unit).

    Raises
    ------
    ClvlabError
        Where a customer attribute reuses a feature's name, or the event log shares no
        customer with the purchase log.
    """
    rfm = calibration.rfm
    parts = [rfm[["frequency", "recency", "T"]].astype(np.float64), behaviour_features(calibration)]
    if calibration.orders is not None:
        parts.append(basket_frame(calibration))
    if calibration.events is not None:
        parts.append(event_frame(calibration))
    if calibration.attributes is not None:
        taken = BEHAVIOUR_FEATURES + ("frequency", "recency", "T") + \
            (BASKET_FEATURES if calibration.orders is not None else ())
        clash = set(calibration.attributes.columns) & set(taken)
        if clash:
            raise ClvlabError(f"customer attributes may not reuse the feature names {sorted(clash)}")
        attributes = calibration.attributes
        # text attributes (channel, region) become categoricals, which the classifier encodes
        # by value, as the models' covariates take text as it is
        text = [c for c in attributes.columns
                if pd.api.types.is_string_dtype(attributes[c]) or attributes[c].dtype == object]
        if text:
            attributes = attributes.astype({c: "category" for c in text})
        parts.append(attributes)
    frame = pd.concat(parts, axis=1)
    frame.attrs = dict(rfm.attrs)
    return frame


def event_frame(calibration: Calibration) -> pd.DataFrame:
    """The event log's features at the cutoff (:func:`clvlab.data.events.event_features`: per
    event type, counts in the last 7, 30 and 90 days and in all, the time since the last one
    in the summary's unit, NaN without any: unknown, which the trees read as such, and sums
    of values), one row per customer of the summary, with the columns of every event type of
    the log. An event log that shares no customer with the purchase log is refused: its ids
    are of another kind (text against numbers) or of another system, and all-zero features
    would look like customers who never visited.

    Parameters
    ----------
    calibration : clvlab.evaluation.Calibration
        The calibration view at a cutoff (:func:`clvlab.evaluation.calibration_data`).
        It must have an event log.

    Returns
    -------
    pandas.DataFrame
        One row per customer of the summary.

    Raises
    ------
    ClvlabError
        Where the event log shares no customer with the purchase log.
    """
    from clvlab.data.events import check_event_ids, event_features

    events, rfm = calibration.events, calibration.rfm
    check_event_ids(events["cid"], rfm.index, f"at {calibration.cutoff.date()}: ", warn=False)
    features = event_features(events, calibration.cutoff, customers=rfm.index,
                              time_unit=calibration.time_unit, event_types=calibration.event_types,
                              customer_col="cid", date_col="ts", event_col="event",
                              value_col="value" if "value" in events.columns else None)
    return features.rename_axis(rfm.index.name)


def basket_frame(calibration: Calibration) -> pd.DataFrame:
    """The basket-size features at the cutoff (:func:`clvlab.data.events.basket_features` of
    the calibration's orders: mean, last, maximum and 90-day trend of the items per order,
    each order a row of the log), one row per customer of the summary; a customer without
    orders in ``calibration.orders`` gets NaN (unknown, never 0), which the trees read as
    such.

    Parameters
    ----------
    calibration : clvlab.evaluation.Calibration
        The calibration view at a cutoff (:func:`clvlab.evaluation.calibration_data`).
        It must have the orders' quantities (``calibration.orders``).

    Returns
    -------
    pandas.DataFrame
        One row per customer of the summary, the columns of ``BASKET_FEATURES``.
    """
    from clvlab.data.events import basket_features

    if len(calibration.orders) == 0:  # basket_features refuses an empty log; nothing is known
        return pd.DataFrame(np.nan, index=calibration.rfm.index, columns=list(BASKET_FEATURES))
    features = basket_features(calibration.orders, calibration.cutoff,
                               customers=calibration.rfm.index, customer_col="cid",
                               date_col="ts", quantity_col="value",
                               time_unit=calibration.time_unit)
    return features.rename_axis(calibration.rfm.index.name)


def shift_back(calibration: Calibration, shift: float) -> tuple[Calibration, pd.Series]:
    """The calibration view at ``shift`` time units before this cutoff, and each of its
    customers' activity in the ``shift`` after it: a training set whose outcome is known and
    lies wholly before the present cutoff. Only customers acquired by the earlier cutoff are in
    it; the summary follows rfm_summary's rules on the already merged transactions.

    Parameters
    ----------
    calibration : clvlab.evaluation.Calibration
        The calibration view at a cutoff (:func:`clvlab.evaluation.calibration_data`).
    shift : float
        Time units (the summary's) before the calibration's cutoff.

    Returns
    -------
    tuple of (clvlab.evaluation.Calibration, pandas.Series)
        The earlier view, and ``active``: whether each of its customers purchased in the
        ``shift`` after its cutoff (bool, on its summary's index).

    Raises
    ------
    ClvlabError
        Where no customer was acquired ``shift`` time units before the cutoff.
    """
    periods = calibration.periods
    before = periods[periods["age"] >= shift - TOLERANCE]
    if before.empty:
        raise ClvlabError(f"no customer was acquired {shift:g} time units before "
                          f"{calibration.cutoff.date()}: nothing to train the churn model on")
    by_customer = before.groupby("cid", sort=True)
    first_age, last_age = by_customer["age"].max(), by_customer["age"].min()
    first_value = before.sort_values("age", ascending=False, kind="stable").groupby("cid")["value"].first()
    # rfm_summary's aggregates and columns, with time measured in time units from this cutoff:
    # a period starts at minus its age, and the earlier cutoff is at -shift
    aggregates = {"n_cal": by_customer.size(), "first_p": -first_age, "last_p": -last_age,
                  "total": by_customer["value"].sum(), "first_value": first_value}
    columns = columns_for(amounts=_has_amounts(calibration), holdout=False)
    values = evaluate(columns, aggregates, {"unit_seconds": 1.0, "calibration_end": -float(shift)},
                      len(first_age))
    rfm = pd.DataFrame(values, index=first_age.index.rename(calibration.rfm.index.name))
    rfm.attrs = dict(calibration.rfm.attrs)
    before = before.assign(age=(before["age"] - shift).clip(lower=0.0))
    later = periods.loc[periods["age"] < shift - TOLERANCE, "cid"]
    active = pd.Series(rfm.index.isin(later.unique()), index=rfm.index, name="active")
    attributes = None if calibration.attributes is None else calibration.attributes.loc[rfm.index]
    cutoff = calibration.cutoff - pd.Timedelta(days=shift / calibration.days_to_units(1))
    earlier = Calibration(rfm=rfm, periods=before, cutoff=cutoff, time_unit=calibration.time_unit,
                          attributes=attributes, events=calibration.events_until(cutoff),
                          event_types=calibration.event_types,
                          orders=calibration.orders_until(cutoff))
    return earlier, active


def window_purchases(calibration: Calibration, shift: float) -> pd.Series:
    """Each customer's purchases (merged periods) in the last ``shift`` time units before the
    cutoff, for the customers acquired by ``cutoff - shift`` (the rows of
    ``shift_back(calibration, shift)``): the outcome that the view ``shift`` back did not see.

    Parameters
    ----------
    calibration : clvlab.evaluation.Calibration
        The calibration view at a cutoff (:func:`clvlab.evaluation.calibration_data`).
    shift : float
        Time units (the summary's) before the calibration's cutoff.

    Returns
    -------
    pandas.Series
        ``purchases`` (floats), indexed by the customers acquired by ``cutoff - shift``, sorted.
    """
    acquired, later = _window(calibration, shift)
    counts = later["cid"].value_counts().reindex(acquired, fill_value=0)
    return counts.rename_axis(calibration.rfm.index.name).rename("purchases").astype(np.float64)


def window_spend(calibration: Calibration, shift: float) -> pd.Series:
    """Each customer's spend in the last ``shift`` time units before the cutoff, for the rows
    of :func:`window_purchases` (the challengers' spend target); NaN without amounts.

    Parameters
    ----------
    calibration : clvlab.evaluation.Calibration
        The calibration view at a cutoff (:func:`clvlab.evaluation.calibration_data`).
    shift : float
        Time units (the summary's) before the calibration's cutoff.

    Returns
    -------
    pandas.Series
        ``spend``, indexed as :func:`window_purchases`'s.
    """
    acquired, later = _window(calibration, shift)
    if not _has_amounts(calibration):
        return pd.Series(np.nan, index=pd.Index(acquired, name=calibration.rfm.index.name),
                         name="spend")
    totals = later.groupby("cid")["value"].sum().reindex(acquired, fill_value=0.0)
    return totals.rename_axis(calibration.rfm.index.name).rename("spend").astype(np.float64)


def _window(calibration: Calibration, shift: float) -> tuple[np.ndarray, pd.DataFrame]:
    """(the ids acquired by ``cutoff - shift``, sorted; the merged periods after it)."""
    periods = calibration.periods
    acquired = np.sort(periods.loc[periods["age"] >= shift - TOLERANCE, "cid"].unique())
    return acquired, periods[periods["age"] < shift - TOLERANCE]
