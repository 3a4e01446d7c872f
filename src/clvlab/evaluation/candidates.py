"""What a backtest compares: clvlab models (alone or with a spend model) and baselines.

A candidate sees only the calibration data of one cutoff (:class:`Calibration`) and predicts,
for every calibration customer, the expected purchases, expected spend and probability of at
least one purchase in the holdout window. A fresh copy is fitted at every cutoff.
"""

from __future__ import annotations

import copy
import re
from typing import Any

import numpy as np
import pandas as pd

from clvlab.core.errors import ClvlabError
from clvlab.data.calibration import Calibration

__all__ = ["Calibration", "Candidate", "ModelCandidate", "PerSegment", "make_candidate",
           "default_candidates", "CANDIDATE_NAMES"]


class Candidate:
    """A backtest candidate: ``fit`` on one cutoff's calibration data, then ``predict``.

    ``fit`` is told the holdout horizon (a candidate may train for it, e.g. the churn adjuster);
    ``predict`` is asked for that horizon and for shorter ones (the tracking curve)."""

    name = "candidate"
    #: whether the candidate's formula needs spend (an LTV, ARPU or AOV): the backtest refuses
    #: such candidates up front on a log without an amount column
    needs_amounts = False

    def fit(self, calibration: Calibration, horizon: float) -> "Candidate":
        return self

    def predict(self, calibration: Calibration, horizon: float) -> pd.DataFrame:
        """DataFrame indexed like ``calibration.rfm`` with ``expected_purchases``, ``p_active``
        and, for candidates that value purchases, ``expected_spend``."""
        raise NotImplementedError

    def total_expected_purchases(self, calibration: Calibration, horizons: np.ndarray) -> np.ndarray:
        """Expected purchases of all calibration customers together in each window of
        ``horizons`` (the backtest's tracking curve). This default predicts once per horizon;
        a candidate may compute it faster, with the same result.

        Parameters
        ----------
        calibration : the cutoff's data.
        horizons : window lengths in the summary's time unit.

        Returns
        -------
        numpy.ndarray
            One total per horizon.
        """
        return np.array([float(self.predict(calibration, h)["expected_purchases"].sum())
                         for h in horizons])

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"


MODEL_NAMES = {"BetaGeo": "bg-nbd", "ParetoNBD": "pareto-nbd", "ModifiedBetaGeo": "mbg-nbd",
               "GammaGamma": "gamma-gamma"}


class ModelCandidate(Candidate):
    """A clvlab transaction model, optionally with a Gamma-Gamma spend model.

    Both are copied and fitted by maximum likelihood (or whatever method they were built with)
    on the calibration summary. Spend is conditioned on calibration data only: expected spend =
    expected purchases x the spend model's conditional mean spend per purchase. Customers whose
    repeat purchases were all of value 0 cannot enter the Gamma-Gamma fit (it has no zero
    spend) and are valued at the population mean, like customers without repeats.
    """

    def __init__(self, transaction_model, spend_model=None, name: str | None = None):
        self.transaction_model = transaction_model
        self.spend_model = spend_model
        parts = [MODEL_NAMES.get(type(m).__name__, type(m).__name__)
                 for m in (transaction_model, spend_model) if m is not None]
        self.name = name or " + ".join(parts)

    @property
    def needs_amounts(self) -> bool:
        return self.spend_model is not None

    def fit(self, calibration: Calibration, horizon: float) -> "ModelCandidate":
        rfm = calibration.rfm
        self.transaction_model_ = copy.deepcopy(self.transaction_model).fit(rfm)
        self.spend_model_ = None
        if self.spend_model is not None:
            valued = (rfm["frequency"] > 0) & (rfm["monetary_value"] > 0)
            self.spend_model_ = copy.deepcopy(self.spend_model).fit(rfm[valued])
        return self

    def predict(self, calibration: Calibration, horizon: float) -> pd.DataFrame:
        rfm = calibration.rfm
        model = self.transaction_model_
        if hasattr(model, "scores"):  # both at once, sharing P(alive): about half the work
            scores = model.scores(rfm, horizon)
            out = pd.DataFrame({"expected_purchases": scores["expected_purchases"],
                                "p_active": scores["probability_of_purchase"]})
        else:
            out = pd.DataFrame({"expected_purchases": model.expected_purchases(rfm, horizon),
                                "p_active": model.probability_of_purchase(rfm, horizon)})
        if self.spend_model_ is not None:
            out["expected_spend"] = (out["expected_purchases"]
                                     * self.spend_model_.expected_spend(rfm, unvalued="population"))
        return out

    def total_expected_purchases(self, calibration: Calibration, horizons: np.ndarray) -> np.ndarray:
        """The tracking curve in one call of the model: each distinct history once per horizon
        (customers with the same history have the same expectation), weighted by how many
        customers share it; no P(any purchase) or spend, which the curve does not need."""
        from clvlab.inference.mle import group_rows
        from clvlab.models.transaction import TransactionModel

        # a subclass that changes the predictions (the churn adjuster) must go through them,
        # and only a TransactionModel is known to predict from (frequency, recency, T) alone
        if (type(self).predict is not ModelCandidate.predict
                or not isinstance(self.transaction_model_, TransactionModel)):
            return super().total_expected_purchases(calibration, horizons)

        rfm = calibration.rfm
        _, inverse = group_rows([rfm[c].to_numpy(np.float64) for c in ("frequency", "recency", "T")])
        _, first = np.unique(inverse, return_index=True)  # a customer of each history
        counts = np.bincount(inverse, minlength=len(first))
        distinct = rfm.iloc[first]
        horizons = np.asarray(horizons, dtype=np.float64)
        stacked = distinct.iloc[np.tile(np.arange(len(first)), len(horizons))]
        values = self.transaction_model_.expected_purchases(stacked, np.repeat(horizons, len(first)))
        return values.to_numpy(np.float64).reshape(len(horizons), len(first)) @ counts


class PerSegment(Candidate):
    """One copy of a transaction model per value of a customer attribute (``segment``): for
    segments known in advance (channel, region), and as the oracle in simulations where a
    segment the RFM summary cannot see drives behaviour. Needs the backtest's
    ``customer_attributes`` to hold the column."""

    def __init__(self, transaction_model, attribute: str, name: str | None = None):
        self.transaction_model = transaction_model
        self.attribute = attribute
        base = MODEL_NAMES.get(type(transaction_model).__name__, type(transaction_model).__name__)
        self.name = name or f"{base} per {attribute}"

    def _segments(self, calibration: Calibration):
        if calibration.attributes is None or self.attribute not in calibration.attributes:
            raise ClvlabError(f"candidate {self.name!r} needs the customer attribute "
                              f"{self.attribute!r} (backtest(..., customer_attributes=...))")
        return calibration.rfm.groupby(calibration.attributes[self.attribute], sort=True)

    def fit(self, calibration: Calibration, horizon: float) -> "PerSegment":
        self.models_ = {key: copy.deepcopy(self.transaction_model).fit(rows)
                        for key, rows in self._segments(calibration)}
        return self

    def predict(self, calibration: Calibration, horizon: float) -> pd.DataFrame:
        parts = []
        for key, rows in self._segments(calibration):
            if key not in self.models_:
                raise ClvlabError(f"segment {key!r} was not seen when {self.name!r} was fitted")
            model = self.models_[key]
            parts.append(pd.DataFrame({"expected_purchases": model.expected_purchases(rows, horizon),
                                       "p_active": model.probability_of_purchase(rows, horizon)}))
        return pd.concat(parts).loc[calibration.rfm.index]


CANDIDATE_NAMES = ("bg-nbd", "pareto-nbd", "mbg-nbd", "<model>+gamma-gamma",
                   "<model>[+gamma-gamma]+churn-adjuster",
                   "historical-average", "historical-ltv", "arpu-churn",
                   "aov-frequency-lifespan", "active-<N>d (or -<N>w)")


# the default comparison: the models with their spend model and every practitioners' formula;
# without amounts, the transaction models alone and the baselines that need no spend
_DEFAULTS_WITH_AMOUNTS = ("pareto-nbd+gamma-gamma", "bg-nbd+gamma-gamma", "historical-average",
                          "historical-ltv", "arpu-churn", "aov-frequency-lifespan", "active-90d")
_DEFAULTS_WITHOUT_AMOUNTS = ("pareto-nbd", "bg-nbd", "historical-average", "active-90d")


def default_candidates(has_amounts: bool) -> list[str]:
    """The candidate names a backtest compares by default.

    Parameters
    ----------
    has_amounts : whether the log has an amount column.

    Returns
    -------
    list of str
        With amounts: Pareto/NBD and BG/NBD with Gamma-Gamma and every baseline. Without:
        Pareto/NBD, BG/NBD, ``historical-average`` and ``active-90d`` (the candidates that
        predict purchases and activity without a spend), so that such a log backtests by
        default.
    """
    return list(_DEFAULTS_WITH_AMOUNTS if has_amounts else _DEFAULTS_WITHOUT_AMOUNTS)


def make_candidate(spec: Any) -> Candidate:
    """A candidate from a Candidate, a clvlab model, a (transaction model, spend model) pair or
    a name such as ``"pareto-nbd+gamma-gamma"``, ``"historical-average"`` or ``"active-90d"``."""
    from clvlab.models import BetaGeo, GammaGamma, ModifiedBetaGeo, ParetoNBD
    from clvlab.models.base import BaseModel
    from clvlab.evaluation import baselines

    if isinstance(spec, Candidate):
        return spec
    if isinstance(spec, BaseModel):
        return ModelCandidate(spec)
    if isinstance(spec, tuple) and len(spec) == 2 and all(isinstance(m, BaseModel) for m in spec):
        return ModelCandidate(*spec)
    if not isinstance(spec, str):
        raise ClvlabError(f"a candidate must be a name, a clvlab model or a (transaction, spend) "
                          f"pair, not {type(spec).__name__}")
    name = spec.strip().lower().replace(" ", "")
    transaction = {"bg-nbd": BetaGeo, "pareto-nbd": ParetoNBD, "mbg-nbd": ModifiedBetaGeo}
    simple = {"historical-average": baselines.HistoricalAverage,
              "historical-ltv": baselines.HistoricalLTV, "arpu-churn": baselines.ArpuChurn,
              "aov-frequency-lifespan": baselines.AovFrequencyLifespan}
    model, *rest = name.split("+")
    adjusted = rest[-1:] == ["churn-adjuster"]
    rest = rest[:-1] if adjusted else rest
    if model in transaction and rest in ([], ["gamma-gamma"]):
        spend = GammaGamma() if rest else None
        if adjusted:
            from clvlab.churn import ChurnAdjustedCandidate

            return ChurnAdjustedCandidate(transaction[model](), spend)
        return ModelCandidate(transaction[model](), spend)
    if name in simple:
        return simple[name]()
    match = re.fullmatch(r"active-(\d+(?:\.\d+)?)([dw])", name)
    if match:
        days = float(match.group(1)) * (7 if match.group(2) == "w" else 1)
        return baselines.RecentActivity(days)
    raise ClvlabError(f"unknown candidate {spec!r}; use one of {', '.join(CANDIDATE_NAMES)}")
