"""Gamma-Gamma spend model (Fader, Hardie & Lee 2005; Colombo & Jiang 1999).

Each transaction's value is Gamma(p, nu) with nu ~ Gamma(q, v) across customers (``v`` is the
literature's gamma). The likelihood is the density of a customer's mean repeat spend z over x
transactions: f(z | x) = G(px+q) / (G(px) G(q)) v^q z^(px-1) x^(px) / (v + x z)^(px+q),
the form whose CDNOW log-likelihood the literature reports (about -4055.9). The total-spend form
differs by sum(ln x).
"""

from __future__ import annotations

import math

import numba
import numpy as np
import pandas as pd

from clvlab.core.errors import ClvlabError, DataValidationError, example_row
from clvlab.data.validation import validate_rfm
from clvlab.models._special import digamma_scalar, log_gamma_ratio_scalar
from clvlab.models.base import BaseModel
from clvlab.models.covariates import has_covariates
from clvlab.models.customer_params import by_covariate_group, population_level
from clvlab.models.table_units import checks_time_unit

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


class GammaGamma(BaseModel):
    """Gamma-Gamma model of spend per transaction, fitted on customers with repeat purchases.

    Parameters
    ----------
    penalty : L2 penalty on the parameters (0 = plain maximum likelihood).
    max_restarts : restarts from perturbed starting points when the optimiser fails.
    """

    param_names = ("p", "q", "v")
    columns = ("frequency", "monetary_value")
    scale_params = {"v": 1}  # currency: centred on the mean spend

    def covariate_links(self) -> dict[str, tuple[str, int]]:
        """v_i = v exp(x'g_spend): covariates on the scale of spend. nu_i ~ Gamma(q, rate v_i),
        so a customer's expected spend per transaction p v_i / (q - 1) is multiplied by
        exp(x'g_spend) while the shape of the heterogeneity (q) and of the transaction values
        (p) stay the population's. This is the Gamma-Gamma analogue of Fader & Hardie's (2007)
        covariates on the scale (rate) parameter of a Gamma mixing distribution; it keeps the
        model conjugate, so ``expected_spend`` stays p (v_i + x z) / (p x + q - 1)."""
        return {"v": ("spend", 1)}

    def _rows_used(self, rfm: pd.DataFrame) -> np.ndarray:
        return rfm["frequency"].to_numpy() > 0

    def _data(self, rfm: pd.DataFrame) -> list[np.ndarray]:
        x, z = self._spend_arrays(rfm)
        repeat = x > 0
        return [x[repeat], z[repeat]]

    def fit(self, rfm: pd.DataFrame, weights=None, *, time_unit: str | None = None) -> "GammaGamma":
        """Fit on the customers with repeat purchases (the others carry no spend information)."""
        if weights is not None:
            weights = np.asarray(weights, dtype=np.float64)
            if weights.shape != (len(rfm),):
                raise ClvlabError("weights must be one number per row of the RFM table")
            weights = weights[rfm["frequency"].to_numpy() > 0]
            rfm = rfm[rfm["frequency"] > 0]
        elif has_covariates(self) and "frequency" in getattr(rfm, "columns", ()):
            # the covariates are read from the same rows as the spend (``_data`` keeps those)
            rfm = rfm[rfm["frequency"] > 0]
        return super().fit(rfm, weights, time_unit=time_unit)

    def _spend_arrays(self, rfm: pd.DataFrame):
        validate_rfm(rfm, require_monetary=True)
        x = rfm["frequency"].to_numpy(np.float64)
        z = rfm["monetary_value"].to_numpy(np.float64)
        bad = (x > 0) & (z <= 0)
        if np.any(bad):
            raise DataValidationError(
                "monetary_value", "must be > 0 for a customer with repeat purchases (the "
                "Gamma-Gamma model has no zero spend); drop those customers or model them apart",
                example_row(rfm, int(np.flatnonzero(bad)[0])))
        return x, z

    def _check_identifiable(self, data, counts) -> None:
        if counts.sum() < 2:
            raise ClvlabError("GammaGamma needs at least two customers with repeat purchases")

    def _start(self, data, weights) -> np.ndarray:
        x, z = data
        mean = float(np.average(z, weights=weights))
        return np.array([2.0, 3.0, mean])  # p v / (q - 1) = mean spend

    @staticmethod
    def _loglik(params: np.ndarray, data: list[np.ndarray]):
        p, q, v = (float(value) for value in params)
        x, z = (np.ascontiguousarray(a, dtype=np.float64) for a in data[:2])
        out = np.empty((x.size, 4))
        _rows(p, q, v, x, z, out)
        return out[:, 0], out[:, 1:]

    @staticmethod
    def _kernel_arrays(data: list[np.ndarray], weights: np.ndarray):
        return tuple(np.ascontiguousarray(a, dtype=np.float64) for a in (*data[:2], weights))

    _total_kernel = staticmethod(_weighted_total)

    @population_level
    def population_mean_spend(self) -> float:
        """Mean spend per transaction across customers, p v / (q - 1) (needs q > 1)."""
        p, q, v = self._check_fitted()
        if q <= 1:
            raise ClvlabError(f"the population mean spend is infinite when q <= 1 (q = {q:.4g})")
        return float(p * v / (q - 1))

    @checks_time_unit
    @by_covariate_group
    def expected_spend(self, rfm: pd.DataFrame, unvalued: str = "raise") -> pd.Series:
        """Expected spend per transaction given each customer's history (calibration data).

        A weighted mean of the population mean and the customer's own mean spend:
        p (v + x z) / (p x + q - 1). Customers without repeats get the population mean.
        ``unvalued``: what to do with customers whose repeat purchases were all of value 0 (the
        model has no zero spend): ``"raise"`` (default) a DataValidationError naming one, or
        ``"population"``: treat them as customers without spend information (the population
        mean), as scoring jobs and backtests do.
        """
        p, q, v = self._check_fitted()
        self._check_time_unit(rfm)
        if unvalued not in ("raise", "population"):
            raise ClvlabError(f"unvalued must be 'raise' or 'population', got {unvalued!r}")
        if unvalued == "population":
            validate_rfm(rfm, require_monetary=True)
            zero = (rfm["frequency"].to_numpy() > 0) & (rfm["monetary_value"].to_numpy() <= 0)
            rfm = rfm.assign(frequency=np.where(zero, 0, rfm["frequency"]),
                             recency=np.where(zero, 0.0, rfm["recency"]))
        x, z = self._spend_arrays(rfm)
        z = np.where(x > 0, z, 0.0)
        values = p * (v + x * z) / (p * x + q - 1)
        if q <= 1:
            raise ClvlabError(f"expected spend is infinite when q <= 1 (q = {q:.4g})")
        return pd.Series(values, index=rfm.index, name="expected_spend")
