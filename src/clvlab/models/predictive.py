"""The predictive distribution of a customer's future purchases (process and parameter noise).

A count is not its mean: a customer expected to make 1.2 purchases makes 0, 1, 2 or more.
These methods give the distribution of the number of purchases in (T, T + t] (BG/BB: at the
next t opportunities) given each customer's history, with the parameters at their estimate or
mixed over parameter draws:

- ``purchase_pmf``, ``purchase_cdf``, ``purchase_quantiles``, ``prediction_interval``,
  ``purchase_moments``: exact, from the recursions of :mod:`clvlab.models.predictive_kernels`;
- ``draw_future_purchases``: simulated purchase times (:mod:`clvlab.models.predictive_draws`).

Each customer's *state* (P(alive) and the posterior parameters of an alive customer) comes
from ``_purchase_state``, which runs ``by_covariate_group``: with covariates every customer is
at their own parameters. Parameter draws are mixed outside it (each draw's model made by
``at_params``, covariate coefficients included), which is why the public methods are not
themselves wrapped by ``by_covariate_group``; they are marked as computed customer by customer.

Every method takes ``parameter_draws`` (n_draws x ``len(params_)``, in ``params_``'s order, as
``clvlab.bayes.parameter_draws(model, n_draws, seed)`` returns): the distribution is then the
mixture over the draws (the PMF averaged over ``model.at_params(draw)``), which widens the
intervals by the parameters' uncertainty.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pandas as pd

from clvlab.core.errors import ClvlabError, shown
from clvlab.core.numbers import numbers
from clvlab.models.customer_params import along_paths, by_covariate_group
from clvlab.models.predictive_draws import CHUNK_UNITS, FuturePurchases, simulate_units
from clvlab.models.predictive_kernels import customer_state
from clvlab.models.predictive_plan import (MAX_COUNT, PurchasePlan, cdf_of, moments_of,
                                           pmf_until_tail, quantile_levels, quantiles_of,
                                           whole_numbers)
from clvlab.models.table_units import checks_time_unit

__all__ = ["PurchaseDistribution", "FuturePurchases", "MAX_COUNT"]


def _each_customer(method):
    """Mark a prediction computed from each customer's own row at their own parameters (the
    state comes from ``_purchase_state``, which runs ``by_covariate_group``); along covariate
    paths it runs through ``time_varying_predict`` (``along_paths``)."""
    wrapper = along_paths(method)
    wrapper.by_covariate_group = True
    return wrapper


class PurchaseDistribution:
    """Mixin: the distribution of purchases in (T, T + t] given each customer's history."""

    @by_covariate_group
    def _purchase_state(self, rfm: pd.DataFrame) -> pd.DataFrame:
        """``p_alive`` (alive at T; BG/BB: at the last opportunity) and the posterior
        parameters of an alive customer (a new customer's, in ``param_names``), per row."""
        x, t_x, T = self._arrays(rfm)
        alive, params = customer_state(self, x, t_x, T)
        frame = pd.DataFrame({"p_alive": alive, **dict(zip(self.param_names, params))},
                             index=rfm.index)
        values = frame.to_numpy()
        # P(alive) from exp(log) may pass 1 by a rounding error
        bad = ~np.all(np.isfinite(values), axis=1) | (np.abs(values[:, 0] - 0.5) > 0.5 + 1e-9)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            own = np.broadcast_to(np.asarray(self._check_fitted(), dtype=np.float64).T,
                                  (len(rfm), len(self.param_names)))[row]
            raise ClvlabError(
                f"{type(self).__name__} cannot compute the purchase distribution of customer "
                f"{shown(rfm.index[row])} ({dict(rfm.iloc[row])}) at parameters "
                f"{dict(zip(self.param_names, np.round(own, 6)))}: P(alive) is not a "
                "probability or the posterior is not finite; parameters this extreme mean the data do not identify the "
                "model (refit with penalty > 0)")
        frame["p_alive"] = np.clip(values[:, 0], 0.0, 1.0)
        return frame

    # --- the exact distribution -----------------------------------------------------------
    @checks_time_unit
    @_each_customer
    def purchase_pmf(self, rfm: pd.DataFrame, t: Any, max_n: int | None = None,
                     tail: float = 1e-8, parameter_draws: np.ndarray | None = None) -> pd.DataFrame:
        """P(X = n) for n = 0..N, X the purchases in (T, T + t] given each customer's history.

        N is the smallest count at which every customer's remaining mass P(X > N) is below
        ``tail``, capped by ``max_n``. Computed exactly (no simulation) by recursions over n,
        vectorised over customers: P(alive) PMF_new(n | posterior) + (1 - P(alive)) [n = 0].

        Parameters
        ----------
        rfm : the customers (``frequency``, ``recency``, ``T``; BG/BB: ``periods``).
        t : the horizon in the model's time unit (BG/BB: whole opportunities), one for all or
            one per customer.
        max_n : the largest count to return (None: as far as ``tail`` needs).
        tail : the mass allowed beyond N, >= 1e-12 without ``max_n`` (double precision cannot
            resolve less); 0 with ``max_n`` returns exactly max_n + 1 columns.
        parameter_draws : n_draws x ``len(params_)`` (``params_``'s order), or None for the
            estimate; with draws the PMF is averaged over ``at_params(draw)``.
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
        DataFrame, one row per customer (rfm's index), integer columns 0..N (named
        ``purchases``). ``df.attrs["tail_mass"]`` is the largest mass beyond N over the
        customers (each customer's own is 1 minus the row's sum).

        Raises
        ------
        ClvlabError : a bad horizon, max_n, tail or parameter_draws, or a distribution that
            needs more than ``MAX_COUNT`` columns (pass max_n).

        References
        ----------
        Fader, Hardie & Lee (2005), "Deriving the conditional PMF of the BG/NBD model";
        Fader & Hardie (2006), "Deriving the conditional PMF of the Pareto/NBD model";
        Fader, Hardie & Shang (2010), "Customer-base analysis in a discrete-time noncontractual
        setting", Marketing Science 29(6). See :mod:`clvlab.models.predictive_kernels`.
        """
        if max_n is not None and not (isinstance(max_n, (int, np.integer)) and max_n >= 0):
            raise ClvlabError(f"max_n must be a whole number >= 0 or None, got {max_n!r}")
        tail = float(numbers(tail, "tail", "the mass allowed beyond the last count, e.g. 1e-8"))
        if not (0 <= tail < 1) or (max_n is None and tail < 1e-12):
            raise ClvlabError(f"tail must be in [1e-12, 1) (0 only with max_n, e.g. max_n=20, "
                              f"tail=0), got {tail!r}")
        plan = PurchasePlan(self, rfm, t, parameter_draws)
        blocks, width = [], 0
        for rows in plan.chunks():
            block = pmf_until_tail(plan.columns(rows), max_n, tail)
            blocks.append((rows, block))
            width = max(width, block.shape[1])
        width = max(width, 1)
        values = np.empty((plan.n, width))
        for rows, block in blocks:
            if block.shape[1] < width:  # another chunk needed more columns: recompute to width
                block = pmf_until_tail(plan.columns(rows), width - 1, 0.0)
            values[rows] = block
        frame = pd.DataFrame(values, index=rfm.index,
                             columns=pd.RangeIndex(width, name="purchases"))
        beyond = np.clip(1.0 - values.sum(axis=1), 0.0, 1.0)
        frame.attrs["tail_mass"] = float(beyond.max(initial=0.0))
        return frame

    @checks_time_unit
    @_each_customer
    def purchase_cdf(self, rfm: pd.DataFrame, n: Any, t: Any,
                     parameter_draws: np.ndarray | None = None) -> pd.Series:
        """P(X <= n) for each customer, X the purchases in (T, T + t] given the history.

        Parameters
        ----------
        rfm, t, parameter_draws : as for ``purchase_pmf``.
        n : a whole number >= 0, or one per customer.
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
        Series on rfm's index, named ``P(X<=n)`` (``purchase_cdf`` for one n per customer).
        """
        plan = PurchasePlan(self, rfm, t, parameter_draws)
        counts = whole_numbers(n, "n", plan.n)
        name = f"P(X<={int(counts)})" if counts.ndim == 0 else "purchase_cdf"
        return pd.Series(cdf_of(plan, counts), index=rfm.index, name=name)

    @checks_time_unit
    @_each_customer
    def purchase_quantiles(self, rfm: pd.DataFrame, t: Any, q: Sequence[float] = (0.05, 0.5, 0.95),
                           parameter_draws: np.ndarray | None = None) -> pd.DataFrame:
        """The smallest n with P(X <= n) >= q, for each level q and customer.

        Parameters
        ----------
        rfm, t, parameter_draws : as for ``purchase_pmf``.
        q : levels in (0, 1 - 1e-9].
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
        DataFrame of int64 on rfm's index, columns ``purchases_q<q>`` (``purchases_q0.05``...).
        """
        levels = quantile_levels(q)
        plan = PurchasePlan(self, rfm, t, parameter_draws)
        out = quantiles_of(plan, levels)
        return pd.DataFrame(out, index=rfm.index, columns=[f"purchases_q{v:g}" for v in levels])

    @checks_time_unit
    @_each_customer
    def prediction_interval(self, rfm: pd.DataFrame, t: Any, level: float = 0.9,
                            parameter_draws: np.ndarray | None = None) -> pd.DataFrame:
        """A central prediction interval for each customer's purchases in (T, T + t].

        ``lower`` and ``upper`` are the (1 - level)/2 and (1 + level)/2 quantiles. The count is
        discrete, so P(lower <= X <= upper) >= level (usually more: the mass at the ends
        counts whole); with ``parameter_draws`` the interval also carries the parameters'
        uncertainty. This is an interval for what the customer will do, unlike
        ``posterior_predict``'s interval of the expected value.

        Parameters
        ----------
        rfm, t, parameter_draws : as for ``purchase_pmf``.
        level : the coverage aimed at, in (0, 1).
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
        DataFrame on rfm's index: ``lower``, ``upper`` (int64) and ``expected_purchases``
        (the mean of the same distribution).
        """
        level = float(numbers(level, "level", "the coverage, e.g. 0.9"))
        if not 0 < level < 1 or level > 1 - 2e-9:
            raise ClvlabError(f"level must be in (0, 1), e.g. 0.9, got {level!r}")
        plan = PurchasePlan(self, rfm, t, parameter_draws)
        bounds = quantiles_of(plan, np.array([(1 - level) / 2, (1 + level) / 2]))
        mean, _ = moments_of(plan, factorial=False)
        return pd.DataFrame({"lower": bounds[:, 0], "upper": bounds[:, 1],
                             "expected_purchases": mean}, index=rfm.index)

    @checks_time_unit
    @_each_customer
    def purchase_moments(self, rfm: pd.DataFrame, t: Any,
                         parameter_draws: np.ndarray | None = None) -> pd.DataFrame:
        """Mean and variance of each customer's purchases in (T, T + t].

        From E[X] and the factorial moment E[X(X-1)] of an alive customer
        (``predictive_kernels.alive_moments``: closed forms for Pareto/NBD and BG/BB, a
        positive series for BG/NBD and MBG/NBD), times P(alive); with draws, both averaged
        over them. Variance = E[X(X-1)] + E[X] - E[X]^2.

        Parameters
        ----------
        rfm, t, parameter_draws : as for ``purchase_pmf``.
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
        DataFrame on rfm's index: ``mean``, ``variance``.
        """
        plan = PurchasePlan(self, rfm, t, parameter_draws)
        mean, factorial = moments_of(plan, factorial=True)
        return pd.DataFrame({"mean": mean, "variance": np.maximum(factorial + mean - mean**2, 0.0)},
                            index=rfm.index)

    # --- simulation -------------------------------------------------------------------------
    @checks_time_unit
    @_each_customer
    def draw_future_purchases(self, rfm: pd.DataFrame, t: Any, n_draws: int = 1, seed: Any = None,
                              parameter_draws: np.ndarray | None = None) -> FuturePurchases:
        """Simulated purchase times in (T, T + t] for each customer given their history.

        Each customer is alive with P(alive); an alive one draws its latent rates from the
        posterior of an alive customer and runs the model's process forward (see
        :mod:`clvlab.models.predictive_draws`). With ``parameter_draws``, simulation draw j
        uses parameter draw j mod len(parameter_draws) (pass n_draws = len(parameter_draws)
        for one each). Memory: customers are simulated ``CHUNK_UNITS`` customer-draws at a
        time; the result holds 24 bytes per simulated purchase.

        Parameters
        ----------
        rfm, parameter_draws : as for ``purchase_pmf``.
        t : one horizon for all customers.
        n_draws : simulations per customer.
        seed : anything ``numpy.random.default_rng`` takes; the same seed gives the same draws.
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
        FuturePurchases (``counts()``: customers x draws; ``to_frame()``: one row a purchase).
        """
        if not (isinstance(n_draws, (int, np.integer)) and n_draws >= 1):
            raise ClvlabError(f"n_draws must be a whole number >= 1, got {n_draws!r}")
        plan = PurchasePlan(self, rfm, t, parameter_draws)
        if np.ndim(plan.t):
            raise ClvlabError("draw_future_purchases takes one horizon t for all customers")
        rng = np.random.default_rng(seed)
        draw_of = np.arange(n_draws) % plan.n_draws
        customers, draws, times = [], [], []
        for rows in plan.chunks(units=CHUNK_UNITS, draws=n_draws):
            alive, params = plan.state(rows)
            m = rows.stop - rows.start
            pick = (np.arange(m)[:, None] * plan.n_draws + draw_of[None, :]).ravel()
            unit, time = simulate_units(plan.family, alive[pick], [p[pick] for p in params],
                                        plan.t, rng)
            customers.append(rows.start + unit // n_draws)
            draws.append(unit % n_draws)
            times.append(time)
        join = lambda parts, kind: np.concatenate(parts).astype(kind) if parts else np.zeros(0, kind)  # noqa: E731
        return FuturePurchases(customer=join(customers, np.int64), draw=join(draws, np.int64),
                               time=join(times, np.float64), n_customers=plan.n,
                               n_draws=int(n_draws), horizon=float(plan.t),
                               customer_ids=rfm.index)
