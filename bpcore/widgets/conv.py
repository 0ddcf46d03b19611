"""Convolution explorer: kernel, stride and padding on a small image; parameter sharing in numbers."""

from __future__ import annotations

import ipywidgets as widgets
import numpy as np

from bpcore.labs.beyond import filter_gradient_contributions
from bpcore.nn.conv import conv2d
from bpcore.tensor import tensor
from bpcore.widgets.guard import ErrorArea


class ConvExplorer:
    """``result`` holds output shape, positions per weight and the sharing check (what tests read)."""

    def __init__(self, size: int = 6, seed: int = 0):
        rng = np.random.default_rng(seed)
        self.x = rng.normal(size=(1, 1, size, size))
        self.rng = rng
        self.kernel = widgets.IntSlider(value=3, min=1, max=size, description="kernel", continuous_update=False)
        self.stride = widgets.IntSlider(value=1, min=1, max=3, description="stride", continuous_update=False)
        self.padding = widgets.IntSlider(value=0, min=0, max=2, description="padding", continuous_update=False)
        self.summary = widgets.HTML()
        self.errors = ErrorArea()
        for control in (self.kernel, self.stride, self.padding):
            control.observe(
                self.errors.guard(lambda _change: self.update(), "recomputing the convolution"), names="value"
            )
        self.widget = widgets.VBox(
            [widgets.HBox([self.kernel, self.stride, self.padding]), self.errors.widget, self.summary]
        )
        self.update()

    def update(self) -> None:
        k, s, p = self.kernel.value, self.stride.value, self.padding.value
        weight = tensor(np.random.default_rng(1).normal(size=(1, 1, k, k)), requires_grad=True)
        out = conv2d(tensor(self.x), weight, stride=s, padding=p)
        upstream = np.random.default_rng(2).normal(size=out.shape)
        out.backward(upstream)
        parts = filter_gradient_contributions(self.x, weight.data, upstream, stride=s, padding=p)
        summed = parts.sum(axis=(0, 1))
        self.result = {
            "output shape": out.shape,
            "positions per weight": parts.shape[0] * parts.shape[1],
            "max |sum of contributions - dW|": float(np.abs(summed - weight.grad).max()),
        }
        n = self.x.shape[-1]
        self.summary.value = (
            f"input {n}x{n}, kernel {k}, stride {s}, padding {p}: output {out.shape[-2]}x{out.shape[-1]} "
            f"= floor(({n} + 2*{p} - {k}) / {s}) + 1 per side<br>"
            f"each of the {k * k} weights is used at {self.result['positions per weight']} positions; "
            f"dL/dW is the sum of their {self.result['positions per weight']} contributions "
            f"(max difference {self.result['max |sum of contributions - dW|']:.1e})"
        )

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)
