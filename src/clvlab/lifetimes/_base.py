"""What the lifetimes-style fitters share: input checks, the fit on clvlab's models, the summary
and the model files (clvlab's JSON, never pickle).

lifetimes 0.11 fits on times scaled so that the oldest customer's age is 1 (``_scale``) and
penalises ``penalizer_coef * sum(params**2)`` of the *scaled* parameters, added to the mean
negative log-likelihood (Pareto/NBD: the total divided by the mean weight). clvlab maximises
``sum(w * loglik) - penalty * sum(params**2)``, so the fitters here fit clvlab's model on the same
scaled table with ``penalty = penalizer_coef * sum(w)`` (Pareto/NBD: ``* mean(w)``): the very
objective lifetimes minimises, with clvlab's exact gradients and tighter optimiser.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

__all__ = ["BaseFitter", "ConvergenceError", "check_inputs", "inputs", "result", "Z_95"]

Z_95 = 1.96  # lifetimes' "inv_cdf_at_5_confidence": intervals are params +- 1.96 se


class ConvergenceError(ValueError):
    """The optimiser did not converge (lifetimes.utils.ConvergenceError)."""


def check_inputs(frequency, recency=None, T=None, monetary_value=None) -> None:
    """lifetimes' input checks, with its messages (ValueError). Unlike lifetimes, a frequency
    that is not a whole number is refused before anything truncates it."""
    frequency = np.asarray(frequency, dtype=np.float64)
    if recency is not None:
        recency = np.asarray(recency, dtype=np.float64)
        if T is not None and np.any(recency > np.asarray(T, dtype=np.float64)):
            raise ValueError("Some values in recency vector are larger than T vector.")
        if np.any(recency[frequency == 0] != 0):
            raise ValueError("There exist non-zero recency values when frequency is zero.")
        if np.any(recency < 0):
            raise ValueError("There exist negative recency (ex: last order set before first order)")
        if any(np.asarray(x).shape[0] == 0 for x in [recency, frequency, T]):
            raise ValueError("There exists a zero length vector in one of frequency, recency or T.")
    if np.any(frequency != np.floor(frequency)):
        raise ValueError("There exist non-integer values in the frequency vector.")
    if monetary_value is not None and np.any(np.asarray(monetary_value, dtype=np.float64) <= 0):
        raise ValueError("There exist non-positive (<= 0) values in the monetary_value vector.")


def inputs(*values) -> tuple[tuple[int, ...], list[np.ndarray]]:
    """The broadcast shape of the arguments and each as a flat float array of that size."""
    arrays = [np.asarray(v, dtype=np.float64) for v in values]
    shape = np.broadcast_shapes(*(a.shape for a in arrays))
    return shape, [np.broadcast_to(a, shape).ravel() for a in arrays]


def result(values, shape, given=(), *, series: bool = True, at_least_1d: bool = False):
    """Values in the form lifetimes returns them: a Series on the index of a Series argument
    (pandas arithmetic), else an array of the broadcast shape, or a scalar."""
    values = np.asarray(values, dtype=np.float64).reshape(shape)
    if series:
        for value in given:
            if isinstance(value, pd.Series) and value.shape == shape:
                return pd.Series(values, index=value.index)
    if at_least_1d:
        return np.atleast_1d(values)
    return values[()] if values.ndim == 0 else values


class BaseFitter:
    """lifetimes' BaseFitter: ``params_``, ``summary``, ``save_model``/``load_model``."""

    #: the clvlab model class (``clvlab.models``) this fitter runs on
    _clvlab_name: ClassVar[str] = ""
    #: lifetimes' parameter names (the same as clvlab's)
    _param_names: ClassVar[tuple[str, ...]] = ()
    #: the parameters in time units, divided by lifetimes' scale after the fit
    _time_params: ClassVar[tuple[str, ...]] = ()

    def __init__(self, penalizer_coef=0.0):
        """Initialization, set penalizer_coef (the L2 penalty of lifetimes' objective, mapped
        exactly onto clvlab's ``penalty``)."""
        self.penalizer_coef = penalizer_coef

    def __repr__(self):
        """Representation of fitter."""
        classname = type(self).__name__
        data = getattr(self, "data", None)
        subj_str = "" if data is None else " fitted with {:d} subjects,".format(data.shape[0])
        if not hasattr(self, "params_"):
            return "<clvlab.lifetimes.{}>".format(classname)
        param_str = ", ".join("{}: {:.2f}".format(par, val) for par, val in sorted(self.params_.items()))
        return "<clvlab.lifetimes.{}:{} {}>".format(classname, subj_str, param_str)

    def _unload_params(self, *args):
        if not hasattr(self, "params_"):
            raise ValueError("Model has not been fit yet. Please call the .fit method first.")
        return [self.params_[x] for x in args]

    def _clvlab_class(self):
        from clvlab import models

        return getattr(models, self._clvlab_name)

    def _model(self):
        """The clvlab model at ``params_`` (which a user may set, as in lifetimes)."""
        values = self._unload_params(*self._param_names)
        return self._clvlab_class().from_params(**dict(zip(self._param_names, map(float, values))))

    # --- fitting ----------------------------------------------------------------------------
    def _fit_clvlab(self, table: pd.DataFrame, weights: np.ndarray, penalty: float,
                    start: np.ndarray | None, verbose: bool, kwargs: dict[str, Any]):
        """Fit clvlab's model on ``table`` (lifetimes' scaled units) and keep what lifetimes
        keeps; ``start``: starting values on the table's scale (``initial_params``)."""
        self._time_unit = kwargs.pop("time_unit", None)  # an addition: the unit a saved file records
        start_params = None if start is None else dict(zip(self._param_names, map(float, start)))
        model = self._clvlab_class()(penalty=float(penalty), start_params=start_params)
        model.fit(table, weights=weights)
        convergence = getattr(model, "convergence_", {}) or {}
        if verbose:
            print(convergence)
        if not convergence.get("converged", True):
            raise ConvergenceError(
                "The model did not converge ({}). Try adding a larger penalizer to see if that "
                "helps convergence.".format(convergence.get("message")))
        scaled = model.params_[list(self._param_names)]
        factors = np.array([self._scale if name in self._time_params else 1.0
                            for name in self._param_names])
        self.params_ = pd.Series(scaled.to_numpy() / factors, index=list(self._param_names))
        covariance = model.covariance_.loc[list(self._param_names), list(self._param_names)].to_numpy()
        self.variance_matrix_ = pd.DataFrame(covariance / np.outer(factors, factors),
                                             index=self.params_.index, columns=self.params_.index)
        self.standard_errors_ = pd.Series(np.sqrt(np.diag(self.variance_matrix_.to_numpy())),
                                          index=self.params_.index)
        self.confidence_intervals_ = pd.DataFrame(
            {"lower 95% bound": self.params_ - Z_95 * self.standard_errors_,
             "upper 95% bound": self.params_ + Z_95 * self.standard_errors_},
            index=self.params_.index)
        self._penalty_term = float(self.penalizer_coef) * float(np.sum(scaled.to_numpy() ** 2))
        self._fit_block = {key: getattr(model, key + "_") for key in
                           ("log_likelihood", "n_customers", "n_distinct_rows", "aic", "bic",
                            "convergence")}
        return model

    # --- results ----------------------------------------------------------------------------
    @property
    def summary(self):
        """
        Summary statistics describing the fit.

        Returns
        -------
        df : pd.DataFrame
            Contains columns coef, se(coef), lower 95% bound, upper 95% bound
        """
        df = pd.DataFrame(index=self.params_.index)
        df["coef"] = self.params_
        df["se(coef)"] = self.standard_errors_
        df["lower 95% bound"] = self.confidence_intervals_["lower 95% bound"]
        df["upper 95% bound"] = self.confidence_intervals_["upper 95% bound"]
        return df

    # --- files ------------------------------------------------------------------------------
    def save_model(self, path, save_data=True, save_generate_data_method=True, values_to_save=None):
        """
        Save the model as clvlab's JSON model file (never pickle or dill: loading it runs no code).

        The file is the one ``clvlab`` models write (``clvlab.load_model(path)`` reads it as the
        native model), with a ``lifetimes`` block for this fitter (penalizer, scale, objective).
        A model file holds no customer rows: ``save_data``, ``save_generate_data_method`` and
        ``values_to_save`` are accepted for compatibility and change nothing; after
        ``load_model`` the fitter's ``data`` is None. The time unit is recorded when the fit was
        given one (``fit(..., time_unit="W")``), else it is null.

        Parameters
        ----------
        path: str
            Path where to save model (JSON).
        """
        from clvlab.core.atomic import atomic_output

        model = self._model()
        model.time_unit_ = getattr(self, "_time_unit", None)
        model.penalty = float(getattr(self, "_penalty", 0.0))
        if hasattr(self, "variance_matrix_"):
            model._set_covariance(self.variance_matrix_.to_numpy())
        content = model.to_dict()
        block = getattr(self, "_fit_block", None)
        if block is not None:
            ll, k = self._native_log_likelihood(), len(self._param_names)
            block = {**block, "log_likelihood": ll, "aic": 2 * k - 2 * ll,
                     "bic": k * np.log(block["n_customers"]) - 2 * ll}
            content["fit"] = _jsonable(block)
        data = getattr(self, "data", None)
        content["lifetimes"] = {
            "fitter": type(self).__name__, "lifetimes_version": "0.11.3",
            "penalizer_coef": float(self.penalizer_coef),
            "scale": float(getattr(self, "_scale", 1.0)),
            "negative_log_likelihood": _float_or_none(getattr(self, "_negative_log_likelihood_", None)),
            "data_max": None if data is None else {c: float(data[c].max()) for c in data.columns
                                                   if c != "weights"}}
        text = json.dumps(content, indent=2, allow_nan=False)
        with atomic_output(path, overwrite=True) as temporary:
            Path(temporary).write_text(text)

    def load_model(self, path):
        """
        Load a model saved with ``save_model`` (or any clvlab model file of the same model):
        clvlab's JSON, never pickle or dill, so loading runs no code from the file.

        Parameters
        ----------
        path: str
            From what path load model.
        """
        from clvlab.core.errors import ClvlabError
        from clvlab.models import load_model

        model = load_model(path)
        if type(model).__name__ != self._clvlab_name or hasattr(model, "covariates_"):
            raise ClvlabError("{} holds a {}{}, not what a {} fits ({})".format(
                path, type(model).__name__, " with covariates" if hasattr(model, "covariates_") else "",
                type(self).__name__, self._clvlab_name))
        block = json.loads(Path(path).read_text()).get("lifetimes") or {}
        self.params_ = pd.Series(model.params_[list(self._param_names)].to_numpy(),
                                 index=list(self._param_names))
        self.penalizer_coef = block.get("penalizer_coef", 0.0)
        self._scale = block.get("scale", 1.0)
        self._time_unit = getattr(model, "time_unit_", None)
        if block.get("negative_log_likelihood") is not None:
            self._negative_log_likelihood_ = block["negative_log_likelihood"]
        self._saved_max = block.get("data_max")
        self.data = None
        if getattr(model, "covariance_", None) is not None:
            cov = model.covariance_.loc[list(self._param_names), list(self._param_names)]
            self.variance_matrix_ = cov.copy()
            self.standard_errors_ = pd.Series(np.sqrt(np.diag(cov.to_numpy())), index=self.params_.index)
            self.confidence_intervals_ = pd.DataFrame(
                {"lower 95% bound": self.params_ - Z_95 * self.standard_errors_,
                 "upper 95% bound": self.params_ + Z_95 * self.standard_errors_},
                index=self.params_.index)
        return self

    def _native_log_likelihood(self) -> float:
        """The log-likelihood of the fit's data in their own (unscaled) time units: a density
        of x purchase times, so on times scaled by k it is lower by x log k a customer."""
        value = float(self._fit_block["log_likelihood"])
        if self._time_params and getattr(self, "data", None) is not None:
            data = self.data
            value += float(np.log(self._scale) * np.sum(data["weights"] * data["frequency"]))
        return value

    def _data_max(self, column):
        """The largest value of a column of the fit's data (also known after ``load_model``)."""
        data = getattr(self, "data", None)
        if data is not None:
            return data[column].max()
        saved = self.__dict__.get("_saved_max") or {}
        if column not in saved:
            raise ValueError("this fitter has no data (loaded from a file): pass max_frequency "
                             "and max_recency")
        return saved[column]


def _float_or_none(value):
    return None if value is None or not np.isfinite(value) else float(value)


def _jsonable(value):
    """Plain JSON values: numpy scalars as Python ones, non-finite floats as null."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value
