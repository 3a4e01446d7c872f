"""How a model turns the covariate columns of an RFM table into numbers, learned once at fit.

The encoding (saved in the model's JSON, so that scoring encodes exactly as the fit did):

- **numeric** columns (int, float) are used as they are; bool columns as 0/1. The model divides
  each by its standard deviation internally, for the optimiser's sake only: coefficients,
  standard errors and penalties are all on the user's scale.
- **text and categorical** columns (string, object of strings, pandas Categorical) are one-hot
  encoded with a *reference level*: the first level in sorted order, whose effect is the
  baseline (0). A column ``channel`` with levels store < web gives one covariate named
  ``channel[web]``. A level not seen at fit is an error at scoring, never a silent baseline.
- a numeric value outside the range seen at fit (``channel=2`` for a 0/1 column), or a value
  other than the two a two-valued column took, is scored by extrapolating the fitted effect,
  with a warning that names the column, the range and a customer: the data never said what
  it does there.

Attributes must be known at acquisition: a value that changed after a customer's first
purchase leaks the future into the fit (see ``clvlab.rfm_summary``'s ``customer_attributes``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import pandas as pd

from clvlab.core.errors import ClvlabError, ClvlabWarning, DataValidationError, example_row, warn

__all__ = ["CovariateEncoder"]


def _is_text(column: pd.Series) -> bool:
    return (isinstance(column.dtype, pd.CategoricalDtype) or pd.api.types.is_string_dtype(column)
            or column.dtype == object)


@dataclass
class CovariateEncoder:
    """The learned encoding of named columns: see the module docstring.

    ``columns``: the user's column names, in order; ``levels``: for each text column, its
    levels in sorted order (the first is the reference); ``scales``: for each encoded
    covariate, the standard deviation the optimiser divides by (1 for one-hot columns).
    """

    columns: list[str]
    levels: dict[str, list[str]] = field(default_factory=dict)
    scales: dict[str, float] = field(default_factory=dict)
    #: numeric columns: the values seen at fit, as [min, max], or the two values of a column
    #: that took exactly two (a 0/1 flag); absent in files written before it was recorded
    seen: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def fit(cls, table: pd.DataFrame, columns: Sequence[str], *, model: str) -> "CovariateEncoder":
        columns = list(dict.fromkeys(columns))
        check_present(table, columns, model=model)
        levels, scales, seen = {}, {}, {}
        for name in columns:
            column = table[name]
            _check_values(table, name)
            if _is_text(column):
                found = sorted({str(v) for v in column.tolist()})
                if len(found) < 2:
                    raise DataValidationError(
                        name, f"has the single level {found[0]!r}, so it cannot change anything "
                        f"in {model}; drop it from the covariates", example_row(table, 0))
                levels[name] = found
                scales.update({f"{name}[{level}]": 1.0 for level in found[1:]})
            else:
                values = column.to_numpy(np.float64)
                sd = float(np.std(values))
                if not sd > 0:
                    raise DataValidationError(
                        name, f"is constant ({values[0]:g}) in the fit's table, so its effect is "
                        f"not identified in {model}; drop it from the covariates",
                        example_row(table, 0))
                scales[name] = sd
                distinct = np.unique(values)
                seen[name] = ({"values": [float(v) for v in distinct]} if len(distinct) == 2
                              else {"range": [float(distinct[0]), float(distinct[-1])]})
        return cls(columns=columns, levels=levels, scales=scales, seen=seen)

    @property
    def names(self) -> list[str]:
        """The encoded covariates' names, in the order of ``transform``'s columns."""
        return list(self.scales)

    def names_for(self, columns: Sequence[str]) -> list[str]:
        """The encoded names that come from the user's ``columns``."""
        out = []
        for name in columns:
            out.extend([f"{name}[{level}]" for level in self.levels[name][1:]]
                       if name in self.levels else [name])
        return out

    def transform(self, table: pd.DataFrame, *, model: str) -> np.ndarray:
        """The encoded covariates (rows x len(names)), on the user's scale."""
        check_present(table, self.columns, model=model)
        parts = []
        for name in self.columns:
            _check_values(table, name)
            column = table[name]
            if name in self.levels:
                text = np.array([str(v) for v in column.tolist()], dtype=object)
                known = self.levels[name]
                unseen = ~np.isin(text, known)
                if unseen.any():
                    position = int(np.flatnonzero(unseen)[0])
                    raise DataValidationError(
                        name, f"has the level {text[position]!r}, which {model} did not see when "
                        f"it was fitted (levels {known}); its effect is unknown",
                        example_row(table, position))
                parts.extend((text == level).astype(np.float64) for level in known[1:])
            else:
                if _is_text(column):
                    raise DataValidationError(name, f"holds text, but {model} was fitted with it "
                                              "as a number", example_row(table, 0))
                values = column.to_numpy(np.float64)
                self._warn_if_unseen(table, name, values, model)
                parts.append(values)
        return np.column_stack(parts) if parts else np.empty((len(table), 0))

    def _warn_if_unseen(self, table: pd.DataFrame, name: str, values: np.ndarray, model: str) -> None:
        seen = self.seen.get(name)
        if not seen:
            return
        if "values" in seen:
            outside = ~np.isin(values, seen["values"])
            fitted = f"only the values {seen['values']}"
        else:
            low, high = seen["range"]
            outside = (values < low) | (values > high)
            fitted = f"values from {low:g} to {high:g}"
        if outside.any():
            position = int(np.flatnonzero(outside)[0])
            warn(
                f"covariate {name!r}: {int(outside.sum()):,} customer(s) have values {model} never "
                f"saw when it was fitted ({fitted}), e.g. {values[position]:g} "
                f"({example_row(table, position)}); their effect is extrapolated from the fitted "
                "coefficient, which the data never tested there", ClvlabWarning)

    def to_dict(self) -> dict[str, Any]:
        return {"columns": list(self.columns), "levels": {k: list(v) for k, v in self.levels.items()},
                "scales": dict(self.scales), "seen": {k: dict(v) for k, v in self.seen.items()}}

    @classmethod
    def from_dict(cls, payload: dict[str, Any]) -> "CovariateEncoder":
        return cls(columns=list(payload["columns"]),
                   levels={k: [str(v) for v in vs] for k, vs in payload.get("levels", {}).items()},
                   scales={k: float(v) for k, v in payload["scales"].items()},
                   seen={k: {kind: [float(x) for x in xs] for kind, xs in v.items()}
                         for k, v in payload.get("seen", {}).items()})


def check_present(table: pd.DataFrame, columns: Sequence[str], *, model: str) -> None:
    missing = [name for name in columns if name not in table.columns]
    if missing:
        raise ClvlabError(
            f"{model} reads the covariate column(s) {missing}, which the table does not have "
            f"(it has {list(table.columns)}); join them with rfm_summary(..., "
            "customer_attributes=frame) or add them to the table")


def _check_values(table: pd.DataFrame, name: str) -> None:
    """Missing values and types a covariate cannot be: a named error with a customer."""
    column = table[name]
    missing = column.isna().to_numpy()
    if missing.any():
        raise DataValidationError(name, "has a missing value; a covariate must be known for "
                                  "every customer (unknown is not a level or a 0)",
                                  example_row(table, int(np.flatnonzero(missing)[0])))
    if _is_text(column):
        odd = np.array([not isinstance(v, (str, np.str_)) for v in column.tolist()])
        if odd.any() and not isinstance(column.dtype, pd.CategoricalDtype):
            raise DataValidationError(name, "mixes text with other values; a covariate is a "
                                      "number, a boolean or a text label",
                                      example_row(table, int(np.flatnonzero(odd)[0])))
        return
    if not (pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column)):
        raise DataValidationError(name, f"has dtype {column.dtype}; a covariate is a number, a "
                                  "boolean or a text label", example_row(table, 0))
    values = column.to_numpy(np.float64)
    bad = ~np.isfinite(values)
    if bad.any():
        raise DataValidationError(name, "must be finite", example_row(table, int(np.flatnonzero(bad)[0])))
