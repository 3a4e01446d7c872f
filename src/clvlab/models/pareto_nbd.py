"""Pareto/NBD (Schmittlein, Morrison & Colombo 1987): Poisson purchases at rate
lambda ~ Gamma(r, alpha) while alive; exponential lifetimes at rate mu ~ Gamma(s, beta).

The likelihood uses the form without cancellation (field-notes.md): with k = r + s + x,
L = G(r+x) alpha^r beta^s / G(r) * [(s/k) A1 + ((r+x)/k) A2], where after Euler's transformation
A1 and A2 hold 2F1(1, b; k+1; z) with 0 <= z < 1, a series of positive terms evaluated by
``_hyp.log_hyp2f1_1bc`` together with its derivatives, which give the exact gradient.

Given its history and that it is alive at T, a customer has lambda ~ Gamma(r + x, alpha + T) and
mu ~ Gamma(s, beta + T), so conditional predictions are P(alive) times new-customer quantities
under those parameters.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import special

from clvlab.inference.grouping import levels
from clvlab.core.errors import ClvlabError
from clvlab.data.validation import validate_rfm
from clvlab.models._hyp import log_hyp2f1_1bc
from clvlab.models._pareto_kernel import bracket_pairs, kernel, log_bracket
from clvlab.models._special import log_gamma_ratio
from clvlab.models.base import BaseModel
from clvlab.models.customer_params import by_covariate_group
from clvlab.models.table_units import checks_time_unit
from clvlab.models.transaction import TransactionModel, check_horizon

__all__ = ["ParetoNBD"]

_GL_NODES, _GL_WEIGHTS = np.polynomial.legendre.leggauss(64)


class ParetoNBD(TransactionModel, BaseModel):
    """The Pareto/NBD model, fitted by maximum likelihood with exact gradients.

    Parameters
    ----------
    <model settings>

    Attributes
    ----------
    <fitted attributes>
    """

    param_names = ("r", "alpha", "s", "beta")
    columns = ("frequency", "recency", "T")
    scale_params = {"alpha": 2, "beta": 2}  # time units: centred on mean T
    _final_from_total = True  # the kernel falls back to the rows itself (BaseModel)
    # the posterior of (s, beta) has a long tail (beta weakly identified): smaller NUTS steps
    # there. On CDNOW, 4 chains x 1000: 0.8 left a divergence on one machine of four runs; 0.9,
    # started from the MLE, one in three seeds; 0.95 none in three seeds, at the same cost
    default_target_accept = 0.95

    def covariate_links(self) -> dict[str, tuple[str, int]]:
        """alpha_i = alpha exp(-x'g_purchase), beta_i = beta exp(-x'g_dropout): Fader & Hardie
        (2007), "Incorporating time-invariant covariates into the Pareto/NBD and BG/NBD
        models", and CLVTools. The rates' Gamma mixing distributions keep their shapes, so
        E[lambda_i] = r / alpha_i moves by exp(x'g_purchase) and E[mu_i] by exp(x'g_dropout).

        Returns
        -------
        dict of str to tuple of (str, int)
            ``{"alpha": ("purchase", -1), "beta": ("dropout", -1)}``.
        """
        return {"alpha": ("purchase", -1), "beta": ("dropout", -1)}

    def _data(self, rfm: pd.DataFrame) -> list[np.ndarray]:
        validate_rfm(rfm)
        return [rfm[c].to_numpy(np.float64) for c in self.columns]

    def _check_identifiable(self, data, counts) -> None:
        super()._check_identifiable(data, counts)
        if not np.any(data[0] > 0):
            raise ClvlabError("ParetoNBD cannot be fitted: no customer has a repeat purchase, so "
                              "the purchase and dropout processes are not identified")

    def _start(self, data, weights) -> np.ndarray:
        x, _, T = data
        mean_T = float(np.average(T, weights=weights))
        rate = max(float(np.average(x, weights=weights)) / max(mean_T, 1e-9), 1e-6)
        return np.array([1.0, 1.0 / rate, 1.0, mean_T])

    def _prepare(self, data: list[np.ndarray]) -> list[np.ndarray]:
        x_levels = levels(data[0])
        return [*data, *x_levels, bracket_pairs(*data, x_levels=x_levels)]

    @staticmethod
    def _loglik(params: np.ndarray, data: list[np.ndarray], gradient: bool = True):
        r, alpha, s, beta = params
        x, t_x, T = data[:3]
        x_levels, at, pairs = data[3:] if len(data) == 6 else (*levels(x), None)
        bracket, grads = _log_bracket(r, alpha, s, beta, x, t_x, T, gradient, pairs)
        constant = r * np.log(alpha) + s * np.log(beta)
        values = log_gamma_ratio(r, x_levels)[at] + constant + bracket
        if not gradient:
            return values, None
        d_r = (special.digamma(r + x_levels) - special.digamma(r))[at] + np.log(alpha) + grads[0]
        d_alpha = r / alpha + grads[1]
        d_s = np.log(beta) + grads[2]
        d_beta = s / beta + grads[3]
        return values, np.column_stack([d_r, d_alpha, d_s, d_beta])

    @staticmethod
    def _kernel_arrays(data: list[np.ndarray], weights: np.ndarray):
        if len(data) != 6:  # not prepared (no x levels and pairs)
            return None
        x_levels, at, (x1, t1, at1, x2, t2, at2, t1_levels, at_t1, t2_levels, at_t2) = data[3:]
        as_float = lambda v: np.ascontiguousarray(v, dtype=np.float64)  # noqa: E731
        as_index = lambda v: np.ascontiguousarray(v, dtype=np.int64)  # noqa: E731
        return (as_float(x_levels), as_index(at), as_float(x1), as_float(t1), as_index(at1),
                as_float(x2), as_float(t2), as_index(at2), as_float(t1_levels), as_index(at_t1),
                as_float(t2_levels), as_index(at_t2), as_float(weights))

    _total_kernel = staticmethod(kernel)

    # --- predictions --------------------------------------------------------------------------
    def _p_alive(self, x, t_x, T) -> np.ndarray:
        r, alpha, s, beta = self._check_fitted()
        bracket, _ = _log_bracket(r, alpha, s, beta, x, t_x, T, gradient=False)
        log_alive = -(r + x) * np.log(alpha + T) - s * np.log(beta + T) - bracket
        return np.exp(np.minimum(log_alive, 0.0))

    @checks_time_unit
    @by_covariate_group
    def p_alive_at(self, rfm: pd.DataFrame, t) -> pd.Series:
        """Probability that each customer is still active t time units after T.

        Parameters
        ----------
        rfm : pandas.DataFrame, polars.DataFrame or pyarrow.Table
            The customers: ``frequency``, ``recency`` and ``T`` (in the model's time unit), and
            any covariate columns the model reads; a pandas or polars DataFrame or a pyarrow
            Table (:mod:`clvlab.data.tables`; a polars or Arrow table takes its customer ids
            from its ``customer_id`` column).
        t : float or array-like
            Time units after T (> 0): one for all customers or one per customer.
        covariate_paths : CovariatePaths, optional
            Each customer's time-varying covariates along the window
            (:func:`clvlab.covariate_paths`), for a model with covariates: needed by one fitted
            along paths; None: the table's static covariates.
        time_unit : str, optional
            The unit of the table's durations (``"D"``, ``"W"``...) for a table that does not
            record it (a merge, a CSV read with pandas, a polars table); it must be the
            model's: predictions are never rescaled. None: the unit the table records.
        check_durations : bool, default True
            Refuse durations that look like another unit than the model's (by the likelihood
            and the customers' ages); False skips that check.

        Returns
        -------
        pandas.Series
            ``p_alive`` on ``rfm``'s index (the customer ids).

        Raises
        ------
        ClvlabError
            Where the model is not fitted, the horizon is not finite and > 0, or the table's
            time unit is not the model's.
        """
        t = check_horizon(t)
        x, t_x, T = self._arrays(rfm)
        _, _, s, beta = self._check_fitted()
        survive = np.exp(-s * np.log1p(t / (beta + T)))
        return pd.Series(self._p_alive(x, t_x, T) * survive, index=rfm.index, name="p_alive")

    def _posterior(self, x, t_x, T) -> tuple:
        r, alpha, s, beta = self._check_fitted()
        return r + x, alpha + T, np.full_like(x, s), beta + T

    def _population_params(self) -> tuple:
        return tuple(self._check_fitted())

    @staticmethod
    def _new_expected(params: tuple, t) -> np.ndarray:
        r, alpha, s, beta = params
        # r beta / (alpha (s-1)) * (1 - (beta/(beta+t))^(s-1)), written to stay finite at s = 1
        log_ratio = np.log1p(t / beta)
        return r * beta / alpha * log_ratio * _one_minus_exp_ratio((s - 1) * log_ratio)

    @staticmethod
    def _new_pmf(params: tuple, n: int, t) -> np.ndarray:
        """P(X(t) = n) for a new customer, as an integral over the lifetime.

        P = S(t) NB(n | tau = t) + int_0^t f(tau) NB(n | tau) dtau with S the lifetime survival.
        Substituting u = S(tau) turns the integral into int_{S(t)}^1 NB(n | tau(u)) du, whose
        integrand is bounded and smooth; 64-point Gauss-Legendre evaluates it.
        """
        arrays = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in (*params, t)))
        shape = arrays[0].shape
        r, alpha, s, beta, t = (a.ravel() for a in arrays)
        out = np.empty(r.size)
        for start in range(0, r.size, 100_000):  # bounded memory: chunk x 64 nodes
            sl = slice(start, start + 100_000)
            out[sl] = _pareto_pmf(r[sl], alpha[sl], s[sl], beta[sl], n, t[sl])
        return out.reshape(shape) if shape else float(out[0])


def _log_nb(r, alpha, n, tau):
    """log P(N(tau) = n) for Poisson counts over tau with rate ~ Gamma(r, alpha)."""
    return (special.gammaln(r + n) - special.gammaln(r) - special.gammaln(n + 1)
            + r * (np.log(alpha) - np.log(alpha + tau)) + special.xlogy(n, tau)
            - n * np.log(alpha + tau))


def _pareto_pmf(r, alpha, s, beta, n, t):
    survival_t = np.exp(-s * np.log1p(t / beta))
    col = lambda v: v[:, None]  # noqa: E731
    u = col(survival_t) + col(1 - survival_t) * (_GL_NODES + 1) / 2
    tau = np.minimum(col(beta) * np.expm1(-np.log(u) / col(s)), col(t))
    integral = (1 - survival_t) / 2 * (np.exp(_log_nb(col(r), col(alpha), n, tau)) @ _GL_WEIGHTS)
    return survival_t * np.exp(_log_nb(r, alpha, n, t)) + integral


def _one_minus_exp_ratio(u):
    """(1 - exp(-u)) / u, equal to 1 at u = 0."""
    u = np.asarray(u, dtype=np.float64)
    safe = np.where(np.abs(u) < 1e-12, 1.0, u)
    return np.where(np.abs(u) < 1e-12, 1.0 - u / 2, -np.expm1(-safe) / safe)


def _log_bracket(r, alpha, s, beta, x, t_x, T, gradient: bool = True, pairs=None):
    """log[(s/k) A1 + ((r+x)/k) A2] and its gradient in (r, alpha, s, beta): the compiled loop."""
    shape = np.broadcast_shapes(np.shape(x), np.shape(t_x), np.shape(T))

    def fallback(x, t_x, T, rows=None):
        if rows is None:
            bracket, grads = _log_bracket_numpy(r, alpha, s, beta, x, t_x, T)
            return np.column_stack([bracket, *grads])
        # parameters by row: the NumPy reference branches on alpha >= beta, so row by row
        # (only rows whose compiled series did not converge come here: a handful)
        own = [np.broadcast_to(np.asarray(v, dtype=np.float64), shape).ravel()[rows]
               for v in (r, alpha, s, beta)]
        out = np.empty((len(rows), 5))
        for i in range(len(rows)):
            bracket, grads = _log_bracket_numpy(*(v[i] for v in own), x[i:i + 1], t_x[i:i + 1],
                                                T[i:i + 1])
            out[i] = np.concatenate([bracket, *grads])
        return out

    rows = log_bracket(r, alpha, s, beta, x, t_x, T, fallback, pairs)
    bracket = rows[:, 0].reshape(shape)
    return bracket, ([rows[:, j].reshape(shape) for j in range(1, 5)] if gradient else None)


def _log_bracket_numpy(r, alpha, s, beta, x, t_x, T, gradient: bool = True):
    """log[(s/k) A1 + ((r+x)/k) A2] and its gradient in (r, alpha, s, beta), array by array."""
    m = r + x
    k = m + s
    x, t_x, T = np.broadcast_arrays(np.asarray(x, float), np.asarray(t_x, float), np.asarray(T, float))
    if alpha >= beta:
        z1, z2 = (alpha - beta) / (alpha + t_x), (alpha - beta) / (alpha + T)
        f1 = log_hyp2f1_1bc(m, k + 1, z1, gradient)
        f2 = log_hyp2f1_1bc(m + 1, k + 1, z2, gradient)
        log_a1 = -m * np.log(alpha + t_x) - s * np.log(beta + t_x) + f1[0]
        log_a2 = -(m + 1) * np.log(alpha + T) - (s - 1) * np.log(beta + T) + f2[0]
    else:
        z1, z2 = (beta - alpha) / (beta + t_x), (beta - alpha) / (beta + T)
        f1 = log_hyp2f1_1bc(s + 1, k + 1, z1, gradient)
        f2 = log_hyp2f1_1bc(s, k + 1, z2, gradient)
        log_a1 = -(m - 1) * np.log(alpha + t_x) - (s + 1) * np.log(beta + t_x) + f1[0]
        log_a2 = -m * np.log(alpha + T) - s * np.log(beta + T) + f2[0]
    part1 = np.log(s) - np.log(k) + log_a1
    part2 = np.log(m) - np.log(k) + log_a2
    bracket = np.logaddexp(part1, part2)
    if not gradient:
        return bracket, None
    w1 = np.exp(part1 - bracket)
    w2 = 1.0 - w1
    # derivatives of part1 and part2 in (r, alpha, s, beta): prefactors, then the 2F1 arguments
    # (c = k + 1 moves with r and s; b with r or s; z with alpha and beta)
    if alpha >= beta:
        dz1 = ((beta + t_x) / (alpha + t_x) ** 2, -1.0 / (alpha + t_x))
        dz2 = ((beta + T) / (alpha + T) ** 2, -1.0 / (alpha + T))
        p1 = [-np.log(alpha + t_x) + f1[1] + f1[2], -m / (alpha + t_x) + f1[3] * dz1[0],
              -np.log(beta + t_x) + f1[2], -s / (beta + t_x) + f1[3] * dz1[1]]
        p2 = [-np.log(alpha + T) + f2[1] + f2[2], -(m + 1) / (alpha + T) + f2[3] * dz2[0],
              -np.log(beta + T) + f2[2], -(s - 1) / (beta + T) + f2[3] * dz2[1]]
    else:
        dz1 = (-1.0 / (beta + t_x), (alpha + t_x) / (beta + t_x) ** 2)
        dz2 = (-1.0 / (beta + T), (alpha + T) / (beta + T) ** 2)
        p1 = [-np.log(alpha + t_x) + f1[2], -(m - 1) / (alpha + t_x) + f1[3] * dz1[0],
              -np.log(beta + t_x) + f1[1] + f1[2], -(s + 1) / (beta + t_x) + f1[3] * dz1[1]]
        p2 = [-np.log(alpha + T) + f2[2], -m / (alpha + T) + f2[3] * dz2[0],
              -np.log(beta + T) + f2[1] + f2[2], -s / (beta + T) + f2[3] * dz2[1]]
    # the weights s/k and m/k
    p1[0] = p1[0] - 1.0 / k
    p1[2] = p1[2] + 1.0 / s - 1.0 / k
    p2[0] = p2[0] + 1.0 / m - 1.0 / k
    p2[2] = p2[2] - 1.0 / k
    grads = [w1 * g1 + w2 * g2 for g1, g2 in zip(p1, p2)]
    return bracket, grads
