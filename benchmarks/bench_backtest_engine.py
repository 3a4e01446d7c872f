"""The backtest engine's own cost: the CDNOW sample log (2,357 customers), 4 cutoffs x the 7 default
candidates with amounts, 13 weeks; the models' fits are timed apart (they are not the engine's).

    .venv/bin/python benchmarks/bench_backtest_engine.py [repeats]      # best of the repeats
    .venv/bin/python benchmarks/bench_backtest_engine.py profile        # cProfile, top 45

CPU seconds are the figure to compare on a shared machine (wall time moves with the load).
Issue 20 (2026-11-29): outside the model fits 2.6 s CPU before, 0.94 s after (the tracking curve is
one model call over distinct histories; predictions share P(alive); baselines count activity
once per cutoff).
"""
import sys
import time

import clvlab

PROFILE = "/tmp/clvlab-backtest.prof"


log = clvlab.datasets.load_cdnow()
cutoffs = ["1997-06-30", "1997-09-30", "1997-12-31", "1998-03-31"]
candidates = ["pareto-nbd+gamma-gamma", "bg-nbd+gamma-gamma", "historical-average", "historical-ltv", "arpu-churn", "aov-frequency-lifespan", "active-90d"]
if "profile" in sys.argv:
    import cProfile, pstats
    clvlab.backtest(log, ["bg-nbd"], cutoffs[:1], 13, progress=False)
    cProfile.run("clvlab.backtest(log, candidates, cutoffs, 13, amount_col='amount', progress=False)", PROFILE)
    pstats.Stats(PROFILE).sort_stats("cumulative").print_stats(45)
else:
    from clvlab.backtesting import ModelCandidate
    fit_cpu = [0.0]
    original_fit = ModelCandidate.fit

    def timed_fit(self, *args):  # the models' fits are not the engine's: time them apart
        start = time.process_time()
        try:
            return original_fit(self, *args)
        finally:
            fit_cpu[0] += time.process_time() - start

    ModelCandidate.fit = timed_fit
    best, cpu, engine = [], [], []
    clvlab.backtest(log, ["bg-nbd"], cutoffs[:1], 13, progress=False)  # warm the compile caches
    for _ in range(int(sys.argv[1]) if len(sys.argv) > 1 else 1):
        fit_cpu[0] = 0.0
        start, start_cpu = time.perf_counter(), time.process_time()
        clvlab.backtest(log, candidates, cutoffs, 13, amount_col="amount", progress=False)
        best.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
        engine.append(cpu[-1] - fit_cpu[0])
    print(f"{len(log):,} rows, {log['customer_id'].nunique():,} customers, {len(cutoffs)} cutoffs x "
          f"{len(candidates)} candidates: {min(best):.2f} s wall, {min(cpu):.2f} s CPU, of which outside the model fits {min(engine):.2f} s (best of {len(best)})")
