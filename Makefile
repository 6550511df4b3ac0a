# floe-runtime: `make demo` runs the example, `make test` runs the whole suite.
# Both create .venv and install the project from its own files first.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
EXAMPLE := examples/customer-analytics

.PHONY: install system-deps vscode-test-deps vsix demo test lint typecheck bench bench-lsp clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

# Servers and tools the test suite starts for real (PostgreSQL, Chromium); see scripts/.
system-deps:
	bash scripts/install-system-deps.sh

# The VS Code extension, packaged: editors/vscode/floe.vsix (npm ci from the lock file).
VSCODE := editors/vscode
VSIX    := $(VSCODE)/floe.vsix
$(VSCODE)/node_modules/.installed: $(VSCODE)/package-lock.json
	cd $(VSCODE) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

$(VSIX): $(VSCODE)/node_modules/.installed $(VSCODE)/package.json $(VSCODE)/esbuild.mjs $(wildcard $(VSCODE)/src/*.ts) schemas/floe.schema.json schemas/platform.schema.json
	cd $(VSCODE) && npm run -s package >/dev/null
	@echo "built $(VSIX)"

vsix: $(VSIX)

# code-server + playwright-core for the VS Code end-to-end test, cached in ~/.cache/floe-runtime-ci.
vscode-test-deps:
	bash scripts/install-vscode-test-deps.sh >/dev/null

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

test: $(STAMP) system-deps vscode-test-deps vsix
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check floe_runtime floe_lsp tests bench
	$(BIN)/ruff format --check floe_runtime floe_lsp tests bench

typecheck: $(STAMP)
	$(BIN)/mypy floe_runtime floe_lsp

YLS_DIR ?= /tmp/floe-bench-yls

# Benchmarks print figures beside their references (DESIGN §7); they are not tests.
bench: $(STAMP)
	$(BIN)/python bench/cli_startup.py
	$(BIN)/python bench/run_overhead.py

# yaml-language-server (npm) is the reference server; installed outside the repository.
bench-lsp: $(STAMP)
	test -x $(YLS_DIR)/node_modules/.bin/yaml-language-server || \
		npm install --silent --prefix $(YLS_DIR) yaml-language-server@1.25.0
	$(BIN)/python bench/lsp_latency.py --yls $(YLS_DIR)/node_modules/.bin/yaml-language-server

clean:
	rm -rf $(VENV) $(EXAMPLE)/target $(EXAMPLE)/.floe $(VSCODE)/dist $(VSCODE)/schemas $(VSCODE)/floe.vsix
