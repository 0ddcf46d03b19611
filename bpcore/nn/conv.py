"""Convolution and pooling for images, with PyTorch's names and NCHW shapes.

A convolution layer slides one small filter over the whole image, so the same few weights are
used at every position. Shapes: x (N, C_in, H, W), weight (C_out, C_in, kh, kw), bias (C_out,)
-> y (N, C_out, out_h, out_w), with out_h = (H + 2 pad_h - kh) // stride_h + 1 (out_w alike).

The forward pass is a cross-correlation (the kernel is not flipped), as in every deep-learning
library; x_pad is x with ``padding`` zeros around each image::

    y[n, o, i, j] = b[o] + sum_{c, p, q} x_pad[n, c, i*sh + p, j*sw + q] * W[o, c, p, q]

Its gradients, g = dL/dy (shaped like y), follow from the chain rule term by term:

* dL/dW[o, c, p, q] = sum_{n, i, j} g[n, o, i, j] * x_pad[n, c, i*sh + p, j*sw + q]
  W is used at every position (i, j), so its gradient is the SUM over positions of
  (upstream gradient at that position) x (the input patch there): parameter sharing.
  :func:`filter_gradient_contributions` returns the terms of that sum one by one.
* dL/db[o] = sum_{n, i, j} g[n, o, i, j]: the bias is added at every position too.
* dL/dx_pad[n, c, a, b] = sum_{o, i, j} g[n, o, i, j] * W[o, c, a - i*sh, b - j*sw]
  (only terms whose kernel index lies inside the kernel): each pixel collects gradient from
  every window that covered it. For stride 1 this is the FULL convolution of g with the kernel
  flipped in both directions (and C_in, C_out swapped): pad g by kh-1, kw-1 and correlate with
  W[:, :, ::-1, ::-1]. For stride s, first put s-1 zeros between g's entries (hence the name
  "transposed convolution"). Cropping the padding off dx_pad gives dx.

How it is computed, without a loop over pixels ("im2col"): a strided *view* lists every window
of the padded input, windows[n, c, i, j, p, q] = x_pad[n, c, i*sh + p, j*sw + q]; copied into a
matrix with one column per output position, the whole convolution is ONE matrix product with
the weights as rows. The backward pass uses the same matrix: dW = g_rows @ cols^T, and the
windows' gradient W_rows^T @ g_rows is added back into the pixels they came from ("col2im",
the same sum as the transposed convolution above, grouped by kernel offset).

Pooling reuses the windows: max_pool2d sends each window's gradient to its largest element (the
first one on ties, as PyTorch does), avg_pool2d shares it equally.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from bpcore.nn import init
from bpcore.nn.module import Module, Parameter
from bpcore.ops import primitive
from bpcore.tensor import ShapeError, Tensor

# ============================================================================ windows: im2col and col2im


def _pair(value, what: str, minimum: int) -> tuple[int, int]:
    """An int or an (h, w) pair as (h, w), each checked to be an integer >= minimum."""
    pair = tuple(value) if isinstance(value, tuple | list) else (value, value)
    if len(pair) != 2 or not all(isinstance(v, int | np.integer) and v >= minimum for v in pair):
        raise ValueError(f"{what} must be an integer >= {minimum} or a pair of them, got {value!r}")
    return int(pair[0]), int(pair[1])


def _pad(x: np.ndarray, padding: tuple[int, int]) -> np.ndarray:
    """(N, C, H, W) -> (N, C, H + 2 ph, W + 2 pw), zeros around each image."""
    ph, pw = padding
    if ph == 0 and pw == 0:
        return x
    n, c, h, w = x.shape
    x_pad = np.zeros((n, c, h + 2 * ph, w + 2 * pw), dtype=x.dtype)  # (np.pad does the same, 20x slower on small x)
    x_pad[:, :, ph : ph + h, pw : pw + w] = x
    return x_pad


def _unpad(dx_pad: np.ndarray, padding: tuple[int, int]) -> np.ndarray:
    """The VJP of _pad: the padding zeros were constants, so their gradient is dropped."""
    ph, pw = padding
    h, w = dx_pad.shape[2] - 2 * ph, dx_pad.shape[3] - 2 * pw
    return dx_pad[:, :, ph : ph + h, pw : pw + w]


def _windows(x: np.ndarray, kernel: tuple[int, int], stride: tuple[int, int]) -> np.ndarray:
    """Every window of x as a view (no copy): (N, C, H, W) -> (N, C, out_h, out_w, kh, kw).

    windows[n, c, i, j, p, q] = x[n, c, i*sh + p, j*sw + q]
    """
    sh, sw = stride
    return sliding_window_view(x, kernel, axis=(2, 3))[:, :, ::sh, ::sw]


def _add_windows_back(d_windows: np.ndarray, x_shape: tuple, stride: tuple[int, int]) -> np.ndarray:
    """col2im, the VJP of _windows: (N, C, out_h, out_w, kh, kw) -> (N, C, H, W).

    dx[n, c, i*sh + p, j*sw + q] += d_windows[n, c, i, j, p, q] for every window (i, j) and
    offset (p, q); a pixel inside several windows receives the sum (``+=``, never ``=``).
    One strided slice per kernel offset: kh*kw vectorised adds instead of a loop over pixels.
    """
    _, _, out_h, out_w, kh, kw = d_windows.shape
    sh, sw = stride
    dx = np.zeros(x_shape, dtype=d_windows.dtype)
    for p in range(kh):
        for q in range(kw):
            rows = slice(p, p + sh * (out_h - 1) + 1, sh)  # the pixels that sat at offset p of some window
            cols = slice(q, q + sw * (out_w - 1) + 1, sw)
            dx[:, :, rows, cols] += d_windows[:, :, :, :, p, q]
    return dx


# ============================================================================ conv2d


def _check_conv(x, weight, bias, padding) -> None:
    if x.ndim != 4:
        raise ShapeError(
            f"conv2d expects an input of shape (N, C_in, H, W), got shape {x.shape}; for one image use "
            "x[None], for flattened images reshape first (digits: X.reshape(-1, 1, 8, 8))"
        )
    if weight.ndim != 4:
        raise ShapeError(f"conv2d expects a weight of shape (C_out, C_in, kh, kw), got shape {weight.shape}")
    if x.shape[1] != weight.shape[1]:
        raise ShapeError(
            f"conv2d: the input has {x.shape[1]} channels (shape {x.shape}, which is (N, C_in, H, W)) but the "
            f"weight expects {weight.shape[1]} (weight shape {weight.shape}, which is (C_out, C_in, kh, kw))"
        )
    if bias is not None and np.shape(bias) != weight.shape[:1]:
        raise ShapeError(
            f"conv2d: bias has shape {np.shape(bias)}, expected ({weight.shape[0]},): one value per output channel"
        )
    _check_fits(x.shape, weight.shape[2:], padding, "conv2d", "kernel")


def _check_fits(x_shape, kernel, padding, op: str, what: str) -> None:
    padded = (x_shape[2] + 2 * padding[0], x_shape[3] + 2 * padding[1])
    if kernel[0] > padded[0] or kernel[1] > padded[1]:
        raise ShapeError(
            f"{op}: the {what} ({kernel[0]}x{kernel[1]}) is larger than the padded input "
            f"({padded[0]}x{padded[1]}: input {x_shape[2]}x{x_shape[3]} with padding {padding}); "
            f"use a smaller {what} or more padding"
        )


@primitive("conv2d")
def _conv2d(x, weight, bias, stride=(1, 1), padding=(0, 0)):
    _check_conv(x, weight, bias, padding)
    c_out, c_in, kh, kw = weight.shape
    x_pad = _pad(x, padding)
    padded_shape = x_pad.shape  # the backward pass needs only its shape, not the array
    windows = _windows(x_pad, (kh, kw), stride)  # (N, C_in, out_h, out_w, kh, kw), a view
    n, _, out_h, out_w = windows.shape[:4]
    # im2col: one column per output position (n, i, j), one row per weight (c, p, q). This copy is
    # the only pass over the input; the (C_in, kh, kw) row order matches weight.reshape(C_out, -1).
    cols = windows.transpose(1, 4, 5, 0, 2, 3).reshape(c_in * kh * kw, n * out_h * out_w)
    w_rows = weight.reshape(c_out, -1)  # (C_out, C_in kh kw)
    y = (w_rows @ cols).reshape(c_out, n, out_h, out_w)
    if bias is not None:
        y = y + bias[:, None, None, None]
    # stored as (N, C_out, out_h, out_w), not left a transposed view: later ops, and anything that
    # edits .data through a flat view (as gradcheck does), see ordinary memory
    y = np.ascontiguousarray(y.transpose(1, 0, 2, 3))

    def g_rows(g):  # (N, C_out, out_h, out_w) -> (C_out, N out_h out_w), columns ordered like cols
        return g.transpose(1, 0, 2, 3).reshape(c_out, -1)

    def d_x(g):
        d_cols = w_rows.T @ g_rows(g)  # each window's gradient, (C_in kh kw, N out_h out_w)
        d_windows = d_cols.reshape(c_in, kh, kw, n, out_h, out_w).transpose(3, 0, 4, 5, 1, 2)
        return _unpad(_add_windows_back(d_windows, padded_shape, stride), padding)

    def d_weight(g):  # sum over positions of g x patch, every position at once
        return (g_rows(g) @ cols.T).reshape(weight.shape)

    def d_bias(g):
        return g.sum(axis=(0, 2, 3))

    return y, (d_x, d_weight, d_bias)


def conv2d(x, weight, bias=None, stride=1, padding=0) -> Tensor:
    """2-D convolution (cross-correlation) of a batch of images with a bank of filters.

    Shapes: x (N, C_in, H, W), weight (C_out, C_in, kh, kw), bias (C_out,) or None ->
    y (N, C_out, out_h, out_w), out_h = (H + 2 padding_h - kh) // stride_h + 1.
    ``stride`` and ``padding`` are an int or an (h, w) pair; padding adds zeros.
    The gradients are derived in the module docstring.
    """
    return _conv2d(x, weight, bias, stride=_pair(stride, "stride", 1), padding=_pair(padding, "padding", 0))


# ============================================================================ pooling


def _pool_settings(x, kernel_size, stride, op: str):
    kernel = _pair(kernel_size, "kernel_size", 1)
    stride = kernel if stride is None else _pair(stride, "stride", 1)
    shape = np.shape(x.data if isinstance(x, Tensor) else x)
    if len(shape) != 4:
        raise ShapeError(f"{op} expects an input of shape (N, C, H, W), got shape {shape}")
    _check_fits(shape, kernel, (0, 0), op, "pooling window")
    return kernel, stride


@primitive("max_pool2d")
def _max_pool2d(x, kernel=(2, 2), stride=(2, 2)):
    windows = _windows(x, kernel, stride)  # (N, C, out_h, out_w, kh, kw)
    flat = windows.reshape(*windows.shape[:4], -1)  # (N, C, out_h, out_w, kh kw), a copy
    winner = flat.argmax(axis=-1)  # first largest in reading order: PyTorch's tie rule
    y = np.take_along_axis(flat, winner[..., None], axis=-1)[..., 0]

    def vjp(g):  # the winner alone moved the output; the other elements of its window get 0
        one_hot = winner[..., None] == np.arange(flat.shape[-1])
        return _add_windows_back((one_hot * g[..., None]).reshape(windows.shape), x.shape, stride)

    return y, (vjp,)


def max_pool2d(x, kernel_size, stride=None) -> Tensor:
    """Largest value of each window. x (N, C, H, W) -> (N, C, out_h, out_w), out_h = (H - kh) // sh + 1.

    ``stride`` defaults to ``kernel_size`` (windows side by side). The gradient of each window goes
    to its largest element only; on ties, to the first in reading order, as PyTorch does.
    """
    kernel, stride = _pool_settings(x, kernel_size, stride, "max_pool2d")
    return _max_pool2d(x, kernel=kernel, stride=stride)


@primitive("avg_pool2d")
def _avg_pool2d(x, kernel=(2, 2), stride=(2, 2)):
    windows = _windows(x, kernel, stride)
    area = kernel[0] * kernel[1]

    def vjp(g):  # every element of a window weighs 1/area in its mean
        return _add_windows_back(np.broadcast_to((g / area)[..., None, None], windows.shape), x.shape, stride)

    return windows.mean(axis=(-2, -1)), (vjp,)


def avg_pool2d(x, kernel_size, stride=None) -> Tensor:
    """Mean of each window. x (N, C, H, W) -> (N, C, out_h, out_w); ``stride`` defaults to ``kernel_size``.

    Each element of a window receives 1/(kh kw) of that window's gradient (summed over windows if
    they overlap).
    """
    kernel, stride = _pool_settings(x, kernel_size, stride, "avg_pool2d")
    return _avg_pool2d(x, kernel=kernel, stride=stride)


# ============================================================================ modules


class Conv2d(Module):
    """A bank of ``out_channels`` filters, each (in_channels, kh, kw), slid over the image.

    Shapes: x (N, in_channels, H, W) -> (N, out_channels, out_h, out_w); weight
    (out_channels, in_channels, kh, kw), bias (out_channels,). Default initialisation as PyTorch:
    kaiming_uniform_(a=sqrt(5)) for the weight and U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for the bias,
    both with bound 1/sqrt(fan_in), fan_in = in_channels * kh * kw (the inputs one output sums over).
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, bias=True, rng=None):
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size = _pair(kernel_size, "kernel_size", 1)
        self.stride, self.padding = _pair(stride, "stride", 1), _pair(padding, "padding", 0)
        self.weight = Parameter(np.zeros((out_channels, in_channels, *self.kernel_size)))
        init.kaiming_uniform_(self.weight, a=math.sqrt(5), rng=rng)
        if bias:
            fan_in, _ = init.fans(self.weight)
            bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0.0
            self.bias = Parameter(np.zeros(out_channels))
            init.uniform_(self.bias, -bound, bound, rng=rng)
        else:
            self.bias = None

    def forward(self, x):
        return conv2d(x, self.weight, self.bias, self.stride, self.padding)

    def extra_repr(self) -> str:
        text = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding != (0, 0):
            text += f", padding={self.padding}"
        return text + ("" if self.bias is not None else ", bias=False")


class _Pool2d(Module):
    """What both pooling layers share: a window size and a stride (default: the window size)."""

    def __init__(self, kernel_size, stride=None):
        super().__init__()
        _pair(kernel_size, "kernel_size", 1)  # fail at construction, not at the first forward
        self.kernel_size = kernel_size
        self.stride = kernel_size if stride is None else stride
        _pair(self.stride, "stride", 1)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}"


class MaxPool2d(_Pool2d):
    """Largest value of each kernel_size window: (N, C, H, W) -> (N, C, out_h, out_w). No parameters."""

    def forward(self, x):
        return max_pool2d(x, self.kernel_size, self.stride)


class AvgPool2d(_Pool2d):
    """Mean of each kernel_size window: (N, C, H, W) -> (N, C, out_h, out_w). No parameters."""

    def forward(self, x):
        return avg_pool2d(x, self.kernel_size, self.stride)


# ============================================================================ a CNN for the digits


__all__ = [
    "AvgPool2d",
    "Conv2d",
    "MaxPool2d",
    "avg_pool2d",
    "conv2d",
    "max_pool2d",
]
