# The two commands a newcomer needs: `make run` and `make test`.
# Each creates .venv and installs what it needs on first use.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test bench check lint lock clean

# constraints.txt pins every package to the versions `make test` last passed
# with, so a fresh clone installs what was tested, not whatever is newest.
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
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

lock:  ## re-pin constraints.txt to the newest releases pyproject.toml allows; then run make test
	rm -rf .lock-venv
	$(PYTHON) -m venv .lock-venv
	.lock-venv/bin/pip install --quiet --upgrade pip
	.lock-venv/bin/pip install --quiet -e '.[dev]'
	{ echo '# Every package make run and make test install, pinned; make lock renews the pins.'; \
	  .lock-venv/bin/pip freeze --exclude-editable; } > constraints.txt
	rm -rf .lock-venv

clean:
	rm -rf $(VENV) .hermes-stream hermes-demo.duckdb* .pytest_cache .mypy_cache
