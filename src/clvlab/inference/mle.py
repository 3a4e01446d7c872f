"""Maximum-likelihood machinery shared by every model, written once.

A model supplies a log-likelihood with its exact gradient over *compressed* rows (distinct data
rows with weights). This module optimises it in log-parameter space (every parameter is positive)
with L-BFGS-B, restarts from other points when the optimiser fails, and derives the covariance
from the Hessian at the optimum (central differences of the exact gradient).
"""

from __future__ import annotations

import functools
import math
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd
from scipy import optimize, stats
from threadpoolctl import ThreadpoolController

from clvlab.core.errors import ClvlabError
# the rows a fit compresses to (distinct rows with weights), and the optimiser's loop
from clvlab.inference.grouping import compress, group_rows, levels
from clvlab.inference.lbfgsb import minimize_lbfgsb

__all__ = ["compress", "group_rows", "levels", "fit_mle", "FitResult", "observed_covariance",
           "summary_frame", "one_blas_thread", "blas_controller", "reset_blas_controller"]

LogLikFn = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]
"""params -> (per-row log-likelihood, per-row gradient of shape (rows, n_params))."""


@dataclass
class FitResult:
    """What one maximum-likelihood fit found: the estimates and the optimiser's diagnostics."""

    params: np.ndarray
    log_likelihood: float
    covariance: np.ndarray
    converged: bool
    message: str
    iterations: int
    restarts: int
    gradient_norm: float
    penalty: float
    details: dict = field(default_factory=dict)

    def convergence(self) -> dict[str, Any]:
        """The diagnostics as a model keeps them (``convergence_``) and its file writes them."""
        return {"converged": self.converged, "message": self.message,
                "iterations": self.iterations, "restarts": self.restarts,
                "gradient_norm": self.gradient_norm, "penalty": self.penalty}


#: the process's controller of its BLAS libraries (``blas_controller``), built at the first fit
_BLAS: ThreadpoolController | None = None
_BLAS_LOCK = threading.Lock()


def blas_controller() -> ThreadpoolController:
    """A threadpoolctl controller of the BLAS libraries loaded in this process, built once.

    Building one scans every loaded shared library (/proc/self/maps on Linux) and asks each BLAS
    for its version and threading layer: 2.9 ms at every CDNOW fit when ``threadpool_limits``
    built one per fit (issue 33), more than the BG/NBD optimisation itself. The controller is
    shared by the threads of a process; each ``one_blas_thread`` sets and restores the limits
    itself, as ``threadpool_limits`` did. The BLAS libraries a fit calls (NumPy's
    and SciPy's OpenBLAS) are loaded with NumPy and ``scipy.optimize``, which this module
    imports, so a controller built at the first fit already holds them; libraries loaded later
    are no part of a fit. ``reset_blas_controller`` drops it (a test, or a program that loads
    another BLAS and wants it limited too).
    """
    global _BLAS
    controller = _BLAS
    if controller is None:
        with _BLAS_LOCK:
            if _BLAS is None:
                _BLAS = ThreadpoolController().select(user_api="blas")
            controller = _BLAS
    return controller


def reset_blas_controller() -> None:
    """Forget the cached controller: the next fit builds (scans for) a new one."""
    global _BLAS
    with _BLAS_LOCK:
        _BLAS = None


def one_blas_thread():
    """A context manager in which the process's BLAS libraries run one thread, their limits
    restored on leaving: ``threadpool_limits(limits=1, user_api="blas")`` through the cached
    controller (``blas_controller``), so entering it costs a few calls into each library, not
    a scan of the loaded libraries."""
    return blas_controller().limit(limits=1, user_api="blas")


def _one_blas_thread(function: Callable) -> Callable:
    """Run ``function`` with one BLAS thread: every matrix of a fit is a few parameters wide
    (L-BFGS-B's updates, the gradient sums), where OpenBLAS's threads only wait on each other.
    The apparel covariate fit took 0.87 s of wall time for 0.29 s of CPU with them on a busy
    2-core machine, 0.10 s for 0.03 s without."""
    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        with one_blas_thread():
            return function(*args, **kwargs)

    return wrapper


@_one_blas_thread
def fit_mle(loglik: LogLikFn, weights: np.ndarray, start: np.ndarray, *, names: Sequence[str],
            penalty: float | np.ndarray = 0.0, max_restarts: int = 4, seed: int = 0,
            total: Callable[[np.ndarray], tuple[float, np.ndarray]] | None = None,
            positive: Sequence[bool] | None = None, exact_total: bool = False) -> FitResult:
    """Maximise sum(weights * loglik) - sum(penalty * params**2).

    ``total(params)``, when given, returns that weighted sum and its gradient directly (a
    model's fused kernel); the per-row ``loglik`` is still used for the final values.
    ``positive`` marks the parameters that are > 0 (all of them by default), optimised on the
    log scale; the others (covariate coefficients) are optimised as they are. ``penalty`` is one
    number for every parameter or one per parameter. ``exact_total``: ``total`` is exact (it
    falls back to the rows itself), so the final log-likelihood and the covariance come from it
    rather than from ``loglik``'s rows (a model with covariates, whose rows cost a Python loop).
    """
    weights = np.asarray(weights, dtype=np.float64)
    scale = weights.sum()
    positive = np.ones(len(start), bool) if positive is None else np.asarray(positive, bool)
    to_params = lambda u: np.where(positive, np.exp(np.where(positive, u, 0.0)), u)  # noqa: E731
    to_internal = lambda p: np.where(positive, np.log(np.where(positive, p, 1.0)), p)  # noqa: E731
    if positive.all():  # the masks select exp and log everywhere: the same numbers
        to_params, to_internal = np.exp, np.log
    if total is None:
        def total(params: np.ndarray) -> tuple[float, np.ndarray]:
            values, grads = loglik(params)
            return weights @ values, weights @ grads

    last: list = [b"", None]  # the parameters (bytes) and (value, gradient) of the last total

    def weighted(params: np.ndarray) -> tuple[float, np.ndarray]:
        value = total(params)
        last[0], last[1] = params.tobytes(), value
        return value

    # the common case (every parameter > 0, no penalty) without the masks and the zero penalty
    # terms: the same numbers (exp of the same u; x - 0.0 is x), some ten NumPy calls fewer at
    # each of the optimiser's evaluations
    plain = bool(positive.all()) and np.ndim(penalty) == 0 and float(penalty) == 0.0

    # the same divisions, by a Python float: -(g p) / n is (g p) / -n to the bit
    mean_of, negative_mean_of = float(scale), -float(scale)

    def objective(log_params: np.ndarray) -> tuple[float, np.ndarray]:
        if plain:  # the checks on the few numbers as Python floats (math.isfinite): 3x cheaper
            params = np.exp(log_params)
            if not all(map(math.isfinite, params.tolist())):
                return np.inf, np.zeros_like(params)
            total, grad = weighted(params)
            if not math.isfinite(total) or not all(map(math.isfinite, grad.tolist())):
                return np.inf, np.zeros_like(params)
            return -total / mean_of, grad * params / negative_mean_of
        params = to_params(log_params)
        if not np.all(np.isfinite(params)):
            return np.inf, np.zeros_like(params)
        value, gradient = weighted(params)
        total = value - np.sum(penalty * params * params)
        grad = gradient - 2 * penalty * params
        if not np.isfinite(total) or not np.all(np.isfinite(grad)):
            return np.inf, np.zeros_like(params)
        # minimise the mean negative log-likelihood: scale-free tolerances; chain rule to log space
        return -total / scale, -(grad * np.where(positive, params, 1.0)) / scale

    rng = None  # built at the first restart (its stream is the same; 15 us a fit without one)
    starts = [to_internal(np.asarray(start, dtype=np.float64))]
    best, attempts = None, 0
    for attempt in range(max_restarts + 1):
        if attempt >= len(starts):
            rng = np.random.default_rng(seed) if rng is None else rng
            starts.append(starts[0] + rng.normal(0.0, 1.0, size=len(start)))
        x0 = starts[attempt]
        first = objective(x0)
        if not np.isfinite(first[0]):
            continue
        attempts += 1
        result = minimize_lbfgsb(objective, x0, first, bound=30.0, maxiter=2000, ftol=1e-15,
                                  gtol=1e-9)
        if best is None or result.fun < best.fun:
            best = result
        if _stationary(result, 1e-5):
            break
    if best is None:
        raise ClvlabError("the log-likelihood is not finite at the starting values; check the data "
                          "or pass other starting values")
    params = to_params(best.x)
    if exact_total:
        # the optimiser ends where it last evaluated, as a rule: that evaluation, not another
        log_likelihood, gradient = last[1] if last[0] == params.tobytes() else total(params)
        gradient = gradient - 2 * penalty * params
        covariance = observed_covariance(None, weights, params, penalty, positive, total=total,
                                         gradient=gradient)
    else:
        values, grads = loglik(params)
        log_likelihood = float(weights @ values)
        gradient = weights @ grads - 2 * penalty * params
        covariance = observed_covariance(loglik, weights, params, penalty, positive,
                                         gradient=gradient)
    at_bound = bool(np.any(np.abs(best.x) >= 29.9))
    converged = bool(_stationary(best, 1e-4) and not at_bound)
    return FitResult(params=params, log_likelihood=log_likelihood, covariance=covariance,
                     converged=converged, message=str(best.message), iterations=int(best.nit),
                     restarts=attempts - 1, gradient_norm=float(np.linalg.norm(gradient)),
                     penalty=float(np.max(penalty)),
                     details={"at_bound": at_bound, "names": list(names)})


def _stationary(result: optimize.OptimizeResult, tolerance: float) -> bool:
    """A stationary point: the mean per-customer gradient (log scale) below ``tolerance``.

    L-BFGS-B's "ABNORMAL" line-search ending is accepted there: with ftol 1e-15 it means the
    objective cannot be improved in double precision, which is what an optimum looks like on a
    large data set. Running out of iterations (status 1) is never accepted, nor a point where
    the objective is not finite (its gradient is reported as 0 there).
    """
    return (result.status != 1 and bool(np.isfinite(result.fun))
            and bool(np.max(np.abs(result.jac)) < tolerance))


def observed_covariance(loglik: LogLikFn, weights: np.ndarray, params: np.ndarray,
                        penalty: float | np.ndarray, positive: Sequence[bool] | None = None,
                        total: Callable[[np.ndarray], tuple[float, np.ndarray]] | None = None,
                        gradient: np.ndarray | None = None) -> np.ndarray:
    """Inverse of the observed information, by central differences of the exact gradient.

    Differences are taken in log-parameter space for the positive parameters (relative steps
    suit parameters that span orders of magnitude) and mapped back:
    H_natural = D^-1 (H_log - diag(g*theta)) D^-1; parameters that are not ``positive``
    (coefficients) are differenced as they are (their D is 1 and their diagonal term 0).
    ``total``, when given, supplies the weighted gradient in place of ``loglik``'s rows.
    ``gradient``: the penalised weighted gradient at ``params``, when the caller has it (a fit
    has just computed it for its diagnostics): one evaluation of the likelihood fewer.
    """
    n = len(params)
    positive = np.ones(n, bool) if positive is None else np.asarray(positive, bool)
    params = np.asarray(params, dtype=np.float64)

    all_positive = bool(positive.all())
    # every parameter > 0 and no penalty: the penalty's term is +0.0 (x - 0.0 is x), left out
    unpenalised = all_positive and np.ndim(penalty) == 0 and float(penalty) == 0.0

    def weighted_gradient(p: np.ndarray) -> np.ndarray:
        found = total(p)[1] if total is not None else weights @ loglik(p)[1]
        return found if unpenalised else found - 2 * penalty * p

    def grad_log(log_params: np.ndarray) -> np.ndarray:
        if all_positive:  # the masks below select exp(log_params) everywhere: the same numbers
            p = np.exp(log_params)
            return weighted_gradient(p) * p
        p = np.where(positive, np.exp(np.where(positive, log_params, 0.0)), log_params)
        return weighted_gradient(p) * np.where(positive, p, 1.0)

    x = np.log(params) if all_positive else \
        np.where(positive, np.log(np.where(positive, params, 1.0)), params)
    h = 1e-5
    hessian_log = np.empty((n, n))
    for i in range(n):
        step = np.zeros(n)
        step[i] = h
        hessian_log[:, i] = (grad_log(x + step) - grad_log(x - step)) / (2 * h)
    hessian_log = (hessian_log + hessian_log.T) / 2
    g = weighted_gradient(params) if gradient is None else gradient
    if all_positive:  # d is params; g * params * True is g * params
        hessian = (hessian_log - np.diag(g * params)) / np.outer(params, params)
    else:
        d = np.where(positive, params, 1.0)
        hessian = (hessian_log - np.diag(g * params * positive)) / np.outer(d, d)
    return _inverse_information(-hessian)


_covariance = observed_covariance  # the old private name, still read as clvlab._fitting._covariance


def _inverse_information(information: np.ndarray) -> np.ndarray:
    """The covariance from the observed information, or NaN where the information is not
    positive definite: a positive diagonal alone does not make a covariance (an indefinite
    matrix would give standard errors and then multivariate-normal draws with no meaning)."""
    n = len(information)
    nan = np.full((n, n), np.nan)
    if not np.all(np.isfinite(information)):
        return nan
    try:
        lower = np.linalg.cholesky(information)  # fails unless positive definite
    except np.linalg.LinAlgError:
        return nan
    inverse_lower = np.linalg.solve(lower, np.eye(n))
    covariance = inverse_lower.T @ inverse_lower
    return (covariance + covariance.T) / 2


def summary_frame(names: Sequence[str], params: np.ndarray, covariance: np.ndarray,
                  level: float = 0.95, positive: Sequence[bool] | None = None) -> pd.DataFrame:
    """Estimates, standard errors and Wald intervals: on the log scale for the positive
    parameters (so they stay positive), as they are for the others (coefficients)."""
    params = np.asarray(params, dtype=np.float64)
    positive = np.ones(len(params), bool) if positive is None else np.asarray(positive, bool)
    se = np.sqrt(np.diag(covariance))
    z = stats.norm.ppf(0.5 + level / 2)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        log_se = se / params  # delta method
        low = np.where(positive, params * np.exp(-z * log_se), params - z * se)
        high = np.where(positive, params * np.exp(z * log_se), params + z * se)
    pct = f"{100 * level:g}%"
    return pd.DataFrame({"estimate": params, "std_error": se, f"lower {pct}": low,
                         f"upper {pct}": high}, index=pd.Index(list(names), name="parameter"))
