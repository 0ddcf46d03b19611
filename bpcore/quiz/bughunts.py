"""Bug hunts: a real backward pass with one planted bug, and the same pass fixed.

Each specimen is two plain numpy functions that differ in exactly one line. The learner sees the
buggy one with numbered lines, names the line, and picks a fix or types their own (a typed fix is
run in place of the bug, in a child process: see :mod:`~bpcore.quiz.fixrun`). Nothing is copied by
hand into the bank: the listing, the bug's line number and the fixed line all come from these
functions' source, and ``bpcore validate`` proves that the fixed function agrees with the engine's
gradients and the buggy one does not, so a bug hunt can never go stale.
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


def _batch_engine(activation: str):
    """The engine's version of the batch specimens: 1/(2N) sum ||f(X W1^T + b1) W2^T + b2 - T||^2."""

    def loss(X, T, W1, b1, W2, b2):
        Y = getattr(X @ W1.T + b1, activation)() @ W2.T + b2
        return ((Y - T) ** 2).sum() / (2 * X.shape[0])

    return loss


def _batch_inputs(rng):
    N, n, m, k = 5, 3, 4, 2
    return {
        "X": rng.standard_normal((N, n)),
        "T": rng.standard_normal((N, k)),
        "W1": rng.standard_normal((m, n)),
        "b1": rng.standard_normal(m),
        "W2": rng.standard_normal((k, m)),
        "b2": rng.standard_normal(k),
    }


# ----------------------------------------------------------------------------- specimen 3: a missing transpose


def relu_column_buggy(x, t, W1, b1, W2, b2):
    z1 = W1 @ x + b1  # (m,), column vectors as in the notes
    h = np.maximum(z1, 0)  # ReLU
    y = W2 @ h + b2  # (k,), a linear output; here k = m
    delta_output = y - t  # L = 1/2 ||y - t||^2
    dW2 = np.outer(delta_output, h)
    db2 = delta_output
    dh = W2 @ delta_output
    delta_hidden = dh * (z1 > 0)
    dW1 = np.outer(delta_hidden, x)
    db1 = delta_hidden
    return {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2}


def relu_column_fixed(x, t, W1, b1, W2, b2):
    z1 = W1 @ x + b1  # (m,), column vectors as in the notes
    h = np.maximum(z1, 0)  # ReLU
    y = W2 @ h + b2  # (k,), a linear output; here k = m
    delta_output = y - t  # L = 1/2 ||y - t||^2
    dW2 = np.outer(delta_output, h)
    db2 = delta_output
    dh = W2.T @ delta_output
    delta_hidden = dh * (z1 > 0)
    dW1 = np.outer(delta_hidden, x)
    db1 = delta_hidden
    return {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2}


def _relu_column_engine(x, t, W1, b1, W2, b2):
    y = W2 @ (W1 @ x + b1).relu() + b2
    return 0.5 * ((y - t) ** 2).sum()


def _relu_column_inputs(rng):
    n, m = 3, 3  # square W2: the missing transpose still runs, and is still wrong
    return {
        "x": rng.standard_normal(n),
        "t": rng.standard_normal(m),
        "W1": rng.standard_normal((m, n)),
        "b1": np.abs(rng.standard_normal(m)) + 2.0,  # units active, so the bug cannot hide behind the mask
        "W2": rng.standard_normal((m, m)),
        "b2": rng.standard_normal(m),
    }


# ----------------------------------------------------------------------------- specimen 4: = instead of +=


def rnn_accumulate_buggy(xs, y, W, U, b, V):
    hs = [np.zeros(U.shape[0])]  # h_0 = 0
    for x in xs:
        hs.append(np.tanh(W @ x + U @ hs[-1] + b))
    err = V @ hs[-1] - y  # L = 1/2 ||V h_T - y||^2
    dV = np.outer(err, hs[-1])
    delta = V.T @ err  # dL/dh_T
    dW, dU, db = np.zeros_like(W), np.zeros_like(U), np.zeros_like(b)
    for t in range(len(xs), 0, -1):
        g = delta * (1 - hs[t] ** 2)  # through the tanh of step t
        dW = np.outer(g, xs[t - 1])
        dU += np.outer(g, hs[t - 1])
        db += g
        delta = U.T @ g  # dL/dh_{t-1}
    return {"W": dW, "U": dU, "b": db, "V": dV}


def rnn_accumulate_fixed(xs, y, W, U, b, V):
    hs = [np.zeros(U.shape[0])]  # h_0 = 0
    for x in xs:
        hs.append(np.tanh(W @ x + U @ hs[-1] + b))
    err = V @ hs[-1] - y  # L = 1/2 ||V h_T - y||^2
    dV = np.outer(err, hs[-1])
    delta = V.T @ err  # dL/dh_T
    dW, dU, db = np.zeros_like(W), np.zeros_like(U), np.zeros_like(b)
    for t in range(len(xs), 0, -1):
        g = delta * (1 - hs[t] ** 2)  # through the tanh of step t
        dW += np.outer(g, xs[t - 1])
        dU += np.outer(g, hs[t - 1])
        db += g
        delta = U.T @ g  # dL/dh_{t-1}
    return {"W": dW, "U": dU, "b": db, "V": dV}


def _rnn_engine(xs, y, W, U, b, V):
    h = Tensor(np.zeros(U.shape[0]))
    for t in range(xs.shape[0]):
        h = (W @ xs[t] + U @ h + b).tanh()
    err = V @ h - y
    return 0.5 * (err * err).sum()


def _rnn_inputs(rng):
    T, n, m, k = 4, 2, 3, 2
    return {
        "xs": rng.standard_normal((T, n)),
        "y": rng.standard_normal(k),
        "W": rng.standard_normal((m, n)),
        "U": rng.standard_normal((m, m)) * 0.8,
        "b": rng.standard_normal(m),
        "V": rng.standard_normal((k, m)),
    }


# ----------------------------------------------------------------------------- specimen 5: a missing 1/N


def softmax_batch_buggy(X, targets, W1, b1, W2, b2):
    N = X.shape[0]  # samples are rows
    H = np.tanh(X @ W1.T + b1)  # (N, m)
    Z2 = H @ W2.T + b2  # (N, C) logits
    P = np.exp(Z2 - Z2.max(axis=1, keepdims=True))
    P = P / P.sum(axis=1, keepdims=True)  # softmax of each row
    Y = np.zeros((N, Z2.shape[1]))
    Y[np.arange(N), targets] = 1  # one-hot rows; L = mean cross-entropy
    dZ2 = P - Y
    dW2 = dZ2.T @ H
    db2 = dZ2.sum(axis=0)
    dZ1 = (dZ2 @ W2) * (1 - H**2)
    dW1 = dZ1.T @ X
    db1 = dZ1.sum(axis=0)
    return {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2}


def softmax_batch_fixed(X, targets, W1, b1, W2, b2):
    N = X.shape[0]  # samples are rows
    H = np.tanh(X @ W1.T + b1)  # (N, m)
    Z2 = H @ W2.T + b2  # (N, C) logits
    P = np.exp(Z2 - Z2.max(axis=1, keepdims=True))
    P = P / P.sum(axis=1, keepdims=True)  # softmax of each row
    Y = np.zeros((N, Z2.shape[1]))
    Y[np.arange(N), targets] = 1  # one-hot rows; L = mean cross-entropy
    dZ2 = (P - Y) / N
    dW2 = dZ2.T @ H
    db2 = dZ2.sum(axis=0)
    dZ1 = (dZ2 @ W2) * (1 - H**2)
    dW1 = dZ1.T @ X
    db1 = dZ1.sum(axis=0)
    return {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2}


def _softmax_batch_engine(X, targets, W1, b1, W2, b2):
    from bpcore.nn import functional as F

    logits = (X @ W1.T + b1).tanh() @ W2.T + b2
    return F.cross_entropy(logits, targets.data.astype(np.int64))


def _softmax_batch_inputs(rng):
    N, n, m, C = 4, 3, 4, 3
    return {
        "X": rng.standard_normal((N, n)),
        "targets": rng.integers(0, C, N),
        "W1": rng.standard_normal((m, n)),
        "b1": rng.standard_normal(m),
        "W2": rng.standard_normal((C, m)),
        "b2": rng.standard_normal(C),
    }


# ----------------------------------------------------------------------------- specimen 6: the wrong axis


def sigmoid_batch_buggy(X, T, W1, b1, W2, b2):
    N = X.shape[0]  # samples are rows
    H = 1 / (1 + np.exp(-(X @ W1.T + b1)))  # (N, m), sigmoid
    Y = H @ W2.T + b2  # (N, k), a linear output
    dY = (Y - T) / N  # L = 1/(2N) sum of ||y - t||^2
    dW2 = dY.T @ H
    db2 = dY.sum(axis=0)
    dZ1 = (dY @ W2) * H * (1 - H)
    dW1 = dZ1.T @ X
    db1 = dZ1.sum(axis=1)
    return {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2}


def sigmoid_batch_fixed(X, T, W1, b1, W2, b2):
    N = X.shape[0]  # samples are rows
    H = 1 / (1 + np.exp(-(X @ W1.T + b1)))  # (N, m), sigmoid
    Y = H @ W2.T + b2  # (N, k), a linear output
    dY = (Y - T) / N  # L = 1/(2N) sum of ||y - t||^2
    dW2 = dY.T @ H
    db2 = dY.sum(axis=0)
    dZ1 = (dY @ W2) * H * (1 - H)
    dW1 = dZ1.T @ X
    db1 = dZ1.sum(axis=0)
    return {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2}


# ----------------------------------------------------------------------------- specimen 7: detach in the wrong place


def bptt_detach_buggy(xs, y, W, U, b, V):
    W, U, b, V = (Tensor(a, requires_grad=True) for a in (W, U, b, V))  # the engine, as in PyTorch
    h = Tensor(np.zeros(U.shape[0]))  # h_0 = 0
    for x in xs:
        h = (W @ Tensor(x) + U @ h.detach() + b).tanh()
    err = V @ h - y
    (0.5 * (err * err).sum()).backward()  # L = 1/2 ||V h_T - y||^2
    return {"W": W.grad, "U": U.grad, "b": b.grad, "V": V.grad}


def bptt_detach_fixed(xs, y, W, U, b, V):
    W, U, b, V = (Tensor(a, requires_grad=True) for a in (W, U, b, V))  # the engine, as in PyTorch
    h = Tensor(np.zeros(U.shape[0]))  # h_0 = 0
    for x in xs:
        h = (W @ Tensor(x) + U @ h + b).tanh()
    err = V @ h - y
    (0.5 * (err * err).sum()).backward()  # L = 1/2 ||V h_T - y||^2
    return {"W": W.grad, "U": U.grad, "b": b.grad, "V": V.grad}


# ----------------------------------------------------------------------------- specimen 8: softmax over the wrong axis


def causal_attention_buggy(Q, K, V, dO):
    T, d = Q.shape  # T positions, queries and keys of width d
    S = Q @ K.T / np.sqrt(d)  # (T, T) scores: row i is query i against every key
    S = np.where(np.tril(np.ones((T, T))) > 0, S, -np.inf)  # causal: no key after the query
    P = np.exp(S - S.max(axis=1, keepdims=True))
    P = P / P.sum(axis=0, keepdims=True)  # softmax
    dV = P.T @ dO  # L = sum(dO * (P @ V))
    dP = dO @ V.T
    dS = P * (dP - (dP * P).sum(axis=1, keepdims=True))
    dQ = dS @ K / np.sqrt(d)
    dK = dS.T @ Q / np.sqrt(d)
    return {"Q": dQ, "K": dK, "V": dV}


def causal_attention_fixed(Q, K, V, dO):
    T, d = Q.shape  # T positions, queries and keys of width d
    S = Q @ K.T / np.sqrt(d)  # (T, T) scores: row i is query i against every key
    S = np.where(np.tril(np.ones((T, T))) > 0, S, -np.inf)  # causal: no key after the query
    P = np.exp(S - S.max(axis=1, keepdims=True))
    P = P / P.sum(axis=1, keepdims=True)  # softmax
    dV = P.T @ dO  # L = sum(dO * (P @ V))
    dP = dO @ V.T
    dS = P * (dP - (dP * P).sum(axis=1, keepdims=True))
    dQ = dS @ K / np.sqrt(d)
    dK = dS.T @ Q / np.sqrt(d)
    return {"Q": dQ, "K": dK, "V": dV}


def _causal_attention_engine(Q, K, V, dO):
    from bpcore.nn import functional as F

    return (F.scaled_dot_product_attention(Q, K, V, is_causal=True) * dO).sum()


def _causal_attention_inputs(rng):
    T, d, dv = 4, 4, 2
    return {
        "Q": rng.standard_normal((T, d)),
        "K": rng.standard_normal((T, d)),
        "V": rng.standard_normal((T, dv)),
        "dO": rng.standard_normal((T, dv)),
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
    """A line of code with comments and all whitespace removed: a typed fix that reads like a listed one is that one
    (any other typed fix is run, in a child process: see :mod:`~bpcore.quiz.fixrun`)."""
    return re.sub(r"\s+", "", code_line.split("#", 1)[0])


@dataclass
class Specimen:
    """A buggy backward pass and its fix. Line numbers count from 1 at the ``def`` line."""

    name: str
    buggy: Callable
    fixed: Callable
    engine: Callable  # the same loss written with bpcore tensors: its autodiff gradients are the truth
    inputs: Callable[[np.random.Generator], dict]
    params: tuple[str, ...] = ("W1", "b1", "W2", "b2")  # the inputs whose gradients are compared

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
        """The engine's gradients of the same loss with respect to the parameters."""
        leaves = {k: Tensor(np.array(v), requires_grad=k in self.params) for k, v in values.items()}
        self.engine(**leaves).backward()
        return {k: leaves[k].grad for k in self.params}

    def agrees(self, fn, values: dict) -> bool:
        """Whether ``fn`` (buggy or fixed) gives the engine's gradients on these inputs."""
        mine, truth = fn(**values), self.engine_grads(values)
        return all(np.shape(mine[k]) == truth[k].shape and np.allclose(mine[k], truth[k]) for k in truth)


SPECIMENS: dict[str, Specimen] = {
    s.name: s
    for s in (
        Specimen("sigmoid_net", sigmoid_net_buggy, sigmoid_net_fixed, _sigmoid_net_engine, _sigmoid_net_inputs),
        Specimen("tanh_batch", tanh_batch_buggy, tanh_batch_fixed, _batch_engine("tanh"), _batch_inputs),
        Specimen("relu_column", relu_column_buggy, relu_column_fixed, _relu_column_engine, _relu_column_inputs),
        Specimen(
            "rnn_accumulate",
            rnn_accumulate_buggy,
            rnn_accumulate_fixed,
            _rnn_engine,
            _rnn_inputs,
            params=("W", "U", "b", "V"),
        ),
        Specimen(
            "softmax_batch", softmax_batch_buggy, softmax_batch_fixed, _softmax_batch_engine, _softmax_batch_inputs
        ),
        Specimen("sigmoid_batch", sigmoid_batch_buggy, sigmoid_batch_fixed, _batch_engine("sigmoid"), _batch_inputs),
        Specimen(
            "bptt_detach", bptt_detach_buggy, bptt_detach_fixed, _rnn_engine, _rnn_inputs, params=("W", "U", "b", "V")
        ),
        Specimen(
            "causal_attention",
            causal_attention_buggy,
            causal_attention_fixed,
            _causal_attention_engine,
            _causal_attention_inputs,
            params=("Q", "K", "V"),
        ),
    )
}
