"""``clvlab monitor``: compare a scoring job's forecasts with what happened since, and say by
the exit status whether to retrain (0 fine, 3 watch, 4 retrain; errors are 1, usage 2)."""

from __future__ import annotations

import argparse

__all__ = ["add_command"]

EPILOG = ("exit status: 0 fine, 3 watch, 4 retrain (the verdict, for schedulers); 1 an error "
          "(nothing checked), 2 a usage error. See clvlab.ops.monitoring for the rules and the "
          "simulation study behind the default thresholds.")


def add_command(commands, with_options: bool = True) -> None:
    """Add the ``monitor`` subcommand to ``commands`` (argparse subparsers); its options only
    ``with_options`` (app._parser: their defaults come from clvlab.ops.monitoring)."""
    monitor = commands.add_parser(
        "monitor", help="check a scoring job's forecasts against what happened since, and say "
                        "whether to retrain (exit status 0 fine, 3 watch, 4 retrain)",
        description="Join the scores `clvlab score` wrote with what the scored customers did "
                    "between the scoring date and --as-of, and compare them with the model's "
                    "forecast for that window: totals against their predictive band, errors, "
                    "AUC and calibration of P(any purchase), interval coverage, the cumulative "
                    "tracking curve, input drift (PSI of each RFM column against the model's "
                    "training profile) and the share of new customers. Prints the verdict "
                    "(fine, watch or retrain) with its reasons and logs a monitoring run to "
                    "MLflow, linked to the scoring run and the model version.",
        epilog=EPILOG)
    if not with_options:
        return  # listed by `clvlab --help`; the thresholds' defaults import the monitoring job
    from clvlab.cli.options import add_log_options
    from clvlab.ops.monitoring import BAND_DRAWS, BAND_POINTS, Thresholds

    monitor.add_argument("--scores", required=True, help="the scores `clvlab score` wrote "
                                                         "(.parquet or .csv)")
    monitor.add_argument("--transactions", required=True, nargs="+",
                         help="the transaction log up to --as-of (CSV or Parquet files, globs)")
    monitor.add_argument("--as-of", required=True,
                         help="the monitored date: purchases after the scoring date up to it")
    monitor.add_argument("--allow-quiet-end", action="store_true",
                         help="accept a log whose last purchase is long before --as-of (it is "
                              "complete and nobody bought); by default such a log is refused as "
                              "cut short")
    monitor.add_argument("--model-uri", default=None,
                         help="the model that scored, when nothing records it (else it must be "
                              "the recorded version)")
    monitor.add_argument("--scored-as-of", default=None,
                         help="the scoring date, when nothing records it")
    monitor.add_argument("--experiment", default="clvlab-monitoring",
                         help="MLflow experiment of the monitoring run")
    monitor.add_argument("--no-log", action="store_true", help="log no MLflow run")
    monitor.add_argument("--output-dir", default=None,
                         help="also write the tables (CSV, JSON) and plots (PNG) here")
    monitor.add_argument("--overwrite", action="store_true",
                         help="replace files already in --output-dir")
    add_log_options(monitor, amount_default="amount",
                    amount_help="spend column (default amount), used when the log has it")
    defaults = Thresholds()
    bands = monitor.add_argument_group("thresholds (defaults from the simulation study)")
    bands.add_argument("--watch-band", type=float, default=defaults.band_watch, metavar="LEVEL",
                       help="watch when the realised total lies outside this central predictive "
                            "band (default %(default)s)")
    bands.add_argument("--retrain-band", type=float, default=defaults.band_retrain,
                       metavar="LEVEL", help="retrain outside this one (default %(default)s)")
    bands.add_argument("--watch-auc", type=float, default=defaults.auc_watch,
                       help="watch when the AUC of P(any purchase) is below (default %(default)s)")
    bands.add_argument("--watch-calibration", type=float, default=defaults.calibration_watch,
                       help="watch when the calibration error is above (default %(default)s)")
    bands.add_argument("--watch-coverage-shortfall", type=float,
                       default=defaults.coverage_shortfall,
                       help="watch when interval coverage is below its level by more than this "
                            "(default %(default)s)")
    bands.add_argument("--watch-psi", type=float, default=defaults.psi_watch,
                       help="watch when a checked column's PSI is above (default %(default)s)")
    bands.add_argument("--psi-columns", default=",".join(defaults.psi_columns),
                       help="RFM columns whose PSI the verdict checks (default %(default)s; all "
                            "four are reported)")
    bands.add_argument("--watch-new-customers", type=float, default=defaults.new_customers_watch,
                       help="watch when the share of customers not scored is above "
                            "(default %(default)s)")
    monitor.add_argument("--band-draws", type=int, default=BAND_DRAWS,
                         help="parameter draws behind the predictive bands (default %(default)s)")
    monitor.add_argument("--band-points", type=int, default=BAND_POINTS,
                         help="points of the tracking curve with a band (default %(default)s)")
    monitor.add_argument("--seed", type=int, default=0, help="seed of the parameter draws")
    monitor.set_defaults(run=_run_monitor)


def _run_monitor(args: argparse.Namespace) -> int:
    from pathlib import Path

    import pandas as pd

    from clvlab.core.errors import ClvlabError
    from clvlab.data.rfm_io import expand_paths
    from clvlab.ops.monitoring import monitor
    from clvlab.ops.monitoring_runs import OUTPUT_FILES, write_outputs

    thresholds = {"band_watch": args.watch_band, "band_retrain": args.retrain_band,
                  "auc_watch": args.watch_auc, "calibration_watch": args.watch_calibration,
                  "coverage_shortfall": args.watch_coverage_shortfall,
                  "psi_watch": args.watch_psi, "psi_columns": args.psi_columns,
                  "new_customers_watch": args.watch_new_customers}
    if args.output_dir:  # before any work: the run is not logged for files that can't be written
        taken = [n for n in OUTPUT_FILES if (Path(args.output_dir) / n).exists()]
        if taken and not args.overwrite:
            raise ClvlabError(f"--output-dir {args.output_dir} already holds {taken}; pass "
                              "--overwrite to replace them, or choose another folder")
    files = expand_paths(args.transactions)
    result = monitor(args.scores, files if len(files) > 1 else files[0], args.as_of,
                     model_uri=args.model_uri, scored_as_of=args.scored_as_of,
                     thresholds=thresholds, experiment=args.experiment, log=not args.no_log,
                     band_draws=args.band_draws, band_points=args.band_points, seed=args.seed,
                     customer_col=args.customer_col, date_col=args.date_col,
                     amount_col=args.amount_col, date_format=args.date_format,
                     timezone=args.timezone, consent_col=args.consent_col,
                     withdrawn=args.withdrawn, delimiter=args.delimiter, decimal=args.decimal,
                     allow_quiet_end=args.allow_quiet_end)
    info = result.info
    print(f"verdict: {result.verdict} (exit status {result.exit_code})")
    print(f"  {info['model_uri']} (version {info['model_version'] or '?'}) scored "
          f"{info['scored_as_of'][:10]}; monitored to {info['as_of'][:10]}: "
          f"{info['elapsed']:.4g} {info['time_unit']} of "
          f"{int(result.metrics['customers_monitored']):,} customers; scoring run "
          f"{info['scoring_run_id'] or 'not found'} (found by {info['found_by']})")
    for reason in result.reasons:
        print(f"  reason: {reason}")
    for item in result.not_checked:
        print(f"  not checked: {item}")
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print("\nchecks:")
        print(result.checks[["check", "value", "rule", "status"]].to_string(
            index=False, na_rep="n/a", float_format=_number))
        keys = [k for k in ("purchases_expected", "purchases_realised",
                            "purchases_aggregate_pct_error", "purchases_mae", "purchases_z",
                            "spend_expected", "spend_realised", "spend_aggregate_pct_error",
                            "spend_mae", "activity_auc", "calibration_error",
                            "interval_coverage", "new_customer_share") if k in result.metrics]
        print("\nfigures over the elapsed window:")
        print(_figures(result, keys).to_string(na_rep="n/a", float_format=_number))
        print("\ncalibration of P(any purchase) by decile:")
        print(result.calibration.to_string(index=False, float_format="{:.3f}".format))
        print("\ninput drift (PSI: < 0.1 stable, 0.1-0.25 moderate, > 0.25 a shift; the verdict "
              "checks the columns marked checked: recency and T grow with the customers' age "
              "whatever they do):")
        print(result.drift.to_string(index=False, na_rep="n/a", float_format="{:.3f}".format))
    for note in result.notes:
        print(f"note: {note}")
    if args.output_dir:
        write_outputs(result, args.output_dir, overwrite=args.overwrite)
        print(f"wrote the tables and plots to {args.output_dir}/")
    if result.run_id:
        print(f"logged monitoring run {result.run_id} into the MLflow experiment "
              f"{args.experiment!r}")
    return result.exit_code


#: the figures an adjusted champion's own scores replace at their horizon (monitoring_data)
def _figures(result, keys: list[str]):
    """The figures, in one column; for a champion whose scores come through a churn adjuster
    or a challenger, in two: its scores' and the transaction model's it adjusts (the tracking
    curve, bands, spend and drift are that model's), so that no row mixes the two."""
    import math

    import pandas as pd

    from clvlab.ops.monitoring_data import ADJUSTED as MEASURED_ON_BOTH

    # each figure that both forecasts have, and where the adjusted scores' own is kept
    adjusted_names = {**{name: name for name in MEASURED_ON_BOTH},
                      "purchases_expected": "purchases_expected_adjusted"}
    metrics = result.metrics
    if not any(k.startswith("base_") for k in metrics):
        return result.summary().loc[keys, ["value"]]
    adjusted = "purchases_expected_adjusted" in metrics  # at the horizon: its own forecasts
    rows = {}
    for key in keys:
        base = metrics.get(f"base_{key}", metrics[key]) if key in adjusted_names else metrics[key]
        own = metrics.get(adjusted_names[key], math.nan) if adjusted and key in adjusted_names \
            else math.nan
        rows[key] = {"scores (adjusted)": own, "base model": base}
    if "activity_brier" in metrics and "activity_brier" not in rows:
        rows["activity_brier"] = {"scores (adjusted)": metrics["activity_brier"] if adjusted
                                  else math.nan,
                                  "base model": metrics.get("base_activity_brier", math.nan)}
    return pd.DataFrame.from_dict(rows, orient="index")


def _number(value: float) -> str:
    """1,882 and 70,976 for totals, 0.06823 for rates (never 7.098e+04)."""
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"
