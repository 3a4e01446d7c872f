"""A fast start: `import clvlab` and `clvlab --help` import none of the heavy dependencies.

Every public name is imported on first use (clvlab.core.lazy, PEP 562), and the command line
adds a subcommand's options only when that subcommand runs (clvlab.cli.app._parser). Each check
runs in a fresh interpreter, since this one has long imported everything. Times are not asserted
(a shared 2-core machine makes them noisy); the modules a start loads are.
"""

from __future__ import annotations

import ast
import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

import clvlab

#: what `import clvlab` and `clvlab --help` must not load: seconds of imports between them
#: (scikit-learn alone over one, with SciPy); pandas and pyarrow are loaded with the first table
FORBIDDEN = {"sklearn", "scipy", "pymc", "pytensor", "arviz", "mlflow", "matplotlib", "duckdb",
             "pyspark", "numba", "llvmlite", "skops", "xarray", "h5netcdf", "h5py", "pandas",
             "pyarrow", "threadpoolctl", "tqdm", "mpmath"}

INIT = Path(clvlab.__file__)

#: {package: its __init__}: the packages whose names are imported on first use
LAZY_PACKAGES = {"clvlab": INIT, "clvlab.churn": INIT.parent / "churn" / "__init__.py",
                 "clvlab.evaluation": INIT.parent / "evaluation" / "__init__.py"}


def fresh(code: str) -> set[str]:
    """Run ``code`` in a fresh interpreter; the top-level packages it loaded."""
    probe = (f"{code}\nimport json, sys\n"
             "print(json.dumps(sorted({name.partition('.')[0] for name in sys.modules})))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stdout.splitlines()[-1]))


def test_import_clvlab_loads_no_heavy_module():
    assert fresh("import clvlab") & FORBIDDEN == set()


@pytest.mark.parametrize("argv", [["--help"], ["--version"], ["rfm", "--help"]])
def test_the_command_line_help_loads_no_heavy_module(argv):
    # what the console script runs (clvlab = "clvlab.cli:main"); --help ends by SystemExit
    code = ("import contextlib, io\nfrom clvlab.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()), "
            "contextlib.suppress(SystemExit):\n"
            f"    main({argv!r})")
    assert fresh(code) & FORBIDDEN == set()


def test_python_m_clvlab_cli_help_loads_no_heavy_module():
    code = ("import contextlib, io, runpy, sys\nsys.argv = ['clvlab', '--help']\n"
            "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
            "    runpy.run_module('clvlab.cli', run_name='__main__')")
    assert fresh(code) & FORBIDDEN == set()


def test_every_public_name_resolves_in_a_fresh_interpreter():
    """Each name of ``__all__`` is found by attribute and by ``from clvlab import``, ``dir``
    lists them, and the subpackages and old module paths are attributes as they were."""
    code = """
import clvlab
assert set(clvlab.__all__) <= set(dir(clvlab)), set(clvlab.__all__) - set(dir(clvlab))
missing = [name for name in clvlab.__all__ if getattr(clvlab, name, None) is None]
assert not missing, missing
from clvlab import BetaGeo, backtesting, simulate, __version__
assert BetaGeo is clvlab.models.bg_nbd.BetaGeo and backtesting is clvlab.evaluation
assert simulate is clvlab.data.simulate and clvlab.rfm is clvlab.data.rfm
assert clvlab.models.registry.by_name("pareto-nbd").model_class is clvlab.ParetoNBD
assert clvlab.frequency_ppc is clvlab.bayes.frequency_ppc
assert clvlab.core.timeunits.UNIT_SECONDS and clvlab.ops.scoring is clvlab.scoring
try:
    clvlab.no_such_name
except AttributeError:
    pass
else:
    raise AssertionError("an unknown name must raise AttributeError")
"""
    fresh(code)


def test_names_published_away_from_their_module_resolve_by_any_path():
    """ChurnAdjustedCandidate (clvlab.evaluation), frequency_ppc (clvlab.models) and the
    time-varying and engagement simulators stay where they were documented, whichever way
    their module is first imported (clvlab._old_paths.OLD_NAMES)."""
    code = """
from clvlab.churn import ChurnAdjustedCandidate
from clvlab.evaluation.churn_candidate import ChurnAdjustedCandidate as defined
assert ChurnAdjustedCandidate is defined
import clvlab.inference.bayes as bayes
from clvlab.models.checks import frequency_ppc
assert bayes.frequency_ppc is frequency_ppc and "frequency_ppc" in dir(bayes)
from clvlab.data import simulate
from clvlab.data import simulate_events, simulate_tv
assert simulate.engagement is simulate_events.simulate_engagement
assert simulate.TimeVaryingSample is simulate_tv.TimeVaryingSample
assert simulate.pareto_nbd_time_varying is simulate_tv.pareto_nbd_time_varying
assert simulate.bg_nbd_time_varying is simulate_tv.bg_nbd_time_varying
import clvlab
assert clvlab.simulate.engagement is simulate_events.simulate_engagement
"""
    fresh(code)


def type_checking_imports(path: Path) -> dict[str, tuple[str, str]]:
    """{name: (module, attribute)} of the imports under ``if TYPE_CHECKING:`` in ``path``; an
    imported module is (module, "")."""
    found = {}
    for node in ast.parse(path.read_text()).body:
        if not (isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING"):
            continue
        for statement in node.body:
            if isinstance(statement, ast.ImportFrom) and not statement.module.startswith(
                    ("pandas", "numpy")):
                for alias in statement.names:
                    found[alias.asname or alias.name] = (statement.module, alias.name)
    return found


@pytest.mark.parametrize("package", sorted(LAZY_PACKAGES))
def test_the_static_imports_name_what_the_lazy_table_gives(package):
    """Type checkers and IDEs read the ``TYPE_CHECKING`` imports, Python the lazy table: both
    give the same object for every name of ``__all__``."""
    module = importlib.import_module(package)
    static = type_checking_imports(LAZY_PACKAGES[package])
    assert sorted(static) == sorted(n for n in module.__all__ if n != "churn_training_data")
    for name, (source, attribute) in static.items():
        imported = importlib.import_module(source)
        expected = getattr(imported, attribute) if hasattr(imported, attribute) else \
            importlib.import_module(f"{source}.{attribute}")
        assert getattr(module, name) is expected, name
