"""Declarative experiments: a TOML file names the data, the cutoffs, the horizon and the
candidates; running it logs a backtest into an MLflow experiment, and ``compare`` reads every
run of an experiment back into one leaderboard. An experiment file::

    name = "cdnow"                      # the MLflow experiment
    [data]
    source = "cdnow:master"             # a bundled log (cdnow:master, cdnow:sample) or files
    amount_col = "amount"               # customer_col, date_col, date_format, timezone, and
                                        # delimiter and decimal for CSV files, too
    time_unit = "W"
    [backtest]
    cutoffs = ["1997-09-30", "1997-12-31", "1998-03-31"]
    horizon = 13
    candidates = ["pareto-nbd+gamma-gamma", "historical-average"]
    churn_adjuster = true               # also every model candidate with its churn adjuster
    intervals = true                    # score predictive distributions (the default)
    interval_draws = 50                 # parameter draws behind the cohort total's interval

A candidate with covariates names its attribute columns in brackets,
``"pareto-nbd[gender,channel]+gamma-gamma"``; the attributes come from ``attributes`` in
``[data]``: a CSV or Parquet file (relative to the experiment file) with the customer id column
(or indexed by id), one row per customer, known at acquisition (see
:mod:`clvlab.data.attributes`). ``churn_adjuster = true`` adds adjusted copies of the candidates
without covariates only (the adjuster's features are behaviour, not attributes).

Time-varying covariates (:mod:`clvlab.evaluation.time_varying_cutoffs`): ``covariate_panel``
in ``[data]`` names a CSV (also ``.csv.gz``) or Parquet file, relative to the experiment file,
with one row per customer and period (``covariate_customer_col``, by default the log's
customer column; ``covariate_period_col``, by default ``"period"``, the period's start; the
covariate columns), and ``calendar`` a file of covariates shared by all customers (one row per
period). ``covariate_columns = ["High.Season"]`` keeps only those covariates of the panel and
calendar (the others may then be static attributes). A bracket column of a Pareto/NBD or
BG/NBD candidate that they hold is read along each customer's path:
``"pareto-nbd[High.Season,Gender]"``. Both files are read into memory.

An event log beside the purchases (visits, e-mails opened, returns...: :mod:`clvlab.data.events`):
``events`` in ``[data]`` names its CSV or Parquet file(s), relative to the experiment file,
with the log's customer and date columns, ``event_col`` (default ``"event"``) and optionally
``event_value_col``; the candidates that learn from features (``"ziln"``, ``"gbm"``, the churn
adjuster) see its windowed counts and recencies at each cutoff, and with ``quantity_col`` (the
log's items-per-order column) each customer's basket sizes (:func:`clvlab.churn.basket_frame`).

Selection and promotion (:mod:`clvlab.ops.selection`): a ``[selection]`` table declares the
rule (``registered_model``, ``target``, ``metric``, ``margin``, ``refresh``) by which the run
refits, registers and promotes the winner; ``rolling_cutoffs = n`` in ``[backtest]`` (instead
of ``cutoffs``) backtests the latest n windows of the log, for scheduled retraining.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import pandas as pd

from clvlab.data.rfm_io import read_files
from clvlab.evaluation.candidate_names import make_candidate
from clvlab.evaluation.metrics import ranking_key
from clvlab.core.errors import ClvlabError
from clvlab.models import registry

__all__ = ["load_experiment", "run_experiment", "compare", "ExperimentRun"]

DATA_KEYS = {"source", "customer_col", "date_col", "amount_col", "date_format", "timezone",
             "time_unit", "delimiter", "decimal", "attributes", "covariate_panel", "calendar",
             "covariate_customer_col", "covariate_period_col", "covariate_columns",
             "events", "event_col", "event_value_col", "quantity_col"}
#: the [data] keys of time-varying covariates, files or names, as backtest takes them
COVARIATE_FILES = ("covariate_panel", "calendar")
BACKTEST_KEYS = {"cutoffs", "rolling_cutoffs", "horizon", "candidates", "churn_adjuster",
                 "cohort_freq", "acquisition_cost", "intervals", "interval_draws"}
#: the leaderboard's default columns; ``compare(metrics=...)`` picks others, any metric a
#: backtest logs (``purchases_coverage_95``, ``purchases_rps``, ...)
LEADERBOARD = ["activity_auc", "activity_brier", "purchases_mae", "purchases_aggregate_pct_error",
               "spend_mae", "spend_normalized_gini", "purchases_coverage_90",
               "purchases_log_score"]


def _metric_columns(metrics: list[str] | str | None, sort_by: str) -> list[str]:
    """The leaderboard's columns, each a metric whose direction is known (checked by
    ``ranking_key``, which names the known ones), ``sort_by`` among them."""
    if metrics is None:
        columns = list(LEADERBOARD)
    else:
        items = metrics.split(",") if isinstance(metrics, str) else list(metrics)
        columns = list(dict.fromkeys(m.strip() for m in items if isinstance(m, str) and m.strip()))
        if not columns or len(columns) != len([m for m in items if not isinstance(m, str)
                                               or m.strip()]):
            raise ClvlabError(f"metrics (--metrics) must be metric names, comma-separated, e.g. "
                              f"purchases_coverage_90,purchases_log_score; got {metrics!r}")
    if sort_by not in columns:
        columns.append(sort_by)
    for metric in columns:
        if "_" not in metric:
            raise ClvlabError(f"metric {metric!r} names no target: write <target>_<metric>, e.g. "
                              "purchases_log_score or activity_auc")
        ranking_key(metric)  # an unknown metric: an error listing the known ones
    return columns


def load_experiment(path: str | Path) -> dict[str, Any]:
    """Read and check an experiment file; errors name the file and the key.

    Parameters
    ----------
    path : str or pathlib.Path
        The experiment's TOML file.

    Returns
    -------
    dict
        The file's tables (``[data]``, ``[backtest]``, optional ``[selection]``), checked.

    Raises
    ------
    ClvlabError
        Where the file is missing or not valid TOML, a table or a required key is missing, or
        a key is unknown.
    """
    path = Path(path)
    try:
        config = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ClvlabError(f"experiment file {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ClvlabError(f"experiment file {path} is not valid TOML: {exc}") from None
    for section, keys in (("data", DATA_KEYS), ("backtest", BACKTEST_KEYS)):
        if not isinstance(config.get(section), dict):
            raise ClvlabError(f"{path}: the [{section}] table is missing")
        unknown = set(config[section]) - keys
        if unknown:
            raise ClvlabError(f"{path}: unknown key(s) {sorted(unknown)} in [{section}]; "
                              f"expected some of {sorted(keys)}")
    for key in ("horizon", "candidates"):
        if key not in config["backtest"]:
            raise ClvlabError(f"{path}: [backtest] needs {key!r}")
    given = [k for k in ("cutoffs", "rolling_cutoffs") if k in config["backtest"]]
    if len(given) != 1:
        raise ClvlabError(f"{path}: [backtest] needs either cutoffs (dates, e.g. cutoffs = "
                          '["1997-09-30", "1997-12-31"]) or rolling_cutoffs (how many cutoffs, one '
                          "horizon apart, ending one horizon before the log's last date: what a "
                          f"weekly retraining wants), not {'both' if given else 'neither'}")
    if "selection" in config:
        from clvlab.ops.selection import parse_rule

        config["selection"] = parse_rule(path, config["selection"])
    unknown = set(config) - {"name", "data", "backtest", "selection"}
    if unknown:
        raise ClvlabError(f"{path}: unknown table(s) or key(s) {sorted(unknown)}; an experiment "
                          "has name, [data], [backtest] and optionally [selection]")
    if "source" not in config["data"]:
        raise ClvlabError(f"{path}: [data] needs 'source'")
    _check_values(path, config)
    config.setdefault("name", path.stem)
    return config


def _check_values(path: Path, config: dict[str, Any]) -> None:
    """Types and ranges of the settings, named by file, table and key (a TOML file gives strings
    where numbers were meant: ``horizon = "13 weeks"``)."""
    from clvlab.core.timeunits import normalize_time_unit

    data, settings = config["data"], config["backtest"]
    unit = data.get("time_unit")
    if unit is not None:
        try:
            normalize_time_unit(unit)
        except ClvlabError as exc:
            raise ClvlabError(f"{path}: [data] time_unit: {exc}") from None
    horizon = settings["horizon"]
    if isinstance(horizon, bool) or not isinstance(horizon, (int, float)) or not horizon > 0:
        raise ClvlabError(
            f"{path}: [backtest] horizon must be a number > 0 of time units (the [data] "
            f"time_unit, {unit or 'W'!r} by default: e.g. horizon = 13 for 13 weeks), got "
            f"{horizon!r}")
    rolling = settings.get("rolling_cutoffs")
    if rolling is not None and (isinstance(rolling, bool) or not isinstance(rolling, int)
                                or rolling < 1):
        raise ClvlabError(f"{path}: [backtest] rolling_cutoffs must be a whole number >= 1 (e.g. "
                          f"rolling_cutoffs = 3), got {rolling!r}")
    for key in ("cutoffs", "candidates"):
        if key not in settings:
            continue
        value = settings[key]
        if not (isinstance(value, list) and value and all(isinstance(v, str) for v in value)):
            example = '["1997-09-30", "1997-12-31"]' if key == "cutoffs" else \
                '["pareto-nbd+gamma-gamma", "historical-average"]'
            raise ClvlabError(f"{path}: [backtest] {key} must be a non-empty list of strings, "
                              f"e.g. {key} = {example}; got {value!r}")
    with_covariates = [c for c in settings["candidates"] if "[" in c]
    if with_covariates and not any(data.get(k) for k in ("attributes", *COVARIATE_FILES)):
        raise ClvlabError(f"{path}: the candidate(s) {with_covariates} read customer attributes "
                          "(the columns in brackets); name their file in [data], e.g. "
                          'attributes = "attributes.parquet" (static), or covariate_panel = '
                          '"panel.parquet" / calendar = "calendar.csv" (time-varying)')
    for key in ("attributes", *COVARIATE_FILES, "covariate_customer_col", "covariate_period_col",
                "events", "event_col", "event_value_col", "quantity_col"):
        if key in data and not isinstance(data[key], str):
            what = "a column name" if key.endswith("_col") else "a file name (CSV or Parquet)"
            raise ClvlabError(f"{path}: [data] {key} must be {what}, got {data[key]!r}")
    columns = data.get("covariate_columns")
    if columns is not None and not (isinstance(columns, list) and columns
                                    and all(isinstance(c, str) for c in columns)):
        raise ClvlabError(f"{path}: [data] covariate_columns must be a non-empty list of column "
                          f'names, e.g. covariate_columns = ["High.Season"]; got {columns!r}')
    if columns is not None and not any(data.get(k) for k in COVARIATE_FILES):
        raise ClvlabError(f"{path}: [data] covariate_columns selects columns of a covariate_panel "
                          "or calendar file; name one")
    if "intervals" in settings and not isinstance(settings["intervals"], bool):
        raise ClvlabError(f"{path}: [backtest] intervals must be true or false, got "
                          f"{settings['intervals']!r}")
    draws = settings.get("interval_draws")
    if draws is not None and (isinstance(draws, bool) or not isinstance(draws, int) or draws < 0):
        raise ClvlabError(f"{path}: [backtest] interval_draws must be a whole number >= 0 (e.g. "
                          f"interval_draws = 50; 0 leaves the total's interval out), got {draws!r}")
    cost = settings.get("acquisition_cost")
    if cost is not None and (isinstance(cost, bool) or not isinstance(cost, (int, float))
                             or not cost > 0):
        raise ClvlabError(f"{path}: [backtest] acquisition_cost must be a number > 0, got {cost!r}")


def _candidates(backtest: dict[str, Any]) -> list[str]:
    names = list(backtest["candidates"])
    # "pareto-nbd[gender]+..." is no plain registered name, so covariate candidates get no
    # adjusted copy: the adjuster's features are behaviour, not attributes
    if backtest.get("churn_adjuster"):
        names += [f"{n}+churn-adjuster" for n in backtest["candidates"]
                  if n.split("+")[0] in registry.names("transaction") and "churn-adjuster" not in n]
    return names


def _source(data: dict[str, Any], base: Path):
    source = data["source"]
    if source.startswith("cdnow:"):
        from clvlab.data.datasets import load_cdnow

        kind = source.split(":", 1)[1]
        if kind not in ("master", "sample"):
            raise ClvlabError(f"unknown bundled source {source!r}; use cdnow:master or cdnow:sample")
        return load_cdnow(sample=kind == "sample")
    path = Path(source)
    return str(path if path.is_absolute() else base / path)


def _attributes(name: str, base: Path, customer_col: str) -> pd.DataFrame:
    """The [data] attributes file, indexed by customer id (its id column, else its index)."""
    from clvlab.ops.scoring_attributes import read_attribute_table

    file = Path(name) if Path(name).is_absolute() else base / name
    if not file.is_file():
        raise ClvlabError(f"the attributes file {file} named in [data] does not exist")
    table = read_attribute_table(file, {})
    return table.set_index(customer_col) if customer_col in table.columns else table


def _covariate_file(name: str, base: Path, key: str) -> pd.DataFrame:
    """A [data] covariate_panel or calendar file (CSV, CSV.gz or Parquet) as a DataFrame."""
    file = Path(name) if Path(name).is_absolute() else base / name
    if not file.is_file():
        raise ClvlabError(f"the {key} file {file} named in [data] does not exist")
    if file.name.lower().endswith(".parquet"):
        return pd.read_parquet(file)
    return pd.read_csv(file)


class ExperimentRun(tuple):
    """What :func:`run_experiment` did: unpacks as the pair ``(run_id, result)`` (the backtest's
    parent run and its :class:`~clvlab.evaluation.BacktestResult`), and holds ``selection``, the
    :class:`~clvlab.ops.selection.SelectionDecision` of a file with a ``[selection]`` rule
    (else None).

    Parameters
    ----------
    run_id : str
        The backtest's parent MLflow run.
    result : BacktestResult
        The backtest's result.
    selection : SelectionDecision, optional
        The decision of the file's ``[selection]`` rule, or None.
    """

    def __new__(cls, run_id: str, result, selection=None):
        self = super().__new__(cls, (run_id, result))
        self.selection = selection
        return self

    run_id = property(lambda self: self[0], doc="The backtest's parent MLflow run (item 0).")
    result = property(lambda self: self[1], doc="The backtest's result (item 1).")


def run_experiment(path: str | Path, *, progress: bool | None = None) -> ExperimentRun:
    """Run the experiment's backtest and log it (parent run named after the file, the file as
    an artifact). With a ``[selection]`` rule (:mod:`clvlab.ops.selection`) the champion's
    candidate joins the backtest, and the winner is refitted on the whole log, registered and
    promoted as the rule decides. Returns an :class:`ExperimentRun` (``run_id, result = ...``).

    Parameters
    ----------
    path : str or pathlib.Path
        The experiment's TOML file.
    progress : bool, optional
        Show the backtest's progress (None: when someone is watching).

    Returns
    -------
    ExperimentRun
        ``(run_id, result)``, with ``selection``.

    Raises
    ------
    ClvlabError
        Where the file is invalid (:func:`load_experiment`), a data file is missing, or the
        tracking store is unreachable.
    """
    from clvlab.evaluation import backtest
    from clvlab.ops import selection
    from clvlab.ops.tracking import connect, log_backtest

    path = Path(path)
    config = load_experiment(path)
    connect()  # an unreachable store fails here, before the work
    data, settings = dict(config["data"]), config["backtest"]
    transactions = _source(data, path.parent)
    data.pop("source")
    if "attributes" in data:
        data["customer_attributes"] = _attributes(data.pop("attributes"), path.parent,
                                                  data.get("customer_col", "customer_id"))
    keep = data.pop("covariate_columns", None)
    ids = data.get("covariate_customer_col") or data.get("customer_col", "customer_id")
    for key in COVARIATE_FILES:
        if key in data:
            frame = _covariate_file(data[key], path.parent, key)
            if keep is not None:
                fixed = [ids, data.get("covariate_period_col", "period"), "period"]
                frame = frame[[c for c in frame.columns if c in fixed or c in keep]]
            data[key] = frame
    if "events" in data:  # a file (or glob) beside the experiment file; read with its rules
        import glob

        events = Path(data["events"])
        data["events"] = str(events if events.is_absolute() else path.parent / events)
        if not glob.glob(data["events"]):
            raise ClvlabError(f"{path}: [data] events: no event log file matches "
                              f"{data['events']} (a CSV or Parquet file or glob, relative to the "
                              "experiment file)")
    rule = config.get("selection")
    candidates = _candidates(settings)
    champion = selection.champion_candidate(rule.registered_model) if rule else None
    if champion is not None and not any(selection.same_candidate(champion[1], make_candidate(c).name)
                                        for c in candidates):
        # scored on the same cutoffs and customers as the challengers, or not compared at all
        candidates.append(selection.spec_of(champion[1]))
    if rule is not None and not isinstance(transactions, pd.DataFrame):
        # read once: the backtest and the winner's refit see the same rows
        transactions = read_files(transactions, data.get("delimiter"), data.get("decimal", "."))
    cutoffs = settings.get("cutoffs") or _rolling_cutoffs(transactions, data, settings)
    options = {k: settings[k] for k in ("cohort_freq", "acquisition_cost", "intervals",
                                        "interval_draws") if k in settings}
    result = backtest(transactions, candidates, cutoffs, float(settings["horizon"]),
                      keep_predictions=False, progress=progress, **data, **options)
    run_id = log_backtest(result, experiment=config["name"], run_name=path.stem,
                          tags={"clvlab.experiment_file": path.name})
    import mlflow

    mlflow.MlflowClient().log_artifact(run_id, str(path), artifact_path="experiment")
    decision = None
    if rule is not None:
        decision = selection.decide(selection.candidate_scores(result, rule), rule, champion)
        decision.backtest_run = run_id
        fit_options = {k: data[k] for k in ("customer_col", "date_col", "amount_col", "time_unit",
                                            "date_format", "timezone", "customer_attributes",
                                            "events", "event_col", "event_value_col",
                                            "quantity_col")
                       if k in data}
        decision = selection.refit_and_register(decision, transactions, float(settings["horizon"]),
                                                fit_options, experiment_file=str(path))
    return ExperimentRun(run_id, result, decision)


def _rolling_cutoffs(transactions: Any, data: dict[str, Any], settings: dict[str, Any]) -> list[str]:
    """``rolling_cutoffs = n``: n cutoffs one horizon apart, the last one horizon before the
    log's last day, so that each has a whole holdout window and a weekly rerun moves them on."""
    from clvlab.core.timeunits import UNIT_SECONDS
    from clvlab.data.calibration import load_log
    from clvlab.data.rfm_rules import make_settings

    defaults = {"customer_col": "customer_id", "date_col": "date", "amount_col": None,
                "time_unit": "W", "date_format": None, "timezone": "UTC"}
    log_settings = make_settings(**{k: data.get(k, v) for k, v in defaults.items()},
                                 delimiter=data.get("delimiter"), decimal=data.get("decimal", "."),
                                 merge_period=None)
    _, _, ts, _ = load_log(transactions, log_settings)
    step = pd.Timedelta(seconds=float(settings["horizon"]) * UNIT_SECONDS[log_settings.time_unit])
    last = ts.max().normalize()
    wanted = int(settings["rolling_cutoffs"])
    cutoffs = [(last - k * step).floor("D") for k in range(wanted, 0, -1)]
    possible = sum(c > ts.min() for c in cutoffs)
    if possible < wanted:
        raise ClvlabError(f"[backtest] rolling_cutoffs = {wanted}: the log ({ts.min().date()} to "
                          f"{ts.max().date()}) holds {possible} whole horizon(s) of "
                          f"{settings['horizon']:g} before its last day after its first "
                          f"transaction; use rolling_cutoffs = {max(possible, 1)} or less, or a "
                          "shorter horizon")
    return [str(c.date()) for c in cutoffs]


def compare(experiment: str, *, sort_by: str = "activity_auc",
            metrics: list[str] | str | None = None) -> pd.DataFrame:
    """Leaderboard of every backtest run of an MLflow experiment.

    Parameters
    ----------
    experiment : the MLflow experiment's name.
    sort_by : the metric the rows are ordered by, best first (as
        :func:`clvlab.backtesting.metrics.ranking_key` defines best: coverages by their
        distance from the level; unknown values, NaN, last).
    metrics : the metric columns (a list or a comma string, each ``<target>_<metric>`` as the
        backtest logs them, e.g. ``purchases_coverage_95``); default :data:`LEADERBOARD`.
        ``sort_by`` is added when it is not among them.

    Returns
    -------
    pandas.DataFrame
        One row per run and candidate with the mean metrics over the cutoffs; a metric a run
        did not log (the interval metrics of a baseline, spend without amounts) is NaN.

    Raises
    ------
    ClvlabError
        For an unknown experiment or metric (naming the known ones).
    """
    from clvlab.ops.tracking import connect

    columns = _metric_columns(metrics, sort_by)
    mlflow = connect()
    if mlflow.get_experiment_by_name(experiment) is None:
        raise ClvlabError(f"no MLflow experiment named {experiment!r}")
    runs = mlflow.search_runs(experiment_names=[experiment],
                              filter_string="tags.`clvlab.kind` = 'backtest'")
    if runs.empty:
        raise ClvlabError(f"experiment {experiment!r} has no clvlab backtest runs")
    rows = []
    for _, run in runs.iterrows():
        values: dict[tuple[str, str], float] = {}
        for column, value in run.items():
            if not (isinstance(column, str) and column.startswith("metrics.")) or pd.isna(value):
                continue
            candidate, _, metric = column[len("metrics."):].rpartition(".")
            values[(candidate, metric)] = float(value)
        try:
            names = json.loads(run.get("tags.clvlab.candidates") or "{}")
        except json.JSONDecodeError:
            names = {}
        for candidate in sorted({c for c, _ in values}):
            row = {"run": run.get("tags.mlflow.runName", run["run_id"]), "run_id": run["run_id"],
                   "started": run["start_time"], "candidate": names.get(candidate, candidate)}
            # a metric the run could not compute (no amounts: no spend metrics) is NaN, not 0
            row.update({m: values.get((candidate, m), float("nan")) for m in columns})
            rows.append(row)
    board = pd.DataFrame(rows)
    # which way is better is defined once, with the metrics (signed errors by absolute value)
    return board.sort_values(sort_by, key=ranking_key(sort_by), na_position="last",
                             ignore_index=True)
