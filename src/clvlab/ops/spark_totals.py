"""Totals per group of a Spark table of customers, without collecting customers.

The Spark scoring job's ``--totals-by`` (:mod:`clvlab.ops.scoring_totals` gives the rules):

1. the parameter draws are made on the driver and travel to the workers with the models' JSON;
2. ``mapInPandas``: each batch's distinct rows get their moments at every draw, summed per
   (grouping, group, draw) (:func:`~clvlab.ops.scoring_totals.batch_moments`); Spark sums those
   across batches, and only groups x draws rows reach the driver, which adds the parameter
   uncertainty (the mixture over the draws);
3. groups of at most ``EXACT_MAX_CUSTOMERS`` customers get the exact distribution of their
   total given the parameters: ``applyInPandas`` over those groups only, each group's rows on
   one worker, one row per group back to the driver.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from clvlab.models.totals import EXACT_MAX_CUSTOMERS
from clvlab.ops.scoring_totals import (TotalsSettings, assemble, batch_moments, exact_rows,
                                       finish, label_text, model_columns, models_at,
                                       sorted_labels)

__all__ = ["spark_totals"]

_SUMS = ["purchases_mean", "purchases_variance", "revenue_mean", "revenue_variance"]
_COLUMNS = ["expected", "process_sd", "parameter_sd", "total_sd", "parameter_share", "lower",
            "upper"]


def spark_totals(frame, transaction, spend, horizon: float, settings: TotalsSettings,
                 draws: list[np.ndarray] | None, time_unit: str | None) -> pd.DataFrame:
    """The totals table of ``frame``'s customers (a Spark DataFrame with the models' columns
    and the groupings' columns), as :class:`~clvlab.ops.scoring_totals.TotalsAccumulator`
    makes it from the same rows."""
    from pyspark.sql import functions as F

    columns = model_columns(transaction, spend)
    needed = list(dict.fromkeys(columns + settings.columns))
    selected = frame.select(*[F.col(f"`{c}`") for c in needed])
    payload = (transaction.to_dict(), None if spend is None else spend.to_dict(),
               None if draws is None else [d.tolist() for d in draws])
    by = list(settings.by)

    def sums(batches):
        models = models_at(*_models(payload), _draws(payload))
        for batch in batches:
            if not len(batch):
                continue
            for b, (labels, customers, values) in batch_moments(models, batch, horizon, by,
                                                                columns, time_unit).items():
                n_draws, n_groups = values.shape[1], values.shape[2]
                rows = {"by": np.full(n_draws * n_groups, b, dtype=object),
                        "group": np.tile(labels, n_draws).astype(object),
                        "draw": np.repeat(np.arange(n_draws), n_groups).astype(np.int32),
                        "customers": np.where(np.repeat(np.arange(n_draws), n_groups) == 0,
                                              np.tile(customers, n_draws), 0.0)}
                rows.update({name: values[k].ravel() for k, name in enumerate(_SUMS)})
                yield pd.DataFrame(rows)

    schema = ("`by` string, `group` string, draw int, customers double, "
              + ", ".join(f"{name} double" for name in _SUMS))
    summed = (selected.mapInPandas(sums, schema).groupBy("by", "group", "draw")
              .agg(*[F.sum(c).alias(c) for c in ["customers", *_SUMS]]).toPandas())
    parts = []
    for b in by:
        mine = summed[summed["by"] == b]
        labels = sorted_labels(list(mine["group"].unique()))
        n_draws = int(mine["draw"].max()) + 1
        cube = mine.set_index(["group", "draw"]).reindex(
            pd.MultiIndex.from_product([labels, range(n_draws)]))
        values = np.stack([cube[name].to_numpy().reshape(len(labels), n_draws).T
                           for name in _SUMS])  # (4, draws, groups)
        customers = cube["customers"].to_numpy().reshape(len(labels), n_draws).sum(axis=1)
        small = [lab for lab, n in zip(labels, customers) if n <= EXACT_MAX_CUSTOMERS]
        exact = _exact(selected, b, small, columns, payload, horizon, settings, time_unit) \
            if small else {}
        parts += assemble(b, labels, customers, values, exact, settings.level, spend is not None)
    n_models = 1 if draws is None else len(draws[0])
    return finish(parts, settings, horizon, time_unit, n_models)


def _models(payload):
    from clvlab.models.base import model_from_dict

    transaction = model_from_dict(payload[0], source="transaction model")
    spend = None if payload[1] is None else model_from_dict(payload[1], source="spend model")
    return transaction, spend


def _draws(payload):
    return None if payload[2] is None else [np.asarray(d, dtype=np.float64) for d in payload[2]]


def _exact(selected, by: str, small: list[str], columns: list[str], payload, horizon: float,
           settings: TotalsSettings, time_unit: str | None) -> dict[str, pd.DataFrame]:
    """{quantity: the small groups' rows of ``purchase_totals``/``revenue_totals``}, each group
    computed on one worker from its customers' rows."""
    from pyspark.sql import types as T

    wanted = set(small)

    def label(batches):
        for batch in batches:
            texts = (np.full(len(batch), "all", dtype=object) if by == "all"
                     else label_text(batch[by].to_numpy()))
            keep = np.isin(texts, list(wanted))
            if keep.any():
                yield batch.loc[keep, columns].assign(__group=texts[keep])

    fields = [f for f in selected.schema.fields if f.name in columns]
    labelled = selected.mapInPandas(label, T.StructType(
        sorted(fields, key=lambda f: columns.index(f.name)) + [T.StructField("__group", T.StringType())]))

    def one_group(rows: pd.DataFrame) -> pd.DataFrame:
        transaction, spend = _models(payload)
        tables = exact_rows(transaction, spend, rows[columns], rows["__group"].to_numpy(object),
                            horizon, settings, _draws(payload), time_unit)
        columns_out: dict[str, list] = {"quantity": [], "group": [], "distribution": [],
                                        **{c: [] for c in _COLUMNS}}
        for quantity, table in tables.items():
            renamed = table.rename(columns=lambda c: c.split(" ")[0])
            columns_out["quantity"] += [quantity] * len(table)
            columns_out["group"] += [str(g) for g in table.index]
            columns_out["distribution"] += [str(d) for d in renamed["distribution"]]
            for c in _COLUMNS:
                columns_out[c] += [float(v) for v in renamed[c]]
        # one frame, text as object columns: a concatenated Arrow-backed string column reaches
        # Spark as a chunked array, which its serializer refuses
        return pd.DataFrame({c: (np.asarray(v, dtype=object) if c in ("quantity", "group",
                                                                       "distribution")
                                 else np.asarray(v, dtype=np.float64))
                             for c, v in columns_out.items()})[["quantity", "group", *_COLUMNS,
                                                                "distribution"]]

    schema = ("quantity string, `group` string, "
              + ", ".join(f"{c} double" for c in _COLUMNS) + ", distribution string")
    rows = labelled.groupBy("__group").applyInPandas(one_group, schema).toPandas()
    pct = f"{100 * settings.level:g}%"
    out = {}
    for quantity, part in rows.groupby("quantity"):
        table = part.set_index("group").drop(columns="quantity")
        out[quantity] = table.rename(columns={"lower": f"lower {pct}", "upper": f"upper {pct}"})
    return out
