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
    for name in ("index", "benchmarks", "development", "guide/quickstart", "guide/cli",
                 "guide/production", "guide/rfm", "guide/models", "guide/covariates",
                 "guide/bayesian", "guide/predictive", "guide/backtesting", "guide/churn",
                 "guide/tracking", "guide/champion", "guide/unattended", "guide/scale",
                 "guide/data"):
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


# numpydoc's checks that every documented name passes, here and in the site's build
# (docs/conf.py's numpydoc_validation_checks): PR01 a parameter not documented, PR02 a documented
# parameter the signature lacks, GL08 no docstring, RT01 no Returns section where the function
# returns something, SS01 no one-line summary, SS03 a summary without its full stop
DOCSTRING_CHECKS = ("GL08", "PR01", "PR02", "RT01", "SS01", "SS03")


def _docs_config():
    """docs/api_pages.py (the list of documented names) and docs/conf.py's validation exclusions,
    read without running conf.py (which writes the API pages)."""
    import ast

    sys.path.insert(0, str(ROOT / "docs"))
    try:
        api_pages = importlib.import_module("api_pages")
    finally:
        sys.path.remove(str(ROOT / "docs"))
    tree = ast.parse((ROOT / "docs" / "conf.py").read_text(encoding="utf-8"))
    settings = {node.targets[0].id: ast.literal_eval(node.value) for node in tree.body
                if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name)
                and node.targets[0].id.startswith("numpydoc_validation")}
    return api_pages, settings


def test_docstrings_pass_numpydoc_validation():
    """Every documented public name and each of its classes' documented methods and properties
    passes numpydoc's validation for the checks the site's build makes, without building it."""
    pytest.importorskip("numpydoc")
    import functools
    import warnings

    from numpydoc import validate as numpydoc_validate

    class Validator(numpydoc_validate.Validator):
        """numpydoc's, of an object (a dotted name can import a submodule of the same name);
        a property whose getter is a lambda has no ``def`` line, which numpydoc's search for it
        does not expect (StopIteration)."""

        def __init__(self, obj_name, obj):
            super().__init__(numpydoc_validate.get_doc_object(obj))

        @functools.cached_property
        def source_file_def_line(self):
            try:
                return super().source_file_def_line
            except StopIteration:
                return None

    api_pages, settings = _docs_config()
    assert set(settings["numpydoc_validation_checks"]) == set(DOCSTRING_CHECKS)
    excluded = re.compile("|".join(settings.get("numpydoc_validation_exclude", ())) or "(?!)")
    targets = api_pages.validation_targets()
    assert len(targets) > 300, "the list of documented names lost most of them"
    offenders = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # numpydoc's notes on sections it does not know
        for name, obj in targets:
            if excluded.search(name):
                continue
            report = numpydoc_validate.validate(name, validator_cls=Validator, obj=obj)
            offenders += [f"{name} ({report['file']}:{report['file_line']}): {code} {message}"
                          for code, message in report["errors"] if code in DOCSTRING_CHECKS]
    assert not offenders, f"{len(offenders)} docstring failures:\n" + "\n".join(offenders)
