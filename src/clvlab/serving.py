"""The packaged CLV model: an MLflow pyfunc whose artifacts are clvlab's JSON model files.

It is logged as a "model from code": the model's code file is the two-line
``clvlab/_mlflow_entry.py`` (it imports :class:`CLVModel` from the installed clvlab), and the
artifacts are the transaction model, the optional spend model and the optional churn adjuster
(JSON, plus the adjuster's skops file). Nothing is pickled; it loads and predicts with
MLFLOW_ALLOW_PICKLE_DESERIALIZATION=false. Deployment is by alias: ``@challenger`` when
registered, ``@champion`` when :func:`promote` moves it.
"""

from __future__ import annotations

import functools
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .errors import ClvlabError

__all__ = ["CLVModel", "OUTPUT_COLUMNS", "log_clv_model", "promote", "resolve_version"]

RFM_COLUMNS = ["frequency", "recency", "T", "monetary_value"]
OUTPUT_COLUMNS = ["p_alive", "probability_of_purchase", "expected_purchases", "expected_spend", "clv"]
DEFAULT_PARAMS = {"horizon": 52.0, "discount_rate": 0.0, "margin": 1.0}

@functools.lru_cache(maxsize=None)
def _clv_model_class():
    """The pyfunc class, built on first use so that importing clvlab does not import MLflow."""
    from mlflow.pyfunc import PythonModel

    # MLflow asks for type hints on predict when the class is created; the explicit signature
    # logged with the model is what validates inputs, so the hint is not wanted here
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*type hints.*")

        class CLVModel(PythonModel):
            """predict(RFM rows, params={horizon, discount_rate, margin}) -> p_alive,
            probability of purchase, expected purchases and spend, and CLV over the horizon."""

            def load_context(self, context) -> None:
                from .churn import ChurnAdjuster
                from .models import load_model

                artifacts = context.artifacts
                self.transaction = load_model(artifacts["transaction_model"])
                self.spend = (load_model(artifacts["spend_model"])
                              if "spend_model" in artifacts else None)
                self.adjuster = (ChurnAdjuster.load(artifacts["churn_adjuster"])
                                 if "churn_adjuster" in artifacts else None)

            def predict(self, context, model_input, params=None) -> pd.DataFrame:
                return score_frame(self.transaction, self.spend, self.adjuster, model_input, params)

    CLVModel.__module__ = __name__
    return CLVModel


def __getattr__(name: str):
    if name == "CLVModel":
        return _clv_model_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def score_frame(transaction, spend, adjuster, frame: pd.DataFrame, params: dict | None) -> pd.DataFrame:
    """The pyfunc's predictions, callable without MLflow (the scoring job's chunks use it)."""
    from .clv import customer_lifetime_value

    settings = {**DEFAULT_PARAMS, **{k: float(v) for k, v in (params or {}).items()
                                     if k in DEFAULT_PARAMS}}
    frame = pd.DataFrame(frame)
    rfm = frame[[c for c in RFM_COLUMNS if c in frame.columns]].astype(np.float64)
    rfm.attrs = {"clvlab": {"time_unit": getattr(transaction, "time_unit_", None)}}
    horizon = settings["horizon"]
    out = transaction.scores(rfm, horizon)
    if spend is not None:
        # customers whose repeat purchases were all free are valued at the population mean
        out["expected_spend"] = spend.expected_spend(rfm, unvalued="population")
        out["clv"] = customer_lifetime_value(transaction, spend, rfm, horizon,
                                             settings["discount_rate"], settings["margin"],
                                             unvalued="population")
    else:
        out["expected_spend"] = 0.0
        out["clv"] = 0.0
    if adjuster is not None:
        if not np.isclose(horizon, adjuster.horizon):
            raise ClvlabError(f"the churn adjuster was trained for a horizon of {adjuster.horizon:g}; "
                              f"score with horizon={adjuster.horizon:g}")
        features = frame[list(adjuster.feature_names_in_)]
        features.attrs = rfm.attrs
        adjusted = adjuster.adjusted_activity(features)
        factor = adjusted["adjustment_factor"].to_numpy()
        out["probability_of_purchase"] = adjusted["probability_of_purchase"].to_numpy()
        out["expected_purchases"] *= factor
        out["clv"] *= factor
    return out[OUTPUT_COLUMNS]


def _signature(adjuster):
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, ParamSchema, ParamSpec, Schema

    columns = list(RFM_COLUMNS)
    if adjuster is not None:
        columns += [c for c in adjuster.feature_names_in_ if c not in columns]
    return ModelSignature(
        inputs=Schema([ColSpec("double", c) for c in columns]),
        outputs=Schema([ColSpec("double", c) for c in OUTPUT_COLUMNS]),
        params=ParamSchema([ParamSpec(k, "double", v) for k, v in DEFAULT_PARAMS.items()]))


def log_clv_model(transaction_model, spend_model=None, churn_adjuster=None, *,
                  registered_model_name: str | None = None, name: str = "clv_model",
                  alias: str | None = "challenger", tags: dict[str, str] | None = None):
    """Log the CLV model into the active run (one is started if none is) and, with
    ``registered_model_name``, register it and point ``alias`` at the new version.
    Returns MLflow's ModelInfo (``registered_model_version`` set when registered)."""
    from . import __version__
    from .tracking import connect

    mlflow = connect()
    entry = Path(__file__).with_name("_mlflow_entry.py")
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        artifacts = {"transaction_model": str(folder / "transaction_model.json")}
        transaction_model.save(artifacts["transaction_model"])
        if spend_model is not None:
            artifacts["spend_model"] = str(folder / "spend_model.json")
            spend_model.save(artifacts["spend_model"])
        if churn_adjuster is not None:
            artifacts["churn_adjuster"] = str(folder / "churn_adjuster.json")
            churn_adjuster.save(artifacts["churn_adjuster"])
            artifacts["churn_adjuster_classifier"] = str(folder / "churn_adjuster.classifier.skops")
        active = mlflow.active_run()
        run = active or mlflow.start_run(run_name="clv-model")
        try:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=".*type hints.*")
                warnings.filterwarnings("ignore", message=".*input example.*")
                info = mlflow.pyfunc.log_model(
                    name=name, python_model=str(entry), artifacts=artifacts,
                    signature=_signature(churn_adjuster),
                    pip_requirements=[f"clvlab=={__version__}"],
                    registered_model_name=registered_model_name,
                    metadata={"time_unit": getattr(transaction_model, "time_unit_", None),
                              "transaction_model": type(transaction_model).__name__,
                              "clvlab_version": __version__})
            mlflow.set_tags({"clvlab.kind": "clv-model", **(tags or {})})
        finally:
            if active is None:
                mlflow.end_run()
    if registered_model_name and alias:
        mlflow.MlflowClient().set_registered_model_alias(
            registered_model_name, alias, info.registered_model_version)
    return info


def resolve_version(name: str, alias: str) -> str:
    """The version an alias points at, or a clear error."""
    from .tracking import connect

    mlflow = connect()
    try:
        return str(mlflow.MlflowClient().get_model_version_by_alias(name, alias).version)
    except mlflow.exceptions.MlflowException as exc:
        raise ClvlabError(f"registered model {name!r} has no alias {alias!r} ({exc.message})") from None


def promote(name: str, *, version: str | None = None, from_alias: str = "challenger",
            to_alias: str = "champion", backtest_run: str | None = None) -> str:
    """Point ``to_alias`` at ``version`` (default: the version ``from_alias`` points at).

    With ``backtest_run``, the run must be a clvlab backtest; its id is recorded on the model
    version (tag ``clvlab.promoted_on_backtest``) as the evidence for the promotion.
    Returns the promoted version."""
    from .tracking import connect

    mlflow = connect()
    client = mlflow.MlflowClient()
    version = str(version) if version is not None else resolve_version(name, from_alias)
    try:
        client.get_model_version(name, version)
    except mlflow.exceptions.MlflowException:
        raise ClvlabError(f"registered model {name!r} has no version {version}") from None
    if backtest_run is not None:
        try:
            kind = client.get_run(backtest_run).data.tags.get("clvlab.kind")
        except mlflow.exceptions.MlflowException:
            raise ClvlabError(f"run {backtest_run} does not exist") from None
        if kind != "backtest":
            raise ClvlabError(f"run {backtest_run} is not a clvlab backtest (kind {kind!r})")
        client.set_model_version_tag(name, version, "clvlab.promoted_on_backtest", backtest_run)
    client.set_registered_model_alias(name, to_alias, version)
    return version
