"""The packaged CLV model: an MLflow pyfunc whose files are clvlab's JSON model files.

It is logged with a *loader module* (MLflow's custom-flavour workflow): the model's MLmodel file
names ``clvlab.serving``, and MLflow calls this installed module's ``_load_pyfunc`` on the
model's data folder, which holds only the transaction model, the optional spend model and the
optional churn adjuster (JSON, plus the adjuster's skops file, loaded with an explicit list of
trusted types). No code travels with the model: nothing is pickled and no code file is logged,
so loading a model never runs code from its artifact (:func:`check_model_files` refuses a model
directory that holds anything else). Deployment is by alias: ``@challenger`` when registered,
``@champion`` when :func:`promote` moves it.

Models with covariates (static customer attributes such as channel or gender) read those
columns beside the RFM columns: the pyfunc's input signature lists them (text as string, numbers
as double, booleans as boolean), and each customer is scored by the plain models at their own
parameters (:func:`score_frame`), as the in-memory models score them.
"""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from clvlab.core.errors import ClvlabError

__all__ = ["CLVModel", "OUTPUT_COLUMNS", "log_clv_model", "promote", "resolve_version",
           "check_model_files", "download_clv_model", "load_clv_model", "covariate_columns",
           "score_frame"]

# The module path written into every MLmodel file as the pyfunc's loader: the stable public path
# (clvlab/_old_paths.py maps it to this module), so models logged before the layer folders and
# after them load alike.
LOADER_MODULE = "clvlab.serving"

RFM_COLUMNS = ["frequency", "recency", "T", "monetary_value"]
#: every score column; a model without a spend model has no expected_spend and clv
#: (see clvlab.models.customer_scores.output_columns)
OUTPUT_COLUMNS = ["p_alive", "probability_of_purchase", "expected_purchases", "expected_spend", "clv"]
#: the pyfunc's parameters; the horizon has no default (it is in the model's time unit)
DEFAULT_PARAMS = {"horizon": None, "discount_rate": 0.0, "margin": 1.0}
DATA_FOLDER = "clv_model"  # the model's data folder (MLmodel's pyfunc "data": data/clv_model)
MODEL_FILES = {"transaction_model.json", "spend_model.json", "churn_adjuster.json",
               "churn_adjuster.classifier.skops"}
ENVIRONMENT_FILES = {"MLmodel", "conda.yaml", "python_env.yaml", "requirements.txt",
                     "registered_model_meta"}


class CLVModel:
    """predict(RFM rows, params={horizon, discount_rate, margin}) -> p_alive, probability of
    purchase, expected purchases and, with a spend model, expected spend and CLV over the
    horizon (see :mod:`clvlab.models.customer_scores`)."""

    def __init__(self, transaction, spend=None, adjuster=None):
        self.transaction = transaction
        self.spend = spend
        self.adjuster = adjuster

    @classmethod
    def load(cls, folder: str | Path) -> "CLVModel":
        """Read the model's data folder (JSON and skops files only)."""
        from clvlab.churn import ChurnAdjuster
        from clvlab.models import load_model

        folder = Path(folder)
        if not (folder / "transaction_model.json").exists():
            raise ClvlabError(f"{folder} is not a clvlab CLV model folder: transaction_model.json "
                              "is missing")
        spend, adjuster = folder / "spend_model.json", folder / "churn_adjuster.json"
        return cls(load_model(folder / "transaction_model.json"),
                   load_model(spend) if spend.exists() else None,
                   ChurnAdjuster.load(adjuster) if adjuster.exists() else None)

    @property
    def covariate_columns(self) -> list[str]:
        """The customer-attribute columns the models read (none for models without covariates)."""
        return covariate_columns(self.transaction, self.spend)

    def predict(self, model_input, params=None) -> pd.DataFrame:
        return score_frame(self.transaction, self.spend, self.adjuster, model_input, params)


def _load_pyfunc(data_path: str) -> CLVModel:
    """MLflow's entry point for the loader-module flavour (``mlflow.pyfunc.load_model``)."""
    return CLVModel.load(data_path)


def check_model_files(model_dir: str | Path) -> Path:
    """Refuse a downloaded MLflow model directory that could run code when loaded: its MLmodel
    must name ``clvlab.serving`` as the pyfunc loader, carry no code paths, and the directory may
    hold only clvlab's model files and MLflow's environment descriptions. Returns the data
    folder. (A model logged by an older clvlab as a model from code is refused here too.)"""
    import yaml

    model_dir = Path(model_dir)
    try:
        meta = yaml.safe_load((model_dir / "MLmodel").read_text())
    except FileNotFoundError:
        raise ClvlabError(f"{model_dir} is not an MLflow model: MLmodel is missing") from None
    except yaml.YAMLError as exc:
        raise ClvlabError(f"{model_dir / 'MLmodel'} is not readable YAML: {exc}") from None
    pyfunc = ((meta or {}).get("flavors") or {}).get("python_function") or {}
    if pyfunc.get("loader_module") != LOADER_MODULE or pyfunc.get("code") or "python_model" in pyfunc:
        raise ClvlabError(f"{model_dir / 'MLmodel'}: not a clvlab CLV model (its pyfunc loader is "
                          f"{pyfunc.get('loader_module') or pyfunc.get('python_model')!r} with "
                          f"code {pyfunc.get('code')!r}); only models logged by "
                          "clvlab.serving.log_clv_model are loaded, so that no code runs from the file")
    data = model_dir / str(pyfunc.get("data", ""))
    for path in model_dir.rglob("*"):
        if path.is_dir():
            continue
        relative = path.relative_to(model_dir)
        allowed = (relative.parent == Path(".") and path.name in ENVIRONMENT_FILES) or \
                  (path.parent == data and path.name in MODEL_FILES) or \
                  (relative.parent == Path(".") and path.suffix == ".json")  # MLflow's metadata
        if not allowed:
            raise ClvlabError(f"{model_dir}: unexpected file {relative} in a clvlab CLV model "
                              "(only the JSON models, the adjuster's skops file and MLflow's "
                              "descriptions belong there); refusing to load it")
    return data


def download_clv_model(model_uri: str) -> Path:
    """Download a registered CLV model and check its files; returns its data folder."""
    from clvlab.ops.tracking import connect

    mlflow = connect()
    try:
        local = mlflow.artifacts.download_artifacts(model_uri)
    except Exception as exc:  # MLflow raises several types for a missing model or alias
        raise ClvlabError(f"cannot download the model {model_uri}: {exc}") from None
    return check_model_files(local)


def load_clv_model(model_uri: str) -> CLVModel:
    """Download, check and load a registered CLV model (the scoring job's path: the same object
    MLflow's pyfunc would wrap, without its per-call schema checks)."""
    return CLVModel.load(download_clv_model(model_uri))


def covariate_columns(*models) -> list[str]:
    """The attribute columns that the fitted ``models`` (None allowed) read as covariates, in
    the order the models name them, each once."""
    columns: list[str] = []
    for model in models:
        design = getattr(model, "covariates_", None)
        if design is not None:
            columns += [c for c in design.encoder.columns if c not in columns]
    return columns


def score_frame(transaction, spend, adjuster, frame: pd.DataFrame, params: dict | None) -> pd.DataFrame:
    """The pyfunc's predictions, callable without MLflow: :func:`clvlab.models.customer_scores.score_customers`
    with the pyfunc's ``params`` ({horizon, discount_rate, margin}; horizon has no default).

    With covariates, ``frame`` also holds the attribute columns the models read
    (:func:`covariate_columns`): each customer is scored at their own parameters, as the
    in-memory models score them."""
    from clvlab.models.customer_scores import score_customers

    settings = {**DEFAULT_PARAMS, **{k: v for k, v in (params or {}).items()
                                     if k in DEFAULT_PARAMS and v is not None}}
    unknown = sorted(set(params or {}) - set(DEFAULT_PARAMS))
    if unknown:
        raise ClvlabError(f"unknown scoring parameter(s) {unknown}; expected {sorted(DEFAULT_PARAMS)}")
    missing = [c for c in covariate_columns(transaction, spend) if c not in frame.columns]
    if missing:
        raise ClvlabError(
            f"the model reads the customer attribute column(s) {missing} (its covariates), which "
            f"the input lacks (it has {list(frame.columns)}); join each customer's attributes to "
            "the RFM rows (the scoring job: --attributes FILE, or those columns in the log)")
    return score_customers(transaction, spend, adjuster, frame, **settings)


def _signature(transaction, spend, adjuster, attributes: pd.DataFrame | None = None):
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, ParamSchema, ParamSpec, Schema

    from clvlab.models.customer_scores import RFM_INPUTS, output_columns

    columns = list(RFM_INPUTS) + (["monetary_value"] if spend is not None else [])
    if adjuster is not None:
        columns += [c for c in adjuster.feature_names_in_ if c not in columns]
    inputs = [ColSpec("double", c) for c in columns]
    types = covariate_types(transaction, spend, attributes)
    inputs += [ColSpec(kind, c) for c, kind in types.items() if c not in columns]
    return ModelSignature(
        inputs=Schema(inputs),
        outputs=Schema([ColSpec("double", c) for c in output_columns(spend)]),
        params=ParamSchema([ParamSpec(k, "double", v) for k, v in DEFAULT_PARAMS.items()]))


def covariate_types(transaction, spend, attributes: pd.DataFrame | None = None) -> dict[str, str]:
    """The signature's type of each covariate column: "string" for the columns the models
    encode as text, "boolean" for the columns that are booleans in ``attributes`` (the table the
    models were fitted on, or any with those columns; a model file records numbers and booleans
    alike as numbers), "double" for the other numbers."""
    types = {}
    for model in (transaction, spend):
        design = getattr(model, "covariates_", None)
        for column in design.encoder.columns if design is not None else []:
            if column in design.encoder.levels:
                types[column] = "string"
            elif attributes is not None and column in attributes.columns and \
                    pd.api.types.is_bool_dtype(attributes[column]):
                types[column] = "boolean"
            else:
                types.setdefault(column, "double")
    return types


def log_clv_model(transaction_model, spend_model=None, churn_adjuster=None, *,
                  registered_model_name: str | None = None, name: str = "clv_model",
                  alias: str | None = "challenger", tags: dict[str, str] | None = None,
                  attributes: pd.DataFrame | None = None):
    """Log the CLV model into the active run (one is started if none is) and, with
    ``registered_model_name``, register it and point ``alias`` at the new version.
    Returns MLflow's ModelInfo (``registered_model_version`` set when registered).

    Models with covariates add their attribute columns to the input signature. ``attributes``
    (optional): a table holding those columns, e.g. the one the models were fitted on; a
    column that is boolean there is a boolean input (else booleans must be sent as 0/1
    numbers, as the model files cannot tell a boolean from a number). Nothing of it is stored.

    The model's files are the JSON models (population-level parameters only) and the churn
    adjuster's skops file; MLflow loads them through this module (no code is logged)."""
    from clvlab.core.version import __version__
    from clvlab.ops.tracking import connect, tracking_errors

    if getattr(transaction_model, "time_unit_", None) is None:
        raise ClvlabError(f"the {type(transaction_model).__name__} has no time unit, so its "
                          "registered scores would be in whatever unit a table happens to be in; "
                          "fit it on a table that records its unit (or fit(..., time_unit=...))")
    covariates = covariate_columns(transaction_model, spend_model)
    mlflow = connect()
    with tempfile.TemporaryDirectory() as folder:
        data = Path(folder) / DATA_FOLDER
        data.mkdir()
        transaction_model.save(data / "transaction_model.json")
        if spend_model is not None:
            spend_model.save(data / "spend_model.json")
        if churn_adjuster is not None:
            churn_adjuster.save(data / "churn_adjuster.json")
        with tracking_errors("logging the CLV model"):
            active = mlflow.active_run()
            run = active or mlflow.start_run(run_name="clv-model")
            try:
                with warnings.catch_warnings():
                    warnings.filterwarnings("ignore", message=".*input example.*")
                    info = mlflow.pyfunc.log_model(
                        name=name, loader_module=LOADER_MODULE, data_path=str(data),
                        signature=_signature(transaction_model, spend_model, churn_adjuster,
                                              attributes),
                        pip_requirements=[f"clvlab=={__version__}"],
                        registered_model_name=registered_model_name,
                        metadata={"time_unit": getattr(transaction_model, "time_unit_", None),
                                  "transaction_model": type(transaction_model).__name__,
                                  **({"covariates": covariates} if covariates else {}),
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
    from clvlab.ops.tracking import connect

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
    from clvlab.ops.tracking import connect

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
