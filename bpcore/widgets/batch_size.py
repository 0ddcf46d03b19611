"""Batch size and learning rate explorer: train a small digits classifier and see what changes.

Small batches make many cheap, noisy updates per epoch; large ones few, accurate, expensive
updates. With the samples-seen budget fixed, the learning rate that works depends on the batch
size: that coupling is what this explorer lets you feel.
"""

from __future__ import annotations

import ipywidgets as widgets
import numpy as np

from bpcore import nn
from bpcore.compile import compile
from bpcore.labs import one_blas_thread
from bpcore.nn.functional import cross_entropy
from bpcore.optim import SGD
from bpcore.random import manual_seed
from bpcore.tensor import Tensor
from bpcore.train import batches, evaluate
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
        from matplotlib.ticker import FuncFormatter, MaxNLocator

        # plain numbers (a loss often spans less than a decade); the minor ticks (2 and 5) are labelled only
        # when the axis spans two decades or less, where there are few major ones, as matplotlib's own
        # log labels do. Each label drawn costs about a millisecond at every update.
        self.plot.ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _position: f"{value:.3g}"))
        self.plot.ax.yaxis.set_minor_formatter(FuncFormatter(self._minor_label))
        self.plot.ax.xaxis.set_major_locator(MaxNLocator(nbins=6))
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
        """Train as ``bp.fit(..., variant="minibatch")`` does, one update per shuffled batch, with its
        step replayed by ``bp.compile``: bitwise the same numbers (tests/test_widgets_explorers.py checks
        them against fit's), at a fraction of the Python per update, so batch size 1 (1,347 updates)
        stays quick enough to follow a slider."""
        manual_seed(self.seed)
        model = nn.Sequential(
            nn.Linear(self.data.n_features, self.hidden), nn.ReLU(), nn.Linear(self.hidden, self.data.classes)
        )
        optimizer = SGD(model.parameters(), lr=self.lr.value)

        def step(xb, yb):
            optimizer.zero_grad()
            loss = cross_entropy(model(Tensor(xb)), yb)
            loss.backward()
            optimizer.step()
            return loss.item()

        compiled = compile(step)
        X, y = self.data.X_train, self.data.y_train
        rng = np.random.default_rng(self.seed)
        model.train()
        losses, samples_seen, seen = [], [], 0
        for _epoch in range(self.epochs):
            epoch_loss, epoch_seen = 0.0, 0
            for index in batches(len(X), "minibatch", self.batch_size.value, rng):
                loss = compiled(X[index], y[index])
                losses.append(loss)
                seen += len(index)
                samples_seen.append(seen)
                epoch_loss += loss * len(index)
                epoch_seen += len(index)
        accuracy = evaluate(model, cross_entropy, self.data.X_test, self.data.y_test)["accuracy"]
        self.result = {
            "updates": len(losses),
            "final_loss": epoch_loss / epoch_seen,
            "test_accuracy": accuracy,
            "loss": np.array(losses),
            "samples_seen": np.array(samples_seen),
        }
        self.summary.value = (
            f"batch {self.batch_size.value}, lr {self.lr.value:.3g}: {len(losses)} updates "
            f"in {self.epochs} epochs; last epoch's training loss "
            f"{self.result['final_loss']:.3f}; test accuracy {accuracy:.3f}"
        )
        self._draw()
        return self.result

    def _draw(self) -> None:
        self.line.set_data(self.result["samples_seen"], self.result["loss"])
        self.plot.rescale()
        self.plot.render()

    def _minor_label(self, value, _position) -> str:
        low, high = self.plot.ax.get_ylim()
        return f"{value:.3g}" if 0 < low and high / low <= 100 else ""

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)
