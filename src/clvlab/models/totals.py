"""Totals with intervals for any group of customers: next quarter's purchases or revenue of a
cohort, a segment, the whole base.

Given the parameters, customers are independent, so a group's total has exactly the sum of the
customers' means and the sum of their variances (per customer: ``purchase_moments``, and for
revenue the spend model's moments). Its distribution given the parameters is, for a group of at
most ``EXACT_MAX_CUSTOMERS`` customers, the exact convolution of the customers' PMFs (by FFT),
and above that the normal with that exact mean and variance (a sum of thousands of independent
bounded-variance counts); revenue's is the gamma with its exact mean and variance. Parameter
uncertainty comes on top: the total's mean and variance at each parameter draw, and the
interval from the mixture over the draws. It correlates every customer, so its share of the
variance grows with the group: negligible for a hundred customers, most of it for a million.

Memory stays bounded whatever the table: customers are compressed to distinct (history,
covariates, group) rows ``chunk_size`` at a time, then evaluated ``chunk_size`` distinct rows at
a time at each draw, accumulating sums per (draw, group); customers x draws never exist.
Purchase moments are computed once per distinct purchase history and draw; revenue, whose
spend histories are nearly all distinct, runs over the customers' rows a chunk at a time.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from clvlab.core.errors import ClvlabError
from clvlab.models import totals_moments
from clvlab.models.totals_moments import DEFAULT_DRAWS
from clvlab.models.totals_rows import (distinct_histories, distinct_rows, group_codes,
                                       history_index, row_weights)
from clvlab.models.totals_distribution import (convolve_pmfs, mixture_summary, pmf_quantiles,
                                               support_length)
from clvlab.models.table_units import checked, table_in_model_unit
from clvlab.models.transaction import check_horizon
from clvlab.data.tables import accepts_tables

__all__ = ["purchase_totals", "revenue_totals", "cumulative_purchase_fan",
           "EXACT_MAX_CUSTOMERS", "CHUNK_SIZE", "DEFAULT_DRAWS"]

#: a group of at most this many customers gets the exact distribution of its total given the
#: parameters (convolution of the customers' PMFs); a larger one the normal with the exact
#: mean and variance (its skewness is below 0.03 x a customer's by then)
EXACT_MAX_CUSTOMERS = 1_000
#: customers (then distinct rows) handled at once: bounds memory at any table size
CHUNK_SIZE = 200_000


@accepts_tables(keyed=("rfm",))
def purchase_totals(model, rfm: pd.DataFrame, t: float, *, by: Any = None, level: float = 0.9,
                    parameter_draws: Any = None, seed: Any = 0, weights: Any = None,
                    exact_max_customers: int = EXACT_MAX_CUSTOMERS, chunk_size: int = CHUNK_SIZE,
                    time_unit: str | None = None, check_durations: bool = True) -> pd.DataFrame:
    """Total purchases of each group of customers in (T, T + t], with intervals.

    Parameters
    ----------
    model : TransactionModel
        A fitted transaction model (BG/NBD, MBG/NBD, Pareto/NBD; with covariates too, each
        customer at their own parameters).
    rfm : pandas.DataFrame
        One row per customer (``frequency``, ``recency``, ``T`` and any covariate columns).
    t : float
        The horizon, in the model's time unit (13 for a quarter in weeks).
    by : str, array-like or None
        The groups: a column of ``rfm``, one label per row, or None (the whole table, "all").
    level : float
        The central interval's coverage, in (0, 1).
    parameter_draws : None, int, str, ndarray or BootstrapResult
        The parameter uncertainty: None takes ``DEFAULT_DRAWS`` draws by
        ``clvlab.bayes.parameter_draws(model, n, method="auto")`` (the posterior after a
        Bayesian fit, else the MLE's asymptotic normal); an int that many (0: none, the
        totals at the estimates with process noise only, which under-covers large groups);
        a method name ("posterior", "normal", "bootstrap") ``DEFAULT_DRAWS`` draws from it;
        an array (draws x parameters, ``params_`` order) or a ``BootstrapResult`` those.
    seed : int or numpy seed
        For the draws.
    weights : array-like, optional
        Customers per row, for a compressed table (whole numbers, as ``fit`` takes them);
        None: one customer a row.
    exact_max_customers : int
        Groups of at most this many customers get the exact convolution (0: none).
    chunk_size : int
        Customers, then distinct rows, handled at once.
    time_unit, check_durations
        As in every prediction: the table's unit when it records none, and whether its
        durations are checked against the fit's (once, before any draw).

    Returns
    -------
    pandas.DataFrame
        One row per group (sorted labels): ``customers``, ``expected`` (the mean total over
        the draws), ``process_sd`` (sqrt of the mean over draws of the variance given the
        parameters), ``parameter_sd`` (sd over draws of the expected total), ``total_sd``
        (sqrt of the sum of both squares: the mixture's sd), ``parameter_share`` (the
        parameters' share of the variance), ``lower <level>%`` and ``upper <level>%``, and
        ``distribution`` ("exact" or "normal", given the parameters).

    Raises
    ------
    ClvlabError
        On a bad ``by``, ``level``, ``t``, ``parameter_draws`` or chunk size, or a model with
        no source of parameter draws when ``parameter_draws`` asks for some.

    References
    ----------
    Fader, P. S., Hardie, B. G. S. & Lee, K. L. (2005). "Counting your customers" the easy
    way: An alternative to the Pareto/NBD model. Marketing Science 24(2), 275-284.
    """
    horizon = _scalar_horizon(t)
    result = _totals([model], rfm, [horizon], by=by, parameter_draws=parameter_draws, seed=seed,
                     exact_max_customers=exact_max_customers, chunk_size=chunk_size,
                     revenue=None, time_unit=time_unit, check_durations=check_durations,
                     weights=weights)
    return _frame(result, 0, [level])


@accepts_tables(keyed=("rfm",))
def revenue_totals(transaction_model, spend_model, rfm: pd.DataFrame, t: float, *,
                   by: Any = None, level: float = 0.9, parameter_draws: Any = None,
                   seed: Any = 0, unvalued: str = "raise", weights: Any = None,
                   exact_max_customers: int = EXACT_MAX_CUSTOMERS, chunk_size: int = CHUNK_SIZE,
                   time_unit: str | None = None, check_durations: bool = True) -> pd.DataFrame:
    """Total revenue of each group of customers in (T, T + t], with intervals.

    A customer's revenue is the sum of their spends per transaction over their purchases, the
    spends (Gamma-Gamma) independent of the purchases given the parameters, and sharing the
    customer's latent mean spend: its mean and variance per customer come from both models'
    moments (``clvlab.models.totals_moments.revenue_given_purchases``), and a group's from
    their sums. Given the parameters the total is taken as the gamma with that exact mean and
    variance, for every group: positive and skewed like a small group's revenue (which has no
    PMF to convolve: spend is continuous), and indistinguishable from the normal for a large
    one. The interval is from the mixture over the draws of both models (draw i of one
    paired with draw i of the other: their uncertainties are independent).

    Parameters
    ----------
    transaction_model, spend_model : fitted models
        A transaction model and a Gamma-Gamma spend model.
    rfm : pandas.DataFrame
        ``frequency``, ``recency``, ``T``, ``monetary_value`` (and covariate columns).
    t, by, level, seed, weights, chunk_size, time_unit, check_durations
        As in ``purchase_totals``.
    exact_max_customers : int
        Unused by revenue (kept so that both functions take the same options).
    parameter_draws : None, int, str, or a pair
        As in ``purchase_totals``, for both models; or a pair (transaction draws, spend
        draws) of arrays or ``BootstrapResult`` objects.
    unvalued : {"raise", "population"}
        Customers whose repeat purchases were all of value 0: an error, or valued at the
        population's spend (``GammaGamma.expected_spend``'s rule).

    Returns
    -------
    pandas.DataFrame
        As ``purchase_totals``, in currency; ``distribution`` is "gamma".

    Raises
    ------
    ClvlabError
        As ``purchase_totals``; and where spend variance is infinite (q <= 2 for customers
        without repeats) the sds and the interval are NaN, not numbers.

    References
    ----------
    Fader, P. S., Hardie, B. G. S. & Lee, K. L. (2005). RFM and CLV: Using iso-value curves
    for customer base analysis. Journal of Marketing Research 42(4), 415-430.
    """
    horizon = _scalar_horizon(t)
    if unvalued not in ("raise", "population"):
        raise ClvlabError(f"unvalued must be 'raise' or 'population', got {unvalued!r}")
    result = _totals([transaction_model, spend_model], rfm, [horizon], by=by,
                     parameter_draws=parameter_draws, seed=seed,
                     exact_max_customers=exact_max_customers, chunk_size=chunk_size,
                     revenue=unvalued, time_unit=time_unit, check_durations=check_durations,
                     weights=weights)
    return _frame(result, 0, [level])


@accepts_tables(keyed=("rfm",))
def cumulative_purchase_fan(model, rfm: pd.DataFrame, times, *,
                            levels=(0.5, 0.8, 0.95), parameter_draws: Any = None,
                            seed: Any = 0, exact_max_customers: int = EXACT_MAX_CUSTOMERS,
                            chunk_size: int = CHUNK_SIZE, time_unit: str | None = None,
                            check_durations: bool = True, weights: Any = None) -> pd.DataFrame:
    """A cohort's total cumulative purchases after T at each time in ``times``, with
    intervals at several levels: the numbers behind a fan chart (``plot_fan_chart``).

    Parameters
    ----------
    model, rfm, parameter_draws, seed, weights, exact_max_customers, chunk_size : optional
        As in ``purchase_totals`` (the whole table is the cohort).
    time_unit, check_durations : optional
        As in ``purchase_totals``.
    times : sequence of float
        Horizons after the calibration end, in the model's time unit, increasing.
    levels : sequence of float
        Central interval levels, each in (0, 1).

    Returns
    -------
    pandas.DataFrame
        Indexed by ``time`` (with ``attrs["time_unit"]``): ``expected``, ``process_sd``,
        ``parameter_sd``, ``total_sd`` and ``lower <l>%``/``upper <l>%`` for each level.

    Raises
    ------
    ClvlabError
        On bad times or levels, and as ``purchase_totals``.
    """
    horizons = np.atleast_1d(check_horizon(times)).astype(np.float64)
    if horizons.ndim != 1 or np.any(np.diff(horizons) <= 0):
        raise ClvlabError(f"times must be increasing horizons after T, e.g. [4, 8, 13], got {times!r}")
    levels = [float(level) for level in np.atleast_1d(levels)]
    result = _totals([model], rfm, list(horizons), by=None, parameter_draws=parameter_draws,
                     seed=seed, exact_max_customers=exact_max_customers, chunk_size=chunk_size,
                     revenue=None, time_unit=time_unit, check_durations=check_durations,
                     weights=weights)
    frames = [_frame(result, k, levels).iloc[0] for k in range(len(horizons))]
    fan = pd.DataFrame(frames).drop(columns=["customers", "distribution", "parameter_share"])
    fan.index = pd.Index(horizons, name="time")
    fan.attrs["time_unit"] = getattr(model, "time_unit_", None)
    fan.attrs["customers"] = int(result["customers"][0])
    return fan


# --- the computation ------------------------------------------------------------------------
def _scalar_horizon(t: Any) -> float:
    horizon = check_horizon(t)
    if np.ndim(horizon):
        raise ClvlabError(f"t must be one horizon (a number), got {t!r}; "
                          "cumulative_purchase_fan takes several")
    return float(horizon)


def _totals(models: list, rfm: pd.DataFrame, horizons: list[float], *, by, parameter_draws,
            seed, exact_max_customers: int, chunk_size: int, revenue: str | None,
            time_unit: str | None, check_durations: bool, weights: Any) -> dict:
    """Per (draw, group, horizon): the mean and variance of the total, and for exact groups
    the PMF of the total mixed over the draws."""
    from clvlab.models.time_varying import refuse_along_paths

    refuse_along_paths(models[0], "Totals with intervals (purchase_totals, revenue_totals, "
                                  "cumulative_purchase_fan)")
    if not isinstance(rfm, pd.DataFrame) or len(rfm) == 0:
        raise ClvlabError("rfm must be a non-empty DataFrame of customers (one row each)")
    # the unit and the durations checked once here, not at every draw and chunk below
    rfm = table_in_model_unit(models[0], rfm, time_unit, check_durations=check_durations)
    with checked():
        return _sums(models, rfm, horizons, by=by, parameter_draws=parameter_draws, seed=seed,
                     exact_max_customers=exact_max_customers, chunk_size=chunk_size,
                     revenue=revenue, weights=weights)


def _sums(models: list, rfm: pd.DataFrame, horizons: list[float], *, by, parameter_draws,
          seed, exact_max_customers: int, chunk_size: int, revenue: str | None,
          weights: Any) -> dict:
    if not (isinstance(chunk_size, (int, np.integer)) and chunk_size >= 1):
        raise ClvlabError(f"chunk_size must be a whole number >= 1, got {chunk_size!r}")
    if not (isinstance(exact_max_customers, (int, np.integer)) and exact_max_customers >= 0):
        raise ClvlabError(f"exact_max_customers must be a whole number >= 0, got "
                          f"{exact_max_customers!r}")
    codes, labels, name = group_codes(rfm, by)
    if revenue is None:
        table, counts, group = distinct_rows(models, rfm, codes, chunk_size,
                                             row_weights(rfm, weights))
        histories, history_of_row = distinct_histories(models[0], table)
    else:
        # spend histories (a mean spend in cents) are nearly one per repeat buyer: compressed
        # with them the table would be as long as the customers', so revenue runs over the
        # customers' own rows a chunk at a time, with each one's purchase history's index
        table, group, counts = rfm, codes, row_weights(rfm, weights)  # None: one customer a row
        histories, history_of_row = history_index(models[0], rfm, chunk_size)
    at_draws = totals_moments.models_at_draws(models, parameter_draws, seed)
    n_draws, n_groups, n_horizons = len(at_draws), len(labels), len(horizons)
    means = np.zeros((n_draws, n_groups, n_horizons))
    variances = np.zeros((n_draws, n_groups, n_horizons))
    customers = np.bincount(group, weights=counts, minlength=n_groups)
    exact = (customers <= exact_max_customers) & (revenue is None)
    chunks = [slice(start, start + chunk_size) for start in range(0, len(table), chunk_size)]
    # each row's spend history, read (and checked) once for all the draws
    spends = [totals_moments.spend_history(models[1], table.iloc[rows], revenue)
              for rows in chunks] if revenue is not None else [None] * len(chunks)
    mixtures: dict[tuple[int, int], np.ndarray] = {}
    for d, at in enumerate(at_draws):
        for k, horizon in enumerate(horizons):
            # the purchase moments depend on the transaction model's columns alone: once per
            # distinct history, whatever the groups or the spend histories beside them
            count_mean, count_variance = _history_moments(at[0], histories, horizon, chunk_size)
            for rows, spend in zip(chunks, spends):
                weight = 1.0 if counts is None else counts[rows]
                mean = count_mean[history_of_row[rows]]
                variance = count_variance[history_of_row[rows]]
                if revenue is not None:
                    mean, variance = totals_moments.revenue_given_purchases(
                        at[1], table.iloc[rows], mean, variance, history=spend)
                means[d, :, k] += np.bincount(group[rows], weights=weight * mean,
                                              minlength=n_groups)
                variances[d, :, k] += np.bincount(group[rows], weights=weight * variance,
                                                  minlength=n_groups)
            if exact.any():
                _add_exact(mixtures, at[0], histories, history_of_row, group, counts, exact,
                           means[d, :, k], variances[d, :, k], k, horizon, chunk_size)
    return {"labels": labels, "name": name, "customers": customers, "means": means,
            "variances": variances, "exact": exact, "family": "gamma" if revenue else "normal",
            "pmfs": {key: value / n_draws for key, value in mixtures.items()} or None}


def _history_moments(model, histories: pd.DataFrame, horizon: float, chunk_size: int):
    """Each history's mean and variance of purchases, ``chunk_size`` histories at a time."""
    mean, variance = np.empty(len(histories)), np.empty(len(histories))
    for start in range(0, len(histories), chunk_size):
        rows = slice(start, start + chunk_size)
        mean[rows], variance[rows] = totals_moments.purchase_moments(
            model, histories.iloc[rows], horizon)
    return mean, variance


def _add_exact(mixtures: dict, model, histories, history_of_row, group, counts, exact,
               means, variances, k: int, horizon: float, chunk_size: int) -> None:
    """Add one draw's exact PMF of each small group's total to ``mixtures`` (summed over the
    draws), groups taken together while their rows fit in ``chunk_size``."""
    rows = np.flatnonzero(exact[group])
    rows = rows[np.argsort(group[rows], kind="stable")]
    bounds = np.flatnonzero(np.diff(group[rows])) + 1
    batch: list[np.ndarray] = []
    for members in [*np.split(rows, bounds), None]:
        if members is not None and sum(len(b) for b in batch) + len(members) <= max(chunk_size, 1):
            batch.append(members)
            continue
        if batch:
            taken = np.concatenate(batch)
            wanted, where = np.unique(history_of_row[taken], return_inverse=True)
            pmfs = totals_moments.purchase_pmf(model, histories.iloc[wanted], horizon)
            offset = 0
            for part in batch:
                g = int(group[part[0]])
                mine = where[offset:offset + len(part)]
                offset += len(part)
                length = support_length(means[g], variances[g], upper=np.inf)
                pmf = convolve_pmfs(pmfs[mine], counts[part].astype(np.int64), length)
                total = mixtures.get((g, k))
                if total is not None and len(total) < len(pmf):
                    total = np.pad(total, (0, len(pmf) - len(total)))
                elif total is not None:
                    pmf = np.pad(pmf, (0, len(total) - len(pmf)))
                mixtures[(g, k)] = pmf if total is None else total + pmf
        batch = [] if members is None else [members]


def _frame(result: dict, k: int, levels: list[float]) -> pd.DataFrame:
    """The table of horizon ``k`` with intervals at ``levels``."""
    for level in levels:
        if not (isinstance(level, (float, int)) and 0 < level < 1):
            raise ClvlabError(f"level must be between 0 and 1 (e.g. 0.9), got {level!r}")
    means, variances = result["means"][:, :, k], result["variances"][:, :, k]
    frame = pd.DataFrame({"customers": result["customers"].astype(np.int64),
                          **mixture_summary(means, variances, levels, result["family"])},
                         index=pd.Index(result["labels"], name=result["name"]))
    if result["pmfs"] is not None:  # small groups: the exact distribution's quantiles
        probabilities = [p for level in levels for p in ((1 - level) / 2, (1 + level) / 2)]
        bounds = [c for level in levels for c in (f"lower {100 * level:g}%", f"upper {100 * level:g}%")]
        for g in np.flatnonzero(result["exact"]):
            frame.iloc[g, [frame.columns.get_loc(c) for c in bounds]] = pmf_quantiles(
                result["pmfs"][(int(g), k)], probabilities)[:, 0]
    frame["distribution"] = np.where(result["exact"], "exact", result["family"]).astype(object)
    return frame
