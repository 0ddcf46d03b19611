"""Convolution and pooling written as plain loops: the definitions, one multiply-add at a time.

The vectorised ops in ``bpcore.nn.conv`` must agree with these to rounding error. Each gradient
loop is the forward loop with its ``+=`` turned around: where the forward pass read
x_pad[n, c, a, b] * W[o, c, p, q] into y[n, o, i, j], the backward pass sends g[n, o, i, j]
back to both factors. Slow on purpose (Python loops over every index): use tiny inputs.

Shapes: x (N, C_in, H, W), weight (C_out, C_in, kh, kw), bias (C_out,), g = dL/dy like y.
stride and padding are (h, w) pairs.
"""

from __future__ import annotations

import numpy as np


def output_size(size: int, kernel: int, stride: int, padding: int = 0) -> int:
    return (size + 2 * padding - kernel) // stride + 1


def pad(x: np.ndarray, padding) -> np.ndarray:
    """(N, C, H, W) -> (N, C, H + 2 ph, W + 2 pw), by copying into a zero array."""
    n, c, h, w = x.shape
    ph, pw = padding
    out = np.zeros((n, c, h + 2 * ph, w + 2 * pw), dtype=x.dtype)
    for i in range(h):
        for j in range(w):
            out[:, :, ph + i, pw + j] = x[:, :, i, j]
    return out


def conv2d_forward(x, weight, bias, stride, padding) -> np.ndarray:
    """-> y (N, C_out, out_h, out_w), y[n, o, i, j] = b[o] + sum_{c,p,q} x_pad[n, c, i*sh+p, j*sw+q] W[o, c, p, q]."""
    n_batch, c_in, h, w = x.shape
    c_out, _, kh, kw = weight.shape
    (sh, sw), (ph, pw) = stride, padding
    x_pad = pad(x, padding)
    out_h, out_w = output_size(h, kh, sh, ph), output_size(w, kw, sw, pw)
    y = np.zeros((n_batch, c_out, out_h, out_w))
    for n in range(n_batch):
        for o in range(c_out):
            for i in range(out_h):
                for j in range(out_w):
                    total = 0.0 if bias is None else bias[o]
                    for c in range(c_in):
                        for p in range(kh):
                            for q in range(kw):
                                total += x_pad[n, c, i * sh + p, j * sw + q] * weight[o, c, p, q]
                    y[n, o, i, j] = total
    return y


def conv2d_backward(x, weight, g, stride, padding):
    """(dL/dx (N, C_in, H, W), dL/dW (C_out, C_in, kh, kw), dL/db (C_out,)) given g = dL/dy."""
    n_batch, c_in, h, w = x.shape
    c_out, _, kh, kw = weight.shape
    (sh, sw), (ph, pw) = stride, padding
    x_pad = pad(x, padding)
    dx_pad = np.zeros_like(x_pad, dtype=np.float64)
    dw = np.zeros(weight.shape)
    db = np.zeros(c_out)
    for n in range(n_batch):
        for o in range(c_out):
            for i in range(g.shape[2]):
                for j in range(g.shape[3]):
                    db[o] += g[n, o, i, j]
                    for c in range(c_in):
                        for p in range(kh):
                            for q in range(kw):
                                a, b = i * sh + p, j * sw + q
                                dw[o, c, p, q] += g[n, o, i, j] * x_pad[n, c, a, b]
                                dx_pad[n, c, a, b] += g[n, o, i, j] * weight[o, c, p, q]
    return dx_pad[:, :, ph : ph + h, pw : pw + w], dw, db


def max_pool2d_forward(x, kernel, stride) -> np.ndarray:
    """y[n, c, i, j] = max over the window at (i*sh, j*sw). -> (N, C, out_h, out_w)."""
    return _pool(x, kernel, stride, lambda window: max(window))


def avg_pool2d_forward(x, kernel, stride) -> np.ndarray:
    return _pool(x, kernel, stride, lambda window: sum(window) / len(window))


def _pool(x, kernel, stride, reduce) -> np.ndarray:
    n_batch, channels, h, w = x.shape
    (kh, kw), (sh, sw) = kernel, stride
    out_h, out_w = output_size(h, kh, sh), output_size(w, kw, sw)
    y = np.zeros((n_batch, channels, out_h, out_w))
    for n in range(n_batch):
        for c in range(channels):
            for i in range(out_h):
                for j in range(out_w):
                    window = [x[n, c, i * sh + p, j * sw + q] for p in range(kh) for q in range(kw)]
                    y[n, c, i, j] = reduce(window)
    return y


def max_pool2d_backward(x, g, kernel, stride) -> np.ndarray:
    """dL/dx: each window's gradient goes to its first largest element (reading order)."""
    (kh, kw), (sh, sw) = kernel, stride
    dx = np.zeros(x.shape)
    for n in range(g.shape[0]):
        for c in range(g.shape[1]):
            for i in range(g.shape[2]):
                for j in range(g.shape[3]):
                    best = None
                    for p in range(kh):
                        for q in range(kw):
                            a, b = i * sh + p, j * sw + q
                            if best is None or x[n, c, a, b] > x[n, c, best[0], best[1]]:  # strict: first wins
                                best = (a, b)
                    dx[n, c, best[0], best[1]] += g[n, c, i, j]
    return dx


def avg_pool2d_backward(x, g, kernel, stride) -> np.ndarray:
    """dL/dx: each element of a window receives 1/(kh kw) of the window's gradient."""
    (kh, kw), (sh, sw) = kernel, stride
    dx = np.zeros(x.shape)
    for n in range(g.shape[0]):
        for c in range(g.shape[1]):
            for i in range(g.shape[2]):
                for j in range(g.shape[3]):
                    for p in range(kh):
                        for q in range(kw):
                            dx[n, c, i * sh + p, j * sw + q] += g[n, c, i, j] / (kh * kw)
    return dx
