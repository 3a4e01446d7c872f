"""A fast, parallel nonparametric bootstrap of a maximum-likelihood fit.

Customers are resampled with replacement (Efron's bootstrap of i.i.d. customers, what CLVTools'
``uncertainty="boots"`` does), but no resampled table is ever built: a resample is a vector of
multinomial counts over the customers, gathered onto the *distinct* rows of the table (the rows
a fit compresses to anyway, ``clvlab.inference.mle.compress``), and the model is refitted with
those counts as row weights. Each refit so costs one fit on the distinct rows, started at the
fitted parameters with no restarts; only a refit that fails is run again from the model's own
starting point with its restarts, and one that fails then too is counted and reported (never
dropped silently).

Refits run in threads by default: the likelihood kernels are numba functions compiled with
``nogil=True``, so threads share the work without copying the data or starting interpreters
(SciPy's L-BFGS-B keeps its state in its own arrays, and the threads' draws are the serial
run's, tested). ``benchmarks/bench_bootstrap.py`` measures threads against processes: on a
busy 2-core machine threads are as fast as one thread on CDNOW and a process pool 4-10 times
slower (interpreter start and imports); threads gain where the kernel dominates a refit
(large tables) and cores are free.
"""

from __future__ import annotations

import multiprocessing
import os
import time
import warnings
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import pandas as pd

from clvlab.core.errors import ClvlabError, ClvlabWarning, warn
from clvlab.core.progress import progress_bar
from clvlab.inference.grouping import group_rows
from clvlab.inference.mle import fit_mle, one_blas_thread
from clvlab.data.tables import accepts_tables

__all__ = ["BootstrapResult", "bootstrap_fit", "BACKENDS"]

#: how refits run in parallel: "threads" (the default) or "processes" (a pool of fresh
#: interpreters, "spawn"). benchmarks/bench_bootstrap.py, 200 resamples of CDNOW on the
#: project's shared 2-core machine: threads 0.9-1.4 s for BG/NBD, 1.9-3.2 s for Pareto/NBD,
#: within 20 % of one thread (each refit is mostly the optimiser's Python, which holds the
#: GIL); processes 5-13 s (each worker starts an interpreter and imports clvlab first)
BACKENDS = ("threads", "processes")

# fit_mle sets one BLAS thread around every call, which, entered from several threads at once,
# could restore the limits in the wrong order; the bootstrap sets it once around all its refits
# and calls the bare function
_fit_mle = getattr(fit_mle, "__wrapped__", fit_mle)


@dataclass(frozen=True)
class BootstrapResult:
    """The refits of a bootstrap: parameter draws and what went wrong.

    The fields below are both its constructor's parameters and its attributes.

    Parameters
    ----------
    draws : ndarray, shape (n_succeeded, n_params)
        One row per successful refit, columns in ``names`` (the model's ``params_`` order).
    names : tuple of str
        The parameter names.
    estimate : ndarray
        The model's fitted parameters the refits started from (a stored result is checked
        against the model's current ``params_`` before its draws are used).
    n_boot : int
        Resamples asked for; ``n_boot - failures`` of them gave draws.
    failures : int
        Refits that failed twice (from the fitted parameters, then from the model's own start
        with restarts); their resamples gave no draw.
    failure_messages : dict
        {message: count} of those failures.
    restarted : int
        Refits that failed from the fitted parameters and succeeded from the model's start.
    model : str
        The model's class name.
    seed : int, numpy.random.SeedSequence or None, default 0
        The run's seed.
    backend : {"threads", "processes"}, default "threads"
        How the refits ran in parallel.
    n_jobs : int, default 1
        Refits at once.
    seconds : float
        The run's wall time (NaN when unknown).
    """

    draws: np.ndarray
    names: tuple[str, ...]
    estimate: np.ndarray
    n_boot: int
    failures: int
    failure_messages: dict[str, int] = field(default_factory=dict)
    restarted: int = 0
    seed: Any = 0
    backend: str = "threads"
    n_jobs: int = 1
    seconds: float = float("nan")
    model: str = ""

    def standard_errors(self) -> pd.Series:
        """The bootstrap standard error of each parameter (sd of the draws, ddof=1).

        Returns
        -------
        pandas.Series
            Indexed by parameter name.
        """
        return pd.Series(self.draws.std(axis=0, ddof=1), index=list(self.names), name="std_error")

    def summary(self, level: float = 0.95) -> pd.DataFrame:
        """Estimates, bootstrap standard errors and percentile intervals.

        Parameters
        ----------
        level : float
            Coverage of the central percentile interval, in (0, 1).

        Returns
        -------
        pandas.DataFrame
            ``estimate``, ``std_error`` and ``lower <level>%``/``upper <level>%`` (the
            (1 - level)/2 and (1 + level)/2 quantiles of the draws), one row per parameter.

        Raises
        ------
        ClvlabError
            When ``level`` is not in (0, 1).
        """
        if not 0 < level < 1:
            raise ClvlabError(f"level must be between 0 and 1, got {level!r}")
        low, high = np.quantile(self.draws, [(1 - level) / 2, (1 + level) / 2], axis=0)
        pct = f"{100 * level:g}%"
        return pd.DataFrame({"estimate": self.estimate, "std_error": self.standard_errors().to_numpy(),
                             f"lower {pct}": low, f"upper {pct}": high},
                            index=pd.Index(list(self.names), name="parameter"))

    def __repr__(self) -> str:
        failed = f", {self.failures} failed" if self.failures else ""
        return (f"<BootstrapResult of {self.model}: {len(self.draws)} of {self.n_boot} refits"
                f"{failed}; {self.seconds:.2f} s on {self.n_jobs} {self.backend}>")


def default_n_jobs() -> int:
    """The CPUs this process may use (its affinity where the system says, else the count)."""
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except AttributeError:  # pragma: no cover - not Linux
        return max(os.cpu_count() or 1, 1)


@accepts_tables(keyed=("table",))
def bootstrap_fit(model, table: pd.DataFrame, n_boot: int = 200, seed: Any = 0,
                  n_jobs: int | None = None, weights: Sequence[float] | None = None, *,
                  backend: str = "threads", store: bool = True,
                  progress: bool | None = None) -> BootstrapResult:
    """Refit a fitted model on ``n_boot`` resamples of its customers, in parallel.

    Each resample draws as many customers as the table holds, with replacement (multinomial
    counts over the rows, in proportion to ``weights`` when the table is already compressed),
    and refits by maximum likelihood with those counts as row weights on the table's distinct
    rows, started at the model's fitted parameters (no restarts unless that fails). A model
    with covariates is resampled with its covariate columns (its table must carry them) and
    refitted through its own ``fit`` with ``start_params``. A model fitted by a Bayesian method
    is bootstrapped by maximum likelihood. Gamma-Gamma resamples the customers it reads (those
    with repeat purchases).

    Parameters
    ----------
    model : BaseModel
        A fitted clvlab model.
    table : pandas.DataFrame
        The table it was fitted on (or any table of the same columns).
    n_boot : int
        The number of resamples (200 by default).
    seed : int, None, numpy SeedSequence or Generator
        Resample ``j`` uses its own child of ``numpy.random.SeedSequence(seed)``, so the draws
        do not depend on ``n_jobs`` or ``backend``.
    n_jobs : int, optional
        Parallel workers; None uses every CPU this process may run on, 1 runs in this thread.
    weights : sequence of float, optional
        Customers per row (a compressed table), as ``fit`` takes them; each resample draws
        ``round(sum(weights))`` customers.
    backend : {"threads", "processes"}
        How the refits run in parallel (threads share the data; the kernels release the GIL).
    store : bool
        Keep the result as ``model.bootstrap_``, which ``parameter_draws(model, n,
        method="bootstrap")`` then uses.
    progress : bool, optional
        A progress bar over the refits (None: when someone is watching).

    Returns
    -------
    BootstrapResult
        The draws (one row per refit that succeeded), the failures counted by message.

    Raises
    ------
    ClvlabError
        When the model is not fitted, the arguments break their rules, or every refit failed.

    Warns
    -----
    ClvlabWarning
        When some refits failed (how many, and the commonest message).

    References
    ----------
    Efron, B. & Tibshirani, R. (1993). An Introduction to the Bootstrap. Chapman & Hall.
    """
    started = time.perf_counter()
    if not (isinstance(n_boot, (int, np.integer)) and n_boot >= 2):
        raise ClvlabError(f"n_boot must be a whole number >= 2, got {n_boot!r}")
    if backend not in BACKENDS:
        raise ClvlabError(f"backend must be one of {list(BACKENDS)}, got {backend!r}")
    n_jobs = default_n_jobs() if n_jobs is None else n_jobs
    if not (isinstance(n_jobs, (int, np.integer)) and n_jobs >= 1):
        raise ClvlabError(f"n_jobs must be a whole number >= 1 (or None: every CPU), got {n_jobs!r}")
    if not isinstance(table, pd.DataFrame):
        raise ClvlabError(f"table must be a pandas DataFrame (the model's fit table), got "
                          f"{type(table).__name__}")
    refitter = Refitter(model, table, weights)
    children = _root(seed).spawn(int(n_boot))
    n_jobs = int(min(n_jobs, n_boot))
    outcomes: list[tuple[np.ndarray | None, str | None, bool]] = []
    # warnings.catch_warnings swaps process-wide state, so it is entered here once, never in
    # the threads (two of them entering and leaving it could leave warnings off for good);
    # a refit's warnings (non-convergence) are what the result reports as failures
    with one_blas_thread(), warnings.catch_warnings(), \
            progress_bar(int(n_boot), "bootstrap refits", progress, unit="fit") as bar:
        warnings.simplefilter("ignore")
        if n_jobs == 1:
            for child in children:
                outcomes.append(refitter(child))
                bar.update()
        elif backend == "threads":
            with ThreadPoolExecutor(max_workers=n_jobs) as pool:
                for outcome in pool.map(refitter, children):
                    outcomes.append(outcome)
                    bar.update()
        else:
            batches = np.array_split(np.arange(int(n_boot)), n_jobs * 4)
            with ProcessPoolExecutor(max_workers=n_jobs,
                                     mp_context=multiprocessing.get_context("spawn")) as pool:
                for batch in pool.map(_refit_batch, [refitter] * len(batches),
                                      [[children[i] for i in b] for b in batches]):
                    outcomes.extend(batch)
                    bar.update(len(batch))
    result = _collect(refitter, outcomes, int(n_boot), seed, backend if n_jobs > 1 else "serial",
                      n_jobs, time.perf_counter() - started)
    if store:
        model.bootstrap_ = result
    return result


def _root(seed: Any) -> np.random.SeedSequence:
    """The seed sequence whose children seed the resamples: from an int (or None), a
    SeedSequence, or a Generator (which gives one integer to it)."""
    if isinstance(seed, np.random.SeedSequence):
        return seed
    if isinstance(seed, np.random.Generator):
        return np.random.SeedSequence(int(seed.integers(2**63)))
    try:
        return np.random.SeedSequence(seed)
    except (TypeError, ValueError):
        raise ClvlabError(f"seed must be an integer >= 0, None, a numpy SeedSequence or "
                          f"Generator, got {seed!r}") from None


def _refit_batch(refitter: "Refitter", children: list) -> list:
    """A process worker's share of the refits."""
    with one_blas_thread(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return [refitter(child) for child in children]


def _collect(refitter: "Refitter", outcomes: list, n_boot: int, seed: Any, backend: str,
             n_jobs: int, seconds: float) -> BootstrapResult:
    draws = [params for params, _, _ in outcomes if params is not None]
    messages: dict[str, int] = {}
    for params, message, _ in outcomes:
        if params is None:
            messages[message] = messages.get(message, 0) + 1
    failures = n_boot - len(draws)
    name = type(refitter.model).__name__
    if not draws:
        common = max(messages, key=messages.get)
        raise ClvlabError(f"every one of the {n_boot} bootstrap refits of this {name} failed; "
                          f"the commonest reason ({messages[common]} times): {common}")
    if failures:
        common = max(messages, key=messages.get)
        warn(f"{failures} of {n_boot} bootstrap refits of this {name} failed and gave "
                      f"no draw (commonest reason, {messages[common]} times: {common}); the "
                      "draws come from the other resamples, which may understate the "
                      "uncertainty: see result.failure_messages", ClvlabWarning)
    return BootstrapResult(
        draws=np.array(draws), names=tuple(refitter.names), estimate=refitter.estimate.copy(),
        n_boot=n_boot, failures=failures, failure_messages=messages,
        restarted=sum(1 for params, _, again in outcomes if params is not None and again),
        seed=seed, backend=backend, n_jobs=n_jobs, seconds=seconds, model=name)


class Refitter:
    """One model's table as distinct rows, and a refit of it on one resample.

    Built once per bootstrap; calling it with a seed sequence draws that resample's counts and
    returns ``(params or None, failure message or None, whether it needed a restart)``.
    Picklable, for the process backend.
    """

    def __init__(self, model, table: pd.DataFrame, weights: Sequence[float] | None):
        if not hasattr(model, "params_"):
            raise ClvlabError(f"this {type(model).__name__} is not fitted; fit it before "
                              "bootstrapping (the refits start at its estimates)")
        self.model = model
        self.names = list(model.params_.index)
        self.estimate = model.params_.to_numpy(np.float64)
        n_rows = len(table)
        if weights is None:
            base = np.ones(n_rows)
        else:
            base = np.asarray(weights, dtype=np.float64)
            if base.shape != (n_rows,) or not np.all(np.isfinite(base)) or np.any(base < 0):
                raise ClvlabError("weights must be one finite number >= 0 per row of the table "
                                  "(customers per row), e.g. the weights the model was fitted with")
        used = model._rows_used(table) if hasattr(model, "_rows_used") else None
        if used is not None:  # rows the likelihood never reads carry no information to resample
            table, base = table[np.asarray(used)], base[np.asarray(used)]
        self.n_customers = int(round(float(base.sum())))
        if self.n_customers < 2:
            raise ClvlabError(f"the bootstrap needs at least 2 customers the "
                              f"{type(model).__name__} reads; the table has {base.sum():g}")
        self.probabilities = base / base.sum()
        self.covariates = hasattr(model, "covariates_")
        columns = model._data(table)
        if self.covariates:
            encoded = model.covariates_.encoder.transform(table, model=type(model).__name__)
            columns = [*columns, *encoded.T]
        distinct, self.inverse = group_rows(columns)
        self.n_distinct = len(distinct[0])
        if self.covariates:
            first = np.unique(self.inverse, return_index=True)[1]
            self.table = table.iloc[first]  # the raw covariate columns, one row per distinct row
            self.settings = {**model.get_params(deep=False), "method": "mle", "max_restarts": 0,
                             "start_params": dict(zip(self.names, self.estimate.tolist()))}
        else:
            self.distinct = distinct

    def counts(self, child: np.random.SeedSequence) -> np.ndarray:
        """The resample's customers per distinct row."""
        drawn = np.random.default_rng(child).multinomial(self.n_customers, self.probabilities)
        return np.bincount(self.inverse, weights=drawn, minlength=self.n_distinct)

    def __call__(self, child: np.random.SeedSequence):
        weights = self.counts(child)
        params, message = self.refit(weights, from_estimate=True)
        if params is not None:
            return params, None, False
        params, again = self.refit(weights, from_estimate=False)
        return (params, None, True) if params is not None else (None, again or message, True)

    def refit(self, weights: np.ndarray, from_estimate: bool):
        """(params, None) after a converged refit, (None, why) otherwise."""
        try:  # warnings are off around all the refits (bootstrap_fit): the result reports
            if self.covariates:
                params, converged, message = self._refit_covariates(weights, from_estimate)
            else:
                params, converged, message = self._refit_plain(weights, from_estimate)
        except (ClvlabError, ArithmeticError, ValueError, np.linalg.LinAlgError) as error:
            return None, f"{type(error).__name__}: {error}"
        if not converged:
            return None, f"did not converge ({message})"
        if not np.all(np.isfinite(params)):
            return None, "the estimates are not finite"
        return params, None

    def _refit_plain(self, weights: np.ndarray, from_estimate: bool):
        model = self.model
        keep = weights > 0
        data = [column[keep] for column in self.distinct]
        counts = weights[keep]
        model._check_identifiable(data, counts)
        prepared = model._prepare(data)
        cls = type(model)
        start = self.estimate if from_estimate else model._start(data, counts)
        result = _fit_mle(lambda p: cls._loglik(p, prepared), counts, start,
                          names=model.param_names, penalty=float(model.penalty),
                          max_restarts=0 if from_estimate else int(model.max_restarts),
                          total=cls._total_function(prepared, counts),
                          exact_total=True)  # it falls back to the rows itself
        return result.params, result.converged, result.message

    def _refit_covariates(self, weights: np.ndarray, from_estimate: bool):
        from sklearn.base import clone

        refit = clone(self.model)
        settings = dict(self.settings)
        if not from_estimate:
            settings.update(start_params=None, max_restarts=self.model.max_restarts)
        refit.set_params(**settings)
        refit.fit(self.table, weights=weights)
        convergence = getattr(refit, "convergence_", {}) or {}
        return (refit.params_.reindex(self.names).to_numpy(np.float64),
                bool(convergence.get("converged", False)), convergence.get("message", ""))

