"""The models: one module each, sharing base.BaseModel and transaction.TransactionModel."""

from .base import BaseModel, load_model
from .bg_nbd import BetaGeo
from .gamma_gamma import GammaGamma

__all__ = ["BaseModel", "BetaGeo", "GammaGamma", "load_model"]
