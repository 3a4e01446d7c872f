"""Each model's log-likelihood at per-row parameters, in one compiled pass over the rows.

A model with covariates gives every customer their own parameters. Evaluating the plain model
once per covariate group costs a Python call (or a compiled call with its own allocations) per
group, and a continuous covariate makes a group of every customer. Here the rows are evaluated
together instead, each at its group's parameters ``own[group[i]]``, by the kernels of
``row_kernels_continuous`` (BG/NBD, MBG/NBD, Gamma-Gamma), ``row_kernels_pareto`` (Pareto/NBD)
and ``row_kernels_discrete`` (BG/BB, sBG); those kernels share the costly terms between rows through
*levels* (a distinct value of the data a term reads, with the group where the term's parameters
differ between groups), which this module builds.

Public:

- ``row_log_likelihood(model, params_rows, data)``: each row's log-likelihood and its gradient
  in the row's own parameters, for any per-row parameters (a fitted model's per-customer
  log-likelihood);
- ``family_of(model)``: the model's per-row kernels (a ``RowFamily``), or None for a model
  without them (a user's own model class, or one that overrides the likelihood of a clvlab
  model): callers then loop over the groups with the plain model (``clvlab.models.covariates``);
- ``evaluate_rows``: the rows of one family at given group parameters, with the fallback.

Rows that a kernel flags (Pareto/NBD's series that does not converge, which the plain model
hands to mpmath; BG/BB data that are not whole numbers) are evaluated by the plain model's
``_loglik``, once per group, so every value is the plain model's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from clvlab.core.errors import ClvlabError
from clvlab.inference.grouping import group_rows
from clvlab.models import row_kernels_continuous as continuous
from clvlab.models import row_kernels_discrete as discrete
from clvlab.models import row_kernels_pareto as pareto

__all__ = ["RowFamily", "family_of", "row_log_likelihood", "evaluate_rows", "levels_of"]


@dataclass(frozen=True)
class RowFamily:
    """The per-row kernels of one model family.

    ``rows(own, *layout, out)`` fills ``out`` (rows, k + 2) with each row's log-likelihood, its
    gradient in the row's own parameters and a flag (1: evaluate with the plain model);
    ``total(params, zp, proc, sign, *layout, weights)`` returns [sum of weighted
    log-likelihoods, gradient in (params), flag] (``covariate_kernel`` says what zp, proc and
    sign are); ``layout(model, columns, group, varies)`` builds the arrays both read from the
    model's data columns (``model._data``'s, distinct rows), each row's group and which own
    parameters differ between groups."""

    name: str
    rows: Callable
    total: Callable
    layout: Callable[..., tuple]

    @property
    def sources(self) -> tuple[str, ...]:
        """The modules whose source identifies the compiled kernels (PyTensor's cache key)."""
        return tuple(dict.fromkeys([self.total.__module__, continuous.__name__,
                                    "clvlab.models.covariate_kernel"]))


def levels_of(columns: list[np.ndarray], group: np.ndarray, by_group: bool) -> tuple:
    """The distinct values of ``columns`` (with ``group`` when ``by_group``): (each column's
    levels..., each level's group (0 without ``by_group``), each row's level)."""
    if by_group and len(group) and group[-1] == len(group) - 1 and np.all(np.diff(group) == 1):
        # every row its own group, in order (a continuous covariate): the rows are the levels
        return (*(np.ascontiguousarray(v, dtype=np.float64) for v in columns),
                np.ascontiguousarray(group, dtype=np.int64), np.arange(len(group), dtype=np.int64))
    if by_group:
        distinct, at = group_rows([group.astype(np.float64), *columns])
        level_group, values = distinct[0].astype(np.int64), distinct[1:]
    else:
        values, at = group_rows(columns)
        level_group = np.zeros(len(values[0]), dtype=np.int64)
    return (*(np.ascontiguousarray(v, dtype=np.float64) for v in values),
            np.ascontiguousarray(level_group), np.ascontiguousarray(at, dtype=np.int64))


def _bg_nbd_layout(model, columns, group, varies):
    x, t_x, T = columns
    first_chance = np.array([float(getattr(model, "_first_chance", 0))])
    return (group, first_chance, *levels_of([x], group, bool(varies[0])),
            *levels_of([x], group, bool(varies[2] or varies[3])), x, t_x, T)


def _pareto_nbd_layout(model, columns, group, varies):
    x, t_x, T = columns
    moved = bool(np.any(varies))  # each bracket part depends on all four parameters
    by_x = levels_of([x], group, bool(varies[0] or varies[2]))  # the terms of r, s and x
    first, second = levels_of([x, t_x], group, moved), levels_of([x, T], group, moved)
    # the series coefficients are tabulated per x where r and s are the same in every group
    tabulated = not (varies[0] or varies[2])
    n_coefficients = np.array([pareto.N_COEFFICIENTS if tabulated else 0], dtype=np.int64)

    def x_level(part):  # each part level's x level (by_x: levels of x alone, sorted)
        at = np.searchsorted(by_x[0], part[0]) if tabulated else np.zeros(len(part[0]), np.int64)
        return np.ascontiguousarray(at, dtype=np.int64)

    return (group, *by_x, *first[:3], x_level(first), first[3], *second[:3], x_level(second),
            second[3], n_coefficients)


def _gamma_gamma_layout(model, columns, group, varies):
    x, z = columns
    return (group, *levels_of([x], group, bool(varies[0] or varies[1])), x, z)


def _as_given(model, columns, group, varies):
    return (group, *columns)


_FAMILIES = {
    ("clvlab.models.bg_nbd", "BetaGeo"):
        RowFamily("bg_nbd", continuous.bg_nbd_rows, continuous.bg_nbd_total, _bg_nbd_layout),
    ("clvlab.models.pareto_nbd", "ParetoNBD"):
        RowFamily("pareto_nbd", pareto.pareto_nbd_rows, pareto.pareto_nbd_total,
                  _pareto_nbd_layout),
    ("clvlab.models.gamma_gamma", "GammaGamma"):
        RowFamily("gamma_gamma", continuous.gamma_gamma_rows, continuous.gamma_gamma_total,
                  _gamma_gamma_layout),
    ("clvlab.models.bg_bb", "BetaGeoBetaBinom"):
        RowFamily("bg_bb", discrete.bg_bb_rows, discrete.bg_bb_total, _as_given),
    ("clvlab.models.shifted_beta_geo", "ShiftedBetaGeo"):
        RowFamily("sbg", discrete.sbg_rows, discrete.sbg_total, _as_given),
}


def family_of(model) -> RowFamily | None:
    """The per-row kernels of ``model``'s class: those of the clvlab model it is or derives
    from (MBG/NBD: BG/NBD's, with its extra dropout chance), unless the class or a class between
    it and that model redefines the likelihood or the data it reads (then None)."""
    mro = type(model).__mro__
    for position, cls in enumerate(mro):
        family = _FAMILIES.get((cls.__module__, cls.__name__))
        if family is None:
            continue
        # (_row_kernel: a spend model's per-row likelihood, which SpendModel._loglik calls)
        for attribute in ("_loglik", "_data", "_prepare", "_row_kernel"):
            owner = next((i for i, c in enumerate(mro) if attribute in c.__dict__), len(mro))
            if owner < position:
                return None
        return family
    return None


def _model_columns(model, data) -> list[np.ndarray]:
    n = len(type(model).columns)
    return [np.ascontiguousarray(column, dtype=np.float64) for column in list(data)[:n]]


def evaluate_rows(model, family: RowFamily, own: np.ndarray, group: np.ndarray,
                  columns: list[np.ndarray], layout: tuple) -> tuple[np.ndarray, np.ndarray]:
    """(each row's log-likelihood, its gradient in the row's own parameters) with rows at
    ``own[group[i]]``: the family's kernel, and the plain model's ``_loglik`` for the rows it
    flags (once per group that has some)."""
    k = own.shape[1]
    out = np.empty((len(group), k + 2))
    family.rows(np.ascontiguousarray(own, dtype=np.float64), *layout, out)
    values, gradients = out[:, 0], out[:, 1:k + 1]
    flagged = np.flatnonzero(out[:, k + 1])
    if flagged.size:
        for g in np.unique(group[flagged]):
            rows = flagged[group[flagged] == g]
            v, grad = model._loglik(own[g], [column[rows] for column in columns])
            values[rows], gradients[rows] = v, grad
    return values.copy(), gradients.copy()


def row_log_likelihood(model, params_rows, data) -> tuple[np.ndarray, np.ndarray]:
    """Each row's log-likelihood and its gradient in the row's own parameters.

    Parameters
    ----------
    model : a clvlab model (fitted or not; only its class, and MBG/NBD's extra dropout chance,
        matter).
    params_rows : array (rows, k), each row's own parameters in ``model.param_names``' order
        (for a model with covariates: each customer's, ``theta_j exp(sign_j x_i' g)``), or
        (k,) for one set shared by every row.
    data : the model's data columns for those rows, as ``model._data(table)`` returns them
        (e.g. [frequency, recency, T]; Gamma-Gamma: [frequency, monetary_value] of the
        customers with repeat purchases).

    Returns
    -------
    values : array (rows,), the log-likelihood of each row.
    gradients : array (rows, k), its gradient in the row's own parameters.

    Rows with the same parameters share the work the plain model shares (per distinct
    frequency, per distinct (frequency, recency) pair); the values are the plain model's
    ``_loglik`` at each row's parameters (to rounding), which also evaluates the rows the
    compiled kernels cannot and a model class without per-row kernels.
    """
    columns = _model_columns(model, data)
    n = len(columns[0])
    k = len(model.param_names)
    params_rows = np.asarray(params_rows, dtype=np.float64)
    if params_rows.ndim == 1:
        params_rows = np.broadcast_to(params_rows, (n, k))
    if params_rows.shape != (n, k):
        raise ClvlabError(f"params_rows must have shape ({n}, {k}) for {n} rows of "
                          f"{type(model).__name__}, got {params_rows.shape}")
    distinct, group = group_rows(list(params_rows.T))
    own = np.column_stack(distinct)
    group = np.ascontiguousarray(group, dtype=np.int64)
    family = family_of(model)
    if family is None:
        values, gradients = np.empty(n), np.empty((n, k))
        for g in range(len(own)):
            rows = np.flatnonzero(group == g)
            values[rows], gradients[rows] = model._loglik(own[g], [c[rows] for c in columns])
        return values, gradients
    varies = np.ptp(own, axis=0) > 0
    # in group order, where the kernels read parameters and levels in the order of the rows
    order = np.argsort(group, kind="stable")
    columns = [column[order] for column in columns]
    layout = family.layout(model, columns, group[order], varies)
    sorted_values, sorted_gradients = evaluate_rows(model, family, own, group[order], columns,
                                                    layout)
    values, gradients = np.empty(n), np.empty((n, k))
    values[order], gradients[order] = sorted_values, sorted_gradients
    return values, gradients
