"""Options that several subcommands share, in one place for the data and the MLflow commands."""

from __future__ import annotations

import argparse

__all__ = ["add_log_options"]


def add_log_options(parser: argparse.ArgumentParser, *, amount_default: str | None = None,
                    amount_help: str = "spend column") -> None:
    """The columns and date rules of a transaction log, the same for every subcommand."""
    parser.add_argument("--customer-col", default="customer_id")
    parser.add_argument("--date-col", default="date")
    parser.add_argument("--amount-col", default=amount_default, help=amount_help)
    parser.add_argument("--date-format", default=None, help="strptime format, e.g. %%Y%%m%%d")
    parser.add_argument("--timezone", default="UTC", help="time zone whose calendar days count")
    parser.add_argument("--delimiter", default=None,
                        help="CSV field separator, e.g. ';' (default: detected)")
    parser.add_argument("--decimal", default=".",
                        help="decimal mark of CSV numbers: '.' (default) or ',' (e.g. 12,50)")
    parser.add_argument("--consent-col", default=None,
                        help="consent column: customers with any row saying no are left out")
    parser.add_argument("--withdrawn", default=None,
                        help="file of customer ids (one per line) who withdrew consent; left out")
