"""Chain-rule explorer: move the inputs and weights, watch every local derivative and their products.

Three columns per parameter: the product of local derivatives (the chain rule by hand), the
engine's backward pass, and a central difference. They agree to many digits wherever the
activation is smooth; at a ReLU kink the finite difference disagrees, which is the point of
showing it.
"""

from __future__ import annotations

import ipywidgets as widgets
import numpy as np

from bpcore.labs.chain_rule import scalar_chain
from bpcore.tensor import tensor
from bpcore.widgets.guard import ErrorArea

SLIDERS = {  # name: (start, min, max)
    "x": (1.5, -3.0, 3.0),
    "w1": (0.8, -3.0, 3.0),
    "b1": (-0.3, -2.0, 2.0),
    "w2": (-1.2, -3.0, 3.0),
    "b2": (0.4, -2.0, 2.0),
    "y": (0.2, 0.0, 1.0),
}
PRODUCTS = {
    "w2": ["dL/da2", "da2/dz2", "dz2/dw2"],
    "b2": ["dL/da2", "da2/dz2"],
    "w1": ["dL/da2", "da2/dz2", "dz2/da1", "da1/dz1", "dz1/dw1"],
    "b1": ["dL/da2", "da2/dz2", "dz2/da1", "da1/dz1"],
}


def engine_gradients(values: dict[str, float], activation: str) -> dict[str, float]:
    """The same network through bpcore's backward pass."""
    p = {name: tensor(values[name], requires_grad=True) for name in ("w1", "b1", "w2", "b2")}
    a1 = getattr(p["w1"] * values["x"] + p["b1"], activation)()
    a2 = getattr(p["w2"] * a1 + p["b2"], activation)()
    (0.5 * (a2 - values["y"]) ** 2).backward()
    return {name: float(t.grad) for name, t in p.items()}


def finite_differences(values: dict[str, float], activation: str, eps: float = 1e-6) -> dict[str, float]:
    def loss(**changes):
        v = {**values, **changes}
        return scalar_chain(v["x"], v["w1"], v["b1"], v["w2"], v["b2"], v["y"], activation).values["L"]

    return {
        name: (loss(**{name: values[name] + eps}) - loss(**{name: values[name] - eps})) / (2 * eps)
        for name in ("w1", "b1", "w2", "b2")
    }


class ChainRuleExplorer:
    """Sliders for x, w1, b1, w2, b2, y and the activation; a live table of derivatives.

    ``explorer.rows`` holds the numbers on display (what the tests read); ``explorer.widget`` is
    the box to show.
    """

    def __init__(self, activation: str = "sigmoid"):
        self.sliders = {
            name: widgets.FloatSlider(
                value=start,
                min=low,
                max=high,
                step=0.05,
                description=name,
                continuous_update=False,
                readout_format=".2f",
            )
            for name, (start, low, high) in SLIDERS.items()
        }
        self.activation = widgets.Dropdown(options=["sigmoid", "tanh", "relu"], value=activation, description="f")
        self.forward_html = widgets.HTML()
        self.local_html = widgets.HTML()
        self.table_html = widgets.HTML()
        self.errors = ErrorArea()
        for control in [*self.sliders.values(), self.activation]:
            control.observe(
                self.errors.guard(lambda _change: self.update(), "recomputing the derivatives"), names="value"
            )
        # the controls keep their natural width (readouts stay visible); the results take the rest
        controls = widgets.VBox([*self.sliders.values(), self.activation], layout=widgets.Layout(flex="0 0 auto"))
        results = widgets.VBox(
            [self.forward_html, self.local_html, self.table_html, self.errors.widget],
            layout=widgets.Layout(flex="1 1 auto"),
        )
        self.widget = widgets.HBox([controls, results])
        self.update()

    @property
    def values(self) -> dict[str, float]:
        return {name: slider.value for name, slider in self.sliders.items()}

    def update(self) -> None:
        v, f = self.values, self.activation.value
        chain = scalar_chain(v["x"], v["w1"], v["b1"], v["w2"], v["b2"], v["y"], f)
        engine, numerical = engine_gradients(v, f), finite_differences(v, f)
        self.chain = chain
        self.rows = {
            name: {"chain rule": chain.grads[name], "engine": engine[name], "finite difference": numerical[name]}
            for name in PRODUCTS
        }
        self.forward_html.value = "<b>forward</b>: " + ", ".join(f"{k} = {val:.4f}" for k, val in chain.values.items())
        self.local_html.value = "<b>local derivatives</b>: " + ", ".join(
            f"{k} = {val:.4f}" for k, val in chain.local.items()
        )
        header = (
            "<tr><th>dL/d</th><th>product of local derivatives</th><th>chain rule</th><th>engine</th>"
            "<th>finite difference</th><th>max rel. diff</th></tr>"
        )
        body = []
        for name, row in self.rows.items():
            product = " &times; ".join(PRODUCTS[name])
            numbers = np.array(list(row.values()))
            spread = float(np.ptp(numbers) / max(np.abs(numbers).max(), 1e-12))
            cells = "".join(f"<td>{val:+.6f}</td>" for val in row.values())
            body.append(f"<tr><td>{name}</td><td>{product}</td>{cells}<td>{spread:.1e}</td></tr>")
        self.table_html.value = f"<table>{header}{''.join(body)}</table>"

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)
