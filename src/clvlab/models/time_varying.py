"""Time-varying covariates: fitting the Pareto/NBD and the BG/NBD along covariate paths.

The model (Bachmann, Meierer & Naef 2021, "The Role of Time-Varying Contextual Factors in Latent
Attrition Models for Customer Base Analysis", Marketing Science): each customer's purchase rate
is ``lambda_i exp(x(t)' g_purchase)`` and, in the Pareto/NBD, the dropout rate
``mu_i exp(x(t)' g_dropout)``, with x(t) piecewise constant over calendar periods (the
customer's *path*, ``clvlab.covariate_paths``) and gamma heterogeneity on both baselines. Static
covariates go alongside as constant paths, which is exactly clvlab's static-covariate model
(alpha_i = alpha exp(-x'g)). The BG/NBD takes time-varying purchase covariates (it is the plain
BG/NBD in the purchase clock A(t)); its dropout covariates stay static (``tv_bgnbd``).

The likelihoods (``tv_pareto_kernel``, ``tv_bgnbd``) return each customer's log-likelihood and
its exact derivatives in the customer's own parameters and in every segment's linear predictor
eta; here the chain rule takes them to the coefficients, d LL / d g = X_seg' d eta, and the
optimiser sees each covariate divided by its standard deviation, as for static covariates.
Customers are evaluated in parts on threads (the kernels release the GIL).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pandas as pd

from clvlab.core.errors import ClvlabError, did_you_mean, shown, warn
from clvlab.models.covariate_encoding import CovariateEncoder
from clvlab.models.covariates import (PROCESS_SETTINGS, CovariateDesign, design_of,
                                      fit_scaled)
from clvlab.models.time_varying_segments import Segments, path_segments

__all__ = ["TIME_VARYING_MODELS", "is_time_varying", "design_for_paths", "segments_for",
           "PathLikelihood", "fit_time_varying", "path_log_likelihood",
           "refuse_along_paths"]

#: the model classes that take covariate paths, and the processes a path may move
TIME_VARYING_MODELS = {"ParetoNBD": ("purchase", "dropout"), "BetaGeo": ("purchase",)}
#: from how many customers a likelihood evaluation runs in parts on threads
PARALLEL_FROM_CUSTOMERS = 20_000
THREADS = max(1, min(4, os.cpu_count() or 1))


def is_time_varying(model) -> bool:
    design = getattr(model, "covariates_", None)
    return bool(design is not None and getattr(design, "time_varying", ()))


def refuse_along_paths(model, what: str) -> None:
    """The cohort-level predictions (totals with intervals, simulated value distributions, fan
    charts) are not taken along paths yet: say so, and what does work, rather than let the
    model ask for covariate columns the table was never meant to have."""
    if is_time_varying(model):
        raise ClvlabError(
            f"{what} is not available yet for a model fitted along covariate paths "
            f"({type(model).__name__} with time-varying {list(model.covariates_.time_varying)}): "
            "each customer's future would have to be drawn along their path. The per-customer "
            "predictions take covariate_paths= (expected_purchases, prediction_interval, "
            "purchase_pmf, customer_lifetime_value), and their sum is the expected total; see "
            "the limits of time-varying covariates in docs/guide/covariates.md")


def _check_model(model) -> tuple[str, ...]:
    name = type(model).__name__
    if name not in TIME_VARYING_MODELS:
        raise ClvlabError(
            f"{name} does not take time-varying covariates (covariate_paths); the models that do "
            f"are {sorted(TIME_VARYING_MODELS)}. Static covariates from the RFM table work in "
            "every model.")
    return TIME_VARYING_MODELS[name]


def design_for_paths(model, rfm: pd.DataFrame, paths) -> CovariateDesign:
    """The covariate encoding of a fit along ``paths``: learned on the calibration pieces (a
    path column) and the RFM table (a static column); ``time_varying`` names the path columns."""
    varying_processes = _check_model(model)
    name = type(model).__name__
    links = model.covariate_links()
    requested = {process: list(getattr(model, setting) or [])
                 for setting, process in PROCESS_SETTINGS.items() if getattr(model, setting, None)}
    offered = {process for process, _ in links.values()}
    for process in requested:
        if process not in offered:
            raise ClvlabError(f"{name} has no {process} process to move")
    every = list(dict.fromkeys(c for columns in requested.values() for c in columns))
    if not every:
        raise ClvlabError(
            f"{name} was given covariate_paths but no covariates: name the columns to use, e.g. "
            f"{name}(purchase_covariates={list(paths.covariates)[:3]})")
    nowhere = [c for c in every if c not in paths.covariates and c not in rfm.columns]
    if nowhere:  # a misspelt name first: the advice below would not help
        raise ClvlabError(
            f"{name}: the covariates {nowhere} are neither in the covariate paths (they hold "
            f"{list(paths.covariates)}) nor columns of the RFM table"
            + did_you_mean(nowhere, [*paths.covariates, *map(str, rfm.columns)]))
    in_paths = [c for c in every if c in paths.covariates]
    if not in_paths:
        raise ClvlabError(f"{name}: none of the covariates {every} is in the covariate paths "
                          f"(they hold {list(paths.covariates)}); without one the fit is the "
                          "static-covariate fit: drop covariate_paths, or name a column of "
                          "the paths")
    calibration = paths.table.loc[_calibration_rows(paths, rfm), in_paths].reset_index(drop=True)
    static = [c for c in every if c not in paths.covariates]
    # a path column is learned over the calibration pieces, a static column over customers
    along = CovariateEncoder.fit(calibration, in_paths, model=name)
    fixed = CovariateEncoder.fit(rfm, static, model=name) if static else None
    encoder = CovariateEncoder(columns=every, levels={}, scales={}, seen={})
    for column in every:
        part = along if column in in_paths else fixed
        if column in part.levels:
            encoder.levels[column] = part.levels[column]
        for encoded in part.names_for([column]):
            encoder.scales[encoded] = part.scales[encoded]
        if column in part.seen:
            encoder.seen[column] = part.seen[column]
    for process, columns in requested.items():
        varying = [c for c in columns if c in paths.covariates and c not in _constant_columns(paths, [c])]
        if varying and process not in varying_processes:
            raise ClvlabError(
                f"{name}: the {process} covariates {varying} vary over time within customers, but "
                f"{name} takes time-varying covariates only in {list(varying_processes)}: dropout "
                "in the BG/NBD happens at purchases, and a dropout probability that changes "
                "with each purchase's covariates has no closed-form Beta mixture. Use ParetoNBD, "
                "or give the BG/NBD static dropout covariates (constant along each path).")
    design = design_of(model, encoder, requested, links)
    design.time_varying = tuple(in_paths)
    return design


def _calibration_rows(paths, rfm) -> np.ndarray:
    """The pieces before the calibration end (their start lies before the customer's T)."""
    table = paths.table
    ages = pd.Series(rfm["T"].to_numpy(np.float64), index=rfm.index)
    T = ages.reindex(table["customer"]).to_numpy()
    return np.asarray(table["start"].to_numpy(np.float64) < T, bool) & np.isfinite(T)


def _constant_columns(paths, columns: list[str]) -> list[str]:
    """The columns constant along every customer's path."""
    table = paths.table
    out = []
    for column in columns:
        distinct = table.groupby("customer", sort=False)[column].nunique(dropna=False)
        if (distinct <= 1).all():
            out.append(column)
    return out


def segments_for(model, rfm: pd.DataFrame, paths, *, calibration_only: bool) -> Segments:
    """The model's encoded segments of the RFM table's customers (``time_varying_segments``)."""
    design: CovariateDesign = model.covariates_
    _check_paths(model, rfm, paths)
    # the columns the fit took from its paths come from the paths, the others from the table
    # (design_for_paths sets time_varying to the paths' columns before a fit reads them here)
    segments = path_segments(paths, rfm, list(design.encoder.columns), design.encoder,
                             model=type(model).__name__, varying=list(design.time_varying))
    return segments.calibration_part() if calibration_only else segments


def _check_paths(model, rfm, paths) -> None:
    name = type(model).__name__
    unit = getattr(model, "time_unit_", None) or (rfm.attrs.get("clvlab", {}) or {}).get("time_unit")
    if unit is not None and paths.time_unit != unit:
        raise ClvlabError(f"{name}: the covariate paths are in the time unit {paths.time_unit!r} "
                          f"but the model/table in {unit!r}; build the paths from the same RFM table")


@dataclass
class PathLikelihood:
    """The weighted log-likelihood along paths as a function of (own parameters, internal
    coefficients): ``total`` for the optimiser, ``rows`` per customer."""

    model_name: str
    k: int                     # own parameters
    x: np.ndarray
    t_x: np.ndarray
    T: np.ndarray
    weights: np.ndarray
    segments: Segments
    scaled: np.ndarray         # segment covariates / scales (n_seg, encoded)
    maps: dict                 # process -> (encoded x coefficients) map
    static_links: list         # (own parameter index, sign) moved by static dropout covariates

    def _etas(self, coefficients):
        eta = {}
        for process in ("purchase", "dropout"):
            if process in self.maps and self.maps[process].shape[1]:
                eta[process] = self.scaled @ (self.maps[process] @ coefficients)
            else:
                eta[process] = np.zeros(len(self.segments.seg_end))
        return eta

    def _own(self, base, coefficients):
        """Per-customer own parameters (N x k); a BG/NBD's a and b move with its static
        dropout covariates (their value on the first segment)."""
        own = np.repeat(base[None, :], len(self.x), axis=0)
        multipliers = np.ones_like(own)
        if self.static_links:
            first = self.scaled[self.segments.offsets[:-1]]
            predictor = first @ (self.maps["dropout"] @ coefficients)
            for j, sign in self.static_links:
                multipliers[:, j] = np.exp(sign * predictor)
        return own * multipliers, multipliers

    def _kernel(self, own, eta):
        from clvlab.models import tv_bgnbd, tv_pareto_kernel

        seg = self.segments
        n = len(self.x)
        parts = [(0, n)]
        if n >= PARALLEL_FROM_CUSTOMERS and THREADS > 1:
            bounds = np.linspace(0, n, THREADS * 2 + 1).astype(int)
            parts = [(lo, hi) for lo, hi in zip(bounds[:-1], bounds[1:]) if hi > lo]

        def run(part):
            lo, hi = part
            s0, s1 = seg.offsets[lo], seg.offsets[hi]
            offsets = seg.offsets[lo:hi + 1] - s0
            args = [np.ascontiguousarray(own[lo:hi, j]) for j in range(self.k)]
            common = (self.x[lo:hi], self.t_x[lo:hi], self.T[lo:hi], offsets,
                      seg.seg_end[s0:s1], eta["purchase"][s0:s1])
            if self.model_name == "ParetoNBD":
                return tv_pareto_kernel.pnbd_tv_loglik(*args, *common, eta["dropout"][s0:s1],
                                                       seg.counts[s0:s1])
            ll, d_own, d_p = tv_bgnbd.bgnbd_tv_loglik(*args, *common, seg.counts[s0:s1])
            return ll, d_own, d_p, np.zeros_like(d_p)

        if len(parts) == 1:
            results = [run(parts[0])]
        else:
            with ThreadPoolExecutor(len(parts)) as pool:
                results = list(pool.map(run, parts))
        return tuple(np.concatenate([r[i] for r in results]) for i in range(4))

    def evaluate(self, params: np.ndarray, per_customer: bool = False):
        base, coefficients = params[:self.k], params[self.k:]
        eta = self._etas(coefficients)
        own, multipliers = self._own(base, coefficients)
        ll, d_own, d_p, d_d = self._kernel(own, eta)
        d_base_rows = d_own * multipliers
        if per_customer:
            g = np.zeros((len(self.x), len(params)))
            g[:, :self.k] = d_base_rows
            for process, d_eta in (("purchase", d_p), ("dropout", d_d)):
                if process in self.maps:
                    per = np.add.reduceat(d_eta[:, None] * self.scaled, self.segments.offsets[:-1],
                                          axis=0)
                    g[:, self.k:] += per @ self.maps[process]
            g[:, self.k:] += self._static_rows(d_own, own)
            return ll, g
        w = self.weights
        w_seg = w[self.segments.customer_of_segment()]
        gradient = np.zeros(len(params))
        gradient[:self.k] = w @ d_base_rows
        for process, d_eta in (("purchase", d_p), ("dropout", d_d)):
            if process in self.maps:
                gradient[self.k:] += self.maps[process].T @ (self.scaled.T @ (w_seg * d_eta))
        gradient[self.k:] += w @ self._static_rows(d_own, own)
        return float(w @ ll), gradient

    def _static_rows(self, d_own, own) -> np.ndarray:
        """Per customer, the derivative in the coefficients through the static links."""
        m = next(iter(self.maps.values())).shape[1] if self.maps else 0
        out = np.zeros((len(self.x), m))
        if self.static_links:
            first = self.scaled[self.segments.offsets[:-1]] @ self.maps["dropout"]
            for j, sign in self.static_links:
                out += (sign * d_own[:, j] * own[:, j])[:, None] * first
        return out


def path_likelihood(model, design: CovariateDesign, rfm: pd.DataFrame, segments: Segments,
                    weights: np.ndarray, scales: np.ndarray) -> PathLikelihood:
    name = type(model).__name__
    encoded_scales = np.array([design.encoder.scales[n] for n in design.encoder.names])
    scaled = segments.covariates / encoded_scales
    maps = {p: m for p, m in design.maps().items()}
    static_links = []
    if name == "BetaGeo" and "dropout" in maps:
        for j, param in enumerate(model.param_names):
            process, sign = design.links.get(param, (None, 0))
            if process == "dropout":
                static_links.append((j, sign))
    return PathLikelihood(name, len(model.param_names),
                          rfm["frequency"].to_numpy(np.float64),
                          rfm["recency"].to_numpy(np.float64), rfm["T"].to_numpy(np.float64),
                          weights, segments, scaled, maps, static_links)


def counted_segments(model, rfm: pd.DataFrame, paths) -> Segments:
    """The calibration segments with the repeat purchases inside each, which the likelihood
    needs (the covariates in force at each purchase), checked against the table's frequency."""
    name = type(model).__name__
    segments = segments_for(model, rfm, paths, calibration_only=True)
    if not segments.has_counts:
        raise ClvlabError(
            f"{name}: the covariate paths carry no repeat purchases, which the likelihood needs "
            "(the covariates in force at each purchase): build them with the transaction log, "
            "clvlab.covariate_paths(panel, rfm, transactions=log)")
    counted = np.add.reduceat(segments.counts, segments.offsets[:-1])
    frequency = rfm["frequency"].to_numpy(np.float64)
    if not np.allclose(counted, frequency):
        position = int(np.flatnonzero(~np.isclose(counted, frequency))[0])
        raise ClvlabError(
            f"{name}: customer {shown(rfm.index[position])} has frequency {frequency[position]:g} in the "
            f"RFM table but {counted[position]:g} repeat purchases on their covariate path: the "
            "paths were built from another log or window")
    return segments


def path_log_likelihood(model, rfm: pd.DataFrame, paths) -> np.ndarray:
    """Each customer's log-likelihood at the fitted parameters along ``paths`` (a holdout's
    paths with its transactions, or the calibration's)."""
    segments = counted_segments(model, rfm, paths)
    design = model.covariates_
    likelihood = path_likelihood(model, design, rfm, segments, np.ones(len(rfm)),
                                 design.scales())
    k = len(model.param_names)
    params = model.params_.to_numpy(np.float64)
    # the coefficients on the user's scale times the scales: the likelihood's internal scale
    return likelihood.evaluate(np.concatenate([params[:k], params[k:] * design.scales()]),
                               per_customer=True)[0]


def fit_time_varying(model, rfm: pd.DataFrame, paths, weights: np.ndarray | None):
    """Maximum likelihood along the paths. Returns (FitResult on the user's scale, design,
    PathLikelihood on the internal scale)."""
    from clvlab.data.validation import validate_rfm

    validate_rfm(rfm)
    design = design_for_paths(model, rfm, paths)
    model.covariates_ = design  # segments_for reads the encoder
    segments = counted_segments(model, rfm, paths)
    weights = np.ones(len(rfm)) if weights is None else np.asarray(weights, np.float64)
    scales = design.scales()
    likelihood = path_likelihood(model, design, rfm, segments, weights, scales)
    result = fit_scaled(model, design, scales, _plain_start(model, rfm, weights),
                        lambda p: likelihood.evaluate(p, per_customer=True), weights,
                        likelihood.evaluate)
    return result, design, likelihood


#: a coefficient that moves a rate by more than exp(this) between the covariate's values seen in
#: the fit has run off towards a boundary (no interior maximum in that direction)
UNBOUNDED_LOG_RATIO = 15.0


def warn_if_unbounded(model, likelihood: PathLikelihood) -> None:
    """Warn when a coefficient ran off towards infinity: the likelihood keeps rising in its
    direction (e.g. no customer drops out in the high season, so the dropout rate there is
    driven to 0), the optimiser stops where the slope fades, and the estimate and its standard
    error mean nothing. A penalty (``covariate_penalty``) gives it an interior maximum."""
    from clvlab.core.errors import ClvlabWarning

    design = model.covariates_
    k = len(model.param_names)
    values = model.params_.to_numpy()[k:]
    covariates = likelihood.segments.covariates
    spread = covariates.max(axis=0) - covariates.min(axis=0) if len(covariates) else 0 * values
    reach = {}
    for process, matrix in design.maps().items():
        moved = np.abs(matrix * values[None, :]) * spread[:, None]
        for j, name in enumerate(design.coefficient_names):
            if moved[:, j].max(initial=0.0) > UNBOUNDED_LOG_RATIO:
                reach[name] = float(values[j])
    if reach:
        names = ", ".join(f"{n} = {v:.3g} (standard error {model.standard_errors_[n]:.3g})"
                          for n, v in reach.items())
        warn(
            f"{type(model).__name__}: the estimate ran off towards a boundary for {names}: it moves "
            f"a rate by more than exp({UNBOUNDED_LOG_RATIO:g}) between the covariate's values, "
            "because the log-likelihood keeps rising in that direction (e.g. no dropout is seen "
            "where the covariate is on). The data do not identify that coefficient; the other "
            "estimates are those of the limit. Give it an interior maximum with covariate_penalty "
            "(e.g. covariate_penalty=0.1), or drop the covariate from that process.",
            ClvlabWarning)


def _plain_start(model, rfm: pd.DataFrame, weights: np.ndarray) -> np.ndarray:
    """The no-covariate fit's estimates: a start near the optimum's baseline."""
    from sklearn.base import clone

    plain = clone(model).set_params(purchase_covariates=None, dropout_covariates=None,
                                    shared_covariates=None, method="mle", start_params=None)
    try:
        plain.fit(rfm[["frequency", "recency", "T"]].copy(), weights=weights,
                  time_unit=(rfm.attrs.get("clvlab", {}) or {}).get("time_unit"))
        return plain.params_[list(model.param_names)].to_numpy(np.float64)
    except ClvlabError:
        return np.asarray(model._start(model._data(rfm), weights), np.float64)


def sampler_target(model, design: CovariateDesign, likelihood: PathLikelihood):
    """What a Bayesian fit along paths samples (``clvlab.bayes.Target``): the compiled
    likelihood (``time_varying_total.path_total``) with the exact Python total as fallback,
    the own parameters' priors and the coefficients' Normal(0, 1 / sd) priors. The sampler
    works with the coefficients on the user's scale."""
    import dataclasses

    from clvlab.inference import bayes
    from clvlab.inference.likelihood_op import CompiledLikelihood
    from clvlab.models.time_varying_total import kernel_rows, path_total

    user = dataclasses.replace(likelihood, scaled=np.ascontiguousarray(likelihood.segments.covariates,
                                                                       dtype=np.float64))
    k = len(model.param_names)
    names = [*model.param_names, *design.coefficient_names]
    compiled = CompiledLikelihood(
        path_total, kernel_rows(user), user.evaluate, len(names), k,
        sources=("clvlab.models.time_varying_total", "clvlab.models.tv_pareto_kernel",
                 "clvlab.models.tv_bgnbd"),
        name="clvlab_models_time_varying_total_path_total")
    data = [user.x, user.t_x, user.T]
    return bayes.Target(type(model).__name__, names, compiled,
                        bayes.default_priors(model, data, user.weights),
                        bayes.coefficient_sigmas(design.coefficient_names, design.scales()),
                        lambda p: user.evaluate(p, per_customer=True), user.weights)
