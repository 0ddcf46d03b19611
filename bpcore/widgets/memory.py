"""Memory explorer: what backward must keep, by depth, width and batch, with and without checkpointing."""

from __future__ import annotations

import ipywidgets as widgets
import numpy as np

from bpcore.labs.cost import measure_checkpointing, mlp
from bpcore.widgets.guard import ErrorArea


class MemoryExplorer:
    """``row`` holds the last measurement (graph bytes kept, recomputations)."""

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
            control.observe(self.errors.guard(lambda _change: self.update(), "measuring the memory"), names="value")
        self.widget = widgets.VBox(
            [widgets.HBox(controls[:2]), widgets.HBox(controls[2:]), self.errors.widget, self.summary]
        )
        self.update()

    def update(self) -> None:
        model = mlp(depth=self.depth.value, width=self.width.value, in_features=64, classes=10)
        x = np.random.default_rng(0).normal(size=(self.batch.value, 64))
        segments = min(self.segments.value, self.depth.value)
        self.row = measure_checkpointing(model, x, np.arange(self.batch.value) % 10, segments=segments, repeats=1)
        how = "no checkpointing" if segments == 0 else f"{segments} checkpointed segments"
        self.summary.value = (
            f"{how}: peak graph memory <b>{self.row.peak_graph_bytes / 1e6:.2f} MB</b> "
            f"(stored {self.row.stored_graph_bytes / 1e6:.2f} MB + largest recomputed segment "
            f"{self.row.recomputed_graph_bytes / 1e6:.2f} MB), {self.row.recomputations} recomputations"
        )

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)
