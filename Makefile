# Everything a fresh Debian 12 machine (as root) needs is installed by these targets themselves.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: test lint demo bench venv system-deps clean

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

system-deps:
	bash scripts/install-system-deps.sh

test: system-deps venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/pytest -q $(PYTEST_ARGS)

# The whole stack on 127.0.0.1 without Docker; DEMO_* variables: `$(PY) -m stack demo --help`.
demo: system-deps venv
	$(VENV)/bin/python -m stack demo

# Exporter speed at 100k series, then the bridge's intake, delivery and latest-state-wins figures (subprocesses on loopback);
# BENCH_ARGS=--no-fail to only report; BENCH_QUICK=1 for a short run of both. Both run even if the first misses.
bench: system-deps venv
	status=0; \
	$(PY) -m benchmarks.exporter $(BENCH_ARGS) $(if $(filter 1,$(BENCH_QUICK)),--series 20000 --reps 20 --polls 3 --poll-interval 0.5,) || status=1; \
	$(PY) -m benchmarks.bridge run $(BENCH_ARGS) $(if $(filter 1,$(BENCH_QUICK)),--quick,) || status=1; \
	exit $$status

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
