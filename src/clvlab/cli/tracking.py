"""The ``clvlab`` subcommands that talk to MLflow: register, promote, score, experiment, retrain,
compare."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["add_commands"]


def add_commands(commands) -> None:
    from clvlab.cli.options import add_event_options, add_log_options

    register = commands.add_parser(
        "register", help="log saved models as one MLflow CLV model and register it (@challenger)",
        description="Package a transaction model, an optional Gamma-Gamma spend model and an "
                    "optional churn adjuster (JSON files) as an MLflow pyfunc, register it under "
                    "--name and point the @challenger alias at the new version. Each model must "
                    "be of its kind, and each fit converged by its own checks (r_hat, "
                    "divergences and ESS after NUTS, ...): the diagnostics are printed and "
                    "recorded on the version, and an unconverged fit is refused unless --force.")
    register.add_argument("transaction_model", help="BG/NBD, MBG/NBD or Pareto/NBD model (.json)")
    register.add_argument("--spend-model", default=None, help="spend model (.json: gamma-gamma or lognormal)")
    register.add_argument("--churn-adjuster", default=None, help="churn adjuster (.json)")
    register.add_argument("--challenger", default=None,
                          help="a ZILN or GBM-Poisson challenger (.json, ZILNChallenger.save) "
                               "whose predictions replace the transaction model's over its "
                               "horizon; the transaction model serves it (p_alive, and for a "
                               "GBM its offset)")
    register.add_argument("--name", required=True, help="registered model name")
    register.add_argument("--alias", default="challenger")
    register.add_argument("--attributes", default=None,
                          help="for models with covariates: a table (.parquet or .csv) with their "
                               "attribute columns, e.g. the one they were fitted on; its boolean "
                               "columns become boolean inputs of the model's signature (else "
                               "booleans are sent as 0/1 numbers)")
    register.add_argument("--customer-col", default=None,
                          help="for a model fitted with time-varying covariates: the customer id "
                               "column of the served model's input (default customer_id), which "
                               "joins each row to its covariate path")
    register.add_argument("--force", action="store_true",
                          help="register a fit whose convergence checks failed (the diagnostics "
                               "are recorded on the version, with clvlab.forced=true)")
    register.set_defaults(run=_run_register)

    promote = commands.add_parser(
        "promote", help="move an alias (default @champion) to a registered model version",
        description="Point --to (default champion) at --version, or at the version --from "
                    "(default challenger) points at. --backtest-run records the backtest that "
                    "supports the promotion on the model version; it must be a backtest of this "
                    "model's candidate (e.g. 'pareto-nbd + gamma-gamma') in its time unit, or "
                    "nothing is promoted.")
    promote.add_argument("name", help="registered model name")
    promote.add_argument("--version", default=None)
    promote.add_argument("--from", dest="from_alias", default="challenger")
    promote.add_argument("--to", dest="to_alias", default="champion")
    promote.add_argument("--backtest-run", default=None,
                         help="MLflow run id of a clvlab backtest of this model's candidate, in "
                              "its time unit")
    promote.set_defaults(run=_run_promote)

    score = commands.add_parser(
        "score", help="score every customer of a log with a registered CLV model",
        description="Build the RFM summary as of --as-of (DuckDB for files), score every customer "
                    "with the model, write the scores atomically and log a scoring run to MLflow.")
    score.add_argument("--model", required=True, help="e.g. models:/cdnow-clv@champion")
    score.add_argument("--transactions", required=True, nargs="+", help="CSV or Parquet files")
    score.add_argument("--as-of", required=True, help="date: T is measured to it, later rows ignored")
    score.add_argument("-o", "--output", required=True, help="scores (.parquet or .csv)")
    score.add_argument("--horizon", type=float, required=True,
                       help="scoring window in the model's time unit (e.g. 52 for a year of weeks)")
    score.add_argument("--discount-rate", type=float, default=0.0,
                       help="per time unit, as a fraction (0.0015 a week is about 8%% a year)")
    score.add_argument("--margin", type=float, default=1.0,
                       help="share of spend that is profit, as a fraction in (0, 1]")
    add_log_options(score, amount_default="amount",
                    amount_help="spend column (default amount), read only when the model has a "
                                "spend model")
    score.add_argument("--engine", default="duckdb", choices=["duckdb", "pandas", "spark"],
                       help="spark: RFM and scores on a local Spark session; the output is then "
                            "a Parquet folder")
    score.add_argument("--chunk-rows", type=int, default=200_000,
                       help="customers scored and written at a time (bounds memory)")
    score.add_argument("--memory-limit", default="2GB",
                       help="DuckDB's memory limit for the RFM (it spills to disk beyond it)")
    score.add_argument("--attributes", default=None,
                       help="for a model with covariates: customer attributes (.parquet or .csv "
                            "with a --customer-col column), one row per customer; without it the "
                            "covariate columns are read from the log (one value per customer)")
    add_event_options(score)
    score.add_argument("--missing-attributes", default="raise", choices=["raise", "skip"],
                       help="customers without attributes: fail with their number (raise, the "
                            "default) or leave them out and print their number (skip)")
    score.add_argument("--quantiles", default=None, metavar="LEVELS",
                       help="comma-separated levels in (0, 1), e.g. 0.05,0.5,0.95: adds each "
                            "customer's quantiles of purchases over the horizon (purchases_q0.05"
                            "...) and, with a spend model, of CLV (clv_q0.05..., Monte Carlo)")
    score.add_argument("--interval-level", type=float, default=None, metavar="LEVEL",
                       help="adds each customer's central prediction interval of purchases at "
                            "this level (purchases_lower, purchases_upper), e.g. 0.9; also the "
                            "level of the totals' intervals (default 0.9)")
    score.add_argument("--totals-by", action="append", default=None, metavar="COLUMNS",
                       help="writes the total purchases (and revenue with a spend model) per "
                            "group, with intervals, to <output stem>.totals.parquet (.csv "
                            "beside a CSV): a column of the attributes, the log or the RFM "
                            "table, one value per customer; repeat it or give a comma list; "
                            "'all' for the whole base")
    score.add_argument("--parameter-uncertainty", default="auto",
                       choices=["auto", "posterior", "normal", "bootstrap", "none"],
                       help="the totals' parameter uncertainty: auto (posterior draws after a "
                            "Bayesian fit, else the asymptotic normal), posterior, normal, "
                            "bootstrap (a bootstrap stored with the model) or none")
    score.add_argument("--parameter-draws", type=int, default=200,
                       help="parameter draws for the totals' intervals (default 200)")
    score.add_argument("--clv-draws", type=int, default=200,
                       help="simulated futures per customer for the CLV quantiles (default 200)")
    score.add_argument("--seed", type=int, default=0,
                       help="seed of the parameter draws and of the CLV simulation")
    from clvlab.cli.time_varying import add_panel_options

    add_panel_options(score, scoring=True)
    score.add_argument("--overwrite", action="store_true")
    score.add_argument("--no-progress", action="store_true",
                       help="no progress bar (there is none unless standard error is a terminal)")
    score.set_defaults(run=_run_score)

    experiment = commands.add_parser(
        "experiment", help="run a declarative experiment (TOML) into MLflow",
        description="`clvlab experiment run FILE.toml` runs the file's backtest and logs it into "
                    "the MLflow experiment the file names (see experiments/cdnow.toml).")
    experiment.add_argument("action", choices=["run"])
    experiment.add_argument("file", help="experiment file (.toml)")
    experiment.add_argument("--no-progress", action="store_true",
                            help="no progress bar (there is none unless standard error is a terminal)")
    experiment.set_defaults(run=_run_experiment)

    retrain = commands.add_parser(
        "retrain", help="run an experiment with its [selection] rule: refit, register, promote",
        description="Run the experiment file's backtest (with the current @champion's candidate "
                    "among the candidates), refit the winner of its [selection] rule on the whole "
                    "log, register it (@challenger) and move @champion only as the rule says. "
                    "For a schedule: with rolling_cutoffs in [backtest] each run backtests the "
                    "latest windows. Exit status 0 whether or not it promoted (the decision is "
                    "printed and recorded on the model version and the backtest run), 1 when "
                    "nothing could be registered or on an error.")
    retrain.add_argument("file", help="experiment file (.toml) with a [selection] table")
    retrain.add_argument("--no-progress", action="store_true",
                         help="no progress bars (e.g. in a scheduler's log)")
    retrain.set_defaults(run=_run_retrain)

    compare = commands.add_parser(
        "compare", help="print the leaderboard of an MLflow experiment's backtests",
        description="Read every clvlab backtest run of the experiment back from MLflow and print "
                    "one row per run and candidate, best first.")
    compare.add_argument("experiment", help="MLflow experiment name")
    compare.add_argument("--sort-by", default="activity_auc",
                         help="the metric the rows are ordered by, best first (e.g. "
                              "purchases_coverage_90: closest to 0.9 first)")
    compare.add_argument("--metrics", default=None, metavar="METRICS",
                         help="comma-separated metric columns, e.g. purchases_coverage_90,"
                              "purchases_pit_coverage_90,purchases_log_score,purchases_rps,"
                              "purchases_total_coverage_90 (default: the AUC, Brier score, "
                              "errors, Gini, 90 %% coverage and log score)")
    compare.set_defaults(run=_run_compare)


def _run_register(args: argparse.Namespace) -> int:
    from clvlab.churn import ChurnAdjuster
    from clvlab.core.errors import ClvlabError
    from clvlab.data.attributes import read_attribute_file
    from clvlab.models import load_model
    from clvlab.ops.registration import describe_convergence
    from clvlab.ops.serving import log_clv_model

    if args.attributes and not Path(args.attributes).is_file():
        raise ClvlabError(f"--attributes {args.attributes} does not exist")
    if args.churn_adjuster and args.challenger:
        raise ClvlabError("a CLV model takes a churn adjuster or a challenger, not both: each "
                          "replaces the transaction model's P(any purchase) and purchases")
    transaction = load_model(args.transaction_model)
    part = ChurnAdjuster.load(args.churn_adjuster) if args.churn_adjuster else None
    if args.challenger:
        from clvlab.churn import ChallengerAdjustment

        part = ChallengerAdjustment.load(args.challenger)
        part.base_model_ = transaction
    info = log_clv_model(transaction,
                         load_model(args.spend_model) if args.spend_model else None,
                         part,
                         registered_model_name=args.name, alias=args.alias,
                         attributes=read_attribute_file(args.attributes) if args.attributes else None,
                         force=args.force, customer_col=args.customer_col)
    print(f"registered {args.name} version {info.registered_model_version} "
          f"(models:/{args.name}@{args.alias})")
    parts = [f"transaction model {type(transaction).__name__}"]
    parts += [f"spend model from {args.spend_model}"] if args.spend_model else []
    if part is not None:
        parts.append(f"{repr(part)} in the churn adjuster's place: its purchases, P(any "
                     f"purchase) and spend are the scores, for a horizon of {part.horizon:g}"
                     if args.challenger else
                     f"churn adjuster for a horizon of {part.horizon:g}")
    print("  parts: " + "; ".join(parts))
    report = (info.metadata or {}).get("convergence", {})
    forced = [key for key, entry in report.items() if entry.get("converged") is False]
    for line in describe_convergence(report, forced):
        print(f"  {line}")
    return 0


def _run_promote(args: argparse.Namespace) -> int:
    from clvlab.ops.serving import promote

    version = promote(args.name, version=args.version, from_alias=args.from_alias,
                      to_alias=args.to_alias, backtest_run=args.backtest_run)
    print(f"models:/{args.name}@{args.to_alias} is now version {version}")
    return 0


def _run_score(args: argparse.Namespace) -> int:
    from clvlab.cli.time_varying import panel_options
    from clvlab.data.rfm_io import expand_paths
    from clvlab.ops.scoring import score

    files = expand_paths(args.transactions)
    job = score(args.model, files if len(files) > 1 else files[0], args.as_of, args.output,
                customer_col=args.customer_col, date_col=args.date_col,
                amount_col=args.amount_col, date_format=args.date_format,
                timezone=args.timezone, horizon=args.horizon, discount_rate=args.discount_rate,
                margin=args.margin, overwrite=args.overwrite, engine=args.engine,
                consent_col=args.consent_col, withdrawn=args.withdrawn,
                delimiter=args.delimiter, decimal=args.decimal,
                memory_limit=args.memory_limit, chunk_rows=args.chunk_rows,
                progress=False if args.no_progress else None, attributes=args.attributes,
                events=args.events, event_col=args.event_col,
                event_value_col=args.event_value_col, quantity_col=args.quantity_col,
                missing_attributes=args.missing_attributes, quantiles=args.quantiles,
                interval_level=args.interval_level, totals_by=args.totals_by,
                parameter_uncertainty=args.parameter_uncertainty,
                parameter_draws=args.parameter_draws, clv_draws=args.clv_draws, seed=args.seed,
                **panel_options(args))
    where = f"{args.output}/" if args.engine == "spark" else str(args.output)
    print(f"scored {job.customers_scored:,} customers as of {args.as_of} over a horizon of "
          f"{job.horizon_text} with {args.model} in {job.seconds:.1f} s; wrote {where}")
    if args.consent_col or args.withdrawn:
        print(f"left out {job.customers_excluded:,} customers who withdrew consent")
    if job.stats.get("customers_without_attributes"):
        print(f"left out {int(job.stats['customers_without_attributes']):,} customers without "
              "attributes (--missing-attributes skip)")
    clv = (f"mean CLV over the horizon {job.stats['clv.mean']:.2f}, mean expected spend per "
           f"purchase {job.stats['expected_spend_per_purchase.mean']:.2f} (not a total)"
           if "clv.mean" in job.stats else "no CLV (the model has no spend model)")
    print(f"{clv}, mean P(alive) {job.stats['p_alive.mean']:.3f}")
    if args.quantiles or args.interval_level is not None:
        clv_note = (f"; CLV quantiles by Monte Carlo, {args.clv_draws} futures per customer, seed "
                    f"{args.seed}" if "clv.mean" in job.stats and args.quantiles else "")
        print(f"added each customer's distribution of purchases over the horizon (quantiles "
              f"{args.quantiles or 'none'}, interval level {args.interval_level or 'none'})"
              f"{clv_note}")
    if job.totals_output is not None:
        _print_totals(job, args)
    if job.stats.get("customers_unvalued"):
        print(f"{int(job.stats['customers_unvalued']):,} customers whose repeat purchases were all "
              "free were valued at the population's mean spend")
    return 0


def _print_totals(job, args: argparse.Namespace) -> None:
    """The totals table (up to 30 rows), where it was written and the draws behind it."""
    import pandas as pd

    table = job.read_totals()
    draws = ("no parameter uncertainty" if args.parameter_uncertainty == "none" else
             f"parameter uncertainty {args.parameter_uncertainty}, {args.parameter_draws} draws, "
             f"seed {args.seed}")
    print(f"totals per group over the horizon ({draws}) -> {job.totals_output}:")
    shown = table.drop(columns=["parameter_share"]).head(30)
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(shown.to_string(index=False, na_rep="n/a", float_format="{:.2f}".format))
    if len(table) > 30:
        print(f"... {len(table) - 30:,} more rows in {job.totals_output}")


def _run_experiment(args: argparse.Namespace) -> int:
    from clvlab.ops.experiments import load_experiment, run_experiment

    name = load_experiment(args.file)["name"]
    run = run_experiment(args.file, progress=False if args.no_progress else None)
    print(repr(run.result))
    print(f"logged run {run.run_id} into the MLflow experiment {name!r}; "
          f"see the leaderboard with `clvlab compare {name}`")
    if run.selection is not None:
        print(repr(run.selection))
        if run.selection.decision == "nothing to register":  # a scheduler must see it fail
            print(f"clvlab: error: nothing was registered: {run.selection.reason}",
                  file=sys.stderr)
            return 1
    return 0


def _run_retrain(args: argparse.Namespace) -> int:
    from clvlab.core.errors import ClvlabError
    from clvlab.ops.experiments import load_experiment

    if load_experiment(args.file).get("selection") is None:
        raise ClvlabError(f"{args.file} has no [selection] table, so there is no rule to retrain "
                          "by; add one (registered_model, target, metric, margin) or run it with "
                          "`clvlab experiment run`")
    return _run_experiment(args)


def _run_compare(args: argparse.Namespace) -> int:
    import pandas as pd

    from clvlab.ops.experiments import compare

    from clvlab.evaluation.metrics import describe_better

    board = compare(args.experiment, sort_by=args.sort_by, metrics=args.metrics)
    board["started"] = pd.to_datetime(board["started"]).dt.strftime("%Y-%m-%d %H:%M")
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        # unknown metrics (NaN) print as n/a, never as 0 or None
        print(board.drop(columns=["run_id"]).to_string(
            index=False, na_rep="n/a", float_format="{:.4f}".format))
    print(f"sorted by {args.sort_by} ({describe_better(args.sort_by)}); n/a: not computable "
          "for that run (e.g. spend metrics of a log without amounts, interval metrics of a "
          "candidate without a distribution)")
    from clvlab.ops.selection import decisions

    made = decisions(args.experiment)
    if len(made):
        print("\nselections (the [selection] rule of each run that had one, newest first):")
        for row in made.itertuples(index=False):
            print(f"  {row.run} ({pd.Timestamp(row.started).strftime('%Y-%m-%d %H:%M')}): "
                  f"rule {row.rule}; {row.decision}"
                  + (f", version {row.version}" if row.version else "") + f"\n    {row.reason}")
    return 0
