"""Per-customer moments and PMFs of future purchases and revenue, and the models at each
parameter draw: what ``clvlab.models.totals`` sums.

- ``purchase_moments``: each customer's mean and variance of purchases in (T, T + t], from the
  model's ``purchase_moments`` (``clvlab.models.predictive``).
- ``purchase_pmf``: each customer's PMF of those purchases, from the model's ``purchase_pmf``.
- ``revenue_given_purchases``: each customer's mean and variance of revenue in (T, T + t], a
  random sum of spends sharing the customer's latent spend, from the purchases' moments and
  the spend model's (as ``clvlab.models.value_distribution.spend_moments`` combines them, with
  the purchase moments computed once per distinct history rather than once per customer).
- ``models_at_draws``: the model(s) at each parameter draw (``clvlab.bayes.parameter_draws``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from clvlab.core.errors import ClvlabError
from clvlab.inference.bootstrap import BootstrapResult
from clvlab.inference.uncertainty import DRAW_METHODS, parameter_draws
from clvlab.models.customer_params import customer_parameters

__all__ = ["purchase_moments", "purchase_pmf", "revenue_moments", "revenue_given_purchases",
           "spend_history", "models_at_draws", "DEFAULT_DRAWS", "PMF_TAIL"]

#: parameter draws when ``parameter_draws`` is None or names a method
DEFAULT_DRAWS = 200
#: a PMF is kept up to the count where its tail is below this
PMF_TAIL = 1e-12


def purchase_moments(model, table: pd.DataFrame, t: float) -> tuple[np.ndarray, np.ndarray]:
    """(mean, variance) of each customer's purchases in (T, T + t], as float arrays: the
    model's ``purchase_moments`` (``clvlab.models.predictive``)."""
    _needs(model, "purchase_moments")
    out = model.purchase_moments(table, t)
    return out["mean"].to_numpy(np.float64), out["variance"].to_numpy(np.float64)


def purchase_pmf(model, table: pd.DataFrame, t: float) -> np.ndarray:
    """Each customer's PMF of purchases in (T, T + t] on 0, 1, ..., m - 1 (rows x m), m where
    every customer's remaining tail is below ``PMF_TAIL``: the model's ``purchase_pmf``."""
    _needs(model, "purchase_pmf")
    return model.purchase_pmf(table, t, tail=PMF_TAIL).to_numpy(np.float64)


def revenue_moments(transaction_model, spend_model, table: pd.DataFrame, t: float, *,
                    unvalued: str = "raise") -> tuple[np.ndarray, np.ndarray]:
    """(mean, variance) of each customer's revenue in (T, T + t]: ``purchase_moments`` and
    ``revenue_given_purchases`` on the same rows."""
    count_mean, count_variance = purchase_moments(transaction_model, table, t)
    return revenue_given_purchases(spend_model, table, count_mean, count_variance,
                                   unvalued=unvalued)


def revenue_given_purchases(spend_model, table: pd.DataFrame, count_mean: np.ndarray,
                            count_variance: np.ndarray, *, unvalued: str = "raise",
                            history: tuple[np.ndarray, np.ndarray] | None = None):
    """(mean, variance) of each customer's revenue from the mean and variance of their
    purchases (E[N], Var N) and the spend model's moments of a future purchase's value given
    the history (E[z], E[z^2], E[z z'], ``SpendModel._spend_moments``): E[R] = E[N] E[z],
    E[R^2] = E[N] E[z^2] + E[N (N - 1)] E[z z'], as
    ``clvlab.models.value_distribution.spend_moments`` combines them. Infinite where the spend
    model's second moments are (Gamma-Gamma, p x + q <= 2). ``history``: the rows' (x, z) from
    ``spend_history``, when the caller evaluates the same rows at many parameter draws (the
    table's checks then run once, not at every draw)."""
    x, z = spend_history(spend_model, table, unvalued) if history is None else history
    params = tuple(customer_parameters(spend_model, table).T)
    first, second, cross = spend_model._spend_moments(params, x, z)
    pairs = count_variance + count_mean * count_mean - count_mean  # E[N (N - 1)]
    with np.errstate(invalid="ignore"):  # 0 x inf: no purchases (or no pairs) add nothing
        square = (np.where(count_mean > 0, count_mean * second, 0.0)
                  + np.where(pairs > 0, pairs * cross, 0.0))
    mean = count_mean * first
    return mean, np.maximum(square - mean * mean, 0.0)


def spend_history(spend_model, table: pd.DataFrame, unvalued: str = "raise"):
    """Each row's (x, z): repeat purchases and their mean value (0 without), the table
    checked, ``unvalued`` as in ``expected_spend``; the same at every parameter draw."""
    spend_model._check_fitted()
    return spend_model._spend_history(table, unvalued)


def _needs(model, method: str) -> None:
    if not callable(getattr(model, method, None)):
        raise ClvlabError(f"totals need a transaction model with {method} (BG/NBD, MBG/NBD, "
                          f"Pareto/NBD, BG/BB); {type(model).__name__} has none")


def models_at_draws(models: list, parameter_draws_: Any, seed: Any) -> list[tuple]:
    """The models at each parameter draw, as tuples (one entry per model): ``[tuple(models)]``
    for no draws."""
    given = parameter_draws_
    if given is None or isinstance(given, str):
        method = "auto" if given is None else given
        if method not in DRAW_METHODS:
            raise ClvlabError(f"parameter_draws names an unknown method {given!r}; one of "
                              f"{list(DRAW_METHODS)}, a number of draws, or an array of them")
        try:
            draws = [parameter_draws(m, DEFAULT_DRAWS, seed, method) for m in models]
        except ClvlabError as error:
            raise ClvlabError(f"{error}. Or pass parameter_draws=0 for the totals at the "
                              "estimates (process noise only: the intervals then leave out "
                              "the parameters' uncertainty)") from None
    elif isinstance(given, (bool, np.bool_)):
        raise ClvlabError("parameter_draws takes a number of draws (0 for none), not True/False")
    elif isinstance(given, (int, np.integer)):
        if given < 0:
            raise ClvlabError(f"parameter_draws must be >= 0 draws, got {given}")
        if given == 0:
            return [tuple(models)]
        draws = [parameter_draws(m, int(given), seed) for m in models]
    else:
        pieces = list(given) if len(models) > 1 and isinstance(given, (list, tuple)) else [given]
        if len(pieces) != len(models):
            raise ClvlabError(f"parameter_draws must give draws for each of the {len(models)} "
                              "models: a pair (transaction draws, spend draws)")
        draws = [_as_draws(m, piece) for m, piece in zip(models, pieces)]
    n = min(len(d) for d in draws)
    return [tuple(m.at_params(d[i]) for m, d in zip(models, draws)) for i in range(n)]


def _as_draws(model, given: Any) -> np.ndarray:
    if isinstance(given, BootstrapResult):
        if list(given.names) != list(model.params_.index):
            raise ClvlabError(f"the BootstrapResult is of parameters {list(given.names)}, not "
                              f"this {type(model).__name__}'s {list(model.params_.index)}")
        given = given.draws
    try:
        draws = np.asarray(given, dtype=np.float64)
    except (TypeError, ValueError):
        raise ClvlabError("parameter_draws must be None, a number of draws, a method name, an "
                          "array (draws x parameters) or a BootstrapResult") from None
    k = len(model.params_)
    if draws.ndim != 2 or draws.shape[1] != k or len(draws) < 1:
        raise ClvlabError(f"parameter draws must be an array of shape (draws, {k}) in the order "
                          f"{list(model.params_.index)}, got shape {draws.shape}")
    if not np.all(np.isfinite(draws)):
        raise ClvlabError("parameter draws must all be finite")
    return draws


def _two_columns(values: Any, means: tuple[str, ...], variances: tuple[str, ...], what: str):
    """(mean, variance) arrays out of a DataFrame (named columns) or a pair."""
    if isinstance(values, pd.DataFrame):
        mean = next((values[c] for c in means if c in values.columns), None)
        variance = next((values[c] for c in variances if c in values.columns), None)
        if mean is None or variance is None:
            raise ClvlabError(f"{what} returned columns {list(values.columns)}; expected a mean "
                              f"({means}) and a variance ({variances})")
        return mean.to_numpy(np.float64), variance.to_numpy(np.float64)
    mean, variance = values
    return np.asarray(mean, dtype=np.float64), np.asarray(variance, dtype=np.float64)
