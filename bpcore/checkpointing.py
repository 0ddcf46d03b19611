"""Gradient checkpointing: keep a segment's input, not its insides, and recompute them during backward.

With n layers in k checkpointed segments, backward holds about n/k layers' values (one segment
rebuilt at a time) plus the k kept boundaries, for about one extra forward pass of compute.
Notebook 08 measures it (:mod:`bpcore.labs.cost`).

How checkpoint(segment, x) is built, as one custom primitive:

  inputs   x and every parameter the segment uses. Listing the parameters as inputs makes the
           engine draw an edge to each, so their gradients travel the ordinary way: summed with
           any other use, passed through hooks, accumulated into .grad once, by run_backward.
  forward  runs the segment under no_grad: no graph, so none of its intermediate values survive;
           the op keeps only x (and the parameters, which exist anyway).
  VJPs     the first VJP called rebuilds the segment from a fresh leaf x' with a graph, calls
           backward(g) on it, and reads dL/dx' and each parameter's gradient. The other VJPs of
           the same backward reuse that result (one recomputation, not one per input).
           During the inner backward the parameters are borrowed: their .grad and hooks are set
           aside and restored afterwards, so the inner pass measures gradients without adding
           anything; the outer engine then adds them exactly once. (Their values are set to the
           arrays the forward received, which makes the op a function of its inputs alone.)

Limits: the segment must compute the same thing twice (dropout would draw a new mask; PyTorch
saves the random state for this); x and the parameters must not be changed in place between
forward and backward; and a tensor requiring grad that the segment captures from outside must be
declared (a Module's own parameters are found automatically): an undeclared one is reported.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable

import numpy as np

from bpcore.graph import graph_bytes
from bpcore.nn.layers import Sequential
from bpcore.nn.module import Module
from bpcore.ops import primitive
from bpcore.tensor import Tensor, enable_grad, no_grad, topological_order

_recompute_log: list[int] | None = None  # graph bytes of each recomputation, while recorded_recomputations() runs


@contextlib.contextmanager
def recorded_recomputations():
    """Collect the graph bytes of every segment rebuilt during backward: ``with recorded_recomputations() as log``."""
    global _recompute_log
    previous, _recompute_log = _recompute_log, []
    try:
        yield _recompute_log
    finally:
        _recompute_log = previous


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
