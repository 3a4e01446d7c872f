"""Predictions of a model with covariates: every customer at their own parameters.

``by_covariate_group`` wraps each per-customer prediction; ``population_level`` marks the
predictions that exist only for a model without covariates.

A model class with ``row_predictions = True`` writes its predictions over NumPy arrays so
that each parameter may be an array with one value per row. Its predictions with covariates
then run once over all customers: the rows are reduced to their distinct (history, own
parameters) rows, a *row model* (``row_model``: the plain model whose ``_check_fitted()``
returns a k x rows array) predicts them in one vectorised pass, and the values are spread
back. No Python loop over covariate groups: a continuous covariate, which makes every customer
a group, costs what a model without covariates costs. Other classes are predicted group by
group, each group with the plain model at its parameters (``plain_models``).
"""

from __future__ import annotations

import contextvars
import functools
import inspect
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Iterator

import numpy as np
import pandas as pd

from clvlab.core.errors import ClvlabError
from clvlab.data.tables import converts, pandas_arguments
from clvlab.inference.grouping import group_rows
from clvlab.inference.row_params import distinct_rows, row_model, rows_are_distinct
from clvlab.models.covariates import CovariateDesign

__all__ = ["plain_models", "by_covariate_group", "population_level", "customer_parameters",
           "row_model", "rows_are_distinct", "along_paths", "distinct_rows"]

#: from how many distinct rows a row model's prediction runs in parts on several threads
PARALLEL_FROM_ROWS = 200_000
#: how many threads (the work releases the GIL; at most 4, as the test suite's workers)
PREDICTION_THREADS = max(1, min(4, os.cpu_count() or 1))


def customer_parameters(model, table: pd.DataFrame) -> np.ndarray:
    """Each customer's own parameters (rows x k, in ``param_names`` order): the baseline
    parameters moved by the customer's covariates. A model without covariates gives every
    row its parameters."""
    k = len(model.param_names)
    values = model.params_.to_numpy()
    if not hasattr(model, "covariates_"):
        return np.broadcast_to(values[:k], (len(table), k))
    design: CovariateDesign = model.covariates_
    covariates = design.encoder.transform(table, model=type(model).__name__)
    if covariates.shape[1] == 0:
        return np.broadcast_to(values[:k], (len(table), k))
    # exponents once per distinct covariate row: a handful for categorical attributes
    distinct, group = group_rows(list(covariates.T))
    params, _ = design.exponents(values[:k], values[k:], np.column_stack(distinct))
    return params[group]


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


def by_covariate_group(method: Callable | None = None, *, distinct: bool = True,
                       rows: bool = True) -> Callable:
    """Run a per-customer prediction of a model with covariates at each customer's own
    parameters: over all rows at once for a ``row_predictions`` model (see the module), group
    by group otherwise; a model without covariates runs it as written. The table is the
    argument named ``rfm`` or ``table``; an array argument with one value per row goes with
    the rows. ``distinct=False`` for a prediction that must not be shared between customers
    with the same history and parameters (random draws): the rows are then not reduced.
    ``rows=False``: group by group even for a ``row_predictions`` model (a method whose code
    needs one value per parameter)."""
    if method is None:
        return functools.partial(by_covariate_group, distinct=distinct, rows=rows)
    signature = inspect.signature(method)
    table_name = "rfm" if "rfm" in signature.parameters else "table"

    def by_group(self, *args, **kwargs):
        if getattr(self, "covariates_", None) is None:
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
        if rows and getattr(type(self), "row_predictions", False):
            return _predict_rows(self, method, bound, table_name, table, distinct)
        results = []
        for positions, plain in plain_models(self, table):
            arguments = {name: _rows_of(value, positions, len(table))
                         for name, value in bound.arguments.items() if name != "self"}
            arguments[table_name] = table.iloc[positions]
            results.append((positions, getattr(plain, method.__name__)(**arguments)))
        return _assemble(results, table)

    wrapper = _paths_or(method, by_group)
    wrapper.by_covariate_group = True
    return wrapper


def _with_paths(signature: inspect.Signature) -> inspect.Signature:
    """The signature with the keyword ``covariate_paths`` (before any ``**kwargs``)."""
    parameters = list(signature.parameters.values())
    extra = inspect.Parameter("covariate_paths", inspect.Parameter.KEYWORD_ONLY, default=None)
    body = [p for p in parameters if p.kind != inspect.Parameter.VAR_KEYWORD]
    tail = [p for p in parameters if p.kind == inspect.Parameter.VAR_KEYWORD]
    return signature.replace(parameters=body + [extra] + tail)


def _along_paths(model, method, signature, table_name, args, kwargs, paths):
    """A prediction of a model fitted along covariate paths (``time_varying_predict``); the
    paths given to a model without them are an error, not ignored."""
    design = getattr(model, "covariates_", None)
    if design is None or not getattr(design, "time_varying", ()):
        raise ClvlabError(
            f"{type(model).__name__}.{method.__name__}: covariate_paths are for a model fitted "
            "with time-varying covariates (fit(rfm, covariate_paths=...)); this one was not")
    # through the model (``BaseModel._predict_along_paths``): the path predictions build on
    # this module's row models, so this module does not import them
    return model._predict_along_paths(method, signature, table_name, args, kwargs, paths)


def along_paths(method: Callable) -> Callable:
    """Give a per-customer prediction that runs its own covariate handling the keyword
    ``covariate_paths``: a model fitted along paths predicts through ``time_varying_predict``;
    other models run the method as written."""
    return _paths_or(method, method)


def _paths_or(method: Callable, otherwise: Callable) -> Callable:
    """``method`` with the keyword ``covariate_paths``: a model fitted along paths (or any model
    given paths) goes through ``_along_paths``; the others run ``otherwise``."""
    signature = inspect.signature(method)
    table_name = "rfm" if "rfm" in signature.parameters else "table"

    @functools.wraps(method)
    def wrapper(self, *args, covariate_paths=None, **kwargs):
        # a polars or Arrow table becomes pandas here, at the method's edge (clvlab.data.tables)
        (self, *args), kwargs = pandas_arguments(signature, (table_name,), (self, *args), kwargs)
        design = getattr(self, "covariates_", None)
        if design is not None and getattr(design, "time_varying", ()) or covariate_paths is not None:
            return _along_paths(self, method, signature, table_name, args, kwargs, covariate_paths)
        return otherwise(self, *args, **kwargs)

    wrapper.__signature__ = _with_paths(signature)
    return converts(table_name)(wrapper)


def _predict_rows(model, method: Callable, bound, table_name: str, table: pd.DataFrame,
                  distinct: bool):
    """``method`` over every row at that row's own parameters, once per distinct (columns the
    model reads, per-row arguments, parameters) row."""
    params = customer_parameters(model, table)
    n = len(table)
    arguments = {name: value for name, value in bound.arguments.items() if name != "self"}
    if not distinct:
        arguments[table_name] = table
        with distinct_rows():
            return getattr(row_model(model, params), method.__name__)(**arguments)
    per_row = [name for name, value in arguments.items()
               if name != table_name and _rows_of(value, np.arange(1), n) is not value]
    read = [c for c in (*model.columns, "monetary_value") if c in table.columns]
    key = [*(table[c].to_numpy() for c in dict.fromkeys(read)),
           *(np.asarray(arguments[name]) for name in per_row), *params.T]
    try:
        unique, inverse = group_rows([np.asarray(c, dtype=np.float64) for c in key])
    except (TypeError, ValueError):  # text in a column the model reads: let its checks say so
        unique, inverse = None, np.arange(n)
    firsts = np.arange(n) if unique is None else _first_positions(inverse, n)
    for name in per_row:
        arguments[name] = np.asarray(arguments[name])[firsts]
    rows = table if unique is None else table.iloc[firsts]
    result = _in_parts(model, method.__name__, params[firsts], arguments, table_name, rows,
                       per_row)
    if unique is None:
        return result
    if isinstance(result, (pd.Series, pd.DataFrame)):
        spread = result.iloc[inverse]
        spread.index = table.index
        return spread
    return np.asarray(result)[inverse]


def _in_parts(model, name: str, params: np.ndarray, arguments: dict, table_name: str,
              rows: pd.DataFrame, per_row: list[str]):
    """The row model's prediction over ``rows``; from ``PARALLEL_FROM_ROWS`` rows on, in
    ``PREDICTION_THREADS`` parts at once (the work is NumPy, SciPy and numba loops, which
    release the GIL: SciPy's hyp2f1, the slowest step of BG/NBD's CLV, lets another Python
    thread run at 80 % of its own pace while it works). Each part runs in a copy
    of the caller's context, so the time-unit check already made (``checked``) holds there."""
    def run(part: slice):
        own = dict(arguments)
        own[table_name] = rows.iloc[part]
        for key in per_row:
            own[key] = np.asarray(arguments[key])[part]
        with distinct_rows():
            return getattr(row_model(model, params[part]), name)(**own)

    n, threads = len(rows), PREDICTION_THREADS
    if threads < 2 or n < PARALLEL_FROM_ROWS:
        return run(slice(0, n))
    bounds = np.linspace(0, n, threads + 1).astype(int)
    parts = [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:])]
    with ThreadPoolExecutor(threads) as pool:
        results = list(pool.map(lambda part: contextvars.copy_context().run(run, part), parts))
    if all(isinstance(r, (pd.Series, pd.DataFrame)) for r in results):
        return pd.concat(results)
    return np.concatenate([np.asarray(r) for r in results])


def _first_positions(inverse: np.ndarray, n: int) -> np.ndarray:
    """The first row of each distinct row, in the order of the distinct rows."""
    firsts = np.empty(inverse.max() + 1, dtype=np.int64)
    firsts[inverse[::-1]] = np.arange(n - 1, -1, -1)  # the last write, the first row, wins
    return firsts


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
