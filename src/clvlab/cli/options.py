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


def add_event_options(parser) -> None:
    """--events FILE[,...] and its columns: an event log beside the purchases, whose windowed
    counts, sums and recencies the feature-learning candidates see (clvlab.data.events); and
    --quantity-col, the purchase log's basket sizes (clvlab.data.events.basket_features)."""
    parser.add_argument("--events", default=None, metavar="FILE",
                        help="event log beside the purchases, a file or a quoted glob (visits, "
                             "e-mails opened, returns, "
                             "support contacts: CSV or Parquet with --customer-col, --date-col "
                             "and --event-col): the churn adjuster and the challengers (ziln, gbm) "
                             "learn from, and are scored with, its counts and recencies up to "
                             "each cutoff or --as-of")
    parser.add_argument("--event-col", default="event",
                        help="the event log's event name column (default event)")
    parser.add_argument("--event-value-col", default=None,
                        help="the event log's optional value column (a duration, an amount...)")
    parser.add_argument("--quantity-col", default=None, metavar="COLUMN",
                        help="the purchase log's items-per-order column (numbers >= 0, each row "
                             "an order): the churn adjuster and the challengers learn from, and "
                             "are scored with, each customer's basket sizes up to each cutoff "
                             "or --as-of")
