# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
# Both create or refresh the virtual environment (plain venv + pip) when pyproject.toml changes.
#
# Another interpreter gets its own environment: `make test PYTHON=python3.13` builds
# .venv-3.13 and runs the whole suite there (PYTHON may be a name on PATH, a path, or a pyenv
# version name such as 3.13; an interpreter that cannot be found is an error, never a skip).
PYTHON ?= python3
PYTHON_EXE := $(shell tools/find-python '$(PYTHON)')
ifeq ($(PYTHON_EXE),)
$(error no Python interpreter '$(PYTHON)' on this machine (tried PATH and pyenv))
endif
PYTHON_VERSION := $(shell '$(PYTHON_EXE)' -c 'import sys; print("%d.%d" % sys.version_info[:2])')
ifeq ($(PYTHON),python3)
VENV ?= .venv
else
VENV ?= .venv-$(PYTHON_VERSION)
endif
BIN := $(VENV)/bin
STAMP := $(VENV)/.clvlab-installed

LAB_STAMP := $(VENV)/.clvlab-lab-installed

.PHONY: venv demo lab test test-fast test-newest strip-notebooks bench bench-venv bench-bayes-venv \
	bench-bayes6-venv docs clean

# The requirements first, the project last under a lock (tools/requirements): two environments
# can be built at once (.ci/run does), and only the editable install, which writes
# src/clvlab.egg-info, waits for the other.
INSTALL_LOCK := $(if $(shell command -v flock),flock .install.lock,)

$(STAMP): pyproject.toml Makefile tools/requirements
	test -x $(BIN)/python || '$(PYTHON_EXE)' -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python tools/requirements dev spark > $(VENV)/requirements.txt
	$(BIN)/python -m pip install --quiet -r $(VENV)/requirements.txt
	$(INSTALL_LOCK) $(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/clvlab demo

# The suite runs on every core, at most 4 (each worker holds its own fitted models and
# compiled graphs): tests/suite_time.py keeps the tests that share an expensive fixture on one
# worker and starts the longest first. TEST_WORKERS=0 runs in this process (a quick selection:
# starting workers costs seconds).
TEST_WORKERS ?= $(shell n=$$(nproc 2>/dev/null || echo 2); [ $$n -gt 4 ] && n=4; echo $$n)
PARALLEL := $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --dist loadgroup)
# more pytest options, e.g. PYTEST_ARGS=--record-durations (refreshes tests/durations.json)
PYTEST_ARGS ?=

test: $(STAMP)
	$(BIN)/python -m pytest $(PARALLEL) $(PYTEST_ARGS)

# Everything but the tests marked slow (make test runs them all).
test-fast: $(STAMP)
	$(BIN)/python -m pytest $(PARALLEL) -m "not slow" $(PYTEST_ARGS)

# The early warning for the next breaking release: the newest release of every dependency (no
# upper bounds, no pre-releases) on the newest Python here, in its own environment rebuilt each
# time, running the fast tests.
NEWEST_PYTHON ?= $(shell tools/find-python newest)
test-newest:
	rm -rf .venv-newest
	'$(NEWEST_PYTHON)' -m venv .venv-newest
	.venv-newest/bin/python -m pip install --quiet --upgrade pip
	.venv-newest/bin/python -m pip install --quiet --upgrade --upgrade-strategy eager -e '.[dev,spark]'
	.venv-newest/bin/python -m pip list --format=freeze | grep -iE '^(pymc|arviz|pytensor|numpy|scipy|pandas|numba|nutpie|mlflow|duckdb|pyspark|scikit-learn)=='
	.venv-newest/bin/python -m pytest $(PARALLEL) -m "not slow"

# The notebooks are the main way to work with clvlab: `make lab` adds JupyterLab (the `lab`
# extra) to the environment once and opens the notebooks folder. Options for the server go in
# LAB_ARGS, e.g. `make lab LAB_ARGS="--no-browser --port 8890"`; it listens on loopback only.
$(LAB_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,spark,lab]'
	touch $(LAB_STAMP)

lab: $(LAB_STAMP)
	$(BIN)/jupyter lab --notebook-dir=notebooks --ServerApp.ip=127.0.0.1 $(LAB_ARGS)

# Notebooks are kept without outputs (make test checks); run this before committing one you ran.
strip-notebooks: $(STAMP)
	$(BIN)/python notebooks/strip_outputs.py notebooks/*.ipynb

# The documentation site (Sphinx, pydata-sphinx-theme, numpydoc, MyST; the dev extra holds them)
# into docs/_build/html, warnings as errors. It builds offline; CLVLAB_DOCS_INTERSPHINX=1 links
# Python, NumPy, pandas and scikit-learn names to their documentation (needs the network). The
# notebooks are rendered as stored, never run.
docs: $(STAMP)
	$(BIN)/python -m sphinx -W --keep-going -b html docs docs/_build/html

# Benchmarks run in their own environment, which also holds the peers (lifetimes), so that the
# package's own environment never depends on them.
BENCH_VENV := .venv-bench
BENCH_STAMP := $(BENCH_VENV)/.clvlab-installed

$(BENCH_STAMP): pyproject.toml benchmarks/requirements.txt
	test -x $(BENCH_VENV)/bin/python || '$(PYTHON_EXE)' -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(BENCH_VENV)/bin/python -m pip install --quiet -e . -r benchmarks/requirements.txt
	touch $(BENCH_STAMP)

bench-venv: $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(BENCH_VENV)/bin/python benchmarks/bench_rfm.py

# pymc-marketing cannot share an environment with lifetimes' pins: its own one
BAYES_VENV := .venv-bench-pymc
BAYES_STAMP := $(BAYES_VENV)/.clvlab-installed

$(BAYES_STAMP): pyproject.toml benchmarks/requirements-bayes.txt
	test -x $(BAYES_VENV)/bin/python || '$(PYTHON_EXE)' -m venv $(BAYES_VENV)
	$(BAYES_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(BAYES_VENV)/bin/python -m pip install --quiet -e . -r benchmarks/requirements-bayes.txt
	touch $(BAYES_STAMP)

bench-bayes-venv: $(BAYES_STAMP)

# pymc-marketing 1.x needs Python >= 3.12 (PyMC 6, nutpie): the peer on the current stack
BAYES6_VENV := .venv-bench-pymc6
BAYES6_STAMP := $(BAYES6_VENV)/.clvlab-installed
BAYES6_PYTHON ?= $(shell tools/find-python 3.12)

$(BAYES6_STAMP): pyproject.toml benchmarks/requirements-bayes-pymc6.txt
	test -x $(BAYES6_VENV)/bin/python || '$(BAYES6_PYTHON)' -m venv $(BAYES6_VENV)
	$(BAYES6_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(BAYES6_VENV)/bin/python -m pip install --quiet -e . -r benchmarks/requirements-bayes-pymc6.txt
	touch $(BAYES6_STAMP)

bench-bayes6-venv: $(BAYES6_STAMP)

clean:
	rm -rf .venv .venv-3.* .venv-newest $(BENCH_VENV) $(BAYES_VENV) $(BAYES6_VENV) build dist src/*.egg-info .pytest_cache demo-output
