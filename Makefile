# Sextant: `make run` and `make test` are all a new machine needs (Python 3.11+ and make).
# `make help` lists every target.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)
# Operator targets reach the stack `make run` started unless DATABASE_URL / KAFKA_* are set.
DEVENV := [ -n "$$DATABASE_URL" ] || [ ! -f .sextant/dev.env ] || . ./.sextant/dev.env;

.DEFAULT_GOAL := help
.PHONY: help install run test test-fast lint format migrate key keys revoke clean bench bench-migrations fuzz fuzz-door \
        status psql lag dlq dlq-replay replay topics partitions workspace-restore workspace-limit warnings \
        suppress unsuppress suppressions forget identifier-block identifier-unblock identifiers \
        image compose-up compose-down profile

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  make %-18s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(STAMP): pyproject.toml
	@echo "make: installing Sextant and its tools into $(VENV) (once; about 30 s on a fresh machine)"
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --disable-pip-version-check -e '.[dev]' 2>&1 \
	  | grep --line-buffered -E '^(Collecting|Installing|Successfully|ERROR)|rror' || true
	@$(BIN)/python -c "import ingest, worker, ops, pytest, hypothesis" \
	  || { echo "make: the install failed; see above"; exit 1; }
	@rm -f $(VENV)/.installed-*; touch $@

install: $(STAMP) ## create .venv and install Sextant with its dev tools

run: $(STAMP) ## the whole system on the embedded stack (or DATABASE_URL / KAFKA_BOOTSTRAP_SERVERS)
	$(BIN)/sextant dev

# promtool checks the alert rules in the suite: Debian's `prometheus` package has it.
PROMTOOL := command -v promtool >/dev/null || { command -v apt-get >/dev/null && (apt-get install -y -qq prometheus >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq prometheus >/dev/null 2>&1)) || echo "make: promtool not installed: the alert-rule tests are skipped"; }

test: $(STAMP) ## the whole suite against real Postgres and Kafka-protocol broker
	@$(PROMTOOL)
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

psql: $(STAMP) ## a psql shell on the running stack's database (or DATABASE_URL)
	@$(DEVENV) $(BIN)/sextant psql

status: $(STAMP) ## can Sextant reach Postgres and Kafka? (exit 1 if not)
	@$(DEVENV) $(BIN)/sextant status

lag: $(STAMP) ## the workers' consumer-group lag per partition
	@$(DEVENV) $(BIN)/sextant lag

suppress: $(STAMP) ## skip every call of a userId: make suppress WORKSPACE=acme USER_ID=u1
	@[ -n "$(WORKSPACE)" ] && [ -n "$(USER_ID)" ] || { echo "usage: make suppress WORKSPACE=name USER_ID=id"; exit 2; }
	@$(DEVENV) $(BIN)/sextant suppress --workspace '$(WORKSPACE)' --user-id '$(USER_ID)'

unsuppress: $(STAMP) ## take a suppressed userId's calls again: make unsuppress WORKSPACE=acme USER_ID=u1
	@[ -n "$(WORKSPACE)" ] && [ -n "$(USER_ID)" ] || { echo "usage: make unsuppress WORKSPACE=name USER_ID=id"; exit 2; }
	@$(DEVENV) $(BIN)/sextant unsuppress --workspace '$(WORKSPACE)' --user-id '$(USER_ID)'

suppressions: $(STAMP) ## a workspace's suppressed userIds: make suppressions WORKSPACE=acme
	@test -n "$(WORKSPACE)" || { echo "usage: make suppressions WORKSPACE=name"; exit 2; }
	@$(DEVENV) $(BIN)/sextant suppress list --workspace '$(WORKSPACE)'

forget: $(STAMP) ## delete a user and what was received for it: make forget WORKSPACE=acme USER_ID=u1
	@[ -n "$(WORKSPACE)" ] && [ -n "$(USER_ID)" ] || { echo "usage: make forget WORKSPACE=name USER_ID=id"; exit 2; }
	@$(DEVENV) $(BIN)/sextant user delete --workspace '$(WORKSPACE)' --user-id '$(USER_ID)'

identifier-block: $(STAMP) ## treat a value as no identity: make identifier-block WORKSPACE=acme VALUE=test
	@[ -n "$(WORKSPACE)" ] && [ -n "$(VALUE)" ] || { echo "usage: make identifier-block WORKSPACE=name VALUE=value"; exit 2; }
	@$(DEVENV) $(BIN)/sextant identifier block --workspace '$(WORKSPACE)' '$(VALUE)'

identifier-unblock: $(STAMP) ## accept a blocked value again: make identifier-unblock WORKSPACE=acme VALUE=test
	@[ -n "$(WORKSPACE)" ] && [ -n "$(VALUE)" ] || { echo "usage: make identifier-unblock WORKSPACE=name VALUE=value"; exit 2; }
	@$(DEVENV) $(BIN)/sextant identifier unblock --workspace '$(WORKSPACE)' '$(VALUE)'

identifiers: $(STAMP) ## a workspace's own blocked identifier values: make identifiers WORKSPACE=acme
	@test -n "$(WORKSPACE)" || { echo "usage: make identifiers WORKSPACE=name"; exit 2; }
	@$(DEVENV) $(BIN)/sextant identifier list --workspace '$(WORKSPACE)'

# make warnings WORKSPACE=acme [KIND=field_dropped] [SINCE=2026-05-01T00:00Z]
warnings: $(STAMP) ## a workspace's ingestion warnings, newest first: make warnings WORKSPACE=acme
	@test -n "$(WORKSPACE)" || { echo "usage: make warnings WORKSPACE=name [KIND=kind] [SINCE=ISO]"; exit 2; }
	@$(DEVENV) $(BIN)/sextant warnings --workspace '$(WORKSPACE)' $(if $(KIND),--kind '$(KIND)') \
	  $(if $(SINCE),--since '$(SINCE)')

dlq: $(STAMP) ## list dead-lettered messages with workspace and reason
	@$(DEVENV) $(BIN)/sextant dlq list

dlq-replay: $(STAMP) ## put dead letters not replayed before back on the topic
	@$(DEVENV) $(BIN)/sextant dlq replay

# make replay FROM=2026-05-01T00:00Z [TO=...] [DRY_RUN=1]
# make replay PARTITION=3 FROM_OFFSET=1000 [TO_OFFSET=1999] [DRY_RUN=1]
replay: $(STAMP) ## re-produce a time or offset range onto the topic (backfill; see RUNBOOK)
	@test -n "$(FROM)$(FROM_OFFSET)" || { echo "usage: make replay FROM=ISO [TO=ISO] | PARTITION=P FROM_OFFSET=A [TO_OFFSET=B] [DRY_RUN=1]"; exit 2; }
	@$(DEVENV) $(BIN)/sextant replay $(if $(FROM),--from-time '$(FROM)') \
	  $(if $(TO),--to-time '$(TO)') $(if $(PARTITION),--partition '$(PARTITION)') \
	  $(if $(FROM_OFFSET),--from-offset '$(FROM_OFFSET)') \
	  $(if $(TO_OFFSET),--to-offset '$(TO_OFFSET)') $(if $(DRY_RUN),--dry-run)

topics: $(STAMP) ## partition counts of the call and DLQ topics
	@$(DEVENV) $(BIN)/sextant topic show

partitions: $(STAMP) ## grow the call topic: make partitions PARTITIONS=24 (Kafka only adds)
	@test -n "$(PARTITIONS)" || { echo "usage: make partitions PARTITIONS=total"; exit 2; }
	@$(DEVENV) $(BIN)/sextant topic grow --partitions '$(PARTITIONS)'

workspace-restore: $(STAMP) ## re-create a lost workspace: make workspace-restore WORKSPACE=acme ID=42
	@[ -n "$(WORKSPACE)" ] && [ -n "$(ID)" ] || { echo "usage: make workspace-restore WORKSPACE=name ID=id"; exit 2; }
	@$(DEVENV) $(BIN)/sextant workspace restore --id '$(ID)' '$(WORKSPACE)'

workspace-limit: $(STAMP) ## a workspace's intake rate: make workspace-limit WORKSPACE=acme [CALLS_PER_SECOND=500]
	@test -n "$(WORKSPACE)" || { echo "usage: make workspace-limit WORKSPACE=name [CALLS_PER_SECOND=n, 0: the default]"; exit 2; }
	@$(DEVENV) $(BIN)/sextant workspace limit --workspace '$(WORKSPACE)' \
	  $(if $(CALLS_PER_SECOND),--calls-per-second '$(CALLS_PER_SECOND)')

IMAGE   ?= sextant:latest
COMPOSE := docker compose -f deploy/compose.yaml

image: ## build the container image (needs Docker)
	docker build -f deploy/Dockerfile -t $(IMAGE) .

compose-up: ## Apache Kafka, Postgres, a receiver and three workers in Docker
	$(COMPOSE) up --build --detach

compose-down: ## stop the compose stack and delete its volumes
	$(COMPOSE) down --volumes

clean: ## remove .venv and caches
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis .sextant

FUZZ_STAMP := $(VENV)/.fuzz-$(shell cksum pyproject.toml | cut -d' ' -f1)
$(FUZZ_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,fuzz]'
	@rm -f $(VENV)/.fuzz-*; touch $@

fuzz: $(FUZZ_STAMP) ## schemathesis against a running receiver for FUZZ_SECONDS (default 300)
	$(BIN)/python -m bench.fuzz

fuzz-door: $(STAMP) ## the door's end-to-end property test, longer: FUZZ_EXAMPLES (default 5000)
	FUZZ_EXAMPLES=$${FUZZ_EXAMPLES:-5000} $(BIN)/pytest tests/worker/test_door_fuzz.py -p no:cacheprovider -s -o timeout=0

bench-migrations: $(STAMP) ## this release's migrations on a million events while a writer inserts
	$(BIN)/python -m bench.migration_locks

WRK := command -v wrk >/dev/null || { command -v apt-get >/dev/null && (apt-get install -y -qq wrk >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq wrk)); }

bench: $(STAMP) ## throughput, lag and memory in one run (about 20 minutes; BENCH_SOAK_SECONDS=600)
	@$(WRK)
	$(BIN)/python -m bench

PROFILE_STAMP := $(VENV)/.profile-$(shell cksum pyproject.toml | cut -d' ' -f1)
$(PROFILE_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,profile]'
	@rm -f $(VENV)/.profile-*; touch $@

profile: $(PROFILE_STAMP) ## where the receiver spends its time under load (py-spy): SHAPE=single|batch
	@$(WRK)
	$(BIN)/python -m bench.profile $(or $(SHAPE),single)
