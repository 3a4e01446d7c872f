from __future__ import annotations

import contextlib

from pathlib import Path

import pandas as pd
import pytest
from threadpoolctl import threadpool_limits

# The suite makes thousands of small fits; a BLAS or OpenMP pool of more than one thread on a
# busy 2-core machine waits more than it works (one sBG fit: 0.34 s with two OpenBLAS threads,
# 0.023 s with one). Samplers' worker processes start with their own single-thread pools.
threadpool_limits(limits=1)

import clvlab
from clvlab.datasets import load_cdnow

# suite_time: both cores, expensive fixtures built once, longest first, and the suite's time
# budget; pytester: small suites of their own for test_suite_time
pytest_plugins = ["suite_time", "pytester"]

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
CDNOW_SPLIT = dict(calibration_end="1997-09-30", observation_end="1998-06-30")


@pytest.fixture(scope="session")
def cdnow_sample() -> pd.DataFrame:
    return load_cdnow(sample=True)


@pytest.fixture(scope="session")
def cdnow_master() -> pd.DataFrame:
    return load_cdnow(sample=False)


def assert_same_rfm(left: pd.DataFrame, right: pd.DataFrame) -> None:
    """Counts and durations identical to the bit; spend equal up to summation order."""
    assert list(left.columns) == list(right.columns)
    assert left.index.equals(right.index)
    for column in left.columns:
        if column.startswith("monetary"):
            pd.testing.assert_series_equal(left[column], right[column], check_exact=False, rtol=1e-12)
        else:
            pd.testing.assert_series_equal(left[column], right[column], check_exact=True)
    assert left.attrs == right.attrs


def both_engines(transactions: pd.DataFrame, **kwargs) -> pd.DataFrame:
    """Run rfm_summary with pandas and with DuckDB, assert they agree, return the result."""
    by_pandas = clvlab.rfm_summary(transactions, engine="pandas", **kwargs)
    by_duckdb = clvlab.rfm_summary(transactions, engine="duckdb", **kwargs)
    assert_same_rfm(by_pandas, by_duckdb)
    return by_pandas


def scramble_after(log: pd.DataFrame, cutoff, seed: int = 0) -> pd.DataFrame:
    """The log with every row after ``cutoff`` given a random amount and a shuffled customer:
    whatever depends only on data up to the cutoff must not change."""
    import numpy as np

    later = log["date"] > pd.Timestamp(cutoff)
    scrambled = log.copy()
    rng = np.random.default_rng(seed)
    scrambled.loc[later, "amount"] = rng.uniform(0, 500, later.sum())
    scrambled.loc[later, "customer_id"] = rng.permutation(scrambled.loc[later, "customer_id"].to_numpy())
    return scrambled


@pytest.fixture(scope="session")
def spark():
    """One local[2] Spark session on 127.0.0.1 for every Spark test of the run (a JVM takes
    seconds to start); suite_time puts all its tests on one xdist worker. Stopped after the last
    test that uses it (``pytest_runtest_teardown`` below), or at the end."""
    import warnings

    pytest.importorskip("pyspark", reason="pip install clvlab[spark]")
    from clvlab import spark as clv_spark

    warnings.filterwarnings("ignore", message=".*PySpark does not yet fully support pandas.*")
    session = clv_spark.local_session(cores=2, app_name="clvlab-tests", fast_start=True)
    session.conf.set("spark.sql.session.timeZone", "UTC")
    _spark_sessions.append(session)
    yield session
    _stop_spark()


_spark_sessions: list = []


def _stop_spark() -> None:
    while _spark_sessions:
        _spark_sessions.pop().stop()


def pytest_runtest_teardown(item, nextitem):
    """Stop the Spark session once no test left in this process's order uses it: an idle local
    session kept about a tenth of a core busy (heartbeats, its Python workers) for the rest of
    the run. Later tests that need it would find it stopped and fail loudly, never silently."""
    if _spark_sessions and "spark" in item.fixturenames:
        later = item.session.items[item.session.items.index(item) + 1:]
        if not any("spark" in other.fixturenames for other in later):
            _stop_spark()


@pytest.fixture(scope="session")
def mlflow_store(tmp_path_factory):
    """One sqlite MLflow store for the test session (a new store takes seconds to create)."""
    folder = tmp_path_factory.mktemp("mlflow")
    return folder, f"sqlite:///{folder}/mlflow.db"


@pytest.fixture
def tracking(mlflow_store, monkeypatch):
    """Point clvlab (and MLflow) at the session store, from inside its folder, so that artifact
    folders (./mlruns) land there and never in the working tree."""
    folder, uri = mlflow_store
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.chdir(folder)
    _point_mlflow_at(uri)
    return folder, uri


def _point_mlflow_at(uri: str) -> None:
    """MLflow's own calls in a test (mlflow.set_experiment ...) use the store the environment
    names: clvlab's connect() pins MLflow's process-wide tracking URI to the store of the test
    that last called it, which would otherwise outlive that test in this worker."""
    import sys

    if "mlflow" in sys.modules:
        from clvlab.ops.tracking import connect

        connect()  # reads MLFLOW_TRACKING_URI, drops a stale active experiment, pins the URI


@pytest.fixture
def scratch_store(tmp_path, monkeypatch):
    """Work in an empty folder with an MLflow store of its own (for code that registers models
    under fixed names, as the README and the notebooks do); returns the folder."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    monkeypatch.delenv("MLFLOW_EXPERIMENT_ID", raising=False)
    _point_mlflow_at(f"sqlite:///{tmp_path}/mlflow.db")
    return tmp_path


@contextlib.contextmanager
def mlflow_server(folder):
    """A real `mlflow server` on 127.0.0.1 in its own process group; yields (uri) and stops the
    group afterwards. ``mlflow_server.process`` is the running server (tests kill it)."""
    import os
    import signal
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    server = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
         "--workers", "1", "--backend-store-uri", f"sqlite:///{folder}/server.db",
         "--artifacts-destination", str(Path(folder) / "artifacts")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True, env=env,
        cwd=folder)
    mlflow_server.process = server
    uri = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(uri + "/health", timeout=2) as reply:
                    if reply.status == 200:
                        break
            except OSError:
                pass
            assert server.poll() is None, "the MLflow server exited"
            assert time.monotonic() < deadline, "the MLflow server did not start in 90 s"
            time.sleep(0.5)
        yield uri
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
