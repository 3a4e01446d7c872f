"""Time-invariant covariates in any clvlab model: each customer's own parameters.

A model with covariates is the same model at each customer's own parameters,
``theta_ij = theta_j * exp(sign_j * x_i' g_process(j))``, where the model class names which
parameter each process moves and in which direction (``covariate_links``). So the likelihood is
the no-covariate likelihood at each *covariate group*'s parameters (customers with the same
encoded covariates), with its exact gradient, and the gradient in the coefficients follows by
the chain rule:

    d LL / d theta_j = sum_g G_gj e_gj,   d LL / d g = sum_g sum_j G_gj theta_gj sign_j x_g,

with G_gj the gradient of group g's log-likelihood in its own parameter j and
e_gj = exp(sign_j x_g' g). Every clvlab model evaluates all rows in one compiled pass, each row
at its group's parameters (``clvlab.models.row_kernels``, ``covariate_likelihood``), so a
continuous covariate, which makes a group of every customer, costs about what the rows cost; a
model class without per-row kernels (a user's own) evaluates the plain model once per group.
Predictions (``customer_params``) run per group.

Sign convention (every model): a positive purchase coefficient means more purchasing, a
positive dropout coefficient faster dropout, a positive spend coefficient more spend.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from clvlab.core.errors import ClvlabError
from clvlab.inference import bayes
from clvlab.inference.likelihood_op import CompiledLikelihood
from clvlab.inference.grouping import compress
from clvlab.inference.mle import fit_mle
from clvlab.models.covariate_encoding import CovariateEncoder
from clvlab.models.covariate_kernel import grouped_kernel
from clvlab.models.covariate_likelihood import GroupedData, group_likelihood

__all__ = ["CovariateDesign", "PROCESS_SETTINGS", "has_covariates", "design_for",
           "GroupedData", "group_likelihood", "fit_with_covariates", "sampler_target"]

#: constructor setting -> the process its columns move
PROCESS_SETTINGS = {"purchase_covariates": "purchase", "dropout_covariates": "dropout",
                    "spend_covariates": "spend"}


def has_covariates(model) -> bool:
    return any(getattr(model, setting, None) for setting in PROCESS_SETTINGS)


@dataclass
class CovariateDesign:
    """A fitted model's covariates: the encoding, which encoded covariates each process uses,
    which are shared between purchase and dropout, and the links of the model's parameters."""

    encoder: CovariateEncoder
    processes: dict[str, list[str]]          # process -> encoded covariate names
    shared: list[str] = field(default_factory=list)  # encoded names with one coefficient
    links: dict[str, tuple[str, int]] = field(default_factory=dict)  # parameter -> (process, sign)
    #: the columns that come from covariate paths (time-varying; ``clvlab.models.time_varying``)
    time_varying: tuple[str, ...] = ()

    @property
    def coefficient_names(self) -> list[str]:
        """The estimated coefficients' names: ``process.covariate``, or ``shared.covariate``
        for a coefficient that the purchase and dropout processes share."""
        names = [f"{process}.{name}" for process, used in self.processes.items()
                 for name in used if name not in self.shared]
        return names + [f"shared.{name}" for name in self.shared]

    def maps(self) -> dict[str, np.ndarray]:
        """process -> matrix A (encoded covariates x coefficients) with g_process = A @ c."""
        names = self.coefficient_names
        encoded = self.encoder.names
        out = {}
        for process, used in self.processes.items():
            matrix = np.zeros((len(encoded), len(names)))
            for name in used:
                key = f"shared.{name}" if name in self.shared else f"{process}.{name}"
                matrix[encoded.index(name), names.index(key)] = 1.0
            out[process] = matrix
        return out

    def scales(self) -> np.ndarray:
        """Each coefficient's covariate scale (the optimiser works with covariate / scale)."""
        return np.array([self.encoder.scales[name.split(".", 1)[1]] for name in self.coefficient_names])

    def exponents(self, base: np.ndarray, coefficients: np.ndarray, covariates: np.ndarray):
        """Each row's parameters (rows x k) and multipliers e = exp(sign x' g)."""
        maps = self.maps()
        multipliers = np.ones((len(covariates), len(base)))
        for j, (process, sign) in enumerate(self._link_list(len(base))):
            if process in maps:  # a process without covariates leaves its parameter alone
                multipliers[:, j] = np.exp(sign * (covariates @ (maps[process] @ coefficients)))
        return base * multipliers, multipliers

    def chain(self, gradient: np.ndarray, params: np.ndarray, multipliers: np.ndarray,
              covariates: np.ndarray) -> np.ndarray:
        """Per-row gradients in the own parameters (rows x k) -> in (base, coefficients)."""
        maps = self.maps()
        k = params.shape[1]
        d_base = gradient * multipliers
        d_coef = np.zeros((len(gradient), len(self.coefficient_names)))
        for j, (process, sign) in enumerate(self._link_list(k)):
            if process in maps:
                d_coef += (sign * gradient[:, j] * params[:, j])[:, None] * (covariates @ maps[process])
        return np.column_stack([d_base, d_coef])

    def _link_list(self, k: int) -> list[tuple[str | None, int]]:
        return [self.links.get(name, (None, 0)) for name in self.base_names][:k]

    base_names: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        out = {"encoder": self.encoder.to_dict(), "processes": {k: list(v) for k, v in self.processes.items()},
               "shared": list(self.shared)}
        if self.time_varying:
            out["time_varying"] = list(self.time_varying)
        return out


def design_for(model, table: pd.DataFrame) -> CovariateDesign:
    """Learn the encoding of ``model``'s covariate settings from the fit's table."""
    name = type(model).__name__
    links = model.covariate_links()
    offered = {process for process, _ in links.values()}
    requested = {}
    for setting, process in PROCESS_SETTINGS.items():
        columns = getattr(model, setting, None)
        if not columns:
            continue
        if process not in offered:
            raise ClvlabError(f"{name} has no {process} process to move; its covariate settings are "
                              f"{[s for s, p in PROCESS_SETTINGS.items() if p in offered]}")
        requested[process] = list(columns)
    every = list(dict.fromkeys(c for columns in requested.values() for c in columns))
    encoder = CovariateEncoder.fit(table, every, model=name)
    return design_of(model, encoder, requested, links)


def design_of(model, encoder: CovariateEncoder, requested: dict[str, list[str]],
              links) -> CovariateDesign:
    """The design of the columns each process takes (``requested``), encoded by ``encoder``,
    with the model's ``shared_covariates`` (static and time-varying fits alike)."""
    processes = {process: encoder.names_for(columns) for process, columns in requested.items()}
    shared = []
    for column in model.shared_covariates or []:
        if not all(column in requested.get(p, []) for p in ("purchase", "dropout")):
            raise ClvlabError(f"shared_covariates: {column!r} must be among both purchase_covariates "
                              "and dropout_covariates to share one coefficient")
        shared.extend(encoder.names_for([column]))
    return CovariateDesign(encoder=encoder, processes=processes, shared=shared, links=links,
                           base_names=tuple(model.param_names))


def design_from_dict(model, payload: dict[str, Any]) -> CovariateDesign:
    return CovariateDesign(encoder=CovariateEncoder.from_dict(payload["encoder"]),
                           processes={k: list(v) for k, v in payload["processes"].items()},
                           shared=list(payload.get("shared", [])), links=model.covariate_links(),
                           base_names=tuple(model.param_names),
                           time_varying=tuple(payload.get("time_varying", ())))


# --- fitting -------------------------------------------------------------------------------
def fit_with_covariates(model, table: pd.DataFrame, weights: np.ndarray | None):
    """Maximum likelihood over the base parameters and the coefficients.

    Returns (FitResult on the user's scale, design, row weights after compression). The
    optimiser sees each covariate divided by its standard deviation (coefficient x sd), which
    conditions the problem whatever the covariates' units; estimates, covariance and the
    penalty ``covariate_penalty * sum(g**2)`` are on the user's scale.
    """
    design = design_for(model, table)
    base = model._data(table)
    covariates = design.encoder.transform(table, model=type(model).__name__)
    distinct, counts = compress([*base, *covariates.T], weights)
    model._check_identifiable(distinct[:len(base)], counts)
    grouped = GroupedData(model, distinct, counts, len(base))
    scales = design.scales()
    rows, total = group_likelihood(model, design, grouped, scales)
    result = fit_scaled(model, design, scales, model._start(grouped.base, grouped.weights),
                        rows, grouped.weights, total)
    return result, design, grouped


def fit_scaled(model, design: CovariateDesign, scales: np.ndarray, own_start: np.ndarray,
               rows, weights: np.ndarray, total):
    """Maximum likelihood over the model's own parameters and the coefficients, which the
    likelihood sees divided by their columns' ``scales`` (so that a coefficient of a column in
    thousands and one of a 0/1 flag are found on one footing): the start (coefficients 0, the
    user's ``start_params`` scaled in), the penalties (``covariate_penalty`` on the user's scale)
    and the result back on the user's scale. Static and time-varying fits share it."""
    k = len(model.param_names)
    names = [*model.param_names, *design.coefficient_names]
    start = np.concatenate([own_start, np.zeros(len(scales))])
    for name, value in (model.start_params or {}).items():
        if name not in names:
            raise ClvlabError(f"start_params names {name!r}, which is not a parameter of this "
                              f"{type(model).__name__} (it has {names})")
        position = names.index(name)
        start[position] = float(value) * (scales[position - k] if position >= k else 1.0)
    penalty = np.concatenate([np.full(k, float(model.penalty)),
                              float(model.covariate_penalty) / scales ** 2])
    positive = np.r_[np.ones(k, bool), np.zeros(len(scales), bool)]
    result = fit_mle(rows, weights, start, names=names, penalty=penalty,
                     max_restarts=model.max_restarts, total=total, positive=positive,
                     exact_total=True)
    to_user = np.r_[np.ones(k), 1.0 / scales]
    result.params = result.params * to_user
    result.covariance = result.covariance * np.outer(to_user, to_user)
    return result


def no_interior_maximum(model, design: CovariateDesign, grouped: GroupedData,
                        result) -> str | None:
    """For the BG/NBD form where dropout covariates scale a and b together: whether the fit ran
    off to the boundary where, for some customers, the Beta distribution of the dropout
    probability collapses to a point (a_i + b_i -> infinity with a_i / (a_i + b_i) fixed).

    In that form the covariates cannot move the mean dropout probability, so when the data want
    them to, the log-likelihood keeps rising towards that boundary and has no interior maximum
    (CLVTools returns such fits as converged, with a = 1223, b = 9044 on its apparel data).
    The test: a concentration a_i + b_i above 10,000 (a Beta whose standard deviation is below
    0.5 percentage points) in some covariate group. Returns the message to raise, or None."""
    names = list(model.param_names)
    if design.links.get("a") != ("dropout", 1) or not design.processes.get("dropout"):
        return None
    k = len(names)
    params, _ = design.exponents(result.params[:k], result.params[k:], grouped.covariates_of_group)
    a, b = names.index("a"), names.index("b")
    concentration = params[:, a] + params[:, b]
    worst = int(np.argmax(concentration))
    if concentration[worst] <= 1e4:
        return None
    where = ", ".join(f"{name}={value:g}" for name, value in
                      zip(design.encoder.names, grouped.covariates_of_group[worst]))
    return (f"{type(model).__name__}: the log-likelihood has no interior maximum with the dropout "
            f"covariates {design.processes['dropout']} in the form where they scale a and b "
            f"together (dropout_form='a_and_b'): it keeps rising towards a boundary where a_i + "
            f"b_i -> infinity, i.e. where the dropout probability of customers with ({where}) has "
            f"no spread at all. The optimiser reached a_i + b_i = {concentration[worst]:.3g} there, "
            f"with log-likelihood {result.log_likelihood:.4f}, a lower bound of the supremum. "
            "In this form the covariates cannot move the mean dropout probability, which is what "
            "these data ask of them. Use dropout_form='b' (the covariates move the mean): "
            f"{type(model).__name__}(dropout_form='b', ...), `clvlab fit --dropout-form b`, or "
            "';dropout_form=b' inside a backtest candidate's brackets (e.g. "
            "'bg-nbd[Gender,Channel;dropout_form=b]'); or drop the dropout covariates.")


def design_from_coefficients(model, coefficients: dict[str, dict[str, float]],
                             levels: dict[str, list[str]] | None = None):
    """A design and coefficient values from known coefficients, for ``from_params``:
    ``coefficients`` {process: {covariate: value}}, a text column's covariates named
    ``column[level]`` with its levels (reference first) in ``levels``."""
    levels = {k: [str(v) for v in vs] for k, vs in (levels or {}).items()}
    links = model.covariate_links()
    offered = {process for process, _ in links.values()}
    unknown = sorted(set(coefficients) - offered)
    if unknown:
        raise ClvlabError(f"{type(model).__name__} has no {unknown} process; it has {sorted(offered)}")
    columns, scales = [], {}
    for process, values in coefficients.items():
        for name in values:
            column = name.split("[", 1)[0] if name.endswith("]") and "[" in name else name
            if column != name and (column not in levels or name[len(column) + 1:-1] not in levels[column][1:]):
                raise ClvlabError(f"coefficient {name!r} names a level of {column!r}: give its "
                                  f"levels, reference first, in levels={{{column!r}: [...]}}")
            columns.append(column)
    columns = list(dict.fromkeys(columns))
    for column in columns:
        names = [f"{column}[{level}]" for level in levels[column][1:]] if column in levels else [column]
        scales.update({name: 1.0 for name in names})
    encoder = CovariateEncoder(columns=columns, levels={c: levels[c] for c in columns if c in levels},
                               scales=scales)
    processes = {p: [n for n in encoder.names if n in values] for p, values in coefficients.items()}
    design = CovariateDesign(encoder=encoder, processes=processes, links=links,
                             base_names=tuple(model.param_names))
    values = [float(coefficients[name.split(".", 1)[0]][name.split(".", 1)[1]])
              for name in design.coefficient_names]
    return design, np.array(values)


def sampler_target(model, design: CovariateDesign, grouped: GroupedData):
    """What a Bayesian fit samples (``clvlab.bayes.Target``): the compiled likelihood over
    every row (``GroupedData.compiled``) with its exact Python total as fallback, the base
    parameters' priors and the coefficients' Normal(0, 1 / sd) priors."""
    k = len(model.param_names)
    names = [*model.param_names, *design.coefficient_names]
    rows, total = group_likelihood(model, design, grouped, np.ones(len(names) - k))
    found = grouped.compiled(design)
    if found is None:  # pragma: no cover - every model has a compiled kernel
        raise ClvlabError(f"{type(model).__name__} has no compiled likelihood kernel")
    if grouped.family is not None:
        kernel = found[0]
        sources, name = grouped.family.sources, f"{kernel.__module__}_{kernel.__name__}"
    else:
        plain = type(model)._total_kernel
        sources = (plain.__module__, grouped_kernel.__module__)
        name = f"{plain.__module__}_{plain.__name__}_grouped{(len(found[1]) - 3) // 2}"
    likelihood = CompiledLikelihood(found[0], found[1], total, len(names), k, sources=sources,
                                    name=name)
    return bayes.Target(type(model).__name__, names, likelihood,
                        bayes.default_priors(model, grouped.base, grouped.weights),
                        bayes.coefficient_sigmas(design.coefficient_names, design.scales()),
                        rows, grouped.weights, row_calls=grouped.row_calls)
