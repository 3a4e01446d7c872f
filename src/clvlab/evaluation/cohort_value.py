"""Realised and predicted value per acquisition cohort of one backtest cutoff, and LTV:CAC."""

from __future__ import annotations

from typing import Mapping

import numpy as np
import pandas as pd

from clvlab.core.errors import ClvlabError

__all__ = ["cohort_ltv"]


def cohort_ltv(parts: list[pd.DataFrame], cutoff: str, acquisition_cost) -> pd.DataFrame:
    """Realised and predicted value per acquisition cohort; LTV:CAC where costs are known."""
    table = pd.concat(parts, axis=1)
    table.index.name = "cohort"
    customers = table["customers"].to_numpy(np.float64)
    if "calibration_revenue" not in table:  # no amounts: no value, no LTV:CAC
        return table.reset_index().assign(cutoff=cutoff)
    table["realised_value_per_customer"] = (table["calibration_revenue"]
                                            + table["holdout_revenue"]) / customers
    predicted = [c for c in table.columns if c.startswith("predicted_holdout_revenue[")]
    for column in predicted:
        name = column[len("predicted_holdout_revenue["):-1]
        table[f"predicted_value_per_customer[{name}]"] = (table["calibration_revenue"]
                                                          + table[column]) / customers
    if acquisition_cost is not None:
        if isinstance(acquisition_cost, Mapping):
            missing = [c for c in table.index if c not in acquisition_cost]
            if missing:
                raise ClvlabError(f"acquisition_cost has no cost for cohort {missing[0]!r}")
            cost = np.array([float(acquisition_cost[c]) for c in table.index])
        else:
            cost = np.full(len(table), float(acquisition_cost))
        if np.any(~np.isfinite(cost)) or np.any(cost <= 0):
            raise ClvlabError("acquisition costs must be finite and > 0")
        table["acquisition_cost"] = cost
        for column in [c for c in table.columns if "value_per_customer" in c]:
            table[column.replace("value_per_customer", "ltv_to_cac")] = table[column] / cost
    return table.reset_index().assign(cutoff=cutoff)
