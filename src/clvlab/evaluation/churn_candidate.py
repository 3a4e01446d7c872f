"""The churn adjuster as a backtest candidate ("pareto-nbd + churn adjuster")."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
from sklearn.base import clone

from clvlab.evaluation.candidates import Calibration, ModelCandidate
from clvlab.core.errors import ClvlabError
from clvlab.churn.adjuster import ChurnAdjuster
from clvlab.churn.features import feature_frame, shift_back, window_purchases
from clvlab.churn.gain import GainCheck

__all__ = ["ChurnAdjustedCandidate"]


class ChurnAdjustedCandidate(ModelCandidate):
    """A transaction model (and spend model) whose predictions a ChurnAdjuster corrects, where
    a check inside the training window shows that it helps.

    At a cutoff c with horizon h it trains on what is known by c: features at c - h (the
    customers acquired by then) and labels from (c - h, c], with the base model fitted at c - h
    feeding it. To predict, the base model is refitted on everything up to c, as the plain
    model candidate's is, and that one model both feeds the classifier the features at c and
    makes the predictions the classifier corrects (see :mod:`clvlab.churn.adjuster`). For
    windows shorter than h (the tracking curve) the factors of h are applied to the base
    model's values at that length (P(any purchase) at most 1).

    The check (``check_gain=True``, the default): a second adjuster, trained at c - 2h on the
    labels of (c - 2h, c - h], predicts the window (c - h, c], whose outcome is known by c;
    :func:`clvlab.churn.check_gain` compares it with the base model there and sets the weights
    of the adjustment, 0 (base model left alone) where it finds no gain beyond noise. Where no
    check is possible (nobody acquired by c - 2h, or one outcome only) the base model is left
    alone; so it is where the view at c - h or c - 2h has no customer observed for a whole
    horizon. ``decision_`` holds the :class:`~clvlab.churn.GainCheck`. With
    ``check_gain=False`` the full adjustment is applied unchecked, with a
    :class:`~clvlab.churn.UncheckedAdjustmentWarning` (and a cutoff without training data is an
    error). The candidate's adjusters skip the check that ``ChurnAdjuster.fit`` makes by default
    on held-out customers: the check on the later window replaces it, and also sees a change of
    the customers' age between training and use.

    Parameters
    ----------
    transaction_model : BetaGeo, ParetoNBD or ModifiedBetaGeo
        The base model, without covariates: copies are fitted at c, c - h and c - 2h.
    spend_model : GammaGamma or LogNormalSpend, optional
        A spend model; its expected spend is scaled by the same factor as the purchases.
    classifier : scikit-learn classifier, optional
        The adjuster's classifier (None: :func:`clvlab.churn.default_classifier`).
    name : str, optional
        The candidate's name; None: ``"<model> + churn adjuster"``.
    check_gain : bool, default True
        Check the gain one horizon earlier and apply the weights it chooses (above); False
        applies the full adjustment unchecked.

    Attributes
    ----------
    adjuster_ : ChurnAdjuster or None
        The adjuster applied at the cutoff, or None where the base model is left alone.
    decision_ : GainCheck or None
        The check behind the weights (None with ``check_gain=False``).
    horizon_ : float
        The holdout horizon ``fit`` was given.

    Raises
    ------
    ClvlabError
        Where the models have covariates.
    """

    def __init__(self, transaction_model, spend_model=None, classifier=None, name: str | None = None,
                 check_gain: bool = True):
        super().__init__(transaction_model, spend_model, name)
        if self.attribute_columns:
            # the adjuster's training views (shift_back, feature_frame) carry no attributes
            raise ClvlabError(f"{self.name}: covariates and the churn adjuster do not combine "
                              "yet; backtest the model with covariates as a candidate of its own")
        self.classifier = classifier
        self.check_gain = check_gain
        if name is None:
            self.name = f"{self.name} + churn adjuster"

    def fit(self, calibration: Calibration, horizon: float) -> "ChurnAdjustedCandidate":
        """Fit the models at the cutoff, and the adjuster one horizon back where it helps.

        Parameters
        ----------
        calibration : Calibration
            One cutoff's calibration data.
        horizon : float
            The holdout window h, in the summary's time unit: the adjuster's labels' window.

        Returns
        -------
        ChurnAdjustedCandidate
            self, with ``adjuster_`` and ``decision_`` (class docstring).

        Raises
        ------
        ClvlabError
            With ``check_gain=False``, where there is no training data one horizon back
            (nobody acquired by then, or one outcome only).
        """
        super().fit(calibration, horizon)
        self.horizon_ = horizon
        self.adjuster_ = None
        self._cache = None
        if not self.check_gain:
            earlier, active = self._training_view(calibration, horizon, strict=True)
            self.adjuster_ = self._adjuster(earlier, active, horizon)
            self.decision_ = None
            return self
        view = self._training_view(calibration, horizon, strict=False)
        if isinstance(view, str):
            self.decision_ = GainCheck.not_made(view)
            return self
        earlier, active = view
        # the base model at c - h, fitted once: it feeds the deployed classifier, and it is the
        # base model that the check compares with on the window (c - h, c]
        try:
            base = clone(self.transaction_model, safe=False).fit(earlier.rfm)
        except ClvlabError as exc:
            self.decision_ = GainCheck.not_made(f"at {earlier.cutoff.date()}: {exc}")
            return self
        self.decision_ = self._check(calibration, earlier, base, horizon)
        if self.decision_.activity_weight or self.decision_.count_weight:
            self.adjuster_ = self._adjuster(earlier, active, horizon, base).use_check(self.decision_)
        return self

    def predict(self, calibration: Calibration, horizon: float) -> pd.DataFrame:
        """The base model's predictions times the adjuster's factors (class docstring).

        Parameters
        ----------
        calibration : Calibration
            The cutoff's calibration data.
        horizon : float
            The window after the cutoff, in the summary's time unit.

        Returns
        -------
        pandas.DataFrame
            Indexed like ``calibration.rfm``: ``expected_purchases``, ``p_active``
            and (with a spend model) ``expected_spend``.
        """
        base = super().predict(calibration, horizon)
        if self.adjuster_ is None:
            return base
        activity, count = self._factors(calibration)
        out = base.copy()
        out["expected_purchases"] = base["expected_purchases"] * count
        if "expected_spend" in out:
            out["expected_spend"] = base["expected_spend"] * count
        # at the trained horizon this is the adjuster's P(any purchase)
        out["p_active"] = np.clip(base["p_active"] * activity, 0.0, 1.0)
        return out

    # internals ---------------------------------------------------------------------------------

    def _factors(self, calibration: Calibration) -> tuple[np.ndarray, np.ndarray]:
        """The factors of P(any purchase) and of the expectations for this calibration's
        customers. The tracking curve asks for one calibration many times: they are kept, for
        that calibration object only (another cutoff, or the same customers at another time,
        has other features and another base model's view)."""
        if self._cache is not None and self._cache[0] is calibration:
            return self._cache[1]
        adjuster = copy.copy(self.adjuster_)
        adjuster.base_model_ = self.transaction_model_
        adjusted = adjuster.adjusted_activity(feature_frame(calibration))
        base_active = np.maximum(adjusted["base_probability_of_purchase"].to_numpy(), 1e-300)
        factors = (adjusted["probability_of_purchase"].to_numpy() / base_active,
                   adjusted["adjustment_factor"].to_numpy())
        self._cache = (calibration, factors)
        return factors

    def _training_view(self, calibration: Calibration, horizon: float, strict: bool):
        """The view at c - h and its customers' activity in (c - h, c], or (``strict=False``)
        a sentence saying why there is none to learn from."""
        try:
            earlier, active = shift_back(calibration, horizon)
        except ClvlabError as exc:
            if strict:
                raise
            return str(exc)
        if active.all() or not active.any():
            reason = (f"every customer at {earlier.cutoff.date()} was "
                      f"{'active' if active.all() else 'inactive'} in the next {horizon:g} "
                      "time units: no churn to learn from")
            if strict:
                raise ClvlabError(reason)
            return reason
        oldest = float(earlier.rfm["T"].max())
        if not strict and oldest < horizon:
            # a base model fitted on customers seen for less than the window it must predict
            # extrapolates, and fitting it can be slow (Pareto/NBD on CDNOW at 1997-04-01,
            # every customer under 13 weeks old, ran for minutes): nothing sound to learn from
            return (f"at {earlier.cutoff.date()} no customer had been observed for a whole "
                    f"horizon (oldest {oldest:.3g} < {horizon:g} time units)")
        return earlier, active

    def _adjuster(self, earlier: Calibration, active: pd.Series, horizon: float,
                  base=None) -> ChurnAdjuster:
        """An adjuster without its own check (the candidate checks on a later window: the
        deployed one gets the weights of that check; unchecked, ``check_gain=False``, it warns)."""
        model = clone(self.transaction_model, safe=False) if base is None else base
        adjuster = ChurnAdjuster(model, self.classifier, horizon, refit_base=base is None,
                                 gain_check=False)
        return adjuster._fit(feature_frame(earlier), (~active).astype(np.int64),
                             announce=not self.check_gain)

    def _check(self, calibration: Calibration, earlier: Calibration, base, horizon: float) -> GainCheck:
        """Train at c - 2h, predict (c - h, c] with the base model of c - h, compare."""
        view = self._training_view(earlier, horizon, strict=False)
        if isinstance(view, str):
            return GainCheck.not_made(f"for a check one horizon earlier, {view}")
        earliest, active = view
        try:
            trained = self._adjuster(earliest, active, horizon)
        except ClvlabError as exc:  # e.g. a base model that the young view cannot identify
            return GainCheck.not_made(f"for a check one horizon earlier at "
                                      f"{earliest.cutoff.date()}: {exc}")
        X = feature_frame(earlier)
        return trained.check_gain(X, window_purchases(calibration, horizon).loc[X.index],
                                  base_model=base)
