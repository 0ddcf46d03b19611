"""Bug hunts: a real backward pass with one planted bug, and the same pass fixed.

Each specimen is two plain numpy functions that differ in exactly one line. The learner sees the
buggy one with numbered lines, names the line and picks the fix. Nothing is copied by hand into the
bank: the listing, the bug's line number and the fixed line all come from these functions'
source, and ``bpcore validate`` proves that the fixed function agrees with the engine's gradients
and the buggy one does not, so a bug hunt can never go stale.
"""

from __future__ import annotations

import difflib
import inspect
import re
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from bpcore.tensor import Tensor

# ----------------------------------------------------------------------------- specimen 1: a sigmoid network


def sigmoid_net_buggy(x, t, W1, b1, W2, b2):
    z1 = W1 @ x + b1  # (m,)
    h = 1 / (1 + np.exp(-z1))  # sigmoid
    z2 = W2 @ h + b2  # (k,)
    y = 1 / (1 + np.exp(-z2))
    delta_output = (y - t) * y * (1 - y)  # L = 1/2 ||y - t||^2
    dW2 = np.outer(delta_output, h)
    db2 = delta_output
    delta_hidden = (W2.T @ delta_output) * z1 * (1 - z1)
    dW1 = np.outer(delta_hidden, x)
    db1 = delta_hidden
    return {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2}


def sigmoid_net_fixed(x, t, W1, b1, W2, b2):
    z1 = W1 @ x + b1  # (m,)
    h = 1 / (1 + np.exp(-z1))  # sigmoid
    z2 = W2 @ h + b2  # (k,)
    y = 1 / (1 + np.exp(-z2))
    delta_output = (y - t) * y * (1 - y)  # L = 1/2 ||y - t||^2
    dW2 = np.outer(delta_output, h)
    db2 = delta_output
    delta_hidden = (W2.T @ delta_output) * h * (1 - h)
    dW1 = np.outer(delta_hidden, x)
    db1 = delta_hidden
    return {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2}


def _sigmoid_net_engine(x, t, W1, b1, W2, b2):
    y = (W2 @ (W1 @ x + b1).sigmoid() + b2).sigmoid()
    return 0.5 * ((y - t) ** 2).sum()


def _sigmoid_net_inputs(rng):
    n, m, k = 3, 4, 2
    return {
        "x": rng.standard_normal(n),
        "t": rng.uniform(0, 1, k),
        "W1": rng.standard_normal((m, n)),
        "b1": rng.standard_normal(m),
        "W2": rng.standard_normal((k, m)),
        "b2": rng.standard_normal(k),
    }


# ----------------------------------------------------------------------------- specimen 2: a tanh batch


def tanh_batch_buggy(X, T, W1, b1, W2, b2):
    N = X.shape[0]  # samples are rows
    H = np.tanh(X @ W1.T + b1)  # (N, m)
    Y = H @ W2.T + b2  # (N, k), a linear output
    dY = (Y - T) / N  # L = 1/(2N) sum of ||y - t||^2
    dW2 = dY.T @ H
    db2 = dY.sum(axis=0)
    dH = dY @ W2
    dZ1 = dH * (1 - H)
    dW1 = dZ1.T @ X
    db1 = dZ1.sum(axis=0)
    return {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2}


def tanh_batch_fixed(X, T, W1, b1, W2, b2):
    N = X.shape[0]  # samples are rows
    H = np.tanh(X @ W1.T + b1)  # (N, m)
    Y = H @ W2.T + b2  # (N, k), a linear output
    dY = (Y - T) / N  # L = 1/(2N) sum of ||y - t||^2
    dW2 = dY.T @ H
    db2 = dY.sum(axis=0)
    dH = dY @ W2
    dZ1 = dH * (1 - H**2)
    dW1 = dZ1.T @ X
    db1 = dZ1.sum(axis=0)
    return {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2}


def _tanh_batch_engine(X, T, W1, b1, W2, b2):
    Y = (X @ W1.T + b1).tanh() @ W2.T + b2
    return ((Y - T) ** 2).sum() / (2 * X.shape[0])


def _tanh_batch_inputs(rng):
    N, n, m, k = 5, 3, 4, 2
    return {
        "X": rng.standard_normal((N, n)),
        "T": rng.standard_normal((N, k)),
        "W1": rng.standard_normal((m, n)),
        "b1": rng.standard_normal(m),
        "W2": rng.standard_normal((k, m)),
        "b2": rng.standard_normal(k),
    }


# ----------------------------------------------------------------------------- the machinery


def listing(fn) -> list[str]:
    """The function's source lines as shown to the learner: dedented, renamed ``backward``."""
    try:
        source = textwrap.dedent(inspect.getsource(fn))
    except OSError as error:  # an install without .py files
        raise RuntimeError(f"the source of {fn.__name__} is not available: {error}") from None
    lines = source.rstrip("\n").split("\n")
    lines[0] = re.sub(r"^def \w+\(", "def backward(", lines[0])
    return lines


def normalise(code_line: str) -> str:
    """A line of code with comments and all whitespace removed: how typed fixes are compared (as text)."""
    return re.sub(r"\s+", "", code_line.split("#", 1)[0])


@dataclass
class Specimen:
    """A buggy backward pass and its fix. Line numbers count from 1 at the ``def`` line."""

    name: str
    buggy: Callable
    fixed: Callable
    engine: Callable  # the same loss written with bpcore tensors: its autodiff gradients are the truth
    inputs: Callable[[np.random.Generator], dict]

    @cached_property
    def lines(self) -> list[str]:
        return listing(self.buggy)

    @cached_property
    def changed(self) -> list[int]:
        """0-based indices of the lines that differ between the buggy and the fixed function."""
        fixed = listing(self.fixed)
        matcher = difflib.SequenceMatcher(a=self.lines, b=fixed, autojunk=False)
        return [i for tag, i1, i2, _, _ in matcher.get_opcodes() if tag != "equal" for i in range(i1, i2)]

    @property
    def bug_line(self) -> int:
        return self.changed[0] + 1

    @property
    def fixed_line(self) -> str:
        return listing(self.fixed)[self.changed[0]].strip()

    def numbered(self) -> str:
        width = len(str(len(self.lines)))
        return "\n".join(f"{i:>{width}}  {line}" for i, line in enumerate(self.lines, start=1))

    def engine_grads(self, values: dict) -> dict[str, np.ndarray]:
        """The engine's gradients of the same loss with respect to the four parameters."""
        leaves = {k: Tensor(np.array(v), requires_grad=k in ("W1", "b1", "W2", "b2")) for k, v in values.items()}
        self.engine(**leaves).backward()
        return {k: leaves[k].grad for k in ("W1", "b1", "W2", "b2")}

    def agrees(self, fn, values: dict) -> bool:
        """Whether ``fn`` (buggy or fixed) gives the engine's gradients on these inputs."""
        mine, truth = fn(**values), self.engine_grads(values)
        return all(np.shape(mine[k]) == truth[k].shape and np.allclose(mine[k], truth[k]) for k in truth)


SPECIMENS: dict[str, Specimen] = {
    s.name: s
    for s in (
        Specimen("sigmoid_net", sigmoid_net_buggy, sigmoid_net_fixed, _sigmoid_net_engine, _sigmoid_net_inputs),
        Specimen("tanh_batch", tanh_batch_buggy, tanh_batch_fixed, _tanh_batch_engine, _tanh_batch_inputs),
    )
}
