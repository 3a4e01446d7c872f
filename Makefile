# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
# Both create or refresh .venv (plain venv + pip) when pyproject.toml changes.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.clvlab-installed

.PHONY: venv demo test test-fast strip-notebooks bench bench-venv bench-bayes-venv clean

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,spark]'
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/clvlab demo

test: $(STAMP)
	$(BIN)/python -m pytest

# Everything but the tests marked slow (make test runs them all).
test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not slow"

# Notebooks are kept without outputs (make test checks); run this before committing one you ran.
strip-notebooks: $(STAMP)
	$(BIN)/python notebooks/strip_outputs.py notebooks/*.ipynb

# Benchmarks run in their own environment, which also holds the peers (lifetimes), so that the
# package's own environment never depends on them.
BENCH_VENV := .venv-bench
BENCH_STAMP := $(BENCH_VENV)/.clvlab-installed

$(BENCH_STAMP): pyproject.toml benchmarks/requirements.txt
	test -x $(BENCH_VENV)/bin/python || $(PYTHON) -m venv $(BENCH_VENV)
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
	test -x $(BAYES_VENV)/bin/python || $(PYTHON) -m venv $(BAYES_VENV)
	$(BAYES_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(BAYES_VENV)/bin/python -m pip install --quiet -e . -r benchmarks/requirements-bayes.txt
	touch $(BAYES_STAMP)

bench-bayes-venv: $(BAYES_STAMP)

clean:
	rm -rf $(VENV) $(BENCH_VENV) $(BAYES_VENV) build dist src/*.egg-info .pytest_cache demo-output
