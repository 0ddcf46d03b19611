"""Where the eager engine's microseconds go on the small MLP steps of bench/mlp_step.py: numpy's own work
against bookkeeping, part by part.

    .venv/bin/python bench/eager_profile.py [--passes 21] [--sizes 0 1]

"bare" rows run the very numpy calls bpcore's step makes (each primitive's forward, each VJP rule, the
SGD update) with no engine around them, so eager minus bare is bookkeeping. The walk is timed as shipped
and as the same heap walk with its checks taken out (in-place epoch check, hooks, retain_grad, per-edge
shape and dtype checks, the aliasing check before a leaf adopts an array): their difference is what those
checks cost. CPU time (time.process_time, so other processes on the machine count less), the minimum
over interleaved passes of 200 calls each; BLAS on one thread.
"""

from __future__ import annotations

import argparse
import time
import timeit
from heapq import heappop, heappush

import numpy as np
from mlp_step import SIZES, BpcoreMLP, NumpyMLP, make_weights

import bpcore as bp
from bpcore import ops
from bpcore.nn import functional as F
from bpcore.tensor import run_backward


def _walk_without_checks(root, grad) -> None:
    """run_backward's heap walk and gradient sums, nothing else (for the comparison only)."""
    grads, summed, waiting = {root: grad}, set(), [(-root._number, root)]
    while waiting:
        node = heappop(waiting)[1]
        g = grads.pop(node)
        if node.op is None:
            if node.grad is None:
                node.grad = g
            else:
                node.grad += g
            continue
        rules, saved, inputs = node._vjps, node._saved, node.inputs
        for index in node._grad_inputs:
            x = inputs[index]
            gx = saved[index](g) if rules is None else rules[index](g, *saved)
            previous = grads.get(x)
            if previous is None:
                grads[x] = gx
                heappush(waiting, (-x._number, x))
            elif x in summed:
                previous += gx
            else:
                grads[x] = previous + gx
                summed.add(x)


def profile(size: int, passes: int) -> None:
    widths, batch = SIZES[size]
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, widths[0])).astype(np.float32)
    y = rng.integers(0, widths[-1], batch)
    weights = make_weights(widths)
    reference, eager = NumpyMLP(weights), BpcoreMLP(weights)
    layers = [m for m in eager.model if isinstance(m, bp.nn.Linear)]
    params = [(m.weight.data, m.bias.data) for m in layers]
    linear, relu = F._linear, ops.relu
    kept = {}

    def bare_forward():
        h, saved = x, []
        for i, (w, b) in enumerate(params):
            h, s = linear.forward(h, w, b)
            saved.append(s)
            if i < len(params) - 1:
                h, s = relu.forward(h)
                saved.append(s)
        loss, kept["loss_vjps"] = F._cross_entropy.forward(h, targets=y, reduction="mean")
        kept["saved"] = saved
        return loss

    def bare_backward():
        saved, k = kept["saved"], len(kept["saved"]) - 1
        g = kept["loss_vjps"][0](np.array(1, np.float32))
        grads = []
        for i in range(len(params) - 1, -1, -1):
            s = saved[k]
            k -= 1
            grads += [linear.vjps[1](g, *s), linear.vjps[2](g, *s)]
            if i > 0:
                g = relu.vjps[0](linear.vjps[0](g, *s), *saved[k])
                k -= 1
        kept["grads"] = grads

    def bare_update():
        grads = iter(kept["grads"])
        for w, b in reversed(params):
            w -= 0.0 * next(grads)
            b -= 0.0 * next(grads)

    xt = bp.Tensor(x)
    logits = eager.model(xt)

    def forward():
        eager.optimizer.zero_grad()
        return F.cross_entropy(eager.model(xt), y)

    jobs = {
        "numpy step (reference)": lambda: reference.step(x, y),
        "bpcore eager step": lambda: eager.step(x, y),
        "bare forward + loss": bare_forward,
        "bare VJPs": bare_backward,
        "bare SGD update": bare_update,
        "model forward": lambda: eager.model(xt),
        "cross_entropy": lambda: F.cross_entropy(logits, y),
        "bare cross_entropy forward": lambda: F._cross_entropy.forward(logits.data, targets=y, reduction="mean"),
        "zero_grad + forward + loss": forward,
        "+ backward()": lambda: forward().backward(),
        "+ walk without checks": lambda: _walk_without_checks(forward(), np.array(1, np.float32)),
        "+ run_backward": lambda: run_backward(forward(), np.array(1, np.float32)),
        "optimizer step": eager.optimizer.step,
    }
    bare_forward()
    bare_backward()
    forward().backward()
    best = dict.fromkeys(jobs, float("inf"))
    for _ in range(passes):
        for name, fn in jobs.items():
            best[name] = min(best[name], timeit.timeit(fn, number=200, timer=time.process_time) / 200 * 1e6)
    ref, step = best["numpy step (reference)"], best["bpcore eager step"]
    bare = best["bare forward + loss"] + best["bare VJPs"] + best["bare SGD update"]
    fwd = best["zero_grad + forward + loss"]
    backward, stripped = best["+ backward()"] - fwd, best["+ walk without checks"] - fwd
    ce_numpy = best["bare cross_entropy forward"]
    print(f"\nMLP {'-'.join(map(str, widths))}, batch {batch}: numpy step {ref:.1f} us, bpcore eager {step:.1f} us "
          f"({step / ref:.2f}x); the numpy calls bpcore makes, run bare: {bare:.1f} us ({bare / ref:.2f}x)")
    rows = [
        ("forward: model (Linear/ReLU ops)", best["model forward"], best["bare forward + loss"] - ce_numpy,
         "Module dispatch, F.linear's argument check, Primitive.__call__ (unwrap, record the node)"),
        ("forward: cross_entropy", best["cross_entropy"], ce_numpy,
         "reduction, label_smoothing, shape and empty-batch checks, target dtype/range validation; the node"),
        ("backward()", backward, best["bare VJPs"],
         f"heap walk and sums {stripped - best['bare VJPs']:.1f} us; its checks {backward - stripped:.1f} us"),
        ("optimizer step (SGD)", best["optimizer step"], best["bare SGD update"], "per-parameter grad check"),
    ]
    rest = step - sum(r[1] for r in rows)
    rows.append(("the rest of the step", rest, 0.0,
                 "zero_grad, Tensor(x), freeing the graph, and parts timed alone running warmer than in the step"))
    print(f"  {'part':40s} {'eager us':>9s} {'numpy us':>9s} {'bookkeeping':>12s}  what the bookkeeping is")
    for name, total, numpy_part, what in rows:
        print(f"  {name:40s} {total:9.1f} {numpy_part:9.1f} {total - numpy_part:12.1f}  {what}")


def main() -> None:
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--passes", type=int, default=21)
    parser.add_argument("--sizes", type=int, nargs="+", default=[0, 1])
    args = parser.parse_args()
    for size in args.sizes:
        profile(size, args.passes)


if __name__ == "__main__":
    main()
