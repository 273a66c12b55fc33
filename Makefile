# RAM: two commands on a fresh machine.
#   make reproduce   set up, then run the main job on the reference model
#   make test        set up, then lint (line length, import graph), notebooks/library sync, nbdev_test, pytest
#   make docs        build the docs site from the notebooks -> docs/_build/html/index.html
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.ram-installed
# the real BLAS to preload (empty where none is found); see ram/blas.py
BLAS = $(shell $(BIN)/python -c "from ram.blas import find_openblas; print(find_openblas() or '')" 2>/dev/null)
RUN = LD_PRELOAD="$(BLAS)$(if $(LD_PRELOAD),:$(LD_PRELOAD),)" RAM_BLAS_CHECKED=1

.PHONY: setup docs reproduce test test-slow lint check-outputs check-readme check-clean check-export nbtest pytest bench clean-venv

setup: $(STAMP)

$(STAMP): settings.ini setup.py tools/apt-install.sh tools/setup-blas.sh tools/setup-chromium.sh tools/setup-mathjax.sh
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[dev]"
	bash tools/setup-blas.sh
	bash tools/setup-chromium.sh
	bash tools/setup-mathjax.sh
	touch $(STAMP)

# Sphinx + myst-nb + PyData theme (no Quarto needed; see docs/README.md); nbdev_docs still works with Quarto
docs: setup
	$(BIN)/python tools/docs.py

reproduce: setup
	$(RUN) $(BIN)/ram reproduce

# nbdev_clean must leave no diff, and nbdev_export must leave no diff: notebooks are the source
check-clean: setup
	@bash tools/unchanged.sh nbs "nbdev_clean changed notebooks: run nbdev_clean and commit" $(BIN)/nbdev_clean

check-export: setup
	@bash tools/unchanged.sh ram "nbdev_export changed ram/: notebooks and library are out of sync; run nbdev_export and commit" $(BIN)/nbdev_export

nbtest: setup
	$(RUN) $(BIN)/nbdev_test --n_workers 2

test-slow: setup
	$(RUN) $(BIN)/nbdev_test --n_workers 2 --flags slow
	$(RUN) $(BIN)/python -m pytest -q --slow tests

pytest: setup
	$(RUN) $(BIN)/python -m pytest -q tests

check-readme: setup
	$(BIN)/python tools/readme.py --check

# ruff (ruff.toml): lines of at most 120 characters, no unused or undefined names; then the import graph: no module
# imports one from a later chapter, no cycle, nothing imports ram.cli
lint: setup
	$(BIN)/ruff check nbs tests tools bench ram
	$(BIN)/python tools/import_graph.py

# the library notebooks are saved with outputs: small, deterministic, one per section (tools/outputs.py);
# after changing a notebook: python tools/outputs.py --write nbs/NAME.ipynb && nbdev_clean
check-outputs: setup
	$(BIN)/python tools/outputs.py --check

test: lint check-clean check-export check-outputs check-readme nbtest pytest

bench: setup
	$(RUN) $(BIN)/python bench/score_speed.py

clean-venv:
	rm -rf $(VENV)
