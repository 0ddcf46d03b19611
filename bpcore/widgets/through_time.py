"""Through-time explorer: how far back does the gradient reach, by cell type, length and forget bias?"""

from __future__ import annotations

import ipywidgets as widgets

from bpcore import data
from bpcore.labs import one_blas_thread
from bpcore.labs.through_time import hidden_gradient_norms
from bpcore.nn import RecurrentNet
from bpcore.nn.functional import mse_loss
from bpcore.nn.recurrent import init_forget_gate_bias_
from bpcore.random import manual_seed
from bpcore.widgets.figure import FigureImage
from bpcore.widgets.guard import ErrorArea


class ThroughTimeExplorer:
    """``norms`` holds ||dL/dh_t|| for the current settings; ``ratio`` the first over the last."""

    def __init__(self):
        self.kind = widgets.Dropdown(options=["rnn", "gru", "lstm"], value="rnn", description="cell")
        self.length = widgets.IntSlider(value=50, min=5, max=150, step=5, description="length", continuous_update=False)
        self.forget_bias = widgets.FloatSlider(
            value=0.0, min=0.0, max=3.0, step=0.5, description="forget bias", continuous_update=False
        )
        self.hidden = widgets.IntSlider(value=16, min=4, max=64, step=4, description="hidden", continuous_update=False)
        self.summary = widgets.HTML()
        self.plot = FigureImage(figsize=(7, 3))
        (self.line,) = self.plot.ax.plot([], [])
        self.plot.log_y()
        self.plot.ax.set(xlabel="time step t (the loss is at the last step)", ylabel="||dL/dh_t||")
        controls = [self.kind, self.length, self.forget_bias, self.hidden]
        self.errors = ErrorArea()
        for control in controls:
            control.observe(self.errors.guard(lambda _change: self.update(), "measuring the gradients"), names="value")
        self.widget = widgets.VBox(
            [widgets.HBox(controls[:2]), widgets.HBox(controls[2:]), self.errors.widget, self.summary, self.plot.widget]
        )
        self.update()

    @one_blas_thread
    def update(self) -> None:
        X, Y = data.adding_problem(32, self.length.value, seed=0)
        manual_seed(0)
        model = RecurrentNet(self.kind.value, 2, self.hidden.value, 1, last_only=True)
        if self.kind.value == "lstm" and self.forget_bias.value:
            init_forget_gate_bias_(model.rnn, self.forget_bias.value)
        self.norms = hidden_gradient_norms(model, X, Y, mse_loss)
        self.ratio = float(self.norms[0] / self.norms[-1])
        note = "" if self.kind.value == "lstm" else " (the forget bias applies to LSTMs only)"
        self.summary.value = f"||dL/dh_1|| / ||dL/dh_T|| = <b>{self.ratio:.2e}</b>{note}"
        self._draw()

    def _draw(self) -> None:
        self.line.set_data(range(1, len(self.norms) + 1), self.norms)
        self.plot.rescale()
        self.plot.render()

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)
