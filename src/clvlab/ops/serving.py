"""The packaged CLV model: an MLflow pyfunc whose files are clvlab's JSON model files.

It is logged with a *loader module* (MLflow's custom-flavour workflow): the model's MLmodel file
names ``clvlab.serving``, and MLflow calls this installed module's ``_load_pyfunc`` on the
model's data folder, which holds only the transaction model, the optional spend model and the
optional churn adjuster (JSON, the posterior of a Bayesian fit as netCDF, and the adjuster's
skops file, loaded with an explicit list of trusted types). No code travels with the model:
nothing is pickled and no code file is logged, so loading a model never runs code from its
artifact (:func:`check_model_files` refuses a model directory that holds anything else).
Deployment is by alias: ``@challenger`` when registered, ``@champion`` when :func:`promote`
moves it. What may be registered and what may support a promotion is
:mod:`clvlab.ops.registration`'s: each part of its kind, a converged fit (unless forced), a
backtest of the model's own candidate in its time unit.

The served model takes the tables clvlab writes and reads (``rfm_summary``, ``read_rfm``: counts
as int64, durations as int64 or float64): its numeric inputs accept any number type, and a value
that is not a number is an error that names the column. A pyfunc payload carries no time unit
(pandas' ``attrs`` do not travel), so the caller states it: ``params={"time_unit": "W", ...}``.

Models with covariates (static customer attributes such as channel or gender) read those
columns beside the RFM columns: the pyfunc's input signature lists them (text as string, numbers
as any number type, booleans as boolean: :mod:`clvlab.ops.signature`), and each customer is scored by the plain models at their own
parameters (:func:`score_frame`), as the in-memory models score them. A model fitted with
time-varying covariates reads them from a covariate panel named in ``params`` (and each row's
customer id): :mod:`clvlab.ops.scoring_time_varying`.
"""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path

import pandas as pd

from clvlab.core.errors import ClvlabError
from clvlab.models.customer_scores import SPEND_OUTPUTS, TRANSACTION_OUTPUTS
from clvlab.ops.scoring_intervals import (DISTRIBUTION_PARAMS, distribution_columns,
                                          distribution_settings, refuse_adjuster)
from clvlab.ops.scoring_time_varying import (PATH_PARAMS, check_panel_given, panel_source,
                                             path_metadata, refuse_along_paths, rows_with_paths,
                                             scores_along_paths, static_columns, with_path_params)
from clvlab.ops.signature import DEFAULT_PARAMS, as_numbers, numeric_inputs
from clvlab.ops.signature import covariate_types  # noqa: F401 (its home before issue 29)
from clvlab.ops.signature import signature as _signature
from clvlab.data.tables import accepts_tables

__all__ = ["CLVModel", "OUTPUT_COLUMNS", "log_clv_model", "promote", "resolve_version",
           "check_model_files", "download_clv_model", "load_clv_model", "covariate_columns",
           "score_frame"]

# The module path written into every MLmodel file as the pyfunc's loader: the stable public path
# (clvlab/_old_paths.py maps it to this module), so models logged before the layer folders and
# after them load alike.
LOADER_MODULE = "clvlab.serving"

RFM_COLUMNS = ["frequency", "recency", "T", "monetary_value"]
#: every score column; a model without a spend model has no spend columns
#: (clvlab.models.customer_scores.output_columns, the one list).
OUTPUT_COLUMNS = TRANSACTION_OUTPUTS + SPEND_OUTPUTS
DATA_FOLDER = "clv_model"  # the model's data folder (MLmodel's pyfunc "data": data/clv_model)
MODEL_FILES = {"transaction_model.json", "spend_model.json", "churn_adjuster.json",
               "churn_adjuster.classifier.skops",
               # a challenger in the adjuster's place (clvlab.churn.ChallengerAdjustment)
               "challenger.json", "challenger.activity.skops", "challenger.purchases.skops",
               "challenger.spend.skops",
               # the posterior of a Bayesian fit, named in its JSON (netCDF: data, no code)
               "transaction_model.posterior.nc", "spend_model.posterior.nc"}
POSTERIOR_FILES = {"transaction_model.json": "transaction_model.posterior.nc",
                   "spend_model.json": "spend_model.posterior.nc"}
ENVIRONMENT_FILES = {"MLmodel", "conda.yaml", "python_env.yaml", "requirements.txt",
                     "registered_model_meta"}


class CLVModel:
    """predict(RFM rows, params={horizon, discount_rate, margin}) -> p_alive, probability of
    purchase, expected purchases and, with a spend model, expected spend and CLV over the
    horizon (see :mod:`clvlab.models.customer_scores`).

    Parameters
    ----------
    transaction : BetaGeo, ModifiedBetaGeo or ParetoNBD
        The fitted transaction model.
    spend : GammaGamma or LogNormalSpend, optional
        The fitted spend model (None: no spend columns).
    adjuster : ChurnAdjuster or ChallengerAdjustment, optional
        A fitted churn adjuster or challenger (None: the transaction model's predictions).

    Raises
    ------
    ClvlabError
        Where a part is not of its kind.
    """

    def __init__(self, transaction, spend=None, adjuster=None):
        from clvlab.ops.registration import check_parts

        check_parts(transaction, spend, adjuster)  # a part out of place: named, before scoring
        self.transaction = transaction
        self.spend = spend
        self.adjuster = adjuster

    @classmethod
    def load(cls, folder: str | Path) -> "CLVModel":
        """Read the model's data folder (JSON and skops files only).

        Parameters
        ----------
        folder : str or pathlib.Path
            The model's data folder (``transaction_model.json`` and the others beside it).

        Returns
        -------
        CLVModel
            The loaded model.

        Raises
        ------
        ClvlabError
            Where the folder has no ``transaction_model.json`` or a file is not a readable model.
        """
        from clvlab.churn import ChallengerAdjustment, ChurnAdjuster
        from clvlab.models import load_model

        folder = Path(folder)
        if not (folder / "transaction_model.json").exists():
            raise ClvlabError(f"{folder} is not a clvlab CLV model folder: transaction_model.json "
                              "is missing")
        spend, adjuster = folder / "spend_model.json", folder / "churn_adjuster.json"
        transaction = load_model(folder / "transaction_model.json")
        part = ChurnAdjuster.load(adjuster) if adjuster.exists() else None
        if (folder / "challenger.json").exists():
            part = ChallengerAdjustment.load(folder / "challenger.json")
            part.base_model_ = transaction  # the BTYD model it replaces is the CLV model's own
        return cls(transaction, load_model(spend) if spend.exists() else None, part)

    @property
    def covariate_columns(self) -> list[str]:
        """The customer-attribute columns the models read (none for models without covariates)."""
        return covariate_columns(self.transaction, self.spend)

    def predict(self, model_input, params=None) -> pd.DataFrame:
        """Score RFM rows (MLflow's pyfunc ``predict``): :func:`score_frame` of the parts.

        Parameters
        ----------
        model_input : pandas.DataFrame
            ``frequency``, ``recency``, ``T`` (and ``monetary_value`` with a spend model) per
            customer, with the attribute columns the models read.
        params : dict, optional
            ``horizon`` (required), ``discount_rate``, ``margin``, ``time_unit`` and the
            interval and path options of :func:`score_frame`.

        Returns
        -------
        pandas.DataFrame
            The scores, one row per input row.

        Raises
        ------
        ClvlabError
            As :func:`score_frame`.
        """
        return score_frame(self.transaction, self.spend, self.adjuster, model_input, params)


def _load_pyfunc(data_path: str) -> CLVModel:
    """MLflow's entry point for the loader-module flavour (``mlflow.pyfunc.load_model``)."""
    return CLVModel.load(data_path)


def check_model_files(model_dir: str | Path) -> Path:
    """Refuse a downloaded MLflow model directory that could run code when loaded.

    Its MLmodel must name ``clvlab.serving`` as the pyfunc loader and carry no code paths, and
    the directory may hold only clvlab's model files and MLflow's environment descriptions.
    (A model logged by an older clvlab as a model from code is refused here too.)

    Parameters
    ----------
    model_dir : str or pathlib.Path
        The downloaded MLflow model directory.

    Returns
    -------
    pathlib.Path
        The model's data folder.

    Raises
    ------
    ClvlabError
        Where MLmodel is missing or unreadable, names another loader or code, the directory
        holds an unexpected file, or a model names a posterior file other than its own.
    """
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
                              "(only the JSON models, their posteriors (.posterior.nc), the "
                              "adjuster's skops file and MLflow's descriptions belong there); "
                              "refusing to load it")
    _check_posterior_names(data)
    return data


def _check_posterior_names(data: Path) -> None:
    """A model JSON may name only its own posterior file beside it (never a path elsewhere)."""
    import json

    for model_file, posterior in POSTERIOR_FILES.items():
        path = data / model_file
        try:
            named = json.loads(path.read_text()).get("posterior_file") if path.exists() else None
        except (ValueError, UnicodeDecodeError, AttributeError):
            continue  # not readable JSON: loading the model says so
        if named is not None and named != posterior:
            raise ClvlabError(f"{path} names the posterior file {named!r}; a clvlab CLV model's "
                              f"{model_file} may only name {posterior!r} beside it; refusing to "
                              "load it")


def download_clv_model(model_uri: str) -> Path:
    """Download a registered CLV model and check its files; returns its data folder.

    Parameters
    ----------
    model_uri : str
        An MLflow model URI (``models:/<name>@champion``, ``models:/<name>/<version>``...).

    Returns
    -------
    pathlib.Path
        The local data folder.

    Raises
    ------
    ClvlabError
        Where the model cannot be downloaded or its files are refused
        (:func:`check_model_files`).
    """
    from clvlab.ops.tracking import connect

    mlflow = connect()
    try:
        local = mlflow.artifacts.download_artifacts(model_uri)
    except Exception as exc:  # MLflow raises several types for a missing model or alias
        raise ClvlabError(f"cannot download the model {model_uri}: {exc}") from None
    return check_model_files(local)


def load_clv_model(model_uri: str) -> CLVModel:
    """Download, check and load a registered CLV model (the scoring job's path: the same object
    MLflow's pyfunc would wrap, without its per-call schema checks).

    Parameters
    ----------
    model_uri : str
        An MLflow model URI.

    Returns
    -------
    CLVModel
        The loaded model.

    Raises
    ------
    ClvlabError
        As :func:`download_clv_model` and :meth:`CLVModel.load`.
    """
    return CLVModel.load(download_clv_model(model_uri))


def covariate_columns(*models) -> list[str]:
    """The attribute columns that the fitted ``models`` (None allowed) read as covariates from
    each customer's row, in the order the models name them, each once (not the time-varying
    ones, which come from a covariate panel: :mod:`clvlab.ops.scoring_time_varying`).

    Parameters
    ----------
    *models : BaseModel or None
        Fitted models.

    Returns
    -------
    list of str
        The columns.
    """
    columns: list[str] = []
    for model in models:
        columns += [c for c in static_columns(model) if c not in columns]
    return columns


@accepts_tables(keyed=("frame",))
def score_frame(transaction, spend, adjuster, frame: pd.DataFrame, params: dict | None) -> pd.DataFrame:
    """The pyfunc's predictions, callable without MLflow: :func:`clvlab.models.customer_scores.score_customers`
    with the pyfunc's ``params`` ({horizon, discount_rate, margin, time_unit}; horizon has no
    default; time_unit, the unit of the rows' durations, is needed when ``frame`` does not
    record it, as no pyfunc payload does, and must be the model's).

    With ``quantiles`` (a list of levels, or a comma string when called directly) and/or
    ``interval_level``, the columns of :mod:`clvlab.ops.scoring_intervals` follow the scores
    (``purchases_q0.05``..., ``purchases_lower``/``purchases_upper``, and with a spend model
    ``clv_q0.05``... by Monte Carlo with ``clv_draws`` futures and ``seed``): the scoring job
    and Spark add the same columns, through this function.

    With covariates, ``frame`` also holds the attribute columns the models read
    (:func:`covariate_columns`): each customer is scored at their own parameters, as the
    in-memory models score them.

    A model fitted with time-varying covariates also needs ``params["covariates"]`` (the
    panel: a file where the model runs, or a DataFrame), ``as_of`` and the id column
    ``customer_col`` in ``frame`` (:mod:`clvlab.ops.scoring_time_varying`).

    Parameters
    ----------
    transaction : BetaGeo, ModifiedBetaGeo or ParetoNBD
        The fitted transaction model.
    spend : GammaGamma, LogNormalSpend or None
        The fitted spend model, or None.
    adjuster : ChurnAdjuster, ChallengerAdjustment or None
        A fitted churn adjuster or challenger, or None.
    frame : pandas.DataFrame
        The rows to score.
    params : dict or None
        The scoring parameters (above).

    Returns
    -------
    pandas.DataFrame
        :func:`~clvlab.models.customer_scores.score_customers`' columns, then any interval
        columns.

    Raises
    ------
    ClvlabError
        Where a parameter is unknown or missing (``horizon``; ``time_unit`` for rows that record
        none), a part is not of its kind, or ``frame`` lacks a column the models read.
    """
    from clvlab.core.timeunits import unit_name
    from clvlab.models.customer_scores import score_customers
    from clvlab.models.table_units import checked, recorded_unit
    from clvlab.ops.registration import check_parts

    check_parts(transaction, spend, adjuster)
    allowed = {**DEFAULT_PARAMS, **PATH_PARAMS}
    unknown = sorted(set(params or {}) - set(allowed))
    if unknown:
        raise ClvlabError(f"unknown scoring parameter(s) {unknown}; expected {sorted(allowed)}")
    settings = {**allowed, **{k: v for k, v in (params or {}).items() if v is not None}}
    source = panel_source(settings["covariates"], settings["calendar"],
                          customer_col=settings["panel_customer_col"],
                          period_col=settings["period_col"])
    check_panel_given(transaction, source, option="params={'covariates': '<panel file>'}")
    unit = getattr(transaction, "time_unit_", None)
    if settings["time_unit"] is None and unit is not None and recorded_unit(frame) is None:
        # score_customers would refuse it too; this says how, in a pyfunc's terms
        raise ClvlabError(f"the rows carry no time unit (an MLflow model's input never does: its "
                          f"schema drops what a table records), and the model works in "
                          f"{unit_name(unit)}: state it, params={{'time_unit': {unit!r}, ...}}")
    missing = [c for c in covariate_columns(transaction, spend) if c not in frame.columns]
    if missing:
        raise ClvlabError(
            f"the model reads the customer attribute column(s) {missing} (its covariates), which "
            f"the input lacks (it has {list(frame.columns)}); join each customer's attributes to "
            "the RFM rows (the scoring job: --attributes FILE, or those columns in the log)")
    frame = as_numbers(frame, numeric_inputs(transaction, spend, adjuster))
    distribution = distribution_settings(settings)
    wanted = bool(distribution["quantiles"]) or distribution["interval_level"] is not None
    if wanted:
        refuse_adjuster(adjuster)
    rates = {k: v for k, v in settings.items()
             if k in DEFAULT_PARAMS and k not in DISTRIBUTION_PARAMS}
    paths, table = None, frame
    if source is not None:
        refuse_along_paths(transaction, adjuster=adjuster, spend=spend,
                           quantiles=distribution["quantiles"])
        table, paths = rows_with_paths(transaction, frame, settings, source)
        scores = scores_along_paths(transaction, spend, table, paths, **rates)
    else:
        scores = score_customers(transaction, spend, adjuster, frame, **rates)
    if wanted:
        with checked():  # the scoring checked the table's unit (and durations, unless told not to)
            extra = distribution_columns(transaction, spend,
                                         _scored_table(transaction, spend, table, scores),
                                         scores.attrs["clvlab"]["horizon"],
                                         discount_rate=float(settings["discount_rate"]),
                                         margin=float(settings["margin"]),
                                         covariate_paths=paths, **distribution)
        attrs = scores.attrs
        scores = pd.concat([scores, extra.set_axis(scores.index)], axis=1)
        scores.attrs = attrs
        scores.attrs["clvlab"] = {**attrs["clvlab"], **distribution}
    if paths is not None:  # in the rows' order and index, as for any model
        scores = scores.set_axis(frame.index)
    return scores


def _scored_table(transaction, spend, frame: pd.DataFrame, scores: pd.DataFrame) -> pd.DataFrame:
    """The rows ``score_customers`` scored, as the models read them (RFM columns as numbers,
    covariates as given), labelled with the model's unit (score_customers checked it)."""
    columns = ["frequency", "recency", "T"] + (["monetary_value"] if spend is not None else [])
    table = frame[columns].astype("float64")
    covariates = [c for c in covariate_columns(transaction, spend) if c not in columns]
    if covariates:
        table = pd.concat([table, frame[covariates]], axis=1)
    table.attrs = {"clvlab": {"time_unit": scores.attrs["clvlab"]["time_unit"]}}
    return table


@accepts_tables(keyed=("attributes",), customer_col="customer_col")
def log_clv_model(transaction_model, spend_model=None, churn_adjuster=None, *,
                  registered_model_name: str | None = None, name: str = "clv_model",
                  alias: str | None = "challenger", tags: dict[str, str] | None = None,
                  attributes: pd.DataFrame | None = None, force: bool = False,
                  customer_col: str | None = None):
    """Log the CLV model into the active run (one is started if none is) and, with
    ``registered_model_name``, register it and point ``alias`` at the new version.
    Returns MLflow's ModelInfo (``registered_model_version`` set when registered; its
    ``metadata["convergence"]`` is the convergence report).

    Before anything is logged, each part must be of its kind (a transaction model, a spend
    model, a churn adjuster) and each fit converged by its own checks (r_hat, divergences and
    ESS after NUTS; the ELBO after ADVI; the mode after MAP; the optimizer after maximum
    likelihood: :mod:`clvlab.ops.registration`); ``force=True`` registers an unconverged fit
    anyway. The diagnostics go with the model either way: in its metadata and as tags of the
    run and the model version (``clvlab.transaction_model.max_r_hat``, ``clvlab.forced``, ...).

    Models with covariates add their attribute columns to the input signature. ``attributes``
    (optional): a table holding those columns, e.g. the one the models were fitted on; a
    column that is boolean there is a boolean input (else booleans must be sent as 0/1
    numbers, as the model files cannot tell a boolean from a number). Nothing of it is stored.
    A model fitted with time-varying covariates takes the customer id column ``customer_col``
    (default ``customer_id``) instead of them: :func:`~clvlab.ops.scoring_time_varying.with_path_params`.

    The model's files are the JSON models (population-level parameters only), the posterior of
    a Bayesian fit (netCDF) and the churn adjuster's skops file; MLflow loads them through this
    module (no code is logged).

    Parameters
    ----------
    transaction_model : BetaGeo, ModifiedBetaGeo or ParetoNBD
        The fitted transaction model (with a time unit).
    spend_model : GammaGamma or LogNormalSpend, optional
        The fitted spend model.
    churn_adjuster : ChurnAdjuster or ChallengerAdjustment, optional
        A fitted churn adjuster or challenger.
    registered_model_name : str, optional
        Register the model under this name (None: log only).
    name : str, default "clv_model"
        The model's artifact name in the run.
    alias : str or None, default "challenger"
        The alias pointed at the new version when registered (None: none).
    tags : dict of str to str, optional
        Further tags of the run.
    attributes : pandas.DataFrame, optional
        A table holding the models' attribute columns (above).
    force : bool, default False
        Register an unconverged fit anyway.
    customer_col : str, optional
        The customer id column of a model fitted with time-varying covariates.

    Returns
    -------
    mlflow.models.model.ModelInfo
        MLflow's ModelInfo.

    Raises
    ------
    ClvlabError
        Where a part is not of its kind, the transaction model has no time unit, or a fit did
        not converge (without ``force``), or MLflow fails.
    """
    from clvlab.core.version import __version__
    from clvlab.ops import registration
    from clvlab.ops.tracking import connect, tracking_errors

    registration.check_parts(transaction_model, spend_model, churn_adjuster)
    if getattr(transaction_model, "time_unit_", None) is None:
        raise ClvlabError(f"the {type(transaction_model).__name__} has no time unit, so its "
                          "registered scores would be in whatever unit a table happens to be in; "
                          "fit it on a table that records its unit (or fit(..., time_unit=...))")
    report = registration.convergence_report(transaction_model, spend_model)
    forced = registration.check_converged(report, force)
    candidate = registration.candidate_name(transaction_model, spend_model, churn_adjuster)
    model_tags = {"clvlab.candidate": candidate,
                  **registration.convergence_tags(report, forced)}
    covariates = covariate_columns(transaction_model, spend_model)
    mlflow = connect()
    with tempfile.TemporaryDirectory() as folder:
        data = Path(folder) / DATA_FOLDER
        data.mkdir()
        transaction_model.save(data / "transaction_model.json")
        if spend_model is not None:
            spend_model.save(data / "spend_model.json")
        if churn_adjuster is not None:
            challenger = hasattr(churn_adjuster, "candidate_name_")
            churn_adjuster.save(data / ("challenger.json" if challenger else "churn_adjuster.json"))
        with tracking_errors("logging the CLV model"):
            active = mlflow.active_run()
            run = active or mlflow.start_run(run_name="clv-model")
            try:
                with warnings.catch_warnings():
                    warnings.filterwarnings("ignore", message=".*input example.*")
                    info = mlflow.pyfunc.log_model(
                        name=name, loader_module=LOADER_MODULE, data_path=str(data),
                        signature=with_path_params(
                            _signature(transaction_model, spend_model, churn_adjuster,
                                       attributes), transaction_model, customer_col),
                        pip_requirements=[f"clvlab=={__version__}"],
                        registered_model_name=registered_model_name,
                        metadata={"time_unit": getattr(transaction_model, "time_unit_", None),
                                  "transaction_model": type(transaction_model).__name__,
                                  "candidate": candidate, "convergence": report,
                                  **({"covariates": covariates} if covariates else {}),
                                  **path_metadata(transaction_model, customer_col),
                                  "clvlab_version": __version__})
                mlflow.set_tags({"clvlab.kind": "clv-model", **model_tags, **(tags or {})})
            finally:
                if active is None:
                    mlflow.end_run()
            if registered_model_name:
                client = mlflow.MlflowClient()
                for key, value in model_tags.items():
                    client.set_model_version_tag(registered_model_name,
                                                 info.registered_model_version, key, value)
                if alias:
                    client.set_registered_model_alias(
                        registered_model_name, alias, info.registered_model_version)
    return info


def resolve_version(name: str, alias: str) -> str:
    """The version an alias points at, or a clear error.

    Parameters
    ----------
    name : str
        The registered model.
    alias : str
        The alias (``"champion"``...).

    Returns
    -------
    str
        The version.

    Raises
    ------
    ClvlabError
        Where the model has no such alias.
    """
    from clvlab.ops.tracking import connect

    mlflow = connect()
    try:
        return str(mlflow.MlflowClient().get_model_version_by_alias(name, alias).version)
    except mlflow.exceptions.MlflowException as exc:
        raise ClvlabError(f"registered model {name!r} has no alias {alias!r} ({exc.message})") from None


def promote(name: str, *, version: str | None = None, from_alias: str = "challenger",
            to_alias: str = "champion", backtest_run: str | None = None) -> str:
    """Point ``to_alias`` at ``version`` (default: the version ``from_alias`` points at).

    With ``backtest_run``, the run must be a clvlab backtest of this model: in its time unit,
    with the model's own candidate among its candidates (``"pareto-nbd + gamma-gamma"``, with
    its covariates in brackets; :func:`clvlab.ops.registration.check_evidence`), or the
    promotion is refused and no alias moves. The run's id and the candidate are recorded on the
    model version (tags ``clvlab.promoted_on_backtest``, ``clvlab.promoted_on_candidate``) as
    the evidence for the promotion. Returns the promoted version.

    Parameters
    ----------
    name : str
        The registered model.
    version : str, optional
        The version to promote (None: the one ``from_alias`` points at).
    from_alias : str, default "challenger"
        The alias whose version is promoted when ``version`` is None.
    to_alias : str, default "champion"
        The alias to move.
    backtest_run : str, optional
        The MLflow run of the backtest that is the promotion's evidence.

    Returns
    -------
    str
        The promoted version.

    Raises
    ------
    ClvlabError
        Where the version or alias does not exist, or the backtest run is not evidence for this
        model.
    """
    from clvlab.ops.registration import check_evidence
    from clvlab.ops.tracking import connect

    mlflow = connect()
    client = mlflow.MlflowClient()
    version = str(version) if version is not None else resolve_version(name, from_alias)
    try:
        client.get_model_version(name, version)
    except mlflow.exceptions.MlflowException:
        raise ClvlabError(f"registered model {name!r} has no version {version}") from None
    if backtest_run is not None:
        model = load_clv_model(f"models:/{name}/{version}")
        candidate = check_evidence(client, backtest_run, model, f"{name} version {version}")
        client.set_model_version_tag(name, version, "clvlab.promoted_on_backtest", backtest_run)
        client.set_model_version_tag(name, version, "clvlab.promoted_on_candidate", candidate)
    client.set_registered_model_alias(name, to_alias, version)
    return version
