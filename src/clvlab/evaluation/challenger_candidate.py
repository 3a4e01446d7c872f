"""The machine-learning challengers as backtest candidates: ``"ziln"`` and ``"gbm"``.

At a cutoff c with horizon h a challenger trains on what is known by c: the features at c - h
(:func:`clvlab.churn.feature_frame` of the view one horizon back: RFM, behaviour, basket and
event-log features, attributes) against each customer's purchases and spend in (c - h, c];
then it predicts the window (c, c + h] from the features at c. ``"gbm"`` also sees a BTYD
model's expected purchases over h (Pareto/NBD by default, ``"bg-nbd+gbm"`` for another),
fitted at c - h for training and refitted at c for predicting, as an offset
(:class:`~clvlab.churn.GBMPoissonChallenger`).

A challenger is trained for one window length. For the shorter windows of the tracking
curve: ``"gbm"`` takes its time profile from its BTYD model (its correction factor at h applied
to the model's expectation at t), ``"ziln"``, which has no model of time, assumes a steady
pace (expectations t/h of those of h, P(any purchase) 1 - (1 - p)^(t/h)). Both have a
predictive distribution of purchases over h, scored by the backtest's interval metrics:
Poisson(mu) for ``"gbm"``; for ``"ziln"`` the mixture of no purchase and a log-normal count
C floored at 1, discretised as N = round(C) (whole purchases whose mean is close to C's, the
challenger's ``expected_purchases``).

New customers, ``"ziln-handover-<k>"`` (:class:`HandoverCandidate`): the ZILN challenger for
the customers with fewer than k repeat purchases, a BTYD model (Pareto/NBD + Gamma-Gamma) for
the others.
"""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
from scipy import special, stats
from sklearn.base import clone

from clvlab.churn.features import feature_frame, shift_back, window_purchases, window_spend
from clvlab.churn.gbm_poisson import BASE_COLUMN, GBMPoissonChallenger
from clvlab.churn.ziln import ZILNChallenger
from clvlab.core.errors import ClvlabError
from clvlab.evaluation.candidates import Calibration, Candidate, model_name

__all__ = ["ChallengerCandidate", "HandoverCandidate", "KINDS"]

KINDS = ("ziln", "gbm")


class ChallengerCandidate(Candidate):
    """A ZILN or GBM-Poisson challenger trained one horizon back (module docstring).

    Parameters
    ----------
    kind : ``"ziln"`` or ``"gbm"``.
    base_model : the BTYD model whose expectation ``"gbm"`` corrects (unfitted; a copy is fitted
        at each view); by default Pareto/NBD. Not used by ``"ziln"``.
    random_seed : seed of the trees.
    name : the candidate's name (default ``"ziln"``, ``"gbm"`` or ``"bg-nbd + gbm"``).
    """

    def __init__(self, kind: str, base_model=None, random_seed: int = 0, name: str | None = None):
        if kind not in KINDS:
            raise ClvlabError(f"unknown challenger {kind!r}; use one of {list(KINDS)}")
        if kind == "gbm" and base_model is None:
            from clvlab.models.pareto_nbd import ParetoNBD

            base_model = ParetoNBD()
        self.kind, self.base_model, self.random_seed = kind, base_model, random_seed
        if name is None:
            name = kind if base_model is None or model_name(base_model) == "pareto-nbd" \
                else f"{model_name(base_model)} + {kind}"
        self.name = name

    def _estimator(self, horizon: float):
        if self.kind == "ziln":
            return ZILNChallenger(horizon=horizon, random_seed=self.random_seed)
        return GBMPoissonChallenger(base="offset", horizon=horizon, random_seed=self.random_seed)

    def _features(self, calibration: Calibration, base, horizon: float) -> pd.DataFrame:
        X = feature_frame(calibration)
        if base is not None:
            X[BASE_COLUMN] = base.expected_purchases(calibration.rfm, horizon).to_numpy(np.float64)
        return X

    def fit(self, calibration: Calibration, horizon: float) -> "ChallengerCandidate":
        earlier, _ = shift_back(calibration, horizon)
        base = None if self.kind == "ziln" else clone(self.base_model, safe=False).fit(earlier.rfm)
        X = self._features(earlier, base, horizon)
        purchases = window_purchases(calibration, horizon).loc[X.index]
        spend = window_spend(calibration, horizon).loc[X.index] if calibration.has_amounts else None
        if purchases.sum() == 0:
            raise ClvlabError(f"no customer bought in the {horizon:g} time units before "
                              f"{calibration.cutoff.date()}: nothing to train the {self.kind} "
                              "challenger on")
        self.challenger_ = self._estimator(horizon).fit(X, purchases, spend)
        self.horizon_ = float(horizon)
        self.base_model_ = None if self.kind == "ziln" else \
            clone(self.base_model, safe=False).fit(calibration.rfm)
        self._cache = None
        return self

    def _at_horizon(self, calibration: Calibration) -> tuple[pd.DataFrame, pd.DataFrame]:
        """(features at the cutoff, the challenger's predictions over its horizon), kept for
        this calibration object (the tracking curve asks many times)."""
        if self._cache is not None and self._cache[0] is calibration:
            return self._cache[1]
        X = self._features(calibration, self.base_model_, self.horizon_)
        value = (X, self.challenger_.predict(X))
        self._cache = (calibration, value)
        return value

    def predict(self, calibration: Calibration, horizon: float) -> pd.DataFrame:
        X, full = self._at_horizon(calibration)
        out = full.copy()
        if np.isclose(horizon, self.horizon_):
            return out
        if self.kind == "gbm":
            # the trees' factor at h on the BTYD model's expectation at t: the model's time profile
            at_t = self.base_model_.expected_purchases(calibration.rfm, horizon).to_numpy(np.float64)
            scale = at_t / X[BASE_COLUMN].to_numpy()
            out["expected_purchases"] = full["expected_purchases"] * scale
            out["p_active"] = -np.expm1(-out["expected_purchases"])
        else:  # a steady pace: no model of time to say otherwise
            scale = np.full(len(out), horizon / self.horizon_)
            out["expected_purchases"] = full["expected_purchases"] * scale
            out["p_active"] = -np.expm1(np.log1p(-np.minimum(full["p_active"], 1 - 1e-15))
                                        * horizon / self.horizon_)
        if "expected_spend" in out:
            out["expected_spend"] = full["expected_spend"] * scale
        return out

    def purchase_distribution(self, calibration: Calibration):
        X, _ = self._at_horizon(calibration)
        return _Distribution(self.challenger_, X, self.horizon_), calibration.rfm


class _Distribution:
    """A challenger's predictive distribution of purchases over its horizon, in the interface
    the backtest's interval metrics call (``purchase_pmf``)."""

    def __init__(self, challenger, X: pd.DataFrame, horizon: float):
        self.challenger, self.X, self.horizon = challenger, X, horizon

    def purchase_pmf(self, table: pd.DataFrame, t: float, max_n: int | None = None,
                     tail: float = 1e-6) -> pd.DataFrame:
        if not np.isclose(t, self.horizon):
            raise ClvlabError(f"the challenger's distribution is of its horizon {self.horizon:g}, "
                              f"not {t:g}")
        if isinstance(self.challenger, GBMPoissonChallenger):
            mu = self.challenger.predict(self.X)["expected_purchases"].to_numpy()
            top = int(stats.poisson.ppf(1 - max(tail, 1e-12), mu).max())
            top = max(top, max_n or 0)
            pmf = stats.poisson.pmf(np.arange(top + 1)[None, :], mu[:, None])
        else:
            parts = self.challenger.predictive_parameters(self.X)
            w, mu, sigma = (parts[f"{k}_purchases"].to_numpy() for k in ("w", "mu", "sigma"))
            quantile = np.exp(mu + sigma * special.ndtri(1 - max(tail, 1e-12)))
            top = max(int(np.ceil(quantile.max())) + 1, max_n or 0, 1)
            # N = round(C), C = max(1, L) (so N >= 1 among buyers, and E[N] ~ E[C], the
            # challenger's expected purchases): P(N <= k) = P(L < k + 1/2) for k >= 1
            edges = np.log(np.arange(1, top + 1, dtype=np.float64) + 0.5)
            cdf = special.ndtr((edges[None, :] - mu[:, None]) / sigma[:, None])
            buyers = np.diff(np.concatenate([np.zeros((len(mu), 1)), cdf], axis=1), axis=1)
            pmf = np.concatenate([(1 - w)[:, None], w[:, None] * buyers], axis=1)
        return pd.DataFrame(pmf, index=table.index)

    def total_interval(self, level: float, seed=0, n_draws: int = 400) -> tuple[float, float]:
        """The central ``level`` interval of the customers' total purchases over the horizon:
        exact for ``"gbm"`` (a sum of independent Poissons is Poisson), by ``n_draws`` joint
        draws for ``"ziln"``; the trees' own uncertainty is not in it (no parameter draws)."""
        low, high = (1 - level) / 2, (1 + level) / 2
        if isinstance(self.challenger, GBMPoissonChallenger):
            mu = float(self.challenger.predict(self.X)["expected_purchases"].sum())
            return float(stats.poisson.ppf(low, mu)), float(stats.poisson.ppf(high, mu))
        draws = np.round(self.challenger.sample(self.X, n_draws, seed=seed)["purchases"]).sum(axis=0)
        return float(np.quantile(draws, low)), float(np.quantile(draws, high))


class HandoverCandidate(Candidate):
    """New customers by the ZILN challenger, the others by a BTYD model: customers with fewer
    than ``min_purchases`` repeat purchases (one purchase, or a few) get the challenger's
    predictions, which learn from first-purchase features (order value, basket, attributes,
    events) what a BTYD model can only give them from its population prior; from
    ``min_purchases`` on, the BTYD model's (it has seen enough of their own history).
    ``benchmarks/new_customers.py`` measures where the BTYD model starts to win.

    Parameters
    ----------
    mature : the candidate of customers with history (default Pareto/NBD + Gamma-Gamma).
    min_purchases : repeat purchases from which ``mature`` predicts (>= 1).
    """

    def __init__(self, mature=None, min_purchases: int = 1, random_seed: int = 0,
                 name: str | None = None):
        if isinstance(min_purchases, bool) or not isinstance(min_purchases, int) or min_purchases < 1:
            raise ClvlabError(f"min_purchases must be a whole number >= 1 (repeat purchases from "
                              f"which the BTYD model takes over), got {min_purchases!r}")
        if mature is None:
            from clvlab.evaluation.candidates import ModelCandidate
            from clvlab.models.gamma_gamma import GammaGamma
            from clvlab.models.pareto_nbd import ParetoNBD

            mature = ModelCandidate(ParetoNBD(), GammaGamma())
        self.mature, self.min_purchases = mature, min_purchases
        self.young = ChallengerCandidate("ziln", random_seed=random_seed)
        self.name = name or f"ziln-handover-{min_purchases}"

    def fit(self, calibration: Calibration, horizon: float) -> "HandoverCandidate":
        self.young_ = copy.deepcopy(self.young).fit(calibration, horizon)
        self.mature_ = copy.deepcopy(self.mature).fit(calibration, horizon)
        return self

    def predict(self, calibration: Calibration, horizon: float) -> pd.DataFrame:
        young = self.young_.predict(calibration, horizon)
        mature = self.mature_.predict(calibration, horizon)
        columns = [c for c in mature.columns if c in young.columns]
        new = (calibration.rfm["frequency"] < self.min_purchases).to_numpy()
        out = mature[columns].copy()
        out.loc[new, columns] = young.loc[new, columns].to_numpy()
        return out
