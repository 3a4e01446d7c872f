"""Time-varying covariates on the command line: ``clvlab fit --covariates PANEL`` and the panel
options of ``clvlab predict`` and ``clvlab score`` (the scoring side:
:mod:`clvlab.ops.scoring_time_varying`).

``clvlab fit`` builds each customer's covariate path with :func:`clvlab.covariate_paths` from
the panel (and an optional calendar), the RFM table and the transaction log it was built from,
and fits along the paths: of the columns named by ``--purchase-covariates`` and
``--dropout-covariates``, those the panel (or calendar) holds vary over time, the others are
static columns of the table (or of ``--attributes``). The fit is the API's
``model.fit(rfm, covariate_paths=covariate_paths(panel, rfm, transactions=log, ...))``.
"""

from __future__ import annotations

import argparse

import pandas as pd

from clvlab.core.errors import ClvlabError

__all__ = ["add_fit_options", "add_panel_options", "fit_paths", "panel_options", "predict_frame"]

_PANEL_HELP = ("covariate panel (.parquet or .csv, also gzipped), one row per customer and "
               "calendar period of the time unit (customer id, period start, covariate values) ")


def add_panel_options(parser: argparse.ArgumentParser, *, scoring: bool) -> None:
    """``--covariates``, ``--calendar``, ``--panel-customer-col`` and ``--period-col``."""
    reach = ("reaching as-of + horizon, for a model fitted with time-varying covariates (its "
             "scores follow each customer's covariates over the horizon)" if scoring else
             "covering each customer from the first purchase to the table's calibration end: "
             "of the columns named by --purchase-covariates/--dropout-covariates, those it holds "
             "vary over time (the others are static columns of the table); needs --transactions")
    parser.add_argument("--covariates", default=None, metavar="PANEL", help=_PANEL_HELP + reach)
    parser.add_argument("--calendar", default=None, metavar="FILE",
                        help="covariates shared by every customer (.parquet or .csv), one row "
                             "per period (period start and values, e.g. clvlab."
                             "seasonal_covariates), beside or instead of --covariates")
    parser.add_argument("--panel-customer-col", default=None,
                        help="the panel's customer id column (default: the table's or the "
                             "log's customer column)")
    parser.add_argument("--period-col", default="period",
                        help="the panel's and calendar's period-start column (default period)")


def add_fit_options(fit: argparse.ArgumentParser) -> None:
    """``clvlab fit``'s time-varying options: the panel's and the log's."""
    add_panel_options(fit, scoring=False)
    fit.add_argument("--transactions", default=None, nargs="+", metavar="FILES",
                     help="with --covariates: the transaction log the RFM table was built from "
                          "(CSV or Parquet; quoted globs), whose customer column is the table's: "
                          "the likelihood needs the covariates in force at each repeat purchase")
    fit.add_argument("--date-col", default="date", help="the log's date column (default date)")
    fit.add_argument("--amount-col", default=None,
                     help="the log's amount column, if the table was built with one (refunds "
                          "are no purchases)")
    fit.add_argument("--date-format", default=None, help="the log's strptime format")


def fit_paths(args: argparse.Namespace, rfm: pd.DataFrame, settings: dict):
    """The covariate paths of ``clvlab fit`` (None without --covariates or --calendar)."""
    from clvlab.data.covariate_paths import covariate_paths
    from clvlab.data.rfm_io import expand_paths
    from clvlab.ops.scoring_time_varying import panel_columns, panel_source

    source = panel_source(args.covariates, args.calendar, customer_col=args.panel_customer_col,
                          period_col=args.period_col)
    if source is None:
        if args.transactions:
            raise ClvlabError("--transactions is read with --covariates (or --calendar) only: "
                              "it gives the repeat purchases inside each covariate period")
        return None
    if not args.transactions:
        raise ClvlabError("--covariates needs --transactions: the log the RFM table was built "
                          "from, whose repeat purchases the likelihood places on each "
                          "customer's covariate path")
    source.check()
    named = list(dict.fromkeys(c for key in ("purchase_covariates", "dropout_covariates")
                               for c in settings.get(key) or []))
    ids = {source.customer_col or rfm.index.name, source.period_col}
    held = [] if source.panel is None else [c for c in panel_columns(source.panel) if c not in ids]
    if source.calendar is not None:
        held += [str(c) for c in source.calendar.columns if c != source.period_col]
    varying = [c for c in named if c in held]
    if not varying:
        raise ClvlabError(
            f"none of the covariates {named} (--purchase-covariates, --dropout-covariates) is a "
            f"column of the panel or calendar (they hold {held}); name the time-varying columns "
            "there, or fit without --covariates")
    files = expand_paths(args.transactions)
    return covariate_paths(source.panel, rfm, transactions=files if len(files) > 1 else files[0],
                           calendar=source.calendar, customer_col=source.customer_col,
                           period_col=source.period_col, covariates=varying,
                           date_col=args.date_col, amount_col=args.amount_col,
                           date_format=args.date_format)


def panel_options(args: argparse.Namespace) -> dict:
    """The scoring job's keyword arguments for the panel options."""
    return {"covariates": args.covariates, "calendar": args.calendar,
            "panel_customer_col": args.panel_customer_col, "period_col": args.period_col}


def predict_frame(args: argparse.Namespace, model, spend, rfm: pd.DataFrame, unit: str,
                  distribution: dict) -> pd.DataFrame | None:
    """``clvlab predict``'s scores along covariate paths (None for a model without time-varying
    covariates and no panel: the caller scores it as before). The pyfunc's scoring function
    (:func:`clvlab.ops.serving.score_frame`) with the panel in its params, so the command line,
    the job and the registered model give the same numbers."""
    from clvlab.ops.scoring_time_varying import check_panel_given, is_time_varying, panel_source
    from clvlab.ops.serving import score_frame

    source = panel_source(args.covariates, args.calendar, customer_col=args.panel_customer_col,
                          period_col=args.period_col)
    check_panel_given(model, source, option="--covariates PANEL")
    if not is_time_varying(model):
        return None
    source.check()
    params = {"horizon": args.horizon, "discount_rate": args.discount_rate,
              "margin": args.margin, "time_unit": unit,
              "check_durations": not args.no_duration_check,
              "quantiles": list(distribution["quantiles"]),
              "interval_level": distribution["interval_level"],
              "clv_draws": distribution["clv_draws"], "seed": distribution["seed"],
              "covariates": source.panel, "calendar": source.calendar,
              "panel_customer_col": source.customer_col, "period_col": source.period_col,
              "as_of": args.as_of, "customer_col": rfm.index.name}
    return score_frame(model, spend, None, rfm, params)
