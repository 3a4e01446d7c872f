"""The served CLV model's input signature and the checks MLflow's schema cannot make.

MLflow's "double" column refuses int64 ("Can not safely convert int64 to float64"), which is
what ``clvlab.rfm_summary`` and ``clvlab.read_rfm`` give counts (and durations read from text),
so every numeric input (the RFM columns, the churn adjuster's features, covariates read as
numbers) is of MLflow's type "any" and :func:`as_numbers` makes sure, when scoring, that it
holds numbers. Text covariates are "string", boolean ones "boolean". The parameters are the
scoring window, the rates and the time unit of the rows' durations, which a payload cannot
otherwise carry, and the distribution options of :mod:`clvlab.ops.scoring_intervals`:
``quantiles`` (a list of levels: MLflow's schema takes a list, not a comma string, through the
pyfunc; :func:`clvlab.ops.serving.score_frame` called directly takes both), ``interval_level``,
``clv_draws`` and ``seed``.
"""

from __future__ import annotations

import pandas as pd

from clvlab.core.errors import ClvlabError
from clvlab.ops.scoring_intervals import DISTRIBUTION_PARAMS

__all__ = ["DEFAULT_PARAMS", "PARAM_TYPES", "LIST_PARAMS", "signature", "numeric_inputs", "covariate_types",
           "as_numbers"]

#: the pyfunc's parameters; the horizon has no default (it is in the model's time unit), and
#: time_unit is the unit of the rows' durations, which a payload cannot otherwise say
DEFAULT_PARAMS = {"horizon": None, "discount_rate": 0.0, "margin": 1.0, "time_unit": None,
                  "check_durations": True, **DISTRIBUTION_PARAMS}
PARAM_TYPES = {"horizon": "double", "discount_rate": "double", "margin": "double",
               "time_unit": "string", "check_durations": "boolean", "quantiles": "double",
               "interval_level": "double", "clv_draws": "long", "seed": "long"}
#: parameters that are lists (MLflow: a 1-D array of their type)
LIST_PARAMS = {"quantiles"}


def numeric_inputs(transaction, spend, adjuster, attributes: pd.DataFrame | None = None) -> list[str]:
    """The input columns that hold numbers: the RFM columns, the adjuster's features and the
    covariates the models read as numbers (not booleans: see :func:`covariate_types`)."""
    from clvlab.models.customer_scores import RFM_INPUTS

    columns = list(RFM_INPUTS) + (["monetary_value"] if spend is not None else [])
    if adjuster is not None:
        columns += [c for c in adjuster.feature_names_in_ if c not in columns]
    types = covariate_types(transaction, spend, attributes)
    return columns + [c for c, kind in types.items() if kind == "double" and c not in columns]


def as_numbers(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """``frame`` with its numeric ``columns`` as numbers (any integer or float type goes in, as
    the signature's "any" lets it); a value that is not a number is an error naming it."""
    converted = {}
    for column in columns:
        if column not in frame.columns:
            continue
        values = frame[column]
        if pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
            continue
        numbers = pd.to_numeric(values, errors="coerce")
        bad = values[numbers.isna() & values.notna()]
        if len(bad):
            raise ClvlabError(f"the input column {column!r} must hold numbers; it holds a value "
                              f"that is not a number: {bad.iloc[0]!r} (customer {bad.index[0]!r}); "
                              "send numbers (in JSON, numbers without quotes)")
        converted[column] = numbers
    if not converted:
        return frame
    out = frame.assign(**converted)
    out.attrs = frame.attrs
    return out


def signature(transaction, spend, adjuster, attributes: pd.DataFrame | None = None):
    """The pyfunc's signature. Numeric inputs are of MLflow's type "any": a "double" column
    refuses int64, which is what ``rfm_summary`` and ``read_rfm`` give counts (and durations
    read from text); :func:`score_frame` checks that they are numbers. Text covariates are
    "string", boolean ones "boolean"."""
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, ParamSchema, ParamSpec, Schema
    from mlflow.types.schema import AnyType

    from clvlab.models.customer_scores import output_columns

    numeric = numeric_inputs(transaction, spend, adjuster, attributes)
    inputs = [ColSpec(AnyType(), c) for c in numeric]
    types = covariate_types(transaction, spend, attributes)
    inputs += [ColSpec(kind, c) for c, kind in types.items() if c not in numeric]
    return ModelSignature(
        inputs=Schema(inputs),
        outputs=Schema([ColSpec("double", c) for c in output_columns(spend)]),
        params=ParamSchema([ParamSpec(k, PARAM_TYPES[k], v, shape=(-1,) if k in LIST_PARAMS else None)
                            for k, v in DEFAULT_PARAMS.items()]))


def covariate_types(transaction, spend, attributes: pd.DataFrame | None = None) -> dict[str, str]:
    """The signature's type of each covariate column: "string" for the columns the models
    encode as text, "boolean" for the columns that are booleans in ``attributes`` (the table the
    models were fitted on, or any with those columns; a model file records numbers and booleans
    alike as numbers), "double" for the other numbers."""
    types = {}
    for model in (transaction, spend):
        design = getattr(model, "covariates_", None)
        for column in design.encoder.columns if design is not None else []:
            if column in design.encoder.levels:
                types[column] = "string"
            elif attributes is not None and column in attributes.columns and \
                    pd.api.types.is_bool_dtype(attributes[column]):
                types[column] = "boolean"
            else:
                types.setdefault(column, "double")
    return types
