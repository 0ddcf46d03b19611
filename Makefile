# Two commands do all the set-up:
#   make lab    create .venv if missing, install bpcore with its extras, open the notebooks in JupyterLab
#   make test   the same install, then lint, unit tests, notebook tests and the browser test
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -c

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
# make lab PORT=8890 when 8888 is taken (JupyterLab also moves on to the next free port by itself)
PORT ?= 8888
# JupyterLab refuses to run as root unless told; containers and CI machines often are root
LAB_FLAGS := $(if $(filter 0,$(shell id -u)),--allow-root,)
PIP_QUIET := 2>&1 | { grep -v -e "is ignored: it is neither a file nor a directory" || true; }

.PHONY: install lab quiz test lint unit validate notebooks browser clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet --upgrade pip $(PIP_QUIET)
	$(BIN)/python -m pip install --quiet -e '.[lab,test]' $(PIP_QUIET)
	$(BIN)/python -c "import bpcore, jupyterlab, nbval, hypothesis, xdist, fsrs, playwright"
	touch $(STAMP)

install: $(STAMP)

lab: install  # headless too: without a browser it only prints the URL to open
	@echo "Starting JupyterLab on port $(PORT) (the next free one if taken): open the URL with the token printed below; Ctrl-C stops it."
	$(BIN)/jupyter lab $(LAB_FLAGS) --port=$(PORT) --LabApp.default_url=/lab/tree/00_start_here.ipynb \
		notebooks/00_start_here.ipynb

quiz: install
	$(BIN)/bpcore quiz

validate: install
	$(BIN)/bpcore validate

lint: install
	$(BIN)/ruff check bpcore tests bench

unit: install
	$(BIN)/python -m pytest -n 2 -q tests --ignore=tests/browser

notebooks: install  # a throwaway progress store: the quiz cells must not touch the learner's
	BPCORE_HOME=$$(mktemp -d) $(BIN)/python -m pytest -q --nbval --nbval-current-env \
		--nbval-sanitize-with tests/nbval_sanitize.cfg notebooks

browser: install  # JupyterLab in Debian's chromium, driven by Playwright; screenshots in test-artifacts/browser
	@command -v chromium >/dev/null || { echo "make browser: chromium is not on PATH. Install Debian's package: sudo apt-get install chromium" >&2; exit 1; }
	$(BIN)/python -m pytest -q tests/browser

test: lint unit validate notebooks browser

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis test-artifacts
