"""L-BFGS-B as ``scipy.optimize.minimize`` runs it, without its per-evaluation layers.

A CDNOW fit evaluates its objective some 30 times; ``minimize`` wraps each evaluation in
ScalarFunction, MemoizeJac, copies and checks (some 60 us each, a fifth of a BG/NBD fit). Here
scipy's own routine (``setulb``) is called in the same order with the same arrays, so the
iterates, criteria and diagnostics are ``minimize``'s (tests/test_fit_overhead.py compares the
two to the bit). ``setulb`` is private to SciPy: its loop is used only on the SciPy releases it
was checked on (:data:`CHECKED_SCIPY`); any other release, or a routine that refuses the
arguments, runs ``minimize`` itself, with the same results and its own speed.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import scipy
from scipy import optimize

__all__ = ["minimize_lbfgsb", "CHECKED_SCIPY", "private_loop_in_use"]

#: the SciPy minor releases (inclusive) whose private L-BFGS-B interface the loop was checked
#: against (1.17 on Python 3.11, 1.18 on 3.13): a newer SciPy uses ``minimize`` until checked
CHECKED_SCIPY = ((1, 17), (1, 18))


def _scipy_release() -> tuple[int, int]:
    try:
        major, minor = scipy.__version__.split(".")[:2]
        return int(major), int(minor)
    except ValueError:  # pragma: no cover - a development build such as 1.19.0.dev0+...
        return (0, 0)


def _private_routine():
    """scipy's L-BFGS-B routine and its messages, as ``scipy.optimize.minimize`` calls them
    (SciPy 1.15's C port onwards), on a checked SciPy release; (None, None, None) elsewhere."""
    if not CHECKED_SCIPY[0] <= _scipy_release() <= CHECKED_SCIPY[1]:
        return None, None, None
    try:
        from scipy.optimize import _lbfgsb as routine
        from scipy.optimize._lbfgsb_py import status_messages, task_messages
    except ImportError:  # pragma: no cover - a checked release built without it
        return None, None, None
    if not callable(getattr(routine, "setulb", None)):  # pragma: no cover
        return None, None, None
    return routine, status_messages, task_messages


_LBFGSB, _STATUS, _TASK = _private_routine()


def private_loop_in_use() -> bool:
    """Whether fits run the loop below (a checked SciPy), or ``minimize`` itself."""
    return _LBFGSB is not None


def minimize_lbfgsb(objective: Callable, x0: np.ndarray, first: tuple, *, bound: float,
                     maxiter: int, ftol: float, gtol: float) -> optimize.OptimizeResult:
    """``optimize.minimize(objective, x0, jac=True, method="L-BFGS-B", bounds=[(-bound, bound)]
    * n, options={"maxiter": maxiter, "ftol": ftol, "gtol": gtol})``, ``first`` being
    ``objective(x0)`` already computed.

    The same iterates, criteria and diagnostics (scipy's own L-BFGS-B routine, called in the
    same order with the same arrays; ``_lbfgsb_loop``), without the layers that ``minimize``
    puts around each evaluation (ScalarFunction, MemoizeJac, copies and checks: some 60 us an
    evaluation, a fifth of a CDNOW BG/NBD fit, issue 33). Where this SciPy's routine has
    another interface, ``minimize`` itself runs.
    """
    if _LBFGSB is not None:
        try:
            return _lbfgsb_loop(objective, x0, first, bound, maxiter, ftol, gtol)
        except _InterfaceChanged:  # pragma: no cover - a SciPy whose setulb takes other arguments
            pass
    return optimize.minimize(_reusing(objective, x0, first), x0, jac=True, method="L-BFGS-B",
                             bounds=[(-bound, bound)] * len(x0),
                             options={"maxiter": maxiter, "ftol": ftol, "gtol": gtol})


_EPSILON = float(np.finfo(float).eps)  # what _minimize_lbfgsb divides ftol by


class _InterfaceChanged(Exception):
    """scipy's setulb refused the arguments of SciPy 1.15-1.17 (before any evaluation)."""


def _lbfgsb_loop(objective: Callable, x0: np.ndarray, first: tuple, bound: float, maxiter: int,
                 ftol: float, gtol: float, maxcor: int = 10, maxls: int = 20,
                 maxfun: int = 15000) -> optimize.OptimizeResult:
    """scipy.optimize._lbfgsb_py._minimize_lbfgsb's loop (SciPy 1.15-1.17, jac=True, finite
    bounds, no callback), with its ScalarFunction's memo written out: an evaluation where the
    routine asks at a new point, the last one's value where it asks again at the same point.
    ``objective`` gets a copy of the point, as there; its value and gradient go to the routine
    as ``minimize`` passes them (the gradient as a float64 copy)."""
    n = x0.size
    factr = ftol / _EPSILON
    low, up = np.full(n, -float(bound)), np.full(n, float(bound))
    nbd = np.full(n, 2, dtype=np.int32)  # both bounds
    x = np.array(np.clip(np.asarray(x0, dtype=np.float64), low, up), dtype=np.float64)
    # ScalarFunction's first evaluation, at the (clipped) start: ``first`` where it is x0
    if np.array_equal(x, x0):
        value, gradient = first[0], first[1].copy()
    else:
        value, gradient = objective(x.copy())
    value, gradient = _as_scalar(value), np.atleast_1d(gradient)
    # the point of the last evaluation, as bytes: where the routine asks again at the same
    # numbers, its value is passed on again (array_equal there: x + 0.0 makes -0.0 0.0, so that
    # the bytes compare as array_equal does; a NaN is evaluated again there, to the same value)
    at = (x + 0.0).tobytes()
    evaluations = 1
    f = np.array(0.0, dtype=np.float64)
    g = np.zeros((n,), dtype=np.float64)
    wa = np.zeros(2 * maxcor * n + 5 * n + 11 * maxcor * maxcor + 8 * maxcor, np.float64)
    iwa = np.zeros(3 * n, dtype=np.int32)
    task = np.zeros(2, dtype=np.int32)
    ln_task = np.zeros(2, dtype=np.int32)
    lsave = np.zeros(4, dtype=np.int32)
    isave = np.zeros(44, dtype=np.int32)
    dsave = np.zeros(29, dtype=np.float64)
    setulb = _LBFGSB.setulb
    iterations = 0
    started = False
    while True:
        g = g.astype(np.float64)
        try:
            setulb(maxcor, x, low, up, nbd, f, g, factr, gtol, wa, iwa, task, lsave, isave, dsave,
                   maxls, ln_task)
        except TypeError as error:
            if not started:
                raise _InterfaceChanged from error
            raise
        started = True
        if task[0] == 3:  # the routine wants f and g at x
            point = (x + 0.0).tobytes()
            if point != at:
                at = point
                value, gradient = objective(x.copy())  # setulb writes into x: a copy
                value, gradient = _as_scalar(value), np.atleast_1d(gradient)
                evaluations += 1
            f, g = value, gradient
        elif task[0] == 1:  # a new iteration
            iterations += 1
            if iterations >= maxiter:
                task[0], task[1] = 5, 504
            elif evaluations > maxfun:
                task[0], task[1] = 5, 502
        else:
            break
    if task[0] == 4:
        status = 0
    elif evaluations > maxfun or iterations >= maxiter:
        status = 1
    else:
        status = 2
    return optimize.OptimizeResult(fun=f, jac=g, nfev=evaluations, njev=evaluations,
                                   nit=iterations, status=status,
                                   message=_STATUS[task[0]] + ": " + _TASK[task[1]], x=x,
                                   success=status == 0)


def _as_scalar(value):
    """The objective's value as scipy's wrapper passes it on (a true scalar)."""
    return value if np.isscalar(value) else np.asarray(value).item()


def _reusing(objective: Callable, x0: np.ndarray, first: tuple) -> Callable:
    """``objective``, answering its first call at ``x0`` (where L-BFGS-B starts) with ``first``,
    the value already computed to check the start: one evaluation fewer per start."""
    pending = [True]

    def wrapped(x: np.ndarray):
        if pending[0]:
            pending[0] = False
            if np.array_equal(x, x0):
                return first[0], first[1].copy()
        return objective(x)

    return wrapped
