"""Diagnostic plots (matplotlib, imported only when a plot is drawn): calibration, tracking,
P(alive), CLV and posteriors (``diagnostics``), with their axis words (``labels``)."""

from clvlab.plotting.diagnostics import *  # noqa: F401,F403
from clvlab.plotting.diagnostics import __all__  # noqa: F401
