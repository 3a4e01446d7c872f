"""BG/NBD (Fader, Hardie & Lee 2005): Poisson purchases at rate lambda ~ Gamma(r, alpha); after
each repeat purchase the customer drops out with probability p ~ Beta(a, b).

Given a customer's history and that they are alive at T, lambda ~ Gamma(r + x, alpha + T) and
p ~ Beta(a, b + x) independently, so every conditional prediction is P(alive) times the
new-customer quantity under those updated parameters (``_posterior``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import special

from ..errors import ClvlabError
from ..validation import validate_rfm
from ._hyp import hyp2f1
from ._special import log_gamma_ratio
from .base import BaseModel
from .transaction import TransactionModel

__all__ = ["BetaGeo"]


class BetaGeo(TransactionModel, BaseModel):
    """The BG/NBD model, fitted by maximum likelihood.

    Parameters
    ----------
    penalty : L2 penalty on the parameters (0 = plain maximum likelihood).
    max_restarts : restarts from perturbed starting points when the optimiser fails.
    """

    param_names = ("r", "alpha", "a", "b")

    def _data(self, rfm: pd.DataFrame) -> list[np.ndarray]:
        validate_rfm(rfm)
        return [rfm["frequency"].to_numpy(np.float64), rfm["recency"].to_numpy(np.float64),
                rfm["T"].to_numpy(np.float64)]

    def _check_identifiable(self, data, counts) -> None:
        super()._check_identifiable(data, counts)
        if not np.any(data[0] > 0):
            raise ClvlabError("BetaGeo cannot be fitted: no customer has a repeat purchase, so the "
                              "purchase and dropout processes are not identified")

    def _start(self, data, weights) -> np.ndarray:
        x, _, T = data
        mean_T = float(np.average(T, weights=weights))
        rate = max(float(np.average(x, weights=weights)) / max(mean_T, 1e-9), 1e-6)
        return np.array([1.0, 1.0 / rate, 1.0, 3.0])

    @staticmethod
    def _loglik(params: np.ndarray, data: list[np.ndarray]):
        r, alpha, a, b = params
        x, t_x, T = data
        repeat = x > 0
        log_beta_ab = special.betaln(a, b)
        term_alive = special.betaln(a, b + x) - log_beta_ab - (r + x) * np.log(alpha + T)
        # the dropout term exists only for x > 0; b + x - 1 > 0 there
        xm = np.where(repeat, x, 1.0)
        term_dead = np.where(repeat, special.betaln(a + 1, b + xm - 1) - log_beta_ab
                             - (r + x) * np.log(alpha + t_x), -np.inf)
        log_sum = np.logaddexp(term_alive, term_dead)
        w_alive = np.exp(term_alive - log_sum)
        w_dead = 1.0 - w_alive
        values = log_gamma_ratio(r, x) + r * np.log(alpha) + log_sum

        psi_ab, psi_abx = special.digamma(a + b), special.digamma(a + b + x)
        d_r = (special.digamma(r + x) - special.digamma(r) + np.log(alpha)
               - w_alive * np.log(alpha + T) - w_dead * np.log(alpha + t_x))
        d_alpha = r / alpha - (r + x) * (w_alive / (alpha + T) + w_dead / (alpha + t_x))
        d_a = (w_alive * (psi_ab - psi_abx)
               + w_dead * (special.digamma(a + 1) - special.digamma(a) + psi_ab - psi_abx))
        psi_b = special.digamma(b)
        d_b = (w_alive * (special.digamma(b + x) - psi_abx - psi_b + psi_ab)
               + np.where(repeat, w_dead * (special.digamma(b + xm - 1) - psi_abx - psi_b + psi_ab), 0.0))
        return values, np.column_stack([d_r, d_alpha, d_a, d_b])

    # --- predictions --------------------------------------------------------------------------
    def _p_alive(self, x, t_x, T) -> np.ndarray:
        r, alpha, a, b = self._check_fitted()
        xm = np.where(x > 0, x, 1.0)
        log_odds = np.log(a) - np.log(b + xm - 1) + (r + x) * (np.log(alpha + T) - np.log(alpha + t_x))
        return np.where(x > 0, special.expit(-log_odds), 1.0)

    def _posterior(self, x, t_x, T) -> tuple:
        r, alpha, a, b = self._check_fitted()
        return r + x, alpha + T, np.full_like(x, a), b + x

    @staticmethod
    def _new_expected(params: tuple, t) -> np.ndarray:
        r, alpha, a, b = params
        z = t / (alpha + t)
        factor = (a + b - 1) / (a - 1)
        return factor * (1 - np.exp(r * np.log(alpha / (alpha + t))) * hyp2f1(r, b, a + b - 1, z))

    @staticmethod
    def _new_pmf(params: tuple, n: int, t) -> np.ndarray:
        r, alpha, a, b = (np.asarray(v, dtype=np.float64) for v in params)
        log_p0 = r * (np.log(alpha) - np.log(alpha + t))
        log_q = np.log(t) - np.log(alpha + t)
        log_nb = special.gammaln(r + n) - special.gammaln(r) - special.gammaln(n + 1) + log_p0 + n * log_q
        alive = np.exp(special.betaln(a, b + n) - special.betaln(a, b) + log_nb)
        if n == 0:
            return alive
        # P(fewer than n events of the NB) = sum_{j<n} NB(j)
        j = np.arange(n).reshape((-1,) + (1,) * np.ndim(log_nb))
        log_terms = (special.gammaln(r + j) - special.gammaln(r) - special.gammaln(j + 1) + log_p0
                     + j * log_q)
        below = np.exp(special.logsumexp(log_terms, axis=0))
        dead = np.exp(special.betaln(a + 1, b + n - 1) - special.betaln(a, b)) * np.clip(1 - below, 0, 1)
        return alive + dead

    def _population_params(self) -> tuple:
        return tuple(self._check_fitted())
