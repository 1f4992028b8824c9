# The two commands of the README: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup browser run test test-postgres lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

# GOV.UK Frontend for the pages (served at /assets) and axe-core for the browser tests, pinned in the lock
node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch node_modules/.installed

setup: $(STAMP) node_modules/.installed

## The browser tests drive Debian's Chromium (as root in CI); Playwright never downloads one
browser:
	@command -v chromium >/dev/null || { echo "Installing Chromium for the browser tests (apt-get)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

## Set up, initialise (keys and SQLite under var/), load demo data and serve on http://127.0.0.1:5000
run: setup
	$(BIN)/pds init
	$(BIN)/pds demo
	$(BIN)/pds serve

## Set up and run the whole test suite (SQLite; set PDS_TEST_DATABASE_URL for PostgreSQL)
test: setup browser
	$(BIN)/ruff check pds consent connectors migrations tests bench
	$(BIN)/pytest

## The suite against PostgreSQL on 127.0.0.1:5432, in a fresh database dropped afterwards
test-postgres: setup browser
	bash .ci/postgres-tests

lint: setup
	$(BIN)/ruff check pds consent connectors migrations tests bench

bench: setup
	$(BIN)/python bench/run.py
	$(BIN)/python bench/api_reads.py
	$(BIN)/python bench/ledger.py
	$(BIN)/python bench/connector_ingest.py

clean:
	rm -rf $(VENV) var .pytest_cache
