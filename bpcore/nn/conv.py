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

Dilation d spaces the kernel's taps d pixels apart (the window spans d (k - 1) + 1 pixels), and
``groups`` splits the channels into independent convolutions (groups = C_in: one filter per channel,
"depthwise"); both only change which pixels the windows list, so the same matrix product serves.
``conv_transpose2d`` is the adjoint of conv2d: its forward pass is conv2d's input gradient (col2im),
and its input gradient is conv2d itself. ``conv1d`` is conv2d on images one pixel high.

Pooling reuses the windows: max_pool2d sends each window's gradient to its largest element (the
first one on ties, as PyTorch does), avg_pool2d shares it equally.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from bpcore import ops
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


def _pad(x: np.ndarray, padding: tuple[int, int], fill: float = 0.0) -> np.ndarray:
    """(N, C, H, W) -> (N, C, H + 2 ph, W + 2 pw), ``fill`` (zeros) around each image."""
    ph, pw = padding
    if ph == 0 and pw == 0:
        return x
    n, c, h, w = x.shape
    x_pad = np.full((n, c, h + 2 * ph, w + 2 * pw), fill, dtype=x.dtype)  # (np.pad: the same, 20x slower on small x)
    x_pad[:, :, ph : ph + h, pw : pw + w] = x
    return x_pad


def _unpad(dx_pad: np.ndarray, padding: tuple[int, int]) -> np.ndarray:
    """The VJP of _pad: the padding zeros were constants, so their gradient is dropped."""
    ph, pw = padding
    h, w = dx_pad.shape[2] - 2 * ph, dx_pad.shape[3] - 2 * pw
    return dx_pad[:, :, ph : ph + h, pw : pw + w]


def _span(kernel, dilation) -> tuple[int, int]:
    """How many pixels a dilated kernel covers: d (k - 1) + 1 along each side."""
    return tuple(d * (k - 1) + 1 for k, d in zip(kernel, dilation, strict=True))


def _windows(x: np.ndarray, kernel: tuple[int, int], stride: tuple[int, int], dilation=(1, 1)) -> np.ndarray:
    """Every window of x as a view (no copy): (N, C, H, W) -> (N, C, out_h, out_w, kh, kw).

    windows[n, c, i, j, p, q] = x[n, c, i*sh + p*dh, j*sw + q*dw]
    """
    (sh, sw), (dh, dw) = stride, dilation
    return sliding_window_view(x, _span(kernel, dilation), axis=(2, 3))[:, :, ::sh, ::sw, ::dh, ::dw]


def _add_windows_back(d_windows: np.ndarray, x_shape: tuple, stride: tuple[int, int], dilation=(1, 1)) -> np.ndarray:
    """col2im, the VJP of _windows: (N, C, out_h, out_w, kh, kw) -> (N, C, H, W).

    dx[n, c, i*sh + p*dh, j*sw + q*dw] += d_windows[n, c, i, j, p, q] for every window (i, j) and
    offset (p, q); a pixel inside several windows receives the sum (``+=``, never ``=``).
    One strided slice per kernel offset: kh*kw vectorised adds instead of a loop over pixels.
    """
    _, _, out_h, out_w, kh, kw = d_windows.shape
    (sh, sw), (dh, dw) = stride, dilation
    dx = np.zeros(x_shape, dtype=d_windows.dtype)
    for p in range(kh):
        for q in range(kw):
            rows = slice(p * dh, p * dh + sh * (out_h - 1) + 1, sh)  # the pixels that sat at offset p of some window
            cols = slice(q * dw, q * dw + sw * (out_w - 1) + 1, sw)
            dx[:, :, rows, cols] += d_windows[:, :, :, :, p, q]
    return dx


# ============================================================================ conv2d


def _check_conv(x, weight, bias, padding, dilation=(1, 1), groups=1, op="conv2d") -> None:
    if x.ndim != 4:
        raise ShapeError(
            f"{op} expects an input of shape (N, C_in, H, W), got shape {x.shape}; for one image use "
            "x[None], for flattened images reshape first (digits: X.reshape(-1, 1, 8, 8))"
        )
    if weight.ndim != 4:
        raise ShapeError(f"{op} expects a weight of shape (C_out, C_in, kh, kw), got shape {weight.shape}")
    if not isinstance(groups, int | np.integer) or groups < 1:
        raise ValueError(f"{op}: groups must be an integer >= 1, got {groups!r}")
    if x.shape[1] != weight.shape[1] * groups:
        per_group = "" if groups == 1 else f" per group, {weight.shape[1] * groups} in all with groups={groups}"
        raise ShapeError(
            f"{op}: the input has {x.shape[1]} channels (shape {x.shape}, which is (N, C_in, H, W)) but the "
            f"weight expects {weight.shape[1]}{per_group} (weight shape {weight.shape}, which is "
            f"(C_out, C_in / groups, kh, kw))"
        )
    if weight.shape[0] % groups:
        raise ValueError(f"{op}: out_channels ({weight.shape[0]}) must be divisible by groups ({groups})")
    if bias is not None and np.shape(bias) != weight.shape[:1]:
        raise ShapeError(
            f"{op}: bias has shape {np.shape(bias)}, expected ({weight.shape[0]},): one value per output channel"
        )
    _check_fits(x.shape, _span(weight.shape[2:], dilation), padding, op, "kernel")


def _check_fits(x_shape, kernel, padding, op: str, what: str) -> None:
    padded = (x_shape[2] + 2 * padding[0], x_shape[3] + 2 * padding[1])
    if kernel[0] > padded[0] or kernel[1] > padded[1]:
        raise ShapeError(
            f"{op}: the {what} ({kernel[0]}x{kernel[1]}) is larger than the padded input "
            f"({padded[0]}x{padded[1]}: input {x_shape[2]}x{x_shape[3]} with padding {padding}); "
            f"use a smaller {what} or more padding"
        )


def _columns(x_pad, kernel, stride, dilation, groups):
    """im2col: one column per output position (n, i, j), one row per weight (c, p, q) of a group.

    (N, C_in, H, W) -> (groups, C_in/groups * kh * kw, N * out_h * out_w), and (N, out_h, out_w).
    This copy is the only pass over the input; the row order matches weight.reshape(groups, C_out/groups, -1).
    """
    windows = _windows(x_pad, kernel, stride, dilation)  # (N, C_in, out_h, out_w, kh, kw), a view
    n, c_in, out_h, out_w, kh, kw = windows.shape
    by_group = windows.reshape(n, groups, c_in // groups, out_h, out_w, kh, kw)
    return by_group.transpose(1, 2, 5, 6, 0, 3, 4).reshape(groups, -1, n * out_h * out_w), (n, out_h, out_w)


def _weight_rows(weight, groups):  # (C_out, C_in/groups, kh, kw) -> (groups, C_out/groups, C_in/groups kh kw)
    return weight.reshape(groups, weight.shape[0] // groups, -1)


def _g_rows(g, groups):  # (N, C_out, out_h, out_w) -> (groups, C_out/groups, N out_h out_w), columns ordered like cols
    return g.transpose(1, 0, 2, 3).reshape(groups, g.shape[1] // groups, -1)


def _convolve(x, weight, stride, padding, dilation, groups):
    """y = conv(x, W) without bias, (N, C_out, out_h, out_w), and the columns the weight gradient needs."""
    cols, (n, out_h, out_w) = _columns(_pad(x, padding), weight.shape[2:], stride, dilation, groups)
    y = (_weight_rows(weight, groups) @ cols).reshape(weight.shape[0], n, out_h, out_w)
    # stored as (N, C_out, out_h, out_w), not left a transposed view: later ops, and anything that
    # edits .data through a flat view (as gradcheck does), see ordinary memory
    return np.ascontiguousarray(y.transpose(1, 0, 2, 3)), cols


def _input_gradient(g, weight, padded_shape, stride, padding, dilation, groups):
    """dL/dx of y = conv(x, W) given g = dL/dy: each window's gradient W^T g, added back (col2im), uncropped."""
    n, _, out_h, out_w = g.shape
    kh, kw = weight.shape[2:]
    d_cols = np.swapaxes(_weight_rows(weight, groups), 1, 2) @ _g_rows(g, groups)  # (groups, C_in/g kh kw, N oh ow)
    d_windows = d_cols.reshape(groups, -1, kh, kw, n, out_h, out_w).transpose(4, 0, 1, 5, 6, 2, 3)
    d_windows = d_windows.reshape(n, padded_shape[1], out_h, out_w, kh, kw)
    return _unpad(_add_windows_back(d_windows, padded_shape, stride, dilation), padding)


def _weight_gradient(g, cols, weight_shape, groups):
    """dL/dW = sum over positions of g x patch, every position at once: g_rows @ cols^T."""
    return (_g_rows(g, groups) @ np.swapaxes(cols, 1, 2)).reshape(weight_shape)


@primitive("conv2d")
def _conv2d(x, weight, bias, stride=(1, 1), padding=(0, 0), dilation=(1, 1), groups=1):
    _check_conv(x, weight, bias, padding, dilation, groups)
    n, c_in, h, w = x.shape
    padded_shape = (n, c_in, h + 2 * padding[0], w + 2 * padding[1])  # the backward pass needs only its shape
    y, cols = _convolve(x, weight, stride, padding, dilation, groups)
    if bias is not None:
        y = y + bias[None, :, None, None]

    def d_x(g):
        return _input_gradient(g, weight, padded_shape, stride, padding, dilation, groups)

    def d_weight(g):
        return _weight_gradient(g, cols, weight.shape, groups)

    def d_bias(g):
        return g.sum(axis=(0, 2, 3))

    return y, (d_x, d_weight, d_bias)


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1) -> Tensor:
    """2-D convolution (cross-correlation) of a batch of images with a bank of filters.

    Shapes: x (N, C_in, H, W), weight (C_out, C_in / groups, kh, kw), bias (C_out,) or None ->
    y (N, C_out, out_h, out_w), out_h = (H + 2 padding_h - dilation_h (kh - 1) - 1) // stride_h + 1.
    ``stride``, ``padding`` and ``dilation`` are an int or an (h, w) pair; padding adds zeros.
    ``groups`` g: input and output channels split into g independent convolutions.
    The gradients are derived in the module docstring.
    """
    return _conv2d(x, weight, bias, stride=_pair(stride, "stride", 1), padding=_pair(padding, "padding", 0),
                   dilation=_pair(dilation, "dilation", 1), groups=groups)


def _as_1d(value, what: str, minimum: int) -> int:
    one = value[0] if isinstance(value, tuple | list) and len(value) == 1 else value
    if not isinstance(one, int | np.integer) or one < minimum:
        raise ValueError(f"{what} must be an integer >= {minimum} (or a 1-tuple), got {value!r}")
    return int(one)


def conv1d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1) -> Tensor:
    """1-D convolution: x (N, C_in, L), weight (C_out, C_in / groups, k) -> (N, C_out, out_L).

    out_L = (L + 2 padding - dilation (k - 1) - 1) // stride + 1. Computed as conv2d on images one
    pixel high, so the gradients are conv2d's.
    """
    for name, t, want in (("input", x, "(N, C_in, L)"), ("weight", weight, "(C_out, C_in / groups, k)")):
        if np.ndim(t.data if isinstance(t, Tensor) else t) != 3:
            raise ShapeError(f"conv1d expects an {name} of shape {want}, got shape {np.shape(getattr(t, 'data', t))}")
    y = conv2d(ops.unsqueeze(x, 2), ops.unsqueeze(weight, 2), bias, stride=(1, _as_1d(stride, "stride", 1)),
               padding=(0, _as_1d(padding, "padding", 0)), dilation=(1, _as_1d(dilation, "dilation", 1)),
               groups=groups)
    return ops.squeeze(y, 2)


# ============================================================================ the transposed convolution


@primitive("conv_transpose2d")
def _conv_transpose2d(x, weight, bias, stride=(1, 1), padding=(0, 0), output_padding=(0, 0), dilation=(1, 1),
                      groups=1):
    """y = A^T x, A the conv2d with this weight: the forward pass is conv2d's input gradient.

    VJPs: dL/dx = A g = conv2d(g, W) (same settings); dL/dW = conv2d's weight gradient with g in
    the input's place and x in the upstream gradient's; dL/db = sum of g over N, H, W.
    """
    if x.ndim != 4 or weight.ndim != 4:
        raise ShapeError(f"conv_transpose2d expects an input (N, C_in, H, W) and a weight (C_in, C_out / groups, "
                         f"kh, kw), got shapes {x.shape} and {weight.shape}")
    if x.shape[1] != weight.shape[0] or weight.shape[0] % groups:
        raise ShapeError(f"conv_transpose2d: the input has {x.shape[1]} channels but the weight {weight.shape} "
                         f"(C_in, C_out / groups, kh, kw) expects {weight.shape[0]}, divisible by groups={groups}")
    c_out = weight.shape[1] * groups
    if bias is not None and np.shape(bias) != (c_out,):
        raise ShapeError(f"conv_transpose2d: bias has shape {np.shape(bias)}, expected ({c_out},)")
    for op, s, d in zip(output_padding, stride, dilation, strict=True):
        if op >= s and op >= d:
            raise ValueError(f"conv_transpose2d: output_padding {output_padding} must be smaller than the stride "
                             f"{stride} or the dilation {dilation}, as in PyTorch")
    n, _, h, w = x.shape
    span = _span(weight.shape[2:], dilation)
    out_h = (h - 1) * stride[0] - 2 * padding[0] + span[0] + output_padding[0]
    out_w = (w - 1) * stride[1] - 2 * padding[1] + span[1] + output_padding[1]
    if out_h < 1 or out_w < 1:
        raise ShapeError(f"conv_transpose2d: input {h}x{w} with these settings gives an empty {out_h}x{out_w} output")
    padded_shape = (n, c_out, out_h + 2 * padding[0], out_w + 2 * padding[1])
    y = _input_gradient(x, weight, padded_shape, stride, padding, dilation, groups)
    if bias is not None:
        y = y + bias[None, :, None, None]

    def g_columns(g):  # g's windows at the h x w positions x came from (output_padding rows fit no more)
        g_pad = _pad(g, padding)[:, :, : (h - 1) * stride[0] + span[0], : (w - 1) * stride[1] + span[1]]
        return _columns(g_pad, weight.shape[2:], stride, dilation, groups)[0]

    def d_x(g):
        rows = _weight_rows(weight, groups) @ g_columns(g)  # (groups, C_in/groups, N h w)
        return np.ascontiguousarray(rows.reshape(x.shape[1], n, h, w).transpose(1, 0, 2, 3))

    def d_weight(g):
        return _weight_gradient(x, g_columns(g), weight.shape, groups)

    def d_bias(g):
        return g.sum(axis=(0, 2, 3))

    return np.ascontiguousarray(y), (d_x, d_weight, d_bias)


def conv_transpose2d(x, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1) -> Tensor:
    """The transposed convolution (the adjoint of conv2d), as ``F.conv_transpose2d``: it upsamples.

    Shapes: x (N, C_in, H, W), weight (C_in, C_out / groups, kh, kw) (PyTorch's layout), bias
    (C_out,) -> (N, C_out, out_h, out_w), out_h = (H - 1) stride - 2 padding + dilation (kh - 1)
    + output_padding + 1. <conv2d(z, W), x> = <z, conv_transpose2d(x, W)> for every z and x.
    """
    return _conv_transpose2d(x, weight, bias, stride=_pair(stride, "stride", 1), padding=_pair(padding, "padding", 0),
                             output_padding=_pair(output_padding, "output_padding", 0),
                             dilation=_pair(dilation, "dilation", 1), groups=groups)


# ============================================================================ pooling


def _pool_settings(x, kernel_size, stride, padding, dilation, op: str):
    kernel = _pair(kernel_size, "kernel_size", 1)
    stride = kernel if stride is None else _pair(stride, "stride", 1)
    padding, dilation = _pair(padding, "padding", 0), _pair(dilation, "dilation", 1)
    shape = np.shape(x.data if isinstance(x, Tensor) else x)
    if len(shape) != 4:
        raise ShapeError(f"{op} expects an input of shape (N, C, H, W), got shape {shape}")
    span = _span(kernel, dilation)
    if padding[0] * 2 > span[0] or padding[1] * 2 > span[1]:
        raise ValueError(f"{op}: padding should be at most half of the (dilated) kernel size, as in PyTorch; got "
                         f"padding={padding}, kernel_size={kernel} and dilation={dilation}")
    _check_fits(shape, span, padding, op, "pooling window")
    return kernel, stride, padding, dilation


@primitive("max_pool2d")
def _max_pool2d(x, kernel=(2, 2), stride=(2, 2), padding=(0, 0), dilation=(1, 1)):
    x_pad = _pad(x, padding, fill=-np.inf)  # a padded place never wins
    windows = _windows(x_pad, kernel, stride, dilation)  # (N, C, out_h, out_w, kh, kw)
    flat = windows.reshape(*windows.shape[:4], -1)  # (N, C, out_h, out_w, kh kw), a copy
    winner = flat.argmax(axis=-1)  # first largest in reading order: PyTorch's tie rule
    y = np.take_along_axis(flat, winner[..., None], axis=-1)[..., 0]

    def vjp(g):  # the winner alone moved the output; the other elements of its window get 0
        one_hot = winner[..., None] == np.arange(flat.shape[-1])
        d_pad = _add_windows_back((one_hot * g[..., None]).reshape(windows.shape), x_pad.shape, stride, dilation)
        return _unpad(d_pad, padding)

    return y, (vjp,)


def max_pool2d(x, kernel_size, stride=None, padding=0, dilation=1) -> Tensor:
    """Largest value of each window. x (N, C, H, W) -> (N, C, out_h, out_w),
    out_h = (H + 2 padding - dilation (kh - 1) - 1) // sh + 1; the padding is -inf, so it never wins.

    ``stride`` defaults to ``kernel_size`` (windows side by side). The gradient of each window goes
    to its largest element only; on ties, to the first in reading order, as PyTorch does.
    """
    kernel, stride, padding, dilation = _pool_settings(x, kernel_size, stride, padding, dilation, "max_pool2d")
    return _max_pool2d(x, kernel=kernel, stride=stride, padding=padding, dilation=dilation)


@primitive("avg_pool2d")
def _avg_pool2d(x, kernel=(2, 2), stride=(2, 2), padding=(0, 0), count_include_pad=True):
    x_pad = _pad(x, padding)
    windows = _windows(x_pad, kernel, stride)
    if count_include_pad:  # the padding zeros count in each mean, as PyTorch's default
        area = np.full(windows.shape[2:4], float(kernel[0] * kernel[1]), dtype=x.dtype)
    else:  # each window divides by the real pixels it covers
        inside = _pad(np.ones((1, 1, *x.shape[2:]), dtype=x.dtype), padding)
        area = _windows(inside, kernel, stride).sum(axis=(-2, -1))[0, 0]

    def vjp(g):  # every element of a window weighs 1/area in its mean
        d_windows = np.broadcast_to((g / area)[..., None, None], windows.shape)
        return _unpad(_add_windows_back(d_windows, x_pad.shape, stride), padding)

    return windows.sum(axis=(-2, -1)) / area, (vjp,)


def avg_pool2d(x, kernel_size, stride=None, padding=0, count_include_pad: bool = True) -> Tensor:
    """Mean of each window. x (N, C, H, W) -> (N, C, out_h, out_w); ``stride`` defaults to ``kernel_size``.

    ``padding`` adds zeros, which count in the mean unless ``count_include_pad=False`` (as PyTorch).
    Each element of a window receives 1/area of that window's gradient (summed over windows if they overlap).
    """
    kernel, stride, padding, _ = _pool_settings(x, kernel_size, stride, padding, 1, "avg_pool2d")
    return _avg_pool2d(x, kernel=kernel, stride=stride, padding=padding, count_include_pad=count_include_pad)


# ============================================================================ modules


def _conv_bias_init(module, out_channels, bias, rng):
    """PyTorch's default: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for the bias, fan_in from the weight."""
    init.kaiming_uniform_(module.weight, a=math.sqrt(5), rng=rng)
    if bias:
        fan_in, _ = init.fans(module.weight)
        bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0.0
        module.bias = Parameter(np.zeros(out_channels))
        init.uniform_(module.bias, -bound, bound, rng=rng)
    else:
        module.bias = None


def _check_channels(in_channels, out_channels, groups, padding_mode="zeros") -> None:
    if not isinstance(groups, int) or groups < 1 or in_channels % groups or out_channels % groups:
        raise ValueError(f"in_channels ({in_channels}) and out_channels ({out_channels}) must both be divisible by "
                         f"groups ({groups!r})")
    if padding_mode != "zeros":
        raise ValueError(f"padding_mode {padding_mode!r}: bpcore pads convolutions with zeros only "
                         "(pad first with F.pad(x, ..., mode=...) for the others)")


class Conv2d(Module):
    """A bank of ``out_channels`` filters, each (in_channels / groups, kh, kw), slid over the image.

    Shapes: x (N, in_channels, H, W) -> (N, out_channels, out_h, out_w); weight
    (out_channels, in_channels / groups, kh, kw), bias (out_channels,). Default initialisation as PyTorch:
    kaiming_uniform_(a=sqrt(5)) for the weight and U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for the bias,
    both with bound 1/sqrt(fan_in), fan_in = in_channels / groups * kh * kw (the inputs one output sums over).
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1, bias=True,
                 padding_mode="zeros", rng=None):
        super().__init__()
        _check_channels(in_channels, out_channels, groups, padding_mode)
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size = _pair(kernel_size, "kernel_size", 1)
        self.stride, self.padding = _pair(stride, "stride", 1), _pair(padding, "padding", 0)
        self.dilation = _pair(dilation, "dilation", 1)
        self.weight = Parameter(np.zeros((out_channels, in_channels // groups, *self.kernel_size)))
        _conv_bias_init(self, out_channels, bias, rng)

    def forward(self, x):
        return conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)

    def extra_repr(self) -> str:
        text = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding != (0, 0):
            text += f", padding={self.padding}"
        if self.dilation != (1, 1):
            text += f", dilation={self.dilation}"
        if self.groups != 1:
            text += f", groups={self.groups}"
        return text + ("" if self.bias is not None else ", bias=False")


class Conv1d(Module):
    """``out_channels`` filters, each (in_channels / groups, k), slid along a sequence.

    Shapes: x (N, in_channels, L) -> (N, out_channels, out_L); weight (out_channels, in_channels / groups, k),
    bias (out_channels,). Initialised as PyTorch's Conv1d (as Conv2d, fan_in = in_channels / groups * k).
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1, bias=True,
                 padding_mode="zeros", rng=None):
        super().__init__()
        _check_channels(in_channels, out_channels, groups, padding_mode)
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size = (_as_1d(kernel_size, "kernel_size", 1),)
        self.stride, self.padding = (_as_1d(stride, "stride", 1),), (_as_1d(padding, "padding", 0),)
        self.dilation = (_as_1d(dilation, "dilation", 1),)
        self.weight = Parameter(np.zeros((out_channels, in_channels // groups, *self.kernel_size)))
        _conv_bias_init(self, out_channels, bias, rng)

    def forward(self, x):
        return conv1d(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)

    def extra_repr(self) -> str:
        text = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding != (0,):
            text += f", padding={self.padding}"
        if self.dilation != (1,):
            text += f", dilation={self.dilation}"
        if self.groups != 1:
            text += f", groups={self.groups}"
        return text + ("" if self.bias is not None else ", bias=False")


class ConvTranspose2d(Module):
    """The transposed convolution layer (it upsamples: stride 2 roughly doubles H and W), as PyTorch's.

    Shapes: x (N, in_channels, H, W) -> (N, out_channels, out_h, out_w), out_h = (H - 1) stride
    - 2 padding + dilation (kh - 1) + output_padding + 1; weight (in_channels, out_channels / groups,
    kh, kw) (PyTorch's layout), bias (out_channels,). Initialised as PyTorch (fan_in from that weight).
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, output_padding=0, groups=1,
                 bias=True, dilation=1, padding_mode="zeros", rng=None):
        super().__init__()
        _check_channels(in_channels, out_channels, groups, padding_mode)
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size = _pair(kernel_size, "kernel_size", 1)
        self.stride, self.padding = _pair(stride, "stride", 1), _pair(padding, "padding", 0)
        self.output_padding, self.dilation = _pair(output_padding, "output_padding", 0), _pair(dilation, "dilation", 1)
        self.weight = Parameter(np.zeros((in_channels, out_channels // groups, *self.kernel_size)))
        _conv_bias_init(self, out_channels, bias, rng)

    def forward(self, x):
        return conv_transpose2d(x, self.weight, self.bias, self.stride, self.padding, self.output_padding,
                                self.groups, self.dilation)

    def extra_repr(self) -> str:
        text = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        for name, default in (("padding", (0, 0)), ("output_padding", (0, 0)), ("dilation", (1, 1))):
            if getattr(self, name) != default:
                text += f", {name}={getattr(self, name)}"
        if self.groups != 1:
            text += f", groups={self.groups}"
        return text + ("" if self.bias is not None else ", bias=False")


class _Pool2d(Module):
    """What both pooling layers share: a window size, a stride (default: the window size) and padding."""

    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        _pair(kernel_size, "kernel_size", 1)  # fail at construction, not at the first forward
        self.kernel_size = kernel_size
        self.stride = kernel_size if stride is None else stride
        _pair(self.stride, "stride", 1)
        self.padding = padding
        _pair(padding, "padding", 0)

    def extra_repr(self) -> str:
        text = f"kernel_size={self.kernel_size}, stride={self.stride}"
        return text + (f", padding={self.padding}" if self.padding not in (0, (0, 0)) else "")


class MaxPool2d(_Pool2d):
    """Largest value of each kernel_size window: (N, C, H, W) -> (N, C, out_h, out_w). No parameters."""

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1):
        super().__init__(kernel_size, stride, padding)
        self.dilation = dilation
        _pair(dilation, "dilation", 1)

    def forward(self, x):
        return max_pool2d(x, self.kernel_size, self.stride, self.padding, self.dilation)

    def extra_repr(self) -> str:
        return super().extra_repr() + (f", dilation={self.dilation}" if self.dilation not in (1, (1, 1)) else "")


class AvgPool2d(_Pool2d):
    """Mean of each kernel_size window: (N, C, H, W) -> (N, C, out_h, out_w). No parameters."""

    def __init__(self, kernel_size, stride=None, padding=0, count_include_pad: bool = True):
        super().__init__(kernel_size, stride, padding)
        self.count_include_pad = count_include_pad

    def forward(self, x):
        return avg_pool2d(x, self.kernel_size, self.stride, self.padding, self.count_include_pad)


# ============================================================================ a CNN for the digits


__all__ = [
    "AvgPool2d",
    "Conv1d",
    "Conv2d",
    "ConvTranspose2d",
    "MaxPool2d",
    "avg_pool2d",
    "conv1d",
    "conv2d",
    "conv_transpose2d",
    "max_pool2d",
]
