"""Where the eager engine's microseconds go on the small MLP steps of bench/mlp_step.py: numpy's own work
against bookkeeping, part by part.

    .venv/bin/python bench/eager_profile.py [--passes 21] [--sizes 0 1]

"bare" rows run the very numpy calls bpcore's step makes (each primitive's forward, each VJP rule, the
SGD update) with no engine around them, so eager minus bare is bookkeeping. The walk is timed as shipped
and as the same heap walk with its checks taken out (in-place epoch check, hooks, retain_grad, per-edge
shape and dtype checks, the aliasing check before a leaf adopts an array): their difference is what those
checks cost. CPU time (time.process_time, so other processes on the machine count less), the minimum
over interleaved passes of 200 calls each; BLAS on one thread.

    .venv/bin/python bench/eager_profile.py --whole [--rounds 21] [--sizes 2] [--sweeps 0 0.5 1 2 4]

--whole times whole steps instead, in interleaved rounds (as bench/mlp_step.py does): the numpy step,
the bare calls as one step, eager and bp.compile; then it asks why the bookkeeping of the large step
costs more than the small nets' profile says. The large step's arrays (2 to 3 MB) overflow this
machine's L2 cache, so after each big matmul the engine's Python objects must come back from further
away. The cache-pressure rows take the tiny net (bookkeeping and little else) and make every linear and
relu forward and VJP first write a buffer of S MB, in eager and in the bare step alike: eager minus bare
is then the bookkeeping with caches as cold as S makes them. Between the two, the same graph is run on
ever bigger arrays, with nothing wrapped: its bookkeeping is the same Python, so eager - bare should stay
flat unless the arrays make it dearer.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time
import timeit
from heapq import heappop, heappush

import numpy as np
from mlp_step import LR, SIZES, BpcoreMLP, CompiledMLP, NumpyMLP, make_weights

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


class BareStep:
    """The numpy calls bpcore's eager step makes, in its order (forward, the VJPs by creation number, SGD
    after the whole backward, gradients kept until the next step as .grad keeps them), with no engine."""

    def __init__(self, weights, lr=LR):
        self.params, self.lr, self.grads = [(w.copy(), b.copy()) for w, b in weights], lr, None

    def forward(self, x, y):
        linear, relu = F._linear, ops.relu
        h, self.saved = x, []
        for i, (w, b) in enumerate(self.params):
            h, s = linear.forward(h, w, b)
            self.saved.append(s)
            if i < len(self.params) - 1:
                h, s = relu.forward(h)
                self.saved.append(s)
        loss, self.loss_vjps = F._cross_entropy.forward(h, targets=y, reduction="mean")
        return loss

    def backward(self):
        linear, relu = F._linear, ops.relu
        saved, k = self.saved, len(self.saved) - 1
        g = self.loss_vjps[0](np.array(1, np.float32))
        grads = []
        for i in range(len(self.params) - 1, -1, -1):
            s = saved[k]
            k -= 1
            gx = linear.vjps[0](g, *s) if i > 0 else None
            grads.append((linear.vjps[1](g, *s), linear.vjps[2](g, *s)))
            if i > 0:
                g = relu.vjps[0](gx, *saved[k])
                k -= 1
        self.grads = grads[::-1]

    def update(self):
        for (w, b), (gw, gb) in zip(self.params, self.grads, strict=True):
            w -= self.lr * gw
            b -= self.lr * gb

    def step(self, x, y):
        self.grads = None  # zero_grad
        loss = self.forward(x, y)
        self.backward()
        self.saved = self.loss_vjps = None  # the graph, freed when eager's loss goes
        self.update()
        return loss


def _check_bare(weights, x, y) -> None:
    """The bare step is bpcore's step: the same linear and relu forward and VJP calls in the same order, on
    arrays of the same shapes, and the same loss, gradients and new weights, bit for bit."""
    bare, eager = BareStep(weights), BpcoreMLP(weights)
    logs = {bare: [], eager: []}

    def logged(name, fn):
        def call(*args, **settings):
            log.append((name, *(getattr(a, "shape", None) for a in args)))
            return fn(*args, **settings)
        return call

    for _ in range(2):
        with _wrapped(logged):
            log = logs[bare]
            loss = bare.step(x, y)
            log = logs[eager]
            eager_loss = eager.step(x, y)
        if logs[bare] != logs[eager]:
            raise AssertionError(f"the bare step no longer makes bpcore's numpy calls: bare {logs[bare]}, "
                                 f"eager {logs[eager]}")
        layers = [m for m in eager.model if isinstance(m, bp.nn.Linear)]
        same = [np.array_equal(loss, eager_loss.data)]
        for (w, b), (gw, gb), m in zip(bare.params, bare.grads, layers, strict=True):
            same += [np.array_equal(w, m.weight.data), np.array_equal(b, m.bias.data),
                     np.array_equal(gw, m.weight.grad), np.array_equal(gb, m.bias.grad)]
        if not all(same):
            raise AssertionError("the bare step no longer makes bpcore's numpy calls: its numbers differ from eager's")


def _cpu_seconds_per_step(step, batches, steps: int) -> float:
    t0 = time.process_time()
    for i in range(steps):
        step(*batches[i % len(batches)])
    return (time.process_time() - t0) / steps


def _interleaved(runners: dict, batches, rounds: int, steps: int) -> dict[str, list[float]]:
    """CPU seconds per step of each runner, round after round (so machine noise hits them alike)."""
    for runner in runners.values():
        _cpu_seconds_per_step(runner.step, batches, 5)
    times = {name: [] for name in runners}
    for _ in range(rounds):
        for name, runner in runners.items():
            times[name].append(_cpu_seconds_per_step(runner.step, batches, steps))
    return times


def whole_steps(size: int, rounds: int, different: int = 8) -> None:
    widths, batch = SIZES[size]
    x, y, weights = _data(size)
    _check_bare(weights, x, y)
    rng = np.random.default_rng(1)
    batches = [(x, y)] + [(rng.standard_normal(x.shape).astype(np.float32), rng.integers(0, widths[-1], batch))
                          for _ in range(different - 1)]
    names = ["numpy step (reference)", "bare: bpcore's numpy calls as one step", "bpcore eager", "bp.compile"]
    columns = []
    for given in (batches[:1], batches):
        runners = dict(zip(names, (NumpyMLP(weights), BareStep(weights), BpcoreMLP(weights), CompiledMLP(weights)),
                           strict=True))
        columns.append(_interleaved(runners, given, rounds, 200 if widths[0] < 100 else 20))
    print(f"\nMLP {'-'.join(map(str, widths))}, batch {batch}: whole steps, CPU time, medians of {rounds} interleaved "
          f"rounds; every call given the same batch, or the calls cycling through {different} batches")
    print(f"  {'':40s} {'same batch':>40s} {f'{different} batches':>40s}")
    print(f"  {'step':40s}" + f" {'us':>8s} {'/ numpy':>8s} {'- bare us (quartiles)':>22s}" * 2)
    for name in names:
        row = f"  {name:40s}"
        for times in columns:
            t, ref, bare = times[name], times[names[0]], times[names[1]]
            ratio = statistics.median(a / b for a, b in zip(t, ref, strict=True))
            row += f" {statistics.median(t) * 1e6:8.1f} {ratio:8.3f} {_spread(t, bare):>22s}"
        print(row)


def _spread(times, reference) -> str:
    """The median of the per-round differences in us, with their quartiles."""
    d = [(a - b) * 1e6 for a, b in zip(times, reference, strict=True)]
    q1, q2, q3 = statistics.quantiles(d, n=4) if len(d) > 1 else (d[0],) * 3
    return f"{q2:.0f} ({q1:.0f}..{q3:.0f})"


GROWING = [((2, 16, 16, 2), 32), ((64, 64, 64, 10), 64), ((256, 128, 128, 10), 128), ((512, 192, 192, 10), 128),
           ((784, 256, 256, 10), 128)]


def growing_sizes(rounds: int) -> None:
    """The same graph (3 Linear, 2 ReLU, cross_entropy: the same bookkeeping) on ever bigger arrays."""
    print(f"\nThe same graph on bigger arrays: eager - bare, CPU time, medians of {rounds} interleaved rounds")
    print(f"  {'MLP':>16s} {'batch':>6s} {'arrays MB':>10s} {'bare us':>9s} {'eager - bare us (quartiles)':>28s}")
    for widths, batch in GROWING:
        rng = np.random.default_rng(0)
        x = rng.standard_normal((batch, widths[0])).astype(np.float32)
        y, weights = rng.integers(0, widths[-1], batch), make_weights(widths)
        _check_bare(weights, x, y)
        # x; weights and their gradients; each layer's output, its gradient, and relu's mask and output
        megabytes = (x.nbytes + 2 * sum(w.nbytes + b.nbytes for w, b in weights)
                     + 4 * batch * sum(widths[1:]) * 2) / 2**20
        steps = max(10, int(2e5 / (batch * sum(w.size for w, _ in weights) / 1e3 + 100)))
        times = _interleaved({"eager": BpcoreMLP(weights), "bare": BareStep(weights)}, [(x, y)], rounds, steps)
        print(f"  {'-'.join(map(str, widths)):>16s} {batch:6d} {megabytes:10.2f} "
              f"{statistics.median(times['bare']) * 1e6:9.0f} {_spread(times['eager'], times['bare']):>28s}")


@contextlib.contextmanager
def _wrapped(wrap):
    """Every linear and relu forward and VJP function replaced by ``wrap(name, fn)`` while inside (a node keeps
    its primitive's VJPs when it is recorded, and Primitive.__call__ reads ``forward`` on each call)."""
    linear, relu = F._linear, ops.relu
    kept = linear.forward, linear.vjps, relu.forward, relu.vjps
    linear.forward, relu.forward = wrap("linear", kept[0]), wrap("relu", kept[2])
    linear.vjps = tuple(wrap(f"linear d{i}", f) for i, f in enumerate(kept[1]))
    relu.vjps = tuple(wrap(f"relu d{i}", f) for i, f in enumerate(kept[3]))
    try:
        yield
    finally:
        linear.forward, linear.vjps, relu.forward, relu.vjps = kept


@contextlib.contextmanager
def _sweeping(nbytes: int):
    """Every linear and relu forward and VJP first adds 1 to a buffer of ``nbytes`` (evicting the caches);
    yields the buffer (None for 0 bytes: nothing is wrapped)."""
    if not nbytes:
        yield None
        return
    buffer = np.zeros(nbytes // 4, np.float32)

    def sweep(_name, fn):
        def swept(*args, **settings):
            buffer.__iadd__(1)
            return fn(*args, **settings)
        return swept

    with _wrapped(sweep):
        yield buffer


def cache_pressure(sweeps: list[float], rounds: int) -> None:
    widths, batch = SIZES[0]
    x, y, weights = _data(0)
    print(f"\nBookkeeping with the caches cold: MLP {'-'.join(map(str, widths))}, batch {batch}; every linear and "
          f"relu forward and VJP first writes S MB (eager and bare alike); medians of {rounds} interleaved rounds")
    print(f"  {'S (MB)':>8s} {'eager us':>9s} {'bare us':>9s} {'eager - bare (bookkeeping) us (quartiles)':>42s}")
    for mb in sweeps:
        with _sweeping(int(mb * 2**20)):
            times = _interleaved({"eager": BpcoreMLP(weights), "bare": BareStep(weights)}, [(x, y)], rounds, 100)
        print(f"  {mb:8.1f} {statistics.median(times['eager']) * 1e6:9.1f} "
              f"{statistics.median(times['bare']) * 1e6:9.1f} {_spread(times['eager'], times['bare']):>42s}")


def _data(size: int):
    widths, batch = SIZES[size]
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, widths[0])).astype(np.float32)
    return x, rng.integers(0, widths[-1], batch), make_weights(widths)


def profile(size: int, passes: int) -> None:
    widths, batch = SIZES[size]
    x, y, weights = _data(size)
    _check_bare(weights, x, y)
    reference, eager, bare = NumpyMLP(weights), BpcoreMLP(weights), BareStep(weights)

    xt = bp.Tensor(x)
    logits = eager.model(xt)

    def forward():
        eager.optimizer.zero_grad()
        return F.cross_entropy(eager.model(xt), y)

    jobs = {
        "numpy step (reference)": lambda: reference.step(x, y),
        "bpcore eager step": lambda: eager.step(x, y),
        "bare forward + loss": lambda: bare.forward(x, y),
        "bare VJPs": bare.backward,
        "bare SGD update": bare.update,
        "model forward": lambda: eager.model(xt),
        "cross_entropy": lambda: F.cross_entropy(logits, y),
        "bare cross_entropy forward": lambda: F._cross_entropy.forward(logits.data, targets=y, reduction="mean"),
        "zero_grad + forward + loss": forward,
        "+ backward()": lambda: forward().backward(),
        "+ walk without checks": lambda: _walk_without_checks(forward(), np.array(1, np.float32)),
        "+ run_backward": lambda: run_backward(forward(), np.array(1, np.float32)),
        "optimizer step": eager.optimizer.step,
    }
    bare.forward(x, y)
    bare.backward()
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
    parser.add_argument("--sizes", type=int, nargs="+", default=None, help="0 tiny, 1 mid, 2 large")
    parser.add_argument("--whole", action="store_true", help="whole steps, and the bookkeeping with cold caches")
    parser.add_argument("--rounds", type=int, default=21, help="interleaved rounds of whole steps (with --whole)")
    parser.add_argument("--sweeps", type=float, nargs="+", default=[0, 0.5, 1, 2, 4], help="MB written (--whole)")
    args = parser.parse_args()
    if not args.whole:
        for size in args.sizes or [0, 1]:
            profile(size, args.passes)
        return
    for size in args.sizes or [2]:
        whole_steps(size, args.rounds)
    growing_sizes(args.rounds)
    cache_pressure(args.sweeps, args.rounds)


if __name__ == "__main__":
    main()
