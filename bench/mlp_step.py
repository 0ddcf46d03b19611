"""One MLP training step (forward, backward, SGD update) in float32: bpcore (eager, and replayed by
bp.compile) against a hand-written numpy step of the same math, and against PyTorch on the CPU and
JAX with the whole step jitted when they are installed (neither is a dependency).

    .venv/bin/python bench/mlp_step.py [--rounds 15] [--batches 1]

The three implementations are timed in interleaved rounds in one process, so machine noise hits
them alike; the ratios are medians over rounds. All run single-threaded (OpenBLAS through
threadpoolctl, PyTorch through set_num_threads, XLA through XLA_FLAGS), so the comparison is of the
same arithmetic. Every call gets the same batch unless --batches K is given: then the calls cycle
through K different batches (the same ones for every implementation), as a training loop does. For
bp.compile that is the cheaper case: an argument that was equal on its first two calls has its bytes
compared before each replay (a frozen array computed from it would otherwise go unnoticed).
Targets (bpcore / numpy): <= 1.6, <= 1.3, <= 1.05 for the three sizes; faster than PyTorch on
the two small ones; within 1.2x of it on the large one; and bpcore's backward <= 2.3x its
forward on the large size. bp.compile (compiled / numpy): <= 1.25, <= 1.15, <= 1.03, and faster
than JAX's jitted step on the two small sizes.
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import time

import numpy as np

import bpcore as bp

F = bp.nn.functional
SIZES = [((2, 16, 16, 2), 32), ((64, 128, 10), 64), ((784, 256, 256, 10), 128)]
LR = 0.01


def make_weights(widths, seed=0):
    """PyTorch-style uniform init, float32; weights (out, in) as in nn.Linear."""
    rng = np.random.default_rng(seed)
    layers = []
    for fan_in, fan_out in itertools.pairwise(widths):
        bound = 1 / np.sqrt(fan_in)
        w = rng.uniform(-bound, bound, (fan_out, fan_in)).astype(np.float32)
        b = rng.uniform(-bound, bound, fan_out).astype(np.float32)
        layers.append((w, b))
    return layers


class NumpyMLP:
    """The same network and step written directly in numpy: the floor a numpy engine can reach."""

    def __init__(self, weights):
        self.params = [(w.copy(), b.copy()) for w, b in weights]

    def step(self, x, y):
        activations, pre = [x], []
        for i, (w, b) in enumerate(self.params):
            z = activations[-1] @ w.T + b
            pre.append(z)
            activations.append(np.maximum(z, 0) if i < len(self.params) - 1 else z)
        logits = activations[-1]
        shifted = logits - logits.max(axis=1, keepdims=True)
        exp = np.exp(shifted)
        probs = exp / exp.sum(axis=1, keepdims=True)
        n = len(y)
        loss = -np.log(probs[np.arange(n), y]).mean()
        delta = probs
        delta[np.arange(n), y] -= 1
        delta /= n
        for i in range(len(self.params) - 1, -1, -1):
            w, b = self.params[i]
            grad_w, grad_b = delta.T @ activations[i], delta.sum(axis=0)
            if i > 0:
                delta = (delta @ w) * (pre[i - 1] > 0)
            w -= LR * grad_w
            b -= LR * grad_b
        return loss


class BpcoreMLP:
    def __init__(self, weights):
        layers = []
        for w, b in weights:
            linear = bp.nn.Linear(w.shape[1], w.shape[0])
            linear.weight = bp.nn.Parameter(w.copy())
            linear.bias = bp.nn.Parameter(b.copy())
            layers += [linear, bp.nn.ReLU()]
        self.model = bp.nn.Sequential(*layers[:-1])
        self.optimizer = bp.optim.SGD(self.model.parameters(), lr=LR)

    def step(self, x, y):
        self.optimizer.zero_grad()
        loss = F.cross_entropy(self.model(bp.Tensor(x)), y)
        loss.backward()
        self.optimizer.step()
        return loss

    def forward_backward_times(self, x, y, repeats):
        forward, backward = [], []
        for _ in range(repeats):
            self.optimizer.zero_grad()
            t0 = time.perf_counter()
            loss = F.cross_entropy(self.model(bp.Tensor(x)), y)
            t1 = time.perf_counter()
            loss.backward()
            t2 = time.perf_counter()
            forward.append(t1 - t0)
            backward.append(t2 - t1)
        return statistics.median(forward), statistics.median(backward)


class CompiledMLP(BpcoreMLP):
    """The same bpcore step, wrapped in bp.compile: traced once, checked once, then replayed."""

    def __init__(self, weights):
        super().__init__(weights)
        self.step = bp.compile(super().step)


class JaxMLP:
    """The same network with the whole step (forward, grad, SGD update) under jax.jit, float32 on the CPU."""

    def __init__(self, weights):
        import jax
        import jax.numpy as jnp

        self.params = [(jnp.asarray(w), jnp.asarray(b)) for w, b in weights]

        def loss_fn(params, x, y):
            h = x
            for i, (w, b) in enumerate(params):
                h = h @ w.T + b
                if i < len(params) - 1:
                    h = jnp.maximum(h, 0)
            log_probs = jax.nn.log_softmax(h, axis=1)
            return -jnp.mean(log_probs[jnp.arange(len(y)), y])

        @jax.jit
        def step(params, x, y):
            loss, grads = jax.value_and_grad(loss_fn)(params, x, y)
            return [(w - LR * gw, b - LR * gb) for (w, b), (gw, gb) in zip(params, grads, strict=True)], loss

        self._step = step

    def step(self, x, y):
        self.params, loss = self._step(self.params, x, y)
        loss.block_until_ready()
        return loss


class TorchMLP:
    def __init__(self, weights):
        import torch

        self.torch = torch
        torch.set_num_threads(1)
        layers = []
        for w, b in weights:
            linear = torch.nn.Linear(w.shape[1], w.shape[0])
            with torch.no_grad():
                linear.weight.copy_(torch.from_numpy(w))
                linear.bias.copy_(torch.from_numpy(b))
            layers += [linear, torch.nn.ReLU()]
        self.model = torch.nn.Sequential(*layers[:-1])
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=LR)

    def step(self, x, y):
        self.optimizer.zero_grad()
        loss = self.torch.nn.functional.cross_entropy(self.model(x), y)
        loss.backward()
        self.optimizer.step()
        return loss


def per_step_seconds(step, batches, steps):
    """Seconds per call of ``step(x, y)``, the calls cycling through ``batches``."""
    t0 = time.perf_counter()
    for i in range(steps):
        step(*batches[i % len(batches)])
    return (time.perf_counter() - t0) / steps


def main() -> None:
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--batches", type=int, default=1, help="different batches the calls cycle through")
    args = parser.parse_args()
    try:
        import torch
    except ImportError:
        torch = None
        print("PyTorch is not installed: no torch column (pip install torch to add it)")
    # XLA's CPU backend runs its own thread pool: one thread, as for BLAS and PyTorch
    os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")
    try:
        import jax
    except ImportError:
        jax = None
        print("JAX is not installed: no jitted-step column (pip install jax to add it)")
    if jax is not None:
        jax.config.update("jax_platforms", "cpu")
    print("every call gets the same batch" if args.batches == 1 else
          f"the calls cycle through {args.batches} different batches (the same for every implementation)")
    print(f"{'size':<20}{'batch':>6}{'numpy us':>10}{'bpcore us':>11}{'torch us':>10}{'bp/numpy':>10}{'bp/torch':>10}"
          f"{'compiled us':>13}{'comp/numpy':>12}{'jax us':>9}{'jax/numpy':>11}{'comp/jax':>10}")
    for widths, batch in SIZES:
        rng = np.random.default_rng(1)
        batches = [(rng.standard_normal((batch, widths[0])).astype(np.float32),
                    rng.integers(0, widths[-1], size=batch)) for _ in range(args.batches)]
        x, y = batches[0]
        weights = make_weights(widths)
        runners = {"numpy": NumpyMLP(weights), "bpcore": BpcoreMLP(weights), "compiled": CompiledMLP(weights)}
        inputs = {"numpy": batches, "bpcore": batches, "compiled": batches}
        if jax is not None:
            runners["jax"] = JaxMLP(weights)
            inputs["jax"] = [(jax.numpy.asarray(bx), jax.numpy.asarray(by)) for bx, by in batches]
        if torch is not None:
            runners["torch"] = TorchMLP(weights)
            inputs["torch"] = [(torch.from_numpy(bx), torch.from_numpy(by)) for bx, by in batches]
        steps = 200 if widths[0] < 100 else 20
        times = {name: [] for name in runners}
        for name, runner in runners.items():  # warm-up
            per_step_seconds(runner.step, inputs[name], 5)
        for _ in range(args.rounds):
            for name, runner in runners.items():
                times[name].append(per_step_seconds(runner.step, inputs[name], steps))
        ratio_np = statistics.median(b / n for b, n in zip(times["bpcore"], times["numpy"], strict=True))
        med = {name: statistics.median(t) * 1e6 for name, t in times.items()}
        torch_cols = ("", "")
        if "torch" in times:
            ratio_torch = statistics.median(b / t for b, t in zip(times["bpcore"], times["torch"], strict=True))
            torch_cols = (f"{med['torch']:.1f}", f"{ratio_torch:.2f}")
        ratio_compiled = statistics.median(c / n for c, n in zip(times["compiled"], times["numpy"], strict=True))
        jax_cols = ("", "", "")
        if "jax" in times:
            ratio_jax = statistics.median(j / n for j, n in zip(times["jax"], times["numpy"], strict=True))
            compiled_vs_jax = statistics.median(c / j for c, j in zip(times["compiled"], times["jax"], strict=True))
            jax_cols = (f"{med['jax']:.1f}", f"{ratio_jax:.2f}", f"{compiled_vs_jax:.2f}")
        label = "-".join(map(str, widths))
        print(
            f"{label:<20}{batch:>6}{med['numpy']:>10.1f}{med['bpcore']:>11.1f}{torch_cols[0]:>10}"
            f"{ratio_np:>10.2f}{torch_cols[1]:>10}{med['compiled']:>13.1f}{ratio_compiled:>12.2f}"
            f"{jax_cols[0]:>9}{jax_cols[1]:>11}{jax_cols[2]:>10}"
        )
        replay = runners["compiled"].step
        if replay.fallback_reason is not None:
            print(f"  bp.compile ran eagerly on {label}: {replay.fallback_reason}")
        if widths[0] > 100:
            fwd, bwd = runners["bpcore"].forward_backward_times(x, y, 30)
            print(
                f"  bpcore on {label}: forward {fwd * 1e6:.0f} us, backward {bwd * 1e6:.0f} us, "
                f"backward/forward = {bwd / fwd:.2f} (target <= 2.3)"
            )


if __name__ == "__main__":
    main()
