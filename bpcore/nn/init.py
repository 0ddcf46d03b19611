"""Weight initialisation, with PyTorch's names, fans and gains.

Why the scales: a layer y = W x with n inputs has Var(y) = n Var(W) Var(x). Keeping the variance
of activations (forward) and of gradients (backward) from growing or shrinking layer after
layer needs Var(W) ~ 1/n:

* Xavier/Glorot (tanh, sigmoid, linear): Var(W) = 2 / (fan_in + fan_out), a compromise between
  the forward (1/fan_in) and backward (1/fan_out) conditions.
* Kaiming/He (ReLU): ReLU zeroes half of its inputs and so halves the variance, which
  Var(W) = 2 / fan_in restores.

A uniform distribution U(-a, a) has variance a^2 / 3, hence the sqrt(3) in the uniform variants.
Every function fills ``tensor.data`` in place and returns the tensor.
"""

from __future__ import annotations

import math

from bpcore.random import generator
from bpcore.tensor import Tensor


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """The factor that keeps the variance of activations at 1 through ``nonlinearity``."""
    if nonlinearity in ("linear", "sigmoid", "identity", "conv1d", "conv2d"):
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else param
        return math.sqrt(2.0 / (1 + slope**2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"calculate_gain: unknown nonlinearity {nonlinearity!r}")


def fans(tensor: Tensor) -> tuple[int, int]:
    """(fan_in, fan_out) of a weight shaped (out, in, *kernel), as PyTorch computes them."""
    shape = tensor.shape
    if len(shape) < 2:
        raise ValueError(f"fan in and fan out need a weight with at least 2 dimensions, got shape {shape}")
    receptive_field = math.prod(shape[2:])
    return shape[1] * receptive_field, shape[0] * receptive_field


def _fill(tensor: Tensor, values) -> Tensor:
    tensor.data[...] = values
    return tensor


def zeros_(tensor: Tensor) -> Tensor:
    return _fill(tensor, 0.0)


def ones_(tensor: Tensor) -> Tensor:
    return _fill(tensor, 1.0)


def constant_(tensor: Tensor, value: float) -> Tensor:
    return _fill(tensor, value)


def normal_(tensor: Tensor, mean: float = 0.0, std: float = 1.0, rng=None) -> Tensor:
    return _fill(tensor, generator(rng).normal(mean, std, size=tensor.shape))


def uniform_(tensor: Tensor, a: float = 0.0, b: float = 1.0, rng=None) -> Tensor:
    return _fill(tensor, generator(rng).uniform(a, b, size=tensor.shape))


def xavier_uniform_(tensor: Tensor, gain: float = 1.0, rng=None) -> Tensor:
    fan_in, fan_out = fans(tensor)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))  # sqrt(3) * std, std^2 = 2 / (fan_in + fan_out)
    return uniform_(tensor, -bound, bound, rng=rng)


def xavier_normal_(tensor: Tensor, gain: float = 1.0, rng=None) -> Tensor:
    fan_in, fan_out = fans(tensor)
    return normal_(tensor, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)), rng=rng)


def _kaiming_std(tensor, a, mode, nonlinearity) -> float:
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"mode must be 'fan_in' or 'fan_out', got {mode!r}")
    fan_in, fan_out = fans(tensor)
    fan = fan_in if mode == "fan_in" else fan_out
    return calculate_gain(nonlinearity, a) / math.sqrt(fan)


def kaiming_uniform_(tensor: Tensor, a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "leaky_relu", rng=None):
    bound = math.sqrt(3.0) * _kaiming_std(tensor, a, mode, nonlinearity)
    return uniform_(tensor, -bound, bound, rng=rng)


def kaiming_normal_(tensor: Tensor, a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "leaky_relu", rng=None):
    return normal_(tensor, 0.0, _kaiming_std(tensor, a, mode, nonlinearity), rng=rng)


__all__ = [
    "calculate_gain",
    "constant_",
    "fans",
    "kaiming_normal_",
    "kaiming_uniform_",
    "normal_",
    "ones_",
    "uniform_",
    "xavier_normal_",
    "xavier_uniform_",
    "zeros_",
]
