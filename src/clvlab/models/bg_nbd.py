"""BG/NBD (Fader, Hardie & Lee 2005): Poisson purchases at rate lambda ~ Gamma(r, alpha); after
each repeat purchase the customer drops out with probability p ~ Beta(a, b).

Given a customer's history and that they are alive at T, lambda ~ Gamma(r + x, alpha + T) and
p ~ Beta(a, b + x) independently, so every conditional prediction is P(alive) times the
new-customer quantity under those updated parameters (``_posterior``).
"""

from __future__ import annotations

import math
from typing import ClassVar

import numba
import numpy as np
import pandas as pd
from scipy import special

from clvlab.inference.grouping import levels
from clvlab.core.errors import ClvlabError
from clvlab.data.validation import validate_rfm
from clvlab.models._hyp import hyp2f1, log_beta_expectation
from clvlab.models._special import digamma_scalar, log_gamma_ratio, log_gamma_ratio_scalar
from clvlab.models.base import BaseModel
from clvlab.models.transaction import TransactionModel

__all__ = ["BetaGeo"]


class BetaGeo(TransactionModel, BaseModel):
    """The BG/NBD model, fitted by maximum likelihood.

    Parameters
    ----------
    <model settings>
    dropout_form : {"a_and_b", "b"}, default "a_and_b"
        How dropout covariates move the Beta distribution of the dropout probability p (see
        ``covariate_links``): "a_and_b" multiplies both a and b by exp(x'g) (Fader & Hardie
        2007); "b" divides b alone by it, so that the mean dropout probability moves.

    Attributes
    ----------
    <fitted attributes>
    """

    param_names = ("r", "alpha", "a", "b")
    columns = ("frequency", "recency", "T")
    scale_params = {"alpha": 2}  # alpha is in time units: centred on mean T
    _final_from_total = True  # the kernel falls back to the rows itself (BaseModel)

    #: 1 where a customer may also drop out right after the first purchase (MBG/NBD), 0 where
    #: dropout chances come only after repeat purchases (BG/NBD). A customer with x repeat
    #: purchases has had x + _first_chance chances to drop out, so p | alive ~ Beta(a, b + x +
    #: _first_chance): the only place where the two models differ.
    _first_chance: ClassVar[int] = 0

    #: the forms of the dropout covariates (see ``covariate_links``).
    DROPOUT_FORMS: ClassVar[tuple[str, ...]] = ("a_and_b", "b")

    def __init__(self, penalty: float = 0.0, max_restarts: int = 4, *, method: str = "mle",
                 draws: int = 1000, tune: int = 1000, chains: int = 4, priors=None,
                 random_seed=None, progressbar: bool = True, nuts_sampler: str | None = None,
                 target_accept: float | None = None, purchase_covariates: list[str] | None = None,
                 dropout_covariates: list[str] | None = None,
                 spend_covariates: list[str] | None = None,
                 shared_covariates: list[str] | None = None, covariate_penalty: float = 0.0,
                 start_params: dict[str, float] | None = None, dropout_form: str = "a_and_b"):
        """The settings of every model (``BaseModel``), and ``dropout_form``: how dropout
        covariates move the Beta distribution of the dropout probability p (see
        ``covariate_links``)."""
        super().__init__(penalty, max_restarts, method=method, draws=draws, tune=tune,
                         chains=chains, priors=priors, random_seed=random_seed,
                         progressbar=progressbar, nuts_sampler=nuts_sampler,
                         target_accept=target_accept, purchase_covariates=purchase_covariates,
                         dropout_covariates=dropout_covariates, spend_covariates=spend_covariates,
                         shared_covariates=shared_covariates, covariate_penalty=covariate_penalty,
                         start_params=start_params)
        self.dropout_form = dropout_form

    def covariate_links(self) -> dict[str, tuple[str, int]]:
        """How covariates move the parameters, by process.

        alpha_i = alpha exp(-x'g_purchase), and for the dropout covariates:

        - ``dropout_form="a_and_b"`` (Fader & Hardie 2007, "Incorporating time-invariant
          covariates into the Pareto/NBD and BG/NBD models"; CLVTools): a_i = a exp(x'g),
          b_i = b exp(x'g). The mean dropout probability a / (a + b) does not move: the
          covariates change only its spread, so where the data want them to move the mean the
          likelihood has no interior maximum (a, b -> infinity); ``fit`` detects that and says
          so.
        - ``dropout_form="b"``: b_i = b exp(-x'g), so the mean dropout probability
          a / (a + b_i) rises with a positive coefficient (a logit-like shift: for small p,
          the odds a / b_i move by exp(x'g)). The Beta-Geometric dropout with a Beta mixing
          distribution whose second shape carries the covariates is the form pymc-marketing
          uses for the shifted-beta-geometric (exp(-x'g) on its Beta parameters); it keeps
          the BG/NBD's conjugacy, so every prediction stays closed form.

        Returns
        -------
        dict of str to tuple of (str, int)
            Parameter -> (process, sign): ``alpha`` by the purchase covariates; ``a`` and
            ``b`` (or ``b`` alone) by the dropout covariates.

        Raises
        ------
        ClvlabError
            Where ``dropout_form`` is not one of ``DROPOUT_FORMS``.
        """
        if self.dropout_form not in self.DROPOUT_FORMS:
            raise ClvlabError(f"dropout_form must be one of {list(self.DROPOUT_FORMS)}, got "
                              f"{self.dropout_form!r}")
        dropout = ({"a": ("dropout", 1), "b": ("dropout", 1)} if self.dropout_form == "a_and_b"
                   else {"b": ("dropout", -1)})
        return {"alpha": ("purchase", -1), **dropout}

    def _data(self, rfm: pd.DataFrame) -> list[np.ndarray]:
        validate_rfm(rfm)
        return [rfm[c].to_numpy(np.float64) for c in self.columns]

    def _check_identifiable(self, data, counts) -> None:
        super()._check_identifiable(data, counts)
        if not np.any(data[0] > 0):
            raise ClvlabError(f"{type(self).__name__} cannot be fitted: no customer has a repeat purchase, so the "
                              "purchase and dropout processes are not identified")

    def _start(self, data, weights) -> np.ndarray:
        x, _, T = data
        mean_T = float(np.average(T, weights=weights))
        rate = max(float(np.average(x, weights=weights)) / max(mean_T, 1e-9), 1e-6)
        return np.array([1.0, 1.0 / rate, 1.0, 3.0])

    def _prepare(self, data: list[np.ndarray]) -> list[np.ndarray]:
        return [*data, *levels(data[0])]

    @classmethod
    def _loglik(cls, params: np.ndarray, data: list[np.ndarray]):
        r, alpha, a, b = params
        x, t_x, T = data[:3]
        x_levels, at = data[3:] if len(data) == 5 else levels(x)
        # every special function of x once per distinct x; the rows in one compiled loop
        per_x = _terms_of_x(r, alpha, a, b, x_levels, cls._first_chance)
        out = np.empty((x.size, 5))
        _rows(float(r), float(alpha), per_x, np.asarray(at, dtype=np.int64),
              *(np.ascontiguousarray(v, dtype=np.float64) for v in (x, t_x, T)), out)
        return out[:, 0], out[:, 1:]

    @classmethod
    def _kernel_arrays(cls, data: list[np.ndarray], weights: np.ndarray):
        if len(data) != 5:  # not prepared (no x levels)
            return None
        x, t_x, T, x_levels, at = data
        return (np.array([float(cls._first_chance)]), np.ascontiguousarray(x_levels, dtype=np.float64),
                np.ascontiguousarray(at, dtype=np.int64),
                *(np.ascontiguousarray(v, dtype=np.float64) for v in (x, t_x, T, weights)),
                *_level_arrays(t_x), *_level_arrays(T))

    # --- predictions --------------------------------------------------------------------------
    def _p_alive(self, x, t_x, T) -> np.ndarray:
        r, alpha, a, b = self._check_fitted()
        chances = x + self._first_chance          # dropout chances so far
        cm = np.where(chances > 0, chances, 1.0)
        log_odds = np.log(a) - np.log(b + cm - 1) + (r + x) * (np.log(alpha + T) - np.log(alpha + t_x))
        return np.where(chances > 0, special.expit(-log_odds), 1.0)

    def _posterior(self, x, t_x, T) -> tuple:
        r, alpha, a, b = self._check_fitted()
        return r + x, alpha + T, np.full_like(x, a), b + x + self._first_chance

    def _new_customer_expected(self, t):
        # survive the first chance (if any), then the BG/NBD process with p | survived
        r, alpha, a, b = self._population_params()
        k = self._first_chance
        survive = math.exp(special.betaln(a, b + k) - special.betaln(a, b))
        return survive * self._new_expected((r, alpha, a, b + k), t)

    def _new_customer_pmf(self, n: int, t):
        r, alpha, a, b = self._population_params()
        k = self._first_chance
        survive = math.exp(special.betaln(a, b + k) - special.betaln(a, b))
        values = survive * self._new_pmf((r, alpha, a, b + k), n, t)
        return values + (1 - survive) if n == 0 else values

    @staticmethod
    def _new_expected(params: tuple, t) -> np.ndarray:
        r, alpha, a, b = params
        z = t / (alpha + t)
        with np.errstate(all="ignore"):  # a = 1 exactly: inf x 0, settled by the integral below
            factor = np.divide(np.float64(a + b - 1), np.float64(a - 1))
            value = factor * (1 - np.exp(r * np.log(alpha / (alpha + t))) * hyp2f1(r, b, a + b - 1, z))
        bad = ~np.isfinite(value) | (np.asarray(value) < 0)
        if np.any(bad):  # scipy and mpmath failed (degenerate parameters): the integral itself
            value = np.array(value, dtype=np.float64)
            r, alpha, a, b, t = (np.broadcast_to(np.asarray(v, dtype=np.float64), value.shape)[bad]
                                 for v in (r, alpha, a, b, t))
            value[bad] = _expected_by_quadrature(r, alpha, a, b, t)
        return value

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


def _level_arrays(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``levels(values)`` as the kernel reads them: contiguous float64 levels, int64 indices."""
    distinct, inverse = levels(values)
    return (np.ascontiguousarray(distinct, dtype=np.float64),
            np.ascontiguousarray(inverse, dtype=np.int64))


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _rows(r, alpha, per_x, at, x, t_x, T, out):  # pragma: no cover - compiled
    """Per row: log-likelihood and gradient from the x-only columns (``_terms_of_x``)."""
    for i in range(x.size):
        c = per_x[at[i]]
        m = r + x[i]
        log_T, log_t = math.log(alpha + T[i]), math.log(alpha + t_x[i])
        alive = c[0] - m * log_T
        dead = c[1] - m * log_t  # -inf where x = 0: no dropout term
        top = max(alive, dead)
        log_sum = top + math.log1p(math.exp(-abs(alive - dead))) if dead > -math.inf else alive
        w_alive = math.exp(alive - log_sum)
        w_dead = 1.0 - w_alive
        out[i, 0] = c[2] + log_sum
        out[i, 1] = c[3] - w_alive * log_T - w_dead * log_t
        out[i, 2] = r / alpha - m * (w_alive / (alpha + T[i]) + w_dead / (alpha + t_x[i]))
        out[i, 3] = w_alive * c[4] + w_dead * c[5]
        out[i, 4] = w_alive * c[6] + w_dead * c[7]


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _weighted_total(r, alpha, a, b, first_chance, x_levels, at, x, t_x, T, weights, t_levels,
                    at_t, T_levels, at_T):  # pragma: no cover - compiled
    """[sum w * loglik, its gradient (4)]: ``_terms_of_x`` from scalar log-gamma ratios and
    digammas (Beta ratios as Gamma ratios, so large b stays exact), then the rows of ``_rows``
    summed as they go. log(alpha + t_x) and log(alpha + T) once per distinct t_x and T
    (``t_levels``, row i's at ``at_t[i]``; ``T_levels``, ``at_T``): the same numbers, 1,016
    CDNOW rows hold 257 and 84 of them."""
    log_t_levels = np.empty(t_levels.size)
    for j in range(t_levels.size):
        log_t_levels[j] = math.log(alpha + t_levels[j])
    log_T_levels = np.empty(T_levels.size)
    for j in range(T_levels.size):
        log_T_levels[j] = math.log(alpha + T_levels[j])
    per_x = np.empty((x_levels.size, 8))
    log_alpha = math.log(alpha)
    psi_ab, psi_b, psi_r = digamma_scalar(a + b), digamma_scalar(b), digamma_scalar(r)
    for k in range(x_levels.size):
        xk = x_levels[k]
        c = xk + first_chance
        psi_abc = digamma_scalar(a + b + c)
        common = log_gamma_ratio_scalar(a + b, c)
        per_x[k, 0] = log_gamma_ratio_scalar(b, c) - common
        per_x[k, 2] = log_gamma_ratio_scalar(r, xk) + r * log_alpha
        per_x[k, 3] = digamma_scalar(r + xk) - psi_r + log_alpha
        per_x[k, 4] = psi_ab - psi_abc
        per_x[k, 5] = 1.0 / a + psi_ab - psi_abc
        per_x[k, 6] = digamma_scalar(b + c) - psi_abc - psi_b + psi_ab
        if c > 0:  # B(a + 1, b + c - 1) / B(a, b) = a G(b + c - 1) G(a + b) / (G(b) G(a + b + c))
            per_x[k, 1] = math.log(a) + log_gamma_ratio_scalar(b, c - 1.0) - common
            per_x[k, 7] = digamma_scalar(b + c - 1.0) - psi_abc - psi_b + psi_ab
        else:
            per_x[k, 1] = -math.inf
            per_x[k, 7] = 0.0
    out = np.zeros(5)
    for i in range(x.size):
        w = weights[i]
        c = per_x[at[i]]
        m = r + x[i]
        log_T, log_t = log_T_levels[at_T[i]], log_t_levels[at_t[i]]
        alive = c[0] - m * log_T
        dead = c[1] - m * log_t
        top = max(alive, dead)
        log_sum = top + math.log1p(math.exp(-abs(alive - dead))) if dead > -math.inf else alive
        w_alive = math.exp(alive - log_sum)
        w_dead = 1.0 - w_alive
        out[0] += w * (c[2] + log_sum)
        out[1] += w * (c[3] - w_alive * log_T - w_dead * log_t)
        out[2] += w * (r / alpha - m * (w_alive / (alpha + T[i]) + w_dead / (alpha + t_x[i])))
        out[3] += w * (w_alive * c[4] + w_dead * c[5])
        out[4] += w * (w_alive * c[6] + w_dead * c[7])
    return out


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _kernel(params, first_chance, x_levels, at, x, t_x, T, weights, t_levels, at_t, T_levels,
            at_T):  # pragma: no cover - compiled
    """``_weighted_total`` as the model's kernel: [total, gradient (4), 0 (no fallback)]. One
    compiled pass: ~15 NumPy calls on a few dozen x levels cost more than the rows themselves."""
    out = np.zeros(6)
    out[:5] = _weighted_total(params[0], params[1], params[2], params[3], first_chance[0],
                              x_levels, at, x, t_x, T, weights, t_levels, at_t, T_levels, at_T)
    return out


BetaGeo._total_kernel = staticmethod(_kernel)


def _terms_of_x(r, alpha, a, b, x, first_chance: int = 0) -> np.ndarray:
    """Columns of the log-likelihood and its gradient that depend on x alone (x = levels).

    With c = x + first_chance dropout chances (x for BG/NBD, x + 1 for MBG/NBD):
    0: log B(a, b+c) / B(a, b) (alive at T); 1: log B(a+1, b+c-1) / B(a, b) (dropped out at the
    last chance; -inf for c = 0, where b + c - 1 may be negative); 2: log G(r+x)/G(r) +
    r log alpha; 3: d/dr of the constant parts; 4, 5: d/da of the alive and dropout terms;
    6, 7: d/db of them.
    """
    c = x + first_chance
    some = c > 0
    cm = np.where(some, c, 1.0)  # keeps b + c - 1 > 0 where the dropout term is unused
    n = x.size
    # one digamma and one betaln call over all arguments: the sampler calls this thousands of
    # times on a few dozen levels, where each ufunc call's fixed cost outweighs its work
    psi = special.digamma(np.concatenate(([a + b, b, r, a + 1, a], a + b + c, b + c, r + x, b + cm - 1)))
    psi_ab, psi_b, psi_r, psi_a1, psi_a = psi[:5]
    psi_abc, psi_bc, psi_rx, psi_bcm = psi[5:5 + n], psi[5 + n:5 + 2 * n], psi[5 + 2 * n:5 + 3 * n], psi[5 + 3 * n:]
    log_beta = special.betaln(np.concatenate(([a], np.full(n, a), np.full(n, a + 1))),
                              np.concatenate(([b], b + c, b + cm - 1)))
    out = np.empty((n, 8))
    out[:, 0] = log_beta[1:n + 1] - log_beta[0]
    out[:, 1] = np.where(some, log_beta[n + 1:] - log_beta[0], -np.inf)
    out[:, 2] = log_gamma_ratio(r, x) + r * np.log(alpha)
    out[:, 3] = psi_rx - psi_r + np.log(alpha)
    out[:, 4] = psi_ab - psi_abc
    out[:, 5] = psi_a1 - psi_a + psi_ab - psi_abc
    out[:, 6] = psi_bc - psi_abc - psi_b + psi_ab
    out[:, 7] = np.where(some, psi_bcm - psi_abc - psi_b + psi_ab, 0.0)
    return out


def _expected_by_quadrature(r, alpha, a, b, t) -> np.ndarray:
    """E[X(t)] of a new BG/NBD customer as the integral over the dropout probability:
    E[X(t) | p] = (1 - (alpha / (alpha + p t))^r) / p, averaged over p ~ Beta(a, b).
    Finite for every a, b > 0 (the closed form's 2F1 is not, numerically, at extreme values)."""
    r, alpha, t = (np.asarray(v, dtype=np.float64)[:, None] for v in (r, alpha, t))

    def log_f(p):
        p = np.maximum(p, 1e-300)
        ratio = np.log1p(p * t / alpha)
        # (1 - exp(-r ratio)) / p, which tends to r t / alpha as p -> 0
        return np.log(-np.expm1(-r * ratio)) - np.log(p)

    return np.exp(log_beta_expectation(log_f, a, b))
