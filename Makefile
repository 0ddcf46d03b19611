# Two commands do all the set-up:
#   make lab    create .venv if missing, install bpcore with JupyterLab, open your working copy of the notebooks
#   make test   check for chromium, install bpcore with the test tools, then lint, unit tests, notebook tests
#               (twice: as committed, and on a perturbed numeric machine) and the browser test
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -c

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
LAB_STAMP := $(VENV)/.installed-lab
TEST_STAMP := $(VENV)/.installed-test
# Your working copy of the notebooks (git-ignored): make lab serves it, so JupyterLab's autosave never
# touches notebooks/, which make test compares against.
LAB_DIR ?= my-notebooks
# make lab PORT=8890 when 8888 is taken (JupyterLab also moves on to the next free port by itself)
PORT ?= 8888
# JupyterLab refuses to run as root unless told; containers and CI machines often are root
LAB_FLAGS := $(if $(filter 0,$(shell id -u)),--allow-root,)
# the browser test drives Debian's chromium (Playwright's own browser download is never used)
CHROMIUM ?= chromium
PIP := $(BIN)/python -m pip --disable-pip-version-check
PIP_QUIET := 2>&1 | { grep -v -e "is ignored: it is neither a file nor a directory" || true; }
# uv (pip-compatible; pip installs it into .venv) installs the same packages several times faster than pip;
# when it cannot be had or its install fails, pip does the install. INSTALLER=pip skips uv.
# bpcore itself is always installed again (uv would keep an installed bpcore of the same version): its console
# script, its metadata and its copy of bpcore_cli.py then follow pyproject.toml (pip reinstalls a local project anyway).
INSTALLER ?= uv
comma := ,
# Bytecode is compiled at install (pip does so by default, uv only when told), and bpcore's own modules
# too: where Python may not write __pycache__ (PYTHONDONTWRITEBYTECODE, common in containers and CI, or a
# read-only checkout) every kernel would otherwise compile matplotlib, IPython and bpcore from source
# again, 1.5-2.5 s of CPU before a notebook's first cell has done anything.
define install_packages
	@if [ "$(INSTALLER)" = uv ] && { [ -x $(BIN)/uv ] || $(PIP) install --quiet uv $(PIP_QUIET); } && [ -x $(BIN)/uv ] \
		&& $(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python --reinstall-package bpcore $(1); then echo "installed with uv"; \
	else echo "installing with pip"; $(PIP) install --quiet $(1) $(PIP_QUIET); fi
	@$(BIN)/python -m compileall -q bpcore bpcore_cli.py >/dev/null
endef
NOTEBOOKS ?= notebooks/*.ipynb

.PHONY: install install-lab install-test lab lab-copy quiz test check-browser lint unit validate \
	notebooks notebooks-perturbed browser execute-notebooks clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# make lab needs bpcore and JupyterLab only; make test adds the test tools (pytest, nbval, ruff, playwright...)
# bpcore_cli.py too: the editable install holds a copy of it (pyproject's force-include), which the bpcore script runs
$(LAB_STAMP): $(BIN)/python pyproject.toml bpcore_cli.py Makefile
	$(call install_packages,-e '.[lab]')
	$(BIN)/python -c "import bpcore, jupyterlab, ipykernel, ipywidgets, fsrs, pylatexenc"
	touch $@

$(TEST_STAMP): $(BIN)/python pyproject.toml bpcore_cli.py Makefile
	$(call install_packages,-e '.[lab$(comma)test]')
	$(BIN)/python -c "import bpcore, jupyterlab, nbval, hypothesis, xdist, fsrs, pylatexenc, playwright"
	touch $@ $(LAB_STAMP)

install-lab: $(LAB_STAMP)
install-test: $(TEST_STAMP)
install: install-test

# Copy into $(LAB_DIR) every notebook it does not have yet: made on the first run, never overwritten,
# new notebooks added when the course grows. Each copied notebook is trusted (its outputs are the
# committed ones), so JupyterLab draws its saved widgets before the kernel runs.
lab-copy:
	@mkdir -p "$(LAB_DIR)"; copied=(); \
	for notebook in notebooks/*.ipynb; do \
		target="$(LAB_DIR)/$$(basename "$$notebook")"; \
		if [ ! -e "$$target" ]; then cp "$$notebook" "$$target"; copied+=("$$target"); fi; \
	done; \
	if [ $${#copied[@]} -gt 0 ]; then \
		echo "make lab: copied $${#copied[@]} notebook(s) into $(LAB_DIR)/, your working copy"; \
		$(BIN)/jupyter trust --log-level=WARN "$${copied[@]}" >/dev/null; \
	fi

lab: install-lab  # headless too: without a browser it only prints the URL to open
	@$(MAKE) --no-print-directory lab-copy
	@echo "Starting JupyterLab on port $(PORT) (the next free one if taken) in $(LAB_DIR)/: open the URL with the token printed below; Ctrl-C stops it."
	$(BIN)/jupyter lab $(LAB_FLAGS) --port=$(PORT) --ServerApp.root_dir="$(LAB_DIR)" \
		--LabApp.default_url=/lab/tree/00_start_here.ipynb

quiz: install-lab
	$(BIN)/bpcore quiz

validate: install-lab
	$(BIN)/bpcore validate

# Before anything slow: the browser test at the end needs chromium, so say so now.
check-browser:
	@command -v $(CHROMIUM) >/dev/null || { \
		echo "make test: the browser test needs Debian's chromium, and '$(CHROMIUM)' is not on PATH." >&2; \
		echo "Install it, then run make test again:  sudo apt-get install chromium" >&2; exit 1; }

lint: install-test
	$(BIN)/ruff check bpcore bpcore_cli.py tests bench

unit: install-test
	$(BIN)/python -m pytest -n 2 -q tests --ignore=tests/browser

notebooks: install-test  # a throwaway progress store: the quiz cells must not touch the learner's
	BPCORE_HOME=$$(mktemp -d) $(BIN)/python -m pytest -q --nbval --nbval-current-env \
		--nbval-sanitize-with tests/nbval_sanitize.cfg notebooks

# The same comparison on a perturbed machine (other BLAS threads, numpy's baseline SIMD, every random
# float moved by up to one ulp, an unusual TMPDIR): a printed number that changes here would change
# on a learner's CPU. PERTURB_SEED picks the nudges.
PERTURB_SEED ?= 1
notebooks-perturbed: install-test
	$(BIN)/python tests/numerics/run_perturbed.py --seed $(PERTURB_SEED)

browser: install-test check-browser  # JupyterLab in chromium, driven by Playwright; screenshots in test-artifacts/browser
	$(BIN)/python -m pytest -q tests/browser

# The two notebook passes run side by side, one core each (the perturbed one uses one BLAS thread; its
# kernels talk over IPC, so the two cannot be handed the same TCP ports, which once lost a kernel at start);
# then the browser test, mostly waiting on the browser and the kernel, beside validate, which computes.
test: check-browser
	@$(MAKE) --no-print-directory lint unit
	@$(MAKE) --no-print-directory -j2 --output-sync=target notebooks notebooks-perturbed
	@$(MAKE) --no-print-directory -j2 --output-sync=target browser validate

# Re-execute committed notebooks after a change they show (make execute-notebooks NOTEBOOKS=notebooks/05_*.ipynb):
# top to bottom in a fresh kernel, widget state saved, streams merged, a throwaway progress store.
execute-notebooks: install-test
	BPCORE_HOME=$$(mktemp -d) $(BIN)/jupyter nbconvert --to notebook --execute --inplace \
		--NotebookExporter.preprocessors='["nbconvert.preprocessors.CoalesceStreamsPreprocessor"]' $(NOTEBOOKS)

clean:  # keeps $(LAB_DIR): your working copy is yours
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis test-artifacts
