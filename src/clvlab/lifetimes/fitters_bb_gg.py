"""lifetimes 0.11's BetaGeoBetaBinomFitter and GammaGammaFitter on clvlab's BetaGeoBetaBinom and
GammaGamma: lifetimes' names, argument orders and return types, clvlab's likelihoods and
formulas."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import special

from clvlab.lifetimes._base import BaseFitter, check_inputs, inputs, result
from clvlab.lifetimes.predictions import customer_lifetime_value as _discounted_value

__all__ = ["BetaGeoBetaBinomFitter", "GammaGammaFitter"]


class BetaGeoBetaBinomFitter(BaseFitter):
    """
    Also known as the Beta-Geometric/Beta-Binomial model (Fader, Hardie & Shang 2010):
    purchase opportunities are discrete. Fitted by clvlab's ``BetaGeoBetaBinom``.

    Parameters
    ----------
    penalizer_coef: float
        The coefficient applied to an l2 norm on the parameters
    """

    _clvlab_name = "BetaGeoBetaBinom"
    _param_names = ("alpha", "beta", "gamma", "delta")

    def __init__(self, penalizer_coef=0.0):
        """Initialization, set penalizer_coef."""
        self.penalizer_coef = penalizer_coef

    def fit(self, frequency, recency, n_periods, weights=None, initial_params=None, verbose=False,
            tol=1e-7, index=None, **kwargs):
        """
        Fit the BG/BB model.

        Parameters
        ----------
        frequency: array_like
            Total periods with observed transactions
        recency: array_like
            Period of most recent transaction
        n_periods: array_like
            Number of transaction opportunities.
        weights: None or array_like
            Number of customers with given frequency/recency/n_periods, defaults to 1.
        initial_params: array_like, optional
            starting log-parameters, as lifetimes takes them.
        verbose, tol, kwargs:
            as ``BetaGeoFitter.fit`` (tol and scipy options accepted and unused).
        index: array_like, optional
            Index for resulted DataFrame which is accessible via self.data

        Returns
        -------
        BetaGeoBetaBinomFitter
            fitted and with parameters estimated
        """
        check_inputs(frequency, recency, n_periods)
        frequency = np.asarray(frequency).astype(int)
        recency = np.asarray(recency).astype(int)
        n_periods = np.asarray(n_periods).astype(int)
        weights = np.ones_like(recency) if weights is None else np.asarray(weights)
        self._scale = 1.0
        table = pd.DataFrame({"frequency": frequency, "recency": recency, "periods": n_periods})
        total = float(np.sum(weights))
        self._penalty = float(self.penalizer_coef) * total
        start = None if initial_params is None else np.exp(initial_params)
        model = self._fit_clvlab(table, np.asarray(weights, dtype=np.float64), self._penalty,
                                 start, verbose, kwargs)
        self._negative_log_likelihood_ = -model.log_likelihood_ / total + self._penalty_term
        self.data = pd.DataFrame({"frequency": frequency, "recency": recency,
                                  "n_periods": n_periods, "weights": weights}, index=index)
        return self

    def conditional_expected_number_of_purchases_up_to_time(self, m_periods_in_future, frequency,
                                                            recency, n_periods):
        """
        The expected number of transactions across the next m_periods_in_future transaction
        opportunities by a customer with purchase history (x, tx, n): Fader & Hardie 2010
        eq. 13 (clvlab's ``expected_purchases(table, t)``).

        Returns
        -------
        array_like
            predicted transactions
        """
        shape, (m, x, t_x, n) = inputs(m_periods_in_future, frequency, recency, n_periods)
        out = np.zeros(m.shape)
        on = m > 0  # no opportunity, no purchase
        if on.any():
            table = pd.DataFrame({"frequency": x[on], "recency": t_x[on], "periods": n[on]})
            out[on] = self._model().expected_purchases(table, m[on]).to_numpy()
        return result(out, shape, (frequency, recency, n_periods, m_periods_in_future))

    def conditional_probability_alive(self, m_periods_in_future, frequency, recency, n_periods):
        """
        Conditional probability customer is alive at transaction opportunity
        n_periods + m_periods_in_future: P(alive at n | history) (clvlab's BG/BB) times the
        chance to survive m more opportunities, B(gamma, delta+n+m) / B(gamma, delta+n).

        Returns
        -------
        array_like
            alive probabilities
        """
        shape, (m, x, t_x, n) = inputs(m_periods_in_future, frequency, recency, n_periods)
        model = self._model()
        _, _, gamma, delta = self._unload_params(*self._param_names)
        log_alive = (model._log_alive_at_n(x, t_x, n) + special.betaln(gamma, delta + n + m)
                     - special.betaln(gamma, delta + n))
        return result(np.exp(log_alive), shape, (frequency, n_periods, recency, m_periods_in_future))

    def expected_number_of_transactions_in_first_n_periods(self, n):
        r"""
        Expected number of customers with each number of transactions across the first n
        transaction opportunities (Fader & Hardie 2010 eq. 7 times the customers fitted), for
        the frequencies in the fit's data (clvlab's ``purchase_probability(x, n)``).

        Returns
        -------
        DataFrame:
            Predicted values, indexed by x
        """
        x_counts = self.data.groupby("frequency")["weights"].sum()
        model = self._model()
        values = [model.purchase_probability(int(x), int(n)) for x in x_counts.index]
        idx = pd.Index(np.asarray(x_counts.index), name="frequency")
        return pd.DataFrame(np.asarray(values) * x_counts.sum(), index=idx, columns=["model"])


class GammaGammaFitter(BaseFitter):
    """
    Fitter for the gamma-gamma model of the average monetary value of customer transactions
    (Fader, Hardie & Lee 2005), on clvlab's ``GammaGamma``.

    Parameters
    ----------
    penalizer_coef: float
        The coefficient applied to an l2 norm on the parameters
    """

    _clvlab_name = "GammaGamma"
    _param_names = ("p", "q", "v")

    def __init__(self, penalizer_coef=0.0):
        """Initialization, set penalizer_coef."""
        self.penalizer_coef = penalizer_coef

    def fit(self, frequency, monetary_value, weights=None, initial_params=None, verbose=False,
            tol=1e-7, index=None, q_constraint=False, **kwargs):
        """
        Fit the data to the Gamma/Gamma model.

        Parameters
        ----------
        frequency: array_like
            the frequency vector of customers' purchases (denoted x in literature).
        monetary_value: array_like
            the monetary value vector of customer's purchases (denoted m in literature).
        weights: None or array_like
            Number of customers with given frequency/monetary_value, defaults to 1.
        initial_params: array_like, optional
            starting log-parameters, as lifetimes takes them.
        verbose, tol, kwargs:
            as ``BetaGeoFitter.fit`` (tol and scipy options accepted and unused).
        index: array_like, optional
            index for resulted DataFrame which is accessible via self.data
        q_constraint: bool, optional
            lifetimes bounds q >= 1 with it. clvlab's fit has no bound: where the maximum
            has q >= 1 the bound does not bind and the fit is the same; where it has q < 1
            the fit is refused (the expected spend does not exist there).

        Returns
        -------
        GammaGammaFitter
            fitted and with parameters estimated
        """
        from clvlab.core.errors import ClvlabError

        check_inputs(frequency, monetary_value=monetary_value)
        frequency = np.asarray(frequency).astype(float)
        monetary_value = np.asarray(monetary_value).astype(float)
        weights = np.ones_like(frequency, dtype=int) if weights is None else np.asarray(weights)
        self._scale = 1.0
        repeat = frequency > 0  # clvlab fits on them (lifetimes' likelihood is NaN elsewhere)
        table = pd.DataFrame({"frequency": frequency, "recency": repeat.astype(float), "T": 1.0,
                              "monetary_value": monetary_value})
        total = float(np.sum(weights))
        self._penalty = float(self.penalizer_coef) * total
        start = None if initial_params is None else np.exp(initial_params)
        model = self._fit_clvlab(table, np.asarray(weights, dtype=np.float64), self._penalty,
                                 start, verbose, kwargs)
        if q_constraint and self.params_["q"] < 1:
            raise ClvlabError("the maximum-likelihood q is {:.4g} < 1: lifetimes' q_constraint would "
                              "hold q at 1, clvlab fits no bound (with q <= 1 the expected spend "
                              "does not exist)".format(self.params_["q"]))
        self._negative_log_likelihood_ = -model.log_likelihood_ / total + self._penalty_term
        self.data = pd.DataFrame({"monetary_value": monetary_value, "frequency": frequency,
                                  "weights": weights}, index=index)
        return self

    def conditional_expected_average_profit(self, frequency=None, monetary_value=None):
        """
        Conditional expectation of the average profit per transaction for a group of one or
        more customers: p (v + x m) / (p x + q - 1) (clvlab's ``expected_spend``; refused
        where q <= 1, where the expectation does not exist).

        Parameters
        ----------
        frequency: array_like, optional
            a vector containing the customers' frequencies.
            Defaults to the whole set of frequencies used for fitting the model.
        monetary_value: array_like, optional
            a vector containing the customers' monetary values.
            Defaults to the whole set of monetary values used for fitting the model.

        Returns
        -------
        array_like:
            The conditional expectation of the average profit per transaction
        """
        if monetary_value is None:
            monetary_value = self.data["monetary_value"]
        if frequency is None:
            frequency = self.data["frequency"]
        shape, (x, z) = inputs(frequency, monetary_value)
        params = tuple(float(v) for v in self._unload_params(*self._param_names))
        values = self._model()._expected_spend(params, x, z)
        return result(values, shape, (frequency, monetary_value))

    def customer_lifetime_value(self, transaction_prediction_model, frequency, recency, T,
                                monetary_value, time=12, discount_rate=0.01, freq="D"):
        """
        Return customer lifetime value: the Gamma-Gamma expected spend times the transaction
        model's expected purchases in each of ``time`` months, discounted monthly.

        Parameters
        ----------
        transaction_prediction_model: model
            the model to predict future transactions (a fitter of this package, a clvlab
            transaction model, or any object with lifetimes' ``predict``)
        frequency, recency, T, monetary_value: array_like
            the customers' histories.
        time: float, optional
            the lifetime expected for the user in months. Default: 12
        discount_rate: float, optional
            the monthly adjusted discount rate. Default: 0.01
        freq: string, optional
            {"D", "H", "M", "W"} for day, hour, month, week: the unit of T.

        Returns
        -------
        Series:
            Series object with customer ids as index and the estimated customer
            lifetime values as values
        """
        adjusted_monetary_value = self.conditional_expected_average_profit(frequency, monetary_value)
        return _discounted_value(transaction_prediction_model, frequency, recency, T,
                                 adjusted_monetary_value, time, discount_rate, freq=freq)
