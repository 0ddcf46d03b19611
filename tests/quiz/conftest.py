"""Shared fixtures for the quiz tests: a private progress folder per test, a store, the starter banks."""

import os
import sys
import textwrap
from pathlib import Path

import pytest

from bpcore.quiz.bank import load_banks
from bpcore.quiz.store import Store

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def home(tmp_path, monkeypatch):
    """BPCORE_HOME points at a fresh folder: no test touches the real progress file."""
    folder = tmp_path / "home"
    monkeypatch.setenv("BPCORE_HOME", str(folder))
    return folder


@pytest.fixture
def store(home):
    with Store() as opened:
        yield opened


@pytest.fixture(scope="session")
def bank():
    return load_banks(REPO / "quizzes")


@pytest.fixture
def write_bank(tmp_path):
    """write_bank(name, text) writes a TOML bank into a fresh folder and returns the folder."""
    folder = tmp_path / "banks"
    folder.mkdir()

    def write(name: str, text: str) -> Path:
        (folder / name).write_text(textwrap.dedent(text), encoding="utf-8")
        return folder

    return write


@pytest.fixture
def child_env(home):
    """Environment for a child Python process: this interpreter's package, the test's BPCORE_HOME."""
    return {**os.environ, "BPCORE_HOME": str(home), "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}


@pytest.fixture
def python():
    return sys.executable
