"""The ``clvlab`` command line: ``clvlab SUBCOMMAND --help`` describes each subcommand."""

from __future__ import annotations

import argparse
import contextlib
import sys
import warnings
import time
from typing import Sequence

from clvlab.cli.options import add_log_options
from clvlab.core.errors import ClvlabError

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = _parser(argv)
    args = parser.parse_args(argv)
    if not hasattr(args, "run"):
        parser.print_help()
        return 2
    try:
        with _one_line_warnings():
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


@contextlib.contextmanager
def _one_line_warnings():
    """Warnings printed as "clvlab: warning: <message>" while a command runs (not the
    default's file, line and source line, which mean nothing to a command-line user); the
    library's own format is restored after it, and warnings recorded by a caller (pytest,
    warnings.catch_warnings(record=True)) are recorded as before."""
    previous = warnings.formatwarning

    def one_line(message, category, filename, lineno, line=None):
        return f"clvlab: warning: {message}\n"

    warnings.formatwarning = one_line
    try:
        yield
    finally:
        warnings.formatwarning = previous


def _parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The command line's parser. Every subcommand is listed, but with ``argv`` only the one it
    names gets all its options: the help and choices of some (fit's models, backtest's
    candidates, monitor's thresholds) come from modules that import scikit-learn, numba, PyMC
    or MLflow, which `clvlab --help` and the other subcommands do not need. Without ``argv``
    every subcommand is complete."""
    from clvlab.core.version import __version__

    def complete(command: str) -> bool:
        return argv is None or command == _command(argv)

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
    if complete("simulate"):
        _add_simulate_options(simulate)

    from clvlab.cli import model_commands

    model_commands.add_commands(commands, _default_candidates, complete)

    from clvlab.cli.tracking import add_commands

    add_commands(commands)

    from clvlab.cli.monitor import add_command as add_monitor

    add_monitor(commands, with_options=complete("monitor"))

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


def _command(argv: Sequence[str]) -> str | None:
    """The subcommand ``argv`` names: its first word that is no option (the options before it,
    --help and --version, take no value)."""
    return next((word for word in argv if not word.startswith("-")), None)


def _add_simulate_options(simulate: argparse.ArgumentParser) -> None:
    from clvlab.data.simulate import LOG_MODEL_EXAMPLES

    simulate.add_argument("-o", "--output", required=True, help="output file (.parquet or .csv)")
    simulate.add_argument("--customers", type=int, default=10_000)
    simulate.add_argument("--model", default="pareto-nbd", choices=list(LOG_MODEL_EXAMPLES))
    simulate.add_argument("--params", default=None,
                          help="comma-separated name=value, e.g. r=0.55,alpha=10.6,s=0.61,beta=11.7")
    simulate.add_argument("--seed", type=int, default=0)
    simulate.add_argument("--overwrite", action="store_true")
    simulate.set_defaults(run=_run_simulate)


def _default_candidates(has_amounts: bool) -> list[str]:
    from clvlab.evaluation import default_candidates

    return default_candidates(has_amounts)


def _settings_kwargs(args: argparse.Namespace) -> dict:
    return dict(customer_col=args.customer_col, date_col=args.date_col, amount_col=args.amount_col,
                time_unit=args.time_unit, date_format=args.date_format, timezone=args.timezone,
                merge_period=args.merge_period, consent_col=args.consent_col,
                withdrawn=args.withdrawn, delimiter=args.delimiter, decimal=args.decimal)


def _run_rfm(args: argparse.Namespace) -> int:
    from clvlab.cli.tables import output_format
    from clvlab.data import rfm_duckdb
    from clvlab.data.rfm_io import expand_paths
    from clvlab.data.rfm_rules import make_settings, report_set_aside
    from clvlab.core.atomic import atomic_output

    settings = make_settings(**_settings_kwargs(args))
    files = expand_paths(args.transactions)
    fmt = output_format(args.output)
    connection = rfm_duckdb.new_connection(args.memory_limit)
    started = time.perf_counter()
    inputs = files + ([args.attributes] if args.attributes else [])
    with atomic_output(args.output, overwrite=args.overwrite, inputs=inputs) as temporary:
        if args.attributes:
            info = _write_rfm_with_attributes(args, files, temporary, fmt, connection)
        else:
            info = rfm_duckdb.write_table(files, temporary, fmt, settings,
                                          args.calibration_end, args.observation_end,
                                          connection=connection, progress=not args.no_progress)
            report_set_aside(info)
    if "customers_excluded" in info:
        print(f"left out {info['customers_excluded']:,} customers who withdrew consent")
    print(f"wrote {info['customers']:,} customers to {args.output} in "
          f"{time.perf_counter() - started:.1f} s (time unit {info['time_unit']}, "
          f"calibration end {info['calibration_end']}, observation end {info['observation_end']})")
    return 0


def _write_rfm_with_attributes(args: argparse.Namespace, files: list[str], path: str,
                               fmt: str, connection) -> dict:
    """The summary with the attributes joined (in memory: they are joined in pandas), written
    to ``path`` in write_table's layout (the id a column, the metadata recorded); rfm_summary
    warns of set-asides."""
    from clvlab.cli.tables import read_attributes, write_customer_table
    from clvlab.data.rfm import rfm_summary

    table = rfm_summary(files, engine="duckdb", connection=connection,
                        progress=not args.no_progress, calibration_end=args.calibration_end,
                        observation_end=args.observation_end,
                        customer_attributes=read_attributes(
                            args.attributes, args.customer_col, delimiter=args.delimiter,
                            decimal=args.decimal),
                        **_settings_kwargs(args))
    info = table.attrs["clvlab"]
    write_customer_table(table, path, fmt, info)
    return {"customers": len(table), **info}


def _run_simulate(args: argparse.Namespace) -> int:
    from clvlab.cli.tables import output_format
    from clvlab.core.atomic import atomic_output
    from clvlab.data.simulate import LOG_MODEL_EXAMPLES, transaction_log

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
    fmt = output_format(args.output)
    with atomic_output(args.output, overwrite=args.overwrite) as temporary:
        if fmt == "parquet":
            log.to_parquet(temporary, index=False)
        else:
            log.to_csv(temporary, index=False)
    print(f"wrote {len(log):,} transactions of {args.customers:,} customers to {args.output}")
    return 0


def _run_demo(args: argparse.Namespace) -> int:
    from clvlab.ops.demo import run_demo

    run_demo(args.output_dir)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
