"""The batch scoring job: a registered CLV model scores every customer of a log as of a date.

``score(model_uri, transactions, as_of, output)`` builds the RFM summary as of the date (DuckDB
for files, so the log is never loaded into memory; pandas for a DataFrame), loads the model
with pickle deserialisation disabled, scores the customers in chunks, writes the scores
atomically (a temporary file beside the output, then a rename: a failure leaves no partial
file and the previous one intact) and logs a scoring run: row counts, the distribution of the
scores and the model version.
"""

from __future__ import annotations

import os
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ._atomic import atomic_output
from .errors import ClvlabError

__all__ = ["score"]

CHUNK_ROWS = 500_000


def score(model_uri: str, transactions: Any, as_of: Any, output: str | Path, *,
          customer_col: str = "customer_id", date_col: str = "date",
          amount_col: str | None = "amount", date_format: str | None = None,
          timezone: str = "UTC", horizon: float = 52.0, discount_rate: float = 0.0,
          margin: float = 1.0, overwrite: bool = False, experiment: str = "clvlab-scoring",
          allow_pickle: bool = False, engine: str = "duckdb", spark: Any = None) -> pd.DataFrame | None:
    """Score every customer seen up to ``as_of`` and write ``output`` (.parquet or .csv).

    ``model_uri`` is an MLflow model URI such as ``models:/cdnow-clv@champion``. The RFM is
    built in the model's own time unit (recorded when it was logged); ``horizon`` is in it.
    Returns the scores (indexed by customer id) after the file is in place.

    ``engine="spark"`` runs the job on Spark (``spark``: a session, else a local one): the RFM
    and the scores are computed there, the output is a Parquet folder, and None is returned.
    """
    from .rfm import rfm_summary
    from .tracking import connect

    output = Path(output)
    if engine != "spark" and output.suffix.lower() not in (".parquet", ".pq", ".csv"):
        raise ClvlabError(f"output {output} must end in .parquet or .csv")
    if output.exists() and not overwrite:
        raise ClvlabError(f"output {output} exists; pass overwrite=True (--overwrite) to replace it")
    if not allow_pickle:
        os.environ["MLFLOW_ALLOW_PICKLE_DESERIALIZATION"] = "false"
    mlflow = connect()
    started = time.perf_counter()
    info = _model_info(mlflow, model_uri)
    time_unit = (info.metadata or {}).get("time_unit") or "W"
    params = {"horizon": float(horizon), "discount_rate": float(discount_rate),
              "margin": float(margin)}
    if engine == "spark":
        from . import spark as clv_spark

        model_dir = mlflow.artifacts.download_artifacts(model_uri)
        stats = clv_spark.score_job(spark or clv_spark.local_session(),
                                    str(Path(model_dir) / "artifacts"), transactions, as_of,
                                    str(output), params=params, time_unit=time_unit,
                                    customer_col=customer_col, date_col=date_col,
                                    amount_col=amount_col, date_format=date_format,
                                    timezone=timezone, overwrite=overwrite)
        _log_run(mlflow, experiment, model_uri, info, stats, as_of, output,
                 time.perf_counter() - started, engine)
        return None
    if engine not in ("duckdb", "pandas"):
        raise ClvlabError(f"engine must be 'duckdb', 'pandas' or 'spark', got {engine!r}")
    rfm = rfm_summary(transactions, customer_col=customer_col, date_col=date_col,
                      amount_col=amount_col, time_unit=time_unit, observation_end=as_of,
                      date_format=date_format, timezone=timezone,
                      engine="pandas" if engine == "pandas" else "auto")
    if "monetary_value" not in rfm:
        rfm["monetary_value"] = 0.0
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*type hints.*")
        model = mlflow.pyfunc.load_model(model_uri)
    inputs = rfm[["frequency", "recency", "T", "monetary_value"]].astype(np.float64)
    wanted = info.signature.inputs.input_names() if info.signature is not None else []
    if set(wanted) - set(inputs.columns):  # a churn adjuster: its features, as of the date
        from .churn import churn_training_data

        features = churn_training_data(transactions, as_of, customer_col=customer_col,
                                       date_col=date_col, amount_col=amount_col,
                                       time_unit=time_unit, date_format=date_format,
                                       timezone=timezone)
        missing = [c for c in wanted if c not in features.columns]
        if missing:
            raise ClvlabError(f"the model needs the input columns {missing}, which the scoring "
                              "job cannot build from a transaction log (customer attributes?)")
        inputs = features[wanted].astype(np.float64)
    parts = [model.predict(inputs.iloc[start:start + CHUNK_ROWS], params=params)
             for start in range(0, len(inputs), CHUNK_ROWS)]
    scores = pd.concat(parts)
    bad = ~np.isfinite(scores.to_numpy(np.float64))
    if bad.any():
        row = int(np.flatnonzero(bad.any(axis=1))[0])
        raise ClvlabError(f"the model returned a non-finite score for customer "
                          f"{scores.index[row]!r}; nothing was written")
    with atomic_output(output, overwrite=overwrite,
                       inputs=[transactions] if isinstance(transactions, (str, Path)) else ()) as tmp:
        if output.suffix.lower() == ".csv":
            scores.to_csv(tmp)
        else:
            scores.to_parquet(tmp)
    stats = {"customers_scored": float(len(scores)),
             "customers_without_repeats": float((rfm["frequency"] == 0).sum())}
    for column in scores.columns:
        values = scores[column].to_numpy(np.float64)
        stats.update({f"{column}.mean": float(values.mean()), f"{column}.sum": float(values.sum())})
        for q in (0.1, 0.5, 0.9, 0.99):
            stats[f"{column}.p{int(q * 100)}"] = float(np.quantile(values, q))
    _log_run(mlflow, experiment, model_uri, info, stats, as_of, output,
             time.perf_counter() - started, engine)
    return scores


def _model_info(mlflow, model_uri: str):
    try:
        return mlflow.models.get_model_info(model_uri)
    except Exception as exc:  # MLflow raises several types for a missing model or alias
        raise ClvlabError(f"cannot load the model {model_uri}: {exc}") from None


def _log_run(mlflow, experiment, model_uri, info, stats, as_of, output, seconds, engine):
    mlflow.set_experiment(experiment)
    version = _registered_version(mlflow, model_uri)
    with mlflow.start_run(run_name=f"score {pd.Timestamp(as_of).date()}"):
        mlflow.set_tags({"clvlab.kind": "scoring", "model_uri": model_uri, "engine": engine,
                         "model_id": str(getattr(info, "model_id", "")),
                         "model_version": version, "as_of": str(as_of), "output": str(output)})
        mlflow.log_metrics({**stats, "seconds": seconds})


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
