"""ZILNChallenger: the zero-inflated log-normal model of customer value, with gradient boosting.

Wang, Liu & Miao (2019), "A Deep Probabilistic Model for Customer Lifetime Value Prediction",
model a customer's value in a window as a hurdle: no purchase with probability 1 - p, else a
log-normal amount. Their network learns p, mu and sigma together; here scikit-learn's
histogram gradient boosting learns the parts one at a time (no deep-learning framework):

* p(x) = P(any purchase in the horizon): HistGradientBoostingClassifier with sigmoid
  calibration on shuffled stratified folds (as :func:`clvlab.churn.default_classifier`);
* among buyers, mu(x) = E[log Y | buyer] for Y = spend and Y = purchases: a
  HistGradientBoostingRegressor (squared error) of log Y;
* sigma, one per target: the root mean square of out-of-fold residuals of log Y (each buyer
  predicted by a model trained on the other ``folds``), so it carries the trees' error as well
  as the spread of log Y; in-sample residuals would understate it.

Predictions, with w = p for purchases and w = p q for spend (q: the share of training buyers
whose spend was > 0; 1 unless refunds or free orders left a buyer at 0):

* ``expected_spend`` = w exp(mu + sigma^2 / 2), the log-normal mean (exp(mu) alone is the
  median, biased low by the factor exp(-sigma^2 / 2));
* ``expected_purchases`` = p E[max(1, L)], L log-normal(mu, sigma): a buyer buys at least once,
  so the log-normal's mass below 1 is put at 1 (left-censored at one purchase), which gives
  E[max(1, L)] = Phi(-mu / sigma) + exp(mu + sigma^2 / 2) Phi(mu / sigma + sigma) >= 1;
  quantiles and draws of purchases follow the same rule (they are not rounded: draws are of
  the model's continuous count, so their mean matches ``expected_purchases``);
* ``p_active`` = p;
* the predictive distribution is the mixture: a point mass at 0 with 1 - w and the
  log-normal with w. Its quantile at level tau is 0 for tau <= 1 - w, else
  exp(mu + sigma Phi^-1((tau - 1 + w) / w)).

Assumptions: sigma is the same for every customer (the paper's network lets it vary); spend
and purchases are independent given that a customer buys; the calibration folds and the
out-of-fold residuals need ``folds`` customers of each outcome and 2 x ``folds`` buyers.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from scipy import special

from clvlab.churn.challenger_files import (ChallengerBase, check_counts, check_levels,
                                           check_spend, positive_setting, whole_setting)
from clvlab.core.errors import ClvlabError
from clvlab.data.tables import accepts_tables

__all__ = ["ZILNChallenger"]

TARGETS = ("spend", "purchases")


class ZILNChallenger(ChallengerBase):
    """Zero-inflated log-normal challenger of spend and purchases in the next ``horizon``.

    ``X`` is a DataFrame of numbers, booleans and pandas categoricals (NaN allowed, see
    :func:`clvlab.churn.feature_frame`), one row a customer.

    Parameters
    ----------
    horizon : float, default 13.0
        The window of the targets, in the RFM table's time unit (a record of what the
        model predicts; ``fit`` refuses targets labelled with another horizon).
    random_seed : int or None, default 0
        Seed of the folds and of the trees (None: a fresh one every fit).
    n_threads : int or None, default 1
        OpenMP threads of the fits and predictions (None: every core). 1 by default:
        the trees are small, and waiting threads slow them down on a busy machine.
    max_iter, learning_rate, max_leaf_nodes, min_samples_leaf, l2_regularization : number
        The settings of every HistGradientBoosting part (defaults 200, 0.05, 15, 40, 1.0).
    calibration : {"sigmoid", "isotonic"}, default "sigmoid"
        The calibration of the activity classifier.
    folds : int, default 3
        The folds of the classifier's calibration and of sigma's out-of-fold residuals.

    Attributes
    ----------
    activity_model_ : sklearn.calibration.CalibratedClassifierCV
        The calibrated classifier of P(any purchase).
    purchase_model_, spend_model_ : sklearn.ensemble.HistGradientBoostingRegressor
        The regressors of log purchases and log spend among
        buyers (``spend_model_`` None when fitted without spend).
    purchase_sigma_, spend_sigma_ : float
        The log-normal scales (NaN: no spend model).
    spend_positive_share_ : float
        q, the share of training buyers with spend > 0 (NaN: no spend).
    feature_names_in_, n_features_in_, categorical_ : numpy.ndarray, int, list of str
        The columns of ``X`` in ``fit``, their number and the categorical ones.
    training_ : list of dict
        One dict a part (``summary()``).
    """

    def __init__(self, horizon: float = 13.0, random_seed: Any = 0, n_threads: int | None = 1,
                 max_iter: int = 200, learning_rate: float = 0.05, max_leaf_nodes: int = 15,
                 min_samples_leaf: int = 40, l2_regularization: float = 1.0,
                 calibration: str = "sigmoid", folds: int = 3):
        self.horizon = horizon
        self.random_seed = random_seed
        self.n_threads = n_threads
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.max_leaf_nodes = max_leaf_nodes
        self.min_samples_leaf = min_samples_leaf
        self.l2_regularization = l2_regularization
        self.calibration = calibration
        self.folds = folds

    @accepts_tables(keyed=("X",))
    def fit(self, X: pd.DataFrame, purchases: Any, spend: Any = None) -> "ZILNChallenger":
        """Fit the activity classifier and the log-normal parts.

        Parameters
        ----------
        X : features at the cutoff, one row a customer.
        purchases : each customer's purchases in the ``horizon`` after the cutoff (whole
            numbers >= 0).
        spend : optional, each customer's spend in that window (>= 0, and 0 where purchases
            are 0); without it there is no spend model and no ``expected_spend``.

        Returns
        -------
        ZILNChallenger
            self.

        Raises
        ------
        ClvlabError
            for a bad setting, targets of the wrong length, and too few buyers or non-buyers.
        DataValidationError
            naming the column (or target) and an example row, for a feature that is not a
            number, boolean or categorical or is infinite, negative or fractional purchases,
            and spend that is negative or positive without purchases.
        """
        from sklearn.metrics import log_loss

        self.__dict__.pop("training_", None)  # a fit that fails leaves the model unfitted
        X = self._check_fit_input(X)
        counts = check_counts(purchases, len(X))
        amounts = None if spend is None else check_spend(spend, counts)
        folds = whole_setting(self.folds, "folds", 2)
        if self.calibration not in ("sigmoid", "isotonic"):
            raise ClvlabError(f"calibration must be 'sigmoid' or 'isotonic', got {self.calibration!r}")
        buy = counts > 0
        if min(buy.sum(), (~buy).sum()) < folds:
            raise ClvlabError(f"the activity classifier needs at least {folds} buyers and {folds} "
                              f"non-buyers (folds={folds}); got {int(buy.sum())} buyers and "
                              f"{int((~buy).sum())} non-buyers")
        buyers = X[buy]
        with self._threads():
            self.activity_model_ = self._classifier(folds).fit(X, buy.astype(np.int64))
            p = self._p_active(X)
            training = [_row("activity", "any purchase", len(X),
                             2.0 * log_loss(buy, p, labels=[False, True]), math.nan)]
            self.purchase_model_, self.purchase_sigma_ = self._lognormal(
                buyers, np.log(counts[buy]), "purchases", "log purchases among buyers", folds,
                training)
            self.spend_model_, self.spend_sigma_ = None, math.nan
            self.spend_positive_share_ = math.nan
            if amounts is not None:
                paid = amounts[buy] > 0
                self.spend_positive_share_ = float(paid.mean())
                self.spend_model_, self.spend_sigma_ = self._lognormal(
                    buyers[paid], np.log(amounts[buy][paid]), "spend",
                    "log spend among buyers with spend > 0", folds, training)
        self.training_ = training
        return self

    @accepts_tables(keyed=("X",))
    def predict(self, X: pd.DataFrame) -> pd.DataFrame:
        """Each customer's expected purchases, P(active) and expected spend.

        ``expected_purchases``, ``p_active`` (P(any purchase in the horizon)) and, when fitted
        with spend, ``expected_spend`` (module docstring).

        Parameters
        ----------
        X : pandas.DataFrame
            Features, with the columns and types of ``fit``'s.

        Returns
        -------
        pandas.DataFrame
            On ``X``'s index.

        Raises
        ------
        DataValidationError
            for a column missing from ``X`` or of another type than in ``fit``.
        """
        parts = self._components(X)
        out = {"expected_purchases": parts["p"] * _censored_mean(parts["mu_purchases"],
                                                                 parts["sigma_purchases"]),
               "p_active": parts["p"]}
        if self.spend_model_ is not None:
            out["expected_spend"] = parts["w_spend"] * np.exp(
                parts["mu_spend"] + parts["sigma_spend"] ** 2 / 2.0)
        return pd.DataFrame(out, index=parts["index"])

    @accepts_tables(keyed=("X",))
    def predict_quantiles(self, X: pd.DataFrame, quantiles: Any = (0.05, 0.5, 0.95),
                          target: str = "spend") -> pd.DataFrame:
        """Quantiles of each customer's spend or purchases in the horizon under the mixture
        (0 with 1 - w, log-normal with w): 0 for levels at or below 1 - w.

        Parameters
        ----------
        X : features, as in ``fit``.
        quantiles : levels in (0, 1).
        target : ``"spend"`` (needs a spend model) or ``"purchases"`` (at least 1 above the
            mass at 0: module docstring).

        Returns
        -------
        DataFrame on ``X``'s index, columns ``<target>_q<level>`` (``spend_q0.05``...).

        Raises
        ------
        ClvlabError
            for an unknown target, spend without a spend model, and levels outside (0, 1).
        """
        levels = check_levels(quantiles)
        self._check_target(target)
        parts = self._components(X)
        w, mu, sigma = (parts[f"{k}_{target}"] for k in ("w", "mu", "sigma"))
        zero = (1.0 - w)[:, None]
        inner = np.clip((levels[None, :] - zero) / np.maximum(w, 1e-300)[:, None], 1e-300, 1.0)
        values = np.where(levels[None, :] > zero,
                          np.exp(mu[:, None] + sigma * special.ndtri(inner)), 0.0)
        if target == "purchases":
            values = np.where(values > 0, np.maximum(values, 1.0), 0.0)
        return pd.DataFrame(values, index=parts["index"],
                            columns=[f"{target}_q{level:g}" for level in levels])

    @accepts_tables(keyed=("X",))
    def sample(self, X: pd.DataFrame, n_draws: int = 200, seed: Any = 0) -> dict[str, np.ndarray]:
        """Draws from each customer's predictive distribution.

        Parameters
        ----------
        X : features, as in ``fit``.
        n_draws : draws a customer.
        seed : anything ``numpy.random.default_rng`` takes; the same seed, the same draws.

        Returns
        -------
        dict of arrays of shape (len(X), n_draws): ``active`` (bool), ``purchases`` (0, or a
        censored log-normal >= 1) and, with a spend model, ``spend``: one joint draw a column
        (a customer inactive in a draw has 0 purchases and 0 spend in it).
        """
        n_draws = whole_setting(n_draws, "n_draws", 1)
        parts = self._components(X)
        rng = np.random.default_rng(seed)
        shape = (len(parts["p"]), n_draws)
        active = rng.random(shape) < parts["p"][:, None]
        counts = np.exp(parts["mu_purchases"][:, None]
                        + parts["sigma_purchases"] * rng.standard_normal(shape))
        out = {"active": active, "purchases": np.where(active, np.maximum(counts, 1.0), 0.0)}
        if self.spend_model_ is not None:
            paid = active & (rng.random(shape) < self.spend_positive_share_)
            amounts = np.exp(parts["mu_spend"][:, None]
                             + parts["sigma_spend"] * rng.standard_normal(shape))
            out["spend"] = np.where(paid, amounts, 0.0)
        return out

    @accepts_tables(keyed=("X",))
    def predictive_parameters(self, X: pd.DataFrame) -> pd.DataFrame:
        """The mixture's parameters for each customer.

        For callers that need more than the quantiles and draws (a probability mass function,
        a likelihood).

        Parameters
        ----------
        X : pandas.DataFrame
            Features, with the columns and types of ``fit``'s.

        Returns
        -------
        pandas.DataFrame
            ``p_active``; for purchases and, with a spend model, spend: ``w_<target>`` (the
            weight of the log-normal part), ``mu_<target>`` and ``sigma_<target>`` (of log Y),
            on ``X``'s index.
        """
        parts = self._components(X)
        n = len(parts["p"])
        columns = {"p_active": parts["p"]}
        for target in ("purchases", "spend") if self.spend_model_ is not None else ("purchases",):
            for k in ("w", "mu", "sigma"):
                columns[f"{k}_{target}"] = np.broadcast_to(parts[f"{k}_{target}"], (n,))
        return pd.DataFrame(columns, index=parts["index"])

    # internals ---------------------------------------------------------------------------------

    def _check_target(self, target: Any) -> None:
        if target not in TARGETS:
            raise ClvlabError(f"target must be 'spend' or 'purchases', got {target!r}")
        if target == "spend" and getattr(self, "spend_model_", 0) is None:
            raise ClvlabError("this challenger was fitted without spend (fit(X, purchases, "
                              "spend=...)): it has no distribution of spend")

    def _options(self) -> dict[str, Any]:
        l2 = self.l2_regularization
        if isinstance(l2, bool) or not isinstance(l2, (int, float, np.number)) \
                or not math.isfinite(l2) or l2 < 0:
            raise ClvlabError(f"l2_regularization must be a number >= 0, got {l2!r}")
        return dict(max_iter=whole_setting(self.max_iter, "max_iter", 1),
                    learning_rate=positive_setting(self.learning_rate, "learning_rate"),
                    max_leaf_nodes=whole_setting(self.max_leaf_nodes, "max_leaf_nodes", 2),
                    min_samples_leaf=whole_setting(self.min_samples_leaf, "min_samples_leaf", 1),
                    l2_regularization=float(l2), categorical_features="from_dtype",
                    random_state=self.random_seed)

    def _classifier(self, folds: int):
        from sklearn.calibration import CalibratedClassifierCV
        from sklearn.ensemble import HistGradientBoostingClassifier
        from sklearn.model_selection import StratifiedKFold

        trees = HistGradientBoostingClassifier(**self._options())
        splits = StratifiedKFold(n_splits=folds, shuffle=True, random_state=self.random_seed)
        return CalibratedClassifierCV(trees, method=self.calibration, cv=splits)

    def _lognormal(self, X: pd.DataFrame, z: np.ndarray, part: str, target: str, folds: int,
                   training: list):
        """The regressor of log Y on all rows, and sigma from out-of-fold residuals (its row
        of ``summary`` appended to ``training``)."""
        from sklearn.ensemble import HistGradientBoostingRegressor
        from sklearn.model_selection import KFold

        if len(z) < 2 * folds:
            raise ClvlabError(f"the {part} model needs at least {2 * folds} customers ({target}; "
                              f"two a fold of sigma's out-of-fold residuals), got {len(z)}")
        held_out = np.empty(len(z))
        for train, test in KFold(folds, shuffle=True, random_state=self.random_seed).split(z):
            model = HistGradientBoostingRegressor(**self._options()).fit(X.iloc[train], z[train])
            held_out[test] = model.predict(X.iloc[test])
        sigma = float(np.sqrt(np.mean((z - held_out) ** 2)))
        model = HistGradientBoostingRegressor(**self._options()).fit(X, z)
        in_sample = float(np.mean((z - model.predict(X)) ** 2))
        training.append(_row(part, target, len(z), in_sample, sigma))
        return model, sigma

    def _p_active(self, X: pd.DataFrame) -> np.ndarray:
        proba = self.activity_model_.predict_proba(X)
        p = proba[:, list(self.activity_model_.classes_).index(1)]
        if not np.all(np.isfinite(p)):
            raise ClvlabError("the activity classifier returned a non-finite probability")
        return np.clip(p, 0.0, 1.0)

    def _components(self, X: pd.DataFrame) -> dict[str, Any]:
        X = self._check_predict_input(X)
        with self._threads():
            p = self._p_active(X)
            parts = {"index": X.index, "p": p, "w_purchases": p,
                     "mu_purchases": self.purchase_model_.predict(X),
                     "sigma_purchases": self.purchase_sigma_}
            if self.spend_model_ is not None:
                parts.update(w_spend=p * self.spend_positive_share_,
                             mu_spend=self.spend_model_.predict(X), sigma_spend=self.spend_sigma_)
        return parts

    def _file_state(self) -> dict[str, Any]:
        parts = {"activity": self.activity_model_, "purchases": self.purchase_model_}
        if self.spend_model_ is not None:
            parts["spend"] = self.spend_model_
        return {"parts": parts, "learned": {"purchase_sigma": self.purchase_sigma_,
                                            "spend_sigma": self.spend_sigma_,
                                            "spend_positive_share": self.spend_positive_share_}}

    def _restore(self, learned: dict[str, Any], parts: dict[str, Any]) -> None:
        self.activity_model_, self.purchase_model_ = parts["activity"], parts["purchases"]
        self.spend_model_ = parts.get("spend")
        for key in ("purchase_sigma", "spend_sigma", "spend_positive_share"):
            setattr(self, key + "_", math.nan if learned.get(key) is None else float(learned[key]))


def _row(part: str, target: str, customers: int, deviance: float, sigma: float) -> dict[str, Any]:
    return {"part": part, "target": target, "customers": int(customers),
            "in_sample_deviance": float(deviance), "sigma": float(sigma)}


def _censored_mean(mu: np.ndarray, sigma: float) -> np.ndarray:
    """E[max(1, L)], L log-normal(mu, sigma): Phi(-mu/s) + exp(mu + s^2/2) Phi(mu/s + s)."""
    if sigma <= 0:
        return np.maximum(np.exp(mu), 1.0)
    return special.ndtr(-mu / sigma) + np.exp(mu + sigma ** 2 / 2.0) * special.ndtr(mu / sigma + sigma)
