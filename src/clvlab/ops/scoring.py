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
   only then renames the file into place. A failure anywhere, a tracking server that dies, or a
   SIGKILL leaves the previous output intact and no partial one; the job fails with one message.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pandas as pd

from clvlab.core.atomic import atomic_output
from clvlab.core.progress import progress_bar
from clvlab.core.errors import ClvlabError
from clvlab.core.timeunits import UNIT_NAMES
from clvlab.data.rfm_rules import past_the_log_metrics

__all__ = ["score", "ScoringResult"]

CHUNK_ROWS = 200_000
QUANTILES = (0.1, 0.5, 0.9, 0.99)


@dataclass
class ScoringResult:
    """What a scoring job did: where the scores are and the figures it logged to MLflow."""

    output: Path
    customers_scored: int
    customers_excluded: int
    model_version: str
    run_id: str | None
    seconds: float
    stats: dict[str, float] = field(repr=False, default_factory=dict)
    horizon: float | None = None      # the scoring window, in time_unit
    time_unit: str | None = None

    @property
    def horizon_text(self) -> str:
        """The horizon with its unit, e.g. "52 W (weeks)": every printout of scores says it."""
        if self.horizon is None:
            return "unknown"
        return f"{self.horizon:g} {self.time_unit} ({UNIT_NAMES.get(self.time_unit, '?')})"

    def __repr__(self) -> str:
        left_out = f", {self.customers_excluded:,} left out for consent" if self.customers_excluded else ""
        run = f", MLflow run {self.run_id}" if self.run_id else ""
        return (f"<ScoringResult: {self.customers_scored:,} customers scored over a horizon of "
                f"{self.horizon_text}{left_out} by model version {self.model_version} in "
                f"{self.seconds:.1f} s -> {self.output}{run}>")

    def read(self) -> pd.DataFrame:
        """The scores, indexed by customer id (loads the whole file)."""
        if self.output.suffix.lower() == ".csv":
            return pd.read_csv(self.output, index_col=0)
        table = pd.read_parquet(self.output)
        return table.set_index(table.columns[0])


def score(model_uri: str, transactions: Any, as_of: Any, output: str | Path, *,
          customer_col: str = "customer_id", date_col: str = "date",
          amount_col: str | None = "amount", date_format: str | None = None,
          timezone: str = "UTC", horizon: float | None = None, discount_rate: float = 0.0,
          margin: float = 1.0, overwrite: bool = False, experiment: str = "clvlab-scoring",
          consent_col: str | None = None, withdrawn: Any = None,
          delimiter: str | None = None, decimal: str = ".", chunk_rows: int = CHUNK_ROWS, memory_limit: str = "2GB",
          allow_pickle: bool = False, engine: str = "duckdb", spark: Any = None,
          progress: bool | None = None, attributes: Any = None,
          missing_attributes: str = "raise") -> ScoringResult:
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
    with _pickle_setting(allow_pickle):
        mlflow = connect()
        with tracking_errors("reading the model", "nothing was written"):
            info = _model_info(mlflow, model_uri)
            version = _registered_version(mlflow, model_uri)
        model_dir = download_clv_model(model_uri)  # once: the Spark job reads the same files
        model = CLVModel.load(model_dir)
        time_unit = _model_time_unit(model_uri, (info.metadata or {}).get("time_unit"), model)
        log_options = _amount_option(model, log_options)
        if engine == "spark":
            from clvlab.ops import spark as clv_spark

            stats = clv_spark.score_job(spark or clv_spark.local_session(),
                                        str(model_dir), transactions, as_of,
                                        str(output), params=params, time_unit=time_unit,
                                        overwrite=overwrite, attributes=attributes,
                                        missing_attributes=missing_attributes,
                                        **log_options, **csv_options)
            run_id = _log_run(mlflow, experiment, model_uri, info, version, stats, as_of, output,
                              time.perf_counter() - started, engine)
            return ScoringResult(output, int(stats["customers_scored"]),
                                 int(stats.get("customers_excluded", 0)), version, run_id,
                                 time.perf_counter() - started, stats, params["horizon"],
                                 time_unit)
        summary, customers, chunks = _input_chunks(model, transactions, as_of, time_unit, engine,
                                                   int(chunk_rows), memory_limit, log_options,
                                                   csv_options, attributes)
        excluded = summary.get("customers_excluded", 0)
        join = _attribute_join(model, attributes, missing_attributes, transactions,
                               customer_col, csv_options)
        if join is not None:
            chunks = join.chunks(chunks)
        inputs = [transactions] if isinstance(transactions, (str, Path)) else []
        if isinstance(attributes, (str, Path)) and join is not None:
            inputs.append(attributes)
        with atomic_output(output, overwrite=overwrite, inputs=inputs) as tmp:
            with progress_bar(customers, "scoring", progress, unit="customer") as bar:
                # the chunks carry no unit (a DuckDB batch, an attribute join): it is stated
                counts = _write_scores(model, chunks, {**params, "time_unit": time_unit}, tmp,
                                       output.suffix.lower() == ".csv", bar)
            if join is not None:
                counts["customers_without_attributes"] = float(join.missing)
            stats = {**counts, "customers_excluded": float(excluded),
                     **past_the_log_metrics(summary, time_unit), **_score_stats(tmp, output)}
            # logged before the rename: a store that fails here leaves the old output in place
            run_id = _log_run(mlflow, experiment, model_uri, info, version, stats, as_of, output,
                              time.perf_counter() - started, engine)
    return ScoringResult(output, int(counts["customers_scored"]), int(excluded), version, run_id,
                         time.perf_counter() - started, stats, params["horizon"], time_unit)


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


def _input_chunks(model, transactions, as_of, time_unit, engine, chunk_rows, memory_limit,
                  options, csv_options, attributes=None) -> tuple[dict, int, Iterator[pd.DataFrame]]:
    """(the summary's ``attrs["clvlab"]``: customers excluded for consent, the window..., the
    customers to score, an iterator of model inputs indexed by customer id)."""
    from clvlab.data.rfm import resolve_engine, rfm_summary
    from clvlab.data.rfm_rules import make_settings

    if model.adjuster is not None:  # behaviour features need the log in pandas
        from clvlab.churn import churn_training_data

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
                                       customer_attributes=joined, **{
            k: v for k, v in options.items() if k not in ("consent_col", "withdrawn")})
        money = ["monetary_value"] if model.spend is not None else []
        from clvlab.churn.features import BEHAVIOUR_FEATURES
        wanted = list(dict.fromkeys(["frequency", "recency", "T", *money,
                                     *model.adjuster.feature_names_in_]))
        missing = [c for c in wanted if c not in features.columns]
        if missing:
            hint = ("give the log's amount column (amount_col=..., --amount-col)"
                    if set(missing) <= set(BEHAVIOUR_FEATURES) else
                    "give the customers' attributes (attributes=..., --attributes FILE)")
            raise ClvlabError(f"the model needs the input columns {missing}, which the scoring "
                              f"job cannot build from this log: {hint}")
        inputs = features[wanted].astype(np.float64)
        summary = {**(features.attrs.get("clvlab") or {}),
                   "customers_excluded": frame.attrs.get("customers_excluded", 0)}
        return summary, len(inputs), _slices(inputs, chunk_rows)
    resolved = "pandas" if engine == "pandas" else resolve_engine("auto", transactions)
    if resolved == "duckdb":
        from clvlab.data import rfm_duckdb

        settings = make_settings(time_unit=time_unit, merge_period=None, **options, **csv_options)
        info, chunks = rfm_duckdb.iter_summary(transactions, settings, None, as_of, chunk_rows,
                                               rfm_duckdb.new_connection(memory_limit))
        return info, info["customers"], (_model_input(c) for c in chunks)
    rfm = rfm_summary(transactions, time_unit=time_unit, observation_end=as_of, engine="pandas",
                      **options, **csv_options)
    return rfm.attrs["clvlab"], len(rfm), _slices(_model_input(rfm), chunk_rows)



def _attribute_join(model, attributes, policy, transactions, customer_col, csv_options):
    """The join of the customers' attributes for a model with covariates; None without."""
    columns = model.covariate_columns
    if not columns:
        return None
    from clvlab.ops.scoring_attributes import AttributeJoin, attribute_source

    table, source = attribute_source(attributes, columns, customer_col=customer_col,
                                     transactions=transactions, csv_options=csv_options)
    return AttributeJoin(table, source, policy)


def _model_input(rfm: pd.DataFrame) -> pd.DataFrame:
    """The columns the scoring function reads; monetary_value only where the log had amounts
    (a spend model without it is an error there, never a spend of 0)."""
    columns = ["frequency", "recency", "T"] + (["monetary_value"] if "monetary_value" in rfm else [])
    return rfm[columns].astype(np.float64)


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


def _slices(frame: pd.DataFrame, rows: int) -> Iterator[pd.DataFrame]:
    for start in range(0, len(frame), rows):
        yield frame.iloc[start:start + rows]


def _write_scores(model, chunks, params, path: str, csv: bool, bar) -> dict[str, float]:
    """Score each chunk and append it to ``path``; returns the counts."""
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
        raise ClvlabError(f"cannot load the model {model_uri}: {exc}") from None


def _log_run(mlflow, experiment, model_uri, info, version, stats, as_of, output, seconds,
             engine) -> str:
    from clvlab.ops.tracking import tracking_errors

    undone = "the scores were not written and the previous output is unchanged"
    with tracking_errors("logging the scoring run", undone):
        mlflow.set_experiment(experiment)
        run = mlflow.start_run(run_name=f"score {pd.Timestamp(as_of).date()}")
        try:
            mlflow.set_tags({"clvlab.kind": "scoring", "model_uri": model_uri, "engine": engine,
                             "model_id": str(getattr(info, "model_id", "")),
                             "model_version": version, "as_of": str(as_of), "output": str(output)})
            mlflow.log_metrics({**stats, "seconds": seconds})
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
