"""The models: one module each, sharing base.BaseModel and transaction.TransactionModel.

The models are imported here up front, unlike the other packages' names: they all share
base.BaseModel (scikit-learn, numba, the samplers), so a lazy table would save little, and the
compiled likelihoods' cache keys read the source of the kernel modules loaded at the time
(clvlab.inference.likelihood_op), which is then the same whichever model is fitted first.
"""

from clvlab.core import lazy
from clvlab.models.base import BaseModel, load_model
from clvlab.models.bg_bb import BetaGeoBetaBinom
from clvlab.models.bg_nbd import BetaGeo
from clvlab.models.gamma_gamma import GammaGamma
from clvlab.models.modified_bg_nbd import ModifiedBetaGeo
from clvlab.models.pareto_nbd import ParetoNBD
from clvlab.models.shifted_beta_geo import ShiftedBetaGeo, durations_from_survivors

__all__ = ["BaseModel", "BetaGeo", "BetaGeoBetaBinom", "GammaGamma", "ModifiedBetaGeo",
           "ParetoNBD", "ShiftedBetaGeo", "durations_from_survivors", "load_model"]

# the other modules are found as attributes (clvlab.models.registry), imported when first asked for
__getattr__, __dir__ = lazy.attach(__name__)
