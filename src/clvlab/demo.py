"""``make demo``: the main job on the embedded default (bundled CDNOW data, local files).

For now the job is the data layer: it writes the bundled CDNOW sample log to Parquet, summarises
it with DuckDB (calibration to 1997-09-30, holdout to 1998-06-30, weeks, the classic split),
checks the published counts and writes the RFM table atomically.
"""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd

from ._atomic import atomic_output
from .datasets import load_cdnow
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
    table = (rfm.assign(calibration_frequency=rfm["frequency"].clip(upper=7))
             .groupby("calibration_frequency")
             .agg(customers=("frequency", "size"),
                  mean_holdout_purchases=("frequency_holdout", "mean"),
                  mean_repeat_spend=("monetary_value", "mean")))
    table.index = [str(i) if i < 7 else "7+" for i in table.index]
    print("\nHoldout purchases by calibration frequency:")
    print(table.round(3).to_string())
    print(f"\nwrote {rfm_path}")
    return rfm
