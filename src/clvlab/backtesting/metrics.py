"""Backtest metrics: predicted against realised holdout purchases, spend and activity.

Every function returns a plain float, or ``None`` where the metric is undefined on the data (a
correlation of a constant prediction, an AUC with one class, a percentage of a zero total). The
backtest leaves undefined metrics out of its tables rather than writing NaN.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

__all__ = ["error_metrics", "ranking_metrics", "activity_metrics", "normalized_gini",
           "top_decile_capture", "by_frequency"]


def error_metrics(predicted: np.ndarray, actual: np.ndarray) -> dict[str, float | None]:
    """Per-customer MAE, RMSE and bias (mean of predicted - actual), and the aggregate % error
    100 (sum predicted - sum actual) / sum actual."""
    difference = predicted - actual
    total = float(actual.sum())
    return {
        "mae": float(np.mean(np.abs(difference))),
        "rmse": float(math.sqrt(np.mean(difference ** 2))),
        "bias": float(np.mean(difference)),
        "aggregate_pct_error": 100.0 * (float(predicted.sum()) - total) / total if total > 0 else None,
    }


def ranking_metrics(predicted: np.ndarray, actual: np.ndarray) -> dict[str, float | None]:
    """How well the prediction ranks customers by realised value: normalized Gini, the share of
    realised value in the top decile of predictions, and Spearman's correlation."""
    constant = bool(np.all(predicted == predicted[0])) if len(predicted) else True
    spearman = None
    if not constant and not np.all(actual == actual[0]):
        spearman = float(stats.spearmanr(predicted, actual).statistic)
    return {"normalized_gini": normalized_gini(predicted, actual),
            "top_decile_capture": top_decile_capture(predicted, actual),
            "spearman": spearman}


def activity_metrics(p_active: np.ndarray, active: np.ndarray) -> dict[str, float | None]:
    """AUC and Brier score of P(at least one purchase in the horizon) against holdout activity."""
    active = active.astype(bool)
    auc = None
    if active.any() and not active.all():
        # Mann-Whitney form of the AUC: ties between an active and an inactive customer count 1/2
        ranks = stats.rankdata(p_active)
        n_pos = int(active.sum())
        n_neg = len(active) - n_pos
        auc = float((ranks[active].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))
    return {"auc": auc, "brier": float(np.mean((p_active - active) ** 2))}


def _capture_curve(predicted: np.ndarray, actual: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative share of customers and of realised value, customers taken in descending order
    of prediction; tied predictions form one step (no credit for the order inside a tie)."""
    order = np.argsort(-predicted, kind="stable")
    p_sorted, a_sorted = predicted[order], actual[order]
    ends = np.flatnonzero(np.r_[p_sorted[1:] != p_sorted[:-1], True]) + 1
    share_customers = np.r_[0.0, ends / len(actual)]
    share_value = np.r_[0.0, np.cumsum(a_sorted)[ends - 1] / actual.sum()]
    return share_customers, share_value


def normalized_gini(predicted: np.ndarray, actual: np.ndarray) -> float | None:
    """Gini of the capture curve ordered by prediction over that of the perfect ordering:
    1 ranks customers as well as hindsight, 0 no better than chance (a constant prediction)."""
    if len(actual) < 2 or actual.sum() <= 0:
        return None

    def gini(score: np.ndarray) -> float:
        x, y = _capture_curve(score, actual)
        value = 2.0 * float(np.sum((x[1:] - x[:-1]) * (y[1:] + y[:-1]) / 2)) - 1.0
        return 0.0 if abs(value) < 1e-12 else value  # a constant score: 0, not -3e-15

    best = gini(actual)
    return gini(predicted) / best if best > 0 else None


def top_decile_capture(predicted: np.ndarray, actual: np.ndarray) -> float | None:
    """Share of realised value held by the 10% of customers with the highest predictions
    (a tie across the cut contributes in proportion)."""
    if len(actual) == 0 or actual.sum() <= 0:
        return None
    x, y = _capture_curve(predicted, actual)
    return float(np.interp(0.1, x, y))


def by_frequency(frequency: np.ndarray, predicted: np.ndarray, actual: np.ndarray,
                 max_frequency: int = 7):
    """Mean predicted and actual holdout purchases by calibration frequency (the last class
    pooling ``max_frequency`` and above): the conditional-expectation check of Fader et al."""
    import pandas as pd

    classes = np.minimum(frequency.astype(np.int64), max_frequency)
    frame = pd.DataFrame({"frequency": classes, "predicted": predicted, "actual": actual})
    table = frame.groupby("frequency").agg(customers=("actual", "size"),
                                           predicted=("predicted", "mean"),
                                           actual=("actual", "mean"))
    table.index = [str(i) if i < max_frequency else f"{max_frequency}+" for i in table.index]
    table.index.name = "calibration_frequency"
    return table
