"""The package's three parts, read from its imports: engine <- labs <- teaching UI, and no cycles.

* engine: every module of ``bpcore/`` outside ``labs/``, ``widgets/``, ``quiz/`` and ``plots.py``;
* labs: ``bpcore/labs/``, one module per notebook;
* teaching UI: ``plots.py``, ``widgets/``, ``quiz/``.

Every ``import`` statement counts, at the top of a file or inside a function. The package face,
``bpcore/__init__.py``, reaches the labs, the quiz and the plots only on first use (through
importlib, in ``__getattr__`` and ``draw_graph``): a fresh ``import bpcore`` is checked to load none
of them.
"""

import ast
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

import bpcore

PACKAGE = Path(bpcore.__file__).parent


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def part(module: str) -> str:
    if module == "bpcore":
        return "face"
    first = module.split(".")[1]
    return "labs" if first == "labs" else "ui" if first in ("widgets", "quiz", "plots") else "engine"


def imports_of(module: str) -> set[str]:
    """Every module ``module`` imports anywhere in its file: bpcore modules by full name, others by top name."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from . import x (level 1: this package), from ..y import z (its parent)
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                # `from bpcore.nn import functional` imports the submodule; `from bpcore.nn import Linear` the package
                submodule = f"{base}.{alias.name}"
                found.add(submodule if submodule in MODULES else base)
    return {name if name.split(".")[0] == "bpcore" else name.split(".")[0] for name in found}


GRAPH = {module: imports_of(module) for module in MODULES}


def offenders(rule) -> list[str]:
    return sorted(f"{m} imports {dep}" for m, deps in GRAPH.items() for dep in sorted(deps) if rule(m, dep))


def test_the_scan_sees_the_package():
    assert {"bpcore.tensor", "bpcore.ops", "bpcore.labs.vanishing", "bpcore.widgets.depth", "bpcore.quiz.store"} <= set(
        MODULES
    )
    assert "bpcore.tensor" in GRAPH["bpcore.ops"]  # a top-level import
    assert "bpcore.labs.vanishing" in GRAPH["bpcore.widgets.depth"]
    assert "matplotlib" in GRAPH["bpcore.widgets.figure"]  # an import inside a method counts too
    assert {part("bpcore.labs.cost"), part("bpcore.plots"), part("bpcore.nn.conv"), part("bpcore")} == {
        "labs",
        "ui",
        "engine",
        "face",
    }


def test_the_engine_imports_no_lab_widget_plot_or_quiz():
    assert offenders(lambda m, dep: part(m) == "engine" and dep.startswith("bpcore") and part(dep) != "engine") == []


def test_a_lab_imports_no_widget_plot_or_quiz():
    assert offenders(lambda m, dep: part(m) == "labs" and dep.startswith("bpcore") and part(dep) == "ui") == []


def test_only_widgets_and_the_quiz_import_ipywidgets():
    allowed = ("bpcore.widgets", "bpcore.quiz")
    assert offenders(lambda m, dep: dep == "ipywidgets" and not m.startswith(allowed)) == []


def test_only_plots_and_widgets_import_matplotlib():
    allowed = ("bpcore.plots", "bpcore.widgets")
    assert offenders(lambda m, dep: dep == "matplotlib" and not m.startswith(allowed)) == []


def test_the_package_face_imports_only_the_engine():
    assert sorted(dep for dep in GRAPH["bpcore"] if dep.startswith("bpcore") and part(dep) != "engine") == []


@pytest.mark.parametrize("statement", ["import bpcore", "import bpcore.nn, bpcore.optim, bpcore.train, bpcore.bptt"])
def test_importing_the_engine_loads_nothing_of_the_other_parts(statement):
    code = (
        f"{statement}\nimport sys\n"
        "print(' '.join(m for m in sys.modules if m.startswith(('bpcore.labs', 'bpcore.widgets', 'bpcore.quiz', "
        "'bpcore.plots', 'matplotlib', 'ipywidgets', 'sqlite3', 'fsrs', 'tomllib'))))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.split() == []


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected group of two or more modules (Tarjan's algorithm, iteratively)."""
    index, low, on_stack, stack, groups, counter = {}, {}, set(), [], [], [0]
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter[0]
        counter[0] += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in graph:
                    continue
                if child not in index:
                    index[child] = low[child] = counter[0]
                    counter[0] += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    group = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        group.append(member)
                        if member == node:
                            break
                    if len(group) > 1:
                        groups.append(sorted(group))
    return groups


def test_the_cycle_finder_finds_a_planted_cycle():
    planted = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(planted) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_module_imports_itself_back():
    # the face imports the whole engine and engine modules import each other through it only by
    # submodule name, so the graph of submodules must be acyclic
    graph = defaultdict(set, {m: {d for d in deps if d in MODULES} for m, deps in GRAPH.items()})
    assert cycles(graph) == []
