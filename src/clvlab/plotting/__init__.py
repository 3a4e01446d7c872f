"""Diagnostic plots (matplotlib, imported only when a plot is drawn): calibration, tracking,
P(alive), CLV and posteriors (``diagnostics``), covariate coefficients and segments
(``covariates``), with their axis words (``labels``)."""

from clvlab.plotting import covariates, diagnostics
from clvlab.plotting.covariates import *  # noqa: F401,F403
from clvlab.plotting.diagnostics import *  # noqa: F401,F403

__all__ = [*diagnostics.__all__, *covariates.__all__]
