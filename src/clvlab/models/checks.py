"""Model checks that need to know which process each model is: the posterior predictive check.

It lives with the models, not with the samplers in :mod:`clvlab.inference.bayes`, because it asks
the registry for the model's simulator; ``clvlab.bayes.frequency_ppc`` is this function.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from clvlab.core.errors import ClvlabError
from clvlab.inference.bayes import parameter_draws
from clvlab.models.registry import entry_for
from clvlab.data.tables import accepts_tables

__all__ = ["frequency_ppc"]


@accepts_tables(keyed=("rfm",))
def frequency_ppc(model, rfm: pd.DataFrame, *, n_draws: int = 200, max_frequency: int = 7,
                  level: float = 0.94, seed: Any = 0) -> pd.DataFrame:
    """Posterior predictive check of the calibration frequency histogram.

    For each parameter draw, simulate every customer's calibration purchases over their own T
    from the model (with covariates, each customer at their own parameters, read from the
    table's covariate columns), and count customers with 0, 1, ..., max_frequency+ repeat purchases. Returns
    the observed count per bin beside the predictive mean and interval.
    """
    simulator = entry_for(model).simulator
    if simulator is None:
        raise ClvlabError(f"no frequency simulator for {type(model).__name__}")
    rng = np.random.default_rng(seed)
    draws = parameter_draws(model, n_draws, seed)
    T = rfm["T"].to_numpy(np.float64)
    bins = np.arange(max_frequency + 1)
    counts = np.empty((len(draws), len(bins)))
    design = getattr(model, "covariates_", None)
    covariates = None if design is None else design.encoder.transform(rfm, model=type(model).__name__)
    k = len(model.param_names)
    for i, params in enumerate(draws):
        if design is not None:  # each customer at their own parameters (simulators take arrays)
            params = design.exponents(params[:k], params[k:], covariates)[0].T
        simulated = simulator(len(T), T=T, seed=rng, **dict(zip(model.param_names, params)))
        capped = np.minimum(simulated["frequency"].to_numpy(), max_frequency)
        counts[i] = np.bincount(capped.astype(np.int64), minlength=len(bins))
    observed = np.bincount(np.minimum(rfm["frequency"].to_numpy(), max_frequency).astype(np.int64),
                           minlength=len(bins))
    labels = [str(b) for b in bins[:-1]] + [f"{max_frequency}+"]
    low_q, high_q = (1 - level) / 2, (1 + level) / 2
    return pd.DataFrame({"observed": observed, "predicted": counts.mean(axis=0),
                         f"{100 * low_q:g}%": np.quantile(counts, low_q, axis=0),
                         f"{100 * high_q:g}%": np.quantile(counts, high_q, axis=0)},
                        index=pd.Index(labels, name="frequency"))
