##@ Test
# Included by the Makefile, which defines every variable used here.

.PHONY: lint
lint: venv ## ruff (lint and format check), mypy (strict, django-stubs) and import-linter (shared_core's layers)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

.PHONY: test-unit
test-unit: venv ## Unit tests on SQLite (real Django, real local HTTP servers)
	@mkdir -p $(RESULTS)
	$(PYTEST) --junitxml=$(RESULTS)/unit-sqlite.xml

.PHONY: test-unit-postgres
test-unit-postgres: venv ## shared_core's and the services' unit tests on a throwaway PostgreSQL on 127.0.0.1
	@mkdir -p $(RESULTS)
	tools/with-postgres bash -c '$(PYTEST) --junitxml=$(RESULTS)/unit-postgres.xml && $(MAKE) --no-print-directory test-services PG=1'

.PHONY: test-image
test-image: venv ## The shipped images' contract tests (builds them): a child image FROM the base, a local registry, Debian stable only
	@mkdir -p $(RESULTS)
	@$(require_docker); \
	$(MAKE) --no-print-directory base base-dev proxy postgres; \
	SHARED_CORE_BASE_IMAGE=$(BASE_IMAGE) SHARED_CORE_PROXY_IMAGE=$(PROXY_IMAGE) SHARED_CORE_POSTGRES_IMAGE=$(POSTGRES_IMAGE) \
	  ROOT_IMAGE=$(ROOT_IMAGE) \
	  tools/with-registry $(PYTEST) tests/image -p no:django -W ignore::pytest.PytestConfigWarning --junitxml=$(RESULTS)/image.xml

.PHONY: test-integration
test-integration: venv ## The cross-container suite: pytest-docker runs the stack and injects real faults
	@mkdir -p $(RESULTS)
	@$(require_docker); \
	$(MAKE) --no-print-directory base root-edge-image $(if $(filter postgres,$(DB)),root-postgres-image); \
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

.PHONY: test-integration-postgres
test-integration-postgres: ## Soft delete, the outbox, a database restart and the contract fuzzing on PostgreSQL, JSON logs
	@LOG_FORMAT=json $(MAKE) --no-print-directory test-integration DB=postgres INTEGRATION_TESTS="\
	  tests/integration/test_soft_delete.py tests/integration/test_database.py tests/integration/test_contracts.py \
	  tests/integration/test_outbox.py \
	  $(LOG_TESTS)::test_every_log_line_has_the_shared_format \
	  $(LOG_TESTS)::test_one_request_id_appears_in_three_services_logs \
	  tests/integration/test_soak.py"

.PHONY: soak
soak: ## Seeded random workload + real faults + invariant checker (SOAK_SECONDS=180, SOAK_SEED, SOAK_DB=postgres)
	@SOAK_SECONDS=$(SOAK_SECONDS) SOAK_SEED=$(SOAK_SEED) $(MAKE) --no-print-directory test-integration \
	  DB=$(SOAK_DB) INTEGRATION_TESTS=tests/integration/test_soak.py PYTEST_ARGS="-s"

.PHONY: api-check
api-check: venv ## The public API against the last release's (releases/): a break needs a version step and a CHANGELOG entry
	$(BIN)/python tools/api-check

$(COMPOSE_V2):
	tools/compose-v2 $@

.PHONY: test-downstream
test-downstream: venv dist $(COMPOSE_V2) ## A generated service, outside this repo, runs its own `make test` (Compose v2)
	@$(require_docker); \
	$(MAKE) --no-print-directory images; \
	tools/test-downstream $(CURDIR) $(VERSION) $(CURDIR)/$(COMPOSE_V2)

.PHONY: test
test: lint api-check docs test-unit test-services test-unit-postgres test-image sbom verify-reproducible test-integration test-integration-postgres test-swarm test-swarm-nodes test-downstream ## Everything

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

.PHONY: verify-reproducible
verify-reproducible: venv wheelhouse ## Build the wheel, the Debian roots and the base twice from this tree; their digests must match
	@$(require_docker)
	SOURCE_DATE_EPOCH=$(SOURCE_DATE_EPOCH) ROOT_EPOCH=$(ROOT_EPOCH) DEBIAN_LOCK=$(DEBIAN_LOCK) \
	  EDGE_ROOT_EPOCH=$(EDGE_ROOT_EPOCH) EDGE_DEBIAN_LOCK=$(EDGE_DEBIAN_LOCK) EDGE_PACKAGES=$(EDGE_PACKAGES) \
	  tools/verify-reproducible

.PHONY: test-swarm-nodes
test-swarm-nodes: venv ## A 3-node swarm under load: spread, drain, rollout, a lost node, a lost leader, the database's node
	@mkdir -p $(RESULTS)
	@$(require_docker); \
	$(MAKE) --no-print-directory images swarm-node-image; \
	SHARED_CORE_BASE_IMAGE=$(BASE_IMAGE) NODE_IMAGE=$(NODE_IMAGE) \
	  $(PYTEST) tests/swarm/nodes -p no:django -W ignore::pytest.PytestConfigWarning --junitxml=$(RESULTS)/swarm-nodes.xml
