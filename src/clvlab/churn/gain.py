"""Does the churn adjustment help? A check on a window whose outcome is known.

Why a check is needed. The classifier is trained to be calibrated on P(any purchase), and the
adjustment multiplies the base model's E[N] by P_clf / P_base. A good P(any purchase) does not
make a good E[N]: (1) the factor multiplies E[N | N >= 1], so an error of the classifier of
0.05 on a buyer expected to buy 4 times moves E[N] by 0.2; (2) where P_base is small (the
one-time buyers who are most customers) a small absolute change is a large factor; (3) the
classifier is trained one horizon back, on customers younger than at the cutoff, so its
level of activity can be that of another age. On the CDNOW master log (26 weeks, cutoff
1997-10-31) it raised the one-time buyers' P(any purchase) from 0.067 to 0.161 (0.107 came),
and as 89 % of them bought nothing, the purchases MAE rose from 0.566 to 0.656 although the
mean prediction moved towards the mean outcome: a mean absolute error rewards predictions near
each customer's median (0 for most), so raising many small expectations costs more than it
earns.

The check. A classifier trained one horizon earlier still predicts a window whose outcome the
training data holds. :func:`check_gain` compares the base model with the adjustment on it,
with the adjustment shrunk towards the base model by weights in ``WEIGHTS``:
``P = P_base + w (P_clf - P_base)`` for activity, and ``E = E_base (1 + v (P_clf / P_base - 1))``
for counts. It keeps the weight with the largest gain only where the gain is beyond noise
(``z`` bootstrap standard errors over customers) and no other metric of that output gets
worse, and adjusts counts only where it adjusts activity; otherwise the weight is 0 and the
base model is left alone.

Where the check runs. Out of sample, always: on a later window (the backtest candidate: an
adjuster trained one horizon earlier predicts a window whose outcome the training data holds,
which also sees a change of the customers' age between training and use), or, by default in
:meth:`clvlab.ChurnAdjuster.fit`, on out-of-fold predictions for the training customers (each
customer predicted by a classifier that never saw their label). A check on the training rows
themselves would reward a classifier for memorising them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

__all__ = ["GainCheck", "check_gain", "WEIGHTS"]

WEIGHTS = (0.25, 0.5, 0.75, 1.0)


@dataclass(frozen=True)
class GainCheck:
    """What the check found and decided.

    Parameters
    ----------
    activity_weight, count_weight : float
        The weights of the adjustment (0: the base model's P(any purchase), or E[N], left
        alone; 1: the full adjustment).
    customers : int
        Customers in the check window.
    reason : str
        The decision in words.
    metrics : dict of str to dict of str to float, optional
        For ``mae`` (purchases), ``auc`` and ``brier`` (activity), the base model's value
        (``base``), the full adjustment's (``adjusted``) and the chosen weights' (``chosen``)
        (no ``mae`` where purchase counts were not known); empty by default.
    source : str, default ""
        Where the outcome came from (held-out customers, a later window), or "".
    """

    activity_weight: float
    count_weight: float
    customers: int
    reason: str
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    source: str = ""

    def to_dict(self) -> dict[str, Any]:
        """The check as a JSON-ready dict (what :meth:`from_dict` reads back).

        Returns
        -------
        dict
            The fields by name.
        """
        return asdict(self)

    @classmethod
    def from_dict(cls, payload: dict[str, Any]) -> "GainCheck":
        """A check from the dict :meth:`to_dict` wrote (a saved adjuster's ``check``).

        Parameters
        ----------
        payload : dict
            ``activity_weight``, ``count_weight``, ``customers`` and ``reason``; ``metrics``
            and ``source`` optional.

        Returns
        -------
        GainCheck
            With the numbers as floats and ints.
        """
        return cls(activity_weight=float(payload["activity_weight"]),
                   count_weight=float(payload["count_weight"]),
                   customers=int(payload["customers"]), reason=str(payload["reason"]),
                   metrics={k: {n: float(v) for n, v in m.items()}
                            for k, m in payload.get("metrics", {}).items()},
                   source=str(payload.get("source", "")))

    @classmethod
    def not_made(cls, reason: str, customers: int = 0) -> "GainCheck":
        """No check was possible: the base model is left alone.

        Parameters
        ----------
        reason : str
            Why no check was possible (it goes into the check's ``reason``).
        customers : int, default 0
            Customers in the check window.

        Returns
        -------
        GainCheck
            Weights 0 and 0, no metrics.
        """
        return cls(0.0, 0.0, customers, f"no check possible ({reason}): base model left alone")

    def describe(self) -> str:
        """One line: what is adjusted and why.

        Returns
        -------
        str
            The weights, the reason and where the outcome came from.
        """
        parts = []
        for label, weight in (("activity", self.activity_weight), ("counts", self.count_weight)):
            parts.append(f"{label} weight {weight:g}")
        where = f" (checked on {self.source})" if self.source else ""
        return f"{', '.join(parts)}: {self.reason}{where}"

    def gains(self) -> dict[str, float]:
        """How much the applied adjustment improves each metric on the base model.

        Positive = better: base minus chosen for ``mae`` and ``brier``, chosen minus base for
        ``auc``.

        Returns
        -------
        dict of str to float
            One gain a metric of ``metrics``.
        """
        sign = {"mae": -1.0, "brier": -1.0, "auc": 1.0}
        return {k: sign.get(k, 1.0) * (m["chosen"] - m["base"])
                for k, m in self.metrics.items() if "chosen" in m and "base" in m}

    def worse(self) -> str:
        """The metrics on which the full adjustment did not beat the base model, in words.

        Returns
        -------
        str
            E.g. ``"purchases MAE 0.4000 -> 0.4100"`` (base -> adjusted), comma-separated, or
            "" where it beat the base model on every one.
        """
        better = {"mae": lambda b, a: a < b, "brier": lambda b, a: a < b, "auc": lambda b, a: a > b}
        names = {"mae": "purchases MAE", "auc": "activity AUC", "brier": "activity Brier score"}
        return ", ".join(f"{names.get(k, k)} {m['base']:.4f} -> {m['adjusted']:.4f}"
                         for k, m in self.metrics.items()
                         if k in better and not better[k](m["base"], m["adjusted"]))


def check_gain(base_expected: Any, base_active: Any, classifier_active: Any, purchases: Any, *,
               z: float = 2.0, bootstrap: int = 100, seed: int = 0,
               counts_known: bool = True) -> GainCheck:
    """Choose the weights of the adjustment from a window whose outcome is known.

    Parameters
    ----------
    base_expected, base_active : the base model's E[N] and P(N >= 1) over the window.
    classifier_active : the classifier's P(N >= 1), from a classifier trained before the window.
    purchases : each customer's purchases in the window.
    z : a gain counts when its mean is at least ``z`` bootstrap standard errors above 0.
    bootstrap : Poisson-bootstrap replicates over customers.
    seed : of the bootstrap.
    counts_known : False where ``purchases`` only says who bought (1) and who did not (0): the
        counts cannot be checked, and expected purchases are left to the base model.

    Returns
    -------
    GainCheck
        Activity: the weight with the lowest Brier score among those whose Brier score and AUC
        are both no worse than the base model's and of which one is better beyond noise.
        Counts, where the activity weight is above 0: the weight with the lowest purchases MAE
        among those better beyond noise. Otherwise 0 (the base model's).
    """
    base_expected, base_active, classifier_active, purchases = (
        np.asarray(a, dtype=np.float64) for a in (base_expected, base_active, classifier_active, purchases))
    n = len(purchases)
    active = purchases > 0
    if n == 0 or active.all() or not active.any():
        return GainCheck.not_made("the check window has customers of one outcome only", n)
    rng = np.random.default_rng(seed)
    weights = rng.poisson(1.0, size=(bootstrap, n)).astype(np.float64)
    weights = np.vstack([np.ones(n), weights])  # row 0: the sample itself

    def brier(p):
        return (p - active) ** 2

    def mae(e):
        return np.abs(purchases - e)

    def means(loss):
        return weights @ loss / weights.sum(axis=1)

    def significant(gains):  # row 0 is the estimate, the rest its bootstrap
        spread = gains[1:].std()
        return gains[0] > 0 and gains[0] >= z * spread

    factor = classifier_active / np.maximum(base_active, 1e-300)
    metrics = {"mae": {"base": float(mae(base_expected).mean()),
                       "adjusted": float(mae(base_expected * factor).mean())},
               "auc": {"base": float(_weighted_auc(base_active, active, weights[:1])[0]),
                       "adjusted": float(_weighted_auc(classifier_active, active, weights[:1])[0])},
               "brier": {"base": float(brier(base_active).mean()),
                         "adjusted": float(brier(classifier_active).mean())}}
    base_brier, base_mae = means(brier(base_active)), means(mae(base_expected))
    base_auc = _weighted_auc(base_active, active, weights)

    activity_weight, best = 0.0, 0.0
    for w in WEIGHTS:
        p = base_active + w * (classifier_active - base_active)
        brier_gain = base_brier - means(brier(p))
        auc_gain = _weighted_auc(p, active, weights) - base_auc
        if brier_gain[0] < 0 or auc_gain[0] < 0:
            continue
        if (significant(brier_gain) or significant(auc_gain)) and brier_gain[0] > best:
            activity_weight, best = w, brier_gain[0]
    # counts only where the classifier's P(any purchase) itself beats the base model's: an MAE
    # gain without that comes from moving the level of the expectations towards the many zeros
    # (MAE rewards medians), not from what the classifier knows, and did not last (simulation
    # with a coin-flip attribute: a check-window MAE gain, then 0.8 % worse at the cutoff)
    count_weight, best = 0.0, 0.0
    for v in WEIGHTS if activity_weight > 0 and counts_known else ():
        mae_gain = base_mae - means(mae(base_expected * (1.0 + v * (factor - 1.0))))
        if significant(mae_gain) and mae_gain[0] > best:
            count_weight, best = v, mae_gain[0]

    chosen_p = base_active + activity_weight * (classifier_active - base_active)
    metrics["mae"]["chosen"] = float(mae(base_expected * (1.0 + count_weight * (factor - 1.0))).mean())
    if not counts_known:  # an MAE of 0/1 indicators is no MAE of purchases
        del metrics["mae"]
    metrics["auc"]["chosen"] = float(_weighted_auc(chosen_p, active, weights[:1])[0])
    metrics["brier"]["chosen"] = float(brier(chosen_p).mean())
    if activity_weight == 0 and count_weight == 0:
        reason = "no gain beyond noise in the check window: base model left alone"
    elif count_weight == 0 and not counts_known:
        reason = ("a gain in activity; purchase counts not known, so expected purchases left to "
                  "the base model")
    elif count_weight == 0:
        reason = "a gain in activity only: expected purchases left to the base model"
    elif activity_weight == 0:
        reason = "a gain in counts only: P(any purchase) left to the base model"
    else:
        reason = "a gain in activity and counts in the check window"
    return GainCheck(activity_weight, count_weight, n, reason, metrics)


def _weighted_auc(score: np.ndarray, positive: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """The AUC (ties count one half) of ``score`` for each row of customer ``weights``: one
    sort for all the rows, so that a bootstrap costs a pass over the customers per replicate."""
    order = np.argsort(score, kind="stable")
    sorted_score = score[order]
    starts = np.flatnonzero(np.r_[True, sorted_score[1:] != sorted_score[:-1]])
    w = weights[:, order]
    pos = np.add.reduceat(w * positive[order], starts, axis=1)
    neg = np.add.reduceat(w * ~positive[order], starts, axis=1)
    below = np.cumsum(neg, axis=1) - neg  # negatives scored lower than each tie group
    total = pos.sum(axis=1) * neg.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (pos * (below + 0.5 * neg)).sum(axis=1) / total
