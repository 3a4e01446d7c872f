"""``make demo``: the main job on the embedded default (bundled CDNOW data, local MLflow store).

It writes the bundled CDNOW sample log to Parquet, summarises it with DuckDB (calibration to
1997-09-30, holdout to 1998-06-30, weeks: the classic split), fits BG/NBD, Pareto/NBD and
Gamma-Gamma, prints expected against actual holdout purchases by calibration frequency, and
writes the models (JSON) and each customer's 52-week CLV (Parquet), all atomically. Then the
MLflow path: the fits are logged, a backtest (experiments/cdnow_quick.toml's settings) is
logged, the CLV model is registered (@challenger) and promoted on that backtest (@champion),
and the scoring job scores every customer as of 1998-06-30 from the registered model. Last, one
monitoring run: the champion scores every customer as of 1997-09-30 (39 weeks, 90 % intervals)
and ``clvlab.ops.monitoring.monitor`` compares that forecast with what they did up to 1998-06-30
(verdict, tables and plots in ``<output>/monitoring/``).
"""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd

from clvlab.core.atomic import atomic_output
from clvlab.data.datasets import load_cdnow
from clvlab.models.clv import customer_lifetime_value
from clvlab.models import BetaGeo, GammaGamma, ParetoNBD
from clvlab.data.rfm import rfm_summary

__all__ = ["run_demo", "mlflow_ui_command", "CALIBRATION_END", "OBSERVATION_END"]

CALIBRATION_END = "1997-09-30"
OBSERVATION_END = "1998-06-30"


def run_demo(output_dir: str | Path = "demo-output") -> pd.DataFrame:
    output = Path(output_dir)
    log_path = output / "cdnow_sample_log.parquet"
    with atomic_output(log_path, overwrite=True) as temporary:
        load_cdnow(sample=True).to_parquet(temporary, index=False)
    started = time.perf_counter()
    rfm = rfm_summary(str(log_path), amount_col="amount", time_unit="W",
                      calibration_end=CALIBRATION_END, observation_end=OBSERVATION_END)
    elapsed = time.perf_counter() - started
    rfm_path = output / "cdnow_rfm.parquet"
    with atomic_output(rfm_path, overwrite=True) as temporary:
        rfm.to_parquet(temporary)

    print(f"CDNOW sample: RFM of {log_path} with DuckDB in {elapsed:.2f} s, weeks, "
          f"calibration to {CALIBRATION_END}, holdout to {OBSERVATION_END}")
    print(f"  customers                      {len(rfm):>7,}")
    print(f"  with repeat purchases          {int((rfm['frequency'] > 0).sum()):>7,}")
    print(f"  calibration repeat purchases   {int(rfm['frequency'].sum()):>7,}")
    print(f"  holdout purchases              {int(rfm['frequency_holdout'].sum()):>7,}")
    print(f"  max T (weeks)                  {rfm['T'].max():>7.3f}")
    holdout = rfm["duration_holdout"].iloc[0]
    models = {"BG/NBD": BetaGeo().fit(rfm), "Pareto/NBD": ParetoNBD().fit(rfm)}
    spend = GammaGamma().fit(rfm)
    print()
    for name, model in {**models, "Gamma-Gamma": spend}.items():
        print(f"{name}: {model!r}")
        print(model.summary().round(4).to_string(), "\n")
    group = rfm["frequency"].clip(upper=7).rename("calibration frequency")
    table = pd.DataFrame({"customers": rfm.groupby(group).size(),
                          "actual": rfm.groupby(group)["frequency_holdout"].mean()})
    for name, model in models.items():
        table[name] = model.expected_purchases(rfm, holdout).groupby(group).mean()
    table.index = [str(i) if i < 7 else "7+" for i in table.index]
    print(f"Mean holdout purchases ({holdout:.0f} weeks) by calibration frequency:")
    print(table.round(3).to_string())
    totals = {name: model.expected_purchases(rfm, holdout).sum() for name, model in models.items()}
    print("total: actual {:,.0f}; ".format(rfm["frequency_holdout"].sum())
          + "; ".join(f"{name} {value:,.0f}" for name, value in totals.items()))

    clv = pd.DataFrame({
        "p_alive": models["Pareto/NBD"].p_alive(rfm),
        "expected_purchases_52w": models["Pareto/NBD"].expected_purchases(rfm, 52),
        "expected_spend": spend.expected_spend(rfm),
        "clv_52w": customer_lifetime_value(models["Pareto/NBD"], spend, rfm, horizon=52,
                                           discount_rate=0.0015, margin=1.0),
    })
    clv_path = output / "cdnow_clv.parquet"
    with atomic_output(clv_path, overwrite=True) as temporary:
        clv.to_parquet(temporary)
    for name, model in {"pareto_nbd": models["Pareto/NBD"], "bg_nbd": models["BG/NBD"],
                        "gamma_gamma": spend}.items():
        model.save(output / f"{name}.json")
    print(f"\n52-week CLV (Pareto/NBD + Gamma-Gamma, 0.15% a week): mean {clv['clv_52w'].mean():.2f}, "
          f"top decile holds {clv['clv_52w'].nlargest(len(clv) // 10).sum() / clv['clv_52w'].sum():.0%}")
    print(f"wrote {rfm_path}, {clv_path} and the models in {output}/ (JSON)")
    _mlflow_path(models["Pareto/NBD"], spend, rfm, log_path, output)
    return rfm


def _mlflow_path(transaction, spend, rfm, log_path: Path, output: Path) -> None:
    """Track, register, promote and score through MLflow (the embedded sqlite store unless
    MLFLOW_TRACKING_URI says otherwise)."""
    from clvlab.evaluation import backtest
    from clvlab.ops.scoring import score
    from clvlab.ops.serving import log_clv_model, promote
    from clvlab.ops.tracking import log_fit, log_backtest, tracking_uri

    started = time.perf_counter()
    print(f"\nMLflow ({tracking_uri()}):")
    for model in (transaction, spend):
        run = log_fit(model, rfm, experiment="clvlab-demo")
        print(f"  logged the {type(model).__name__} fit: run {run}")
    result = backtest(str(log_path), ["pareto-nbd+gamma-gamma", "bg-nbd+gamma-gamma",
                                      "historical-average"],
                      cutoffs=["1997-09-30", "1998-03-31"], horizon=13, amount_col="amount",
                      keep_predictions=False)
    backtest_run = log_backtest(result, experiment="clvlab-demo", run_name="demo backtest")
    print(f"  logged the backtest: run {backtest_run}")
    print("  " + repr(result).replace("\n", "\n  "))
    info = log_clv_model(transaction, spend, registered_model_name="cdnow-clv")
    version = promote("cdnow-clv", backtest_run=backtest_run)
    print(f"  registered cdnow-clv version {info.registered_model_version} (@challenger), "
          f"promoted to @champion on the backtest")
    scores_path = output / "cdnow_scores.parquet"
    job = score("models:/cdnow-clv@champion", str(log_path), "1998-06-30", scores_path,
                amount_col="amount", horizon=52, discount_rate=0.0015, overwrite=True,
                experiment="clvlab-demo")
    print(f"  scored {job.customers_scored:,} customers as of 1998-06-30 with "
          f"models:/cdnow-clv@champion (version {version}): mean 52-week CLV "
          f"{job.stats['clv.mean']:.2f}; wrote {scores_path}")
    _monitoring_step(log_path, output)
    print(f"  MLflow part in {time.perf_counter() - started:.1f} s. To browse the runs and the "
          f"registered model (from any folder):\n    {mlflow_ui_command(tracking_uri())}")


def _monitoring_step(log_path: Path, output: Path) -> None:
    """Score as of the calibration end and monitor that forecast at the observation end."""
    from clvlab.ops.monitoring import monitor
    from clvlab.ops.monitoring_runs import write_outputs
    from clvlab.ops.scoring import score

    scores_path = output / "cdnow_scores_1997-09-30.parquet"
    score("models:/cdnow-clv@champion", str(log_path), CALIBRATION_END, scores_path,
          amount_col="amount", horizon=39, interval_level=0.9, overwrite=True,
          experiment="clvlab-demo")
    result = monitor(scores_path, str(log_path), OBSERVATION_END, experiment="clvlab-demo",
                     band_points=3)
    write_outputs(result, output / "monitoring")
    m, level = result.metrics, f"{100 * result.thresholds.band_retrain:g}"
    print(f"  monitored the forecast of {CALIBRATION_END} at {OBSERVATION_END} (39 weeks): "
          f"verdict {result.verdict}; repeat purchases {m['purchases_realised']:,.0f} realised, "
          f"{m['purchases_expected']:,.0f} expected ({level}% band {m[f'purchases_lower_{level}']:,.0f}-"
          f"{m[f'purchases_upper_{level}']:,.0f}); AUC {m['activity_auc']:.3f}, calibration error "
          f"{m['calibration_error']:.3f}, 90% interval coverage {m['interval_coverage']:.1%}; "
          f"run {result.run_id}; tables and plots in {output / 'monitoring'}/")
    for reason in result.reasons:
        print(f"    {reason}")


def mlflow_ui_command(uri: str) -> str:
    """The ``mlflow ui`` command line that works from any folder: this environment's mlflow by
    its absolute path and a relative sqlite store made absolute (``sqlite:///mlflow.db`` is
    relative to where the command runs)."""
    import shlex
    import sys

    executable = Path(sys.executable).parent / "mlflow"
    prefix = "sqlite:///"
    if uri.startswith(prefix) and not uri[len(prefix):].startswith("/"):
        uri = prefix + str(Path(uri[len(prefix):]).resolve())
    return f"{shlex.quote(str(executable))} ui --backend-store-uri {shlex.quote(uri)}"
