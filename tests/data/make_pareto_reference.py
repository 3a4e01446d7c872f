"""Write tests/data/pareto_reference_10000.npz: the mpmath reference log-likelihood
(tests/reference.py, 40 digits and up) of the 10,000 Pareto/NBD cases of
tests/test_likelihood_accuracy.py, with a SHA-256 of the cases they belong to.

    .venv/bin/python tests/data/make_pareto_reference.py

The reference takes about two CPU-minutes for the 10,000 cases; computed on every run it was
the suite's single most expensive test on both interpreters. The test compares clvlab with
these values, recomputes a fixed sample of them with reference.py on every run (so the file
cannot drift from the reference code), and recomputes any case where clvlab disagrees at 200
digits before calling it a failure, as before. Rerun this script when the cases or
reference.py change; the test says so when the cases' digest no longer matches.
"""

import concurrent.futures
import hashlib
import os
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import reference  # noqa: E402
from test_likelihood_accuracy import PARETO_SEED, pareto_cases  # noqa: E402

OUTPUT = HERE / "pareto_reference_10000.npz"


def digest(cases: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(cases, dtype="<f8").tobytes()).hexdigest()


def _reference(chunk: np.ndarray) -> list[float]:
    return [reference.pareto_nbd_loglik(*case) for case in chunk]


def main() -> None:
    cases = pareto_cases(10_000, seed=PARETO_SEED)
    with concurrent.futures.ProcessPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        values = [v for chunk in pool.map(_reference, np.array_split(cases, 40)) for v in chunk]
    np.savez_compressed(OUTPUT, reference=np.array(values, dtype=np.float64),
                        cases_sha256=np.array(digest(cases)))
    print(f"wrote {OUTPUT} ({len(values)} values)")


if __name__ == "__main__":
    main()
