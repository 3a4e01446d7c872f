"""Coverage of intervals by simulation: replicate, fit, count how often the truth is inside.

An interval procedure at level L covers the true value in a share L of repeated data sets. With
R independent replications the number of covering intervals is Binomial(R, L) when the
procedure is exact, so a test accepts the counts inside the central region of that binomial
that leaves out at most ``FALSE_ALARM`` of its mass (:func:`binomial_band`). Seeds are fixed,
so a test gives the same counts on every run; the band says how unlucky a fixed seed would have
to be for a correct procedure to fail (1 in 1,000), and how far off a wrong one must be to be
caught (a band of about +-3.3 binomial standard errors).

Maximum-likelihood intervals are asymptotic, so their coverage at a finite number of customers
is not exactly nominal; each test's sizes were chosen, and its coverage measured with many more
replications, so that the measured coverage sits well inside the band (see tests/test_coverage.py).
"""

from __future__ import annotations

import contextlib
import warnings
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from clvlab import ClvlabWarning

#: Probability that an exact interval procedure lands outside the band by chance.
FALSE_ALARM = 1e-3


def binomial_band(n_reps: int, level: float, false_alarm: float = FALSE_ALARM) -> tuple[int, int]:
    """Smallest and largest number of covering intervals (out of ``n_reps``) to accept.

    The central region of Binomial(n_reps, level) with at most ``false_alarm / 2`` of its mass
    below and above it: 200 replications at 0.95 accept 179 to 198 (89.5 % to 99 %).
    """
    low = int(stats.binom.ppf(false_alarm / 2, n_reps, level))
    high = int(stats.binom.isf(false_alarm / 2, n_reps, level))
    return low, high


def seeds(n_reps: int, base: int) -> list[int]:
    """Independent, reproducible seeds, one per replication."""
    return [int(s.generate_state(1)[0]) for s in np.random.SeedSequence(base).spawn(n_reps)]


@dataclass
class Coverage:
    """Per replication and quantity: was the truth below, inside or above the interval."""

    below: pd.DataFrame  # replications x quantities, True where truth < lower bound
    above: pd.DataFrame  # True where truth > upper bound
    not_converged: int  # replications whose fit did not converge (left out of the counts)

    @property
    def n_reps(self) -> int:
        return len(self.below)

    @property
    def covered(self) -> pd.Series:
        """Number of covering intervals per quantity."""
        return (~(self.below | self.above)).sum()

    def table(self) -> pd.DataFrame:
        """Counts and rates per quantity, for messages and reports."""
        return pd.DataFrame({"covered": self.covered, "rate": self.covered / self.n_reps,
                             "truth below": self.below.sum(), "truth above": self.above.sum()})

    def assert_nominal(self, level: float) -> None:
        """Every quantity's coverage count inside the binomial band of ``level``, and no
        replication lost to a failed fit (a failure would bias the count, silently)."""
        assert self.not_converged == 0, f"{self.not_converged} fits did not converge"
        low, high = binomial_band(self.n_reps, level)
        outside = self.covered[(self.covered < low) | (self.covered > high)]
        assert outside.empty, (
            f"coverage outside [{low}, {high}] of {self.n_reps} at level {level}:\n{self.table()}")


def replicate(fit: Callable[[int], object], intervals: Callable[[object], pd.DataFrame],
              truth: pd.Series, n_reps: int, base_seed: int) -> Coverage:
    """Run ``fit(seed)`` for ``n_reps`` seeds and compare ``intervals(model)`` with ``truth``.

    ``intervals`` returns a frame indexed like ``truth`` with the lower bound in its first
    column and the upper bound in its second.
    """
    below, above, failed = [], [], 0
    with one_blas_thread():
        for seed in seeds(n_reps, base_seed):
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", ClvlabWarning)
                model = fit(seed)
            if any(issubclass(w.category, ClvlabWarning) for w in caught) or not _converged(model):
                failed += 1
                continue
            bounds = intervals(model).loc[truth.index]
            below.append(truth.to_numpy() < bounds.iloc[:, 0].to_numpy())
            above.append(truth.to_numpy() > bounds.iloc[:, 1].to_numpy())
    frame = lambda rows: pd.DataFrame(np.array(rows), columns=truth.index)  # noqa: E731
    return Coverage(frame(below), frame(above), failed)


def one_blas_thread():
    """Run BLAS on one thread: these loops make hundreds of tiny fits, and on a busy machine
    OpenBLAS's worker threads spin for each small call (an sBG fit took 0.34 s with two
    threads under load against 0.02 s with one). Nothing changes where threadpoolctl (a
    dependency of the scientific stack, not of clvlab) is absent."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - only the speed depends on it
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def _converged(model) -> bool:
    return bool(getattr(model, "convergence_", {}).get("converged", True))


def summary_bounds(level: float) -> Callable[[object], pd.DataFrame]:
    """The ``summary(level)`` interval columns of a fitted model (lower, upper)."""
    pct = f"{100 * level:g}%"
    return lambda model: model.summary(level)[[f"lower {pct}", f"upper {pct}"]]


def predict_bounds(prediction: str, profiles: pd.DataFrame, level: float, n_draws: int,
                   **kwargs) -> Callable[[object], pd.DataFrame]:
    """The ``posterior_predict`` interval of ``prediction`` for each row of ``profiles``."""

    def bounds(model) -> pd.DataFrame:
        summary = model.posterior_predict(prediction, profiles, level=level, n_draws=n_draws,
                                          **kwargs)
        low, high = (1 - level) / 2, (1 + level) / 2  # as posterior_predict names them
        return summary[[f"parameter_{100 * low:g}%", f"parameter_{100 * high:g}%"]]

    return bounds


def with_unit(frame: pd.DataFrame, unit: str, columns: Sequence[str]) -> pd.DataFrame:
    """Only ``columns`` of ``frame``, labelled with ``unit`` as an RFM table is."""
    out = frame[list(columns)].copy()
    out.attrs["clvlab"] = {"time_unit": unit}
    return out
