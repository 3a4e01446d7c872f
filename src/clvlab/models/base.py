"""What every clvlab model shares: the estimator contract, fitting, summaries and JSON files.

A model module supplies the parameter names, the columns it reads, a starting point and its
log-likelihood with the exact gradient; this class does the rest once.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Callable, ClassVar, Sequence

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

from clvlab.inference import compat as _compat
from clvlab.inference import bayes
from clvlab.inference.grouping import compress, group_rows
from clvlab.inference.mle import FitResult, fit_mle, observed_covariance, summary_frame
from clvlab.core.errors import ClvlabError, ClvlabWarning, warn
from clvlab.core.timeunits import normalize_time_unit
from clvlab.models import covariates, customer_params, model_files
from clvlab.models.model_files import FIT_BLOCK, SCHEMA_VERSION  # noqa: F401 (read from here)
from clvlab.models.settings import check_settings, settings_repr
from clvlab.data.tables import accepts_tables, converts, to_pandas
from clvlab.models.table_units import checks_time_unit, recorded_unit

__all__ = ["BaseModel", "load_model"]

#: the settings every model takes (its constructor's parameters) and what every fit learns,
#: documented once: a model's class docstring holds the lines ``<model settings>`` and
#: ``<fitted attributes>`` where they go (``BaseModel.__init_subclass__``)
SETTINGS_DOC = """\
penalty : float, default 0.0
    L2 penalty on the parameters (0 = plain maximum likelihood).
max_restarts : int, default 4
    Restarts of the optimiser from perturbed starting points when it fails.
method : {"mle", "nuts", "advi", "map"}, default "mle"
    Maximum likelihood, or Bayesian through PyMC: "nuts" (sampling), "advi" (variational)
    or "map" (posterior mode). The Bayesian methods use the same likelihood; see
    ``clvlab.bayes`` for the default priors.
draws, tune, chains : int, default 1000, 1000, 4
    Sampler settings (Bayesian methods).
priors : dict, optional
    {parameter: callable(name) -> PyMC random variable} to replace default priors.
random_seed : int, optional
    Seed of the sampler and of the optimiser's restarts.
progressbar : bool, default True
    Show the sampler's progress bar.
nuts_sampler : {"pymc", "nutpie"}, optional
    None takes ``bayes.default_nuts_sampler()`` ("pymc", faster on CDNOW; nutpie was
    faster on 100,000 customers: see docs/benchmarks.md).
target_accept : float, optional
    NUTS's target acceptance rate; None takes the model's default
    (``default_target_accept``: higher where the posterior has long tails).
purchase_covariates, dropout_covariates, spend_covariates : list of str, optional
    Columns of the fit's table (static customer attributes) that move the model's
    purchase, dropout or spend process; the model's ``covariate_links`` say which
    parameter each moves. Every prediction then reads them from its table too. See
    ``clvlab.models.covariates``.
shared_covariates : list of str, optional
    Columns among both purchase and dropout covariates whose two coefficients are
    constrained to be one (an equality constraint).
covariate_penalty : float, default 0.0
    L2 penalty ``covariate_penalty * sum(g**2)`` on the coefficients only, on the
    log-likelihood's scale (CLVTools' ``reg.lambdas`` penalise the per-customer
    objective: its lambda is this one divided by the number of customers).
start_params : dict, optional
    Starting values {name: value} for the optimiser (base parameters or coefficients, by
    their ``params_`` names).
"""
FITTED_DOC = """\
params_ : pandas.Series
    The estimates (the posterior mean for a Bayesian fit), by parameter name (and
    coefficient, with covariates).
standard_errors_ : pandas.Series
    Their standard errors (NaN where the Hessian is not negative definite).
covariance_ : pandas.DataFrame
    Their covariance.
log_likelihood_, aic_, bic_ : float
    The fit's log-likelihood and information criteria (AIC and BIC NaN for a Bayesian
    fit).
n_customers_, n_distinct_rows_ : int
    The customers the fit stood for and the distinct rows it evaluated.
convergence_ : dict
    The optimiser's or sampler's diagnostics.
time_unit_ : str or None
    The time unit of the fit's durations.
idata_ : arviz.InferenceData
    The posterior (Bayesian methods only).
covariates_ : object
    The covariate design (models with covariates only).
"""


def shared_docs(doc: str | None) -> str | None:
    """``doc`` with its ``<model settings>`` and ``<fitted attributes>`` lines replaced by
    :data:`SETTINGS_DOC` and :data:`FITTED_DOC`, indented as the line they replace (Python
    3.13 strips a docstring's indentation, 3.11 keeps it)."""
    if not doc:
        return doc
    fragments = {"<model settings>": SETTINGS_DOC, "<fitted attributes>": FITTED_DOC}
    out = []
    for line in doc.split("\n"):
        fragment = fragments.get(line.strip())
        if fragment is None:
            out.append(line)
            continue
        indent = line[:len(line) - len(line.lstrip())]
        out += [indent + part if part else part for part in fragment.rstrip("\n").split("\n")]
    return "\n".join(out)


class BaseModel(BaseEstimator):
    """A scikit-learn estimator: the constructor stores settings only (``get_params``,
    ``set_params`` and ``sklearn.base.clone`` work on them); ``fit`` checks them and returns
    ``self``; what a fit learns ends in ``_``.

    Parameters
    ----------
    <model settings>

    Attributes
    ----------
    <fitted attributes>
    """

    #: the model's own parameters, in the order of ``params_`` (coefficients follow them there).
    param_names: ClassVar[tuple[str, ...]] = ()

    #: the input table's columns the likelihood reads, in the order ``_data`` returns them.
    columns: ClassVar[tuple[str, ...]] = ()

    #: parameters that carry the data's scale -> index of the data column that sets it
    #: (the default prior of a scale parameter is centred on that column's mean).
    scale_params: ClassVar[dict[str, int]] = {}

    #: NUTS's target acceptance rate unless the user sets ``target_accept``.
    default_target_accept: ClassVar[float] = 0.8

    #: whether the model's durations (recency, T, horizons) are in a time unit that must be known
    #: to save or score it: the continuous-time transaction models. Gamma-Gamma has no durations;
    #: BG/BB and sBG count periods (opportunities), whatever their length.
    requires_time_unit: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.__doc__ = shared_docs(cls.__doc__)  # the shared settings and attributes, in place

    def __init__(self, penalty: float = 0.0, max_restarts: int = 4, *, method: str = "mle",
                 draws: int = 1000, tune: int = 1000, chains: int = 4,
                 priors: dict[str, Callable] | None = None, random_seed: Any = None,
                 progressbar: bool = True, nuts_sampler: str | None = None,
                 target_accept: float | None = None, purchase_covariates: list[str] | None = None,
                 dropout_covariates: list[str] | None = None,
                 spend_covariates: list[str] | None = None,
                 shared_covariates: list[str] | None = None, covariate_penalty: float = 0.0,
                 start_params: dict[str, float] | None = None):
        """Settings only (scikit-learn style), documented in the class docstring: stored as
        given; ``fit`` checks them (``clvlab.models.settings``), so a value set later with
        ``set_params`` is checked too."""
        self.penalty = penalty
        self.max_restarts = max_restarts
        self.method = method
        self.draws = draws
        self.tune = tune
        self.chains = chains
        self.priors = priors
        self.random_seed = random_seed
        self.progressbar = progressbar
        self.nuts_sampler = nuts_sampler
        self.target_accept = target_accept
        self.purchase_covariates = purchase_covariates
        self.dropout_covariates = dropout_covariates
        self.spend_covariates = spend_covariates
        self.shared_covariates = shared_covariates
        self.covariate_penalty = covariate_penalty
        self.start_params = start_params

    # --- model-specific hooks -------------------------------------------------------------
    def covariate_links(self) -> dict[str, tuple[str, int]]:
        """{parameter: (process, sign)}: with covariates x and coefficients g of that process,
        a customer's parameter is ``parameter * exp(sign * x'g)``. Empty: no covariates.

        Returns
        -------
        dict of str to tuple of (str, int)
            Parameter -> (process, sign).
        """
        return {}

    def _data(self, rfm: pd.DataFrame) -> list[np.ndarray]:  # pragma: no cover - abstract
        raise NotImplementedError

    def _start(self, data: list[np.ndarray], weights: np.ndarray) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    @staticmethod
    def _loglik(params: np.ndarray, data: list[np.ndarray]):  # pragma: no cover - abstract
        raise NotImplementedError

    #: The weighted log-likelihood as one compiled (numba) function, what the optimiser and the
    #: samplers call thousands of times: ``_total_kernel(params, *_kernel_arrays(data, weights))``
    #: returns [sum(weights * loglik), its gradient..., flag], flag 1.0 where some row needs the
    #: Python fallback (``_loglik``: mpmath or quadrature). The Bayesian samplers compile it into
    #: their graphs (PyTensor's numba backend, nutpie), so it must stay nopython-compilable.
    _total_kernel: ClassVar[Callable | None] = None

    #: Whether a maximum-likelihood fit takes its final log-likelihood and its covariance (the
    #: Hessian's central differences) from ``_total_function`` (the kernel, which hands the rows
    #: it cannot evaluate to ``_loglik`` itself) rather than from ``_loglik``'s rows: the same
    #: quantities summed in another order (the last digits move), at the kernel's cost. The
    #: final value is then the optimiser's last evaluation. BG/NBD and Pareto/NBD (issue 33).
    _final_from_total: ClassVar[bool] = False

    @staticmethod
    def _kernel_arrays(data: list[np.ndarray], weights: np.ndarray) -> tuple[np.ndarray, ...] | None:
        """The kernel's array arguments from the prepared data (None: data not prepared)."""
        return None

    @classmethod
    def _loglik_total(cls, params: np.ndarray, data: list[np.ndarray], weights: np.ndarray):
        """sum(weights * loglik) and its gradient: the compiled kernel, or the rows' sum where it
        is missing or flags a row it cannot evaluate."""
        arrays = cls._kernel_arrays(data, weights) if cls._total_kernel is not None else None
        if arrays is not None:
            out = cls._total_kernel(np.asarray(params, dtype=np.float64), *arrays)
            if out[-1] == 0.0:
                return float(out[0]), out[1:-1]
        values, grads = cls._loglik(params, data)
        return float(weights @ values), weights @ grads

    @classmethod
    def _total_function(cls, data: list[np.ndarray], weights: np.ndarray) -> Callable:
        """``params -> _loglik_total(params, data, weights)`` for one fit's rows, with the
        kernel's arrays (``_kernel_arrays``: contiguous copies, the x levels as floats) built
        here once rather than at each of the optimiser's evaluations; the same numbers."""
        arrays = cls._kernel_arrays(data, weights) if cls._total_kernel is not None else None
        if arrays is None:
            return lambda params: cls._loglik_total(params, data, weights)
        kernel = cls._total_kernel

        def total(params: np.ndarray):
            out = kernel(np.asarray(params, dtype=np.float64), *arrays)
            if out[-1] == 0.0:
                return float(out[0]), out[1:-1]
            values, grads = cls._loglik(params, data)  # a row the kernel cannot evaluate
            return float(weights @ values), weights @ grads

        return total

    def _prepare(self, data: list[np.ndarray]) -> list[np.ndarray]:
        """What the log-likelihood reads beside the columns, computed once per fit."""
        return data

    # --- fitting ----------------------------------------------------------------------------
    @converts("rfm")
    def fit(self, rfm: pd.DataFrame, weights: Sequence[float] | None = None, *,
            time_unit: str | None = None, covariate_paths: Any = None) -> "BaseModel":
        """Fit by ``method`` (maximum likelihood by default); identical rows are compressed first.

        ``time_unit``: the unit of the table's durations when the table does not record it
        (``rfm_summary`` and ``read_rfm`` record it in ``rfm.attrs``); it must agree with a unit
        the table records. A model of durations without a known unit cannot be saved.
        ``covariate_paths``: each customer's time-varying covariates
        (:func:`clvlab.covariate_paths`); the covariates named in the settings that the paths
        hold then vary over time (ParetoNBD: purchase and dropout; BGNBD: purchase), the others
        come from the table as static covariates (``clvlab.models.time_varying``).

        Parameters
        ----------
        rfm : pandas.DataFrame, polars.DataFrame or pyarrow.Table
            One row per customer with the columns the model reads (``columns``: frequency,
            recency and T for the transaction models), and any covariate columns: a pandas or
            polars DataFrame or a pyarrow Table (:mod:`clvlab.data.tables`). A polars or Arrow
            table takes its customer ids from its ``customer_id`` column; a polars table
            records no time unit, so give ``time_unit``.
        weights : sequence of float, optional
            How many customers each row stands for (None: one each).
        time_unit : str, optional
            The unit of the table's durations (above).
        covariate_paths : CovariatePaths, optional
            Each customer's time-varying covariates (above).

        Returns
        -------
        BaseModel
            self, fitted (the attributes ending in ``_``).

        Raises
        ------
        ClvlabError
            Where a setting is invalid, the weights are not one finite number >= 0 per row,
            the data cannot identify the model, or the time units disagree.
        DataValidationError
            Where the table breaks an RFM rule (:func:`clvlab.validate_rfm`).
        """
        check_settings(self)
        rfm = to_pandas(rfm, keyed=True, what="the RFM table")  # polars, Arrow: clvlab.data.tables
        unit = model_files.given_time_unit(rfm, time_unit)
        if weights is not None:
            weights = np.asarray(weights, dtype=np.float64)
            if weights.shape != (len(rfm),) or not np.all(np.isfinite(weights)) or np.any(weights < 0):
                raise ClvlabError("weights must be one finite number >= 0 per row of the RFM table")
        for name in ("idata_", "covariates_", "median_T_", "bootstrap_", "training_profile_"):
            self.__dict__.pop(name, None)  # a refit replaces them all
        profiled = self.requires_time_unit and "T" in getattr(rfm, "columns", ())
        plain = covariate_paths is None and not covariates.has_covariates(self)
        if profiled and not plain:
            self._profile_table(rfm, weights)
        if covariate_paths is not None:
            return self._fit_time_varying(rfm, covariate_paths, weights, unit)
        if not plain:
            return self._fit_covariates(rfm, weights, unit)
        data = self._data(rfm)  # the table's rules checked here, once
        if profiled:  # from the columns _data has just read: not read from the table again
            self._profile_table(rfm, weights, data)
        distinct, counts = compress(data, weights)
        self._check_identifiable(distinct, counts)
        prepared = self._prepare(distinct)
        if self.method != "mle":
            return self._fit_bayes(prepared, distinct, counts, unit)
        result = fit_mle(lambda p: self._loglik(p, prepared), counts,
                         self._start_values(distinct, counts), names=self.param_names,
                         penalty=float(self.penalty), max_restarts=self.max_restarts,
                         total=self._total_function(prepared, counts),
                         exact_total=self._final_from_total)
        self._store(result, model_files.fit_block(result, float(counts.sum()), len(counts)), unit)
        return self

    def _profile_table(self, rfm: pd.DataFrame, weights: np.ndarray | None,
                       data: list[np.ndarray] | None = None) -> None:
        """Learn the fit table's median age and profile. ``data``: what ``_data`` returned
        (the ``columns``, in order, one value per row of ``rfm``), used in place of the
        table's columns where it holds them."""
        arrays = {}
        if data is not None and len(data) == len(self.columns):
            arrays = {name: values for name, values in zip(self.columns, data)
                      if np.shape(values) == (len(rfm),)}
        # what the unit check compares a table's ages with (clvlab.models.table_units)
        self.median_T_ = model_files.weighted_median(arrays["T"] if "T" in arrays else rfm["T"], weights)
        # the fit table's deciles, for input-drift checks (clvlab.ops.monitoring)
        profile = model_files.training_profile(rfm, weights, arrays=arrays)
        if profile is not None:
            self.training_profile_ = profile

    def _start_values(self, distinct, counts) -> np.ndarray:
        """The optimiser's start: the model's own, with any ``start_params`` put in."""
        start = np.asarray(self._start(distinct, counts), dtype=np.float64).copy()
        for name, value in (self.start_params or {}).items():
            if name not in self.param_names:
                raise ClvlabError(f"start_params names {name!r}, which is not a parameter of this "
                                  f"{type(self).__name__} (it has {list(self.param_names)})")
            start[list(self.param_names).index(name)] = float(value)
        return start

    def _fit_covariates(self, rfm, weights, unit) -> "BaseModel":
        """Maximum likelihood over the own parameters and the coefficients; a Bayesian method
        then samples the same likelihood (the compiled loop over the covariate groups), started
        from that fit, with a Normal(0, 1 / sd) prior on each coefficient (``clvlab.bayes``);
        the priors take the place of ``penalty`` and ``covariate_penalty`` there."""
        with warnings.catch_warnings():
            if self.method != "mle":  # only the sampler's start: its problems are not the fit's
                warnings.simplefilter("ignore")
            result, design, grouped = covariates.fit_with_covariates(self, rfm, weights)
        problem = covariates.no_interior_maximum(self, design, grouped, result)
        if self.method != "mle":
            self.covariates_ = design
            target = covariates.sampler_target(self, design, grouped)
            usable = result.converged and problem is None and np.all(np.isfinite(result.covariance))
            return self._fit_bayes(None, None, grouped.weights, unit, target=target,
                                   start=(result.params, result.covariance) if usable else None)
        if problem:
            raise ClvlabError(problem)
        self.covariates_ = design
        self._store(result, model_files.fit_block(result, float(grouped.weights.sum()), len(grouped.weights)), unit)
        return self

    def _fit_time_varying(self, rfm, paths, weights, unit) -> "BaseModel":
        """Maximum likelihood along covariate paths; a Bayesian method samples the same
        likelihood from there (``clvlab.models.time_varying``)."""
        from clvlab.models import time_varying

        with warnings.catch_warnings():
            if self.method != "mle":
                warnings.simplefilter("ignore")
            result, design, likelihood = time_varying.fit_time_varying(self, rfm, paths, weights)
        n = float(likelihood.weights.sum())
        if self.method != "mle":
            self.covariates_ = design
            target = time_varying.sampler_target(self, design, likelihood)
            usable = result.converged and np.all(np.isfinite(result.covariance))
            return self._fit_bayes(None, None, likelihood.weights, unit, target=target,
                                   start=(result.params, result.covariance) if usable else None)
        self.covariates_ = design
        self._store(result, model_files.fit_block(result, n, len(rfm)), unit)
        time_varying.warn_if_unbounded(self, likelihood)
        return self

    def _predict_along_paths(self, method, signature, table_name, args, kwargs, paths):
        """A per-customer prediction of a model fitted along covariate paths
        (``clvlab.models.time_varying_predict``; ``customer_params`` routes here)."""
        from clvlab.models.time_varying_predict import predict_along_paths

        return predict_along_paths(self, method, signature, table_name, args, kwargs, paths)

    def _fit_bayes(self, prepared, distinct, counts, time_unit, *, target=None,
                   start=None) -> "BaseModel":
        """The posterior of ``target`` (``bayes.Target``; a model with covariates passes its
        own, and its maximum-likelihood ``start``), by default of the model's own likelihood of
        the prepared rows, started from its MLE. Learned: params_ (posterior means, or the MAP
        point), covariance_ (of the draws, or MAP's Laplace approximation), idata_."""
        if target is None:
            target = bayes.plain_target(self, prepared, counts)
            start = self._mle_start(prepared, distinct, counts)
        target_accept = self.default_target_accept if self.target_accept is None else self.target_accept
        idata, diag = bayes.fit_bayes(
            self, prepared, counts, method=self.method, draws=self.draws, tune=self.tune,
            chains=self.chains, random_seed=self.random_seed, priors=self.priors,
            progressbar=self.progressbar, nuts_sampler=self.nuts_sampler,
            target_accept=float(target_accept), start=start, target=target)
        names, weights = list(target.names), target.weights
        samples = np.column_stack([idata.posterior[n].to_numpy().ravel() for n in names])
        mean = samples.mean(axis=0)
        if len(samples) > 1:
            covariance = np.cov(samples, rowvar=False)
        else:  # MAP: the curvature of the log-likelihood at the mode (a Laplace approximation)
            covariance = observed_covariance(target.rows, weights, mean, 0.0, target.positive)
        values, _ = target.rows(mean)
        log_likelihood = float(weights @ values)
        bayes.add_log_likelihood(idata, target)
        result = FitResult(params=mean, log_likelihood=log_likelihood, covariance=covariance,
                           converged=True, message=self.method, iterations=0, restarts=0,
                           gradient_norm=float("nan"), penalty=0.0, details={"names": names})
        block = model_files.fit_block(result, float(weights.sum()), len(weights))
        # AIC and BIC are maximum-likelihood criteria: at a posterior mean or mode they would be
        # read as if they were, so a Bayesian fit has none (compare Bayesian fits with LOO)
        block.update(aic=float("nan"), bic=float("nan"), convergence=diag)
        self._store(result, block, time_unit)
        self.idata_ = idata
        bayes.warn_if_poor(type(self).__name__, diag)
        return self

    def _mle_start(self, prepared, distinct, counts) -> tuple[np.ndarray, np.ndarray] | None:
        """The MLE and its covariance, to start NUTS from (None when the fit fails: the sampler
        then starts from the priors as PyMC does)."""
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                result = fit_mle(lambda p: self._loglik(p, prepared), counts,
                                 self._start(distinct, counts), names=self.param_names,
                                 penalty=0.0, max_restarts=self.max_restarts,
                                 total=self._total_function(prepared, counts))
        except (ClvlabError, ArithmeticError, ValueError, np.linalg.LinAlgError):
            return None
        return (result.params, result.covariance) if result.converged else None

    def _prior_scale(self, name: str, data: list[np.ndarray], weights: np.ndarray) -> float:
        if name not in self.scale_params:
            return 1.0
        return max(float(np.average(data[self.scale_params[name]], weights=weights)), 1e-6)

    def _check_identifiable(self, data: list[np.ndarray], counts: np.ndarray) -> None:
        if counts.sum() < 2:
            raise ClvlabError(f"{type(self).__name__} needs more than one customer to fit")

    def _store(self, result: FitResult, block: dict[str, Any], time_unit: str | None) -> None:
        """Keep a fit: its estimates, its time unit and its FIT_BLOCK values (``block``)."""
        names = result.details.get("names") or list(self.param_names)
        index = _param_index(type(self)) if list(names) == list(self.param_names) else list(names)
        self.params_ = pd.Series(result.params, index=index, name="estimate")
        self._set_covariance(result.covariance)
        self.time_unit_ = time_unit
        for key in FIT_BLOCK:
            setattr(self, key + "_", block[key])
        if not result.converged:
            warn(
                f"{type(self).__name__} did not converge ({result.message}; gradient norm "
                f"{result.gradient_norm:.3g}, parameters {dict(self.params_.round(6))}). Try a "
                "small penalty (e.g. penalty=0.01), more restarts (max_restarts=10), or check "
                "that the data are in the time unit you expect.", ClvlabWarning)
        elif not np.all(np.isfinite(result.covariance)):
            warn(f"{type(self).__name__}: the Hessian at the optimum is not negative "
                          "definite, so standard errors are NaN; the data may not identify every "
                          "parameter (a small penalty helps).", ClvlabWarning)

    def _set_covariance(self, covariance: np.ndarray) -> None:
        # params_' index without its name, as a fresh object per axis (an Index's name can be
        # set in place): the labels are not parsed into a new Index three times over
        names = self.params_.index
        self.covariance_ = pd.DataFrame(covariance, index=names.rename(None),
                                        columns=names.rename(None))
        self.standard_errors_ = pd.Series(np.sqrt(np.diag(covariance)), index=names.rename(None),
                                          name="std_error")

    @classmethod
    def from_params(cls, time_unit: str | None = None, *,
                    coefficients: dict[str, dict[str, float]] | None = None,
                    levels: dict[str, list[str]] | None = None, **params: float) -> "BaseModel":
        """A model with known parameters, to score without fitting.

        ``coefficients`` {process: {covariate: value}} gives a model with covariates (e.g.
        ``{"purchase": {"gender": 0.4}, "dropout": {"channel[web]": -0.2}}``); a text column's
        covariates are named ``column[level]``, with its levels (reference first) in ``levels``.

        Parameters
        ----------
        time_unit : str, optional
            The time unit of the parameters (None: none, for a model of periods).
        coefficients : dict of str to dict of str to float, optional
            The covariates' coefficients by process (above).
        levels : dict of str to list of str, optional
            A text column's levels, reference first.
        **params : float
            The model's own parameters by name (``param_names``), each finite and > 0.

        Returns
        -------
        BaseModel
            The model, as if fitted (no covariance).

        Raises
        ------
        ClvlabError
            Where the parameters are not exactly ``param_names`` or not finite and > 0.
        """
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
        if coefficients:
            design, values = covariates.design_from_coefficients(model, coefficients, levels)
            model._set_design(design, values)
        return model

    def _set_design(self, design, coefficient_values: np.ndarray) -> None:
        """Give a model of known base parameters its covariates (settings and learned state)."""
        for setting, process in covariates.PROCESS_SETTINGS.items():
            used = design.processes.get(process)
            if used:
                setattr(self, setting, [c for c in design.encoder.columns
                                        if set(design.encoder.names_for([c])) & set(used)])
        shared = {name for name in design.shared}
        if shared:
            self.shared_covariates = [c for c in design.encoder.columns
                                      if set(design.encoder.names_for([c])) & shared]
        self.covariates_ = design
        self.params_ = pd.concat([self.params_[list(self.param_names)],
                                  pd.Series(np.asarray(coefficient_values, float),
                                            index=design.coefficient_names)]).rename("estimate")

    # --- results ----------------------------------------------------------------------------
    def _check_fitted(self) -> np.ndarray:
        """The model's own parameters (with covariates: those of a customer whose covariates
        are all 0, the baseline; predictions use each customer's own). A row model
        (``customer_params.row_model``) returns a k x rows array: each row's own."""
        rows = self.__dict__.get("_row_params")
        if rows is not None:
            return rows
        if not hasattr(self, "params_"):
            raise ClvlabError(f"this {type(self).__name__} is not fitted; call fit() or "
                              "from_params() first")
        return self.params_.to_numpy()[:len(self.param_names)]

    def _positive(self) -> np.ndarray:
        """Which of ``params_`` are > 0: the model's own parameters, not the coefficients."""
        return np.arange(len(self.params_)) < len(self.param_names)

    def plain_at(self, params: Any) -> "BaseModel":
        """The same model without covariates at the given own parameters (time unit kept).

        Parameters
        ----------
        params : array-like
            The model's own parameters, in ``param_names``' order.

        Returns
        -------
        BaseModel
            A model of the same class without covariates.
        """
        return type(self).from_params(time_unit=getattr(self, "time_unit_", None),
                                      **dict(zip(self.param_names, np.asarray(params, float))))

    def at_params(self, values: Any) -> "BaseModel":
        """This model at other parameter values (``params_``'s order: own parameters, then
        coefficients), with its covariates and time unit: what predictions with intervals
        evaluate at each parameter draw. Without covariates it is ``from_params`` at those
        values; nothing learned about uncertainty (covariance, posterior) is copied.

        Parameters
        ----------
        values : array-like
            One value per entry of ``params_``, in its order.

        Returns
        -------
        BaseModel
            A new model.

        Raises
        ------
        ClvlabError
            Where ``values`` does not hold one value per entry of ``params_``.
        """
        values = np.asarray(values, dtype=np.float64)
        if hasattr(self, "params_") and values.shape != (len(self.params_),):
            raise ClvlabError(f"at_params needs {len(self.params_)} values "
                              f"{list(self.params_.index)}, got {values.shape}")
        k = len(self.param_names)
        model = type(self).from_params(time_unit=getattr(self, "time_unit_", None),
                                       **dict(zip(self.param_names, values[:k])))
        if hasattr(self, "covariates_"):
            model.set_params(**self.get_params(deep=False))  # dropout_form among them
            model._set_design(self.covariates_, values[k:])
        return model

    @accepts_tables("attributes")
    def for_attributes(self, attributes: dict[str, Any] | pd.Series | pd.DataFrame) -> "BaseModel":
        """The model of a customer with these attributes (one row): a plain model at that
        customer's parameters, for new-customer predictions (``expected_purchases_new_customer``,
        ``survival``...). A model without covariates returns itself.

        Parameters
        ----------
        attributes : dict, pandas.Series, pandas.DataFrame, polars.DataFrame or pyarrow.Table
            One customer's covariate values by column: a dict, a pandas Series, or a table of
            one row (a pandas or polars DataFrame or a pyarrow Table,
            :mod:`clvlab.data.tables`).

        Returns
        -------
        BaseModel
            A plain model at that customer's parameters, or this model without covariates.

        Raises
        ------
        ClvlabError
            Where the model is not fitted, or the attributes are not one row or lack a
            covariate.
        """
        self._check_fitted()
        if not hasattr(self, "covariates_"):
            return self
        row = attributes if isinstance(attributes, pd.DataFrame) else pd.DataFrame([dict(attributes)])
        if len(row) != 1:
            raise ClvlabError(f"for_attributes takes one customer's attributes, got {len(row)} rows")
        return next(customer_params.plain_models(self, row))[1]

    @customer_params.by_covariate_group
    def _log_likelihood_rows(self, rfm: pd.DataFrame) -> pd.Series:
        mask = self._rows_used(rfm)
        used = rfm if mask is None else rfm[mask]
        out = pd.Series(np.nan, index=rfm.index, name="log_likelihood")
        if len(used):
            data = self._data(used)
            params = self._check_fitted()
            if np.ndim(params) == 2:  # a row model: each (distinct) row at its own parameters
                from clvlab.models.row_kernels import row_log_likelihood

                own = params.T if mask is None else params.T[mask]
                values = row_log_likelihood(self, own, data)[0]
                out[np.ones(len(rfm), bool) if mask is None else mask] = values
                return out
            (distinct), inverse = group_rows(data)
            values, _ = self._loglik(params, self._prepare(distinct))
            out[np.ones(len(rfm), bool) if mask is None else mask] = values[inverse]
        return out

    def _rows_used(self, rfm: pd.DataFrame) -> np.ndarray | None:
        """Which rows the likelihood reads (None: all of them)."""
        return None

    @checks_time_unit
    def log_likelihood(self, rfm: pd.DataFrame, per_customer: bool = False, *,
                       covariate_paths=None):
        """The log-likelihood of ``rfm`` at the model's current parameters (fitted or from
        ``from_params``; with covariates, each customer at their own): the total, or one value
        per customer with ``per_customer=True`` (NaN for customers the model does not read, as
        Gamma-Gamma's customers without repeat purchases). To compare models on a holdout.
        A model fitted along covariate paths needs the table's paths built with its
        transactions (``clvlab.covariate_paths(panel, rfm, transactions=log)``).

        Parameters
        ----------
        rfm : pandas.DataFrame, polars.DataFrame or pyarrow.Table
            The customers, with the columns the model reads: a pandas or polars DataFrame or a
            pyarrow Table (:mod:`clvlab.data.tables`; a polars or Arrow table takes its
            customer ids from its ``customer_id`` column).
        per_customer : bool, default False
            Return one value per customer instead of the total.
        covariate_paths : CovariatePaths, optional
            Each customer's time-varying covariates along the window
            (:func:`clvlab.covariate_paths`), for a model with covariates: needed by one fitted
            along paths; None: the table's static covariates.
        time_unit : str, optional
            The unit of the table's durations (``"D"``, ``"W"``...) for a table that does not
            record it (a merge, a CSV read with pandas, a polars table); it must be the
            model's: predictions are never rescaled. None: the unit the table records.
        check_durations : bool, default True
            Refuse durations that look like another unit than the model's (by the likelihood
            and the customers' ages); False skips that check.

        Returns
        -------
        float or pandas.Series
            The total, or one value per customer on ``rfm``'s index (the customer ids).
        """
        self._check_fitted()
        self._check_time_unit(rfm)
        rows = self._log_likelihood_rows(rfm, covariate_paths=covariate_paths)
        return rows if per_customer else float(rows.sum())

    def summary(self, level: float = 0.95) -> pd.DataFrame:
        """Estimates, standard errors and intervals (log-scale Wald, so they stay positive).

        After a Bayesian fit with draws: ArviZ's summary (mean, sd, HDI at ``level``, MCSE,
        ESS, r_hat).

        Parameters
        ----------
        level : float, default 0.95
            The intervals' coverage.

        Returns
        -------
        pandas.DataFrame
            One row per parameter.
        """
        idata = getattr(self, "idata_", None)
        if idata is not None and idata.posterior.sizes["chain"] * idata.posterior.sizes["draw"] > 1:
            return _compat.summary_table(idata, list(self.params_.index), level)
        self._check_fitted()
        covariance = getattr(self, "covariance_", None)
        params = self.params_.to_numpy()
        cov = np.full((len(params),) * 2, np.nan) if covariance is None else covariance.to_numpy()
        return summary_frame(self.params_.index, params, cov, level, self._positive())

    def __repr__(self) -> str:
        name = type(self).__name__
        if not hasattr(self, "params_"):
            return settings_repr(self)
        params = ", ".join(f"{k}={v:.4g}" for k, v in self.params_.items())
        fitted = ""
        if hasattr(self, "log_likelihood_"):
            where = "" if self.method == "mle" else f" at the {self.method.upper()} posterior " + (
                "mode" if self.method == "map" else "mean")
            fitted = (f"; log-likelihood{where} {self.log_likelihood_:.2f} on "
                      f"{self.n_customers_:,.0f} customers")
        unit = f"; time unit {self.time_unit_}" if getattr(self, "time_unit_", None) else ""
        return f"<{name}: {params}{fitted}{unit}>"

    def _repr_html_(self) -> str:
        """Jupyter's view: the repr line and, once fitted, the summary table."""
        import html

        head = f"<p><code>{html.escape(repr(self))}</code></p>"
        if not hasattr(self, "params_"):
            return head
        return head + self.summary().to_html(float_format="{:.4g}".format)

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, str]:
        """Jupyter asks for this before ``_repr_html_``: scikit-learn's would show its estimator
        diagram in place of the view above."""
        return {"text/plain": repr(self), "text/html": self._repr_html_()}

    def _check_time_unit(self, rfm: pd.DataFrame) -> None:
        """A table in another time unit than the model's is an error, never a silent rescale."""
        data_unit = recorded_unit(rfm)
        model_unit = getattr(self, "time_unit_", None)
        if data_unit is not None and model_unit is not None and data_unit != model_unit:
            raise ClvlabError(f"the RFM table is in time unit {data_unit!r} but the model was fitted "
                              f"in {model_unit!r}; rebuild the table with time_unit={model_unit!r}")

    # --- files ------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The model as a JSON-ready dict (``clvlab.models.model_files``).

        Returns
        -------
        dict
            The payload :func:`clvlab.models.base.model_from_dict` reads back.
        """
        return model_files.payload(self)

    def save(self, path: str | Path, overwrite: bool = True) -> None:
        """Write the model as JSON (parameters, covariance, covariate encoding, time unit,
        versions), atomically.

        After a Bayesian fit the posterior goes beside it as netCDF (``<name>.posterior.nc``),
        named in the JSON; neither file can run code when loaded. Only population-level groups
        are saved (the posterior draws and the sampler's statistics): the per-row
        log-likelihood and row weights stay in memory, as a model file holds no customer data.

        Parameters
        ----------
        path : str or pathlib.Path
            The JSON file.
        overwrite : bool, default True
            Replace existing files; False raises ClvlabError where one exists.

        Raises
        ------
        ClvlabError
            Where the model is not fitted, a model of durations has no time unit, or the file
            exists and ``overwrite`` is False.
        """
        model_files.write(self, path, overwrite)

    @checks_time_unit
    def posterior_predict(self, prediction: str, rfm: pd.DataFrame, *, level: float = 0.94,
                          n_draws: int = 200, return_draws: bool = False, seed: Any = 0,
                          progress: bool | None = None, method: str = "auto",
                          **kwargs: Any) -> pd.DataFrame:
        """A prediction per customer with its parameter uncertainty: ``mean``, ``parameter_sd``
        and a ``level`` central interval ``parameter_<low>%`` / ``parameter_<high>%`` of the
        predicted value over parameter draws. These are intervals of an expected value (how
        sure we are of the customer's expected purchases, P(alive), ...), not prediction
        intervals for what the customer will do: a customer expected to make 1.2 purchases
        (interval 1.1-1.3) makes 0, 1, 2 or more, and such intervals hold only a few per cent
        of holdout counts.

        ``prediction`` names a method (``"p_alive"``, ``"expected_purchases"``,
        ``"probability_of_purchase"``, ``"expected_spend"``, ...); ``kwargs`` go to it (e.g.
        ``t=52``). Draws come from the posterior after a Bayesian fit, and from the asymptotic
        normal of the log-parameters after a maximum-likelihood one (``method``: "auto",
        "posterior", "normal" or "bootstrap", as ``clvlab.bayes.parameter_draws``; for the
        predictive distribution of what a customer will do, see ``prediction_interval``).
        Memory is bounded by
        chunking (see ``clvlab.bayes.posterior_summary``); for CLV with uncertainty use
        ``clvlab.bayes.posterior_summary`` with ``customer_lifetime_value``.

        Parameters
        ----------
        prediction : str
            The name of a prediction method of the model.
        rfm : pandas.DataFrame, polars.DataFrame or pyarrow.Table
            The customers: a pandas or polars DataFrame or a pyarrow Table
            (:mod:`clvlab.data.tables`; a polars or Arrow table takes its customer ids from its
            ``customer_id`` column).
        level : float, default 0.94
            The central interval's coverage.
        n_draws : int, default 200
            Parameter draws.
        return_draws : bool, default False
            Return the (draw, customer) values instead of the summary.
        seed : int, numpy.random.Generator or None, default 0
            Seed of the draws.
        progress : bool, optional
            Show a progress bar (None: when someone is watching).
        method : {"auto", "posterior", "normal", "bootstrap"}, default "auto"
            Where the draws come from.
        time_unit : str, optional
            The unit of the table's durations, for a table that does not record it (a merge, a
            CSV read with pandas, a polars table).
        check_durations : bool, default True
            Refuse durations that look like another unit than the model's.
        **kwargs
            The prediction's further arguments (``t=52``).

        Returns
        -------
        pandas.DataFrame
            On ``rfm``'s index (the customer ids): ``mean``, ``parameter_sd`` and the
            interval's two columns.

        Raises
        ------
        ClvlabError
            Where the model has no such prediction, or no draws of that method.
        """
        if not callable(getattr(self, prediction, None)) or prediction.startswith("_"):
            raise ClvlabError(f"{type(self).__name__} has no prediction {prediction!r}")
        return bayes.posterior_summary(
            self, lambda model, chunk: getattr(model, prediction)(chunk, **kwargs), rfm,
            n_draws=n_draws, level=level, return_draws=return_draws, seed=seed, progress=progress,
            method=method,
            # per-customer group predictions: groups found once, parameters of every draw at once
            rowwise=getattr(getattr(type(self), prediction), "by_covariate_group", False))

    @classmethod
    def load(cls, path: str | Path) -> "BaseModel":
        """Read a model of this class saved with :meth:`save` (JSON only: loading runs no code).

        Parameters
        ----------
        path : str or pathlib.Path
            The JSON file.

        Returns
        -------
        BaseModel
            The model, an instance of the class it is called on.

        Raises
        ------
        ClvlabError
            Where the file is not a readable model file or holds a model of another class.
        """
        model = load_model(path)
        if not isinstance(model, cls):
            raise ClvlabError(f"{path} holds a {type(model).__name__}, not a {cls.__name__}")
        return model


#: {param_names: an Index of them}, parsed once: building an Index of strings costs 40-80 us
#: (pandas 3's Arrow-backed strings), and a fit built three of them
_PARAM_INDEX: dict[tuple[str, ...], pd.Index] = {}


def _param_index(cls: type) -> pd.Index:
    """A new Index (its own object, name None) of ``cls.param_names``."""
    names = tuple(cls.param_names)
    template = _PARAM_INDEX.get(names)
    if template is None:
        template = _PARAM_INDEX[names] = pd.Index(list(names))
    return template.rename(None)


def load_model(path: str | Path) -> BaseModel:
    """Read a model saved with ``save``; JSON only, so loading never runs code from the file.

    Parameters
    ----------
    path : str or pathlib.Path
        The JSON file written by ``save``.

    Returns
    -------
    BaseModel
        The model, of the class the file names.

    Raises
    ------
    ClvlabError
        Where the file is not a readable clvlab model file or names an unknown model.
    """
    return model_from_dict(model_files.read(path), source=str(path))


def model_from_dict(payload: dict[str, Any], source: str = "<dict>") -> BaseModel:
    """Build a model from ``to_dict``'s payload (``source`` names the file in errors)."""
    model_files.check_header(payload, source)
    cls = _model_class(payload.get("model"))
    if cls is None:
        raise ClvlabError(f"model file {source} holds an unknown model {payload.get('model')!r}")
    return model_files.restore(cls, payload, source)


def _model_class(name: Any) -> type[BaseModel] | None:
    """The class a file names: a subclass of BaseModel of that name (clvlab's models, or one a
    user defined; a class redefined in a notebook replaces the first). The classes themselves are the
    lookup, so no list of names is kept here: the names users type are models/registry.py's."""
    found, stack = None, [BaseModel]
    while stack:
        cls = stack.pop(0)
        if cls.__name__ == name:
            found = cls
        stack.extend(cls.__subclasses__())
    return found


BaseModel.__doc__ = shared_docs(BaseModel.__doc__)
