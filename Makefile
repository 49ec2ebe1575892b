# zvm-task-etl: `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
# The benchmark's own venv: dlt (the tool compared against) and py-spy, never product deps.
BENCH_VENV := bench/.venv-dlt
BENCH_STAMP := $(BENCH_VENV)/.installed-stamp

.DEFAULT_GOAL := help

help: ## List the targets
	@awk 'BEGIN {FS = ":.*?## "} /^[a-zA-Z_-]+:.*?## / {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[postgres,mysql,simulator,parquet]' --group dev
	@touch $(STAMP)

install: $(STAMP) ## Create .venv and install the package with every extra and the dev tools

# Two workers (pytest-xdist): each test has its own database, so they run side by side.
PYTEST_WORKERS ?= 2

test: $(STAMP) ## Run the test suite on 2 workers (PostgreSQL/MariaDB too when their URLs are set)
	$(BIN)/pytest -n $(PYTEST_WORKERS) $(PYTEST_ARGS)

test-fast: $(STAMP) ## The test suite without the tests marked slow (kill loops, soak, property runs)
	$(BIN)/pytest -n $(PYTEST_WORKERS) -m "not slow" $(PYTEST_ARGS)

lint: $(STAMP) ## ruff (lint and format check) and mypy --strict (package, simulator, tests, scripts, bench)
	$(BIN)/ruff check etl zvm_simulator scripts tests migrations bench
	$(BIN)/ruff format --check etl zvm_simulator scripts tests migrations bench
	$(BIN)/mypy

format: $(STAMP) ## Rewrite the code with ruff's formatter and import sorting
	$(BIN)/ruff check --fix etl zvm_simulator scripts tests migrations bench
	$(BIN)/ruff format etl zvm_simulator scripts tests migrations bench

demo: $(STAMP) ## Start the bundled ZVM simulator and show what the ETL gets from it
	$(BIN)/python scripts/demo.py

dictionary: $(STAMP) ## Regenerate docs/data-dictionary.md from the schema and the view files
	$(BIN)/python -m etl.dictionary docs/data-dictionary.md

dashboards: $(STAMP) ## Regenerate dashboards/ (Grafana's files, Superset's bundle) from etl/dashboards/; see docs/bi.md
	$(BIN)/python -m etl.dashboards dashboards

# Apache Superset's own venv (it pins SQLAlchemy < 2): never the product's.
SUPERSET_PYTHON ?= python3.11
SUPERSET_VENV := build/superset/venv
SUPERSET_STAMP := $(SUPERSET_VENV)/.installed-stamp

$(SUPERSET_STAMP): dashboards/superset/requirements.txt
	$(SUPERSET_PYTHON) -m venv $(SUPERSET_VENV)
	$(SUPERSET_VENV)/bin/pip install --quiet --upgrade pip
	$(SUPERSET_VENV)/bin/pip install --quiet -r dashboards/superset/requirements.txt
	@touch $(SUPERSET_STAMP)

superset-check: $(STAMP) $(SUPERSET_STAMP) ## Superset (own venv) imports the bundle on a PostgreSQL warehouse (ZVM_ETL_TEST_POSTGRES_URL), every chart answers, Chromium draws a PNG (~2.5 min; not in make test)
	$(BIN)/python scripts/superset_check.py $(if $(SUPERSET_SCREENSHOT),--screenshot $(SUPERSET_SCREENSHOT))

run: $(STAMP) ## Schedule syncs with ./config.yaml, or the bundled simulator into ./warehouse.db
	$(BIN)/python scripts/localrun.py

$(BENCH_STAMP): bench/requirements-dlt.txt
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/pip install --quiet --upgrade pip
	$(BENCH_VENV)/bin/pip install --quiet -r bench/requirements-dlt.txt
	@touch $(BENCH_STAMP)

bench: $(STAMP) $(BENCH_STAMP) ## Benchmark vs dlt and a hand-written limit, profiles; writes bench/results.md (long; BENCH_* vars: python -m bench -h)
	$(BIN)/python -m bench

bench-quick: $(STAMP) $(BENCH_STAMP) ## The 10,000-task first-pass benchmark (under a minute); writes bench/results-quick.md
	$(BIN)/python -m bench --quick

soak: $(STAMP) ## The scheduler vs 3 faulty simulated ZVMs for SOAK_SECONDS (600) on ZVM_ETL_TEST_POSTGRES_URL, then verify warehouse and RSS (SOAK_ARGS: scripts/soak.py -h)
	$(BIN)/python scripts/soak.py $(if $(SOAK_SECONDS),--seconds $(SOAK_SECONDS)) $(SOAK_ARGS)

clean: ## Remove the virtualenv and caches
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis build dist

.PHONY: help install test test-fast lint format demo dictionary dashboards superset-check run bench bench-quick soak clean
