"""A model's weighted log-likelihood as one PyTensor operation, in Python and in numba.

``LogLikelihoodOp`` maps (params, *rows) to (the sum of weighted log-likelihoods, its gradient
in params): two outputs, so a leapfrog step evaluates the model's compiled kernel
(``BaseModel._total_kernel``) once for both. Its numba implementation calls that kernel
directly, so PyTensor 3's default numba backend and nutpie (which samples numba-compiled PyMC
models) run it without object mode; PyTensor 2's C backend calls ``perform``.

Three choices keep the compiled graph cheap and cacheable:
- the rows are shared variables, not constants: numba would freeze constants into the machine
  code (100,000s of rows), and nutpie passes shared variables by pointer;
- the numba function depends only on the kernel and the number of parameters, so PyTensor
  caches the compiled graph on disk under a key made of the source of the modules that define
  the kernel (``CompiledLikelihood.sources``): a second fit in a new process skips most of the
  compilation. A model with covariates samples its per-row kernel (every row at its own
  parameters: ``clvlab.models.row_kernels``), keyed by the source of the modules that define
  it (``sources``);
- the rare points where the kernel cannot sum every row (Pareto/NBD's series near z = 1, which
  the Python path hands to mpmath) reach Python through a module-level function and an integer
  key, an input like the rows, so no Python object is frozen into the cached code.

Those points are far out: Pareto/NBD's series fails only where alpha/beta (or beta/alpha)
exceeds about 4,000 for a customer with t near 0, against about 0.9 on CDNOW. A sampler reaches
them only in warm-up excursions, and there mpmath can take seconds per evaluation (one test
run of nutpie spent minutes there). So the compiled path rejects them (-inf, which NUTS treats
as a divergence of that excursion) and counts them (``rejected_points``), unless the fit lives
there (``exact=True``: its maximum-likelihood estimate is such a point), where it evaluates them
exactly as the Python path does.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import itertools
import sys
import weakref
from dataclasses import dataclass
from typing import Callable

import numpy as np

from clvlab.inference import compat as _compat
from clvlab.core.errors import ClvlabError

__all__ = ["CompiledLikelihood", "model_likelihood", "likelihood_graph", "compiled_graph",
           "guarded"]

_LIVE_OPS: "weakref.WeakValueDictionary[int, object]" = weakref.WeakValueDictionary()
_KEYS = itertools.count(1)
_OP_CLASS = None


@dataclass
class CompiledLikelihood:
    """A weighted log-likelihood as the Op evaluates it.

    ``kernel(params, *rows)`` (numba) returns [total, gradient..., flag], flag 1.0 where the
    compiled code cannot sum some row; ``python_total(params)`` returns (total, gradient)
    exactly, those rows included. Of the ``n_params`` parameters the first ``n_positive`` must
    be > 0 (a model's own parameters); the others are real (covariate coefficients).
    ``sources`` name the modules whose source identifies the compiled kernel and ``name`` the
    kernel, for PyTensor's cache key."""

    kernel: Callable
    rows: tuple
    python_total: Callable[[np.ndarray], tuple]
    n_params: int
    n_positive: int
    sources: tuple[str, ...]
    name: str


def model_likelihood(model, data: list[np.ndarray], weights: np.ndarray) -> CompiledLikelihood:
    """A model's own likelihood over its prepared, compressed rows (no covariates)."""
    kernel = type(model)._total_kernel
    rows = type(model)._kernel_arrays(data, weights)
    if kernel is None or rows is None:  # pragma: no cover - every model has one
        raise ClvlabError(f"{type(model).__name__} has no compiled likelihood kernel")
    n = len(model.param_names)
    return CompiledLikelihood(kernel, tuple(rows), lambda p: model._loglik_total(p, data, weights),
                              n, n, sources=(kernel.__module__,),
                              name=f"{kernel.__module__}_{kernel.__name__}")


def guarded(total: Callable, n_params: int,
            n_positive: int | None = None) -> Callable[[np.ndarray], np.ndarray]:
    """``total`` (params -> (value, gradient)) as params -> [value, gradient...], with -inf and a
    zero gradient where the point is outside the support (one of the first ``n_positive``
    parameters, all by default, not > 0) or the value is not finite: samplers reject such
    points instead of failing (NUTS's first steps once reached alpha = 4e17)."""
    positive = n_params if n_positive is None else n_positive

    def evaluate(params: np.ndarray) -> np.ndarray:
        p = np.asarray(params, dtype=np.float64)
        if np.all(p[:positive] > 0) and np.all(np.isfinite(p)):
            try:
                value, grad = total(p)
            except ArithmeticError:
                value, grad = -np.inf, None
            out = np.concatenate([[value], np.zeros(n_params) if grad is None else grad])
            if np.all(np.isfinite(out)):
                return out
        return np.concatenate([[-np.inf], np.zeros(n_params)])

    return evaluate


def python_fallback(key, params):
    """Called from compiled code (an object-mode block) for points the kernel flags: the exact
    Python evaluation where the Op is ``exact``, else -inf (rejected, and counted)."""
    op = _LIVE_OPS[int(key)]
    if op.exact:
        return np.append(op.python_total(params), 0.0)
    op.rejected_points += 1
    return np.concatenate([[-np.inf], np.zeros(op.n_params + 1)])


def likelihood_graph(model, data: list[np.ndarray], weights: np.ndarray, params,
                     exact: bool = False, estimate: np.ndarray | None = None):
    """The weighted log-likelihood of ``params`` (a PyTensor vector) as a PyTensor scalar, and
    the Op (whose ``rejected_points`` counts the flagged points the compiled path rejected;
    ``exact=True`` evaluates them in Python instead, as does an ``estimate``, the maximum-
    likelihood point, that the kernel itself flags: the posterior lives there)."""
    return compiled_graph(model_likelihood(model, data, weights), params, exact, estimate)


def compiled_graph(likelihood: CompiledLikelihood, params, exact: bool = False,
                   estimate: np.ndarray | None = None):
    """``likelihood_graph`` for any ``CompiledLikelihood`` (a model with covariates samples
    its per-row kernel, every row at its own parameters)."""
    import pytensor

    kernel, rows, n = likelihood.kernel, likelihood.rows, likelihood.n_params
    op = _op_class()(kernel, guarded(likelihood.python_total, n, likelihood.n_positive), n,
                     likelihood.n_positive,
                     _cache_key(likelihood.sources, likelihood.name, n, likelihood.n_positive))
    op.exact = exact or (estimate is not None
                         and kernel(np.asarray(estimate, dtype=np.float64), *rows)[-1] != 0.0)
    key = pytensor.shared(np.array([op.key], dtype=np.int64), name=f"clvlab_op_{op.key}")
    shared = [pytensor.shared(r, name=f"clvlab_rows_{op.key}_{i}", borrow=True)
              for i, r in enumerate(rows)]
    value, _ = op(params, key, *shared)
    return value, op


def _op_class():
    """The Op class, defined once (PyTensor is imported on first use), with its numba dispatch."""
    global _OP_CLASS
    if _OP_CLASS is not None:
        return _OP_CLASS
    import pytensor.tensor as pt
    from pytensor.gradient import DisconnectedType, disconnected_type
    from pytensor.graph.basic import Apply
    from pytensor.graph.op import Op

    @_compat.declare_pullback
    class LogLikelihoodOp(Op):
        """(params, key, *rows) -> (sum of weighted log-likelihoods, its gradient in params).

        No ``__props__``: two Ops are equal only if they are the same object, so a graph with
        two models never merges their likelihoods."""

        def __init__(self, kernel: Callable, python_total: Callable, n_params: int,
                     n_positive: int, cache_key: str):
            self.kernel = kernel              # compiled: (params, *rows) -> [value, grad, flag]
            self.python_total = python_total  # params -> [value, grad] (fallback rows included)
            self.n_params = n_params
            self.n_positive = n_positive      # the first n_positive params are > 0
            self.cache_key = cache_key
            self.key = next(_KEYS)
            self.exact = False        # flagged points in compiled code: exact, or rejected
            self.rejected_points = 0
            _LIVE_OPS[self.key] = self

        def make_node(self, params, key, *rows):
            inputs = [pt.as_tensor_variable(v) for v in (params, key, *rows)]
            return Apply(self, inputs, [pt.dscalar(), pt.dvector()])

        def perform(self, node, inputs, outputs):
            out = self.python_total(inputs[0])
            outputs[0][0] = np.asarray(out[0])
            outputs[1][0] = out[1:]

        def connection_pattern(self, node):
            return [[True, True]] + [[False, False]] * (len(node.inputs) - 1)

        def pullback(self, inputs, outputs, cotangents):
            value_bar = cotangents[0]
            if isinstance(value_bar.type, DisconnectedType):
                params_bar = pt.zeros_like(inputs[0])
            else:
                params_bar = value_bar * outputs[1]
            # the gradient output is not differentiated again (no sampler needs second derivatives)
            return [params_bar] + [disconnected_type() for _ in inputs[1:]]

        def __str__(self) -> str:
            return f"clvlab_loglik[{self.cache_key.rsplit('_', 1)[0]}]"

    _compat.register_numba(LogLikelihoodOp, _numba_implementation)
    _OP_CLASS = LogLikelihoodOp
    return LogLikelihoodOp


def _numba_implementation(op, node):
    """(the Op in nopython mode, its cache key). The kernel's flagged points go to Python in an
    object-mode block, entered only when the kernel flags them."""
    import numba

    kernel, n, positive = op.kernel, op.n_params, op.n_positive

    @numba.njit
    def clvlab_loglik(params, key, *rows):  # pragma: no cover - compiled
        value = -np.inf
        grad = np.zeros(n)
        inside = True
        for i in range(n):  # own parameters > 0, coefficients anywhere, all finite
            bounded = params[i] > -np.inf and params[i] < np.inf  # False for NaN too
            if not (bounded and (i >= positive or params[i] > 0.0)):
                inside = False
        if inside:
            out = kernel(params, *rows)
            if out[n + 1] != 0.0:
                with numba.objmode(out="float64[:]"):
                    out = python_fallback(key[0], params)
            finite = True
            for i in range(n + 1):
                if not np.isfinite(out[i]):
                    finite = False
            if finite:
                value = out[0]
                grad = out[1:n + 1].copy()
        return np.asarray(value), grad

    return clvlab_loglik, op.cache_key


def _cache_key(modules: tuple[str, ...], name: str, n_params: int, n_positive: int) -> str:
    """Identifies the compiled code: the whole source of the modules that define the kernel
    (its callees live there and in modules they import, whose source goes in too) and this
    module's; a generated kernel (no source of its own) is identified by its generator's
    module and the ``name`` that says what it was generated for."""
    return f"clvlab_loglik_{name}_{n_params}_{n_positive}_{_source_digest(tuple(modules))}"


@functools.lru_cache(maxsize=None)
def _source_digest(modules: tuple[str, ...]) -> str:
    sources = [inspect.getsource(sys.modules[__name__])]
    sources.extend(inspect.getsource(sys.modules[name]) for name in modules)
    for name in ("clvlab.models._special", "clvlab.models._hyp", "clvlab.models._pareto_kernel"):
        sources.append(inspect.getsource(sys.modules[name]) if name in sys.modules else "")
    return hashlib.sha256("\0".join(sources).encode()).hexdigest()
