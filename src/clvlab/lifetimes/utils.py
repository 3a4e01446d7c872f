"""lifetimes.utils' names on clvlab: summaries of a transaction log (``clvlab.rfm_summary``),
customer lifetime value, a cohort's expected cumulative transactions and a customer's P(alive)
path (``clvlab.lifetimes.summaries``, ``clvlab.lifetimes.predictions``)."""

from __future__ import annotations

import numpy as np

from clvlab.lifetimes._base import ConvergenceError, check_inputs
from clvlab.lifetimes.predictions import (calculate_alive_path, customer_lifetime_value,
                                          expected_cumulative_transactions)
from clvlab.lifetimes.summaries import (calibration_and_holdout_data,
                                        summary_data_from_transaction_data)

__all__ = [
    "calibration_and_holdout_data",
    "summary_data_from_transaction_data",
    "calculate_alive_path",
    "expected_cumulative_transactions",
    "customer_lifetime_value",
    "ConvergenceError",
]

#: lifetimes' private names, which user code imports too
_customer_lifetime_value = customer_lifetime_value
_check_inputs = check_inputs


def _scale_time(age):
    """Create a scalar such that the maximum age is 1 (lifetimes' fit scale)."""
    return 1.0 / np.asarray(age).max()
