"""Conv2d forward + backward: bpcore's im2col against the naive loops and against PyTorch on the CPU.

    .venv/bin/python bench/conv.py [--rounds 15]

1. The naive loop reference (tests/conv_reference.py, seven nested Python loops) on a tiny input,
   against bpcore on the same input; then the loops' cost per multiply-add, extrapolated to the
   main size, because running them there would take minutes.
2. Conv2d(8, 16, 3, padding=1) on x (64, 8, 16, 16), gradients for x, weight and bias, in
   float32 and float64: bpcore against torch.nn.functional.conv2d (when PyTorch is installed).

Everything runs single-threaded (OpenBLAS through threadpoolctl, PyTorch through
set_num_threads), so the comparison is of the same arithmetic. Implementations are timed in
interleaved rounds in one process, so machine noise hits them alike; ratios are medians over rounds.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import numpy as np

import bpcore as bp
from bpcore.nn.conv import conv2d

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
import conv_reference as ref  # a test helper, found through the path set just above

MAIN_X, MAIN_W = (64, 8, 16, 16), (16, 8, 3, 3)
TINY_X, TINY_W = (2, 2, 6, 6), (3, 2, 3, 3)


def multiply_adds(x_shape, w_shape) -> int:
    """Multiply-adds of the forward pass with padding 1, stride 1: N C_out H W C_in kh kw."""
    n, c_in, h, w = x_shape
    return n * w_shape[0] * h * w * c_in * w_shape[2] * w_shape[3]


def seconds_per_call(fn, calls: int) -> float:
    t0 = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - t0) / calls


def bpcore_step(x, w, b, g):
    """One forward + backward through conv2d: gradients for x, weight and bias."""

    def step():
        xt, wt, bt = (bp.Tensor(a, requires_grad=True) for a in (x, w, b))
        conv2d(xt, wt, bt, padding=1).backward(g)

    return step


def loop_step(x, w, b, g):
    def step():
        ref.conv2d_forward(x, w, b, (1, 1), (1, 1))
        ref.conv2d_backward(x, w, g, (1, 1), (1, 1))

    return step


def torch_step(torch, x, w, b, g):
    xt, wt, bt, gt = (torch.from_numpy(a) for a in (x, w, b, g))

    def step():
        for t in (xt, wt, bt):
            t.grad = None
            t.requires_grad_(True)
        torch.nn.functional.conv2d(xt, wt, bt, padding=1).backward(gt)

    return step


def random_problem(x_shape, w_shape, dtype, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(x_shape).astype(dtype)
    w = rng.standard_normal(w_shape).astype(dtype)
    b = rng.standard_normal(w_shape[0]).astype(dtype)
    g = rng.standard_normal((x_shape[0], w_shape[0], *x_shape[2:])).astype(dtype)  # padding 1 keeps H, W
    return x, w, b, g


def interleaved(steps: dict, rounds: int, calls: int) -> dict[str, list[float]]:
    times = {name: [] for name in steps}
    for step in steps.values():  # warm-up
        step()
    for _ in range(rounds):
        for name, step in steps.items():
            times[name].append(seconds_per_call(step, calls))
    return times


def main() -> None:
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        torch = None
        print("PyTorch is not installed: comparing with the naive loops only (pip install torch to add it)")

    tiny = random_problem(TINY_X, TINY_W, np.float64)
    times = interleaved({"loops": loop_step(*tiny), "bpcore": bpcore_step(*tiny)}, max(3, args.rounds // 5), 3)
    loops, mine = statistics.median(times["loops"]), statistics.median(times["bpcore"])
    print(f"naive loops vs bpcore, forward + backward, x {TINY_X}, weight {TINY_W}, float64:")
    print(f"  loops {loops * 1e3:.1f} ms   bpcore {mine * 1e6:.0f} us   loops/bpcore = {loops / mine:.0f}x")
    per_multiply_add = loops / multiply_adds(TINY_X, TINY_W)
    loops_main = per_multiply_add * multiply_adds(MAIN_X, MAIN_W)
    print(f"  loops extrapolated to x {MAIN_X}: about {loops_main:.0f} s per step\n")

    print(f"Conv2d forward + backward, x {MAIN_X}, weight {MAIN_W}, padding 1, single-threaded:")
    print(f"{'dtype':<9}{'bpcore ms':>10}{'torch ms':>10}{'bp/torch':>10}{'loops/bp (extrapolated)':>26}")
    for dtype in (np.float32, np.float64):
        problem = random_problem(MAIN_X, MAIN_W, dtype)
        steps = {"bpcore": bpcore_step(*problem)}
        if torch is not None:
            steps["torch"] = torch_step(torch, *problem)
        times = interleaved(steps, args.rounds, 5)
        mine = statistics.median(times["bpcore"])
        torch_cols = ("", "")
        if "torch" in times:
            ratio = statistics.median(b / t for b, t in zip(times["bpcore"], times["torch"], strict=True))
            torch_cols = (f"{statistics.median(times['torch']) * 1e3:.2f}", f"{ratio:.2f}")
        name = np.dtype(dtype).name
        print(f"{name:<9}{mine * 1e3:>10.2f}{torch_cols[0]:>10}{torch_cols[1]:>10}{loops_main / mine:>26.0f}")


if __name__ == "__main__":
    main()
