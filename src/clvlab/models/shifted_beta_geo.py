"""Shifted-beta-geometric (Fader & Hardie 2007, "How to project customer retention"): contracts
renewed period by period. Each customer leaves at the end of a period with probability
theta ~ Beta(alpha, beta), the same every period; heterogeneity in theta is what makes
retention rates rise with tenure.

Data per customer (``contract_durations``): ``duration`` and ``churned``. A churned customer
left in period ``duration`` (T = duration, T >= 1): P(T = t) = B(alpha+1, beta+t-1)/B(alpha, beta).
An active one has renewed ``duration`` times (T > duration): S(t) = B(alpha, beta+t)/B(alpha, beta).
Cohort counts (customers active at the start of periods 0, 1, 2, ...) convert with
``durations_from_survivors``.
"""

from __future__ import annotations

from typing import Any

import numba
import numpy as np
import pandas as pd

from clvlab.core.errors import ClvlabError
from clvlab.data.validation import validate_durations
from clvlab.models._hyp import log_hyp2f1_1bc
from clvlab.models._special import digamma_scalar, log_beta_ratio, log_gamma_ratio_scalar
from clvlab.models.base import BaseModel
from clvlab.models.customer_params import by_covariate_group, population_level

__all__ = ["ShiftedBetaGeo", "durations_from_survivors"]


@numba.njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _row(alpha, beta, psi_a, psi_b, psi_ab, t, churned):  # pragma: no cover - compiled
    """One customer: churned, B(alpha+1, beta+t-1)/B(alpha, beta); active, B(alpha, beta+t)/
    B(alpha, beta); as log(B(alpha+da, beta+db)/B(alpha, beta)) and its gradient."""
    da = 1.0 if churned > 0 else 0.0
    db = t - 1.0 if churned > 0 else t
    value = (log_gamma_ratio_scalar(alpha, da) + log_gamma_ratio_scalar(beta, db)
             - log_gamma_ratio_scalar(alpha + beta, da + db))
    psi_all = digamma_scalar(alpha + beta + da + db)
    d_alpha = (1.0 / alpha if da > 0 else 0.0) + psi_ab - psi_all  # psi(a+1) - psi(a) = 1/a
    d_beta = digamma_scalar(beta + db) - psi_b + psi_ab - psi_all
    return value, d_alpha, d_beta


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _rows(alpha, beta, t, churned, out):  # pragma: no cover - compiled
    psi_a, psi_b, psi_ab = digamma_scalar(alpha), digamma_scalar(beta), digamma_scalar(alpha + beta)
    for i in range(t.size):
        out[i, 0], out[i, 1], out[i, 2] = _row(alpha, beta, psi_a, psi_b, psi_ab, t[i], churned[i])


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _weighted_total(params, t, churned, weights):  # pragma: no cover - compiled
    """[sum w loglik, its gradient (2), 0 (no fallback)]: the sampler's kernel."""
    alpha, beta = params[0], params[1]
    psi_a, psi_b, psi_ab = digamma_scalar(alpha), digamma_scalar(beta), digamma_scalar(alpha + beta)
    out = np.zeros(4)
    for i in range(t.size):
        value, d_alpha, d_beta = _row(alpha, beta, psi_a, psi_b, psi_ab, t[i], churned[i])
        out[0] += weights[i] * value
        out[1] += weights[i] * d_alpha
        out[2] += weights[i] * d_beta
    return out


class ShiftedBetaGeo(BaseModel):
    """The shifted-beta-geometric (sBG) model of contract renewals, fitted by maximum
    likelihood (or by ``method="nuts"`` etc.).

    ``fit(durations, weights=None)`` takes ``duration`` and ``churned`` per row.

    Parameters
    ----------
    <model settings>

    Attributes
    ----------
    <fitted attributes>
    """

    #: predictions take parameters with one value per row (``customer_params``).
    row_predictions = True

    param_names = ("alpha", "beta")
    columns = ("duration", "churned")

    def covariate_links(self) -> dict[str, tuple[str, int]]:
        """beta_i = beta exp(-x'g_dropout): a positive coefficient raises the mean churn
        probability alpha / (alpha + beta_i). pymc-marketing's ShiftedBetaGeoModel puts
        covariates on both Beta parameters with separate coefficients (alpha exp(-x'g_a),
        beta exp(-x'g_b)); this is its special case g_a = 0, one coefficient per covariate
        that moves the mean churn probability, as the BG/NBD's mean form (``dropout_form="b"``)
        does for its dropout probability.

        Returns
        -------
        dict of str to tuple of (str, int)
            ``{"beta": ("dropout", -1)}``: the dropout covariates move ``beta``.
        """
        return {"beta": ("dropout", -1)}

    def _data(self, table: pd.DataFrame) -> list[np.ndarray]:
        validate_durations(table)
        churned = table["churned"].to_numpy(dtype=np.float64)
        return [table["duration"].to_numpy(np.float64), churned]

    def _check_identifiable(self, data, counts) -> None:
        super()._check_identifiable(data, counts)
        duration, churned = data
        if not np.any(churned > 0):
            raise ClvlabError("ShiftedBetaGeo cannot be fitted: nobody churned, so the churn "
                              "probabilities are not identified")
        if not np.any((churned == 0) & (duration > 0)) and not np.any(duration > 1):
            raise ClvlabError("ShiftedBetaGeo cannot be fitted: every customer left in the first "
                              "period, so alpha and beta are not identified separately")

    def _start(self, data, weights) -> np.ndarray:
        return np.array([1.0, 1.0])

    @staticmethod
    def _loglik(params: np.ndarray, data: list[np.ndarray]):
        alpha, beta = (float(v) for v in params)
        t, churned = (np.ascontiguousarray(a, dtype=np.float64) for a in data[:2])
        out = np.empty((t.size, 3))
        _rows(alpha, beta, t, churned, out)
        return out[:, 0], out[:, 1:]

    @staticmethod
    def _kernel_arrays(data: list[np.ndarray], weights: np.ndarray):
        return tuple(np.ascontiguousarray(a, dtype=np.float64) for a in (*data[:2], weights))

    _total_kernel = staticmethod(_weighted_total)

    # --- predictions --------------------------------------------------------------------------
    @population_level
    def survival(self, t: Any):
        """S(t) = P(T > t): the share of a new cohort still active after t renewals.

        Parameters
        ----------
        t : int or array-like of int
            Periods (whole numbers >= 0).

        Returns
        -------
        float or numpy.ndarray
            S(t): a float for one ``t``, an array for several.

        Raises
        ------
        ClvlabError
            Where ``t`` is not a whole number >= 0, or the model has covariates.
        """
        alpha, beta = self._check_fitted()
        t = _periods(t, minimum=0)
        values = np.exp(log_beta_ratio(alpha, beta, 0.0, t))
        return float(values) if np.ndim(values) == 0 else values

    @population_level
    def churn_probability(self, t: Any):
        """P(T = t): the share of a new cohort that leaves in period t (t >= 1).

        Parameters
        ----------
        t : int or array-like of int
            Periods (whole numbers >= 1).

        Returns
        -------
        float or numpy.ndarray
            P(T = t): a float for one ``t``, an array for several.

        Raises
        ------
        ClvlabError
            Where ``t`` is not a whole number >= 1, or the model has covariates.
        """
        alpha, beta = self._check_fitted()
        t = _periods(t, minimum=1)
        values = np.exp(log_beta_ratio(alpha, beta, 1.0, np.asarray(t) - 1.0))
        return float(values) if np.ndim(values) == 0 else values

    @population_level
    def retention_rate(self, t: Any):
        """r(t) = S(t) / S(t-1) = (beta + t - 1) / (alpha + beta + t - 1): the share of those
        active in period t who renew into period t + 1 (t >= 1). It rises with t.

        Parameters
        ----------
        t : int or array-like of int
            Periods (whole numbers >= 1).

        Returns
        -------
        float or numpy.ndarray
            r(t): a float for one ``t``, an array for several.

        Raises
        ------
        ClvlabError
            Where ``t`` is not a whole number >= 1, or the model has covariates.
        """
        alpha, beta = self._check_fitted()
        t = np.asarray(_periods(t, minimum=1), dtype=np.float64)
        values = (beta + t - 1) / (alpha + beta + t - 1)
        return float(values) if np.ndim(values) == 0 else values

    @population_level
    def project_survivors(self, cohort_size: float, periods: int) -> pd.Series:
        """Expected customers of a cohort still active at the start of periods 0..periods.

        Parameters
        ----------
        cohort_size : float
            Customers at the start of period 0.
        periods : int
            The last period.

        Returns
        -------
        pandas.Series
            ``survivors``, indexed by ``period`` 0..periods.

        Raises
        ------
        ClvlabError
            Where the model has covariates.
        """
        t = np.arange(int(periods) + 1, dtype=np.float64)
        return pd.Series(cohort_size * np.asarray(self.survival(t)), index=pd.RangeIndex(len(t), name="period"),
                         name="survivors")

    @by_covariate_group
    def renewal_probability(self, table: pd.DataFrame) -> pd.Series:
        """P(renew at the next renewal) for each customer: (beta+n)/(alpha+beta+n) for an active
        customer who has renewed n times (theta | T > n ~ Beta(alpha, beta+n)); 0 if churned.

        Parameters
        ----------
        table : pandas.DataFrame
            ``duration`` (renewals made) and ``churned`` per customer, and any covariate columns
            the model reads.
        covariate_paths : CovariatePaths, optional
            Each customer's time-varying covariates (:func:`clvlab.covariate_paths`), for a model
            with covariates; None: the table's static covariates.

        Returns
        -------
        pandas.Series
            ``renewal_probability`` on ``table``'s index.
        """
        alpha, beta = self._check_fitted()
        n, churned = self._data(table)
        values = np.where(churned > 0, 0.0, (beta + n) / (alpha + beta + n))
        return pd.Series(values, index=table.index, name="renewal_probability")

    @by_covariate_group
    def expected_residual_lifetime(self, table: pd.DataFrame, discount_rate: float) -> pd.Series:
        """DERL (Fader & Hardie 2010): the discounted expected number of renewals to come.

        An active customer with ``duration`` n has renewed n times and is in period n + 1,
        already paid for. Each later renewal (into period n + 1 + k, k >= 1) pays for one period
        and is discounted by (1 + discount_rate)^-(k-1), so the imminent one is undiscounted:
        DERL = (beta+n)/(alpha+beta+n) 2F1(1, beta+n+1; alpha+beta+n+1; 1/(1+d)); 0 if churned.
        (Fader & Hardie's "n - 1 renewals, end of period n" is this with n - 1.) Times the
        margin per period, this is the customer's residual value.

        Parameters
        ----------
        table : pandas.DataFrame
            ``duration`` (renewals made) and ``churned`` per customer, and any covariate columns
            the model reads.
        discount_rate : float
            The discount rate per period (> 0).
        covariate_paths : CovariatePaths, optional
            Each customer's time-varying covariates (:func:`clvlab.covariate_paths`), for a model
            with covariates; None: the table's static covariates.

        Returns
        -------
        pandas.Series
            ``derl`` on ``table``'s index.

        Raises
        ------
        ClvlabError
            Where ``discount_rate`` is not finite and > 0.
        """
        if not (np.isfinite(discount_rate) and discount_rate > 0):
            raise ClvlabError(f"discount_rate must be > 0 (undiscounted lifetimes may be "
                              f"infinite), got {discount_rate!r}")
        alpha, beta = self._check_fitted()
        n, churned = self._data(table)
        z = np.full_like(n, 1.0 / (1.0 + discount_rate))
        log_f = log_hyp2f1_1bc(beta + n + 1, alpha + beta + n + 1, z, derivatives=False)[0]
        values = np.where(churned > 0, 0.0, (beta + n) / (alpha + beta + n) * np.exp(log_f))
        return pd.Series(values, index=table.index, name="derl")


def durations_from_survivors(survivors: Any) -> pd.DataFrame:
    """Cohort counts -> the sBG input: ``survivors[t]`` customers active at the start of period
    t (t = 0, 1, ..., survivors[0] = cohort size). Returns ``duration``, ``churned`` and
    ``weight``: survivors[t-1] - survivors[t] customers who left in period t and survivors[-1]
    still active after len - 1 renewals.

    Parameters
    ----------
    survivors : array-like of float
        Customers active at the start of each period, period 0 (the cohort) first: at least two
        finite counts >= 0 that never increase.

    Returns
    -------
    pandas.DataFrame
        ``duration`` (int64), ``churned`` (bool) and ``weight``, one row per period and one for
        those still active.

    Raises
    ------
    ClvlabError
        Where ``survivors`` has fewer than two counts, a count that is negative or not finite,
        or a count above the one before it.
    """
    counts = np.asarray(survivors, dtype=np.float64)
    if counts.ndim != 1 or counts.size < 2 or not np.all(np.isfinite(counts)) or np.any(counts < 0):
        raise ClvlabError("survivors must be at least two finite counts >= 0 (period 0 first)")
    if np.any(np.diff(counts) > 0):
        raise ClvlabError(f"survivors must not increase from one period to the next: {counts.tolist()}")
    periods = np.arange(1, counts.size)
    return pd.DataFrame({"duration": np.append(periods, counts.size - 1).astype(np.int64),
                         "churned": np.append(np.ones(periods.size, dtype=bool), False),
                         "weight": np.append(-np.diff(counts), counts[-1])})


def _periods(t: Any, minimum: int):
    values = np.asarray(t, dtype=np.float64)
    if not np.all(np.isfinite(values)) or np.any(values < minimum) or np.any(values != np.floor(values)):
        raise ClvlabError(f"periods must be whole numbers >= {minimum}, got {t!r}")
    return float(values) if values.ndim == 0 else values
