"""Gamma-Gamma spend model (Fader, Hardie & Lee 2005; Colombo & Jiang 1999).

Each transaction's value is Gamma(p, nu) with nu ~ Gamma(q, v) across customers (``v`` is the
literature's gamma). The likelihood is the density of a customer's mean repeat spend z over x
transactions: f(z | x) = G(px+q) / (G(px) G(q)) v^q z^(px-1) x^(px) / (v + x z)^(px+q),
the form whose CDNOW log-likelihood the literature reports (about -4055.9). The total-spend form
differs by sum(ln x).

Given a customer's history, nu | x, z ~ Gamma(p x + q, v + x z) (rate), so a future purchase's
expected value is p (v + x z) / (p x + q - 1), and the posterior predictive of future spends
draws one nu per customer and each spend ~ Gamma(p, nu). The fit checks the model's assumption
that spend is independent of frequency (``clvlab.models.spend_checks``).
"""

from __future__ import annotations

import math

import numba
import numpy as np

from clvlab.core.errors import ClvlabError
from clvlab.models._special import digamma_scalar, log_gamma_ratio_scalar
from clvlab.models.spend_checks import SpendModel

__all__ = ["GammaGamma"]


@numba.njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _row(p, q, v, log_v, psi_q, lgamma_q, x, z):  # pragma: no cover - compiled
    """One customer's log f(z | x) and its gradient in (p, q, v)."""
    px = p * x
    log_vxz = math.log(v + x * z)
    # px log(xz) - px log(v + xz) written as -px log1p(v / xz): the two terms are each
    # millions when px is, and their difference is what matters
    shrink = math.log1p(v / (x * z))
    value = (log_gamma_ratio_scalar(px, q) - lgamma_q + q * log_v - math.log(z) - q * log_vxz
             - px * shrink)
    psi_pxq = digamma_scalar(px + q)
    return (value, x * (psi_pxq - digamma_scalar(px) - shrink), psi_pxq - psi_q + log_v - log_vxz,
            q / v - (px + q) / (v + x * z))


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _rows(p, q, v, x, z, out):  # pragma: no cover - compiled
    log_v, psi_q, lgamma_q = math.log(v), digamma_scalar(q), math.lgamma(q)
    for i in range(x.size):
        out[i, 0], out[i, 1], out[i, 2], out[i, 3] = _row(p, q, v, log_v, psi_q, lgamma_q, x[i], z[i])


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _weighted_total(params, x, z, weights):  # pragma: no cover - compiled
    """[sum w log f, its gradient (3), 0 (no row needs a fallback)]: the sampler's kernel."""
    p, q, v = params[0], params[1], params[2]
    log_v, psi_q, lgamma_q = math.log(v), digamma_scalar(q), math.lgamma(q)
    out = np.zeros(5)
    for i in range(x.size):
        value, d_p, d_q, d_v = _row(p, q, v, log_v, psi_q, lgamma_q, x[i], z[i])
        w = weights[i]
        out[0] += w * value
        out[1] += w * d_p
        out[2] += w * d_q
        out[3] += w * d_v
    return out


class GammaGamma(SpendModel):
    """Gamma-Gamma model of spend per transaction, fitted on customers with repeat purchases.

    Expected spend given a customer's history: p (v + x z) / (p x + q - 1), a weighted mean of
    the population mean p v / (q - 1) and the customer's own mean spend z over x purchases.

    Parameters
    ----------
    <model settings>

    Attributes
    ----------
    <fitted attributes>
    spend_frequency_check_ : SpendFrequencyCheck
        The check that spend does not depend on frequency, made by ``fit``.

    References
    ----------
    Fader, Hardie & Lee (2005), "RFM and CLV: using iso-value curves for customer base
    analysis"; Fader & Hardie (2013), "The Gamma-Gamma model of monetary value".
    """

    param_names = ("p", "q", "v")
    scale_params = {"v": 1}  # currency: centred on the mean spend

    def covariate_links(self) -> dict[str, tuple[str, int]]:
        """v_i = v exp(x'g_spend): covariates on the scale of spend. nu_i ~ Gamma(q, rate v_i),
        so a customer's expected spend per transaction p v_i / (q - 1) is multiplied by
        exp(x'g_spend) while the shape of the heterogeneity (q) and of the transaction values
        (p) stay the population's. This is the Gamma-Gamma analogue of Fader & Hardie's (2007)
        covariates on the scale (rate) parameter of a Gamma mixing distribution; it keeps the
        model conjugate, so ``expected_spend`` stays p (v_i + x z) / (p x + q - 1).

        Returns
        -------
        dict of str to tuple of (str, int)
            ``{"v": ("spend", 1)}``: the spend covariates move ``v``.
        """
        return {"v": ("spend", 1)}

    def _start(self, data, weights) -> np.ndarray:
        x, z = data
        mean = float(np.average(z, weights=weights))
        return np.array([2.0, 3.0, mean])  # p v / (q - 1) = mean spend

    _row_kernel = staticmethod(_rows)  # SpendModel._loglik's
    _total_kernel = staticmethod(_weighted_total)

    # --- predictions: every hook broadcasts over per-customer parameter arrays ---------------
    @staticmethod
    def _posterior(params, x, z):
        """The Gamma posterior of nu given the history: (p, shape p x + q, rate v + x z)."""
        p, q, v = (np.asarray(a, dtype=np.float64) for a in params)
        return p, p * x + q, v + x * z

    @staticmethod
    def _check_finite_mean(q) -> None:
        q = np.asarray(q, dtype=np.float64)
        if np.any(q <= 1):
            raise ClvlabError(f"the expected spend is infinite when q <= 1 "
                              f"(q = {float(np.min(q)):.4g}): nu's Gamma(q, v) puts too much "
                              "weight near 0 for the mean of p / nu to exist")

    def _population_mean_spend(self, params):
        """p v / (q - 1) (needs q > 1)."""
        p, q, v = (np.asarray(a, dtype=np.float64) for a in params)
        self._check_finite_mean(q)
        return p * v / (q - 1)

    def _expected_spend(self, params, x, z):
        """p (v + x z) / (p x + q - 1) = p E[1 / nu | history]."""
        self._check_finite_mean(params[1])
        p, shape, rate = self._posterior(params, x, z)
        return p * rate / (shape - 1)

    def _spend_moments(self, params, x, z):
        """E[z] = p V / (Q - 1), E[z^2] = p (p + 1) V^2 / ((Q - 1)(Q - 2)) and
        E[z z'] = p^2 V^2 / ((Q - 1)(Q - 2)), with Q = p x + q, V = v + x z the posterior's
        shape and rate (E[1 / nu^2] = V^2 / ((Q - 1)(Q - 2))); the second moments are infinite
        where Q <= 2."""
        self._check_finite_mean(params[1])
        p, shape, rate = self._posterior(params, x, z)
        mean = p * rate / (shape - 1)
        with np.errstate(divide="ignore", invalid="ignore"):
            inverse_square = np.where(shape > 2, rate ** 2 / ((shape - 1) * (shape - 2)), np.inf)
        return mean, p * (p + 1) * inverse_square, p * p * inverse_square

    def _draw_spends(self, params, x, z, counts, rng):
        """nu ~ Gamma(p x + q, rate v + x z) per customer and draw; each spend ~ Gamma(p, nu).
        Refused where q <= 1, as expected_spend is: the draws would be finite, their mean not."""
        self._check_finite_mean(params[1])
        customer, k, n = self._future_buyers(counts)
        p, shape, rate = (np.broadcast_to(a, (n,)) for a in self._posterior(params, x, z))
        nu = rng.gamma(shape[customer], 1.0 / rate[customer])
        return rng.gamma(np.repeat(p[customer], k), 1.0 / np.repeat(nu, k))
