"""Run one benchmark measurement in a fresh process and read its JSON answer."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from typing import Callable, Sequence


def run_worker(command: Sequence[str], timeout: float,
               preexec_fn: Callable[[], None] | None = None) -> dict:
    """The last stdout line of ``command`` as JSON, or ``{"error": ...}``.

    The worker gets its own process group, killed whole on timeout: PyMC's chain processes
    outlive a killed parent and would compete with the next measurement.
    """
    process = subprocess.Popen(list(command), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, start_new_session=True, preexec_fn=preexec_fn)
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        return {"error": f"over {timeout:.0f} s"}
    if process.returncode != 0:
        return {"error": ((stderr.strip().splitlines() or ["?"])[-1])[:160]}
    return json.loads(stdout.strip().splitlines()[-1])
