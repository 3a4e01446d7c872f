"""The batch scoring job: a registered CLV model scores every customer of a log as of a date.

``score(model_uri, transactions, as_of, output)``:

1. checks the model's files (JSON and skops only, loaded by the installed clvlab; see
   :func:`clvlab.serving.check_model_files`) with MLFLOW_ALLOW_PICKLE_DESERIALIZATION=false;
2. builds the RFM summary as of the date, leaving out customers who withdrew consent. For files
   DuckDB aggregates the log with a memory limit (spilling to disk) and hands the customers over
   in chunks, so the job's memory does not grow with the number of customers; a DataFrame is
   summarised by pandas. Models with a churn adjuster need behaviour features computed from the
   whole log in pandas, so they are scored in memory;
3. scores chunk by chunk into a temporary file beside the output (Parquet row groups or CSV);
   A model with covariates also reads each customer's attributes, from ``attributes`` (a table)
   or from the log's columns; customers without them fail the job with their number, or are
   left out and counted with ``missing_attributes="skip"`` (see
   :mod:`clvlab.ops.scoring_attributes`);
4. logs the scoring run (counts, score quantiles from the written file, the model version) and
   only then renames the file into place. A Parquet output records what produced it under the
   key ``clvlab.scoring`` of its metadata (``SCORING_METADATA_KEY``: a scoring id, the model URI
   and version, the as-of date, horizon and time unit, the interval options), and the run
   carries the same id as the tag ``clvlab.scoring_id`` (with ``clvlab.horizon`` and
   ``clvlab.time_unit``), so that a later job (:mod:`clvlab.ops.monitoring`) finds the run of
   a file; a CSV has no metadata and is found by the run's ``output`` tag. A failure anywhere,
   a tracking server that dies, or a SIGKILL leaves the previous output intact and no partial
   one; the job fails with one message.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from clvlab.core.atomic import atomic_output
from clvlab.core.progress import progress_bar
from clvlab.core.errors import ClvlabError
from clvlab.core.timeunits import UNIT_NAMES
from clvlab.data.rfm_rules import past_the_log_metrics
from clvlab.models.totals_moments import DEFAULT_DRAWS
from clvlab.ops.scoring_distributions import JobDistributions
from clvlab.ops.scoring_inputs import attribute_join, input_chunks
from clvlab.ops.scoring_intervals import DEFAULT_CLV_DRAWS
from clvlab.ops.scoring_time_varying import job_panel, job_params
from clvlab.data.tables import accepts_tables

__all__ = ["score", "ScoringResult", "SCORING_METADATA_KEY"]

#: the Parquet metadata key of a scoring output's record (read by clvlab.ops.monitoring).
SCORING_METADATA_KEY = "clvlab.scoring"

CHUNK_ROWS = 200_000
QUANTILES = (0.1, 0.5, 0.9, 0.99)


@dataclass
class ScoringResult:
    """What a scoring job did: where the scores are and the figures it logged to MLflow.

    Parameters
    ----------
    output : pathlib.Path
        The scores' file (or Parquet folder, on Spark).
    customers_scored : int
        Customers scored.
    customers_excluded : int
        Customers left out for consent.
    model_version : str
        The registered model's version that scored.
    run_id : str or None
        The scoring job's MLflow run.
    seconds : float
        The job's wall time.
    stats : dict of str to float, optional
        The figures logged to MLflow.
    horizon : float, optional
        The scoring window, in ``time_unit``.
    time_unit : str, optional
        The model's time unit.
    totals_output : pathlib.Path, optional
        The totals per group (``totals_by``), when asked for.
    """

    output: Path
    customers_scored: int
    customers_excluded: int
    model_version: str
    run_id: str | None
    seconds: float
    stats: dict[str, float] = field(repr=False, default_factory=dict)
    horizon: float | None = None      # the scoring window, in time_unit
    time_unit: str | None = None
    totals_output: Path | None = None  # the totals per group (totals_by), when asked for

    @property
    def horizon_text(self) -> str:
        """The horizon with its unit, e.g. "52 W (weeks)": every printout of scores says it."""
        if self.horizon is None:
            return "unknown"
        return f"{self.horizon:g} {self.time_unit} ({UNIT_NAMES.get(self.time_unit, '?')})"

    def __repr__(self) -> str:
        left_out = f", {self.customers_excluded:,} left out for consent" if self.customers_excluded else ""
        run = f", MLflow run {self.run_id}" if self.run_id else ""
        totals = f" (totals -> {self.totals_output})" if self.totals_output else ""
        return (f"<ScoringResult: {self.customers_scored:,} customers scored over a horizon of "
                f"{self.horizon_text}{left_out} by model version {self.model_version} in "
                f"{self.seconds:.1f} s -> {self.output}{totals}{run}>")

    def read_totals(self) -> pd.DataFrame:
        """The totals per group (``totals_by``); an error when none were asked for.

        Returns
        -------
        pandas.DataFrame
            The totals file's table.

        Raises
        ------
        ClvlabError
            Where the job wrote no totals.
        """
        if self.totals_output is None:
            raise ClvlabError("this scoring job wrote no totals; pass totals_by (--totals-by)")
        if self.totals_output.suffix.lower() == ".csv":
            return pd.read_csv(self.totals_output)
        return pd.read_parquet(self.totals_output)

    def read(self) -> pd.DataFrame:
        """The scores, indexed by customer id (loads the whole file).

        Returns
        -------
        pandas.DataFrame
            The scores.
        """
        if self.output.suffix.lower() == ".csv":
            return pd.read_csv(self.output, index_col=0)
        table = pd.read_parquet(self.output)
        return table.set_index(table.columns[0])


@accepts_tables("transactions", "events", "calendar", "covariates", keyed=("attributes",),
                customer_col="customer_col")
def score(model_uri: str, transactions: Any, as_of: Any, output: str | Path, *,
          customer_col: str = "customer_id", date_col: str = "date",
          amount_col: str | None = "amount", date_format: str | None = None,
          timezone: str = "UTC", horizon: float | None = None, discount_rate: float = 0.0,
          margin: float = 1.0, overwrite: bool = False, experiment: str = "clvlab-scoring",
          consent_col: str | None = None, withdrawn: Any = None,
          delimiter: str | None = None, decimal: str = ".", chunk_rows: int = CHUNK_ROWS, memory_limit: str = "2GB",
          allow_pickle: bool = False, engine: str = "duckdb", spark: Any = None,
          progress: bool | None = None, attributes: Any = None,
          missing_attributes: str = "raise", quantiles: Any = None,
          interval_level: float | None = None, totals_by: Any = None,
          parameter_uncertainty: str = "auto", parameter_draws: int = DEFAULT_DRAWS,
          clv_draws: int = DEFAULT_CLV_DRAWS, seed: int = 0, covariates: Any = None,
          calendar: Any = None, panel_customer_col: str | None = None,
          period_col: str = "period", events: Any = None, event_col: str = "event",
          event_value_col: str | None = None, quantity_col: str | None = None) -> ScoringResult:
    """Score every customer seen up to ``as_of`` and write ``output`` (.parquet or .csv).

    ``model_uri`` is an MLflow model URI such as ``models:/cdnow-clv@champion``. The RFM is
    built in the model's own time unit (recorded when it was logged); ``horizon`` (required)
    is in it. ``amount_col`` is needed when the model has a spend model and ignored otherwise.
    The scores are those of :func:`clvlab.models.customer_scores.score_customers`.
    ``consent_col``/``withdrawn`` leave out customers who withdrew consent (see
    :mod:`clvlab.privacy`); their number is logged. ``memory_limit`` bounds DuckDB (it spills
    beyond it). ``engine="spark"`` runs the job on Spark (``spark``: a session, else a local
    one); the output is then a Parquet folder. ``progress``: a bar over the customers scored
    (None: when someone is watching; Spark shows its own).

    A model with covariates reads each customer's attributes: from ``attributes`` (a CSV or
    Parquet file, or a DataFrame, with the ``customer_col`` column or indexed by id), else from
    the log's columns (one value per customer). ``missing_attributes``: "raise" (default) fails
    the job when scored customers have none, with their number and an example; "skip" leaves
    them out and logs their number (``customers_without_attributes``). Both are ignored for a
    model without covariates, as ``amount_col`` is without a spend model.

    A churn adjuster or a challenger (:class:`clvlab.churn.ChallengerAdjustment`) trained on an
    event log's features reads them from ``events`` (a file, glob or DataFrame with the log's
    customer and date columns, ``event_col`` and optionally ``event_value_col``), up to
    ``as_of``; one trained on the basket features needs the log's ``quantity_col`` (items per
    order; refused without it, before the log is read); other models ignore both.

    Distributions (:mod:`clvlab.ops.scoring_distributions`): ``quantiles`` (levels, e.g.
    ``"0.05,0.5,0.95"``) adds ``purchases_q<q>`` per customer and, with a spend model,
    ``clv_q<q>`` (Monte Carlo: ``clv_draws`` futures per customer, ``seed``);
    ``interval_level`` adds ``purchases_lower``/``purchases_upper``; ``totals_by`` (columns of
    the attributes, the log or the RFM table, or ``"all"``) writes the totals per group with
    their interval at ``interval_level`` (0.9 by default) to ``<output stem>.totals.parquet``
    (``.csv`` beside a CSV), with ``parameter_uncertainty`` ("auto", "posterior", "normal",
    "bootstrap" or "none") from ``parameter_draws`` draws. All of it is logged to the run.

    A transaction model fitted with time-varying covariates needs ``covariates``: the panel
    (Parquet/CSV files or a DataFrame; columns ``panel_customer_col``, default the log's
    ``customer_col``, and ``period_col``) reaching ``as_of + horizon``, optionally a
    ``calendar`` (a file or DataFrame); each chunk is scored along its customers' paths
    (:mod:`clvlab.ops.scoring_time_varying`). Another model refuses a panel.

    Parameters
    ----------
    model_uri : str
        The registered model (above).
    transactions : pandas or polars DataFrame, pyarrow Table, path, glob or list of paths
        The transaction log: a pandas or polars DataFrame or a pyarrow Table
        (:mod:`clvlab.data.tables`), or CSV or Parquet files.
    as_of : str or datetime
        The scoring date: the log up to it is read.
    output : str or pathlib.Path
        The scores' file (.parquet or .csv).
    customer_col, date_col : str, default "customer_id", "date"
        The log's id and date columns.
    amount_col : str or None, default "amount"
        The log's amount column (above).
    date_format : str, optional
        The date column's strptime format (None: ISO 8601).
    timezone : str, default "UTC"
        The time zone the dates are read in.
    horizon : float
        The scoring window, in the model's time unit (required).
    discount_rate : float, default 0.0
        The discount rate per time unit.
    margin : float, default 1.0
        The profit margin.
    overwrite : bool, default False
        Replace an existing output.
    experiment : str, default "clvlab-scoring"
        The MLflow experiment of the job's run.
    consent_col, withdrawn : optional
        Leave out customers who withdrew consent (above).
    delimiter, decimal : str, optional
        The dialect of CSV files.
    chunk_rows : int, default CHUNK_ROWS (200,000)
        Customers scored at a time (>= 1).
    memory_limit : str, default "2GB"
        DuckDB's memory limit.
    allow_pickle : bool, default False
        Let MLflow deserialise pickles while the job runs (MLFLOW_ALLOW_PICKLE_DESERIALIZATION is
        "false" for the job otherwise).
    engine : {"duckdb", "spark"}, default "duckdb"
        Where the job runs.
    spark : pyspark.sql.SparkSession, optional
        The Spark session (None: a local one).
    progress : bool, optional
        A progress bar (above).
    attributes : pandas or polars DataFrame, pyarrow Table, path, optional
        Customer attributes of a model with covariates (above); a polars DataFrame or a
        pyarrow Table has the ids in its ``customer_col`` column.
    missing_attributes : {"raise", "skip"}, default "raise"
        Customers without attributes (above).
    quantiles : sequence of float or str, optional
        Quantile levels of the distribution columns.
    interval_level : float, optional
        The level of the prediction intervals.
    totals_by : str or sequence of str, optional
        Group columns of the totals (above).
    parameter_uncertainty : str, default "auto"
        Where the totals' parameter draws come from.
    parameter_draws : int, default DEFAULT_DRAWS
        Parameter draws behind the totals' intervals.
    clv_draws : int, default DEFAULT_CLV_DRAWS (200)
        Monte Carlo futures behind the CLV quantiles.
    seed : int, default 0
        Their seed.
    covariates : pandas or polars DataFrame, pyarrow Table or path, optional
        The covariate panel of a model fitted with time-varying covariates (above).
    calendar : pandas or polars DataFrame, pyarrow Table or path, optional
        Calendar covariates.
    panel_customer_col : str, optional
        The panel's customer column (None: ``customer_col``).
    period_col : str, default "period"
        The panel's period column.
    events : pandas or polars DataFrame, pyarrow Table or path, optional
        An event log for a churn adjuster or challenger (above).
    event_col : str, default "event"
        The event log's event-name column.
    event_value_col : str, optional
        The event log's value column.
    quantity_col : str, optional
        The log's items-per-order column (above).

    Returns
    -------
    ScoringResult
        Where the scores are and what the job logged.

    Raises
    ------
    ClvlabError
        Where an option is invalid (``chunk_rows`` < 1, no horizon), the model cannot be loaded,
        the output exists without ``overwrite``, or the inputs do not match the model (a missing
        amount, attribute, panel or feature column).
    DataValidationError
        Where the log breaks a rule of :func:`clvlab.rfm_summary`.
    """
    from clvlab.ops.serving import CLVModel, download_clv_model
    from clvlab.ops.tracking import connect, tracking_errors

    output = Path(output)
    if engine not in ("duckdb", "pandas", "spark"):
        raise ClvlabError(f"engine must be 'duckdb', 'pandas' or 'spark', got {engine!r}")
    if engine != "spark" and output.suffix.lower() not in (".parquet", ".pq", ".csv"):
        raise ClvlabError(f"output {output} must end in .parquet or .csv")
    if output.exists() and not overwrite:
        raise ClvlabError(f"output {output} exists; pass overwrite=True (--overwrite) to replace it")
    if int(chunk_rows) < 1:
        raise ClvlabError(f"chunk_rows must be >= 1, got {chunk_rows!r}")
    from clvlab.ops.scoring_attributes import check_missing_policy

    check_missing_policy(missing_attributes)
    extras = JobDistributions.check(output, overwrite, quantiles=quantiles,
                                    interval_level=interval_level, totals_by=totals_by,
                                    parameter_uncertainty=parameter_uncertainty,
                                    parameter_draws=parameter_draws, clv_draws=clv_draws, seed=seed)
    started = time.perf_counter()
    from clvlab.models.customer_scores import scoring_horizon
    from clvlab.models.clv import check_rates

    check_rates(discount_rate, margin)  # before any work: a mistyped rate fails at once
    params = {"horizon": scoring_horizon(horizon), "discount_rate": float(discount_rate),
              "margin": float(margin)}
    log_options = dict(customer_col=customer_col, date_col=date_col, amount_col=amount_col,
                       date_format=date_format, timezone=timezone, consent_col=consent_col,
                       withdrawn=withdrawn)
    csv_options = dict(delimiter=delimiter, decimal=decimal)
    # an event log (and the basket sizes) for a churn adjuster or challenger trained on them
    event_options = dict(event_col=event_col, event_value_col=event_value_col,
                         quantity_col=quantity_col)
    with _pickle_setting(allow_pickle):
        mlflow = connect()
        with tracking_errors("reading the model", "nothing was written"):
            info = _model_info(mlflow, model_uri)
            version = _registered_version(mlflow, model_uri)
        model_dir = download_clv_model(model_uri)  # once: the Spark job reads the same files
        model = CLVModel.load(model_dir)
        time_unit = _model_time_unit(model_uri, (info.metadata or {}).get("time_unit"), model)
        log_options = _amount_option(model, log_options)
        source = job_panel(model, covariates, calendar, customer_col=panel_customer_col,
                           period_col=period_col, quantiles=extras.quantiles,
                           totals=extras.totals is not None, engine=engine)
        extras.prepare(model, transactions, attributes, log_options["amount_col"], customer_col,
                       csv_options)
        params.update(extras.predict_params())
        run_params = extras.run_params(model.spend is not None)
        record = {"scoring_id": uuid.uuid4().hex, "model_uri": model_uri, "model_version": version,
                  "as_of": str(as_of), "horizon": params["horizon"], "time_unit": time_unit,
                  "customer_col": customer_col, "interval_level": extras.interval_level,
                  "quantiles": list(extras.quantiles)}
        run_tags = {"clvlab.scoring_id": record["scoring_id"],
                    "clvlab.horizon": f"{params['horizon']:g}", "clvlab.time_unit": time_unit}
        if isinstance(covariates, (str, Path)):  # the panel the paths came from
            run_params["covariates"] = str(covariates)
        if engine == "spark":
            from clvlab.ops import spark as clv_spark

            stats = clv_spark.score_job(spark or clv_spark.local_session(),
                                        str(model_dir), transactions, as_of,
                                        str(output), params=params, time_unit=time_unit,
                                        overwrite=overwrite, attributes=attributes,
                                        missing_attributes=missing_attributes,
                                        totals=extras, events=events, **event_options,
                                        **log_options, **csv_options)
            with extras.written(stats.pop("totals", None), overwrite, []) as artifact:
                run_id = _log_run(mlflow, experiment, model_uri, info, version, stats, as_of,
                                  output, time.perf_counter() - started, engine, run_params,
                                  artifact, run_tags)
            return ScoringResult(output, int(stats["customers_scored"]),
                                 int(stats.get("customers_excluded", 0)), version, run_id,
                                 time.perf_counter() - started, stats, params["horizon"],
                                 time_unit, extras.totals_file)
        summary, customers, chunks = input_chunks(model, transactions, as_of, time_unit, engine,
                                                  int(chunk_rows), memory_limit, log_options,
                                                  csv_options, attributes, events, event_options)
        excluded = summary.get("customers_excluded", 0)
        params.update(job_params(source, summary, customer_col))
        join = attribute_join(model, attributes, missing_attributes, transactions,
                              customer_col, csv_options, extras.group_columns)
        if join is not None:
            chunks = join.chunks(chunks)
        chunks = extras.tap(model, chunks, params["horizon"], time_unit)
        inputs = [t for t in (transactions, covariates) if isinstance(t, (str, Path))]
        if isinstance(attributes, (str, Path)) and join is not None:
            inputs.append(attributes)
        with atomic_output(output, overwrite=overwrite, inputs=inputs) as tmp:
            with progress_bar(customers, "scoring", progress, unit="customer") as bar:
                # the chunks carry no unit (a DuckDB batch, an attribute join): it is stated
                counts = _write_scores(model, chunks, {**params, "time_unit": time_unit}, tmp,
                                       output.suffix.lower() == ".csv", bar, record)
            if join is not None:
                counts["customers_without_attributes"] = float(join.missing)
            stats = {**counts, "customers_excluded": float(excluded),
                     **past_the_log_metrics(summary, time_unit), **_score_stats(tmp, output)}
            # logged before the renames: a store that fails here leaves the old outputs in place
            with extras.written(extras.totals_table(), overwrite, inputs) as artifact:
                run_id = _log_run(mlflow, experiment, model_uri, info, version, stats, as_of,
                                  output, time.perf_counter() - started, engine, run_params,
                                  artifact, run_tags)
    return ScoringResult(output, int(counts["customers_scored"]), int(excluded), version, run_id,
                         time.perf_counter() - started, stats, params["horizon"], time_unit,
                         extras.totals_file)


@contextlib.contextmanager
def _pickle_setting(allow_pickle: bool):
    """MLFLOW_ALLOW_PICKLE_DESERIALIZATION=false for the job (unless allowed), restored after."""
    before = os.environ.get("MLFLOW_ALLOW_PICKLE_DESERIALIZATION")
    if not allow_pickle:
        os.environ["MLFLOW_ALLOW_PICKLE_DESERIALIZATION"] = "false"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", None)
        else:
            os.environ["MLFLOW_ALLOW_PICKLE_DESERIALIZATION"] = before


def _model_time_unit(model_uri: str, logged: str | None, model) -> str:
    """The registered model's unit: logged with it, else in its transaction model's JSON (models
    logged before the unit was logged); never assumed."""
    unit = logged or getattr(model.transaction, "time_unit_", None)
    if unit is None:
        raise ClvlabError(f"{model_uri} records no time unit, so its scores would be in an "
                          "unknown unit; register it again with a model fitted on a table that "
                          "records its unit")
    return unit


def _amount_option(model, options: dict) -> dict:
    """A model with a spend model, or a churn adjuster trained on spend features, needs the
    log's amounts; one without either ignores them."""
    from clvlab.churn.features import SPEND_FEATURES

    adjuster = model.adjuster
    spend_features = adjuster is not None and bool(
        set(adjuster.feature_names_in_) & set(SPEND_FEATURES))
    if model.spend is None and not spend_features:
        return {**options, "amount_col": None}
    if not options.get("amount_col"):
        needs = "a spend model, which values purchases" if model.spend is not None else \
            "a churn adjuster trained on order values"
        raise ClvlabError(f"the model has {needs}: give the log's amount column "
                          "(amount_col=..., --amount-col)")
    return options


def _write_scores(model, chunks, params, path: str, csv: bool, bar,
                  record: dict[str, Any] | None = None) -> dict[str, float]:
    """Score each chunk and append it to ``path``; returns the counts. A Parquet file records
    ``record`` under ``SCORING_METADATA_KEY``."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    parquet, scored, no_repeats, unvalued = None, 0, 0, 0
    try:
        for inputs in chunks:
            scores = model.predict(inputs, params=params)
            unvalued += scores.attrs["clvlab"]["customers_unvalued"]
            values = scores.to_numpy(np.float64)
            bad = ~np.isfinite(values)
            if bad.any():
                row = int(np.flatnonzero(bad.any(axis=1))[0])
                raise ClvlabError(f"the model returned a non-finite score for customer "
                                  f"{scores.index[row]!r}; nothing was written")
            if csv:
                scores.to_csv(path, mode="a", header=scored == 0)
            else:
                # the customer id a first column, as every table clvlab writes has it
                table = pa.Table.from_pandas(scores.reset_index(), preserve_index=False)
                if record is not None:
                    table = table.replace_schema_metadata(
                        {**(table.schema.metadata or {}),
                         SCORING_METADATA_KEY.encode(): json.dumps(record).encode()})
                parquet = parquet or pq.ParquetWriter(path, table.schema)
                parquet.write_table(table)
            scored += len(scores)
            bar.update(len(scores))
            no_repeats += int((inputs["frequency"] == 0).sum())
    finally:
        if parquet is not None:
            parquet.close()
    if scored == 0:
        raise ClvlabError("no customers to score (every customer was left out?); nothing was written")
    return {"customers_scored": float(scored), "customers_without_repeats": float(no_repeats),
            "customers_unvalued": float(unvalued)}


def _score_stats(path: str, output: Path) -> dict[str, float]:
    """Mean, sum and quantiles of every score, read back from the written file by DuckDB (so the
    figures describe what was written, without holding the scores in memory)."""
    import duckdb

    from clvlab.models.customer_scores import SPEND_OUTPUTS, TRANSACTION_OUTPUTS

    quoted = str(path).replace("'", "''")
    source = (f"read_csv('{quoted}')" if output.suffix.lower() == ".csv"
              else f"read_parquet('{quoted}')")
    quantiles = "[" + ", ".join(str(q) for q in QUANTILES) + "]"
    with duckdb.connect() as con:
        written = [d[0] for d in con.execute(f"SELECT * FROM {source} LIMIT 0").description]
        # no spend model: no spend columns
        columns = [c for c in TRANSACTION_OUTPUTS + SPEND_OUTPUTS if c in written]
        expressions = [f"avg({c}), sum({c}), quantile_cont({c}, {quantiles})" for c in columns]
        row = con.execute(f"SELECT {', '.join(expressions)} FROM {source}").fetchone()
    stats = {}
    for i, column in enumerate(columns):
        mean, total, qs = row[3 * i:3 * i + 3]
        stats[f"{column}.mean"] = float(mean)
        if column != "expected_spend_per_purchase":  # a sum of per-purchase values means nothing
            stats[f"{column}.sum"] = float(total)
        stats.update({f"{column}.p{int(q * 100)}": float(v) for q, v in zip(QUANTILES, qs)})
    return stats


def _model_info(mlflow, model_uri: str):
    try:
        return mlflow.models.get_model_info(model_uri)
    except (mlflow.exceptions.MlflowException, OSError, ValueError) as exc:
        # a missing model or alias, or a store that does not answer: MLflow's message says which
        hint = ""
        if str(model_uri).endswith(".json") and Path(model_uri).is_file():
            hint = ("; this is a model file (clvlab fit's JSON), and the scoring job scores a "
                    "logged or registered CLV model (models:/NAME@ALIAS, runs:/RUN_ID/clv-model): "
                    "score the file with `clvlab predict MODEL.json TABLE`, or log and register "
                    "it first (`clvlab register MODEL.json --name NAME`)")
        raise ClvlabError(f"cannot load the model {model_uri}: {exc}{hint}") from None


def _log_run(mlflow, experiment, model_uri, info, version, stats, as_of, output, seconds,
             engine, params=None, artifact=None, tags=None) -> str:
    from clvlab.ops.tracking import tracking_errors

    undone = "the scores were not written and the previous output is unchanged"
    with tracking_errors("logging the scoring run", undone):
        mlflow.set_experiment(experiment)
        run = mlflow.start_run(run_name=f"score {pd.Timestamp(as_of).date()}")
        try:
            mlflow.set_tags({"clvlab.kind": "scoring", "model_uri": model_uri, "engine": engine,
                             "model_id": str(getattr(info, "model_id", "")),
                             "model_version": version, "as_of": str(as_of), "output": str(output),
                             **(tags or {})})
            mlflow.log_metrics({**stats, "seconds": seconds})
            if params:  # the distribution options and the draws behind them
                mlflow.log_params(params)
            if artifact is not None:  # the totals table
                mlflow.log_artifact(str(artifact), artifact_path="totals")
        except BaseException:
            with contextlib.suppress(Exception):
                mlflow.end_run("FAILED")
            raise
        mlflow.end_run()
        return run.info.run_id


def _registered_version(mlflow, model_uri: str) -> str:
    """The version number behind ``models:/name@alias`` or ``models:/name/3``; "" otherwise."""
    if not model_uri.startswith("models:/"):
        return ""
    path = model_uri[len("models:/"):]
    client = mlflow.MlflowClient()
    try:
        if "@" in path:
            name, alias = path.split("@", 1)
            return str(client.get_model_version_by_alias(name, alias).version)
        name, _, version = path.partition("/")
        return version if version.isdigit() else ""
    except mlflow.exceptions.MlflowException:
        return ""
