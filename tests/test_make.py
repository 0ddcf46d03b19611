"""The two README commands as a learner meets them: what ``make lab`` copies and serves, what
``make test`` checks first, and what each one installs.

The working-copy tests run the Makefile's own ``lab-copy`` step (the part of ``make lab`` before
JupyterLab starts) in a throwaway git repository holding this project's Makefile, .gitignore and
notebooks, so nothing of this checkout or of the learner's is touched.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.sign import NotebookNotary

REPO = Path(__file__).resolve().parents[1]
VENV = Path(sys.prefix)  # this interpreter's environment has jupyter: lab-copy uses it to trust the copies
LAB_DIR = "my-notebooks"


def git(project: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=project, check=True, capture_output=True, text=True).stdout


@pytest.fixture
def project(tmp_path):
    """A git repository with this project's Makefile, .gitignore and notebooks, all committed."""
    root = tmp_path / "project"
    root.mkdir()
    for name in ("Makefile", ".gitignore"):
        shutil.copy(REPO / name, root / name)
    shutil.copytree(REPO / "notebooks", root / "notebooks", ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    git(root, "init", "-q")
    git(root, "add", ".")
    git(root, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "the course")
    return root


@pytest.fixture
def jupyter_data(tmp_path, monkeypatch):
    """A throwaway Jupyter data folder: the signatures of trusted notebooks are kept there."""
    folder = tmp_path / "jupyter-data"
    folder.mkdir()
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(folder))
    return folder


def make(project: Path, *targets: str, **variables: str) -> subprocess.CompletedProcess:
    settings = [f"{key}={value}" for key, value in {"VENV": str(VENV), **variables}.items()]
    return subprocess.run(
        ["make", "--no-print-directory", "-C", str(project), *targets, *settings],
        capture_output=True,
        text=True,
        env={**os.environ, "MAKEFLAGS": ""},
    )


def run_and_save(notebook: Path) -> None:
    """What JupyterLab's autosave writes after a learner's run: new outputs and execution counts."""
    document = json.loads(notebook.read_text(encoding="utf-8"))
    for cell in document["cells"]:
        if cell["cell_type"] == "code":
            cell["execution_count"] = (cell["execution_count"] or 0) + 100
            cell["outputs"] = [{"name": "stdout", "output_type": "stream", "text": ["the learner's own run\n"]}]
    notebook.write_text(json.dumps(document, indent=1), encoding="utf-8")


def trusted(notebook: Path, data_dir: Path) -> bool:
    notary = NotebookNotary(data_dir=str(data_dir))
    return notary.check_signature(nbformat.read(notebook, as_version=4))


def test_the_working_copy_is_made_on_the_first_run_and_keeps_the_tree_clean(project, jupyter_data):
    result = make(project, "lab-copy")
    assert result.returncode == 0, result.stderr
    committed = sorted(p.name for p in (project / "notebooks").glob("*.ipynb"))
    copy = project / LAB_DIR
    assert sorted(p.name for p in copy.glob("*.ipynb")) == committed
    assert f"copied {len(committed)} notebook(s) into {LAB_DIR}/" in result.stdout
    for name in committed:
        assert (copy / name).read_bytes() == (project / "notebooks" / name).read_bytes()

    # a notebook run and saved in the lab: the copy changes, the committed notebooks and git do not
    edited = copy / "05_pitfalls_and_hyperparameters.ipynb"
    run_and_save(edited)
    saved = edited.read_bytes()
    again = make(project, "lab-copy")
    assert again.returncode == 0, again.stderr
    assert "copied" not in again.stdout  # nothing new: nothing copied, nothing overwritten
    assert edited.read_bytes() == saved
    assert git(project, "status", "--porcelain", "--untracked-files=all") == ""


def test_new_notebooks_join_the_copy_and_a_deleted_one_comes_back_fresh(project, jupyter_data):
    assert make(project, "lab-copy").returncode == 0
    copy = project / LAB_DIR
    run_and_save(copy / "01_chain_rule.ipynb")
    learner_run = (copy / "01_chain_rule.ipynb").read_bytes()

    # the course grows by one notebook; the reset of one notebook is: delete it, run make lab
    shutil.copy(project / "notebooks" / "00_start_here.ipynb", project / "notebooks" / "10_new_topic.ipynb")
    (copy / "05_pitfalls_and_hyperparameters.ipynb").unlink()
    result = make(project, "lab-copy")
    assert result.returncode == 0, result.stderr
    assert f"copied 2 notebook(s) into {LAB_DIR}/" in result.stdout
    for name in ("10_new_topic.ipynb", "05_pitfalls_and_hyperparameters.ipynb"):
        assert (copy / name).read_bytes() == (project / "notebooks" / name).read_bytes()
    assert (copy / "01_chain_rule.ipynb").read_bytes() == learner_run


def test_copied_notebooks_are_trusted_so_their_saved_widgets_draw(project, jupyter_data):
    """Untrusted, JupyterLab shows a widget output's plain text (VBox(children=...)) instead of the widget."""
    committed = project / "notebooks" / "02_three_layer_network.ipynb"
    assert not trusted(committed, jupyter_data)
    assert make(project, "lab-copy").returncode == 0
    assert trusted(project / LAB_DIR / committed.name, jupyter_data)


# make cannot take a path with spaces, and TMPDIR may have them: these venvs are relative to the checkout


def test_make_test_asks_for_chromium_before_anything_else():
    venv = REPO / "test-artifacts" / "venv-never-made"  # git-ignored, in case the check comes too late
    shutil.rmtree(venv, ignore_errors=True)
    result = make(REPO, "test", VENV=str(venv.relative_to(REPO)), CHROMIUM="bpcore-no-such-browser")
    assert result.returncode != 0
    assert "sudo apt-get install chromium" in result.stderr
    assert not venv.exists()  # stopped before the install, so before lint, unit and notebook tests
    assert "ruff" not in result.stdout and "pytest" not in result.stdout


def test_make_lab_installs_jupyterlab_without_the_test_tools():
    result = make(REPO, "-n", "lab", VENV=".venv-dry-run")  # -n: printed, not run
    assert result.returncode == 0, result.stderr
    installs = [line for line in result.stdout.splitlines() if " install " in line and " -e " in line]
    assert installs and all("'.[lab]'" in line for line in installs), installs
    assert '--ServerApp.root_dir="my-notebooks"' in result.stdout  # it serves the working copy


def test_the_installed_bpcore_script_is_the_one_pyproject_names():
    """make install reinstalls bpcore itself: a venv from before a change of [project.scripts] keeps no stale script."""
    import importlib.metadata
    import tomllib

    named = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]["scripts"]["bpcore"]
    installed = importlib.metadata.distribution("bpcore").entry_points.select(group="console_scripts", name="bpcore")
    assert [e.value for e in installed] == [named], (
        f"pyproject.toml names bpcore = {named!r}; the installed metadata says {[e.value for e in installed]}: "
        "run make install-test"
    )
    module, function = named.split(":")
    script = (Path(sys.prefix) / "bin" / "bpcore").read_text(encoding="utf-8")
    assert f"from {module} import {function}" in script, f"{sys.prefix}/bin/bpcore does not run {named}:\n{script}"
