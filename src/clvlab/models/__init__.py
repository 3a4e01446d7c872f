"""The models: one module each, sharing base.BaseModel and transaction.TransactionModel."""

from .base import BaseModel, load_model
from .bg_bb import BetaGeoBetaBinom
from .bg_nbd import BetaGeo
from .gamma_gamma import GammaGamma
from .modified_bg_nbd import ModifiedBetaGeo
from .pareto_nbd import ParetoNBD
from .shifted_beta_geo import ShiftedBetaGeo, durations_from_survivors

__all__ = ["BaseModel", "BetaGeo", "BetaGeoBetaBinom", "GammaGamma", "ModifiedBetaGeo",
           "ParetoNBD", "ShiftedBetaGeo", "durations_from_survivors", "load_model"]
