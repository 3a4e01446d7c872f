"""What every clvlab model shares: the estimator contract, fitting, summaries and JSON files.

A model module supplies the parameter names, the columns it reads, a starting point and its
log-likelihood with the exact gradient; this class does the rest once.
"""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path
from typing import Any, ClassVar, Sequence

import numpy as np
import pandas as pd

from .._atomic import atomic_output
from .._fitting import FitResult, compress, fit_mle, summary_frame
from ..errors import ClvlabError, ClvlabWarning
from ..timeunits import normalize_time_unit

__all__ = ["BaseModel", "load_model"]

SCHEMA_VERSION = 1
_REGISTRY: dict[str, type["BaseModel"]] = {}


class BaseModel:
    """Scikit-learn style: the constructor takes settings only; ``fit`` returns ``self``."""

    param_names: ClassVar[tuple[str, ...]] = ()
    data_columns: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _REGISTRY[cls.__name__] = cls

    def __init__(self, penalty: float = 0.0, max_restarts: int = 4):
        self.penalty = penalty
        self.max_restarts = max_restarts

    # --- model-specific hooks -------------------------------------------------------------
    def _data(self, rfm: pd.DataFrame) -> list[np.ndarray]:  # pragma: no cover - abstract
        raise NotImplementedError

    def _start(self, data: list[np.ndarray], weights: np.ndarray) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    @staticmethod
    def _loglik(params: np.ndarray, data: list[np.ndarray]):  # pragma: no cover - abstract
        raise NotImplementedError

    def _prepare(self, data: list[np.ndarray]) -> list[np.ndarray]:
        """What the log-likelihood reads beside the columns, computed once per fit."""
        return data

    # --- fitting ----------------------------------------------------------------------------
    def fit(self, rfm: pd.DataFrame, weights: Sequence[float] | None = None) -> "BaseModel":
        """Fit by maximum likelihood; identical rows are compressed first."""
        if not (isinstance(self.penalty, (int, float)) and self.penalty >= 0):
            raise ClvlabError(f"penalty must be a number >= 0, got {self.penalty!r}")
        data = self._data(rfm)
        if weights is not None:
            weights = np.asarray(weights, dtype=np.float64)
            if weights.shape != (len(rfm),) or not np.all(np.isfinite(weights)) or np.any(weights < 0):
                raise ClvlabError("weights must be one finite number >= 0 per row of the RFM table")
        distinct, counts = compress(data, weights)
        self._check_identifiable(distinct, counts)
        prepared = self._prepare(distinct)
        result = fit_mle(lambda p: self._loglik(p, prepared), counts,
                         self._start(distinct, counts), names=self.param_names,
                         penalty=float(self.penalty), max_restarts=self.max_restarts)
        self._store(result, n_customers=float(counts.sum()), n_distinct=len(counts),
                    time_unit=_time_unit_of(rfm))
        return self

    def _check_identifiable(self, data: list[np.ndarray], counts: np.ndarray) -> None:
        if counts.sum() < 2:
            raise ClvlabError(f"{type(self).__name__} needs more than one customer to fit")

    def _store(self, result: FitResult, *, n_customers: float, n_distinct: int,
               time_unit: str | None) -> None:
        names = list(self.param_names)
        self.params_ = pd.Series(result.params, index=names, name="estimate")
        self.covariance_ = pd.DataFrame(result.covariance, index=names, columns=names)
        self.standard_errors_ = pd.Series(np.sqrt(np.diag(result.covariance)), index=names,
                                          name="std_error")
        self.log_likelihood_ = result.log_likelihood
        self.n_customers_ = n_customers
        self.n_distinct_rows_ = n_distinct
        self.time_unit_ = time_unit
        k = len(names)
        self.aic_ = 2 * k - 2 * result.log_likelihood
        self.bic_ = k * math.log(n_customers) - 2 * result.log_likelihood
        self.convergence_ = {"converged": result.converged, "message": result.message,
                             "iterations": result.iterations, "restarts": result.restarts,
                             "gradient_norm": result.gradient_norm, "penalty": result.penalty}
        if not result.converged:
            warnings.warn(
                f"{type(self).__name__} did not converge ({result.message}; gradient norm "
                f"{result.gradient_norm:.3g}, parameters {dict(self.params_.round(6))}). Try a "
                "small penalty (e.g. penalty=0.01), more restarts (max_restarts=10), or check "
                "that the data are in the time unit you expect.", ClvlabWarning, stacklevel=3)
        elif not np.all(np.isfinite(result.covariance)):
            warnings.warn(f"{type(self).__name__}: the Hessian at the optimum is not negative "
                          "definite, so standard errors are NaN; the data may not identify every "
                          "parameter (a small penalty helps).", ClvlabWarning, stacklevel=3)

    @classmethod
    def from_params(cls, time_unit: str | None = None, **params: float) -> "BaseModel":
        """A model with known parameters, to score without fitting."""
        missing = [name for name in cls.param_names if name not in params]
        extra = [name for name in params if name not in cls.param_names]
        if missing or extra:
            raise ClvlabError(f"{cls.__name__}.from_params needs exactly {list(cls.param_names)}; "
                              f"missing {missing}, unexpected {extra}")
        values = np.array([float(params[name]) for name in cls.param_names])
        if not np.all(np.isfinite(values)) or np.any(values <= 0):
            raise ClvlabError(f"{cls.__name__} parameters must be finite and > 0, got {params}")
        model = cls()
        model.params_ = pd.Series(values, index=list(cls.param_names), name="estimate")
        model.time_unit_ = None if time_unit is None else normalize_time_unit(time_unit)
        return model

    # --- results ----------------------------------------------------------------------------
    def _check_fitted(self) -> np.ndarray:
        if not hasattr(self, "params_"):
            raise ClvlabError(f"this {type(self).__name__} is not fitted; call fit() or "
                              "from_params() first")
        return self.params_.to_numpy()

    def summary(self, level: float = 0.95) -> pd.DataFrame:
        """Estimates, standard errors and intervals (log-scale Wald, so they stay positive)."""
        params = self._check_fitted()
        covariance = getattr(self, "covariance_", None)
        cov = np.full((len(params),) * 2, np.nan) if covariance is None else covariance.to_numpy()
        return summary_frame(self.param_names, params, cov, level)

    def __repr__(self) -> str:
        name = type(self).__name__
        if not hasattr(self, "params_"):
            return f"{name}(penalty={self.penalty!r})"
        params = ", ".join(f"{k}={v:.4g}" for k, v in self.params_.items())
        fitted = ""
        if hasattr(self, "log_likelihood_"):
            fitted = f"; log-likelihood {self.log_likelihood_:.2f} on {self.n_customers_:,.0f} customers"
        unit = f"; time unit {self.time_unit_}" if getattr(self, "time_unit_", None) else ""
        return f"<{name}: {params}{fitted}{unit}>"

    def _check_time_unit(self, rfm: pd.DataFrame) -> None:
        """A table in another time unit than the model's is an error, never a silent rescale."""
        data_unit = _time_unit_of(rfm)
        model_unit = getattr(self, "time_unit_", None)
        if data_unit is not None and model_unit is not None and data_unit != model_unit:
            raise ClvlabError(f"the RFM table is in time unit {data_unit!r} but the model was fitted "
                              f"in {model_unit!r}; rebuild the table with time_unit={model_unit!r}")

    # --- files ------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        from .. import __version__

        self._check_fitted()
        covariance = getattr(self, "covariance_", None)
        payload = {
            "schema_version": SCHEMA_VERSION,
            "model": type(self).__name__,
            "clvlab_version": __version__,
            "time_unit": getattr(self, "time_unit_", None),
            "settings": {"penalty": self.penalty, "max_restarts": self.max_restarts},
            "params": {k: float(v) for k, v in self.params_.items()},
            "covariance": None if covariance is None else [
                [None if not np.isfinite(v) else float(v) for v in row] for row in covariance.to_numpy()],
        }
        if hasattr(self, "log_likelihood_"):
            payload["fit"] = {"log_likelihood": self.log_likelihood_, "n_customers": self.n_customers_,
                              "n_distinct_rows": self.n_distinct_rows_, "aic": self.aic_,
                              "bic": self.bic_, "convergence": self.convergence_}
        return payload

    def save(self, path: str | Path, overwrite: bool = True) -> None:
        """Write the model as JSON (parameters, covariance, time unit, versions), atomically."""
        text = json.dumps(self.to_dict(), indent=2, allow_nan=False)
        with atomic_output(path, overwrite=overwrite) as temporary:
            Path(temporary).write_text(text)

    @classmethod
    def load(cls, path: str | Path) -> "BaseModel":
        model = load_model(path)
        if not isinstance(model, cls):
            raise ClvlabError(f"{path} holds a {type(model).__name__}, not a {cls.__name__}")
        return model


def load_model(path: str | Path) -> BaseModel:
    """Read a model saved with ``save``; JSON only, so loading never runs code from the file."""
    try:
        payload = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise ClvlabError(f"model file {path} does not exist") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ClvlabError(f"model file {path} is not valid JSON (corrupt or truncated?): {exc}") from None
    if not isinstance(payload, dict) or "schema_version" not in payload:
        raise ClvlabError(f"model file {path} is not a clvlab model (no schema_version)")
    if payload["schema_version"] != SCHEMA_VERSION:
        raise ClvlabError(f"model file {path} has schema version {payload['schema_version']!r}; "
                          f"this clvlab reads version {SCHEMA_VERSION}")
    cls = _REGISTRY.get(payload.get("model"))
    if cls is None:
        raise ClvlabError(f"model file {path} holds an unknown model {payload.get('model')!r}")
    try:
        model = cls.from_params(time_unit=payload.get("time_unit"), **payload["params"])
        model.penalty = payload.get("settings", {}).get("penalty", 0.0)
        if payload.get("covariance") is not None:
            cov = np.array([[np.nan if v is None else v for v in row] for row in payload["covariance"]],
                           dtype=np.float64)
            names = list(cls.param_names)
            model.covariance_ = pd.DataFrame(cov, index=names, columns=names)
            model.standard_errors_ = pd.Series(np.sqrt(np.diag(cov)), index=names, name="std_error")
        fit = payload.get("fit")
        if fit:
            model.log_likelihood_ = fit["log_likelihood"]
            model.n_customers_ = fit["n_customers"]
            model.n_distinct_rows_ = fit["n_distinct_rows"]
            model.aic_, model.bic_ = fit["aic"], fit["bic"]
            model.convergence_ = fit["convergence"]
    except (KeyError, TypeError, ValueError) as exc:
        raise ClvlabError(f"model file {path} is malformed: {exc!r}") from None
    return model


def _time_unit_of(rfm: Any) -> str | None:
    attrs = getattr(rfm, "attrs", {}) or {}
    unit = attrs.get("clvlab", {}).get("time_unit") if isinstance(attrs, dict) else None
    return unit
