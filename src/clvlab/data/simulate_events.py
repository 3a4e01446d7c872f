"""Simulated purchase logs with an engagement log beside them, for the experiment that asks
whether engagement features (visits, e-mails opened) tell who is alive better than RFM alone.

Purchases follow the Pareto/NBD process, the parameterisation of :mod:`clvlab.data.simulate`:
each customer buys at a rate lambda ~ Gamma(r, rate alpha) while alive, and is alive for an
exponential lifetime of rate mu ~ Gamma(s, rate beta) from acquisition (their first purchase).
Engagement follows purchasing: visits come at rate ``visit_rate * lambda`` (so ``visit_rate`` is
the visits per purchase) and e-mails are opened at rate ``email_rate`` per time unit, both
Poisson, from acquisition until the customer drops out, or ``lead_weeks`` earlier (engagement
fades before purchases stop), or never (``visits_stop="never"``: engagement then says nothing
about dropout, the experiment's control).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from clvlab.core.errors import ClvlabError
from clvlab.core.timeunits import unit_seconds
from clvlab.data.rfm_io import parse_option_date

__all__ = ["simulate_engagement", "VISITS_STOP", "CDNOW_SPEND"]

#: when engagement stops: at dropout (minus ``lead_weeks``), or never
VISITS_STOP = ("at_dropout", "never")
#: Gamma-Gamma spend parameters of CDNOW (Fader, Hardie & Lee 2005), the default spend
CDNOW_SPEND = {"p": 6.25, "q": 3.74, "v": 15.44}
#: dropouts later than this after the end are recorded then (alive throughout either way), so
#: that a near-zero dropout rate gives a timestamp and not an overflow
_FAR_YEARS = 100


def simulate_engagement(n_customers: int, start: Any, end: Any, *, r: float, alpha: float,
                        s: float, beta: float, visit_rate: float = 3.0, email_rate: float = 0.0,
                        visits_stop: str = "at_dropout", lead_weeks: float = 0.0,
                        acquisition_share: float = 0.5, spend: dict[str, float] | None = None,
                        quantities: bool = False, seed: Any = 0, time_unit: str = "W",
                        amounts: bool = True) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Draw a purchase log, an engagement log and each customer's latent truth.

    Parameters
    ----------
    n_customers : int
        Customers, with ids 0 .. n_customers - 1.
    start, end : date or ISO 8601 text
        The period simulated; nothing happens after ``end``.
    r, alpha, s, beta : float
        Pareto/NBD parameters, rates per ``time_unit``.
    visit_rate : float
        Expected visits per expected purchase: visits come at ``visit_rate * lambda``.
    email_rate : float
        E-mails opened per time unit by every engaged customer (0: no ``email_open`` events).
    visits_stop : {"at_dropout", "never"}
        Whether engagement stops ``lead_weeks`` before dropout, or lasts to ``end``.
    lead_weeks : float
        How long before dropout engagement stops, in weeks whatever ``time_unit`` is (a lead
        longer than the lifetime means no engagement at all).
    acquisition_share : float
        Customers are acquired uniformly over this first share of the period (0: all at
        ``start``); acquisition is their first purchase.
    spend : dict, optional
        Gamma-Gamma ``p``, ``q``, ``v`` of the amounts (default :data:`CDNOW_SPEND`).
    quantities : bool
        Add ``quantity``, items per order: 1 + Poisson(m), with m ~ Gamma(2, 1) per customer.
    seed : int or numpy Generator
        The same seed gives the same logs.
    time_unit : str
        The unit of the rates: "h", "D", "W" or "M".
    amounts : bool
        Add ``amount`` (rounded to cents) to the purchases.

    Returns
    -------
    transactions : DataFrame
        ``customer_id`` (int64), ``date`` (datetime64[s]), maybe ``amount`` and ``quantity``;
        sorted by date and id.
    events : DataFrame
        ``customer_id``, ``date``, ``event`` ("visit" or "email_open"), sorted likewise.
    truth : DataFrame
        Indexed by ``customer_id``: ``lambda_``, ``mu_`` (per time unit), ``acquired``,
        ``dropout`` (a customer is alive at t when ``dropout > t``; dropouts more than 100
        years after ``end`` are recorded then) and ``engaged_until`` (the end of engagement,
        within the period; no engagement event after it), all datetime64[s].

    Raises
    ------
    ClvlabError
        For a parameter out of its range, an unknown ``visits_stop``, or ``end`` not after
        ``start``.
    """
    first = parse_option_date(start, "start")
    last = parse_option_date(end, "end")
    if first is None or last is None or last <= first:
        raise ClvlabError(f"end ({end!r}) must be after start ({start!r})")
    if visits_stop not in VISITS_STOP:
        raise ClvlabError(f"visits_stop must be one of {VISITS_STOP}, got {visits_stop!r}")
    for name, value, low in (("r", r, 0), ("alpha", alpha, 0), ("s", s, 0), ("beta", beta, 0),
                             ("visit_rate", visit_rate, None), ("email_rate", email_rate, None),
                             ("lead_weeks", lead_weeks, None)):
        if not (np.isfinite(value) and (value > 0 if low == 0 else value >= 0)):
            raise ClvlabError(f"{name} must be finite and {'>' if low == 0 else '>='} 0, "
                              f"got {value!r}")
    if not 0 <= acquisition_share < 1 or int(n_customers) != n_customers or n_customers < 1:
        raise ClvlabError("acquisition_share must be in [0, 1) and n_customers a whole number "
                          ">= 1")
    n = int(n_customers)
    unit = unit_seconds(time_unit)
    span = (last - first) / pd.Timedelta(seconds=unit)  # the period in time units
    rng = np.random.default_rng(seed)

    acquired = rng.uniform(0.0, acquisition_share * span, n)
    lam = rng.gamma(r, 1.0 / alpha, n)
    mu = rng.gamma(s, 1.0 / beta, n)
    far = span + _FAR_YEARS * 365.2425 * 86_400 / unit
    dropout = np.minimum(acquired + rng.exponential(1.0 / np.maximum(mu, 1e-300)), far)
    alive_until = np.minimum(dropout, span)
    owner, times = _poisson_times(rng, lam, acquired, alive_until)
    # the first purchase at acquisition, then the repeat purchases while alive
    owner = np.concatenate([np.arange(n), owner])
    times = np.concatenate([acquired, times])

    lead = lead_weeks * 7 * 86_400 / unit
    stop = dropout - lead if visits_stop == "at_dropout" else np.full(n, np.inf)
    engaged_until = np.clip(stop, acquired, span)
    visitor, visits = _poisson_times(rng, visit_rate * lam, acquired, engaged_until)
    reader, opens = _poisson_times(rng, np.full(n, float(email_rate)), acquired, engaged_until)

    start64 = np.datetime64(first.to_datetime64(), "s")

    def stamps(offsets: np.ndarray) -> np.ndarray:
        # floored to the second: an event before a time stays at or before its timestamp
        return start64 + np.floor(offsets * unit).astype("timedelta64[s]")

    transactions = pd.DataFrame({"customer_id": owner.astype(np.int64), "date": stamps(times)})
    if amounts:
        gg = CDNOW_SPEND if spend is None else spend
        nu = rng.gamma(gg["q"], 1.0 / gg["v"], n)
        transactions["amount"] = np.round(rng.gamma(gg["p"], 1.0 / nu[owner]), 2)
    if quantities:
        basket = rng.gamma(2.0, 1.0, n)
        transactions["quantity"] = 1 + rng.poisson(basket[owner])
    events = pd.DataFrame({
        "customer_id": np.concatenate([visitor, reader]).astype(np.int64),
        "date": stamps(np.concatenate([visits, opens])),
        "event": np.array(["visit"] * visitor.size + ["email_open"] * reader.size, dtype=object)})
    truth = pd.DataFrame({"lambda_": lam, "mu_": mu, "acquired": stamps(acquired),
                          "dropout": stamps(dropout), "engaged_until": stamps(engaged_until)},
                         index=pd.RangeIndex(n, name="customer_id"))
    return (transactions.sort_values(["date", "customer_id"], kind="stable", ignore_index=True),
            events.sort_values(["date", "customer_id", "event"], kind="stable", ignore_index=True),
            truth)


def _poisson_times(rng: np.random.Generator, rate: np.ndarray, begin: np.ndarray,
                   until: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A Poisson process of ``rate`` on [begin, until) per customer: (owners, times)."""
    length = np.maximum(until - begin, 0.0)
    counts = rng.poisson(rate * length)
    owner = np.repeat(np.arange(rate.size), counts)
    times = begin[owner] + rng.uniform(0.0, 1.0, owner.size) * length[owner]
    return owner, times
