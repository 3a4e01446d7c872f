"""The one place that knows which PyMC / ArviZ / PyTensor stack is installed.

Python 3.11 gets PyMC 5, ArviZ 0.x and PyTensor 2; Python 3.12+ gets PyMC 6, ArviZ 1 and
PyTensor 3. They differ in what sampling returns (ArviZ's ``InferenceData`` against an
``xarray.DataTree``), in ArviZ's function signatures and column names, and in how a PyTensor
Op declares its gradient (``L_op`` against ``pullback``). Everything else in clvlab calls the
functions here and never branches on a version itself. Posterior files are plain netCDF with
one group per ArviZ group on both stacks, so a file written by either loads on the other.

Imports of PyMC, ArviZ and PyTensor stay inside the functions: importing clvlab must not pay
for them (the maximum-likelihood path never needs them). PyMC and ArviZ are imported through
``pymc()`` and ``arviz()``: ArviZ 0.2x announces its coming refactor with a FutureWarning on the
first import of each day (unless its arviz_base/stats/plots preview packages are installed), a
notice about ArviZ's own future with nothing for a clvlab user to change, and PyMC 5 imports
ArviZ itself; so that one message, and only while importing, is not shown. ArviZ 1 has no
such notice.
"""

from __future__ import annotations

import warnings
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

__all__ = ["pymc", "arviz", "arviz_major", "posterior_dataset", "group_names", "add_groups", "subset_groups",
           "idata_from_posterior", "save_idata", "load_idata", "rhat", "ess", "summary_table",
           "find_map", "nutpie_low_rank", "declare_pullback", "register_numba"]


@lru_cache(maxsize=None)
def _major(distribution: str) -> int:
    return int(metadata.version(distribution).split(".")[0])


#: ArviZ 0.2x's once-a-day import notice (arviz/__init__.py, ``_warn_once_per_day``)
_ARVIZ_NOTICE = r"\s*ArviZ is undergoing a major refactor"


def _import(name: str):
    import importlib

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_ARVIZ_NOTICE, category=FutureWarning)
        return importlib.import_module(name)


def pymc():
    """The ``pymc`` module (imported without ArviZ 0.2x's import notice)."""
    return _import("pymc")


def arviz():
    """The ``arviz`` module (imported without ArviZ 0.2x's import notice)."""
    return _import("arviz")


def arviz_major() -> int:
    return _major("arviz")


def _is_datatree(idata: Any) -> bool:
    return type(idata).__name__ == "DataTree"


# --- reading and building posterior containers -------------------------------------------------

def posterior_dataset(idata: Any, names: Sequence[str] | None = None):
    """The posterior group as an ``xarray.Dataset`` (only ``names`` if given)."""
    posterior = idata.posterior
    dataset = posterior.to_dataset() if hasattr(posterior, "to_dataset") else posterior
    return dataset[list(names)] if names is not None else dataset


def group_names(idata: Any) -> list[str]:
    """The groups present (``posterior``, ``sample_stats``, ...), without the root."""
    if _is_datatree(idata):
        return [name for name in idata.children]
    return list(idata.groups())


def add_groups(idata: Any, **datasets) -> Any:
    """Add ``name=xarray.Dataset`` groups in place (and return the container)."""
    if _is_datatree(idata):
        import xarray as xr

        for name, dataset in datasets.items():
            idata[name] = xr.DataTree(dataset=dataset)
    else:
        idata.add_groups(**datasets)
    return idata


def keep_posterior_variables(idata: Any, names: Sequence[str]) -> Any:
    """Drop every posterior variable but ``names`` (PyMC adds deterministic helpers)."""
    dataset = posterior_dataset(idata, names)
    if _is_datatree(idata):
        import xarray as xr

        idata["posterior"] = xr.DataTree(dataset=dataset)
    else:
        idata.posterior = dataset
    return idata


def subset_groups(idata: Any, groups: Sequence[str]) -> Any:
    """A new container holding only ``groups`` (those present)."""
    present = [g for g in groups if g in group_names(idata)]
    if _is_datatree(idata):
        import xarray as xr

        return xr.DataTree.from_dict({g: idata[g].to_dataset() for g in present})
    az = arviz()

    return az.InferenceData(**{g: getattr(idata, g) for g in present})


def idata_from_posterior(posterior: dict[str, np.ndarray]) -> Any:
    """The stack's container from {name: array (chain, draw)}: what MAP and ADVI results become."""
    az = arviz()

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "more chains than draws" for a single point
        if arviz_major() >= 1:
            return az.from_dict({"posterior": posterior})
        return az.from_dict(posterior=posterior)


def save_idata(idata: Any, path: str | Path) -> None:
    """netCDF4 (HDF5) with one group per ArviZ group: readable by both stacks."""
    if _is_datatree(idata):
        idata.to_netcdf(path, engine="h5netcdf")
    else:
        idata.to_netcdf(str(path), engine="h5netcdf")


def load_idata(path: str | Path) -> Any:
    """Read a posterior file into the installed stack's container, fully in memory."""
    az = arviz()

    if arviz_major() >= 1:
        idata = az.from_netcdf(path, engine="h5netcdf")
        return idata.load()
    idata = az.from_netcdf(str(path), engine="h5netcdf")
    for group in idata.groups():
        getattr(idata, group).load()
    return idata


# --- diagnostics and summaries ---------------------------------------------------------------

def rhat(idata: Any, names: Sequence[str]) -> dict[str, float]:
    """Rank-normalised split r_hat per parameter, unrounded."""
    az = arviz()

    values = az.rhat(posterior_dataset(idata, names))
    return {n: float(np.asarray(values[n])) for n in names}


def ess(idata: Any, names: Sequence[str], method: str) -> dict[str, float]:
    """ArviZ's effective sample size (``method`` "bulk" or "tail") per parameter."""
    az = arviz()

    values = az.ess(posterior_dataset(idata, names), method=method)
    return {n: float(np.asarray(values[n])) for n in names}


def summary_table(idata: Any, names: Sequence[str], level: float) -> pd.DataFrame:
    """ArviZ's posterior summary with the same columns on both stacks: mean, sd,
    hdi_<low>%, hdi_<high>%, mcse_mean, mcse_sd, ess_bulk, ess_tail, r_hat (unrounded)."""
    az = arviz()

    low, high = f"hdi_{100 * (1 - level) / 2:g}%", f"hdi_{100 * (1 + level) / 2:g}%"
    if arviz_major() >= 1:
        table = az.summary(idata, var_names=list(names), ci_prob=level, ci_kind="hdi",
                           round_to="none")
        lower = next(c for c in table.columns if c.endswith("_lb"))
        upper = next(c for c in table.columns if c.endswith("_ub"))
        table = table.rename(columns={lower: low, upper: high})
    else:
        table = az.summary(az.convert_to_inference_data(posterior_dataset(idata, names)),
                           var_names=list(names), hdi_prob=level, round_to="none")
    columns = ["mean", "sd", low, high, "mcse_mean", "mcse_sd", "ess_bulk", "ess_tail", "r_hat"]
    return table.loc[list(names), columns].astype(np.float64)


# --- PyMC ------------------------------------------------------------------------------------

def find_map(names: Sequence[str], start: dict[str, float] | None, seed: int | None,
             progressbar: bool) -> dict[str, float]:
    """``pm.find_MAP`` in the model context from ``start`` (value-variable names), as
    {name: value}. PyMC 6 renamed ``seed`` and ``start`` (``random_seed``, ``initvals``), asks
    whether to jitter the start, and deprecates the dict result for a posterior container."""
    import inspect

    pm = pymc()

    parameters = inspect.signature(pm.find_MAP).parameters
    if "return_inferencedata" in parameters:
        result = pm.find_MAP(progressbar=progressbar, random_seed=seed, initvals=start,
                             jitter=False, return_inferencedata=True)
        dataset = posterior_dataset(result, names)
        return {n: float(np.asarray(dataset[n]).ravel()[0]) for n in names}
    point = pm.find_MAP(start=start, progressbar=progressbar, seed=seed)
    return {n: float(point[n]) for n in names}


def nutpie_low_rank() -> dict[str, Any]:
    """nutpie's option for its low-rank mass matrix: ``adaptation="low_rank"`` from 0.16.9,
    ``low_rank_modified_mass_matrix=True`` before."""
    import inspect

    import nutpie

    if "adaptation" in inspect.signature(nutpie.sample).parameters:
        return {"adaptation": "low_rank"}
    return {"low_rank_modified_mass_matrix": True}


# --- PyTensor ------------------------------------------------------------------------------

def declare_pullback(op_class: type) -> type:
    """Class decorator: an Op written with PyTensor 3's ``pullback`` also serves PyTensor 2,
    which asks for ``L_op`` (same arguments). PyTensor 3 deprecates ``L_op``/``grad``."""
    from pytensor.graph.op import Op

    if not hasattr(Op, "pullback"):
        op_class.L_op = op_class.pullback
    return op_class


def register_numba(op_class: type, funcify) -> None:
    """Register ``funcify(op, node) -> (numba function, cache key)`` as the Op's numba
    implementation. Both PyTensor 2 and 3 have the cache-key dispatcher; with a key, PyTensor
    caches the compiled graph on disk, so a later process skips most of the compilation."""
    from pytensor.link.numba.dispatch.basic import register_funcify_and_cache_key

    register_funcify_and_cache_key(op_class)(lambda op, node=None, **kwargs: funcify(op, node))
