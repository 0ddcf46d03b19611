"""The figures the notebooks show. Each function draws on an Axes (made if not given) and returns it.

Every figure is drawn from numbers a caller can also assert on: the functions take data, they do
not compute it, so the tests check the numbers and the notebooks show them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import matplotlib.pyplot as plt
import numpy as np

from bpcore.graph import _checked_nodes, _colour, _place, node_gradients
from bpcore.labs.pitfalls import LANDSCAPES
from bpcore.tensor import Tensor


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


def step_cost(shares: dict[str, float], microseconds: dict[str, float], figsize=(11, 3.6)):
    """Left: where one eager training step's time goes (shares of a profile, one stacked bar).
    Right: microseconds per step, eager beside compiled. Returns the figure."""
    fig, (left, right) = plt.subplots(1, 2, figsize=figsize, gridspec_kw={"width_ratios": [3, 1.3]})
    start = 0.0
    for index, (part, share) in enumerate(shares.items()):
        left.barh([0], [share * 100], left=start, color=plt.cm.tab10(index), label=f"{part} ({share:.0%})")
        start += share * 100
    left.set_xlim(0, 100)
    left.set_yticks([])
    left.set_xlabel("% of an eager step's time (tiny MLP, cProfile)")
    left.legend(loc="upper center", bbox_to_anchor=(0.5, -0.3), ncol=3, fontsize=8, frameon=False)
    right.bar(list(microseconds), list(microseconds.values()), color=["tab:gray", "tab:green"])
    right.set_ylabel("us per step (median)")
    right.set_title("the same step")
    fig.tight_layout()
    return fig


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


def latent(codes: np.ndarray, labels: np.ndarray, ax=None, title: str | None = None):
    """A 2-D latent space: one point per code (N, 2), coloured by its class label (N,), with a legend."""
    codes, labels = np.asarray(codes), np.asarray(labels)
    if codes.ndim != 2 or codes.shape[1] != 2 or len(labels) != len(codes):
        raise ValueError(
            f"latent: expected codes (N, 2) and labels (N,), got codes {codes.shape} and labels {labels.shape}"
        )
    ax = _axes(ax, figsize=(5.5, 5))
    colours = plt.get_cmap("tab10")
    for i, label in enumerate(np.unique(labels)):
        members = codes[labels == label]
        ax.scatter(members[:, 0], members[:, 1], s=8, alpha=0.7, color=colours(i % 10), label=str(label))
    ax.set_xlabel("$z_1$")
    ax.set_ylabel("$z_2$")
    ax.legend(title="digit", markerscale=2, fontsize=8, loc="center left", bbox_to_anchor=(1.0, 0.5))
    if title:
        ax.set_title(title)
    return ax


def _shown(ch: str) -> str:
    return {" ": "\u2423", "\n": "\u21b5", "\t": "\u21e5"}.get(ch, ch)  # space, newline, tab made visible


def attention_maps(
    maps: dict[str, np.ndarray],
    tokens: str | None = None,
    label: str = "attention weight",
    size: float = 3.6,
    columns: int | None = None,
    cmap: str = "magma_r",
):
    """One heatmap per name, ``columns`` to a row (default: all in one row): row t is what query t looks
    at (or sends gradient to), column s the key (or input) position. ``maps`` values are (T, S) arrays
    on one colour scale; ``tokens`` labels both axes with the characters (spaces and newlines drawn
    as visible signs). Returns the figure.
    """
    columns = columns or len(maps)
    rows = -(-len(maps) // columns)
    fig, axes = plt.subplots(
        rows, columns, figsize=(size * columns + 1.0, size * rows), squeeze=False, sharex=True, sharey=True
    )
    fig.subplots_adjust(left=0.08, right=0.86, bottom=0.1, top=0.93, wspace=0.12, hspace=0.22)
    top = max(float(np.max(m)) for m in maps.values())
    for ax in axes.flat[len(maps) :]:
        ax.set_axis_off()
    for ax, (name, matrix) in zip(axes.flat, maps.items(), strict=False):
        image = ax.imshow(np.asarray(matrix), cmap=cmap, vmin=0, vmax=top)
        ax.set_title(name, fontsize=10)
    for ax in axes[-1]:
        ax.set_xlabel("key position s", fontsize=9)
    for ax in axes[:, 0]:
        ax.set_ylabel("query position t", fontsize=9)
    if tokens is not None:  # the axes share their ticks, so setting them once labels every heatmap
        shown = [_shown(c) for c in tokens]
        axes[0, 0].set_xticks(range(len(tokens)), shown)
        axes[0, 0].set_yticks(range(len(tokens)), shown)
        for ax in axes.flat:
            ax.tick_params(labelsize=7)
    fig.colorbar(image, cax=fig.add_axes((0.89, 0.2, 0.02, 0.6)), label=label)
    return fig


def smoothed(values: Sequence[float], span: int = 25) -> np.ndarray:
    """Exponential moving average (weight 2 / (span + 1) on the newest value), same length as the input."""
    alpha = 2 / (span + 1)
    out = np.empty(len(values))
    running = float(values[0]) if len(values) else 0.0
    for i, v in enumerate(values):
        running = alpha * float(v) + (1 - alpha) * running
        out[i] = running
    return out


# draw_graph's sizes, in points of text (1/72 inch) unless named otherwise. A notebook shows a figure
# scaled down to the width of its output area, so what a reader sees of the text depends on how wide
# the picture is in units of its own text: narrow boxes and short gaps keep it readable.
GRAPH_FONT_PT = 10.0
BOX_PAD = 0.3  # space between a box's text and its frame, in units of the font size (matplotlib's pad)
GAP_PT = 16.0  # room for the arrows between the boxes of two layers
SLOT_INCHES = 0.85  # from one box to the next in a layer
TITLE_INCHES = 0.7  # room above the axes for the three-line title


def _text_inches(text: str, fontsize: float) -> float:
    """The width of ``text`` (its longest line) set in matplotlib's default font, from the font's metrics."""
    from matplotlib.font_manager import FontProperties
    from matplotlib.textpath import TextToPath

    measure, font = TextToPath(), FontProperties(size=fontsize)
    return max(measure.get_text_width_height_descent(line, font, ismath=False)[0] for line in text.split("\n")) / 72


def draw_graph(root: Tensor, ax=None, show_values: bool = True, max_nodes: int = 60, figsize=None):
    """Draw the graph behind ``root`` with matplotlib: leaves on the left, ``root`` on the right.

    Args:
        root: the tensor to explain, usually the loss (call ``backward()`` first to see gradients).
        ax: the matplotlib Axes to draw into; a new figure is made when None.
        show_values: show small values and gradients in the boxes (else titles and shapes only).
        max_nodes: raise ValueError for bigger graphs, whose picture would be unreadable.
        figsize: (width, height) in inches of a new figure; by default it grows with the graph.

    After ``root.backward()`` every box shows dL/d(box), intermediate tensors included: leaves show
    their ``.grad``, the others a gradient computed again from the recorded graph
    (:func:`bpcore.graph.node_gradients`), so no ``.grad`` changes.

    Returns the Axes. Node ``n{i}`` is drawn as the text artist whose gid is ``"n{i}"``.
    """
    nodes = _checked_nodes(root, max_nodes)
    grads = node_gradients(root) if show_values else {}

    places, depth, height, after = _place(nodes, show_values, grads)
    # Coordinates are inches (one slot per SLOT_INCHES up and down), so a layer can be made as wide as
    # its widest box, measured from its text: wide labels push the next layer to the right.
    frame = (2 * BOX_PAD * GRAPH_FONT_PT + 3) / 72  # the pad on both sides and the frame's line
    widths = [0.0] * (max(depth) + 1)
    for i in range(len(nodes)):
        widths[depth[i]] = max(widths[depth[i]], _text_inches(places[f"n{i}"].label, GRAPH_FONT_PT) + frame)
    column_x = [widths[0] / 2]
    for d in range(1, len(widths)):
        column_x.append(column_x[-1] + (widths[d - 1] + widths[d]) / 2 + GAP_PT / 72)
    x_limits = (-0.05, column_x[-1] + widths[-1] / 2 + 0.05)
    y_limits = (-(max(height) + 0.5) * SLOT_INCHES, (max(height) + 0.5) * SLOT_INCHES)
    if ax is None:
        size = figsize or (x_limits[1] - x_limits[0], y_limits[1] - y_limits[0] + TITLE_INCHES)
        # the axes fill the figure below the title, so one data unit is one inch and the widths hold
        ax = plt.figure(figsize=size).add_axes((0, 0, 1, 1 - TITLE_INCHES / size[1]))
    height = [h * SLOT_INCHES for h in height]

    texts = []
    for i, t in enumerate(nodes):
        reached = show_values and (t.grad is not None or t in grads)  # a dark, thick frame: backward got here
        box = {"boxstyle": f"round,pad={BOX_PAD}", "facecolor": _colour(t),
               "edgecolor": "#a04020" if reached else "#707070", "linewidth": 1.6 if reached else 0.8}
        x, label = column_x[depth[i]], places[f"n{i}"].label
        text = ax.text(x, height[i], label, ha="center", va="center", fontsize=GRAPH_FONT_PT, bbox=box, zorder=3)
        text.set_gid(f"n{i}")
        texts.append(text)

    def anchor(item: int, leaving: bool):
        """Arrows leave a box mid-right and enter it mid-left; a waypoint is a point in data coordinates."""
        if item < len(nodes):  # relative to the text artist, so arrows follow it if the figure is resized
            return ((1, 0.5) if leaving else (0, 0.5)), texts[item]
        return (column_x[depth[item]], height[item]), "data"

    for source, targets in enumerate(after):
        for use, target in enumerate(targets):
            repeat = targets[:use].count(target)  # x * x: the second arrow is bent so both are visible
            (xy_from, coords_from), (xy_to, coords_to) = anchor(source, True), anchor(target, False)
            to_node = target < len(nodes)  # only the last piece of a bent arrow has a head
            ax.annotate(
                "", xy=xy_to, xycoords=coords_to, xytext=xy_from, textcoords=coords_from, zorder=2,
                arrowprops={
                    "arrowstyle": "-|>" if to_node else "-", "color": "#505050", "linewidth": 0.9,
                    "connectionstyle": f"arc3,rad={0.3 * repeat * (-1) ** repeat}", "mutation_scale": 10,
                    "shrinkA": 2 if source < len(nodes) else 0, "shrinkB": 2 if to_node else 0,
                },
            )

    ax.set_xlim(*x_limits)
    ax.set_ylim(*y_limits)
    ax.set_axis_off()
    ax.set_title(
        "forward: values flow left to right    backward: gradients flow right to left\n"
        "grad: dL/d(box), kept in .grad by leaves only (others: retain_grad())\n"
        "blue: leaf that requires grad    grey: constant    orange: op result",
        fontsize=GRAPH_FONT_PT,
    )
    return ax


def contour(landscape: str, ax=None, extent=None):
    """Draw the landscape's contour lines (log-spaced) and mark its start and a minimum."""
    fn, start, minimum = LANDSCAPES[landscape]
    ax = _axes(ax)
    (x0, x1), (y0, y1) = extent or ((-4.5, 4.5), (-2.2, 2.2))
    X, Y = np.meshgrid(np.linspace(x0, x1, 200), np.linspace(y0, y1, 200))
    Z = fn(np.stack([X, Y]))
    ax.contour(X, Y, Z - Z.min() + 1e-3, levels=np.geomspace(1e-3, Z.max() - Z.min() + 1e-3, 20), cmap="Greys")
    ax.plot(*start, "k^", label="start")
    ax.plot(*minimum, "k*", markersize=12, label="minimum")
    return ax
