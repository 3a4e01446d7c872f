"""Backtest metrics: predicted against realised holdout purchases, spend and activity.

Every function returns a plain float, NaN where the metric is not computable on the data (a
correlation of a constant prediction, an AUC with one class, a percentage of a zero total): NaN
and not None, so that "unknown" has one spelling in every table and sorts last. The backtest
leaves such metrics out of its tables (no row) rather than writing NaN.

Which way is better is defined here once per metric (:func:`ranking_key`,
:func:`describe_better`) and used by the backtest's result, its plots and
:func:`clvlab.experiments.compare`.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
import pandas as pd
from scipy import stats

from clvlab.core.errors import ClvlabError

__all__ = ["error_metrics", "ranking_metrics", "activity_metrics", "normalized_gini",
           "top_decile_capture", "decile_mape", "by_frequency", "ranking_key", "describe_better", "METRICS",
           "TARGETS"]

NAN = float("nan")
#: the metrics of a predictive distribution of purchases (target "purchases" only)
_DISTRIBUTION_METRICS = {"log_score", "rps", "interval_width_90", "total_coverage_90",
                         *(f"{kind}coverage_{level}" for kind in ("", "pit_")
                           for level in (50, 80, 90, 95))}

# the direction of every metric the backtest writes; "zero": a signed error, best at 0, ranked
# by its absolute value (a -30 % error is as bad as a +30 % one, and better than a +40 % one);
# "nominal": a coverage, best at its interval's level (coverage_90: 0.9), ranked by the distance
METRICS = {"mae": "lower", "rmse": "lower", "brier": "lower",
           "bias": "zero", "aggregate_pct_error": "zero",
           "normalized_gini": "higher", "top_decile_capture": "higher", "spearman": "higher",
           "decile_mape": "lower",
           "auc": "higher",
           # the predictive distribution's (clvlab.evaluation.interval_metrics)
           "log_score": "higher", "rps": "lower", "interval_width_90": "lower",
           "total_coverage_90": "nominal",
           **{f"{kind}coverage_{level}": "nominal" for kind in ("", "pit_")
              for level in (50, 80, 90, 95)}}
TARGETS = ("purchases", "spend", "activity")
_DESCRIPTIONS = {"lower": "lower is better", "higher": "higher is better",
                 "zero": "closest to 0 is best",
                 "nominal": "closest to its nominal level is best"}


def _direction(metric: str) -> str:
    """``"lower"``, ``"higher"`` or ``"zero"`` for a metric, bare (``"mae"``) or qualified by
    its target as the tables and MLflow write it (``"purchases_mae"``, ``"purchases mae"``)."""
    if not isinstance(metric, str):
        raise ClvlabError(f"a metric is named by a string such as 'purchases_mae', not {metric!r}")
    name = metric.strip().lower()
    for target in TARGETS:
        for separator in ("_", " ", "."):
            if name.startswith(target + separator):
                name = name[len(target) + 1:]
                break
    if name in METRICS:
        return METRICS[name]
    if name.endswith("pct_error"):  # any signed percentage error: best at 0
        return "zero"
    known = ", ".join(f"{t}_{m}" for t in TARGETS for m in METRICS
                      if (t == "activity") == (m in ("auc", "brier"))
                      and (t == "purchases" or m not in _DISTRIBUTION_METRICS))
    raise ClvlabError(f"unknown metric {metric!r}: cannot tell which way is better; known "
                      f"metrics are {known} (or the bare names {', '.join(METRICS)})")


def ranking_key(metric: str) -> Callable[[pd.Series], pd.Series]:
    """How to rank candidates by a metric: a function of their values that is smaller for the
    better ones.

    Parameters
    ----------
    metric : a metric name, bare (``"mae"``, ``"auc"``) or with its target
        (``"purchases_aggregate_pct_error"``, ``"activity_auc"``).

    Returns
    -------
    callable
        ``key(values: pd.Series) -> pd.Series`` of floats, smaller = better: the values
        themselves where lower is better, their negation where higher is, their absolute
        value for signed errors (bias, ``*_pct_error``), and their distance from the level
        for coverages (``coverage_90``: |value - 0.9|). Missing values (None, NaN) stay NaN,
        so ``sort_values(key=ranking_key(m), na_position="last")`` puts unknowns last.

    Raises
    ------
    ClvlabError
        for a metric this module does not know, listing the known ones.
    """
    direction = _direction(metric)
    nominal = _nominal_level(metric) if direction == "nominal" else 0.0

    def key(values: pd.Series) -> pd.Series:
        numbers = pd.to_numeric(pd.Series(values), errors="coerce").astype(np.float64)
        if direction in ("zero", "nominal"):
            return (numbers - nominal).abs()
        return numbers if direction == "lower" else -numbers

    return key


def _nominal_level(metric: str) -> float:
    """The level of a coverage metric: ``"purchases_coverage_90"`` -> 0.9."""
    return float(metric.strip().rsplit("_", 1)[1]) / 100


def describe_better(metric: str) -> str:
    """``"higher is better"``, ``"lower is better"`` or ``"closest to 0 is best"`` for a
    metric named as in :func:`ranking_key` (a plot label or a table note).

    Parameters
    ----------
    metric : str
        A metric name, bare or with its target.

    Returns
    -------
    str
        The direction in words.

    Raises
    ------
    ClvlabError
        For a metric this module does not know.
    """
    return _DESCRIPTIONS[_direction(metric)]


def error_metrics(predicted: np.ndarray, actual: np.ndarray) -> dict[str, float]:
    """Per-customer MAE, RMSE and bias (mean of predicted - actual), and the aggregate % error
    100 (sum predicted - sum actual) / sum actual.

    Parameters
    ----------
    predicted : numpy.ndarray
        Each customer's prediction.
    actual : numpy.ndarray
        Each customer's realised value, in the same order.

    Returns
    -------
    dict of str to float
        ``mae``, ``rmse``, ``bias``, ``aggregate_pct_error`` (NaN where the actual total is 0).
    """
    difference = predicted - actual
    total = float(actual.sum())
    return {
        "mae": float(np.mean(np.abs(difference))),
        "rmse": float(math.sqrt(np.mean(difference ** 2))),
        "bias": float(np.mean(difference)),
        "aggregate_pct_error": 100.0 * (float(predicted.sum()) - total) / total if total > 0 else NAN,
    }


def ranking_metrics(predicted: np.ndarray, actual: np.ndarray) -> dict[str, float]:
    """How well the prediction ranks customers by realised value: normalized Gini, the share of
    realised value in the top decile of predictions, Spearman's correlation, and how well it
    sizes them (the decile MAPE). The Gini, Spearman and decile MAPE are the value metrics of
    Wang, Liu & Miao (2019); their Gini is a discrete sum that scores a constant prediction
    1/n where this trapezoid one scores 0, the same up to O(1/n) (tests/test_value_metrics.py).

    Parameters
    ----------
    predicted : numpy.ndarray
        Each customer's prediction.
    actual : numpy.ndarray
        Each customer's realised value, in the same order.

    Returns
    -------
    dict of str to float
        ``normalized_gini``, ``top_decile_capture``, ``spearman``, ``decile_mape`` (NaN where not
        computable).
    """
    constant = bool(np.all(predicted == predicted[0])) if len(predicted) else True
    spearman = NAN
    if not constant and not np.all(actual == actual[0]):
        spearman = float(stats.spearmanr(predicted, actual).statistic)
    gini = capture = NAN
    if len(actual) and actual.sum() > 0:
        curve = _capture_curve(predicted, actual)  # one curve for both: a sort per call
        capture = float(np.interp(0.1, *curve))
        if len(actual) >= 2:
            gini = _normalized_gini(curve, actual)
    return {"normalized_gini": gini, "top_decile_capture": capture, "spearman": spearman,
            "decile_mape": decile_mape(predicted, actual)}


def decile_mape(predicted: np.ndarray, actual: np.ndarray, groups: int = 10) -> float:
    """The mean over prediction deciles of the absolute relative error of the decile's mean
    prediction, a fraction (0.2: 20 %), as ``lifetime_value.metrics.decile_stats`` of the ZILN
    paper's code: customers fall into ``groups`` buckets by the quantiles of ``predicted`` (at
    0, 1/groups, ..., 1, linear interpolation; buckets closed on the right, the lowest edge
    included: ``pandas.qcut``'s rule); in each non-empty bucket b,
    ``|mean(predicted_b) - mean(actual_b)| / mean(actual_b)``; the metric is their mean.

    Ties always share a bucket (the rule depends on values only); where ties make edges
    coincide (``pandas.qcut`` refuses) the buckets between equal edges are empty and skipped,
    so such data gets fewer, larger buckets. A bucket whose customers realised nothing (a
    relative error against 0: the paper's code gives infinity, which on a short horizon's
    lowest deciles is the rule, not the exception) is pooled with the buckets above it until
    the pool's realised mean is positive (a zero pool at the top joins the one below): every
    customer still counts, and where no bucket realised 0 this is the paper's metric. NaN
    without customers, with a NaN prediction, or when nobody realised anything.

    Parameters
    ----------
    predicted : numpy.ndarray
        Each customer's prediction.
    actual : numpy.ndarray
        Each customer's realised value, in the same order.
    groups : int, default 10
        The buckets.

    Returns
    -------
    float
        The metric, a fraction, or NaN.
    """
    predicted = np.asarray(predicted, dtype=np.float64)
    actual = np.asarray(actual, dtype=np.float64)
    if len(actual) == 0 or not np.all(np.isfinite(predicted)):
        return NAN
    edges = np.quantile(predicted, np.linspace(0.0, 1.0, groups + 1))
    bucket = np.clip(np.searchsorted(edges, predicted, side="left") - 1, 0, groups - 1)
    counts = np.bincount(bucket, minlength=groups)
    used = counts > 0
    sums = np.column_stack([np.bincount(bucket, weights=predicted, minlength=groups)[used],
                            np.bincount(bucket, weights=actual, minlength=groups)[used],
                            counts[used]])
    pools, pool = [], np.zeros(3)
    for row in sums:  # lowest prediction first
        pool = pool + row
        if pool[1] > 0:
            pools.append(pool)
            pool = np.zeros(3)
    if not pools:
        return NAN
    if pool[2] > 0:  # buckets at the top that realised nothing join the last pool
        pools[-1] = pools[-1] + pool
    pooled = np.array(pools)
    mean_predicted, mean_actual = pooled[:, 0] / pooled[:, 2], pooled[:, 1] / pooled[:, 2]
    return float(np.mean(np.abs(mean_predicted - mean_actual) / mean_actual))


def activity_metrics(p_active: np.ndarray, active: np.ndarray) -> dict[str, float]:
    """AUC and Brier score of P(at least one purchase in the horizon) against holdout activity.

    Parameters
    ----------
    p_active : numpy.ndarray
        Each customer's P(at least one purchase).
    active : numpy.ndarray
        Whether each customer purchased in the holdout (bool or 0/1).

    Returns
    -------
    dict of str to float
        ``auc`` (NaN with one class) and ``brier`` (NaN without customers).
    """
    active = active.astype(bool)
    auc = NAN
    if active.any() and not active.all():
        # Mann-Whitney form of the AUC: ties between an active and an inactive customer count 1/2
        ranks = stats.rankdata(p_active)
        n_pos = int(active.sum())
        n_neg = len(active) - n_pos
        auc = float((ranks[active].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))
    brier = float(np.mean((p_active - active) ** 2)) if len(active) else NAN
    return {"auc": auc, "brier": brier}


def _capture_curve(predicted: np.ndarray, actual: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative share of customers and of realised value, customers taken in descending order
    of prediction; tied predictions form one step (no credit for the order inside a tie)."""
    order = np.argsort(-predicted, kind="stable")
    p_sorted, a_sorted = predicted[order], actual[order]
    ends = np.flatnonzero(np.r_[p_sorted[1:] != p_sorted[:-1], True]) + 1
    share_customers = np.r_[0.0, ends / len(actual)]
    share_value = np.r_[0.0, np.cumsum(a_sorted)[ends - 1] / actual.sum()]
    return share_customers, share_value


def normalized_gini(predicted: np.ndarray, actual: np.ndarray) -> float:
    """Gini of the capture curve ordered by prediction over that of the perfect ordering:
    1 ranks customers as well as hindsight, 0 no better than chance (a constant prediction).

    Parameters
    ----------
    predicted : numpy.ndarray
        Each customer's prediction.
    actual : numpy.ndarray
        Each customer's realised value, in the same order.

    Returns
    -------
    float
        The normalized Gini, or NaN (fewer than two customers, or nothing realised).
    """
    if len(actual) < 2 or actual.sum() <= 0:
        return NAN
    return _normalized_gini(_capture_curve(predicted, actual), actual)


def _normalized_gini(curve: tuple[np.ndarray, np.ndarray], actual: np.ndarray) -> float:
    best = _gini(*_capture_curve(actual, actual))
    return _gini(*curve) / best if best > 0 else NAN


def _gini(x: np.ndarray, y: np.ndarray) -> float:
    value = 2.0 * float(np.sum((x[1:] - x[:-1]) * (y[1:] + y[:-1]) / 2)) - 1.0
    return 0.0 if abs(value) < 1e-12 else value  # a constant score: 0, not -3e-15


def top_decile_capture(predicted: np.ndarray, actual: np.ndarray) -> float:
    """Share of realised value held by the 10% of customers with the highest predictions
    (a tie across the cut contributes in proportion).

    Parameters
    ----------
    predicted : numpy.ndarray
        Each customer's prediction.
    actual : numpy.ndarray
        Each customer's realised value, in the same order.

    Returns
    -------
    float
        The share, or NaN (no customers, or nothing realised).
    """
    if len(actual) == 0 or actual.sum() <= 0:
        return NAN
    return float(np.interp(0.1, *_capture_curve(predicted, actual)))


def by_frequency(frequency: np.ndarray, predicted: np.ndarray, actual: np.ndarray,
                 max_frequency: int = 7) -> pd.DataFrame:
    """Mean predicted and actual holdout purchases by calibration frequency (the last class
    pooling ``max_frequency`` and above): the conditional-expectation check of Fader et al.

    Parameters
    ----------
    frequency : numpy.ndarray
        Each customer's repeat purchases in calibration.
    predicted : numpy.ndarray
        Each customer's predicted holdout purchases.
    actual : numpy.ndarray
        Each customer's realised holdout purchases.
    max_frequency : int, default 7
        The last class pools this frequency and above.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``calibration_frequency`` ("0", "1", ..., "7+"): ``customers``,
        ``predicted``, ``actual`` (means).
    """
    classes = np.minimum(np.asarray(frequency).astype(np.int64), max_frequency)
    # counted with bincount: a pandas groupby cost 60 ms a call, once per cutoff and candidate
    present, codes = np.unique(classes, return_inverse=True)
    customers = np.bincount(codes, minlength=len(present))
    predicted_sum = np.bincount(codes, weights=np.asarray(predicted, np.float64), minlength=len(present))
    actual_sum = np.bincount(codes, weights=np.asarray(actual, np.float64), minlength=len(present))
    labels = [str(i) if i < max_frequency else f"{max_frequency}+" for i in present]
    return pd.DataFrame({"customers": customers.astype(np.int64),
                         "predicted": predicted_sum / customers, "actual": actual_sum / customers},
                        index=pd.Index(labels, name="calibration_frequency"))
