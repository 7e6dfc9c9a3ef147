# siammatch developer commands. Every target sets up .venv first, so a fresh clone needs
# nothing but Python 3.11 and access to the package registry.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup serve test lint format bench clean

setup: $(STAMP)

# torch/torchvision come from the registry (>=2.15 / >=0.29, pinned in setup.py): the
# local 2.13 CPU wheel cannot load torchvision's compiled ops.
$(STAMP): setup.py pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade "pip>=24" "setuptools>=68" wheel
	$(BIN)/python -m pip install -e ".[dev]"
	@touch $(STAMP)

serve: $(STAMP)
	$(BIN)/siammatch serve

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

test: lint
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python benchmarks/matcher_latency.py
	$(BIN)/python benchmarks/http_load.py

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .ruff_cache
