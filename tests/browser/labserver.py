"""A JupyterLab server of one's own for a browser test, with throwaway Jupyter folders.

test_lab.py starts its own server over an outputs-cleared copy of notebooks/; a test that needs to
serve something else (test_working_copy.py: the copy ``make lab`` makes) starts one with these.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

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


@dataclass
class Server:
    url: str
    token: str
    process: subprocess.Popen


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


def _api(server_url: str, token: str, path: str, method: str = "GET"):
    request = urllib.request.Request(
        f"{server_url}{path}",
        method=method,
        headers={"Authorization": f"token {token}"},
        data=b"" if method != "GET" else None,
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        return response.status


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
    server = Server(f"http://127.0.0.1:{port}", token, process)
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
        time.sleep(0.5)


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


def chromium_path() -> str:
    path = shutil.which("chromium")
    if path is None:
        pytest.fail("the browser test needs Debian's chromium on PATH: sudo apt-get install chromium", pytrace=False)
    return path
