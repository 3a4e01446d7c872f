"""The README's twenty-line example runs as written (in a scratch folder, own MLflow store)."""

from __future__ import annotations

import re
from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")

README = Path(__file__).resolve().parents[1] / "README.md"


def _example() -> str:
    text = README.read_text()
    section = text[text.index("## In twenty lines"):]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_the_example_is_twenty_lines():
    assert len(_example().strip().splitlines()) <= 20


@pytest.mark.slow
def test_the_readme_example_runs(scratch_store):
    import matplotlib.pyplot as plt
    import pandas as pd

    names: dict = {}
    exec(compile(_example(), str(README), "exec"), names)  # noqa: S102 - our own README
    plt.close("all")
    job = names["job"]
    assert job.customers_scored == 2357 and job.model_version == "1"
    scores = pd.read_parquet(scratch_store / "scores.parquet")
    assert len(scores) == 2357 and scores["clv"].gt(0).all()
    assert names["clv"].notna().all()
