"""How long a learner waits after moving a control of each notebook explorer (bpcore.widgets).

    .venv/bin/python bench/explorers.py [--rounds 5] [--only Depth,Memory] [--here]

Each explorer is built as its notebook builds it; then, in each round, one control is moved away
(untimed) and back (timed), so the timed update lands on the settings named: "default" (as the
notebook opens it) and "max" (every control at its most expensive end: the longest run, the
deepest net, the largest batch). The time is the whole callback a slider triggers, drawing
included; the figure is the median of the rounds, printed beside the 150 ms target.

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


def time_updates(explorer, settings: dict, moved, rounds: int) -> float:
    """Median milliseconds of ``rounds`` updates landing on ``settings``."""
    for path, value in settings.items():
        _control(explorer, path).value = value
    times = []
    for _ in range(rounds):
        if moved is None:  # the stepper: a click on Next, then back to the first step (untimed)
            explorer.go(0)
            start = time.perf_counter()
            explorer.next_button.click()
        else:
            path, away = moved
            control = _control(explorer, path)
            back = control.value
            control.value = away
            start = time.perf_counter()
            control.value = back
        times.append((time.perf_counter() - start) * 1e3)
        errors = getattr(explorer, "errors", None)
        if errors is not None and errors.value:
            raise RuntimeError(f"the explorer reported a failure instead of updating: {errors.last_error!r}")
    return statistics.median(times)


def measure(rounds: int, only: list[str] | None = None) -> dict:
    """{explorer: {"default": ms, "max": ms}}; runs wherever it is called (in the kernel, normally)."""
    results = {}
    for name, (build, settings, moved) in cases().items():
        if only and name not in only:
            continue
        results[name] = {}
        for label in ("default", "max"):
            explorer = build()  # a fresh explorer per setting: nothing carried over from the other
            results[name][label] = time_updates(explorer, settings[label], moved, rounds)
    return results


def measure_in_kernel(rounds: int, only: list[str] | None) -> dict:
    from jupyter_client.manager import start_new_kernel

    manager, client = start_new_kernel(kernel_name="python3", cwd=str(REPO))
    try:
        code = (
            "import json, runpy\n"
            f"_bench = runpy.run_path({str(Path(__file__).resolve())!r}, run_name='bench_explorers')\n"
            f"print('RESULT ' + json.dumps(_bench['measure']({rounds}, {only!r})))\n"
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


def report(results: dict) -> str:
    lines = [f"{'explorer':<12} {'default ms':>11} {'max ms':>9} {'target ms':>10}  verdict"]
    for name, row in results.items():
        verdict = "ok" if max(row.values()) <= TARGET_MS else "MISSED"
        lines.append(f"{name:<12} {row['default']:>11.1f} {row['max']:>9.1f} {TARGET_MS:>10.0f}  {verdict}")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="timed updates per setting (the median is shown)")
    parser.add_argument("--only", default="", help="comma-separated explorer names, e.g. Depth,Memory")
    parser.add_argument("--here", action="store_true", help="time in this process instead of a kernel")
    args = parser.parse_args(argv)
    only = [name for name in args.only.split(",") if name] or None
    results = measure(args.rounds, only) if args.here else measure_in_kernel(args.rounds, only)
    print(report(results))
    return 0 if all(max(row.values()) <= TARGET_MS for row in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
