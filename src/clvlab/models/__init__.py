"""The models: one module each, sharing base.BaseModel and transaction.TransactionModel."""

from clvlab.models.base import BaseModel, load_model
from clvlab.models.bg_bb import BetaGeoBetaBinom
from clvlab.models.bg_nbd import BetaGeo
from clvlab.models.gamma_gamma import GammaGamma
from clvlab.models.modified_bg_nbd import ModifiedBetaGeo
from clvlab.models.pareto_nbd import ParetoNBD
from clvlab.models.shifted_beta_geo import ShiftedBetaGeo, durations_from_survivors

__all__ = ["BaseModel", "BetaGeo", "BetaGeoBetaBinom", "GammaGamma", "ModifiedBetaGeo",
           "ParetoNBD", "ShiftedBetaGeo", "durations_from_survivors", "load_model"]
