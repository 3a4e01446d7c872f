"""Numbers given by a caller: one rule for every option that is a number.

A number given as text (``horizon="52"``) is refused everywhere, with the same message: some
functions used to parse it (NumPy does, ``np.asarray("52", float)``) and others failed on it
with NumPy's own error, so the same call worked in one place and broke in the next. Parsing
text is the job of the layer that reads text (the command line, a file reader), which knows
where the text came from. Booleans are refused too (``True`` is not a horizon).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from clvlab.core.errors import ClvlabError

__all__ = ["number", "numbers"]


def _refuse(value: Any, name: str, meaning: str) -> ClvlabError:
    if isinstance(value, (str, bytes)):
        return ClvlabError(f"{name} must be a number ({meaning}), not the text {value!r}; "
                           f"convert it first, e.g. {name}=float({value!r})")
    return ClvlabError(f"{name} must be a number ({meaning}), got {value!r}")


def number(value: Any, name: str, meaning: str = "") -> float:
    """``value`` as a float: an int, float or NumPy number, never text, a boolean or None.
    ``meaning`` says what the number is in the error (e.g. "in the model's time unit")."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.number)):
        # a 0-d array or a one-element Series is a number too
        if isinstance(value, np.ndarray) and value.ndim == 0 and value.dtype.kind in "iuf":
            return float(value)
        raise _refuse(value, name, meaning or "a number")
    return float(value)


def numbers(value: Any, name: str, meaning: str = "") -> float | np.ndarray:
    """A number, or an array-like of numbers (a list, an array, a Series), as a float or a
    float array; text anywhere in it is refused as :func:`number` does."""
    if np.ndim(value) == 0 and not isinstance(value, np.ndarray):
        return number(value, name, meaning)
    array = np.asarray(value)
    if array.dtype.kind not in "iuf" or array.dtype == bool:
        example = next((v for v in array.ravel() if isinstance(v, (str, bytes, bool, np.bool_))
                        or v is None), array.ravel()[0] if array.size else value)
        raise _refuse(example, name, meaning or "numbers")
    return array.astype(np.float64) if array.ndim else float(array)
