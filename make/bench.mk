##@ Measure
# Included by the Makefile, which defines every variable used here.

.PHONY: bench
bench: images swarm-node-image root-haproxy-image stack-secrets ## Benchmarks side by side (about 30 min on 2 cores): writes bench/results/ and docs/benchmarks.md
	@command -v wrk >/dev/null && command -v valgrind >/dev/null || { apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk valgrind >/dev/null; }
	$(STACK) build
	SHARED_CORE_BASE_IMAGE=$(BASE_IMAGE) SHARED_CORE_PROXY_IMAGE=$(PROXY_IMAGE) ROOT_IMAGE=$(ROOT_IMAGE) \
	  HAPROXY_ROOT_IMAGE=$(HAPROXY_ROOT_IMAGE) COMPOSE="$(COMPOSE)" tools/with-registry $(BIN)/python -m bench.run
