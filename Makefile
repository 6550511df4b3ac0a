# floe-runtime: `make demo` runs the example, `make test` runs the whole suite.
# Both create .venv and install the project from its own files first.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
EXAMPLE := examples/customer-analytics

.PHONY: install system-deps demo test lint typecheck bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

# Servers and tools the test suite starts for real (PostgreSQL, Chromium); see scripts/.
system-deps:
	bash scripts/install-system-deps.sh

demo: $(STAMP)
	$(BIN)/floe-runtime validate $(EXAMPLE)
	$(BIN)/floe-runtime run $(EXAMPLE) --env dev
	$(BIN)/floe-runtime lineage $(EXAMPLE) --env dev --no-open
	@echo
	@echo "Iceberg tables:  $(EXAMPLE)/.floe/catalog.db (SQLite catalog, namespace analytics)"
	@echo "                 data and metadata in $(EXAMPLE)/.floe/warehouse/analytics/"
	@echo "Lineage page:    $(EXAMPLE)/target/floe/lineage.html (events: $(EXAMPLE)/.floe/lineage.jsonl)"
	@echo "Traces:          $(EXAMPLE)/.floe/traces.jsonl"
	@echo "Dagster UI:      $(BIN)/floe-runtime dev $(EXAMPLE) --env dev"

test: $(STAMP) system-deps
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check floe_runtime floe_lsp tests bench

typecheck: $(STAMP)
	$(BIN)/mypy floe_runtime floe_lsp

bench: $(STAMP)
	$(BIN)/python bench/cli_startup.py

clean:
	rm -rf $(VENV) $(EXAMPLE)/target $(EXAMPLE)/.floe
