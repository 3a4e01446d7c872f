"""A scikit-learn churn classifier that adjusts a BTYD model's predictions.

``ChurnAdjuster`` (the estimator, formula and assumptions in :mod:`clvlab.churn.adjuster`),
``feature_frame``, ``behaviour_features``, ``basket_frame`` and ``event_frame`` (what it sees
at a cutoff), ``ZILNChallenger`` and ``GBMPoissonChallenger`` (the machine-learning
challengers, backtested as ``"ziln"`` and ``"gbm"``:
:mod:`clvlab.evaluation.challenger_candidate`), ``churn_training_data``
(X and y from a log, a cutoff and a horizon), ``ChurnAdjustedCandidate`` (its backtest
candidate, in :mod:`clvlab.evaluation`), ``check_gain`` and ``GainCheck`` (whether the adjustment helps on a window with a
known outcome, and how much of it to apply: :mod:`clvlab.churn.gain`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from clvlab.core import lazy
from clvlab.data.tables import accepts_tables

# The names are imported on first use (clvlab.core.lazy): the adjuster and the challengers
# import scikit-learn, which the features (read by the backtests) do not need.
__getattr__, __dir__ = lazy.attach(__name__, attributes={
    "clvlab.churn.adjuster": ["BASE_FEATURES", "AdjustmentFallbackWarning", "ChurnAdjuster",
                              "UncheckedAdjustmentWarning", "default_classifier"],
    "clvlab.churn.features": ["BASKET_FEATURES", "BEHAVIOUR_FEATURES", "SPEND_FEATURES",
                              "basket_frame", "behaviour_features", "event_frame",
                              "feature_frame", "shift_back", "window_purchases", "window_spend"],
    "clvlab.churn.behaviour_duckdb": ["behaviour_features_duckdb"],
    "clvlab.churn.challenger_adjustment": ["ChallengerAdjustment"],
    "clvlab.churn.gbm_poisson": ["BASE_COLUMN", "GBMPoissonChallenger"],
    "clvlab.churn.ziln": ["ZILNChallenger"],
    "clvlab.churn.gain": ["GainCheck", "check_gain"],
})

if TYPE_CHECKING:
    import pandas as pd

    from clvlab.churn.adjuster import (BASE_FEATURES, AdjustmentFallbackWarning, ChurnAdjuster,
                                       UncheckedAdjustmentWarning, default_classifier)
    from clvlab.churn.features import (BASKET_FEATURES, BEHAVIOUR_FEATURES, SPEND_FEATURES,
                                       basket_frame, behaviour_features, event_frame,
                                       feature_frame, shift_back, window_purchases, window_spend)
    from clvlab.churn.behaviour_duckdb import behaviour_features_duckdb
    from clvlab.churn.challenger_adjustment import ChallengerAdjustment
    from clvlab.churn.gbm_poisson import BASE_COLUMN, GBMPoissonChallenger
    from clvlab.churn.ziln import ZILNChallenger
    from clvlab.churn.gain import GainCheck, check_gain

__all__ = ["ChurnAdjuster", "ZILNChallenger", "GBMPoissonChallenger", "ChallengerAdjustment",
           "BASE_COLUMN",
           "feature_frame", "behaviour_features", "behaviour_features_duckdb", "event_frame", "basket_frame", "window_spend",
           "churn_training_data", "default_classifier", "shift_back", "window_purchases",
           "check_gain", "GainCheck", "BASE_FEATURES", "BEHAVIOUR_FEATURES", "SPEND_FEATURES",
           "BASKET_FEATURES",
           "AdjustmentFallbackWarning", "UncheckedAdjustmentWarning"]


@accepts_tables("transactions",)
def churn_training_data(transactions: Any, cutoff: Any, horizon: float | None = None, *,
                        with_purchases: bool = False, **options: Any
                        ) -> pd.DataFrame | tuple[pd.DataFrame, pd.Series] | \
        tuple[pd.DataFrame, pd.Series, pd.Series]:
    """The adjuster's ``X`` at ``cutoff`` (data up to it only) and, with ``horizon``, ``y``:
    1 for the customers with no purchase in the ``horizon`` after it, and with
    ``with_purchases=True`` also their purchases in it (``fit(X, y, purchases=...)`` checks the
    adjusted expected purchases on them). ``options`` are
    :func:`clvlab.backtesting.calibration_data`'s (columns, time unit, customer_attributes,
    ``events``, ``quantity_col``...).
    Without ``horizon`` it returns ``X`` alone, to score customers as of ``cutoff``.

    Parameters
    ----------
    transactions : pandas.DataFrame, path, glob or list of paths
        The purchase log, as :func:`clvlab.backtesting.calibration_data` takes it.
    cutoff : str, datetime or pandas.Timestamp
        The calibration cutoff: ``X`` sees the log up to it only.
    horizon : float, optional
        The window of the labels after ``cutoff``, in the time unit; None: ``X`` alone.
    with_purchases : bool, default False
        Also return each customer's purchases in the horizon (needs ``horizon``).
    **options
        :func:`clvlab.backtesting.calibration_data`'s options.

    Returns
    -------
    X : pandas.DataFrame
        The features (:func:`clvlab.churn.feature_frame`), one row per customer acquired by the
        cutoff; with ``horizon`` it records the labels' horizon in ``attrs``.
    y : pandas.Series
        ``churned`` (1 or 0), with ``horizon`` only.
    purchases : pandas.Series
        ``purchases`` in the horizon, with ``with_purchases=True`` only.

    Raises
    ------
    ClvlabError
        Where ``with_purchases=True`` comes without a horizon, or the log or options are bad
        (:func:`clvlab.backtesting.calibration_data`).
    """
    import numpy as np
    import pandas as pd

    from clvlab.churn.features import feature_frame
    from clvlab.core.errors import ClvlabError
    from clvlab.data.calibration import calibration_data

    if with_purchases and horizon is None:
        raise ClvlabError("with_purchases=True needs a horizon (the window of the purchases)")
    calibration, outcome = calibration_data(transactions, cutoff, horizon, **options)
    X = feature_frame(calibration)
    if outcome is None:
        return X
    counts = outcome.to_numpy()
    # the labels' window, which ChurnAdjuster.fit compares with its own horizon
    X.attrs = {**X.attrs, "clvlab": {**(X.attrs.get("clvlab") or {}), "label_horizon": float(horizon)}}
    y = pd.Series((counts == 0).astype(np.int64), index=X.index, name="churned")
    if with_purchases:
        return X, y, pd.Series(counts.astype(np.float64), index=X.index, name="purchases")
    return X, y
