# Procflow: `make run` starts everything locally, `make test` runs the whole suite.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Browser assets (Pico CSS, htmx, bpmn-js, Chart.js) come from npm; `npm ci` copies them into web/static/vendor/
# and bundles the studio's editors (web/studio-src/) with esbuild.
VENDOR := web/static/vendor/.installed
HOST ?= 127.0.0.1
PORT ?= 5000

.PHONY: run test lint bench clean browser pdf-libs translations

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

$(VENDOR): package.json package-lock.json web/copy-vendor-assets.mjs web/build-studio.mjs $(wildcard web/studio-src/*)
	npm ci --no-audit --no-fund
	touch $(VENDOR)

# Browser tests drive Debian's Chromium (Playwright's own browser download is not used).
browser:
	@command -v chromium >/dev/null || (apt-get update && apt-get install -y chromium)

# Documentation records as PDF (WeasyPrint) need Debian's Pango.
pdf-libs:
	@ldconfig -p | grep -q libpangoft2-1.0 || (apt-get update && apt-get install -y libpango-1.0-0 libpangoft2-1.0-0)

run: $(STAMP) $(VENDOR) pdf-libs
	$(BIN)/procflow db upgrade
	@if [ -d processes ] && ls processes/*/ >/dev/null 2>&1; then $(BIN)/procflow deploy processes/*/; fi
	@if [ -f processes/demo.json ]; then $(BIN)/procflow demo load processes/demo.json; fi
	@mkdir -p instance; test -s instance/secret-key || $(BIN)/python -c "import secrets; print(secrets.token_hex(32))" > instance/secret-key
	@echo "Procflow: open http://$(HOST):$(PORT)/ and sign in with a demo login above (Ctrl-C stops the web app and the worker)"
	@$(BIN)/procflow worker & worker=$$!; trap "kill $$worker 2>/dev/null" EXIT INT TERM; \
		PROCFLOW_SECRET_KEY="$${PROCFLOW_SECRET_KEY:-$$(cat instance/secret-key)}" $(BIN)/procflow serve --host $(HOST) --port $(PORT)

test: $(STAMP) $(VENDOR) browser pdf-libs
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# The PostgreSQL benchmarks create this database if missing and drop its tables.
BENCH_POSTGRES ?= postgresql+psycopg://postgres@127.0.0.1:5432/procflow_bench

bench: $(STAMP)
	$(BIN)/python bench/engine_overhead.py --postgres $(BENCH_POSTGRES)
	$(BIN)/python bench/long_running.py
	$(BIN)/python bench/evaluator_overhead.py
	$(BIN)/python bench/inbox_scale.py $(BENCH_POSTGRES)
	$(BIN)/python bench/workers_scale.py $(BENCH_POSTGRES)
	$(BIN)/python bench/reports_scale.py $(BENCH_POSTGRES)

translations: $(STAMP)
	$(BIN)/pybabel extract -F web/babel.cfg -k N_ -k _l -k lazy_gettext -o web/translations/messages.pot --no-location --omit-header --sort-output .
	$(BIN)/pybabel update -i web/translations/messages.pot -d web/translations --ignore-obsolete -w 110
	$(BIN)/pybabel compile -d web/translations

clean:
	rm -rf $(VENV) instance .pytest_cache .mypy_cache .ruff_cache node_modules web/static/vendor
