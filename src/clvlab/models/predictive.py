"""The predictive distribution of a customer's future purchases (process and parameter noise).

Filled in by issue 30, item 2; mixed into every transaction model.
"""

from __future__ import annotations

__all__ = ["PurchaseDistribution"]


class PurchaseDistribution:
    """Mixin: the distribution of purchases in (T, T + t] given each customer's history."""
