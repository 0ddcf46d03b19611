"""One JupyterLab server and one Chromium for every browser test; on a failure, a screenshot of what the
browser showed (test-artifacts/browser/FAILED-<test>.png)."""

from pathlib import Path

import pytest
from labserver import CHROMIUM_ARGS, chromium_path, jupyter_env, start_jupyter_lab, stop_jupyter_lab
from playwright.sync_api import sync_playwright

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "browser"


@pytest.fixture(scope="session")
def lab_server(tmp_path_factory):
    """JupyterLab serving a throwaway folder (each test file serves its notebooks from a folder of its own
    there), with throwaway Jupyter folders and progress store: started once, it takes 10-15 s."""
    root = tmp_path_factory.mktemp("jupyter")
    served = root / "served"
    served.mkdir()
    server = start_jupyter_lab(served, jupyter_env(root), ARTIFACTS / "jupyter.log")
    try:
        yield server
    finally:
        stop_jupyter_lab(server)


@pytest.fixture(scope="session")
def browser():
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    page = item.funcargs.get("page") if hasattr(item, "funcargs") else None
    if report.failed and report.when == "call" and page is not None:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        try:
            page.screenshot(path=str(ARTIFACTS / f"FAILED-{item.name}.png"), full_page=True)
        except Exception as error:  # the page may be gone; the test's own error matters more
            report.sections.append(("screenshot", f"no screenshot: {error}"))
    return report
