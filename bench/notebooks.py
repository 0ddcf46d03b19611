"""How long a learner waits for the notebooks: each one executed top to bottom in a fresh kernel, timed.

    .venv/bin/python bench/notebooks.py [notebook ...] [--slowest 3] [--budget 60]

Each notebook runs as `make execute-notebooks` runs it (nbclient, a fresh kernel started in notebooks/,
a throwaway progress store), but nothing is written back. Per notebook: the wall time from kernel start
to the last cell, the part spent inside cells, the kernel's CPU seconds, and its slowest cells with
the first line of each. The total is compared with the budget (issue 18: all notebooks <= 60 s on this
machine). Wall time is what a learner waits; on a shared machine it also counts other people's work,
so the load average is printed and the kernel's CPU time (all its threads, BLAS included) is given
beside it as the figure other processes move least.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import nbformat
import psutil  # installed with IPython, which every kernel needs
from nbclient import NotebookClient

REPO = Path(__file__).resolve().parents[1]


def first_line(source: str, width: int = 60) -> str:
    """The cell's first non-comment line, cut to width: enough to find the cell again."""
    lines = [line.strip() for line in source.splitlines() if line.strip()]
    code = [line for line in lines if not line.startswith("#")] or lines or [""]
    text = code[0]
    return text if len(text) <= width else text[: width - 3] + "..."


def cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return times.user + times.system


def time_notebook(path: Path, timeout: int = 600) -> tuple[float, float, list[tuple[float, float, int, str]]]:
    """Execute one notebook in a fresh kernel.

    Returns (wall seconds, kernel CPU seconds, [(cell wall seconds, cell CPU seconds, index, first line)]).
    """
    notebook = nbformat.read(path, as_version=4)
    kernel: list[psutil.Process] = []
    started: dict[int, tuple[float, float]] = {}
    cells: list[tuple[float, float, int, str]] = []

    def on_notebook_start(notebook):
        kernel.append(psutil.Process(client.km.provisioner.pid))

    def on_cell_execute(cell, cell_index):
        started[cell_index] = (time.perf_counter(), cpu_seconds(kernel[0]))

    def on_cell_executed(cell, cell_index, execute_reply):
        wall0, cpu0 = started[cell_index]
        wall, cpu = time.perf_counter() - wall0, cpu_seconds(kernel[0]) - cpu0
        cells.append((wall, cpu, cell_index, first_line(cell.source)))

    client = NotebookClient(
        notebook,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
        on_notebook_start=on_notebook_start,
        on_cell_execute=on_cell_execute,
        on_cell_executed=on_cell_executed,
    )
    t0 = time.perf_counter()
    client.execute()
    wall = time.perf_counter() - t0
    return wall, sum(cpu for _, cpu, _, _ in cells), cells


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: every notebook in notebooks/")
    parser.add_argument("--slowest", type=int, default=3, help="slowest cells shown per notebook")
    parser.add_argument("--budget", type=float, default=60.0, help="seconds all the notebooks may take together")
    args = parser.parse_args()
    paths = args.notebooks or sorted((REPO / "notebooks").glob("*.ipynb"))
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        print(f"bench/notebooks.py: expected notebook files, found no file at: {', '.join(missing)}", file=sys.stderr)
        return 2
    # as in make notebooks: the quiz cells write to a throwaway progress store, never the learner's
    os.environ["BPCORE_HOME"] = tempfile.mkdtemp(prefix="bpcore-bench-notebooks-")
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    print(f"{os.cpu_count()} cores, load average {load} (1, 5, 15 min)", flush=True)
    total, in_cells, cpu_total, rows = 0.0, 0.0, 0.0, []
    for path in paths:
        wall, cpu, cells = time_notebook(path.resolve())
        cell_total = sum(seconds for seconds, _, _, _ in cells)
        total, in_cells, cpu_total = total + wall, in_cells + cell_total, cpu_total + cpu
        rows.append((path.name, wall))
        print(
            f"{path.name:<40} {wall:6.1f} s  ({cell_total:5.1f} s in {len(cells)} cells, CPU {cpu:5.1f} s)",
            flush=True,
        )
        for seconds, cell_cpu, index, line in sorted(cells, reverse=True)[: args.slowest]:
            print(f"    cell {index:>3} {seconds:6.2f} s  (CPU {cell_cpu:5.2f} s)  {line}")
    print(
        f"\n{'total':<40} {total:6.1f} s  ({in_cells:5.1f} s in cells, kernel CPU {cpu_total:5.1f} s in cells; "
        "the rest is kernel start-up and messaging)"
    )
    verdict = "within" if total <= args.budget else "over"
    print(f"budget {args.budget:.0f} s: {verdict} by {abs(args.budget - total):.1f} s")
    slowest = sorted(rows, key=lambda row: -row[1])[:4]
    print("slowest notebooks: " + ", ".join(f"{name} {wall:.1f} s" for name, wall in slowest))
    return 0


if __name__ == "__main__":
    sys.exit(main())
