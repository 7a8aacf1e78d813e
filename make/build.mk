##@ Build: the virtualenv, the wheel and the images
# Included by the Makefile, which defines every variable used here.

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

.PHONY: format
format: venv ## Apply ruff's formatting and safe fixes
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

$(BASE_WHEEL): $(DIST_SOURCES) $(BIN)/.build-tools
	rm -rf $(DIST) && SOURCE_DATE_EPOCH=$(SOURCE_DATE_EPOCH) $(BIN)/uv build --quiet --out-dir $(DIST)
	rm -rf base-image/dist && mkdir -p base-image/dist && cp $(DIST)/$(notdir $@) $@

.PHONY: dist
dist: $(BASE_WHEEL) ## Build shared_core's wheel and sdist into build/dist (what the base image installs, and pip elsewhere)
	@ls $(DIST)

.PHONY: root-postgres-image
root-postgres-image: ## Build the PostgreSQL root image offline with debootstrap (once)
	@if docker image inspect $(POSTGRES_ROOT_IMAGE) >/dev/null 2>&1; then echo "$(POSTGRES_ROOT_IMAGE) exists"; \
	else tools/build-rootfs $(POSTGRES_ROOT_IMAGE) trixie postgresql,tini; fi

.PHONY: root-edge-image
root-edge-image: ## Build the edge's root (nginx and HAProxy from Debian trixie) offline with debootstrap (once)
	@if [[ "$(EDGE_ROOT_IMAGE)" != "$(DEFAULT_EDGE_ROOT_IMAGE)" ]]; then echo "using $(EDGE_ROOT_IMAGE)"; \
	elif docker image inspect $(EDGE_ROOT_IMAGE) >/dev/null 2>&1; then echo "$(EDGE_ROOT_IMAGE) exists"; \
	else SOURCE_DATE_EPOCH=$(EDGE_ROOT_EPOCH) DEBIAN_LOCK=$(EDGE_DEBIAN_LOCK) \
	  tools/build-rootfs $(EDGE_ROOT_IMAGE) trixie $(EDGE_PACKAGES); fi

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
proxy: root-edge-image ## Build the edge proxy image shared-core/proxy:<version> (what Compose builds too)
	docker build --tag $(PROXY_IMAGE) --build-arg ROOT_IMAGE=$(EDGE_ROOT_IMAGE) --build-arg VERSION=$(VERSION) proxy

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
lock-debian: ## Rebuild the base's and the edge's Debian roots from the mirror as it is now and write their versions to the locks
	SOURCE_DATE_EPOCH=$(ROOT_EPOCH) DEBIAN_LOCK=$(DEBIAN_LOCK) DEBIAN_LOCK_UPDATE=1 tools/build-rootfs $(DEFAULT_ROOT_IMAGE) trixie
	SOURCE_DATE_EPOCH=$(EDGE_ROOT_EPOCH) DEBIAN_LOCK=$(EDGE_DEBIAN_LOCK) DEBIAN_LOCK_UPDATE=1 \
	  tools/build-rootfs $(DEFAULT_EDGE_ROOT_IMAGE) trixie $(EDGE_PACKAGES)

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

.PHONY: postgres
postgres: root-postgres-image ## Build the stack's PostgreSQL image shared-core/postgres:<version>
	@docker build --quiet --tag $(POSTGRES_IMAGE) --build-arg ROOT_IMAGE=$(POSTGRES_ROOT_IMAGE) compose/postgres

.PHONY: images
images: base proxy postgres ## Build every image the Swarm stack runs: the services FROM the base, PostgreSQL
	@for s in $(SERVICES); do \
	  docker build --quiet --tag shared-core/$$s:$(VERSION) $(if $(SERVICE_BASE),--build-arg BASE_IMAGE=$(SERVICE_BASE)) \
	    services/$$s; done
