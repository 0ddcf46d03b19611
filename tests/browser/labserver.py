"""The JupyterLab server and the browser the browser tests share, and the helpers that drive a page.

One JupyterLab (conftest.py's ``lab_server``, started once for the whole run, with throwaway Jupyter
folders and a throwaway progress store) serves a throwaway folder; each test file puts what it serves
in a folder of its own there (test_lab.py an outputs-cleared copy of notebooks/, test_explorers.py a
notebook of its own, test_working_copy.py the copy ``make lab`` makes) and opens it with
:func:`open_notebook` in a page of :func:`new_page`, in the one Chromium (conftest.py's ``browser``).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import pytest
from playwright.sync_api import expect

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "browser"

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# every cell stays in the DOM (no windowing), and no news or update toasts cover the page
LAB_SETTINGS = {
    "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification": {
        "fetchNews": "false",
        "checkForUpdates": False,
        "doNotDisturbMode": True,
    },
}


TIMEOUT_MS = 60_000  # one UI step; a whole notebook run, or a kernel start, gets RUN_TIMEOUT_MS
RUN_TIMEOUT_MS = 120_000
VIEWPORT = {"width": 1200, "height": 800}


@dataclass
class Server:
    url: str
    token: str
    process: subprocess.Popen
    root: Path | None = None  # the folder it serves
    env: dict[str, str] | None = None  # its environment (jupyter_env): its Jupyter folders and progress store


def jupyter_env(root: Path) -> dict[str, str]:
    """This environment with throwaway Jupyter folders under ``root`` (config, data and its trust
    database, runtime, settings, workspaces) and a throwaway progress store."""
    for name, values in LAB_SETTINGS.items():
        plugin_file = root / "lab-settings" / f"{name}.jupyterlab-settings"
        plugin_file.parent.mkdir(parents=True, exist_ok=True)
        plugin_file.write_text(json.dumps(values))
    env = {key: value for key, value in os.environ.items() if key != "JUPYTER_PATH"}
    env.update(
        BPCORE_HOME=str(root / "home"),
        JUPYTER_CONFIG_DIR=str(root / "config"),
        JUPYTER_DATA_DIR=str(root / "data"),
        JUPYTER_RUNTIME_DIR=str(root / "runtime"),
        JUPYTERLAB_SETTINGS_DIR=str(root / "lab-settings"),
        JUPYTERLAB_WORKSPACES_DIR=str(root / "workspaces"),
    )
    return env


def _api(server_url: str, token: str, path: str, method: str = "GET", read: bool = False, timeout: float = 5):
    request = urllib.request.Request(
        f"{server_url}{path}",
        method=method,
        headers={"Authorization": f"token {token}"},
        data=b"" if method not in ("GET", "DELETE") else None,
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read()) if read else response.status


def start_jupyter_lab(root_dir: Path, env: dict[str, str], log_path: Path) -> Server:
    """JupyterLab on a free loopback port serving ``root_dir``; fails the test if it does not answer in 90 s."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    token = secrets.token_hex(16)
    command = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        f"--port={port}",
        "--ServerApp.port_retries=0",
        "--ServerApp.ip=127.0.0.1",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root_dir}",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "w") as log:
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    server = Server(f"http://127.0.0.1:{port}", token, process, root_dir, env)
    deadline = time.monotonic() + 90
    while True:
        if process.poll() is not None:
            pytest.fail(f"jupyter lab exited with {process.returncode}; see {log_path}", pytrace=False)
        try:
            if _api(server.url, token, "/api/status") == 200:
                return server
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        if time.monotonic() > deadline:
            stop_jupyter_lab(server)
            pytest.fail(f"jupyter lab did not answer on {server.url} within 90 s; see {log_path}", pytrace=False)
        time.sleep(0.1)


def stop_jupyter_lab(server: Server) -> None:
    """Shut the server down through its API (it stops its kernels), then by signal if it lingers."""
    process = server.process
    if process.poll() is None:
        try:
            _api(server.url, server.token, "/api/shutdown", method="POST")
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    try:  # anything left in the server's own process group
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def shut_down_kernels(server: Server) -> None:
    """Stop every kernel of ``server``, all at once (a test file's notebooks are done with; the server goes on)."""

    def stop(kernel_id: str) -> None:
        try:
            _api(server.url, server.token, f"/api/kernels/{kernel_id}", method="DELETE", timeout=60)
        except urllib.error.HTTPError as error:  # gone already
            if error.code != 404:
                raise

    kernels = [kernel["id"] for kernel in _api(server.url, server.token, "/api/kernels", read=True)]
    with ThreadPoolExecutor(max_workers=max(1, len(kernels))) as pool:
        list(pool.map(stop, kernels))


def chromium_path() -> str:
    path = shutil.which("chromium")
    if path is None:
        pytest.fail("the browser test needs Debian's chromium on PATH: sudo apt-get install chromium", pytrace=False)
    return path


@contextmanager
def new_page(browser, errors: list[str] | None = None, viewport: dict | None = None) -> Iterator:
    """A page in a fresh browser context (its own storage and window size) of the shared Chromium, with this
    suite's timeouts; every error in the browser console, and every uncaught page error, goes to ``errors``."""
    context = browser.new_context(viewport=viewport or VIEWPORT)
    try:
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        expect.set_options(timeout=TIMEOUT_MS)
        if errors is not None:
            page.on("console", lambda message: message.type == "error" and errors.append(message.text))
            page.on("pageerror", lambda error: errors.append(f"uncaught: {error}"))
        yield page
    finally:
        context.close()


def notebook(page):
    return page.locator(".jp-NotebookPanel:visible .jp-Notebook")


def wait_kernel_idle(page, timeout: float = RUN_TIMEOUT_MS) -> None:
    page.locator("#jp-main-statusbar").get_by_text(re.compile(r"\|\s*Idle")).wait_for(timeout=timeout)


def open_notebook(page, server: Server, path: str, *, fold_file_browser: bool = True, kernel_idle: bool = True) -> None:
    """Open the notebook at ``path`` (under the served folder) in a fresh workspace; by default fold the file
    browser away (more room for the notebook) and wait until its kernel is up."""
    page.goto(f"{server.url}/lab/tree/{path}?reset&token={server.token}")
    notebook(page).wait_for()
    page.locator(".lm-TabBar-tab.jp-mod-current", has_text=PurePosixPath(path).name).wait_for()
    left = page.locator("#jp-left-stack")
    if fold_file_browser and left.is_visible():
        page.locator(".jp-SideBar.jp-mod-left .lm-TabBar-tab.lm-mod-current").click()
        left.wait_for(state="hidden")
    if kernel_idle:
        wait_kernel_idle(page)
