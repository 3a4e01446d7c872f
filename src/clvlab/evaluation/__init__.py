"""Backtests against held-out cohorts, with the practitioners' LTV formulas as baselines.

``backtest`` (the entry point), ``BacktestResult``, ``Candidate`` and ``ModelCandidate`` (to
compare anything that predicts purchases), ``TimeVaryingCandidate`` (a model read along
covariate paths), the baselines, the churn adjuster's candidate and
``metrics``. Public as ``clvlab.backtesting``, its name before the layer folders.
"""

from typing import TYPE_CHECKING

from clvlab.core import lazy

# The names are imported on first use (clvlab.core.lazy): the candidates import the models and
# scikit-learn, which the metrics and the result tables do not need.
__getattr__, __dir__ = lazy.attach(__name__, attributes={
    "clvlab.data.calibration": ["Calibration", "calibration_data"],
    "clvlab.evaluation.baselines": ["AovFrequencyLifespan", "ArpuChurn", "HistoricalAverage",
                                    "HistoricalLTV", "RecentActivity"],
    "clvlab.evaluation.candidate_names": ["default_candidates", "make_candidate"],
    "clvlab.evaluation.candidates": ["Candidate", "ModelCandidate", "PerSegment"],
    "clvlab.evaluation.churn_candidate": ["ChurnAdjustedCandidate"],
    "clvlab.evaluation.engine": ["backtest"],
    "clvlab.evaluation.result": ["BacktestResult"],
    "clvlab.evaluation.time_varying_candidate": ["TimeVaryingCandidate"],
}, modules={"metrics": "clvlab.evaluation.metrics"})

if TYPE_CHECKING:
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
