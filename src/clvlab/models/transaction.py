"""Predictions shared by the transaction models (BG/NBD, Pareto/NBD, ...).

Each model supplies P(alive) and, for a customer who is alive at T, the parameters of the
posterior of its latent rates (``_posterior``). Because the posterior of an alive customer is the
model's own prior with updated parameters, every conditional prediction is
P(alive) x (the new-customer quantity under the posterior parameters).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from clvlab.core.errors import ClvlabError, shown
from clvlab.data.validation import validate_rfm
from clvlab.core.numbers import numbers
from clvlab.models.customer_params import by_covariate_group, population_level, rows_are_distinct
from clvlab.models.predictive import PurchaseDistribution
from clvlab.models.table_units import checks_time_unit

__all__ = ["TransactionModel", "check_horizon"]


class TransactionModel(PurchaseDistribution):
    """Mixin: conditional and unconditional predictions, vectorised over customers."""

    #: every prediction is written over arrays and takes parameters with one value per row
    #: (``customer_params``: a model with covariates predicts all customers in one pass).
    row_predictions = True

    requires_time_unit = True  # recency, T and horizons are durations

    def _arrays(self, rfm: pd.DataFrame):
        self._check_fitted()
        validate_rfm(rfm)
        self._check_time_unit(rfm)
        return (rfm["frequency"].to_numpy(np.float64), rfm["recency"].to_numpy(np.float64),
                rfm["T"].to_numpy(np.float64))

    @checks_time_unit
    @by_covariate_group
    def p_alive(self, rfm: pd.DataFrame) -> pd.Series:
        """Probability that each customer is still active at T.

        Parameters
        ----------
        rfm : pandas.DataFrame
            The customers: ``frequency``, ``recency`` and ``T`` (in the model's time unit), and
            any covariate columns the model reads.
        covariate_paths : CovariatePaths, optional
            Each customer's time-varying covariates along the window
            (:func:`clvlab.covariate_paths`), for a model with covariates: needed by one fitted
            along paths; None: the table's static covariates.
        time_unit : str, optional
            The unit of the table's durations (``"D"``, ``"W"``...) for a table that does not
            record it (a merge, a CSV read with pandas); it must be the model's: predictions are
            never rescaled. None: the unit the table records.
        check_durations : bool, default True
            Refuse durations that look like another unit than the model's (by the likelihood and
            the customers' ages); False skips that check.

        Returns
        -------
        pandas.Series
            ``p_alive`` on ``rfm``'s index.

        Raises
        ------
        ClvlabError
            Where the model is not fitted, the horizon is not finite and > 0, the table's time unit
            is not the model's, or a prediction is not finite (parameters the data do not
            identify).
        DataValidationError
            Where the table breaks an RFM rule (:func:`clvlab.validate_rfm`).
        """
        x, t_x, T = self._arrays(rfm)
        values = _per_distinct(self._p_alive, x, t_x, T)
        return pd.Series(self._finite(values, "p_alive", rfm), index=rfm.index, name="p_alive")

    @checks_time_unit
    @by_covariate_group
    def expected_purchases(self, rfm: pd.DataFrame, t: Any) -> pd.Series:
        """Expected number of purchases in (T, T + t] given each customer's history.

        Parameters
        ----------
        rfm : pandas.DataFrame
            The customers: ``frequency``, ``recency`` and ``T`` (in the model's time unit), and
            any covariate columns the model reads.
        t : float or array-like
            The horizon, in the model's time unit (> 0): one for all customers or one per customer.
        covariate_paths : CovariatePaths, optional
            Each customer's time-varying covariates along the window
            (:func:`clvlab.covariate_paths`), for a model with covariates: needed by one fitted
            along paths; None: the table's static covariates.
        time_unit : str, optional
            The unit of the table's durations (``"D"``, ``"W"``...) for a table that does not
            record it (a merge, a CSV read with pandas); it must be the model's: predictions are
            never rescaled. None: the unit the table records.
        check_durations : bool, default True
            Refuse durations that look like another unit than the model's (by the likelihood and
            the customers' ages); False skips that check.

        Returns
        -------
        pandas.Series
            ``expected_purchases`` on ``rfm``'s index.

        Raises
        ------
        ClvlabError
            Where the model is not fitted, the horizon is not finite and > 0, the table's time unit
            is not the model's, or a prediction is not finite (parameters the data do not
            identify).
        DataValidationError
            Where the table breaks an RFM rule (:func:`clvlab.validate_rfm`).
        """
        t = check_horizon(t)
        x, t_x, T = self._arrays(rfm)
        alive = _per_distinct(self._p_alive, x, t_x, T)
        given_alive = _per_distinct(lambda *p: self._new_expected(p[:-1], p[-1]),
                                    *self._posterior(x, t_x, T), t)
        values = self._finite(alive * given_alive, "expected_purchases", rfm)
        return pd.Series(values, index=rfm.index, name="expected_purchases")

    @checks_time_unit
    @by_covariate_group
    def expected_purchases_by_horizon(self, rfm: pd.DataFrame, horizons: Any) -> pd.DataFrame:
        """Expected purchases in (T, T + h] for each horizon h in ``horizons`` (columns, in
        their order): ``expected_purchases`` at several horizons, with P(alive) and the
        posterior computed once (CLV's discounting periods, tracking curves).

        Parameters
        ----------
        rfm : pandas.DataFrame
            The customers: ``frequency``, ``recency`` and ``T`` (in the model's time unit), and
            any covariate columns the model reads.
        horizons : float or sequence of float
            Horizons in the model's time unit (> 0), shared by all customers.
        covariate_paths : CovariatePaths, optional
            Each customer's time-varying covariates along the window
            (:func:`clvlab.covariate_paths`), for a model with covariates: needed by one fitted
            along paths; None: the table's static covariates.
        time_unit : str, optional
            The unit of the table's durations (``"D"``, ``"W"``...) for a table that does not
            record it (a merge, a CSV read with pandas); it must be the model's: predictions are
            never rescaled. None: the unit the table records.
        check_durations : bool, default True
            Refuse durations that look like another unit than the model's (by the likelihood and
            the customers' ages); False skips that check.

        Returns
        -------
        pandas.DataFrame
            On ``rfm``'s index, one column per horizon (named by it).

        Raises
        ------
        ClvlabError
            Where the model is not fitted, the horizon is not finite and > 0, the table's time unit
            is not the model's, or a prediction is not finite (parameters the data do not
            identify).
        DataValidationError
            Where the table breaks an RFM rule (:func:`clvlab.validate_rfm`).
        """
        horizons = np.atleast_1d(check_horizon(horizons)).astype(np.float64)
        if horizons.ndim != 1:
            raise ClvlabError("horizons must be one list of horizons, shared by all customers")
        x, t_x, T = self._arrays(rfm)
        alive = _per_distinct(self._p_alive, x, t_x, T)
        posterior = [np.asarray(p, dtype=np.float64) for p in self._posterior(x, t_x, T)]
        values = np.column_stack([alive * _per_distinct(lambda *p: self._new_expected(p, h),
                                                        *posterior) for h in horizons])
        self._finite(values, "expected_purchases", rfm)
        return pd.DataFrame(values, index=rfm.index, columns=list(horizons))

    @population_level
    def expected_purchases_new_customer(self, t: Any) -> np.ndarray | float:
        """Expected repeat purchases of a newly acquired customer in their first t time units.

        Parameters
        ----------
        t : float or array-like
            The time since acquisition, in the model's time unit (> 0).

        Returns
        -------
        float or numpy.ndarray
            A float for one ``t``, an array for several.

        Raises
        ------
        ClvlabError
            Where the horizon is not finite and > 0, or the model has covariates (a new customer's
            parameters depend on them).
        """
        t = check_horizon(t)
        values = self._new_customer_expected(t)
        return float(values) if np.ndim(values) == 0 else values

    # a new customer's process from the population parameters; models where the first
    # purchase itself carries a chance to drop out (MBG/NBD) override these two
    def _new_customer_expected(self, t):
        return self._new_expected(self._population_params(), t)

    def _new_customer_pmf(self, n: int, t):
        return self._new_pmf(self._population_params(), n, t)

    @checks_time_unit
    @by_covariate_group
    def purchase_probability(self, n: int, t: Any, rfm: pd.DataFrame | None = None):
        """P(exactly n purchases in a window of length t).

        Without ``rfm``: for a new customer over (0, t] (a scalar). With ``rfm``: for each
        customer over (T, T + t] given their history (a Series).

        Parameters
        ----------
        n : int
            The number of purchases (>= 0).
        t : float or array-like
            The window's length in the model's time unit (> 0).
        rfm : pandas.DataFrame, optional
            The customers (``frequency``, ``recency``, ``T``); None: a new customer.
        covariate_paths : CovariatePaths, optional
            Each customer's time-varying covariates along the window
            (:func:`clvlab.covariate_paths`), for a model with covariates: needed by one fitted
            along paths; None: the table's static covariates.
        time_unit : str, optional
            The unit of the table's durations (``"D"``, ``"W"``...) for a table that does not
            record it (a merge, a CSV read with pandas); it must be the model's: predictions are
            never rescaled. None: the unit the table records.
        check_durations : bool, default True
            Refuse durations that look like another unit than the model's (by the likelihood and
            the customers' ages); False skips that check.

        Returns
        -------
        float or pandas.Series
            A float without ``rfm``; with it a Series named ``P(X=n)`` on its index.

        Raises
        ------
        ClvlabError
            Where the model is not fitted, the horizon is not finite and > 0, the table's time unit
            is not the model's, or a prediction is not finite (parameters the data do not
            identify).
        DataValidationError
            Where the table breaks an RFM rule (:func:`clvlab.validate_rfm`).
        """
        if not (isinstance(n, (int, np.integer)) and n >= 0):
            raise ClvlabError(f"n must be a whole number >= 0, got {n!r}")
        t = check_horizon(t)
        if rfm is None:
            return float(self._new_customer_pmf(int(n), t))
        # the column of the conditional PMF (predictive.py): one exact implementation, whose
        # Pareto/NBD quadrature follows heavy buyers' narrow integrands
        values = self.purchase_pmf(rfm, t, max_n=int(n), tail=0.0)[int(n)].to_numpy()
        return pd.Series(self._finite(values, f"P(X={n})", rfm), index=rfm.index, name=f"P(X={n})")

    @checks_time_unit
    @by_covariate_group
    def scores(self, rfm: pd.DataFrame, t: float) -> pd.DataFrame:
        """p_alive, expected purchases and P(any purchase) over (T, T + t] together: each is
        computed once per distinct (frequency, recency, T), sharing P(alive) (the scoring
        job's columns, at the cost of about one of them).

        Parameters
        ----------
        rfm : pandas.DataFrame
            The customers: ``frequency``, ``recency`` and ``T`` (in the model's time unit), and
            any covariate columns the model reads.
        t : float
            One horizon for all customers, in the model's time unit (> 0).
        covariate_paths : CovariatePaths, optional
            Each customer's time-varying covariates along the window
            (:func:`clvlab.covariate_paths`), for a model with covariates: needed by one fitted
            along paths; None: the table's static covariates.
        time_unit : str, optional
            The unit of the table's durations (``"D"``, ``"W"``...) for a table that does not
            record it (a merge, a CSV read with pandas); it must be the model's: predictions are
            never rescaled. None: the unit the table records.
        check_durations : bool, default True
            Refuse durations that look like another unit than the model's (by the likelihood and
            the customers' ages); False skips that check.

        Returns
        -------
        pandas.DataFrame
            On ``rfm``'s index: ``p_alive``, ``expected_purchases``, ``probability_of_purchase``.

        Raises
        ------
        ClvlabError
            Where the model is not fitted, the horizon is not finite and > 0, the table's time unit
            is not the model's, or a prediction is not finite (parameters the data do not
            identify).
        DataValidationError
            Where the table breaks an RFM rule (:func:`clvlab.validate_rfm`).
        """
        from clvlab.inference.grouping import group_rows

        t = check_horizon(t)
        if np.ndim(t):
            raise ClvlabError("scores takes one horizon for all customers")
        x, t_x, T = self._arrays(rfm)
        if rows_are_distinct():  # a row model: parameters by row, rows already distinct
            (dx, dt_x, dT), inverse = (x, t_x, T), np.arange(len(x))
        else:
            (dx, dt_x, dT), inverse = group_rows([x, t_x, T])
        alive = self._p_alive(dx, dt_x, dT)
        posterior = self._posterior(dx, dt_x, dT)  # often fewer distinct values still: (x, T)
        expected = alive * _per_distinct(lambda *p: self._new_expected(p, t), *posterior)
        none = alive * _per_distinct(lambda *p: self._new_pmf(p, 0, t), *posterior) + (1.0 - alive)
        out = pd.DataFrame({"p_alive": alive[inverse], "expected_purchases": expected[inverse],
                            "probability_of_purchase": (1.0 - none)[inverse]}, index=rfm.index)
        for column in out.columns:
            self._finite(out[column].to_numpy(), column, rfm)
        return out

    def _finite(self, values: np.ndarray, what: str, rfm: pd.DataFrame) -> np.ndarray:
        """Predictions are finite or an error: never a silent NaN (degenerate fits can put
        parameters where even the fallbacks of the special functions give up)."""
        values = np.asarray(values, dtype=np.float64)
        bad = ~np.isfinite(values)
        if bad.any():
            # one value per customer per column (n x horizons), or per horizon per customer
            position = (int(np.argwhere(bad)[0][0]) if bad.ndim == 2 and bad.shape[0] == len(rfm)
                        else int(np.flatnonzero(bad.ravel())[0]) % len(rfm))
            params = ", ".join(f"{k}={v:.4g}" for k, v in zip(self.param_names, self._check_fitted()))
            raise ClvlabError(
                f"{type(self).__name__} cannot compute {what} for customer {shown(rfm.index[position])} "
                f"({dict(rfm.iloc[position])}) at the fitted parameters ({params}); parameters this "
                "extreme mean the data do not identify the model: refit with penalty > 0")
        return values

    @checks_time_unit
    @by_covariate_group
    def probability_of_purchase(self, rfm: pd.DataFrame, t: Any) -> pd.Series:
        """P(at least one purchase in (T, T + t]) for each customer.

        Parameters
        ----------
        rfm : pandas.DataFrame
            The customers: ``frequency``, ``recency`` and ``T`` (in the model's time unit), and
            any covariate columns the model reads.
        t : float or array-like
            The horizon, in the model's time unit (> 0): one for all customers or one per customer.
        covariate_paths : CovariatePaths, optional
            Each customer's time-varying covariates along the window
            (:func:`clvlab.covariate_paths`), for a model with covariates: needed by one fitted
            along paths; None: the table's static covariates.
        time_unit : str, optional
            The unit of the table's durations (``"D"``, ``"W"``...) for a table that does not
            record it (a merge, a CSV read with pandas); it must be the model's: predictions are
            never rescaled. None: the unit the table records.
        check_durations : bool, default True
            Refuse durations that look like another unit than the model's (by the likelihood and
            the customers' ages); False skips that check.

        Returns
        -------
        pandas.Series
            ``probability_of_purchase`` on ``rfm``'s index.

        Raises
        ------
        ClvlabError
            Where the model is not fitted, the horizon is not finite and > 0, the table's time unit
            is not the model's, or a prediction is not finite (parameters the data do not
            identify).
        DataValidationError
            Where the table breaks an RFM rule (:func:`clvlab.validate_rfm`).
        """
        values = 1.0 - self.purchase_probability(0, t, rfm)
        return values.rename("probability_of_purchase")


def _per_distinct(function, *arrays) -> np.ndarray:
    """``function(*arrays)`` evaluated once per distinct row of the arrays (broadcast to one
    length) and spread back: customers with the same history (or the same posterior) share
    their prediction, so scoring costs grow with distinct rows, as fits do."""
    from clvlab.inference.grouping import group_rows

    columns = np.broadcast_arrays(*(np.asarray(a, dtype=np.float64) for a in arrays))
    # rows already distinct in history and parameters (a row model's) have nothing to share
    if columns[0].ndim == 0 or columns[0].size < 1_000 or rows_are_distinct():
        return np.asarray(function(*columns), dtype=np.float64)
    distinct, inverse = group_rows([c.ravel() for c in columns])
    return np.asarray(function(*distinct), dtype=np.float64)[inverse].reshape(columns[0].shape)


def check_horizon(t: Any):
    """A prediction horizon (a number or an array of them) in the model's time unit, finite
    and > 0, as a float or a float array."""
    values = np.asarray(numbers(t, "t", "the horizon, in the model's time units, e.g. 52 for a "
                                "year in weeks"))
    if not np.all(np.isfinite(values)) or np.any(values <= 0):
        raise ClvlabError(f"the horizon t must be finite and > 0, got {t!r}")
    return float(values) if values.ndim == 0 else values
