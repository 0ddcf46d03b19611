"""Notebook 03 (training variants): batch, stochastic, mini-batch and online learning on one task.

* :func:`compare_variants` trains the same initial model with each variant for the same number of
  samples seen, with one learning rate: the only difference is how many samples each update sees.
* :func:`gradient_noise` measures E||g_B - g||^2 against the batch size B: a mini-batch gradient is
  a mean of B per-sample gradients, so its variance falls like 1/B (slope -1 on log-log axes) and its
  standard deviation like 1/sqrt(B).

Claims the tests prove on these numbers (tests/labs/test_variants.py): each variant makes the number
of updates its definition says; online learning makes one update per arrival, and the demo stream
(:func:`online_stream_order`) brings each training sample exactly ``epochs`` times; the measured noise
follows the 1/B law in variance, so its standard deviation falls like 1/sqrt(B). The variants
themselves (``fit(variant=...)``, ``online``) are engine: :mod:`bpcore.train`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from bpcore.labs import one_blas_thread
from bpcore.nn.functional import cross_entropy
from bpcore.nn.module import Module
from bpcore.optim import SGD
from bpcore.tensor import Tensor
from bpcore.train import VARIANTS, History, evaluate, fit, online


@dataclass
class VariantRun:
    history: History
    test_accuracy: float


@one_blas_thread
def compare_variants(
    make_model: Callable[[], Module], data, epochs: int = 5, lr: float = 0.05, batch_size: int = 32, seed: int = 0
) -> dict[str, VariantRun]:
    """Train the same initial model with each variant for the same number of samples seen.

    ``make_model()`` must build identical models (seed inside it). Plain SGD with one learning rate
    for all, so the only difference is how many samples each update sees. Online learning consumes
    ``epochs`` passes of the training set as one stream, in a fixed shuffled order.
    """
    runs = {}
    for variant in VARIANTS:
        model = make_model()
        history = fit(
            model,
            cross_entropy,
            SGD(model.parameters(), lr=lr),
            data.X_train,
            data.y_train,
            variant=variant,
            epochs=epochs,
            batch_size=batch_size,
            seed=seed,
            progress=False,
        )
        runs[variant] = VariantRun(history, evaluate(model, cross_entropy, data.X_test, data.y_test)["accuracy"])
    model = make_model()
    stream = ((data.X_train[i], data.y_train[i]) for i in online_stream_order(len(data.X_train), epochs, seed))
    history = online(model, cross_entropy, SGD(model.parameters(), lr=lr), stream)
    runs["online"] = VariantRun(history, evaluate(model, cross_entropy, data.X_test, data.y_test)["accuracy"])
    return runs


def online_stream_order(n: int, passes: int, seed: int = 0) -> np.ndarray:
    """The indices the demo's online stream delivers: ``passes`` copies of ``range(n)`` in one shuffled order.

    So that online learning sees as many samples as the other variants, the demo stream repeats the
    training set: each sample arrives ``passes`` times, each arrival one update, never revisited. A
    real stream would bring ``passes * n`` new samples instead.
    """
    return np.random.default_rng(seed).permutation(np.tile(np.arange(n), passes))


@dataclass
class GradientNoise:
    batch_sizes: np.ndarray
    variance: np.ndarray  # mean squared distance of a mini-batch gradient from the full-batch one

    @property
    def slope(self) -> float:
        """Slope of log(variance) against log(batch size): -1 is the 1/B law."""
        return float(np.polyfit(np.log(self.batch_sizes), np.log(self.variance), 1)[0])


@one_blas_thread
def gradient_noise(model: Module, loss_fn, X, y, batch_sizes, draws: int = 50, seed: int = 0) -> GradientNoise:
    """How noisy is a mini-batch gradient? E||g_B - g||^2 for each batch size B (sampled with replacement).

    A mini-batch gradient is a mean of B per-sample gradients, so its variance falls like 1/B:
    four times the batch buys half the noise (in standard deviation), at four times the compute.
    """
    rng = np.random.default_rng(seed)
    X, y = np.asarray(X, dtype=next(model.parameters()).dtype), np.asarray(y)
    full = _flat_gradient(model, loss_fn, X, y)
    variances = []
    for b in batch_sizes:
        squared = [
            np.sum((_flat_gradient(model, loss_fn, X[idx], y[idx]) - full) ** 2)
            for idx in (rng.integers(0, len(X), size=b) for _ in range(draws))
        ]
        variances.append(float(np.mean(squared)))
    return GradientNoise(np.asarray(batch_sizes), np.array(variances))


def _flat_gradient(model: Module, loss_fn, X: np.ndarray, y: np.ndarray) -> np.ndarray:
    model.zero_grad()
    loss_fn(model(Tensor(X)), y).backward()
    grad = np.concatenate([p.grad.ravel() for p in model.parameters()])
    model.zero_grad()
    return grad
