"""A backtest candidate whose transaction model reads time-varying covariates along each
customer's covariate path (issue 31; :mod:`clvlab.models.time_varying`).

At each cutoff it fits the model with ``covariate_paths=`` (the calibration pieces of every
customer's path, with their repeat purchases) and predicts the holdout window given each
customer's calibration history and future path (``scores``, ``expected_purchases_by_horizon``,
``purchase_pmf`` with ``covariate_paths=``). The paths come from the cutoff's
:class:`~clvlab.evaluation.time_varying_cutoffs.PathCalibration`, built by the backtest from its
``covariate_panel`` and ``calendar``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import clone

from clvlab.core.errors import ClvlabError
from clvlab.data.calibration import Calibration
from clvlab.evaluation.candidates import ModelCandidate, covariate_columns

__all__ = ["TimeVaryingCandidate"]


class TimeVaryingCandidate(ModelCandidate):
    """A Pareto/NBD or BG/NBD (optionally with a spend model) whose covariates
    ``path_columns`` vary over time, read from the backtest's covariate panel or calendar; its
    other covariates, and every spend covariate, are static customer attributes.

    Spend is the expected purchases times the spend model's conditional mean spend per
    purchase, as for :class:`~clvlab.evaluation.candidates.ModelCandidate`.

    Parameters
    ----------
    transaction_model : ParetoNBD or BetaGeo
        With covariates, ``path_columns`` among them.
    spend_model : GammaGamma or LogNormalSpend, optional
        A spend model (static covariates only); None: no spend predicted.
    name : str, optional
        The candidate's name; None: the models' names joined by ``" + "``.
    path_columns : sequence of str
        The transaction model's covariates read along the covariate paths (at least one).

    Raises
    ------
    ClvlabError
        Where ``path_columns`` is empty or names a column that is not a covariate of the
        transaction model.
    """

    def __init__(self, transaction_model, spend_model=None, name: str | None = None,
                 path_columns=()):
        super().__init__(transaction_model, spend_model, name)
        self.path_columns = tuple(path_columns)
        if not self.path_columns:
            raise ClvlabError(f"candidate {self.name!r}: a time-varying candidate needs at least "
                              "one covariate read along the paths (path_columns)")
        missing = [c for c in self.path_columns if c not in covariate_columns(transaction_model)]
        if missing:
            raise ClvlabError(f"candidate {self.name!r}: path_columns {missing} are not "
                              "covariates of its transaction model")

    @property
    def attribute_columns(self) -> list[str]:
        """The static customer attributes it reads: the transaction model's covariates that
        are not read along paths, and every covariate of the spend model (which takes no
        paths)."""
        static = [c for c in covariate_columns(self.transaction_model)
                  if c not in self.path_columns]
        return list(dict.fromkeys(static + covariate_columns(self.spend_model)))

    def paths(self, calibration: Calibration):
        """This candidate's covariate paths at the calibration's cutoff.

        Parameters
        ----------
        calibration : Calibration
            A cutoff's calibration data, built by a backtest given ``covariate_panel=`` and/or
            ``calendar=``.

        Returns
        -------
        CovariatePaths
            The paths of the candidate's ``path_columns``.

        Raises
        ------
        ClvlabError
            Where the calibration has no covariate paths.
        """
        build = getattr(calibration, "covariate_paths", None)
        if build is None:
            raise ClvlabError(f"candidate {self.name!r} reads {list(self.path_columns)} along "
                              "covariate paths: backtest it with covariate_panel= and/or "
                              "calendar=")
        return build(self.path_columns)

    def fit(self, calibration: Calibration, horizon: float) -> "TimeVaryingCandidate":
        """Fit copies of the models: the transaction model along the cutoff's covariate paths.

        Parameters
        ----------
        calibration : Calibration
            One cutoff's calibration data, with its covariate paths.
        horizon : float
            The holdout window (unused: the models do not train for a horizon).

        Returns
        -------
        TimeVaryingCandidate
            self, with ``transaction_model_`` and ``spend_model_``.

        Raises
        ------
        ClvlabError
            Where the calibration has no covariate paths or lacks an attribute the models read.
        """
        table = self._table(calibration)
        paths = self.paths(calibration)
        self.transaction_model_ = clone(self.transaction_model, safe=False).fit(
            table, covariate_paths=paths)
        self.spend_model_ = None
        if self.spend_model is not None:
            valued = (table["frequency"] > 0) & (table["monetary_value"] > 0)
            self.spend_model_ = clone(self.spend_model, safe=False).fit(table[valued])
        return self

    def predict(self, calibration: Calibration, horizon: float) -> pd.DataFrame:
        """The transaction model's scores along the cutoff's covariate paths.

        Parameters
        ----------
        calibration : Calibration
            The cutoff's calibration data.
        horizon : float
            The window after the cutoff, in the summary's time unit.

        Returns
        -------
        pandas.DataFrame
            Indexed like ``calibration.rfm``: ``expected_purchases``, ``p_active``
            and (with a spend model) ``expected_spend``.
        """
        table = self._table(calibration)
        scores = self.transaction_model_.scores(table, horizon,
                                                covariate_paths=self.paths(calibration))
        out = pd.DataFrame({"expected_purchases": scores["expected_purchases"],
                            "p_active": scores["probability_of_purchase"]}, index=table.index)
        if self.spend_model_ is not None:
            out["expected_spend"] = (out["expected_purchases"]
                                     * self.spend_model_.expected_spend(table, unvalued="population"))
        return out

    def total_expected_purchases(self, calibration: Calibration, horizons: np.ndarray) -> np.ndarray:
        """The tracking curve: every customer's expected purchases along the path, summed.

        Parameters
        ----------
        calibration : Calibration
            The cutoff's data ``fit`` was given.
        horizons : numpy.ndarray
            Window lengths in the summary's time unit.

        Returns
        -------
        numpy.ndarray
            One total per horizon.
        """
        horizons = np.asarray(horizons, dtype=np.float64)
        values = self.transaction_model_.expected_purchases_by_horizon(
            self._table(calibration), horizons, covariate_paths=self.paths(calibration))
        return values.to_numpy(np.float64).sum(axis=0)

    def purchase_distribution(self, calibration: Calibration):
        """(model, table, prediction options): the model's ``purchase_pmf`` is called with
        ``covariate_paths=`` the cutoff's paths.

        Parameters
        ----------
        calibration : Calibration
            The cutoff's data ``fit`` was given (with its covariate paths).

        Returns
        -------
        tuple
            ``(model, table, {"covariate_paths": paths})``.
        """
        return (self.transaction_model_, self._table(calibration),
                {"covariate_paths": self.paths(calibration)})
