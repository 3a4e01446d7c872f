"""Scoring a model fitted with time-varying covariates: the covariate panel in every scoring path.

A model fitted along covariate paths (``model.fit(rfm, covariate_paths=...)``, Bachmann, Meierer
& Naef 2021) predicts a customer's future from the covariates the customer will have over the
horizon, so every scoring path takes a **covariate panel** reaching ``as_of + horizon`` (the
rules: :mod:`clvlab.data.covariate_panel`) and builds each customer's path with
:func:`clvlab.data.covariate_paths.covariate_paths` before scoring:

- ``clvlab predict MODEL RFM --covariates PANEL`` and ``clvlab score ... --covariates PANEL``
  (``clvlab.scoring.score(..., covariates=PANEL)``), optionally with a ``--calendar``;
- the MLflow pyfunc: the input frame carries the RFM rows, the customer id column and the
  static covariates; ``params`` name the panel (see :data:`PATH_PARAMS`):
  ``params={"horizon": 52, "time_unit": "W", "covariates": "/data/panel.parquet",
  "as_of": "2006-12-31"}``. The panel is read where the model runs (a file path, or a pandas
  DataFrame when :func:`clvlab.ops.serving.score_frame` is called in Python).

Only the columns the model reads along paths (``model.covariates_.time_varying``) are taken from
the panel (or the calendar); its static covariates come from the input rows as for any model
with covariates. The scores are those of the model's own methods with ``covariate_paths=``
(:func:`scores_along_paths`), so the command line, the job and the pyfunc agree with the API
exactly. A time-varying model scored without a panel, and a panel given for a model without
time-varying covariates, are refused with the option to use; a panel that does not reach the
horizon fails with the data layer's message (the customer and the first period missing).

Not along paths yet (refused before any work, naming the option): Spark scoring, totals per
group (their parameter draws), CLV quantiles (Monte Carlo over the path), churn adjusters.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from clvlab.core.errors import ClvlabError
from clvlab.data import covariate_inputs

__all__ = ["PATH_PARAMS", "PATH_PARAM_TYPES", "is_time_varying", "path_columns",
           "static_columns", "PanelSource", "panel_source", "check_panel_given",
           "refuse_along_paths", "read_calendar", "panel_columns", "scoring_table",
           "scores_along_paths", "rows_with_paths", "with_path_params", "path_metadata",
           "job_panel", "job_params"]

#: the pyfunc's parameters of a time-varying model (all text): the panel's file and its
#: columns, an optional calendar file, the date the rows' T is measured to, the input's id
#: column and the time zone of the panel's dates
PATH_PARAMS = {"covariates": None, "calendar": None, "as_of": None, "customer_col": None,
               "panel_customer_col": None, "period_col": "period", "timezone": None}
PATH_PARAM_TYPES = dict.fromkeys(PATH_PARAMS, "string")
#: the input's customer id column when neither the registration nor the call names one
DEFAULT_ID_COLUMN = "customer_id"


def is_time_varying(model: Any) -> bool:
    """Whether ``model`` was fitted along covariate paths."""
    return bool(path_columns(model))


def path_columns(model: Any) -> tuple[str, ...]:
    """The covariates ``model`` reads along paths (from a panel or calendar); () for others."""
    design = getattr(model, "covariates_", None)
    return tuple(getattr(design, "time_varying", ()) or ()) if design is not None else ()


def static_columns(model: Any) -> list[str]:
    """The covariates ``model`` reads from each customer's row (its static covariates)."""
    design = getattr(model, "covariates_", None)
    if design is None:
        return []
    varying = set(path_columns(model))
    return [c for c in design.encoder.columns if c not in varying]


@dataclass
class PanelSource:
    """Where a scoring job's paths come from: the panel (files or a DataFrame), an optional
    calendar (a DataFrame), the panel's id and period columns (id None: the table's)."""

    panel: Any
    calendar: Any = None
    customer_col: str | None = None
    period_col: str = "period"

    def check(self) -> "PanelSource":
        """Refuse a panel file that does not exist; read a calendar file (small, shared by
        every customer) into a DataFrame. A panel file stays a path: DuckDB reads only the
        rows of the customers scored."""
        if isinstance(self.panel, (str, Path)):
            self.panel = str(self.panel)
            _exists(self.panel, "covariates (--covariates)")
        self.calendar = read_calendar(self.calendar)
        return self

    def paths_for(self, model: Any, rfm: pd.DataFrame, horizon: float):
        """The paths of ``rfm``'s customers to ``calibration_end + horizon``, holding only the
        columns ``model`` reads along paths. ``rfm`` records its window in ``attrs``."""
        from clvlab.data.covariate_paths import covariate_paths

        self.check()
        return covariate_paths(self.panel, rfm, calendar=self.calendar, horizon=horizon,
                               customer_col=self.customer_col, period_col=self.period_col,
                               covariates=list(path_columns(model)))


def panel_source(covariates: Any, calendar: Any = None, *, customer_col: str | None = None,
                 period_col: str | None = None) -> PanelSource | None:
    """A :class:`PanelSource` (None when neither a panel nor a calendar is given); its files
    are looked at by :meth:`PanelSource.check`, after the model has said it wants them."""
    if covariates is None and calendar is None:
        return None
    return PanelSource(covariates, calendar, customer_col, period_col or "period")


def _exists(path: str, option: str) -> None:
    import glob

    if not (Path(path).exists() or glob.glob(path)):
        raise ClvlabError(f"{option}: {path} does not exist")


def read_calendar(calendar: Any) -> pd.DataFrame | None:
    """A calendar as a DataFrame: the data layer's reader (a DataFrame, or Parquet/CSV files by
    path, glob or list), with a missing file named as the option the scoring job was given."""
    if isinstance(calendar, (str, os.PathLike)):
        _exists(str(calendar), "calendar (--calendar)")
    return covariate_inputs.read_calendar(calendar)


def panel_columns(panel: Any) -> list[str]:
    """The column names of a panel: a DataFrame's, or a file's header (read by DuckDB, which
    reads Parquet, CSV and gzipped CSV alike, without reading the rows)."""
    if isinstance(panel, pd.DataFrame):
        return list(map(str, panel.columns))
    import duckdb

    path = str(panel)
    _exists(path, "covariates (--covariates)")
    quoted = path.replace("'", "''")
    try:
        with duckdb.connect() as con:
            return [d[0] for d in con.execute(f"SELECT * FROM '{quoted}' LIMIT 0").description]
    except duckdb.Error as exc:
        raise ClvlabError(f"covariates (--covariates) {path}: not a readable Parquet or CSV "
                          f"file ({exc})") from None


def check_panel_given(model: Any, source: PanelSource | None, *, option: str) -> None:
    """A time-varying model needs a panel; a model without time-varying covariates refuses one.
    ``option``: how the caller names the panel (``"--covariates PANEL"``)."""
    name = type(model).__name__
    varying = path_columns(model)
    if varying and source is None:
        raise ClvlabError(
            f"the {name} was fitted with time-varying covariates {list(varying)}: its scores "
            f"need each customer's covariates over the horizon; give the covariate panel "
            f"({option}) with one row per customer and period from the first purchase to "
            "as-of + horizon (or a calendar with those columns)")
    if source is not None and not varying:
        raise ClvlabError(
            f"a covariate panel ({option}) is for a model fitted with time-varying covariates "
            f"(fit(rfm, covariate_paths=...), `clvlab fit --covariates`); this {name} was not"
            + (f" (its covariates {static_columns(model)} are static customer attributes: give "
               "them as columns of the table or with --attributes)" if static_columns(model)
               else ""))


def refuse_along_paths(model: Any, *, adjuster: Any = None, spend: Any = None,
                       quantiles: Any = (), totals: bool = False,
                       engine: str | None = None) -> None:
    """What is not computed along covariate paths yet, refused before any work."""
    if not is_time_varying(model):
        return
    name = type(model).__name__
    if adjuster is not None:
        raise ClvlabError(f"a churn adjuster over a {name} fitted with time-varying covariates "
                          "is not supported: register the model without the adjuster")
    if engine == "spark":
        raise ClvlabError(f"engine='spark' does not score along covariate paths yet; score the "
                          f"{name} fitted with time-varying covariates with engine='duckdb' "
                          "(--engine duckdb)")
    if totals:
        raise ClvlabError(f"totals per group (totals_by, --totals-by) draw parameters, which "
                          f"are not available along covariate paths yet; score the {name} "
                          "without them")
    if spend is not None and quantiles:
        raise ClvlabError(f"CLV quantiles (quantiles with a spend model, --quantiles) are "
                          f"simulated futures, which are not available along covariate paths "
                          f"yet; score the {name} with --interval-level for the purchases' "
                          "interval, or without a spend model for the purchases' quantiles")


def scoring_table(frame: pd.DataFrame, *, id_column: str | None, as_of: Any,
                  time_unit: str, timezone: str | None = None) -> pd.DataFrame:
    """``frame``'s rows indexed by customer id, with the window a path needs in ``attrs``.

    The ids come from the column ``id_column`` (default ``customer_id``), or from the index
    when it carries that name (a table of ``rfm_summary``/``read_rfm``); a frame without them
    is refused (its rows would be joined to the panel as 0..n-1). ``as_of``: the date the rows'
    T is measured to (their calibration end); by default the one ``frame.attrs`` records."""
    from clvlab.data.rfm_io import parse_option_date

    recorded = dict((frame.attrs or {}).get("clvlab") or {})
    column = id_column or recorded.get("customer_col") or DEFAULT_ID_COLUMN
    if column in frame.columns:
        table = frame.set_index(column)
    elif frame.index.name == column:
        table = frame.copy()
    else:
        raise ClvlabError(
            f"the rows to score carry no customer id column {column!r} (they have "
            f"{list(map(str, frame.columns))}): a model fitted with time-varying covariates "
            "joins each customer to their covariate path by id; send the id column, or name it "
            "(params={'customer_col': ...}, --customer-col)")
    zone = timezone or recorded.get("timezone") or "UTC"
    end = as_of if as_of is not None else recorded.get("calibration_end")
    if end is None:
        raise ClvlabError(
            "the date the rows' T is measured to is unknown, and the covariate paths need it to "
            "place each customer's first purchase on the calendar: give it "
            "(params={'as_of': '2006-12-31'}; the scoring job's --as-of)")
    end = parse_option_date(end, "as_of", timezone=zone)
    given = recorded.get("calibration_end")
    if as_of is not None and given is not None and pd.Timestamp(given) != end:
        raise ClvlabError(f"as_of {end} differs from the calibration end {given} that the table "
                          "records; T is measured to the table's date: drop as_of or rebuild "
                          "the table")
    table.attrs = {"clvlab": {**recorded, "time_unit": time_unit, "customer_col": column,
                              "timezone": zone, "calibration_end": end.isoformat()}}
    return table


def scores_along_paths(transaction: Any, spend: Any, table: pd.DataFrame, paths: Any, *,
                       horizon: Any, discount_rate: Any = 0.0, margin: Any = 1.0,
                       time_unit: str | None = None, check_durations: bool = True) -> pd.DataFrame:
    """:func:`clvlab.models.customer_scores.score_customers` for a transaction model fitted
    with time-varying covariates: the same columns, rules and checks, each prediction taken
    along ``paths`` (``scores``, ``expected_spend``, ``customer_lifetime_value`` with
    ``covariate_paths=paths``). ``table``: the RFM rows indexed by customer id, with the
    static covariates of both models."""
    from clvlab.models.clv import check_rates, customer_lifetime_value
    from clvlab.models.customer_scores import RFM_INPUTS, output_columns, scoring_horizon
    from clvlab.models.registry import check_kind
    from clvlab.models.table_units import checked, table_in_model_unit

    check_kind(transaction, "transaction", "transaction_model")
    if spend is not None:
        check_kind(spend, "spend", "spend_model")
    horizon = scoring_horizon(horizon)
    check_rates(discount_rate, margin)
    model_unit = getattr(transaction, "time_unit_", None)
    table_in_model_unit(transaction, table, time_unit, check_durations=False,
                        what="the table to score")
    numbers = RFM_INPUTS + (["monetary_value"] if spend is not None else [])
    missing = [c for c in numbers if c not in table.columns]
    statics = list(dict.fromkeys(static_columns(transaction) + static_columns(spend)))
    absent = [c for c in statics if c not in table.columns]
    if missing or absent:
        need = " (the spend model values purchases: give the log's amount column)" \
            if "monetary_value" in missing else ""
        raise ClvlabError(f"the table to score lacks the column(s) {missing + absent}{need}; "
                          f"it has {list(map(str, table.columns))}")
    rfm = table[numbers].astype(np.float64)
    if statics:  # as given: the models encode them themselves
        rfm = pd.concat([rfm, table[[c for c in statics if c not in numbers]]], axis=1)
    rfm.attrs = {"clvlab": {"time_unit": model_unit}}
    if check_durations:
        table_in_model_unit(transaction, rfm, what="the table to score")
    with checked():
        out = transaction.scores(rfm, horizon, covariate_paths=paths)
        unvalued = 0
        if spend is not None:
            unvalued = int(((rfm["frequency"] > 0) & (rfm["monetary_value"] <= 0)).sum())
            out["expected_spend_per_purchase"] = spend.expected_spend(rfm, unvalued="population")
            out["clv"] = customer_lifetime_value(transaction, spend, rfm, horizon,
                                                 float(discount_rate), float(margin),
                                                 unvalued="population", covariate_paths=paths)
    out = out[output_columns(spend)]
    out.attrs = {"clvlab": {"time_unit": model_unit, "horizon": horizon,
                            "customers_unvalued": unvalued}}
    return out


def rows_with_paths(transaction: Any, frame: pd.DataFrame, settings: dict[str, Any],
                    source: PanelSource) -> tuple[pd.DataFrame, Any]:
    """(the rows indexed by customer id with their window, their covariate paths over the
    horizon) for :func:`clvlab.ops.serving.score_frame`'s ``settings`` (its params)."""
    from clvlab.models.customer_scores import scoring_horizon
    from clvlab.models.table_units import recorded_unit, table_in_model_unit

    stated = settings.get("time_unit")
    table_in_model_unit(transaction, frame, stated, check_durations=False,
                        what="the table to score")
    unit = stated or recorded_unit(frame) or getattr(transaction, "time_unit_", None)
    table = scoring_table(frame, id_column=settings.get("customer_col"),
                          as_of=settings.get("as_of"), time_unit=unit,
                          timezone=settings.get("timezone"))
    return table, source.paths_for(transaction, table, scoring_horizon(settings.get("horizon")))


def with_path_params(signature: Any, transaction: Any, customer_col: str | None = None) -> Any:
    """The pyfunc's MLflow signature with the panel's parameters (:data:`PATH_PARAMS`; every
    model lists them, so that one without time-varying covariates refuses a panel instead of
    MLflow dropping it). A time-varying model's inputs lose its time-varying columns (they
    come from the panel) and gain the customer id column ``customer_col`` (any type), which
    is also the default of the ``customer_col`` parameter."""
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, ParamSchema, ParamSpec, Schema
    from mlflow.types.schema import AnyType

    varying = set(path_columns(transaction))
    inputs = list(signature.inputs.inputs)
    defaults = dict(PATH_PARAMS)
    if varying:
        column = customer_col or DEFAULT_ID_COLUMN
        inputs = [ColSpec(AnyType(), column)] + [c for c in inputs if c.name not in varying]
        defaults["customer_col"] = column
    params = list(signature.params.params) + [ParamSpec(k, PATH_PARAM_TYPES[k], v)
                                              for k, v in defaults.items()]
    return ModelSignature(inputs=Schema(inputs), outputs=signature.outputs,
                          params=ParamSchema(params))


def path_metadata(transaction: Any, customer_col: str | None = None) -> dict[str, Any]:
    """The registered model's metadata of a time-varying model: its path columns and the id
    column its input carries (nothing for other models)."""
    varying = path_columns(transaction)
    if not varying:
        return {}
    return {"time_varying_covariates": list(varying),
            "customer_col": customer_col or DEFAULT_ID_COLUMN}


def job_panel(model: Any, covariates: Any, calendar: Any, *, customer_col: str | None,
              period_col: str | None, quantiles: Any, totals: bool,
              engine: str) -> PanelSource | None:
    """The scoring job's panel (:func:`clvlab.ops.scoring.score`), checked against the loaded
    CLV model (``model.transaction``, ``.spend``, ``.adjuster``) before any work."""
    source = panel_source(covariates, calendar, customer_col=customer_col, period_col=period_col)
    check_panel_given(model.transaction, source, option="covariates= (--covariates PANEL)")
    refuse_along_paths(model.transaction, adjuster=model.adjuster, spend=model.spend,
                       quantiles=quantiles, totals=totals, engine=engine)
    return None if source is None else source.check()


def job_params(source: PanelSource | None, summary: dict[str, Any],
               customer_col: str) -> dict[str, Any]:
    """The pyfunc params that carry the panel to each chunk's scoring: the panel, calendar and
    their columns, and the window of the job's RFM summary (its calibration end, time zone)."""
    if source is None:
        return {}
    return {"covariates": source.panel, "calendar": source.calendar,
            "panel_customer_col": source.customer_col, "period_col": source.period_col,
            "as_of": summary["calibration_end"], "timezone": summary.get("timezone"),
            "customer_col": customer_col}

