"""The quiz loads its heavy parts only when used (the engine's side of the layering: tests/test_layering.py)."""

import subprocess


def loaded_after(python, env, statement):
    """The set of top-level module names loaded by a fresh interpreter after running ``statement``."""
    code = f"{statement}\nimport sys\nprint(' '.join(sorted({{m.split('.')[0] for m in sys.modules}})))"
    done = subprocess.run([python, "-c", code], env=env, capture_output=True, text=True, timeout=60, check=True)
    return set(done.stdout.split()), done.stdout


def test_the_quiz_package_and_cli_load_lightly(python, child_env):
    modules, _ = loaded_after(python, child_env, "import bpcore.quiz, bpcore.quiz.cli")
    assert not modules & {"ipywidgets", "fsrs", "sqlite3", "IPython", "pylatexenc"}
