# gradesync: every target makes its own virtual environment, so a fresh clone needs only Python 3.11 and make.
PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: demo test bench lint robustness clean serve image airflow

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

lint: $(STAMP)
	$(VENV)/bin/ruff check gradesync graph_emulator tests benchmarks
	$(VENV)/bin/ruff format --check gradesync graph_emulator tests benchmarks
	$(VENV)/bin/mypy  # the whole package; strict on the core (pyproject.toml [tool.mypy])

robustness: $(STAMP)
	$(PY) -m benchmarks.robustness
	$(PY) -m benchmarks.hostile_inputs

# The container image (Containerfile) built from Debian's packages where no base image can be pulled
# (mmdebstrap + buildah); its store stays in .image/. Then the image runs `gradesync demo`.
image: $(STAMP)
	container/build-image.sh
	GRADESYNC_TEST_IMAGE=1 $(PY) -m pytest tests/container -p no:xdist -q -rs

# Apache Airflow in its own venv (.airflow/venv, about 300 MB, under a minute from PyPI), then the
# fleet DAG (docs/scheduling/airflow_dag.py) under `airflow dags test`. Nothing is cached outside the
# checkout: pip's cache and the test's Airflow home are under .airflow/.
AIRFLOW_VERSION := 3.3.2
AIRFLOW_VENV := .airflow/venv
$(AIRFLOW_VENV)/.installed:
	$(PYTHON) -m venv $(AIRFLOW_VENV)
	PIP_CACHE_DIR=.airflow/pip-cache $(AIRFLOW_VENV)/bin/pip install --quiet --upgrade pip
	PIP_CACHE_DIR=.airflow/pip-cache $(AIRFLOW_VENV)/bin/pip install --quiet 'apache-airflow==$(AIRFLOW_VERSION)'
	touch $@

airflow: $(STAMP) $(AIRFLOW_VENV)/.installed
	rm -rf .airflow/tmp
	GRADESYNC_TEST_AIRFLOW=$(AIRFLOW_VENV)/bin/airflow $(PY) -m pytest tests/airflow -p no:xdist -p no:cacheprovider \
		-s -q -rs --basetemp=.airflow/tmp

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info runs dist .airflow .image
