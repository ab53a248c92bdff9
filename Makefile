# Renkei: every target sets itself up in a local virtual environment (.venv).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: help install demo demo-audit schemathesis test test-postgres lint typecheck bench soak sslyze test-slow clean

help:
	@echo "make demo    run a local federation and show a real exchange"
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

demo: $(STAMP)
	$(BIN)/python -m gateway.sandbox.demo

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

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis

# Fuzz both management APIs (node and registry) from their OpenAPI descriptions.
schemathesis: $(STAMP)
	$(BIN)/python -m tests.functional.schemathesis_run
