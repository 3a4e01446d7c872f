"""GBMPoissonChallenger: Poisson gradient boosting of the purchases in the next horizon, on top
of a BTYD model's expectation or without it.

The BTYD model's expected purchases over the horizon, e_i, come in as the column
``base_expected_purchases`` of ``X`` (``BASE_COLUMN``). With ``base``:

* ``"offset"`` (default): mu_i = e_i exp(f(x_i)), the trees learn a multiplicative correction
  of the BTYD expectation, starting from the overall ratio sum(y) / sum(e) (a smooth start the
  trees cannot build from e as a feature, which they cut into steps); the trees also see e as a
  feature, so ``"offset"`` and ``"feature"`` differ only by the offset;
* ``"feature"``: mu_i = exp(f(x_i)), e one feature among the others;
* None: no BTYD input; the column, if present, is left out of the trees.

scikit-learn's gradient boosting takes no offset; fitting the ratio z_i = y_i / e_i with
sample weight e_i is the same model. Proof: with log link and offset, mu_i = e_i exp(f_i) and
the Poisson deviance is, up to terms free of f,
    sum_i (mu_i - y_i log mu_i) = sum_i (e_i exp(f_i) - y_i f_i) - sum_i y_i log e_i;
the half Poisson loss of the ratio with weight e_i, scikit-learn's ``loss="poisson"``, is
    sum_i e_i (exp(f_i) - z_i f_i) = sum_i (e_i exp(f_i) - y_i f_i).
They differ by a constant (as unit deviances they are equal: e d(y/e, r) = d(y, e r)), so
every gradient (e_i exp(f_i) - y_i) and hessian (e_i exp(f_i)), the starting value (the log of
the weighted mean of z, log(sum y / sum e): the offset model's intercept), and hence every
split and leaf value are the same. tests/test_challengers.py checks the deviance identity, one
boosting step against a Newton step of the offset model computed by hand, and fits whose
ratio y / e is constant overall and by group.

Spend, when given: a second regressor with ``loss="poisson"`` of the spend in the horizon
(the Poisson deviance is a proper loss of the mean for any non-negative target, counts or
not), on the same features, without an offset (the BTYD model gives no spend expectation).

``p_active`` = P(N >= 1) = 1 - exp(-mu) assumes the purchases are Poisson given the features;
with over-dispersion (customers alike in X buying at different rates) the true P(N >= 1) is
lower, so ``p_active`` is an upper estimate. ``predict_quantiles`` is of the same Poisson(mu).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from clvlab.churn.challenger_files import (ChallengerBase, check_counts, check_levels,
                                           check_spend, positive_setting, whole_setting)
from clvlab.core.errors import ClvlabError, DataValidationError, example_row
from clvlab.data.tables import accepts_tables

__all__ = ["GBMPoissonChallenger", "BASE_COLUMN"]

#: The column of ``X`` that holds the BTYD model's expected purchases over the horizon.
BASE_COLUMN = "base_expected_purchases"
BASES = ("offset", "feature", None)


class GBMPoissonChallenger(ChallengerBase):
    """Poisson gradient boosting of the purchases (and spend) in the next ``horizon``.

    Parameters
    ----------
    base : ``"offset"`` (default), ``"feature"`` or None: how the BTYD model's expected
        purchases (the column ``base_expected_purchases`` of ``X``) enter (module docstring).
    horizon : the window of the targets, in the RFM table's time unit (a record; ``fit``
        refuses targets labelled with another horizon).
    random_seed : seed of the trees (early stopping's split on large data).
    n_threads : OpenMP threads of the fits and predictions (None: every core); 1 by default.
    max_iter, learning_rate, max_leaf_nodes, max_depth, min_samples_leaf, l2_regularization :
        the HistGradientBoostingRegressor settings of both parts.

    Attributes
    ----------
    purchase_model_, spend_model_ : the fitted regressors (``spend_model_`` None without spend).
    design_columns_ : the columns the trees see.
    feature_names_in_, n_features_in_, categorical_ : the columns of ``X`` in ``fit``.
    training_ : one dict a part (``summary()``).
    """

    def __init__(self, base: str | None = "offset", horizon: float = 13.0, random_seed: Any = 0,
                 n_threads: int | None = 1, max_iter: int = 200, learning_rate: float = 0.05,
                 max_leaf_nodes: int = 15, max_depth: int | None = None,
                 min_samples_leaf: int = 40, l2_regularization: float = 1.0):
        self.base = base
        self.horizon = horizon
        self.random_seed = random_seed
        self.n_threads = n_threads
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.max_leaf_nodes = max_leaf_nodes
        self.max_depth = max_depth
        self.min_samples_leaf = min_samples_leaf
        self.l2_regularization = l2_regularization

    @accepts_tables(keyed=("X",))
    def fit(self, X: pd.DataFrame, purchases: Any, spend: Any = None) -> "GBMPoissonChallenger":
        """Fit the purchases model (and the spend model).

        Parameters
        ----------
        X : features at the cutoff, one row a customer; with ``base`` "offset" or "feature" it
            must hold ``base_expected_purchases`` (> 0 for "offset").
        purchases : each customer's purchases in the ``horizon`` after the cutoff (whole
            numbers >= 0, not all 0).
        spend : optional, each customer's spend in that window (>= 0, 0 without purchases).

        Returns
        -------
        GBMPoissonChallenger
            self.

        Raises
        ------
        ClvlabError
            for a bad setting, targets of the wrong length, and targets that are all 0.
        DataValidationError
            naming the column and an example row: ``base_expected_purchases`` missing or not
            > 0 (with "offset"), a bad feature, negative or fractional purchases, bad spend.
        """
        from sklearn.metrics import mean_poisson_deviance

        if self.base not in BASES:
            raise ClvlabError(f"base must be 'offset', 'feature' or None, got {self.base!r}")
        self.__dict__.pop("training_", None)  # a fit that fails leaves the model unfitted
        X = self._check_fit_input(X)
        counts = check_counts(purchases, len(X))
        amounts = None if spend is None else check_spend(spend, counts)
        design, offset = self._design(X)
        self.design_columns_ = list(design.columns)
        if counts.sum() <= 0:
            raise ClvlabError("purchases are 0 for every customer: a Poisson model has nothing "
                              "to learn")
        what = {"offset": "purchases (offset: base expectation)",
                "feature": "purchases (base expectation as a feature)", None: "purchases"}
        with self._threads():
            self.purchase_model_ = self._regressor().fit(design, counts / offset,
                                                         sample_weight=offset)
            mu = offset * self.purchase_model_.predict(design)
            training = [_row("purchases", what[self.base], len(X),
                             mean_poisson_deviance(counts, mu))]
            self.spend_model_ = None
            if amounts is not None:
                if amounts.sum() <= 0:
                    raise ClvlabError("spend is 0 for every customer: a Poisson model of spend "
                                      "has nothing to learn")
                self.spend_model_ = self._regressor().fit(design, amounts)
                training.append(_row("spend", "spend", len(X), mean_poisson_deviance(
                    amounts, self.spend_model_.predict(design))))
        self.training_ = training
        return self

    @accepts_tables(keyed=("X",))
    def predict(self, X: pd.DataFrame) -> pd.DataFrame:
        """Each customer's ``expected_purchases`` (mu), ``p_active`` (1 - exp(-mu), under the
        Poisson assumption: module docstring) and, with a spend model, ``expected_spend``.

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
            for a column missing from ``X`` (``base_expected_purchases`` included) or of
            another type than in ``fit``, and a base expectation that is not > 0 ("offset").
        """
        X = self._check_predict_input(X)
        design, offset = self._design(X)
        with self._threads():
            mu = offset * self.purchase_model_.predict(design)
            out = {"expected_purchases": mu, "p_active": -np.expm1(-mu)}
            if self.spend_model_ is not None:
                out["expected_spend"] = self.spend_model_.predict(design)
        return pd.DataFrame(out, index=X.index)

    @accepts_tables(keyed=("X",))
    def predict_quantiles(self, X: pd.DataFrame, quantiles: Any = (0.05, 0.5, 0.95),
                          target: str = "purchases") -> pd.DataFrame:
        """Quantiles of each customer's purchases under Poisson(mu): the smallest n with
        P(N <= n) >= level.

        Parameters
        ----------
        X : pandas.DataFrame
            Features, with the columns and types of ``fit``'s.
        quantiles : float or sequence of float, default (0.05, 0.5, 0.95)
            Levels in (0, 1).
        target : str, default "purchases"
            Only ``"purchases"``: the spend model is of the mean only.

        Returns
        -------
        pandas.DataFrame
            int64 on ``X``'s index, columns ``purchases_q<level>``.

        Raises
        ------
        ClvlabError
            for levels outside (0, 1) and a target other than "purchases" (the spend model is
            of the mean only).
        """
        levels = check_levels(quantiles)
        if target != "purchases":
            raise ClvlabError(f"GBMPoissonChallenger has a distribution of purchases only "
                              f"(target='purchases'), not of {target!r}: its spend model is a mean")
        mu = self.predict(X)["expected_purchases"].to_numpy()
        values = stats.poisson.ppf(levels[None, :], mu[:, None]).astype(np.int64)
        return pd.DataFrame(values, index=X.index, columns=[f"purchases_q{v:g}" for v in levels])

    @accepts_tables(keyed=("X",))
    def sample(self, X: pd.DataFrame, n_draws: int = 200, seed: Any = 0) -> dict[str, np.ndarray]:
        """Poisson(mu) draws of each customer's purchases.

        Parameters
        ----------
        X : pandas.DataFrame
            Features, with the columns and types of ``fit``'s.
        n_draws : int, default 200
            Draws a customer (>= 1).
        seed : int, numpy.random.Generator or None, default 0
            Anything ``numpy.random.default_rng`` takes; the same seed gives the same draws.

        Returns
        -------
        dict of str to numpy.ndarray
            ``{"purchases": array of shape (len(X), n_draws)}`` (floats).

        Raises
        ------
        ClvlabError
            Where ``n_draws`` is not a whole number >= 1.
        """
        n_draws = whole_setting(n_draws, "n_draws", 1)
        mu = self.predict(X)["expected_purchases"].to_numpy()
        rng = np.random.default_rng(seed)
        return {"purchases": rng.poisson(mu[:, None], size=(len(mu), n_draws)).astype(np.float64)}

    # internals ---------------------------------------------------------------------------------

    def _design(self, X: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
        """The trees' columns and the offset e (ones without base="offset")."""
        ones = np.ones(len(X))
        if self.base is None:
            return X.drop(columns=[BASE_COLUMN], errors="ignore"), ones
        if BASE_COLUMN not in X.columns:
            raise DataValidationError(BASE_COLUMN, f"is missing from X; base={self.base!r} needs "
                                      "the BTYD model's expected purchases over the horizon "
                                      "(base=None fits without them)")
        if self.base == "feature":
            return X, ones
        if isinstance(X[BASE_COLUMN].dtype, pd.CategoricalDtype):
            raise DataValidationError(BASE_COLUMN, "must be numbers (expected purchases)")
        e = X[BASE_COLUMN].to_numpy(np.float64, na_value=np.nan)
        bad = ~(np.isfinite(e) & (e > 0))
        if bad.any():
            raise DataValidationError(BASE_COLUMN, "must be finite and > 0 with base='offset' "
                                      "(log e is the offset)", example_row(X, int(np.flatnonzero(bad)[0])))
        return X, e

    def _regressor(self):
        from sklearn.ensemble import HistGradientBoostingRegressor

        l2 = self.l2_regularization
        if isinstance(l2, bool) or not isinstance(l2, (int, float, np.number)) \
                or not math.isfinite(l2) or l2 < 0:
            raise ClvlabError(f"l2_regularization must be a number >= 0, got {l2!r}")
        depth = None if self.max_depth is None else whole_setting(self.max_depth, "max_depth", 1)
        return HistGradientBoostingRegressor(
            loss="poisson", max_iter=whole_setting(self.max_iter, "max_iter", 1),
            learning_rate=positive_setting(self.learning_rate, "learning_rate"),
            max_leaf_nodes=whole_setting(self.max_leaf_nodes, "max_leaf_nodes", 2),
            max_depth=depth, min_samples_leaf=whole_setting(self.min_samples_leaf,
                                                            "min_samples_leaf", 1),
            l2_regularization=float(l2), categorical_features="from_dtype",
            random_state=self.random_seed)

    def _file_state(self) -> dict[str, Any]:
        parts = {"purchases": self.purchase_model_}
        if self.spend_model_ is not None:
            parts["spend"] = self.spend_model_
        return {"parts": parts, "learned": {"design_columns": self.design_columns_}}

    def _restore(self, learned: dict[str, Any], parts: dict[str, Any]) -> None:
        self.purchase_model_, self.spend_model_ = parts["purchases"], parts.get("spend")
        self.design_columns_ = list(learned["design_columns"])


def _row(part: str, target: str, customers: int, deviance: float) -> dict[str, Any]:
    return {"part": part, "target": target, "customers": int(customers),
            "in_sample_deviance": float(deviance), "sigma": math.nan}
