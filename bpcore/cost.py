"""The cost of backpropagation, measured: compute per layer, memory kept for backward, checkpointing.

Three interview questions, answered with numbers this file computes:

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

Graph memory is counted exactly as the bytes of every op-produced value reachable from the
loss (:func:`graph_bytes`); ``tracemalloc`` gives the process's true peak as a cross-check.
"""

from __future__ import annotations

import itertools
import math
import time
import tracemalloc
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from bpcore.nn import functional as F
from bpcore.nn.layers import Linear, ReLU, Sequential, Tanh
from bpcore.nn.module import Module
from bpcore.ops import primitive
from bpcore.tensor import Tensor, enable_grad, no_grad, topological_order

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


def graph_bytes(root: Tensor) -> int:
    """Bytes of every value held by the graph behind ``root``: the outputs of its ops.

    Inputs and parameters are left out: they exist with or without a graph. (A few VJPs also keep a
    temporary of their own, e.g. cross-entropy's exp; those are not counted.)
    """
    return sum(t.data.nbytes for t in topological_order(root, every_tensor=True) if t.op is not None)


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
#
# How checkpoint(segment, x) is built, as one custom primitive:
#
#   inputs   x and every parameter the segment uses. Listing the parameters as inputs makes the
#            engine draw an edge to each, so their gradients travel the ordinary way: summed with
#            any other use, passed through hooks, accumulated into .grad once, by run_backward.
#   forward  runs the segment under no_grad: no graph, so none of its intermediate values survive;
#            the op keeps only x (and the parameters, which exist anyway).
#   VJPs     the first VJP called rebuilds the segment from a fresh leaf x' with a graph, calls
#            backward(g) on it, and reads dL/dx' and each parameter's gradient. The other VJPs of
#            the same backward reuse that result (one recomputation, not one per input).
#            During the inner backward the parameters are borrowed: their .grad and hooks are set
#            aside and restored afterwards, so the inner pass measures gradients without adding
#            anything; the outer engine then adds them exactly once. (Their values are set to the
#            arrays the forward received, which makes the op a function of its inputs alone.)
#
# Limits: the segment must compute the same thing twice (dropout would draw a new mask; PyTorch
# saves the random state for this); x and the parameters must not be changed in place between
# forward and backward; and a tensor requiring grad that the segment captures from outside must be
# declared (a Module's own parameters are found automatically): an undeclared one is reported.

_recompute_log: list[int] | None = None  # set by measure_checkpointing: graph bytes of each recomputation


class _Recomputation:
    """The backward half of one checkpoint: rebuild the segment with a graph, once per upstream gradient."""

    def __init__(self, segment, x, params, param_values, input_requires_grad):
        self.segment, self.x, self.params = segment, x, params
        self.param_values, self.input_requires_grad = param_values, input_requires_grad
        # the engine calls one VJP per input that requires grad: x (position 0, if it does) and each parameter
        self.wanted = ({0} if input_requires_grad else set()) | set(range(1, 1 + len(params)))
        self._for_upstream = None  # the g that the cached gradients belong to (compared by identity)
        self._grads, self._unserved = None, set()

    def vjp(self, position: int):
        def push(g):
            if self._grads is None or self._for_upstream is not g:
                self._grads, self._for_upstream, self._unserved = self._recompute(g), g, set(self.wanted)
            grad = self._grads[position]
            self._unserved.discard(position)
            if not self._unserved:  # every input has its gradient: free them rather than hold them to the end
                self._grads, self._for_upstream = None, None
            return grad

        return push

    def _recompute(self, g):
        leaf = Tensor(self.x, requires_grad=self.input_requires_grad)
        borrowed = [(p.grad, p._hooks, p.data) for p in self.params]
        try:
            for p, value in zip(self.params, self.param_values, strict=True):
                p.grad, p._hooks, p.data = None, None, value
            with enable_grad():  # backward may be called inside no_grad; the rebuild needs a graph
                y = self.segment(leaf)
            _check_declared(y, leaf, self.params)
            if _recompute_log is not None:
                _recompute_log.append(graph_bytes(y))
            y.backward(g)
            grads = [leaf.grad] + [p.grad for p in self.params]
        finally:
            for p, (grad, hooks, data) in zip(self.params, borrowed, strict=True):
                p.grad, p._hooks, p.data = grad, hooks, data
        shapes = [self.x.shape] + [value.shape for value in self.param_values]
        return [np.zeros(s) if gr is None else gr for gr, s in zip(grads, shapes, strict=True)]


def _check_declared(y: Tensor, leaf: Tensor, params) -> None:
    declared = {id(leaf)} | {id(p) for p in params}
    for t in topological_order(y):
        if t.is_leaf and id(t) not in declared:
            raise ValueError(
                f"checkpoint: the segment uses a tensor of shape {t.shape} that requires grad but was not "
                "declared, so its gradient would be lost. Pass it in params=[...] (a Module segment declares "
                "its own parameters; tensors captured from outside must be listed)"
            )


@primitive("checkpoint")
def _checkpoint(x, *param_values, segment=None, params=(), input_requires_grad=True):
    """y = segment(x), computed without a graph; the VJPs recompute it. Shapes: whatever segment maps."""
    originals = [p.data for p in params]
    try:
        for p, value in zip(params, param_values, strict=True):  # the op is a function of its inputs
            p.data = value  # (normally the very same arrays; gradcheck's per-op check passes probes)
        with no_grad():
            y = segment(Tensor(x)).data
    finally:
        for p, value in zip(params, originals, strict=True):
            p.data = value
    recomputation = _Recomputation(segment, x, params, param_values, input_requires_grad)
    return y, tuple(recomputation.vjp(i) for i in range(1 + len(params)))


def checkpoint(segment: Callable, x, params=None) -> Tensor:
    """``segment(x)`` that keeps only ``x`` for backward and recomputes the inside during backward.

    Args:
        segment: a Module or a function Tensor -> Tensor (deterministic: it runs twice).
        x: its input, e.g. (N, features); the output has whatever shape segment gives.
        params: tensors requiring grad that the segment uses. Default: ``segment.parameters()`` for a
            Module, none for a function.

    Gradients for ``x`` and for every parameter equal those of ``segment(x)`` without checkpointing,
    bit for bit: the recomputation repeats exactly the same numpy operations.
    """
    if params is None:
        params = list(segment.parameters()) if isinstance(segment, Module) else []
    params = tuple(p for p in params if p.requires_grad)
    x = x if isinstance(x, Tensor) else Tensor(np.asarray(x))
    return _checkpoint(x, *params, segment=segment, params=params, input_requires_grad=x.requires_grad)


def checkpointed_sequential(model: Sequential, x, segments: int) -> Tensor:
    """Run a Sequential split into ``segments`` consecutive chunks of (nearly) equal length, each checkpointed.

    The graph then holds only the chunk outputs; backward rebuilds one chunk at a time. PyTorch's
    ``checkpoint_sequential`` leaves the last chunk alone, because its engine frees each node's saved
    values as soon as backward has passed it. Ours keeps the whole graph until backward returns, so
    an unchecked last chunk would still be alive while the others are rebuilt: here it is checkpointed too.
    """
    layers = list(model)
    if not 1 <= segments <= len(layers):
        raise ValueError(f"segments must be between 1 and the number of layers ({len(layers)}), got {segments}")
    bounds = np.linspace(0, len(layers), segments + 1).round().astype(int)
    for start, stop in itertools.pairwise(bounds):
        x = checkpoint(model[int(start) : int(stop)], x)
    return x


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
    global _recompute_log

    x = x if isinstance(x, Tensor) else Tensor(np.asarray(x))

    def step():
        output = checkpointed_sequential(model, x, segments) if segments else model(x)
        return loss_fn(output, targets)

    model.zero_grad()
    _recompute_log = []
    try:
        loss = step()
        stored = graph_bytes(loss)
        loss.backward()
        rebuilt = list(_recompute_log)
    finally:
        _recompute_log = None
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
    "LayerCost",
    "MemoryCurve",
    "activation_memory",
    "checkpoint",
    "checkpoint_sweep",
    "checkpointed_sequential",
    "expected_activation_bytes",
    "format_checkpoint_costs",
    "format_layer_costs",
    "graph_bytes",
    "layer_costs",
    "linear_flops",
    "measure_checkpointing",
    "memory_vs_batch",
    "memory_vs_depth",
    "mlp",
    "mlp_flops",
    "relu_flops",
    "softmax_cross_entropy_flops",
    "tanh_flops",
    "time_forward_backward",
]
