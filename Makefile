# Sextant: `make run` and `make test` are all a new machine needs (Python 3.11+ and make).
# `make help` lists every target.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)
# Operator targets reach the stack `make run` started unless DATABASE_URL / KAFKA_* are set.
DEVENV := [ -n "$$DATABASE_URL" ] || [ ! -f .sextant/dev.env ] || . ./.sextant/dev.env;

.DEFAULT_GOAL := help
.PHONY: help install run test test-fast lint format migrate key keys revoke clean

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  make %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@rm -f $(VENV)/.installed-*; touch $@

install: $(STAMP) ## create .venv and install Sextant with its dev tools

run: $(STAMP) ## the whole system on the embedded stack (or DATABASE_URL / KAFKA_BOOTSTRAP_SERVERS)
	$(BIN)/sextant dev

test: $(STAMP) ## the whole suite against real Postgres and Kafka-protocol broker
	$(BIN)/pytest

test-fast: $(STAMP) ## unit tests only (no services)
	$(BIN)/pytest tests/unit

lint: $(STAMP) ## ruff and mypy --strict
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(STAMP) ## apply ruff's fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

migrate: $(STAMP) ## apply schema migrations to DATABASE_URL
	@$(DEVENV) $(BIN)/sextant migrate

key: $(STAMP) ## create an API key: make key WORKSPACE=acme [CONNECTOR=web]
	@test -n "$(WORKSPACE)" || { echo "usage: make key WORKSPACE=name [CONNECTOR=name]"; exit 2; }
	@$(DEVENV) $(BIN)/sextant key create --workspace '$(WORKSPACE)' --connector '$(or $(CONNECTOR),default)'

keys: $(STAMP) ## list a workspace's keys: make keys WORKSPACE=acme
	@test -n "$(WORKSPACE)" || { echo "usage: make keys WORKSPACE=name"; exit 2; }
	@$(DEVENV) $(BIN)/sextant key list --workspace '$(WORKSPACE)'

revoke: $(STAMP) ## revoke a key by its prefix or whole: make revoke KEY=sx_abc123
	@test -n "$(KEY)" || { echo "usage: make revoke KEY=prefix-or-key"; exit 2; }
	@$(DEVENV) $(BIN)/sextant key revoke '$(KEY)'

clean: ## remove .venv and caches
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis .sextant
