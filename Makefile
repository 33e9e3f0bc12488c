# Syllabus developer commands. Each target creates .venv when missing and installs the
# project (editable, with its extras and dev tools) whenever pyproject.toml changes.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PYTEST_WORKERS ?= 2
PYTEST_ARGS ?= --durations=25 -n $(PYTEST_WORKERS)

.PHONY: help install demo test lint format bench clean chromium

help:
	@echo "make demo    create .venv, install, run the end-to-end demo on an embedded store"
	@echo "make test    create .venv, install, run the whole test suite"
	@echo "make lint    ruff, ruff format --check, mypy --strict, import-linter"
	@echo "make bench   benchmarks against the peer tools (bench/README.md)"
	@echo "make format  apply ruff's fixes and formatting"

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,s3,server]'
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/syllabus demo

test: $(STAMP) chromium
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

# The web UI's browser tests drive Debian's Chromium; installed when missing and we are root.
chromium:
	@if [ ! -x /usr/bin/chromium ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing chromium for the browser tests"; \
		DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null \
		|| echo "could not install chromium: the browser tests skip (and fail when CI=true)"; \
	fi

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

format: $(STAMP)
	$(BIN)/ruff check --fix src tests bench
	$(BIN)/ruff format src tests bench

bench: $(STAMP)
	@for b in bench/[!_]*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis build dist
