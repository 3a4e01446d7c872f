"""Diagnostic plots (matplotlib, imported only when a plot is drawn): calibration, tracking,
P(alive), CLV and posteriors (``diagnostics``), covariate coefficients and segments
(``covariates``), predictive distributions and fan charts (``uncertainty``), time-varying
covariates' multipliers over time and tracking with and without them (``time_varying``), a
champion's monitoring: its tracking since the scoring date and the input drift
(``monitoring``), with their axis words (``labels``)."""

from clvlab.plotting import covariates, diagnostics, monitoring, time_varying, uncertainty
from clvlab.plotting.covariates import *  # noqa: F401,F403
from clvlab.plotting.diagnostics import *  # noqa: F401,F403
from clvlab.plotting.uncertainty import *  # noqa: F401,F403
from clvlab.plotting.time_varying import *  # noqa: F401,F403
from clvlab.plotting.monitoring import *  # noqa: F401,F403

__all__ = [*diagnostics.__all__, *covariates.__all__, *uncertainty.__all__, *time_varying.__all__,
           *monitoring.__all__]
