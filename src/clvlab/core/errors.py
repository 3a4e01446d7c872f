"""Errors that clvlab raises for bad input.

Every validation error names the column, the rule that was broken and one offending row, so that
a user can find the problem in a raw export without reading clvlab's code.
"""

from __future__ import annotations

import datetime
from typing import Any

import numpy as np

__all__ = ["ClvlabError", "DataValidationError", "ClvlabWarning", "example_row", "shown",
           "did_you_mean"]


class ClvlabError(ValueError):
    """Base class of clvlab's errors (a ValueError, so generic handlers still catch it)."""


class ClvlabWarning(UserWarning):
    """Something in the input was handled by a documented rule the user may want to know about."""


class DataValidationError(ClvlabError):
    """A transaction log or RFM table breaks a rule.

    Attributes
    ----------
    column : the column at fault (None for rules about the whole table or an argument)
    rule : the rule, in words
    row : the offending row as a dict, with its index label under ``"<row>"``, or None
    """

    def __init__(self, column: str | None, rule: str, row: dict[str, Any] | None = None,
                 hint: str | None = None):
        self.column = column
        self.rule = rule
        self.row = row
        self.hint = hint
        parts = [f"column {column!r}: {rule}" if column is not None else rule]
        if row is not None:
            parts.append(f"example row: {_format_row(row)}")
        if hint:
            parts.append(hint)
        super().__init__("; ".join(parts))


def shown(value: Any) -> str:
    """A value from a user's table as they wrote it: ``1001``, not ``np.int64(1001)`` (NumPy 2's
    repr of its scalars)."""
    return repr(value.item() if isinstance(value, np.generic) else value)


def did_you_mean(names: list[str], options: list[str]) -> str:
    """"; did you mean 'x' -> 'y'?" for the names with a close match among the options (a
    misspelt column), else ""."""
    import difflib

    close = {n: difflib.get_close_matches(n, options, n=1, cutoff=0.75) for n in names}
    hints = [f"{n!r} -> {c[0]!r}" for n, c in close.items() if c]
    return f"; did you mean {', '.join(hints)}?" if hints else ""


def _format_row(row: dict[str, Any]) -> str:
    items = ", ".join(f"{k}={_short(v)}" for k, v in row.items())
    return "{" + items + "}"


def _short(value: Any) -> str:
    if isinstance(value, (datetime.date, datetime.datetime)):
        text = str(value)
    elif isinstance(value, np.generic):
        text = repr(value.item())
    else:
        text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def example_row(frame: Any, position: int) -> dict[str, Any]:
    """Row ``position`` of a user's DataFrame as a dict, with its index label under "<row>"."""
    # column by column: a row Series would upcast ids and dates to one dtype (1 -> 1.0)
    return {"<row>": frame.index[position],
            **{str(k): frame[k].iloc[position] for k in frame.columns}}
