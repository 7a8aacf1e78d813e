# shared-core: the front door. `make help` lists the targets.
SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-builtin-rules

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
RESULTS := build/test-results
VERSION := $(shell sed -n 's/^__version__ = "\(.*\)"$$/\1/p' shared_core/__init__.py)
PYTEST := $(BIN)/python -m pytest

.PHONY: help
help: ## Show the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[1m%-20s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(BIN)/.installed: requirements-dev.txt
	@if ! $(PYTHON) -m venv --help >/dev/null 2>&1 || ! $(PYTHON) -c 'import ensurepip' 2>/dev/null; then \
	  echo "installing python3-venv"; apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null; fi
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements-dev.txt
	touch $@

.PHONY: venv
venv: $(BIN)/.installed ## Create .venv with the pinned host tooling

.PHONY: lint
lint: venv ## ruff (lint and format check) and mypy (strict, django-stubs) on shared_core
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

.PHONY: format
format: venv ## Apply ruff's formatting and safe fixes
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

.PHONY: test-unit
test-unit: venv ## Unit tests on SQLite (real Django, real local HTTP servers)
	@mkdir -p $(RESULTS)
	$(PYTEST) --junitxml=$(RESULTS)/unit-sqlite.xml

.PHONY: test-unit-postgres
test-unit-postgres: venv ## The same unit tests on a throwaway PostgreSQL server on 127.0.0.1
	@mkdir -p $(RESULTS)
	tools/with-postgres $(PYTEST) --junitxml=$(RESULTS)/unit-postgres.xml

.PHONY: test
test: lint test-unit test-unit-postgres ## Everything: lint, unit tests on SQLite and PostgreSQL

.PHONY: up
up: ## Run the four services (not built yet: see the README's status)
	@echo "make up: the service stack is not built yet (issues: base image, services and compose)." >&2
	@echo "         Today 'make test' runs the shared_core unit tests." >&2
	@exit 2

.PHONY: print-version
print-version: ## Print the one version of shared_core and the base image
	@echo $(VERSION)

.PHONY: clean
clean: ## Remove the virtualenv, caches and build output
	rm -rf $(VENV) build .mypy_cache .ruff_cache .pytest_cache
