"""``make demo``: the main job on the embedded default (bundled CDNOW data, local files).

It writes the bundled CDNOW sample log to Parquet, summarises it with DuckDB (calibration to
1997-09-30, holdout to 1998-06-30, weeks: the classic split), fits BG/NBD, Pareto/NBD and
Gamma-Gamma, prints expected against actual holdout purchases by calibration frequency, and
writes the models (JSON) and each customer's 52-week CLV (Parquet), all atomically.
"""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd

from ._atomic import atomic_output
from .datasets import load_cdnow
from .clv import customer_lifetime_value
from .models import BetaGeo, GammaGamma, ParetoNBD
from .rfm import rfm_summary

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
    return rfm
