"""The figures the notebooks show. Each function draws on an Axes (made if not given) and returns it.

Every figure is drawn from numbers a caller can also assert on: the functions take data, they do
not compute it, so the tests check the numbers and the notebooks show them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import matplotlib.pyplot as plt
import numpy as np


def _axes(ax, figsize=(6, 4)):
    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    return ax


def tangent(loss_of: Callable[[float], float], at: float, slope: float, width: float = 1.5, ax=None, label="w"):
    """A loss as a function of one weight, and the tangent line whose slope the gradient claims."""
    ax = _axes(ax)
    w = np.linspace(at - width, at + width, 200)
    ax.plot(w, [loss_of(v) for v in w], label="loss")
    ax.plot(w, loss_of(at) + slope * (w - at), "--", label=f"tangent, slope {slope:+.4f}")
    ax.plot([at], [loss_of(at)], "o", color="black")
    ax.set_xlabel(label)
    ax.set_ylabel("L")
    ax.legend()
    return ax


def curves(
    series: dict[str, Sequence[float]],
    x: Sequence[float] | None = None,
    logy: bool = False,
    ax=None,
    xlabel: str = "update",
    ylabel: str = "loss",
    title: str | None = None,
):
    """Several named curves on one Axes (loss per update, accuracy per epoch, norms per step ...)."""
    ax = _axes(ax)
    for name, values in series.items():
        xs = np.arange(1, len(values) + 1) if x is None else x
        ax.plot(xs, values, label=name)
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.legend()
    return ax


def bars(values: dict[str, float], logy: bool = False, ax=None, ylabel: str = "", title: str | None = None):
    """One bar per name: gradient norm per layer, accuracy per method ..."""
    ax = _axes(ax)
    ax.bar(list(values), list(values.values()))
    if logy:
        ax.set_yscale("log")
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.tick_params(axis="x", rotation=45)
    return ax


def images(rows: dict[str, np.ndarray], shape=(8, 8), figsize=None):
    """A grid of small images: one row per name (e.g. originals and reconstructions)."""
    n = max(len(v) for v in rows.values())
    fig, axes = plt.subplots(len(rows), n, figsize=figsize or (n * 0.9, len(rows) * 1.0), squeeze=False)
    for r, (name, batch) in enumerate(rows.items()):
        for c in range(n):
            ax = axes[r, c]
            ax.axis("off")
            if c < len(batch):
                ax.imshow(np.asarray(batch[c]).reshape(shape), cmap="gray_r", vmin=0, vmax=1)
        axes[r, 0].set_title(name, loc="left", fontsize=9)
    return fig


def scatter(points: dict[str, np.ndarray], ax=None, title: str | None = None):
    """2-D point clouds by name (real vs generated samples, classes of a toy dataset)."""
    ax = _axes(ax, figsize=(5, 5))
    for name, p in points.items():
        ax.scatter(p[:, 0], p[:, 1], s=4, alpha=0.5, label=name)
    ax.legend()
    if title:
        ax.set_title(title)
    return ax


def smoothed(values: Sequence[float], span: int = 25) -> np.ndarray:
    """Exponential moving average (weight 2 / (span + 1) on the newest value), same length as the input."""
    alpha = 2 / (span + 1)
    out = np.empty(len(values))
    running = float(values[0]) if len(values) else 0.0
    for i, v in enumerate(values):
        running = alpha * float(v) + (1 - alpha) * running
        out[i] = running
    return out
