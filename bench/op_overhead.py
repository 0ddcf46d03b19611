"""How much does bpcore add on top of numpy? Import time and per-op cost, measured side by side.

    .venv/bin/python bench/op_overhead.py

Prints, for each op, the median time of the bare numpy expression, of the bpcore op without a
graph (inputs not requiring grad), and with the graph recorded, plus the ratios. Small arrays show
the fixed Python cost per op; large arrays show that it disappears behind the arithmetic.
"""

import statistics
import subprocess
import sys
import timeit

import numpy as np

import bpcore as bp


def import_seconds(module: str, repeats: int = 5) -> float:
    code = f"import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
    runs = [float(subprocess.check_output([sys.executable, "-c", code])) for _ in range(repeats)]
    return statistics.median(runs)


def median_seconds(fn, number: int) -> float:
    return statistics.median(timeit.repeat(fn, number=number, repeat=7)) / number


def main() -> None:
    numpy_s = import_seconds("numpy")
    both_s = import_seconds("bpcore")
    print(f"import numpy: {numpy_s * 1e3:.0f} ms; import bpcore (with numpy): {both_s * 1e3:.0f} ms; ")
    print(f"bpcore adds {(both_s - numpy_s) * 1e3:.0f} ms (target < 300 ms)\n")

    rng = np.random.default_rng(0)
    header = f"{'op':<14}{'size':>10}{'numpy us':>11}{'bp no-grad us':>15}{'bp graph us':>13}{'ratio graph/numpy':>19}"
    print(header)
    for n in (16, 512):
        a_np, b_np = rng.standard_normal((n, n)), rng.standard_normal((n, n))
        a_const, b_const = bp.tensor(a_np), bp.tensor(b_np)
        a_leaf, b_leaf = bp.tensor(a_np, requires_grad=True), bp.tensor(b_np, requires_grad=True)
        cases = [
            ("add", lambda a=a_np, b=b_np: a + b, lambda a, b: a + b),
            ("mul", lambda a=a_np, b=b_np: a * b, lambda a, b: a * b),
            ("matmul", lambda a=a_np, b=b_np: a @ b, lambda a, b: a @ b),
            ("tanh", lambda a=a_np: np.tanh(a), lambda a, b: a.tanh()),
            ("relu", lambda a=a_np: np.maximum(a, 0), lambda a, b: a.relu()),
            ("sum(axis=0)", lambda a=a_np: a.sum(axis=0), lambda a, b: a.sum(axis=0)),
        ]
        number = 2000 if n == 16 else 20
        for name, numpy_fn, bp_fn in cases:
            t_np = median_seconds(numpy_fn, number)
            t_const = median_seconds(lambda f=bp_fn, a=a_const, b=b_const: f(a, b), number)
            t_graph = median_seconds(lambda f=bp_fn, a=a_leaf, b=b_leaf: f(a, b), number)
            print(
                f"{name:<14}{f'{n}x{n}':>10}{t_np * 1e6:>11.2f}{t_const * 1e6:>15.2f}{t_graph * 1e6:>13.2f}"
                f"{t_graph / t_np:>19.2f}"
            )

    x = bp.tensor(1.0, requires_grad=True)
    chain = x
    for _ in range(100_000):
        chain = chain * 1.0000001
    backward_s = min(timeit.repeat(lambda: chain.backward(), number=1, repeat=3))
    print(f"\nbackward through a chain of 100,000 ops: {backward_s:.2f} s ({backward_s / 1e5 * 1e6:.1f} us per op)")


if __name__ == "__main__":
    main()
