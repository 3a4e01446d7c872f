"""Backtest metrics of predictive distributions: how well a candidate's distribution of each
customer's holdout purchases, and of the cohort's total, describes what happened.

For a candidate whose model gives a distribution of purchases (``purchase_pmf``: BG/NBD,
MBG/NBD, Pareto/NBD, BG/BB), per customer, from the PMF of purchases in the holdout window
given the calibration history (at the fitted parameters):

- ``coverage_<L>`` (L = 50, 80, 90, 95): the share of customers whose realised count lies in
  their central L % prediction interval [lower, upper], lower and upper the (1 - L)/2 and
  (1 + L)/2 quantiles (``prediction_interval``'s rule). A count is discrete and the mass at
  the ends counts whole, so even the true model covers at least L % (often more: most
  customers' interval starts at 0).
- ``pit_coverage_<L>``: the same interval read on the randomised probability integral
  transform, without randomising: a customer with count x counts as the share of
  [F(x - 1), F(x)] that lies in [(1 - L)/2, (1 + L)/2]. Under the true model its expected value
  is exactly L (the PIT is uniform), so it tells calibration from the discreteness that
  inflates ``coverage_<L>``.
- ``log_score``: the mean natural logarithm (nats) of the PMF at the realised count, a proper
  scoring rule: higher is better (a probability below 1e-300 is counted as 1e-300).
- ``rps``: the ranked probability score, the CRPS of a count: sum over k >= 0 of
  (F(k) - [x <= k])^2, lower is better.
- ``interval_width_90``: the mean width (upper - lower) of the 90 % intervals: at equal
  coverage, narrower is better.

For the whole cohort of a cutoff, ``total_coverage_90`` is 1 when the realised total of
holdout purchases lies in the 90 % interval of ``clvlab.models.totals.purchase_totals`` (with
parameter draws: the total's uncertainty is mostly the parameters') and 0 otherwise: its mean
over the cutoffs is the coverage of the total's interval. Candidates without a distribution
(the baselines) have none of these metrics: absent, never 0. Candidates with time-varying
covariates have the per-customer metrics (their PMF along each customer's covariate path) but
not ``total_coverage_90``: parameter draws are not taken along paths yet.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from clvlab.core.errors import ClvlabError, ClvlabWarning, warn

__all__ = ["LEVELS", "TOTAL_LEVEL", "INTERVAL_DRAWS", "customer_scores", "summarise",
           "total_coverage", "metric_rows", "LOG_FLOOR"]

#: the central intervals whose coverage is reported
LEVELS = (0.5, 0.8, 0.9, 0.95)
#: the level of the cohort total's interval
TOTAL_LEVEL = 0.9
#: parameter draws behind the total's interval (each costs one evaluation of every customer's
#: moments)
INTERVAL_DRAWS = 50
#: the smallest probability the log score takes (log(1e-300) = -690.8)
LOG_FLOOR = 1e-300


def customer_scores(model, table: pd.DataFrame, horizon: float, actual: np.ndarray,
                    options: dict[str, Any] | None = None) -> dict[str, np.ndarray]:
    """Per customer: whether each interval covers the count, the PIT coverage, the log of the
    PMF at the count, the ranked probability score and the 90 % interval's width.

    Parameters
    ----------
    model : a fitted model with ``purchase_pmf``.
    table : the calibration summary the model predicts from (one row per customer).
    horizon : the holdout window, in the model's time unit.
    actual : the realised holdout purchases, one per row of ``table``.
    options : keyword arguments of the model's ``purchase_pmf`` (a model fitted with
        time-varying covariates: ``{"covariate_paths": paths}``).

    Returns
    -------
    dict of numpy arrays, one value per customer: ``covered_<L>`` and ``pit_<L>`` for each
    level, ``log_p``, ``rps`` and ``width_90``.
    """
    counts = np.asarray(actual)
    if counts.shape != (len(table),) or np.any(counts < 0) or np.any(counts != np.floor(counts)):
        raise ClvlabError("the realised counts must be whole numbers >= 0, one per customer")
    counts = counts.astype(np.int64)
    options = options or {}
    pmf = model.purchase_pmf(table, horizon, **options).to_numpy(np.float64)
    top = int(counts.max(initial=0))
    if top >= pmf.shape[1]:  # a count beyond the PMF's negligible tail: the PMF up to it
        pmf = model.purchase_pmf(table, horizon, max_n=top, tail=0.0,
                                 **options).to_numpy(np.float64)
    cdf = np.cumsum(pmf, axis=1)  # sequential sums, as prediction_interval accumulates them
    rows = np.arange(len(counts))
    p = pmf[rows, counts]
    below = np.where(counts > 0, cdf[rows, np.maximum(counts - 1, 0)], 0.0)
    upto = below + p
    out: dict[str, np.ndarray] = {}
    for level in LEVELS:
        low_q, high_q = (1 - level) / 2, (1 + level) / 2
        lower = np.argmax(cdf >= low_q, axis=1)
        upper = np.argmax(cdf >= high_q, axis=1)
        name = _pct(level)
        out[f"covered_{name}"] = ((counts >= lower) & (counts <= upper)).astype(np.float64)
        overlap = np.clip(np.minimum(upto, high_q) - np.maximum(below, low_q), 0.0, None)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[f"pit_{name}"] = np.where(p > 0, overlap / np.where(p > 0, p, 1.0),
                                          ((below >= low_q) & (below <= high_q)).astype(float))
        if level == 0.9:
            out["width_90"] = (upper - lower).astype(np.float64)
    out["log_p"] = np.log(np.maximum(p, LOG_FLOOR))
    steps = (np.arange(cdf.shape[1])[None, :] >= counts[:, None]).astype(np.float64)
    out["rps"] = np.sum((np.minimum(cdf, 1.0) - steps) ** 2, axis=1)
    return out


def summarise(scores: dict[str, np.ndarray], mask: np.ndarray) -> dict[str, float]:
    """The metrics (see the module docstring) of the customers in ``mask``."""
    if not mask.any():
        return {}
    out = {}
    for kind, key in (("coverage", "covered"), ("pit_coverage", "pit")):
        for level in LEVELS:
            name = _pct(level)
            out[f"{kind}_{name}"] = float(scores[f"{key}_{name}"][mask].mean())
    out["log_score"] = float(scores["log_p"][mask].mean())
    out["rps"] = float(scores["rps"][mask].mean())
    out["interval_width_90"] = float(scores["width_90"][mask].mean())
    return out


def total_coverage(model, table: pd.DataFrame, horizon: float, actual_total: float, *,
                   draws: int = INTERVAL_DRAWS, seed: Any = 0) -> float:
    """1.0 when ``actual_total`` lies in the cohort total's ``TOTAL_LEVEL`` interval of
    ``purchase_totals`` (``draws`` parameter draws), else 0.0. A distribution that gives its
    total's interval itself (``total_interval``: the challengers', without parameter draws)
    gives it."""
    from clvlab.models.totals import purchase_totals

    if callable(getattr(model, "total_interval", None)):
        lower, upper = model.total_interval(TOTAL_LEVEL, seed=seed)
        return float(lower <= actual_total <= upper)

    totals = purchase_totals(model, table, horizon, level=TOTAL_LEVEL, parameter_draws=draws,
                             seed=seed)
    pct = f"{100 * TOTAL_LEVEL:g}%"
    lower, upper = float(totals[f"lower {pct}"].iloc[0]), float(totals[f"upper {pct}"].iloc[0])
    if not (np.isfinite(lower) and np.isfinite(upper)):
        return float("nan")
    return float(lower <= actual_total <= upper)


def metric_rows(model, table: pd.DataFrame, horizon: float, actual: np.ndarray,
                groups: list[tuple[str, np.ndarray]], *, draws: int = INTERVAL_DRAWS,
                seed: Any = 0, label: str = "the model",
                options: dict[str, Any] | None = None) -> list[tuple[str, int, str, float]]:
    """(cohort, customers, metric, value) for each group (``"all"`` first, then the acquisition
    cohorts), the total's coverage for ``"all"`` only; ``draws=0`` leaves the total out. A
    model without parameter draws (made by ``from_params``, a singular fit) has no total
    interval with parameter uncertainty: a ClvlabWarning naming ``label`` says so, and the
    per-customer metrics stand. ``options`` go to the model's ``purchase_pmf``; with covariate
    paths the total's interval is left out (parameter draws are not taken along paths yet)."""
    scores = customer_scores(model, table, horizon, actual, options)
    if options and options.get("covariate_paths") is not None:
        draws = 0
    rows = []
    for cohort, mask in groups:
        rows += [(cohort, int(mask.sum()), metric, value)
                 for metric, value in summarise(scores, mask).items()]
    if draws:
        try:
            covered = total_coverage(model, table, horizon, float(np.sum(actual)), draws=draws,
                                     seed=seed)
        except ClvlabError as exc:
            warn(f"backtest: {label} has no interval of the cohort's total with its "
                          f"parameters' uncertainty, so total_coverage_90 is left out: {exc}",
                          ClvlabWarning)
            return rows
        if np.isfinite(covered):
            rows.append(("all", len(table), f"total_coverage_{_pct(TOTAL_LEVEL)}", covered))
    return rows


def _pct(level: float) -> str:
    return f"{100 * level:g}"
