"""Tensors made from nothing or from a shape: zeros, ones, full, arange, linspace, eye, empty, and the *_like forms.

Float creation functions give float64 (this engine's default; see README's differences from
PyTorch); ``arange`` of integers gives int64, as in PyTorch.
"""

from __future__ import annotations

import numpy as np

from bpcore.random import _shape, generator
from bpcore.tensor import Tensor


def _made(array: np.ndarray, requires_grad: bool) -> Tensor:
    return Tensor(array, requires_grad=requires_grad)


def zeros(*shape, requires_grad: bool = False, dtype=np.float64) -> Tensor:
    """A tensor of zeros: ``bp.zeros(2, 3)`` or ``bp.zeros((2, 3))``."""
    return _made(np.zeros(_shape(shape), dtype=dtype), requires_grad)


def ones(*shape, requires_grad: bool = False, dtype=np.float64) -> Tensor:
    return _made(np.ones(_shape(shape), dtype=dtype), requires_grad)


def empty(*shape, requires_grad: bool = False, dtype=np.float64) -> Tensor:
    """Uninitialised in PyTorch; zeros here, so nothing depends on leftover memory."""
    return zeros(*shape, requires_grad=requires_grad, dtype=dtype)


def full(shape, fill_value, requires_grad: bool = False, dtype=None) -> Tensor:
    """``bp.full((2, 3), 7.0)``: the dtype follows the value unless given (7 gives int64, 7.0 float64)."""
    if dtype is None:
        dtype = np.bool_ if isinstance(fill_value, bool | np.bool_) else (
            np.int64 if isinstance(fill_value, int | np.integer) else np.float64)
    return _made(np.full(tuple(shape) if not isinstance(shape, int) else (shape,), fill_value, dtype=dtype),
                 requires_grad)


def arange(start, end=None, step=1, requires_grad: bool = False, dtype=None) -> Tensor:
    """``bp.arange(5)`` -> 0..4 (int64); ``bp.arange(0, 1, 0.25)`` -> float64, end excluded."""
    start, end = (0, start) if end is None else (start, end)
    if dtype is None:
        whole = all(isinstance(v, int | np.integer) for v in (start, end, step))
        dtype = np.int64 if whole else np.float64
    return _made(np.arange(start, end, step, dtype=dtype), requires_grad)


def linspace(start: float, end: float, steps: int, requires_grad: bool = False, dtype=np.float64) -> Tensor:
    """``steps`` evenly spaced values from start to end, both included."""
    return _made(np.linspace(start, end, steps, dtype=dtype), requires_grad)


def eye(n: int, m: int | None = None, requires_grad: bool = False, dtype=np.float64) -> Tensor:
    return _made(np.eye(n, m, dtype=dtype), requires_grad)


def zeros_like(x, requires_grad: bool = False, dtype=None) -> Tensor:
    data = x.data if isinstance(x, Tensor) else np.asarray(x)
    return _made(np.zeros(data.shape, dtype=dtype or data.dtype), requires_grad)


def ones_like(x, requires_grad: bool = False, dtype=None) -> Tensor:
    data = x.data if isinstance(x, Tensor) else np.asarray(x)
    return _made(np.ones(data.shape, dtype=dtype or data.dtype), requires_grad)


def full_like(x, fill_value, requires_grad: bool = False, dtype=None) -> Tensor:
    data = x.data if isinstance(x, Tensor) else np.asarray(x)
    return _made(np.full(data.shape, fill_value, dtype=dtype or data.dtype), requires_grad)


def randn_like(x, rng=None, requires_grad: bool = False, dtype=None) -> Tensor:
    """Standard normal samples from the package generator, shaped (and typed) like ``x``."""
    data = x.data if isinstance(x, Tensor) else np.asarray(x)
    dtype = dtype or (data.dtype if np.issubdtype(data.dtype, np.floating) else np.float64)
    return _made(generator(rng).standard_normal(data.shape).astype(dtype), requires_grad)


def from_numpy(array: np.ndarray) -> Tensor:
    """A tensor that shares ``array``'s memory, as ``torch.from_numpy``: changes to one show in the other."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"from_numpy expects a numpy array, got {type(array).__name__}")
    return Tensor(array)
