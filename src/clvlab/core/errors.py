"""Errors that clvlab raises for bad input.

Every validation error names the column, the rule that was broken and one offending row, so that
a user can find the problem in a raw export without reading clvlab's code.
"""

from __future__ import annotations

import datetime
import os
import sys
import warnings
from typing import Any

import numpy as np

__all__ = ["ClvlabError", "DataValidationError", "ClvlabWarning", "example_row", "shown",
           "did_you_mean", "warn"]

_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep


class ClvlabError(ValueError):
    """Base class of clvlab's errors (a ValueError, so generic handlers still catch it)."""


class ClvlabWarning(UserWarning):
    """Something in the input was handled by a documented rule the user may want to know about."""


def warn(message: str, category: type[Warning] = ClvlabWarning) -> None:
    """Warn, attributed to the first caller outside clvlab: the user's line (a notebook cell, a
    script, a test), however many of clvlab's functions and wrappers lie between (the edges that
    convert polars and Arrow tables, the covariate groups, the unit checks), so that the
    warning points at the call to change. Python 3.12's ``skip_file_prefixes`` does this; on
    3.11 the frames are counted here. Where every frame is clvlab's (its command line), the
    warning is attributed to clvlab's innermost caller."""
    if sys.version_info >= (3, 12):
        warnings.warn(message, category, skip_file_prefixes=(_PACKAGE,))
        return
    frame, level = sys._getframe(1), 2  # level 2: warn's caller
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=level if frame is not None else 2)


class DataValidationError(ClvlabError):
    """A transaction log or RFM table breaks a rule.

    The message reads ``column 'x': <rule>; example row: ...; <hint>``.

    Parameters
    ----------
    column : str or None
        The column at fault (None for rules about the whole table or an argument).
    rule : str
        The rule, in words.
    row : dict, optional
        The offending row, with its index label under ``"<row>"``.
    hint : str, optional
        What to do about it, appended to the message.

    Attributes
    ----------
    column : str or None
        The column at fault (None for rules about the whole table or an argument).
    rule : str
        The rule, in words.
    row : dict or None
        The offending row as a dict, with its index label under ``"<row>"``, or None.
    hint : str or None
        The hint, or None.
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
