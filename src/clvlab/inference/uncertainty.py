"""Parameter uncertainty and what it does to predictions, after any fit.

``parameter_draws``: posterior draws after a Bayesian fit, draws from the asymptotic normal of
the log-parameters (covariate coefficients as they are) after a maximum-likelihood one, or the
refits of a bootstrap (``clvlab.inference.bootstrap``), as the user chooses.
``posterior_summary``: the parameter uncertainty of a prediction per customer (its mean over
those draws, its sd and central interval over them: the uncertainty of an expected value, not a
prediction interval for the customer's counts), in bounded memory, each draw's model made by
``model.at_params`` (which keeps covariates). Public as ``clvlab.bayes.*``.
"""

from __future__ import annotations

import contextlib
import logging
import time
from typing import Any, Callable

import numpy as np
import pandas as pd

from clvlab.core.errors import ClvlabError, ClvlabWarning, warn
from clvlab.core.progress import progress_bar
from clvlab.data.validation import validated
from clvlab.data.tables import accepts_tables

__all__ = ["DRAW_METHODS", "parameter_draws", "posterior_summary", "summary_columns"]

_log = logging.getLogger("clvlab")


#: where parameter draws come from (``parameter_draws``'s ``method``)
DRAW_METHODS = ("auto", "posterior", "normal", "bootstrap")


@accepts_tables(keyed=("table",))
def parameter_draws(model, n_draws: int, seed: Any = 0, method: str = "auto", *,
                    table: pd.DataFrame | None = None) -> np.ndarray:
    """Draws of a fitted model's parameters, from the source the user chooses.

    Parameters
    ----------
    model : BaseModel
        A fitted clvlab model.
    n_draws : int
        How many draws (fewer when a posterior or a stored bootstrap holds fewer).
    seed : int or numpy seed
        For the choice of posterior or bootstrap draws, or the normal draws.
    method : {"auto", "posterior", "normal", "bootstrap"}
        - ``"posterior"``: draws of the posterior after a Bayesian fit (NUTS or ADVI).
        - ``"normal"``: the asymptotic normal of the maximum-likelihood estimate, on the log
          scale of the model's own (positive) parameters and as they are for covariate
          coefficients (``model._positive`` says which is which), with the fit's covariance by
          the delta method; so draws stay positive.
        - ``"bootstrap"``: refits on resampled customers (``clvlab.bayes.bootstrap_fit``):
          the result that call stored as ``model.bootstrap_``, or, given ``table``, a new
          bootstrap of ``n_draws`` resamples of it (stored the same way).
        - ``"auto"`` (default): ``"posterior"`` after a Bayesian fit, else ``"normal"``.
    table : pandas.DataFrame, optional
        The fit's table, for ``method="bootstrap"`` without a stored result.

    Returns
    -------
    ndarray, shape (n, n_params)
        In ``params_``'s order: own parameters, then any covariate coefficients.

    Raises
    ------
    ClvlabError
        When ``method`` is unknown or does not apply to this fit (a posterior without a
        Bayesian fit, a MAP fit's single point, a normal without a finite covariance, a
        bootstrap without a stored result or a table, a stored bootstrap of another fit).
    """
    if method not in DRAW_METHODS:
        raise ClvlabError(f"method must be one of {list(DRAW_METHODS)}, got {method!r}")
    if not (isinstance(n_draws, (int, np.integer)) and n_draws >= 1):
        raise ClvlabError(f"n_draws must be a whole number >= 1, got {n_draws!r}")
    rng = np.random.default_rng(seed)
    names = list(model.params_.index) if hasattr(model, "params_") else list(model.param_names)
    idata = getattr(model, "idata_", None)
    if method == "auto":
        method = "posterior" if idata is not None else "normal"
    if method == "posterior":
        return _posterior_draws(model, idata, names, n_draws, rng)
    if method == "bootstrap":
        return _bootstrap_draws(model, n_draws, seed, table, rng)
    return _normal_draws(model, n_draws, rng)


def _posterior_draws(model, idata, names, n_draws, rng) -> np.ndarray:
    name = type(model).__name__
    if idata is None:
        raise ClvlabError(f"method='posterior' needs a Bayesian fit (method='nuts' or 'advi'); "
                          f"this {name} was fitted by maximum likelihood: use method='normal' "
                          "(its asymptotic normal) or 'bootstrap'")
    stacked = np.column_stack([idata.posterior[n].to_numpy().ravel() for n in names])
    if len(stacked) <= 1:
        raise ClvlabError("a MAP fit has no posterior draws; fit with method='nuts' or 'advi', or "
                          "take method='normal' (draws from its Laplace approximation)")
    take = rng.choice(len(stacked), size=min(n_draws, len(stacked)), replace=False)
    return stacked[np.sort(take)]


def _bootstrap_draws(model, n_draws, seed, table, rng) -> np.ndarray:
    from clvlab.inference.bootstrap import bootstrap_fit

    name = type(model).__name__
    model._check_fitted()
    if table is not None:
        return bootstrap_fit(model, table, n_boot=max(int(n_draws), 2), seed=seed).draws[:n_draws]
    stored = getattr(model, "bootstrap_", None)
    if stored is None:
        raise ClvlabError(f"method='bootstrap' needs a bootstrap of this {name}: run "
                          "clvlab.bayes.bootstrap_fit(model, rfm) once (it keeps the result as "
                          "model.bootstrap_), or pass table=rfm to run one now")
    current = model.params_.to_numpy(np.float64)
    if (list(stored.names) != list(model.params_.index) or stored.estimate.shape != current.shape
            or not np.allclose(stored.estimate, current, rtol=1e-12, atol=0.0)):
        raise ClvlabError(f"model.bootstrap_ was made for other estimates than this {name}'s "
                          "current ones (it was refitted since); rerun clvlab.bayes.bootstrap_fit")
    draws = stored.draws
    take = rng.choice(len(draws), size=min(n_draws, len(draws)), replace=False)
    return draws[np.sort(take)]


def _normal_draws(model, n_draws, rng) -> np.ndarray:
    covariance = getattr(model, "covariance_", None)
    if covariance is None or not np.all(np.isfinite(covariance.to_numpy())):
        raise ClvlabError(f"method='normal' needs a finite covariance, and this "
                          f"{type(model).__name__} has none (made by from_params, or its fit's "
                          "information was singular), so its predictions have no interval from "
                          "it; fit it, or take method='bootstrap' or a Bayesian fit's "
                          "'posterior'")
    model._check_fitted()
    params = model.params_.to_numpy()
    positive = model._positive()
    scale = np.where(positive, params, 1.0)
    log_cov = covariance.to_numpy() / np.outer(scale, scale)
    try:  # a covariance read from a file or set by hand may not be one
        np.linalg.cholesky(log_cov)
    except np.linalg.LinAlgError:
        raise ClvlabError(f"this {type(model).__name__}'s covariance is not positive definite, so "
                          "no draws can be taken from it; refit the model") from None
    centre = np.where(positive, np.log(np.where(positive, params, 1.0)), params)
    draws = rng.multivariate_normal(centre, log_cov, size=n_draws)
    return np.where(positive, np.exp(np.where(positive, draws, 0.0)), draws)


#: a ``ClvlabWarning`` when the first draw says the whole run will take longer than this
ESTIMATE_WARN_SECONDS = 60.0
#: shown by default (progress=None, someone watching) from this many model evaluations
BAR_FROM_CALLS = 2_000
#: ... or this many (draw, customer) values
BAR_FROM_VALUES = 2_000_000


@accepts_tables(keyed=("rfm",))
def posterior_summary(models, predict: Callable[..., pd.Series], rfm: pd.DataFrame, *,
                      n_draws: int = 200, level: float = 0.94, chunk_size: int = 20_000,
                      return_draws: bool = False, seed: Any = 0, progress: bool | None = None,
                      rowwise: bool = False, method: str = "auto"):
    """The parameter uncertainty of a prediction, per customer: the mean of ``predict`` over
    parameter draws, its sd over the draws, and the central interval of its values at the draws.

    These describe the *predicted value* (an expected number of purchases, a probability, an
    expected CLV) as the parameters vary over their posterior (or their asymptotic normal after
    a maximum-likelihood fit); they are not a prediction interval for what the customer will do:
    a customer expected to make 1.2 purchases (interval 1.1-1.3) makes 0, 1, 2 or more, and such
    intervals hold a small share of customers' actual counts. Columns: ``mean``,
    ``parameter_sd``, ``parameter_<low>%`` and ``parameter_<high>%`` (``level`` central
    interval, 3 % and 97 % by default).

    ``models`` is one fitted model or a sequence (for example a transaction model and a spend
    model); ``predict(*models_at_one_draw, rfm_chunk)`` returns a Series for the chunk. Draw i of
    each model is paired with draw i of the others (their posteriors are independent). Memory
    stays bounded: identical customers are predicted once, and customers are taken
    ``chunk_size`` at a time, so only chunk_size x n_draws values exist at any moment.
    ``return_draws=True`` returns the (draw, customer) array itself; it is refused above 50
    million values, where the summary is the only sensible output.

    ``rowwise=True`` says that ``predict`` computes each customer's value from that customer's
    row alone, a model with covariates covariate group by covariate group (every prediction
    method decorated with ``customer_params.by_covariate_group`` does): the customers' covariate
    groups and each group's rows are then found once, the parameters of every group at every
    draw computed at once, and ``predict`` called with each group's plain model on that group's
    rows. Models whose predictions take a parameter value per row (``row_predictions``: every
    clvlab model) skip the split: each draw's model predicts the whole chunk in one vectorised
    pass, each customer at their own parameters, so a continuous covariate costs what a
    categorical one does (200 draws of 5,000 customers with one: 20 minutes by group, 1.7 s
    in one pass: benchmarks/bench_bayes_speed.py predict). The cost is estimated up front, and from the first draw's pace a
    ``ClvlabWarning`` says how long the whole will take when over ``ESTIMATE_WARN_SECONDS``.

    ``progress``: a bar over the draws (None: when someone is watching and there are over
    ``BAR_FROM_CALLS`` model evaluations or ``BAR_FROM_VALUES`` customer-draws). ``method``:
    where each model's draws come from (``parameter_draws``: "auto", "posterior", "normal" or
    "bootstrap", the last from each model's stored ``bootstrap_``).

    Parameters
    ----------
    models : BaseModel or sequence of BaseModel
        One fitted model or several (a transaction model and a spend model).
    predict : callable
        ``predict(*models_at_one_draw, rfm_chunk)`` -> a Series for the chunk.
    rfm : pandas.DataFrame
        The customers, with every column the models read.
    n_draws : int, default 200
        Parameter draws.
    level : float, default 0.94
        The central interval's coverage, in (0, 1).
    chunk_size : int, default 20000
        Customers predicted at a time.
    return_draws : bool, default False
        Return the (draw, customer) values instead of the summary.
    seed : int, numpy.random.Generator or None, default 0
        Seed of the draws.
    progress : bool, optional
        Show a progress bar over the draws (None: as above).
    rowwise : bool, default False
        ``predict`` computes each customer's value from their row alone (above).
    method : {"auto", "posterior", "normal", "bootstrap"}, default "auto"
        Where the draws come from (:func:`parameter_draws`).

    Returns
    -------
    pandas.DataFrame
        On ``rfm``'s index: ``mean``, ``parameter_sd`` and the interval's two columns
        (:func:`summary_columns`); with ``return_draws=True`` the values, customers x draws.

    Raises
    ------
    ClvlabError
        Where ``level`` is not in (0, 1), a model has no draws of that method, or
        ``return_draws=True`` would hold over 50 million values.
    """
    from clvlab.inference.grouping import group_rows

    models = [models] if not isinstance(models, (list, tuple)) else list(models)
    if not 0 < level < 1:
        raise ClvlabError(f"level must be between 0 and 1, got {level!r}")
    draws = [parameter_draws(m, n_draws, seed, method) for m in models]
    n = min(len(d) for d in draws)
    draws = [d[:n] for d in draws]
    # the columns any of the models reads (each model class lists its own), and the covariates
    # any reads, encoded as numbers to find identical customers, passed on as they are
    columns = [c for c in dict.fromkeys(c for m in models for c in m.columns) if c in rfm.columns]
    encoded = {j: m.covariates_.encoder.transform(rfm, model=type(m).__name__)
               for j, m in enumerate(models) if hasattr(m, "covariates_")}
    attributes = list(dict.fromkeys(c for m in models if hasattr(m, "covariates_")
                                    for c in m.covariates_.encoder.columns if c not in columns))
    distinct, inverse = group_rows([rfm[c].to_numpy(np.float64) for c in columns]
                                   + [column for matrix in encoded.values() for column in matrix.T])
    unique_rfm = pd.DataFrame(dict(zip(columns, distinct)))
    first = np.unique(inverse, return_index=True)[1]  # each distinct row's first customer
    for column in attributes:  # each distinct row's attributes from its first customer
        unique_rfm[column] = rfm[column].to_numpy()[first]
    unique_rfm.attrs = dict(rfm.attrs)
    unique_encoded = {j: matrix[first] for j, matrix in encoded.items()}
    if return_draws and n * len(rfm) > 50_000_000:
        raise ClvlabError(f"{n} draws x {len(rfm):,} customers is too many values to return; "
                          "use the summary (return_draws=False) or fewer customers")
    chunks = range(0, len(unique_rfm), chunk_size)
    # models that predict every customer at their own parameters in one vectorised pass
    # (``row_predictions``: clvlab.models.customer_params) need no split into groups: each
    # draw's model predicts the whole chunk at once
    one_pass = all(getattr(type(m), "row_predictions", False) for m in models)
    groups = 0 if one_pass else _group_count(unique_encoded, chunks, chunk_size)
    calls = n * max(groups, len(chunks))
    _log.info("parameter draws: %d draws x %s distinct customers %s: %s model evaluations", n,
              f"{len(unique_rfm):,}", _split_words(groups), f"{calls:,}")
    if progress is None and calls < BAR_FROM_CALLS and n * len(unique_rfm) < BAR_FROM_VALUES:
        progress = False
    low_q, high_q = (1 - level) / 2, (1 + level) / 2
    stats = np.empty((len(unique_rfm), 4))
    all_draws = np.empty((n, len(unique_rfm))) if return_draws else None
    by_group = rowwise and encoded and not one_pass
    draw_models = None  # each model at each draw, built when first needed

    def at_draws():
        nonlocal draw_models
        if draw_models is None:
            draw_models = [[m.at_params(d[i]) for i in range(n)] for m, d in zip(models, draws)]
        return draw_models

    clock = _Pace(n * len(chunks), calls, n, len(unique_rfm), groups)
    # plain models (no covariates) whose predictions take parameters by row: many draws of a
    # small chunk in one vectorised pass (``_block_values``), not a Python call per draw
    blocks = one_pass and not encoded and not by_group
    with progress_bar(n * len(chunks), "parameter draws", progress, unit="draw") as bar:
        for start in chunks:
            chunk = unique_rfm.iloc[start:start + chunk_size]
            if by_group:
                values = _rowwise_values(models, draws, predict, chunk,
                                         {j: e[start:start + chunk_size]
                                          for j, e in unique_encoded.items()},
                                         lambda: (bar.update(), clock.tick()))
            else:
                values = _block_values(models, draws, predict, chunk, bar, clock) \
                    if blocks else None
                if values is None:  # a prediction that cannot take parameters by row
                    blocks = False
                    values = np.empty((n, len(chunk)))
                    for i in range(n):
                        # the first draw checks the chunk's rules; the others need not again
                        with validated(chunk) if i else contextlib.nullcontext():
                            values[i] = np.asarray(predict(*(dm[i] for dm in at_draws()),
                                                           chunk), dtype=np.float64)
                        bar.update()
                        clock.tick()
            if not np.all(np.isfinite(values)):
                raise ClvlabError("a prediction was not finite at some parameter draw; "
                                  "this is a bug, please report it with the model file")
            stats[start:start + len(chunk)] = np.column_stack([
                values.mean(axis=0), values.std(axis=0, ddof=1) if n > 1 else np.zeros(len(chunk)),
                np.quantile(values, low_q, axis=0), np.quantile(values, high_q, axis=0)])
            if return_draws:
                all_draws[:, start:start + len(chunk)] = values
    if return_draws:
        return pd.DataFrame(all_draws[:, inverse].T, index=rfm.index,
                            columns=pd.RangeIndex(n, name="draw"))
    return pd.DataFrame(stats[inverse], index=rfm.index, columns=summary_columns(level))


def summary_columns(level: float) -> list[str]:
    """``posterior_summary``'s columns at ``level``: mean, parameter_sd, parameter_3%,
    parameter_97% (at 0.94). "``parameter_``": the spread of the predicted value over the
    parameters' uncertainty, not of the customer's future counts.

    Parameters
    ----------
    level : float
        The central interval's coverage, in (0, 1).

    Returns
    -------
    list of str
        ``["mean", "parameter_sd", "parameter_<low>%", "parameter_<high>%"]``.
    """
    pct = lambda q: f"parameter_{100 * q:g}%"  # noqa: E731
    return ["mean", "parameter_sd", pct((1 - level) / 2), pct((1 + level) / 2)]


def _group_count(encoded: dict, chunks: range, chunk_size: int) -> int:
    """Covariate groups summed over the chunks (1 a chunk for models without covariates):
    the calls one draw costs."""
    from clvlab.inference.grouping import group_rows

    if not encoded:
        return len(chunks)
    total = 0
    for start in chunks:
        parts = [e[start:start + chunk_size] for e in encoded.values()]
        columns = [c for part in parts for c in part.T]
        total += len(group_rows(columns)[0][0]) if columns else 1
    return total


#: rows (customers x draws) a block of draws predicts in one pass: bounds its memory
BLOCK_ROWS = 100_000


def _block_values(models, draws, predict, chunk: pd.DataFrame, bar, clock) -> np.ndarray | None:
    """(draws x customers) values of ``predict`` over a chunk, as many draws at once as fit in
    ``BLOCK_ROWS`` rows: the chunk repeated once per draw, each model a row model
    (:func:`clvlab.inference.row_params.row_model`) whose row i holds draw i // len(chunk).
    The same numbers as a model per draw, without a Python call per draw: 200 draws of a
    3-customer table took 0.2 s one by one. None when the first block's prediction does not
    take parameters by row (it raised, or its values are not finite), so that the caller
    predicts draw by draw and any real error is raised there."""
    from clvlab.inference.row_params import distinct_rows, row_model

    n, rows = len(draws[0]), len(chunk)
    per_block = max(1, BLOCK_ROWS // max(rows, 1))
    values = np.empty((n, rows))
    for first in range(0, n, per_block):
        b = min(per_block, n - first)
        table = chunk.iloc[np.tile(np.arange(rows), b)]
        table.attrs = chunk.attrs
        at_rows = [row_model(m, np.repeat(d[first:first + b], rows, axis=0))
                   for m, d in zip(models, draws)]
        try:
            with distinct_rows():
                block = np.asarray(predict(*at_rows, table), dtype=np.float64).reshape(b, rows)
        except (ClvlabError, ValueError, TypeError, AttributeError, IndexError):
            if first == 0:
                return None
            raise
        if first == 0 and not np.all(np.isfinite(block)):
            return None
        values[first:first + b] = block
        for _ in range(b):
            bar.update()
            clock.tick()
    return values


def _rowwise_values(models, draws, predict, chunk: pd.DataFrame, encoded: dict,
                    tick: Callable[[], Any]) -> np.ndarray:
    """(draws x customers) values of ``predict`` over a chunk, group by covariate group, at
    each group's plain models: the groups and their rows found once, every group's parameters
    at every draw computed together (``CovariateDesign.exponents``)."""
    from clvlab.inference.grouping import group_rows

    n = len(draws[0])
    columns = [c for matrix in encoded.values() for c in matrix.T]
    _, group = group_rows(columns)
    order = np.argsort(group, kind="stable")
    bounds = np.flatnonzero(np.diff(group[order])) + 1
    positions = np.split(order, bounds)
    firsts = np.array([p[0] for p in positions])
    tables = [chunk.iloc[p] for p in positions]
    # per model: (draws x groups x own parameters), or the model at each draw (no covariates)
    per_model = []
    for j, (model, d) in enumerate(zip(models, draws)):
        if j not in encoded:
            per_model.append([model.at_params(d[i]) for i in range(n)])
            continue
        design, k = model.covariates_, len(model.param_names)
        rows = encoded[j][firsts]
        params = np.stack([design.exponents(d[i, :k], d[i, k:], rows)[0] for i in range(n)])
        per_model.append((_PlainFactory(model), params))
    values = np.empty((n, len(chunk)))
    for i in range(n):
        for g, (where, table) in enumerate(zip(positions, tables)):
            at_draw = [m[i] if isinstance(m, list) else m[0](m[1][i, g]) for m in per_model]
            values[i, where] = np.asarray(predict(*at_draw, table), dtype=np.float64)
        tick()
    return values


class _PlainFactory:
    """The plain model (no covariates) of ``model`` at given own parameters, as ``plain_at``
    makes it, without its checks (the parameters come from a fitted model's draws): a copy of
    one plain model with new ``params_``."""

    def __init__(self, model):
        self.template = model.plain_at(model._check_fitted())
        self.index = list(self.template.params_.index)

    def __call__(self, params: np.ndarray):
        model = object.__new__(type(self.template))
        model.__dict__.update(self.template.__dict__)
        model.params_ = pd.Series(np.asarray(params, dtype=np.float64), index=self.index,
                                  name="estimate")
        return model


class _Pace:
    """After the first draw, the time the whole will take; a ``ClvlabWarning`` when long."""

    def __init__(self, steps: int, calls: int, n: int, customers: int, groups: int):
        self.steps, self.calls, self.n, self.customers, self.groups = steps, calls, n, customers, groups
        self.done, self.started = 0, time.perf_counter()

    def tick(self) -> None:
        self.done += 1
        if self.done != 1 or self.steps <= 1:
            return
        elapsed = time.perf_counter() - self.started
        estimate = elapsed * self.steps
        _log.info("parameter draws: the first took %.2f s, about %s for all %d", elapsed,
                  _duration(estimate), self.n)
        if estimate > ESTIMATE_WARN_SECONDS:
            warn(
                f"the parameter draws will take about {_duration(estimate)} (the first of "
                f"{self.n} took {elapsed:.1f} s): {self.n} draws x {self.customers:,} distinct "
                f"customers {_split_words(self.groups)}, {self.calls:,} evaluations of the "
                "model." + ("" if self.groups == 0 else " A continuous covariate makes every "
                            "customer a group of its own.") + " Fewer draws (n_draws) or "
                "customers cost proportionally less", ClvlabWarning)


def _split_words(groups: int) -> str:
    """How each draw is predicted: in one vectorised pass (0) or by covariate group."""
    if groups == 0:
        return "in one pass per draw (every customer at their own parameters)"
    return f"in {groups:,} covariate group{'s' if groups != 1 else ''}"


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
