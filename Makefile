# Linkerd labs. Two commands on a fresh machine:
#   make lab    open the labs in JupyterLab (embedded mesh by default)
#   make test   run the whole test suite (unit tests + every notebook)
# Both create or reuse the local venv in .venv and install what they need.

PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.labkit-installed
PORT   ?= 8888
# JupyterLab refuses to start as root unless told; CI and these machines run as root.
ROOT_FLAG = $(if $(filter 0,$(shell id -u)),--allow-root,)

.PHONY: lab test run bench venv clean strip

venv: $(STAMP)

$(STAMP): environment.yml pyproject.toml tools/requirements.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(PYTHON) tools/requirements.py > $(VENV)/requirements.txt
	$(BIN)/python -m pip install --quiet -r $(VENV)/requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

lab: $(STAMP)
	$(BIN)/jupyter lab $(ROOT_FLAG) --port $(PORT) --notebook-dir . notebooks/00-cluster.ipynb

test: $(STAMP)
	$(BIN)/python -m pytest

run: $(STAMP)
	$(BIN)/python -m labkit run --out build/labs

bench: $(STAMP)
	$(BIN)/python tools/bench.py

strip: $(STAMP)
	$(BIN)/nbstripout --keep-count --extra-keys "metadata.papermill cell.metadata.papermill cell.metadata.execution metadata.widgets" notebooks/*.ipynb

clean:
	rm -rf build $(VENV)
