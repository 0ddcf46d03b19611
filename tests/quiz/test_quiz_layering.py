"""The layering rules: the engine never imports the quiz; the quiz loads its heavy parts only when used."""

import re
import subprocess
from pathlib import Path

import bpcore

ENGINE = Path(bpcore.__file__).parent


def loaded_after(python, env, statement):
    """The set of top-level module names loaded by a fresh interpreter after running ``statement``."""
    code = f"{statement}\nimport sys\nprint(' '.join(sorted({{m.split('.')[0] for m in sys.modules}})))"
    done = subprocess.run([python, "-c", code], env=env, capture_output=True, text=True, timeout=60, check=True)
    return set(done.stdout.split()), done.stdout


def test_the_engine_does_not_import_the_quiz(python, child_env):
    modules, _ = loaded_after(python, child_env, "import bpcore, sys; assert 'bpcore.quiz' not in sys.modules")
    assert not modules & {"sqlite3", "fsrs", "ipywidgets", "tomllib"}
    engine_files = [p for p in ENGINE.rglob("*.py") if "quiz" not in p.relative_to(ENGINE).parts]
    mentions = [p.name for p in engine_files if re.search(r"^\s*(from|import)\s+bpcore\.quiz", p.read_text(), re.M)]
    assert mentions == []


def test_the_quiz_package_and_cli_load_lightly(python, child_env):
    modules, _ = loaded_after(python, child_env, "import bpcore.quiz, bpcore.quiz.cli")
    assert not modules & {"ipywidgets", "fsrs", "sqlite3", "IPython"}
