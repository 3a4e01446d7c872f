"""Maximum-likelihood fits with covariates: a continuous covariate (every customer a covariate
group of their own), two 0/1 covariates, and no covariates, for every model.

Each measurement runs in a fresh process (``_isolated.run_worker``) that simulates (or reads
from ``--data-dir``, where simulated tables are kept between runs) the customer base, then
times three fits of the same model on it:

- ``cold``: the first fit, with numba's on-disk cache redirected to an empty folder
  (``NUMBA_CACHE_DIR``): what the first fit ever on a machine pays for compilation (only with
  ``--cold``; the compiled loop over groups that the code before the per-row kernels used is
  compiled in every process anyway);
- ``first``: the first fit in a fresh process with the cache as it is (a user's next session);
- ``warm``: a second fit in the same process.

Wall and CPU time of each (CPU time counts every thread, so on an idle machine wall time is
what a user waits). The machine is shared: each measurement is the least of ``--repeats``
workers, and the load average before the run is printed.

``--src DIR`` runs the workers on another copy of clvlab's ``src`` (to time the code before a
change: ``git archive HEAD src | tar -x -C /tmp/before``), e.g.::

    .venv/bin/python benchmarks/bench_covariate_fit.py --models pareto-nbd,bg-nbd \\
        --data continuous:20000,continuous:1000000,binary:1000000,none:1000000
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from _isolated import run_worker

# population parameters and covariate effects of each simulated base (registry name, settings)
MODELS = {
    "pareto-nbd": ("pareto-nbd", dict(r=0.553, alpha=10.58, s=0.606, beta=11.67), {}),
    "bg-nbd": ("bg-nbd", dict(r=0.243, alpha=4.414, a=0.793, b=2.426), {}),
    "bg-nbd-b": ("bg-nbd", dict(r=0.243, alpha=4.414, a=0.793, b=2.426), {"dropout_form": "b"}),
    "mbg-nbd": ("mbg-nbd", dict(r=0.243, alpha=4.414, a=0.793, b=2.426), {"dropout_form": "b"}),
    "bg-bb": ("bg-bb", dict(alpha=1.2, beta=0.75, gamma=0.66, delta=2.8), {}),
    "sbg": ("sbg", dict(alpha=0.7, beta=1.2), {}),
    "gamma-gamma": ("gamma-gamma", dict(p=6.25, q=3.74, v=15.44), {}),
}
# purchase and dropout move both ways, as on real data; spend and dropout-only models take one
EFFECTS = {"purchase": 0.3, "dropout": -0.3, "spend": 0.2}
BINARY = {"purchase": {"x1": 0.3, "x2": -0.2}, "dropout": {"x1": -0.4, "x2": 0.5},
          "spend": {"x1": 0.2, "x2": -0.1}}


def processes(name: str) -> list[str]:
    from clvlab.data.simulate import covariate_links

    registry, _, settings = MODELS[name]
    return list(dict.fromkeys(p for p, _ in covariate_links(
        registry, settings.get("dropout_form", "a_and_b")).values()))


def dataset(name: str, data: str, data_dir: Path | None):
    """(table, {process: covariate columns}) of one benchmark; kept under ``data_dir``."""
    import numpy as np
    import pandas as pd

    import clvlab

    kind, n = data.split(":")
    n = int(n)
    used = processes(name)
    columns = {"continuous": ["z"], "binary": ["x1", "x2"], "none": []}[kind]
    path = None if data_dir is None else data_dir / f"{name}-{kind}-{n}.parquet"
    if path is not None and path.exists():
        return pd.read_parquet(path), {p: columns for p in used}
    registry, params, settings = MODELS[name]
    rng = np.random.default_rng(1)
    options = {}
    if registry in ("pareto-nbd", "bg-nbd", "mbg-nbd"):
        options["T"] = np.round(rng.uniform(13, 52, n) * 7) / 7
    elif registry == "bg-bb":
        options["periods"] = 6
    elif registry == "sbg":
        options["periods"] = 12
    else:
        options["frequency"] = rng.integers(1, 10, n)
    if kind == "continuous":
        attributes = pd.DataFrame({"z": rng.normal(size=n)})
        coefficients = {p: {"z": EFFECTS[p]} for p in used}
    else:
        attributes = pd.DataFrame({"x1": rng.binomial(1, 0.5, n), "x2": rng.binomial(1, 0.5, n)})
        coefficients = {p: BINARY[p] for p in used}
    table = clvlab.simulate.with_covariates(registry, n, params=params, coefficients=coefficients,
                                            attributes=attributes, seed=2,
                                            dropout_form=settings.get("dropout_form", "a_and_b"),
                                            **options)
    if registry in ("pareto-nbd", "bg-nbd", "mbg-nbd"):  # daily resolution, as bench_fit.py
        table["recency"] = np.floor(table["recency"] * 7) / 7
        table.loc[(table["frequency"] > 0) & (table["recency"] == 0), "recency"] = 1 / 7
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        table.to_parquet(path)
    return table, {p: columns for p in used}


def worker(name: str, data: str, data_dir: str, src: str, numba_cache: str) -> dict:
    """Time the first and a second fit of ``name`` on ``data`` in this process (clvlab from
    ``src`` when given; numba's cache in ``numba_cache`` when given)."""
    if numba_cache:
        os.environ["NUMBA_CACHE_DIR"] = numba_cache
    if src:
        sys.path.insert(0, src)
    import numpy as np

    table, used = dataset(name, data, Path(data_dir) if data_dir else None)
    started = (time.perf_counter(), time.process_time())
    import clvlab
    from clvlab.models.registry import by_name

    registry, _, settings = MODELS[name]
    settings = dict(settings)
    settings.update({f"{p}_covariates": c for p, c in used.items() if c})
    if registry == "gamma-gamma":
        table = table.assign(recency=1.0, T=2.0)
    fit_kwargs = {"time_unit": "W"} if registry in ("pareto-nbd", "bg-nbd", "mbg-nbd") else {}
    times, model = [], None
    for _ in range(2):
        if times:
            started = (time.perf_counter(), time.process_time())
        model = by_name(registry).model_class(**settings).fit(table, **fit_kwargs)
        times.append((time.perf_counter() - started[0], time.process_time() - started[1]))
    convergence = getattr(model, "convergence_", {})
    return {"first_wall": times[0][0], "first_cpu": times[0][1], "warm_wall": times[1][0],
            "warm_cpu": times[1][1], "log_likelihood": float(model.log_likelihood_),
            "converged": bool(convergence.get("converged", False)),
            "iterations": int(convergence.get("iterations", 0)), "customers": len(table),
            "params": {k: float(v) for k, v in model.params_.items()},
            "clvlab": str(Path(clvlab.__file__).parent), "numpy": np.__version__}


def measure(name: str, data: str, args, cold: bool) -> dict:
    src = str(Path(args.src).resolve()) if args.src else ""
    best: dict = {}
    for _ in range(1 if cold else args.repeats):
        with tempfile.TemporaryDirectory() as empty:
            command = [sys.executable, __file__, "--worker", name, data, args.data_dir or "", src,
                       empty if cold else ""]
            result = run_worker(command, args.timeout)
        if "error" in result:
            return result
        for key, value in result.items():
            if key.endswith(("_wall", "_cpu")):
                best[key] = min(best.get(key, float("inf")), value)
            else:
                best[key] = value
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--data", default="continuous:20000,continuous:1000000,binary:1000000,none:1000000")
    parser.add_argument("--repeats", type=int, default=2, help="workers per measurement (least time)")
    parser.add_argument("--cold", action="store_true", help="also time a fit with an empty numba cache")
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--src", default=None, help="another copy of clvlab's src to time")
    parser.add_argument("--data-dir", default=str(Path(tempfile.gettempdir()) / "clvlab-bench-covariates"))
    parser.add_argument("--worker", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(*args.worker)))
        return
    print(f"load average before: {os.getloadavg()}; src: {args.src or 'this checkout'}")
    print("| model | data | cold (s wall) | first fit, fresh process (s wall / CPU) | warm fit "
          "(s wall / CPU) | iterations | log-likelihood |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for name in args.models.split(","):
        for data in args.data.split(","):
            result = measure(name, data, args, cold=False)
            if "error" in result:
                print(f"| {name} | {data} | | {result['error']} | | | |", flush=True)
                continue
            cold = measure(name, data, args, cold=True)["first_wall"] if args.cold else float("nan")
            print(f"| {name} | {data} | {cold:.2f} | {result['first_wall']:.2f} / "
                  f"{result['first_cpu']:.2f} | {result['warm_wall']:.2f} / {result['warm_cpu']:.2f} "
                  f"| {result['iterations']} | {result['log_likelihood']:,.2f}"
                  f"{'' if result['converged'] else ' (not converged)'} |", flush=True)


if __name__ == "__main__":
    main()
