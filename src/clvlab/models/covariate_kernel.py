"""The weighted log-likelihood of a model with covariates as one compiled (numba) function.

``clvlab.models.covariates`` evaluates the plain model's kernel once per covariate group. With
categorical covariates there are a handful of groups and a Python loop costs nothing; with a
continuous covariate every customer is a group, and 100,000 Python calls per evaluation would
make a fit take minutes. So the loop over groups is compiled too: ``grouped_kernel(kernel, n)``
builds, once per plain kernel, a numba function

    grouped(params, zp, proc, sign, a0, o0, a1, o1, ...) -> [total, gradient..., flag]

with the plain kernel's calling convention (``BaseModel._total_kernel``), so the optimiser and
the samplers' likelihood operation call it alike:

- ``params``: the model's own parameters (k), then the coefficients (c), on the user's scale;
- ``zp[p, g, :]``: group g's covariates mapped onto the coefficients of process p
  (``x_g' A_p``, so that the exponent of process p is ``zp[p, g] . coefficients``);
- ``proc[j]``, ``sign[j]``: the process that moves parameter j (-1: none) and its sign;
- ``a_i``, ``o_i``: the plain kernel's i-th array argument of every group, concatenated, and
  the offsets where each group's part starts (group g's part is ``a_i[o_i[g]:o_i[g + 1]]``).

The gradient follows by the chain rule (see ``covariates``); the flag is 1 when some group's
kernel flags a row it cannot evaluate (the caller then takes the Python path).

The source is generated for the number of array arguments (numba cannot slice a tuple of
arrays of mixed types in a loop), and compiled on first use per kernel: about a second.
"""

from __future__ import annotations

import math  # noqa: F401 - used by the generated source
from typing import Callable

import numba
import numpy as np

__all__ = ["grouped_kernel", "concatenate_groups"]

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
