"""What a backtest compares: clvlab models (alone or with a spend model) and baselines.

A candidate sees only the calibration data of one cutoff (:class:`Calibration`) and predicts,
for every calibration customer, the expected purchases, expected spend and probability of at
least one purchase in the holdout window. A fresh copy is fitted at every cutoff.
"""

from __future__ import annotations


import numpy as np
import pandas as pd
from sklearn.base import clone

from clvlab.core.errors import ClvlabError
from clvlab.data.calibration import Calibration
from clvlab.inference.grouping import group_rows
from clvlab.models.covariates import PROCESS_SETTINGS
from clvlab.models.customer_params import plain_models
from clvlab.models.registry import entry_for

__all__ = ["Calibration", "Candidate", "ModelCandidate", "PerSegment", "model_name",
           "covariate_columns", "with_attributes"]


class Candidate:
    """A backtest candidate: ``fit`` on one cutoff's calibration data, then ``predict``.

    ``fit`` is told the holdout horizon (a candidate may train for it, e.g. the churn adjuster);
    ``predict`` is asked for that horizon and for shorter ones (the tracking curve)."""

    name = "candidate"
    #: whether the candidate's formula needs spend (an LTV, ARPU or AOV): the backtest refuses
    #: such candidates up front on a log without an amount column.
    needs_amounts = False

    def fit(self, calibration: Calibration, horizon: float) -> "Candidate":
        """Fit on one cutoff's calibration data (a baseline of no parameters: nothing to do).

        Parameters
        ----------
        calibration : Calibration
            One cutoff's calibration data (:func:`clvlab.backtesting.calibration_data`).
        horizon : float
            The holdout window, in the summary's time unit (a candidate may train for it).

        Returns
        -------
        Candidate
            self, fitted.
        """
        return self

    def predict(self, calibration: Calibration, horizon: float) -> pd.DataFrame:
        """Predict every calibration customer's purchases (and spend) in the window.

        Parameters
        ----------
        calibration : Calibration
            The cutoff's calibration data ``fit`` was given.
        horizon : float
            The window after the cutoff, in the summary's time unit: the holdout horizon or a
            shorter one.

        Returns
        -------
        pandas.DataFrame
            Indexed like ``calibration.rfm`` with ``expected_purchases``, ``p_active``
            and, for candidates that value purchases, ``expected_spend``.
        """
        raise NotImplementedError

    def total_expected_purchases(self, calibration: Calibration, horizons: np.ndarray) -> np.ndarray:
        """Expected purchases of all calibration customers together in each window of
        ``horizons`` (the backtest's tracking curve). This default predicts once per horizon;
        a candidate may compute it faster, with the same result.

        Parameters
        ----------
        calibration : Calibration
            The cutoff's data.
        horizons : numpy.ndarray
            Window lengths in the summary's time unit.

        Returns
        -------
        numpy.ndarray
            One total per horizon.
        """
        return np.array([float(self.predict(calibration, h)["expected_purchases"].sum())
                         for h in horizons])

    def purchase_distribution(self, calibration: Calibration):
        """(a fitted model with ``purchase_pmf``, the table it predicts from) when the
        candidate's predictions of purchases have a distribution, else None (the default: the
        baselines); a third item, when present, is a dict of keyword arguments for
        ``purchase_pmf`` (``covariate_paths`` of a time-varying candidate). The backtest
        scores its intervals and PMF (:mod:`clvlab.evaluation.interval_metrics`); call it
        after ``fit``.

        Parameters
        ----------
        calibration : Calibration
            The cutoff's calibration data ``fit`` was given.

        Returns
        -------
        tuple or None
            ``(model, table)`` or ``(model, table, options)``, or None.
        """
        return None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"


def model_name(model) -> str:
    """A model's registered name ("pareto-nbd"), or its class name for a model of the user's,
    with its covariates in brackets as :mod:`~clvlab.evaluation.candidate_names` writes them
    ("pareto-nbd[channel]", "pareto-nbd[purchase=gender;dropout=channel]",
    "bg-nbd[channel;dropout_form=b]"): the name reads back as the same model."""
    try:
        name = entry_for(model).name
    except ClvlabError:
        name = type(model).__name__
    settings = {process: list(getattr(model, setting, None) or [])
                for setting, process in PROCESS_SETTINGS.items()}
    used = {process: columns for process, columns in settings.items() if columns}
    shared = list(getattr(model, "shared_covariates", None) or [])
    if not used and not shared:
        return name
    offered = list(dict.fromkeys(process for process, _ in model.covariate_links().values()))
    lists = [",".join(columns) for columns in used.values()]
    parts = []
    if used and set(used) == set(offered) and len(set(lists)) == 1:
        parts.append(lists[0])
    else:
        parts += [f"{process}={text}" for process, text in zip(used, lists)]
    if shared:
        parts.append("shared=" + ",".join(shared))
    forms = getattr(type(model), "DROPOUT_FORMS", None)
    form = getattr(model, "dropout_form", None)
    if forms and form is not None and form != forms[0] and ("dropout" in used or shared):
        parts.append(f"dropout_form={form}")
    return f"{name}[{';'.join(parts)}]"


def covariate_columns(*models) -> list[str]:
    """The columns the models read beside the RFM summary (their covariates), in order."""
    columns = [column for model in models if model is not None
               for setting in PROCESS_SETTINGS for column in getattr(model, setting, None) or []]
    return list(dict.fromkeys(columns))


def with_attributes(calibration: Calibration, columns: list[str], name: str) -> pd.DataFrame:
    """The calibration summary with the customer attributes ``columns`` joined on (a candidate
    whose models have covariates fits and predicts on it), or a named error when the backtest
    was given no such attributes."""
    rfm = calibration.rfm
    if not columns:
        return rfm
    attributes = calibration.attributes
    if attributes is None:
        raise ClvlabError(f"candidate {name!r} reads the customer attributes {columns} (its "
                          "covariates); pass them to backtest(..., customer_attributes=...), a "
                          "DataFrame indexed by customer id")
    absent = [c for c in columns if c not in attributes.columns]
    if absent:
        raise ClvlabError(f"candidate {name!r} reads the customer attribute(s) {absent}, which "
                          f"customer_attributes lacks; it has {list(attributes.columns)}")
    clash = [c for c in columns if c in rfm.columns]
    if clash:
        raise ClvlabError(f"candidate {name!r} reads the customer attribute(s) {clash}, named "
                          "like columns of the RFM summary; rename the attribute")
    table = pd.concat([rfm, attributes[columns].set_axis(rfm.index)], axis=1)
    table.attrs = rfm.attrs  # the time unit the models check
    return table


class ModelCandidate(Candidate):
    """A clvlab transaction model, optionally with a Gamma-Gamma spend model.

    Both are copied and fitted by maximum likelihood (or whatever method they were built with)
    on the calibration summary. Spend is conditioned on calibration data only: expected spend =
    expected purchases x the spend model's conditional mean spend per purchase. Customers whose
    repeat purchases were all of value 0 cannot enter the Gamma-Gamma fit (it has no zero
    spend) and are valued at the population mean, like customers without repeats.

    Models with covariates read them from the backtest's ``customer_attributes``, joined onto
    the calibration summary before every fit and prediction (``attribute_columns``).

    Parameters
    ----------
    transaction_model : TransactionModel
        A clvlab transaction model (BetaGeo, ParetoNBD...), fitted or not: a copy is fitted at
        every cutoff.
    spend_model : GammaGamma or LogNormalSpend, optional
        A spend model; None: the candidate predicts no spend.
    name : str, optional
        The candidate's name in the results; None: the models' names joined by ``" + "``
        (``"pareto-nbd + gamma-gamma"``).
    """

    def __init__(self, transaction_model, spend_model=None, name: str | None = None):
        self.transaction_model = transaction_model
        self.spend_model = spend_model
        parts = [model_name(m) for m in (transaction_model, spend_model) if m is not None]
        self.name = name or " + ".join(parts)

    @property
    def needs_amounts(self) -> bool:
        """Whether the candidate predicts spend (it has a spend model): the log needs amounts."""
        return self.spend_model is not None

    @property
    def attribute_columns(self) -> list[str]:
        """The customer attributes the models read (their covariates): the backtest joins them
        onto each cutoff's calibration summary."""
        return covariate_columns(self.transaction_model, self.spend_model)

    def _table(self, calibration: Calibration) -> pd.DataFrame:
        return with_attributes(calibration, self.attribute_columns, self.name)

    def fit(self, calibration: Calibration, horizon: float) -> "ModelCandidate":
        """Fit copies of the models on the calibration summary (with the attributes joined on).

        The spend model sees the customers with repeat purchases of value > 0 only.

        Parameters
        ----------
        calibration : Calibration
            One cutoff's calibration data.
        horizon : float
            The holdout window (unused: the models do not train for a horizon).

        Returns
        -------
        ModelCandidate
            self, with ``transaction_model_`` and ``spend_model_`` (None without a spend model).

        Raises
        ------
        ClvlabError
            Where the models read customer attributes the backtest was not given.
        """
        rfm = self._table(calibration)
        self.transaction_model_ = clone(self.transaction_model, safe=False).fit(rfm)
        self.spend_model_ = None
        if self.spend_model is not None:
            valued = (rfm["frequency"] > 0) & (rfm["monetary_value"] > 0)
            self.spend_model_ = clone(self.spend_model, safe=False).fit(rfm[valued])
        return self

    def predict(self, calibration: Calibration, horizon: float) -> pd.DataFrame:
        """The fitted transaction model's predictions; spend from the spend model.

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
        rfm = self._table(calibration)
        model = self.transaction_model_
        if hasattr(model, "scores"):  # both at once, sharing P(alive): about half the work
            scores = model.scores(rfm, horizon)
            out = pd.DataFrame({"expected_purchases": scores["expected_purchases"],
                                "p_active": scores["probability_of_purchase"]})
        else:
            out = pd.DataFrame({"expected_purchases": model.expected_purchases(rfm, horizon),
                                "p_active": model.probability_of_purchase(rfm, horizon)})
        if self.spend_model_ is not None:
            out["expected_spend"] = (out["expected_purchases"]
                                     * self.spend_model_.expected_spend(rfm, unvalued="population"))
        return out

    def purchase_distribution(self, calibration: Calibration):
        """The fitted transaction model and its table, when the model has ``purchase_pmf`` and
        the candidate predicts with it unchanged (a subclass that corrects the predictions,
        the churn adjuster, has no distribution of its own: None).

        Parameters
        ----------
        calibration : Calibration
            The cutoff's data ``fit`` was given.

        Returns
        -------
        tuple or None
            ``(model, table)``, or None.
        """
        if type(self).predict is not ModelCandidate.predict:
            return None
        model = getattr(self, "transaction_model_", None)
        if not callable(getattr(model, "purchase_pmf", None)):
            return None
        return model, self._table(calibration)

    def total_expected_purchases(self, calibration: Calibration, horizons: np.ndarray) -> np.ndarray:
        """The tracking curve in one call of the model: each distinct history once per horizon
        (customers with the same history have the same expectation), weighted by how many
        customers share it; no P(any purchase) or spend, which the curve does not need. With
        covariates, the same within each covariate group, with that group's plain model.

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
        from clvlab.models.transaction import TransactionModel

        # a subclass that changes the predictions (the churn adjuster) must go through them,
        # and only a TransactionModel is known to predict from (frequency, recency, T) alone
        if (type(self).predict is not ModelCandidate.predict
                or not isinstance(self.transaction_model_, TransactionModel)):
            return super().total_expected_purchases(calibration, horizons)

        horizons = np.asarray(horizons, dtype=np.float64)
        model = self.transaction_model_
        if not hasattr(model, "covariates_"):
            return _history_totals(model, calibration.rfm, horizons)
        table = self._table(calibration)
        return sum(_history_totals(plain, table.iloc[positions], horizons)
                   for positions, plain in plain_models(model, table))


def _history_totals(model, rfm: pd.DataFrame, horizons: np.ndarray) -> np.ndarray:
    """Expected purchases of all of ``rfm``'s customers in each window of ``horizons``, by a
    model without covariates: each distinct history once per horizon."""
    _, inverse = group_rows([rfm[c].to_numpy(np.float64) for c in ("frequency", "recency", "T")])
    _, first = np.unique(inverse, return_index=True)  # a customer of each history
    counts = np.bincount(inverse, minlength=len(first))
    distinct = rfm.iloc[first]
    stacked = distinct.iloc[np.tile(np.arange(len(first)), len(horizons))]
    # the stacked table repeats each history once per horizon: the check that durations look
    # like the model's unit would count each repeat as more evidence, so it is not run on it
    # (the backtest built the summary in the model's unit itself)
    values = model.expected_purchases(stacked, np.repeat(horizons, len(first)),
                                      check_durations=False)
    return values.to_numpy(np.float64).reshape(len(horizons), len(first)) @ counts


class PerSegment(Candidate):
    """One copy of a transaction model per value of a customer attribute (``segment``): for
    segments known in advance (channel, region), and as the oracle in simulations where a
    segment the RFM summary cannot see drives behaviour. Needs the backtest's
    ``customer_attributes`` to hold the column.

    Parameters
    ----------
    transaction_model : TransactionModel
        A clvlab transaction model: one copy is fitted per segment at every cutoff.
    attribute : str
        The customer attribute whose values are the segments.
    name : str, optional
        The candidate's name; None: ``"<model> per <attribute>"``.
    """

    def __init__(self, transaction_model, attribute: str, name: str | None = None):
        self.transaction_model = transaction_model
        self.attribute = attribute
        base = model_name(transaction_model)
        self.name = name or f"{base} per {attribute}"

    def _segments(self, calibration: Calibration):
        if calibration.attributes is None or self.attribute not in calibration.attributes:
            raise ClvlabError(f"candidate {self.name!r} needs the customer attribute "
                              f"{self.attribute!r} (backtest(..., customer_attributes=...))")
        return calibration.rfm.groupby(calibration.attributes[self.attribute], sort=True)

    def fit(self, calibration: Calibration, horizon: float) -> "PerSegment":
        """Fit one copy of the transaction model on each segment's customers.

        Parameters
        ----------
        calibration : Calibration
            One cutoff's calibration data, with the attribute among its customer attributes.
        horizon : float
            The holdout window (unused).

        Returns
        -------
        PerSegment
            self, with ``models_``: segment value -> fitted model.

        Raises
        ------
        ClvlabError
            Where the calibration has no such customer attribute.
        """
        self.models_ = {key: clone(self.transaction_model, safe=False).fit(rows)
                        for key, rows in self._segments(calibration)}
        return self

    def predict(self, calibration: Calibration, horizon: float) -> pd.DataFrame:
        """Each segment's model predicts its own customers.

        Parameters
        ----------
        calibration : Calibration
            The cutoff's calibration data.
        horizon : float
            The window after the cutoff, in the summary's time unit.

        Returns
        -------
        pandas.DataFrame
            Indexed like ``calibration.rfm``: ``expected_purchases`` and ``p_active``.

        Raises
        ------
        ClvlabError
            Where a segment was not seen by ``fit``.
        """
        parts = []
        for key, rows in self._segments(calibration):
            if key not in self.models_:
                raise ClvlabError(f"segment {key!r} was not seen when {self.name!r} was fitted")
            model = self.models_[key]
            parts.append(pd.DataFrame({"expected_purchases": model.expected_purchases(rows, horizon),
                                       "p_active": model.probability_of_purchase(rows, horizon)}))
        return pd.concat(parts).loc[calibration.rfm.index]
