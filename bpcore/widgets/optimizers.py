"""Optimizer explorer: pick a landscape, an optimizer and a learning rate; watch the path."""

from __future__ import annotations

import ipywidgets as widgets

from bpcore.labs import one_blas_thread
from bpcore.labs.pitfalls import LANDSCAPES, OPTIMIZERS, optimizer_path
from bpcore.widgets.figure import FigureImage
from bpcore.widgets.guard import ErrorArea


class OptimizerExplorer:
    """``points`` and ``losses`` hold the last path (what the tests read)."""

    def __init__(self, landscape: str = "ravine", optimizer: str = "SGD", lr: float = 0.03, steps: int = 60):
        self.landscape = widgets.Dropdown(options=list(LANDSCAPES), value=landscape, description="landscape")
        self.optimizer = widgets.Dropdown(options=list(OPTIMIZERS), value=optimizer, description="optimizer")
        self.lr = widgets.FloatLogSlider(
            value=lr, base=10, min=-3, max=0, step=0.05, description="lr", continuous_update=False
        )
        self.steps = widgets.IntSlider(value=steps, min=10, max=300, description="steps", continuous_update=False)
        self.summary = widgets.HTML()
        self.plot = FigureImage(figsize=(6, 4), margins=(0.09, 0.08, 0.98, 0.98))
        self.drawn_landscape = None  # the contour lines are drawn again only when the landscape changes
        self.path_line = None
        controls = [self.landscape, self.optimizer, self.lr, self.steps]
        self.errors = ErrorArea()
        for control in controls:
            control.observe(self.errors.guard(lambda _change: self.update(), "running the optimizer"), names="value")
        self.widget = widgets.VBox(
            [widgets.HBox(controls[:2]), widgets.HBox(controls[2:]), self.errors.widget, self.summary, self.plot.widget]
        )
        self.update()

    @one_blas_thread
    def update(self) -> None:
        self.points, self.losses = optimizer_path(
            self.landscape.value, self.optimizer.value, self.lr.value, self.steps.value
        )
        final = self.losses[-1]
        state = "diverged" if not abs(final) < 1e6 else f"final loss {final:.4g}"
        self.summary.value = f"{self.optimizer.value}, lr {self.lr.value:.3g}, {self.steps.value} steps: {state}"
        self._draw()

    def _draw(self) -> None:
        import numpy as np

        from bpcore.plots import contour

        ax = self.plot.ax
        if self.drawn_landscape != self.landscape.value:
            ax.clear()
            contour(self.landscape.value, ax=ax)
            (self.path_line,) = ax.plot([], [], ".-", color="tab:red")
            self.landscape_view = np.array([ax.get_xlim(), ax.get_ylim()])
            self.drawn_landscape = self.landscape.value
        shown = self.points[np.all(np.abs(self.points) < 10, axis=1)]
        self.path_line.set_data(shown[:, 0], shown[:, 1])
        # the view holds the landscape and the whole path, as a fresh plot of both would
        (x0, x1), (y0, y1) = self.landscape_view
        if len(shown):
            (px0, py0), (px1, py1) = shown.min(axis=0), shown.max(axis=0)
            pad_x, pad_y = 0.05 * (max(x1, px1) - min(x0, px0)), 0.05 * (max(y1, py1) - min(y0, py0))
            x0, x1 = min(x0, px0 - pad_x), max(x1, px1 + pad_x)
            y0, y1 = min(y0, py0 - pad_y), max(y1, py1 + pad_y)
        ax.set(xlim=(x0, x1), ylim=(y0, y1))
        self.path_line.set_label(self.optimizer.value)
        ax.legend()
        self.plot.render()

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)
