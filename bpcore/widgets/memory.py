"""Memory explorer: what backward must keep, by depth, width and batch, with and without checkpointing.

The numbers are computed from the formula, not measured: building and running a 24-layer,
512-wide network on 512 examples takes seconds, and every byte the engine's graph holds is known
in advance. The graph keeps the output of each op, and an MLP's ops are its layers
(``bpcore.labs.cost.mlp``: Linear, ReLU, Linear, ..., Linear) and the loss:

* without checkpointing, every layer output: ``(depth - 1)`` pairs of (N, width) arrays (linear
  output, activation), the (N, classes) logits and the loss's one number
  (``bpcore.labs.cost.expected_activation_bytes``);
* with ``k`` checkpointed segments (``bpcore.checkpointing.checkpointed_sequential``: the layers
  split into k nearly equal runs), only each segment's output and the loss are stored; backward
  rebuilds one segment at a time, so the peak adds the largest segment's layer outputs.

tests/test_widgets_explorers.py checks this formula against ``measure_checkpointing`` on real
graphs, byte for byte.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import ipywidgets as widgets
import numpy as np

from bpcore.widgets.guard import ErrorArea

CLASSES, ITEMSIZE = 10, 8  # the explorer's network: 10 classes, float64 (its 64 inputs are no op outputs)


@dataclass
class GraphMemory:
    """Graph bytes of one forward + backward of the explorer's MLP (the fields of ``CheckpointCost`` it shows)."""

    segments: int
    stored_graph_bytes: int  # held from the end of the forward pass until backward
    recomputed_graph_bytes: int  # the largest segment graph rebuilt during backward (0 without)
    recomputations: int

    @property
    def peak_graph_bytes(self) -> int:
        """Stored values plus the one segment being rebuilt: the most graph memory alive at once."""
        return self.stored_graph_bytes + self.recomputed_graph_bytes


def layer_output_bytes(depth: int, width: int, batch: int, classes: int = CLASSES, itemsize: int = ITEMSIZE):
    """Bytes of each layer's output, in order: (N, width) for every hidden Linear and ReLU, (N, classes) last."""
    hidden = [batch * width * itemsize] * (2 * (depth - 1))
    return np.array([*hidden, batch * classes * itemsize], dtype=np.int64)


def graph_memory(
    depth: int, width: int, batch: int, segments: int = 0, classes: int = CLASSES, itemsize: int = ITEMSIZE
) -> GraphMemory:
    """The graph memory ``measure_checkpointing`` would measure for ``mlp(depth, width, ...)`` on ``batch`` examples."""
    outputs = layer_output_bytes(depth, width, batch, classes, itemsize)
    loss = itemsize  # the loss: one number
    if segments == 0:
        return GraphMemory(0, int(outputs.sum()) + loss, 0, 0)
    if not 1 <= segments <= len(outputs):
        raise ValueError(f"segments must be between 0 and the number of layers ({len(outputs)}), got {segments}")
    bounds = np.linspace(0, len(outputs), segments + 1).round().astype(int)  # as checkpointed_sequential splits
    stored = sum(int(outputs[stop - 1]) for stop in bounds[1:]) + loss
    largest = max(int(outputs[start:stop].sum()) for start, stop in itertools.pairwise(bounds))
    return GraphMemory(segments, stored, largest, segments)


class MemoryExplorer:
    """``row`` holds the numbers on display (graph bytes kept, recomputations)."""

    def __init__(self):
        self.depth = widgets.IntSlider(value=8, min=1, max=24, description="depth", continuous_update=False)
        self.width = widgets.IntSlider(
            value=128, min=16, max=512, step=16, description="width", continuous_update=False
        )
        self.batch = widgets.IntSlider(
            value=128, min=16, max=512, step=16, description="batch", continuous_update=False
        )
        self.segments = widgets.IntSlider(value=0, min=0, max=8, description="segments", continuous_update=False)
        self.summary = widgets.HTML()
        controls = [self.depth, self.width, self.batch, self.segments]
        self.errors = ErrorArea()
        for control in controls:
            control.observe(self.errors.guard(lambda _change: self.update(), "computing the memory"), names="value")
        self.widget = widgets.VBox(
            [widgets.HBox(controls[:2]), widgets.HBox(controls[2:]), self.errors.widget, self.summary]
        )
        self.update()

    def update(self) -> None:
        segments = min(self.segments.value, self.depth.value)
        self.row = graph_memory(self.depth.value, self.width.value, self.batch.value, segments)
        how = "no checkpointing" if segments == 0 else f"{segments} checkpointed segments"
        self.summary.value = (
            f"{how}: peak graph memory <b>{self.row.peak_graph_bytes / 1e6:.2f} MB</b> "
            f"(stored {self.row.stored_graph_bytes / 1e6:.2f} MB + largest recomputed segment "
            f"{self.row.recomputed_graph_bytes / 1e6:.2f} MB), {self.row.recomputations} recomputations"
        )

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)
