"""The LTV formulas practitioners use, as backtest candidates the models must beat.

Each baseline turns its textbook formula into the three predictions a backtest compares, for
every customer over a holdout window of length h (in the summary's time unit): expected
purchases, expected spend and P(at least one purchase). Where a formula is a population figure,
every customer gets the same prediction (and so ranks no one: its Gini is 0). The formulas and
how each is stretched to a finite window are in each class's docstring; none of them is fitted
by likelihood.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from clvlab.core.errors import ClvlabError
from clvlab.evaluation.candidates import Calibration, Candidate

__all__ = ["HistoricalAverage", "HistoricalLTV", "ArpuChurn", "AovFrequencyLifespan",
           "RecentActivity"]

MONTH_DAYS = 30.436875


def _prediction(index, purchases, spend, p_active) -> pd.DataFrame:
    """The three predictions as a frame; ``spend=None`` (a log without amounts) leaves the
    spend column out rather than filling it with a number nobody measured."""
    n = len(index)
    columns = {"expected_purchases": np.broadcast_to(purchases, n).astype(np.float64)}
    if spend is not None:
        columns["expected_spend"] = np.broadcast_to(spend, n).astype(np.float64)
    columns["p_active"] = np.broadcast_to(p_active, n).astype(np.float64)
    return pd.DataFrame(columns, index=index)


def _population_repeat_rate(rfm: pd.DataFrame) -> float:
    """Repeat purchases per unit of customer-time: sum(x) / sum(T)."""
    exposure = float(rfm["T"].sum())
    return float(rfm["frequency"].sum()) / exposure if exposure > 0 else 0.0


class _LinearInHorizon(Candidate):
    """A baseline whose expected purchases are a rate times the horizon, per customer."""

    def total_expected_purchases(self, calibration: Calibration, horizons: np.ndarray) -> np.ndarray:
        """The tracking curve: the total at one time unit, times each horizon.

        Parameters
        ----------
        calibration : Calibration
            The cutoff's data.
        horizons : numpy.ndarray
            Window lengths in the summary's time unit.

        Returns
        -------
        numpy.ndarray
            One total per horizon.
        """
        # the tracking curve is the total at one time unit, scaled: one prediction, not 13
        total = float(self.predict(calibration, 1.0)["expected_purchases"].sum())
        return total * np.asarray(horizons, dtype=np.float64)


class HistoricalAverage(_LinearInHorizon):
    """Each customer keeps buying at their own past rate: purchases = (x / T) h, spend =
    purchases x the customer's average order value (all calibration purchases), and
    P(any purchase) = 1 - exp(-(x / T) h), the Poisson chance at that rate. A customer with
    T = 0 has no rate yet and gets 0. Without amounts it predicts purchases and activity only."""

    name = "historical-average"

    def predict(self, calibration: Calibration, horizon: float) -> pd.DataFrame:
        """Each customer's own past rate times the window (class docstring).

        Parameters
        ----------
        calibration : Calibration
            The cutoff's calibration data.
        horizon : float
            The window after the cutoff, in the summary's time unit.

        Returns
        -------
        pandas.DataFrame
            Indexed like ``calibration.rfm``: ``expected_purchases``, ``p_active``
            and (with amounts) ``expected_spend``.
        """
        rfm = calibration.rfm
        T = rfm["T"].to_numpy(np.float64)
        rate = np.divide(rfm["frequency"].to_numpy(np.float64), T, out=np.zeros(len(T)), where=T > 0)
        purchases = rate * horizon
        spend = purchases * calibration.order_value() if calibration.has_amounts else None
        return _prediction(rfm.index, purchases, spend, -np.expm1(-purchases))


class HistoricalLTV(_LinearInHorizon):
    """Historical LTV, revenue / customers, made a rate: every customer gets the calibration
    period's repeat revenue per unit of customer-time, sum(repeat revenue) / sum(T), times h
    (and the same for purchases). Acquisition and retention costs do not enter the holdout
    comparison, which has only revenue to compare against; net LTV and LTV:CAC are in the
    backtest's cohort table."""

    name = "historical-ltv"
    #: Whether the candidate's formula needs spend: revenue per unit of customer-time does.
    needs_amounts = True

    def predict(self, calibration: Calibration, horizon: float) -> pd.DataFrame:
        """The population's repeat rate and revenue rate times the window.

        Parameters
        ----------
        calibration : Calibration
            The cutoff's calibration data.
        horizon : float
            The window after the cutoff, in the summary's time unit.

        Returns
        -------
        pandas.DataFrame
            Indexed like ``calibration.rfm``: ``expected_purchases``, ``p_active`` and
            ``expected_spend``.
        """
        rfm = calibration.rfm
        exposure = float(rfm["T"].sum())
        revenue = float((rfm["frequency"] * rfm["monetary_value"]).sum())
        spend = revenue / exposure * horizon if exposure > 0 else 0.0
        purchases = _population_repeat_rate(rfm) * horizon
        return _prediction(rfm.index, purchases, spend, -math.expm1(-purchases))


class _PeriodActivity:
    """Per-period activity over the last ``lookback`` whole periods before the cutoff: the
    customers active in each, their revenue and purchases; churn as the share of customers
    active in one period who are not active in the next."""

    def __init__(self, calibration: Calibration, period: float, lookback: int):
        periods = calibration.periods
        index = np.floor(periods["age"].to_numpy() / period).astype(np.int64)  # 0 = the last period
        frame = periods.assign(k=index)[index < lookback]
        self.active = [set(frame.loc[frame["k"] == k, "cid"]) for k in range(lookback)]
        n_active = sum(len(a) for a in self.active)
        if n_active == 0:
            raise ClvlabError(f"no customer was active in the last {lookback} periods of "
                              f"{period:g} time units before {calibration.cutoff.date()}")
        self.arpu = float(frame["value"].sum()) / n_active
        self.orders = len(frame) / n_active
        # k is counted back from the cutoff: period k + 1 comes before period k
        stayed = sum(len(self.active[k + 1] & self.active[k]) for k in range(lookback - 1))
        before = sum(len(self.active[k + 1]) for k in range(lookback - 1))
        if before == 0:
            raise ClvlabError("churn is undefined: no customer was active in the earlier periods")
        self.churn = max(1.0 - stayed / before, 1e-9)

    def survival_sum(self, n_periods: float) -> float:
        """sum over the next n periods of (1 - churn)^j, the last period counted in part."""
        whole = int(math.floor(n_periods))
        keep = 1.0 - self.churn
        total = sum(keep ** j for j in range(1, whole + 1))
        return total + (n_periods - whole) * keep ** (whole + 1)


class _ChurnFormula(Candidate):
    """A formula built on monthly activity: churn and ARPU over the last ``lookback`` periods."""

    #: Whether the candidate's formula needs spend: ARPU and AOV are spend figures.
    needs_amounts = True

    def __init__(self, period_days: float = MONTH_DAYS, lookback: int = 6):
        if not (period_days > 0 and int(lookback) >= 2):
            raise ClvlabError("period_days must be > 0 and lookback at least 2 periods")
        self.period_days = period_days
        self.lookback = int(lookback)

    def _activity(self, calibration: Calibration) -> tuple[float, _PeriodActivity]:
        period = calibration.days_to_units(self.period_days)
        # predict is asked for several horizons on one calibration (the tracking curve): the
        # activity of its periods is counted once
        cached = getattr(self, "_activity_cache", None)
        if cached is not None and cached[0] is calibration:
            return period, cached[1]
        activity = _PeriodActivity(calibration, period, self.lookback)
        self._activity_cache = (calibration, activity)
        return period, activity


class ArpuChurn(_ChurnFormula):
    """ARPU x gross margin / churn rate, over the window: a customer active in the last period
    before the cutoff stays active each later period with probability 1 - c, spending the
    average revenue per active customer-period (ARPU) and making the average number of
    purchases; value = ARPU x sum_{j=1..h/P} (1 - c)^j, which tends to ARPU (1 - c) / c over a
    lifetime. Customers not active in the last period count as churned (0). P(any purchase) is
    1 - c for the active ones. ``period`` P defaults to a month (30.436875 days) and ARPU and c
    are averaged over the last ``lookback`` periods. Margin is left to the caller (revenue is
    what the holdout records).

    Parameters
    ----------
    period_days : float, default 30.436875
        The period P, in days (> 0).
    lookback : int, default 6
        The whole periods before the cutoff over which ARPU and churn are averaged (>= 2).

    Raises
    ------
    ClvlabError
        Where ``period_days`` is not > 0 or ``lookback`` is below 2.
    """

    name = "arpu-churn"

    def predict(self, calibration: Calibration, horizon: float) -> pd.DataFrame:
        """ARPU and the purchases per period over the periods a customer stays active.

        Parameters
        ----------
        calibration : Calibration
            The cutoff's calibration data.
        horizon : float
            The window after the cutoff, in the summary's time unit.

        Returns
        -------
        pandas.DataFrame
            Indexed like ``calibration.rfm``: ``expected_purchases``, ``p_active`` and
            ``expected_spend``.
        """
        period, activity = self._activity(calibration)
        active = calibration.rfm.index.isin(list(activity.active[0]))
        alive_periods = activity.survival_sum(horizon / period)
        return _prediction(calibration.rfm.index, active * activity.orders * alive_periods,
                           active * activity.arpu * alive_periods, active * (1.0 - activity.churn))


class AovFrequencyLifespan(_ChurnFormula):
    """Average order value x purchase frequency x expected lifespan: AOV = calibration revenue /
    calibration purchases, frequency F = sum(x) / sum(T) repeat purchases per unit time, and
    lifespan L = P / c, one over the per-period churn rate c of :class:`ArpuChurn`, in time units.
    A lifetime with a constant churn rate is memoryless, so every customer has L still to go,
    and over the window the expected time alive is L (1 - exp(-h / L)): purchases = F L
    (1 - exp(-h / L)), spend = AOV x purchases, P(any) = 1 - exp(-purchases). The same for
    every customer, as the formula is a population figure.

    Parameters
    ----------
    period_days : float, default 30.436875
        The period P, in days (> 0).
    lookback : int, default 6
        The whole periods before the cutoff over which churn is averaged (>= 2).

    Raises
    ------
    ClvlabError
        Where ``period_days`` is not > 0 or ``lookback`` is below 2.
    """

    name = "aov-frequency-lifespan"

    def predict(self, calibration: Calibration, horizon: float) -> pd.DataFrame:
        """The population's AOV x frequency x time alive in the window.

        Parameters
        ----------
        calibration : Calibration
            The cutoff's calibration data.
        horizon : float
            The window after the cutoff, in the summary's time unit.

        Returns
        -------
        pandas.DataFrame
            Indexed like ``calibration.rfm``: ``expected_purchases``, ``p_active`` and
            ``expected_spend``.
        """
        period, activity = self._activity(calibration)
        lifespan = period / activity.churn
        periods = calibration.periods
        aov = float(periods["value"].sum()) / len(periods)
        alive = -lifespan * math.expm1(-horizon / lifespan)
        purchases = _population_repeat_rate(calibration.rfm) * alive
        return _prediction(calibration.rfm.index, purchases, aov * purchases, -math.expm1(-purchases))


class RecentActivity(_LinearInHorizon):
    """"Bought in the last N days": a customer whose last purchase is within ``days`` of the
    cutoff is active (P(any purchase) = 1), any other inactive (0). Active customers get the
    repeat rate of the active group, sum(x) / sum(T) over them, times h, and that times the
    average order value (without amounts: purchases and activity only); inactive ones 0.

    Parameters
    ----------
    days : float, default 90.0
        The activity window N, in days before the cutoff (> 0).

    Raises
    ------
    ClvlabError
        Where ``days`` is not > 0.
    """

    def __init__(self, days: float = 90.0):
        if not days > 0:
            raise ClvlabError(f"the activity window must be > 0 days, got {days!r}")
        self.days = days

    @property
    def name(self) -> str:
        """The candidate's name: ``"active-<days>d"``."""
        return f"active-{self.days:g}d"

    def predict(self, calibration: Calibration, horizon: float) -> pd.DataFrame:
        """The active group's repeat rate times the window; 0 for the others.

        Parameters
        ----------
        calibration : Calibration
            The cutoff's calibration data.
        horizon : float
            The window after the cutoff, in the summary's time unit.

        Returns
        -------
        pandas.DataFrame
            Indexed like ``calibration.rfm``: ``expected_purchases``, ``p_active``
            and (with amounts) ``expected_spend``.
        """
        rfm = calibration.rfm
        window = calibration.days_to_units(self.days)
        active = (rfm["T"] - rfm["recency"]).to_numpy(np.float64) <= window + 1e-9
        purchases = _population_repeat_rate(rfm[active]) * horizon if active.any() else 0.0
        spend = None
        if calibration.has_amounts:
            aov = float(calibration.periods["value"].sum()) / len(calibration.periods)
            spend = active * purchases * aov
        return _prediction(rfm.index, active * purchases, spend, active.astype(np.float64))
