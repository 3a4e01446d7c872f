"""Expected repeat purchases of a cohort over calendar time.

A cohort's customers join at different times (their first purchase, their "birth"). At a
calendar time t a customer born at b has been a customer for ``t - b`` time units, so the
cohort's expected cumulative repeat purchases by t are

    E[total(t)] = sum over customers of E[X(max(t - b_i, 0))],

where E[X(age)] is the model's expectation for a newly acquired customer
(``expected_purchases_new_customer``). This is the "tracking" curve of Fader, Hardie & Lee
(2005), drawn by :func:`clvlab.plotting.plot_tracking`.

With covariates a new customer's expectation depends on who the customer is, so the sum runs
over each customer's own model (``model.for_attributes``), one covariate group at a time; the
customers' attributes are then an argument.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from clvlab.core.errors import ClvlabError
from clvlab.core.timeunits import normalize_time_unit, unit_seconds
from clvlab.models.customer_params import plain_models
from clvlab.data.tables import accepts_tables

__all__ = ["expected_cumulative_purchases"]

# The age grid (time points x distinct births) is evaluated in blocks of about this many cells,
# so that a long daily curve of a large cohort does not allocate gigabytes at once.
_BLOCK_CELLS = 2_000_000


@accepts_tables("attributes")
def expected_cumulative_purchases(model, births: Any, times: Any, *,
                                  time_unit: str | None = None,
                                  attributes: pd.DataFrame | None = None) -> pd.Series:
    """Expected cumulative repeat purchases of a cohort at each time point.

    Parameters
    ----------
    model
        A fitted purchase model with ``expected_purchases_new_customer`` (Pareto/NBD,
        BG/NBD, MBG/NBD; BG/BB when births and times are whole numbers of opportunities).
    births
        Each customer's first-purchase time, one value per customer. Numbers are times in the
        model's time unit on any clock shared with ``times`` (for example time units since the
        cohort's first acquisition). Dates (datetime-like) are converted with the model's time
        unit, or ``time_unit`` when the model has none.
    times
        The time points, on the same clock as ``births`` (numbers or dates, as ``births``).
    time_unit
        The unit of the model, needed only for dates and only when the model records none.
        Refused when it contradicts the model's.
    attributes
        For a model with covariates (required then, ignored otherwise): each customer's
        covariate columns, a DataFrame with one row per birth in the order of ``births``.

    Returns
    -------
    Series indexed by ``times`` (as given), named ``expected_cumulative_purchases``: the
    expected number of repeat purchases the cohort has made from its members' births up to
    each time point. Customers born after a time point contribute 0 to it.

    Raises
    ------
    ClvlabError
        For a model without a new-customer expectation, an empty cohort, births or times that
        are missing or not finite, numbers mixed with dates, dates without a known time unit,
        a ``time_unit`` that differs from the model's, or a model with covariates without
        ``attributes`` of one row per birth.

    Examples
    --------
    >>> model = ParetoNBD.from_params(r=0.55, alpha=10.6, s=0.61, beta=11.7, time_unit="W")
    >>> expected_cumulative_purchases(model, births=[0, 0, 5], times=[10, 20])  # doctest: +SKIP
    """
    if not callable(getattr(model, "expected_purchases_new_customer", None)):
        raise ClvlabError(f"expected_cumulative_purchases needs a purchase model with "
                          f"expected_purchases_new_customer (Pareto/NBD, BG/NBD, MBG/NBD, BG/BB); "
                          f"got a {type(model).__name__}")
    index = times
    birth_values, time_values = _as_model_time(model, births, times, time_unit)
    if birth_values.size == 0:
        raise ClvlabError("births is empty: the cohort needs at least one customer")
    if hasattr(model, "covariates_"):
        table = _customer_attributes(model, attributes, birth_values.size)
        totals = np.zeros(time_values.size)
        for positions, plain in plain_models(model, table):
            totals += _cohort_totals(plain, birth_values[positions], time_values)
    else:
        totals = _cohort_totals(model, birth_values, time_values)
    if not isinstance(index, pd.Index):
        index = pd.Index(np.atleast_1d(np.asarray(index)).ravel())
    return pd.Series(totals, index=index, name="expected_cumulative_purchases")


def _cohort_totals(model, births: np.ndarray, times: np.ndarray) -> np.ndarray:
    """Expected cumulative purchases at ``times`` of customers born at ``births``, all with
    the same (plain) model."""
    unique_births, counts = np.unique(births, return_counts=True)
    totals = np.empty(times.size)
    block = max(1, _BLOCK_CELLS // unique_births.size)
    for start in range(0, times.size, block):
        ages = times[start:start + block, None] - unique_births[None, :]
        totals[start:start + block] = _expected_by_age(model, ages) @ counts
    return totals


def _customer_attributes(model, attributes: Any, n_customers: int) -> pd.DataFrame:
    """The covariates of a cohort's customers for a model with covariates, or a named error."""
    columns = list(model.covariates_.encoder.columns)
    if attributes is None:
        raise ClvlabError(f"this {type(model).__name__} has covariates {columns}, so a new "
                          "customer's expected purchases depend on who the customer is: pass "
                          "attributes=, a DataFrame with those columns and one row per birth")
    table = pd.DataFrame(attributes)
    if len(table) != n_customers:
        raise ClvlabError(f"attributes has {len(table)} rows but there are {n_customers} births; "
                          "give one row per customer, in the order of births")
    return table.reset_index(drop=True)


def _expected_by_age(model, ages: np.ndarray) -> np.ndarray:
    """E[X(age)] of a new customer for every cell of ``ages``; 0 before their birth."""
    out = np.zeros(ages.shape)
    positive = ages > 0
    if positive.any():
        # distinct ages only: births and time points on a grid repeat the same ages many times
        distinct, inverse = np.unique(ages[positive], return_inverse=True)
        values = np.atleast_1d(np.asarray(model.expected_purchases_new_customer(distinct),
                                          dtype=np.float64))
        out[positive] = values[inverse.ravel()]
    return out


def _as_model_time(model, births: Any, times: Any, time_unit: str | None):
    """Births and time points as float arrays in the model's unit."""
    birth_dates, time_dates = _is_dates(births), _is_dates(times)
    if birth_dates != time_dates:
        raise ClvlabError("births and times must both be numbers (time units) or both dates; "
                          f"got {'dates' if birth_dates else 'numbers'} for births and "
                          f"{'dates' if time_dates else 'numbers'} for times")
    model_unit = getattr(model, "time_unit_", None)
    if time_unit is not None:
        time_unit = normalize_time_unit(time_unit)
        if model_unit is not None and normalize_time_unit(model_unit) != time_unit:
            raise ClvlabError(f"time_unit={time_unit!r} contradicts the model's time unit "
                              f"{model_unit!r}; leave time_unit out or refit the model")
    if not birth_dates:
        return _finite(births, "births"), _finite(times, "times")
    unit = time_unit or model_unit
    if unit is None:
        raise ClvlabError("births and times are dates, but the model records no time unit to "
                          "convert them with; pass time_unit= (e.g. 'W'), the unit the model was "
                          "fitted in")
    birth_stamps, birth_zoned = _stamps(births, "births")
    time_stamps, time_zoned = _stamps(times, "times")
    if birth_zoned != time_zoned:
        # a naive time next to a zoned one has no single meaning: refuse rather than guess
        raise ClvlabError("births and times must both carry a time zone or both be naive; got "
                          f"{'zoned' if birth_zoned else 'naive'} births and "
                          f"{'zoned' if time_zoned else 'naive'} times")
    origin = birth_stamps.min()
    seconds = float(unit_seconds(unit))

    def to_units(stamps: pd.DatetimeIndex) -> np.ndarray:
        return np.asarray((stamps - origin) / pd.Timedelta(seconds=1), dtype=np.float64) / seconds

    return to_units(birth_stamps), to_units(time_stamps)


def _is_dates(values: Any) -> bool:
    if isinstance(values, (pd.Timestamp, np.datetime64, str)):
        return True
    array = values if isinstance(values, (pd.Series, pd.Index)) else np.asarray(values)
    dtype = getattr(array, "dtype", None)
    if dtype is not None and (pd.api.types.is_datetime64_any_dtype(dtype)):
        return True
    if dtype is not None and dtype == object and np.size(array):
        first = np.asarray(array, dtype=object).ravel()[0]
        return isinstance(first, (pd.Timestamp, np.datetime64, str)) or hasattr(first, "isoformat")
    return bool(dtype is not None and dtype.kind in "US")


def _finite(values: Any, name: str) -> np.ndarray:
    try:
        array = np.asarray(values, dtype=np.float64).ravel()
    except (TypeError, ValueError):
        raise ClvlabError(f"{name} must be numbers (time units) or dates; got "
                          f"{np.asarray(values, dtype=object).ravel()[:1]!r}") from None
    bad = ~np.isfinite(array)
    if bad.any():
        raise ClvlabError(f"{name} must be finite numbers: a customer without a known time "
                          f"cannot be counted; {name}[{int(np.argmax(bad))}] is "
                          f"{float(array[bad][0])!r}")
    return array


def _stamps(values: Any, name: str) -> tuple[pd.DatetimeIndex, bool]:
    """Naive timestamps (zoned ones in UTC: only differences count) and whether they were
    zoned."""
    raw = pd.Index(np.atleast_1d(np.asarray(values, dtype=object)).ravel()) \
        if not isinstance(values, (pd.Series, pd.Index)) else pd.Index(values)
    try:
        stamps = pd.DatetimeIndex(pd.to_datetime(raw, format="ISO8601")
                                  if raw.dtype == object else raw)
    except (TypeError, ValueError) as exc:
        raise ClvlabError(f"{name} must be ISO 8601 dates or timestamps ({exc})") from None
    zoned = stamps.tz is not None
    if zoned:
        stamps = stamps.tz_convert("UTC").tz_localize(None)
    if stamps.isna().any():
        position = int(np.argmax(np.asarray(stamps.isna())))
        raise ClvlabError(f"{name} must be dates, with none missing; {name}[{position}] is "
                          f"{raw[position]!r}")
    return stamps, zoned
