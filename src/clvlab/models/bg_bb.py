"""BG/BB (Fader, Hardie & Shang 2010): discrete purchase opportunities (an annual appeal, a
weekly show). Before each opportunity an alive customer dies with probability
theta ~ Beta(gamma, delta); at each opportunity an alive customer buys with probability
p ~ Beta(alpha, beta).

Data per customer (``discrete_rfm_summary``): ``frequency`` x (opportunities with a purchase
after the first one), ``recency`` t_x (the last of them, 0 without any) and ``periods`` n (the
opportunities observed). With B(.,.) the beta function (field-notes.md):

L = B(alpha+x, beta+n-x)/B(alpha, beta) * B(gamma, delta+n)/B(gamma, delta)
  + sum_{i=0}^{n-t_x-1} B(alpha+x, beta+t_x-x+i)/B(alpha, beta) * B(gamma+1, delta+t_x+i)/B(gamma, delta),

alive through opportunity n, or died just before opportunity t_x + i + 1. Every term is
positive, so the sum is taken in log space (log-sum-exp) with its exact gradient.

Given the history and that the customer is alive at opportunity n, p ~ Beta(alpha+x, beta+n-x)
and theta ~ Beta(gamma, delta+n): the future is a new customer's under those parameters, so
conditional predictions are P(alive at n) times new-customer quantities (as for BG/NBD).
"""

from __future__ import annotations

import math
from typing import Any

import numba
import numpy as np
import pandas as pd
from scipy import special

from clvlab.core.errors import ClvlabError
from clvlab.data.validation import validate_discrete_rfm
from clvlab.models._hyp import log_hyp2f1_1bc
from clvlab.models._special import (digamma_scalar, log_beta_ratio, log_gamma_ratio,
                                    log_gamma_ratio_scalar)
from clvlab.models.base import BaseModel
from clvlab.models.customer_params import by_covariate_group, population_level
from clvlab.models.predictive import PurchaseDistribution

__all__ = ["BetaGeoBetaBinom"]


@numba.njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _log_beta_ratio(a, b, da, db):  # pragma: no cover - compiled
    """log B(a + da, b + db) / B(a, b) from log-gamma ratios (exact for large a, b)."""
    return (log_gamma_ratio_scalar(a, da) + log_gamma_ratio_scalar(b, db)
            - log_gamma_ratio_scalar(a + b, da + db))


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _row(alpha, beta, gamma, delta, x, t_x, n, out):  # pragma: no cover - compiled
    """One row's log-likelihood and gradient into out[0:5].

    Term 0 is "alive through n" (bought = n, died = 0); term j >= 1 "died before opportunity
    t_x + j" (bought = t_x + j - 1, died = 1). The terms are summed in log space as they come
    (a running maximum rescales the sums), with each parameter's derivative weighted alike.
    """
    top = -math.inf
    total = g_a = g_b = g_g = g_d = 0.0
    for j in range(int(n - t_x) + 1):
        if j == 0:
            bought, died = n, 0.0
        else:
            bought, died = t_x + j - 1.0, 1.0
        term = _log_beta_ratio(alpha, beta, x, bought - x) + _log_beta_ratio(gamma, delta, died, bought)
        psi_abn = digamma_scalar(alpha + beta + bought)
        psi_gdn = digamma_scalar(gamma + delta + died + bought)
        d_a = -psi_abn + digamma_scalar(alpha + x)
        d_b = digamma_scalar(beta + bought - x) - psi_abn
        d_g = (1.0 / gamma if died > 0 else 0.0) - psi_gdn  # psi(g + 1) - psi(g) = 1/g
        d_d = digamma_scalar(delta + bought) - psi_gdn
        if term > top:  # rescale what is summed so far to the new maximum
            scale = math.exp(top - term) if top > -math.inf else 0.0
            total, g_a, g_b, g_g, g_d = total * scale, g_a * scale, g_b * scale, g_g * scale, g_d * scale
            top = term
        weight = math.exp(term - top)
        total += weight
        g_a += weight * d_a
        g_b += weight * d_b
        g_g += weight * d_g
        g_d += weight * d_d
    psi_ab, psi_gd = digamma_scalar(alpha + beta), digamma_scalar(gamma + delta)
    out[0] = top + math.log(total)
    # the digammas of the parameters alone appear in every term (weights sum to 1)
    out[1] = g_a / total - digamma_scalar(alpha) + psi_ab
    out[2] = g_b / total - digamma_scalar(beta) + psi_ab
    out[3] = g_g / total + psi_gd
    out[4] = g_d / total - digamma_scalar(delta) + psi_gd


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _rows(alpha, beta, gamma, delta, x, t_x, n, out):  # pragma: no cover - compiled
    for i in range(x.size):
        _row(alpha, beta, gamma, delta, x[i], t_x[i], n[i], out[i])


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _rows_own(alpha, beta, gamma, delta, x, t_x, n, out):  # pragma: no cover - compiled
    """``_rows`` with each row at its own parameters (arrays like x)."""
    for i in range(x.size):
        _row(alpha[i], beta[i], gamma[i], delta[i], x[i], t_x[i], n[i], out[i])


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _weighted_total(params, x, t_x, n, weights):  # pragma: no cover - compiled
    """[sum w loglik, its gradient (4), 0 (no fallback)]: the sampler's kernel."""
    row = np.empty(5)
    out = np.zeros(6)
    for i in range(x.size):
        _row(params[0], params[1], params[2], params[3], x[i], t_x[i], n[i], row)
        for k in range(5):
            out[k] += weights[i] * row[k]
    return out

class BetaGeoBetaBinom(PurchaseDistribution, BaseModel):
    """The BG/BB model for discrete purchase opportunities, fitted by maximum likelihood (or
    by ``method="nuts"`` etc.).

    ``fit(summary, weights=None)`` takes ``frequency``, ``recency`` and ``periods`` per row;
    ``weights`` counts the customers a row stands for (the donation data come that way).

    Parameters
    ----------
    <model settings>

    Attributes
    ----------
    <fitted attributes>
    """

    #: predictions take parameters with one value per row (``customer_params``).
    row_predictions = True

    param_names = ("alpha", "beta", "gamma", "delta")
    columns = ("frequency", "recency", "periods")

    def covariate_links(self) -> dict[str, tuple[str, int]]:
        """beta_i = beta exp(-x'g_purchase), delta_i = delta exp(-x'g_dropout): covariates on
        the second shape of each Beta mixing distribution, which moves its mean, as Fader &
        Hardie's BG/NBD variant with covariates on b does. A positive purchase coefficient
        raises the mean transaction probability alpha / (alpha + beta_i); a positive dropout
        coefficient raises the mean dropout probability gamma / (gamma + delta_i). This is the
        form pymc-marketing uses for the shifted-beta-geometric's Beta parameters (exp(-x'g) on
        each), restricted to the second shape so that one coefficient moves the mean.

        Returns
        -------
        dict of str to tuple of (str, int)
            Parameter name -> (process, position of the parameter): ``beta`` is moved by the
            purchase covariates, ``delta`` by the dropout covariates.
        """
        return {"beta": ("purchase", -1), "delta": ("dropout", -1)}

    def _data(self, table: pd.DataFrame) -> list[np.ndarray]:
        validate_discrete_rfm(table)
        return [table[c].to_numpy(np.float64) for c in self.columns]

    def _check_identifiable(self, data, counts) -> None:
        super()._check_identifiable(data, counts)
        x, _, n = data
        if not np.any(n > 0):
            raise ClvlabError("BetaGeoBetaBinom cannot be fitted: no customer has a purchase "
                              "opportunity (periods > 0)")
        if not np.any(x > 0) or not np.any(x < n):
            raise ClvlabError("BetaGeoBetaBinom cannot be fitted: every customer bought at "
                              "every opportunity or none did, so p and theta are not identified")

    def _start(self, data, weights) -> np.ndarray:
        return np.array([1.0, 1.0, 1.0, 1.0])

    @staticmethod
    def _loglik(params: np.ndarray, data: list[np.ndarray]):
        """Per-row log-likelihood and gradient; ``params`` holds one value per parameter, or
        (a row model's) one array per parameter with a value per row."""
        x, t_x, n = (np.ascontiguousarray(a, dtype=np.float64) for a in data[:3])
        out = np.empty((x.size, 5))
        if np.ndim(params) == 2:
            own = [np.ascontiguousarray(np.broadcast_to(v, x.shape), dtype=np.float64) for v in params]
            _rows_own(*own, x, t_x, n, out)
        else:
            alpha, beta, gamma, delta = (float(v) for v in params)
            _rows(alpha, beta, gamma, delta, x, t_x, n, out)
        return out[:, 0], out[:, 1:]

    @staticmethod
    def _kernel_arrays(data: list[np.ndarray], weights: np.ndarray):
        return tuple(np.ascontiguousarray(a, dtype=np.float64) for a in (*data[:3], weights))

    _total_kernel = staticmethod(_weighted_total)

    # --- predictions --------------------------------------------------------------------------
    def _arrays(self, table: pd.DataFrame):
        self._check_fitted()
        validate_discrete_rfm(table)
        return tuple(table[c].to_numpy(np.float64) for c in ("frequency", "recency", "periods"))

    def _log_alive_at_n(self, x, t_x, n) -> np.ndarray:
        """log P(alive at opportunity n | history)."""
        params = self._check_fitted()
        alpha, beta, gamma, delta = params
        log_lik, _ = self._loglik(params, [x, t_x, n])
        return (log_beta_ratio(alpha, beta, x, n - x) + log_beta_ratio(gamma, delta, 0.0, n)
                - log_lik)

    @by_covariate_group
    def p_alive(self, table: pd.DataFrame) -> pd.Series:
        """P(alive at the next opportunity, n + 1 | history): Fader, Hardie & Shang (2010) eq. 11.

        Parameters
        ----------
        table : pandas.DataFrame
            ``frequency``, ``recency`` and ``periods`` per customer (in opportunities), and any
            covariate columns the model reads.
        covariate_paths : CovariatePaths, optional
            Each customer's time-varying covariates (:func:`clvlab.covariate_paths`), for a model
            with covariates; None: the table's static covariates.

        Returns
        -------
        pandas.Series
            ``p_alive`` on ``table``'s index.
        """
        x, t_x, n = self._arrays(table)
        _, _, gamma, delta = self._check_fitted()
        values = np.exp(self._log_alive_at_n(x, t_x, n)) * (delta + n) / (gamma + delta + n)
        return pd.Series(values, index=table.index, name="p_alive")

    @by_covariate_group
    def expected_purchases(self, table: pd.DataFrame, t: Any) -> pd.Series:
        """Expected purchases at the next ``t`` opportunities (n+1 .. n+t) given each history.

        Parameters
        ----------
        table : pandas.DataFrame
            ``frequency``, ``recency`` and ``periods`` per customer (in opportunities), and any
            covariate columns the model reads.
        t : int or array-like of int
            Opportunities (whole numbers >= 1): one for all customers or one per customer.
        covariate_paths : CovariatePaths, optional
            Each customer's time-varying covariates (:func:`clvlab.covariate_paths`), for a model
            with covariates; None: the table's static covariates.

        Returns
        -------
        pandas.Series
            ``expected_purchases`` on ``table``'s index.

        Raises
        ------
        ClvlabError
            Where ``t`` is not a whole number >= 1.
        """
        t = _opportunities(t)
        x, t_x, n = self._arrays(table)
        alpha, beta, gamma, delta = self._check_fitted()
        values = (np.exp(self._log_alive_at_n(x, t_x, n)) * (alpha + x) / (alpha + beta + n)
                  * _expected_alive(gamma, delta + n, t))
        return pd.Series(values, index=table.index, name="expected_purchases")

    @population_level
    def expected_purchases_new_customer(self, t: Any):
        """Expected purchases of a new customer at their first ``t`` opportunities.

        Parameters
        ----------
        t : int or array-like of int
            Opportunities (whole numbers >= 1): one for all customers or one per customer.

        Returns
        -------
        float or numpy.ndarray
            A float for one ``t``, an array for several.

        Raises
        ------
        ClvlabError
            Where ``t`` is not a whole number >= 1, or the model has covariates.
        """
        t = _opportunities(t)
        alpha, beta, gamma, delta = self._check_fitted()
        values = alpha / (alpha + beta) * _expected_alive(gamma, np.float64(delta), t)
        return float(values) if np.ndim(values) == 0 else values

    @by_covariate_group
    def purchase_probability(self, k: int, t: int, table: pd.DataFrame | None = None):
        """P(exactly k purchases at t opportunities): for a new customer (a float) or, with
        ``table``, at the next t opportunities given each history (a Series).

        Parameters
        ----------
        k : int
            The number of purchases (>= 0).
        t : int
            The number of opportunities (>= 1).
        table : pandas.DataFrame, optional
            ``frequency``, ``recency`` and ``periods`` per customer; None: a new customer.
        covariate_paths : CovariatePaths, optional
            Each customer's time-varying covariates (:func:`clvlab.covariate_paths`), for a model
            with covariates; None: the table's static covariates.

        Returns
        -------
        float or pandas.Series
            A float without ``table``; with it a Series named ``P(X=k)`` on its index.

        Raises
        ------
        ClvlabError
            Where ``k`` or ``t`` is not a whole number in range.
        """
        if not (isinstance(k, (int, np.integer)) and k >= 0):
            raise ClvlabError(f"k must be a whole number >= 0, got {k!r}")
        t = _opportunities(t)
        if np.ndim(t) != 0:
            raise ClvlabError("purchase_probability takes one number of opportunities t")
        alpha, beta, gamma, delta = self._check_fitted()
        if table is None:
            return float(_new_pmf(alpha, beta, gamma, np.float64(delta), int(k), int(t)))
        x, t_x, n = self._arrays(table)
        alive = np.exp(self._log_alive_at_n(x, t_x, n))
        values = alive * _new_pmf(alpha + x, beta + n - x, gamma, delta + n, int(k), int(t))
        if k == 0:
            values = values + (1 - alive)
        return pd.Series(values, index=table.index, name=f"P(X={k})")

    @by_covariate_group
    def discounted_expected_transactions(self, table: pd.DataFrame, discount_rate: float) -> pd.Series:
        """DERT: expected purchases at all future opportunities, the one at n + k discounted
        by (1 + discount_rate)^-k (Fader, Hardie & Shang 2010, eq. 15). Times the value of a
        purchase, this is the customer's residual lifetime value.

        Parameters
        ----------
        table : pandas.DataFrame
            ``frequency``, ``recency`` and ``periods`` per customer (in opportunities), and any
            covariate columns the model reads.
        discount_rate : float
            The discount rate per opportunity (> 0).
        covariate_paths : CovariatePaths, optional
            Each customer's time-varying covariates (:func:`clvlab.covariate_paths`), for a model
            with covariates; None: the table's static covariates.

        Returns
        -------
        pandas.Series
            ``dert`` on ``table``'s index.

        Raises
        ------
        ClvlabError
            Where ``discount_rate`` is not finite and > 0.
        """
        if not (np.isfinite(discount_rate) and discount_rate > 0):
            raise ClvlabError(f"discount_rate must be > 0 (undiscounted lifetimes may be "
                              f"infinite), got {discount_rate!r}")
        x, t_x, n = self._arrays(table)
        alpha, beta, gamma, delta = self._check_fitted()
        z = 1.0 / (1.0 + discount_rate)
        d = delta + n
        # sum_{k>=1} z^k B(gamma, d+k)/B(gamma, d) = z d/(gamma+d) 2F1(1, d+1; gamma+d+1; z)
        log_f = log_hyp2f1_1bc(d + 1, gamma + d + 1, np.full_like(d, z), derivatives=False)[0]
        values = (np.exp(self._log_alive_at_n(x, t_x, n) + log_f) * (alpha + x) / (alpha + beta + n)
                  * z * d / (gamma + d))
        return pd.Series(values, index=table.index, name="dert")


def _expected_alive(gamma: float, d, t):
    """sum_{k=1}^{t} B(gamma, d+k)/B(gamma, d): the expected number of the next t opportunities
    at which a customer with theta ~ Beta(gamma, d) is alive.

    Closed form d/(gamma-1) (1 - G(gamma+d) G(d+1+t) / (G(d+1) G(gamma+d+t))), with expm1 so
    that it stays exact as gamma -> 1, and its limit d (psi(d+1+t) - psi(d+1)) at gamma = 1.
    """
    d = np.asarray(d, dtype=np.float64)
    t = np.asarray(t, dtype=np.float64)
    g = log_gamma_ratio(d + 1, t) - log_gamma_ratio(gamma + d, t)
    near_one = np.abs(gamma - 1.0) < 1e-7
    with np.errstate(divide="ignore", invalid="ignore"):  # the limit takes those rows
        closed = d / (gamma - 1.0) * -np.expm1(g)
    if not np.any(near_one):
        return closed
    return np.where(near_one, d * (special.digamma(d + 1 + t) - special.digamma(d + 1)), closed)


def _new_pmf(alpha, beta, gamma, delta, k: int, t: int):
    """P(k purchases at t opportunities) for a new customer (FHS 2010 eq. 7), vectorised over
    the parameter arrays: alive through t with k purchases among t, or died before
    opportunity i + 1 (i = k .. t-1) with k purchases among the first i."""
    if k > t:
        return np.zeros(np.broadcast(alpha, beta, delta).shape)
    alpha, beta, delta = (np.asarray(v, dtype=np.float64) for v in (alpha, beta, delta))
    log_choose = (special.gammaln(t + 1) - special.gammaln(k + 1) - special.gammaln(t - k + 1))
    terms = [log_choose + log_beta_ratio(alpha, beta, k, t - k) + log_beta_ratio(gamma, delta, 0.0, t)]
    for i in range(k, t):
        log_choose_i = special.gammaln(i + 1) - special.gammaln(k + 1) - special.gammaln(i - k + 1)
        terms.append(log_choose_i + log_beta_ratio(alpha, beta, k, i - k)
                     + log_beta_ratio(gamma, delta, 1.0, float(i)))
    return np.exp(special.logsumexp(np.stack(np.broadcast_arrays(*terms)), axis=0))


def _opportunities(t: Any):
    values = np.asarray(t, dtype=np.float64)
    if not np.all(np.isfinite(values)) or np.any(values < 1) or np.any(values != np.floor(values)):
        raise ClvlabError(f"the number of opportunities t must be a whole number >= 1, got {t!r}")
    return float(values) if values.ndim == 0 else values
