"""How long a learner waits after moving a control of each notebook explorer (bpcore.widgets).

    .venv/bin/python bench/explorers.py [--rounds 5] [--only Depth,Memory] [--here]

Each explorer is built as its notebook builds it; then, in each round, one control is moved away
(untimed) and back (timed), so the timed update lands on the settings named: "default" (as the
notebook opens it) and "max" (every control at its most expensive end: the longest run, the
deepest net, the largest batch). The time is the whole callback a slider triggers, drawing
included; the figure is the median of the rounds, printed beside the 150 ms target. Wall-clock
time is what a learner waits; the kernel's CPU time is printed beside it, because on a machine
shared with other work the wall clock also counts the time the kernel waited for a core. BLAS runs
on one thread (``--blas-threads``), so the CPU time is not inflated by idle BLAS workers.

The measurement runs inside a Jupyter kernel (the venv's python3 kernel), because that is where a
learner's explorer runs: an explorer that draws with pyplot into an Output widget only renders its
figure when a kernel displays it, so timing outside a kernel would leave the drawing out.
``--here`` times in this process instead (faster to start; fair only for explorers that render
their own image).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

TARGET_MS = 150.0
REPO = Path(__file__).resolve().parent.parent


def _digits():
    import bpcore as bp

    return bp.data.digits()


def _depth_data():
    digits = _digits()
    return digits.X_train[:128], digits.y_train[:128]


def _stepper():
    import numpy as np

    from bpcore.widgets import ThreeLayerStepper

    rng = np.random.default_rng(0)
    params = {"W1": rng.standard_normal((3, 2)), "b1": np.zeros(3), "W2": rng.standard_normal((2, 3))}
    params["b2"] = np.zeros(2)
    return ThreeLayerStepper(np.array([0.5, -1.0]), np.array([0.2, 0.9]), params)


# name: (build the explorer as its notebook does, {"default": settings, "max": settings}, the control moved)
# settings: {control attribute: value}; the moved control goes to ``away`` and back to its setting.
def cases() -> dict:
    import bpcore.widgets as w

    explorers = {
        "ChainRule": (w.ChainRuleExplorer, {"default": {}, "max": {"activation": "tanh"}}, ("sliders.w2", 1.0)),
        "BatchSize": (
            lambda: w.BatchSizeExplorer(_digits(), epochs=1),
            {"default": {}, "max": {"batch_size": 1}},
            ("lr", 0.1),
        ),
        "Depth": (
            lambda: w.DepthExplorer(*_depth_data()),
            {"default": {}, "max": {"depth": 50, "batchnorm": True, "residual": True, "activation": "tanh"}},
            ("init", "he"),
        ),
        "Optimizer": (w.OptimizerExplorer, {"default": {}, "max": {"steps": 300, "optimizer": "Adam"}}, ("lr", 0.1)),
        "ThroughTime": (
            w.ThroughTimeExplorer,
            {"default": {}, "max": {"kind": "lstm", "length": 150, "hidden": 64, "forget_bias": 3.0}},
            ("kind", "gru"),
        ),
        "Conv": (w.ConvExplorer, {"default": {}, "max": {"kernel": 1, "padding": 2}}, ("stride", 2)),
        "Memory": (
            w.MemoryExplorer,
            {"default": {}, "max": {"depth": 24, "width": 512, "batch": 512, "segments": 8}},
            ("segments", 1),
        ),
        "Stepper": (_stepper, {"default": {}, "max": {}}, None),
    }
    if hasattr(w, "AttentionExplorer"):
        explorers["Attention"] = (
            w.AttentionExplorer,
            {"default": {}, "max": {"d_k": w.attention.D_K_MAX, "causal": True, "scaled": False}},
            ("seed", 1),
        )
    return explorers


def _control(explorer, path: str):
    obj = explorer
    for part in path.split("."):
        obj = obj[part] if isinstance(obj, dict) else getattr(obj, part)
    return obj


def time_updates(explorer, settings: dict, moved, rounds: int) -> tuple[float, float]:
    """Median wall-clock and CPU milliseconds of ``rounds`` updates landing on ``settings``."""
    for path, value in settings.items():
        _control(explorer, path).value = value
    times, cpu_times = [], []
    for _ in range(rounds):
        if moved is None:  # the stepper: a click on Next, then back to the first step (untimed)
            explorer.go(0)
            start, cpu_start = time.perf_counter(), time.process_time()
            explorer.next_button.click()
        else:
            path, away = moved
            control = _control(explorer, path)
            back = control.value
            control.value = away
            start, cpu_start = time.perf_counter(), time.process_time()
            control.value = back
        times.append((time.perf_counter() - start) * 1e3)
        cpu_times.append((time.process_time() - cpu_start) * 1e3)
        errors = getattr(explorer, "errors", None)
        if errors is not None and errors.value:
            raise RuntimeError(f"the explorer reported a failure instead of updating: {errors.last_error!r}")
    return statistics.median(times), statistics.median(cpu_times)


def measure(rounds: int, only: list[str] | None = None, blas_threads: int = 1) -> dict:
    """{explorer: {"default": (wall ms, cpu ms), "max": ...}}; runs where it is called (in the kernel, normally)."""
    import numpy  # noqa: F401  (loaded first: threadpoolctl limits only the BLAS libraries already loaded)
    from threadpoolctl import threadpool_limits  # installed with scikit-learn

    threadpool_limits(blas_threads)
    results = {}
    for name, (build, settings, moved) in cases().items():
        if only and name not in only:
            continue
        results[name] = {}
        for label in ("default", "max"):
            explorer = build()  # a fresh explorer per setting: nothing carried over from the other
            results[name][label] = time_updates(explorer, settings[label], moved, rounds)
    return results


def measure_in_kernel(rounds: int, only: list[str] | None, blas_threads: int = 1) -> dict:
    from jupyter_client.manager import start_new_kernel

    manager, client = start_new_kernel(kernel_name="python3", cwd=str(REPO))
    try:
        code = (
            "import json, runpy\n"
            f"_bench = runpy.run_path({str(Path(__file__).resolve())!r}, run_name='bench_explorers')\n"
            f"print('RESULT ' + json.dumps(_bench['measure']({rounds}, {only!r}, {blas_threads})))\n"
        )
        lines, errors = [], []

        def collect(message):
            content = message["content"]
            if message["msg_type"] == "stream" and content["name"] == "stdout":
                lines.append(content["text"])
            elif message["msg_type"] == "error":
                errors.append("\n".join(content["traceback"]))

        client.execute_interactive(code, timeout=1800, output_hook=collect)
        if errors:
            raise RuntimeError("the measurement failed in the kernel:\n" + "\n".join(errors))
        result = [line for line in "".join(lines).splitlines() if line.startswith("RESULT ")]
        if not result:
            raise RuntimeError(f"the kernel printed no RESULT line; it printed: {''.join(lines)[-2000:]}")
        return json.loads(result[-1][len("RESULT ") :])
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)


def worst(row: dict) -> float:
    return max(wall for wall, _cpu in row.values())


def report(results: dict) -> str:
    lines = [
        "median ms per update: wall clock (what a learner waits) and the kernel's CPU time (the same when idle)",
        f"{'explorer':<12} {'default wall':>12} {'cpu':>7} {'max wall':>9} {'cpu':>7} {'target':>7}  verdict",
    ]
    for name, row in results.items():
        (dw, dc), (mw, mc) = row["default"], row["max"]
        verdict = "ok" if worst(row) <= TARGET_MS else "MISSED"
        lines.append(f"{name:<12} {dw:>12.1f} {dc:>7.1f} {mw:>9.1f} {mc:>7.1f} {TARGET_MS:>7.0f}  {verdict}")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="timed updates per setting (the median is shown)")
    parser.add_argument("--only", default="", help="comma-separated explorer names, e.g. Depth,Memory")
    parser.add_argument("--here", action="store_true", help="time in this process instead of a kernel")
    parser.add_argument("--blas-threads", type=int, default=1, help="BLAS threads in the timed process")
    args = parser.parse_args(argv)
    only = [name for name in args.only.split(",") if name] or None
    if args.here:
        results = measure(args.rounds, only, args.blas_threads)
    else:
        results = measure_in_kernel(args.rounds, only, args.blas_threads)
    print(report(results))
    return 0 if all(worst(row) <= TARGET_MS for row in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
