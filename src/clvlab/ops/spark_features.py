"""The inputs of a churn adjuster or challenger on Spark: the pandas features, bucket by bucket.

Every feature of :func:`clvlab.churn.feature_frame` (RFM, order values, gaps, recent purchases,
basket sizes, event-log features, attributes) is a function of the customer's own rows, the
cutoff, the time unit and the event log's list of event types. So the customers are split
into buckets, ``pmod(xxhash64(id), n)``, and each bucket's whole sub-log goes through the pandas
code on a worker (``groupBy(bucket).applyInPandas``, or ``cogroup`` with the event log, bucketed
by the same hash of its ids): every customer gets the pandas job's features, and no row of
either log reaches the driver (only the event log's distinct names, counts and one example id).

The driver gives every bucket what the pandas job reads of the whole log: the cutoff, the event
types (every bucket has the same columns) and the attributes an adjuster reads (a table the
pandas job reads whole too). The purchase log is validated and its consent rules applied by the
Spark RFM summary (the pandas rules); the buckets get its scored customers' rows up to the
cutoff, dates read. The event log reaches the buckets whole, each validating its part by the
pandas rules; the checks of the whole event log are made in Spark. A quantity column (basket
features) travels with the purchase rows and is validated in the buckets by
:func:`clvlab.data.events.basket_features`' rules: on the rows up to the cutoff, the only ones a
feature reads (the pandas job also refuses a bad quantity after it). A clvlab error raised on a
worker is raised again on the driver with its message (:func:`worker_errors`). The adjuster
itself reaches the workers as its JSON and skops files (:func:`clvlab.ops.spark.score`).
"""

from __future__ import annotations

import contextlib
import math
import re
import warnings
from typing import Any, Callable

import numpy as np
import pandas as pd

from clvlab.core.errors import ClvlabError, DataValidationError
from clvlab.ops.scoring_inputs import missing_columns_error

__all__ = ["adjuster_inputs", "bucket_features", "bucket_count", "missing_columns_error",
           "worker_errors", "CUSTOMERS_PER_BUCKET"]

#: customers per bucket when the number of buckets is not given: a bucket's sub-log is held in
#: pandas by one worker, and each bucket's pandas call costs a fixed few tens of milliseconds
CUSTOMERS_PER_BUCKET = 50_000
_NUMERIC = ("tinyint", "smallint", "int", "bigint", "float", "double")
_BUCKET = "__clvlab_bucket"


def adjuster_inputs(spark, log, summary, adjuster, *, spend: bool, as_of: Any, time_unit: str,
                    customer_col: str, date_col: str, amount_col: str | None,
                    date_format: str | None, timezone: str, events: Any = None,
                    event_col: str = "event", event_value_col: str | None = None,
                    attributes: Any = None, csv_options: dict | None = None,
                    buckets: int | None = None, quantity_col: str | None = None
                    ) -> tuple[Any, Callable[[], None]]:
    """The scoring inputs of a model with a churn adjuster or challenger, built in Spark.

    Parameters
    ----------
    spark, log : the session and the transaction log (:func:`clvlab.data.rfm_spark.read_log`).
    summary : clvlab.data.rfm_spark.SparkSummary
        The log's RFM summary as of ``as_of``, consent applied: the customers to score.
    adjuster : a fitted ChurnAdjuster or ChallengerAdjustment (its ``feature_names_in_``).
    spend : bool
        Whether the model has a spend model (the inputs then hold ``monetary_value``).
    as_of, time_unit, customer_col, date_col, amount_col, date_format, timezone
        As the scoring job takes them.
    events, event_col, event_value_col
        The event log the adjuster was trained with (a path, glob, pandas or Spark DataFrame
        with ``customer_col``, ``date_col``, ``event_col`` and optionally ``event_value_col``).
    attributes, csv_options
        The customers' attributes (a file, pandas or Spark DataFrame; only the columns the
        adjuster reads are read) and the ``delimiter``/``decimal`` of a file.
    buckets : int, optional
        The number of buckets (default :func:`bucket_count`'s).
    quantity_col : str, optional
        The log's items-per-order column, for an adjuster trained on the basket features.

    Returns
    -------
    (pyspark.sql.DataFrame, callable)
        One row per customer of ``summary``: the id and, as doubles, the columns the pandas job
        hands the model (``frequency``, ``recency``, ``T``, ``monetary_value`` with a spend
        model, the adjuster's features) with its values; and the checks of the whole event log
        that follow the buckets' validation (call it once the job ran: it raises, as the pandas
        job does, when no event is at or before ``as_of``, or none is a scored customer's).
    """
    from pyspark.sql import functions as F

    from clvlab.data.events_rules import resolve_plan
    from clvlab.data.rfm_io import parse_option_date
    from clvlab.data.spark_dates import wall_micros

    cutoff = parse_option_date(as_of, "cutoff", date_format=date_format, timezone=timezone)
    cutoff_us = int((cutoff - pd.Timestamp(0)) // pd.Timedelta(microseconds=1))
    money = ["monetary_value"] if spend else []
    wanted = list(dict.fromkeys(["frequency", "recency", "T", *money,
                                 *map(str, adjuster.feature_names_in_)]))
    ev, event_types = None, None
    if events is not None:
        ev, event_types = _event_log(spark, events, customer_col, date_col, event_col,
                                     event_value_col, date_format, timezone)
    table = _attribute_table(attributes, wanted, customer_col, csv_options or {})
    missing = [c for c in wanted if c not in _available(amount_col, event_types,
                                                        event_value_col, table, quantity_col)]
    if missing:
        raise missing_columns_error(missing, events is not None, event_value_col)
    n = bucket_count(spark, summary.frame, buckets)
    types = dict(log.dtypes)
    numeric = _is_number(types[customer_col]) and (ev is None or
                                                   _is_number(dict(ev.dtypes)[customer_col]))

    # one hash for both logs, of the ids as numbers (7 and 7.0 are one customer to pandas) or
    # as text: a customer's rows and events share a bucket
    key = F.col(_quoted(customer_col)).cast("double" if numeric else "string")
    bucket = F.pmod(F.xxhash64(key), F.lit(n))

    micros, _ = wall_micros(log, date_col, date_format, timezone)
    ids = summary.frame.select(_quoted(customer_col))
    quantity = []  # numbers as doubles; anything else as it is, for the buckets' type rule
    if quantity_col is not None and quantity_col not in (customer_col, date_col, amount_col):
        plan = resolve_plan(customer_col, date_col, None, quantity_col, timezone, date_format)
        plan.require_columns(list(log.columns))  # in the pandas rule's words, on the driver
        q = F.col(_quoted(quantity_col))
        quantity = [q.cast("double").alias(quantity_col) if _is_number(types[quantity_col])
                    else q]
    rows = (log.select(F.col(_quoted(customer_col)), micros.alias(date_col),
                       *([F.col(_quoted(amount_col)).cast("double").alias(amount_col)]
                         if amount_col else []), *quantity)
            .where(F.col(_quoted(date_col)) <= F.lit(cutoff_us))
            .join(ids, on=customer_col, how="left_semi"))
    rows = rows.withColumn(_BUCKET, bucket)
    schema = f"{_quoted(customer_col)} {types[customer_col]}, " + ", ".join(
        f"{_quoted(c)} double" for c in wanted)
    settings = dict(cutoff=cutoff, wanted=wanted, time_unit=time_unit, customer_col=customer_col,
                    date_col=date_col, amount_col=amount_col, date_format=date_format,
                    timezone=timezone, event_col=event_col, event_value_col=event_value_col,
                    event_types=event_types, events=events is not None,
                    quantity_col=quantity_col)
    shared = None if table is None else spark.sparkContext.broadcast(table)
    if ev is None:
        def run(part: pd.DataFrame) -> pd.DataFrame:
            return bucket_features(part, None, settings, shared and shared.value)

        return rows.groupBy(_BUCKET).applyInPandas(run, schema), lambda: None
    event_rows, event_micros = _event_rows(ev, customer_col, date_col, event_col,
                                           event_value_col, timezone)
    settings["event_micros"] = event_micros
    event_rows = event_rows.withColumn(_BUCKET, bucket)

    def run_both(part: pd.DataFrame, part_events: pd.DataFrame) -> pd.DataFrame:
        return bucket_features(part, part_events, settings, shared and shared.value)

    inputs = rows.groupBy(_BUCKET).cogroup(event_rows.groupBy(_BUCKET)).applyInPandas(run_both,
                                                                                      schema)

    def check_events() -> None:
        _check_event_match(ev, ids, customer_col, date_col, date_format, timezone, cutoff,
                           cutoff_us, _is_number(types[customer_col])
                           == _is_number(dict(ev.dtypes)[customer_col]))

    return inputs, check_events


def bucket_features(part: pd.DataFrame, part_events: pd.DataFrame | None, settings: dict,
                    attributes: pd.DataFrame | None) -> pd.DataFrame:
    """One bucket's inputs by the pandas job's code, on a worker: ``part`` holds the scored
    customers' rows up to the cutoff (dates as wall-clock microseconds), ``part_events`` the
    bucket's events as the log has them (None without an event log)."""
    import dataclasses

    from clvlab.churn import feature_frame
    from clvlab.data.calibration import calibration_data

    s = settings
    customer_col, date_col, cutoff = s["customer_col"], s["date_col"], s["cutoff"]
    with warnings.catch_warnings():
        # a bucket's log ends where its customers' rows end: the driver's summary has already
        # warned (once, for the whole log) about a date past the log's end
        warnings.simplefilter("ignore")
        normalised = None
        if part_events is not None and len(part_events):
            normalised = _checked_events(part_events.drop(columns=[_BUCKET]), s)
        if len(part) == 0:  # a bucket of events alone: validated above, nobody to score
            return pd.DataFrame({customer_col: part[customer_col].to_numpy(),
                                 **{c: np.zeros(0) for c in s["wanted"]}})
        frame = part.drop(columns=[_BUCKET])
        frame[date_col] = _datetimes(frame[date_col])
        frame = _with_time_of_day(frame, s)
        calibration, _ = calibration_data(
            frame, cutoff, None, customer_col=customer_col, date_col=date_col,
            amount_col=s["amount_col"], time_unit=s["time_unit"], date_format=s["date_format"],
            timezone=s["timezone"], customer_attributes=attributes,
            quantity_col=s.get("quantity_col"))
        if s["events"]:
            calibration = dataclasses.replace(
                calibration, events=_bucket_events(normalised, calibration, s),
                event_types=s["event_types"])
        features = feature_frame(calibration)
    missing = [c for c in s["wanted"] if c not in features.columns]
    if missing:
        raise missing_columns_error(missing, s["events"], s["event_value_col"])
    text = [c for c in s["wanted"] if not (pd.api.types.is_numeric_dtype(features[c])
                                           or pd.api.types.is_bool_dtype(features[c]))]
    if text:
        raise ClvlabError(f"the adjuster reads the text attribute(s) {text}, which the scoring "
                          "job cannot pass as numbers; encode them as numbers, train the "
                          "adjuster again and register the model again")
    out = features[s["wanted"]].astype(np.float64)
    out.insert(0, customer_col, features.index.to_numpy())
    return out.reset_index(drop=True)


def _checked_events(frame: pd.DataFrame, s: dict) -> pd.DataFrame:
    """The bucket's events validated and normalised as the pandas job reads an event log."""
    from clvlab.data.events import check_events

    if s.get("event_micros"):  # Spark instants, sent as their wall-clock time in the zone
        frame[s["date_col"]] = _datetimes(frame[s["date_col"]])
    return check_events(frame, customer_col=s["customer_col"], date_col=s["date_col"],
                        event_col=s["event_col"], value_col=s["event_value_col"],
                        timezone=s["timezone"], date_format=s["date_format"])


def _datetimes(micros: pd.Series) -> pd.Series:
    """Wall-clock microseconds as naive datetimes (NaT where missing), in pandas' default
    unit (nanoseconds)."""
    values = micros.to_numpy(np.float64)
    out = np.full(len(values), np.datetime64("NaT"), dtype="datetime64[ns]")
    known = ~np.isnan(values)
    out[known] = micros[known].to_numpy(np.int64).astype("datetime64[us]").astype("datetime64[ns]")
    return pd.Series(out, index=micros.index)


def _bucket_events(normalised: pd.DataFrame | None, calibration, s: dict) -> pd.DataFrame:
    """The calibration's events, as :class:`~clvlab.data.calibration.CutoffView` keeps them
    (up to the cutoff), of the bucket's scored customers only: others give no feature, and a
    bucket holding only theirs would fail :func:`clvlab.churn.event_frame`'s check that the
    logs share customers, which the driver makes for the whole log. A bucket without events
    gets one after the cutoff (counted by no feature): its customers get the features of
    customers without events, not an empty log's refusal (also the driver's check)."""
    rfm = calibration.rfm
    if normalised is not None:
        kept = normalised[(normalised["ts"] <= calibration.cutoff).to_numpy()
                          & normalised["cid"].isin(rfm.index).to_numpy()]
        if len(kept):
            return kept
    late = {"cid": [rfm.index[0]], "ts": [calibration.cutoff + pd.Timedelta(days=1)],
            "event": [s["event_types"][0]]}
    if s["event_value_col"] is not None:
        late["value"] = [0.0]
    return pd.DataFrame(late)


def _with_time_of_day(frame: pd.DataFrame, s: dict) -> pd.DataFrame:
    """An hourly model's bucket whose rows are all at midnight: the pandas rule that such a log
    has no time of day is the whole log's (checked by the Spark summary), so one copy of a row
    moved after the cutoff (which no feature reads) gives the bucket a time of day."""
    from clvlab.core.timeunits import normalize_time_unit

    ts = frame[s["date_col"]]
    if normalize_time_unit(s["time_unit"]) != "h" or not (ts == ts.dt.floor("D")).all():
        return frame
    late = frame.iloc[:1].copy()
    late[s["date_col"]] = s["cutoff"].floor("D") + pd.Timedelta(days=1, hours=1)
    return pd.concat([frame, late], ignore_index=True)


def _event_log(spark, events, customer_col, date_col, event_col, value_col, date_format,
               timezone):
    """(the event log in Spark, its event types): the checks of the whole log that no bucket
    can make, in the pandas rules' words (columns, an empty log, names that clash)."""
    from pyspark.sql import functions as F

    from clvlab.data.events_rules import BLANK_PATTERN, resolve_plan
    from clvlab.data.rfm_spark import read_log

    plan = resolve_plan(customer_col, date_col, event_col, value_col, timezone, date_format)
    ev = read_log(spark, events, date_col)
    plan.require_columns(list(ev.columns))
    if not ev.limit(1).collect():
        raise DataValidationError(None, plan.rule("empty"))
    name = F.col(_quoted(event_col)).cast("string")
    names = [r[0] for r in ev.select(name.alias("n")).distinct().collect()]
    # missing or blank names are refused by the buckets' validation, with an example row
    names = [n for n in names if n is not None and re.fullmatch(BLANK_PATTERN, n) is None]
    if not names:  # every bucket's validation would say so; a bucket without events could not
        raise DataValidationError(event_col, plan.rule("no_event"),
                                  ev.limit(1).collect()[0].asDict())

    def example(value: str) -> dict:
        return ev.where(name == F.lit(value)).limit(1).collect()[0].asDict()

    plan.check_names(names, example)
    return ev, tuple(sorted(names))


def _event_rows(ev, customer_col, date_col, event_col, value_col, timezone):
    """The event log's columns for the buckets, dates as the log has them (validated there by
    the pandas rules), but Spark instants (TIMESTAMP) as their wall-clock microseconds in
    ``timezone``, which the session's zone would otherwise shift on the way to pandas."""
    from pyspark.sql import functions as F

    from clvlab.data.spark_dates import wall_micros

    columns = [c for c in dict.fromkeys((customer_col, date_col, event_col, value_col)) if c]
    instants = dict(ev.dtypes)[date_col] == "timestamp"
    selected = [F.col(_quoted(c)) for c in columns]
    if instants:
        micros, _ = wall_micros(ev, date_col, None, timezone)
        selected[columns.index(date_col)] = micros.alias(date_col)
    return ev.select(*selected), instants


def _check_event_match(ev, ids, customer_col, date_col, date_format, timezone, cutoff, cutoff_us,
                       same_kind) -> None:
    """The pandas job's checks of the events up to the cutoff (:func:`clvlab.churn.event_frame`):
    some, and some of a scored customer (ids of one kind: numbers or text)."""
    from pyspark.sql import functions as F

    from clvlab.data.spark_dates import wall_micros

    micros, _ = wall_micros(ev, date_col, date_format, timezone)
    upto = ev.where(micros <= F.lit(cutoff_us)).select(_quoted(customer_col))
    first = upto.limit(1).collect()
    if not first:
        raise ClvlabError(f"the event log has no event at or before {cutoff} (as_of): the "
                          "adjuster's event features would be those of an empty log; give the "
                          "event log up to the scoring date")
    if not same_kind or not upto.join(ids, on=customer_col, how="left_semi").limit(1).collect():
        example = ids.limit(1).collect()
        raise ClvlabError(
            f"the event log's customer ids match none of the purchase log's at {cutoff.date()} "
            f"(event ids like {first[0][0]!r}, {dict(ev.dtypes)[customer_col]}; purchase ids "
            f"like {example[0][0] if example else None!r}, {dict(ids.dtypes)[customer_col]}); "
            "give both logs the same ids, of the same type")


def _attribute_table(attributes, wanted, customer_col, csv_options) -> pd.DataFrame | None:
    """The attribute columns the adjuster reads, read as the pandas job reads the table (a file
    by :func:`clvlab.ops.scoring_attributes.read_attribute_table`; a Spark table's columns are
    collected: one row per customer); None when it reads none."""
    if attributes is None:
        return None
    if hasattr(attributes, "sparkSession"):
        needed = [c for c in wanted if c in attributes.columns and c != customer_col]
        return attributes.select(*map(_quoted, [customer_col, *needed])).toPandas() \
            if needed else None
    from clvlab.ops.scoring_attributes import read_attribute_table

    table = read_attribute_table(attributes, csv_options)
    needed = [c for c in wanted if c in table.columns and c != customer_col]
    if not needed:
        return None
    return table[[customer_col, *needed]] if customer_col in table.columns else table[needed]


def _available(amount_col, event_types, value_col, table, quantity_col=None) -> set[str]:
    """The columns the buckets' features can hold."""
    import inspect

    from clvlab.churn.features import BASKET_FEATURES, BEHAVIOUR_FEATURES, SPEND_FEATURES
    from clvlab.data.events import event_features, feature_name

    columns = {"frequency", "recency", "T", *BEHAVIOUR_FEATURES,
               *(BASKET_FEATURES if quantity_col is not None else ())}
    if amount_col is None:
        columns -= set(SPEND_FEATURES)
    windows = inspect.signature(event_features).parameters["windows_days"].default
    for name in map(feature_name, event_types or ()):
        columns |= {f"{name}_count", f"{name}_since_last", f"{name}_trend",
                    *(f"{name}_count_{d}d" for d in windows)}
        if value_col is not None:
            columns |= {f"{name}_value", *(f"{name}_value_{d}d" for d in windows)}
    return columns | set(() if table is None else map(str, table.columns))


def bucket_count(spark, customers, buckets: int | None) -> int:
    """The number of buckets: ``buckets`` when given, else the session's parallelism or one
    per :data:`CUSTOMERS_PER_BUCKET` customers, whichever is more."""
    if buckets is not None:
        if isinstance(buckets, bool) or not isinstance(buckets, (int, np.integer)) or buckets < 1:
            raise ClvlabError(f"buckets must be a whole number >= 1, got {buckets!r}")
        return int(buckets)
    parallelism = int(spark.sparkContext.defaultParallelism)
    return max(parallelism, math.ceil(customers.count() / CUSTOMERS_PER_BUCKET))


@contextlib.contextmanager
def worker_errors():
    """Raise a clvlab error that a Spark worker raised as a :class:`ClvlabError` with its
    message (Spark wraps it in its own exception, under a worker's traceback)."""
    try:
        yield
    except ClvlabError:
        raise
    except Exception as exc:
        found = re.findall(r"clvlab\.core\.errors\.\w+: (.*?)(?:\n\s*\n|\n\S+Exception|\Z)",
                           str(exc), flags=re.S)
        if not found:
            raise
        raise ClvlabError(f"{found[-1].strip()} (raised on a Spark worker)") from None


def _is_number(spark_type: str) -> bool:
    return spark_type in _NUMERIC or spark_type.startswith("decimal")


def _quoted(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"
