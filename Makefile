# Two commands from a fresh clone: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test lint format bench clean

$(STAMP): requirements.txt
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "Recovery needs Python 3.11 or newer; run with PYTHON=/path/to/python3.11" >&2; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
	@touch $@

install: $(STAMP)

## make run: migrate, collect static files, load the demo pack and users, serve on 127.0.0.1:$${PORT:-8000}
run: install
	@bash scripts/run.sh

## make test: lint, then the whole suite (PostgreSQL/Redis when DATABASE_URL/REDIS_URL are set), in one
## pytest-xdist process per core up to 8 (PYTEST_WORKERS=0: one process)
PYTEST_WORKERS ?= auto
test: install lint
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --maxprocesses 8 $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: install
	$(BIN)/python -m bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) staticfiles .pytest_cache .ruff_cache .hypothesis db.sqlite3
