"""MLflow tracking of fits and backtests (MLflow is imported only when used).

The store is MLFLOW_TRACKING_URI when set, else a local sqlite file ``mlflow.db`` in the working
directory (open it with ``mlflow ui --backend-store-uri sqlite:///mlflow.db``). A remote store
that does not answer fails at once with a clear message, before anything is logged.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from clvlab.core.errors import ClvlabError
from clvlab.data.tables import accepts_tables

__all__ = ["tracking_uri", "connect", "tracking_errors", "log_fit", "log_backtest", "data_digest",
           "metric_key"]

DEFAULT_URI = "sqlite:///mlflow.db"


def tracking_uri() -> str:
    """MLFLOW_TRACKING_URI, or the embedded default ``sqlite:///mlflow.db``.

    Returns
    -------
    str
        The tracking URI.
    """
    return os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_URI


def connect(uri: str | None = None, timeout: float = 5.0):
    """Import MLflow, point it at the store and check that a server store answers; returns the
    ``mlflow`` module.

    Parameters
    ----------
    uri : str, optional
        The tracking store (None: :func:`tracking_uri`).
    timeout : float, default 5.0
        Seconds to wait for an HTTP server's health check.

    Returns
    -------
    module
        ``mlflow``, pointed at the store.

    Raises
    ------
    ClvlabError
        Where an HTTP tracking server does not answer.
    """
    import mlflow

    uri = uri or tracking_uri()
    if uri.startswith(("http://", "https://")):
        import urllib.error
        import urllib.request

        try:
            with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=timeout) as reply:
                if reply.status != 200:
                    raise OSError(f"HTTP {reply.status}")
        except (OSError, urllib.error.URLError) as exc:
            raise ClvlabError(f"the MLflow tracking server at {uri} is unreachable ({exc}); "
                              "start it or set MLFLOW_TRACKING_URI to a reachable store") from None
    if mlflow.get_tracking_uri() != uri:
        # MLflow keeps the active experiment's id across stores; in another store that id names
        # another experiment or none ("No Experiment with id=2 exists")
        from mlflow.tracking import fluent

        stale = getattr(fluent, "_active_experiment_id", None)
        if stale is not None:
            fluent._active_experiment_id = None
            if os.environ.get("MLFLOW_EXPERIMENT_ID") == str(stale):  # set_experiment exports it
                del os.environ["MLFLOW_EXPERIMENT_ID"]
    mlflow.set_tracking_uri(uri)
    return mlflow


@contextlib.contextmanager
def tracking_errors(doing: str, undone: str = ""):
    """Turn a failure of the tracking store while ``doing`` (a server that died, a store that
    went away) into one ClvlabError that says what failed and what was not written. MLflow
    retries a dead server before giving up (MLFLOW_HTTP_REQUEST_MAX_RETRIES and
    MLFLOW_HTTP_REQUEST_TIMEOUT bound how long).

    Parameters
    ----------
    doing : str
        What was being done, for the message ("logging the fit").
    undone : str, optional
        What was not written, appended to the message.

    Yields
    ------
    None
        The block runs inside.

    Raises
    ------
    ClvlabError
        In place of the store's failure.
    """
    try:
        yield
    except ClvlabError:
        raise
    except Exception as exc:  # MlflowException, requests' ConnectionError, sqlite errors, ...
        from mlflow.exceptions import MlflowException

        if not isinstance(exc, (MlflowException, OSError)) and \
                type(exc).__module__.split(".")[0] not in ("requests", "urllib3", "sqlalchemy", "sqlite3"):
            raise
        message = str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
        raise ClvlabError(f"the MLflow tracking store at {tracking_uri()} failed while {doing} "
                          f"({type(exc).__name__}: {message}){'; ' + undone if undone else ''}") from exc


def metric_key(text: str) -> str:
    """A name MLflow accepts as a metric or parameter key ("pareto-nbd + gamma-gamma" ->
    "pareto-nbd_gamma-gamma").

    Parameters
    ----------
    text : str
        A candidate's or metric's name.

    Returns
    -------
    str
        The key.
    """
    return re.sub(r"_+", "_", re.sub(r"[^\w.\-/ ]", "_", text.replace(" + ", "_"))).strip("_ ")


@accepts_tables("frame")
def data_digest(frame: pd.DataFrame) -> str:
    """SHA-256 of a table's index and values: the same data gives the same digest.

    Parameters
    ----------
    frame : pandas.DataFrame
        The table.

    Returns
    -------
    str
        The hexadecimal digest.
    """
    hashed = pd.util.hash_pandas_object(frame, index=True).to_numpy()
    return hashlib.sha256(hashed.tobytes() + ",".join(map(str, frame.columns)).encode()).hexdigest()


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for package in ("clvlab", "numpy", "scipy", "pandas", "scikit-learn", "pymc", "mlflow", "duckdb"):
        try:
            out[f"version.{package}"] = version(package)
        except PackageNotFoundError:
            pass
    return out


@tracking_errors("logging the fit", "the run may be incomplete in the store; nothing local was written")
@accepts_tables(keyed=("rfm",))
def log_fit(model, rfm: pd.DataFrame | None = None, *, experiment: str | None = None,
            run_name: str | None = None, tags: dict[str, str] | None = None,
            plots: bool = True) -> str:
    """Log a fitted model as one MLflow run; returns its run id.

    Parameters are the estimates; metrics the standard errors (``se.<name>``), the
    log-likelihood, AIC and BIC, customers and distinct rows; tags the model, time unit,
    convergence, library versions and, with ``rfm``, the data's customers, cutoff and digest.
    Artifacts: the model JSON, the summary (CSV) and, with ``rfm`` and ``plots``, the frequency
    histogram of the data against the model's expectation.

    Parameters
    ----------
    model : BaseModel
        A fitted clvlab model.
    rfm : pandas.DataFrame, optional
        The table it was fitted on (for the data's tags and the histogram).
    experiment : str, optional
        The MLflow experiment (None: the active one).
    run_name : str, optional
        The run's name (None: the model's class name).
    tags : dict of str to str, optional
        Further tags.
    plots : bool, default True
        Log the frequency histogram (with ``rfm``).

    Returns
    -------
    str
        The run's id.

    Raises
    ------
    ClvlabError
        Where the tracking store fails (:func:`tracking_errors`).
    """
    mlflow = connect()
    params = model._check_fitted()
    if experiment:
        mlflow.set_experiment(experiment)
    with mlflow.start_run(run_name=run_name or type(model).__name__) as run:
        mlflow.log_params({name: float(v) for name, v in zip(model.param_names, params)})
        metrics = {}
        se = getattr(model, "standard_errors_", None)
        if se is not None:
            metrics.update({f"se.{k}": float(v) for k, v in se.items() if np.isfinite(v)})
        method = getattr(model, "method", "mle")
        for name in ("log_likelihood_", "aic_", "bic_", "n_customers_", "n_distinct_rows_"):
            value = getattr(model, name, None)
            if value is not None and np.isfinite(value):
                label = name.rstrip("_")
                if name == "log_likelihood_" and method != "mle":  # not a maximised one
                    label += "_at_posterior_" + ("mode" if method == "map" else "mean")
                metrics[label] = float(value)
        mlflow.log_metrics(metrics)
        convergence = getattr(model, "convergence_", {}) or {}
        run_tags = {"clvlab.kind": "fit", "clvlab.model": type(model).__name__,
                    "clvlab.method": getattr(model, "method", "mle"),
                    "clvlab.time_unit": str(getattr(model, "time_unit_", None)),
                    "clvlab.converged": str(convergence.get("converged", "unknown")), **_versions()}
        if rfm is not None:
            info = rfm.attrs.get("clvlab", {}) if isinstance(rfm.attrs, dict) else {}
            run_tags.update({"data.customers": str(len(rfm)), "data.digest": data_digest(rfm),
                             "data.calibration_end": str(info.get("calibration_end", "unknown"))})
        run_tags.update(tags or {})
        mlflow.set_tags(run_tags)
        with tempfile.TemporaryDirectory() as folder:
            folder = Path(folder)
            model.save(folder / "model.json")
            model.summary().to_csv(folder / "summary.csv")
            (folder / "convergence.json").write_text(json.dumps(convergence, default=str, indent=2))
            if rfm is not None and plots:
                _frequency_plot(model, rfm, folder / "frequency_histogram.png")
            mlflow.log_artifacts(str(folder), artifact_path="fit")
        return run.info.run_id


def _frequency_plot(model, rfm: pd.DataFrame, path: Path) -> None:
    """The frequency histogram (clvlab.plotting) of a transaction model, saved as a PNG."""
    from clvlab.plotting.diagnostics import plot_frequency_histogram
    from clvlab.plotting.files import save_png

    if not hasattr(model, "_new_customer_pmf"):  # a spend model: no purchase distribution
        return
    save_png(lambda ax: plot_frequency_histogram(model, rfm, ax=ax), path, figsize=(7, 4))


@tracking_errors("logging the backtest", "the run may be incomplete in the store; nothing local was written")
def log_backtest(result, *, experiment: str | None = None, run_name: str = "backtest",
                 tags: dict[str, str] | None = None, plots: bool = True,
                 customer_rows: bool = False, salt: str | bytes | None = None) -> str:
    """Log a backtest: a parent run with the settings, every candidate's metrics averaged over
    the cutoffs (``<candidate>.<target>_<metric>``) and the tables and plots as artifacts, and
    a nested run per cutoff and candidate with that cutoff's metrics. Returns the parent id.

    What a promotion compares with its model (:func:`clvlab.ops.registration.check_evidence`)
    is recorded whole: ``backtest/settings.json`` (time unit, candidate names, horizon,
    cutoffs, amount column) and the tag ``clvlab.time_unit``.

    Only population-level tables are logged unless ``customer_rows=True``: then the
    per-customer predictions go too (``predictions.csv``), with each id replaced by its salted
    hash (:func:`clvlab.privacy.hash_ids`; ``salt`` or CLVLAB_ID_SALT, required).

    Parameters
    ----------
    result : BacktestResult
        The backtest's result.
    experiment : str, optional
        The MLflow experiment (None: the active one).
    run_name : str, default "backtest"
        The parent run's name.
    tags : dict of str to str, optional
        Further tags of the parent run.
    plots : bool, default True
        Log the plots.
    customer_rows : bool, default False
        Log the per-customer predictions with hashed ids (above).
    salt : str or bytes, optional
        The salt of the ids' hashes (None: CLVLAB_ID_SALT).

    Returns
    -------
    str
        The parent run's id.

    Raises
    ------
    ClvlabError
        Where ``customer_rows=True`` comes without a salt or without kept predictions, or the
        tracking store fails.
    """
    if customer_rows:
        from clvlab.data.privacy import hash_ids, resolve_salt

        resolve_salt(salt)  # refuse before anything is logged
        if result.predictions is None:
            raise ClvlabError("customer_rows=True needs a backtest run with keep_predictions=True")
    mlflow = connect()
    if experiment:
        mlflow.set_experiment(experiment)
    table = result.metrics[result.metrics["cohort"] == "all"]
    settings = result.settings
    with mlflow.start_run(run_name=run_name) as parent:
        mlflow.log_params({"horizon": settings["horizon"], "time_unit": settings["time_unit"],
                           "cutoffs": ",".join(c[:10] for c in settings["cutoffs"]),
                           "candidates": "; ".join(settings["candidates"])[:6000]})
        names = {metric_key(c): c for c in settings["candidates"]}
        mlflow.set_tags({"clvlab.kind": "backtest", "clvlab.candidates": json.dumps(names)[:5000],
                         "clvlab.time_unit": str(settings["time_unit"]),
                         # candidates that refused the data at a cutoff (listed whole in
                         # backtest/settings.json): their means cover only the other cutoffs
                         "clvlab.failures": str(len(settings.get("failures") or [])),
                         **_versions(), **(tags or {})})
        means = table.groupby(["candidate", "target", "metric"])["value"].mean()
        mlflow.log_metrics({f"{metric_key(c)}.{t}_{m}": float(v) for (c, t, m), v in means.items()})
        for (cutoff, candidate), rows in table.groupby(["cutoff", "candidate"], sort=False):
            with mlflow.start_run(run_name=f"{candidate} @ {cutoff}", nested=True):
                mlflow.set_tags({"clvlab.kind": "backtest-cutoff", "candidate": candidate,
                                 "cutoff": cutoff})
                mlflow.log_metrics({f"{t}_{m}": float(v) for t, m, v in
                                    rows[["target", "metric", "value"]].itertuples(index=False)})
        with tempfile.TemporaryDirectory() as folder:
            folder = Path(folder)
            for name in ("metrics", "by_frequency", "tracking", "cohorts"):
                getattr(result, name).to_csv(folder / f"{name}.csv", index=False)
            result.summary().to_csv(folder / "summary.csv")
            # whole (params and tags are cut at MLflow's lengths): what promote compares
            (folder / "settings.json").write_text(json.dumps(settings, default=str, indent=2))
            if customer_rows:
                rows = result.predictions.copy()
                rows.index = pd.Index(hash_ids(rows.index, salt), name="customer_hash")
                rows.to_csv(folder / "predictions.csv")
            if plots:
                _backtest_plots(result, folder)
            mlflow.log_artifacts(str(folder), artifact_path="backtest")
        return parent.info.run_id


def _backtest_plots(result, folder: Path) -> None:
    from clvlab.plotting.files import save_png

    for name, draw in (("tracking", result.plot_tracking),
                       ("conditional_expectations", result.plot_conditional_expectations)):
        save_png(lambda ax, draw=draw: draw(ax=ax), folder / f"{name}.png")
