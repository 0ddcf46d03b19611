"""Notebook 02 (the 3-layer network): the reference network differentiated by hand, every intermediate by name.

Input x (n), hidden h = f(W1 x + b1) (m), output y = g(W2 h + b2) (k), loss L(y, y_true).

Forward                           Backward
1. z1 = W1 x + b1                 1. delta_output = dL/dz2 = dL/dy * g'(z2)
2. h  = f(z1)                     2. dL/dW2 = outer(delta_output, h),   dL/db2 = delta_output
3. z2 = W2 h + b2                 3. delta_hidden = (W2^T delta_output) * f'(z1)
4. y  = g(z2)                     4. dL/dW1 = outer(delta_hidden, x),   dL/db1 = delta_hidden
5. L  = loss(y, y_true)           5. W <- W - lr dL/dW for every parameter

The batch form stacks samples as rows: X (N, n), Z1 = X W1^T + b1 (N, m), and the outer
products become sums over samples: dL/dW2 = delta_output^T H, dL/db2 = sum of delta_output rows.
With a mean loss, the 1/N sits inside dL/dy and so inside every delta.

The hand derivation uses numpy only, never the autodiff engine; :func:`autodiff_three_layer` at
the end builds the same network from engine ops, so the two can be compared (the tests do, to
1e-12, and against finite differences).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from bpcore.labs.chain_rule import ACTIVATIONS
from bpcore.nn import functional as F
from bpcore.tensor import Tensor, tensor


def _softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


# ----------------------------------------------------------------------------- losses: L(y, t), dL/dy
# Each loss is averaged over the N samples of a batch (a single sample is a batch of one).


def _mse(y, t):  # PyTorch's mse_loss: mean over every element
    return np.mean((y - t) ** 2), 2 * (y - t) / y.size


def _half_sse(y, t):  # 1/2 ||y - t||^2 per sample: the textbook choice, dL/dy = y - t
    n = y.shape[0]
    return 0.5 * np.sum((y - t) ** 2) / n, (y - t) / n


def _cross_entropy(y, t):  # y: probabilities (softmax output), t: one-hot rows
    n = y.shape[0]
    return -np.sum(t * np.log(y)) / n, -t / y / n


def _bce(y, t):  # y: probabilities (sigmoid output), t: 0/1 targets, mean over every element
    return -np.mean(t * np.log(y) + (1 - t) * np.log(1 - y)), (y - t) / (y * (1 - y)) / y.size


LOSSES = {"mse": _mse, "half_sse": _half_sse, "cross_entropy": _cross_entropy, "bce": _bce}


# ----------------------------------------------------------------------------- the walkthrough


@dataclass
class ManualPass:
    """Every intermediate of one forward and backward pass, in the order they were computed.

    ``steps`` maps names (z1, h, z2, y_pred, L, dL_dy, delta_output, dL_dW2, ...) to arrays;
    ``equations`` gives the formula behind each name. ``grads`` has dL/dW1, dL/db1, dL/dW2, dL/db2.
    """

    steps: dict[str, np.ndarray] = field(default_factory=dict)
    equations: dict[str, str] = field(default_factory=dict)

    def record(self, name: str, value, equation: str) -> np.ndarray:
        self.steps[name] = np.asarray(value)
        self.equations[name] = equation
        return self.steps[name]

    @property
    def loss(self) -> float:
        return float(self.steps["L"])

    @property
    def grads(self) -> dict[str, np.ndarray]:
        return {name: self.steps[f"dL_d{name}"] for name in ("W1", "b1", "W2", "b2")}

    def table(self) -> str:
        """One line per step: name, shape, equation."""
        rows = [f"{name:<14}{self.steps[name].shape!s:<10}{eq}" for name, eq in self.equations.items()]
        return "\n".join(rows)


def three_layer(x, y_true, W1, b1, W2, b2, f="sigmoid", g="sigmoid", loss="mse") -> ManualPass:
    """Forward and backward through the reference network by hand.

    Args:
        x: one sample (n,) or a batch (N, n). y_true: (k,) or (N, k); for "cross_entropy" one-hot.
        W1 (m, n), b1 (m,), W2 (k, m), b2 (k,): the parameters, in the notes' column convention.
        f, g: hidden and output activations (names in ACTIVATIONS; g may also be "softmax").
        loss: a name in LOSSES.
    """
    if f not in ACTIVATIONS:
        raise ValueError(f"unknown hidden activation {f!r}; choose from {sorted(ACTIVATIONS)}")
    if g not in ACTIVATIONS and g != "softmax":
        raise ValueError(f"unknown output activation {g!r}; choose from {sorted(ACTIVATIONS)} or 'softmax'")
    if loss not in LOSSES:
        raise ValueError(f"unknown loss {loss!r}; choose from {sorted(LOSSES)}")
    x, y_true = np.asarray(x, dtype=np.float64), np.asarray(y_true, dtype=np.float64)
    single = x.ndim == 1
    X, T = np.atleast_2d(x), np.atleast_2d(y_true)  # rows are samples
    if X.shape[1] != W1.shape[1]:
        raise ValueError(f"x has {X.shape[1]} features but W1 has shape {W1.shape} (m, n): n must match")
    if T.shape != (X.shape[0], W2.shape[0]):
        raise ValueError(f"y_true should have shape {(X.shape[0], W2.shape[0])[single:]}, got {y_true.shape}")
    f_act, f_prime = ACTIVATIONS[f]
    out = ManualPass()
    keep = (lambda a: a[0]) if single else (lambda a: a)  # show single-sample results as vectors

    # forward, steps 1-5
    Z1 = X @ W1.T + b1
    out.record("z1", keep(Z1), "W1 x + b1")
    H = out.record("h", keep(f_act(Z1)), f"{f}(z1)")
    H = np.atleast_2d(H)
    Z2 = H @ W2.T + b2
    out.record("z2", keep(Z2), "W2 h + b2")
    Y = _softmax(Z2) if g == "softmax" else ACTIVATIONS[g][0](Z2)
    out.record("y_pred", keep(Y), f"{g}(z2)")
    L, dL_dY = LOSSES[loss](Y, T)
    out.record("L", L, f"{loss}(y_pred, y_true)")

    # backward, steps 1-4
    out.record("dL_dy", keep(dL_dY), f"d {loss} / d y_pred")
    if g == "softmax":  # the softmax Jacobian is not diagonal: J^T v = y * (v - sum(v * y))
        delta_output = Y * (dL_dY - np.sum(dL_dY * Y, axis=1, keepdims=True))
        out.record("delta_output", keep(delta_output), "softmax Jacobian^T dL/dy  (= y_pred - y_true for CE)")
    else:
        dY_dZ2 = out.record("dy_dz2", keep(ACTIVATIONS[g][1](Z2)), f"{g}'(z2)")
        delta_output = dL_dY * np.atleast_2d(dY_dZ2)
        out.record("delta_output", keep(delta_output), "dL/dy * g'(z2)")
    out.record("dL_dW2", delta_output.T @ H, "outer(delta_output, h), summed over samples")
    out.record("dL_db2", delta_output.sum(axis=0), "delta_output, summed over samples")
    delta_hidden = (delta_output @ W2) * f_prime(Z1)
    out.record("delta_hidden", keep(delta_hidden), "(W2^T delta_output) * f'(z1)")
    out.record("dL_dW1", delta_hidden.T @ X, "outer(delta_hidden, x), summed over samples")
    out.record("dL_db1", delta_hidden.sum(axis=0), "delta_hidden, summed over samples")
    return out


def sgd_update(params: dict[str, np.ndarray], grads: dict[str, np.ndarray], lr: float) -> dict[str, np.ndarray]:
    """Step 5: W <- W - lr dL/dW for every parameter (returns new arrays; the inputs are untouched)."""
    return {name: params[name] - lr * grads[name] for name in params}


# ----------------------------------------------------------------------------- the same network, by the engine


def autodiff_three_layer(x, y_true, W1, b1, W2, b2, f="sigmoid", g="sigmoid", loss="mse"):
    """The reference network written with engine ops; returns (loss tensor, dict of parameter leaves).

    Call ``loss.backward()`` and read ``leaves["W1"].grad`` etc. to compare with :func:`three_layer`.
    """
    given = {"W1": W1, "b1": b1, "W2": W2, "b2": b2}
    leaves = {  # tensors are used as they are (so gradcheck can pass its own), arrays become new leaves
        name: value if isinstance(value, Tensor) else tensor(value, requires_grad=True, name=name)
        for name, value in given.items()
    }
    X, T = np.atleast_2d(np.asarray(x, dtype=np.float64)), np.atleast_2d(np.asarray(y_true, dtype=np.float64))
    h = _engine_activation(F.linear(tensor(X), leaves["W1"], leaves["b1"]), f)
    z2 = F.linear(h, leaves["W2"], leaves["b2"])
    y = z2.softmax(axis=1) if g == "softmax" else _engine_activation(z2, g)
    n = X.shape[0]
    if loss == "mse":
        value = F.mse_loss(y, T)
    elif loss == "half_sse":
        value = 0.5 * ((y - T) ** 2).sum() / n
    elif loss == "cross_entropy":
        value = -(y.log() * T).sum() / n
    elif loss == "bce":
        value = -(y.log() * T + (1 - y).log() * (1 - T)).mean()
    else:
        raise ValueError(f"unknown loss {loss!r}; choose from {sorted(LOSSES)}")
    return value, leaves


def _engine_activation(t, name):
    if name == "identity":
        return t
    if name == "leaky_relu":
        return t.leaky_relu(0.01)
    return getattr(t, name)()
