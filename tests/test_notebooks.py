"""Every notebook in notebooks/ runs top to bottom on a fresh kernel, against a throwaway
MLflow store in a temporary working folder (nothing lands in the repository), and is kept in
git without outputs."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))
PNG = b"\x89PNG\r\n\x1a\n"


def test_there_are_seven_notebooks_without_outputs():
    assert [p.name[:3] for p in NOTEBOOKS] == ["01_", "02_", "03_", "04_", "05_", "06_", "07_"]
    for path in NOTEBOOKS:
        notebook = nbformat.read(path, as_version=4)
        for cell in notebook.cells:
            if cell.cell_type == "code":
                assert cell.outputs == [] and cell.execution_count is None, \
                    f"{path.name} is saved with outputs: run `make strip-notebooks`"


# the notebooks but the Bayesian one run no code that differs between the stacks: CI runs each
# on one interpreter (tests/suite_time.py), these two on the newest to even the runs' time
BOTH = ("02_bayesian",)
NEWEST = ("01_quickstart", "04_mlflow_and_scoring")


def _once(path: Path):
    if path.stem in BOTH:
        return path
    mark = pytest.mark.once("newest") if path.stem in NEWEST else pytest.mark.once
    return pytest.param(path, marks=mark)


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.parametrize("path", [_once(p) for p in NOTEBOOKS], ids=lambda p: p.stem)
def test_notebook_runs(path, scratch_store, monkeypatch):
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    notebook = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(notebook, timeout=400, kernel_name="python3",
                                     resources={"metadata": {"path": str(scratch_store)}})
    client.execute()  # raises CellExecutionError, with the cell and traceback, on any error
    images = [output["data"]["image/png"] for cell in notebook.cells
              if cell.cell_type == "code" for output in cell.outputs
              if "image/png" in output.get("data", {})]
    for image in images:
        assert base64.b64decode(image).startswith(PNG)
    if os.environ.get("CLVLAB_NOTEBOOK_OUTPUT"):  # keep the executed copy to look at
        folder = Path(os.environ["CLVLAB_NOTEBOOK_OUTPUT"])
        folder.mkdir(parents=True, exist_ok=True)
        nbformat.write(notebook, folder / path.name)
        for i, image in enumerate(images):
            (folder / f"{path.stem}-{i:02d}.png").write_bytes(base64.b64decode(image))
    assert not list(Path(path.parent).glob("notebook-output")), "a notebook wrote into the repository"
