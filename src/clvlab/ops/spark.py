"""clvlab on Spark: RFM summaries of a Spark DataFrame, fits on its distinct rows, scoring.

``pip install clvlab[spark]``. This module (``clvlab.spark``) holds the jobs on a summary: fits
on its distinct rows, scoring with ``mapInPandas`` and the scoring job. The summary itself is the
data layer's Spark engine, :mod:`clvlab.data.rfm_spark` (the RFM rules of
:func:`clvlab.rfm_summary`, the same values as the pandas and DuckDB engines), whose public
names are re-exported here: :func:`rfm_summary`, :func:`read_log`, :func:`local_session` and
:class:`SparkSummary`.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from clvlab.core.errors import ClvlabError, DataValidationError
from clvlab.data.rfm_rules import past_the_log_metrics
from clvlab.data.rfm_spark import SparkSummary, local_session, read_log, rfm_summary
from clvlab.ops.scoring_intervals import DEFAULT_CLV_DRAWS

__all__ = ["local_session", "rfm_summary", "SparkSummary", "fit", "score", "totals", "read_log"]


def fit(model, summary, weights_col: str | None = None):
    """Fit a clvlab model on a Spark RFM summary: the distinct rows of the columns the model
    reads (``model.columns``) and their counts are computed in Spark and collected to the driver,
    so the driver's memory and the fit's cost grow with the number of distinct rows only.

    Parameters
    ----------
    model : BaseModel
        An unfitted clvlab model (its settings).
    summary : SparkSummary
        The Spark RFM summary (:func:`clvlab.ops.spark.rfm_summary`).
    weights_col : str, optional
        Not used: the weights are the counts of the distinct rows.

    Returns
    -------
    BaseModel
        ``model``, fitted.
    """
    from pyspark.sql import functions as F

    frame, info = summary.frame, summary.info
    # frequency, recency and T too: the checks of an RFM table read them for every model, the
    # Gamma-Gamma model's included (recency <= T). A column the summary lacks is left out, for
    # the model to name in its own error (a Gamma-Gamma fit on a summary without amounts).
    # and the covariate columns (customer attributes) the model's settings name
    covariates = tuple(c for setting in ("purchase_covariates", "dropout_covariates",
                                         "spend_covariates") for c in getattr(model, setting, None) or ())
    wanted = dict.fromkeys(("frequency", "recency", "T") + tuple(model.columns) + covariates)
    columns = [c for c in wanted if c in frame.columns]
    grouped = frame.groupBy(*columns).agg(F.count("*").alias("_n")).toPandas()
    rfm = grouped[columns].copy()
    rfm.attrs["clvlab"] = info
    return model.fit(rfm, weights=grouped["_n"].to_numpy(np.float64))


def score(customers, transaction_model, spend_model=None, churn_adjuster=None, *, horizon: float,
          discount_rate: float = 0.0, margin: float = 1.0, customer_col: str = "customer_id",
          time_unit: str | None = None, quantiles: Any = None, interval_level: float | None = None,
          clv_draws: int = DEFAULT_CLV_DRAWS, seed: int = 0):
    """Score a Spark DataFrame of RFM rows with ``mapInPandas``: the models travel to the
    workers as their JSON payloads and are rebuilt there (no pickled model objects). Returns a
    Spark DataFrame with the customer id and the columns of
    :func:`clvlab.customer_scores.score_customers`, which scores each batch (so Spark gives
    the scores every other entry point gives; no spend columns without a spend model).
    ``horizon`` is in the model's time unit and has no default. Models with covariates read
    their attribute columns from ``customers`` too (see :func:`clvlab.serving.score_frame`).
    ``time_unit``: the unit of the table's durations (a Spark batch carries none); it must be
    the model's, which it defaults to: a summary built by clvlab in the model's unit.
    ``quantiles``, ``interval_level``, ``clv_draws`` and ``seed`` add the per-customer
    distribution columns of :mod:`clvlab.ops.scoring_intervals` (quantiles and intervals of
    purchases as bigint, CLV quantiles as double), as the pyfunc and the scoring job do.
    ``churn_adjuster``: a fitted churn adjuster or challenger (``ChallengerAdjustment``) whose
    features (``feature_names_in_``) ``customers`` holds (:func:`score_job` builds them from a
    log); it travels to the workers as its JSON and skops files, loaded there by its class's
    loader (nothing pickled). It takes no quantiles or intervals.

    Parameters
    ----------
    customers : pyspark.sql.DataFrame
        RFM rows with ``customer_col`` (and the adjuster's features and models' attributes).
    transaction_model : BetaGeo, ModifiedBetaGeo or ParetoNBD
        The fitted transaction model.
    spend_model : GammaGamma or LogNormalSpend, optional
        The fitted spend model.
    churn_adjuster : ChurnAdjuster or ChallengerAdjustment, optional
        A fitted churn adjuster or challenger.
    horizon : float
        The scoring window, in the model's time unit.
    discount_rate : float, default 0.0
        The discount rate per time unit.
    margin : float, default 1.0
        The profit margin.
    customer_col : str, default "customer_id"
        The id column.
    time_unit : str, optional
        The unit of the rows' durations (None: the model's).
    quantiles : sequence of float, optional
        Quantile levels of the distribution columns.
    interval_level : float, optional
        The level of the prediction intervals.
    clv_draws : int, default DEFAULT_CLV_DRAWS
        Monte Carlo futures behind the CLV quantiles.
    seed : int, default 0
        Their seed.

    Returns
    -------
    pyspark.sql.DataFrame
        The id and the scores' columns.

    Raises
    ------
    DataValidationError
        Where ``customer_col`` is missing from ``customers``.
    ClvlabError
        Where the horizon, rate or margin is invalid, or the models and options do not combine.
    """
    from clvlab.models.clv import check_rates
    from clvlab.models.customer_scores import scoring_horizon, output_columns
    from clvlab.models.base import model_from_dict
    from clvlab.ops.scoring_intervals import distribution_column_types, distribution_settings
    from clvlab.ops.serving import covariate_columns, score_frame

    if customer_col not in customers.columns:
        raise DataValidationError(customer_col, "is missing from the customer table")
    absent = [c for c in covariate_columns(transaction_model, spend_model)
              if c not in customers.columns]
    if absent:
        raise ClvlabError(f"the model reads the customer attribute column(s) {absent} (its "
                          f"covariates), which the customer table lacks (it has "
                          f"{customers.columns}); join them first")
    horizon = scoring_horizon(horizon)
    check_rates(discount_rate, margin)  # on the driver, before any task starts
    payloads = (transaction_model.to_dict(), None if spend_model is None else spend_model.to_dict())
    unit = time_unit or getattr(transaction_model, "time_unit_", None)
    distribution = distribution_settings({"quantiles": quantiles, "interval_level": interval_level,
                                          "clv_draws": clv_draws, "seed": seed})
    files = None
    if churn_adjuster is not None:
        _check_adjuster(churn_adjuster, horizon, distribution, customers.columns)
        files = _adjuster_files(churn_adjuster)
    settings = {"horizon": horizon, "discount_rate": float(discount_rate), "margin": float(margin),
                "time_unit": unit, **{k: (list(v) if k == "quantiles" else v)
                                      for k, v in distribution.items()}}
    key_type = dict(customers.dtypes)[customer_col]
    extra = distribution_column_types(distribution["quantiles"], distribution["interval_level"],
                                      spend_model is not None)
    schema = f"`{customer_col}` {key_type}, " + ", ".join(
        [f"{c} double" for c in output_columns(spend_model)]
        + [f"`{c}` {'bigint' if kind == 'long' else 'double'}" for c, kind in extra.items()])

    def predict(batches):
        transaction = model_from_dict(payloads[0], source="transaction model")
        spend = None if payloads[1] is None else model_from_dict(payloads[1], source="spend model")
        adjuster = None
        if files is not None:
            adjuster = _load_adjuster(files, transaction)
        for batch in batches:
            out = score_frame(transaction, spend, adjuster,
                              batch.set_index(customer_col, drop=False), settings)
            out.insert(0, customer_col, batch[customer_col].to_numpy())
            yield out.reset_index(drop=True)

    return customers.mapInPandas(predict, schema)


def totals(customers, transaction_model, spend_model=None, *, horizon: float, by: Any = "all",
           level: float = 0.9, parameter_uncertainty: str = "auto", parameter_draws: int = 200,
           seed: int = 0, time_unit: str | None = None):
    """Total purchases (and revenue, with a spend model) per group of a Spark table of
    customers, with intervals: the scoring job's ``--totals-by`` on any Spark DataFrame.

    Parameters
    ----------
    customers : Spark DataFrame
        One row per customer: the RFM columns (``monetary_value`` with a spend model), the
        models' covariates and the ``by`` columns.
    transaction_model, spend_model : the fitted models.
    horizon : in the model's time unit.
    by, level, parameter_uncertainty, parameter_draws, seed : as
        :func:`clvlab.ops.scoring_totals.totals_settings` takes them (``"all"``: the whole table).
    time_unit : the table's unit (default the model's).

    Returns
    -------
    pandas.DataFrame
        One row per grouping, group and quantity (:mod:`clvlab.ops.scoring_totals`), equal to
        ``purchase_totals``/``revenue_totals`` on the same customers and draws. The moments are
        summed on the workers; only groups x draws rows reach the driver.
    """
    from clvlab.models.customer_scores import scoring_horizon
    from clvlab.ops.scoring_totals import check_group_columns, draws_for, totals_settings
    from clvlab.ops.spark_totals import spark_totals

    settings = totals_settings(by, level=level, parameter_uncertainty=parameter_uncertainty,
                               parameter_draws=parameter_draws, seed=seed)
    if settings is None:
        raise ClvlabError("by must name a column (or 'all' for the whole table), e.g. by='channel'")
    check_group_columns(settings, list(customers.columns), "the customer table")
    models = [transaction_model] + ([spend_model] if spend_model is not None else [])
    return spark_totals(customers, transaction_model, spend_model, scoring_horizon(horizon),
                        settings, draws_for(models, settings),
                        time_unit or getattr(transaction_model, "time_unit_", None))


def score_job(spark, model_dir: str, transactions: Any, as_of: Any, output: str, *,
              params: dict[str, float], time_unit: str, customer_col: str = "customer_id",
              date_col: str = "date", amount_col: str | None = "amount",
              date_format: str | None = None, timezone: str = "UTC", overwrite: bool = False,
              consent_col: str | None = None, withdrawn: Any = None,
              delimiter: str | None = None, decimal: str | None = None, attributes: Any = None,
              missing_attributes: str = "raise", totals: Any = None, events: Any = None,
              event_col: str = "event", event_value_col: str | None = None,
              buckets: int | None = None, quantity_col: str | None = None):
    """The scoring job on Spark: RFM as of ``as_of``, scores by :func:`score` with the models in
    ``model_dir`` (the CLV model's downloaded artifacts), written as a Parquet folder beside
    ``output`` and renamed into place (a failed job leaves the previous output intact).
    Models with covariates get each customer's attributes joined in Spark, from ``attributes``
    (a file, a pandas or a Spark DataFrame) or from the log's columns, by the rules of
    :mod:`clvlab.ops.scoring_attributes` (customers without them: ``missing_attributes``).
    ``totals`` (the job's :class:`~clvlab.ops.scoring_distributions.JobDistributions`, with
    totals asked for) adds the totals per group, summed on the workers
    (:mod:`clvlab.ops.spark_totals`): no customer is collected to the driver.
    A model with a churn adjuster or challenger gets its features (behaviour, ``events``'
    features, attributes) from the pandas code run on the workers, the customers split into
    ``buckets`` by a hash of their id, each bucket with its customers' whole sub-log
    (:mod:`clvlab.ops.spark_features`): the pandas job's inputs, without collecting the log.
    ``events`` (a file, glob, pandas or Spark DataFrame with the log's customer and date
    columns, ``event_col`` and optionally ``event_value_col``) is the event log such a model
    was trained with, ``quantity_col`` the log's items-per-order column of one trained on the
    basket features; other models ignore them. Such a model takes no quantiles, intervals or
    totals. Returns a dict of row counts and score statistics for the scoring run (and the
    totals table under ``"totals"``)."""
    import shutil

    from clvlab.models import load_model
    from clvlab.ops.serving import covariate_columns
    from clvlab.ops.spark_features import worker_errors

    target = Path(output)
    if target.exists() and not overwrite:
        raise ClvlabError(f"output {output} exists; pass overwrite=True (--overwrite) to replace it")
    artifacts = Path(model_dir)
    transaction = load_model(artifacts / "transaction_model.json")
    spend_path = artifacts / "spend_model.json"
    spend = load_model(spend_path) if spend_path.exists() else None
    adjuster = _adjuster(artifacts, params, totals)
    log = read_log(spark, transactions, date_col, amount_col=amount_col, delimiter=delimiter,
                   decimal=decimal)
    summary = rfm_summary(log, customer_col=customer_col,
                          date_col=date_col, amount_col=amount_col, time_unit=time_unit,
                          observation_end=as_of, date_format=date_format, timezone=timezone,
                          consent_col=consent_col, withdrawn=withdrawn)
    frame, without, check_events = summary.frame, None, None
    covariates = covariate_columns(transaction, spend)
    csv_options = dict(delimiter=delimiter, decimal=decimal)
    if adjuster is not None:
        from clvlab.ops.spark_features import adjuster_inputs

        frame, check_events = adjuster_inputs(
            spark, log, summary, adjuster, spend=spend is not None, as_of=as_of,
            time_unit=time_unit, customer_col=customer_col, date_col=date_col,
            amount_col=amount_col, date_format=date_format, timezone=timezone, events=events,
            event_col=event_col, event_value_col=event_value_col, attributes=attributes,
            csv_options=csv_options, buckets=buckets, quantity_col=quantity_col)
    groups = [] if totals is None else [c for c in totals.group_columns if c not in frame.columns]
    wants_totals = totals is not None and totals.totals is not None
    # scored and totalled, or joined to attributes and scored: the summary (or the buckets'
    # features) is computed once
    kept = wants_totals or (adjuster is not None and bool(covariates))
    if kept:
        frame = frame.persist()
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        with worker_errors():
            if covariates or groups:
                frame, without = _with_attributes(spark, frame, log, attributes,
                                                  list(dict.fromkeys(covariates + groups)),
                                                  customer_col, missing_attributes, csv_options,
                                                  "the model's covariates" if covariates else
                                                  "the totals (--totals-by)")
            scores = score(frame, transaction, spend, adjuster, customer_col=customer_col,
                           time_unit=time_unit, **params)
            scores.write.mode("overwrite").parquet(str(staging / "scores"))
        if check_events is not None:  # the whole event log's checks, after the buckets' own
            check_events()
        written = spark.read.parquet(str(staging / "scores"))  # summarise what was written
        summarised = ["p_alive"] + (["clv"] if spend is not None else [])  # no spend: no CLV
        # spend per purchase: a mean only (a sum of per-purchase values means nothing)
        per_purchase = ["expected_spend_per_purchase"] if spend is not None else []
        stats = written.selectExpr("count(*) AS n", *[expr for c in summarised for expr in
                                                      (f"avg({c}) AS `{c}.mean`",
                                                       f"sum({c}) AS `{c}.sum`")],
                                   *[f"avg({c}) AS `{c}.mean`" for c in per_purchase]).collect()[0]
        table = None
        if wants_totals:  # before the scores are renamed into place: both, or neither
            from clvlab.ops.spark_totals import spark_totals

            table = spark_totals(frame, transaction, spend, params["horizon"], totals.totals,
                                 totals.draws, time_unit)
        if target.exists():
            backup = target.with_name(f".{target.name}.old")
            target.rename(backup)
            (staging / "scores").rename(target)
            shutil.rmtree(backup, ignore_errors=True) if backup.is_dir() else backup.unlink()
        else:
            (staging / "scores").rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if kept:
            frame.unpersist()
    return {"customers_scored": float(stats["n"]),
            **({} if table is None else {"totals": table}),
            "customers_excluded": float(summary.info.get("customers_excluded", 0)),
            **({} if without is None else {"customers_without_attributes": float(without)}),
            **{f"{c}.{k}": float(stats[f"{c}.{k}"]) for c in summarised for k in ("mean", "sum")},
            **{f"{c}.mean": float(stats[f"{c}.mean"]) for c in per_purchase},
            **past_the_log_metrics(summary.info, time_unit)}


def _adjuster(artifacts, params, totals):
    """The CLV model's churn adjuster or challenger (None without one), checked against the
    job's settings before any work: its horizon, and no quantiles, intervals or totals, as in
    the pandas job (:func:`clvlab.ops.scoring_intervals.refuse_adjuster`)."""
    if not ((artifacts / "churn_adjuster.json").exists()
            or (artifacts / "challenger.json").exists()):
        return None
    from clvlab.ops.scoring_intervals import refuse_adjuster
    from clvlab.ops.serving import CLVModel

    adjuster = CLVModel.load(artifacts).adjuster
    if totals is not None and totals.totals is not None:
        refuse_adjuster(adjuster, "quantiles, prediction intervals and totals")
    _check_adjuster(adjuster, params["horizon"], params)
    return adjuster


def _check_adjuster(adjuster, horizon: float, distribution: dict,
                    columns: list[str] | None = None) -> None:
    """The checks of a churn adjuster's scoring that can be made before any task starts: the
    horizon it was trained for, no distribution columns (:func:`refuse_adjuster`), and its
    features among ``columns``."""
    from clvlab.ops.scoring_intervals import refuse_adjuster

    if distribution.get("quantiles") or distribution.get("interval_level") is not None:
        refuse_adjuster(adjuster)
    from clvlab.models.customer_scores import adjuster_role

    if not np.isclose(horizon, adjuster.horizon):
        raise ClvlabError(f"{adjuster_role(adjuster)} was trained for a horizon of "
                          f"{adjuster.horizon:g}; score with horizon={adjuster.horizon:g}")
    absent = [c for c in adjuster.feature_names_in_ if columns is not None and c not in columns]
    if absent:
        raise ClvlabError(f"{adjuster_role(adjuster)} needs the column(s) {absent}, which the customer "
                          "table lacks (build them with clvlab.churn.feature_frame, or let the "
                          "scoring job build them: clvlab.ops.spark.score_job)")


def _adjuster_files(adjuster) -> dict[str, bytes]:
    """A fitted churn adjuster or challenger as the files a CLV model holds for it
    (``churn_adjuster.json`` or ``challenger.json`` and their skops parts), by name."""
    name = "challenger.json" if hasattr(adjuster, "candidate_name_") else "churn_adjuster.json"
    with tempfile.TemporaryDirectory() as folder:
        adjuster.save(Path(folder) / name)
        return {path.name: path.read_bytes() for path in Path(folder).iterdir()}


def _load_adjuster(files: dict[str, bytes], transaction):
    """The adjuster of :func:`_adjuster_files` loaded again (JSON and skops, with the trusted
    types of its class); a challenger's BTYD model is the CLV model's ``transaction``."""
    from clvlab.churn import ChallengerAdjustment, ChurnAdjuster

    with tempfile.TemporaryDirectory() as folder:
        for name, data in files.items():
            (Path(folder) / Path(name).name).write_bytes(data)
        if "challenger.json" in files:
            part = ChallengerAdjustment.load(Path(folder) / "challenger.json")
            part.base_model_ = transaction
            return part
        return ChurnAdjuster.load(Path(folder) / "churn_adjuster.json")


def _with_attributes(spark, frame, log, attributes, columns, customer_col, policy, csv_options,
                     needed_by="the model's covariates"):
    """(the summary with the attribute ``columns`` joined in Spark, the number of customers
    without attributes); the rules and words of the pandas job's
    :mod:`clvlab.ops.scoring_attributes`, with only counts and one example collected."""
    import pandas as pd
    from pyspark.sql import functions as F

    from clvlab.data.attributes import join_spark_attributes
    from clvlab.ops import scoring_attributes as rules

    rules.check_missing_policy(policy)
    by_id = F.col(f"`{customer_col}`")
    if attributes is None:
        source = "the log"
        absent = [c for c in columns if c not in log.columns]
        if absent:
            raise ClvlabError(f"the model reads the customer attribute column(s) {absent} (its "
                              f"covariates), which the log lacks (it has {log.columns}); give the "
                              "attributes as a table (attributes=..., --attributes FILE)")
        per_customer = log.where(by_id.isNotNull()).groupBy(by_id).agg(
            *[F.countDistinct(F.col(f"`{c}`")).alias(f"__n{i}") for i, c in enumerate(columns)],
            *[F.first(F.col(f"`{c}`"), ignorenulls=True).alias(c) for c in columns])
        for i, column in enumerate(columns):
            changing = per_customer.where(F.col(f"__n{i}") > 1).select(by_id).orderBy(by_id)
            first = changing.limit(1).collect()
            if first:
                raise DataValidationError(
                    column, f"changes within customer {first[0][0]!r} in the log "
                            f"({changing.count():,} customers in all): a covariate is one value "
                            "per customer, known at acquisition; give each customer's value in "
                            "an attributes table (attributes=..., --attributes FILE)")
        table = per_customer.select(by_id, *[F.col(f"`{c}`") for c in columns]).dropna()
    elif hasattr(attributes, "sparkSession"):
        source, table = "the attributes table", attributes
    else:
        source = f"the attributes table {attributes}" if not isinstance(attributes, pd.DataFrame) \
            else "the attributes table"
        table = rules.read_attribute_table(attributes, csv_options)
    if isinstance(table, pd.DataFrame):
        from clvlab.data.attributes import attribute_table

        table = attribute_table(table, customer_col=customer_col)
        absent = [c for c in columns if c not in table.columns]
        if absent:
            raise ClvlabError(f"the model reads the customer attribute column(s) {absent} (its "
                              f"covariates), which {source} lacks (it has {list(table.columns)})")
        plain = table[list(columns)].apply(lambda c: c.astype(object) if isinstance(
            c.dtype, (pd.CategoricalDtype, pd.StringDtype)) else c)
        table = spark.createDataFrame(plain.rename_axis(customer_col).reset_index())
    else:
        table = table.select(by_id, *[F.col(f"`{c}`") for c in columns])
    ids = table.select(by_id).where(by_id.isNotNull())
    without = frame.join(ids, on=customer_col, how="left_anti").select(by_id)
    missing = without.count()
    if missing and policy == "raise":
        raise rules.missing_error(missing, frame.count(), without.orderBy(by_id).limit(1)
                                  .collect()[0][0], source, needed_by=needed_by)
    if missing:
        frame = frame.join(ids, on=customer_col, how="left_semi")
    joined, _, _ = join_spark_attributes(frame, table, customer_col=customer_col)
    return joined, missing
