"""Notebook 05 (pitfalls and hyperparameters): each pitfall reproduced on purpose, with its numbers.

* The learning rate: too low crawls, too high diverges (:func:`learning_rate_sweep`).
* Optimizers on two-parameter landscapes (:data:`LANDSCAPES`, :func:`optimizer_path`):
  saddle, L = x^2 - y^2 + y^4 / 4, a zero gradient at (0, 0) that is no minimum (the minima are at
  y = +-sqrt(2)): plain gradient descent started on the ridge crawls away, momentum and adaptive
  methods leave sooner. ravine, L = (x^2 + 50 y^2) / 2, steep across and flat along: a step safe
  across is tiny along, so SGD zig-zags while momentum and RMSprop/Adam rescale the directions.
* Overfitting and its cures (:func:`overfitting_study`): every cure beats no regularisation on
  held-out points.
* Dead ReLUs after a huge learning rate (:func:`dead_relu_study`).
* Gradient checking: float32 finite differences are too coarse (:func:`float32_versus_float64`), and
  a ReLU kink breaks the check only next to zero (:func:`relu_kink_error`).

Each claim is asserted on these functions' numbers in tests/labs/test_pitfalls.py.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from bpcore import data as datasets
from bpcore import nn
from bpcore.diagnostics import dead_relu_fraction
from bpcore.gradcheck import numerical_gradient
from bpcore.labs import one_blas_thread
from bpcore.nn.functional import cross_entropy
from bpcore.optim import SGD, Adam, AdamW, RMSprop
from bpcore.progress import progress_bar
from bpcore.random import manual_seed
from bpcore.tensor import Tensor
from bpcore.train import evaluate, fit


def steps_until(losses: np.ndarray, threshold: float) -> int | None:
    """The first step whose loss is below ``threshold`` (None if never)."""
    below = np.flatnonzero(np.asarray(losses) < threshold)
    return int(below[0]) if below.size else None


@one_blas_thread
def learning_rate_sweep(lrs, steps: int = 100) -> dict[float, float]:
    """Plain SGD on the ravine for each learning rate: the loss after ``steps`` updates.

    Across the ravine the curvature is 50, so SGD is stable only for lr < 2/50 = 0.04.
    """
    return {lr: float(optimizer_path("ravine", "SGD", lr, steps)[1][-1]) for lr in lrs}


@dataclass
class RegularisationRun:
    train_loss: float
    test_loss: float
    epochs_run: int
    model: nn.Module


@one_blas_thread
def overfitting_study(
    n_train: int = 16,
    n_val: int = 48,
    n_test: int = 200,
    noise: float = 0.3,
    hidden: int = 128,
    epochs: int = 600,
    seed: int = 0,
    progress="auto",
):
    """A 1-128-128-1 tanh network on 16 noisy points memorises the noise; three cures, compared.

    ``n_train`` points train; ``n_val`` more are used only by early stopping; every run is scored
    on ``n_test`` held-out points. Full-batch Adam (lr 1e-2), same budget of ``epochs`` for all.

    Few training points let the network memorise them in a few hundred epochs, and the budget stops
    well before the regime where long full-batch Adam turns chaotic (here from about 1,000 epochs
    with 30 points): there a one-ulp change of one starting weight, the kind another CPU's rounding
    makes, moves the printed errors in their second digit. Within this budget such a change moves
    them by about 1e-12 (tests/numerics/run_perturbed.py checks the notebook's output).
    ``progress``: a bar over the four runs (see :func:`bpcore.progress.progress_bar`).
    """
    from bpcore.nn.functional import mse_loss

    n = n_train + n_val + n_test
    d = datasets.regression_1d(n=n, noise=noise, test_fraction=(n_val + n_test) / n, seed=seed)
    X_val, y_val, X_test, y_test = d.X_test[:n_val], d.y_test[:n_val], d.X_test[n_val:], d.y_test[n_val:]

    def model(dropout: float = 0.0):
        manual_seed(seed)
        layers = []
        for fan_in in (1, hidden):
            layers += [nn.Linear(fan_in, hidden), nn.Tanh()] + ([nn.Dropout(dropout)] if dropout else [])
        return nn.Sequential(*layers, nn.Linear(hidden, 1))

    settings = {
        "no regularisation": (model(), lambda m: Adam(m.parameters(), lr=1e-2), {}),
        "dropout 0.2": (model(0.2), lambda m: Adam(m.parameters(), lr=1e-2), {}),
        "weight decay 0.1": (model(), lambda m: AdamW(m.parameters(), lr=1e-2, weight_decay=0.1), {}),
        "early stopping": (
            model(),
            lambda m: Adam(m.parameters(), lr=1e-2),
            {"validation": (X_val, y_val), "early_stopping": 50},
        ),
    }
    runs = {}
    bar = progress_bar(len(settings), "overfitting study", progress)
    for done, (name, (m, make_optimizer, options)) in enumerate(settings.items()):
        bar.update(done, name)
        history = fit(
            m,
            mse_loss,
            make_optimizer(m),
            d.X_train,
            d.y_train,
            variant="batch",
            epochs=epochs,
            metric=None,
            progress=False,
            **options,
        )
        runs[name] = RegularisationRun(
            evaluate(m, mse_loss, d.X_train, d.y_train, metric=None)["loss"],
            evaluate(m, mse_loss, X_test, y_test, metric=None)["loss"],
            len(history.epochs),
            m,
        )
    bar.update(len(settings), "done")
    bar.close()
    return runs, d


@one_blas_thread
def dead_relu_study(lrs=(0.01, 3.0), epochs: int = 3, seed: int = 0) -> dict[float, float]:
    """Fraction of hidden ReLUs that never fire on the test digits after SGD training at each lr.

    One huge update can push a unit's pre-activation below zero for every input; its gradient is
    then zero forever, so nothing brings it back.
    """
    d = datasets.digits(seed=seed)
    result = {}
    for lr in lrs:
        manual_seed(seed)
        model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))
        fit(
            model,
            cross_entropy,
            SGD(model.parameters(), lr=lr),
            d.X_train,
            d.y_train,
            epochs=epochs,
            batch_size=32,
            seed=seed,
            progress=False,
        )
        result[lr] = dead_relu_fraction(model, d.X_test)["1"]
    return result


def float32_versus_float64(eps_values=(1e-1, 1e-2, 1e-3, 1e-4, 1e-6), seed: int = 0) -> dict[str, dict]:
    """Relative error of central differences for the same function in float32 and in float64.

    float32 keeps ~7 digits, so rounding error ~1e-7 / eps swamps the slope long before float64's
    ~1e-16 / eps does: gradient checks belong in float64.
    """
    x = np.random.default_rng(seed).normal(size=5)
    W = np.random.default_rng(seed + 1).normal(size=(5, 5))

    def f(v):
        return np.tanh(W @ v).sum()

    exact = W.T @ (1 - np.tanh(W @ x) ** 2)
    results = {}
    for dtype in (np.float32, np.float64):
        v = x.astype(dtype)
        errors = {}
        for eps in eps_values:
            numerical = numerical_gradient(lambda v=v, dt=dtype: float(f(v.astype(dt))), v, dtype(eps))
            errors[eps] = float(np.max(np.abs(numerical - exact)) / np.max(np.abs(exact)))
        results[np.dtype(dtype).name] = errors
    return results


def relu_kink_error(offset: float, eps: float = 1e-6) -> float:
    """Relative error of a central difference of relu at ``offset`` (analytic slope 1 above 0, 0 below)."""
    analytic = 1.0 if offset > 0 else 0.0
    numerical = (max(offset + eps, 0) - max(offset - eps, 0)) / (2 * eps)
    return abs(numerical - analytic) / max(abs(numerical), abs(analytic), 1e-12)


# ------------------------------------------------------------------ two-parameter landscapes for the optimizers


def saddle(p):
    x, y = p[0], p[1]
    return x * x - y * y + y**4 / 4


def ravine(p):
    x, y = p[0], p[1]
    return (x * x + 50 * y * y) / 2


LANDSCAPES = {
    "saddle": (saddle, np.array([1.0, 1e-3]), np.array([0.0, np.sqrt(2.0)])),  # (function, start, a minimum)
    "ravine": (ravine, np.array([-4.0, 1.0]), np.array([0.0, 0.0])),
}


OPTIMIZERS: dict[str, Callable] = {
    "SGD": lambda params, lr: SGD(params, lr=lr),
    "SGD + momentum": lambda params, lr: SGD(params, lr=lr, momentum=0.9),
    "Nesterov": lambda params, lr: SGD(params, lr=lr, momentum=0.9, nesterov=True),
    "RMSprop": lambda params, lr: RMSprop(params, lr=lr),
    "Adam": lambda params, lr: Adam(params, lr=lr),
}


def optimizer_path(landscape: str, optimizer: str, lr: float, steps: int = 100) -> tuple[np.ndarray, np.ndarray]:
    """Points visited (steps + 1, 2) and the loss at each, following the engine's gradient."""
    fn, start, _ = LANDSCAPES[landscape]
    p = Tensor(start.copy(), requires_grad=True)
    opt = OPTIMIZERS[optimizer]([p], lr)
    points, losses = [p.data.copy()], []
    for _ in range(steps):
        opt.zero_grad()
        loss = fn(p)
        losses.append(float(loss.data))
        loss.backward()
        opt.step()
        points.append(p.data.copy())
    losses.append(float(fn(Tensor(p.data)).data))
    return np.array(points), np.array(losses)
