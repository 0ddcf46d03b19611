"""Layers as modules, with PyTorch's names, shapes and default initialisations."""

from __future__ import annotations

import math
import numbers

import numpy as np

from bpcore.nn import functional as F
from bpcore.nn import init
from bpcore.nn.module import Module, Parameter
from bpcore.tensor import SWITCHES, ShapeError, Tensor, no_grad, replayed

_MODULE_CALL = Module.__call__


def _size(layer: str, name: str, value) -> int:
    """A layer's size argument (a count of features): a non-negative integer, or an error naming it."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        kind = type(value).__name__
        raise TypeError(f"{layer}: {name} must be an integer (a number of features), got {kind} {value!r}")
    if value < 0:
        raise ValueError(f"{layer}: {name} must be >= 0, got {value} (a weight cannot have a negative dimension)")
    return int(value)


def _empty(*shape) -> np.ndarray:
    return np.zeros(shape, dtype=np.float64)


class Linear(Module):
    """y = x W^T + b. Shapes: x (N, in_features) -> y (N, out_features); W (out, in), b (out,).

    Default initialisation as PyTorch: W and b uniform in +-1/sqrt(in_features).
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, rng=None):
        super().__init__()
        in_features = _size("Linear", "in_features", in_features)
        out_features = _size("Linear", "out_features", out_features)
        self.in_features, self.out_features = in_features, out_features
        self.weight = Parameter(_empty(out_features, in_features))
        init.kaiming_uniform_(self.weight, a=math.sqrt(5), rng=rng)  # = U(-1/sqrt(in), 1/sqrt(in))
        if bias:
            self.bias = Parameter(_empty(out_features))
            bound = 1 / math.sqrt(in_features) if in_features > 0 else 0.0
            init.uniform_(self.bias, -bound, bound, rng=rng)
        else:
            self.bias = None

    def forward(self, x):
        if isinstance(x, Tensor):  # what F.linear checks first: go straight to the op
            return F._linear(x, self.weight, self.bias)
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class Sequential(Module):
    """Modules applied in order; their parameters are named 0.weight, 0.bias, 1.weight, ..."""

    def __init__(self, *modules: Module):
        super().__init__()
        for index, module in enumerate(modules):
            if not isinstance(module, Module):
                raise TypeError(f"Sequential takes modules; argument {index} is a {type(module).__name__}")
            setattr(self, str(index), module)

    def forward(self, x):
        direct = SWITCHES.tracer is None  # bp.compile notes each module's mode and parameters in Module.__call__
        for module in self._modules.values():
            # Module.__call__ only refuses a list or tuple: a tensor goes to forward directly
            if direct and isinstance(x, Tensor) and type(module).__call__ is _MODULE_CALL:
                x = module.forward(x)
            else:
                x = module(x)
        return x

    def __getitem__(self, index: int | slice) -> Module:
        modules = list(self._modules.values())
        return Sequential(*modules[index]) if isinstance(index, slice) else modules[index]

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())


# ----------------------------------------------------------------------------- activations


class ReLU(Module):
    def forward(self, x):
        return x.relu()


class LeakyReLU(Module):
    def __init__(self, negative_slope: float = 0.01):
        super().__init__()
        self.negative_slope = negative_slope

    def forward(self, x):
        return x.leaky_relu(self.negative_slope)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}"


class Sigmoid(Module):
    def forward(self, x):
        return x.sigmoid()


class Tanh(Module):
    def forward(self, x):
        return x.tanh()


class GELU(Module):
    def __init__(self, approximate: str = "none"):
        super().__init__()
        self.approximate = approximate

    def forward(self, x):
        return x.gelu(self.approximate)


class Softmax(Module):
    def __init__(self, dim: int = -1):
        super().__init__()
        self.dim = dim

    def forward(self, x):
        return x.softmax(axis=self.dim)


class Identity(Module):
    def forward(self, x):
        return x


class _Elementwise(Module):
    """A module for an activation function of ``F``, with its settings: ``nn.Softplus(beta=2)``."""

    function = None

    def __init__(self, **settings):
        super().__init__()
        self.settings = settings

    def forward(self, x):
        return type(self).function(x, **self.settings)

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.settings.items())


class Softplus(_Elementwise):
    function = staticmethod(F.softplus)

    def __init__(self, beta: float = 1.0, threshold: float = 20.0):
        super().__init__(beta=beta, threshold=threshold)


class ELU(_Elementwise):
    function = staticmethod(F.elu)

    def __init__(self, alpha: float = 1.0):
        super().__init__(alpha=alpha)


class SELU(_Elementwise):
    function = staticmethod(F.selu)


class SiLU(_Elementwise):
    function = staticmethod(F.silu)


class Mish(_Elementwise):
    function = staticmethod(F.mish)


class Hardtanh(_Elementwise):
    function = staticmethod(F.hardtanh)

    def __init__(self, min_val: float = -1.0, max_val: float = 1.0):
        super().__init__(min_val=min_val, max_val=max_val)


class ReLU6(_Elementwise):
    function = staticmethod(F.relu6)


class LogSigmoid(_Elementwise):
    function = staticmethod(F.logsigmoid)


class Softsign(_Elementwise):
    function = staticmethod(F.softsign)


# ----------------------------------------------------------------------------- regularisation and normalisation


class Dropout(Module):
    """Inverted dropout in training mode, the identity in eval mode."""

    def __init__(self, p: float = 0.5, rng=None):
        super().__init__()
        if not 0 <= p < 1:
            raise ValueError(f"dropout probability must be in [0, 1), got {p}")
        self.p, self.rng = p, rng

    def forward(self, x):
        return F.dropout(x, self.p, self.training, rng=self.rng)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class BatchNorm1d(Module):
    """Normalise each feature over the batch, then scale and shift: y = gamma x_hat + beta.

    Shapes: (N, C) or (N, C, L). Training uses the batch's mean and biased variance and updates
    running estimates (running = (1 - momentum) running + momentum batch, with the unbiased
    variance, as PyTorch does); eval mode uses the running estimates, so one sample's output no
    longer depends on the others in its batch.
    """

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1, affine: bool = True):
        super().__init__()
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.weight = Parameter(np.ones(num_features)) if affine else None
        self.bias = Parameter(np.zeros(num_features)) if affine else None
        self.register_buffer("running_mean", np.zeros(num_features))
        self.register_buffer("running_var", np.ones(num_features))
        self.register_buffer("num_batches_tracked", np.array(0))

    def forward(self, x):
        if x.ndim not in (2, 3) or x.shape[1] != self.num_features:
            raise ShapeError(
                f"BatchNorm1d({self.num_features}) expects input of shape (N, {self.num_features}) or "
                f"(N, {self.num_features}, L), got {x.shape}"
            )
        axes = (0,) if x.ndim == 2 else (0, 2)
        shape = (1, -1) if x.ndim == 2 else (1, -1, 1)
        if self.training:
            count = math.prod(x.shape[a] for a in axes)
            if count < 2:
                raise ValueError(f"BatchNorm1d needs more than one value per feature in training, got input {x.shape}")
            mean = x.mean(axis=axes, keepdims=True)
            var = x.var(axis=axes, keepdims=True, unbiased=False)  # the batch variance normalises
            with no_grad():
                self._update_running(mean.data, var.data, count)
            x_hat = (x - mean) / (var + self.eps).sqrt()
        else:
            mean = self.running_mean.reshape(shape).astype(x.dtype)
            std = np.sqrt(self.running_var.reshape(shape) + self.eps).astype(x.dtype)
            x_hat = (x - mean) / std
        if self.weight is None:
            return x_hat
        return x_hat * self.weight.reshape(shape) + self.bias.reshape(shape)

    @replayed  # bp.compile replays the update as a call (it works on raw arrays, outside the ops)
    def _update_running(self, mean: np.ndarray, var: np.ndarray, count: int) -> None:
        m = self.momentum
        unbiased = var.reshape(-1) * count / (count - 1)
        self.running_mean = (1 - m) * self.running_mean + m * mean.reshape(-1)
        self.running_var = (1 - m) * self.running_var + m * unbiased
        self.num_batches_tracked = self.num_batches_tracked + 1

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}"


class LayerNorm(Module):
    """Normalise each sample over its last dimensions (no batch statistics, same in train and eval)."""

    def __init__(self, normalized_shape, eps: float = 1e-5, elementwise_affine: bool = True):
        super().__init__()
        self.normalized_shape = (
            (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
        )
        self.eps = eps
        self.weight = Parameter(np.ones(self.normalized_shape)) if elementwise_affine else None
        self.bias = Parameter(np.zeros(self.normalized_shape)) if elementwise_affine else None

    def forward(self, x):
        k = len(self.normalized_shape)
        if x.shape[-k:] != self.normalized_shape:
            raise ShapeError(f"LayerNorm{self.normalized_shape} expects input ending in that shape, got {x.shape}")
        axes = tuple(range(x.ndim - k, x.ndim))
        mean = x.mean(axis=axes, keepdims=True)
        x_hat = (x - mean) / (x.var(axis=axes, keepdims=True, unbiased=False) + self.eps).sqrt()
        if self.weight is None:
            return x_hat
        return x_hat * self.weight + self.bias

    def extra_repr(self) -> str:
        return f"{self.normalized_shape}, eps={self.eps}"


# ----------------------------------------------------------------------------- structure


class Embedding(Module):
    """A lookup table: row i of ``weight`` (num_embeddings, embedding_dim) is the vector of token i.

    Its gradient adds the upstream gradient into the rows that were looked up, so a token that
    appears twice in a batch gets both contributions. Initialised N(0, 1), as PyTorch does.
    """

    takes_lists = True  # token indices: a list such as [3, 1, 4] is a fine input

    def __init__(self, num_embeddings: int, embedding_dim: int, rng=None):
        super().__init__()
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        self.weight = Parameter(_empty(num_embeddings, embedding_dim))
        init.normal_(self.weight, rng=rng)

    def forward(self, indices):
        idx = np.asarray(indices.data if isinstance(indices, Tensor) else indices)
        if not np.issubdtype(idx.dtype, np.integer):
            raise TypeError(f"Embedding expects integer indices, got dtype {idx.dtype}")
        if idx.size and (idx.min() < 0 or idx.max() >= self.num_embeddings):
            raise IndexError(f"Embedding({self.num_embeddings}): indices must lie in [0, {self.num_embeddings - 1}]")
        return self.weight[idx]

    def extra_repr(self) -> str:
        return f"{self.num_embeddings}, {self.embedding_dim}"


class Residual(Module):
    """y = x + block(x). The '+ x' gives the gradient a path that skips the block: dy/dx = I + dblock/dx."""

    def __init__(self, block: Module):
        super().__init__()
        self.block = block

    def forward(self, x):
        return x + self.block(x)


class Flatten(Module):
    """(N, d1, d2, ...) -> (N, d1 * d2 * ...), from ``start_dim`` on."""

    def __init__(self, start_dim: int = 1):
        super().__init__()
        self.start_dim = start_dim

    def forward(self, x):
        return x.reshape(*x.shape[: self.start_dim], -1)
