"""The models: one module each, sharing base.BaseModel and transaction.TransactionModel."""

from .base import BaseModel, load_model
from .bg_nbd import BetaGeo
from .gamma_gamma import GammaGamma
from .pareto_nbd import ParetoNBD

__all__ = ["BaseModel", "BetaGeo", "GammaGamma", "ParetoNBD", "load_model"]
