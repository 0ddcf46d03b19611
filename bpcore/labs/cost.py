"""Notebook 08 (cost and alternatives), the cost half: compute, memory, checkpointing, forward vs reverse mode.

Four interview questions, answered with numbers this file computes:

1. "How expensive is the backward pass?"  About twice the forward pass. A linear layer
   Y = X W^T with X (N, a) and W (b, a) costs one matmul forward, 2Nab FLOPs (a multiply and an
   add per term). Backward needs two products of the same size: dX = G W (2Nab) and dW = G^T X
   (2Nab), so 4Nab: exactly 2x. The first layer needs no dX (the data wants no gradient), so its
   backward is 1x; the bias and elementwise layers add only O(N b) terms. A training step is
   therefore about 3 forward passes of arithmetic. Elementwise layers (ReLU, tanh) have few FLOPs
   either way: their time goes to moving memory, so their measured time ratio says little.

2. "What memory does backward need?"  Every value that a VJP will read, i.e. the activations
   of every layer, kept from the forward pass until backward reaches them. For an MLP that is
   about 2 N w numbers per hidden layer (the linear output and the activation): linear in the
   depth and linear in the batch size N. Parameters and their gradients do not grow with N.

3. "What is gradient checkpointing?"  Trade compute for memory: keep only the inputs of k
   segments, run each segment's inside without a graph, and recompute it (with a graph) when
   backward arrives. With n layers, memory ~ n/k (one segment rebuilt at a time) + k (the kept
   boundaries), smallest at k ~ sqrt(n): O(sqrt n) memory for about one extra forward pass.
   The mechanism is engine (:func:`bpcore.checkpoint`); this file measures it.

4. "Forward mode or reverse mode?"  For f: R^n -> R^m, forward mode builds the Jacobian in n
   passes (one per input direction), reverse mode in m backward passes (one per output): a loss
   (m = 1) wants reverse mode, a curve (n = 1) forward mode. :func:`cost_comparison` counts both.

Graph memory is counted exactly as the bytes of every op-produced value reachable from the
loss (:func:`bpcore.graph.graph_bytes`); ``tracemalloc`` gives the process's true peak as a cross-check.

Claims the tests prove on these numbers (tests/labs/test_cost.py): a Linear layer's backward is
exactly twice its forward in matmul FLOPs (once for the first layer); graph memory equals the
formula and is linear in depth and batch; checkpointed gradients equal plain ones bit for bit
while holding less graph memory; forward mode takes exactly n passes and reverse mode m.
"""

from __future__ import annotations

import itertools
import math
import time
import tracemalloc
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from bpcore.checkpointing import checkpointed_sequential, recorded_recomputations
from bpcore.forward_mode import Dual, _array, jacobian_forward, jacobian_reverse
from bpcore.graph import graph_bytes
from bpcore.labs import one_blas_thread
from bpcore.nn import functional as F
from bpcore.nn.layers import Linear, ReLU, Sequential, Tanh
from bpcore.nn.module import Module
from bpcore.tensor import Tensor

# ============================================================================ (a) FLOPs, by hand


@dataclass
class FlopCount:
    """FLOPs of one layer, term by term (one multiply, add, compare or divide = 1 FLOP; exp, log and
    tanh count as 1 each, although they cost 10-20 in practice)."""

    forward: dict[str, int]
    backward: dict[str, int]

    @property
    def forward_total(self) -> int:
        return sum(self.forward.values())

    @property
    def backward_total(self) -> int:
        return sum(self.backward.values())

    @property
    def ratio(self) -> float:
        """Backward FLOPs / forward FLOPs."""
        return self.backward_total / self.forward_total

    def __add__(self, other: FlopCount) -> FlopCount:
        def merged(a, b):
            return {k: a.get(k, 0) + b.get(k, 0) for k in {**a, **b}}

        return FlopCount(merged(self.forward, other.forward), merged(self.backward, other.backward))


def linear_flops(batch: int, in_features: int, out_features: int, bias: bool = True, input_grad: bool = True):
    """Y = X W^T + bias with X (N, a), W (b, a). Forward 2Nab (+ Nb); backward 4Nab (+ Nb), or 2Nab without dX.

    ``input_grad=False`` is the first layer: nothing upstream wants dX, so the engine never computes it.
    """
    n, a, b = batch, in_features, out_features
    forward = {"X @ W^T": 2 * n * a * b}
    backward = {"dW = G^T X": 2 * n * a * b}
    if input_grad:
        backward["dX = G W"] = 2 * n * a * b
    if bias:
        forward["+ bias"] = n * b
        backward["db = sum_n G"] = n * b
    return FlopCount(forward, backward)


def relu_flops(batch: int, features: int) -> FlopCount:
    """max(x, 0) forward; g * (x > 0) backward: a compare and a multiply per element."""
    n = batch * features
    return FlopCount({"max(x, 0)": n}, {"x > 0": n, "g * mask": n})


def tanh_flops(batch: int, features: int) -> FlopCount:
    """tanh(x) forward; g * (1 - y * y) backward, reusing the stored output y."""
    n = batch * features
    return FlopCount({"tanh": n}, {"y * y": n, "1 - y^2": n, "g * (1 - y^2)": n})


def softmax_cross_entropy_flops(batch: int, classes: int) -> FlopCount:
    """The fused op of ``F.cross_entropy``. Backward is cheap: (softmax - onehot) / N from the saved exp."""
    n, c = batch, classes
    forward = {"max per row": n * c, "x - max": n * c, "exp": n * c, "sum per row": n * c, "log, pick, mean": 3 * n}
    backward = {"exp / sum": n * c, "- onehot": n, "* 1/N": n * c}
    return FlopCount(forward, backward)


def mlp_flops(widths: Sequence[int], batch: int, activation: str = "relu") -> FlopCount:
    """A whole MLP, widths = (in, hidden..., classes), with cross-entropy. Its ratio is just under 2:
    the first layer skips dX, and the elementwise terms are small next to the matmuls."""
    act = relu_flops if activation == "relu" else tanh_flops
    total = FlopCount({}, {})
    for i, (a, b) in enumerate(itertools.pairwise(widths)):
        total = total + linear_flops(batch, a, b, input_grad=i > 0)
        if i < len(widths) - 2:
            total = total + act(batch, b)
    return total + softmax_cross_entropy_flops(batch, widths[-1])


# ============================================================================ (a) time, measured


@dataclass
class LayerCost:
    """One layer: analytic FLOPs and measured seconds (best of several runs), forward and backward."""

    name: str
    shapes: str
    flops: FlopCount
    forward_seconds: float
    backward_seconds: float

    @property
    def time_ratio(self) -> float:
        return self.backward_seconds / self.forward_seconds


def time_forward_backward(build: Callable[[], tuple[Tensor, np.ndarray | None]], repeats: int = 5):
    """Best-of-``repeats`` seconds of ``build()`` (the forward, recording a graph) and of its backward.

    ``build`` returns (output, upstream gradient); the gradient is None for a scalar output.
    """
    best_forward = best_backward = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        out, upstream = build()
        middle = time.perf_counter()
        out.backward(upstream)
        end = time.perf_counter()
        best_forward, best_backward = min(best_forward, middle - start), min(best_backward, end - middle)
    return best_forward, best_backward


def layer_costs(batch: int = 256, width: int = 256, classes: int = 10, repeats: int = 5, seed: int = 0):
    """FLOPs and measured forward/backward time of each layer type on (batch, width) inputs.

    The hidden Linear's input requires grad (it is the previous layer's output); the first
    Linear's input is data, so its backward skips dX and costs about as much as its forward.
    """
    rng = np.random.default_rng(seed)
    x_data = rng.standard_normal((batch, width))
    upstream = rng.standard_normal((batch, width))
    linear = Linear(width, width, rng=rng)
    targets = rng.integers(0, classes, size=batch)
    logits_data = rng.standard_normal((batch, classes))

    def hidden(x_requires_grad):
        def build():
            x = Tensor(x_data, requires_grad=x_requires_grad)
            return linear(x), upstream

        return build

    def elementwise(method):
        def build():
            return getattr(Tensor(x_data, requires_grad=True), method)(), upstream

        return build

    def loss():
        return F.cross_entropy(Tensor(logits_data, requires_grad=True), targets), None

    shape = f"({batch}, {width})"
    cases = [
        ("Linear (hidden)", f"{shape} -> {shape}", linear_flops(batch, width, width), hidden(True)),
        ("Linear (first)", f"{shape} -> {shape}", linear_flops(batch, width, width, input_grad=False), hidden(False)),
        ("ReLU", shape, relu_flops(batch, width), elementwise("relu")),
        ("Tanh", shape, tanh_flops(batch, width), elementwise("tanh")),
        ("Softmax + cross-entropy", f"({batch}, {classes})", softmax_cross_entropy_flops(batch, classes), loss),
    ]
    rows = []
    for name, shapes, flops, build in cases:
        forward_seconds, backward_seconds = time_forward_backward(build, repeats)
        rows.append(LayerCost(name, shapes, flops, forward_seconds, backward_seconds))
    linear.zero_grad()
    return rows


def format_layer_costs(rows: Sequence[LayerCost]) -> str:
    """A table for notebooks: FLOPs and times side by side, with both ratios."""
    lines = [
        f"{'layer':<25}{'shapes':<24}{'fwd FLOPs':>12}{'bwd FLOPs':>12}{'ratio':>7}"
        f"{'fwd ms':>9}{'bwd ms':>9}{'ratio':>7}"
    ]
    for r in rows:
        lines.append(
            f"{r.name:<25}{r.shapes:<24}{r.flops.forward_total:>12,}{r.flops.backward_total:>12,}"
            f"{r.flops.ratio:>7.2f}{r.forward_seconds * 1e3:>9.3f}{r.backward_seconds * 1e3:>9.3f}{r.time_ratio:>7.2f}"
        )
    return "\n".join(lines)


# ============================================================================ (b) memory kept for backward


def mlp(depth: int, width: int, in_features: int, classes: int, activation: str = "relu", seed: int = 0):
    """``depth`` Linear layers, with ``activation`` between them: in -> width -> ... -> width -> classes."""
    rng = np.random.default_rng(seed)
    widths = [in_features] + [width] * (depth - 1) + [classes]
    act = ReLU if activation == "relu" else Tanh
    layers: list[Module] = []
    for i, (a, b) in enumerate(itertools.pairwise(widths)):
        layers.append(Linear(a, b, rng=rng))
        if i < depth - 1:
            layers.append(act())
    return Sequential(*layers)


def expected_activation_bytes(depth: int, batch: int, width: int, classes: int, itemsize: int = 8) -> int:
    """The formula: each hidden layer keeps 2 (N, width) arrays (linear output, activation), the last
    layer (N, classes), the loss 1 number. Linear in depth and in batch."""
    return itemsize * ((depth - 1) * 2 * batch * width + batch * classes + 1)


@dataclass
class MemoryCurve:
    """Measured graph bytes against one varying quantity, beside the formula's prediction."""

    varied: str
    values: np.ndarray
    measured_bytes: np.ndarray
    formula_bytes: np.ndarray


def activation_memory(depth: int, batch: int, width: int = 64, in_features: int = 16, classes: int = 10) -> int:
    """Graph bytes of an MLP's cross-entropy loss on one random batch (measured, not computed)."""
    rng = np.random.default_rng(0)
    model = mlp(depth, width, in_features, classes)
    x = Tensor(rng.standard_normal((batch, in_features)))
    loss = F.cross_entropy(model(x), rng.integers(0, classes, size=batch))
    return graph_bytes(loss)


def memory_vs_depth(depths=(1, 2, 4, 8, 16), batch: int = 64, width: int = 64, in_features=16, classes=10):
    measured = [activation_memory(d, batch, width, in_features, classes) for d in depths]
    formula = [expected_activation_bytes(d, batch, width, classes) for d in depths]
    return MemoryCurve("depth", np.array(depths), np.array(measured), np.array(formula))


def memory_vs_batch(batches=(16, 32, 64, 128, 256), depth: int = 4, width: int = 64, in_features=16, classes=10):
    measured = [activation_memory(depth, n, width, in_features, classes) for n in batches]
    formula = [expected_activation_bytes(depth, n, width, classes) for n in batches]
    return MemoryCurve("batch", np.array(batches), np.array(measured), np.array(formula))


# ============================================================================ (c) gradient checkpointing
# ============================================================================ (c) gradient checkpointing, measured


@dataclass
class CheckpointCost:
    """One forward + backward, with ``segments`` checkpointed chunks (0 = no checkpointing)."""

    segments: int
    stored_graph_bytes: int  # held from the end of the forward pass until backward
    recomputed_graph_bytes: int  # the largest segment graph rebuilt during backward (0 without)
    recomputations: int
    peak_traced_bytes: int  # tracemalloc's peak during forward and backward, above the level before
    seconds: float  # best of the repeats, measured without tracemalloc

    @property
    def peak_graph_bytes(self) -> int:
        """Stored values plus the one segment being rebuilt: the most graph memory alive at once."""
        return self.stored_graph_bytes + self.recomputed_graph_bytes


def measure_checkpointing(model: Sequential, x, targets, loss_fn=F.cross_entropy, segments: int = 0, repeats=3):
    """Graph memory, traced peak memory and time of one training step's forward and backward."""
    x = x if isinstance(x, Tensor) else Tensor(np.asarray(x))

    def step():
        output = checkpointed_sequential(model, x, segments) if segments else model(x)
        return loss_fn(output, targets)

    model.zero_grad()
    with recorded_recomputations() as rebuilt:
        loss = step()
        stored = graph_bytes(loss)
        loss.backward()
    del loss

    model.zero_grad()
    was_tracing = tracemalloc.is_tracing()  # a caller's own tracing is left running
    if not was_tracing:
        tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        baseline, _ = tracemalloc.get_traced_memory()
        step().backward()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        if not was_tracing:
            tracemalloc.stop()

    best = math.inf
    for _ in range(repeats):
        model.zero_grad()
        start = time.perf_counter()
        step().backward()
        best = min(best, time.perf_counter() - start)
    return CheckpointCost(segments, stored, max(rebuilt, default=0), len(rebuilt), peak - baseline, best)


@one_blas_thread
def checkpoint_sweep(model: Sequential, x, targets, loss_fn=F.cross_entropy, segment_counts=(2, 3, 4, 6), repeats=3):
    """No checkpointing, then each segment count: memory falls towards ~sqrt(n) segments, time rises."""
    return [measure_checkpointing(model, x, targets, loss_fn, k, repeats) for k in (0, *segment_counts)]


def format_checkpoint_costs(rows: Sequence[CheckpointCost]) -> str:
    lines = [f"{'segments':>9}{'stored KB':>11}{'rebuilt KB':>12}{'peak graph KB':>15}{'traced peak KB':>16}{'ms':>9}"]
    for r in rows:
        lines.append(
            f"{r.segments or 'none':>9}{r.stored_graph_bytes / 1e3:>11.1f}{r.recomputed_graph_bytes / 1e3:>12.1f}"
            f"{r.peak_graph_bytes / 1e3:>15.1f}{r.peak_traced_bytes / 1e3:>16.1f}{r.seconds * 1e3:>9.2f}"
        )
    return "\n".join(lines)


__all__ = [
    "CheckpointCost",
    "FlopCount",
    "JacobianCost",
    "LayerCost",
    "MemoryCurve",
    "activation_memory",
    "checkpoint_sweep",
    "cost_comparison",
    "expected_activation_bytes",
    "format_checkpoint_costs",
    "format_layer_costs",
    "layer_costs",
    "linear_flops",
    "measure_checkpointing",
    "measure_jacobian_cost",
    "memory_vs_batch",
    "memory_vs_depth",
    "mlp",
    "mlp_flops",
    "relu_flops",
    "softmax_cross_entropy_flops",
    "tanh_flops",
    "time_forward_backward",
]


# ============================================================================ (d) forward mode against reverse mode


@dataclass
class JacobianCost:
    """Both modes on one function f: R^n -> R^m, counted and timed.

    ``forward_mode_passes`` counts calls of f on Duals (n); ``reverse_mode_passes`` counts backward
    passes that reached f's output (m), measured with a hook, plus ``reverse_mode_forwards`` (1).
    """

    name: str
    n_inputs: int
    m_outputs: int
    forward_mode_passes: int
    reverse_mode_forwards: int
    reverse_mode_passes: int
    forward_mode_seconds: float
    reverse_mode_seconds: float
    max_abs_difference: float  # between the two Jacobians: both are exact, so ~1e-16

    @property
    def faster(self) -> str:
        return "forward" if self.forward_mode_seconds < self.reverse_mode_seconds else "reverse"

    def __str__(self) -> str:
        return (
            f"{self.name}: R^{self.n_inputs} -> R^{self.m_outputs}   forward mode {self.forward_mode_passes} pass(es) "
            f"{self.forward_mode_seconds * 1e3:.2f} ms   reverse mode {self.reverse_mode_forwards} forward + "
            f"{self.reverse_mode_passes} backward {self.reverse_mode_seconds * 1e3:.2f} ms   faster: {self.faster}"
        )


def measure_jacobian_cost(fn: Callable, x, name: str = "f") -> JacobianCost:
    """Build the Jacobian of ``fn`` at ``x`` both ways, counting the passes by instrumenting ``fn``."""
    counts = {"dual_calls": 0, "tensor_calls": 0, "backward": 0}

    def count_backward(g):
        counts["backward"] += 1

    def counted(z):
        y = fn(z)
        if isinstance(z, Dual):
            counts["dual_calls"] += 1
        else:
            counts["tensor_calls"] += 1
            if isinstance(y, Tensor) and y.requires_grad:
                y.register_hook(count_backward)  # fires once per backward pass through y
        return y

    x = _array(x)
    start = time.perf_counter()
    j_forward = jacobian_forward(counted, x)
    forward_seconds = time.perf_counter() - start
    start = time.perf_counter()
    j_reverse = jacobian_reverse(counted, x)
    reverse_seconds = time.perf_counter() - start
    return JacobianCost(
        name=name,
        n_inputs=x.size,
        m_outputs=int(np.prod(j_forward.shape[: j_forward.ndim - x.ndim])),
        forward_mode_passes=counts["dual_calls"],
        reverse_mode_forwards=counts["tensor_calls"],
        reverse_mode_passes=counts["backward"],
        forward_mode_seconds=forward_seconds,
        reverse_mode_seconds=reverse_seconds,
        max_abs_difference=float(np.max(np.abs(j_forward - j_reverse))),
    )


def cost_comparison(n: int = 100, m: int = 100, hidden: int = 32, seed: int = 0) -> list[JacobianCost]:
    """The two classic cases, measured:

    * wide: R^n -> R^1, a loss-like f(x) = tanh(x W1) w2. Forward mode: n passes; reverse: 1.
    * tall: R^1 -> R^m, a curve f(x) = tanh(x a + b) W2. Forward mode: 1 pass; reverse: m.

    Shapes: W1 (n, hidden), w2 (hidden,), a and b (hidden,), W2 (hidden, m).
    """
    rng = np.random.default_rng(seed)
    W1, w2 = rng.standard_normal((n, hidden)) / np.sqrt(n), rng.standard_normal(hidden)
    a, b, W2 = rng.standard_normal(hidden), rng.standard_normal(hidden), rng.standard_normal((hidden, m))

    def wide(x):  # x (n,) -> scalar
        return (x @ W1).tanh() @ w2

    def tall(x):  # x (1,) -> (m,)
        return (x * a + b).tanh() @ W2

    return [
        measure_jacobian_cost(wide, rng.standard_normal(n), name="wide (loss-like)"),
        measure_jacobian_cost(tall, rng.standard_normal(1), name="tall (curve-like)"),
    ]


# ============================================================================ (e) where eager autodiff spends its time
# A tiny training step is mostly not arithmetic: each op wraps its result in a Tensor and records
# its inputs and VJPs, backward sorts the graph and checks every edge, modules add call layers.
# bp.compile pays that once (a trace) and then replays the same forward and VJP functions on raw
# arrays. Counting Python calls shows the difference without a clock; the profile shows where it goes.


@dataclass(frozen=True)
class PythonCalls:
    """Python function calls in one training step, eager and compiled, and how many were primitives."""

    eager: int
    compiled: int
    eager_ops: int  # calls of a primitive's forward function (the table of derivatives in ops.py)
    compiled_ops: int


def tiny_training_step(widths=(2, 16, 16, 2), batch: int = 32, seed: int = 0):
    """The tiny step of bench/mlp_step.py: an MLP in float32, cross-entropy, SGD; returns (step, x, y)."""
    from bpcore import optim

    rng = np.random.default_rng(seed)
    layers: list[Module] = []
    for fan_in, fan_out in itertools.pairwise(widths):
        layers += [Linear(fan_in, fan_out, rng=rng), ReLU()]
    model = Sequential(*layers[:-1]).to(np.float32)
    optimizer = optim.SGD(model.parameters(), lr=0.01)

    def train_step(x, y):
        optimizer.zero_grad()
        loss = F.cross_entropy(model(Tensor(x)), y)
        loss.backward()
        optimizer.step()
        return loss

    x = rng.standard_normal((batch, widths[0])).astype(np.float32)
    y = rng.integers(0, widths[-1], size=batch)
    return train_step, x, y


def _primitive_codes() -> set:
    """Code objects of every primitive's forward function (ops, layers, losses)."""
    import sys

    from bpcore.ops import Primitive

    codes = set()
    for name, module in list(sys.modules.items()):
        if name.startswith("bpcore.") and module is not None:
            for value in vars(module).values():
                if isinstance(value, Primitive):
                    codes.add(value.forward.__code__)
    return codes


def _count_calls(fn, *args) -> tuple[int, int]:
    import sys

    primitive_codes = _primitive_codes()
    counts = [0, 0]

    def profiler(frame, event, arg):
        if event == "call":
            counts[0] += 1
            if frame.f_code in primitive_codes:
                counts[1] += 1

    sys.setprofile(profiler)
    try:
        fn(*args)
    finally:
        sys.setprofile(None)
    return counts[0], counts[1]


def python_calls_per_step() -> PythonCalls:
    """Count Python-level calls (``sys.setprofile``) in one tiny step, eager and compiled (after its trace)."""
    from bpcore.compile import compile as compile_step

    eager, x, y = tiny_training_step()
    eager(x, y)
    compiled, x, y = tiny_training_step()
    compiled = compile_step(compiled)
    for _ in range(3):
        compiled(x, y)
    if compiled.fallback_reason is not None or compiled.replays == 0:
        raise RuntimeError(f"the compiled step did not replay: {compiled.fallback_reason}")
    eager_calls, eager_ops = _count_calls(eager, x, y)
    compiled_calls, compiled_ops = _count_calls(compiled, x, y)
    return PythonCalls(eager_calls, compiled_calls, eager_ops, compiled_ops)


STEP_PARTS = (
    "numpy arithmetic",  # inside the forward and VJP functions, and numpy itself
    "backward bookkeeping",  # ordering the graph, per-edge shape and dtype checks, leaf-gradient copies
    "op recording",  # Primitive.__call__, Tensor objects, operator and method dispatch
    "module call layers",  # Module.__call__, forward methods, F.linear
    "loss argument checks",  # cross_entropy's target validation
    "optimizer",
    "other Python",
)


def _part_of(key, primitive_codes: set) -> str | None:
    """Which part of the step a profiled function belongs to (None for C functions: their callers decide)."""
    filename, _, name = key
    if filename == "~" or filename.startswith("<"):
        return None
    if "numpy" in filename and "bpcore" not in filename:
        return "numpy arithmetic"
    if (filename, name) in primitive_codes:
        return "numpy arithmetic"
    path = filename.replace("\\", "/")
    if path.endswith("bpcore/tensor.py"):
        backward = {"run_backward", "topological_order", "unbroadcast", "_accumulate_grad", "check_unchanged",
                    "changed_since", "_owner", "backward", "_run_hooks"}
        return "backward bookkeeping" if name in backward else "op recording"
    if path.endswith("bpcore/ops.py"):
        return "op recording"
    if path.endswith("bpcore/nn/functional.py"):
        return "module call layers" if name in ("linear", "_tensor_argument") else "loss argument checks"
    if "/bpcore/nn/" in path:
        return "module call layers"
    if "/bpcore/optim/" in path:
        return "optimizer"
    return "other Python"


def eager_step_profile(steps: int = 300) -> dict[str, float]:
    """Shares (summing to 1) of one tiny eager training step's time, by part (:data:`STEP_PARTS`).

    Measured with cProfile; a C function's time (a numpy ufunc, ``sorted``) goes to the part of
    the Python function that called it. The profiler adds a little to every Python call, so the
    Python parts come out somewhat larger than they are without it.
    """
    import cProfile
    import pstats

    codes = _primitive_codes()
    primitive_codes = set()
    pending = list(codes)
    while pending:  # the forward functions and the VJPs defined inside them
        code = pending.pop()
        primitive_codes.add((code.co_filename, code.co_name))
        pending.extend(c for c in code.co_consts if hasattr(c, "co_code"))
    step, x, y = tiny_training_step()
    for _ in range(10):
        step(x, y)
    profiler = cProfile.Profile()
    profiler.runcall(lambda: [step(x, y) for _ in range(steps)])
    stats = pstats.Stats(profiler).stats
    parts = dict.fromkeys(STEP_PARTS, 0.0)
    for key, (_, _, own, _, callers) in stats.items():
        part = _part_of(key, primitive_codes)
        if part is not None:
            parts[part] += own
            continue
        called = sum(caller[2] for caller in callers.values()) or 1.0
        for caller, caller_stats in callers.items():
            part = _part_of(caller, primitive_codes) or "other Python"
            parts[part] += own * caller_stats[2] / called
    total = sum(parts.values())
    return {part: seconds / total for part, seconds in parts.items()}


def step_microseconds(rounds: int = 7, steps: int = 200) -> dict[str, float]:
    """Median microseconds per tiny training step, eager and compiled, timed in interleaved rounds."""
    import statistics

    from bpcore.compile import compile as compile_step

    runners = {}
    for name in ("eager", "bp.compile"):
        step, x, y = tiny_training_step()
        runners[name] = (compile_step(step) if name == "bp.compile" else step, x, y)
    for step, x, y in runners.values():
        for _ in range(5):
            step(x, y)
    times: dict[str, list[float]] = {name: [] for name in runners}
    for _ in range(rounds):
        for name, (step, x, y) in runners.items():
            start = time.perf_counter()
            for _ in range(steps):
                step(x, y)
            times[name].append((time.perf_counter() - start) / steps * 1e6)
    return {name: statistics.median(t) for name, t in times.items()}
