# Two commands set up everything on a fresh machine (Python 3.11+ and git needed):
#   make demo   install into .venv, then run the main job end to end, offline
#   make test   install into .venv (with test tools), then run the whole suite
# and one more that CI runs:
#   make test-lowest   the suite again in .venv-lowest, with every dependency at the lowest
#                      version pyproject.toml allows (.ci/lowest_versions.py)
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
LOWEST := .venv-lowest

.PHONY: demo test test-lowest install lint bench clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "aiops needs Python 3.11 or newer (found: $$($(PYTHON) --version))"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	@bash scripts/demo.sh

test: $(STAMP)
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

test-lowest: $(STAMP)
	rm -rf $(LOWEST)
	$(PYTHON) -m venv $(LOWEST)
	$(LOWEST)/bin/python -m pip install --quiet --upgrade pip
	$(BIN)/python .ci/lowest_versions.py > $(LOWEST)/constraints.txt
	$(LOWEST)/bin/python -m pip install --quiet -c $(LOWEST)/constraints.txt -e '.[dev]'
	@# The types are checked at the current versions (make lint: mypy's verdict depends on
	@# the libraries' own annotations); this run checks what the code does at the oldest ones.
	$(LOWEST)/bin/python -m pytest -q $(PYTEST_ARGS)

# ruff; mypy strict (pyproject.toml [tool.mypy]); the layering contracts (lint-imports,
# pyproject.toml [tool.importlinter]; tests/unit/test_architecture.py runs them too).
lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/python -m mypy --config-file pyproject.toml
	$(BIN)/lint-imports

bench: $(STAMP)
	$(BIN)/python benchmarks/validate.py

clean:
	rm -rf $(VENV) $(LOWEST) .aiops .pytest_cache
