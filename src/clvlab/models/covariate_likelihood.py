"""The log-likelihood of a model with covariates over a fit's compressed rows.

``GroupedData`` holds the rows (sorted by covariate group) and builds what the compiled
kernels read; ``group_likelihood`` gives the two functions a fit needs, of the free parameters
(the model's own, then the coefficients on the optimiser's scale, coefficient x covariate sd):
the per-row log-likelihood with its gradient, and the weighted total with its gradient.

Every clvlab model evaluates all rows in one compiled pass, each at its covariate group's
parameters (``row_kernels``). From ``THREADS_FROM_ROWS`` rows the total splits the rows into
contiguous parts that end at group boundaries, one per available core, and evaluates each part
with the same compiled kernel in a thread (the kernels release the GIL). Threads rather than
numba's ``parallel=True``: the samplers call the same kernels from forked processes (PyMC's
chains, where GNU OpenMP is not fork-safe) and from threads (nutpie, where numba's workqueue
layer aborts on concurrent calls), and the sampler's kernel stays serial. The parts' sums are
added in a fixed order, so the result does not depend on which thread finishes first.

A model class without per-row kernels (a user's own) evaluates the plain model once per group:
in Python, or from ``COMPILED_FROM_GROUPS`` groups up in a compiled loop over the groups
(``covariate_kernel.grouped_kernel``).
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

import numpy as np

from clvlab.inference.grouping import group_rows
from clvlab.models.covariate_kernel import concatenate_groups, grouped_kernel

__all__ = ["GroupedData", "group_likelihood", "COMPILED_FROM_GROUPS", "THREADS_FROM_ROWS"]

#: for a model without per-row kernels: the number of covariate groups from which a fit runs
#: its loop over the groups in compiled code (generated and compiled once per process)
COMPILED_FROM_GROUPS = 200

#: the number of rows from which a fit evaluates its rows in parts, in threads
THREADS_FROM_ROWS = 50_000


class GroupedData:
    """The compressed rows of a fit in covariate-group order, and what the kernels read.

    ``weights`` and ``base`` (the model's data columns) are in the order of the rows that
    ``group_likelihood``'s ``rows`` returns; ``group`` is each row's index among the distinct
    covariate rows ``covariates_of_group``. ``family`` is the model's per-row kernels; a model
    without them (None) has each group's ``slices`` and prepared data instead."""

    def __init__(self, model, distinct: list[np.ndarray], counts: np.ndarray, n_base: int):
        # imported here: its thirty compiled kernels cost an import of clvlab 20 ms, which a
        # model without covariates need not pay
        from clvlab.models import row_kernels

        base, covariates = distinct[:n_base], np.column_stack(distinct[n_base:])
        self._model = model
        self.family = row_kernels.family_of(model)
        self._layouts: dict[tuple, tuple] = {}
        values, group = group_rows(list(covariates.T))
        # rows in group order: the kernels then read each group's parameters, and the levels
        # that carry the group, in the order of the rows (not at random in arrays of 10^6)
        order = np.argsort(group, kind="stable")
        self.group = np.ascontiguousarray(group[order], dtype=np.int64)
        self.weights = np.asarray(counts, dtype=np.float64)[order]
        self.base = [np.ascontiguousarray(column[order], dtype=np.float64) for column in base]
        self.covariates_of_group = np.column_stack(values)
        self.slices = self.prepared = None
        if self.family is None:
            bounds = np.flatnonzero(np.diff(self.group)) + 1
            self.slices = [slice(a, b) for a, b in zip(np.r_[0, bounds], np.r_[bounds, len(self.group)])]
            self.prepared = [model._prepare([column[s] for column in self.base]) for s in self.slices]

    @property
    def row_calls(self) -> int:
        """The Python calls that evaluating the rows takes: 1, or one per group."""
        return 1 if self.family is not None else len(self.slices)

    def _head(self, design) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(zp, proc, sign) of ``covariate_kernel`` for every group."""
        processes = list(dict.fromkeys(process for process, _ in design.links.values()))
        maps = design.maps()
        zp = np.stack([self.covariates_of_group @ maps[p] if p in maps else
                       np.zeros((len(self.covariates_of_group), len(design.coefficient_names)))
                       for p in processes])
        proc = np.array([processes.index(design.links[n][0]) if n in design.links else -1
                         for n in design.base_names], dtype=np.int64)
        sign = np.array([float(design.links.get(n, (None, 0))[1]) for n in design.base_names])
        return np.ascontiguousarray(zp), proc, sign

    def layout(self, design, rows: slice = slice(None)) -> tuple:
        """The per-row kernels' arrays (``RowFamily.layout``) for ``rows`` (whole groups), with
        groups numbered from the first of them; built once per design's set of parameters that
        differ between groups (those of the processes with covariates)."""
        varies = tuple(design.links.get(name, (None, 0))[0] in design.processes
                       for name in design.base_names)
        start, stop, _ = rows.indices(len(self.group))
        key = (varies, start, stop)
        if key not in self._layouts:
            group = self.group[start:stop] - (self.group[start] if stop > start else 0)
            self._layouts[key] = self.family.layout(
                self._model, [column[start:stop] for column in self.base],
                np.ascontiguousarray(group), np.array(varies))
        return self._layouts[key]

    def compiled(self, design, rows: slice = slice(None)) -> tuple[Callable, tuple] | None:
        """The compiled weighted log-likelihood of ``rows`` (whole groups; all by default):
        (``kernel``, ``arrays``) with ``kernel(params, *arrays)`` -> [total, gradient...,
        flag], params on the user's scale. The model's per-row kernel, or else the compiled
        loop over the groups (``covariate_kernel``); None where the plain model has no
        compiled kernel."""
        zp, proc, sign = self._head(design)
        if self.family is not None:
            start, stop, _ = rows.indices(len(self.group))
            groups = slice(self.group[start], self.group[stop - 1] + 1)
            return self.family.total, (np.ascontiguousarray(zp[:, groups]), proc, sign,
                                       *self.layout(design, rows), self.weights[start:stop])
        kernel = type(self._model)._total_kernel
        arrays = [self._model._kernel_arrays(prepared, self.weights[s])
                  for prepared, s in zip(self.prepared, self.slices)]
        if kernel is None or any(a is None for a in arrays):
            return None
        return grouped_kernel(kernel, len(arrays[0])), (zp, proc, sign, *concatenate_groups(arrays))

    def parts(self, design, n_parts: int) -> list[tuple[Callable, tuple]]:
        """``compiled`` for up to ``n_parts`` contiguous runs of whole groups of about equal
        numbers of rows (fewer where the groups are fewer)."""
        n = len(self.group)
        bounds = [0]
        for p in range(1, n_parts):
            at = int(np.searchsorted(self.group, self.group[n * p // n_parts], side="left"))
            if at > bounds[-1]:
                bounds.append(at)
        bounds.append(n)
        return [self.compiled(design, slice(a, b)) for a, b in zip(bounds[:-1], bounds[1:])]


def available_threads() -> int:
    """The cores this process may run on."""
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except AttributeError:  # pragma: no cover - not on Linux
        return max(os.cpu_count() or 1, 1)


# process id -> (pool, its threads): a forked child, whose copy of the pool has no threads,
# makes its own
_POOLS: dict[int, tuple[ThreadPoolExecutor, int]] = {}
_POOL_LOCK = threading.Lock()


def _pool(threads: int) -> ThreadPoolExecutor:
    with _POOL_LOCK:
        pool, size = _POOLS.get(os.getpid(), (None, 0))
        if pool is None or size < threads:
            pool = ThreadPoolExecutor(threads, thread_name_prefix="clvlab-likelihood")
            _POOLS[os.getpid()] = (pool, threads)
        return pool


def _in_threads(parts: list[tuple[Callable, tuple]]) -> Callable[[np.ndarray], np.ndarray]:
    """params -> the sum of the parts' kernel outputs (flag: the largest), each part in a thread."""
    if len(parts) == 1:
        kernel, arrays = parts[0]
        return lambda params: kernel(params, *arrays)

    def evaluate(params: np.ndarray) -> np.ndarray:
        pool = _pool(len(parts))
        futures = [pool.submit(kernel, params, *arrays) for kernel, arrays in parts]
        outs = [future.result() for future in futures]
        total = np.sum(outs, axis=0)  # in the parts' order: the same sum whichever ends first
        total[-1] = max(out[-1] for out in outs)
        return total

    return evaluate


def group_likelihood(model, design, grouped: GroupedData, scales: np.ndarray):
    """(per-row log-likelihood function, total function) of the free parameters
    (base parameters, then coefficients on the optimiser's scale: coefficient x scale)."""
    k = len(model.param_names)
    covariates = grouped.covariates_of_group

    def split(free):
        free = np.asarray(free, dtype=np.float64)
        return free[:k], free[k:] / scales

    def rows(free):
        base, coefficients = split(free)
        params, multipliers = design.exponents(base, coefficients, covariates)
        if grouped.family is not None:
            from clvlab.models.row_kernels import evaluate_rows

            group = grouped.group
            values, own = evaluate_rows(model, grouped.family, params, group, grouped.base,
                                        grouped.layout(design))
            gradient = design.chain(own, params[group], multipliers[group], covariates[group])
            gradient[:, k:] /= scales
            return values, gradient
        values, gradients = [], []
        for g, s in enumerate(grouped.slices):
            v, grad = model._loglik(params[g], grouped.prepared[g])
            n = len(v)
            values.append(v)
            gradients.append(design.chain(grad, np.repeat(params[g:g + 1], n, 0),
                                          np.repeat(multipliers[g:g + 1], n, 0),
                                          np.repeat(covariates[g:g + 1], n, 0)))
        gradient = np.vstack(gradients)
        gradient[:, k:] /= scales
        return np.concatenate(values), gradient

    # the per-row kernels are compiled once and cached on disk; the generic loop over groups
    # (a model without them) is compiled on first use in each process (about 4 s), so a few
    # groups run as Python calls of the plain kernels instead
    compiled = None
    if grouped.family is not None:
        threads = available_threads() if len(grouped.group) >= THREADS_FROM_ROWS else 1
        compiled = _in_threads(grouped.parts(design, threads))
    elif len(grouped.slices) > COMPILED_FROM_GROUPS:
        found = grouped.compiled(design)
        if found is not None:
            compiled = _in_threads([found])

    def total(free):
        base, coefficients = split(free)
        if compiled is not None:
            out = compiled(np.concatenate([base, coefficients]))
            if out[-1] == 0.0:
                gradient = out[1:-1].copy()
                gradient[k:] /= scales
                return float(out[0]), gradient
        if grouped.family is not None:  # a row the kernel flags: the rows, with their fallback
            values, gradient = rows(free)
            return float(grouped.weights @ values), grouped.weights @ gradient
        params, multipliers = design.exponents(base, coefficients, covariates)
        value, own = 0.0, np.empty_like(params)
        for g, s in enumerate(grouped.slices):
            v, grad = model._loglik_total(params[g], grouped.prepared[g], grouped.weights[s])
            value += v
            own[g] = grad
        gradient = design.chain(own, params, multipliers, covariates).sum(axis=0)
        gradient[k:] /= scales
        return value, gradient

    return rows, total
