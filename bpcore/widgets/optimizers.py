"""Optimizer explorer: pick a landscape, an optimizer and a learning rate; watch the path."""

from __future__ import annotations

import ipywidgets as widgets

from bpcore.labs.pitfalls import LANDSCAPES, OPTIMIZERS, optimizer_path
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
        self.plot = widgets.Output()
        controls = [self.landscape, self.optimizer, self.lr, self.steps]
        self.errors = ErrorArea()
        for control in controls:
            control.observe(self.errors.guard(lambda _change: self.update(), "running the optimizer"), names="value")
        self.widget = widgets.VBox(
            [widgets.HBox(controls[:2]), widgets.HBox(controls[2:]), self.errors.widget, self.summary, self.plot]
        )
        self.update()

    def update(self) -> None:
        self.points, self.losses = optimizer_path(
            self.landscape.value, self.optimizer.value, self.lr.value, self.steps.value
        )
        final = self.losses[-1]
        state = "diverged" if not abs(final) < 1e6 else f"final loss {final:.4g}"
        self.summary.value = f"{self.optimizer.value}, lr {self.lr.value:.3g}, {self.steps.value} steps: {state}"
        self._draw()

    def _draw(self) -> None:
        import matplotlib.pyplot as plt
        import numpy as np

        from bpcore.plots import contour

        self.plot.clear_output(wait=True)
        with self.plot:
            ax = contour(self.landscape.value)
            shown = self.points[np.all(np.abs(self.points) < 10, axis=1)]
            ax.plot(shown[:, 0], shown[:, 1], ".-", color="tab:red", label=self.optimizer.value)
            ax.legend()
            plt.show()

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)
