##@ Run: the stack on Compose and Swarm
# Included by the Makefile, which defines every variable used here.

compose/.env:
	@umask 077; echo "# Written by make up on first run; never commit it." > $@

.PHONY: stack-secrets
stack-secrets: compose/.env
	@for name in $(STACK_SECRETS); do \
	  grep -q "^$$name=" compose/.env || { echo "$$name=$$($(call SECRET,50))" >> compose/.env; echo "wrote $$name to compose/.env"; }; \
	done

# The base and the edge's root are independent: `up` builds them side by side on two cores.
.PHONY: up
up: stack-secrets ## Build what is missing and run the services (DB=postgres: PostgreSQL)
	@$(MAKE) --no-print-directory -j2 --output-sync=target base root-edge-image \
	  $(if $(filter postgres,$(DB)),root-postgres-image)
	$(STACK) build
	$(STACK) up -d
	@tools/wait-healthy $(PROJECT) 180
	@$(MAKE) --no-print-directory urls

# Compose's own answer, so ports set in compose/.env, or random ones (USER_PORT= and friends), print as they are.
.PHONY: urls
urls: ## Print each service's URL at the edge, on the host ports the running stack published
	@for route in user-service=8001 ticket-service=8002 communication-service=8003 file-service=8004; do \
	  published=$$($(STACK) port proxy $${route#*=}); \
	  printf '%-21s http://%s\n' "$${route%%=*}" "$$published"; \
	done
	@echo "token: OPERATOR_TOKEN in compose/.env (send it as Authorization: Bearer ...)"

.PHONY: down
down: ## Stop the stack (volumes are kept; `make down VOLUMES=1` removes them)
	$(STACK) down $(if $(VOLUMES),--volumes)

.PHONY: logs
logs: ## Follow the stack's logs
	$(STACK) logs -f --tail 50

.PHONY: outbox
outbox: ## ticket-service's outbox: `make outbox`, `make outbox OUTBOX="status --json"`, `make outbox OUTBOX=retry`
	$(STACK) exec -T ticket-service python3 manage.py outbox $(OUTBOX)

.PHONY: metrics
metrics: ## A service's Prometheus metrics, read on its own port inside the stack: `make metrics SERVICE=user-service`
	$(STACK) exec -T $(SERVICE) python3 -c \
	  "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:8000/metrics').read().decode(), end='')"

.PHONY: swarm-nodes
swarm-nodes: images swarm-node-image stack-secrets ## A local swarm of N nodes (default 3, all managers) running the stack, by digest
	$(NODES) up
	set -a && source compose/.env && set +a && $(NODES) deploy
	@$(NODES) env | sed -n 's/^NODE_ADDRESSES=/the edge of each node: port 8001-8004 of /p'

.PHONY: swarm-nodes-down
swarm-nodes-down: ## Remove the local swarm nodes, their data and their registry
	$(NODES) down

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
