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
from typing import TYPE_CHECKING

from clvlab.core.errors import ClvlabError, DataValidationError, did_you_mean

if TYPE_CHECKING:  # the options are added for `clvlab --help` too, which needs no pandas
    import pandas as pd

__all__ = ["add_fit_options", "add_panel_options", "check_fit_model", "fit_paths",
           "panel_options", "predict_frame"]

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
    fit.add_argument("--date-col", default=None,
                     help="the log's date column (default: the one the RFM table records, as "
                          "a Parquet table of `clvlab rfm` does, else date)")
    fit.add_argument("--amount-col", default=None,
                     help="the log's amount column (default: the one the RFM table records; "
                          "refund-only periods are no purchases)")
    fit.add_argument("--date-format", default=None,
                     help="the log's strptime format (default: the one the table records)")


def check_fit_model(args: argparse.Namespace, entry) -> None:
    """A panel or calendar is for the models fitted along covariate paths: any other model is
    refused before any work, saying where its covariates go."""
    from clvlab.models.registry import MODELS
    from clvlab.models.time_varying import TIME_VARYING_MODELS

    if (args.covariates is None and args.calendar is None) or \
            entry.model_class.__name__ in TIME_VARYING_MODELS:
        return
    models = " or ".join(e.name for e in MODELS if e.model_class.__name__ in TIME_VARYING_MODELS)
    given = "--covariates PANEL" if args.covariates is not None else "--calendar FILE"
    if entry.kind == "spend":
        why = (f"{entry.name} is a spend model, and spend models do not take time-varying "
               f"covariates ({given}): spend covariates are static, columns of the RFM table or "
               "of --attributes named by --spend-covariates (e.g. --spend-covariates channel) "
               "and fitted without --covariates/--calendar/--transactions")
    else:
        why = (f"{entry.name} ({entry.model_class.__name__}) does not take time-varying "
               f"covariates ({given}); its covariates are static, columns of the RFM table or of "
               "--attributes, fitted without --covariates/--calendar/--transactions")
    raise ClvlabError(f"{why}. Time-varying covariates are fitted by {models}, e.g. clvlab fit "
                      "RFM --model pareto-nbd --purchase-covariates COLUMN --covariates PANEL "
                      "--transactions LOG")


def fit_paths(args: argparse.Namespace, rfm: pd.DataFrame, settings: dict):
    """The covariate paths of ``clvlab fit`` (None without --covariates or --calendar)."""
    from clvlab.data.covariate_paths import covariate_paths
    from clvlab.data.rfm_io import expand_paths
    from clvlab.data.covariate_inputs import calendar_period_column
    from clvlab.data.log_columns import log_column_hint, log_columns
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
    recorded = dict((rfm.attrs or {}).get("clvlab") or {})
    if not recorded.get("calibration_end"):
        raise ClvlabError(
            f"--covariates (or --calendar) needs the RFM table written by `clvlab rfm` as "
            f"Parquet: it records the calibration end and time unit that place each customer's "
            f"path on the calendar, and {args.rfm} records no calibration end (a CSV table never "
            f"does). Build it with e.g. clvlab rfm LOG -o rfm.parquet --calibration-end "
            f"YYYY-MM-DD --time-unit W, and fit that file")
    source.check()
    named = list(dict.fromkeys(c for key in ("purchase_covariates", "dropout_covariates")
                               for c in settings.get(key) or []))
    ids = {source.customer_col or rfm.index.name, source.period_col}
    held = [] if source.panel is None else [c for c in panel_columns(source.panel) if c not in ids]
    if source.calendar is not None:
        when = calendar_period_column(source.calendar, source.period_col)  # the data layer's rule
        held += [str(c) for c in source.calendar.columns if c != when]
    varying = [c for c in named if c in held]
    if not varying:
        raise ClvlabError(
            f"none of the covariates {named} (--purchase-covariates, --dropout-covariates) is a "
            f"column of the panel or calendar (they hold {held}); name the time-varying columns "
            "there, or fit without --covariates" + did_you_mean(named, held))
    files = expand_paths(args.transactions)
    given = {key: getattr(args, key) for key in ("date_col", "amount_col", "date_format")}
    chosen = log_columns(rfm, **given)
    try:
        return covariate_paths(source.panel, rfm,
                               transactions=files if len(files) > 1 else files[0],
                               calendar=source.calendar, customer_col=source.customer_col,
                               period_col=source.period_col, covariates=varying, **chosen)
    except DataValidationError as exc:
        raise log_column_hint(exc, rfm, given, chosen,
                              lambda key, name: f"--{key.replace('_', '-')} {name}") from None


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
    if args.as_of is None and not ((rfm.attrs or {}).get("clvlab") or {}).get("calibration_end"):
        raise ClvlabError(
            f"the date the RFM table's T is measured to (its calibration end) is unknown: "
            f"{args.rfm} does not record it (a CSV table never does; a Parquet table written by "
            "`clvlab rfm` does), and the covariate paths need it to place each customer's first "
            "purchase on the calendar. Give it with --as-of DATE, the calibration end the table "
            "was built at (e.g. --as-of YYYY-MM-DD)")
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
