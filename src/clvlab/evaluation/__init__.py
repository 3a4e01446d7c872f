"""Backtests against held-out cohorts, with the practitioners' LTV formulas as baselines.

``backtest`` (the entry point), ``BacktestResult``, ``Candidate`` and ``ModelCandidate`` (to
compare anything that predicts purchases), ``TimeVaryingCandidate`` (a model read along
covariate paths), the baselines, the churn adjuster's candidate and
``metrics``. Public as ``clvlab.backtesting``, its name before the layer folders.
"""

from clvlab.data.calibration import Calibration, calibration_data
from clvlab.evaluation import metrics
from clvlab.evaluation.baselines import (AovFrequencyLifespan, ArpuChurn, HistoricalAverage,
                                         HistoricalLTV, RecentActivity)
from clvlab.evaluation.candidate_names import default_candidates, make_candidate
from clvlab.evaluation.candidates import Candidate, ModelCandidate, PerSegment
from clvlab.evaluation.churn_candidate import ChurnAdjustedCandidate
from clvlab.evaluation.engine import backtest
from clvlab.evaluation.result import BacktestResult
from clvlab.evaluation.time_varying_candidate import TimeVaryingCandidate

__all__ = ["backtest", "calibration_data", "BacktestResult", "Candidate", "ModelCandidate",
           "PerSegment", "Calibration", "ChurnAdjustedCandidate", "make_candidate",
           "default_candidates", "HistoricalAverage", "HistoricalLTV", "ArpuChurn",
           "AovFrequencyLifespan", "RecentActivity", "metrics", "TimeVaryingCandidate"]
