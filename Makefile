# siammatch developer commands. Every target sets up .venv first, so a fresh clone needs
# nothing but Python 3.11 and access to the package registry.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup serve test lint format bench eval clean

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

# The shipped models against the classical baselines on held-out synthetic scenes (the
# set is generated on first use), and the shipped embedder's catalog retrieval; about
# 15 minutes on a 2-core CPU. Figures go to benchmarks/RESULTS.md and the README.
eval: $(STAMP)
	mkdir -p var/eval/report
	$(BIN)/siammatch eval pairs --scenes 100 --output var/eval/report/pairs.json --markdown var/eval/report/pairs.md
	$(BIN)/siammatch eval retrieval --output var/eval/report/retrieval.json

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .ruff_cache
