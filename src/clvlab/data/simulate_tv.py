r"""Customer bases with time-varying covariates (issue 31): exact draws from the Pareto/NBD and
the BG/NBD (Bachmann, Meierer & Naef 2021; CLVTools' ``pnbd_dyncov``). Time in the time unit
from each customer's first purchase (t = 0); covariates constant within a calendar period;

- purchases at rate ``lambda_i exp(eta_p(t))``, ``lambda_i ~ Gamma(r, alpha)`` (shape, rate);
- Pareto/NBD dropout at rate ``mu_i exp(eta_d(t))``, ``mu_i ~ Gamma(s, beta)``;
- BG/NBD: after each *repeat* purchase the customer leaves with probability
  ``p_i ~ Beta(a_i, b_i)`` (the first purchase carries no chance, as in ``simulate.bg_nbd``);
  dropout covariates only static, through ``a_i, b_i`` (``simulate.BG_DROPOUT_FORMS``);
- ``eta_p(t) = x(t)' g_purchase``, ``eta_d(t) = x(t)' g_dropout``, x(t) the customer's
  covariates in the period holding t: calendar columns (shared), attribute columns (static, per
  customer) and random per-customer-period 0/1 columns (``varying``).

Exact simulation through the clocks ``A(t) = int_0^t exp(eta_p)``, ``B(t) = int_0^t exp(eta_d)``
(piecewise linear): in the A clock the purchases are a homogeneous Poisson process of rate
lambda. On each period's piece ``[t_k, t_k+1)`` the A clock runs over ``[A_k, A_k+1)``: the
number of A-clock events there is Poisson(lambda (A_k+1 - A_k)), their A values uniform, and
``A^-1`` is linear on the piece (``t = t_k + (a - A_k) exp(-eta_k)``), so the times are
uniform on the piece: no thinning, no discretisation. The Pareto/NBD lifetime is
``tau = B^-1(E / mu)``, E ~ Exp(1) (P(tau > t) = exp(-mu B(t))), found by the period where the
cumulative B passes ``E / mu``. The BG/NBD customer leaves after the D-th repeat purchase,
D ~ Geometric(p) on {1, 2, ...}. Everything is vectorised over blocks of customers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from clvlab.core.errors import ClvlabError
from clvlab.core.timeunits import normalize_time_unit, unit_seconds

__all__ = ["TimeVaryingSample", "pareto_nbd_time_varying", "bg_nbd_time_varying"]

#: customers drawn at a time: their (customers x periods) arrays take a few MB
_BLOCK = 16_384
_RESERVED = ("customer_id", "period")


@dataclass(frozen=True)
class TimeVaryingSample:
    """What a time-varying simulation returns.

    - ``transactions``: ``customer_id``, ``date`` (datetime64[ns]), every purchase (the first
      included), sorted by date then customer;
    - ``panel``: ``customer_id``, ``period`` (the period's start), then every covariate column
      (calendar, attributes, varying, in that order): one row per customer and period from
      the period of the first purchase to the last period, sorted by customer then period;
    - ``truth``: per customer (index ``customer_id``): ``first_purchase``, ``lambda_``, the
      dropout truth (Pareto/NBD ``mu_``; BG/NBD ``p_``, ``a_``, ``b_`` and ``dropout_after_``,
      the repeat purchase after which the customer leaves), ``lifetime_`` (time of dropout
      after the first purchase, in time units; NaN where it lies after the log's end: the
      covariates there are unknown), ``alive_end`` (at the log's end) and, with a calibration
      period, ``alive`` (at its end).
    """

    transactions: pd.DataFrame
    panel: pd.DataFrame
    truth: pd.DataFrame
    time_unit: str
    period_starts: pd.DatetimeIndex
    end: pd.Timestamp
    calibration_end: pd.Timestamp | None


def pareto_nbd_time_varying(n_customers: int, *, params: dict[str, float],
                            coefficients: dict[str, dict[str, float]] | None = None,
                            calendar: pd.DataFrame | None = None,
                            attributes: pd.DataFrame | None = None,
                            varying: dict[str, float] | None = None, start: Any, periods: int,
                            time_unit: str = "W", period_length: float = 1.0,
                            acquisition_periods: int = 1, calibration_periods: int | None = None,
                            seed: Any = 0) -> TimeVaryingSample:
    """Draw a Pareto/NBD customer base whose purchase and dropout rates move with covariates.

    Parameters
    ----------
    n_customers : customers, each acquired (first purchase) at a uniform time within the first
        ``acquisition_periods`` periods.
    params : ``{"r", "alpha", "s", "beta"}``, those of a customer whose covariates are all 0.
    coefficients : ``{"purchase": {column: g}, "dropout": {column: g}}``; positive = more
        purchasing / faster dropout. Columns of any source.
    calendar : one row per period start (a ``period`` column or a DatetimeIndex; rows for other
        dates are ignored) with numeric columns shared by all customers (seasons, holidays).
    attributes : one row per customer (its index becomes ``customer_id``; default 0..n-1) with
        numeric static columns.
    varying : ``{column: probability}``: a 0/1 column drawn independently per customer and
        period (a promotion the customer receives).
    start, periods, time_unit, period_length : the log covers ``periods`` periods of
        ``period_length`` time units from ``start`` ("M" is the fixed month of 30.436875 days,
        so its periods are not calendar months).
    calibration_periods : with it, ``truth["alive"]`` is the state at the end of that many
        periods (>= acquisition_periods, <= periods).
    seed : anything ``numpy.random.default_rng`` takes.
    """
    return _simulate("pareto", n_customers, params, coefficients, calendar, attributes, varying,
                     start, periods, time_unit, period_length, acquisition_periods,
                     calibration_periods, seed, None)


def bg_nbd_time_varying(n_customers: int, *, params: dict[str, float],
                        coefficients: dict[str, dict[str, float]] | None = None,
                        calendar: pd.DataFrame | None = None, attributes: pd.DataFrame | None = None,
                        varying: dict[str, float] | None = None, start: Any, periods: int,
                        time_unit: str = "W", period_length: float = 1.0,
                        acquisition_periods: int = 1, calibration_periods: int | None = None,
                        seed: Any = 0, dropout_form: str = "a_and_b") -> TimeVaryingSample:
    """Draw a BG/NBD customer base whose purchase rate moves with covariates.

    As :func:`pareto_nbd_time_varying`, with ``params`` ``{"r", "alpha", "a", "b"}``. Dropout
    coefficients may name ``attributes`` columns only: a time-varying dropout covariate would
    change p at each purchase, which is not the BG/NBD. They move a and b in ``dropout_form``:
    "a_and_b" (a_i = a exp(x'g), b_i = b exp(x'g); CLVTools) or "b" (b_i = b exp(-x'g)).
    """
    return _simulate("bg", n_customers, params, coefficients, calendar, attributes, varying,
                     start, periods, time_unit, period_length, acquisition_periods,
                     calibration_periods, seed, dropout_form)


def _simulate(model, n, params, coefficients, calendar, attributes, varying, start, periods,
              time_unit, period_length, acquisition_periods, calibration_periods, seed,
              dropout_form) -> TimeVaryingSample:
    names = ("r", "alpha", "s", "beta") if model == "pareto" else ("r", "alpha", "a", "b")
    params = _params(params, names, model)
    n, periods = _whole(n, "n_customers", 1, None), _whole(periods, "periods", 1, None)
    acquisition_periods = _whole(acquisition_periods, "acquisition_periods", 1, periods)
    if calibration_periods is not None:  # everyone acquired by then, and inside the log
        calibration_periods = _whole(calibration_periods, "calibration_periods",
                                     acquisition_periods, periods)
    time_unit = normalize_time_unit(time_unit)
    if not (np.isfinite(period_length) and period_length > 0):
        raise ClvlabError(f"period_length must be a number of time units > 0, got {period_length!r}")
    try:
        origin = pd.Timestamp(start)
    except (TypeError, ValueError) as error:
        raise ClvlabError(f"start must be a date, e.g. '2024-01-01': {error}") from None
    unit_ns = unit_seconds(time_unit) * 1e9
    starts = origin + pd.to_timedelta(np.round(np.arange(periods + 1) * period_length * unit_ns)
                                      .astype(np.int64), unit="ns")
    period_starts = pd.DatetimeIndex(starts[:-1])
    sources = _Sources(calendar, attributes, varying, n, period_starts, time_unit, period_length)
    effects = _effects(coefficients, sources, model)
    per_customer = _static_dropout(params, effects, sources, dropout_form) if model == "bg" else {}
    rng = np.random.default_rng(seed)
    acquired = rng.uniform(0.0, acquisition_periods * period_length, n)  # units from start
    cal_time = None if calibration_periods is None else calibration_periods * period_length
    parts = [_block(model, params, per_customer, effects, sources, acquired,
                    slice(lo, min(lo + _BLOCK, n)), periods, period_length, cal_time, rng)
             for lo in range(0, n, _BLOCK)]
    joined = {key: np.concatenate([part[key] for part in parts]) for key in parts[0]}
    return _assemble(model, joined, sources, acquired, origin, unit_ns, period_starts,
                     starts[-1], cal_time, time_unit)


# --- one block of customers --------------------------------------------------------------------
def _block(model, params, per_customer, effects, sources, acquired, rows, periods, length,
           cal_time, rng) -> dict[str, np.ndarray]:
    m = rows.stop - rows.start
    acq = acquired[rows][:, None]
    edges = np.arange(periods + 1) * length
    exposure = np.clip(edges[1:] - acq, 0.0, length)  # the customer's part of each period
    piece_start = np.maximum(edges[:-1] - acq, 0.0)  # in customer time
    first_period = np.minimum((acquired[rows] // length).astype(np.int64), periods - 1)
    lam = rng.gamma(params["r"], 1.0 / params["alpha"], m)
    if model == "pareto":
        mu = rng.gamma(params["s"], 1.0 / params["beta"], m)
        threshold = rng.exponential(1.0, m) / np.maximum(mu, 1e-300)
    else:
        a_i, b_i = (per_customer[k][rows] for k in ("a", "b"))
        p = rng.beta(a_i, b_i)
        dropout_after = rng.geometric(np.clip(p, 1e-300, 1.0))
    varying = {name: (rng.random((m, periods)) < probability).astype(np.int8)
               for name, probability in sources.varying.items()}
    eta_p = sources.score(effects["purchase"], rows, varying)
    out = {"lambda_": lam}
    if model == "pareto":
        rate_d = np.exp(sources.score(effects["dropout"], rows, varying))
        cum_b = np.cumsum(rate_d * exposure, axis=1)  # B at each period's end
        at = (cum_b <= threshold[:, None]).sum(axis=1)  # the period where B passes E / mu
        dies = at < periods
        k = np.minimum(at, periods - 1)[:, None]
        b_before = np.where(at > 0, np.take_along_axis(cum_b, np.maximum(k - 1, 0), 1)[:, 0], 0.0)
        lifetime = np.where(dies, np.take_along_axis(piece_start, k, 1)[:, 0]
                            + (threshold - b_before) / np.take_along_axis(rate_d, k, 1)[:, 0], np.nan)
        # purchases only while alive: the Poisson process restricted to [0, tau)
        end_alive = np.where(dies, lifetime, np.inf)[:, None]
        live = np.clip(np.minimum(piece_start + exposure, end_alive) - piece_start, 0.0, None)
        owner, times = _events(rng, lam, eta_p, piece_start, live)
        out.update(mu_=mu, lifetime_=lifetime, alive_end=~dies)
        if cal_time is not None:
            out["alive"] = ~(lifetime <= cal_time - acquired[rows])  # NaN: alive
    else:
        owner, times = _events(rng, lam, eta_p, piece_start, exposure)
        rank = np.arange(owner.size) - np.searchsorted(owner, owner)  # events sorted by customer
        keep = rank < dropout_after[owner]
        last = np.flatnonzero(rank == dropout_after[owner] - 1)  # the purchase they leave after
        lifetime = np.full(m, np.nan)
        lifetime[owner[last]] = times[last]
        out.update(p_=p, a_=a_i, b_=b_i, dropout_after_=dropout_after, lifetime_=lifetime,
                   alive_end=np.isnan(lifetime))
        if cal_time is not None:
            before = np.bincount(owner[times < cal_time - acquired[rows][owner]], minlength=m)
            out["alive"] = before < dropout_after
        owner, times = owner[keep], times[keep]
    out["event_owner"], out["event_time"] = owner + rows.start, times
    out["first_period"] = first_period
    grid = np.arange(periods)[None, :] >= first_period[:, None]  # panel rows: from first period
    for name, values in varying.items():
        out["varying:" + name] = values[grid]
    return out


def _events(rng, lam, eta, piece_start, length):
    """Poisson events at rate lambda_i exp(eta_ik) on each piece [start, start + length):
    the counts, then uniform times (the A-clock values mapped back; see the module docstring).
    Returns (owner within the block, time since the first purchase), sorted by owner, time."""
    counts = rng.poisson(lam[:, None] * np.exp(eta) * length)
    cell = np.repeat(np.arange(counts.size), counts.ravel())
    times = piece_start.ravel()[cell] + rng.random(cell.size) * length.ravel()[cell]
    owner = cell // counts.shape[1]
    order = np.lexsort((times, owner))
    return owner[order], times[order]


# --- covariates --------------------------------------------------------------------------------
class _Sources:
    """The covariate columns by source, checked: ``calendar`` (one row per period, in order),
    ``attributes`` (one row per customer, in order), ``varying`` ({column: probability})."""

    def __init__(self, calendar, attributes, varying, n, period_starts, time_unit, length):
        self.n, self.period_starts = n, period_starts
        self.calendar = _calendar(calendar, period_starts, time_unit, length)
        if attributes is None:
            self.ids = pd.RangeIndex(n, name="customer_id")
            self.attributes = pd.DataFrame(index=pd.RangeIndex(n))
        else:
            if not isinstance(attributes, pd.DataFrame) or len(attributes) != n:
                raise ClvlabError(f"attributes must be a DataFrame with one row per customer "
                                  f"({n}), got {type(attributes).__name__} of length "
                                  f"{len(attributes) if hasattr(attributes, '__len__') else '?'}")
            if not attributes.index.is_unique:
                repeated = attributes.index[attributes.index.duplicated()][0]
                raise ClvlabError(f"attributes: the index gives the customer ids and must be "
                                  f"unique; customer {_plain(repeated)!r} appears more than once")
            self.ids = attributes.index.rename("customer_id")
            self.attributes = attributes.reset_index(drop=True)
            for column in self.attributes.columns:
                _numeric(self.attributes[column], "attributes", column,
                         lambda i: f"customer {_plain(self.ids[i])!r}")
        self.varying = dict(varying or {})
        for name, probability in self.varying.items():
            if not (isinstance(probability, (int, float, np.number)) and 0 <= probability <= 1):
                raise ClvlabError(f"varying[{name!r}] must be a probability in [0, 1] (the chance "
                                  f"of a 1 in each customer-period), got {probability!r}")
        self.kind: dict[str, str] = {}
        for source, columns in (("calendar", self.calendar.columns),
                                ("attributes", self.attributes.columns),
                                ("varying", list(self.varying))):
            for column in columns:
                if column in _RESERVED or column in self.kind:
                    where = ("is reserved" if column in _RESERVED
                             else f"is also in {self.kind[column]}")
                    raise ClvlabError(f"covariate column {column!r} of {source} {where}: every "
                                      "covariate needs one source and a name other than "
                                      f"{list(_RESERVED)}")
                self.kind[column] = source

    def static(self, effect: dict[str, float]) -> tuple[np.ndarray, np.ndarray]:
        """(calendar part per period, attribute part per customer) of x'g."""
        by_period, by_customer = np.zeros(len(self.period_starts)), np.zeros(self.n)
        for column, g in effect.items():
            if self.kind[column] == "calendar":
                by_period += g * self.calendar[column].to_numpy(np.float64)
            elif self.kind[column] == "attributes":
                by_customer += g * self.attributes[column].to_numpy(np.float64)
        return by_period, by_customer

    def score(self, effect, rows: slice, varying: dict[str, np.ndarray]) -> np.ndarray:
        """x'g per customer of ``rows`` and period."""
        by_period, by_customer = effect["static"]
        total = by_period[None, :] + by_customer[rows][:, None]
        for column, g in effect["varying"].items():
            total = total + g * varying[column]
        return total


def _calendar(calendar, period_starts, time_unit, length) -> pd.DataFrame:
    """The calendar's rows at the period starts, in order (other rows ignored)."""
    if calendar is None:
        return pd.DataFrame(index=pd.RangeIndex(len(period_starts)))
    if not isinstance(calendar, pd.DataFrame):
        raise ClvlabError(f"calendar must be a DataFrame, got {type(calendar).__name__}")
    if "period" in calendar.columns:
        when, frame = calendar["period"], calendar.drop(columns="period")
    elif isinstance(calendar.index, pd.DatetimeIndex):
        when, frame = calendar.index.to_series(), calendar
    else:
        raise ClvlabError("calendar needs its period starts: a 'period' column or a DatetimeIndex")
    try:
        when = pd.DatetimeIndex(pd.to_datetime(when.to_numpy()))
    except (TypeError, ValueError) as error:
        raise ClvlabError(f"calendar: column 'period' must hold dates: {error}") from None
    if when.has_duplicates:
        raise ClvlabError(f"calendar: column 'period' must name each period once; "
                          f"{when[when.duplicated()][0]} appears more than once")
    frame = frame.set_axis(when)
    missing = period_starts.difference(when)
    if len(missing):
        k = int(period_starts.get_loc(missing[0]))
        raise ClvlabError(f"calendar: column 'period' needs a row for every period start (start + "
                          f"k x {length:g} {time_unit}); it has none for period {k}, {missing[0]} "
                          f"({len(missing)} of {len(period_starts)} missing)")
    frame = frame.loc[period_starts].reset_index(drop=True)
    for column in frame.columns:
        _numeric(frame[column], "calendar", column, lambda k: f"period {period_starts[k]}")
    return frame


def _plain(value):
    """A NumPy scalar as the Python value it holds (messages show 1000, not np.int64(1000))."""
    return value.item() if isinstance(value, np.generic) else value


def _numeric(column: pd.Series, source: str, name, row) -> None:
    if not (pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column)):
        raise ClvlabError(f"{source}: column {name!r} must be numeric or 0/1 (encode text as "
                          f"indicator columns), got {column.dtype}; e.g. {row(0)}: "
                          f"{_plain(column.iloc[0])!r}")
    values = column.to_numpy(np.float64)
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        raise ClvlabError(f"{source}: column {name!r} must be finite everywhere (a covariate "
                          f"cannot be unknown in a simulation); {row(int(bad[0]))} has "
                          f"{_plain(column.iloc[bad[0]])!r}")


def _effects(coefficients, sources: _Sources, model: str) -> dict[str, dict]:
    """{process: {"static": (per period, per customer), "varying": {column: g}}}."""
    coefficients = {} if coefficients is None else coefficients
    if not isinstance(coefficients, dict) or set(coefficients) - {"purchase", "dropout"}:
        raise ClvlabError(f"coefficients must be {{'purchase': {{column: g}}, 'dropout': "
                          f"{{column: g}}}}, got keys {list(coefficients)}")
    out = {}
    for process in ("purchase", "dropout"):
        effect = dict(coefficients.get(process) or {})
        for column, g in effect.items():
            if column not in sources.kind:
                raise ClvlabError(f"coefficients[{process!r}] names column {column!r}, which no "
                                  f"source has; the covariates are {sorted(sources.kind)} "
                                  "(calendar, attributes and varying columns)")
            if not (isinstance(g, (int, float, np.number)) and np.isfinite(g)):
                raise ClvlabError(f"coefficients[{process!r}][{column!r}] must be a finite "
                                  f"number, got {g!r}")
            if model == "bg" and process == "dropout" and sources.kind[column] != "attributes":
                raise ClvlabError(
                    f"bg_nbd_time_varying: dropout coefficient {column!r} is a "
                    f"{sources.kind[column]} column, which varies in time; the BG/NBD takes only "
                    "static dropout covariates (attributes columns): a time-varying one would "
                    "change the dropout probability p at each purchase, which is not the BG/NBD. "
                    "Use pareto_nbd_time_varying for time-varying dropout")
        out[process] = {"static": sources.static(effect),
                        "varying": {c: g for c, g in effect.items() if sources.kind[c] == "varying"}}
    return out


def _static_dropout(params, effects, sources, dropout_form) -> dict[str, np.ndarray]:
    """Each BG/NBD customer's a_i, b_i (``simulate.BG_DROPOUT_FORMS``)."""
    from clvlab.data.simulate import BG_DROPOUT_FORMS

    if dropout_form not in BG_DROPOUT_FORMS:
        raise ClvlabError(f"dropout_form must be one of {list(BG_DROPOUT_FORMS)}, got "
                          f"{dropout_form!r}")
    score, form = effects["dropout"]["static"][1], BG_DROPOUT_FORMS[dropout_form]
    return {name: params[name] * np.exp(form.get(name, (None, 0))[1] * score) for name in ("a", "b")}


# --- checks and output -------------------------------------------------------------------------
def _params(params, names, model) -> dict[str, float]:
    label = "pareto_nbd_time_varying" if model == "pareto" else "bg_nbd_time_varying"
    if not isinstance(params, dict) or set(params) != set(names):
        raise ClvlabError(f"{label}: params must be exactly {list(names)}, got "
                          f"{sorted(params) if isinstance(params, dict) else params!r}")
    for name in names:
        value = params[name]
        if not (isinstance(value, (int, float, np.number)) and np.isfinite(value) and value > 0):
            raise ClvlabError(f"{label}: parameter {name} must be finite and > 0, got {value!r}")
    return {name: float(params[name]) for name in names}


def _whole(value, name: str, low: int, high: int | None) -> int:
    if not (isinstance(value, (int, np.integer)) and low <= value <= (high or value)):
        within = f">= {low}" + ("" if high is None else f" and <= {high} (periods)")
        raise ClvlabError(f"{name} must be a whole number {within}, got {value!r}")
    return int(value)


def _assemble(model, joined, sources, acquired, origin, unit_ns, period_starts, end, cal_time,
              time_unit) -> TimeVaryingSample:
    n, ids = sources.n, sources.ids
    owner = np.concatenate([np.arange(n), joined["event_owner"]])
    when = acquired[owner] + np.concatenate([np.zeros(n), joined["event_time"]])

    def dates(units):  # time units since start -> datetime64[ns]
        ns = np.int64(origin.value) + np.round(units * unit_ns).astype(np.int64)
        return ns.astype("datetime64[ns]")

    when = dates(when)
    order = np.lexsort((owner, when))  # by date, then customer (their order in the ids)
    transactions = pd.DataFrame({"customer_id": ids.to_numpy()[owner[order]], "date": when[order]})
    periods = len(period_starts)
    lengths = periods - joined["first_period"]  # each customer's periods from its first
    rows = np.repeat(np.arange(n), lengths)
    k = (np.arange(rows.size) - np.repeat(np.cumsum(lengths) - lengths, lengths)
         + joined["first_period"][rows])
    panel = {"customer_id": ids.to_numpy()[rows], "period": period_starts.to_numpy()[k]}
    for column in sources.calendar.columns:
        panel[column] = sources.calendar[column].to_numpy()[k]
    for column in sources.attributes.columns:
        panel[column] = sources.attributes[column].to_numpy()[rows]
    for column in sources.varying:
        panel[column] = joined["varying:" + column]
    truth = pd.DataFrame({"first_purchase": dates(acquired)}, index=ids)
    keys = ["lambda_", "mu_"] if model == "pareto" else ["lambda_", "p_", "a_", "b_", "dropout_after_"]
    for key in keys + ["lifetime_", "alive_end"] + (["alive"] if cal_time is not None else []):
        truth[key] = joined[key]
    calibration_end = (None if cal_time is None else
                       origin + pd.Timedelta(int(round(cal_time * unit_ns)), unit="ns"))
    return TimeVaryingSample(transactions=transactions, panel=pd.DataFrame(panel), truth=truth,
                             time_unit=time_unit, period_starts=period_starts, end=end,
                             calibration_end=calibration_end)
