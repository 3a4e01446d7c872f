"""lifetimes 0.11's BetaGeoFitter, ModifiedBetaGeoFitter and ParetoNBDFitter on clvlab's
BetaGeo, ModifiedBetaGeo and ParetoNBD: lifetimes' names, argument orders and return types,
clvlab's likelihoods, optimiser and formulas.

Predictions evaluate clvlab's formulas at ``params_`` through the models' prediction hooks
(P(alive), the posterior of an alive customer, a new customer's expectation), which take any
(frequency, recency, T) as lifetimes' formulas do, also the grid points of the matrices that no
customer can have (repeat purchases at recency 0).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from clvlab.lifetimes._base import BaseFitter, check_inputs, inputs, result

__all__ = ["BetaGeoFitter", "ModifiedBetaGeoFitter", "ParetoNBDFitter"]


class _TransactionFitter(BaseFitter):
    """The continuous-time transaction fitters: fit, conditional and new-customer predictions."""

    _time_params = ("alpha",)
    #: lifetimes' objective divides the weighted log-likelihood by sum(w) ("sum") or mean(w)
    _objective_scale = "sum"
    #: whether lifetimes' initial_params are log-parameters
    _log_start = True

    def _fit_transactions(self, frequency, recency, T, weights, initial_params, verbose, index,
                          kwargs):
        check_inputs(frequency, recency, T)
        frequency = np.asarray(frequency).astype(int)
        recency = np.asarray(recency)
        T = np.asarray(T)
        weights = np.ones_like(recency, dtype=int) if weights is None else np.asarray(weights)
        self._scale = 1.0 / np.asarray(T, dtype=np.float64).max()
        table = pd.DataFrame({"frequency": frequency,
                              "recency": np.asarray(recency, dtype=np.float64) * self._scale,
                              "T": np.asarray(T, dtype=np.float64) * self._scale})
        total = float(np.sum(weights))
        divisor = total if self._objective_scale == "sum" else total / len(weights)
        self._penalty = float(self.penalizer_coef) * divisor
        start = None
        if initial_params is not None:
            start = np.exp(initial_params) if self._log_start else np.asarray(initial_params, float)
        model = self._fit_clvlab(table, np.asarray(weights, dtype=np.float64), self._penalty,
                                 start, verbose, kwargs)
        self._negative_log_likelihood_ = -model.log_likelihood_ / divisor + self._penalty_term
        self.data = pd.DataFrame({"frequency": frequency, "recency": recency, "T": T,
                                  "weights": weights}, index=index)
        return self

    # --- the formulas, on flat arrays ---------------------------------------------------------
    def _alive(self, x, t_x, T) -> np.ndarray:
        return np.asarray(self._model()._p_alive(x, t_x, T), dtype=np.float64)

    def _expected(self, t, x, t_x, T) -> np.ndarray:
        if np.any(t < 0):
            raise ValueError("t must be >= 0, got {}".format(t[t < 0][0]))
        model = self._model()
        out = np.zeros(t.shape)
        on = t > 0  # nothing is expected over a window of length 0
        if on.any():
            alive = model._p_alive(x[on], t_x[on], T[on])
            out[on] = alive * model._new_expected(model._posterior(x[on], t_x[on], T[on]), t[on])
        return out

    # --- lifetimes' methods -----------------------------------------------------------------
    def conditional_expected_number_of_purchases_up_to_time(self, t, frequency, recency, T):
        """
        Conditional expected number of purchases up to time.

        Calculate the expected number of repeat purchases up to time t for a randomly chosen
        individual from the population, given they have purchase history (frequency, recency,
        T): P(alive) times the expectation of an alive customer (clvlab's
        ``expected_purchases(rfm, t)``).

        Parameters
        ----------
        t: array_like
            times to calculate the expectation for.
        frequency: array_like
            historical frequency of customer.
        recency: array_like
            historical recency of customer.
        T: array_like
            age of the customer.

        Returns
        -------
        array_like
        """
        shape, (t_, x, t_x, age) = inputs(t, frequency, recency, T)
        return result(self._expected(t_, x, t_x, age), shape, (frequency, recency, T, t))

    def predict(self, t, frequency, recency, T):
        """lifetimes' alias of ``conditional_expected_number_of_purchases_up_to_time``."""
        return self.conditional_expected_number_of_purchases_up_to_time(t, frequency, recency, T)

    def expected_number_of_purchases_up_to_time(self, t):
        """
        Calculate the expected number of repeat purchases up to time t for a randomly chosen
        individual from the population (clvlab's ``expected_purchases_new_customer(t)``).

        Parameters
        ----------
        t: array_like
            times to calculate the expectation for

        Returns
        -------
        array_like
        """
        shape, (t_,) = inputs(t)
        if np.any(t_ < 0):
            raise ValueError("t must be >= 0")
        out = np.zeros(t_.shape)
        on = t_ > 0
        if on.any():
            out[on] = np.atleast_1d(self._model().expected_purchases_new_customer(t_[on]))
        return result(out, shape, (t,))

    def conditional_probability_alive(self, frequency, recency, T):
        """
        Compute the probability that a customer with history (frequency, recency, T) is
        currently alive (clvlab's ``p_alive(rfm)``).

        Parameters
        ----------
        frequency: array or scalar
            historical frequency of customer.
        recency: array or scalar
            historical recency of customer.
        T: array or scalar
            age of the customer.

        Returns
        -------
        array
            value representing a probability
        """
        shape, (x, t_x, age) = inputs(frequency, recency, T)
        return result(self._alive(x, t_x, age), shape, series=False, at_least_1d=True)

    def conditional_probability_alive_matrix(self, max_frequency=None, max_recency=None):
        """
        Compute the probability alive matrix.

        Parameters
        ----------
        max_frequency: float, optional
            the maximum frequency to plot. Default is max observed frequency.
        max_recency: float, optional
            the maximum recency to plot. This also determines the age of the
            customer. Default to max observed age.

        Returns
        -------
        matrix:
            A matrix of the form [t_x: historical recency, x: historical frequency]
        """
        max_frequency = max_frequency or int(self._data_max("frequency"))
        max_recency = max_recency or int(self._data_max("T"))
        recency, frequency = np.meshgrid(np.arange(max_recency + 1.0), np.arange(max_frequency + 1.0),
                                         indexing="ij")
        values = self._alive(frequency.ravel(), recency.ravel(),
                             np.full(frequency.size, float(max_recency)))
        return values.reshape(frequency.shape)


class BetaGeoFitter(_TransactionFitter):
    """
    Also known as the BG/NBD model (Fader, Hardie & Lee 2005), fitted by clvlab's
    ``BetaGeo`` (maximum likelihood, exact gradients).

    Parameters
    ----------
    penalizer_coef: float
        The coefficient applied to an l2 norm on the parameters

    Attributes
    ----------
    params_: Series (r, alpha, a, b); data: DataFrame of the fit's inputs; variance_matrix_,
    standard_errors_, confidence_intervals_, summary; _negative_log_likelihood_: lifetimes'
    objective at the optimum (mean negative log-likelihood on the scaled times, plus penalty).
    """

    _clvlab_name = "BetaGeo"
    _param_names = ("r", "alpha", "a", "b")

    def __init__(self, penalizer_coef=0.0):
        """Initialization, set penalizer_coef."""
        self.penalizer_coef = penalizer_coef

    def fit(self, frequency, recency, T, weights=None, initial_params=None, verbose=False,
            tol=1e-7, index=None, **kwargs):
        """
        Fit a dataset to the BG/NBD model.

        Parameters
        ----------
        frequency: array_like
            the frequency vector of customers' purchases (denoted x in literature).
        recency: array_like
            the recency vector of customers' purchases (denoted t_x in literature).
        T: array_like
            customers' age (time units since first purchase)
        weights: None or array_like
            Number of customers with given frequency/recency/T, defaults to 1.
        initial_params: array_like, optional
            starting values (log-parameters on lifetimes' scaled times, as lifetimes takes them).
        verbose : bool, optional
            print clvlab's convergence diagnostics.
        tol : float, optional
            accepted for compatibility: clvlab's optimiser stops at a tighter point (a mean
            gradient below 1e-5 per customer, ftol 1e-15).
        index: array_like, optional
            index for resulted DataFrame which is accessible via self.data
        kwargs:
            scipy options in lifetimes; accepted and unused. ``time_unit="W"`` (an addition)
            records the data's unit in files written by ``save_model``.

        Returns
        -------
        BetaGeoFitter
            with additional properties like ``params_`` and methods like ``predict``
        """
        return self._fit_transactions(frequency, recency, T, weights, initial_params, verbose,
                                      index, kwargs)

    def probability_of_n_purchases_up_to_time(self, t, n):
        r"""
        Compute the probability of n purchases.

         .. math::  P( N(t) = n | \text{model} )

        where N(t) is the number of repeat purchases a customer makes in t units of time
        (clvlab's ``purchase_probability(n, t)``).

        Parameters
        ----------
        t: float
            number units of time
        n: int
            number of purchases

        Returns
        -------
        float:
            Probability to have n purchases up to t units of time
        """
        model = self._model()
        shape, (t_,) = inputs(t)
        values = [model.purchase_probability(int(n), float(v)) if v > 0 else float(n == 0)
                  for v in t_]
        return result(values, shape, (t,), series=False)


class ModifiedBetaGeoFitter(BetaGeoFitter):
    """
    Also known as the MBG/NBD model (Batislam et al. 2007; Wagner & Hoppe 2008): a customer
    may also drop out right after the first purchase. Fitted by clvlab's ``ModifiedBetaGeo``.
    """

    _clvlab_name = "ModifiedBetaGeo"

    def __init__(self, penalizer_coef=0.0):
        """Initialization, set penalizer_coef."""
        super().__init__(penalizer_coef)

    def fit(self, frequency, recency, T, weights=None, initial_params=None, verbose=False,
            tol=1e-7, index=None, **kwargs):
        """Fit the data to the MBG/NBD model (arguments as ``BetaGeoFitter.fit``)."""
        return self._fit_transactions(frequency, recency, T, weights, initial_params, verbose,
                                      index, kwargs)


class ParetoNBDFitter(_TransactionFitter):
    """
    Pareto/NBD fitter (Schmittlein, Morrison & Colombo 1987) on clvlab's ``ParetoNBD``: its
    likelihood without cancellation and exact gradients, so the fit reaches the maximum that
    lifetimes' Nelder-Mead search from random starts only approaches.

    Parameters
    ----------
    penalizer_coef: float
        The coefficient applied to an l2 norm on the parameters
    """

    _clvlab_name = "ParetoNBD"
    _param_names = ("r", "alpha", "s", "beta")
    _time_params = ("alpha", "beta")
    _objective_scale = "mean"
    _log_start = False

    def __init__(self, penalizer_coef=0.0):
        """Initialization, set penalizer_coef."""
        self.penalizer_coef = penalizer_coef

    def fit(self, frequency, recency, T, weights=None, iterative_fitting=1, initial_params=None,
            verbose=False, tol=1e-4, index=None, fit_method="Nelder-Mead", maxiter=2000, **kwargs):
        """
        Pareto/NBD model fitter (arguments as ``BetaGeoFitter.fit``).

        ``iterative_fitting``, ``fit_method``, ``maxiter`` and ``tol`` are accepted for
        compatibility (lifetimes' checks on them kept): clvlab fits by L-BFGS-B with exact
        gradients and its own restarts. ``initial_params`` are parameters on lifetimes' scaled
        times (not logs), as lifetimes takes them.
        """
        if iterative_fitting <= 0:
            raise ValueError("iterative_fitting parameter should be greater than 0 as of lifetimes v0.2.1")
        if iterative_fitting > 1 and initial_params is not None:
            raise ValueError("iterative_fitting and initial_params should not be both set, as no "
                             "improvement could be made.")
        return self._fit_transactions(frequency, recency, T, weights, initial_params, verbose,
                                      index, kwargs)

    def conditional_probability_alive(self, frequency, recency, T):
        """
        Compute the probability that a customer with history (frequency, recency, T) is
        currently alive (clvlab's ``p_alive(rfm)``).

        Parameters
        ----------
        frequency: float
            historical frequency of customer.
        recency: float
            historical recency of customer.
        T: float
            age of the customer.

        Returns
        -------
        float
            value representing a probability
        """
        shape, (x, t_x, age) = inputs(frequency, recency, T)
        return result(self._alive(x, t_x, age), shape, (frequency, recency, T))

    def conditional_probability_of_n_purchases_up_to_time(self, n, t, frequency, recency, T):
        """
        Return conditional probability of n purchases up to time t for an individual with
        history frequency, recency and T (clvlab's ``purchase_probability(n, t, rfm)``).

        Parameters
        ----------
        n: int
            number of purchases.
        t: a scalar
            time up to which probability should be calculated.
        frequency: float
            historical frequency of customer.
        recency: float
            historical recency of customer.
        T: float
            age of the customer.

        Returns
        -------
        array_like
        """
        if t <= 0:
            return 0
        shape, (x, t_x, age) = inputs(frequency, recency, T)
        table = pd.DataFrame({"frequency": x, "recency": t_x, "T": age})
        values = self._model().purchase_probability(int(n), float(t), table).to_numpy()
        return result(values, shape, (frequency, recency, T))
