"""Per-customer distributions in every scoring path: quantiles and prediction intervals.

The scoring job, the pyfunc and Spark scoring all score through
:func:`clvlab.ops.serving.score_frame`; with the distribution options it adds, per customer:

- ``purchases_q<q>`` (``purchases_q0.05``, ...): the smallest count n with P(X <= n) >= q,
  X the purchases over the horizon given the customer's history, from the transaction
  model's exact PMF (``purchase_quantiles``, at the fitted parameters: process noise, which
  dominates one customer's uncertainty). Whole numbers (int64).
- ``purchases_lower`` and ``purchases_upper``: the central ``interval_level`` prediction
  interval (``prediction_interval``; P(lower <= X <= upper) >= level, the count being
  discrete).
- with a spend model, ``clv_q<q>``: quantiles of each customer's CLV over the horizon (margin
  x discounted spend), by Monte Carlo (:func:`clvlab.models.value_distribution.value_distribution`,
  ``clv_draws`` simulated futures per customer, ``seed``). Its Monte Carlo error is about
  sd / sqrt(clv_draws) at the median; the same rows in the same order and chunks give the same
  values.

A model with a churn adjuster rescales expected purchases by a factor that has no distribution
of its own: the options are refused for it rather than mixing an adjusted mean with unadjusted
quantiles.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pandas as pd

from clvlab.core.errors import ClvlabError

__all__ = ["DISTRIBUTION_PARAMS", "DEFAULT_CLV_DRAWS", "parse_quantiles", "check_interval_level",
           "check_clv_draws", "check_seed", "distribution_settings", "distribution_columns",
           "distribution_column_types", "quantile_column", "refuse_adjuster"]

#: simulated futures per customer for the CLV quantiles
DEFAULT_CLV_DRAWS = 200
#: the pyfunc's distribution parameters and their defaults (no quantiles, no interval)
DISTRIBUTION_PARAMS = {"quantiles": [], "interval_level": None, "clv_draws": DEFAULT_CLV_DRAWS,
                       "seed": 0}


def quantile_column(what: str, level: float) -> str:
    """``purchases_q0.05``: the column of quantile ``level`` of ``what``."""
    return f"{what}_q{level:g}"


def parse_quantiles(value: Any, option: str = "quantiles (--quantiles)") -> tuple[float, ...]:
    """Quantile levels from a comma string (``"0.05,0.5,0.95"``), a number or a list of numbers
    (or of numeric strings); () for None, "" or an empty list.

    Parameters
    ----------
    value : the levels as given.
    option : how the caller names the option in messages.

    Returns
    -------
    tuple of float
        Distinct levels in (0, 1), increasing.

    Raises
    ------
    ClvlabError
        For anything else, naming the option, the rule and an example.
    """
    rule = (f"{option} must be levels strictly between 0 and 1, comma-separated, e.g. "
            f"0.05,0.5,0.95 (the 5th, 50th and 95th percentiles); got {value!r}")
    if value is None:
        return ()
    if isinstance(value, str):
        items = [v.strip() for v in value.split(",") if v.strip()]
    elif isinstance(value, (bool, np.bool_)):
        raise ClvlabError(rule)
    elif isinstance(value, (int, float, np.number)):
        items = [value]
    else:
        try:
            items = list(np.asarray(value, dtype=object).ravel())
        except (TypeError, ValueError):
            raise ClvlabError(rule) from None
    levels = []
    for item in items:
        if isinstance(item, (bool, np.bool_)):
            raise ClvlabError(rule)
        try:
            level = float(item)
        except (TypeError, ValueError):
            raise ClvlabError(rule) from None
        if not (np.isfinite(level) and 0.0 < level < 1.0):
            hint = _percent_hint(level)
            raise ClvlabError(rule + hint)
        levels.append(level)
    if len(set(levels)) != len(levels):
        raise ClvlabError(f"{option} lists a level twice; give each once, e.g. 0.05,0.5,0.95; "
                          f"got {value!r}")
    return tuple(sorted(levels))


def _percent_hint(level: float) -> str:
    """" (did you mean 0.9?)" for a level written as a whole percentage (90)."""
    return f" (did you mean {level / 100:g}?)" if 1 < level < 100 and level.is_integer() else ""


def check_interval_level(value: Any, option: str = "interval_level (--interval-level)") -> float | None:
    """The prediction interval's level in (0, 1), or None for no interval."""
    if value is None:
        return None
    rule = (f"{option} must be a coverage strictly between 0 and 1, e.g. 0.9 for a 90 % "
            f"interval; got {value!r}")
    if isinstance(value, (bool, np.bool_)) or isinstance(value, str):
        raise ClvlabError(rule)
    try:
        level = float(value)
    except (TypeError, ValueError):
        raise ClvlabError(rule) from None
    if not (np.isfinite(level) and 0.0 < level < 1.0):
        hint = _percent_hint(level)
        raise ClvlabError(rule + hint)
    return level


def _whole(value: Any, least: int, rule: str) -> int:
    if isinstance(value, (bool, np.bool_)) or isinstance(value, str):
        raise ClvlabError(rule)
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        value = int(value)
    if not isinstance(value, (int, np.integer)) or value < least:
        raise ClvlabError(rule)
    return int(value)


def check_clv_draws(value: Any, option: str = "clv_draws (--clv-draws)") -> int:
    """Simulated futures per customer for the CLV quantiles: a whole number >= 2."""
    return _whole(value, 2, f"{option} must be a whole number >= 2 of simulated futures per "
                            f"customer, e.g. 200; got {value!r}")


def check_seed(value: Any, option: str = "seed (--seed)") -> int:
    """A seed: a whole number >= 0."""
    return _whole(value, 0, f"{option} must be a whole number >= 0, e.g. 0; got {value!r}")


def distribution_settings(params: dict[str, Any]) -> dict[str, Any]:
    """The distribution options of a pyfunc's ``params`` (defaults filled in), checked."""
    given = {k: params.get(k) for k in DISTRIBUTION_PARAMS}
    clv_draws = given["clv_draws"]
    seed = given["seed"]
    return {"quantiles": parse_quantiles(given["quantiles"], "quantiles"),
            "interval_level": check_interval_level(given["interval_level"], "interval_level"),
            "clv_draws": check_clv_draws(DEFAULT_CLV_DRAWS if clv_draws is None else clv_draws,
                                         "clv_draws"),
            "seed": check_seed(0 if seed is None else seed, "seed")}


def refuse_adjuster(adjuster: Any, what: str = "quantiles and prediction intervals") -> None:
    """A churn adjuster's model gets no distribution columns (see the module docstring)."""
    if adjuster is not None:
        from clvlab.models.customer_scores import adjuster_role

        role = adjuster_role(adjuster)
        raise ClvlabError(f"{what} are of the transaction model's distribution of purchases; "
                          f"this model's scores come through {role}, which adjusts expected "
                          "purchases by values that have no distribution here, so they would "
                          "not describe its scores. Score it without them, or register the "
                          f"model without {role}")


def distribution_column_types(quantiles: Sequence[float], interval_level: float | None,
                              has_spend: bool) -> dict[str, str]:
    """{column: "long" or "double"} of the distribution columns, in output order."""
    columns = {quantile_column("purchases", q): "long" for q in quantiles}
    if interval_level is not None:
        columns.update({"purchases_lower": "long", "purchases_upper": "long"})
    if has_spend:
        columns.update({quantile_column("clv", q): "double" for q in quantiles})
    return columns


def distribution_columns(transaction, spend, rfm: pd.DataFrame, horizon: float, *,
                         quantiles: Sequence[float] = (), interval_level: float | None = None,
                         discount_rate: float = 0.0, margin: float = 1.0,
                         clv_draws: int = DEFAULT_CLV_DRAWS, seed: int = 0,
                         covariate_paths: Any = None) -> pd.DataFrame:
    """The distribution columns of ``rfm``'s customers (see the module docstring).

    Parameters
    ----------
    transaction, spend : the fitted models (``spend`` None: no CLV quantiles).
    rfm : the customers, in the model's time unit (recorded in ``attrs`` or checked by the
        caller), with ``monetary_value`` when there is a spend model, and covariate columns.
    horizon : in the model's time unit.
    quantiles, interval_level, discount_rate, margin, clv_draws, seed : as checked by
        :func:`distribution_settings`.
    covariate_paths : the customers' covariate paths over the horizon, for a transaction
        model fitted with time-varying covariates (its PMF along the path); the CLV quantiles
        are not available along paths yet (an error).

    Returns
    -------
    pandas.DataFrame
        On ``rfm``'s index, the columns of :func:`distribution_column_types`.
    """
    out = pd.DataFrame(index=rfm.index)
    if not quantiles and interval_level is None:
        return out
    for method in ("purchase_quantiles", "prediction_interval"):
        if not callable(getattr(transaction, method, None)):
            raise ClvlabError(f"the {type(transaction).__name__} has no {method}: it gives no "
                              "distribution of purchases, so no quantiles or intervals")
    along = {} if covariate_paths is None else {"covariate_paths": covariate_paths}
    if along and spend is not None and quantiles:
        raise ClvlabError("CLV quantiles (quantiles with a spend model) are simulated futures, "
                          "which are not available along covariate paths yet")
    if quantiles:
        q = transaction.purchase_quantiles(rfm, horizon, q=list(quantiles), **along)
        for level, column in zip(quantiles, q.columns):
            out[quantile_column("purchases", level)] = q[column].to_numpy(np.int64)
    if interval_level is not None:
        interval = transaction.prediction_interval(rfm, horizon, level=interval_level, **along)
        out["purchases_lower"] = interval["lower"].to_numpy(np.int64)
        out["purchases_upper"] = interval["upper"].to_numpy(np.int64)
    if spend is not None and quantiles:
        from clvlab.models.value_distribution import value_distribution

        values = value_distribution(transaction, spend, rfm, horizon,
                                    discount_rate=discount_rate, margin=margin,
                                    quantiles=list(quantiles), n_draws=clv_draws, seed=seed,
                                    unvalued="population")
        for level in quantiles:
            out[quantile_column("clv", level)] = values[f"clv_{100 * level:g}%"].to_numpy(np.float64)
    return out
