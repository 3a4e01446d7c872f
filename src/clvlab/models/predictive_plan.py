"""The work behind ``PurchaseDistribution``'s methods: a model (or its parameter draws), a table
and a horizon, checked; the customers' states and PMF streams, a chunk of customers at a time.

Memory is bounded by the chunk: a chunk holds ``UNITS_PER_CHUNK`` units (customers x parameter
draws) of its family's stream (BG/NBD a dozen arrays of units, Pareto/NBD about 33 nodes a unit,
BG/BB t + 1 opportunities a unit).
"""

from __future__ import annotations

from typing import Any, Iterator

import numpy as np
import pandas as pd

from clvlab.core.errors import ClvlabError
from clvlab.core.numbers import numbers
from clvlab.models.predictive_kernels import MixtureColumns, model_family, pmf_columns
from clvlab.models.predictive_moments import alive_moments

__all__ = ["MAX_COUNT", "UNITS_PER_CHUNK", "PurchasePlan", "pmf_until_tail", "cdf_of",
           "quantiles_of", "moments_of", "horizon_argument", "whole_numbers", "quantile_levels",
           "models_at"]

#: a stream of PMF columns that reaches this count without an answer is an error (a horizon
#: far too long for the parameters), not a hang
MAX_COUNT = 1_000_000

#: units (customers x parameter draws) whose PMF columns are computed together
UNITS_PER_CHUNK = {"beta-geometric": 500_000, "pareto": 16_384, "bg-bb": 4_000_000}
#: ... and whose moments are (Pareto/NBD's take 64 quadrature nodes a unit)
MOMENT_UNITS_PER_CHUNK = 65_536


class PurchasePlan:
    """A model (or its parameter draws), a table and a horizon, checked; the customers'
    states and PMF streams, a chunk of rows at a time."""

    def __init__(self, model, rfm: pd.DataFrame, t: Any, parameter_draws):
        if not isinstance(rfm, pd.DataFrame):
            raise ClvlabError(f"rfm must be a DataFrame of customers, got {type(rfm).__name__}")
        self.family = model_family(model)
        self.model, self.rfm, self.n = model, rfm, len(rfm)
        self.t = horizon_argument(t, self.family, self.n)
        self.models = models_at(model, parameter_draws)
        self.n_draws = len(self.models)
        if self.n == 0:
            model._purchase_state(rfm)  # checks the columns of an empty table

    def chunks(self, units: int | None = None, draws: int | None = None) -> Iterator[slice]:
        """Slices of rows, each of at most ``units`` customers x draws (``draws``: the
        simulation draws a customer gets, when more than the parameter draws)."""
        if units is None:
            units = UNITS_PER_CHUNK[self.family]
            if self.family == "bg-bb":
                units //= int(np.max(self.t)) + 1
        per = max(1, units // max(draws or self.n_draws, self.n_draws))
        for start in range(0, self.n, per):
            yield slice(start, min(self.n, start + per))

    def state(self, rows: slice):
        """(alive, params) of units: customers of ``rows`` x draws, customer by customer."""
        chunk = self.rfm.iloc[rows]
        frames = [m._purchase_state(chunk).to_numpy() for m in self.models]
        stacked = np.stack(frames, axis=1).reshape(-1, frames[0].shape[1])  # (m * draws, 1 + k)
        return stacked[:, 0], [stacked[:, j] for j in range(1, stacked.shape[1])]

    def horizon(self, rows: slice):
        """The horizon of each unit of ``rows`` (a float when one for all)."""
        if np.ndim(self.t) == 0:
            return self.t
        return np.repeat(self.t[rows], self.n_draws)

    def columns(self, rows: slice) -> MixtureColumns:
        """The stream of the mixture's PMF columns of the customers of ``rows``."""
        alive, params = self.state(rows)
        return MixtureColumns(pmf_columns(self.family, alive, params, self.horizon(rows)),
                              self.n_draws)


def pmf_until_tail(columns: MixtureColumns, max_n: int | None, tail: float) -> np.ndarray:
    """Columns 0..N of a stream (units x N + 1): N = max_n, or the first count at which every
    unit's remaining mass is below ``tail``."""
    values, total = [], 0.0
    while True:
        values.append(columns.column())
        total = total + values[-1]
        n = len(values) - 1
        if max_n is not None and n >= max_n:
            break
        if tail > 0 and (np.size(total) == 0 or np.max(1.0 - total) < tail):
            break
        if n >= MAX_COUNT:
            raise ClvlabError(f"the purchase distribution still has more than tail={tail:g} "
                              f"beyond {MAX_COUNT:,} purchases: pass max_n, or a shorter horizon")
    return np.column_stack(values)


def cdf_of(plan: PurchasePlan, counts: np.ndarray) -> np.ndarray:
    """P(X <= n_i) for each customer i (``counts`` one n or one per customer)."""
    out = np.zeros(plan.n)
    counts = np.broadcast_to(counts, (plan.n,))
    for rows in plan.chunks():
        columns = plan.columns(rows)
        mine = np.asarray(counts[rows])
        positions = np.arange(rows.start, rows.stop)
        total = np.zeros(positions.size)
        k = 0
        while positions.size:
            total += columns.column()
            now = mine == k
            out[positions[now]] = total[now]
            done = mine <= k
            k += 1
            if worth_compacting(done):
                keep = ~done
                columns.keep(keep)
                positions, mine, total = positions[keep], mine[keep], total[keep]
    return np.minimum(out, 1.0)


def quantiles_of(plan: PurchasePlan, levels: np.ndarray) -> np.ndarray:
    """The smallest n with P(X <= n) >= level, customers x levels (int64)."""
    out = np.full((plan.n, levels.size), -1, dtype=np.int64)
    for rows in plan.chunks():
        columns = plan.columns(rows)
        positions = np.arange(rows.start, rows.stop)
        found = out[rows].copy()
        total = np.zeros(positions.size)
        k = 0
        while positions.size:
            total += columns.column()
            crossed = (found < 0) & (total[:, None] >= levels[None, :])
            found[crossed] = k
            done = (found >= 0).all(axis=1)
            k += 1
            if worth_compacting(done):
                out[positions[done]] = found[done]
                keep = ~done
                columns.keep(keep)
                positions, found, total = positions[keep], found[keep], total[keep]
            if k > MAX_COUNT and positions.size:
                raise ClvlabError(f"a quantile lies beyond {MAX_COUNT:,} purchases: the horizon "
                                  "is too long for these parameters")
    return out


def worth_compacting(done: np.ndarray) -> bool:
    """Drop finished customers from a stream once they are a quarter of it (or all): copying
    the stream's arrays at every step that finishes a few costs more than carrying them."""
    finished = int(np.count_nonzero(done))
    return finished > 0 and (finished == done.size or finished >= 0.25 * done.size)


def moments_of(plan: PurchasePlan, factorial: bool):
    """(E[X], E[X(X-1)]) per customer, mixed over the parameter draws (E[X(X-1)] is 0 unless
    ``factorial``)."""
    mean = np.zeros(plan.n)
    second = np.zeros(plan.n)
    expected = getattr(type(plan.model), "_new_expected", None)
    for rows in plan.chunks(units=MOMENT_UNITS_PER_CHUNK):
        alive, params = plan.state(rows)
        t = plan.horizon(rows)
        if factorial or plan.family == "bg-bb":
            m1, m2 = alive_moments(plan.family, params, t, expected)
        else:
            m1, m2 = expected(tuple(params), t), 0.0
        draws = plan.n_draws
        mean[rows] = (alive * m1).reshape(-1, draws).mean(axis=1)
        second[rows] = (alive * m2 * np.ones_like(alive)).reshape(-1, draws).mean(axis=1)
    return mean, second


# --- arguments --------------------------------------------------------------------------------
def horizon_argument(t: Any, family: str, n: int):
    discrete = family == "bg-bb"
    meaning = ("the number of future opportunities, e.g. 5" if discrete else
               "the horizon, in the model's time units, e.g. 52 for a year in weeks")
    values = np.asarray(numbers(t, "t", meaning), dtype=np.float64)
    if values.ndim > 1 or (values.ndim == 1 and values.shape[0] != n):
        raise ClvlabError(f"t must be one horizon or one per customer ({n}), got shape {values.shape}")
    if not np.all(np.isfinite(values)) or np.any(values <= 0):
        raise ClvlabError(f"the horizon t must be finite and > 0 ({meaning}), got {t!r}")
    if discrete and (np.any(values < 1) or np.any(values != np.floor(values))):
        raise ClvlabError(f"the number of opportunities t must be a whole number >= 1, got {t!r}")
    return float(values) if values.ndim == 0 else values


def whole_numbers(n: Any, name: str, rows: int) -> np.ndarray:
    values = np.asarray(numbers(n, name, "a count of purchases, e.g. 2"), dtype=np.float64)
    if values.ndim > 1 or (values.ndim == 1 and values.shape[0] != rows):
        raise ClvlabError(f"{name} must be one count or one per customer ({rows}), got shape "
                          f"{values.shape}")
    if not np.all(np.isfinite(values)) or np.any(values < 0) or np.any(values != np.floor(values)):
        raise ClvlabError(f"{name} must be whole numbers >= 0, e.g. 2, got {n!r}")
    if np.any(values > MAX_COUNT):
        raise ClvlabError(f"{name} must be at most {MAX_COUNT:,}, got {n!r}")
    return values.astype(np.int64)


def quantile_levels(q: Any) -> np.ndarray:
    values = np.atleast_1d(np.asarray(numbers(q, "q", "quantile levels, e.g. (0.05, 0.5, 0.95)"),
                                      dtype=np.float64))
    if values.ndim != 1 or values.size == 0:
        raise ClvlabError(f"q must be one level or a list of them, e.g. (0.05, 0.5, 0.95), got {q!r}")
    if not np.all((values > 0) & (values <= 1 - 1e-9)):
        raise ClvlabError(f"every quantile level q must be in (0, 1 - 1e-9], e.g. 0.95, got {q!r}")
    return values


def models_at(model, parameter_draws) -> list:
    """[model] for the estimate, or the model at each parameter draw (covariates kept)."""
    model._check_fitted()
    if parameter_draws is None:
        return [model]
    names = list(model.params_.index)
    try:
        draws = np.asarray(parameter_draws, dtype=np.float64)
    except (TypeError, ValueError):
        draws = np.full((0, 0), np.nan)
    if draws.ndim != 2 or draws.shape[0] < 1 or draws.shape[1] != len(names):
        raise ClvlabError(
            f"parameter_draws must be an array of n_draws x {len(names)} values in params_'s "
            f"order {names} (e.g. clvlab.bayes.parameter_draws(model, 200)), got shape "
            f"{np.shape(parameter_draws)}")
    if not np.all(np.isfinite(draws)):
        row = int(np.flatnonzero(~np.all(np.isfinite(draws), axis=1))[0])
        raise ClvlabError(f"parameter_draws must be finite; draw {row} is {draws[row].tolist()}")
    return [model.at_params(draw) for draw in draws]
