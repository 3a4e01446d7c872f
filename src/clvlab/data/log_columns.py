"""The transaction log's columns a reader of the log takes: those the caller names, else those
the RFM table built from it records (``attrs["clvlab"]``: ``date_col``, ``amount_col``,
``date_format``), as :func:`clvlab.covariate_paths` takes them; and the hint that says where a
missing column's name came from. Shared by the command line's ``fit --transactions`` and the
time-varying tracking plot."""

from __future__ import annotations

from typing import Any

import pandas as pd

from clvlab.core.errors import DataValidationError

__all__ = ["log_columns", "log_column_hint"]


def log_columns(rfm: pd.DataFrame, **given: str | None) -> dict[str, str | None]:
    """The transaction log's columns (``date_col=``, ``amount_col=``, ``date_format=``): those
    given, else those the RFM table records (as :func:`clvlab.covariate_paths` takes them),
    else ``date``/none. For the command line's ``fit --transactions`` and the tracking plot."""
    recorded = dict((getattr(rfm, "attrs", None) or {}).get("clvlab") or {})
    chosen = {key: value or recorded.get(key) for key, value in given.items()}
    if "date_col" in chosen:
        chosen["date_col"] = chosen["date_col"] or "date"
    return chosen


def log_column_hint(exc: Any, rfm: pd.DataFrame, given: dict, chosen: dict, spell) -> Any:
    """``exc`` (a column missing from the log) with where the column's name came from and how
    to give another: ``spell("date_col", "ts")`` writes it as the caller takes it."""
    key = next((k for k in ("date_col", "amount_col") if chosen.get(k) == exc.column), None)
    if key is None or not str(exc.rule).startswith("is missing"):
        return exc
    what = key[:-4]
    if given.get(key):
        why = f"the name comes from {spell(key, exc.column)}: give the log's {what} column"
    elif ((getattr(rfm, "attrs", None) or {}).get("clvlab") or {}).get(key):
        why = (f"the RFM table records it as the {what} column of the log it was built from: "
               f"give that log, or name this log's {what} column with {spell(key, '...')}")
    else:
        why = (f"the RFM table records no {what} column (a CSV table never does; a Parquet "
               f"table of `clvlab rfm` does), so the default {exc.column!r} is used: name the "
               f"log's {what} column with {spell(key, '...')}, e.g. {spell(key, 'order_' + what)}")
    return DataValidationError(exc.column, exc.rule, exc.row,
                               hint="; ".join(filter(None, [exc.hint, why])))
