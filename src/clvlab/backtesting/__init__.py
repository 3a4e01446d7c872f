"""Backtests against held-out cohorts, with the practitioners' LTV formulas as baselines.

``backtest`` (the entry point), ``BacktestResult``, ``Candidate`` and ``ModelCandidate`` (to
compare anything that predicts purchases), the baselines, and ``metrics``.
"""

from . import metrics
from .baselines import (AovFrequencyLifespan, ArpuChurn, HistoricalAverage, HistoricalLTV,
                        RecentActivity)
from .candidates import (Calibration, Candidate, ModelCandidate, PerSegment, default_candidates,
                         make_candidate)
from .engine import backtest, calibration_data
from .result import BacktestResult

__all__ = ["backtest", "calibration_data", "BacktestResult", "Candidate", "ModelCandidate", "PerSegment", "Calibration",
           "make_candidate", "default_candidates", "HistoricalAverage", "HistoricalLTV", "ArpuChurn",
           "AovFrequencyLifespan", "RecentActivity", "metrics"]
