"""The time unit of a table a model of durations is asked to score: stated, and plausible.

A model of durations (recency, T, horizons) fitted in weeks gives wrong numbers, without any
error, on a table in days: a days table's T is 7 times a weeks table's. The unit travels with a
table in ``attrs["clvlab"]["time_unit"]`` (``rfm_summary`` and ``read_rfm`` record it), but
pandas drops ``attrs`` in a merge, in ``read_csv`` and in a JSON payload. So, for a model that
knows its unit:

1. *Stated*: a table that records no unit is an unknown unit and is refused, unless the caller
   states it (``time_unit=``); a stated or recorded unit other than the model's is refused.
2. *Plausible*: the durations must look like the model's unit, which also catches a wrong
   label. Two signs must agree. The model's own likelihood: the table's purchase histories are
   scored as they are and as if they were in each other unit (durations rescaled, with the
   Jacobian of the rescaling, ``x log c``, so that both are likelihoods of the same
   observations); another unit must explain them better by more than :data:`REFUSE_NATS` in
   all and :data:`REFUSE_NATS_PER_CUSTOMER` a customer. And the ages: the table's median T
   must be nearer the fit's scaled by that unit (7x for days in a weeks model) than the fit's
   own, because a population unlike the fit's (far more active customers) can favour another
   unit by the likelihood alone. A younger or older cohort in the right unit does not trip it
   (on CDNOW, customers of every age favour weeks by hundreds of nats); a days table does (by
   675 nats for Pareto/NBD, benchmarks/unit_checks.py). The check reads a sample of
   :data:`SAMPLE_ROWS` customers, so it costs milliseconds whatever the table's size. It needs the fit's median age
   (``median_T_``, kept in the model file): a model made by ``from_params`` is checked for its
   stated unit only. ``check_durations=False`` skips it.

:func:`checks_time_unit` applies both to a prediction method once per call (inner calls, group
by group or draw by draw, see a table that already passed).
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import inspect
import warnings
from typing import Any, Callable

import numpy as np
import pandas as pd

from clvlab.core.errors import ClvlabError
from clvlab.core.timeunits import UNIT_NAMES, UNIT_SECONDS, normalize_time_unit, unit_name
from clvlab.data.tables import converts, to_pandas

__all__ = ["checks_time_unit", "checked", "table_in_model_unit", "REFUSE_NATS", "SAMPLE_ROWS"]

#: log-likelihood (nats) by which another unit must explain the table better to refuse it:
#: a likelihood ratio of e^10, far beyond what chance gives on a sample in the right unit
REFUSE_NATS = 10.0

#: ... and by this much per customer of the sample: a model that fits a large table a little
#: worse than it fitted its own (0.04 nats a customer on the apparel data) must not add that up
#: into a refusal, while another unit gains far more (0.2-0.33 on CDNOW, days or months)
REFUSE_NATS_PER_CUSTOMER = 0.1

#: the customers the plausibility check reads (a fixed, evenly spread sample)
SAMPLE_ROWS = 2_000

# set while a checked call runs, so that the calls it makes (per covariate group, per draw)
# do not check the same table again
_checked = contextvars.ContextVar("clvlab_table_unit_checked", default=False)


def recorded_unit(table: Any) -> str | None:
    attrs = getattr(table, "attrs", None)
    if not isinstance(attrs, dict):
        return None
    unit = (attrs.get("clvlab") or {}).get("time_unit")
    return None if unit is None else normalize_time_unit(unit)


def table_in_model_unit(model: Any, table: Any, time_unit: str | None = None, *,
                        check_durations: bool = True, what: str = "the RFM table") -> Any:
    """``table`` labelled with the model's unit after both checks (a shallow copy: the
    caller's table is not changed), or ``table`` itself for a model that needs no unit."""
    model_unit = getattr(model, "time_unit_", None)
    recorded = recorded_unit(table)
    stated = None if time_unit is None else normalize_time_unit(time_unit)
    if stated is not None and recorded is not None and stated != recorded:
        raise ClvlabError(f"time_unit={time_unit!r} but {what} records its durations in "
                          f"{unit_name(recorded)}; rebuild the table in {stated!r} or drop time_unit")
    unit = stated or recorded
    if not getattr(model, "requires_time_unit", False) or model_unit is None:
        return table
    name = type(model).__name__
    if unit is None:
        raise ClvlabError(
            f"{what} does not record the time unit of its durations, and this {name} works in "
            f"{unit_name(model_unit)}. A merge, a CSV read with pandas, a JSON payload or a "
            f"polars table drops the unit that rfm_summary and read_rfm record. If recency and T are in "
            f"{UNIT_NAMES.get(model_unit, model_unit)}, say so: time_unit={model_unit!r} "
            f"(--time-unit {model_unit} on the command line)")
    if unit != model_unit:
        raise ClvlabError(f"{what} is in {unit_name(unit)} but the {name} was fitted in "
                          f"{unit_name(model_unit)}; rebuild the table with "
                          f"time_unit={model_unit!r}: predictions are never rescaled in silence")
    if check_durations and not _checked.get():
        _check_plausible(model, table, model_unit, what)
    if recorded == model_unit:
        return table
    labelled = table.copy(deep=False)
    labelled.attrs = {**labelled.attrs, "clvlab": {**(labelled.attrs.get("clvlab") or {}),
                                                    "time_unit": model_unit}}
    return labelled


def _check_plausible(model, table: pd.DataFrame, model_unit: str, what: str) -> None:
    """Refuse durations that look like another unit: by the likelihood, and by the ages."""
    fitted_T = getattr(model, "median_T_", None)
    if fitted_T is None or not fitted_T > 0:
        return  # a model not fitted here (from_params, an older file): nothing to compare with
    gains = duration_evidence(model, table)
    if not gains:
        return
    best = max(gains, key=gains.get)
    customers = min(len(table), SAMPLE_ROWS)
    if not (gains[best] > REFUSE_NATS and gains[best] > REFUSE_NATS_PER_CUSTOMER * customers):
        return
    # a population unlike the fit's (more active, say) can favour another unit too; a table in
    # that unit also has its ages scaled by it: the median age must be nearer that scaling
    # (7x for days in a weeks model) than the fit's own
    scale = UNIT_SECONDS[best] / UNIT_SECONDS[model_unit]
    table_T = pd.to_numeric(table["T"], errors="coerce").median()
    if not table_T > 0:
        return
    ratio = float(np.log(table_T / fitted_T))
    if abs(ratio + np.log(scale)) >= abs(ratio):
        return
    raise ClvlabError(
        f"{what} says its durations are in {unit_name(model_unit)}, as the "
        f"{type(model).__name__} was fitted, but they look like {unit_name(best)}: its median "
        f"age T is {table_T:,.4g} against {fitted_T:,.4g} in the fit, and the model explains the "
        f"purchase histories better by {gains[best]:,.0f} log-likelihood units if recency and T "
        f"are in {UNIT_NAMES.get(best, best)} (checked on {customers:,} customers). Rebuild the "
        f"table with time_unit={model_unit!r}; if it really is in "
        f"{UNIT_NAMES.get(model_unit)}, these customers are unlike those the model was fitted "
        "on: pass check_durations=False to score them anyway (clvlab predict "
        "--no-duration-check; params={'check_durations': False} for a registered model)")


def duration_evidence(model, table: pd.DataFrame) -> dict[str, float]:
    """{other unit: how much better (log-likelihood, nats) the model explains a sample of the
    table's histories if its durations are in that unit}; {} when the table cannot be read
    (its own validation then speaks) or has no repeat purchases (nothing to tell units by).

    Each distinct history (with its covariates) counts once: a table that repeats rows (a
    tracking curve repeats each customer per time point) is no stronger evidence."""
    from clvlab.inference.grouping import group_rows

    model_unit = model.time_unit_
    names = list(getattr(model, "columns", ()) or ())
    if names != ["frequency", "recency", "T"] or not set(names) <= set(table.columns) \
            or len(table) == 0:
        return {}
    covariate_model = hasattr(model, "covariates_")
    rows = np.unique(np.linspace(0, len(table) - 1, min(len(table), SAMPLE_ROWS)).astype(int))
    sample = table.iloc[rows]
    try:
        x, t_x, T = (sample[c].to_numpy(np.float64) for c in names)
    except (TypeError, ValueError):
        return {}
    if not all(np.all(np.isfinite(v)) for v in (x, t_x, T)) or x.sum() == 0:
        return {}
    base = model._check_fitted()
    if covariate_model:
        design = model.covariates_
        try:
            with warnings.catch_warnings():  # the prediction itself warns about its covariates
                warnings.simplefilter("ignore")
                encoded = design.encoder.transform(sample, model=type(model).__name__)
        except (ClvlabError, ValueError, TypeError, KeyError):
            return {}
        distinct, group = group_rows(list(encoded.T)) if encoded.shape[1] else \
            ([], np.zeros(len(sample), int))
        rows_of_group = np.column_stack(distinct) if distinct else np.zeros((1, 0))
        params, _ = design.exponents(base, model.params_.to_numpy()[len(base):], rows_of_group)
        # customers whose parameters differ by under 5 % share one set: a continuous covariate
        # gives every customer its own, and 5 % cannot mimic a unit (a factor of 4.3 or more)
        binned, group = group_rows(list(np.round(np.log(params[group]) / 0.05).T))
        params = np.exp(np.column_stack(binned) * 0.05)
    else:
        group, params = np.zeros(len(sample), int), base[None, :]
    others = [u for u in UNIT_SECONDS if u != model_unit]
    scales = np.array([1.0] + [UNIT_SECONDS[u] / UNIT_SECONDS[model_unit] for u in others])
    totals = np.zeros(len(scales))
    try:
        with np.errstate(all="ignore"):
            for g in np.unique(group):
                mine = group == g
                data = [np.tile(x[mine], len(scales)), np.concatenate([t_x[mine] * c for c in scales]),
                        np.concatenate([T[mine] * c for c in scales])]
                values, _ = model._loglik(params[g], model._prepare(data))
                totals += np.asarray(values, np.float64).reshape(len(scales), -1).sum(axis=1)
    except (ClvlabError, ValueError, TypeError, KeyError, ArithmeticError):
        return {}  # the method's own validation gives the error that names the row
    # the density of x purchase times in the table's numbers, rescaled by c: a factor c^x
    totals = totals + np.log(scales) * x.sum()
    if not np.all(np.isfinite(totals)):
        return {}
    return {unit: float(totals[i + 1] - totals[0]) for i, unit in enumerate(others)}


@contextlib.contextmanager
def checked():
    """Within it, predictions do not check their tables again: for a caller that checked the
    table itself with :func:`table_in_model_unit` and then makes many calls on it."""
    token = _checked.set(True)
    try:
        yield
    finally:
        _checked.reset(token)


def checks_time_unit(method: Callable) -> Callable:
    """Give a prediction method the keywords ``time_unit`` and ``check_durations`` and check
    its table (the argument named ``rfm`` or ``table``) with :func:`table_in_model_unit`
    before it runs; the method then receives the table labelled with the model's unit."""
    signature = inspect.signature(method)
    table_name = "rfm" if "rfm" in signature.parameters else "table"

    @functools.wraps(method)
    def wrapper(self, *args, time_unit: str | None = None, check_durations: bool = True,
                **kwargs):
        if _checked.get():
            return method(self, *args, **kwargs)
        bound = signature.bind(self, *args, **kwargs)
        table = to_pandas(bound.arguments.get(table_name), keyed=True)  # polars, Arrow
        if isinstance(table, pd.DataFrame):
            bound.arguments[table_name] = table_in_model_unit(
                self, table, time_unit, check_durations=check_durations)
        elif time_unit is not None and getattr(self, "time_unit_", None) is not None \
                and normalize_time_unit(time_unit) != self.time_unit_:
            raise ClvlabError(f"time_unit={time_unit!r} but the {type(self).__name__} works in "
                              f"{unit_name(self.time_unit_)}")
        with checked():
            return method(*bound.args, **bound.kwargs)

    parameters = list(signature.parameters.values())
    extra = [inspect.Parameter("time_unit", inspect.Parameter.KEYWORD_ONLY, default=None),
             inspect.Parameter("check_durations", inspect.Parameter.KEYWORD_ONLY, default=True)]
    if not any(p.name == "time_unit" for p in parameters):
        tail = [p for p in parameters if p.kind == inspect.Parameter.VAR_KEYWORD]
        body = [p for p in parameters if p.kind != inspect.Parameter.VAR_KEYWORD]
        wrapper.__signature__ = signature.replace(parameters=body + extra + tail)
    return converts(table_name)(wrapper)
