"""One definition of each public RFM column, from which every engine computes it.

Each engine first reduces the log to per-customer aggregates over merged purchase periods
(:data:`AGGREGATES`): ``n_cal`` the calibration periods with a purchase, ``first_p`` and
``last_p`` the starts of the first and last of them (epoch seconds), ``total`` and
``first_value`` their value and the first one's, ``n_hold`` and ``total_hold`` the holdout
periods with a purchase and their value. It also knows three constants of the window
(:data:`CONSTANTS`): ``unit_seconds`` (the time unit), ``calibration_end`` and
``observation_end`` (epoch seconds).

Each public column is a small expression over those, written once in :data:`SPEC`. It renders as
SQL in a dialect (the DuckDB and Spark engines) and evaluates on numpy arrays (the pandas engine,
and the churn features' summary at an earlier cutoff), so a new column is written once and the
engines cannot drift apart: the same IEEE operations in the same order give the same doubles
from the same aggregates (tests/test_rfm_columns.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

import numpy as np

__all__ = ["AGGREGATES", "CONSTANTS", "Column", "SPEC", "columns_for", "evaluate", "render_sql"]

AGGREGATES = {"n_cal": np.int64, "first_p": np.float64, "last_p": np.float64,
              "total": np.float64, "first_value": np.float64, "n_hold": np.int64,
              "total_hold": np.float64}
CONSTANTS = ("unit_seconds", "calibration_end", "observation_end")


def _operator(op: str, reflected: bool = False):
    def build(self, other):
        return Binary(op, _node(other), self) if reflected else Binary(op, self, _node(other))
    return build


class Expr:
    """A node of a column's expression. Python's operators build trees, ``(total - first_value)
    / (n_cal - 1)``, and numbers in them become literals (an int an integer, a float a DOUBLE).
    ``==`` keeps its meaning (the same node)."""

    __add__, __radd__ = _operator("+"), _operator("+", reflected=True)
    __sub__, __rsub__ = _operator("-"), _operator("-", reflected=True)
    __mul__, __rmul__ = _operator("*"), _operator("*", reflected=True)
    __truediv__, __rtruediv__ = _operator("/"), _operator("/", reflected=True)
    __gt__, __ge__, __lt__, __le__ = _operator(">"), _operator(">="), _operator("<"), _operator("<=")


@dataclass(frozen=True, eq=False)
class Aggregate(Expr):
    """A per-customer aggregate (a name of :data:`AGGREGATES`): a column in SQL, an array here."""

    name: str

    def sql(self, double, constants) -> str:
        return self.name

    def numpy(self, read, constants):
        return read(self.name)


@dataclass(frozen=True, eq=False)
class Constant(Expr):
    """A constant of the window (a name of :data:`CONSTANTS`): written into the SQL as an exact
    DOUBLE literal, a Python float here."""

    name: str

    def sql(self, double, constants) -> str:
        return double(constants[self.name])

    def numpy(self, read, constants):
        return float(constants[self.name])


@dataclass(frozen=True, eq=False)
class Literal(Expr):
    value: int | float

    def sql(self, double, constants) -> str:
        # an int stays an integer (n_cal - 1 is a BIGINT count); a float is a DOUBLE literal,
        # never a DECIMAL, so that both dialects compute in doubles as numpy does
        return str(self.value) if isinstance(self.value, int) else double(self.value)

    def numpy(self, read, constants):
        return self.value


_NUMPY_OPS: dict[str, Callable] = {"+": np.add, "-": np.subtract, "*": np.multiply,
                                   "/": np.true_divide, ">": np.greater, ">=": np.greater_equal,
                                   "<": np.less, "<=": np.less_equal}


@dataclass(frozen=True, eq=False)
class Binary(Expr):
    """Arithmetic (+ - * /, true division in every dialect) or a comparison."""

    op: str
    left: Expr
    right: Expr

    def sql(self, double, constants) -> str:
        return f"{_operand(self.left, double, constants)} {self.op} {_operand(self.right, double, constants)}"

    def numpy(self, read, constants):
        return _NUMPY_OPS[self.op](self.left.numpy(read, constants),
                                   self.right.numpy(read, constants))


@dataclass(frozen=True, eq=False)
class Where(Expr):
    """``then`` where ``condition`` holds, else ``otherwise``: CASE WHEN in SQL, np.where here
    (which computes ``then`` everywhere, so a division may meet a zero it then discards)."""

    condition: Expr
    then: Expr
    otherwise: Expr

    def sql(self, double, constants) -> str:
        return (f"CASE WHEN {self.condition.sql(double, constants)} THEN "
                f"{self.then.sql(double, constants)} ELSE {self.otherwise.sql(double, constants)} END")

    def numpy(self, read, constants):
        return np.where(self.condition.numpy(read, constants),
                        self.then.numpy(read, constants),
                        self.otherwise.numpy(read, constants))


def where(condition: Expr, then: Any, otherwise: Any) -> Where:
    return Where(condition, _node(then), _node(otherwise))


def _node(value: Any) -> Expr:
    if isinstance(value, Expr):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return Literal(value)
    raise TypeError(f"not an RFM expression: {value!r}")


def _operand(node: Expr, double, constants) -> str:
    """An operand of a binary operation, in parentheses when it is itself one."""
    text = node.sql(double, constants)
    return f"({text})" if isinstance(node, Binary) else text


@dataclass(frozen=True)
class Column:
    """A public RFM column: its name, expression and dtype, and when it is in the summary
    (``amounts``: only when the log has an amount column; ``holdout``: only with a holdout)."""

    name: str
    expr: Expr
    dtype: type
    amounts: bool = False
    holdout: bool = False


def _public_columns() -> tuple[Column, ...]:
    n_cal, first_p, last_p, total, first_value, n_hold, total_hold = map(Aggregate, AGGREGATES)
    unit, calibration_end, observation_end = map(Constant, CONSTANTS)
    return (
        Column("frequency", n_cal - 1, np.int64),
        Column("recency", (last_p - first_p) / unit, np.float64),
        Column("T", (calibration_end - first_p) / unit, np.float64),
        # the mean value of the repeat periods (the first purchase left out, as the Gamma-Gamma
        # model expects); 0 without repeats
        Column("monetary_value", where(n_cal > 1, (total - first_value) / (n_cal - 1), 0.0),
               np.float64, amounts=True),
        Column("frequency_holdout", n_hold, np.int64, holdout=True),
        Column("monetary_value_holdout", where(n_hold > 0, total_hold / n_hold, 0.0),
               np.float64, amounts=True, holdout=True),
        Column("duration_holdout", (observation_end - calibration_end) / unit, np.float64,
               holdout=True),
    )


#: The public RFM columns, in the summary's order. Times are in the time unit, between period
#: starts (recency) or from the first period's start to the calibration end (T).
SPEC: tuple[Column, ...] = _public_columns()


def columns_for(amounts: bool, holdout: bool) -> list[Column]:
    """The columns of a summary of a log with or without amounts, with or without a holdout."""
    return [c for c in SPEC if (amounts or not c.amounts) and (holdout or not c.holdout)]


def render_sql(columns: list[Column], constants: Mapping[str, float],
               double: Callable[[float], str], ident: Callable[[str], str]) -> list[str]:
    """``expression AS name`` for each column, over a table of the aggregates. ``double`` writes
    a DOUBLE literal that is exactly its float, ``ident`` quotes a name, in the dialect."""
    return [f"{c.expr.sql(double, constants)} AS {ident(c.name)}" for c in columns]


def evaluate(columns: list[Column], aggregates: Mapping[str, Any], constants: Mapping[str, float],
             length: int) -> dict[str, np.ndarray]:
    """Each column as a numpy array of ``length`` rows, from ``aggregates`` (arrays or Series by
    name, read as the dtypes of :data:`AGGREGATES`; only those the columns use are read)."""
    cache: dict[str, np.ndarray] = {}

    def read(name: str) -> np.ndarray:
        if name not in cache:
            values, dtype = aggregates[name], AGGREGATES[name]
            cache[name] = values.to_numpy(dtype) if hasattr(values, "to_numpy") \
                else np.asarray(values, dtype=dtype)
        return cache[name]

    out = {}
    # np.where computes both branches: the divisions by a zero count it then discards must
    # not warn (the CASE WHEN in SQL never computes them)
    with np.errstate(divide="ignore", invalid="ignore"):
        for column in columns:
            values = np.asarray(column.expr.numpy(read, constants))
            if values.ndim == 0:  # made of constants only (duration_holdout)
                values = np.full(length, values, dtype=column.dtype)
            out[column.name] = values.astype(column.dtype, copy=False)
    return out
