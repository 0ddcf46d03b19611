"""Learning-rate schedules, under PyTorch's module path: ``from bpcore.optim.lr_scheduler import StepLR``.

Each sets ``optimizer.param_groups[...]["lr"]`` from the number of ``step()`` calls so far; call
``scheduler.step()`` after ``optimizer.step()``, as in PyTorch.
"""

from __future__ import annotations

import math

from bpcore.tensor import replayed


class LRScheduler:
    """Sets ``optimizer.param_groups[0]["lr"]`` from the number of ``step()`` calls so far."""

    def __init__(self, optimizer):
        self.optimizer = optimizer
        self.base_lr = optimizer.param_groups[0]["lr"]
        self.last_epoch = 0
        self._apply()

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "step" in cls.__dict__:  # an override is recorded whole by bp.compile too
            cls.step = replayed(cls.__dict__["step"])

    def lr_at(self, t: int) -> float:
        raise NotImplementedError

    def _apply(self) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr_at(self.last_epoch)

    @replayed  # bp.compile replays it as a call: the learning rate changes on every replayed step too
    def step(self) -> None:
        self.last_epoch += 1
        self._apply()

    def get_last_lr(self) -> list[float]:
        return [group["lr"] for group in self.optimizer.param_groups]


class StepLR(LRScheduler):
    """lr = base_lr * gamma ** (t // step_size)."""

    def __init__(self, optimizer, step_size: int, gamma: float = 0.1):
        self.step_size, self.gamma = step_size, gamma
        super().__init__(optimizer)

    def lr_at(self, t):
        return self.base_lr * self.gamma ** (t // self.step_size)


class ExponentialLR(LRScheduler):
    """lr = base_lr * gamma ** t."""

    def __init__(self, optimizer, gamma: float):
        self.gamma = gamma
        super().__init__(optimizer)

    def lr_at(self, t):
        return self.base_lr * self.gamma**t


class CosineAnnealingLR(LRScheduler):
    """lr falls from base_lr to eta_min along half a cosine over T_max steps."""

    def __init__(self, optimizer, T_max: int, eta_min: float = 0.0):
        self.T_max, self.eta_min = T_max, eta_min
        super().__init__(optimizer)

    def lr_at(self, t):
        t = min(t, self.T_max)
        return self.eta_min + (self.base_lr - self.eta_min) * (1 + math.cos(math.pi * t / self.T_max)) / 2


class WarmupCosineLR(LRScheduler):
    """Linear warm-up (base_lr / warmup_steps, 2 base_lr / warmup_steps, ..., base_lr) over ``warmup_steps``,
    then cosine decay to ``eta_min`` at ``total_steps``.

    Warm-up keeps the first updates small while Adam's moment estimates (and BatchNorm statistics)
    are still noisy.
    """

    def __init__(self, optimizer, warmup_steps: int, total_steps: int, eta_min: float = 0.0):
        if not 0 <= warmup_steps < total_steps:
            raise ValueError(f"need 0 <= warmup_steps < total_steps, got {warmup_steps} and {total_steps}")
        self.warmup_steps, self.total_steps, self.eta_min = warmup_steps, total_steps, eta_min
        super().__init__(optimizer)

    def lr_at(self, t):
        if t < self.warmup_steps:
            return self.base_lr * (t + 1) / self.warmup_steps
        progress = min(1.0, (t - self.warmup_steps) / (self.total_steps - self.warmup_steps))
        return self.eta_min + (self.base_lr - self.eta_min) * (1 + math.cos(math.pi * progress)) / 2
