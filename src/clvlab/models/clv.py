"""Customer lifetime value from a transaction model and a spend model."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from scipy import special

from clvlab.core.errors import ClvlabError
from clvlab.models.customer_params import customer_parameters, row_model
from clvlab.models.pareto_nbd import ParetoNBD
from clvlab.core.numbers import number
from clvlab.models.table_units import checked, table_in_model_unit
from clvlab.data.tables import accepts_tables

__all__ = ["customer_lifetime_value", "check_rates", "check_model_kinds"]


@accepts_tables(keyed=("rfm",))
def customer_lifetime_value(transaction_model, spend_model, rfm: pd.DataFrame,
                            horizon: float | None, discount_rate: float, margin: float = 1.0, *,
                            period: float = 1.0, method: str = "discrete",
                            time_unit: str | None = None, unvalued: str = "raise",
                            check_durations: bool = True, covariate_paths: Any = None) -> pd.Series:
    """Discounted expected value of each customer's future purchases.

    This is the mean; ``clvlab.value_distribution`` gives the distribution of the same value
    (quantiles, with the purchase process's and the spend's randomness).

    Models with covariates value each customer at their own parameters: ``rfm`` then holds
    the covariate columns of both models too. A transaction model fitted with time-varying
    covariates needs ``covariate_paths`` reaching the horizon (``clvlab.covariate_paths``); with
    ``method="continuous"`` that is DECT, the discounted expected transactions along the path
    (Bachmann, Meierer & Naef 2021), over a finite horizon.

    Parameters
    ----------
    transaction_model : BetaGeo, ParetoNBD or another transaction model
        Fitted.
    spend_model : GammaGamma or LogNormalSpend
        A fitted spend model (any model of kind "spend" in ``clvlab.models.registry``); its
        conditional expected spend values each purchase.
    rfm : pandas.DataFrame
        Calibration summary (frequency, recency, T, monetary_value) in the model's time unit.
    horizon : float or None
        Length of the future window in the model's time unit (``None`` with
        ``method="continuous"``: the whole lifetime).
    discount_rate : float
        Rate per discounting period (e.g. 0.01 a month), in [0, 1).
    margin : float, default 1.0
        Share of spend that is profit, in (0, 1].
    period : float, default 1.0
        Length of a discounting period in the model's time unit.
    method : {"discrete", "continuous"}, default "discrete"
        ``"discrete"``: sum over periods of the expected purchases in each period
        (from the conditional expectation), discounted by (1 + rate)^-k, the last period cut at
        the horizon. ``"continuous"`` (Pareto/NBD only): discounted expected residual
        transactions (DERT; Fader, Hardie & Lee 2005) with continuous rate
        delta = log(1 + rate) / period, over the horizon or, with ``horizon=None``, the lifetime.
    time_unit : str, optional
        The unit of the table's durations, of ``horizon`` and of ``period`` when the
        table does not record it (``rfm.attrs``, as ``rfm_summary`` and ``read_rfm`` record
        it); it must equal the model's (an error, never a silent rescale). A table without a
        unit is refused unless it is given.
    unvalued : {"raise", "population"}, default "raise"
        Customers whose repeat purchases were all of value 0: ``"raise"`` or
        ``"population"`` (see :meth:`GammaGamma.expected_spend`).
    check_durations : bool, default True
        Refuse durations that look like another unit than the model's; False skips that
        check (see ``clvlab.models.table_units``).
    covariate_paths : CovariatePaths, optional
        Each customer's time-varying covariates reaching the horizon, for a transaction model
        fitted along paths (``clvlab.covariate_paths``).

    Returns
    -------
    pandas.Series
        ``clv`` on ``rfm``'s index: margin x expected spend x discounted expected purchases.

    Raises
    ------
    ClvlabError
        Where the models are of the wrong kinds (or swapped), a rate, margin, period, horizon
        or method is invalid, ``method="continuous"`` comes without a ParetoNBD, or the table's
        time unit is not the model's.
    DataValidationError
        Where the table breaks an RFM rule (``unvalued="raise"``: a repeat customer of spend
        0).
    """
    check_model_kinds(transaction_model, spend_model)
    if horizon is not None:
        horizon = number(horizon, "horizon", "of the model's time units")
    period = number(period, "period", "of the model's time units")
    check_rates(discount_rate, margin)
    if not (np.isfinite(period) and period > 0):
        raise ClvlabError(f"period must be > 0, got {period!r}")
    if method not in ("discrete", "continuous"):
        raise ClvlabError(f"method {method!r} is not supported; use 'discrete' or 'continuous'")
    if method == "continuous" and not isinstance(transaction_model, ParetoNBD):
        raise ClvlabError("method='continuous' (DERT) needs a ParetoNBD transaction model")
    if method == "discrete" and (horizon is None or not (np.isfinite(horizon) and horizon > 0)):
        raise ClvlabError(f"horizon must be > 0 with method='discrete', got {horizon!r}")
    rfm = table_in_model_unit(transaction_model, rfm, time_unit, check_durations=check_durations)
    with checked():  # one check for the many calls below
        spend = spend_model.expected_spend(rfm, unvalued=unvalued).to_numpy()
        if method == "discrete":
            transactions = _discrete_discounted(transaction_model, rfm, horizon, discount_rate,
                                                period, covariate_paths)
        else:
            delta = math.log1p(discount_rate) / period
            along = getattr(getattr(transaction_model, "covariates_", None), "time_varying", ())
            transactions = (_dect(transaction_model, rfm, delta, horizon, covariate_paths) if along
                            else dert(transaction_model, rfm, delta, horizon))
    return pd.Series(margin * spend * transactions, index=rfm.index, name="clv")


def check_model_kinds(transaction_model: Any, spend_model: Any) -> None:
    """A transaction model first and a spend model second, or an error that says which is
    which (swapped, they failed with ``'ParetoNBD' object has no attribute 'expected_spend'``)."""
    from clvlab.models.registry import check_kind  # the registry imports every model

    check_kind(transaction_model, "transaction", "transaction_model")
    check_kind(spend_model, "spend", "spend_model")


def check_rates(discount_rate: Any, margin: Any) -> None:
    """A discount rate per time unit in [0, 1) and a margin in (0, 1], or an error that says
    what was probably meant: ``discount_rate=8`` meant 8 % (it gave CLV 45 for 57,293) and
    ``margin=30`` meant 30 %."""
    for name, value in (("discount_rate", discount_rate), ("margin", margin)):
        if not np.isfinite(number(value, name, "a fraction")):  # text refused by the one rule
            raise ClvlabError(f"{name} must be a finite number, got {value!r}")
    if discount_rate < 0:
        raise ClvlabError(f"discount_rate must be >= 0 (a rate per time unit), got {discount_rate!r}")
    if discount_rate >= 1:
        raise ClvlabError(
            f"discount_rate={discount_rate!r} is a rate per time unit, so it must be below 1 (a "
            f"fraction, not a percentage); did you mean {discount_rate / 100:g}? An annual rate "
            "of 8 % is about 0.0015 a week (1.08 ** (1 / 52) - 1) or 0.0064 a month")
    if not 0 < margin <= 1:
        hint = f"; did you mean {margin / 100:g}?" if 1 < margin <= 100 else ""
        raise ClvlabError(f"margin={margin!r} is the share of spend that is profit, so it must be "
                          f"in (0, 1] (a fraction, not a percentage){hint}")


def _discrete_discounted(model, rfm, horizon, rate, period, paths=None) -> np.ndarray:
    n_periods = int(math.ceil(horizon / period - 1e-12))
    edges = np.minimum(np.arange(1, n_periods + 1) * period, horizon)
    along = {} if paths is None else {"covariate_paths": paths}
    if hasattr(model, "expected_purchases_by_horizon"):  # P(alive) once, every edge at once
        cumulative = model.expected_purchases_by_horizon(rfm, edges, **along).to_numpy()
    else:
        cumulative = np.column_stack([model.expected_purchases(rfm, edge, **along).to_numpy()
                                      for edge in edges])
    in_period = np.diff(cumulative, axis=1, prepend=0.0)
    return in_period @ (1.0 + rate) ** -np.arange(1.0, len(edges) + 1)


def _dect(model, rfm, delta: float, horizon, paths) -> np.ndarray:
    """Discounted expected transactions along each customer's covariate path (a Pareto/NBD
    fitted with time-varying covariates, ``clvlab.models.tv_pareto_predict``)."""
    from clvlab.models.time_varying_predict import PathPredictor

    if horizon is None:
        raise ClvlabError("method='continuous' along covariate paths needs a finite horizon: the "
                          "paths end (give horizon=, at most the paths' reach)")
    predictor = PathPredictor(model, rfm, paths)
    h = predictor.check_reach(horizon)
    return predictor.pnbd("pnbd_tv_dect", h, float(delta))


def dert(model: ParetoNBD, rfm: pd.DataFrame, delta: float, horizon: float | None = None) -> np.ndarray:
    """Discounted expected residual transactions of a Pareto/NBD customer.

    While alive, purchases arrive at the posterior mean rate (r+x)/(alpha+T) and survival to
    T + t is ((beta+T)/(beta+T+t))^s, so DERT = P(alive) (r+x)/(alpha+T) * int_0^H e^(-delta t)
    ((beta+T)/(beta+T+t))^s dt. Over the lifetime the integral is (beta+T) U(1, 2-s, delta (beta+T))
    (Tricomi's confluent hypergeometric function); over a finite horizon it is evaluated by
    64-point Gauss-Legendre quadrature. A model with covariates gives each customer the value
    at their own parameters (``rfm`` holds its covariate columns).
    """
    if not (np.isfinite(delta) and delta >= 0):
        raise ClvlabError(f"delta must be >= 0, got {delta!r}")
    if hasattr(model, "covariates_"):  # each customer at their own parameters, in one pass
        model = row_model(model, customer_parameters(model, rfm))
    r, alpha, s, beta = model._check_fitted()
    x, t_x, T = model._arrays(rfm)
    rate = (r + x) / (alpha + T)
    scale = beta + T
    if horizon is None:
        if delta == 0 and np.any(s <= 1):
            raise ClvlabError("undiscounted lifetime transactions are infinite when s <= 1")
        if delta == 0:
            integral = scale / (s - 1)
        else:
            integral = scale * special.hyperu(1.0, 2.0 - s, delta * scale)
    else:
        nodes, weights = np.polynomial.legendre.leggauss(64)
        t = (nodes[None, :] + 1) * horizon / 2
        values = np.exp(-delta * t - np.reshape(s, (-1, 1)) * np.log1p(t / scale[:, None]))
        integral = values @ weights * horizon / 2
    return model._p_alive(x, t_x, T) * rate * integral
