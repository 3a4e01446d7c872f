"""Where the time of `clvlab score --engine spark` goes (issue 29, item 14): 600 CDNOW customers,
a cold local session, then the same job on the warm session. Run from the repository root:
`.venv/bin/python benchmarks/bench_spark_scoring.py` (writes into a temporary folder)."""
import os
import tempfile
import time
import warnings

folder = tempfile.mkdtemp()
os.chdir(folder)
warnings.simplefilter("ignore")
t0 = time.perf_counter()
import clvlab, pandas as pd
from clvlab.datasets import load_cdnow
import mlflow
os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{folder}/m.db"
log = load_cdnow(sample=True)
log = log[log.customer_id <= 600]
log.to_csv("log.csv", index=False)
rfm = clvlab.rfm_summary(log, customer_col="customer_id", date_col="date", amount_col="amount", time_unit="W")
m = clvlab.ParetoNBD().fit(rfm); g = clvlab.GammaGamma().fit(rfm)
clvlab.serving.log_clv_model(m, g, registered_model_name="t")
print("setup", round(time.perf_counter()-t0,1))
from clvlab.ops import spark as cs
import clvlab.data.rfm_spark as rs
timers = {}
def timed(mod, name):
    f = getattr(mod, name)
    def w(*a, **k):
        t = time.perf_counter(); r = f(*a, **k); timers[name] = timers.get(name, 0) + time.perf_counter() - t; return r
    setattr(mod, name, w)
for n in ("rfm_summary", "read_log"): timed(cs, n)
t = time.perf_counter(); s = cs.local_session(); print("session start", round(time.perf_counter()-t,1))
for i in range(2):
    timers.clear()
    t = time.perf_counter()
    job = clvlab.scoring.score("models:/t@challenger", "log.csv", "1998-06-30", f"out{i}", horizon=52, engine="spark", spark=s, overwrite=True)
    print("run", i, "total", round(time.perf_counter()-t,1), {k: round(v,1) for k,v in timers.items()})
