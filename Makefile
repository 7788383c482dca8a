# One target per habit: run, test, lint, bench. Each creates .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run run-distributed test lint typecheck unit bench clean browser bench-tools

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

# Debian's Chromium and ChromeDriver for the browser journeys (no browser download), and a
# CJK font so the screenshots show Chinese (the pages name the office PCs' own fonts; no web font).
# What the tests need from Debian: a browser with Chinese fonts, and curl and jq for the README's
# worked example, which the suite runs as written.
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null && fc-list :lang=zh | grep -q . && \
	  command -v curl >/dev/null && command -v jq >/dev/null || \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver \
	   fonts-noto-cjk curl jq)

# The suite runs in TEST_PROCESSES processes (pytest-xdist), a module at a time each, the
# longest modules first (tests/conftest.py); each process has its own embedded PostgreSQL.
# Much of the suite waits on brokers, subprocesses and browsers, so more processes than cores pay.
TEST_PROCESSES ?= 3
test: lint typecheck browser
	$(BIN)/pytest -n $(TEST_PROCESSES) --dist loadfile --no-loadscope-reorder $(PYTEST_ARGS)

# Each bench prints its own figures and records its headline ones; the table of them ends the run.
BENCH_RESULTS ?= $(CURDIR)/.bench-results.jsonl
bench: $(VENV)/.installed-dev bench-tools
	rm -f $(BENCH_RESULTS)
	LIUDONG_BENCH_RESULTS=$(BENCH_RESULTS) $(BIN)/python -m bench.commands
	LIUDONG_BENCH_RESULTS=$(BENCH_RESULTS) $(BIN)/python -m bench.concurrency
	LIUDONG_BENCH_RESULTS=$(BENCH_RESULTS) $(BIN)/python -m bench.http
	LIUDONG_BENCH_RESULTS=$(BENCH_RESULTS) $(BIN)/python -m bench.district
	LIUDONG_BENCH_RESULTS=$(BENCH_RESULTS) $(BIN)/python -m bench.queries
	LIUDONG_BENCH_RESULTS=$(BENCH_RESULTS) $(BIN)/python -m bench.backbone
	LIUDONG_BENCH_RESULTS=$(BENCH_RESULTS) $(BIN)/python -m bench.population
	LIUDONG_BENCH_RESULTS=$(BENCH_RESULTS) $(BIN)/python -m bench.audit
	LIUDONG_BENCH_RESULTS=$(BENCH_RESULTS) $(BIN)/python -m bench.erasure
	$(BIN)/python -m bench.table $(BENCH_RESULTS)

# wrk loads the HTTP bench (Debian's package; nothing is downloaded from elsewhere).
bench-tools:
	@command -v wrk >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
