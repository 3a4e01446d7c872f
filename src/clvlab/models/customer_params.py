"""Predictions of a model with covariates: every customer at their own parameters.

``by_covariate_group`` wraps each per-customer prediction; ``population_level`` marks the
predictions that exist only for a model without covariates.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any, Callable, Iterator

import numpy as np
import pandas as pd

from clvlab.core.errors import ClvlabError
from clvlab.inference.mle import group_rows
from clvlab.models.covariates import CovariateDesign

__all__ = ["plain_models", "by_covariate_group", "population_level"]


# --- predictions, one covariate group at a time ---------------------------------------------
def plain_models(model, table: pd.DataFrame) -> Iterator[tuple[np.ndarray, Any]]:
    """(row positions, the plain model at those customers' parameters), per covariate group."""
    design: CovariateDesign = model.covariates_
    covariates = design.encoder.transform(table, model=type(model).__name__)
    if len(table) == 0:
        return
    distinct, group = group_rows(list(covariates.T)) if covariates.shape[1] else ([], np.zeros(len(table), int))
    k = len(model.param_names)
    values = model.params_.to_numpy()
    rows_of_group = np.column_stack(distinct) if distinct else np.zeros((1, 0))
    params, _ = design.exponents(values[:k], values[k:], rows_of_group)
    order = np.argsort(group, kind="stable")
    bounds = np.flatnonzero(np.diff(group[order])) + 1
    for positions in np.split(order, bounds):
        yield positions, model.plain_at(params[group[positions[0]]])


def by_covariate_group(method: Callable) -> Callable:
    """Run a per-customer prediction group by group, each with the plain model at that group's
    parameters; a model without covariates runs it as written. The table is the argument named
    ``rfm`` or ``table``; an array argument with one value per row is split with the rows."""
    signature = inspect.signature(method)
    table_name = "rfm" if "rfm" in signature.parameters else "table"

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        if not hasattr(self, "covariates_"):
            return method(self, *args, **kwargs)
        bound = signature.bind(self, *args, **kwargs)
        bound.apply_defaults()
        table = bound.arguments[table_name]
        if table is None:
            raise _population_error(self, method.__name__)
        if len(table) == 0:  # the plain model's empty result, once the columns are checked
            self.covariates_.encoder.transform(table, model=type(self).__name__)
            return getattr(self.plain_at(self._check_fitted()), method.__name__)(
                *args, **kwargs)
        results = []
        for positions, plain in plain_models(self, table):
            arguments = {name: _rows_of(value, positions, len(table))
                         for name, value in bound.arguments.items() if name != "self"}
            arguments[table_name] = table.iloc[positions]
            results.append((positions, getattr(plain, method.__name__)(**arguments)))
        return _assemble(results, table)

    wrapper.by_covariate_group = True
    return wrapper


def population_level(method: Callable) -> Callable:
    """A prediction for the population as a whole: a model with covariates has none."""
    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        if hasattr(self, "covariates_"):
            raise _population_error(self, method.__name__)
        return method(self, *args, **kwargs)

    wrapper.population_level = True
    return wrapper


def _population_error(model, name: str) -> ClvlabError:
    return ClvlabError(
        f"this {type(model).__name__} has covariates, so {name} depends on who the customer is: "
        f"call it on model.for_attributes({{...}}), the model of a customer with those attributes "
        "(or pass a table of customers where the method takes one)")


def _rows_of(value: Any, positions: np.ndarray, n: int) -> Any:
    if isinstance(value, (np.ndarray, pd.Series)) and np.ndim(value) == 1 and len(value) == n and n > 1:
        return np.asarray(value)[positions]
    return value


def _assemble(results: list, table: pd.DataFrame):
    if not results:
        raise ClvlabError("no customers to predict")
    positions = np.concatenate([p for p, _ in results])
    inverse = np.empty_like(positions)
    inverse[positions] = np.arange(len(positions))
    first = results[0][1]
    if isinstance(first, (pd.Series, pd.DataFrame)):
        joined = pd.concat([r for _, r in results]).iloc[inverse]
        joined.index = table.index
        return joined
    joined = np.concatenate([np.atleast_1d(np.asarray(r)) for _, r in results])
    return joined[inverse]
