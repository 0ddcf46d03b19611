"""Notebook 04 (vanishing and exploding gradients): deep networks built to order and measured.

The gradient reaching layer l is the loss gradient multiplied by one Jacobian per layer above it:

    dL/dh_l = J_{l+1}^T J_{l+2}^T ... J_L^T dL/dh_L,     J_k = diag(f'(z_k)) W_k

If the typical J_k shrinks vectors (sigmoid: f' <= 1/4; weights too small) the product vanishes
exponentially with depth; if it stretches them (weights too large) it explodes. The fixes act on
the factors: an activation whose slope is 1 where it is active (ReLU), weights scaled so each
factor keeps the variance (Xavier for tanh, He for ReLU), normalisation that rescales every layer,
and residual connections, whose Jacobian is I + (...), so a path with factor 1 always exists.

Claims the tests prove on these numbers (tests/labs/test_vanishing.py): a deep sigmoid network's
first-layer gradient vanishes under every initialisation; matched initialisation (Xavier for tanh,
He for ReLU) keeps it alive; large weights make it explode; BatchNorm and residual blocks rescue a
deep sigmoid net; the per-layer profile equals a plain backward; clipping by norm keeps the
gradient's direction and clipping by value does not; in a linear RNN the gradient t steps back is
rho^t exactly when the recurrent matrix is rho times an orthogonal one, and only in its long-run
growth rate for a random matrix of the same spectral radius (:func:`linear_rnn_gradient_norms`,
:func:`random_with_spectral_radius`); a wide tanh network with N(0, 1) weights saturates and still
explodes, by the factor :func:`tanh_gradient_gain` per layer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bpcore import nn
from bpcore.labs import one_blas_thread
from bpcore.nn import init as nn_init
from bpcore.optim import clip_grad_norm_, clip_grad_value_
from bpcore.random import manual_seed
from bpcore.tensor import Tensor

ACTIVATIONS = {"sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "relu": nn.ReLU}
INITS = ("small", "default", "xavier", "he", "large")


def _init_weight(weight, scheme: str) -> None:
    if scheme == "small":
        nn_init.normal_(weight, 0.0, 0.01)
    elif scheme == "large":
        nn_init.normal_(weight, 0.0, 1.0)
    elif scheme == "xavier":
        nn_init.xavier_normal_(weight)
    elif scheme == "he":
        nn_init.kaiming_normal_(weight, nonlinearity="relu")
    elif scheme != "default":  # "default" keeps PyTorch's U(+-1/sqrt(fan_in))
        raise ValueError(f"init must be one of {INITS}, got {scheme!r}")


class Block(nn.Module):
    """Linear -> (BatchNorm) -> activation, optionally wrapped as x + block(x)."""

    def __init__(self, width: int, activation: str, init: str, batchnorm: bool, residual: bool):
        super().__init__()
        self.linear = nn.Linear(width, width)
        _init_weight(self.linear.weight, init)
        nn_init.zeros_(self.linear.bias)
        self.norm = nn.BatchNorm1d(width) if batchnorm else None
        self.act = ACTIVATIONS[activation]()
        self.residual = residual

    def forward(self, x):
        z = self.linear(x)
        if self.norm is not None:
            z = self.norm(z)
        out = self.act(z)
        return x + out if self.residual else out


def deep_mlp(
    depth: int,
    width: int = 32,
    activation: str = "tanh",
    init: str = "default",
    batchnorm: bool = False,
    residual: bool = False,
    in_features: int = 64,
    classes: int = 10,
    seed: int = 0,
) -> nn.Sequential:
    """An input layer, ``depth`` identical hidden blocks, and a read-out: the subject of every experiment here."""
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
    manual_seed(seed)
    first = nn.Linear(in_features, width)
    blocks = [Block(width, activation, init, batchnorm, residual) for _ in range(depth)]
    return nn.Sequential(first, ACTIVATIONS[activation](), *blocks, nn.Linear(width, classes))


@dataclass
class DepthProfile:
    """Per hidden block, from the first (closest to the input) to the last."""

    weight_grad_norms: np.ndarray  # ||dL/dW_l||
    activation_grad_norms: np.ndarray  # ||dL/dh_l||, h_l the block's output
    activation_std: np.ndarray  # spread of h_l: collapsing to 0 or saturating are the two failures

    @property
    def ratio(self) -> float:
        """||dL/dh|| at the first block over the last: << 1 vanishing, >> 1 exploding, ~1 healthy.

        (The weight gradients dL/dW = delta h^T also carry the activations' scale, so when the
        activations collapse too, their ratio can look healthy while nothing learns.)
        """
        return float(self.activation_grad_norms[0] / self.activation_grad_norms[-1])


@one_blas_thread
def depth_profile(model: nn.Sequential, X, y, loss_fn) -> DepthProfile:
    """One forward and backward pass; read every block's gradient and activation statistics."""
    blocks = [m for m in model if isinstance(m, Block)]
    outputs = []
    h = Tensor(np.asarray(X, dtype=np.float64))
    for module in model:
        h = module(h)
        if isinstance(module, Block):
            h.retain_grad()
            outputs.append(h)
    model.zero_grad()
    loss_fn(h, y).backward()
    profile = DepthProfile(
        weight_grad_norms=np.array([np.linalg.norm(b.linear.weight.grad) for b in blocks]),
        activation_grad_norms=np.array([np.linalg.norm(o.grad) for o in outputs]),
        activation_std=np.array([o.data.std() for o in outputs]),
    )
    model.zero_grad()
    return profile


def clipping_effect(grads: list[np.ndarray], max_norm: float, clip_value: float) -> dict[str, float]:
    """Clip the same gradients by global norm and by value: how long are they after, and do they still
    point the same way? (cosine similarity with the original direction)."""
    original = np.concatenate([g.ravel() for g in grads])
    results = {"norm before": float(np.linalg.norm(original))}
    for name, clip in (
        ("by norm", lambda ps: clip_grad_norm_(ps, max_norm)),
        ("by value", lambda ps: clip_grad_value_(ps, clip_value)),
    ):
        params = [Tensor(np.zeros_like(g), requires_grad=True) for g in grads]
        for p, g in zip(params, grads, strict=True):
            p.grad = g.copy()
        clip(params)
        clipped = np.concatenate([p.grad.ravel() for p in params])
        results[f"norm after {name}"] = float(np.linalg.norm(clipped))
        results[f"cosine {name}"] = float(clipped @ original / (np.linalg.norm(clipped) * np.linalg.norm(original)))
    return results


def linear_rnn_gradient_norms(W, steps: int, seed: int = 0) -> np.ndarray:
    """||dh_T/dh_{T-t}|| applied to a random unit vector, for t = 0..steps: the product of W^T's."""
    W = np.asarray(W, dtype=np.float64)
    v = np.random.default_rng(seed).standard_normal(W.shape[0])
    v /= np.linalg.norm(v)
    norms = [1.0]
    for _ in range(steps):
        v = W.T @ v
        norms.append(float(np.linalg.norm(v)))
    return np.array(norms)


def random_with_spectral_radius(n: int, rho: float, seed: int = 0) -> np.ndarray:
    """An n x n Gaussian matrix rescaled so its largest |eigenvalue| is exactly ``rho``.

    Unlike ``rho * Q`` with Q orthogonal (every singular value equal to rho), its singular values
    spread around rho: powers of it only approach rho^t in growth rate, not term by term.
    """
    W = np.random.default_rng(seed).standard_normal((n, n))
    return W * (rho / np.max(np.abs(np.linalg.eigvals(W))))


def tanh_gradient_gain(weight_var: float, points: int = 200_001) -> tuple[float, float]:
    """Mean-field (q*, chi) of a wide tanh layer with weights N(0, weight_var / fan_in) and no bias.

    q* is the fixed point of q = weight_var * E[tanh(z)^2], z ~ N(0, q): the pre-activations' variance
    deep in the network. chi = weight_var * E[tanh'(z)^2] at q* is the factor by which one layer
    multiplies the squared gradient norm on the way back (Poole et al. 2016, Schoenholz et al. 2017):
    chi < 1 vanishes (ordered phase), chi > 1 explodes (chaotic phase), chi = 1 is the edge of chaos.
    The expectations are integrals against the normal density on a fixed grid: no sampling, same
    numbers on every machine.
    """
    u = np.linspace(-12.0, 12.0, points)  # z = sqrt(q) u, u ~ N(0, 1)
    weights = np.exp(-0.5 * u**2) / np.sqrt(2 * np.pi) * (u[1] - u[0])
    q = weight_var
    for _ in range(200):
        q_next = weight_var * float(np.sum(weights * np.tanh(np.sqrt(q) * u) ** 2))
        if abs(q_next - q) <= 1e-12 * max(q, 1e-300):
            break
        q = q_next
    slope = 1 - np.tanh(np.sqrt(q) * u) ** 2
    return q, weight_var * float(np.sum(weights * slope**2))
