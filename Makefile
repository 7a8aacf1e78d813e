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

# The base image: one version with shared_core, an offline Debian root by default.
BASE_REPO ?= shared-core/base
BASE_IMAGE := $(BASE_REPO):$(VERSION)
ROOT_IMAGE ?= shared-core/root:trixie
POSTGRES_ROOT_IMAGE ?= shared-core/root-postgres:trixie
NGINX_ROOT_IMAGE ?= shared-core/root-nginx:forky
NODE_ROOT_IMAGE ?= shared-core/root-node:trixie
HAPROXY_ROOT_IMAGE ?= shared-core/root-haproxy:trixie
PROXY_IMAGE := shared-core/proxy:$(VERSION)
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
# Extra `docker build` flags for the base (verify-reproducible passes --no-cache).
BASE_BUILD_FLAGS ?=

# A Docker suite without an engine: skipped outside CI, a failure in CI.
define require_docker
if ! docker info >/dev/null 2>&1; then \
  if [[ -n "$${CI:-}" ]]; then echo "$@: CI needs a Docker engine and none answers" >&2; exit 1; fi; \
  echo "$@: SKIPPED, no Docker engine answers (outside CI this is not a failure)"; exit 0; \
fi
endef

.PHONY: help
help: ## Show the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[1m%-20s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

define make_venv
@if ! $(PYTHON) -m venv --help >/dev/null 2>&1 || ! $(PYTHON) -c 'import ensurepip' 2>/dev/null; then \
  echo "installing python3-venv"; apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null; fi
$(PYTHON) -m venv $(VENV)
endef

$(BIN)/.installed: requirements-dev.txt
	$(make_venv)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements-dev.txt
	touch $@

# What building the images needs of .venv: pip (the wheelhouse) and uv (shared_core's wheel), at the
# versions requirements-dev.txt pins; not the whole toolset, so `make up` starts sooner.
$(BIN)/.build-tools: requirements-dev.txt
	$(make_venv)
	$(BIN)/pip install -q "$$(grep '^uv==' requirements-dev.txt)"
	touch $@

.PHONY: venv
venv: $(BIN)/.installed ## Create .venv with the pinned host tooling

.PHONY: lint
lint: venv ## ruff (lint and format check), mypy (strict, django-stubs) and import-linter (shared_core's layers)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

.PHONY: format
format: venv ## Apply ruff's formatting and safe fixes
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

.PHONY: test-unit
test-unit: venv ## Unit tests on SQLite (real Django, real local HTTP servers)
	@mkdir -p $(RESULTS)
	$(PYTEST) --junitxml=$(RESULTS)/unit-sqlite.xml

.PHONY: test-unit-postgres
test-unit-postgres: venv ## shared_core's and the services' unit tests on a throwaway PostgreSQL on 127.0.0.1
	@mkdir -p $(RESULTS)
	tools/with-postgres bash -c '$(PYTEST) --junitxml=$(RESULTS)/unit-postgres.xml && $(MAKE) --no-print-directory test-services PG=1'

.PHONY: test-image
test-image: venv ## Base and proxy image contract tests (builds them): a child image FROM the base, a local registry
	@mkdir -p $(RESULTS)
	@$(require_docker); \
	$(MAKE) --no-print-directory base base-dev proxy; \
	SHARED_CORE_BASE_IMAGE=$(BASE_IMAGE) SHARED_CORE_PROXY_IMAGE=$(PROXY_IMAGE) ROOT_IMAGE=$(ROOT_IMAGE) \
	  tools/with-registry $(PYTEST) tests/image -p no:django -W ignore::pytest.PytestConfigWarning --junitxml=$(RESULTS)/image.xml

INTEGRATION_TESTS ?= tests/integration

.PHONY: test-integration
test-integration: venv ## The cross-container suite: pytest-docker runs the stack and injects real faults
	@mkdir -p $(RESULTS)
	@$(require_docker); \
	$(MAKE) --no-print-directory base root-nginx-image $(if $(filter postgres,$(DB)),root-postgres-image); \
	DB=$(DB) SHARED_CORE_BASE_IMAGE=$(BASE_IMAGE) $(PYTEST) $(INTEGRATION_TESTS) -p no:django -p shared_core.pytest_plugin \
	  -W ignore::pytest.PytestConfigWarning \
	  --junitxml=$(RESULTS)/integration-$(DB).xml $(PYTEST_ARGS)

.PHONY: test-swarm
test-swarm: venv ## The Swarm suite: rollouts, a broken rollout, replica loss and a database restart on a real swarm
	@mkdir -p $(RESULTS)
	@$(require_docker); \
	$(MAKE) --no-print-directory images; \
	SHARED_CORE_BASE_IMAGE=$(BASE_IMAGE) ROOT_IMAGE=$(ROOT_IMAGE) tools/with-registry \
	  $(PYTEST) tests/swarm --ignore=tests/swarm/nodes -p no:django -W ignore::pytest.PytestConfigWarning --junitxml=$(RESULTS)/swarm.xml

LOG_TESTS := tests/integration/test_logging_and_security.py
.PHONY: test-integration-postgres
test-integration-postgres: ## Soft delete, the outbox, a database restart and the contract fuzzing on PostgreSQL, JSON logs
	@LOG_FORMAT=json $(MAKE) --no-print-directory test-integration DB=postgres INTEGRATION_TESTS="\
	  tests/integration/test_soft_delete.py tests/integration/test_database.py tests/integration/test_contracts.py \
	  tests/integration/test_outbox.py \
	  $(LOG_TESTS)::test_every_log_line_has_the_shared_format \
	  $(LOG_TESTS)::test_one_request_id_appears_in_three_services_logs \
	  tests/integration/test_soak.py"

SOAK_SECONDS ?= 180
SOAK_SEED ?= random
SOAK_DB ?= postgres
.PHONY: soak
soak: ## Seeded random workload + real faults + invariant checker (SOAK_SECONDS=180, SOAK_SEED, SOAK_DB=postgres)
	@SOAK_SECONDS=$(SOAK_SECONDS) SOAK_SEED=$(SOAK_SEED) $(MAKE) --no-print-directory test-integration \
	  DB=$(SOAK_DB) INTEGRATION_TESTS=tests/integration/test_soak.py PYTEST_ARGS="-s"

.PHONY: api-check
api-check: venv ## The public API against the last release's (releases/): a break needs a version step and a CHANGELOG entry
	$(BIN)/python tools/api-check

DIST := build/dist
# The wheel Dockerfile.base installs: base-image/ holds exactly what the image build copies.
BASE_WHEEL := base-image/dist/shared_core-$(VERSION)-py3-none-any.whl

# What goes into the wheel and its metadata: rebuilt only when one of them changes, not per `make base`.
DIST_SOURCES := pyproject.toml README.md CHANGELOG.md $(shell find shared_core -type f ! -name '*.pyc')

$(BASE_WHEEL): $(DIST_SOURCES) $(BIN)/.build-tools
	rm -rf $(DIST) && SOURCE_DATE_EPOCH=$(SOURCE_DATE_EPOCH) $(BIN)/uv build --quiet --out-dir $(DIST)
	rm -rf base-image/dist && mkdir -p base-image/dist && cp $(DIST)/$(notdir $@) $@

.PHONY: dist
dist: $(BASE_WHEEL) ## Build shared_core's wheel and sdist into build/dist (what the base image installs, and pip elsewhere)
	@ls $(DIST)

# The service template (copier.yml, template/): a new service in its own repository, and the path CI proves.
NAME ?= inventory-service
DEST ?= ../$(NAME)
COMPOSE_V2 := build/tools/docker-compose-v2

$(COMPOSE_V2):
	tools/compose-v2 $@

.PHONY: new-service
new-service: venv ## A new service from the template, in its own directory: make new-service NAME=x-service DEST=../x-service
	$(BIN)/copier copy --trust --defaults --vcs-ref HEAD --data service_name=$(NAME) \
	  --data shared_core_version=$(VERSION) $(CURDIR) $(DEST)

.PHONY: test-downstream
test-downstream: venv dist $(COMPOSE_V2) ## A generated service, outside this repo, runs its own `make test` (Compose v2)
	@$(require_docker); \
	$(MAKE) --no-print-directory images; \
	tools/test-downstream $(CURDIR) $(VERSION) $(CURDIR)/$(COMPOSE_V2)

.PHONY: release
release: api-check ## Record this version's API (releases/<version>.api.json.gz), commit it and tag v<version>
	$(BIN)/python tools/api-check --record $(VERSION)
	git add releases/$(VERSION).api.json.gz && git commit -q -m "Release $(VERSION): its public API" && git tag v$(VERSION)

.PHONY: docs
docs: venv ## Build the docs site into build/site, strictly (a broken link or reference fails)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir build/site

.PHONY: docs-serve
docs-serve: venv ## Serve the docs on http://127.0.0.1:8000 while you edit them
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs serve

.PHONY: test
test: lint api-check docs test-unit test-services test-unit-postgres test-image sbom verify-reproducible test-integration test-integration-postgres test-swarm test-swarm-nodes test-downstream ## Everything

# The stack: docker compose (v2) where it exists, else docker-compose (v1).
COMPOSE := $(shell if docker compose version >/dev/null 2>&1; then echo "docker compose"; else echo docker-compose; fi)
PROJECT ?= shared-core
DB ?= sqlite
COMPOSE_FILES := -f compose/compose.yaml $(if $(filter postgres,$(DB)),-f compose/compose.postgres.yaml)
# What the services build FROM: their Dockerfiles' pinned ARG BASE_IMAGE (`make pin` moves it), unless you pass
# SERVICE_BASE=<reference>. Nothing else overrides a pin.
SERVICE_BASE ?=
PINNED_BASE = $(shell sed -n 's/^ARG BASE_IMAGE=//p' services/$(firstword $(SERVICES))/Dockerfile)
STACK = BASE_IMAGE=$(or $(SERVICE_BASE),$(PINNED_BASE)) NGINX_ROOT_IMAGE=$(NGINX_ROOT_IMAGE) SHARED_CORE_VERSION=$(VERSION) $(COMPOSE) --project-directory compose \
	-p $(PROJECT) $(COMPOSE_FILES)

SECRET = python3 -c 'import secrets; print(secrets.token_urlsafe($(1)))'

# Secrets compose/compose.yaml needs; `make up` writes each one missing from compose/.env.
STACK_SECRETS := OPERATOR_TOKEN TICKET_SERVICE_TOKEN COMMUNICATION_SERVICE_TOKEN FILE_SERVICE_TOKEN DJANGO_SECRET_KEY POSTGRES_PASSWORD

compose/.env:
	@umask 077; echo "# Written by make up on first run; never commit it." > $@

.PHONY: stack-secrets
stack-secrets: compose/.env
	@for name in $(STACK_SECRETS); do \
	  grep -q "^$$name=" compose/.env || { echo "$$name=$$($(call SECRET,50))" >> compose/.env; echo "wrote $$name to compose/.env"; }; \
	done

.PHONY: root-postgres-image
root-postgres-image: ## Build the PostgreSQL root image offline with debootstrap (once)
	@if docker image inspect $(POSTGRES_ROOT_IMAGE) >/dev/null 2>&1; then echo "$(POSTGRES_ROOT_IMAGE) exists"; \
	else tools/build-rootfs $(POSTGRES_ROOT_IMAGE) trixie postgresql,tini; fi

.PHONY: root-nginx-image
root-nginx-image: ## Build the edge's root (nginx 1.30 from Debian forky: upstream `resolve`) offline with debootstrap (once)
	@if docker image inspect $(NGINX_ROOT_IMAGE) >/dev/null 2>&1; then echo "$(NGINX_ROOT_IMAGE) exists"; \
	else tools/build-rootfs $(NGINX_ROOT_IMAGE) forky nginx; fi

.PHONY: root-haproxy-image
root-haproxy-image: ## Build a root with Debian's HAProxy (the bench's side-by-side edge) offline with debootstrap (once)
	@if docker image inspect $(HAPROXY_ROOT_IMAGE) >/dev/null 2>&1; then echo "$(HAPROXY_ROOT_IMAGE) exists"; \
	else tools/build-rootfs $(HAPROXY_ROOT_IMAGE) trixie haproxy; fi

.PHONY: root-node-image
root-node-image: ## Build the root image of a local swarm node (Debian's Docker Engine) offline with debootstrap (once)
	@if docker image inspect $(NODE_ROOT_IMAGE) >/dev/null 2>&1; then echo "$(NODE_ROOT_IMAGE) exists"; \
	else tools/build-rootfs $(NODE_ROOT_IMAGE) trixie \
	  docker.io,docker-cli,containerd,runc,iptables,iproute2,docker-registry,ca-certificates; fi

.PHONY: swarm-node-image
swarm-node-image: root-node-image ## Build shared-core/swarm-node:<version>: a Docker Engine that runs in a container
	@docker build --quiet --tag $(NODE_IMAGE) --build-arg ROOT_IMAGE=$(NODE_ROOT_IMAGE) compose/swarm-node >/dev/null

.PHONY: proxy
proxy: root-nginx-image ## Build the edge proxy image shared-core/proxy:<version> (what Compose builds too)
	docker build --tag $(PROXY_IMAGE) --build-arg ROOT_IMAGE=$(NGINX_ROOT_IMAGE) --build-arg VERSION=$(VERSION) proxy

# The base and the edge's root are independent: `up` builds them side by side on two cores.
.PHONY: up
up: stack-secrets ## Build what is missing and run the services (DB=postgres: PostgreSQL)
	@$(MAKE) --no-print-directory -j2 --output-sync=target base root-nginx-image \
	  $(if $(filter postgres,$(DB)),root-postgres-image)
	$(STACK) build
	$(STACK) up -d
	@tools/wait-healthy $(PROJECT) 180
	@echo "user-service          http://127.0.0.1:$${USER_PORT:-8001}"
	@echo "ticket-service        http://127.0.0.1:$${TICKET_PORT:-8002}"
	@echo "communication-service http://127.0.0.1:$${COMMUNICATION_PORT:-8003}"
	@echo "file-service          http://127.0.0.1:$${FILE_PORT:-8004}"
	@echo "token: OPERATOR_TOKEN in compose/.env (send it as Authorization: Bearer ...)"

.PHONY: down
down: ## Stop the stack (volumes are kept; `make down VOLUMES=1` removes them)
	$(STACK) down $(if $(VOLUMES),--volumes)

.PHONY: logs
logs: ## Follow the stack's logs
	$(STACK) logs -f --tail 50

OUTBOX ?= status
.PHONY: outbox
outbox: ## ticket-service's outbox: `make outbox`, `make outbox OUTBOX="status --json"`, `make outbox OUTBOX=retry`
	$(STACK) exec -T ticket-service python3 manage.py outbox $(OUTBOX)

SERVICE ?= ticket-service
.PHONY: metrics
metrics: ## A service's Prometheus metrics, read on its own port inside the stack: `make metrics SERVICE=user-service`
	$(STACK) exec -T $(SERVICE) python3 -c \
	  "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:8000/metrics').read().decode(), end='')"

SERVICES := $(shell cat services/SERVICES)
SERVICE_TEST_ENV := DJANGO_SECRET_KEY=service-unit-tests-only-0123456789abcdefghijklmnopqrstuvwxyz \
	SERVICE_AUTH_TOKEN=service-unit-test-token

.PHONY: test-services
test-services: venv ## Each service's own unit tests (Django test client, no Docker)
	@mkdir -p $(RESULTS)
	@for s in $(SERVICES); do \
	  echo "== $$s ($(if $(PG),postgres,sqlite))"; \
	  (cd services/$$s && export $(SERVICE_TEST_ENV) DATABASE_URL=$${TEST_DATABASE_URL:-sqlite://:memory:} \
	    && PYTHONPATH=.:../.. ../../$(BIN)/python manage.py check --deploy --fail-level WARNING \
	    && PYTHONPATH=.:../.. ../../$(BIN)/python manage.py makemigrations --check --dry-run \
	    && ../../$(PYTEST) -q --junitxml=../../$(RESULTS)/$$s-$(if $(PG),postgres,sqlite).xml) || exit 1; \
	done

.PHONY: lock
lock: venv ## Re-lock base-image/requirements.in (hashes, for Python 3.13 on Linux x86_64)
	$(BIN)/uv pip compile --quiet --generate-hashes --python-version 3.13 --python-platform x86_64-manylinux_2_28 \
	  --no-header --output-file base-image/requirements.lock base-image/requirements.in

$(WHEELHOUSE)/.complete: base-image/requirements.lock $(BIN)/.build-tools
	rm -rf $(WHEELHOUSE) && mkdir -p $(WHEELHOUSE)
	$(BIN)/pip download --quiet --no-deps --require-hashes --only-binary=:all: -d $(WHEELHOUSE) \
	  --implementation cp --python-version 3.13 --abi cp313 --abi abi3 --abi none \
	  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
	  --platform any -r base-image/requirements.lock
	touch $@

.PHONY: wheelhouse
wheelhouse: $(WHEELHOUSE)/.complete ## Download the locked wheels (hash-checked) for the image build

.PHONY: root-image
root-image: ## Build the Debian trixie root image offline with debootstrap (once)
	@if [[ "$(ROOT_IMAGE)" != "$(DEFAULT_ROOT_IMAGE)" ]]; then echo "using $(ROOT_IMAGE)"; \
	elif docker image inspect $(ROOT_IMAGE) >/dev/null 2>&1; then echo "$(ROOT_IMAGE) exists"; \
	else SOURCE_DATE_EPOCH=$(ROOT_EPOCH) DEBIAN_LOCK=$(DEBIAN_LOCK) tools/build-rootfs $(ROOT_IMAGE) trixie; fi

.PHONY: lock-debian
lock-debian: ## Rebuild the base's Debian root from the mirror as it is now and write its versions to DEBIAN_LOCK
	SOURCE_DATE_EPOCH=$(ROOT_EPOCH) DEBIAN_LOCK=$(DEBIAN_LOCK) DEBIAN_LOCK_UPDATE=1 tools/build-rootfs $(DEFAULT_ROOT_IMAGE) trixie

.PHONY: verify-reproducible
verify-reproducible: venv wheelhouse ## Build the wheel, the Debian root and the base twice from this tree; their digests must match
	@$(require_docker)
	SOURCE_DATE_EPOCH=$(SOURCE_DATE_EPOCH) ROOT_EPOCH=$(ROOT_EPOCH) DEBIAN_LOCK=$(DEBIAN_LOCK) tools/verify-reproducible

# One target of Dockerfile.base: $(1) is base or dev, tagged $(BASE_IMAGE) or $(BASE_IMAGE)-dev.
define build_base
python=$$(docker run --rm --entrypoint python3 $(ROOT_IMAGE) -c 'import platform; print(platform.python_version())'); \
docker build $(BASE_BUILD_FLAGS) --file Dockerfile.base --target $(1) --tag $(BASE_IMAGE)$(if $(filter dev,$(1)),-dev) \
  --build-arg ROOT_IMAGE=$(ROOT_IMAGE) --build-arg VERSION=$(VERSION) --build-arg REVISION=$(REVISION) \
  --build-arg CREATED=$(CREATED) --build-arg SOURCE_DATE_EPOCH=$(SOURCE_DATE_EPOCH) --build-arg SOURCE=$(SOURCE) \
  --build-arg PYTHON_VERSION=$$python \
  --build-arg DJANGO_VERSION=$(DJANGO_VERSION) .
endef

.PHONY: base
base: root-image wheelhouse dist ## Build the base image shared-core/base:<version> (all the stack needs)
	@$(call build_base,base)

.PHONY: base-dev
base-dev: base ## Build its builder variant <version>-dev (pip and apt back, for build stages)
	@$(call build_base,dev)

.PHONY: sbom
sbom: base ## The base image's software bill of materials (CycloneDX JSON, as baked into it) into build/sbom.json
	@mkdir -p build
	docker run --rm --entrypoint cat $(BASE_IMAGE) /usr/share/doc/shared-core/sbom.json > build/sbom.json
	@$(BIN)/python -c 'import json; b = json.load(open("build/sbom.json")); print("build/sbom.json:", len(b["components"]), "components")'

.PHONY: publish
publish: ## Push the base image (and its -dev tag) to REGISTRY=host:port; its pinned reference goes to BASE_DIGEST_FILE
	@[[ -n "$(REGISTRY)" ]] || { echo "usage: make publish REGISTRY=host:port [BASE_DIGEST_FILE=path]" >&2; exit 2; }
	tools/publish-base $(REGISTRY) $(BASE_IMAGE) $(BASE_DIGEST_FILE)

PIN_FILES ?= $(wildcard services/*/Dockerfile)
BASE_DIGEST_FILE ?= build/base-image.digest

.PHONY: pin
pin: ## Write the published reference (BASE_DIGEST_FILE) into PIN_FILES' ARG BASE_IMAGE=...@sha256:... lines
	tools/pin-base $(BASE_DIGEST_FILE) $(PIN_FILES)

.PHONY: print-service-base
print-service-base: ## Print what the services build FROM: the pinned ARG BASE_IMAGE, or SERVICE_BASE when given
	@echo $(or $(SERVICE_BASE),$(PINNED_BASE))

.PHONY: print-base-image
print-base-image: ## Print the base image reference services build FROM
	@echo $(BASE_IMAGE)

.PHONY: bench
bench: images swarm-node-image root-haproxy-image stack-secrets ## Benchmarks side by side (about 30 min on 2 cores): writes bench/results/ and docs/benchmarks.md
	@command -v wrk >/dev/null && command -v valgrind >/dev/null || { apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk valgrind >/dev/null; }
	$(STACK) build
	SHARED_CORE_BASE_IMAGE=$(BASE_IMAGE) SHARED_CORE_PROXY_IMAGE=$(PROXY_IMAGE) ROOT_IMAGE=$(ROOT_IMAGE) \
	  HAPROXY_ROOT_IMAGE=$(HAPROXY_ROOT_IMAGE) COMPOSE="$(COMPOSE)" tools/with-registry $(BIN)/python -m bench.run

# The Swarm stack (compose/stack.yaml, tools/swarm): images by digest from REGISTRY=host:port, or from a
# throwaway registry on 127.0.0.1 when none is given (enough for this single node: it keeps the images).
SWARM_STACK ?= shared-core
SWARM = set -a && source compose/.env && set +a && STACK=$(SWARM_STACK) VERSION=$(VERSION) \
	$(if $(REGISTRY),REGISTRY=$(REGISTRY),tools/with-registry) tools/swarm

.PHONY: images
images: base proxy root-postgres-image ## Build every image the Swarm stack runs: the services FROM the base, PostgreSQL
	@for s in $(SERVICES); do \
	  docker build --quiet --tag shared-core/$$s:$(VERSION) $(if $(SERVICE_BASE),--build-arg BASE_IMAGE=$(SERVICE_BASE)) \
	    services/$$s; done
	@docker build --quiet --tag shared-core/postgres:$(VERSION) --build-arg ROOT_IMAGE=$(POSTGRES_ROOT_IMAGE) compose/postgres

# A swarm of N local nodes (tools/swarm-nodes): Docker Engines in containers of this engine, each a node.
N ?= 3
NODES_NAME ?= shared-core-nodes
NODE_IMAGE := shared-core/swarm-node:$(VERSION)
NODES = NODES=$(N) NODES_NAME=$(NODES_NAME) NODE_IMAGE=$(NODE_IMAGE) VERSION=$(VERSION) tools/swarm-nodes

.PHONY: swarm-nodes
swarm-nodes: images swarm-node-image stack-secrets ## A local swarm of N nodes (default 3, all managers) running the stack, by digest
	$(NODES) up
	set -a && source compose/.env && set +a && $(NODES) deploy
	@$(NODES) env | sed -n 's/^NODE_ADDRESSES=/the edge of each node: port 8001-8004 of /p'

.PHONY: swarm-nodes-down
swarm-nodes-down: ## Remove the local swarm nodes, their data and their registry
	$(NODES) down

.PHONY: test-swarm-nodes
test-swarm-nodes: venv ## A 3-node swarm under load: spread, drain, rollout, a lost node, a lost leader, the database's node
	@mkdir -p $(RESULTS)
	@$(require_docker); \
	$(MAKE) --no-print-directory images swarm-node-image; \
	SHARED_CORE_BASE_IMAGE=$(BASE_IMAGE) NODE_IMAGE=$(NODE_IMAGE) \
	  $(PYTEST) tests/swarm/nodes -p no:django -W ignore::pytest.PytestConfigWarning --junitxml=$(RESULTS)/swarm-nodes.xml

.PHONY: deploy
deploy: images stack-secrets ## Deploy the stack on Docker Swarm (joins a single-node swarm if none), migrate once, wait
	$(SWARM) deploy

.PHONY: rollout
rollout: images stack-secrets ## Roll the services onto this tree's images (after a new base): start-first, auto-rollback
	$(SWARM) rollout

.PHONY: rollback
rollback: ## Roll every service of the stack back to its previous images, by hand
	STACK=$(SWARM_STACK) tools/swarm rollback

.PHONY: undeploy
undeploy: ## Remove the stack and its secrets (`VOLUMES=1`: its data too); leave the swarm if `make deploy` made it
	STACK=$(SWARM_STACK) VOLUMES=$(VOLUMES) tools/swarm undeploy

.PHONY: print-version
print-version: ## Print the one version of shared_core and the base image
	@echo $(VERSION)

.PHONY: clean
clean: ## Remove the virtualenv, caches and build output
	rm -rf $(VENV) build .mypy_cache .ruff_cache .pytest_cache
