"""A stepper through the reference 3-layer network: one equation at a time, with its numbers.

Forward steps 1-5, backward steps 1-4 and the SGD update (step 5), each showing the equation in
LaTeX and every quantity it produces with its shape. The numbers come from ``bpcore.labs.three_layer``,
the hand derivation that the tests prove equal to the engine.
"""

from __future__ import annotations

import ipywidgets as widgets
import numpy as np

from bpcore.labs.three_layer import sgd_update, three_layer
from bpcore.widgets.guard import ErrorArea

STEPS = [
    ("Forward 1: linear", r"$z_1 = W_1 x + b_1$", ["z1"]),
    ("Forward 2: hidden activation", r"$h = f(z_1)$", ["h"]),
    ("Forward 3: linear", r"$z_2 = W_2 h + b_2$", ["z2"]),
    ("Forward 4: output activation", r"$\hat y = g(z_2)$", ["y_pred"]),
    ("Forward 5: loss", r"$L = \mathrm{loss}(\hat y, y)$", ["L"]),
    (
        "Backward 1: output delta",
        r"$\delta_{out} = \frac{\partial L}{\partial \hat y} \odot g'(z_2)$",
        ["dL_dy", "dy_dz2", "delta_output"],
    ),
    (
        "Backward 2: output weights",
        r"$\frac{\partial L}{\partial W_2} = \delta_{out} h^T,\quad "
        r"\frac{\partial L}{\partial b_2} = \delta_{out}$",
        ["dL_dW2", "dL_db2"],
    ),
    ("Backward 3: hidden delta", r"$\delta_{hid} = (W_2^T \delta_{out}) \odot f'(z_1)$", ["delta_hidden"]),
    (
        "Backward 4: hidden weights",
        r"$\frac{\partial L}{\partial W_1} = \delta_{hid} x^T,\quad "
        r"\frac{\partial L}{\partial b_1} = \delta_{hid}$",
        ["dL_dW1", "dL_db1"],
    ),
    (
        "Update 5: gradient descent",
        r"$W \leftarrow W - \eta \frac{\partial L}{\partial W}$ for every parameter",
        ["W1_new", "W2_new", "L_after"],
    ),
]


def _fmt(value: np.ndarray) -> str:
    value = np.asarray(value)
    text = np.array2string(value, precision=4, suppress_small=True, separator=", ")
    return f"<code>{text}</code> <i>shape {value.shape}</i>"


class ThreeLayerStepper:
    """Prev / Next buttons walk the 10 steps; ``current`` is the step on display (what tests read)."""

    def __init__(self, x, y_true, params: dict, f="sigmoid", g="sigmoid", loss="mse", lr=0.5):
        self.forward_backward = three_layer(x, y_true, **params, f=f, g=g, loss=loss)
        updated = sgd_update(params, self.forward_backward.grads, lr)
        after = three_layer(x, y_true, **updated, f=f, g=g, loss=loss)
        self.numbers = dict(self.forward_backward.steps)
        self.numbers.update(W1_new=updated["W1"], W2_new=updated["W2"], L_after=np.asarray(after.loss))
        if g == "softmax":  # softmax has no elementwise g'(z2) to show
            self.steps = [(t, eq, [n for n in names if n in self.numbers]) for t, eq, names in STEPS]
        else:
            self.steps = STEPS
        self.index = 0
        self.title = widgets.HTML()
        self.equation = widgets.HTMLMath()
        self.values = widgets.HTML()
        self.previous_button = widgets.Button(description="Prev", icon="arrow-left")
        self.next_button = widgets.Button(description="Next", icon="arrow-right")
        self.errors = ErrorArea()
        self.previous_button.on_click(self.errors.guard(lambda _b: self.go(self.index - 1), "showing the step"))
        self.next_button.on_click(self.errors.guard(lambda _b: self.go(self.index + 1), "showing the step"))
        buttons = widgets.HBox([self.previous_button, self.next_button])
        self.widget = widgets.VBox([buttons, self.title, self.equation, self.values, self.errors.widget])
        self.go(0)

    @property
    def current(self) -> dict:
        title, equation, names = self.steps[self.index]
        return {"title": title, "equation": equation, "values": {n: self.numbers[n] for n in names}}

    def go(self, index: int) -> None:
        self.index = int(np.clip(index, 0, len(self.steps) - 1))
        step = self.current
        self.title.value = f"<b>Step {self.index + 1} of {len(self.steps)}: {step['title']}</b>"
        self.equation.value = step["equation"]
        self.values.value = "<br>".join(f"{name} = {_fmt(v)}" for name, v in step["values"].items())
        self.previous_button.disabled = self.index == 0
        self.next_button.disabled = self.index == len(self.steps) - 1

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)
