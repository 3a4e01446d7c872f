"""Totals with intervals for groups of scored customers: the scoring job's ``--totals-by``.

``--totals-by channel`` (a column of the attributes, of the log, or of the RFM table; several
columns, or ``all`` for the whole base) writes, beside the scores, one row per group and
quantity: the expected total of purchases over the horizon (and, with a spend model, of revenue:
undiscounted spend), the process, parameter and total sds and the central interval at the
level. The numbers are those of :func:`clvlab.models.totals.purchase_totals` and
:func:`~clvlab.models.totals.revenue_totals` for the same parameter draws:

- given the parameters, customers are independent, so a group's total has the sum of the
  customers' means and variances. The job streams customers: each chunk's distinct rows get
  their moments at every parameter draw, summed per (group, draw) (:func:`batch_moments`), so
  memory is draws x groups, not customers;
- parameter uncertainty comes on top (``parameter_uncertainty``: ``auto``, the posterior after
  a Bayesian fit and the asymptotic normal after maximum likelihood; ``posterior``, ``normal``,
  ``bootstrap``, or ``none``), ``parameter_draws`` draws (by
  :func:`clvlab.inference.uncertainty.parameter_draws`, ``seed``), and the interval is the
  mixture's over the draws;
- a group of at most ``EXACT_MAX_CUSTOMERS`` customers gets the exact distribution of its
  total given the parameters, which needs its customers' rows: those are kept (at most that many
  per group) and handed to ``purchase_totals``/``revenue_totals`` at the end.

The table (``by``, ``group`` as text, ``quantity``, then the totals' columns) is written as
``<output stem>.totals.parquet`` (or ``.csv`` beside a CSV output). Spark computes the same
sums on its workers (:mod:`clvlab.ops.spark_totals`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import pandas as pd

from clvlab.core.errors import ClvlabError, DataValidationError, example_row
from clvlab.models.totals import EXACT_MAX_CUSTOMERS, purchase_totals, revenue_totals
from clvlab.models.totals_distribution import mixture_summary
from clvlab.models.totals_moments import (DEFAULT_DRAWS, purchase_moments,
                                          revenue_given_purchases)

__all__ = ["ALL", "UNCERTAINTY", "TotalsSettings", "TotalsAccumulator", "totals_settings",
           "totals_path", "check_group_columns", "draws_for", "models_at", "batch_moments",
           "label_text", "summary_rows", "exact_rows", "model_columns", "sorted_labels",
           "assemble", "finish", "REVENUE_FAMILY"]

#: ``--totals-by all``: the whole base, one group
ALL = "all"
#: where parameter draws come from (``none``: the totals at the estimates, process noise only)
UNCERTAINTY = ("auto", "posterior", "normal", "bootstrap", "none")
#: the distribution given the parameters of a revenue total (``revenue_totals``'s: positive)
REVENUE_FAMILY = "gamma"


@dataclass(frozen=True)
class TotalsSettings:
    """What ``--totals-by`` asked for: the groupings (column names, or ``all``), the interval's
    level and where the parameter draws come from."""

    by: tuple[str, ...]
    level: float
    uncertainty: str
    n_draws: int
    seed: int

    @property
    def columns(self) -> list[str]:
        """The columns the groupings read (``all`` reads none)."""
        return [b for b in self.by if b != ALL]

    def params(self) -> dict[str, str]:
        """The scoring run's parameters that say how the totals were made."""
        draws = 0 if self.uncertainty == "none" else self.n_draws
        return {"totals_by": ",".join(self.by), "totals_level": f"{self.level:g}",
                "parameter_uncertainty": self.uncertainty, "parameter_draws": str(draws),
                "seed": str(self.seed)}


def totals_settings(totals_by: Any, *, level: float | None = None,
                    parameter_uncertainty: str = "auto", parameter_draws: Any = DEFAULT_DRAWS,
                    seed: Any = 0) -> TotalsSettings | None:
    """The checked ``--totals-by`` settings, or None when no totals were asked for.

    Parameters
    ----------
    totals_by : a column name, a comma list (``"channel,region"``), a list of them, or ``all``.
    level : the interval's level (None: 0.9).
    parameter_uncertainty : one of :data:`UNCERTAINTY`.
    parameter_draws : draws of the parameters (>= 1; ignored with ``none``).
    seed : of the draws.

    Returns
    -------
    TotalsSettings or None

    Raises
    ------
    ClvlabError
        Naming the option, the rule and an example.
    """
    from clvlab.ops.scoring_intervals import check_interval_level, check_seed

    if totals_by is None or (isinstance(totals_by, (list, tuple)) and not totals_by):
        return None
    items = [totals_by] if isinstance(totals_by, str) else list(totals_by)
    by: list[str] = []
    for item in items:
        if not isinstance(item, str):
            raise ClvlabError(f"totals_by (--totals-by) takes column names, e.g. --totals-by "
                              f"channel (or 'all' for the whole base); got {item!r}")
        for name in (n.strip() for n in item.split(",")):
            if not name:
                raise ClvlabError(f"totals_by (--totals-by) has an empty column name in {item!r}; "
                                  "give column names separated by commas, e.g. channel,region")
            if name not in by:
                by.append(name)
    if parameter_uncertainty not in UNCERTAINTY:
        raise ClvlabError(f"parameter_uncertainty (--parameter-uncertainty) must be one of "
                          f"{list(UNCERTAINTY)}, e.g. normal; got {parameter_uncertainty!r}")
    if isinstance(parameter_draws, (bool, np.bool_)) or not isinstance(
            parameter_draws, (int, np.integer)) or parameter_draws < 1:
        raise ClvlabError(f"parameter_draws (--parameter-draws) must be a whole number >= 1 of "
                          f"parameter draws, e.g. 200 (--parameter-uncertainty none for none); "
                          f"got {parameter_draws!r}")
    return TotalsSettings(tuple(by), check_interval_level(0.9 if level is None else level),
                          parameter_uncertainty, int(parameter_draws), check_seed(seed))


def totals_path(output: str | Path) -> Path:
    """Where the totals go: ``scores.parquet`` -> ``scores.totals.parquet``, ``scores.csv`` ->
    ``scores.totals.csv``, a Spark folder ``scores`` -> ``scores.totals.parquet``."""
    output = Path(output)
    suffix = output.suffix.lower()
    if suffix in (".csv", ".parquet", ".pq"):
        return output.with_name(f"{output.stem}.totals{output.suffix}")
    return output.with_name(f"{output.name}.totals.parquet")


def check_group_columns(settings: TotalsSettings, available: Sequence[str], source: str) -> None:
    """Every grouping is ``all`` or a column of ``available`` (what ``source`` holds)."""
    absent = [c for c in settings.columns if c not in available]
    if absent:
        raise ClvlabError(
            f"totals_by (--totals-by) names {absent}, which is not a column of {source} (it has "
            f"{sorted(map(str, available))}); give a column with one value per customer, e.g. "
            "--totals-by channel with the customers' attributes (--attributes FILE), or "
            "--totals-by all for the whole base")


def draws_for(models: Sequence[Any], settings: TotalsSettings) -> list[np.ndarray] | None:
    """One array of parameter draws per model (the same number each), or None for ``none``."""
    from clvlab.inference.uncertainty import parameter_draws

    if settings.uncertainty == "none":
        return None
    draws = []
    for model in models:
        try:
            draws.append(parameter_draws(model, settings.n_draws, settings.seed,
                                         settings.uncertainty))
        except ClvlabError as exc:
            raise ClvlabError(f"the totals' parameter uncertainty (--parameter-uncertainty "
                              f"{settings.uncertainty}): {exc}; or pass "
                              "--parameter-uncertainty none for totals without it") from None
    n = min(len(d) for d in draws)
    return [d[:n] for d in draws]


def models_at(transaction, spend, draws: list[np.ndarray] | None) -> list[tuple]:
    """[(transaction model, spend model or None)] at each draw (or the fitted ones)."""
    if draws is None:
        return [(transaction, spend)]
    spends = [None] * len(draws[0]) if spend is None else [spend.at_params(d) for d in draws[1]]
    return [(transaction.at_params(d), s) for d, s in zip(draws[0], spends)]


def model_columns(transaction, spend) -> list[str]:
    """The columns the models read: RFM columns, ``monetary_value`` with a spend model, and
    covariates."""
    from clvlab.ops.serving import covariate_columns

    columns = ["frequency", "recency", "T"] + (["monetary_value"] if spend is not None else [])
    return columns + [c for c in covariate_columns(transaction, spend) if c not in columns]


def label_text(values: Any) -> np.ndarray:
    """Group labels as text (every engine writes them so), refusing a missing one."""
    return np.asarray([str(v.item() if isinstance(v, np.generic) else v) for v in values],
                      dtype=object)


def _labels(chunk: pd.DataFrame, by: str) -> np.ndarray:
    if by == ALL:
        return np.full(len(chunk), ALL, dtype=object)
    values = chunk[by]
    missing = values.isna().to_numpy()
    if missing.any():
        raise DataValidationError(by, "has no value for a customer, and every customer needs a "
                                      "group for the totals (--totals-by); fill it, or total by "
                                      "another column", example_row(chunk, int(np.flatnonzero(missing)[0])))
    return label_text(values.to_numpy())


def batch_moments(models: list[tuple], chunk: pd.DataFrame, horizon: float, by: Sequence[str],
                  columns: Sequence[str], time_unit: str | None) -> dict[str, tuple]:
    """Per grouping: (labels, customers, sums) of one chunk, sums of shape (4, draws, groups):
    the means and variances of purchases and revenue (zeros without a spend model) summed
    over each group's customers, at each draw. Purchase moments are computed once per
    distinct history (the transaction model's columns and covariates), as ``purchase_totals``
    computes them; revenue's from them and each distinct row's spend history."""
    from clvlab.models.table_units import checked
    from clvlab.ops.serving import covariate_columns

    labels, codes = {}, {}
    for b in by:
        codes[b], distinct = pd.factorize(_labels(chunk, b), sort=False)
        labels[b] = np.asarray(distinct, dtype=object)
    key = chunk[list(columns)].copy()
    for i, b in enumerate(by):
        key[f"__group{i}"] = codes[b]
    row = _row_codes(key)
    _, first = np.unique(row, return_index=True)
    weights = np.bincount(row, minlength=len(first)).astype(np.float64)
    table = chunk.iloc[first][list(columns)]
    table.attrs = {"clvlab": {"time_unit": time_unit}}
    transaction = models[0][0]
    history = [c for c in (*transaction.columns, *covariate_columns(transaction))
               if c in table.columns]
    history_of_row = _row_codes(table[history])
    _, first_history = np.unique(history_of_row, return_index=True)
    histories = table.iloc[first_history]
    row_codes = {b: codes[b][first] for b in by}
    out = {b: np.zeros((4, len(models), len(labels[b]))) for b in by}
    with checked():  # the job checked the table's unit when it scored it
        for d, (transaction, spend) in enumerate(models):
            mean, variance = purchase_moments(transaction, histories, horizon)
            parts = [mean[history_of_row], variance[history_of_row]]
            if spend is not None:
                parts += list(revenue_given_purchases(spend, table, *parts, unvalued="population"))
            for b in by:
                for k, values in enumerate(parts):
                    out[b][k, d] = np.bincount(row_codes[b], weights=weights * values,
                                               minlength=len(labels[b]))
    return {b: (labels[b], np.bincount(codes[b], minlength=len(labels[b])).astype(np.float64),
                out[b]) for b in by}


def _row_codes(key: pd.DataFrame) -> np.ndarray:
    """Each row's distinct-row number (covariates may be text: grouped by pandas)."""
    return key.groupby(list(key.columns), sort=False, dropna=False).ngroup().to_numpy()


def summary_rows(means: np.ndarray, variances: np.ndarray, level: float, family: str) -> dict:
    """The totals' columns from each draw's means and variances (draws x groups), as
    ``purchase_totals`` makes them (``totals_distribution.mixture_summary``)."""
    out = mixture_summary(means, variances, [level], family)
    out["distribution"] = np.full(len(out["expected"]), family, object)
    return out


def exact_rows(transaction, spend, rows: pd.DataFrame, labels: np.ndarray, horizon: float,
               settings: TotalsSettings, draws: list[np.ndarray] | None,
               time_unit: str | None) -> dict[str, pd.DataFrame]:
    """{quantity: the totals of small groups} by ``purchase_totals`` (and ``revenue_totals``)
    on their customers' rows, indexed by label text."""
    options = dict(by=np.asarray(labels, dtype=object), level=settings.level, seed=settings.seed,
                   time_unit=time_unit, check_durations=False)
    out = {"purchases": purchase_totals(transaction, rows, horizon,
                                        parameter_draws=0 if draws is None else draws[0], **options)}
    if spend is not None:
        out["revenue"] = revenue_totals(transaction, spend, rows, horizon,
                                        parameter_draws=0 if draws is None else (draws[0], draws[1]),
                                        unvalued="population", **options)
    return out


def sorted_labels(labels: Sequence[str]) -> list[str]:
    """Labels in order: as numbers when every one is a number, else as text."""
    try:
        return sorted(labels, key=float)
    except ValueError:
        return sorted(labels)


class TotalsAccumulator:
    """The scoring job's totals, chunk by chunk (see the module docstring).

    Parameters
    ----------
    transaction, spend : the fitted models (``spend`` None: purchases only).
    horizon : in the model's time unit.
    settings : :func:`totals_settings`.
    time_unit : the model's unit (the chunks carry none).
    draws : :func:`draws_for` ``([transaction, spend])``, computed before the work.
    """

    def __init__(self, transaction, spend, horizon: float, settings: TotalsSettings,
                 time_unit: str | None, draws: list[np.ndarray] | None):
        self.transaction, self.spend = transaction, spend
        self.horizon, self.settings, self.time_unit, self.draws = horizon, settings, time_unit, draws
        self.models = models_at(transaction, spend, draws)
        self.columns = model_columns(transaction, spend)
        self.sums: dict[str, dict[str, np.ndarray]] = {b: {} for b in settings.by}
        self.customers: dict[str, dict[str, float]] = {b: {} for b in settings.by}
        self.rows: dict[str, dict[str, list[pd.DataFrame]]] = {b: {} for b in settings.by}

    def add(self, chunk: pd.DataFrame) -> None:
        """Add one chunk of customers (the model's columns and the grouping columns)."""
        if not len(chunk):
            return
        moments = batch_moments(self.models, chunk, self.horizon, self.settings.by,
                                self.columns, self.time_unit)
        for b, (labels, customers, sums) in moments.items():
            label_of_row = _labels(chunk, b)
            for j, label in enumerate(labels):
                seen = self.customers[b].get(label, 0.0) + customers[j]
                self.customers[b][label] = seen
                self.sums[b][label] = self.sums[b].get(label, 0.0) + sums[:, :, j]
                kept = self.rows[b].setdefault(label, [])
                if kept is not None and seen <= EXACT_MAX_CUSTOMERS:
                    kept.append(chunk.loc[label_of_row == label, self.columns])
                else:  # too large for the exact distribution: its rows are not needed
                    self.rows[b][label] = None

    def tap(self, chunks: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        """The chunks, each added once the consumer has taken the next (so after it was
        scored: a chunk the model refuses fails with the scoring's own message)."""
        for chunk in chunks:
            yield chunk
            self.add(chunk)

    def frame(self) -> pd.DataFrame:
        """The totals table (see the module docstring)."""
        parts = []
        for b in self.settings.by:
            labels = sorted_labels(list(self.customers[b]))
            if not labels:
                continue
            small = [lab for lab in labels if self.rows[b].get(lab) is not None]
            exact = {}
            if small:
                rows = pd.concat([part for lab in small for part in self.rows[b][lab]])
                texts = np.concatenate([np.full(sum(len(p) for p in self.rows[b][lab]), lab, object)
                                        for lab in small])
                exact = exact_rows(self.transaction, self.spend, rows, texts, self.horizon,
                                   self.settings, self.draws, self.time_unit)
            sums = np.stack([self.sums[b][lab] for lab in labels], axis=-1)  # (4, draws, groups)
            customers = np.array([self.customers[b][lab] for lab in labels])
            parts += assemble(b, labels, customers, sums, exact, self.settings.level,
                              self.spend is not None)
        return finish(parts, self.settings, self.horizon, self.time_unit, len(self.models))


def assemble(by: str, labels: list[str], customers: np.ndarray, sums: np.ndarray,
             exact: dict[str, pd.DataFrame], level: float, revenue: bool) -> list[pd.DataFrame]:
    """The rows of one grouping: sums for large groups, ``exact``'s rows for the others."""
    parts = []
    quantities = [("purchases", 0, "normal")] + ([("revenue", 2, REVENUE_FAMILY)] if revenue else [])
    for quantity, k, family in quantities:
        frame = pd.DataFrame(summary_rows(sums[k], sums[k + 1], level, family))
        frame.insert(0, "customers", customers.astype(np.int64))
        frame.insert(0, "quantity", quantity)
        frame.insert(0, "group", labels)
        frame.insert(0, "by", by)
        table = exact.get(quantity)
        if table is not None and len(table):
            mine = frame["group"].isin(table.index).to_numpy()
            chosen = table.loc[frame.loc[mine, "group"]]
            for column in frame.columns[4:]:
                frame.loc[mine, column] = chosen[column].to_numpy()
        parts.append(frame)
    return parts


def finish(parts: list[pd.DataFrame], settings: TotalsSettings, horizon: float,
           time_unit: str | None, draws: int) -> pd.DataFrame:
    """One table of every grouping's rows, with what made them in ``attrs``."""
    table = pd.concat(parts, ignore_index=True)
    table["customers"] = table["customers"].astype(np.int64)
    table.attrs["clvlab"] = {"horizon": float(horizon), "time_unit": time_unit,
                             "parameter_draws": int(draws) if settings.uncertainty != "none" else 0,
                             **settings.params()}
    return table
