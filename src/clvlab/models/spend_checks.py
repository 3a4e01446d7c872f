"""What the spend models share: the spend columns they read, and the check of their assumption
that spend does not depend on purchase frequency.

Gamma-Gamma (Fader, Hardie & Lee 2005) and the log-normal spend model both assume that a
customer's latent spend per transaction is independent of how often they buy. Their expected
spend shrinks each customer's mean spend towards one population mean; when frequent buyers
spend more per transaction (or less), that single mean is wrong for everyone, and most wrong for
the customers with few or no repeat purchases, whose predictions rest on it.

:func:`spend_frequency_check` measures the dependence among customers with repeat purchases.
Which statistic can decide? Under the models' assumption the mean spend z of a customer's x
transactions satisfies E[z | x] = E[z] (the latent spend does not move with x), so the Pearson
correlation of x and z is centred on 0. Its rank (Spearman) correlation is not: the mean of x
right-skewed spends is less skewed the larger x is, so its median rises with x. On CDNOW's 946
repeat customers, simulated from the fitted Gamma-Gamma with frequency and spend independent,
Spearman's rho averaged 0.040 (sd 0.035 over 200 simulations) while Pearson's r averaged 0.002
(sd 0.032). Both are reported; the decision uses Pearson's r, with a heteroskedasticity-robust
(HC3) test because the spread of a mean spend falls with x and spend has heavy tails.

The rule (:data:`MATERIAL_CORRELATION`, :data:`SIGNIFICANCE`): the dependence is *material*
when |r| > 0.1 (Cohen's "small" effect: frequency then explains over 1 % of the variance of
spend) and the robust test rejects r = 0 at the 5 % level. ``GammaGamma.fit`` and
``LogNormalSpend.fit`` run the check and warn (:class:`~clvlab.core.errors.ClvlabWarning`)
when it is material; the result is kept as ``model.spend_frequency_check_``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import pandas as pd
from scipy import special

from clvlab.core.errors import ClvlabError, ClvlabWarning, DataValidationError, example_row, warn
from clvlab.data.validation import validate_rfm, validated
from clvlab.models.base import BaseModel
from clvlab.models.covariates import has_covariates
from clvlab.models.customer_params import (by_covariate_group, customer_parameters,
                                           population_level)
from clvlab.data.tables import accepts_tables, converts, to_pandas
from clvlab.models.table_units import checks_time_unit

__all__ = ["SpendModel", "SpendFrequencyCheck", "spend_frequency_check", "warn_if_material",
           "MATERIAL_CORRELATION", "SIGNIFICANCE"]

#: |Pearson r| above which a significant correlation of frequency and spend is material
MATERIAL_CORRELATION = 0.1
#: the level of the robust test of r = 0
SIGNIFICANCE = 0.05


@dataclass(frozen=True)
class SpendFrequencyCheck:
    """The correlation of purchase frequency and mean spend among repeat customers.

    The fields are its attributes too.

    Parameters
    ----------
    n : float
        Customers with repeat purchases and spend (the sum of their weights).
    pearson, pearson_interval, pearson_p_value : float, tuple of float, float
        Pearson's r of frequency and monetary value,
        its ``level`` interval and the p-value of r = 0, both heteroskedasticity-robust (HC3).
    spearman, spearman_interval, spearman_p_value : float, tuple of float, float
        Spearman's rank correlation, its interval
        (Fisher's z with the variance 1.06 / (n - 3) of Fieller, Hartley & Pearson 1957) and
        the p-value of its t statistic. Descriptive: not centred on 0 under independence.
    adjusted_for : tuple of str, default ()
        Covariates partialled out of both (a model's spend covariates), or ().
    threshold, alpha, level : float, default 0.1, 0.05, 0.95
        The rule's settings: the material ``|r|``, the test's level and the intervals'
        coverage.
    """

    n: float
    pearson: float
    pearson_interval: tuple[float, float]
    pearson_p_value: float
    spearman: float
    spearman_interval: tuple[float, float]
    spearman_p_value: float
    adjusted_for: tuple[str, ...] = ()
    threshold: float = MATERIAL_CORRELATION
    alpha: float = SIGNIFICANCE
    level: float = 0.95

    @property
    def material(self) -> bool:
        """Pearson's r is significant (robust p-value < alpha) and ``|r|`` > threshold."""
        return bool(self.pearson_p_value < self.alpha and abs(self.pearson) > self.threshold)

    def __str__(self) -> str:
        percent = f"{100 * self.level:g}%"
        given = f", given {list(self.adjusted_for)}" if self.adjusted_for else ""
        return (f"frequency vs monetary value among {self.n:,.0f} repeat customers{given}: "
                f"Pearson r = {self.pearson:.3f} ({percent} interval {self.pearson_interval[0]:.3f}"
                f" to {self.pearson_interval[1]:.3f}, robust p = {self.pearson_p_value:.2g}); "
                f"Spearman rho = {self.spearman:.3f} ({percent} interval "
                f"{self.spearman_interval[0]:.3f} to {self.spearman_interval[1]:.3f}, "
                f"p = {self.spearman_p_value:.2g})")


@accepts_tables(keyed=("rfm",))
def spend_frequency_check(rfm: pd.DataFrame, *, weights: Sequence[float] | None = None,
                          adjust_for: Any = None, threshold: float = MATERIAL_CORRELATION,
                          alpha: float = SIGNIFICANCE, level: float = 0.95) -> SpendFrequencyCheck:
    """Correlation of purchase frequency and mean spend, the spend models' independence check.

    Parameters
    ----------
    rfm : RFM table with ``frequency`` and ``monetary_value``; only customers with repeat
        purchases and a positive mean spend are read (the rows the spend models fit).
    weights : frequency weights, one per row (a row standing for that many customers).
    adjust_for : covariates to partial out of both variables (a partial correlation): column
        names of ``rfm`` (numeric) or an array with one row per row of ``rfm``. A dependence that
        spend covariates explain is no longer one the model ignores.
    threshold, alpha : the rule for a material dependence (see the module's docstring).
    level : the level of the intervals.

    Returns
    -------
    SpendFrequencyCheck
        NaN correlations (and ``material`` False) when they are undefined: fewer than
        4 repeat customers, or no spread in frequency or spend.

    Raises
    ------
    ClvlabError
        On bad settings or ``weights`` / ``adjust_for`` of the wrong shape.

    References
    ----------
    Fader, Hardie & Lee (2005), "RFM and CLV: using iso-value curves for customer base
    analysis", J. Marketing Research 42(4); Fader & Hardie (2013), "The Gamma-Gamma model of
    monetary value" (the independence assumption and its check). Long & Ervin (2000) for HC3.
    """
    if not (0 < alpha < 1 and 0 < level < 1 and 0 <= threshold < 1):
        raise ClvlabError(f"alpha and level must be in (0, 1) and threshold in [0, 1), got "
                          f"alpha={alpha!r}, level={level!r}, threshold={threshold!r}")
    validate_rfm(rfm, require_monetary=True)
    w = np.ones(len(rfm)) if weights is None else np.asarray(weights, dtype=np.float64)
    if w.shape != (len(rfm),) or not np.all(np.isfinite(w)) or np.any(w < 0):
        raise ClvlabError("weights must be one finite number >= 0 per row of the RFM table")
    covariates, names = _covariates(rfm, adjust_for)
    x = rfm["frequency"].to_numpy(np.float64)
    z = rfm["monetary_value"].to_numpy(np.float64)
    keep = (x > 0) & (z > 0) & (w > 0)
    x, z, w, covariates = x[keep], z[keep], w[keep], covariates[keep]
    design = np.column_stack([np.ones(len(x)), covariates])
    n = float(w.sum())
    df = n - 2 - covariates.shape[1]
    nan = (float("nan"), float("nan"))
    if len(x) < 4 or df < 2:
        return SpendFrequencyCheck(n, nan[0], nan, nan[0], nan[0], nan, nan[0], names,
                                   threshold, alpha, level)
    # scipy.stats' distribution methods cost ~0.1 ms a call in argument checks; these are the
    # functions they call (norm.ppf is ndtri, t.sf(x, df) is stdtr(df, -x)): the same numbers
    quantile = special.ndtri(0.5 + level / 2)
    pearson, pearson_se, pearson_p = _robust_correlation(x, z, w, design, df)
    pearson_interval = _fisher_interval(pearson, pearson_se / (1 - pearson ** 2), quantile)
    spearman = _correlation(*(_residuals(_ranks(v, w), w, design) for v in (x, z)), w)
    if np.isfinite(spearman):
        t = spearman * math.sqrt(df / max(1 - spearman ** 2, 1e-300))
        spearman_p = float(2 * special.stdtr(df, -abs(t)))
        spearman_interval = _fisher_interval(spearman, math.sqrt(1.06 / (df - 1)), quantile)
    else:
        spearman_p, spearman_interval = nan[0], nan
    return SpendFrequencyCheck(n, pearson, pearson_interval, pearson_p, spearman,
                               spearman_interval, spearman_p, names, threshold, alpha, level)


def warn_if_material(check: SpendFrequencyCheck, model_name: str) -> None:
    """Warn (ClvlabWarning) when ``check.material``: the correlation, n, the bias it causes and
    what to do (spend covariates, or spend modelled conditional on frequency).

    Parameters
    ----------
    check : the result of :func:`spend_frequency_check`.
    model_name : the spend model the warning names.
    """
    if not check.material:
        return
    who = ("customers with few or no repeat purchases, shrunk towards a population mean that "
           "frequent buyers raise, are over-valued" if check.pearson > 0 else
           "customers with few or no repeat purchases, shrunk towards a population mean that "
           "frequent buyers lower, are under-valued")
    warn(
        f"{model_name}: spend per transaction is correlated with purchase frequency "
        f"({check}). The model assumes they are independent (Fader, Hardie & Lee 2005), so its "
        f"expected spend is biased: {who}. Add spend_covariates with the customer attributes "
        "behind both, or model spend conditional on frequency (e.g. one spend model per "
        "frequency band), and compare spend predictions in a backtest. The rule: |Pearson r| > "
        f"{check.threshold:g} with robust p < {check.alpha:g} (clvlab.spend_frequency_check).",
        ClvlabWarning)


class SpendModel(BaseModel):
    """What Gamma-Gamma and the log-normal spend model share: they read frequency and
    monetary_value, fit on the customers with repeat purchases, check the independence of spend
    and frequency, and predict through four hooks, each written to broadcast over per-customer
    parameter arrays (``params``: the model's own parameters, each a scalar or an array with one
    value per customer; ``x``: repeat purchases; ``z``: their mean value, 0 where x = 0):

    - ``_expected_spend(params, x, z)``: E[spend of a future purchase | history];
    - ``_population_mean_spend(params)``: the same for a customer without history;
    - ``_spend_moments(params, x, z)``: (E[z], E[z^2], E[z z']) of future purchases given the
      history, z and z' two different purchases of the same customer (correlated through the
      customer's latent spend);
    - ``_draw_spends(params, x, z, counts, rng)``: spends of future purchases from the
      posterior predictive, ``counts`` (customers x draws) purchases each; one latent spend per
      customer and draw, shared by that draw's purchases; returned flat, customer by customer,
      draw by draw (``counts``' C order).
    """

    columns = ("frequency", "monetary_value")
    #: predictions with covariates run once over all customers, at per-customer parameter
    #: arrays (``customer_params.row_model``): the hooks broadcast.
    row_predictions = True

    #: the compiled per-row log-likelihood of the model's three parameters over (x, z), into
    #: out[rows, 4] (value, gradient): each spend model's own
    _row_kernel: Any = None

    @classmethod
    def _loglik(cls, params: np.ndarray, data: list[np.ndarray]):
        a, b, c = (float(value) for value in params)
        x, z = (np.ascontiguousarray(v, dtype=np.float64) for v in data[:2])
        out = np.empty((x.size, 4))
        cls._row_kernel(a, b, c, x, z, out)
        return out[:, 0], out[:, 1:]

    @staticmethod
    def _kernel_arrays(data: list[np.ndarray], weights: np.ndarray):
        return tuple(np.ascontiguousarray(a, dtype=np.float64) for a in (*data[:2], weights))

    @staticmethod
    def _future_buyers(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
        """For ``_draw_spends``: each (customer, draw) with future purchases, as the customer's
        row and the number of purchases, in ``counts``' C order, and the number of customers."""
        counts = np.asarray(counts)
        flat = counts.ravel()
        buying = np.flatnonzero(flat)
        return buying // counts.shape[1], flat[buying], counts.shape[0]

    def _rows_used(self, rfm: pd.DataFrame) -> np.ndarray:
        return rfm["frequency"].to_numpy() > 0

    def _data(self, rfm: pd.DataFrame) -> list[np.ndarray]:
        x, z = self._spend_arrays(rfm)
        repeat = x > 0
        return [x[repeat], z[repeat]]

    @converts("rfm")
    def fit(self, rfm: pd.DataFrame, weights=None, *, time_unit: str | None = None,
            covariate_paths=None):
        """Fit on the customers with repeat purchases (the others carry no spend information),
        then check that spend does not depend on frequency: ``spend_frequency_check_`` keeps
        the result, and a material dependence warns (``clvlab.spend_frequency_check``).
        ``covariate_paths`` is refused: a spend model's covariates are static columns.

        Parameters
        ----------
        rfm : pandas.DataFrame
            ``frequency`` and ``monetary_value`` per customer (``monetary_value`` > 0 where
            ``frequency`` > 0), and any covariate columns the model reads.
        weights : array-like of float, optional
            How many customers each row stands for, one number per row; None: one each.
        time_unit : str, optional
            The unit of the table's durations, recorded with the fit where the table does not
            record it.
        covariate_paths : None
            Refused: a spend model's covariates are static columns.

        Returns
        -------
        GammaGamma or LogNormalSpend
            self, fitted, with ``spend_frequency_check_``.

        Raises
        ------
        ClvlabError
            Where ``covariate_paths`` is given, ``weights`` is not one number per row, fewer than
            two customers have repeat purchases, or a setting is invalid.
        DataValidationError
            Where the table breaks an RFM rule or a customer with repeat purchases has
            ``monetary_value`` <= 0.
        """
        rfm = to_pandas(rfm, keyed=True, what="the RFM table")  # polars, Arrow
        if covariate_paths is not None:
            raise ClvlabError(
                f"{type(self).__name__} does not take time-varying covariates (covariate_paths): "
                "a customer's average spend is one number over their whole history, so its "
                "covariates are static columns of the RFM table (spend_covariates=[...]). "
                "Time-varying covariates move the purchase and dropout rates of ParetoNBD and "
                "BetaGeo.")
        if weights is not None:
            weights = np.asarray(weights, dtype=np.float64)
            if weights.shape != (len(rfm),):
                raise ClvlabError("weights must be one number per row of the RFM table")
            weights = weights[rfm["frequency"].to_numpy() > 0]
            rfm = rfm[rfm["frequency"] > 0]
        elif has_covariates(self) and "frequency" in getattr(rfm, "columns", ()):
            # the covariates are read from the same rows as the spend (``_data`` keeps those)
            rfm = rfm[rfm["frequency"] > 0]
        super().fit(rfm, weights, time_unit=time_unit)
        adjust = None
        if hasattr(self, "covariates_"):  # a dependence the covariates explain is modelled
            encoder = self.covariates_.encoder
            adjust = pd.DataFrame(encoder.transform(rfm, model=type(self).__name__),
                                  columns=encoder.names, index=rfm.index)
        with validated(rfm):  # the fit has just checked its rules (_spend_arrays): not again
            self.spend_frequency_check_ = spend_frequency_check(rfm, weights=weights,
                                                                adjust_for=adjust)
        warn_if_material(self.spend_frequency_check_, type(self).__name__)
        return self

    def _check_identifiable(self, data, counts) -> None:
        if counts.sum() < 2:
            raise ClvlabError(f"{type(self).__name__} needs at least two customers with repeat "
                              "purchases")

    def _spend_arrays(self, rfm: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        validate_rfm(rfm, require_monetary=True)
        x = rfm["frequency"].to_numpy(np.float64)
        z = rfm["monetary_value"].to_numpy(np.float64)
        bad = (x > 0) & (z <= 0)
        if np.any(bad):
            raise DataValidationError(
                "monetary_value", f"must be > 0 for a customer with repeat purchases (the "
                f"{type(self).__name__} model has no zero spend); drop those customers or model "
                "them apart", example_row(rfm, int(np.flatnonzero(bad)[0])))
        return x, z

    def _spend_history(self, rfm: pd.DataFrame, unvalued: str) -> tuple[np.ndarray, np.ndarray]:
        """(x, z) for predictions: z = 0 without repeats; ``unvalued`` as in expected_spend."""
        if unvalued not in ("raise", "population"):
            raise ClvlabError(f"unvalued must be 'raise' or 'population', got {unvalued!r}")
        if unvalued == "population":
            validate_rfm(rfm, require_monetary=True)
            zero = (rfm["frequency"].to_numpy() > 0) & (rfm["monetary_value"].to_numpy() <= 0)
            rfm = rfm.assign(frequency=np.where(zero, 0, rfm["frequency"]),
                             recency=np.where(zero, 0.0, rfm["recency"]))
        x, z = self._spend_arrays(rfm)
        return x, np.where(x > 0, z, 0.0)

    def _predictive_inputs(self, rfm: pd.DataFrame, unvalued: str = "raise"):
        """(each customer's parameters, x, z): what the hooks take; the parameters are one
        array (n,) each, moved by the covariate columns of ``rfm`` for a model with covariates."""
        self._check_fitted()
        x, z = self._spend_history(rfm, unvalued)
        return tuple(customer_parameters(self, rfm).T), x, z

    @population_level
    def population_mean_spend(self) -> float:
        """Mean spend per transaction across customers (a customer without history).

        Returns
        -------
        float
            The population's mean spend per transaction.

        Raises
        ------
        ClvlabError
            Where the model is not fitted or has covariates.
        """
        return float(self._population_mean_spend(tuple(self._check_fitted())))

    @checks_time_unit
    @by_covariate_group
    def expected_spend(self, rfm: pd.DataFrame, unvalued: str = "raise") -> pd.Series:
        """Expected spend per transaction given each customer's history (calibration data).

        A compromise between the population mean and the customer's own mean spend, weighted
        by the customer's number of repeat purchases (the model's class docstring gives its
        formula). Customers without repeats get the population mean.

        Parameters
        ----------
        rfm : frequency and monetary_value per customer (and covariate columns, if any).
        unvalued : what to do with customers whose repeat purchases were all of value 0 (the
            models have no zero spend): ``"raise"`` (default) a DataValidationError naming one,
            or ``"population"``: treat them as customers without spend information (the
            population mean), as scoring jobs and backtests do.
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
        pandas.Series named ``expected_spend``, indexed like ``rfm``.
        """
        self._check_fitted()
        self._check_time_unit(rfm)
        x, z = self._spend_history(rfm, unvalued)
        values = self._expected_spend(tuple(self._check_fitted()), x, z)
        return pd.Series(values, index=rfm.index, name="expected_spend")

    # hooks: see the class docstring
    def _expected_spend(self, params, x, z):  # pragma: no cover - abstract
        raise NotImplementedError

    def _population_mean_spend(self, params):  # pragma: no cover - abstract
        raise NotImplementedError

    def _spend_moments(self, params, x, z):  # pragma: no cover - abstract
        raise NotImplementedError

    def _draw_spends(self, params, x, z, counts, rng):  # pragma: no cover - abstract
        raise NotImplementedError


# --- the statistics ----------------------------------------------------------------------------
def _covariates(rfm: pd.DataFrame, adjust_for: Any) -> tuple[np.ndarray, tuple[str, ...]]:
    if adjust_for is None:
        return np.zeros((len(rfm), 0)), ()
    if isinstance(adjust_for, pd.DataFrame):
        if len(adjust_for) != len(rfm):
            raise ClvlabError(f"adjust_for must have one row per row of the RFM table "
                              f"({len(rfm)}), got {len(adjust_for)}")
        names = tuple(str(c) for c in adjust_for.columns)
        values = adjust_for.to_numpy(np.float64)
    elif isinstance(adjust_for, (list, tuple)) and all(isinstance(c, str) for c in adjust_for):
        missing = [c for c in adjust_for if c not in rfm.columns]
        if missing:
            raise ClvlabError(f"adjust_for names columns {missing} that the RFM table lacks "
                              f"(columns: {list(rfm.columns)})")
        try:
            values = rfm[list(adjust_for)].to_numpy(np.float64)
        except (TypeError, ValueError):
            raise ClvlabError(f"adjust_for columns {list(adjust_for)} must be numeric; encode "
                              "text columns first (a model's spend covariates are)") from None
        names = tuple(adjust_for)
    else:
        values = np.asarray(adjust_for, dtype=np.float64)
        values = values[:, None] if values.ndim == 1 else values
        names = tuple(f"covariate {i}" for i in range(values.shape[1] if values.ndim == 2 else 0))
    if values.ndim != 2 or values.shape[0] != len(rfm) or not np.all(np.isfinite(values)):
        raise ClvlabError(f"adjust_for must have one finite row per row of the RFM table "
                          f"({len(rfm)}), got shape {values.shape}")
    return values, names


def _ranks(values: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Mid-ranks with frequency weights (a row of weight w is w tied customers): scipy's
    average ranks when every weight is 1."""
    unique, inverse = np.unique(values, return_inverse=True)
    total = np.bincount(inverse, weights=w)
    below = np.cumsum(total) - total
    return (below + (total + 1) / 2)[inverse]


def _residuals(values: np.ndarray, w: np.ndarray, design: np.ndarray) -> np.ndarray:
    """``values`` less their weighted least-squares fit on ``design`` (its first column 1);
    exactly 0 where the design explains them up to round-off (no spread left to correlate)."""
    root = np.sqrt(w)
    coefficients, *_ = np.linalg.lstsq(design * root[:, None], values * root, rcond=None)
    residuals = values - design @ coefficients
    if float(w @ (residuals * residuals)) <= 1e-20 * float(w @ (values * values)):
        return np.zeros_like(residuals)
    return residuals


def _correlation(a: np.ndarray, b: np.ndarray, w: np.ndarray) -> float:
    denominator = math.sqrt(float(w @ (a * a)) * float(w @ (b * b)))
    return float(w @ (a * b)) / denominator if denominator > 0 else float("nan")


def _robust_correlation(x, z, w, design, df) -> tuple[float, float, float]:
    """Pearson's (partial) r, its HC3 standard error and the p-value of r = 0. With x and z
    residualised on the design (Frisch-Waugh), the slope b of z on x, its residuals e and each
    customer's leverage h = h_design + x_r^2 / Sxx give Var(b) = sum w x_r^2 e^2 / (1 - h)^2 /
    Sxx^2; r = b sqrt(Sxx / Szz), so se(r) = se(b) sqrt(Sxx / Szz)."""
    x_r, z_r = _residuals(x, w, design), _residuals(z, w, design)
    sxx, szz = float(w @ (x_r * x_r)), float(w @ (z_r * z_r))
    if not (sxx > 0 and szz > 0):
        return float("nan"), float("nan"), float("nan")
    slope = float(w @ (x_r * z_r)) / sxx
    e = z_r - slope * x_r
    inverse = np.linalg.pinv((design * w[:, None]).T @ design)
    leverage = np.einsum("ij,jk,ik->i", design, inverse, design) + x_r * x_r / sxx
    # a row of weight w is w customers with the same leverage; h -> 1 only for a lone outlier
    variance = float(w @ (x_r * x_r * e * e / np.maximum(1 - leverage, 1e-12) ** 2)) / sxx ** 2
    r = slope * math.sqrt(sxx / szz)
    se = math.sqrt(variance * sxx / szz)
    if variance > 0:
        p_value = float(2 * special.stdtr(df, -(abs(slope) / math.sqrt(variance))))
    else:  # z exactly linear in x
        p_value = 0.0 if slope != 0 else 1.0
    return r, se, p_value


def _fisher_interval(r: float, se_z: float, quantile: float) -> tuple[float, float]:
    """tanh(atanh(r) -/+ quantile se_z): an interval that stays inside (-1, 1)."""
    centre = math.atanh(max(min(r, 1 - 1e-15), -1 + 1e-15))
    return (math.tanh(centre - quantile * se_z), math.tanh(centre + quantile * se_z))
