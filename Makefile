# tunewatch — `make run` (the demo), `make test` (the whole suite), `make bench` (performance).
# Each target creates .venv and installs what it needs, Debian packages included (apt-get, as root).

SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

APT_TEST := postgresql prometheus prometheus-alertmanager chromium
APT_BENCH := nginx wrk libnginx-mod-http-js postgresql

.PHONY: run test bench lint system-deps-test system-deps-bench clean help

help:
	@echo "make run    set up, then run the demo (proxy on 127.0.0.1:8000, simulated upstreams)"
	@echo "make test   set up, then run the whole test suite"
	@echo "make bench  set up, then run the performance benchmarks"

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/tunewatch demo

# Installs the Debian packages whose binaries are missing (PostgreSQL server, Prometheus, Alertmanager,
# Chromium); `apt-get update` runs once, first.
system-deps-test:
	@bash scripts/apt-ensure.sh $(APT_TEST)

system-deps-bench:
	@bash scripts/apt-ensure.sh $(APT_BENCH)

lint: $(STAMP)
	$(BIN)/lint-imports
	$(BIN)/ruff check service tests grafana bench
	$(BIN)/mypy

test: $(STAMP) system-deps-test
	$(BIN)/lint-imports
	$(BIN)/ruff check service tests grafana bench
	$(BIN)/mypy
	$(BIN)/pytest

bench: $(STAMP) system-deps-bench
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
