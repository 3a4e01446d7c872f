"""Bayesian fitting with PyMC: the same exact likelihoods, with priors, sampled by NUTS.

Every model's log-likelihood and its exact gradient already exist as one compiled (numba)
kernel over the compressed rows with their weights (``BaseModel._total_kernel``, tested against
mpmath). Rather than write each again in PyTensor (Pareto/NBD needs a 2F1 series that
PyTensor's hyp2f1 cannot evaluate everywhere), ``clvlab.inference.likelihood_op`` wraps that kernel as
one PyTensor operation with a numba implementation, which PyMC's samplers and nutpie compile
without object mode. So the posterior is over exactly the likelihood the maximum-likelihood fit
maximises.

Samplers (``nuts_sampler``): "pymc" (PyMC's own NUTS, started from the MLE with its covariance
as the first mass matrix: the default, see ``default_nuts_sampler``) or "nutpie" (the Rust
sampler, faster on large data).

Priors are weakly informative log-normals: log(theta) ~ Normal(log(scale), 2.5), with scale 1 for
shape parameters and the data's own scale for scale parameters (mean T for alpha and beta, mean
spend for Gamma-Gamma's v), so that the defaults do not depend on the time unit or the currency.
Replace any of them with ``priors={"r": lambda name: pm.Gamma(name, alpha=1, beta=1)}``.

Covariate coefficients (``purchase.gender``, ``dropout.channel[web]``...) get Normal(0, sigma)
priors with ``sigma = COEFFICIENT_PRIOR_SIGMA / sd``, ``sd`` the covariate's standard deviation in
the fit's table (1 for a text column's level indicators; 0.5 for a 0/1 column given as numbers
with half its customers at 1, so Normal(0, 2)): Normal(0, 1) on the effect of one standard
deviation of the covariate. pymc-marketing's default is Normal(0, 1) on the covariate as given,
which depends on its units: all but flat for an income in dollars, far too tight for a covariate
of small numbers (a daily rate near 0.002, whose effects need coefficients in the hundreds). One
standard deviation moving a rate by a factor e (one sigma) is a large effect for a customer
attribute, so the default is weak; replace it by name like any other:
``priors={"purchase.gender": lambda name: pm.Normal(name, 0, 0.5)}``. A model with covariates
is sampled by the same compiled kernel, looped over its covariate groups in compiled code
(``clvlab.models.covariate_kernel``).
"""

from __future__ import annotations

import os
import warnings
from importlib.util import find_spec
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from clvlab.inference import compat as _compat
from clvlab.inference.likelihood_op import CompiledLikelihood, compiled_graph, model_likelihood
from clvlab.inference.likelihood_op import likelihood_graph  # noqa: F401 (public here as before)
from clvlab.core.errors import ClvlabError, ClvlabWarning, warn
# predictions with intervals work after any fit, so they live apart; public here as before
from clvlab.inference.uncertainty import (DRAW_METHODS, parameter_draws, posterior_summary,  # noqa: F401
                                          summary_columns)
from clvlab.inference.bootstrap import BootstrapResult, bootstrap_fit  # noqa: F401

__all__ = ["METHODS", "NUTS_SAMPLERS", "Target", "plain_target", "coefficient_sigmas",
           "default_nuts_sampler", "fit_bayes", "parameter_draws", "posterior_summary",
           "summary_columns", "DRAW_METHODS", "bootstrap_fit", "BootstrapResult",
           "AdviConvergence", "map_point", "default_log_posterior", "newton_polish"]

METHODS = ("mle", "map", "nuts", "advi")
NUTS_SAMPLERS = ("nutpie", "pymc")
PRIOR_SIGMA = 2.5
#: a coefficient's prior: Normal(0, COEFFICIENT_PRIOR_SIGMA / sd of its covariate)
COEFFICIENT_PRIOR_SIGMA = 1.0
#: ADVI's cap on its steps: it stops earlier once converged (``AdviConvergence``)
ADVI_STEPS = 30_000
#: the windows of steps whose mean losses and mean parameters ADVI's convergence rule compares
ADVI_WINDOW = 2_000
#: a MAP point is converged when one more Newton step would raise the log-posterior by less
#: than this (half the Newton decrement, in nats)
MAP_TOLERANCE = 1e-4


def default_nuts_sampler() -> str:
    """"pymc": PyMC's own NUTS, started from the MLE with its covariance as the mass matrix.

    Measured with benchmarks/bench_bayes.py (docs/benchmarks.md; Python 3.12, PyMC 6, 4 x
    (1000 + 1000), import included): on CDNOW PyMC's NUTS reached 565 ESS/s on BG/NBD and 76 on
    Pareto/NBD against nutpie's 383 and 58 (nutpie's compilation, and its learned low-rank mass
    matrix where PyMC starts from the full MLE covariance); on 100,000 simulated customers
    nutpie was faster (66 against 60 ESS/s). The default is the sampler faster on most cases;
    pass ``nuts_sampler="nutpie"`` for large data.

    Returns
    -------
    str
        ``"pymc"``.
    """
    return "pymc"


def default_priors(model, data: list[np.ndarray], weights: np.ndarray) -> dict[str, float]:
    """The centre (on the natural scale) of each parameter's log-normal prior."""
    return {name: float(model._prior_scale(name, data, weights)) for name in model.param_names}


def coefficient_sigmas(names: Sequence[str], scales: Sequence[float]) -> dict[str, float]:
    """The sd of each coefficient's default Normal(0, sd) prior, on the user's scale, from the
    standard deviations of the covariates (see the module docstring).

    Parameters
    ----------
    names : sequence of str
        The coefficients' names.
    scales : sequence of float
        The standard deviation of each one's covariate, in the same order.

    Returns
    -------
    dict of str to float
        Name -> ``COEFFICIENT_PRIOR_SIGMA / scale``.
    """
    return {n: COEFFICIENT_PRIOR_SIGMA / float(s) for n, s in zip(names, scales)}


@dataclass
class Target:
    """What a Bayesian fit samples: the parameters ``names``, of which the first
    ``likelihood.n_positive`` (the model's own) get log-normal priors centred on ``centres``
    and the others (covariate coefficients) Normal(0, ``sigmas[name]``); the compiled
    likelihood; and ``rows(params)`` -> (each distinct row's log-likelihood, its gradient) with
    the rows' ``weights``, for the MAP's curvature and ArviZ's log_likelihood group.
    ``row_calls``: the Python calls ``rows`` makes (one per covariate group), which bounds
    when that group is worth computing.

    Parameters
    ----------
    model_name : str
        The model's class name (for messages).
    names : list of str
        The parameters, the model's own first, then the coefficients.
    likelihood : CompiledLikelihood
        The compiled log-likelihood.
    centres : dict of str to float
        The centre of each of the model's own parameters' log-normal prior.
    sigmas : dict of str to float
        The sd of each coefficient's Normal(0, sd) prior.
    rows : callable
        params -> (each distinct row's log-likelihood, its gradient).
    weights : numpy.ndarray
        How many customers each row stands for.
    row_calls : int, default 1
        The Python calls ``rows`` makes.
    """

    model_name: str
    names: list[str]
    likelihood: CompiledLikelihood
    centres: dict[str, float]
    sigmas: dict[str, float]
    rows: Callable[[np.ndarray], tuple]
    weights: np.ndarray
    row_calls: int = 1

    @property
    def positive(self) -> np.ndarray:
        """Which parameters are the model's own (positive), not coefficients.

        Returns
        -------
        numpy.ndarray
            True for the first ``likelihood.n_positive`` names (log-normal priors, sampled as
            log(theta)), False for the coefficients.
        """
        return np.arange(len(self.names)) < self.likelihood.n_positive


def plain_target(model, data: list[np.ndarray], weights: np.ndarray) -> Target:
    """The target of a model without covariates, over its prepared, compressed rows.

    Parameters
    ----------
    model : BaseModel
        The clvlab model whose likelihood is sampled.
    data : list of numpy.ndarray
        The model's prepared, compressed rows (its ``_data`` columns, one value per distinct
        row).
    weights : numpy.ndarray
        How many customers each row stands for.

    Returns
    -------
    Target
        The model's parameters, log-normal priors centred by ``default_priors``, no
        coefficients.
    """
    return Target(type(model).__name__, list(model.param_names),
                  model_likelihood(model, data, weights), default_priors(model, data, weights),
                  {}, lambda p: model._loglik(p, data), np.asarray(weights))


def build_pymc_model(model, data: list[np.ndarray], weights: np.ndarray, priors: dict | None,
                     start: tuple[np.ndarray, np.ndarray] | None = None, *,
                     target: Target | None = None):
    """The PyMC model of ``target`` (by default ``model``'s own, over ``data``)."""
    pm = _compat.pymc()
    import pytensor.tensor as pt

    target = plain_target(model, data, weights) if target is None else target
    priors = dict(priors or {})
    unknown = set(priors) - set(target.names)
    if unknown:
        raise ClvlabError(f"priors given for unknown parameters {sorted(unknown)}; "
                          f"{target.model_name} has {target.names}")
    with pm.Model() as pymc_model:
        variables = []
        for name in target.names:
            if name in priors:
                variables.append(priors[name](name))
            elif name in target.centres:
                variables.append(pm.LogNormal(name, mu=np.log(target.centres[name]),
                                              sigma=PRIOR_SIGMA))
            else:
                variables.append(pm.Normal(name, mu=0.0, sigma=target.sigmas[name]))
        value, op = compiled_graph(target.likelihood, pt.stack(variables),
                                   estimate=None if start is None else start[0])
        pm.Potential("log_likelihood", value)
    pymc_model.clvlab_likelihood_op = op  # its rejected_points go into the diagnostics
    pymc_model.clvlab_positive = target.positive  # which are sampled as log(theta)
    return pymc_model


def fit_bayes(model, data: list[np.ndarray], weights: np.ndarray, *, method: str, draws: int,
              tune: int, chains: int, random_seed: Any, priors: dict | None, progressbar: bool,
              nuts_sampler: str | None = None, target_accept: float = 0.8,
              start: tuple[np.ndarray, np.ndarray] | None = None, target: Target | None = None):
    """Sample (NUTS), approximate (ADVI) or maximise (MAP) the posterior; returns the stack's
    posterior container (ArviZ InferenceData, or an xarray DataTree under PyMC 6: posterior and
    sample stats; for MAP a single-draw posterior) and a diagnostics dict.

    ``start``, the maximum-likelihood estimate and its covariance, starts NUTS near the posterior:
    PyMC's NUTS also takes the covariance as its first mass matrix (see ``_nuts_start``); nutpie
    starts from the estimate, jittered per chain, and adapts its own mass matrix. ``target``:
    what to sample (a model with covariates); by default ``model``'s own likelihood of ``data``.

    Parameters
    ----------
    model : BaseModel
        The clvlab model whose likelihood is sampled.
    data : list of numpy.ndarray
        The model's prepared, compressed rows (its ``_data`` columns, one value per distinct
        row).
    weights : numpy.ndarray
        How many customers each row stands for.
    method : {"nuts", "advi", "map"}
        Sampling, variational approximation or the posterior mode.
    draws, tune, chains : int
        Draws kept and tuning steps per chain, and chains (NUTS; ADVI draws
        ``draws * chains`` from its approximation).
    random_seed : int, numpy.random.Generator or None
        Seed of the sampler (made one integer for every sampler).
    priors : dict or None
        {parameter: callable(name) -> PyMC random variable} replacing default priors.
    progressbar : bool
        Show the sampler's progress bar.
    nuts_sampler : {"pymc", "nutpie"}, optional
        None: :func:`default_nuts_sampler`.
    target_accept : float, default 0.8
        NUTS's target acceptance rate.
    start : tuple of (numpy.ndarray, numpy.ndarray), optional
        The maximum-likelihood estimate and its covariance.
    target : Target, optional
        What to sample; None: :func:`plain_target` of ``model``.

    Returns
    -------
    idata : arviz.InferenceData or xarray.DataTree
        The posterior and sample stats.
    diagnostics : dict
        Convergence diagnostics (r_hat, ESS, divergences; ADVI's and MAP's checks).

    Raises
    ------
    ClvlabError
        Where ``nuts_sampler`` is unknown or nutpie is not installed, or ``priors`` names an
        unknown parameter.
    """
    pm = _compat.pymc()

    sampler = default_nuts_sampler() if nuts_sampler is None else nuts_sampler
    if sampler not in NUTS_SAMPLERS:
        raise ClvlabError(f"nuts_sampler must be one of {list(NUTS_SAMPLERS)} or None (the "
                          f"default, {default_nuts_sampler()!r}), got {nuts_sampler!r}")
    if sampler == "nutpie" and find_spec("nutpie") is None:
        raise ClvlabError("nuts_sampler='nutpie' needs nutpie: pip install 'clvlab[nutpie]'")
    target = plain_target(model, data, weights) if target is None else target
    names = list(target.names)
    seed = _integer_seed(random_seed)
    if method == "map" and not priors:
        # the default priors have a closed form: no PyMC model to build, nothing to compile
        point, check = map_point(target, start)
        idata = _compat.idata_from_posterior({n: np.array([[point[n]]]) for n in names})
        return idata, {**diagnostics(idata, names, method), **check, "rejected_points": 0}
    pymc_model = build_pymc_model(model, data, weights, priors, start, target=target)
    with pymc_model, warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="QuadPotentialFullAdapt is an experimental")
        if method == "nuts" and sampler == "nutpie":
            idata = _sample_nutpie(pymc_model, names, start, draws=draws, tune=tune, chains=chains,
                                   seed=seed, target_accept=target_accept, progressbar=progressbar)
        elif method == "nuts":
            kwargs: dict[str, Any] = {"init": "jitter+adapt_full"}
            started = _nuts_start(pymc_model, names, start, chains, seed, target_accept)
            if started is not None:
                kwargs = {"step": started[0], "initvals": started[1]}
            else:
                kwargs["target_accept"] = target_accept
            idata = pm.sample(draws=draws, tune=tune, chains=chains, random_seed=seed,
                              cores=min(chains, os.cpu_count() or 1), progressbar=progressbar,
                              nuts_sampler="pymc", compute_convergence_checks=False,
                              return_inferencedata=True, **kwargs)
        elif method == "advi":
            # from the MLE where there is one: from the prior's centre, 30,000 steps left
            # Pareto/NBD's r at 1.7 on CDNOW (MLE 0.55, standard error 0.05)
            rule = AdviConvergence(ADVI_STEPS)
            approximation = pm.fit(n=ADVI_STEPS, method="advi", random_seed=seed,
                                   start=_value_start(pymc_model, names, start),
                                   progressbar=progressbar, callbacks=[rule])
            idata = approximation.sample(draws=draws * chains, random_seed=seed)
            check = rule.result(approximation.hist)
        elif method == "map":
            point = _compat.find_map(names, _value_start(pymc_model, names, start), seed, progressbar)
            point, check = polish_map(pymc_model, names, point)
            idata = _compat.idata_from_posterior({n: np.array([[point[n]]]) for n in names})
        else:  # pragma: no cover - checked by the caller
            raise ClvlabError(f"unknown method {method!r}")
    idata = _compat.keep_posterior_variables(idata, names)
    diag = diagnostics(idata, names, method)
    if method != "nuts":
        diag.update(check)
    if method == "nuts":
        diag["sampler"] = sampler
    diag["rejected_points"] = pymc_model.clvlab_likelihood_op.rejected_points
    return idata, diag


def _integer_seed(random_seed: Any) -> int | None:
    """One integer seed for every sampler (nutpie takes only an int); None stays None."""
    if random_seed is None or isinstance(random_seed, (int, np.integer)):
        return None if random_seed is None else int(random_seed)
    return int(np.random.default_rng(random_seed).integers(2**31))


def _sample_nutpie(pymc_model, names: Sequence[str], start, *, draws: int, tune: int,
                   chains: int, seed: int | None, target_accept: float, progressbar: bool):
    """nutpie on the numba-compiled model (the Op's numba implementation, no object mode).

    Chains start at the MLE (where there is one) jittered by U(-1, 1) on the log scale, which
    keeps r_hat's overdispersed starts. nutpie's low-rank mass matrix adaptation learns the
    correlations (r with alpha, s with beta) that a diagonal one misses: on CDNOW's Pareto/NBD,
    4 x (1000 + 1000), it took 7.5 leapfrog steps a draw against 22.5 for the diagonal, and half
    the time, at a higher ESS (1,235 against 729)."""
    import nutpie

    initial = None
    if start is not None and np.all(np.asarray(start[0])[pymc_model.clvlab_positive] > 0):
        initial = {name: float(value) for name, value in zip(names, start[0])}
    compiled = nutpie.compile_pymc_model(pymc_model, backend="numba", initial_points=initial)
    return nutpie.sample(compiled, draws=draws, tune=max(tune, 1), chains=chains,
                         cores=min(chains, os.cpu_count() or 1), seed=seed,
                         target_accept=target_accept, progress_bar=progressbar,
                         save_warmup=False, **_compat.nutpie_low_rank())


def _nuts_start(pymc_model, names: Sequence[str], start, chains: int, random_seed: Any,
                target_accept: float):
    """A NUTS step and per-chain starting points from the maximum-likelihood fit, or None.

    PyMC's default starts every chain at the prior's centre with an identity mass matrix. With
    100,000 customers the posterior sd of log(beta) is ~0.05 while the identity says 1, so the
    first adaptation window takes trees of hundreds of leapfrog steps, each a full likelihood
    evaluation. Starting from the MLE, with the asymptotic covariance of log(theta) as the
    initial mass matrix (weighted as 10 draws, so the sampler's own estimate soon replaces it),
    the trees are short from the first step. Chains start at independent draws from that normal
    with its spread doubled, overdispersed as r_hat needs. Only for the default transforms, log
    for the model's own parameters and none for covariate coefficients (a user's prior on
    another transform falls back to PyMC's initialisation).
    """
    pm = _compat.pymc()
    QuadPotentialFullAdapt = pm.step_methods.hmc.quadpotential.QuadPotentialFullAdapt

    if start is None or not _log_transformed(pymc_model, names):
        return None
    positive = _positive(pymc_model, names)
    estimate, covariance = (np.asarray(a, dtype=np.float64) for a in start)
    if not np.all(estimate[positive] > 0):
        return None
    scale = np.where(positive, estimate, 1.0)
    log_cov = covariance / np.outer(scale, scale)  # delta method: d log(theta) = d theta / theta
    if not np.all(np.isfinite(log_cov)):
        return None
    try:
        np.linalg.cholesky(log_cov)
    except np.linalg.LinAlgError:
        return None
    centre = _sampler_scale(estimate, positive)
    rng = np.random.default_rng(random_seed if isinstance(random_seed, (int, np.integer)) else None)
    points = rng.multivariate_normal(centre, 4.0 * log_cov, size=chains)
    value_names = _value_names(names, positive)
    initvals = [{n: float(v) for n, v in zip(value_names, point)} for point in points]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="QuadPotentialFullAdapt is an experimental")
        potential = QuadPotentialFullAdapt(len(names), centre, log_cov, 10,
                                           rng=np.random.default_rng(rng.integers(2**32)))
    return pm.NUTS(potential=potential, target_accept=target_accept), initvals


def _value_start(pymc_model, names: Sequence[str], start) -> dict[str, float] | None:
    """The MLE as a starting point on the sampler's scale (log theta; coefficients as they
    are), or None."""
    if start is None or not _log_transformed(pymc_model, names):
        return None
    positive = _positive(pymc_model, names)
    estimate = np.asarray(start[0], dtype=np.float64)
    if not np.all(estimate[positive] > 0):
        return None
    return {n: float(v) for n, v in zip(_value_names(names, positive),
                                        _sampler_scale(estimate, positive))}


def _positive(pymc_model, names: Sequence[str]) -> np.ndarray:
    """Which parameters are > 0, sampled as log(theta) (all of a model without covariates)."""
    return np.asarray(getattr(pymc_model, "clvlab_positive", np.ones(len(names), bool)), bool)


def _value_names(names: Sequence[str], positive: np.ndarray) -> list[str]:
    return [f"{n}_log__" if p else n for n, p in zip(names, positive)]


def _sampler_scale(values: np.ndarray, positive: np.ndarray) -> np.ndarray:
    return np.where(positive, np.log(np.where(positive, values, 1.0)), values)


def _log_transformed(pymc_model, names: Sequence[str]) -> bool:
    """Whether every parameter is sampled on the default scale: log(theta) for the model's own,
    coefficients as they are (a user's prior on another transform makes the MLE start
    inapplicable)."""
    value_names = [pymc_model.rvs_to_values[rv].name for rv in pymc_model.free_RVs]
    return value_names == _value_names(names, _positive(pymc_model, names))


class AdviConvergence:
    """ADVI's stopping rule, a PyMC callback ``(approx, losses, i)``: stop once the ELBO has
    stopped improving *and* the approximation's means have stopped moving; ``cap`` steps at most.

    Every ``window / 2`` steps (from ``2 window``) it compares the last ``window`` steps with the
    ``window`` before: the mean loss (the negative ELBO, a one-sample Monte Carlo estimate, so
    noisy) must not have fallen by more than ``loss_sigmas`` standard errors of the difference
    of the two means (sqrt((var1 + var2) / window)), and the mean of each parameter's
    approximate posterior mean (on the sampler's scale, recorded every ``window / 20`` steps)
    must have moved by less than ``mean_tolerance`` of its approximate posterior sd. Both at two
    checks in a row stop the run (StopIteration, which PyMC catches on both stacks).

    Why both: the loss alone stops too early. On CDNOW's Pareto/NBD the loss falls for 25,000
    steps, by less than the per-step noise for the last 15,000, and a rule on parameter changes
    alone stopped at 6,000 steps with r 0.51 against 0.55. With ``window`` 2,000 the rule
    stopped three seeds at 27,000-28,000 steps, within 0.08-0.15 approximate posterior sds of
    the 30,000-step means, as far as those means are from each other between seeds (about
    0.1 sd). ``window`` shrinks to a quarter of a smaller ``cap``.

    Parameters
    ----------
    cap : int
        Steps at most.
    window : int, default ADVI_WINDOW (2,000)
        Steps in each of the two windows compared (at most ``cap / 4``, at least 20).
    loss_sigmas : float, default 2.0
        The mean loss may still fall by less than this many standard errors.
    mean_tolerance : float, default 0.1
        The means may still move by less than this share of their approximate posterior sd.
    """

    def __init__(self, cap: int, window: int = ADVI_WINDOW, loss_sigmas: float = 2.0,
                 mean_tolerance: float = 0.1):
        self.cap = int(cap)
        self.window = max(min(int(window), self.cap // 4), 20)
        self.every, self.record_every = self.window // 2, max(self.window // 20, 1)
        self.loss_sigmas, self.mean_tolerance = loss_sigmas, mean_tolerance
        self.means: list[tuple[int, np.ndarray]] = []
        self.last: dict[str, Any] | None = None  # the latest check
        self.passes = 0
        self.stopped_at: int | None = None

    def __call__(self, approx, losses, i: int) -> None:
        if i % self.record_every == 0:
            self.means.append((i, np.asarray(approx.mean.eval(), dtype=np.float64).ravel()))
        if i % self.every or i < 2 * self.window or losses is None:
            return
        self.last = self.check(np.asarray(losses, dtype=np.float64), i,
                               np.asarray(approx.std.eval(), dtype=np.float64).ravel())
        self.passes = self.passes + 1 if self.last["settled"] else 0
        if self.passes >= 2:
            self.stopped_at = i
            raise StopIteration(f"ADVI converged after {i:,} steps")

    def check(self, losses: np.ndarray, i: int, sd: np.ndarray) -> dict[str, Any]:
        """Compare the last ``window`` steps with the ``window`` before (the rule above).

        Parameters
        ----------
        losses : numpy.ndarray
            The losses of every step so far.
        i : int
            The current step.
        sd : numpy.ndarray
            The approximate posterior sd of each parameter, on the sampler's scale.

        Returns
        -------
        dict
            ``settled`` (both conditions hold), ``finite``, and with finite losses ``final_loss``,
            ``loss_drop``, ``loss_noise`` and ``mean_change_sd``.
        """
        w = self.window
        last, before = losses[i - w:i], losses[i - 2 * w:i - w]
        if len(last) < w or not np.all(np.isfinite(losses[i - 2 * w:i])):
            return {"settled": False, "finite": False}
        drop = float(before.mean() - last.mean())
        noise = float(np.sqrt((last.var() + before.var()) / w))
        steps = np.array([step for step, _ in self.means])
        values = np.array([mean for _, mean in self.means])
        recent, earlier = values[(steps > i - w) & (steps <= i)], values[(steps > i - 2 * w) & (steps <= i - w)]
        moved = float(np.max(np.abs(recent.mean(axis=0) - earlier.mean(axis=0)) / sd)) \
            if len(recent) and len(earlier) else np.inf
        return {"settled": drop < self.loss_sigmas * noise and moved < self.mean_tolerance,
                "finite": True, "final_loss": float(last.mean()), "loss_drop": drop,
                "loss_noise": noise, "mean_change_sd": moved}

    def result(self, history: Sequence[float]) -> dict[str, Any]:
        """The diagnostics: steps run, the cap, whether it converged, and the last check.

        Parameters
        ----------
        history : sequence of float
            The run's losses (``approximation.hist``).

        Returns
        -------
        dict
            ``steps``, ``max_steps``, ``window``, ``stopped_early``, ``converged``, the last check's
            values and, where it did not converge, ``problems``.
        """
        steps = len(history)
        out: dict[str, Any] = {"steps": steps, "max_steps": self.cap, "window": self.window,
                               "stopped_early": self.stopped_at is not None}
        last = self.last or {}
        out.update({k: v for k, v in last.items() if k not in ("settled", "finite")})
        if self.stopped_at is not None:
            return {**out, "converged": True}
        if not np.all(np.isfinite(np.asarray(history, dtype=np.float64)[-self.window:])) \
                or last.get("finite") is False:
            return {**out, "converged": False,
                    "problems": ["the ELBO is not finite at the end of the run"]}
        if last.get("settled"):  # settled at the cap's last check (once, not twice in a row)
            return {**out, "converged": True}
        if not last:
            why = f"too few steps ({steps:,}) to check convergence (windows of {self.window:,})"
        else:
            why = (f"the ELBO was still improving or the means still moving after the cap of "
                   f"{steps:,} steps (the loss fell by {last['loss_drop']:.4g} over the last "
                   f"{self.window:,} steps, noise {last['loss_noise']:.2g}; the means moved by "
                   f"{last['mean_change_sd']:.2g} of their sd)")
        return {**out, "converged": False, "problems": [why]}


def advi_check(history: Sequence[float]) -> dict[str, Any]:
    """Whether ADVI's loss (the negative ELBO) had settled when its fixed number of steps ran out.

    ADVI stops after ``ADVI_STEPS`` whatever the loss is doing, so nothing says it converged
    unless this does: the mean loss of the last tenth of the steps must not be below the tenth
    before it by more than three standard errors of the difference (the loss is a one-sample
    Monte Carlo estimate, so it is noisy) or 0.01 % of its size."""
    loss = np.asarray(history, dtype=np.float64)
    window = max(len(loss) // 10, 1)
    out: dict[str, Any] = {"steps": len(loss)}
    if len(loss) < 2 * window or not np.all(np.isfinite(loss[-2 * window:])):
        return {**out, "converged": False,
                "problems": ["the ELBO is not finite at the end of the run"]}
    last, before = loss[-window:], loss[-2 * window:-window]
    drop = float(before.mean() - last.mean())
    noise = float(np.sqrt((last.var() + before.var()) / window))
    out.update({"final_loss": float(last.mean()), "loss_drop_last_tenth": drop})
    if drop > 3 * noise and drop > 1e-4 * abs(last.mean()):
        return {**out, "converged": False,
                "problems": [f"the ELBO was still improving after {len(loss):,} steps (the loss "
                             f"fell by {drop:.4g} over the last tenth, noise {noise:.2g})"]}
    return {**out, "converged": True}


def polish_map(pymc_model, names: Sequence[str], point: dict[str, float],
               max_steps: int = 25) -> tuple[dict[str, float], dict[str, Any]]:
    """Newton steps from a MAP point of ``pymc_model`` (after ``find_MAP``, for priors given by
    the user) until one more step would gain less than ``MAP_TOLERANCE``; returns the point and
    the check (see ``newton_polish``). The log-posterior and its gradient are compiled once."""
    if not _log_transformed(pymc_model, names):
        return point, {"converged": None,
                       "problems": ["not checked: a prior is on another scale than log(theta)"]}
    logp, dlogp = pymc_model.compile_logp(), pymc_model.compile_dlogp()
    base = pymc_model.initial_point()
    positive = _positive(pymc_model, names)
    value_names = _value_names(names, positive)

    def log_posterior(x: np.ndarray) -> tuple[float, np.ndarray]:
        values = dict(base)
        values.update({n: np.asarray(v) for n, v in zip(value_names, x)})
        return float(logp(values)), np.asarray(dlogp(values), dtype=np.float64)

    x = _sampler_scale(np.array([point[n] for n in names], dtype=np.float64), positive)
    x, check = newton_polish(log_posterior, x, max_steps)
    return {n: float(v) for n, v in zip(names, _natural_scale(x, positive))}, check


def _natural_scale(x: np.ndarray, positive: np.ndarray) -> np.ndarray:
    return np.where(positive, np.exp(np.where(positive, x, 0.0)), x)


def default_log_posterior(target: Target) -> Callable[[np.ndarray], tuple[float, np.ndarray]]:
    """The log-posterior under the default priors, and its gradient, on the sampler's scale
    (log(theta) for the model's own parameters, coefficients as they are), as PyMC computes it
    (Jacobian of the log transform included): log(theta) of a LogNormal(log(centre), sigma) is
    Normal(log(centre), sigma), so the priors are Normal log-densities of x, plus the exact
    log-likelihood (``target.likelihood.python_total``) and its gradient by the chain rule.
    Nothing is compiled: MAP needs no PyMC model unless the user gives priors.

    Parameters
    ----------
    target : Target
        What is sampled.

    Returns
    -------
    callable
        x -> (log-posterior, its gradient), x on the sampler's scale; (-inf, zeros) where it is
        not finite.
    """
    positive = target.positive
    mu = np.array([np.log(target.centres[n]) if p else 0.0 for n, p in zip(target.names, positive)])
    sd = np.array([PRIOR_SIGMA if p else target.sigmas[n] for n, p in zip(target.names, positive)])
    constant = float(np.sum(-np.log(sd) - 0.5 * np.log(2 * np.pi)))
    total = target.likelihood.python_total

    def log_posterior(x: np.ndarray) -> tuple[float, np.ndarray]:
        x = np.asarray(x, dtype=np.float64)
        theta = _natural_scale(x, positive)
        z = (x - mu) / sd
        prior, prior_gradient = constant - 0.5 * float(z @ z), -z / sd
        try:
            with np.errstate(all="ignore"):
                value, gradient = total(theta)
        except ArithmeticError:
            return -np.inf, np.zeros_like(x)
        gradient = np.asarray(gradient, dtype=np.float64)
        out = float(value) + prior, np.where(positive, theta * gradient, gradient) + prior_gradient
        if not (np.isfinite(out[0]) and np.all(np.isfinite(out[1]))):
            return -np.inf, np.zeros_like(x)
        return out

    return log_posterior


def map_point(target: Target, start: tuple[np.ndarray, np.ndarray] | None = None,
              max_steps: int = 25) -> tuple[dict[str, float], dict[str, Any]]:
    """The posterior mode under the default priors: L-BFGS-B (as ``pm.find_MAP``) on
    ``default_log_posterior`` from the maximum-likelihood estimate (or the priors' centres),
    then ``newton_polish``. Equal to ``find_MAP`` + ``polish_map`` to their tolerance, without
    building or compiling a PyMC model (2-5 s of PyTensor compilation against 0.1 s here).

    Parameters
    ----------
    target : Target
        What is maximised.
    start : tuple of (numpy.ndarray, numpy.ndarray), optional
        The maximum-likelihood estimate and its covariance (only the estimate is used, where
        the log-posterior is finite there).
    max_steps : int, default 25
        Newton steps at most.

    Returns
    -------
    point : dict of str to float
        The mode, by parameter name, on the natural scale.
    check : dict
        ``newton_polish``'s check.
    """
    from scipy import optimize

    positive = target.positive
    function = default_log_posterior(target)
    x0 = np.array([np.log(target.centres[n]) if p else 0.0
                   for n, p in zip(target.names, positive)])
    if start is not None:
        estimate = np.asarray(start[0], dtype=np.float64)
        if np.all(np.isfinite(estimate)) and np.all(estimate[positive] > 0) \
                and np.isfinite(function(_sampler_scale(estimate, positive))[0]):
            x0 = _sampler_scale(estimate, positive)

    def negative(x):
        value, gradient = function(x)
        return (-value, -gradient) if np.isfinite(value) else (np.inf, np.zeros_like(x))

    found = optimize.minimize(negative, x0, jac=True, method="L-BFGS-B")
    x = found.x if np.isfinite(found.fun) else x0
    x, check = newton_polish(function, x, max_steps)
    return {n: float(v) for n, v in zip(target.names, _natural_scale(x, positive))}, check


def newton_polish(log_posterior: Callable[[np.ndarray], tuple[float, np.ndarray]], x: np.ndarray,
                  max_steps: int = 25) -> tuple[np.ndarray, dict[str, Any]]:
    """Newton steps on ``log_posterior`` (x -> (value, gradient), on the sampler's scale) until
    one more step would gain less than ``MAP_TOLERANCE``; returns x and the check.

    L-BFGS (``find_MAP``'s, or ``map_point``'s) stops on a small step as readily as on a small
    gradient: on CDNOW it stopped 0.1-0.2 nats short of the mode. The curvature comes from
    central differences of the exact gradient; a curvature that is not negative definite means
    a saddle or a ridge, which is reported, never called converged.

    Parameters
    ----------
    log_posterior : callable
        x -> (value, gradient), on the sampler's scale.
    x : numpy.ndarray
        The starting point.
    max_steps : int, default 25
        Newton steps at most.

    Returns
    -------
    x : numpy.ndarray
        The point reached.
    check : dict
        ``converged``, ``newton_steps``, ``newton_gain``, ``gradient_norm`` and, where it did not
        converge, ``problems``.
    """
    x = np.asarray(x, dtype=np.float64)

    def information(x: np.ndarray) -> np.ndarray:
        h = 1e-5
        columns = [(log_posterior(x - h * e)[1] - log_posterior(x + h * e)[1]) / (2 * h)
                   for e in np.eye(len(x))]
        matrix = np.column_stack(columns).astype(np.float64)
        return (matrix + matrix.T) / 2

    check: dict[str, Any] = {"converged": False, "newton_steps": 0}
    for step in range(max_steps + 1):
        current, g = log_posterior(x)
        try:
            lower = np.linalg.cholesky(information(x))
        except np.linalg.LinAlgError:
            check["problems"] = ["the log-posterior is not concave at the MAP point (a saddle or "
                                 "a ridge: some parameter is not identified)"]
            break
        direction = np.linalg.solve(lower.T, np.linalg.solve(lower, g))
        gain = float(g @ direction / 2)
        check.update(newton_gain=gain, gradient_norm=float(np.linalg.norm(g)), newton_steps=step)
        if np.isfinite(gain) and gain < MAP_TOLERANCE:
            check["converged"] = True
            break
        if step == max_steps or not np.isfinite(gain):
            check["problems"] = [f"no mode found: after {step} Newton steps one more would still "
                                 f"gain {gain:.3g} in the log-posterior"]
            break
        length = 1.0
        while length > 1e-6 and not log_posterior(x + length * direction)[0] > current:
            length /= 2
        x = x + length * direction
    return x, check


def diagnostics(idata, names: Sequence[str], method: str) -> dict[str, Any]:
    """NUTS's convergence diagnostics (r_hat, ESS, divergences); for ADVI and MAP the checks
    are made where the fit is (``advi_check``, ``polish_map``)."""
    out: dict[str, Any] = {"method": method}
    if method != "nuts":
        return out
    out["converged"] = True
    # unrounded (az.summary rounds r_hat to two decimals, which turns 1.005 into 1.01)
    r_hat = _compat.rhat(idata, names)
    ess_bulk, ess_tail = _compat.ess(idata, names, "bulk"), _compat.ess(idata, names, "tail")
    stats = idata.sample_stats
    divergences = int(stats["diverging"].sum()) if "diverging" in stats else 0
    out.update({"divergences": divergences,
                "max_r_hat": max(r_hat.values()),
                "min_ess_bulk": min(ess_bulk.values()),
                "min_ess_tail": min(ess_tail.values()),
                "chains": int(idata.posterior.sizes["chain"]),
                "draws": int(idata.posterior.sizes["draw"])})
    problems = []
    if divergences:
        problems.append(f"{divergences} divergent transitions")
    if out["chains"] > 1 and not out["max_r_hat"] < 1.01:
        problems.append(f"r_hat up to {out['max_r_hat']:.3f} (want < 1.01)")
    if not out["min_ess_bulk"] >= 400:
        problems.append(f"bulk ESS down to {out['min_ess_bulk']:.0f} (want > 400)")
    if problems:
        out["converged"] = False
        out["problems"] = problems
    return out


def add_log_likelihood(idata, target: Target, max_values: int = 20_000_000,
                       max_calls: int = 25_000) -> None:
    """The log-likelihood of each distinct row at each draw (ArviZ's log_likelihood group), with
    the rows' weights (customers per row) in constant_data; skipped when it would exceed
    ``max_values`` numbers or ``max_calls`` Python evaluations (``target.row_calls`` per draw:
    one for every model since issue 30's per-row kernels, which evaluate all rows at their own
    parameters in one call)."""
    import xarray as xr

    weights = target.weights
    posterior = idata.posterior
    chains, draws = posterior.sizes["chain"], posterior.sizes["draw"]
    looped = target.row_calls > 1  # a model without covariates evaluates its rows at once
    if (chains * draws * len(weights) > max_values or chains * draws < 2
            or (looped and chains * draws * target.row_calls > max_calls)):
        return
    samples = np.stack([posterior[n].to_numpy() for n in target.names], axis=-1)
    values = np.empty((chains, draws, len(weights)))
    for c in range(chains):
        for d in range(draws):
            values[c, d] = target.rows(samples[c, d])[0]
    _compat.add_groups(
        idata, log_likelihood=xr.Dataset({"rfm": (("chain", "draw", "row"), values)},
                                  coords={"chain": posterior["chain"], "draw": posterior["draw"]}),
        constant_data=xr.Dataset({"row_weight": (("row",), np.asarray(weights))}))


_REMEDIES = {
    "nuts": "Try more tuning steps (tune=2000), more draws, or tighter priors; do not trust the "
            "intervals until they are clean.",
    "advi": "ADVI's approximation is not yet stable: use method='nuts' (exact), or tighter priors.",
    "map": "Do not use this point as an estimate: try method='mle' (with restarts) or 'nuts'.",
}


def warn_if_poor(name: str, diag: dict[str, Any]) -> None:
    if diag.get("problems"):
        what = "the sampler's diagnostics are poor" if diag.get("method") == "nuts" else \
            f"the {diag.get('method', '').upper()} fit is not converged"
        warn(f"{name}: {what}: {'; '.join(diag['problems'])}. "
                      f"{_REMEDIES.get(diag.get('method'), '')}", ClvlabWarning)
