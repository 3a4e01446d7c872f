"""Parameter uncertainty and what it does to predictions, after any fit.

``parameter_draws``: posterior draws after a Bayesian fit, or draws from the asymptotic normal of
the log-parameters (covariate coefficients as they are) after a maximum-likelihood one.
``posterior_summary``: a prediction's mean, sd and interval per customer over those draws, in
bounded memory, each draw's model made by ``model.at_params`` (which keeps covariates). Public
as ``clvlab.bayes.*``.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import pandas as pd

from clvlab.core.errors import ClvlabError
from clvlab.core.progress import progress_bar

__all__ = ["parameter_draws", "posterior_summary"]


def parameter_draws(model, n_draws: int, seed: Any = 0) -> np.ndarray:
    """Parameter draws (n_draws x n_params, in ``params_``'s order: own parameters, then any
    covariate coefficients): posterior draws after a Bayesian fit; after a maximum-likelihood
    fit, draws from the asymptotic normal of log(theta) (the delta method), which keeps the
    model's own parameters positive, and of the coefficients as they are (``model._positive``
    says which is which)."""
    rng = np.random.default_rng(seed)
    names = list(model.params_.index) if hasattr(model, "params_") else list(model.param_names)
    idata = getattr(model, "idata_", None)
    if idata is not None:
        stacked = np.column_stack([idata.posterior[n].to_numpy().ravel() for n in names])
        if len(stacked) <= 1:
            raise ClvlabError("a MAP fit has no posterior draws; fit with method='nuts' or 'advi'")
        take = rng.choice(len(stacked), size=min(n_draws, len(stacked)), replace=False)
        return stacked[np.sort(take)]
    covariance = getattr(model, "covariance_", None)
    if covariance is None or not np.all(np.isfinite(covariance.to_numpy())):
        raise ClvlabError(f"this {type(model).__name__} has neither posterior draws nor a finite "
                          "covariance, so its predictions have no interval")
    model._check_fitted()
    params = model.params_.to_numpy()
    positive = model._positive()
    scale = np.where(positive, params, 1.0)
    log_cov = covariance.to_numpy() / np.outer(scale, scale)
    try:  # a covariance read from a file or set by hand may not be one
        np.linalg.cholesky(log_cov)
    except np.linalg.LinAlgError:
        raise ClvlabError(f"this {type(model).__name__}'s covariance is not positive definite, so "
                          "no draws can be taken from it; refit the model") from None
    centre = np.where(positive, np.log(np.where(positive, params, 1.0)), params)
    draws = rng.multivariate_normal(centre, log_cov, size=n_draws)
    return np.where(positive, np.exp(np.where(positive, draws, 0.0)), draws)


def posterior_summary(models, predict: Callable[..., pd.Series], rfm: pd.DataFrame, *,
                      n_draws: int = 200, level: float = 0.94, chunk_size: int = 20_000,
                      return_draws: bool = False, seed: Any = 0, progress: bool | None = None):
    """Mean, sd and a central interval per customer of ``predict`` over parameter draws.

    ``models`` is one fitted model or a sequence (for example a transaction model and a spend
    model); ``predict(*models_at_one_draw, rfm_chunk)`` returns a Series for the chunk. Draw i of
    each model is paired with draw i of the others (their posteriors are independent). Memory
    stays bounded: identical customers are predicted once, and customers are taken
    ``chunk_size`` at a time, so only chunk_size x n_draws values exist at any moment.
    ``return_draws=True`` returns the (draw, customer) array itself; it is refused above 50
    million values, where the summary is the only sensible output. ``progress``: a bar over
    the draws of each chunk (None: when someone is watching and there are over 2 million
    customer-draws, about a few seconds' work).
    """
    from clvlab.inference.mle import group_rows

    models = [models] if not isinstance(models, (list, tuple)) else list(models)
    if not 0 < level < 1:
        raise ClvlabError(f"level must be between 0 and 1, got {level!r}")
    draws = [parameter_draws(m, n_draws, seed) for m in models]
    n = min(len(d) for d in draws)
    draw_models = [[m.at_params(d[i]) for i in range(n)] for m, d in zip(models, draws)]
    # the columns any of the models reads (each model class lists its own), and the covariates
    # any reads, encoded as numbers to find identical customers, passed on as they are
    columns = [c for c in dict.fromkeys(c for m in models for c in m.columns) if c in rfm.columns]
    encoded = [m.covariates_.encoder.transform(rfm, model=type(m).__name__)
               for m in models if hasattr(m, "covariates_")]
    attributes = list(dict.fromkeys(c for m in models if hasattr(m, "covariates_")
                                    for c in m.covariates_.encoder.columns if c not in columns))
    distinct, inverse = group_rows([rfm[c].to_numpy(np.float64) for c in columns]
                                   + [column for matrix in encoded for column in matrix.T])
    unique_rfm = pd.DataFrame(dict(zip(columns, distinct)))
    if attributes:  # each distinct row's attributes from its first customer
        first = np.unique(inverse, return_index=True)[1]
        for column in attributes:
            unique_rfm[column] = rfm[column].to_numpy()[first]
    unique_rfm.attrs = dict(rfm.attrs)
    if return_draws and n * len(rfm) > 50_000_000:
        raise ClvlabError(f"{n} draws x {len(rfm):,} customers is too many values to return; "
                          "use the summary (return_draws=False) or fewer customers")
    low_q, high_q = (1 - level) / 2, (1 + level) / 2
    stats = np.empty((len(unique_rfm), 4))
    all_draws = np.empty((n, len(unique_rfm))) if return_draws else None
    chunks = range(0, len(unique_rfm), chunk_size)
    if progress is None and n * len(unique_rfm) <= 2_000_000:
        progress = False
    with progress_bar(n * len(chunks), "posterior draws", progress, unit="draw") as bar:
        for start in chunks:
            chunk = unique_rfm.iloc[start:start + chunk_size]
            values = np.empty((n, len(chunk)))
            for i in range(n):
                values[i] = np.asarray(predict(*(dm[i] for dm in draw_models), chunk), dtype=np.float64)
                bar.update()
            if not np.all(np.isfinite(values)):
                raise ClvlabError("a prediction was not finite at some parameter draw; "
                                  "this is a bug, please report it with the model file")
            stats[start:start + len(chunk)] = np.column_stack([
                values.mean(axis=0), values.std(axis=0, ddof=1) if n > 1 else np.zeros(len(chunk)),
                np.quantile(values, low_q, axis=0), np.quantile(values, high_q, axis=0)])
            if return_draws:
                all_draws[:, start:start + len(chunk)] = values
    if return_draws:
        return pd.DataFrame(all_draws[:, inverse].T, index=rfm.index,
                            columns=pd.RangeIndex(n, name="draw"))
    pct = lambda q: f"{100 * q:g}%"  # noqa: E731
    return pd.DataFrame(stats[inverse], index=rfm.index,
                        columns=["mean", "sd", pct(low_q), pct(high_q)])
