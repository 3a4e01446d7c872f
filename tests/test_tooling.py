"""The set-up the README promises: an interpreter named for `make test PYTHON=...` is found or
the run fails (never skipped), and each interpreter gets its own environment."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _find(name: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(ROOT / "tools" / "find-python"), name], capture_output=True, text=True)


def test_find_python_resolves_this_interpreter_and_refuses_a_missing_one():
    found = _find(sys.executable)
    assert found.returncode == 0 and found.stdout.strip() == sys.executable
    version = "%d.%d" % sys.version_info[:2]
    by_version = _find(version)
    assert by_version.returncode == 0
    reported = subprocess.run([by_version.stdout.strip(), "-c",
                               "import sys; print('%d.%d' % sys.version_info[:2])"],
                              capture_output=True, text=True).stdout.strip()
    assert reported == version
    missing = _find("python2.9-not-here")
    assert missing.returncode == 1 and missing.stdout == ""


def test_newest_is_at_least_this_interpreter():
    newest = _find("newest").stdout.strip()
    out = subprocess.run([newest, "-c", "import sys; print(sys.version_info[:2] >= %r)"
                          % (tuple(sys.version_info[:2]),)], capture_output=True, text=True)
    assert out.stdout.strip() == "True"


def test_make_fails_for_a_missing_interpreter_and_names_the_environment_per_version():
    missing = subprocess.run(["make", "-n", "test", "PYTHON=python2.9-not-here"], cwd=ROOT,
                             capture_output=True, text=True)
    assert missing.returncode != 0 and "no Python interpreter 'python2.9-not-here'" in missing.stderr
    planned = subprocess.run(["make", "-n", "test", f"PYTHON={sys.executable}"], cwd=ROOT,
                             capture_output=True, text=True)
    version = "%d.%d" % sys.version_info[:2]
    assert planned.returncode == 0 and f".venv-{version}/bin/python -m pytest" in planned.stdout


def test_make_lab_adds_jupyterlab_and_opens_the_notebooks_on_loopback():
    import tomllib

    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert any(r.startswith("jupyterlab") for r in extras["lab"])
    import os

    # a clean make: under `make test PYTHON=...` the outer make's variables (MAKEFLAGS, and
    # PYTHON itself, which make exports) reach this one
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("MAKE", "MFLAGS")) and k not in ("PYTHON", "VENV")}
    planned = subprocess.run(["make", "-n", "-W", ".venv/.clvlab-installed", "lab"], cwd=ROOT,
                             capture_output=True, text=True, env=env)
    assert planned.returncode == 0, planned.stderr
    assert ".venv/bin/python -m pip install --quiet -e '.[dev,spark,lab]'" in planned.stdout
    assert ".venv/bin/jupyter lab --notebook-dir=notebooks --ServerApp.ip=127.0.0.1" in planned.stdout
