"""The distribution of a total of independent customers, and its mixture over parameter draws.

Given the parameters, customers are independent, so a group's total has the sum of their means
and of their variances, exactly; its distribution is the convolution of their distributions.
These functions turn per-draw moments or PMFs into central intervals of the mixture over the
draws (the predictive distribution of the total with its parameter uncertainty):

- ``convolve_pmfs``: the exact PMF of a sum of independent counts, by FFT (each distinct
  customer's PMF transformed once and raised to the number of customers sharing it).
- ``pmf_quantiles``: quantiles of PMFs on 0, 1, 2, ... (the smallest n with CDF >= q).
- ``mixture_quantiles``: quantiles of an equal-weight mixture of normals (or of gammas,
  positive totals such as revenue) with given means and variances, by bisection on its CDF.
"""

from __future__ import annotations

import numpy as np
from scipy import special

__all__ = ["convolve_pmfs", "pmf_quantiles", "mixture_quantiles", "mixture_summary",
           "support_length", "FAMILIES"]

#: the continuous families ``mixture_quantiles`` matches to a mean and a variance
FAMILIES = ("normal", "gamma")


def support_length(mean: np.ndarray, variance: np.ndarray, upper: float) -> int:
    """Points 0..L-1 enough to hold a count's distribution: its mean plus 12 sd (and 16), at
    most ``upper`` (the largest possible value + 1). Beyond 12 sd, even a count as skewed as
    a Poisson of mean 1 has a tail below 1e-12: FFT convolution on L points then aliases no
    mass that matters."""
    need = np.max(np.asarray(mean) + 12.0 * np.sqrt(np.asarray(variance)) + 16.0)
    return int(min(np.ceil(need), upper))


def convolve_pmfs(pmfs: np.ndarray, counts: np.ndarray, length: int) -> np.ndarray:
    """The PMF of the sum of independent counts: ``counts[i]`` customers with PMF ``pmfs[i]``.

    Parameters
    ----------
    pmfs : ndarray, shape (rows, m)
        Each row a PMF on 0..m-1 (truncated where its tail is negligible).
    counts : ndarray of int, shape (rows,)
        How many independent customers have each row's PMF.
    length : int
        Points of the result, 0..length-1: enough to hold the sum (``support_length``), since
        the FFT's convolution is circular and would fold mass above it onto small totals.

    Returns
    -------
    ndarray, shape (length,)
        The PMF of the total (FFT round-off, about 1e-16, clipped at 0 and renormalised).
    """
    transform = np.fft.rfft(np.asarray(pmfs, dtype=np.float64), n=length, axis=1)
    # integer powers of complex numbers need no branch of the logarithm: a product of powers
    product = np.prod(transform ** np.asarray(counts, dtype=np.int64)[:, None], axis=0)
    pmf = np.clip(np.fft.irfft(product, n=length), 0.0, None)
    return pmf / pmf.sum()


def pmf_quantiles(pmf: np.ndarray, probabilities) -> np.ndarray:
    """The smallest n with P(X <= n) >= q for each q (rows of ``pmf`` are distributions)."""
    cdf = np.cumsum(np.atleast_2d(pmf), axis=-1)
    cdf /= cdf[..., -1:]
    return np.stack([np.argmax(cdf >= q - 1e-12, axis=-1) for q in np.atleast_1d(probabilities)])


def _cdf(x: np.ndarray, mean: np.ndarray, variance: np.ndarray, family: str) -> np.ndarray:
    """The mixture's CDF at x (one per group) over draws (axis 0), both of shape (draws, groups)."""
    sd = np.sqrt(variance)
    if family == "normal":
        with np.errstate(divide="ignore", invalid="ignore"):
            z = (x - mean) / sd
        # a draw with no variance is a point mass at its mean
        values = np.where(sd > 0, special.ndtr(np.where(sd > 0, z, 0.0)),
                          (x >= mean).astype(np.float64))
        return values.mean(axis=0)
    # gamma of shape mean^2/var and scale var/mean (a positive total); a zero mean is a point
    # mass at 0
    positive = (mean > 0) & (variance > 0)
    shape = np.where(positive, mean * mean / np.where(positive, variance, 1.0), 1.0)
    scale = np.where(positive, variance / np.where(positive, mean, 1.0), 1.0)
    values = np.where(positive, special.gammainc(shape, np.maximum(x, 0.0) / scale),
                      (x >= mean).astype(np.float64))
    return values.mean(axis=0)


def mixture_quantiles(means: np.ndarray, variances: np.ndarray, probabilities,
                      family: str = "normal") -> np.ndarray:
    """Quantiles of the equal-weight mixture over draws of a family matched to each draw's
    mean and variance.

    Parameters
    ----------
    means, variances : ndarray, shape (draws, groups)
        Each draw's mean and variance of each group's total.
    probabilities : sequence of float
        The quantiles' levels, in (0, 1).
    family : {"normal", "gamma"}
        The distribution given the parameters (normal: a large group's total; gamma: a
        positive total, revenue of a small group).

    Returns
    -------
    ndarray, shape (len(probabilities), groups)
        NaN where a mean or variance is not finite (unknown, never a number made up).
    """
    means = np.atleast_2d(np.asarray(means, dtype=np.float64))
    variances = np.atleast_2d(np.asarray(variances, dtype=np.float64))
    finite = np.all(np.isfinite(means) & np.isfinite(variances) & (variances >= 0), axis=0)
    means = np.where(finite, means, 0.0)
    variances = np.where(finite, variances, 0.0)
    sd = np.sqrt(variances)
    low0 = np.min(means - 12.0 * sd, axis=0) - 1e-9
    high0 = np.max(means + 12.0 * sd, axis=0) + 1e-9
    out = []
    for q in np.atleast_1d(probabilities):
        low, high = low0.copy(), high0.copy()
        for _ in range(80):  # the bracket shrinks 2^80-fold: exact to double precision
            middle = (low + high) / 2
            below = _cdf(middle, means, variances, family) < q
            low = np.where(below, middle, low)
            high = np.where(below, high, middle)
        out.append(np.where(finite, (low + high) / 2, np.nan))
    return np.stack(out)



def mixture_summary(means: np.ndarray, variances: np.ndarray, levels, family: str) -> dict:
    """The totals' columns from each parameter draw's means and variances (draws x groups):
    ``expected`` (the mean over draws), ``process_sd`` (from the mean variance given the
    parameters), ``parameter_sd`` (over the draws; ddof 0, the mixture's own decomposition),
    ``total_sd``, ``parameter_share`` and, per level, the mixture's central interval
    (``lower 90%``, ``upper 90%``). A total whose variance is not finite (an infinite spend
    variance) has NaN where it is unknown, never a number."""
    expected = means.mean(axis=0)
    process = variances.mean(axis=0)
    parameter = means.var(axis=0)
    total = process + parameter
    probabilities = [p for level in levels for p in ((1 - level) / 2, (1 + level) / 2)]
    bounds = mixture_quantiles(means, variances, probabilities, family)
    unknown = ~np.isfinite(total)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(total > 0, parameter / np.where(total > 0, total, 1.0), 0.0)
    known = lambda values: np.where(unknown, np.nan, values)  # noqa: E731
    out = {"expected": expected, "process_sd": known(np.sqrt(process)),
           "parameter_sd": np.sqrt(parameter), "total_sd": known(np.sqrt(total)),
           "parameter_share": known(share)}
    for i, level in enumerate(levels):
        pct = f"{100 * level:g}%"
        out[f"lower {pct}"] = known(bounds[2 * i])
        out[f"upper {pct}"] = known(bounds[2 * i + 1])
    return out
