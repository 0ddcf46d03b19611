"""The working copy ``make lab`` serves, in a real browser: before Run All, and after a run and a save.

Opening a notebook shows its saved outputs. A widget output is saved as a reference to a widget
model plus its plain-text repr (``VBox(children=(HTML(value=''), ...``); JupyterLab draws the
widget from the model state saved in the notebook, but only in a trusted notebook: in an untrusted
one it falls back to the text. ``make lab``'s copy step trusts the notebooks it copies, so every
widget reads well before the kernel has run anything.

The server serves a throwaway project (this project's Makefile, .gitignore and notebooks, committed
to a fresh git repository) after the Makefile's own ``lab-copy`` step, with throwaway Jupyter
folders: the trust database there is the one ``lab-copy`` wrote. Nothing of this checkout or of
the learner's is touched.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from labserver import ARTIFACTS, CHROMIUM_ARGS, chromium_path, jupyter_env, start_jupyter_lab, stop_jupyter_lab
from playwright.sync_api import expect, sync_playwright

REPO = Path(__file__).resolve().parents[2]
LAB_DIR = "my-notebooks"
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
TIMEOUT_MS = 60_000
RUN_TIMEOUT_MS = 120_000


def git(project: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=project, check=True, capture_output=True, text=True).stdout


def widget_outputs(notebook: Path) -> int:
    document = json.loads(notebook.read_text(encoding="utf-8"))
    return sum(
        WIDGET_MIME in output.get("data", {})
        for cell in document["cells"]
        if cell["cell_type"] == "code"
        for output in cell["outputs"]
    )


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = tmp_path_factory.mktemp("working-copy")
    project = root / "project"
    project.mkdir()
    for name in ("Makefile", ".gitignore"):
        shutil.copy(REPO / name, project / name)
    shutil.copytree(REPO / "notebooks", project / "notebooks", ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    git(project, "init", "-q")
    git(project, "add", ".")
    git(project, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "the course")
    env = jupyter_env(root)
    copy = subprocess.run(
        ["make", "--no-print-directory", "-C", str(project), "lab-copy", f"VENV={sys.prefix}"],
        env={**env, "MAKEFLAGS": ""},
        capture_output=True,
        text=True,
    )
    assert copy.returncode == 0, copy.stderr
    server = start_jupyter_lab(project / LAB_DIR, env, ARTIFACTS / "jupyter-working-copy.log")
    try:
        yield project, server
    finally:
        stop_jupyter_lab(server)


@pytest.fixture(scope="module")
def page(project):
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_context(viewport={"width": 1200, "height": 800}).new_page()
            page.set_default_timeout(TIMEOUT_MS)
            expect.set_options(timeout=TIMEOUT_MS)
            yield page
        finally:
            browser.close()


def notebook(page):
    return page.locator(".jp-NotebookPanel:visible .jp-Notebook")


def open_notebook(page, server, name: str) -> None:
    page.goto(f"{server.url}/lab/tree/{name}?reset&token={server.token}")
    notebook(page).wait_for()
    page.locator(".lm-TabBar-tab.jp-mod-current", has_text=name).wait_for()


NOTEBOOKS = sorted(p.name for p in (REPO / "notebooks").glob("*.ipynb"))


def widget_texts(page) -> list[str]:
    return [text[:120] for text in notebook(page).locator(".jp-OutputArea-output").all_inner_texts()]


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_every_saved_widget_is_drawn_before_run_all(page, project, name):
    project_dir, server = project
    expected = widget_outputs(project_dir / LAB_DIR / name)
    assert expected > 0, f"{name} saved no widget output: nothing to check"
    open_notebook(page, server, name)
    drawn = notebook(page).locator(".jp-OutputArea-output > .jupyter-widgets")
    try:
        expect(drawn).to_have_count(expected, timeout=60_000)
    except AssertionError:
        # An untrusted notebook shows each widget's repr at once: that is the failure this test is for.
        raw = [text for text in widget_texts(page) if "VBox(" in text or "HBox(" in text]
        assert not raw, f"{name} shows widget reprs instead of widgets: {raw}"
        # JupyterLab's widget manager (jupyterlab_widgets 3.0) reads the saved state only if the
        # notebook's kernel is known when the manager starts (else its restore fails on "Kernel not
        # set", silently); on a busy machine a new kernel can be that late, and the outputs show
        # "Loading widget..." or "model not found" until the page is loaded again, as a learner would.
        stuck = widget_texts(page)
        page.reload()
        notebook(page).wait_for()
        try:
            expect(drawn).to_have_count(expected, timeout=RUN_TIMEOUT_MS)
        except AssertionError as error:
            raise AssertionError(
                f"{name}: widgets not drawn, before and after a reload; first showed {stuck}"
            ) from error
    raw = [text for text in widget_texts(page) if "VBox(" in text or "HBox(" in text]
    assert not raw, f"{name} shows widget reprs instead of widgets: {raw}"
    texts = " ".join(widget_texts(page))
    assert "Error displaying widget" not in texts and "Loading widget" not in texts
    prompts = notebook(page).locator(".jp-CodeCell .jp-InputArea-prompt").all_inner_texts()
    assert "[*]:" not in prompts  # nothing ran: these are the saved outputs
    if name == NOTEBOOKS[0]:
        page.screenshot(path=str(ARTIFACTS / "working-copy-before-run-all.png"))


def test_a_notebook_run_and_saved_in_the_lab_leaves_the_repository_clean(page, project):
    project_dir, server = project
    name = "00_start_here.ipynb"
    saved, committed = project_dir / LAB_DIR / name, project_dir / "notebooks" / name
    before = saved.read_bytes()
    open_notebook(page, server, name)
    page.locator("#jp-main-statusbar").get_by_text(re.compile(r"\|\s*Idle")).wait_for(timeout=RUN_TIMEOUT_MS)
    page.locator("#jp-main-dock-panel .lm-TabBar-tab.jp-mod-current").click()
    page.locator(".lm-MenuBar-item", has_text=re.compile(r"^Run$")).click()
    page.locator(".lm-Menu-item:visible", has_text=re.compile(r"^Run All Cells")).first.click()
    prompts = notebook(page).locator(".jp-CodeCell .jp-InputArea-prompt")
    page.wait_for_function(
        "(ps) => ps.length > 0 && ps.every(p => /^\\[\\d+\\]:$/.test(p.textContent.trim()))",
        arg=prompts.element_handles(),
        timeout=RUN_TIMEOUT_MS,
    )
    page.locator("#jp-main-statusbar").get_by_text(re.compile(r"\|\s*Idle")).wait_for(timeout=RUN_TIMEOUT_MS)
    page.keyboard.press("Control+s")
    deadline = time.monotonic() + 30
    while saved.read_bytes() == before and time.monotonic() < deadline:
        time.sleep(0.25)
    assert saved.read_bytes() != before, "the save did not reach the working copy"
    assert committed.read_bytes() == (REPO / "notebooks" / name).read_bytes()  # the committed one untouched
    assert git(project_dir, "status", "--porcelain", "--untracked-files=all") == ""
