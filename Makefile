# The two commands a newcomer needs: `make run` and `make test`.
# Each creates .venv and installs what it needs on first use.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test bench check lint clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)  ## the whole pipeline once: embedded broker, worker, workload, report
	$(BIN)/hermes-stream demo

test: $(STAMP)  ## unit, agent and integration tests (integration uses the embedded broker)
	$(BIN)/python -m pytest -q

bench: $(STAMP)  ## throughput and validation cost; prints JSON as its last line
	$(BIN)/hermes-stream bench

check: $(STAMP)  ## static checks
	$(BIN)/ruff check hermes_stream agents tests
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .hermes-stream hermes-demo.duckdb* .pytest_cache .mypy_cache
