"""The one scoring function: every customer's P(alive), expected purchases, P(any purchase) and,
with a spend model, expected spend and CLV over a horizon.

``clvlab predict``, the MLflow pyfunc (:mod:`clvlab.serving`), the batch scoring job
(:mod:`clvlab.scoring`) and Spark scoring all call :func:`score_customers`, so a customer gets the
same score whichever way it is asked for. Its rules:

- The table's durations are in the model's time unit. The table records it (in
  ``attrs["clvlab"]["time_unit"]``, as ``rfm_summary`` and ``read_rfm`` do) or the caller
  states it (``time_unit=``); a table with no unit, another unit, or durations that look like
  another unit is an error (:mod:`clvlab.models.table_units`).
- ``horizon`` has no default (a default would assume a unit); it is in the model's time unit.
- Without a spend model there is no spend: ``expected_spend_per_purchase`` and ``clv`` are
  absent, never 0.
- ``expected_spend_per_purchase`` is the expected spend *per purchase* (Gamma-Gamma's conditional mean), not
  a total over the horizon: the value over the horizon is ``clv``.
- With a spend model, the table must have ``monetary_value``; customers whose repeat purchases were all of
  value 0 are valued at the population's mean spend (``unvalued="population"`` of
  :meth:`GammaGamma.expected_spend`) and counted in ``attrs["clvlab"]["customers_unvalued"]``:
  one such customer must not stop a job scoring millions, and the count says how many there were.
- ``discount_rate`` is per time unit in [0, 1) and ``margin`` in (0, 1]; see
  :func:`clvlab.models.clv.check_rates`.
- Models with covariates read their covariate columns from the table too (each customer is
  scored at their own parameters); a table without them is an error that names them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from clvlab.models.clv import check_rates, customer_lifetime_value
from clvlab.core.errors import ClvlabError
from clvlab.core.numbers import number
from clvlab.models.registry import check_kind
from clvlab.models.table_units import checked, table_in_model_unit
from clvlab.data.tables import accepts_tables

__all__ = ["score_customers", "output_columns", "scoring_horizon", "TRANSACTION_OUTPUTS",
           "SPEND_OUTPUTS", "RFM_INPUTS"]

RFM_INPUTS = ["frequency", "recency", "T"]
TRANSACTION_OUTPUTS = ["p_alive", "probability_of_purchase", "expected_purchases"]
#: ``expected_spend_per_purchase``: the spend model's expected value of one purchase, named so
#: that nobody sums it as a revenue forecast (the value over the horizon is ``clv``)
SPEND_OUTPUTS = ["expected_spend_per_purchase", "clv"]



def adjuster_role(adjuster) -> str:
    """How messages name what adjusts a model's scores: a churn adjuster, or a challenger
    (``ChallengerAdjustment``, which records its candidate's name) in its place."""
    name = getattr(adjuster, "candidate_name_", None)
    return f"the challenger {name!r}" if name else "the churn adjuster"

def output_columns(spend_model: Any) -> list[str]:
    """The score columns for a model with or without a spend model."""
    return TRANSACTION_OUTPUTS + (SPEND_OUTPUTS if spend_model is not None else [])


@accepts_tables(keyed=("table",), follow="table")
def score_customers(transaction_model, spend_model, churn_adjuster, table: pd.DataFrame, *,
                    horizon: Any, discount_rate: Any = 0.0, margin: Any = 1.0,
                    time_unit: str | None = None, check_durations: bool = True) -> pd.DataFrame:
    """Score each row of ``table`` (indexed by customer id); see the module's rules.

    Parameters
    ----------
    transaction_model : BetaGeo, ModifiedBetaGeo or ParetoNBD
        A fitted BG/NBD, MBG/NBD or Pareto/NBD model.
    spend_model : GammaGamma or LogNormalSpend or None
        A fitted spend model, or None (no spend columns).
    churn_adjuster : ChurnAdjuster, ChallengerAdjustment or None
        A fitted :class:`clvlab.churn.ChurnAdjuster`, or a challenger in its place
        (:class:`clvlab.churn.ChallengerAdjustment`: its P(any purchase), purchases and spend
        replace the model's over its horizon), or None; its features must be columns of
        ``table``.
    table : pandas.DataFrame
        Frequency, recency, T (and monetary_value with a spend model) per customer, and
        the covariate columns of models with covariates.
    horizon : float
        The scoring window in the model's time unit.
    discount_rate : float, default 0.0
        The discount rate per time unit.
    margin : float, default 1.0
        The profit margin (share of spend that is profit).
    time_unit : str, optional
        The unit of the table's durations when the table does not record it (a CSV
        read with pandas, a merge, a JSON payload); it must be the model's.
    check_durations : bool, default True
        False skips the check that the durations look like the model's unit.

    Returns
    -------
    pandas.DataFrame
        One row per customer: ``p_alive``, ``probability_of_purchase`` and
        ``expected_purchases`` over the horizon, and with a spend model
        ``expected_spend_per_purchase`` (one purchase's expected value, not a total over the
        horizon) and ``clv`` (over the horizon); ``attrs["clvlab"]`` holds the time unit, the
        horizon and the count of unvalued customers.

    Raises
    ------
    ClvlabError
        Where a model is of the wrong kind, the adjuster is not fitted, the horizon, rate or
        margin is invalid, the table's time unit is not the model's, or the table lacks a
        column the models read.
    """
    check_kind(transaction_model, "transaction", "transaction_model")
    if spend_model is not None:
        check_kind(spend_model, "spend", "spend_model")
    if churn_adjuster is not None and not all(
            hasattr(churn_adjuster, a) for a in ("adjusted_activity", "horizon", "feature_names_in_")):
        raise ClvlabError(f"churn_adjuster must be a fitted clvlab.ChurnAdjuster (or "
                          f"ChallengerAdjustment), got "
                          f"{type(churn_adjuster).__name__}")
    horizon = scoring_horizon(horizon)
    check_rates(discount_rate, margin)
    model_unit = getattr(transaction_model, "time_unit_", None)
    if not isinstance(table, pd.DataFrame):
        table = pd.DataFrame(table)
    table_in_model_unit(transaction_model, table, time_unit, check_durations=False,
                        what="the table to score")
    missing = [c for c in RFM_INPUTS if c not in table.columns]
    if spend_model is not None and "monetary_value" not in table.columns:
        missing.append("monetary_value")
    if missing:
        need = " (the spend model values purchases: give the log's amount column)" \
            if "monetary_value" in missing else ""
        raise ClvlabError(f"the table to score lacks the column(s) {missing}{need}; it has "
                          f"{list(table.columns)}")
    covariates = _covariate_columns(transaction_model, spend_model)
    absent = [c for c in covariates if c not in table.columns]
    if absent:
        raise ClvlabError(f"the table to score lacks the covariate column(s) {absent} that the "
                          f"model(s) read (each customer's attributes); it has {list(table.columns)}")
    rfm = table[[c for c in RFM_INPUTS + ["monetary_value"] if c in table.columns]]
    rfm = rfm.astype(np.float64)
    if covariates:  # as given: the models encode them (text levels, numbers) themselves
        rfm = pd.concat([rfm, table[[c for c in covariates if c not in rfm.columns]]], axis=1)
    rfm.attrs = {"clvlab": {"time_unit": model_unit}}
    if check_durations:  # on the float columns, so that a bad value speaks through validation
        table_in_model_unit(transaction_model, rfm, what="the table to score")
    with checked():  # checked once above, for every call below
        out = transaction_model.scores(rfm, horizon)
        unvalued = 0
        if spend_model is not None:
            unvalued = int(((rfm["frequency"] > 0) & (rfm["monetary_value"] <= 0)).sum())
            out["expected_spend_per_purchase"] = spend_model.expected_spend(rfm, unvalued="population")
            out["clv"] = customer_lifetime_value(transaction_model, spend_model, rfm, horizon,
                                                 float(discount_rate), float(margin),
                                                 unvalued="population")
        if churn_adjuster is not None:
            role = adjuster_role(churn_adjuster)
            if not np.isclose(horizon, churn_adjuster.horizon):
                raise ClvlabError(f"{role} was trained for a horizon of "
                                  f"{churn_adjuster.horizon:g}; score with horizon="
                                  f"{churn_adjuster.horizon:g}")
            absent = [c for c in churn_adjuster.feature_names_in_ if c not in table.columns]
            if absent:
                raise ClvlabError(f"{role} needs the column(s) {absent}, which the table "
                                  "to score lacks")
            features = table[list(churn_adjuster.feature_names_in_)]
            features.attrs = rfm.attrs
            adjusted = churn_adjuster.adjusted_activity(features)
            factor = adjusted["adjustment_factor"].to_numpy()
            out["probability_of_purchase"] = adjusted["probability_of_purchase"].to_numpy()
            base_purchases = out["expected_purchases"].to_numpy()
            out["expected_purchases"] *= factor
            if spend_model is not None and "expected_spend" in adjusted:
                # a challenger's own spend (clvlab.churn.ChallengerAdjustment): the BTYD
                # model's discounted CLV scaled to it, keeping the model's timing of purchases
                base_spend = base_purchases * out["expected_spend_per_purchase"].to_numpy()
                out["clv"] *= adjusted["expected_spend"].to_numpy() / np.maximum(base_spend, 1e-300)
            elif spend_model is not None:
                out["clv"] *= factor
    out = out[output_columns(spend_model)]
    out.attrs = {"clvlab": {"time_unit": model_unit, "horizon": horizon,
                            "customers_unvalued": unvalued}}
    return out


def _covariate_columns(*models: Any) -> list[str]:
    """The columns that fitted models with covariates read beside the RFM summary."""
    columns = [column for model in models if hasattr(model, "covariates_")
               for column in model.covariates_.encoder.columns]
    return list(dict.fromkeys(columns))


def scoring_horizon(horizon: Any) -> float:
    """The scoring window as a float: required (a default would assume a unit), finite, > 0.
    Every scoring entry point checks it with this before any work."""
    if horizon is None:
        raise ClvlabError("horizon is required: the scoring window in the model's time unit "
                          "(e.g. 52 for a year in weeks); there is no default, as a default "
                          "would assume a unit")
    value = number(horizon, "horizon", "of the model's time units")
    if not (np.isfinite(value) and value > 0):
        raise ClvlabError(f"horizon must be a finite number > 0 (in the model's time unit), "
                          f"got {horizon!r}")
    return value
