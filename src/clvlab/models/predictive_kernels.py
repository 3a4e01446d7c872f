"""The conditional distribution of purchases in (T, T + t], column by column, over arrays.

Every transaction model's prediction for a customer with history (x, t_x, T) is a mixture: with
probability 1 - P(alive) the customer is gone and buys nothing; with probability P(alive) the
future is a *new* customer's under the posterior parameters (the model's own prior with updated
parameters, ``_posterior``). So

    P(X = n | history) = P(alive) PMF_new(n | posterior) + (1 - P(alive)) [n = 0],

and everything here works on a *state*: P(alive) and the posterior parameters, one value per
unit (a customer, or a customer at one parameter draw), each an array that broadcasts.

The PMF is produced column by column (n = 0, 1, 2, ...) by recursions over n, vectorised over
units: a column costs O(units), so the PMF up to N costs O(units x N) and no column is summed
again. ``keep`` drops units that are done (a quantile found), so a stream costs the sum over
units of the counts each needs, not units x the largest.

- BG/NBD and MBG/NBD (Fader, Hardie & Lee 2005; their note "Deriving the conditional PMF of
  the BG/NBD model"): with N ~ NB(r, alpha) the Poisson-gamma count over t and
  w(n) = B(a, b+n)/B(a, b),
  PMF_new(n) = w(n) NB(n) + [n >= 1] B(a+1, b+n-1)/B(a, b) P(N >= n).
  NB(n) runs in log space (no underflow at any r + x), the Beta ratios by their one-step
  ratios, P(N >= n) by subtraction, re-anchored to the regularised incomplete beta function
  I_q(n, r) (exact, no cancellation) each time it has fallen by a factor of 100.
- Pareto/NBD (Fader & Hardie, "Deriving the conditional PMF of the Pareto/NBD model"):
  PMF_new(n) = S(t) NB(n | t) + int_0^t f(tau) NB(n | tau) dtau over the lifetime tau; with
  v = log1p(tau / c) the integral is taken by composite Gauss-Legendre, with more panels for
  customers whose purchase rate is concentrated (many purchases: NB(n | tau) is then a narrow
  peak in tau, which ``pareto_nbd._pareto_pmf``'s 64 nodes over the survival scale miss by up
  to 30 % at x = 3000). The PMF is then a mixture of NB distributions with fixed weights (33 for
  most customers), and each runs its own recursion
  NB(n+1 | tau) = NB(n | tau) (r+n)/(n+1) tau/(alpha+tau) (in log space for the rare units
  whose NB(0 | t) would underflow).
- BG/BB (Fader, Hardie & Shang 2010): the customer is alive at m of the next t opportunities
  with P(m) = B(gamma+1, delta+m)/B(gamma, delta) (m < t) or B(gamma, delta+t)/B(gamma, delta)
  (m = t), and buys at each with p ~ Beta(alpha, beta):
  PMF_new(k) = sum_m P(m) C(m, k) B(alpha+k, beta+m-k)/B(alpha, beta),
  the beta-binomial terms of every m advanced together from k to k + 1 (O(t) a column,
  O(t^2) for the whole PMF, t being the number of opportunities).

Public names here are for other modules (totals, value distributions, scoring):
:func:`model_family`, :func:`customer_state`, :func:`pmf_columns`, :func:`pmf_matrix`,
:func:`conditional_pmf_matrix`, :class:`MixtureColumns`; the moments are in
:mod:`clvlab.models.predictive_moments`.
"""

from __future__ import annotations

import math
import numpy as np
from scipy import special

from clvlab.core.errors import ClvlabError
from clvlab.models._special import log_beta_ratio

__all__ = ["FAMILIES", "model_family", "customer_state", "pmf_columns", "pmf_matrix",
           "conditional_pmf_matrix", "MixtureColumns"]

#: the processes with a conditional PMF here, by the parameters their models use
FAMILIES = {("r", "alpha", "a", "b"): "beta-geometric",      # BG/NBD, MBG/NBD
            ("r", "alpha", "s", "beta"): "pareto",            # Pareto/NBD
            ("alpha", "beta", "gamma", "delta"): "bg-bb"}     # BG/BB (discrete opportunities)

#: Gauss-Legendre panels of the lifetime integral (a panel of 32 nodes was as exact as one of
#: 64 on typical posteriors, 2e-14 against mpmath, at half the cost)
_PANEL_NODES, _PANEL_WEIGHTS = np.polynomial.legendre.leggauss(32)

#: P(N >= n) is carried by subtraction, and recomputed exactly (I_q(n, r)) once it has fallen
#: below this share of its last exact value: subtraction loses digits as the tail shrinks (its
#: relative error grows like 1/P(N >= n)), so the error stays below about 1e2 ulp of the NB terms
_SURVIVAL_REANCHOR = 1e-2

#: units whose NB(0 | t) is below exp(-this) run the Pareto/NBD recursion in log space
_LOG_SPACE_FROM = 600.0


def model_family(model) -> str:
    """Which conditional PMF ``model`` has: "beta-geometric" (BG/NBD, MBG/NBD), "pareto"
    (Pareto/NBD) or "bg-bb", from its parameter names (a class may name it in
    ``purchase_family``)."""
    family = getattr(model, "purchase_family", None) or FAMILIES.get(tuple(model.param_names))
    if family not in FAMILIES.values():
        raise ClvlabError(f"{type(model).__name__} has no predictive distribution of purchases "
                          f"(parameters {list(model.param_names)}); it exists for BG/NBD, "
                          "MBG/NBD, Pareto/NBD and BG/BB")
    return family


def customer_state(model, x, t_x, T) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
    """(P(alive), posterior parameters) of customers with histories (x, t_x, T), from the
    model's hooks; ``model._check_fitted()`` may return one value per customer (a row model).

    For BG/BB, (x, t_x, T) are (frequency, recency, periods) and P(alive) is alive at the
    last observed opportunity (not ``p_alive``, which is at the next one); its posterior is
    p ~ Beta(alpha + x, beta + n - x), theta ~ Beta(gamma, delta + n).
    """
    x, t_x, T = (np.asarray(v, dtype=np.float64) for v in (x, t_x, T))
    if model_family(model) == "bg-bb":
        alpha, beta, gamma, delta = model._check_fitted()
        alive = np.exp(model._log_alive_at_n(x, t_x, T))
        params = (alpha + x, beta + T - x, gamma + 0.0 * x, delta + T)
    else:
        alive = model._p_alive(x, t_x, T)
        params = model._posterior(x, t_x, T)
    shape = np.broadcast_shapes(np.shape(alive), *(np.shape(p) for p in params))
    alive = np.broadcast_to(np.asarray(alive, dtype=np.float64), shape)
    return alive, tuple(np.broadcast_to(np.asarray(p, dtype=np.float64), shape) for p in params)


# --- column recursions ----------------------------------------------------------------------
class _Columns:
    """One column of P(X = n) per call to ``column`` (n = 0, 1, ...) for every kept unit."""

    n: int

    def column(self) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def keep(self, mask: np.ndarray) -> None:  # pragma: no cover - abstract
        raise NotImplementedError


def _flat(*arrays) -> list[np.ndarray]:
    out = np.broadcast_arrays(*(np.asarray(a, dtype=np.float64) for a in arrays))
    return [np.array(a.ravel()) for a in out]


class _BetaGeometricColumns(_Columns):
    """BG/NBD's and MBG/NBD's PMF given (alive, r, alpha, a, b) of an alive customer."""

    def __init__(self, alive, r, alpha, a, b, t):
        self.alive, self.r, alpha, self.a, self.b, t = _flat(alive, r, alpha, a, b, t)
        self.q = t / (alpha + t)
        self.log_q = np.log(t) - np.log(alpha + t)
        self.log_nb = -self.r * np.log1p(t / alpha)        # log NB(0) = r log(alpha/(alpha+t))
        self.alive_weight = np.ones_like(self.r)           # B(a, b+n)/B(a, b)
        self.dead_weight = np.zeros_like(self.r)           # B(a+1, b+n-1)/B(a, b); none at n = 0
        self.survival = np.ones_like(self.r)               # P(N >= n)
        self.anchor = np.ones_like(self.r)                 # its last exact value
        self.n = 0

    def column(self) -> np.ndarray:
        n = self.n
        nb = np.exp(self.log_nb)
        out = self.alive * (self.alive_weight * nb + self.dead_weight * self.survival)
        if n == 0:
            out = out + (1.0 - self.alive)
        a, b = self.a, self.b
        self.dead_weight = self.alive_weight * a / (a + b + n)
        self.alive_weight = self.alive_weight * (b + n) / (a + b + n)
        survival = self.survival - nb
        stale = survival < _SURVIVAL_REANCHOR * self.anchor
        if stale.any():  # I_q(n + 1, r): no cancellation in the tail
            survival[stale] = special.betainc(n + 1.0, self.r[stale], self.q[stale])
            self.anchor = np.where(stale, survival, self.anchor)
        self.survival = survival
        self.log_nb = self.log_nb + (np.log(self.r + n) - math.log(n + 1.0) + self.log_q)
        self.n = n + 1
        return out

    def keep(self, mask: np.ndarray) -> None:
        for name in ("alive", "r", "a", "b", "q", "log_q", "log_nb", "alive_weight",
                     "dead_weight", "survival", "anchor"):
            setattr(self, name, getattr(self, name)[mask])


class _NegativeBinomialMixture:
    """sum_k W_k NB(n | r, q_k) per unit, one recursion per node k: in linear space, or in log
    space (``log_space``) for units whose first terms would underflow."""

    def __init__(self, r, q, weights, log_start, log_space: bool):
        self.r, self.weights, self.log_space = r, weights, log_space
        with np.errstate(divide="ignore"):
            self.step = np.log(q) if log_space else q
        self.values = log_start if log_space else np.exp(log_start)

    def value(self) -> np.ndarray:
        terms = np.exp(self.values) if self.log_space else self.values
        return np.einsum("ij,ij->i", terms, self.weights)

    def advance(self, n: int) -> None:
        ratio = (self.r + n) / (n + 1.0)
        if self.log_space:
            self.values += np.log(ratio)[:, None] + self.step
        else:
            self.values *= self.step
            self.values *= ratio[:, None]

    def keep(self, mask: np.ndarray) -> None:
        self.r, self.weights, self.step, self.values = (
            self.r[mask], self.weights[mask], self.step[mask], self.values[mask])


class _ParetoColumns(_Columns):
    """Pareto/NBD's PMF given (alive, r, alpha, s, beta) of an alive customer.

    The lifetime integral is taken over v = log1p(tau / c), c = min(alpha / r, beta): linear in
    tau below the scale of the first purchases (1 / E[lambda]) or of the lifetime density,
    logarithmic above, where NB(n | tau) has the same relative width sqrt(1/n + 1/r) at every
    n. That width shrinks as r = r + x grows, so a unit gets 2^j panels of 32 Gauss-Legendre
    nodes, about 2.5 nodes a width at the narrowest, and at least 16 nodes in all (1e-13 or
    better against mpmath where measured, up to r + x = 3000).
    """

    def __init__(self, alive, r, alpha, s, beta, t):
        self.alive, r, alpha, s, beta, t = _flat(alive, r, alpha, s, beta, t)
        scale = np.minimum(alpha / r, beta)
        span = np.log1p(t / scale)
        needed = 2.5 * span * np.sqrt(r + 1.0) + 16.0
        panels = 2 ** np.ceil(np.log2(np.maximum(needed / _PANEL_NODES.size, 1.0))).astype(np.int64)
        panels = np.minimum(panels, _MAX_PANELS)
        in_logs = r * np.log1p(t / alpha) > _LOG_SPACE_FROM
        self.parts = []
        for count in np.unique(panels):
            for logs in (False, True):
                m = np.flatnonzero((panels == count) & (in_logs == logs))
                if m.size:
                    tau, weights = _lifetime_nodes(s[m], beta[m], t[m], scale[m], span[m], int(count))
                    q = tau / (alpha[m, None] + tau)
                    log_start = -r[m, None] * np.log1p(tau / alpha[m, None])
                    self.parts.append((m, _NegativeBinomialMixture(r[m], q, weights, log_start, logs)))
        self.size = r.size
        self.n = 0

    def column(self) -> np.ndarray:
        new = np.empty(self.size)
        for positions, part in self.parts:
            new[positions] = part.value()
            part.advance(self.n)
        out = self.alive * new
        if self.n == 0:
            out = out + (1.0 - self.alive)
        self.n += 1
        return out

    def keep(self, mask: np.ndarray) -> None:
        new_position = np.cumsum(mask) - 1
        parts = []
        for positions, part in self.parts:
            kept = mask[positions]
            if kept.any():
                part.keep(kept)
                parts.append((new_position[positions[kept]], part))
        self.parts = parts
        self.alive = self.alive[mask]
        self.size = int(mask.sum())


#: at most this many panels of 32 nodes over the lifetime (r + x up to about 2.5 x 10^4 at
#: log1p(t / c) = 10)
_MAX_PANELS = 128


def _lifetime_nodes(s, beta, t, scale, span, panels: int):
    """Nodes tau (units x (1 + 64 panels)) and weights of P(X = n) = S(t) NB(n | t) +
    int_0^t f(tau) NB(n | tau) dtau: node 0 is tau = t with weight S(t) (alive through t), the
    others composite Gauss-Legendre (``panels`` x 32 nodes) over v = log1p(tau / scale) in
    [0, span], with weight
    f(tau) dtau/dv = s/beta (1 + tau/beta)^-(s+1) scale e^v."""
    width = span / panels
    starts = np.arange(panels)[None, :, None] * width[:, None, None]
    v = (starts + width[:, None, None] * (_PANEL_NODES + 1.0) / 2.0).reshape(len(s), -1)
    tau = np.minimum(scale[:, None] * np.expm1(v), t[:, None])
    log_density = (np.log(s / beta)[:, None] - (s[:, None] + 1.0) * np.log1p(tau / beta[:, None])
                   + np.log(scale)[:, None] + v)
    weights = np.exp(log_density) * (width[:, None] / 2.0) * np.tile(_PANEL_WEIGHTS, panels)[None, :]
    survival_t = np.exp(-s * np.log1p(t / beta))
    return np.column_stack([t, tau]), np.column_stack([survival_t, weights])


class _BetaBinomialColumns(_Columns):
    """BG/BB's PMF given (alive, alpha, beta, gamma, delta) of a customer alive at the last
    opportunity, over the next t opportunities (t whole)."""

    def __init__(self, alive, alpha, beta, gamma, delta, t):
        self.alive, self.alpha, self.beta, gamma, delta, t = _flat(alive, alpha, beta, gamma,
                                                                    delta, t)
        self.m = np.arange(int(t.max()) + 1, dtype=np.float64) if t.size else np.zeros(1)
        m = self.m[None, :]
        # alive at exactly m of the next t opportunities: died before opportunity m + 1 (m < t)
        # or alive through t
        log_alive_m = np.where(m < t[:, None], log_beta_ratio(gamma[:, None], delta[:, None], 1.0, m),
                               log_beta_ratio(gamma[:, None], delta[:, None], 0.0, m))
        log_alive_m = np.where(m <= t[:, None], log_alive_m, -np.inf)
        # beta-binomial P(0 purchases at m opportunities) = B(alpha, beta+m)/B(alpha, beta)
        self.log_terms = log_alive_m + log_beta_ratio(self.alpha[:, None], self.beta[:, None], 0.0, m)
        self.n = 0

    def column(self) -> np.ndarray:
        k = self.n
        new = np.exp(self.log_terms).sum(axis=1)
        out = self.alive * new
        if k == 0:
            out = out + (1.0 - self.alive)
        # C(m, k+1) B(alpha+k+1, beta+m-k-1) / (C(m, k) B(alpha+k, beta+m-k))
        #   = (m-k)/(k+1) (alpha+k)/(beta+m-k-1), for m >= k + 1
        m = self.m[None, :]
        more = m >= k + 1
        with np.errstate(divide="ignore", invalid="ignore"):
            step = (np.log(np.where(more, m - k, 1.0)) - math.log(k + 1.0)
                    + np.log(self.alpha + k)[:, None]
                    - np.log(np.where(more, self.beta[:, None] + m - k - 1.0, 1.0)))
        self.log_terms = np.where(more, self.log_terms + step, -np.inf)
        self.n = k + 1
        return out

    def keep(self, mask: np.ndarray) -> None:
        self.alive, self.alpha, self.beta, self.log_terms = (
            self.alive[mask], self.alpha[mask], self.beta[mask], self.log_terms[mask])


_KERNELS = {"beta-geometric": _BetaGeometricColumns, "pareto": _ParetoColumns,
            "bg-bb": _BetaBinomialColumns}


def pmf_columns(family: str, alive, params, t) -> _Columns:
    """A stream of P(X = n | history) columns for units of state (alive, params), horizon t
    (each broadcasts; flattened): ``column()`` gives n = 0, then 1, ...; ``keep(mask)`` drops
    units. Memory: a few arrays of units (x 65 for Pareto/NBD, x (t + 1) for BG/BB)."""
    return _KERNELS[family](alive, *params, t)


class MixtureColumns(_Columns):
    """Columns of the mixture over parameter draws: units are customers x draws, customer by
    customer (unit i * n_draws + d); each column is the mean over a customer's draws."""

    def __init__(self, columns: _Columns, n_draws: int):
        self.columns, self.n_draws = columns, n_draws

    @property
    def n(self) -> int:
        return self.columns.n

    def column(self) -> np.ndarray:
        values = self.columns.column()
        return values if self.n_draws == 1 else values.reshape(-1, self.n_draws).mean(axis=1)

    def keep(self, mask: np.ndarray) -> None:
        self.columns.keep(np.repeat(mask, self.n_draws) if self.n_draws > 1 else mask)


def pmf_matrix(columns: _Columns, n_max: int) -> np.ndarray:
    """The first n_max + 1 columns of a stream, as a (units, n_max + 1) array."""
    return np.column_stack([columns.column() for _ in range(n_max + 1)])


def conditional_pmf_matrix(model, x, t_x, T, t, n_max: int) -> np.ndarray:
    """P(X = n | history) for n = 0..n_max over (T, T + t] (BG/BB: the next t opportunities),
    a (customers, n_max + 1) array; the mass beyond n_max is 1 minus each row's sum.

    ``model`` is a fitted transaction model or BG/BB (a row model's per-customer parameters
    broadcast); x, t_x, T are the histories (for BG/BB frequency, recency, periods), t a
    horizon or one per customer. No validation: the array-level path for callers that checked
    their inputs."""
    alive, params = customer_state(model, x, t_x, T)
    return pmf_matrix(pmf_columns(model_family(model), alive, params, t), int(n_max))
