"""``bp.nn.utils.clip_grad_norm_`` and ``clip_grad_value_``, where PyTorch code looks for them (defined in bp.optim)."""

from bpcore.optim import clip_grad_norm_, clip_grad_value_

__all__ = ["clip_grad_norm_", "clip_grad_value_"]
