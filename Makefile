# Two set-up commands: `make serve` and `make test`. Both create .venv when it is missing.
# `make serve` installs only what a node needs (no extras); `make test` installs the dev
# extra. Each has its own stamp, so either one can come first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SERVE_STAMP := $(VENV)/.serve-installed

.PHONY: serve test lint typecheck unit bench package-check clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

$(SERVE_STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e .
	touch $(SERVE_STAMP)

# Runs in the foreground until Ctrl-C; TRELLIS_BIND=127.0.0.1:9000 make serve moves it.
serve: $(SERVE_STAMP)
	$(BIN)/trellis serve

lint: $(STAMP)
	$(BIN)/ruff check src tests bench examples
	$(BIN)/ruff format --check src tests bench examples

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest

test: lint typecheck unit

# Build the wheel, install it alone in a fresh virtualenv and run a node from it.
package-check: $(STAMP)
	PYTHON=$(PYTHON) BUILD_PYTHON=$(BIN)/python .ci/package-check

bench: $(STAMP)
	$(BIN)/python bench/actors.py

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
