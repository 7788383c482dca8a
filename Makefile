# One target per habit: run, test, lint, bench. Each creates .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run run-distributed test lint typecheck unit bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(VENV)/.installed $(VENV)/.installed-broker $@

run: $(VENV)/.installed
	$(BIN)/liudong serve --demo-keys

$(VENV)/.installed-broker: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[broker]'
	touch $(VENV)/.installed $@

# Database, broker (tansu), API, relay and two workers in one terminal; Ctrl-C stops them all.
run-distributed: $(VENV)/.installed-broker
	$(BIN)/liudong up --workers 2

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check domain projections application api workers tests bench
	$(BIN)/lint-imports

typecheck: $(VENV)/.installed-dev
	$(BIN)/mypy

test: lint typecheck
	$(BIN)/pytest $(PYTEST_ARGS)

bench: $(VENV)/.installed-dev
	$(BIN)/python -m bench.commands
	$(BIN)/python -m bench.concurrency
	$(BIN)/python -m bench.backbone
	$(BIN)/python -m bench.population
	$(BIN)/python -m bench.audit

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
