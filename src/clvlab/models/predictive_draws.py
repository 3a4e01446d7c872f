"""Simulated future purchases of each customer given their history (BTYDplus'
``DrawFutureTransactions``), vectorised over customers and draws.

A unit is one customer at one simulation draw. Each unit is alive with P(alive); an alive unit
draws its latent rates from the posterior of an alive customer and runs the model's process
forward from T:

- BG/NBD, MBG/NBD: lambda ~ Gamma(r + x, alpha + T), p ~ Beta(a, b + x [+ 1]); purchases form a
  Poisson process at rate lambda and the customer drops out after each with probability p, so
  the count is min(N, D) with N ~ Poisson(lambda t) and D ~ Geometric(p) on {1, 2, ...}; the
  times are the first min(N, D) of N uniform times on (0, t] (the K-th of them is
  t Beta(K, N - K + 1), the K - 1 before it uniform below it).
- Pareto/NBD: given alive at T, lambda ~ Gamma(r + x, alpha + T) and mu ~ Gamma(s, beta + T)
  independently; the remaining lifetime is Exponential(mu) (memoryless), and N ~ Poisson(lambda
  min(lifetime, t)) purchases fall uniformly in (0, min(lifetime, t)].
- BG/BB: p ~ Beta(alpha + x, beta + n - x), theta ~ Beta(gamma, delta + n); the customer survives
  L ~ Geometric(theta) - 1 of the next opportunities and buys at each one alive with
  probability p. Times are opportunity numbers 1..t.

Memory: units are taken ``CHUNK_UNITS`` at a time (a few dozen bytes each while drawn, BG/BB
t booleans each), and the result holds 24 bytes per simulated purchase (customer, draw, time).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["FuturePurchases", "simulate_units", "CHUNK_UNITS"]

#: units (customers x draws) simulated at once
CHUNK_UNITS = 1_000_000


@dataclass(frozen=True, eq=False)
class FuturePurchases:
    """Simulated purchases in (T, T + horizon]: one entry per purchase, flat arrays sorted by
    customer, draw and time.

    Attributes
    ----------
    customer : int64 array, the customer's row position in the table that was scored
    draw : int64 array, the simulation draw (0 .. n_draws - 1)
    time : float64 array, time since T, in (0, horizon] (BG/BB: the opportunity, 1 .. t)
    n_customers, n_draws : the shape of the simulation
    horizon : the horizon t
    customer_ids : the table's index (labels for ``to_frame``)
    """

    customer: np.ndarray
    draw: np.ndarray
    time: np.ndarray
    n_customers: int
    n_draws: int
    horizon: float
    customer_ids: pd.Index

    def counts(self) -> np.ndarray:
        """Purchases per customer and draw, an int64 array (n_customers, n_draws)."""
        flat = np.bincount(self.customer * self.n_draws + self.draw,
                           minlength=self.n_customers * self.n_draws)
        return flat.astype(np.int64).reshape(self.n_customers, self.n_draws)

    def to_frame(self) -> pd.DataFrame:
        """One row per purchase: the customer's id (the table's index label), ``draw`` and
        ``time``."""
        name = self.customer_ids.name or "customer_id"
        return pd.DataFrame({name: self.customer_ids[self.customer], "draw": self.draw,
                             "time": self.time})

    def __repr__(self) -> str:
        return (f"FuturePurchases({self.time.size:,} purchases of {self.n_customers:,} customers "
                f"x {self.n_draws:,} draws over {self.horizon:g})")


def simulate_units(family: str, alive, params, t: float, rng: np.random.Generator):
    """(unit, time) of every simulated purchase of units with state (alive, params) over t,
    sorted by unit then time; ``params`` are the posterior parameters (arrays of units)."""
    alive = np.asarray(alive, dtype=np.float64)
    size = alive.size
    is_alive = rng.random(size) < alive
    if family == "beta-geometric":
        unit, time = _beta_geometric(rng, is_alive, *params, t)
    elif family == "pareto":
        unit, time = _pareto(rng, is_alive, *params, t)
    else:
        unit, time = _bg_bb(rng, is_alive, *params, t)
    order = np.lexsort((time, unit))
    return unit[order], time[order]


def _beta_geometric(rng, is_alive, r, alpha, a, b, t):
    lam = rng.gamma(r, 1.0 / alpha)
    p = rng.beta(a, b)
    events = rng.poisson(lam * t)
    # purchases until dropout, on {1, 2, ...}; p near 0 means a very long life
    until_dropout = rng.geometric(np.clip(p, 1e-300, 1.0))
    count = np.where(is_alive, np.minimum(events, until_dropout), 0)
    units = np.flatnonzero(count)
    k, n = count[units], events[units]
    last = t * rng.beta(k, n - k + 1)                       # the k-th of n uniform times
    unit = np.repeat(units, k)
    ends = np.cumsum(k) - 1
    time = rng.random(unit.size) * np.repeat(last, k)       # k - 1 of them below the k-th
    time[ends] = last
    return unit, time


def _pareto(rng, is_alive, r, alpha, s, beta, t):
    lam = rng.gamma(r, 1.0 / alpha)
    mu = rng.gamma(s, 1.0 / beta)
    active = np.minimum(rng.exponential(1.0 / np.maximum(mu, 1e-300)), t)
    count = np.where(is_alive, rng.poisson(lam * active), 0)
    units = np.flatnonzero(count)
    unit = np.repeat(units, count[units])
    time = rng.random(unit.size) * np.repeat(active[units], count[units])
    return unit, time


def _bg_bb(rng, is_alive, alpha, beta, gamma, delta, t):
    p = rng.beta(alpha, beta)
    theta = rng.beta(gamma, delta)
    survived = np.where(is_alive, rng.geometric(np.clip(theta, 1e-300, 1.0)) - 1, 0)
    units, times = [], []
    for opportunity in range(1, int(t) + 1):  # one pass per opportunity, over all units
        buys = np.flatnonzero((opportunity <= survived) & (rng.random(p.size) < p))
        units.append(buys)
        times.append(np.full(buys.size, float(opportunity)))
    return np.concatenate(units), np.concatenate(times)
