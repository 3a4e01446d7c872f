"""The documentation: the Sphinx site builds with warnings as errors (`make docs`), and the
examples in the docstrings run.

The site build is slow (about a minute: it imports every module and renders the notebooks
without running them) and runs no code that differs between the two stacks, hence the markers.
"""

import doctest
import importlib
import re
import subprocess
import sys
from pathlib import Path

import pytest

import clvlab

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"


@pytest.mark.slow
@pytest.mark.once
def test_docs_build_without_warnings(tmp_path):
    pytest.importorskip("sphinx")  # the dev extra has it, and the theme and extensions
    out = tmp_path / "html"
    run = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
         "-d", str(tmp_path / "doctrees"), str(ROOT / "docs"), str(out)],
        capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-8000:]
    assert "WARNING" not in run.stderr and "ERROR" not in run.stderr, run.stderr[-8000:]

    page = out / "api" / "generated" / "clvlab.models.ParetoNBD.html"
    assert page.is_file()
    html = page.read_text(encoding="utf-8")
    for method in ("fit", "expected_purchases", "p_alive", "probability_of_purchase",
                   "purchase_pmf", "save"):
        assert f'id="clvlab.models.ParetoNBD.{method}"' in html, method
    # every top-level public name has a place in the reference, and the guide and notebooks
    # are rendered
    reference = (out / "api" / "clvlab.html").read_text(encoding="utf-8")
    for name in clvlab.__all__:
        assert name in reference, name
    for name in ("index", "benchmarks", "guide/quickstart", "guide/cli", "guide/production"):
        assert (out / f"{name}.html").is_file(), name
    for notebook in (ROOT / "notebooks").glob("*.ipynb"):
        assert (out / "notebooks" / f"{notebook.stem}.html").is_file(), notebook.name


def test_benchmarks_page_lists_every_script():
    page = (ROOT / "docs" / "benchmarks.md").read_text(encoding="utf-8")
    scripts = [p.name for p in (ROOT / "benchmarks").glob("*.py")]
    assert scripts
    missing = [name for name in scripts if f"`{name}`" not in page]
    assert not missing, f"docs/benchmarks.md does not list {missing}"


def _modules_with_examples():
    for path in sorted((SRC / "clvlab").rglob("*.py")):
        if ">>>" in path.read_text(encoding="utf-8"):
            yield ".".join(path.relative_to(SRC).with_suffix("").parts)


EXAMPLE_MODULES = list(_modules_with_examples())
assert EXAMPLE_MODULES, "no docstring has a >>> example: the doctest test below tests nothing"


@pytest.mark.parametrize("module_name", EXAMPLE_MODULES)
def test_docstring_examples_run(module_name):
    """The ``>>>`` examples run (those marked ``# doctest: +SKIP`` need data the reader has),
    with clvlab's public names in scope, as a reader who imported them has."""
    module = importlib.import_module(module_name)
    source = Path(module.__file__).read_text(encoding="utf-8")
    used = set(re.findall(r"\b\w+\b", " ".join(re.findall(r"(?:>>>|\.\.\.) (.*)", source))))
    extraglobs = {name: getattr(clvlab, name) for name in clvlab.__all__ if name in used}
    result = doctest.testmod(module, extraglobs=extraglobs, report=True,
                             optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed"

