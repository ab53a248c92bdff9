# Renkei: every target sets itself up in a local virtual environment (.venv).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: help install demo demo-audit test test-postgres lint typecheck bench soak clean

help:
	@echo "make demo    run a local federation and show a real exchange"
	@echo "make demo-audit  export, verify, reconcile both nodes' audit logs offline"
	@echo "make test    run the test suite (SQLite and PostgreSQL)"
	@echo "make lint    ruff and mypy --strict"

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

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
