# Two entry points: `make demo` (set up + run the whole pipeline on synthetic data) and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin

.PHONY: setup demo test test-slow bench clean

$(BIN)/dfjax: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

setup: $(BIN)/dfjax

demo: setup
	$(BIN)/dfjax demo -o out/demo

test: setup
	$(BIN)/python -m pytest -n 2 -q

test-slow: setup
	$(BIN)/python -m pytest -q -m slow

clean:
	rm -rf out .pytest_cache
