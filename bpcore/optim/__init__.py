"""Optimizers, learning-rate schedules and gradient clipping, with PyTorch's update rules and defaults.

Backpropagation computes gradients; an optimizer turns them into a change of the weights.
Each ``step()`` below is the algorithm as PyTorch documents it, written on numpy arrays in place.
``g`` is the gradient, ``p`` the parameter, ``lr`` the learning rate.
"""

from __future__ import annotations

import math
import numbers
from typing import ClassVar

import numpy as np

from bpcore.optim import lr_scheduler
from bpcore.optim.lr_scheduler import CosineAnnealingLR, ExponentialLR, LRScheduler, StepLR, WarmupCosineLR
from bpcore.tensor import Tensor, replayed


def _as_list(params, optimizer: str = "the optimizer") -> list[Tensor]:
    if hasattr(params, "parameters") and callable(params.parameters):  # a Module
        raise TypeError(
            f"{optimizer} takes the parameters, not the model: pass model.parameters() "
            f"(got the {type(params).__name__} module itself)"
        )
    if isinstance(params, Tensor):
        raise TypeError(
            "params argument given to the optimizer should be an iterable of Tensors, but got a Tensor: "
            "pass [p] for one tensor, or model.parameters()"
        )
    try:
        params = list(params)
    except TypeError:
        raise TypeError(
            f"params argument given to the optimizer should be an iterable of Tensors (model.parameters()), "
            f"but got {type(params).__name__}"
        ) from None
    if not params:
        raise ValueError("the optimizer got an empty parameter list: pass model.parameters()")
    for index, p in enumerate(params):
        if not isinstance(p, Tensor):
            raise TypeError(f"optimizer parameters must be tensors; item {index} is a {type(p).__name__}")
        if not p.requires_grad:
            raise ValueError(f"optimizer parameter {index} (shape {p.shape}) does not require grad")
    return params


def _real(name: str, value, what: str, low: float = 0.0, high: float | None = None, open_high: bool = False):
    """A hyperparameter checked at construction, as PyTorch does: a real number in range, else an error
    naming it, what it must be and what arrived (so a typo fails here, not as nan weights many steps later)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number ({what}), got {type(value).__name__} {value!r}")
    above = value < high if open_high else value <= high if high is not None else True
    if not (math.isfinite(value) and low <= value and above):
        bound = "" if high is None else f" and {'<' if open_high else '<='} {high:g}"
        raise ValueError(f"Invalid {name} value: {value!r} ({what}: it must be finite, >= {low:g}{bound})")
    return value


def _betas(value):
    if not isinstance(value, tuple | list) or len(value) != 2:
        raise TypeError(
            f"betas must be a pair (beta1, beta2) such as (0.9, 0.999), got {type(value).__name__} {value!r}"
        )
    for index, beta in enumerate(value):
        if isinstance(beta, bool) or not isinstance(beta, numbers.Real):
            raise TypeError(f"betas[{index}] must be a number in [0, 1), got {type(beta).__name__} {beta!r}")
        if not 0.0 <= beta < 1.0:
            raise ValueError(f"Invalid beta parameter at index {index}: {beta!r} (each beta must be in [0, 1))")
    return tuple(value)


_CHECKS = {
    "lr": lambda v: _real("learning rate", v, "the step size"),
    "momentum": lambda v: _real("momentum", v, "the velocity's decay"),
    "dampening": lambda v: _real("dampening", v, "the share of the gradient left out of the velocity", high=1.0),
    "weight_decay": lambda v: _real("weight_decay", v, "the L2 penalty"),
    "eps": lambda v: _real("epsilon", v, "added to the denominator"),
    "alpha": lambda v: _real("alpha", v, "the running average's decay", high=1.0),
    "lr_decay": lambda v: _real("lr_decay", v, "the learning rate's decay"),
    "initial_accumulator_value": lambda v: _real("initial_accumulator_value", v, "the starting sum of squares"),
    "betas": _betas,
}


def _check_grad(p: Tensor, index: int, optimizer: str) -> None:
    """A gradient has the shape of its parameter; another shape (set by hand) is refused, not broadcast."""
    grad = p.grad
    if isinstance(grad, Tensor):
        raise TypeError(f"{optimizer}.step(): parameter {index}'s .grad is a Tensor; it must be a numpy array")
    if np.shape(grad) != p.shape:
        raise ValueError(
            f"{optimizer}.step(): parameter {index} has shape {p.shape} but its .grad has shape {np.shape(grad)}; "
            "a gradient has the shape of what it differentiates"
        )


class Optimizer:
    """Holds the parameters in ``param_groups`` (a list with one dict, as in PyTorch) and per-parameter state."""

    defaults: ClassVar[dict] = {}

    def __init__(self, params, **settings):
        unknown = settings.keys() - self.defaults.keys()
        if unknown:
            raise TypeError(f"{type(self).__name__} got unknown settings {sorted(unknown)}")
        group = {**self.defaults, **settings, "params": _as_list(params, type(self).__name__)}
        for name, check in _CHECKS.items():
            if name in group:
                group[name] = check(group[name])
        self.param_groups = [group]
        self.state: dict[int, dict] = {}

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        for name in ("step", "zero_grad"):  # an override is recorded whole by bp.compile too
            if name in cls.__dict__:
                setattr(cls, name, replayed(cls.__dict__[name]))

    @replayed
    def zero_grad(self) -> None:
        for group in self.param_groups:
            for p in group["params"]:
                p.grad = None

    @replayed
    def step(self) -> None:
        for group in self.param_groups:
            for index, p in enumerate(group["params"]):
                if p.grad is not None:
                    _check_grad(p, index, type(self).__name__)
                    self.update(p, p.grad, self.state.setdefault(id(p), {}), group)

    def update(self, p: Tensor, g: np.ndarray, state: dict, group: dict) -> None:
        raise NotImplementedError

    @property
    def lr(self) -> float:
        return self.param_groups[0]["lr"]


class SGD(Optimizer):
    """Stochastic gradient descent, optionally with momentum.

    g <- g + weight_decay p
    momentum: b <- momentum b + (1 - dampening) g   (b = g on the first step)
              g <- g + momentum b (nesterov)   or   g <- b
    p <- p - lr g
    """

    defaults: ClassVar[dict] = {"lr": 1e-3, "momentum": 0.0, "dampening": 0.0, "weight_decay": 0.0, "nesterov": False}

    def __init__(self, params, lr: float = 1e-3, **settings):
        super().__init__(params, lr=lr, **settings)
        group = self.param_groups[0]
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError("Nesterov momentum needs momentum > 0 and dampening = 0")

    def step(self) -> None:
        group = self.param_groups[0]
        plain = len(self.param_groups) == 1 and not group["momentum"] and not group["weight_decay"]
        if not plain or type(self).update is not SGD.update:  # a subclass's own update() is honoured
            return super().step()
        lr = group["lr"]  # plain SGD, the common case, in one loop: p <- p - lr g
        for index, p in enumerate(group["params"]):
            g = p.grad
            if g is None:
                continue
            if type(g) is not np.ndarray or g.shape != p.data.shape:
                _check_grad(p, index, type(self).__name__)
            p.data -= lr * g
        return None

    def update(self, p, g, state, group):
        if group["weight_decay"]:
            g = g + group["weight_decay"] * p.data
        momentum = group["momentum"]
        if momentum:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = np.array(g, copy=True)
            else:
                buf *= momentum
                buf += (1 - group["dampening"]) * g
            g = g + momentum * buf if group["nesterov"] else buf
        p.data -= group["lr"] * g


class RMSprop(Optimizer):
    """Divide the step by a running root-mean-square of recent gradients.

    s <- alpha s + (1 - alpha) g^2;   p <- p - lr g / (sqrt(s) + eps)
    (centered: subtract the squared running mean of g inside the root; momentum as in SGD)
    """

    defaults: ClassVar[dict] = {
        "lr": 1e-2,
        "alpha": 0.99,
        "eps": 1e-8,
        "weight_decay": 0.0,
        "momentum": 0.0,
        "centered": False,
    }

    def update(self, p, g, state, group):
        if group["weight_decay"]:
            g = g + group["weight_decay"] * p.data
        alpha = group["alpha"]
        square_avg = state.setdefault("square_avg", np.zeros_like(p.data))
        square_avg *= alpha
        square_avg += (1 - alpha) * g * g
        if group["centered"]:
            grad_avg = state.setdefault("grad_avg", np.zeros_like(p.data))
            grad_avg *= alpha
            grad_avg += (1 - alpha) * g
            avg = np.sqrt(square_avg - grad_avg * grad_avg) + group["eps"]
        else:
            avg = np.sqrt(square_avg) + group["eps"]
        if group["momentum"]:
            buf = state.setdefault("momentum_buffer", np.zeros_like(p.data))
            buf *= group["momentum"]
            buf += g / avg
            p.data -= group["lr"] * buf
        else:
            p.data -= group["lr"] * g / avg


class Adagrad(Optimizer):
    """Per-weight step sizes that shrink with the sum of all past squared gradients.

    G <- G + g^2;   p <- p - lr_t g / (sqrt(G) + eps),   lr_t = lr / (1 + (t - 1) lr_decay)
    """

    defaults: ClassVar[dict] = {
        "lr": 1e-2,
        "lr_decay": 0.0,
        "weight_decay": 0.0,
        "initial_accumulator_value": 0.0,
        "eps": 1e-10,
    }

    def update(self, p, g, state, group):
        if "sum" not in state:
            state["sum"] = np.full_like(p.data, group["initial_accumulator_value"])
            state["step"] = 0
        state["step"] += 1
        if group["weight_decay"]:
            g = g + group["weight_decay"] * p.data
        lr = group["lr"] / (1 + (state["step"] - 1) * group["lr_decay"])
        state["sum"] += g * g
        p.data -= lr * g / (np.sqrt(state["sum"]) + group["eps"])


class Adam(Optimizer):
    """Momentum on the gradient (m) and RMSprop-style scaling (v), both bias-corrected.

    m <- b1 m + (1 - b1) g;   v <- b2 v + (1 - b2) g^2
    p <- p - lr (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)
    The corrections undo the pull towards 0 of m and v, which start at 0.
    """

    defaults: ClassVar[dict] = {"lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.0, "amsgrad": False}
    decoupled_weight_decay = False

    def update(self, p, g, state, group):
        if not state:
            state.update(step=0, exp_avg=np.zeros_like(p.data), exp_avg_sq=np.zeros_like(p.data))
            if group["amsgrad"]:
                state["max_exp_avg_sq"] = np.zeros_like(p.data)
        state["step"] += 1
        t = state["step"]
        beta1, beta2 = group["betas"]
        lr, wd = group["lr"], group["weight_decay"]
        if wd and self.decoupled_weight_decay:
            p.data *= 1 - lr * wd  # AdamW: shrink the weight directly, outside the adaptive scaling
        elif wd:
            g = g + wd * p.data  # Adam: L2 penalty added to the gradient, then scaled like it
        m, v = state["exp_avg"], state["exp_avg_sq"]
        m *= beta1
        m += (1 - beta1) * g
        v *= beta2
        v += (1 - beta2) * g * g
        if group["amsgrad"]:
            np.maximum(state["max_exp_avg_sq"], v, out=state["max_exp_avg_sq"])
            v = state["max_exp_avg_sq"]
        step_size = lr / (1 - beta1**t)
        denom = np.sqrt(v) / math.sqrt(1 - beta2**t) + group["eps"]
        p.data -= step_size * m / denom


class AdamW(Adam):
    """Adam with decoupled weight decay: p <- p (1 - lr wd) before the Adam step."""

    defaults: ClassVar[dict] = {**Adam.defaults, "weight_decay": 1e-2}
    decoupled_weight_decay = True


# ----------------------------------------------------------------------------- gradient clipping


def _with_grads(params) -> list[Tensor]:
    params = [params] if isinstance(params, Tensor) else list(params)
    return [p for p in params if p.grad is not None]


def grad_norm(params) -> float:
    """The global L2 norm of all gradients together: sqrt(sum over parameters of ||g||^2)."""
    return math.sqrt(sum(float(np.vdot(p.grad, p.grad)) for p in _with_grads(params)))


def clip_grad_norm_(params, max_norm: float) -> float:
    """Rescale all gradients together so their global L2 norm is at most ``max_norm``.

    The direction of the full gradient is kept; only its length is capped. Returns the norm
    before clipping (to log it).
    """
    if isinstance(max_norm, bool) or not isinstance(max_norm, numbers.Real) or not max_norm >= 0:
        raise ValueError(f"clip_grad_norm_: max_norm must be a number >= 0 (the norm to cap at), got {max_norm!r}")
    return _clip_grad_norm(_with_grads(params), max_norm)


@replayed  # bp.compile replays the whole clip: its factor depends on the gradients' values
def _clip_grad_norm(params: list, max_norm: float) -> float:
    params = [p for p in params if p.grad is not None]
    total = grad_norm(params)
    scale = max_norm / (total + 1e-6)
    if scale < 1:
        for p in params:
            p.grad *= scale
    return total


def clip_grad_value_(params, clip_value: float) -> None:
    """Clamp every gradient element into [-clip_value, clip_value] (this can change the direction)."""
    if isinstance(clip_value, bool) or not isinstance(clip_value, numbers.Real) or not clip_value >= 0:
        raise ValueError(f"clip_grad_value_: clip_value must be a number >= 0, got {clip_value!r}")
    _clip_grad_value(_with_grads(params), clip_value)


@replayed
def _clip_grad_value(params: list, clip_value: float) -> None:
    for p in params:
        if p.grad is not None:
            np.clip(p.grad, -clip_value, clip_value, out=p.grad)


__all__ = [
    "SGD",
    "Adagrad",
    "Adam",
    "AdamW",
    "CosineAnnealingLR",
    "ExponentialLR",
    "LRScheduler",
    "Optimizer",
    "RMSprop",
    "StepLR",
    "WarmupCosineLR",
    "clip_grad_norm_",
    "clip_grad_value_",
    "grad_norm",
    "lr_scheduler",
]
