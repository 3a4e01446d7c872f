"""lifetimes 0.11's public API on clvlab's models: change ``import lifetimes`` to
``import clvlab.lifetimes as lifetimes`` and existing code runs.

The fitters (``BetaGeoFitter``, ``ParetoNBDFitter``, ``ModifiedBetaGeoFitter``,
``BetaGeoBetaBinomFitter``, ``GammaGammaFitter``) keep lifetimes' names, signatures, attributes
(``params_``, ``summary``, ``data``, ``_negative_log_likelihood_``) and return types, and run
clvlab's likelihoods, optimiser and prediction formulas; ``save_model``/``load_model`` write and
read clvlab's JSON model files (never pickle). ``clvlab.lifetimes.utils``, ``.plotting`` and
``.datasets`` mirror lifetimes' modules. docs/migration_lifetimes.md maps every name to the
native clvlab API and lists where the numbers differ from lifetimes 0.11.3, and why.
"""

from clvlab.core import lazy
from clvlab.lifetimes import utils  # noqa: F401 (lifetimes imports it with its fitters)
from clvlab.lifetimes._base import BaseFitter  # noqa: F401 (lifetimes.BaseFitter)
from clvlab.lifetimes.fitters import BetaGeoFitter, ModifiedBetaGeoFitter, ParetoNBDFitter
from clvlab.lifetimes.fitters_bb_gg import BetaGeoBetaBinomFitter, GammaGammaFitter

__version__ = "0.11.3"  # the lifetimes API this module follows

__all__ = (
    "__version__",
    "BetaGeoFitter",
    "ParetoNBDFitter",
    "GammaGammaFitter",
    "ModifiedBetaGeoFitter",
    "BetaGeoBetaBinomFitter",
)

# plotting and datasets are imported on first use (lifetimes imports them on demand too)
__getattr__, __dir__ = lazy.attach(__name__)
