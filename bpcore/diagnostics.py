"""Look inside a network while it trains: the checks that find most backprop bugs.

* gradient norms per parameter: vanishing (early layers ~0) or exploding (huge) gradients
* activation statistics per layer: saturation (tanh near +-1), dead ReLUs (always 0)
* update-to-weight ratio: ||lr * update|| / ||w||, healthy around 1e-3 per step
* sanity checks before a long run: the initial loss of a C-class softmax should be near ln C, and
  a correct network can drive the loss on a tiny batch to almost zero
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from bpcore.nn.layers import ReLU
from bpcore.nn.module import Module
from bpcore.tensor import Tensor, no_grad


def grad_norms_by_layer(model: Module) -> dict[str, float]:
    """L2 norm of each parameter's gradient, by name (parameters without a gradient are left out)."""
    return {name: float(np.linalg.norm(p.grad)) for name, p in model.named_parameters() if p.grad is not None}


def weight_norms(model: Module) -> dict[str, float]:
    return {name: float(np.linalg.norm(p.data)) for name, p in model.named_parameters()}


def snapshot(model: Module) -> dict[str, np.ndarray]:
    """Copies of the parameters, to measure an update against later."""
    return {name: p.data.copy() for name, p in model.named_parameters()}


def update_to_weight_ratios(model: Module, before: dict[str, np.ndarray]) -> dict[str, float]:
    """||w_after - w_before|| / ||w_before|| per parameter. Around 1e-3 is healthy; 1e-1 is too big."""
    ratios = {}
    for name, p in model.named_parameters():
        scale = np.linalg.norm(before[name])
        ratios[name] = float(np.linalg.norm(p.data - before[name]) / scale) if scale > 0 else math.inf
    return ratios


@dataclass
class ActivationStats:
    """Summary of one layer's outputs over a batch."""

    mean: float
    std: float
    fraction_zero: float  # exactly zero: ReLU units that are off
    fraction_saturated: float  # |a| > 0.99: tanh/sigmoid-like units with a near-zero slope
    values: np.ndarray  # the raw outputs, for histograms


class ActivationMonitor:
    """Record the output of every sub-module during forward passes.

    >>> with ActivationMonitor(model) as monitor:
    ...     model(x)
    >>> monitor.stats["1"].fraction_zero
    """

    def __init__(self, model: Module, only: tuple[type, ...] | None = None):
        self.model, self.only = model, only
        self.outputs: dict[str, np.ndarray] = {}
        self._wrapped: list[Module] = []

    def __enter__(self) -> ActivationMonitor:
        for name, module in self.model.named_modules():
            if not name or (self.only is not None and not isinstance(module, self.only)):
                continue
            original = module.forward

            def recording(*args, _name=name, _original=original, **kwargs):
                out = _original(*args, **kwargs)
                if isinstance(out, Tensor):
                    self.outputs[_name] = out.data.copy()
                return out

            object.__setattr__(module, "forward", recording)
            self._wrapped.append(module)
        return self

    def __exit__(self, *exc) -> None:
        for module in self._wrapped:
            object.__delattr__(module, "forward")  # back to the class's forward
        self._wrapped.clear()

    @property
    def stats(self) -> dict[str, ActivationStats]:
        return {
            name: ActivationStats(
                mean=float(a.mean()),
                std=float(a.std()),
                fraction_zero=float(np.mean(a == 0)),
                fraction_saturated=float(np.mean(np.abs(a) > 0.99)),
                values=a,
            )
            for name, a in self.outputs.items()
        }


def dead_relu_fraction(model: Module, X) -> dict[str, float]:
    """For each ReLU layer: the fraction of its units that output 0 for every sample of X.

    A dead unit passes no gradient (ReLU'(z) = 0 for z < 0), so nothing can revive it.
    """
    with ActivationMonitor(model, only=(ReLU,)) as monitor, no_grad():
        model(Tensor(np.asarray(X, dtype=next(model.parameters()).dtype)))
    result = {}
    for name, a in monitor.outputs.items():
        per_unit = a.reshape(a.shape[0], -1)
        result[name] = float(np.mean(np.all(per_unit == 0, axis=0)))
    return result


@dataclass
class SanityCheck:
    name: str
    expected: float
    measured: float
    passed: bool
    advice: str

    def __str__(self) -> str:
        status = "ok" if self.passed else "CHECK"
        return f"[{status}] {self.name}: expected {self.expected:.4g}, measured {self.measured:.4g}. {self.advice}"


def initial_loss_check(model: Module, loss_fn, X, y, classes: int, tolerance: float = 0.25) -> SanityCheck:
    """At initialisation a C-class classifier should be unsure: loss close to -ln(1/C) = ln C.

    Much higher means confident wrong guesses (weights or last-layer bias too large).
    """
    expected = math.log(classes)
    with no_grad():
        measured = float(loss_fn(model(Tensor(np.asarray(X, dtype=next(model.parameters()).dtype))), y).item())
    passed = abs(measured - expected) <= tolerance * expected
    advice = (
        "The model starts unsure, as it should."
        if passed
        else ("Shrink the initial weights (or the last layer) so the first predictions are close to uniform.")
    )
    return SanityCheck("initial loss vs ln C", expected, measured, passed, advice)


def overfit_tiny_batch(
    model: Module, loss_fn, optimizer, X, y, steps: int = 200, target: float = 0.05
) -> tuple[SanityCheck, list[float]]:
    """Train on a handful of samples: a correct model and backward pass can memorise them.

    Returns the check and the loss curve. If the loss does not approach zero, suspect the
    gradients (run gradcheck), the learning rate, or a model too small for even a few samples.
    """
    X = Tensor(np.asarray(X, dtype=next(model.parameters()).dtype))
    losses = []
    for _ in range(steps):
        optimizer.zero_grad()
        loss = loss_fn(model(X), y)
        loss.backward()
        optimizer.step()
        losses.append(float(loss.item()))
    passed = losses[-1] <= target
    advice = (
        "Gradients flow and the optimizer works."
        if passed
        else ("Could not memorise a tiny batch: check gradients with bp.gradcheck, then the learning rate.")
    )
    return SanityCheck("overfit a tiny batch", target, losses[-1], passed, advice), losses


def histogram(values: np.ndarray, bins: int = 30, log_abs: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Counts and bin edges of ``values`` (of log10|values| when gradients span many decades)."""
    v = np.asarray(values, dtype=np.float64).ravel()
    if log_abs:
        v = np.log10(np.abs(v[v != 0]))
    return np.histogram(v, bins=bins)
