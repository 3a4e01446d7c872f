"""Parameters by row: a model whose every parameter holds one value per row of the table.

A model class with ``row_predictions = True`` writes its predictions over NumPy arrays, so a
*row model* (``row_model``: the plain model whose ``_check_fitted()`` returns a k x rows
array) predicts many parameter values in one vectorised pass: each customer of a covariate
model at their own parameters (:mod:`clvlab.models.customer_params`), or one table at many
parameter draws (:func:`clvlab.inference.uncertainty.posterior_summary`). While a row model
predicts, its rows must not be reduced to distinct histories again (``distinct_rows``): two
rows with one history may hold different parameters.
"""

from __future__ import annotations

import contextlib
import contextvars

import numpy as np
import pandas as pd

__all__ = ["row_model", "rows_are_distinct", "distinct_rows"]

#: set while a row model predicts: its rows are already distinct in history and parameters
#: (or must not be shared: random draws), and its parameters are one per row, so the
#: predictions must not reduce the rows again (``transaction._per_distinct``)
_DISTINCT_ROWS = contextvars.ContextVar("clvlab_distinct_rows", default=False)


def rows_are_distinct() -> bool:
    """Whether a row model is predicting (its rows must not be reduced again)."""
    return _DISTINCT_ROWS.get()


@contextlib.contextmanager
def distinct_rows():
    """Within it, a row model's rows count as distinct (a caller that built the row model
    itself, e.g. the predictions along covariate paths)."""
    token = _DISTINCT_ROWS.set(True)
    try:
        yield
    finally:
        _DISTINCT_ROWS.reset(token)


def row_model(model, params: np.ndarray):
    """The plain model whose parameters differ by row: ``_check_fitted()`` returns the k x
    rows array ``params.T``, so every vectorised formula sees one value per row. Its
    ``params_`` are NaN: code that read them in place of ``_check_fitted()`` would give NaN,
    which the finiteness checks of the predictions refuse, rather than row 0's values."""
    params = np.ascontiguousarray(np.asarray(params, dtype=np.float64).T)
    plain = model.plain_at(params[:, 0])
    plain.params_ = pd.Series(np.nan, index=plain.params_.index, name=plain.params_.name)
    plain._row_params = params
    return plain
