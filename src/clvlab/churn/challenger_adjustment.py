"""A challenger in a CLV model: its predictions replace a BTYD model's over its horizon.

A registered CLV model has a transaction model (and a spend model) and optionally a part that
corrects their predictions over one horizon: the churn adjuster, or a challenger
(:class:`~clvlab.churn.ZILNChallenger`, :class:`~clvlab.churn.GBMPoissonChallenger`) wrapped in
:class:`ChallengerAdjustment`, which speaks the adjuster's language (``horizon``,
``feature_names_in_``, ``adjusted_activity``), so that the scoring function, the served model
and the scoring job score it as they score an adjuster:

- P(any purchase in the horizon) is the challenger's ``p_active``;
- expected purchases are the challenger's (the BTYD model's times the factor
  ``challenger / BTYD``);
- with a spend model and a challenger that predicts spend, CLV is the BTYD model's discounted
  CLV times ``challenger spend / BTYD spend`` (the challenger's total, discounted with the BTYD
  model's timing of purchases within the horizon); a challenger without spend scales CLV by the
  purchases' factor;
- p_alive and the spend per purchase stay the BTYD model's (a challenger has no notion of
  being alive).

The BTYD model is the CLV model's own transaction model (``base_model_``): ``"gbm"`` was trained
on its expectation as an offset, ``"ziln"`` registers beside one fitted on the same data.
The file is the challenger's (JSON and skops parts: :mod:`clvlab.churn.challenger_files`) with
the candidate's name; the base model is not in it.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from clvlab.churn.challenger_files import load_challenger, save_challenger
from clvlab.churn.gbm_poisson import BASE_COLUMN, GBMPoissonChallenger
from clvlab.churn.ziln import ZILNChallenger
from clvlab.core.errors import ClvlabError
from clvlab.data.tables import accepts_tables

__all__ = ["ChallengerAdjustment", "CHALLENGER_KINDS"]

CHALLENGER_KINDS = {"ZILNChallenger": ZILNChallenger, "GBMPoissonChallenger": GBMPoissonChallenger}
RFM = ["frequency", "recency", "T"]


class ChallengerAdjustment:
    """A fitted challenger and the BTYD model whose predictions it replaces (module docstring).

    Parameters
    ----------
    challenger : ZILNChallenger or GBMPoissonChallenger
        Fitted.
    base_model : BetaGeo, ParetoNBD or ModifiedBetaGeo, optional
        The fitted transaction model (for ``"gbm"``, the one whose expectation is its
        offset); None until the CLV model that holds it sets it (``base_model_``).
    name : str, optional
        The backtest candidate it is (``"ziln"``, ``"gbm"``, ``"bg-nbd + gbm"``), which a
        promotion's evidence must have tested; None: ``"ziln"`` or ``"gbm"`` by the
        challenger's class.

    Attributes
    ----------
    base_model_ : BetaGeo, ParetoNBD, ModifiedBetaGeo or None
        The transaction model whose predictions it replaces.
    candidate_name_ : str
        The backtest candidate's name.

    Raises
    ------
    ClvlabError
        Where ``challenger`` is not a fitted ZILNChallenger or GBMPoissonChallenger.
    """

    def __init__(self, challenger, base_model=None, name: str | None = None):
        if type(challenger).__name__ not in CHALLENGER_KINDS or not hasattr(challenger, "training_"):
            raise ClvlabError(f"a challenger must be a fitted ZILNChallenger or "
                              f"GBMPoissonChallenger, not {type(challenger).__name__}")
        self.challenger = challenger
        self.base_model_ = base_model
        self.candidate_name_ = name or ("ziln" if isinstance(challenger, ZILNChallenger) else "gbm")

    @property
    def horizon(self) -> float:
        """The challenger's horizon, in the RFM table's time unit."""
        return float(self.challenger.horizon)

    @property
    def feature_names_in_(self) -> np.ndarray:
        """The columns the scoring table must hold (the base expectation is computed here)."""
        return np.array([c for c in self.challenger.feature_names_in_ if c != BASE_COLUMN],
                        dtype=object)

    @accepts_tables(keyed=("X",))
    def adjusted_activity(self, X: pd.DataFrame) -> pd.DataFrame:
        """The challenger's P(any purchase) and its factor on the BTYD model's expectations.

        Parameters
        ----------
        X : pandas.DataFrame
            ``frequency``, ``recency``, ``T`` and the challenger's features
            (:attr:`feature_names_in_`).

        Returns
        -------
        pandas.DataFrame
            On ``X``'s index: the challenger's P(any purchase) (``probability_of_purchase``),
            its factor on the BTYD model's expected purchases (``adjustment_factor``), the BTYD
            model's P(any purchase) (``base_probability_of_purchase``) and, when it predicts
            spend, its ``expected_spend`` over the horizon.

        Raises
        ------
        ClvlabError
            Where no BTYD model is set (``base_model_`` None).
        """
        if self.base_model_ is None:
            raise ClvlabError("the challenger has no BTYD model to replace (base_model_ is None): "
                              "score it through the CLV model that holds it")
        rfm = X[RFM]
        rfm.attrs = X.attrs
        base_p = self.base_model_.probability_of_purchase(rfm, self.horizon).to_numpy()
        base_e = self.base_model_.expected_purchases(rfm, self.horizon).to_numpy()
        design = X[[c for c in self.challenger.feature_names_in_ if c != BASE_COLUMN]].copy()
        if BASE_COLUMN in self.challenger.feature_names_in_:
            design[BASE_COLUMN] = base_e
            design = design[list(self.challenger.feature_names_in_)]
        predicted = self.challenger.predict(design)
        out = {"probability_of_purchase": predicted["p_active"].to_numpy(),
               "adjustment_factor": predicted["expected_purchases"].to_numpy()
               / np.maximum(base_e, 1e-300),
               "base_probability_of_purchase": base_p}
        if "expected_spend" in predicted:
            out["expected_spend"] = predicted["expected_spend"].to_numpy()
        return pd.DataFrame(out, index=X.index)

    def save(self, path: str | Path, overwrite: bool = True) -> None:
        """Write the challenger's files (JSON + skops parts) with this wrapper's candidate name.

        Parameters
        ----------
        path : str or pathlib.Path
            The JSON file; the parts' skops files go beside it.
        overwrite : bool, default True
            Replace existing files; False raises ClvlabError where one exists.
        """
        save_challenger(self.challenger, path, overwrite, extra={"candidate": self.candidate_name_})

    @classmethod
    def load(cls, path: str | Path, trusted: list[str] | None = None) -> "ChallengerAdjustment":
        """Read a challenger file (any kind); the base model is set by the CLV model.

        Parameters
        ----------
        path : str or pathlib.Path
            The JSON file written by :meth:`save` (or a challenger's own ``save``).
        trusted : list of str, optional
            Types beyond those clvlab trusts that the caller trusts in its skops files.

        Returns
        -------
        ChallengerAdjustment
            With ``base_model_`` None.

        Raises
        ------
        ClvlabError
            Where the file is unreadable or not a challenger's.
        """
        path = Path(path)
        try:
            payload = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise ClvlabError(f"{path} is not a readable challenger file ({exc})") from None
        kind = CHALLENGER_KINDS.get(payload.get("kind"))
        if kind is None:
            raise ClvlabError(f"{path} holds a {payload.get('kind')!r}, not a challenger "
                              f"({', '.join(CHALLENGER_KINDS)})")
        return cls(load_challenger(path, kind, trusted), None, payload.get("candidate"))

    def __repr__(self) -> str:
        return (f"ChallengerAdjustment({self.candidate_name_!r}, horizon={self.horizon:g}, "
                f"{len(self.feature_names_in_)} features)")
