"""Losses as modules, with PyTorch's names: ``criterion = nn.CrossEntropyLoss(); loss = criterion(logits, y)``.

Each holds its settings and calls the function of the same name in ``bp.nn.functional``.
"""

from __future__ import annotations

from bpcore.nn import functional as F
from bpcore.nn.module import Module


class _Loss(Module):
    function = None

    def __init__(self, reduction: str = "mean", **settings):
        super().__init__()
        F._check_reduction(reduction)
        self.reduction, self.settings = reduction, settings

    def forward(self, prediction, target):
        return type(self).function(prediction, target, reduction=self.reduction, **self.settings)

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in {"reduction": self.reduction, **self.settings}.items())


class CrossEntropyLoss(_Loss):
    function = staticmethod(F.cross_entropy)

    def __init__(self, reduction: str = "mean", label_smoothing: float = 0.0, ignore_index: int = -100):
        super().__init__(reduction, label_smoothing=label_smoothing, ignore_index=ignore_index)


class NLLLoss(_Loss):
    function = staticmethod(F.nll_loss)


class MSELoss(_Loss):
    function = staticmethod(F.mse_loss)


class L1Loss(_Loss):
    function = staticmethod(F.l1_loss)


class HuberLoss(_Loss):
    function = staticmethod(F.huber_loss)

    def __init__(self, reduction: str = "mean", delta: float = 1.0):
        super().__init__(reduction, delta=delta)


class BCELoss(_Loss):
    function = staticmethod(F.binary_cross_entropy)


class BCEWithLogitsLoss(_Loss):
    function = staticmethod(F.binary_cross_entropy_with_logits)
