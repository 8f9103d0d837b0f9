# gradesync: every target makes its own virtual environment, so a fresh clone needs only Python 3.11 and make.
PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: demo test bench lint robustness clean serve

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m gradesync demo

serve: $(STAMP)
	$(PY) -m gradesync serve --demo

test: $(STAMP)
	$(PY) -m pytest -n 2 $(PYTEST_ARGS)

bench: $(STAMP)
	$(PY) -m benchmarks

# mypy checks the core: data contracts, the pure plan core, the Graph client, resolve, guards, config.
MYPY_CORE := gradesync/models.py gradesync/errors.py gradesync/config.py gradesync/plan \
	gradesync/resolve.py gradesync/graph gradesync/guards.py gradesync/execute/decide.py

lint: $(STAMP)
	$(VENV)/bin/ruff check gradesync graph_emulator tests benchmarks
	$(VENV)/bin/ruff format --check gradesync graph_emulator tests benchmarks
	$(VENV)/bin/mypy $(MYPY_CORE)

robustness: $(STAMP)
	$(PY) -m benchmarks.robustness
	$(PY) -m benchmarks.hostile_inputs

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info runs
