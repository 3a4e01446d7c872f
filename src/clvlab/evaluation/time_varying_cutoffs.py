"""Time-varying covariates in a backtest: where they come from, which candidates read them, and
each cutoff's covariate paths.

The user gives ``backtest(..., covariate_panel=..., calendar=...)`` (:func:`covariate_source`):
a panel (one row per customer and period: the customer id, the period's start and covariate
columns; :mod:`clvlab.data.covariate_panel`) and/or a calendar shared by all customers (e.g.
:func:`clvlab.seasonal_covariates`). A candidate's bracket column that the panel or the calendar
holds is read along the customer's path; its other columns are static customer attributes
(``customer_attributes``). So ``"pareto-nbd[High.Season,Gender]"`` with a panel holding
``High.Season`` and attributes holding ``Gender`` is a Pareto/NBD with a time-varying purchase
and dropout covariate High.Season and static Gender (:func:`time_varying_candidates`).

At each cutoff the paths (:func:`clvlab.covariate_paths`) are built from the calibration summary
and the log up to the cutoff (the repeat purchases of each piece, for the fit) and reach the end
of the holdout window (for the predictions). The covariates over the holdout are the panel's or
calendar's as the user supplied them: a realised path, or one known in advance (a campaign or
season calendar) — an oracle of the future covariates, which a forecast of them cannot beat.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import pandas as pd

from clvlab.core.errors import ClvlabError
from clvlab.data.covariate_inputs import calendar_period_column
from clvlab.data.calibration import Calibration
from clvlab.evaluation.candidates import Candidate, ModelCandidate, covariate_columns
from clvlab.evaluation.time_varying_candidate import TimeVaryingCandidate
from clvlab.models.time_varying import TIME_VARYING_MODELS

__all__ = ["CovariateSource", "covariate_source", "time_varying_candidates", "PathCalibration",
           "CutoffPaths"]


@dataclass(frozen=True)
class CovariateSource:
    """The time-varying covariates a backtest was given: the panel (a DataFrame, Parquet/CSV
    files, a DuckDB relation or a Spark DataFrame, passed on to :func:`clvlab.covariate_paths`)
    and the calendar, with the covariate columns each holds."""

    panel: Any
    calendar: pd.DataFrame | None
    customer_col: str | None      # the panel's customer column (None: the log's)
    period_col: str
    panel_columns: tuple[str, ...]
    calendar_columns: tuple[str, ...]

    @property
    def columns(self) -> tuple[str, ...]:
        return self.panel_columns + self.calendar_columns

    def describe(self) -> dict[str, Any]:
        """What the result's settings record (JSON)."""
        panel = None if self.panel is None else (
            str(self.panel) if isinstance(self.panel, (str, Path)) else "DataFrame")
        return {"panel": panel, "panel_columns": list(self.panel_columns),
                "calendar_columns": list(self.calendar_columns), "period_col": self.period_col}


def covariate_source(panel: Any, calendar: Any, *, customer_col: str | None, period_col: str,
                     log_customer_col: str) -> CovariateSource | None:
    """The backtest's time-varying covariates, checked for their columns (None without any)."""
    if panel is None and calendar is None:
        return None
    if not isinstance(period_col, str):
        raise ClvlabError(f"covariate_period_col must be a column name, got {period_col!r}")
    panel_columns: tuple[str, ...] = ()
    if panel is not None:
        ids = customer_col or log_customer_col
        present = _panel_columns(panel)
        for role, name in (("customer", ids), ("period", period_col)):
            if name not in present:
                option = "covariate_customer_col" if role == "customer" else "covariate_period_col"
                raise ClvlabError(f"the covariate panel has no {role} column {name!r} (set "
                                  f"{option}=); its columns are {present}")
        panel_columns = tuple(c for c in present if c not in (ids, period_col))
    calendar_columns: tuple[str, ...] = ()
    if calendar is not None:
        if not isinstance(calendar, pd.DataFrame):
            raise ClvlabError(f"calendar must be a pandas DataFrame (one row per period, e.g. "
                              f"clvlab.seasonal_covariates(...)), not {type(calendar).__name__}")
        when = calendar_period_column(calendar, period_col)  # the data layer's rule
        calendar_columns = tuple(c for c in calendar.columns if c != when)
    both = sorted(set(panel_columns) & set(calendar_columns))
    if both:
        raise ClvlabError(f"the covariate(s) {both} are columns of both the covariate panel and "
                          "the calendar; rename one")
    if not panel_columns + calendar_columns:
        raise ClvlabError("the covariate panel and calendar hold no covariate column, only ids "
                          "and periods")
    return CovariateSource(panel, calendar, customer_col, period_col, panel_columns,
                           calendar_columns)


def _panel_columns(panel: Any) -> list[str]:
    """A panel's column names, read without its rows (files: their schema, by DuckDB)."""
    if hasattr(panel, "columns") and not isinstance(panel, (str, Path)):
        return [str(c) for c in panel.columns]
    files = [panel] if isinstance(panel, (str, Path)) else list(panel)
    if not files:
        raise ClvlabError("covariate_panel is an empty list of files")
    import duckdb

    first = str(files[0])
    reader = "read_parquet" if first.lower().endswith(".parquet") else "read_csv_auto"
    try:
        with duckdb.connect() as connection:
            return list(connection.sql(f"SELECT * FROM {reader}(?) LIMIT 0",
                                       params=[first]).columns)
    except duckdb.Error as exc:
        raise ClvlabError(f"cannot read the covariate panel {first}: {exc}") from None


def time_varying_candidates(named: Mapping[str, Candidate], source: CovariateSource,
                            attributes: Any) -> dict[str, Candidate]:
    """The candidates, with each model candidate whose transaction model reads a column of the
    panel or calendar turned into a :class:`TimeVaryingCandidate`; every column a candidate
    reads checked, before any work, to be in the panel, the calendar or the attributes."""
    present = set(getattr(attributes, "columns", []))
    out: dict[str, Candidate] = {}
    for name, candidate in named.items():
        if type(candidate) is ModelCandidate:
            model = candidate.transaction_model
            along = [c for c in covariate_columns(model) if c in source.columns]
            if along:
                model_name = type(model).__name__
                if model_name not in TIME_VARYING_MODELS:
                    raise ClvlabError(
                        f"candidate {name!r} reads {along} from the covariate "
                        f"{_where(source, along)} along paths, but {model_name} does not take "
                        f"time-varying covariates; the models that do are "
                        f"{sorted(TIME_VARYING_MODELS)} (pareto-nbd, bg-nbd)")
                candidate = TimeVaryingCandidate(model, candidate.spend_model, name=name,
                                                 path_columns=along)
        static = list(getattr(candidate, "attribute_columns", []))
        absent = [c for c in static if c not in present]
        if absent:
            spend = [c for c in absent if c in source.columns]
            if spend:
                raise ClvlabError(
                    f"candidate {name!r} reads {spend} as static customer attributes (a spend "
                    "model's covariates, or a candidate that takes no paths), which only the "
                    f"covariate {_where(source, spend)} holds; give them in customer_attributes")
            held = (f"customer_attributes has {sorted(map(str, present))}"
                    if attributes is not None else "no customer_attributes were given")
            raise ClvlabError(
                f"candidate {name!r} reads the column(s) {absent}, which are neither customer "
                f"attributes ({held}) nor covariates of the panel {list(source.panel_columns)} "
                f"or the calendar {list(source.calendar_columns)}")
        out[name] = candidate
    return out


def _where(source: CovariateSource, columns: list[str]) -> str:
    return "panel" if all(c in source.panel_columns for c in columns) else (
        "calendar" if all(c in source.calendar_columns for c in columns) else "panel and calendar")


@dataclass(frozen=True)
class PathCalibration(Calibration):
    """One cutoff's :class:`~clvlab.data.calibration.Calibration` with its covariate paths:
    ``covariate_paths(columns)`` gives the :class:`clvlab.CovariatePaths` of those columns for
    the calibration customers, from their first purchase to the end of the holdout window."""

    covariate_paths: Callable[[tuple[str, ...]], Any] | None = field(default=None, compare=False)


class CutoffPaths:
    """The covariate paths of one cutoff, built once per set of columns."""

    def __init__(self, source: CovariateSource, rfm: pd.DataFrame, log: pd.DataFrame,
                 horizon: float, *, date_col: str, amount_col: str | None,
                 date_format: str | None):
        self.source, self.rfm, self.log, self.horizon = source, rfm, log, horizon
        self.options = {"date_col": date_col, "amount_col": amount_col, "date_format": date_format}
        self._built: dict[tuple[str, ...], Any] = {}

    def __call__(self, columns: tuple[str, ...]) -> Any:
        from clvlab.data.covariate_paths import covariate_paths

        columns = tuple(columns)
        if columns not in self._built:
            source = self.source
            # a candidate that reads only the calendar needs no panel (nor its coverage)
            panel = source.panel if any(c in source.panel_columns for c in columns) else None
            calendar = (source.calendar if any(c in source.calendar_columns for c in columns)
                        else None)
            self._built[columns] = covariate_paths(
                panel, self.rfm, transactions=self.log, calendar=calendar, horizon=self.horizon,
                customer_col=source.customer_col, period_col=source.period_col,
                covariates=list(columns), **self.options)
        return self._built[columns]


def with_paths(calibration: Calibration, paths: CutoffPaths) -> PathCalibration:
    """``calibration`` with its cutoff's covariate paths."""
    return PathCalibration(rfm=calibration.rfm, periods=calibration.periods,
                           cutoff=calibration.cutoff, time_unit=calibration.time_unit,
                           attributes=calibration.attributes, covariate_paths=paths)
