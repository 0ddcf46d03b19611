"""Batch size and learning rate explorer: train a small digits classifier and see what changes.

Small batches make many cheap, noisy updates per epoch; large ones few, accurate, expensive
updates. With the samples-seen budget fixed, the learning rate that works depends on the batch
size: that coupling is what this explorer lets you feel.
"""

from __future__ import annotations

import ipywidgets as widgets
import numpy as np

from bpcore import nn
from bpcore.labs import one_blas_thread
from bpcore.nn.functional import cross_entropy
from bpcore.optim import SGD
from bpcore.random import manual_seed
from bpcore.train import evaluate, fit
from bpcore.widgets.figure import FigureImage
from bpcore.widgets.guard import ErrorArea

BATCH_SIZES = [1, 4, 16, 64, 256, 1347]


class BatchSizeExplorer:
    """``result`` holds the last run's numbers (updates, final training loss, test accuracy)."""

    def __init__(self, data, epochs: int = 3, hidden: int = 32, seed: int = 0):
        self.data, self.epochs, self.hidden, self.seed = data, epochs, hidden, seed
        self.batch_size = widgets.SelectionSlider(
            options=BATCH_SIZES,
            value=32 if 32 in BATCH_SIZES else 16,
            description="batch size",
            continuous_update=False,
        )
        self.lr = widgets.FloatLogSlider(
            value=0.05, base=10, min=-3, max=0, step=0.25, description="lr", continuous_update=False
        )
        self.summary = widgets.HTML()
        self.plot = FigureImage(figsize=(6, 3), margins=(0.12, 0.17, 0.97, 0.95))
        (self.line,) = self.plot.ax.plot([], [], label="loss per update")
        self.plot.log_y()
        from matplotlib.ticker import FuncFormatter

        plain = FuncFormatter(lambda value, _position: f"{value:.3g}")  # a loss often spans less than a decade
        self.plot.ax.yaxis.set_major_formatter(plain)
        self.plot.ax.yaxis.set_minor_formatter(plain)
        self.plot.ax.set(xlabel="samples seen", ylabel="loss")
        self.plot.ax.legend()
        self.errors = ErrorArea()
        for control in (self.batch_size, self.lr):
            control.observe(self.errors.guard(lambda _change: self.run(), "training the network"), names="value")
        self.widget = widgets.VBox(
            [widgets.HBox([self.batch_size, self.lr]), self.errors.widget, self.summary, self.plot.widget]
        )
        self.result: dict = {}
        self.run()

    @one_blas_thread
    def run(self) -> dict:
        manual_seed(self.seed)
        model = nn.Sequential(
            nn.Linear(self.data.n_features, self.hidden), nn.ReLU(), nn.Linear(self.hidden, self.data.classes)
        )
        history = fit(
            model,
            cross_entropy,
            SGD(model.parameters(), lr=self.lr.value),
            self.data.X_train,
            self.data.y_train,
            variant="minibatch",
            batch_size=self.batch_size.value,
            epochs=self.epochs,
            seed=self.seed,
            progress=False,
        )
        accuracy = evaluate(model, cross_entropy, self.data.X_test, self.data.y_test)["accuracy"]
        self.result = {
            "updates": history.updates,
            "final_loss": history.epochs[-1]["train_loss"],
            "test_accuracy": accuracy,
            "loss": np.array(history.loss),
        }
        self.summary.value = (
            f"batch {self.batch_size.value}, lr {self.lr.value:.3g}: {history.updates} updates "
            f"in {self.epochs} epochs; last epoch's training loss "
            f"{self.result['final_loss']:.3f}; test accuracy {accuracy:.3f}"
        )
        self._draw(history)
        return self.result

    def _draw(self, history) -> None:
        self.line.set_data(history.samples_seen, history.loss)
        self.plot.rescale()
        self.plot.render()

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)
