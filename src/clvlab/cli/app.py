"""The ``clvlab`` command line: ``clvlab SUBCOMMAND --help`` describes each subcommand."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Sequence

from clvlab.cli.options import add_log_options
from clvlab.core.errors import ClvlabError
from clvlab.data.simulate import LOG_MODEL_EXAMPLES
from clvlab.models import registry

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "run"):
        parser.print_help()
        return 2
    try:
        return args.run(args) or 0
    except ClvlabError as exc:
        print(f"clvlab {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # the reader went away (`clvlab fit ... | head -1`): stop quietly, as other tools do;
        # stdout is pointed at devnull so that the interpreter's final flush cannot fail again
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, what a shell reports for a command killed by a closed pipe


def _parser() -> argparse.ArgumentParser:
    from clvlab.core.version import __version__

    parser = argparse.ArgumentParser(
        prog="clvlab", description="Probabilistic customer-lifetime-value modelling.")
    parser.add_argument("--version", action="version", version=f"clvlab {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    rfm = commands.add_parser(
        "rfm", help="summarise a transaction log into one row per customer",
        description="Summarise CSV or Parquet transaction files into an RFM table with DuckDB "
                    "(the log is never loaded into memory). The rules are those of "
                    "clvlab.rfm_summary.")
    rfm.add_argument("transactions", nargs="+",
                     help="CSV or Parquet files, or quoted globs such as 'logs/*.parquet'")
    rfm.add_argument("-o", "--output", required=True, help="output file (.parquet or .csv)")
    add_log_options(rfm, amount_help="adds monetary_value when given")
    rfm.add_argument("--time-unit", default="D", help="h, D, W or M (M = 30.436875 days)")
    rfm.add_argument("--calibration-end", default=None, help="adds the holdout columns")
    rfm.add_argument("--observation-end", default=None)
    rfm.add_argument("--merge-period", default=None, choices=["D", "h"])
    rfm.add_argument("--memory-limit", default=None, help="DuckDB memory limit, e.g. 4GB")
    rfm.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    rfm.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    rfm.add_argument("--attributes", default=None,
                     help="static customer attributes known at acquisition (CSV or Parquet with "
                          "a --customer-col column), appended after the RFM columns by "
                          "clvlab.rfm_summary's rules; the summary is then built in memory")
    rfm.set_defaults(run=_run_rfm)

    simulate = commands.add_parser(
        "simulate", help="write a simulated transaction log",
        description="Draw a transaction log from the BG/NBD or Pareto/NBD process with "
                    "Gamma-Gamma spend (see clvlab.simulate.transaction_log).")
    simulate.add_argument("-o", "--output", required=True, help="output file (.parquet or .csv)")
    simulate.add_argument("--customers", type=int, default=10_000)
    simulate.add_argument("--model", default="pareto-nbd", choices=list(LOG_MODEL_EXAMPLES))
    simulate.add_argument("--params", default=None,
                          help="comma-separated name=value, e.g. r=0.55,alpha=10.6,s=0.61,beta=11.7")
    simulate.add_argument("--seed", type=int, default=0)
    simulate.add_argument("--overwrite", action="store_true")
    simulate.set_defaults(run=_run_simulate)

    fit = commands.add_parser(
        "fit", help="fit a model to an RFM table and save it as JSON",
        description="Fit a model by maximum likelihood (or Bayesian inference) to its table "
                    "(Parquet or CSV): an RFM table (e.g. from `clvlab rfm`) for BG/NBD, MBG/NBD, "
                    "Pareto/NBD and Gamma-Gamma; frequency, recency, periods for BG/BB; duration, "
                    "churned for sBG. Print the summary and save the model as JSON.")
    fit.add_argument("rfm", help="RFM table (.parquet or .csv)")
    fit.add_argument("--model", required=True, choices=sorted(registry.names()),
                     help="; ".join(f"{entry.name}: {entry.model_class.__name__} on "
                                    f"{', '.join(entry.columns)}" for entry in registry.MODELS))
    fit.add_argument("-o", "--output", required=True, help="model file (.json)")
    fit.add_argument("--customer-col", default=None,
                     help="customer id column (default: the one the file records, else "
                          "customer_id when present)")
    fit.add_argument("--time-unit", default=None,
                     help="time unit of the table's durations (h, D, W or M), recorded in the "
                          "model; read from a Parquet file written by `clvlab rfm`, required for "
                          "a CSV table of BG/NBD, MBG/NBD or Pareto/NBD")
    fit.add_argument("--weights-col", default=None,
                     help="column holding how many customers each row stands for")
    fit.add_argument("--penalty", type=float, default=0.0, help="L2 penalty on the parameters")
    fit.add_argument("--method", default="mle", choices=["mle", "map", "nuts", "advi"],
                     help="maximum likelihood (default) or Bayesian through PyMC; the posterior "
                          "is saved beside the model as <name>.posterior.nc")
    fit.add_argument("--draws", type=int, default=1000, help="posterior draws per chain")
    fit.add_argument("--tune", type=int, default=1000, help="NUTS tuning steps per chain")
    fit.add_argument("--chains", type=int, default=4)
    fit.add_argument("--seed", type=int, default=None, help="random seed of the sampler")
    for process, moves in (("purchase", "purchasing"), ("dropout", "dropout"),
                           ("spend", "spend per purchase")):
        fit.add_argument(f"--{process}-covariates", default=None, metavar="COLUMNS",
                         help=f"comma-separated attribute columns that move {moves} (e.g. "
                              "gender,channel): columns of the table or of --attributes")
    fit.add_argument("--shared-covariates", default=None, metavar="COLUMNS",
                     help="covariates of both purchase and dropout with one coefficient")
    fit.add_argument("--covariate-penalty", type=float, default=0.0,
                     help="L2 penalty on the covariate coefficients")
    fit.add_argument("--attributes", default=None,
                     help="static customer attributes known at acquisition (.parquet or .csv, "
                          "with the customer id column or indexed by it), joined to the table "
                          "by clvlab.rfm_summary's rules before the fit")
    fit.add_argument("--overwrite", action="store_true")
    fit.set_defaults(run=_run_fit)

    predict = commands.add_parser(
        "predict", help="score an RFM table with a saved model",
        description="Write p_alive, expected purchases and P(any purchase) over the horizon for "
                    "every customer; with --spend-model also expected spend and CLV.")
    predict.add_argument("model", help="transaction model file (.json from `clvlab fit`)")
    predict.add_argument("rfm", help="RFM table (.parquet or .csv)")
    predict.add_argument("--horizon", type=float, required=True, help="in the model's time unit")
    predict.add_argument("-o", "--output", required=True, help="output file (.parquet or .csv)")
    predict.add_argument("--spend-model", default=None, help="Gamma-Gamma model file, for CLV")
    predict.add_argument("--discount-rate", type=float, default=0.0,
                         help="per time unit, as a fraction (0.0015 a week is about 8%% a year)")
    predict.add_argument("--margin", type=float, default=1.0,
                         help="share of spend that is profit, as a fraction in (0, 1]")
    predict.add_argument("--customer-col", default=None,
                         help="customer id column (default: the one the file records, else "
                              "customer_id when present)")
    predict.add_argument("--time-unit", default=None,
                         help="time unit of a CSV table (a Parquet file from `clvlab rfm` "
                              "records it); must be the model's")
    predict.add_argument("--overwrite", action="store_true")
    predict.set_defaults(run=_run_predict)

    backtest = commands.add_parser(
        "backtest", help="backtest models and baselines against held-out windows",
        description="At each cutoff, summarise the log up to it (customers acquired by then), fit "
                    "every candidate, predict the next --horizon time units and compare with what "
                    "happened (see clvlab.backtest). Prints the mean metrics over the cutoffs and "
                    "writes the tidy metrics table.")
    backtest.add_argument("transactions", nargs="+", help="CSV or Parquet files, or quoted globs")
    backtest.add_argument("--cutoffs", required=True, help="comma-separated dates, e.g. "
                                                           "1997-09-30,1997-12-31")
    backtest.add_argument("--horizon", type=float, required=True, help="in --time-unit")
    backtest.add_argument("--candidates", default=None,
                          help="comma-separated candidate names (default with --amount-col: "
                               f"{','.join(_default_candidates(True))}; without amounts: "
                               f"{','.join(_default_candidates(False))})")
    backtest.add_argument("-o", "--output", required=True, help="metrics table (.parquet or .csv)")
    backtest.add_argument("--cohorts-output", default=None,
                          help="also write the cohort LTV table here (.parquet or .csv)")
    add_log_options(backtest, amount_help="spend column (spend metrics need it)")
    backtest.add_argument("--time-unit", default="W", help="h, D, W (default) or M")
    backtest.add_argument("--cohort-freq", default="M", help="acquisition cohorts: M, Q or Y")
    backtest.add_argument("--acquisition-cost", type=float, default=None,
                          help="cost of acquiring a customer; adds LTV:CAC to the cohort table")
    backtest.add_argument("--overwrite", action="store_true")
    backtest.add_argument("--no-progress", action="store_true",
                          help="no progress bar (there is none unless standard error is a terminal)")
    backtest.set_defaults(run=_run_backtest)

    from clvlab.cli.tracking import add_commands

    add_commands(commands)

    demo = commands.add_parser(
        "demo", help="run the main job on the bundled CDNOW data",
        description="The whole job on the bundled CDNOW sample log, in weeks: summarise it "
                    "(calibration to 1997-09-30, holdout to 1998-06-30), fit BG/NBD, Pareto/NBD "
                    "and Gamma-Gamma, compare expected with actual holdout purchases, write the "
                    "models and each customer's 52-week CLV; then, in MLflow (the local store "
                    "sqlite:///mlflow.db unless MLFLOW_TRACKING_URI is set), log the fits and a "
                    "backtest, register and promote the CLV model and score every customer "
                    "from the registry. Everything is written to --output-dir.")
    demo.add_argument("--output-dir", default="demo-output")
    demo.set_defaults(run=_run_demo)
    return parser


def _default_candidates(has_amounts: bool) -> list[str]:
    from clvlab.evaluation import default_candidates

    return default_candidates(has_amounts)


def _settings_kwargs(args: argparse.Namespace) -> dict:
    return dict(customer_col=args.customer_col, date_col=args.date_col, amount_col=args.amount_col,
                time_unit=args.time_unit, date_format=args.date_format, timezone=args.timezone,
                merge_period=args.merge_period, consent_col=args.consent_col,
                withdrawn=args.withdrawn, delimiter=args.delimiter, decimal=args.decimal)


def _run_rfm(args: argparse.Namespace) -> int:
    from clvlab.data import rfm_duckdb
    from clvlab.data.rfm_io import expand_paths
    from clvlab.data.rfm_rules import make_settings, report_set_aside
    from clvlab.core.atomic import atomic_output

    settings = make_settings(**_settings_kwargs(args))
    files = expand_paths(args.transactions)
    output_format = _output_format(args.output)
    connection = rfm_duckdb.new_connection(args.memory_limit)
    started = time.perf_counter()
    inputs = files + ([args.attributes] if args.attributes else [])
    with atomic_output(args.output, overwrite=args.overwrite, inputs=inputs) as temporary:
        if args.attributes:
            info = _write_rfm_with_attributes(args, files, temporary, output_format, connection)
        else:
            info = rfm_duckdb.write_table(files, temporary, output_format, settings,
                                          args.calibration_end, args.observation_end,
                                          connection=connection, progress=not args.no_progress)
            report_set_aside(info, stacklevel=2)
    if "customers_excluded" in info:
        print(f"left out {info['customers_excluded']:,} customers who withdrew consent")
    print(f"wrote {info['customers']:,} customers to {args.output} in "
          f"{time.perf_counter() - started:.1f} s (time unit {info['time_unit']}, "
          f"calibration end {info['calibration_end']}, observation end {info['observation_end']})")
    return 0


def _write_rfm_with_attributes(args: argparse.Namespace, files: list[str], path: str,
                               output_format: str, connection) -> dict:
    """The summary with the attributes joined (in memory: they are joined in pandas), written
    to ``path`` with its metadata, as write_table writes it; rfm_summary warns of set-asides."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from clvlab.data.rfm import rfm_summary
    from clvlab.data.rfm_io import parquet_metadata

    table = rfm_summary(files, engine="duckdb", connection=connection,
                        progress=not args.no_progress, calibration_end=args.calibration_end,
                        observation_end=args.observation_end,
                        customer_attributes=_read_attributes(args.attributes),
                        **_settings_kwargs(args))
    info = table.attrs["clvlab"]
    if output_format == "parquet":
        arrow = pa.Table.from_pandas(table)
        metadata = {key.encode(): value.encode() for key, value in parquet_metadata(info).items()}
        pq.write_table(arrow.replace_schema_metadata({**arrow.schema.metadata, **metadata}), path)
    else:
        table.to_csv(path)
    return {"customers": len(table), **info}


def _run_simulate(args: argparse.Namespace) -> int:
    from clvlab.core.atomic import atomic_output
    from clvlab.data.simulate import transaction_log

    defaults = LOG_MODEL_EXAMPLES[args.model]
    params = dict(defaults)
    if args.params:
        for item in args.params.split(","):
            name, _, value = item.partition("=")
            if name.strip() not in defaults:
                raise ClvlabError(f"--params: unknown parameter {name!r} for {args.model}; "
                                  f"expected {sorted(defaults)}")
            params[name.strip()] = float(value)
    log = transaction_log(args.customers, model=args.model, params=params,
                          spend={"p": 6.25, "q": 3.74, "v": 15.44}, seed=args.seed)
    output_format = _output_format(args.output)
    with atomic_output(args.output, overwrite=args.overwrite) as temporary:
        if output_format == "parquet":
            log.to_parquet(temporary, index=False)
        else:
            log.to_csv(temporary, index=False)
    print(f"wrote {len(log):,} transactions of {args.customers:,} customers to {args.output}")
    return 0


def _read_rfm(path: str, customer_col: str | None, time_unit: str | None, model_class=None):
    """The RFM table with its recorded unit (see clvlab.read_rfm); models of durations need one."""
    from clvlab.data.rfm_io import read_rfm

    needs_unit = model_class is None or model_class.requires_time_unit
    return read_rfm(path, time_unit=time_unit, customer_col=customer_col,
                    require_time_unit=needs_unit)


def _run_fit(args: argparse.Namespace) -> int:
    import pandas as pd

    model_class = registry.by_name(args.model).model_class
    rfm = _read_rfm(args.rfm, args.customer_col, args.time_unit, model_class)
    if args.attributes:
        rfm = _join_attributes(rfm, args.attributes, args.customer_col)
    model = model_class(
        penalty=args.penalty, method=args.method, draws=args.draws, tune=args.tune,
        chains=args.chains, random_seed=args.seed, progressbar=sys.stderr.isatty(),
        **_covariate_settings(args))
    if args.weights_col is not None and args.weights_col not in rfm.columns:
        raise ClvlabError(f"--weights-col {args.weights_col!r} is not a column of {args.rfm}")
    model.fit(rfm, weights=None if args.weights_col is None else rfm[args.weights_col])
    model.save(args.output, overwrite=args.overwrite)
    print(repr(model))
    with pd.option_context("display.float_format", "{:.6g}".format):
        print(model.summary().to_string())
    c = model.convergence_
    if args.method == "nuts":
        print(f"diagnostics: {c['divergences']} divergences; max r_hat {c['max_r_hat']:.3f}; "
              f"min bulk ESS {c['min_ess_bulk']:.0f}; converged: {c['converged']}")
    elif args.method == "mle":
        print(f"converged: {c['converged']}; AIC {model.aic_:.2f}; BIC {model.bic_:.2f}")
    else:  # AIC and BIC are maximum-likelihood criteria; a posterior point has none
        problems = f" ({'; '.join(c['problems'])})" if c.get("problems") else ""
        print(f"converged: {c['converged']}{problems}")
    print(f"wrote {args.output}")
    return 0


def _covariate_settings(args: argparse.Namespace) -> dict:
    """The model's covariate settings from the command line (none when none is given, so that
    a fit without covariates is built as before)."""
    settings = {}
    for name in ("purchase_covariates", "dropout_covariates", "spend_covariates",
                 "shared_covariates"):
        value = getattr(args, name)
        if value:
            settings[name] = [c.strip() for c in value.split(",") if c.strip()]
    if args.covariate_penalty:
        settings["covariate_penalty"] = args.covariate_penalty
    return settings


def _join_attributes(rfm, path: str, customer_col: str | None):
    """The RFM table with the attributes of ``path`` joined by customer id."""
    from clvlab.data.attributes import join_attributes

    return join_attributes(rfm, _read_attributes(path),
                           customer_col=customer_col or rfm.index.name or "customer_id")


def _read_attributes(path: str):
    """An attributes file: CSV, or Parquet with its pandas index of ids kept (read_files,
    made for logs, would drop it)."""
    import pandas as pd

    from clvlab.data.rfm_io import read_files

    if not Path(path).is_file():
        raise ClvlabError(f"--attributes {path} does not exist")
    return pd.read_parquet(path) if path.lower().endswith((".parquet", ".pq")) else read_files(path)


def _run_predict(args: argparse.Namespace) -> int:
    from clvlab.core.atomic import atomic_output
    from clvlab.models.customer_scores import score_customers
    from clvlab.models import GammaGamma, load_model
    from clvlab.models.transaction import TransactionModel

    model = load_model(args.model)
    if isinstance(model, GammaGamma):
        raise ClvlabError(f"{args.model} is a spend model; pass it with --spend-model and give a "
                          "transaction model first")
    if not isinstance(model, TransactionModel):
        raise ClvlabError(f"{args.model} holds a {type(model).__name__}; `clvlab predict` scores "
                          "the continuous-time models (BG/NBD, MBG/NBD, Pareto/NBD); use the "
                          "Python API for it")
    spend = GammaGamma.load(args.spend_model) if args.spend_model else None
    rfm = _read_rfm(args.rfm, args.customer_col, args.time_unit)
    out = score_customers(model, spend, None, rfm, horizon=args.horizon,
                          discount_rate=args.discount_rate, margin=args.margin)
    output_format = _output_format(args.output)
    inputs = [args.rfm, args.model] + ([args.spend_model] if args.spend_model else [])
    with atomic_output(args.output, overwrite=args.overwrite, inputs=inputs) as tmp:
        if output_format == "parquet":
            out.to_parquet(tmp)
        else:
            out.to_csv(tmp)
    print(f"wrote predictions for {len(out):,} customers ({out.index.name or 'no customer id'}) "
          f"to {args.output}")
    unvalued = out.attrs["clvlab"]["customers_unvalued"]
    if unvalued:
        print(f"{unvalued:,} customers whose repeat purchases were all free were valued at the "
              "population's mean spend")
    return 0


def _run_backtest(args: argparse.Namespace) -> int:
    import pandas as pd

    from clvlab.data.rfm_io import expand_paths
    from clvlab.core.atomic import atomic_output
    from clvlab.evaluation import backtest

    files = expand_paths(args.transactions)
    outputs = [(args.output, "metrics")]
    if args.cohorts_output:
        outputs.append((args.cohorts_output, "cohorts"))
    formats = [_output_format(path) for path, _ in outputs]  # refuse a bad name before the work
    for path, _ in outputs:
        if Path(path).exists() and not args.overwrite:
            raise ClvlabError(f"output {path} exists; pass --overwrite to replace it")
    candidates = _default_candidates(args.amount_col is not None) if args.candidates is None \
        else [c.strip() for c in args.candidates.split(",") if c.strip()]
    result = backtest(files, candidates,
                      [c.strip() for c in args.cutoffs.split(",") if c.strip()], args.horizon,
                      customer_col=args.customer_col, date_col=args.date_col,
                      amount_col=args.amount_col, time_unit=args.time_unit,
                      date_format=args.date_format, timezone=args.timezone,
                      cohort_freq=args.cohort_freq, acquisition_cost=args.acquisition_cost,
                      keep_predictions=False, progress=False if args.no_progress else None,
                      consent_col=args.consent_col, withdrawn=args.withdrawn,
                      delimiter=args.delimiter, decimal=args.decimal)
    if args.consent_col or args.withdrawn:
        print(f"left out {result.settings['customers_excluded']:,} customers who withdrew consent")
    for (path, table), output_format in zip(outputs, formats):
        frame: pd.DataFrame = getattr(result, table)
        with atomic_output(path, overwrite=args.overwrite, inputs=files) as temporary:
            if output_format == "parquet":
                frame.to_parquet(temporary, index=False)
            else:
                frame.to_csv(temporary, index=False)
    print(repr(result))
    print(f"wrote {len(result.metrics):,} metric rows to {args.output}")
    return 0


def _run_demo(args: argparse.Namespace) -> int:
    from clvlab.ops.demo import run_demo

    run_demo(args.output_dir)
    return 0


def _output_format(path: str) -> str:
    lower = path.lower()
    if lower.endswith((".parquet", ".pq")):
        return "parquet"
    if lower.endswith(".csv"):
        return "csv"
    raise ClvlabError(f"output {path!r} must end in .parquet or .csv")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
