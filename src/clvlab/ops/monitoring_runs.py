"""Where a monitoring job's forecasts came from, and where its findings go.

- :func:`find_scoring_source`: the scoring job behind a scores file. A Parquet file written by
  ``clvlab score`` records it in its metadata (:data:`clvlab.ops.scoring.SCORING_METADATA_KEY`),
  and its run is the one tagged with the same ``clvlab.scoring_id``; an older file or a CSV is
  matched to the latest scoring run whose ``output`` tag names its path.
- :func:`log_monitoring_run`: the MLflow run (tags, metrics, tables and plots), linked to the
  scoring run and the registered model version (tag ``clvlab.last_monitoring`` on both).
- :func:`write_outputs`: the same tables (CSV, JSON) and plots (PNG) in a folder, atomically.
"""

from __future__ import annotations

import json
import math
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from clvlab.core.atomic import atomic_output
from clvlab.core.errors import ClvlabError, warn
from clvlab.ops.scoring import SCORING_METADATA_KEY

__all__ = ["ScoringSource", "scoring_record", "read_scores", "find_scoring_source",
           "pinned_model_uri", "log_monitoring_run", "write_outputs", "OUTPUT_FILES"]

#: what write_outputs writes (and the monitoring run logs under "monitoring/")
OUTPUT_FILES = ("summary.csv", "calibration.csv", "drift.csv", "tracking.csv", "monitoring.json",
                "tracking.png", "drift.png")


@dataclass
class ScoringSource:
    """The scoring job behind a scores file: what it recorded and how it was found."""

    run_id: str | None = None
    model_uri: str | None = None
    model_version: str = ""
    as_of: str | None = None
    horizon: float | None = None
    time_unit: str | None = None
    customer_col: str | None = None
    interval_level: float | None = None
    quantiles: list[float] = field(default_factory=list)
    found_by: str = "nothing recorded"


def scoring_record(path: str | Path) -> dict[str, Any] | None:
    """What a Parquet scoring output records about its job (scoring id, model URI and
    version, as-of date, horizon, time unit, customer column, interval options), or None for a
    file without it (a CSV, a Spark folder, a file written before clvlab recorded it)."""
    import pyarrow.parquet as pq

    path = Path(path)
    if path.suffix.lower() not in (".parquet", ".pq") or not path.is_file():
        return None
    try:
        raw = (pq.read_schema(path).metadata or {}).get(SCORING_METADATA_KEY.encode())
        return None if raw is None else json.loads(raw)
    except (OSError, ValueError) as exc:
        raise ClvlabError(f"scores {path} are not a readable Parquet file: {exc}") from None


def read_scores(path: str | Path) -> pd.DataFrame:
    """A scoring output (Parquet file or folder, or CSV), indexed by its first column (the
    customer id, as every table clvlab writes has it)."""
    path = Path(path)
    if not path.exists():
        raise ClvlabError(f"scores {path} do not exist; give the file `clvlab score` wrote "
                          "(--scores scores.parquet)")
    try:
        if path.suffix.lower() == ".csv":
            table = pd.read_csv(path)
        else:
            table = pd.read_parquet(path)
    except (OSError, ValueError) as exc:
        raise ClvlabError(f"scores {path} are not readable: {exc}") from None
    required = {"probability_of_purchase", "expected_purchases"}
    if not required <= set(table.columns):
        raise ClvlabError(f"scores {path} lack the column(s) {sorted(required - set(table.columns))}"
                          f" that `clvlab score` writes; its columns are {list(table.columns)}")
    return table.set_index(table.columns[0])


def find_scoring_source(mlflow, scores: str | Path) -> ScoringSource:
    """The scoring job of ``scores``: its file's record and its run (found by the scoring id,
    else by the run's ``output`` tag: the latest such run). Fields nobody recorded are None."""
    record = scoring_record(scores)
    source = ScoringSource()
    if record:
        source = ScoringSource(**{k: record.get(k) for k in (
            "model_uri", "as_of", "horizon", "time_unit", "customer_col", "interval_level")},
            model_version=str(record.get("model_version") or ""),
            quantiles=list(record.get("quantiles") or []), found_by="the file's metadata")
    run = _scoring_run(mlflow, scores, record)
    if run is None:
        return source
    tags, params = run.data.tags, run.data.params
    source.run_id = run.info.run_id
    source.model_uri = source.model_uri or tags.get("model_uri")
    source.model_version = source.model_version or tags.get("model_version", "")
    source.as_of = source.as_of or tags.get("as_of")
    if source.horizon is None and tags.get("clvlab.horizon"):
        source.horizon = float(tags["clvlab.horizon"])
    source.time_unit = source.time_unit or tags.get("clvlab.time_unit")
    if source.interval_level is None and params.get("interval_level"):
        source.interval_level = float(params["interval_level"])
    if not source.quantiles and params.get("quantiles"):
        source.quantiles = [float(q) for q in params["quantiles"].split(",")]
    if not record:
        source.found_by = "the scoring run's output tag"
    return source


def _scoring_run(mlflow, scores: str | Path, record: dict | None):
    """The run of the scoring id, else the latest scoring run whose output tag is the path."""
    from clvlab.ops.tracking import tracking_errors

    if record and record.get("scoring_id"):
        filters = [f"tags.`clvlab.scoring_id` = '{record['scoring_id']}'"]
    else:
        names = dict.fromkeys([str(scores), str(Path(scores).resolve())])
        filters = [f"tags.`clvlab.kind` = 'scoring' and tags.output = '{n.replace(chr(39), '')}'"
                   for n in names]
    with tracking_errors("finding the scoring run", "nothing was written"):
        for where in filters:
            runs = mlflow.search_runs(filter_string=where, search_all_experiments=True,
                                      order_by=["attributes.start_time DESC"], max_results=1,
                                      output_format="list")
            if runs:
                return runs[0]
    return None


def pinned_model_uri(mlflow, source: ScoringSource, given: str | None) -> str:
    """The URI of the model version that made the scores: ``models:/name/3`` for a scoring by
    ``models:/name@champion`` whose version was recorded (the alias may have moved since).
    ``given`` (the caller's) is used when nothing was recorded, and must otherwise name the
    same model version."""
    recorded = source.model_uri
    name = _registered_name(recorded)
    if name and source.model_version:
        recorded = f"models:/{name}/{source.model_version}"
    if recorded is None:
        if given is None:
            raise ClvlabError("the scores record no model and no scoring run names them; give the "
                              "model that scored them, e.g. model_uri='models:/clv/3' "
                              "(--model-uri models:/clv/3)")
        return given
    if given is not None and given not in (recorded, source.model_uri):
        same = (name is not None and _registered_name(given) == name
                and _version_of(mlflow, given) == source.model_version)
        if not same:
            raise ClvlabError(f"model_uri {given!r} (--model-uri) is not the model that made the "
                              f"scores ({recorded}, version {source.model_version or '?'}); "
                              f"leave it out, or pass {recorded}")
    return recorded


def _version_of(mlflow, uri: str) -> str:
    """The version number ``models:/name@alias`` or ``models:/name/3`` names ("" if none)."""
    path = uri[len("models:/"):]
    if "@" not in path:
        return path.partition("/")[2]
    name, alias = path.split("@", 1)
    try:
        return str(mlflow.MlflowClient().get_model_version_by_alias(name, alias).version)
    except mlflow.exceptions.MlflowException:
        return ""


def write_outputs(result, folder: str | Path, overwrite: bool = True) -> list[Path]:
    """The result's tables (summary, calibration, drift, tracking: CSV; the settings and
    figures: monitoring.json) and its two plots (PNG) in ``folder``, each written atomically.
    Returns the paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    tables = {"summary.csv": result.summary(), "calibration.csv": result.calibration,
              "drift.csv": result.drift, "tracking.csv": result.tracking}
    for name, table in tables.items():
        with atomic_output(folder / name, overwrite=overwrite) as temporary:
            table.to_csv(temporary, index=name == "summary.csv")
        written.append(folder / name)
    with atomic_output(folder / "monitoring.json", overwrite=overwrite) as temporary:
        Path(temporary).write_text(json.dumps(_jsonable(result.to_dict()), indent=2))
    written.append(folder / "monitoring.json")
    for name, draw in _plots().items():
        with atomic_output(folder / name, overwrite=overwrite) as temporary:
            _save_plot(draw, result, temporary)
        written.append(folder / name)
    return written


def _plots() -> dict:
    from clvlab.plotting.monitoring import plot_drift, plot_monitoring_tracking

    return {"tracking.png": plot_monitoring_tracking, "drift.png": plot_drift}


def _save_plot(draw, result, path: str) -> None:
    from clvlab.plotting.files import save_png

    save_png(lambda ax: draw(result, ax=ax), path)


def _jsonable(value: Any) -> Any:
    """NaN as null (JSON has no NaN); numpy numbers as Python numbers."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, str):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def log_monitoring_run(mlflow, result, experiment: str) -> str:
    """Log ``result`` as a monitoring run and link it: tags (``clvlab.kind=monitoring``, the
    scoring run, the model URI and version, both dates, the verdict), finite metrics, the
    tables and plots under ``monitoring/``; then the tag ``clvlab.last_monitoring`` (this
    run's id) on the scoring run and on the registered model version. Returns the run id."""
    from clvlab.ops.tracking import metric_key, tracking_errors

    info = result.info
    with tracking_errors("logging the monitoring run", "the run may be incomplete in the store"):
        mlflow.set_experiment(experiment)
        with mlflow.start_run(run_name=f"monitor {info['scored_as_of'][:10]} -> "
                                       f"{info['as_of'][:10]}") as run:
            mlflow.set_tags({"clvlab.kind": "monitoring", "clvlab.verdict": result.verdict,
                             "clvlab.scoring_run_id": str(info["scoring_run_id"] or ""),
                             "model_uri": str(info["model_uri"]),
                             "model_version": str(info["model_version"] or ""),
                             "scored_as_of": info["scored_as_of"], "as_of": info["as_of"],
                             "scores": str(info["scores"]),
                             "clvlab.reasons": "; ".join(result.reasons)[:5000] or "none"})
            mlflow.log_params({k: str(v) for k, v in asdict(result.thresholds).items()})
            mlflow.log_metrics({metric_key(k): float(v) for k, v in result.metrics.items()
                                if isinstance(v, (int, float)) and math.isfinite(v)})
            with tempfile.TemporaryDirectory() as folder:
                write_outputs(result, folder)
                mlflow.log_artifacts(folder, artifact_path="monitoring")
        run_id = run.info.run_id
    _link(mlflow, info, run_id, result.verdict)
    return run_id


def _link(mlflow, info: dict, run_id: str, verdict: str) -> None:
    """Tag the scoring run and the model version with the monitoring run (best effort: a
    scoring run deleted since, or a model version without the right to tag it, gets a
    warning, as the monitoring run itself is logged)."""
    from clvlab.core.errors import ClvlabWarning

    client = mlflow.MlflowClient()
    name = _registered_name(info["model_uri"])
    links = []
    if info["scoring_run_id"]:
        links.append(("the scoring run", lambda: client.set_tag(
            info["scoring_run_id"], "clvlab.last_monitoring", run_id)))
    if name and info["model_version"]:
        version = str(info["model_version"])
        links.append((f"{name} version {version}", lambda: (
            client.set_model_version_tag(name, version, "clvlab.last_monitoring", run_id),
            client.set_model_version_tag(name, version, "clvlab.last_monitoring_verdict", verdict))))
    for what, tag in links:
        try:
            tag()
        except Exception as exc:  # MlflowException, a store gone away: the run is logged
            warn(f"monitor: could not tag {what} with the monitoring run {run_id} "
                          f"({type(exc).__name__}: {str(exc)[:200]})", ClvlabWarning)


def _registered_name(uri: str | None) -> str | None:
    if not uri or not uri.startswith("models:/"):
        return None
    return uri[len("models:/"):].split("@", 1)[0].split("/", 1)[0]
