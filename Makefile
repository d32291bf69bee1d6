# Callwright: `make demo` and `make test` set everything up on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test check bench sim install clean

$(STAMP): pyproject.toml
	@# The browser tests use Debian's chromium (no browser download).
	command -v chromium >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq chromium)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/callwright demo

test: $(STAMP)
	$(BIN)/pytest -q

check: $(STAMP)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python -m bench.bench_ami
	$(BIN)/python -m bench.bench_router
	$(BIN)/python -m bench.bench_desk

sim: $(STAMP)
	$(BIN)/python -m sim

clean:
	rm -rf $(VENV) data/demo .pytest_cache .mypy_cache .ruff_cache
