##@ Release and pin: the base image, new services
# Included by the Makefile, which defines every variable used here.

.PHONY: new-service
new-service: venv ## A new service from the template in its own directory: make new-service NAME=x-service MODEL=Invoice DEST=../x-service
	$(BIN)/copier copy --trust --defaults --vcs-ref HEAD --data service_name=$(NAME) --data model_name=$(MODEL) \
	  --data shared_core_version=$(VERSION) $(CURDIR) $(DEST)

.PHONY: release
release: api-check ## Record this version's API (releases/<version>.api.json.gz), commit it and tag v<version>
	$(BIN)/python tools/api-check --record $(VERSION)
	git add releases/$(VERSION).api.json.gz && git commit -q -m "Release $(VERSION): its public API" && git tag v$(VERSION)

.PHONY: publish
publish: ## Push the base image (and its -dev tag) to REGISTRY=host:port; its pinned reference goes to BASE_DIGEST_FILE
	@[[ -n "$(REGISTRY)" ]] || { echo "usage: make publish REGISTRY=host:port [BASE_DIGEST_FILE=path]" >&2; exit 2; }
	tools/publish-base $(REGISTRY) $(BASE_IMAGE) $(BASE_DIGEST_FILE)

.PHONY: pin
pin: ## Write the published reference (BASE_DIGEST_FILE) into PIN_FILES' ARG BASE_IMAGE=...@sha256:... lines
	tools/pin-base $(BASE_DIGEST_FILE) $(PIN_FILES)

.PHONY: print-service-base
print-service-base: ## Print what the services build FROM: the pinned ARG BASE_IMAGE, or SERVICE_BASE when given
	@echo $(or $(SERVICE_BASE),$(PINNED_BASE))

.PHONY: print-base-image
print-base-image: ## Print the base image reference services build FROM
	@echo $(BASE_IMAGE)

.PHONY: print-version
print-version: ## Print the one version of shared_core and the base image
	@echo $(VERSION)
