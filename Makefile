# The README's two commands: `make demo` and `make test`. Each sets up
# everything it needs (a virtual environment with tfgreen and its
# dependencies) on a fresh clone with only Python 3.11 and pip.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.tfgreen-installed

.PHONY: install demo test bench notebooks clean

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/tfgreen demo --out tfgreen-demo

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -n 2

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf tfgreen-demo .pytest_cache build *.egg-info

notebooks: $(STAMP)
	$(BIN)/python notebooks/run_all.py
