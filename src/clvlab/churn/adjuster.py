"""ChurnAdjuster: a calibrated classifier that corrects a BTYD model's chance of activity.

The adjustment (one horizon h, fixed at construction). Let N be a customer's purchases in
(T, T + h]. The base model gives P_base(N >= 1) and E_base[N]; the classifier gives
P_clf(N >= 1) = 1 - P(churn). Keeping the base model's distribution of N given N >= 1, the
adjusted expectation is

    E_adj[N] = P_clf(N >= 1) E_base[N | N >= 1] = E_base[N] x P_clf(N >= 1) / P_base(N >= 1),

and spend and CLV over the window scale by the same factor (spend per purchase is unchanged).
Assumptions: what the classifier knows beyond the RFM summary changes whether a customer buys
at all in the window, not how much an active customer buys; and the classifier is calibrated
(its probabilities are frequencies), hence the default calibration: sigmoid, a smooth
monotone map that keeps the trees' ranking (isotonic steps tie customers; the two measured
alike in this module's simulations).

Calibration of P(any purchase) is not calibration of E[N], and a classifier trained one horizon
back can carry the activity of another age: the adjustment can make the counts worse (see
:mod:`clvlab.churn.gain`). An adjuster therefore holds two weights, ``activity_weight_`` and
``count_weight_``, that shrink the adjustment towards the base model:

    P_adj(N >= 1) = P_base + w_a (P_clf - P_base),    E_adj[N] = E_base[N] (1 + w_c (P_clf / P_base - 1)),

set by a check of the gain out of sample. By default ``fit`` checks it itself: each training
customer is predicted by a classifier trained on the other folds (``check_folds``), the
:func:`clvlab.churn.check_gain` of :mod:`clvlab.churn.gain` compares those out-of-fold predictions
with the base model's (purchases MAE where ``fit`` is given the counts, activity AUC and Brier
score), and the weights are those it chooses: 0 and 0 (the base model's predictions, with a
warning that names the metrics) where the adjustment does not help beyond noise. So the default
adjuster is never worse than its base model on the customers it was checked on. A check on a
later window (``use_check(check_gain(...))``, what the backtest candidate does) replaces it;
``gain_check=False`` applies the full adjustment unchecked, with a warning.
"""

from __future__ import annotations

import contextlib
import copy
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.utils.validation import check_is_fitted

from clvlab.core.atomic import atomic_output
from clvlab.core.errors import ClvlabError, ClvlabWarning, DataValidationError, shown, warn
from clvlab.churn.challenger_files import load_skops
from clvlab.churn.features import BEHAVIOUR_FEATURES
from clvlab.churn.gain import GainCheck
from clvlab.data.tables import accepts_tables

__all__ = ["ChurnAdjuster", "BASE_FEATURES", "UncheckedAdjustmentWarning",
           "AdjustmentFallbackWarning"]

BASE_FEATURES = ("base_p_alive", "base_probability_of_purchase", "base_expected_purchases")
RFM = ["frequency", "recency", "T"]
# 2: the weights and the check (files of version 1 load with weights 1); "checked" (whether
# the weights come from a check) is optional in version 2: absent, it is "a check is present"
SCHEMA_VERSION = 2
READABLE_VERSIONS = (1, 2)


class UncheckedAdjustmentWarning(ClvlabWarning):
    """A churn adjuster applies its adjustment without a check that it helps."""


class AdjustmentFallbackWarning(ClvlabWarning):
    """A churn adjuster's check found no gain (in activity, or in counts): it leaves that part
    of the predictions to the base model."""


# the default of the seed's former name: a value nobody passes, so that any other means "given"
_RENAMED = "renamed to random_seed"


def default_classifier(random_seed: Any = 0):
    """Gradient-boosted trees with sigmoid calibration on 3 shuffled folds.

    Customer tables are sorted by id, which often follows acquisition date or segment:
    unshuffled folds would calibrate each model on customers unlike the ones it was trained on.

    Parameters
    ----------
    random_seed : int, numpy.random.RandomState or None, default 0
        Seed of the trees and of the folds' shuffle (scikit-learn's ``random_state``).

    Returns
    -------
    sklearn.calibration.CalibratedClassifierCV
        Unfitted: HistGradientBoostingClassifier (100 iterations, at most 8 leaves, non-increasing
        in ``base_probability_of_purchase``, categorical features from the dtypes) calibrated
        with a sigmoid on 3 stratified, shuffled folds.
    """
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.model_selection import StratifiedKFold

    # churn can only fall as the base model's chance of activity rises: the constraint keeps
    # the trees from trading the base model's ranking for noise in small training sets
    trees = HistGradientBoostingClassifier(max_iter=100, learning_rate=0.05, max_leaf_nodes=8,
                                           min_samples_leaf=100, l2_regularization=1.0,
                                           monotonic_cst={"base_probability_of_purchase": -1},
                                           categorical_features="from_dtype",
                                           random_state=random_seed)
    folds = StratifiedKFold(n_splits=3, shuffle=True, random_state=random_seed)
    return CalibratedClassifierCV(trees, method="sigmoid", cv=folds)


class ChurnAdjuster(ClassifierMixin, BaseEstimator):
    """Classifier of churn (no purchase in the next ``horizon``) on top of a BTYD model.

    ``X`` is a DataFrame with ``frequency``, ``recency``, ``T`` and any other feature columns
    (numbers, booleans or pandas categoricals): see :func:`clvlab.churn.feature_frame`. A
    feature may be NaN where it is unknown (the time since the last visit of a customer who
    never visited); the default classifier reads NaN as such, another classifier may need an
    imputer in a Pipeline. ``y`` is
    1 for a customer who made no purchase in the horizon after the cutoff (churned), else 0.
    The classifier sees the base model's p_alive, P(any purchase) and expected purchases over
    the horizon next to every column of ``X``.

    Parameters
    ----------
    base_model : BetaGeo, ParetoNBD or ModifiedBetaGeo, optional
        A clvlab transaction model, fitted or not; ``fit`` fits a copy on ``X``'s RFM columns
        unless ``refit_base=False``. None (the default): ``ParetoNBD()``.
    classifier : scikit-learn classifier, optional
        Any scikit-learn classifier with ``predict_proba`` (cloned before each fit); None (the
        default): HistGradientBoostingClassifier, non-increasing in the base model's P(any
        purchase), with sigmoid calibration on shuffled folds (:func:`default_classifier`).
    horizon : float, default 13.0
        The window of the label, in the RFM table's time unit (> 0).
    refit_base : bool, default True
        Fit the base model on ``X`` (default) or use it as given (it must be fitted).
    random_seed : int, numpy.random.RandomState or None, default 0
        Seed of the default classifier and of the check's folds (the name every clvlab
        estimator uses).
    n_threads : int or None, default 1
        OpenMP threads of the classifier's fits and predictions (None: the library's
        default, every core). The default 1: the trees are small, and on a machine whose cores
        are busy OpenMP's waiting threads made the default classifier's fit 8 to 20 times
        slower (20 s against 2.6 s on 23,570 customers).
    gain_check : bool, default True
        Check in ``fit`` that the adjustment improves on the base model out of sample
        (the module docstring): where it does not, the adjuster predicts as the
        base model does and says so. False applies the full adjustment unchecked and warns;
        ``use_check`` can set the weights later from a check on a later window.
    check_folds : int, default 3
        Folds of the check's cross-validation over the training customers (>= 2);
        the check costs that many more fits of the classifier (the base model is fitted once:
        it sees only the RFM columns, never the labels).
    random_state : int, numpy.random.RandomState or None, optional
        The former name of ``random_seed``; it still works, with a FutureWarning.

    Attributes
    ----------
    activity_weight_, count_weight_ : float
        How much of the adjustment is applied to P(any purchase)
        and to the expectations (module docstring), chosen by the check (0: the base model's);
        1 and 1 with ``gain_check=False``; ``use_check`` sets them from another check.
    checked_ : bool
        Whether the weights come from a check of the gain out of sample.
    check_ : GainCheck or None
        The :class:`~clvlab.churn.GainCheck` behind the weights (its metrics, where the
        outcome came from, the decision in words), or None (not checked).
    gain_ : dict or None
        What the applied adjustment gained on the check, per metric, positive = better
        (``GainCheck.gains``; 0 where it fell back to the base model), or None (not checked).
    base_model_ : BetaGeo, ParetoNBD or ModifiedBetaGeo
        The fitted base model (a fitted copy of ``base_model``, or ``base_model`` itself with
        ``refit_base=False``).
    classifier_ : scikit-learn classifier
        The fitted classifier.
    feature_names_in_ : numpy.ndarray
        The columns of ``X`` in ``fit``, in order: predictions need the same.
    classes_ : numpy.ndarray
        ``[0, 1]``: active, churned.
    """

    def __init__(self, base_model=None, classifier=None, horizon: float = 13.0,
                 refit_base: bool = True, random_seed: Any = 0, n_threads: int | None = 1,
                 gain_check: bool = True, check_folds: int = 3, *,
                 random_state: Any = _RENAMED):
        self.base_model = base_model
        self.classifier = classifier
        self.horizon = horizon
        self.refit_base = refit_base
        self.random_seed = random_seed
        self.n_threads = n_threads
        self.gain_check = gain_check
        self.check_folds = check_folds
        self.random_state = random_state

    # scikit-learn contract ---------------------------------------------------------------------

    def __sklearn_clone__(self) -> "ChurnAdjuster":
        """An unfitted copy with the same settings (``sklearn.base.clone``), except that a base
        model used as given (``refit_base=False``) keeps its fit: it is part of the setting. The
        models are scikit-learn estimators, so clone alone would hand ``fit`` an unfitted base
        model that it refuses; before they were, clone deep-copied it, and this keeps that."""
        fresh = super().__sklearn_clone__()
        if not self.refit_base and self.base_model is not None:
            fresh.base_model = copy.deepcopy(self.base_model)
        return fresh

    def _seed(self) -> Any:
        """random_seed, or the value given under its former name random_state."""
        if isinstance(self.random_state, str) and self.random_state == _RENAMED:
            return self.random_seed
        warn("ChurnAdjuster(random_state=...) is now random_seed=..., the name of the "
                      "seed in every clvlab estimator; random_state will be removed",
                      FutureWarning)
        return self.random_state

    @accepts_tables(keyed=("X",))
    def fit(self, X: pd.DataFrame, y: Any, purchases: Any = None) -> "ChurnAdjuster":
        """Fit the base model (unless ``refit_base=False``) and the classifier, and check the
        gain (``gain_check``).

        Parameters
        ----------
        X : pandas.DataFrame
            Features at a cutoff (:func:`clvlab.churn.churn_training_data`): ``frequency``,
            ``recency``, ``T`` and any other feature columns.
        y : array-like of int
            1 for a customer with no purchase in the ``horizon`` after the cutoff, else 0 (both
            must be present), one per row of ``X``.
        purchases : array-like of float, optional
            Each customer's purchases in that horizon
            (``churn_training_data(..., with_purchases=True)``): with them the check also
            measures the expected purchases (MAE); without them expected purchases are left to
            the base model, since nothing shows that their adjustment helps.

        Returns
        -------
        ChurnAdjuster
            self; it warns where the check leaves (part of) the predictions to the base model,
            and where ``gain_check=False`` leaves the adjustment unchecked.

        Raises
        ------
        ClvlabError
            Where ``X`` is not a DataFrame, ``y`` is not one 0/1 label per row with both
            present, ``purchases`` are not counts >= 0 that agree with ``y``, ``X``'s labels were
            made for another horizon, ``horizon``, ``gain_check`` or ``check_folds`` is invalid,
            or ``refit_base=False`` with an unfitted base model.
        DataValidationError
            Where an RFM column is missing from ``X`` or a feature is not a number, boolean or
            categorical, or is infinite (or NaN in the RFM and behaviour columns).
        """
        return self._fit(X, y, purchases)

    def _fit(self, X: pd.DataFrame, y: Any, purchases: Any = None,
             announce: bool = True) -> "ChurnAdjuster":
        """``fit``; ``announce=False`` (clvlab's backtest candidate, which checks the gain on a
        later window itself) leaves out the warning of an unchecked adjustment."""
        from clvlab.models import ParetoNBD

        X = self._check_frame(X, fitting=True)
        labelled = (X.attrs.get("clvlab") or {}).get("label_horizon")
        if labelled is not None and not np.isclose(float(labelled), float(self.horizon)):
            raise ClvlabError(
                f"the labels y were made for a horizon of {float(labelled):g} "
                f"(churn_training_data(..., horizon={float(labelled):g})) but this adjuster "
                f"predicts a horizon of {float(self.horizon):g}: its check would compare "
                f"{float(self.horizon):g}-unit predictions with {float(labelled):g}-unit outcomes; "
                "build the training data with the adjuster's horizon")
        y = np.asarray(y)
        if y.shape != (len(X),):
            raise ClvlabError(f"y must hold one label per row of X ({len(X)}), got shape {y.shape}")
        labels = np.unique(y)
        if not set(labels.tolist()) <= {0, 1, False, True} or len(labels) < 2:
            raise ClvlabError("y must be 1 (no purchase in the horizon) or 0, with both present; "
                              f"got the labels {labels[:5].tolist()}")
        y = y.astype(np.int64)
        purchases = self._check_purchases(purchases, y)
        if not (np.isfinite(self.horizon) and self.horizon > 0):
            raise ClvlabError(f"horizon must be > 0, got {self.horizon!r}")
        if self.gain_check not in (True, False):
            raise ClvlabError(f"gain_check must be True or False, got {self.gain_check!r}")
        folds = self.check_folds
        if self.gain_check and (isinstance(folds, bool) or not isinstance(folds, (int, np.integer))
                                or folds < 2):
            raise ClvlabError(f"check_folds must be a whole number >= 2, got {folds!r}")
        seed = self._seed()
        base = self.base_model if self.base_model is not None else ParetoNBD()
        if self.refit_base:
            base = clone(base, safe=False).fit(_with_attrs(X[RFM], X))
        elif getattr(base, "params_", None) is None:
            raise ClvlabError("refit_base=False needs a fitted base_model")
        self.base_model_ = base
        self.feature_names_in_ = np.array(list(X.columns), dtype=object)
        design = self._design(X)
        self.classifier_ = self._new_classifier(seed)
        with self._threads():
            self.classifier_.fit(design, y)
        self.classes_ = np.array([0, 1])
        if not self.gain_check:
            self.activity_weight_, self.count_weight_, self.check_ = 1.0, 1.0, None
            self.checked_, self.gain_ = False, None
            if announce:
                warn(
                    "ChurnAdjuster(gain_check=False): the adjustment is applied unchecked; it "
                    "can make every prediction worse than the base model's (on the apparel log "
                    "it did: purchases MAE, activity AUC and Brier score all worse). Check it "
                    "with use_check(adjuster.check_gain(X_later, purchases_later)) or leave "
                    "gain_check on", UncheckedAdjustmentWarning)
            return self
        self._apply(self._cross_checked(X, design, y, purchases, seed))
        return self

    def _new_classifier(self, seed: Any):
        return clone(self.classifier) if self.classifier is not None else default_classifier(seed)

    def _check_purchases(self, purchases: Any, y: np.ndarray) -> np.ndarray | None:
        if purchases is None:
            return None
        counts = np.asarray(purchases, dtype=np.float64)
        if counts.shape != y.shape or not np.all(np.isfinite(counts)) or np.any(counts < 0):
            raise ClvlabError(f"purchases must hold one count >= 0 per row of X ({len(y)}), got "
                              f"shape {counts.shape}")
        mismatch = np.flatnonzero((counts == 0) != (y == 1))
        if len(mismatch):
            raise ClvlabError(f"purchases and y disagree for {len(mismatch)} customer(s) (row "
                              f"{int(mismatch[0])}: {counts[mismatch[0]]:g} purchases, y "
                              f"{int(y[mismatch[0]])}); y is 1 exactly where purchases are 0")
        return counts

    def _cross_checked(self, X: pd.DataFrame, design: pd.DataFrame, y: np.ndarray,
                       purchases: np.ndarray | None, seed: Any) -> GainCheck:
        """The gain check on out-of-fold predictions: each customer's P(any purchase) from a
        classifier trained on the other folds, against the base model's."""
        from sklearn.model_selection import StratifiedKFold

        from clvlab.churn.gain import check_gain

        folds = int(self.check_folds)
        source = (f"held-out customers (out-of-fold predictions of a {folds}-fold "
                  "cross-validation over the training customers)")
        smaller = int(min(np.sum(y == 0), np.sum(y == 1)))
        if smaller < folds:
            return replace(GainCheck.not_made(
                f"{smaller} customer(s) of the rarer outcome, fewer than the {folds} folds", len(y)),
                source=source)
        active = np.empty(len(y))
        splits = StratifiedKFold(folds, shuffle=True, random_state=seed).split(design, y)
        with self._threads():
            for train, held_out in splits:
                classifier = self._new_classifier(seed)
                classifier.fit(design.iloc[train], y[train])
                proba = classifier.predict_proba(design.iloc[held_out])
                active[held_out] = 1.0 - proba[:, list(classifier.classes_).index(1)]
        if not np.all(np.isfinite(active)):
            raise ClvlabError("the classifier returned a non-finite probability")
        active = np.clip(active, 0.0, 1.0)
        rfm = _with_attrs(X[RFM], X)
        known = purchases is not None
        check = check_gain(self.base_model_.expected_purchases(rfm, self.horizon).to_numpy(),
                           self.base_model_.probability_of_purchase(rfm, self.horizon).to_numpy(),
                           active, purchases if known else (1 - y).astype(np.float64),
                           counts_known=known)
        return replace(check, source=source)

    def _apply(self, check: GainCheck) -> None:
        """Take the weights of a check made by ``fit`` and say what was left to the base model."""
        self.activity_weight_, self.count_weight_ = check.activity_weight, check.count_weight
        self.check_, self.checked_, self.gain_ = check, True, check.gains()
        if check.activity_weight and check.count_weight:
            return
        if not check.metrics:
            what = f"{check.reason}: it predicts as the base model does"
        elif not check.activity_weight:
            worse = check.worse()
            what = ("the adjustment did not improve on the base model beyond noise"
                    + (f" ({worse}; base -> adjusted)" if worse else "")
                    + ": it predicts as the base model does (activity and counts weights 0)")
        elif "mae" not in check.metrics:
            what = ("activity adjusted, but expected purchases left to the base model: fit "
                    "was given no purchase counts to check them on (fit(X, y, purchases=...), "
                    "from churn_training_data(..., with_purchases=True))")
        else:
            m = check.metrics["mae"]
            what = (f"activity adjusted, but expected purchases left to the base model: the "
                    f"adjustment did not improve the purchases MAE beyond noise ({m['base']:.4f} "
                    f"-> {m['adjusted']:.4f}; base -> adjusted)")
        warn(f"ChurnAdjuster, checked on {check.source}: {what}. gain_check=False "
                      "applies the adjustment unchecked", AdjustmentFallbackWarning)

    def use_check(self, check: GainCheck) -> "ChurnAdjuster":
        """Apply the weights a :class:`~clvlab.churn.GainCheck` chose.

        The check comes from :meth:`check_gain` of an adjuster trained one horizon earlier.

        Parameters
        ----------
        check : GainCheck
            Its ``activity_weight`` and ``count_weight`` become the adjuster's.

        Returns
        -------
        ChurnAdjuster
            The adjuster itself, with the check's weights.

        Raises
        ------
        ClvlabError
            Where ``check`` is not a GainCheck.
        """
        check_is_fitted(self, "classifier_")
        if not isinstance(check, GainCheck):
            raise ClvlabError(f"use_check needs a GainCheck (from check_gain), not {type(check).__name__}")
        self.activity_weight_, self.count_weight_ = check.activity_weight, check.count_weight
        self.check_, self.checked_, self.gain_ = check, True, check.gains()
        return self

    @accepts_tables(keyed=("X",))
    def check_gain(self, X: pd.DataFrame, purchases: Any, base_model=None, **options: Any) -> GainCheck:
        """Compare the base model with this adjuster on customers whose purchases in the
        horizon after ``X``'s cutoff are known (``purchases``), and choose the weights.

        Parameters
        ----------
        X : pandas.DataFrame
            Features at a cutoff after the one this adjuster was trained at, e.g. one horizon
            later, when its labels' window has ended.
        purchases : array-like of float
            Each row's purchases in the ``horizon`` after that cutoff.
        base_model : BetaGeo, ParetoNBD or ModifiedBetaGeo, optional
            The base model fitted at ``X``'s cutoff (default: this adjuster's own).
        **options
            :func:`clvlab.churn.check_gain`'s ``z``, ``bootstrap`` and ``seed``.

        Returns
        -------
        GainCheck
            To apply to the adjuster trained at ``X``'s cutoff with :meth:`use_check`.

        Raises
        ------
        ClvlabError
            Where ``purchases`` are not one count >= 0 per row of ``X``.
        """
        from clvlab.churn.gain import check_gain

        base_model = self.base_model_ if base_model is None else base_model
        purchases = np.asarray(purchases, dtype=np.float64)
        if purchases.shape != (len(X),) or not np.all(np.isfinite(purchases)) or np.any(purchases < 0):
            raise ClvlabError(f"purchases must hold one count >= 0 per row of X ({len(X)}), got "
                              f"shape {purchases.shape}")
        trained = copy.copy(self)
        trained.base_model_ = base_model
        classifier_active = trained._classifier_active(X)
        rfm = _with_attrs(X[RFM], X)
        check = check_gain(base_model.expected_purchases(rfm, self.horizon).to_numpy(),
                           base_model.probability_of_purchase(rfm, self.horizon).to_numpy(),
                           classifier_active, purchases, **options)
        return replace(check, source=f"a window with a known outcome ({len(X)} customers)")

    def summary(self) -> str:
        """What the adjuster does to its base model, and on what evidence.

        Returns
        -------
        str
            Lines of text: the weights and the check's decision, then where it was checked and
            each metric's values.
        """
        check_is_fitted(self, "classifier_")
        model = type(self.base_model_).__name__
        head = f"Churn adjuster of {model} over a horizon of {self.horizon:g}"
        if self.check_ is None:
            return (f"{head}: activity weight {self.activity_weight_:g}, counts weight "
                    f"{self.count_weight_:g}; not checked (gain_check=False): the adjustment "
                    "is applied without evidence that it helps")
        lines = [f"{head}: activity weight {self.activity_weight_:g}, counts weight "
                 f"{self.count_weight_:g}: {self.check_.reason}",
                 f"checked on {self.check_.source or 'a window with a known outcome'}: "
                 f"{self.check_.customers} customers"]
        for metric, values in self.check_.metrics.items():
            lines.append(f"  {metric}: " + ", ".join(f"{k} {v:.4f}" for k, v in values.items()))
        return "\n".join(lines)

    def __repr__(self, N_CHAR_MAX: int = 700) -> str:
        text = super().__repr__(N_CHAR_MAX)
        if getattr(self, "activity_weight_", None) is None:
            return text
        if getattr(self, "checked_", self.check_ is not None):
            fallback = not self.activity_weight_ and not self.count_weight_
            checked = "checked: no gain, base model's predictions" if fallback else "checked"
        else:
            checked = "not checked"
        return (f"{text}  # fitted: activity weight {self.activity_weight_:g}, counts weight "
                f"{self.count_weight_:g} ({checked})")

    @accepts_tables(keyed=("X",))
    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """P(active in the horizon) and P(churned), as the adjuster applies them.

        The classifier's, shrunk towards the base model's by ``activity_weight_`` (so the base
        model's where the check found no gain).

        Parameters
        ----------
        X : pandas.DataFrame
            Features with the columns ``fit`` was given, in the same order.

        Returns
        -------
        numpy.ndarray
            One row per row of ``X``, columns: P(active in the horizon), P(churned).
        """
        active = self.probability_of_purchase(X).to_numpy()
        return np.column_stack([active, 1.0 - active])

    def _classifier_active(self, X: pd.DataFrame) -> np.ndarray:
        """The classifier's own P(active in the horizon), before any weight."""
        check_is_fitted(self, "classifier_")
        design = self._design(self._check_frame(X))
        with self._threads():
            proba = self.classifier_.predict_proba(design)
        columns = list(self.classifier_.classes_)
        churn = proba[:, columns.index(1)]
        if not np.all(np.isfinite(churn)):
            raise ClvlabError("the classifier returned a non-finite probability")
        return 1.0 - np.clip(churn, 0.0, 1.0)

    @accepts_tables(keyed=("X",))
    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """Churn labels: 1 where the adjusted P(churned) is at least 0.5, else 0.

        Parameters
        ----------
        X : pandas.DataFrame
            Features with the columns ``fit`` was given, in the same order.

        Returns
        -------
        numpy.ndarray
            One int64 label per row of ``X`` (column 1 of :meth:`predict_proba` >= 0.5).
        """
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(np.int64)

    # adjusted predictions ------------------------------------------------------------------------

    @accepts_tables(keyed=("X",))
    def probability_of_purchase(self, X: pd.DataFrame) -> pd.Series:
        """Adjusted P(at least one purchase in the horizon).

        The classifier's, shrunk towards the base model's by ``activity_weight_``.

        Parameters
        ----------
        X : pandas.DataFrame
            Features with the columns ``fit`` was given, in the same order.

        Returns
        -------
        pandas.Series
            ``probability_of_purchase``, indexed as ``X``.
        """
        return self.adjusted_activity(X)["probability_of_purchase"]

    @accepts_tables(keyed=("X",))
    def adjustment_factor(self, X: pd.DataFrame) -> pd.Series:
        """What multiplies the base model's expectations.

        1 + ``count_weight_`` (P_clf(N >= 1) / P_base(N >= 1) - 1).

        Parameters
        ----------
        X : pandas.DataFrame
            Features with the columns ``fit`` was given, in the same order.

        Returns
        -------
        pandas.Series
            ``adjustment_factor``, indexed as ``X``.
        """
        return self.adjusted_activity(X)["adjustment_factor"]

    @accepts_tables(keyed=("X",))
    def adjusted_activity(self, X: pd.DataFrame) -> pd.DataFrame:
        """The adjusted P(any purchase), the expectations' factor and the base model's P.

        All three from one classifier pass.

        Parameters
        ----------
        X : pandas.DataFrame
            Features with the columns ``fit`` was given, in the same order.

        Returns
        -------
        pandas.DataFrame
            Columns ``probability_of_purchase`` (adjusted), ``adjustment_factor`` and
            ``base_probability_of_purchase``, indexed as ``X``.
        """
        active = self._classifier_active(X)
        base = self.base_model_.probability_of_purchase(_with_attrs(X[RFM], X),
                                                        self.horizon).to_numpy()
        # a weight of 0 leaves the base model's value exactly (no division and product)
        factor = 1.0 + self.count_weight_ * (active / np.maximum(base, 1e-300) - 1.0) \
            if self.count_weight_ else np.ones(len(base))
        adjusted = base + self.activity_weight_ * (active - base) if self.activity_weight_ \
            else base.copy()
        return pd.DataFrame({"probability_of_purchase": adjusted, "adjustment_factor": factor,
                             "base_probability_of_purchase": base}, index=X.index)

    @accepts_tables(keyed=("X",))
    def expected_purchases(self, X: pd.DataFrame) -> pd.Series:
        """Adjusted expected purchases in the horizon (module docstring).

        Parameters
        ----------
        X : pandas.DataFrame
            Features with the columns ``fit`` was given, in the same order.

        Returns
        -------
        pandas.Series
            ``expected_purchases``: the base model's times :meth:`adjustment_factor`, indexed as
            ``X``.
        """
        base = self.base_model_.expected_purchases(_with_attrs(X[RFM], X), self.horizon)
        return (base * self.adjustment_factor(X)).rename("expected_purchases")

    @accepts_tables(keyed=("X",))
    def customer_lifetime_value(self, spend_model, X: pd.DataFrame, discount_rate: float = 0.0,
                                margin: float = 1.0) -> pd.Series:
        """Adjusted CLV over the horizon.

        The base model's discounted CLV (:func:`clvlab.customer_lifetime_value` over the
        adjuster's ``horizon``) times the adjustment factor.

        Parameters
        ----------
        spend_model : GammaGamma or LogNormalSpend
            A fitted spend model.
        X : pandas.DataFrame
            Features with the columns ``fit`` was given, in the same order; it needs
            ``monetary_value`` too.
        discount_rate : float, default 0.0
            Discount rate per unit of time (the RFM table's), as in
            :func:`clvlab.customer_lifetime_value`.
        margin : float, default 1.0
            Share of spend that is profit.

        Returns
        -------
        pandas.Series
            ``clv``, indexed as ``X``.
        """
        from clvlab.models.clv import customer_lifetime_value

        rfm = _with_attrs(X[RFM + ["monetary_value"]], X)
        base = customer_lifetime_value(self.base_model_, spend_model, rfm, self.horizon,
                                       discount_rate, margin)
        return (base * self.adjustment_factor(X)).rename("clv")

    # persistence (no pickles) --------------------------------------------------------------------

    def save(self, path: str | Path, overwrite: bool = True) -> None:
        """Save to JSON plus the classifier as a skops file beside it.

        The JSON holds the settings, features, weights, check and base model; the classifier
        goes to ``<name>.classifier.skops``. Loading never runs code from either.

        Parameters
        ----------
        path : str or pathlib.Path
            The JSON file (a name ending ``.json`` gives ``<name>.classifier.skops``).
        overwrite : bool, default True
            Replace existing files; False raises ClvlabError where one exists.
        """
        import skops.io as sio

        from clvlab.core.version import __version__

        check_is_fitted(self, "classifier_")
        path = Path(path)
        classifier_path = _classifier_path(path)
        with atomic_output(classifier_path, overwrite=overwrite) as temporary:
            sio.dump(self.classifier_, temporary)
        payload = {"schema_version": SCHEMA_VERSION, "kind": "ChurnAdjuster",
                   "clvlab_version": __version__, "horizon": float(self.horizon),
                   "feature_names": [str(c) for c in self.feature_names_in_],
                   "base_model": self.base_model_.to_dict(),
                   "classifier_file": classifier_path.name,
                   "activity_weight": float(self.activity_weight_),
                   "count_weight": float(self.count_weight_),
                   "checked": bool(getattr(self, "checked_", self.check_ is not None)),
                   "check": None if self.check_ is None else self.check_.to_dict()}
        with atomic_output(path, overwrite=overwrite) as temporary:
            Path(temporary).write_text(json.dumps(payload, indent=2, allow_nan=False))

    @classmethod
    def load(cls, path: str | Path, trusted: list[str] | None = None) -> "ChurnAdjuster":
        """Read a saved adjuster.

        The classifier file may hold only the types skops trusts by default, the ones clvlab's
        default classifier uses, and those named in ``trusted``.

        Parameters
        ----------
        path : str or pathlib.Path
            The JSON file written by :meth:`save` (its classifier file beside it).
        trusted : list of str, optional
            Further types (qualified names) the classifier file may hold.

        Returns
        -------
        ChurnAdjuster
            Fitted, as saved.

        Raises
        ------
        ClvlabError
            Where the file is unreadable, is not a churn adjuster of a readable schema version,
            or its classifier file is missing or holds an untrusted type.
        """
        from clvlab.models.base import model_from_dict

        path = Path(path)
        try:
            payload = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ClvlabError(f"{path}: not a readable churn adjuster file ({exc})") from None
        if payload.get("kind") != "ChurnAdjuster" or payload.get("schema_version") not in READABLE_VERSIONS:
            raise ClvlabError(f"{path}: not a churn adjuster of schema version "
                              f"{' or '.join(map(str, READABLE_VERSIONS))} (kind "
                              f"{payload.get('kind')!r}, version {payload.get('schema_version')!r})")
        classifier_path = path.with_name(str(payload.get("classifier_file")))
        if not classifier_path.is_file():
            raise ClvlabError(f"{path}: its classifier file {classifier_path} is missing (it is "
                              "saved beside the JSON)")
        classifier = load_skops(classifier_path, trusted)
        adjuster = cls(horizon=payload["horizon"])
        adjuster.base_model_ = model_from_dict(payload["base_model"], source=str(path))
        adjuster.base_model = adjuster.base_model_
        adjuster.classifier_ = classifier
        adjuster.feature_names_in_ = np.array(payload["feature_names"], dtype=object)
        adjuster.classes_ = np.array([0, 1])
        # version 1 files predate the weights: they applied the full adjustment
        adjuster.activity_weight_ = float(payload.get("activity_weight", 1.0))
        adjuster.count_weight_ = float(payload.get("count_weight", 1.0))
        check = payload.get("check")
        adjuster.check_ = None if check is None else GainCheck.from_dict(check)
        adjuster.checked_ = bool(payload.get("checked", adjuster.check_ is not None))
        adjuster.gain_ = adjuster.check_.gains() if adjuster.checked_ and adjuster.check_ else None
        return adjuster

    # internals ---------------------------------------------------------------------------------

    def _check_frame(self, X: Any, fitting: bool = False) -> pd.DataFrame:
        if not isinstance(X, pd.DataFrame):
            raise ClvlabError("X must be a DataFrame with frequency, recency and T (see "
                              "clvlab.churn.feature_frame)")
        missing = [c for c in RFM if c not in X.columns]
        if missing:
            raise DataValidationError(missing[0], "is missing from X")
        if not fitting:
            expected = list(self.feature_names_in_)
            if list(X.columns) != expected:
                raise ClvlabError(f"X has the columns {list(X.columns)}, but the adjuster was "
                                  f"fitted on {expected}")
        for column in X.columns:
            dtype = X[column].dtype
            if isinstance(dtype, pd.CategoricalDtype):
                continue
            if not (pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype)):
                raise DataValidationError(column, f"features must be numbers, booleans or pandas "
                                                  f"categoricals (dtype is {dtype})")
            values = X[column].to_numpy(np.float64)
            # NaN is "unknown" (the time since a customer's last visit when there was none:
            # clvlab.churn.event_frame), which the default trees read as a branch of its own;
            # in the RFM and behaviour columns (finite by construction), and as infinity
            # anywhere, it is an error
            finite_only = column in RFM or column in BEHAVIOUR_FEATURES
            bad = np.isinf(values) | (np.isnan(values) if finite_only else False)
            if np.any(bad):
                position = int(np.flatnonzero(bad)[0])
                raise DataValidationError(column, f"feature is missing or infinite "
                                                  f"(customer {shown(X.index[position])})")
        return X

    def _threads(self):
        from threadpoolctl import threadpool_limits

        if self.n_threads is None:
            return contextlib.nullcontext()
        return threadpool_limits(limits=int(self.n_threads), user_api="openmp")

    def _design(self, X: pd.DataFrame) -> pd.DataFrame:
        rfm = _with_attrs(X[RFM], X)
        base = self.base_model_
        outputs = pd.DataFrame({
            "base_p_alive": base.p_alive(rfm),
            "base_probability_of_purchase": base.probability_of_purchase(rfm, self.horizon),
            "base_expected_purchases": base.expected_purchases(rfm, self.horizon)}, index=X.index)
        return pd.concat([outputs, X], axis=1)


def _with_attrs(frame: pd.DataFrame, source: pd.DataFrame) -> pd.DataFrame:
    """Column selections keep the source's time unit (models check it)."""
    frame = frame.copy()
    frame.attrs = dict(source.attrs)
    return frame


def _classifier_path(path: Path) -> Path:
    name = path.name[:-5] if path.name.endswith(".json") else path.name
    return path.with_name(name + ".classifier.skops")

