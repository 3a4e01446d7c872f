"""The distribution of each customer's future spend and lifetime value, not only its mean.

A customer's total spend over (T, T + horizon] is a compound: N future purchases (the
transaction model) each of a value drawn from the spend model's posterior predictive given the
customer's history. :func:`value_distribution` simulates it: future purchase times from
``transaction_model.draw_future_purchases`` (``clvlab.models.predictive``), one latent spend per
customer and draw from the spend model's posterior (shared by that draw's purchases, which is
what correlates them), each purchase's value given it, and each purchase discounted by the
convention of :func:`clvlab.models.clv.customer_lifetime_value`, so that the mean of the
simulated CLV is that function's value up to Monte Carlo error. :func:`spend_moments` gives the
exact mean and variance of the undiscounted total.

The spend draws are the spend models' own (``_draw_spends``, ``_spend_moments``: see
``clvlab.models.spend_checks.SpendModel``): this module does not know which model it values.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
import pandas as pd

from clvlab.core.errors import ClvlabError
from clvlab.core.numbers import number
from clvlab.inference.uncertainty import parameter_draws as draw_parameters
from clvlab.models.clv import check_model_kinds, check_rates
from clvlab.models.table_units import checked, table_in_model_unit
from clvlab.data.tables import accepts_tables

__all__ = ["value_distribution", "spend_moments", "CHUNK_VALUES"]

#: (customer, draw) pairs simulated at once: the memory of a chunk is a few times this many
#: floats (purchases, their spends and discounts, and the totals), whatever the table's size
CHUNK_VALUES = 1_000_000


@accepts_tables(keyed=("rfm",))
def value_distribution(transaction_model, spend_model, rfm: pd.DataFrame, horizon: float, *,
                       discount_rate: float = 0.0, margin: float = 1.0,
                       quantiles: Sequence[float] = (0.05, 0.5, 0.95), n_draws: int = 200,
                       seed: Any = 0, parameter_draws: int | None = None, period: float = 1.0,
                       method: str = "discrete", time_unit: str | None = None,
                       unvalued: str = "raise", check_durations: bool = True,
                       chunk_size: int | None = None) -> pd.DataFrame:
    """Per customer: mean, sd and quantiles of total spend and of CLV over a horizon.

    Parameters
    ----------
    transaction_model : a fitted transaction model with ``draw_future_purchases``.
    spend_model : a fitted spend model (GammaGamma, LogNormalSpend).
    rfm : calibration summary (frequency, recency, T, monetary_value and any covariate columns
        of either model) in the transaction model's time unit.
    horizon : length of the window (T, T + horizon], in the model's time unit.
    discount_rate, margin, period, method : as in
        :func:`~clvlab.models.clv.customer_lifetime_value`: ``"discrete"`` discounts a purchase
        in period k (((k-1) period, k period], the last one cut at the horizon) by
        (1 + rate)^-k; ``"continuous"`` a purchase at time t by (1 + rate)^(-t / period).
    quantiles : levels of the quantiles reported, each in (0, 1).
    n_draws : simulated futures per customer (the Monte Carlo error of a mean is its sd over
        sqrt(n_draws)).
    seed : an integer, None (fresh entropy), a ``numpy.random.SeedSequence`` or a
        ``Generator`` (which is advanced); the result is reproducible for the same integer seed
        and chunk size.
    parameter_draws : None: the models' fitted parameters (process noise only). An integer k:
        k draws of each model's parameters (posterior draws after a Bayesian fit, the
        asymptotic normal after maximum likelihood; ``clvlab.bayes.parameter_draws``), the
        ``n_draws`` futures split evenly among them: the predictive distribution with
        parameter uncertainty.
    time_unit, check_durations, unvalued : as in ``customer_lifetime_value``.
    chunk_size : customers simulated at once (default: :data:`CHUNK_VALUES` / n_draws).

    Returns
    -------
    pandas.DataFrame indexed like ``rfm``: ``spend_mean``, ``spend_sd`` and ``spend_<q>%``
    (undiscounted total spend), then ``clv_mean``, ``clv_sd``, ``clv_<q>%`` (margin x
    discounted spend).

    Raises
    ------
    ClvlabError
        On a model of the wrong kind, a transaction model without ``draw_future_purchases``,
        or bad settings (each named).
    """
    check_model_kinds(transaction_model, spend_model)
    from clvlab.models.time_varying import refuse_along_paths

    refuse_along_paths(transaction_model, "value_distribution")
    horizon = _positive(horizon, "horizon", "of the model's time units")
    period = _positive(period, "period", "of the model's time units")
    check_rates(discount_rate, margin)
    if method not in ("discrete", "continuous"):
        raise ClvlabError(f"method {method!r} is not supported; use 'discrete' or 'continuous'")
    levels = _levels(quantiles)
    n_draws = _count(n_draws, "n_draws", 2)
    k = 1 if parameter_draws is None else _count(parameter_draws, "parameter_draws", 1)
    if k > n_draws:
        raise ClvlabError(f"parameter_draws={k} exceeds n_draws={n_draws}: each parameter draw "
                          "needs at least one simulated future")
    if not callable(getattr(transaction_model, "draw_future_purchases", None)):
        raise ClvlabError(f"{type(transaction_model).__name__} cannot simulate future purchases "
                          "(it has no draw_future_purchases)")
    rfm = table_in_model_unit(transaction_model, rfm, time_unit, check_durations=check_durations)
    spend_model._check_time_unit(rfm)
    root = _seed_sequence(seed)
    pairs = _model_pairs(transaction_model, spend_model, parameter_draws, root)
    sizes = [len(part) for part in np.array_split(np.arange(n_draws), k)]
    discount = _discounting(horizon, discount_rate, period, method)
    chunk = max(1, CHUNK_VALUES // n_draws) if chunk_size is None else _count(chunk_size, "chunk_size", 1)
    n = len(rfm)
    stats = np.empty((n, 2, 2 + len(levels)))
    with checked():  # the table was checked once above
        for number_of_chunk, start in enumerate(range(0, n, chunk)):
            part = rfm.iloc[start:start + chunk]
            spend, value = _chunk_totals(pairs, part, horizon, sizes, discount, unvalued,
                                         root, number_of_chunk)
            for j, totals in enumerate((spend, margin * value)):
                stats[start:start + len(part), j, 0] = totals.mean(axis=1)
                stats[start:start + len(part), j, 1] = totals.std(axis=1, ddof=1)
                stats[start:start + len(part), j, 2:] = np.quantile(totals, levels, axis=1).T
    names = ["mean", "sd", *(f"{100 * q:g}%" for q in levels)]
    columns = [f"{what}_{name}" for what in ("spend", "clv") for name in names]
    out = pd.DataFrame(stats.reshape(n, -1), index=rfm.index, columns=columns)
    out.attrs["clvlab"] = {"n_draws": n_draws, "parameter_draws": parameter_draws,
                           "horizon": horizon, "method": method}
    return out


@accepts_tables(keyed=("rfm",))
def spend_moments(transaction_model, spend_model, rfm: pd.DataFrame, t: float, *,
                  time_unit: str | None = None, unvalued: str = "raise",
                  check_durations: bool = True) -> pd.DataFrame:
    """Exact mean and variance of each customer's undiscounted total spend over (T, T + t].

    With N the number of purchases and z, z' the values of two of them given the history
    (independent of N, and correlated with each other through the customer's latent spend):
    E[S] = E[N] E[z], E[S^2] = E[N] E[z^2] + E[N (N - 1)] E[z z'], so
    Var[S] = E[S^2] - E[S]^2. E[N] and Var[N] come from ``transaction_model.purchase_moments``,
    the spend moments from the spend model's posterior (Gamma-Gamma's second moments are
    infinite where p x + q <= 2: the variance is then inf).

    Parameters
    ----------
    transaction_model, spend_model, rfm : as in :func:`value_distribution`.
    t : the window's length in the model's time unit.
    time_unit, unvalued, check_durations : as in ``customer_lifetime_value``.

    Returns
    -------
    pandas.DataFrame with columns ``mean`` and ``variance``, indexed like ``rfm``.

    Raises
    ------
    ClvlabError
        On a model of the wrong kind, a transaction model without ``purchase_moments``, or a
        bad ``t``.
    """
    check_model_kinds(transaction_model, spend_model)
    t = _positive(t, "t", "the window's length in the model's time units")
    if not callable(getattr(transaction_model, "purchase_moments", None)):
        raise ClvlabError(f"{type(transaction_model).__name__} has no purchase_moments")
    rfm = table_in_model_unit(transaction_model, rfm, time_unit, check_durations=check_durations)
    spend_model._check_time_unit(rfm)
    with checked():
        purchases = transaction_model.purchase_moments(rfm, t)
        params, x, z = spend_model._predictive_inputs(rfm, unvalued)
    mean_n = purchases["mean"].to_numpy(np.float64)
    pairs_n = purchases["variance"].to_numpy(np.float64) + mean_n * mean_n - mean_n  # E[N(N-1)]
    first, second, cross = spend_model._spend_moments(params, x, z)
    with np.errstate(invalid="ignore"):  # 0 x inf: no purchases (or no pairs) add nothing
        square = (np.where(mean_n > 0, mean_n * second, 0.0)
                  + np.where(pairs_n > 0, pairs_n * cross, 0.0))
    mean = mean_n * first
    variance = np.maximum(square - mean * mean, 0.0)  # round-off only: a variance is >= 0
    return pd.DataFrame({"mean": mean, "variance": variance}, index=rfm.index)


# --- the simulation --------------------------------------------------------------------------
def _model_pairs(transaction_model, spend_model, k: int | None, root: np.random.SeedSequence):
    """[(transaction model, spend model)]: the fitted ones, or k draws of each's parameters."""
    if k is None:
        return [(transaction_model, spend_model)]
    seeds = root.spawn(2)
    tm = draw_parameters(transaction_model, k, seed=np.random.default_rng(seeds[0]))
    sm = draw_parameters(spend_model, k, seed=np.random.default_rng(seeds[1]))
    if len(tm) < k or len(sm) < k:
        raise ClvlabError(f"parameter_draws={k} but a model's posterior has only "
                          f"{min(len(tm), len(sm))} draws")
    return [(transaction_model.at_params(a), spend_model.at_params(b)) for a, b in zip(tm, sm)]


def _chunk_totals(pairs, part: pd.DataFrame, horizon, sizes, discount, unvalued, root,
                  number_of_chunk: int) -> tuple[np.ndarray, np.ndarray]:
    """(customers x draws) totals of spend and of discounted spend for one chunk."""
    m = len(part)
    spend_columns, value_columns = [], []
    for j, ((transactions, spends), d) in enumerate(zip(pairs, sizes)):
        stream = np.random.SeedSequence(root.entropy, spawn_key=(*root.spawn_key, 1 + number_of_chunk, j))
        purchase_seed, spend_seed = stream.spawn(2)
        future = transactions.draw_future_purchases(
            part, horizon, d, seed=int(purchase_seed.generate_state(1, np.uint64)[0]))
        customer = np.asarray(future.customer, dtype=np.int64)
        draw = np.asarray(future.draw, dtype=np.int64)
        time = np.asarray(future.time, dtype=np.float64)
        _check_future(customer, draw, time, m, d, horizon)
        key = customer * d + draw
        order = np.argsort(key, kind="stable")
        counts = np.bincount(key, minlength=m * d).reshape(m, d)
        params, x, z = spends._predictive_inputs(part, unvalued)
        values = spends._draw_spends(params, x, z, counts, np.random.default_rng(spend_seed))
        ordered = key[order]
        spend_columns.append(np.bincount(ordered, weights=values, minlength=m * d).reshape(m, d))
        value_columns.append(np.bincount(ordered, weights=values * discount(time[order]),
                                         minlength=m * d).reshape(m, d))
    return np.hstack(spend_columns), np.hstack(value_columns)


def _check_future(customer, draw, time, m: int, d: int, horizon: float) -> None:
    """The simulated purchases are where the interface says (a wrong one would be silently
    mis-summed): customers 0..m-1, draws 0..d-1, times in (0, horizon]."""
    if customer.size and not (customer.min() >= 0 and customer.max() < m and draw.min() >= 0
                              and draw.max() < d and time.min() > 0
                              and time.max() <= horizon * (1 + 1e-12)):
        raise ClvlabError(
            f"draw_future_purchases returned purchases outside customers 0..{m - 1}, draws "
            f"0..{d - 1} or times (0, {horizon:g}]: customers {customer.min()}..{customer.max()}, "
            f"draws {draw.min()}..{draw.max()}, times {time.min():g}..{time.max():g}")


def _discounting(horizon: float, rate: float, period: float, method: str):
    """times since T -> discount factors, by customer_lifetime_value's conventions."""
    if method == "continuous":
        delta = math.log1p(rate) / period
        return lambda t: np.exp(-delta * t)
    n_periods = int(math.ceil(horizon / period - 1e-12))
    return lambda t: (1.0 + rate) ** -np.clip(np.ceil(t / period - 1e-12), 1, n_periods)


# --- arguments ---------------------------------------------------------------------------------
def _seed_sequence(seed: Any) -> np.random.SeedSequence:
    if isinstance(seed, np.random.SeedSequence):
        return seed
    if isinstance(seed, np.random.Generator):
        return np.random.SeedSequence(int(seed.integers(0, 2 ** 63)))
    try:
        return np.random.SeedSequence(seed)
    except (TypeError, ValueError):
        raise ClvlabError(f"seed must be a whole number >= 0, None, a SeedSequence or a "
                          f"Generator, got {seed!r}") from None


def _positive(value: Any, name: str, meaning: str) -> float:
    value = number(value, name, meaning)
    if not (np.isfinite(value) and value > 0):
        raise ClvlabError(f"{name} must be finite and > 0 ({meaning}), got {value!r}")
    return value


def _count(value: Any, name: str, least: int) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < least:
        raise ClvlabError(f"{name} must be a whole number >= {least}, got {value!r}")
    return int(value)


def _levels(quantiles: Sequence[float]) -> np.ndarray:
    try:
        levels = np.asarray([number(q, "quantiles", "a level in (0, 1)") for q in quantiles])
    except TypeError:
        raise ClvlabError(f"quantiles must be a list of levels in (0, 1), e.g. (0.05, 0.5, 0.95), "
                          f"got {quantiles!r}") from None
    if levels.size == 0 or np.any(~(levels > 0) | ~(levels < 1)) or len(set(levels)) != levels.size:
        raise ClvlabError(f"quantiles must be distinct levels in (0, 1), e.g. (0.05, 0.5, 0.95), "
                          f"got {list(quantiles)!r}")
    return levels
