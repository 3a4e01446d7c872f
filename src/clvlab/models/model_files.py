"""A model's file: the JSON payload written and read back, the posterior beside it, and the
time unit a table records. Loading never runs code from the file: JSON and netCDF only.

What a payload holds is written here once (``payload``, ``restore``); ``BaseModel`` calls
these, and finds the class a file names (``clvlab.models.base.model_from_dict``).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from clvlab.core.atomic import atomic_output
from clvlab.core.errors import ClvlabError
from clvlab.core.timeunits import normalize_time_unit
from clvlab.inference import compat as _compat
from clvlab.inference.mle import FitResult
from clvlab.models import covariates
from clvlab.models.table_units import recorded_unit

__all__ = ["SCHEMA_VERSION", "POPULATION_GROUPS", "FIT_BLOCK", "PROFILE_COLUMNS",
           "PROFILE_MIN_CUSTOMERS", "payload", "write", "read", "restore", "fit_block",
           "given_time_unit", "training_profile", "profile_bins", "weighted_median"]

SCHEMA_VERSION = 1
POPULATION_GROUPS = ("posterior", "sample_stats")  # what a saved posterior keeps

#: What a fit learns beside the estimates (``params_``, ``covariance_``, ``standard_errors_``)
#: and ``time_unit_``, which the model file keeps at its top level: each key is stored as the
#: attribute ``key + "_"`` and written under "fit" in the file, in this order. JSON has no NaN,
#: so a non-finite float is written as null; the information criteria read null back as NaN
#: (a Bayesian fit has none), the others read back as written.
FIT_BLOCK = ("log_likelihood", "n_customers", "n_distinct_rows", "aic", "bic", "convergence")
_NAN_WHEN_NULL = ("aic", "bic")

#: The training profile (``training_profile_``, optional "training_profile" block of a file):
#: for each of these columns of the fit's RFM table, the distinct decile edges and the share
#: of customers in each bin, which input-drift checks compare later tables with
#: (``clvlab.ops.monitoring``). Aggregates only: no customer row. Bins are right-closed,
#: (-inf, e1], (e1, e2], ..., (ek, inf) (:func:`profile_bins`), so a column with many ties
#: (frequency 0) keeps its point mass in one bin. A fit on fewer than
#: ``PROFILE_MIN_CUSTOMERS`` customers gets none (its deciles would be single customers' values).
PROFILE_COLUMNS = ("frequency", "recency", "T", "monetary_value")
PROFILE_MIN_CUSTOMERS = 100


def payload(model) -> dict[str, Any]:
    """The JSON-ready dict of a fitted (or ``from_params``) model."""
    from clvlab.core.version import __version__

    model._check_fitted()
    covariance = getattr(model, "covariance_", None)
    out = {
        "schema_version": SCHEMA_VERSION,
        "model": type(model).__name__,
        "clvlab_version": __version__,
        "time_unit": getattr(model, "time_unit_", None),
        "settings": {"penalty": model.penalty, "max_restarts": model.max_restarts,
                     "method": model.method, **_covariate_settings(model)},
        "params": {k: float(v) for k, v in model.params_.items()},
        "covariance": None if covariance is None else [
            [None if not np.isfinite(v) else float(v) for v in row] for row in covariance.to_numpy()],
    }
    if hasattr(model, "covariates_"):
        out["covariates"] = model.covariates_.to_dict()
    if getattr(model, "median_T_", None) is not None:
        # the fit's median age: what a table's durations are compared with (models.table_units)
        out["durations"] = {"median_T": float(model.median_T_)}
    if hasattr(model, "log_likelihood_"):
        out["fit"] = _jsonable({key: getattr(model, key + "_") for key in FIT_BLOCK})
    if getattr(model, "training_profile_", None) is not None:
        out["training_profile"] = model.training_profile_
    return out


def _covariate_settings(model) -> dict[str, Any]:
    """The settings a file needs to score with covariates (none without them, so files of
    models without covariates are as before)."""
    if not hasattr(model, "covariates_"):
        return {}
    out = {"covariate_penalty": model.covariate_penalty}
    if hasattr(model, "dropout_form"):
        out["dropout_form"] = model.dropout_form
    return out


def write(model, path: str | Path, overwrite: bool = True) -> None:
    """``BaseModel.save``: the JSON and, after a Bayesian fit, the posterior's netCDF."""
    content = payload(model)
    if model.requires_time_unit and content["time_unit"] is None:
        # a file without its unit is scored in whatever unit the next table happens to be in
        raise ClvlabError(
            f"this {type(model).__name__} has no time unit, so {path} would not say what its "
            "durations and horizons mean; fit it on a table that records its unit "
            "(clvlab.rfm_summary, clvlab.read_rfm) or pass fit(..., time_unit='W') "
            "(command line: clvlab fit --time-unit W)")
    idata = getattr(model, "idata_", None)
    if idata is not None:
        posterior_path = _posterior_path(path)
        saved = _compat.subset_groups(idata, POPULATION_GROUPS)
        with atomic_output(posterior_path, overwrite=overwrite) as temporary:
            _compat.save_idata(saved, temporary)
        content["posterior_file"] = posterior_path.name
    text = json.dumps(content, indent=2, allow_nan=False)
    with atomic_output(path, overwrite=overwrite) as temporary:
        Path(temporary).write_text(text)


def read(path: str | Path) -> dict[str, Any]:
    """A model file's payload, or a ClvlabError saying what is wrong with the file."""
    try:
        content = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise ClvlabError(f"model file {path} does not exist") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ClvlabError(f"model file {path} is not valid JSON (corrupt or truncated?): {exc}") from None
    if not isinstance(content, dict) or "schema_version" not in content:
        raise ClvlabError(f"model file {path} is not a clvlab model (no schema_version)")
    return content


def check_header(content: dict[str, Any], path: str) -> None:
    if content.get("kind") == "ChurnAdjuster":  # a clvlab file, but not a model of this registry
        raise ClvlabError(f"{path} is a churn adjuster, not a transaction or spend model; load it "
                          "with clvlab.ChurnAdjuster.load (or pass it to `clvlab register "
                          "--churn-adjuster`)")
    if content.get("schema_version") != SCHEMA_VERSION:
        raise ClvlabError(f"model file {path} has schema version {content.get('schema_version')!r}; "
                          f"this clvlab reads version {SCHEMA_VERSION}")


def restore(cls, content: dict[str, Any], path: str):
    """The model of class ``cls`` that ``content`` (a payload) describes."""
    try:
        params = content["params"]
        settings = content.get("settings", {})
        model = cls.from_params(time_unit=content.get("time_unit"),
                                **{name: params[name] for name in cls.param_names})
        if "dropout_form" in settings:
            model.dropout_form = settings["dropout_form"]
        if content.get("covariates"):
            design = covariates.design_from_dict(model, content["covariates"])
            model._set_design(design, [params[name] for name in design.coefficient_names])
            model.covariate_penalty = settings.get("covariate_penalty", 0.0)
        elif set(params) != set(cls.param_names):
            raise KeyError(f"parameters {sorted(set(params) - set(cls.param_names))} without covariates")
        model.penalty = settings.get("penalty", 0.0)
        if content.get("covariance") is not None:
            cov = np.array([[np.nan if v is None else v for v in row] for row in content["covariance"]],
                           dtype=np.float64)
            model._set_covariance(cov)
        model.method = settings.get("method", "mle")
        if content.get("posterior_file"):
            model.idata_ = _load_posterior(Path(path).parent / content["posterior_file"])
        if content.get("durations"):
            model.median_T_ = float(content["durations"]["median_T"])
        if content.get("training_profile"):  # optional: files written before it load without
            model.training_profile_ = _checked_profile(content["training_profile"])
        fit = content.get("fit")
        if fit:
            for key in FIT_BLOCK:
                value = fit[key]
                setattr(model, key + "_",
                        float("nan") if value is None and key in _NAN_WHEN_NULL else value)
    except (KeyError, TypeError, ValueError) as exc:
        raise ClvlabError(f"model file {path} is malformed: {exc!r}") from None
    return model


def fit_block(result: FitResult, n_customers: float, n_distinct: int) -> dict[str, Any]:
    """A maximum-likelihood fit's FIT_BLOCK values."""
    k = len(result.params)
    return {"log_likelihood": result.log_likelihood, "n_customers": n_customers,
            "n_distinct_rows": n_distinct, "aic": 2 * k - 2 * result.log_likelihood,
            "bic": k * math.log(n_customers) - 2 * result.log_likelihood,
            "convergence": result.convergence()}


def training_profile(rfm: Any, weights: Any = None, *,
                     arrays: dict[str, np.ndarray] | None = None) -> dict[str, Any] | None:
    """The aggregate profile of a fit's RFM table (see ``PROFILE_COLUMNS``), or None when the
    table has fewer than ``PROFILE_MIN_CUSTOMERS`` customers.

    Parameters
    ----------
    rfm : pandas.DataFrame
        The table the model is fitted on; the columns of ``PROFILE_COLUMNS`` it has are profiled.
    weights : array-like, optional
        Customers per row (a compressed table), as ``fit`` takes them.
    arrays : dict, optional
        ``{column: float64 values, one per row of rfm}`` that the caller has already read from
        the table (a fit's ``_data``): those columns are not read again.

    Returns
    -------
    dict or None
        ``{"customers": n, "bins": "deciles, right-closed", "columns": {column: {"edges":
        [...], "shares": [...]}}}``: up to 9 increasing edges (the deciles) and one
        share more than edges, summing to 1 (6 decimals); non-finite values are left out.
    """
    columns = [c for c in PROFILE_COLUMNS if c in getattr(rfm, "columns", ())]
    unweighted = weights is None
    weights = np.ones(len(rfm)) if weights is None else np.asarray(weights, np.float64)
    if not columns or float(weights.sum()) < PROFILE_MIN_CUSTOMERS:
        return None
    out: dict[str, Any] = {}
    for column in columns:
        given = (arrays or {}).get(column)
        values = np.asarray(rfm[column] if given is None else given, dtype=np.float64)
        profile = (_unweighted_deciles(values) if unweighted
                   else _weighted_deciles(values, weights))
        if profile is not None:
            edges, shares = profile
            out[column] = {"edges": [float(e) for e in edges],
                           "shares": [round(float(s), 6) for s in shares / shares.sum()]}
    if not out:
        return None
    return {"customers": float(weights.sum()), "bins": "deciles, right-closed", "columns": out}


def _weighted_deciles(values: np.ndarray, weights: np.ndarray):
    """(edges, customers per bin) of one column with row weights, or None under
    ``PROFILE_MIN_CUSTOMERS``."""
    keep = np.isfinite(values) & (weights > 0)
    values, w = values[keep], weights[keep]
    if w.sum() < PROFILE_MIN_CUSTOMERS:
        return None
    order = np.argsort(values, kind="stable")
    cumulative = np.cumsum(w[order])
    at = np.searchsorted(cumulative, np.arange(1, 10) / 10 * cumulative[-1], side="left")
    edges = np.unique(values[order][np.minimum(at, len(values) - 1)])
    return edges, np.bincount(profile_bins(values, edges), weights=w, minlength=len(edges) + 1)


def _unweighted_deciles(values: np.ndarray):
    """``_weighted_deciles`` with every weight 1 (a fit without weights), the same numbers
    with less work: the cumulative weights of the sorted values are 1, 2, ..., n exactly, and
    each bin's count is read off the sorted values (a stable sort gives the sequence that the
    stable argsort gives, signed zeros included)."""
    values = values[np.isfinite(values)]
    n = len(values)
    if n < PROFILE_MIN_CUSTOMERS:
        return None
    ordered = np.sort(values, kind="stable")
    cumulative = np.arange(1, n + 1, dtype=np.float64)  # np.cumsum(np.ones(n)), exactly
    at = np.searchsorted(cumulative, np.arange(1, 10) / 10 * cumulative[-1], side="left")
    edges = np.unique(ordered[np.minimum(at, n - 1)])
    # bin i holds edges[i-1] < v <= edges[i] (``profile_bins``): counts from the sorted values
    below = np.searchsorted(ordered, edges, side="right")
    return edges, np.diff(np.concatenate(([0], below, [n]))).astype(np.float64)


def profile_bins(values: Any, edges: Any) -> np.ndarray:
    """Each value's bin among ``edges`` (right-closed: bin i holds edges[i-1] < v <= edges[i],
    bin 0 everything up to edges[0], the last everything above the last edge)."""
    return np.searchsorted(np.asarray(edges, np.float64), np.asarray(values, np.float64),
                           side="left")


def _checked_profile(profile: Any) -> dict[str, Any]:
    """A file's training profile, or a ValueError saying what is malformed about it."""
    if not isinstance(profile, dict) or not isinstance(profile.get("columns"), dict):
        raise TypeError("training_profile must be an object with a 'columns' object")
    for column, entry in profile["columns"].items():
        edges, shares = np.asarray(entry["edges"], float), np.asarray(entry["shares"], float)
        if (len(shares) != len(edges) + 1 or np.any(np.diff(edges) <= 0) or np.any(shares < 0)
                or not np.isclose(shares.sum(), 1.0, atol=1e-4)):
            raise ValueError(f"training_profile column {column!r}: edges must increase and "
                             "shares (one more than edges, >= 0) sum to 1")
    return {"customers": float(profile["customers"]), "bins": profile.get("bins", ""),
            "columns": {c: {"edges": list(map(float, e["edges"])),
                            "shares": list(map(float, e["shares"]))}
                        for c, e in profile["columns"].items()}}


def _posterior_path(path: str | Path) -> Path:
    path = Path(path)
    return path.with_name(path.stem + ".posterior.nc")


def _load_posterior(path: Path):
    if not path.exists():
        raise ClvlabError(f"the model's posterior file {path} is missing (it is saved beside the JSON)")
    try:
        idata = _compat.load_idata(path)
    except (OSError, ValueError, KeyError) as exc:
        raise ClvlabError(f"posterior file {path} is not readable netCDF: {exc}") from None
    return idata


def _jsonable(value: Any) -> Any:
    """Non-finite floats become None (JSON has no NaN); containers are walked."""
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def given_time_unit(rfm: Any, time_unit: str | None) -> str | None:
    """The table's recorded unit, or ``time_unit``; both given and different is an error."""
    recorded = recorded_unit(rfm)
    if time_unit is None:
        return recorded
    given = normalize_time_unit(time_unit)
    if recorded is not None and recorded != given:
        raise ClvlabError(f"time_unit={time_unit!r} but the RFM table records its durations in "
                          f"{recorded!r}; rebuild the table in {given!r} or drop time_unit")
    return given


def weighted_median(values: Any, weights: np.ndarray | None) -> float | None:
    """The median of ``values`` with row weights (None: equal), or None when it is unknown."""
    try:
        values = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        return None
    if weights is None:  # every weight 1: the cumulative weights are 1, 2, ..., n exactly
        values = values[np.isfinite(values)]
        if not len(values):
            return None
        # searchsorted(1, 2, ..., n; n / 2) is ceil(n / 2) - 1: the sorted values' entry there,
        # which a partial sort (np.partition) puts in place without sorting the rest
        at = -(-len(values) // 2) - 1
        return float(np.partition(values, at)[at])
    weights = np.asarray(weights, np.float64)
    keep = np.isfinite(values) & (weights > 0)
    if not keep.any():
        return None
    order = np.argsort(values[keep])
    cumulative = np.cumsum(weights[keep][order])
    return float(values[keep][order][np.searchsorted(cumulative, cumulative[-1] / 2)])
