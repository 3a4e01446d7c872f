"""The scoring job's inputs: the customers to score, chunk by chunk, with their attributes.

:func:`input_chunks` builds the RFM summary as of the date (DuckDB for files, in chunks; pandas
for a DataFrame; the whole log in pandas for a churn adjuster's behaviour features) and
:func:`attribute_join` joins each customer's attributes (a model's covariates, the totals'
groupings) from an attributes table or the log's columns (:mod:`clvlab.ops.scoring_attributes`).
:func:`available_columns` lists the columns a chunk can hold, for the checks made before the work.
"""

from __future__ import annotations

from typing import Any, Iterator

import numpy as np
import pandas as pd

from clvlab.core.errors import ClvlabError

__all__ = ["input_chunks", "attribute_join", "model_input", "slices", "available_columns",
           "missing_columns_error", "RFM_OUTPUTS"]

#: the columns of the job's RFM summary (monetary_value with an amount column)
RFM_OUTPUTS = ("frequency", "recency", "T", "monetary_value")


def input_chunks(model, transactions, as_of, time_unit, engine, chunk_rows, memory_limit,
                 options, csv_options, attributes=None, events=None,
                 event_options=None) -> tuple[dict, int, Iterator[pd.DataFrame]]:
    """(the summary's ``attrs["clvlab"]``: customers excluded for consent, the window..., the
    customers to score, an iterator of model inputs indexed by customer id). ``events``: an
    event log for a churn adjuster or challenger trained on its features (``event_options``:
    ``event_col``, ``event_value_col``, and ``quantity_col``, the log's items-per-order column
    for one trained on the basket features). Such a model is scored from the whole log in
    pandas whatever the ``engine`` (its behaviour features need every order)."""
    from clvlab.data.rfm import resolve_engine, rfm_summary
    from clvlab.data.rfm_rules import make_settings

    if model.adjuster is not None:  # behaviour features need the log in pandas
        from clvlab.churn import churn_training_data
        from clvlab.churn.features import BASKET_FEATURES

        money = ["monetary_value"] if model.spend is not None else []
        wanted = list(dict.fromkeys(["frequency", "recency", "T", *money,
                                     *model.adjuster.feature_names_in_]))
        basket = [c for c in wanted if c in BASKET_FEATURES]
        if basket and not (event_options or {}).get("quantity_col"):
            # known from the model alone: refused before the log is read
            raise missing_columns_error(basket, events is not None,
                                        (event_options or {}).get("event_value_col"))

        from clvlab.data.privacy import consented_log
        from clvlab.data.rfm_io import read_files

        frame = transactions if isinstance(transactions, pd.DataFrame) else \
            read_files(transactions, **csv_options)
        frame = consented_log(frame, options["customer_col"], options["consent_col"],
                              options["withdrawn"])
        # an adjuster trained with customer attributes reads them from ``attributes``
        from clvlab.ops.scoring_attributes import read_attribute_table

        joined = None if attributes is None else read_attribute_table(attributes, csv_options)
        features = churn_training_data(frame, as_of, time_unit=time_unit,
                                       customer_attributes=joined, events=events,
                                       **(event_options or {}), **{
            k: v for k, v in options.items() if k not in ("consent_col", "withdrawn")})
        missing = [c for c in wanted if c not in features.columns]
        if missing:
            raise missing_columns_error(missing, events is not None,
                                        (event_options or {}).get("event_value_col"))
        inputs = features[wanted].astype(np.float64)
        summary = {**(features.attrs.get("clvlab") or {}),
                   "customers_excluded": frame.attrs.get("customers_excluded", 0)}
        return summary, len(inputs), slices(inputs, chunk_rows)
    resolved = "pandas" if engine == "pandas" else resolve_engine("auto", transactions)
    if resolved == "duckdb":
        from clvlab.data import rfm_duckdb

        settings = make_settings(time_unit=time_unit, merge_period=None, **options, **csv_options)
        info, chunks = rfm_duckdb.iter_summary(transactions, settings, None, as_of, chunk_rows,
                                               rfm_duckdb.new_connection(memory_limit))
        return info, info["customers"], (model_input(c) for c in chunks)
    rfm = rfm_summary(transactions, time_unit=time_unit, observation_end=as_of, engine="pandas",
                      **options, **csv_options)
    return rfm.attrs["clvlab"], len(rfm), slices(model_input(rfm), chunk_rows)



def missing_columns_error(missing: list[str], events_given: bool,
                          event_value_col: str | None = None) -> ClvlabError:
    """The scoring job's error (pandas, DuckDB or Spark) for the input columns of a churn
    adjuster or challenger that it cannot build from the inputs given, with what to give."""
    from clvlab.churn.features import BASKET_FEATURES, BEHAVIOUR_FEATURES

    event_like = [c for c in missing if c.endswith(("_count", "_since_last", "_trend", "_value"))
                  or "_count_" in c or "_value_" in c]
    hint = ("name the log's quantity column it was trained with (quantity_col=..., "
            "--quantity-col COLUMN)" if set(missing) & set(BASKET_FEATURES) else
            "give the log's amount column (amount_col=..., --amount-col)"
            if set(missing) <= set(BEHAVIOUR_FEATURES) else
            "give the event log it was trained with (events=..., --events FILE)"
            if event_like and not events_given else
            "name the event log's value column it was trained with (event_value_col=..., "
            "--event-value-col)" if event_like and not event_value_col
            and any("_value" in c for c in event_like) else
            "give an event log with the event names it was trained on"
            if event_like else
            "give the customers' attributes (attributes=..., --attributes FILE)")
    return ClvlabError(f"the model needs the input columns {missing}, which the scoring job "
                       f"cannot build from this log: {hint}")


def attribute_join(model, attributes, policy, transactions, customer_col, csv_options,
                   extra: list[str] | None = None):
    """The join of the customers' attributes for a model with covariates, and of the ``extra``
    columns (the totals' groupings) that the RFM table lacks; None when there are none."""
    columns = list(dict.fromkeys([*model.covariate_columns,
                                  *[c for c in extra or [] if c not in RFM_OUTPUTS]]))
    if not columns:
        return None
    from clvlab.ops.scoring_attributes import AttributeJoin, attribute_source

    table, source = attribute_source(attributes, columns, customer_col=customer_col,
                                     transactions=transactions, csv_options=csv_options)
    needed_by = "the model's covariates" if model.covariate_columns else "the totals (--totals-by)"
    return AttributeJoin(table, source, policy, needed_by=needed_by)


def model_input(rfm: pd.DataFrame) -> pd.DataFrame:
    """The columns the scoring function reads; monetary_value only where the log had amounts
    (a spend model without it is an error there, never a spend of 0)."""
    columns = ["frequency", "recency", "T"] + (["monetary_value"] if "monetary_value" in rfm else [])
    return rfm[columns].astype(np.float64)




def slices(frame: pd.DataFrame, rows: int) -> Iterator[pd.DataFrame]:
    for start in range(0, len(frame), rows):
        yield frame.iloc[start:start + rows]


def available_columns(model, transactions: Any, attributes: Any, amount_col: str | None,
                      customer_col: str, csv_options: dict[str, Any]) -> tuple[list[str], str]:
    """(the columns a chunk of the job can hold, a name for where they come from): the RFM
    summary's and the attributes table's (or, without one, the log's: read from its first
    file's header, not its rows)."""
    rfm = ["frequency", "recency", "T"] + (["monetary_value"] if amount_col else [])
    if attributes is not None:
        from clvlab.data.attributes import attribute_table
        from clvlab.ops.scoring_attributes import read_attribute_table

        table = attribute_table(read_attribute_table(attributes, csv_options),
                                customer_col=customer_col)
        return rfm + list(map(str, table.columns)), "the RFM table or the attributes table"
    if isinstance(transactions, pd.DataFrame):
        names = list(map(str, transactions.columns))
    else:
        from clvlab.data.rfm_io import expand_paths, file_format

        files = expand_paths(transactions)
        if file_format(files) == "parquet":
            import pyarrow.parquet as pq

            names = list(pq.read_schema(files[0]).names)
        else:
            delimiter = csv_options.get("delimiter")
            names = list(pd.read_csv(files[0], nrows=0, sep=delimiter,
                                     engine="python" if delimiter is None else "c").columns)
    return rfm + [n for n in names if n != customer_col], "the RFM table or the log"
