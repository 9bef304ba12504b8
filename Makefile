# The two commands that work on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# checkov (scans infra/) has pins of its own that clash with ours: it gets its own virtualenv.
CHECKOV_VENV := .venv-checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed

.PHONY: demo test lint bench venv clean

$(STAMP): requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

$(CHECKOV_STAMP): tools/checkov/requirements.txt
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(CHECKOV_VENV)/bin/python -m pip install --quiet -r tools/checkov/requirements.txt
	touch $(CHECKOV_STAMP)

venv: $(STAMP) $(CHECKOV_STAMP)

## Run the sync against the built-in demo tenant (both emulators, nothing to configure).
demo: $(STAMP)
	$(PY) -m emulators.demo

## Lint, then the whole test suite (starts Azurite itself when AZURITE_CONNECTION_STRING is unset).
## Most tests wait on sockets, leases and retry delays rather than compute, so more workers than
## cores pay; --maxschedchunk 1 hands tests out one at a time, the long (slow-marked, collected
## first) ones each to a worker of its own.
## Bytecode is cached even where the environment says not to (PYTHONDONTWRITEBYTECODE): else every
## worker compiles the project and rewrites every test module again, seconds of CPU each.
TEST_WORKERS ?= 8
test: $(STAMP) $(CHECKOV_STAMP)
	$(VENV)/bin/ruff check .
	PYTHONDONTWRITEBYTECODE= $(PY) -m compileall -q sync_core emulators bench tests function_app.py
	PYTHONDONTWRITEBYTECODE= $(PY) -m pytest -n $(TEST_WORKERS) --dist load --maxschedchunk 1 --durations 15

lint: $(STAMP)
	$(VENV)/bin/ruff check .

## Speed and memory figures (prints a table; never part of the tests).
bench: $(STAMP)
	$(PY) -m bench

clean:
	rm -rf $(VENV) $(CHECKOV_VENV) .pytest_cache .ruff_cache .hypothesis .sync-state
