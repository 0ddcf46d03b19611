"""Depth explorer: build a deep network to order and watch the gradient across its layers."""

from __future__ import annotations

import ipywidgets as widgets

from bpcore.labs import one_blas_thread
from bpcore.labs.vanishing import ACTIVATIONS, INITS, deep_mlp, depth_profile
from bpcore.nn.functional import cross_entropy
from bpcore.widgets.figure import FigureImage
from bpcore.widgets.guard import ErrorArea


class DepthExplorer:
    """Depth, activation, initialisation, BatchNorm and residual switches; ``profile`` holds the numbers."""

    def __init__(self, X, y):
        self.X, self.y = X, y
        self.depth = widgets.IntSlider(value=20, min=2, max=50, description="depth", continuous_update=False)
        self.activation = widgets.Dropdown(options=sorted(ACTIVATIONS), value="sigmoid", description="activation")
        self.init = widgets.Dropdown(options=list(INITS), value="default", description="init")
        self.batchnorm = widgets.Checkbox(value=False, description="BatchNorm")
        self.residual = widgets.Checkbox(value=False, description="residual")
        self.summary = widgets.HTML()
        self.plot = FigureImage(figsize=(7, 3))
        (self.line,) = self.plot.ax.plot([], [], marker="o")
        self.plot.log_y()
        self.plot.ax.set(xlabel="block (1 = nearest the input)", ylabel="||dL/dh||")
        controls = [self.depth, self.activation, self.init, self.batchnorm, self.residual]
        self.errors = ErrorArea()
        for control in controls:
            control.observe(self.errors.guard(lambda _change: self.update(), "measuring the gradients"), names="value")
        self.widget = widgets.VBox(
            [widgets.HBox(controls[:3]), widgets.HBox(controls[3:]), self.errors.widget, self.summary, self.plot.widget]
        )
        self.update()

    @one_blas_thread
    def update(self) -> None:
        model = deep_mlp(
            self.depth.value,
            activation=self.activation.value,
            init=self.init.value,
            batchnorm=self.batchnorm.value,
            residual=self.residual.value,
            in_features=self.X.shape[1],
        )
        self.profile = depth_profile(model, self.X, self.y, cross_entropy)
        verdict = "vanishing" if self.profile.ratio < 1e-2 else "exploding" if self.profile.ratio > 1e2 else "healthy"
        self.summary.value = (
            f"||dL/dh|| at block 1 / at block {self.depth.value}: <b>{self.profile.ratio:.2e}</b> ({verdict})"
        )
        self._draw()

    def _draw(self) -> None:
        norms = self.profile.activation_grad_norms
        self.line.set_data(range(1, len(norms) + 1), norms)
        self.plot.rescale()
        self.plot.render()

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)
