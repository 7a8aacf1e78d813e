##@ Docs
# Included by the Makefile, which defines every variable used here.

.PHONY: docs
docs: venv ## Build the docs site into build/site, strictly (a broken link or reference fails)
	NO_MKDOCS_2_WARNING=1 PYTHONPATH=$(CURDIR) $(BIN)/mkdocs build --strict --site-dir build/site

.PHONY: docs-serve
docs-serve: venv ## Serve the docs on http://127.0.0.1:8000 while you edit them
	NO_MKDOCS_2_WARNING=1 PYTHONPATH=$(CURDIR) $(BIN)/mkdocs serve
