# Two commands matter: `make demo` and `make test`. Everything else is a helper.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
LOCK := requirements/requirements.lock
UV_VERSION := 0.13.9
STAMP := $(VENV)/.installed

.PHONY: venv demo test test-fast test-scheduler bench lock compose-check clean

venv: $(STAMP)

# Install exactly the pinned set from the lock file (uv pip sync: no resolution, so
# nothing can silently downgrade Airflow), then the project itself in editable mode.
# --compile-bytecode: every dbt, Airflow task and CLI process starts about 2 s sooner,
# also where PYTHONDONTWRITEBYTECODE keeps Python from caching bytecode itself.
$(STAMP): $(LOCK) pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	$(BIN)/uv pip sync --compile-bytecode --python $(BIN)/python $(LOCK)
	$(BIN)/uv pip install --python $(BIN)/python --no-deps -e .
	touch $(STAMP)

demo: venv
	$(BIN)/retention demo

# Test files run on every core (pytest-xdist), each file whole on one worker: its module
# fixtures (a dbt build, an Airflow home) are built once, and no two files share a database.
# Files go out in collection order, the longest first (tests/conftest.py), not by test count.
test: venv
	$(BIN)/python -m pytest -n auto --dist loadfile --no-loadscope-reorder

test-fast: venv
	$(BIN)/python -m pytest -m "not slow"

# The pipeline under a real scheduler, dag-processor, triggerer and API server
# (tests/integration/test_scheduler.py, part of `make test` too) on its own, printing its stage times.
test-scheduler: venv
	$(BIN)/python -m pytest -s tests/integration/test_scheduler.py

bench: venv
	$(BIN)/python -m benchmarks

# Re-resolve the lock after editing requirements/requirements.in.
lock:
	cd requirements && ../$(BIN)/uv pip compile requirements.in \
		--python-version 3.11 --no-header --annotation-style line -o requirements.lock

compose-check:
	docker compose config -q

clean:
	rm -rf $(VENV) .airflow dbt_project/target dbt_project/logs
