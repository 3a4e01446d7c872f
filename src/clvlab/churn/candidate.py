"""The churn adjuster as a backtest candidate ("pareto-nbd + churn adjuster")."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd

from ..backtesting.candidates import Calibration, ModelCandidate
from ..errors import ClvlabError
from .adjuster import ChurnAdjuster
from .features import feature_frame, shift_back

__all__ = ["ChurnAdjustedCandidate"]


class ChurnAdjustedCandidate(ModelCandidate):
    """A transaction model (and spend model) whose predictions a ChurnAdjuster corrects.

    At a cutoff c with horizon h it trains on what is known by c: features at c - h (the
    customers acquired by then) and labels from (c - h, c], with the base model fitted at c - h
    feeding it. To predict, the base model is refitted on everything up to c, as the plain
    model candidate's is, and that one model both feeds the classifier the features at c and
    makes the predictions the classifier corrects: factor = P_clf(N >= 1) / P_base(N >= 1)
    (see :mod:`clvlab.churn.adjuster`). In simulations this did as well as keeping the c - h
    base model for the classifier's inputs, and better on MAE. For
    windows shorter than h (the tracking curve) the factor of h is applied to the base
    expectation at that length, and P(any purchase) is the base one times it, at most 1.
    """

    def __init__(self, transaction_model, spend_model=None, classifier=None, name: str | None = None):
        super().__init__(transaction_model, spend_model, name)
        self.classifier = classifier
        if name is None:
            self.name = f"{self.name} + churn adjuster"

    def fit(self, calibration: Calibration, horizon: float) -> "ChurnAdjustedCandidate":
        super().fit(calibration, horizon)
        earlier, active = shift_back(calibration, horizon)
        if active.all() or not active.any():
            raise ClvlabError(f"every customer at {earlier.cutoff.date()} was "
                              f"{'active' if active.all() else 'inactive'} in the next {horizon:g} "
                              "time units: no churn to learn from")
        adjuster = ChurnAdjuster(copy.deepcopy(self.transaction_model), self.classifier, horizon)
        adjuster.fit(feature_frame(earlier), (~active).astype(np.int64))
        self.adjuster_ = adjuster
        self.horizon_ = horizon
        self._factor = None
        return self

    def predict(self, calibration: Calibration, horizon: float) -> pd.DataFrame:
        base = super().predict(calibration, horizon)
        if self._factor is None:
            adjuster = copy.copy(self.adjuster_)
            adjuster.base_model_ = self.transaction_model_
            active = adjuster.probability_of_purchase(feature_frame(calibration)).to_numpy()
            base_active = self.transaction_model_.probability_of_purchase(calibration.rfm, self.horizon_)
            self._factor = active / np.maximum(base_active.to_numpy(), 1e-300)
        factor = self._factor
        out = base.copy()
        out["expected_purchases"] = base["expected_purchases"] * factor
        if "expected_spend" in out:
            out["expected_spend"] = base["expected_spend"] * factor
        # at the trained horizon this is the classifier's own P(active)
        out["p_active"] = np.clip(base["p_active"] * factor, 0.0, 1.0)
        return out
