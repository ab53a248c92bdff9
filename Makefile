# Renkei: every target sets itself up in a local virtual environment (.venv).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: help install demo demo-audit schemathesis test test-postgres lint typecheck bench bench-large soak sslyze test-slow clean

help:
	@echo "make demo    run a local federation and show a real exchange, then the city's NGSI-LD scene"
	@echo "make demo-audit  export, verify, reconcile both nodes' audit logs offline"
	@echo "make test    run the test suite (SQLite and PostgreSQL)"
	@echo "make lint    ruff and mypy --strict"
	@echo "make soak    traffic under killed nodes, registry and database (SOAK_DURATION=600 s)"
	@echo "make sslyze  check the peer port's TLS against Mozilla's modern profile"

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

DEMO_ARGS ?=
demo: $(STAMP)
	$(BIN)/python -m gateway.sandbox.demo $(DEMO_ARGS)
	$(BIN)/python -m gateway.sandbox.demo_city

demo-audit: $(STAMP)
	$(BIN)/python -m gateway.sandbox.demo_audit

test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

SOAK_DURATION ?= 600
SOAK_RATE ?= 10
SOAK_FAULT_INTERVAL ?= 20
SOAK_POSTGRES ?= postgresql+asyncpg://postgres@127.0.0.1:5432/test

soak: $(STAMP)
	$(BIN)/python -m tests.soak.soak --duration $(SOAK_DURATION) --rate $(SOAK_RATE) \
		--fault-interval $(SOAK_FAULT_INTERVAL) --postgres $(SOAK_POSTGRES)

sslyze: $(STAMP)
	$(BIN)/python -m tests.soak.sslyze_peer

test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow

# The side-by-side benchmark (docs/benchmarks.md). wrk comes from Debian; without
# it (no apt, no root) the bench falls back to its Python load generator.
bench: $(STAMP)
	@command -v wrk >/dev/null 2>&1 || apt-get install -y wrk >/dev/null 2>&1 \
		|| (apt-get update >/dev/null 2>&1 && apt-get install -y wrk >/dev/null 2>&1) \
		|| echo "bench: wrk is not installable here; using the Python load generator"
	$(BIN)/python -m bench.run --docs docs/benchmarks.md

bench-large: $(STAMP)
	$(BIN)/python -m bench.large

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis

# Fuzz both management APIs (node and registry) from their OpenAPI descriptions.
schemathesis: $(STAMP)
	$(BIN)/python -m tests.functional.schemathesis_run
