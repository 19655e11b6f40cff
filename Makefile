# riskgrid: every target creates and uses its own virtual environment (.venv).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test test-quick lint-imports bench bench-quick clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[test]"
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/riskgrid demo --out out/demo

test: $(STAMP) lint-imports
	$(PY) -m pytest -q tests

# the quick loop: everything but the long statistical tests
test-quick: $(STAMP)
	$(PY) -m pytest -q -m "not slow" tests

# the layer contract of pyproject.toml ([tool.importlinter])
lint-imports: $(STAMP)
	$(VENV)/bin/lint-imports

bench: $(STAMP)
	$(PY) -m pytest benchmarks --benchmark-only --benchmark-group-by=group --benchmark-columns=min,mean,max,rounds

clean:
	rm -rf $(VENV) .pytest_cache .benchmarks
