# Two commands on a fresh Linux machine with Python 3.11: `make demo` and `make test`.
# Each sets up .venv from requirements.lock first (idempotent, fast when already done).
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo test test-fast ui lock clean-data bench bench-backfill

$(STAMP): requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "uv==0.13.8"
	$(BIN)/uv pip sync --compile-bytecode --python $(BIN)/python requirements.lock
	$(BIN)/uv pip install --python $(BIN)/python --no-deps -e .
	$(BIN)/python tools/install_pth.py
	$(BIN)/airflow db migrate > /dev/null
	touch $(STAMP)

setup: $(STAMP)

## The main job: embedded warehouse, simulate, train, register, score the latest day.
demo: setup
	$(BIN)/vee demo

## The test suite (uses VEE_TEST_WAREHOUSE_URL when set, else an embedded PostgreSQL).
test: setup
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-fast: setup
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

ui: setup
	$(BIN)/vee ui

bench: setup
	$(BIN)/vee bench

## 30 read dates of 20,000 exceptions through Airflow's LocalExecutor, timed (not a test).
bench-backfill: setup
	$(BIN)/vee bench --backfill

## Re-resolve the pinned stack after editing requirements.in.
lock:
	$(BIN)/uv pip compile requirements.in --python-version 3.11 -o requirements.lock

clean-data:
	if test -x $(BIN)/vee; then $(BIN)/vee db stop-embedded; fi
	rm -rf var/
