"""The compiled pieces that every model's likelihood with covariates shares.

A customer's own parameters are ``theta_gj = theta_j * exp(sign_j * x_g' g_process(j))`` for
their covariate group g (the customers with the same covariates). Two things follow for every
model, compiled here once:

- ``group_params(params, zp, proc, sign)``: each group's own parameters (groups x k) and
  their logarithms (which the rows read, and which cost nothing beside the exponent), from
  ``params`` (the model's own k parameters, then the c coefficients, on the user's scale),
  ``zp[p, g, :]`` (group g's covariates mapped onto the coefficients of process p, ``x_g' A_p``,
  so that the exponent of process p is ``zp[p, g] . coefficients``), ``proc[j]`` and
  ``sign[j]`` (the process that moves parameter j, -1 for none, and its sign);
- ``add_chained``: the chain rule that turns each group's gradient in its own parameters into
  the gradient in (params): d/d theta_j = sum_g G_gj e_gj and d/d coefficient c =
  sum_g sum_j G_gj theta_gj sign_j zp[proc_j, g, c], with G_gj the gradient of group g's rows
  in its own parameter j and e_gj = theta_gj / theta_j.

The per-row kernels of each model (``row_kernels_continuous``, ``row_kernels_pareto``,
``row_kernels_discrete``) call both in one compiled pass over the rows, and sum the rows'
log-likelihoods with ``add_compensated``; ``clvlab.models.row_kernels`` says which model uses
which.

``grouped_kernel`` is the older, generic form, kept for models that have no per-row kernel (a
user's own model class): a loop over the groups around the plain model's own kernel
(``BaseModel._total_kernel``), generated for the number of the kernel's array arguments and
compiled on first use in each process (numba cannot cache generated source), with arguments

    grouped(params, zp, proc, sign, a0, o0, a1, o1, ...) -> [total, gradient..., flag]

where ``a_i`` is the plain kernel's i-th array argument of every group, concatenated, and
``o_i`` the offsets where each group's part starts. The flag is 1 when some group's kernel
flags a row it cannot evaluate (the caller then takes the Python path).
"""

from __future__ import annotations

import math
from typing import Callable

import numba
import numpy as np

__all__ = ["group_params", "log_params", "add_chained", "add_compensated", "grouped_kernel",
           "concatenate_groups"]


@numba.njit(cache=True, nogil=True, error_model="numpy")
def group_params(params, zp, proc, sign):  # pragma: no cover - compiled
    """Each covariate group's own parameters and their logarithms: two arrays (groups, k)."""
    k = proc.size
    n_coef = params.size - k
    own, log_own = np.empty((zp.shape[1], k)), np.empty((zp.shape[1], k))
    log_base = np.log(params[:k])
    for g in range(zp.shape[1]):
        for j in range(k):
            if proc[j] >= 0:
                eta = 0.0
                for c in range(n_coef):
                    eta += zp[proc[j], g, c] * params[k + c]
                own[g, j] = params[j] * math.exp(sign[j] * eta)
                log_own[g, j] = log_base[j] + sign[j] * eta
            else:
                own[g, j] = params[j]
                log_own[g, j] = log_base[j]
    return own, log_own


@numba.njit(cache=True, nogil=True, error_model="numpy")
def log_params(own):  # pragma: no cover - compiled
    """The logarithms of given own parameters (what ``group_params`` returns beside them)."""
    out = np.empty_like(own)
    for g in range(own.shape[0]):
        for j in range(own.shape[1]):
            out[g, j] = math.log(own[g, j])
    return out


@numba.njit(cache=True, nogil=True, error_model="numpy")
def add_chained(out, gradient, own, params, zp, proc, sign):  # pragma: no cover - compiled
    """out[1:] += the chain rule of ``gradient`` (groups, k), each group's summed gradient in
    its own parameters, onto (params): out[1 + j] for parameter j, out[1 + k + c] for
    coefficient c (d theta_gj / d theta_j = theta_gj / theta_j, d theta_gj / d coefficient c =
    theta_gj sign_j zp[proc_j, g, c])."""
    k = proc.size
    n_coef = params.size - k
    for j in range(k):
        base = 0.0
        for g in range(gradient.shape[0]):
            d = gradient[g, j] * own[g, j]
            base += d
            if proc[j] >= 0:
                for c in range(n_coef):
                    out[1 + k + c] += d * sign[j] * zp[proc[j], g, c]
        out[1 + j] += base / params[j]


@numba.njit(cache=True, nogil=True, error_model="numpy", inline="always")
def add_compensated(total, lost, term):  # pragma: no cover - compiled
    """(total + term, what that sum lost to rounding, to take off the next term): Kahan's
    compensated sum. A fit's total over 10^5-10^6 rows summed plainly carries relative noise
    of about 1e-14, above the optimiser's tolerance (1e-15 relative), which then spends dozens
    of evaluations on line searches in noise at the end (98 evaluations where 36 do)."""
    term = term - lost
    after = total + term
    return after, (after - total) - term


# --- the generic loop over groups, for models without a per-row kernel ----------------------
_COMPILED: dict[tuple[Callable, int], Callable] = {}

_TEMPLATE = '''
def grouped(params, zp, proc, sign, {arrays}):
    k = proc.size
    n_coef = params.size - k
    out = np.zeros(params.size + 2)
    own = np.empty(k)
    for g in range(zp.shape[1]):
        for j in range(k):
            own[j] = params[j]
            if proc[j] >= 0:
                eta = 0.0
                for c in range(n_coef):
                    eta += zp[proc[j], g, c] * params[k + c]
                own[j] = params[j] * math.exp(sign[j] * eta)
        part = kernel(own, {slices})
        if part[k + 1] != 0.0:
            out[params.size + 1] = 1.0
            return out
        out[0] += part[0]
        for j in range(k):
            d = part[1 + j]
            out[1 + j] += d * own[j] / params[j]
            if proc[j] >= 0:
                for c in range(n_coef):
                    out[1 + k + c] += d * own[j] * sign[j] * zp[proc[j], g, c]
    return out
'''


def grouped_kernel(kernel: Callable, n_arrays: int) -> Callable:
    """The compiled loop over covariate groups around the plain ``kernel`` (see the module)."""
    key = (kernel, n_arrays)
    if key not in _COMPILED:
        arrays = ", ".join(f"a{i}, o{i}" for i in range(n_arrays))
        slices = ", ".join(f"a{i}[o{i}[g]:o{i}[g + 1]]" for i in range(n_arrays))
        namespace = {"np": np, "math": math, "kernel": kernel}
        exec(_TEMPLATE.format(arrays=arrays, slices=slices), namespace)  # noqa: S102 - our own source
        _COMPILED[key] = numba.njit(nogil=True, error_model="numpy")(namespace["grouped"])
    return _COMPILED[key]


def concatenate_groups(per_group: list[tuple[np.ndarray, ...]]) -> list[np.ndarray]:
    """Each array argument of every group, concatenated, each followed by its offsets."""
    out = []
    for i in range(len(per_group[0])):
        parts = [np.ascontiguousarray(arrays[i]) for arrays in per_group]
        offsets = np.zeros(len(parts) + 1, dtype=np.int64)
        offsets[1:] = np.cumsum([len(p) for p in parts])
        out.extend([np.ascontiguousarray(np.concatenate(parts)), offsets])
    return out
