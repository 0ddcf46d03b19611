"""The working copy ``make lab`` serves, in a real browser: before Run All, and after a run and a save.

Opening a notebook shows its saved outputs. A widget output is saved as a reference to a widget
model plus its plain-text repr (``VBox(children=(HTML(value=''), ...``); JupyterLab draws the
widget from the model state saved in the notebook, but only in a trusted notebook: in an untrusted
one it falls back to the text. ``make lab``'s copy step trusts the notebooks it copies, so every
widget reads well before the kernel has run anything.

The JupyterLab all browser tests share (conftest.py) serves, from a folder of its own, a throwaway
project (this project's Makefile, .gitignore and notebooks, committed to a fresh git repository) after
the Makefile's own ``lab-copy`` step, run with the server's throwaway Jupyter folders: the trust
database the server reads is the one ``lab-copy`` wrote. Nothing of this checkout or of the
learner's is touched.
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
from labserver import ARTIFACTS, RUN_TIMEOUT_MS, new_page, notebook, open_notebook, shut_down_kernels, wait_kernel_idle
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError
from playwright.sync_api import expect

REPO = Path(__file__).resolve().parents[2]
FOLDER = "working-copy"  # the project, in the shared server's folder
LAB_DIR = "my-notebooks"
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
DRAW_MS = 60_000  # for the saved widgets to be drawn on opening
STUCK_AFTER_IDLE_MS = 15_000  # not drawn this long after the kernel went idle: they will not be without a reload


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
def project(lab_server):
    project = lab_server.root / FOLDER
    project.mkdir()
    for name in ("Makefile", ".gitignore"):
        shutil.copy(REPO / name, project / name)
    shutil.copytree(REPO / "notebooks", project / "notebooks", ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    git(project, "init", "-q")
    git(project, "add", ".")
    git(project, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "the course")
    copy = subprocess.run(
        ["make", "--no-print-directory", "-C", str(project), "lab-copy", f"VENV={sys.prefix}"],
        env={**lab_server.env, "MAKEFLAGS": ""},
        capture_output=True,
        text=True,
    )
    assert copy.returncode == 0, copy.stderr
    try:
        yield project, lab_server
    finally:
        shut_down_kernels(lab_server)


@pytest.fixture(scope="module")
def page(project, browser):
    with new_page(browser) as page:
        yield page


def open_copy(page, server, name: str) -> None:
    """Open ``name`` of the working copy as make lab shows it (the file browser open), not waiting for the kernel."""
    open_notebook(page, server, f"{FOLDER}/{LAB_DIR}/{name}", fold_file_browser=False, kernel_idle=False)


# every saved widget drawn ('drawn'), or the kernel idle for ``stuckMs`` with some still missing ('stuck'): the
# widget manager restores the saved state as the kernel comes up, so what is missing by then stays missing
_DRAWN_OR_STUCK = r"""
([expected, stuckMs]) => {
  const panel = [...document.querySelectorAll('.jp-NotebookPanel .jp-Notebook')].find(e => e.offsetParent !== null);
  const drawn = panel ? panel.querySelectorAll('.jp-OutputArea-output > .jupyter-widgets').length : 0;
  if (drawn === expected) return 'drawn';
  const bar = document.querySelector('#jp-main-statusbar');
  if (!bar || !/\|\s*Idle/.test(bar.textContent)) { window.__idleSince = undefined; return false; }
  window.__idleSince = window.__idleSince || Date.now();
  return Date.now() - window.__idleSince > stuckMs ? 'stuck' : false;
}
"""


NOTEBOOKS = sorted(p.name for p in (REPO / "notebooks").glob("*.ipynb"))


def widget_texts(page) -> list[str]:
    return [text[:120] for text in notebook(page).locator(".jp-OutputArea-output").all_inner_texts()]


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_every_saved_widget_is_drawn_before_run_all(page, project, name):
    project_dir, server = project
    expected = widget_outputs(project_dir / LAB_DIR / name)
    assert expected > 0, f"{name} saved no widget output: nothing to check"
    open_copy(page, server, name)
    drawn = notebook(page).locator(".jp-OutputArea-output > .jupyter-widgets")
    try:  # the widgets drawn, or stuck: no need to wait out DRAW_MS before the reload
        page.wait_for_function(_DRAWN_OR_STUCK, arg=[expected, STUCK_AFTER_IDLE_MS], timeout=DRAW_MS, polling=250)
    except PlaywrightTimeoutError:
        pass
    if drawn.count() != expected:
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
    open_copy(page, server, name)
    wait_kernel_idle(page)
    page.locator("#jp-main-dock-panel .lm-TabBar-tab.jp-mod-current").click()
    page.locator(".lm-MenuBar-item", has_text=re.compile(r"^Run$")).click()
    page.locator(".lm-Menu-item:visible", has_text=re.compile(r"^Run All Cells")).first.click()
    prompts = notebook(page).locator(".jp-CodeCell .jp-InputArea-prompt")
    page.wait_for_function(
        "(ps) => ps.length > 0 && ps.every(p => /^\\[\\d+\\]:$/.test(p.textContent.trim()))",
        arg=prompts.element_handles(),
        timeout=RUN_TIMEOUT_MS,
    )
    wait_kernel_idle(page)
    page.keyboard.press("Control+s")
    deadline = time.monotonic() + 30
    while saved.read_bytes() == before and time.monotonic() < deadline:
        time.sleep(0.25)
    assert saved.read_bytes() != before, "the save did not reach the working copy"
    assert committed.read_bytes() == (REPO / "notebooks" / name).read_bytes()  # the committed one untouched
    assert git(project_dir, "status", "--porcelain", "--untracked-files=all") == ""
