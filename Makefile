# shared-core: the front door. `make help` lists the targets by concern; make/*.mk holds each concern's rules,
# and this file every variable they use.
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

# The base image: one version with shared_core, an offline Debian root by default.
BASE_REPO ?= shared-core/base
BASE_IMAGE := $(BASE_REPO):$(VERSION)
ROOT_IMAGE ?= shared-core/root:trixie
POSTGRES_ROOT_IMAGE ?= shared-core/root-postgres:trixie
EDGE_ROOT_IMAGE ?= shared-core/root-edge:trixie
NODE_ROOT_IMAGE ?= shared-core/root-node:trixie
HAPROXY_ROOT_IMAGE ?= shared-core/root-haproxy:trixie
PROXY_IMAGE := shared-core/proxy:$(VERSION)
POSTGRES_IMAGE := shared-core/postgres:$(VERSION)
DEFAULT_ROOT_IMAGE := shared-core/root:trixie
WHEELHOUSE := base-image/wheelhouse
DJANGO_VERSION := $(shell sed -n 's/^django==\([^ ]*\).*/\1/p' base-image/requirements.lock)
SOURCE ?= https://example.invalid/shared-core
REVISION := $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
# The commit's time, not the build's: the same commit rebuilds to the same, fully cached image.
CREATED := $(shell TZ=UTC git log -1 --format=%cd --date=format-local:%Y-%m-%dT%H:%M:%SZ 2>/dev/null \
	|| date -u +%Y-%m-%dT%H:%M:%SZ)
# The same time for reproducible builds: no file in the wheel or the base image is newer.
SOURCE_DATE_EPOCH := $(shell git log -1 --format=%ct 2>/dev/null || echo 315532800)
# The base's Debian root: the package versions it must hold, and its files' time (the lock's commit), so
# the root changes only when the lock does.
DEBIAN_LOCK := tools/debian-trixie.lock
ROOT_EPOCH := $(or $(shell git log -1 --format=%ct -- $(DEBIAN_LOCK) 2>/dev/null),$(SOURCE_DATE_EPOCH))
# The same for the edge's root: its packages, their versions and its files' time.
EDGE_PACKAGES := nginx,haproxy
EDGE_DEBIAN_LOCK := tools/debian-trixie-edge.lock
EDGE_ROOT_EPOCH := $(or $(shell git log -1 --format=%ct -- $(EDGE_DEBIAN_LOCK) 2>/dev/null),$(SOURCE_DATE_EPOCH))
DEFAULT_EDGE_ROOT_IMAGE := shared-core/root-edge:trixie
# Extra `docker build` flags for the base (verify-reproducible passes --no-cache).
BASE_BUILD_FLAGS ?=

# A Docker suite without an engine: skipped outside CI, a failure in CI.
define require_docker
if ! docker info >/dev/null 2>&1; then \
  if [[ -n "$${CI:-}" ]]; then echo "$@: CI needs a Docker engine and none answers" >&2; exit 1; fi; \
  echo "$@: SKIPPED, no Docker engine answers (outside CI this is not a failure)"; exit 0; \
fi
endef

define make_venv
@if ! $(PYTHON) -m venv --help >/dev/null 2>&1 || ! $(PYTHON) -c 'import ensurepip' 2>/dev/null; then \
  echo "installing python3-venv"; apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null; fi
$(PYTHON) -m venv $(VENV)
endef

INTEGRATION_TESTS ?= tests/integration

LOG_TESTS := tests/integration/test_logging_and_security.py

SOAK_SECONDS ?= 180
SOAK_SEED ?= random
SOAK_DB ?= postgres

DIST := build/dist
# The wheel Dockerfile.base installs: base-image/ holds exactly what the image build copies.
BASE_WHEEL := base-image/dist/shared_core-$(VERSION)-py3-none-any.whl

# What goes into the wheel and its metadata: rebuilt only when one of them changes, not per `make base`.
DIST_SOURCES := pyproject.toml README.md CHANGELOG.md $(shell find shared_core -type f ! -name '*.pyc')

# The service template (copier.yml, template/): a new service in its own repository, and the path CI proves.
NAME ?= inventory-service
MODEL ?= Item
DEST ?= ../$(NAME)
COMPOSE_V2 := build/tools/docker-compose-v2

# The stack: docker compose (v2) where it exists, else docker-compose (v1).
COMPOSE := $(shell if docker compose version >/dev/null 2>&1; then echo "docker compose"; else echo docker-compose; fi)
PROJECT ?= shared-core
DB ?= sqlite
COMPOSE_FILES := -f compose/compose.yaml $(if $(filter postgres,$(DB)),-f compose/compose.postgres.yaml)
# What the services build FROM: their Dockerfiles' pinned ARG BASE_IMAGE (`make pin` moves it), unless you pass
# SERVICE_BASE=<reference>. Nothing else overrides a pin.
SERVICE_BASE ?=
PINNED_BASE = $(shell sed -n 's/^ARG BASE_IMAGE=//p' services/$(firstword $(SERVICES))/Dockerfile)
STACK = BASE_IMAGE=$(or $(SERVICE_BASE),$(PINNED_BASE)) EDGE_ROOT_IMAGE=$(EDGE_ROOT_IMAGE) SHARED_CORE_VERSION=$(VERSION) $(COMPOSE) --project-directory compose \
	-p $(PROJECT) $(COMPOSE_FILES)

SECRET = python3 -c 'import secrets; print(secrets.token_urlsafe($(1)))'

# Secrets compose/compose.yaml needs; `make up` writes each one missing from compose/.env.
STACK_SECRETS := OPERATOR_TOKEN TICKET_SERVICE_TOKEN COMMUNICATION_SERVICE_TOKEN FILE_SERVICE_TOKEN DJANGO_SECRET_KEY POSTGRES_PASSWORD

OUTBOX ?= status

SERVICE ?= ticket-service

SERVICES := $(shell cat services/SERVICES)
SERVICE_TEST_ENV := DJANGO_SECRET_KEY=service-unit-tests-only-0123456789abcdefghijklmnopqrstuvwxyz \
	SERVICE_AUTH_TOKEN=service-unit-test-token

# One target of Dockerfile.base: $(1) is base or dev, tagged $(BASE_IMAGE) or $(BASE_IMAGE)-dev.
define build_base
python=$$(docker run --rm --entrypoint python3 $(ROOT_IMAGE) -c 'import platform; print(platform.python_version())'); \
docker build $(BASE_BUILD_FLAGS) --file Dockerfile.base --target $(1) --tag $(BASE_IMAGE)$(if $(filter dev,$(1)),-dev) \
  --build-arg ROOT_IMAGE=$(ROOT_IMAGE) --build-arg VERSION=$(VERSION) --build-arg REVISION=$(REVISION) \
  --build-arg CREATED=$(CREATED) --build-arg SOURCE_DATE_EPOCH=$(SOURCE_DATE_EPOCH) --build-arg SOURCE=$(SOURCE) \
  --build-arg PYTHON_VERSION=$$python \
  --build-arg DJANGO_VERSION=$(DJANGO_VERSION) .
endef

PIN_FILES ?= $(wildcard services/*/Dockerfile)
BASE_DIGEST_FILE ?= build/base-image.digest

# The Swarm stack (compose/stack.yaml, tools/swarm): images by digest from REGISTRY=host:port, or from a
# throwaway registry on 127.0.0.1 when none is given (enough for this single node: it keeps the images).
SWARM_STACK ?= shared-core
SWARM = set -a && source compose/.env && set +a && STACK=$(SWARM_STACK) VERSION=$(VERSION) \
	$(if $(REGISTRY),REGISTRY=$(REGISTRY),tools/with-registry) tools/swarm

# A swarm of N local nodes (tools/swarm-nodes): Docker Engines in containers of this engine, each a node.
N ?= 3
NODES_NAME ?= shared-core-nodes
NODE_IMAGE := shared-core/swarm-node:$(VERSION)
NODES = NODES=$(N) NODES_NAME=$(NODES_NAME) NODE_IMAGE=$(NODE_IMAGE) VERSION=$(VERSION) tools/swarm-nodes

##@ General
.PHONY: help
help: ## Show the targets, by concern (make/*.mk holds each concern's)
	@awk 'BEGIN {FS = ":.*## "} /^##@ / {printf "\n%s\n", substr($$0, 5)} \
	  /^[a-zA-Z_-]+:.*## / {printf "  \033[1m%-20s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: clean
clean: ## Remove the virtualenv, caches and build output
	rm -rf $(VENV) build .mypy_cache .ruff_cache .pytest_cache

# Each concern's targets, from make/ beside this file whatever the working directory.
CONCERNS := $(dir $(abspath $(lastword $(MAKEFILE_LIST))))make
include $(addprefix $(CONCERNS)/,build.mk stack.mk test.mk bench.mk release.mk docs.mk)
