"""Attention and LayerNorm differentiated by hand, every intermediate by name (for notebook 10, attention).

Scaled dot-product attention, shapes Q (..., L, E), K (..., S, E), V (..., S, Ev), upstream dO (..., L, Ev):

Forward                                   Backward
1. scores = scale Q K^T + mask            4. dV = P^T dO                        (..., S, Ev)
2. P = softmax(scores) over keys          3. dP = dO V^T                        (..., L, S)
3. O = P V                                2. dS = P * (dP - rowsum(dP * P))     (..., L, S)
                                          1. dQ = scale dS K,  dK = scale dS^T Q

Step 2 is the softmax Jacobian diag(p) - p p^T applied row by row; a masked key has P = 0 there, so
dS = 0 and no gradient reaches it. LayerNorm over the last dim (D features), y = gamma x_hat + beta:

    x_hat = (x - mean) * rstd,  rstd = 1 / sqrt(var + eps)
    dgamma = sum dy * x_hat,  dbeta = sum dy  (over every leading dim),  dx_hat = dy * gamma
    dx = rstd * (dx_hat - mean(dx_hat) - x_hat * mean(dx_hat * x_hat))

The hand versions use numpy only; ``autodiff_attention`` and ``autodiff_layer_norm`` run the engine on
the same inputs, and the tests check the two agree to 1e-12 and match finite differences.
"""

from __future__ import annotations

import numpy as np

from bpcore.nn import LayerNorm
from bpcore.nn import functional as F
from bpcore.tensor import tensor


def _swap(m: np.ndarray) -> np.ndarray:
    return np.swapaxes(m, -1, -2)


def attention_backward(Q, K, V, dO, mask=None, scale=None) -> dict[str, np.ndarray]:
    """The forward and backward of softmax(scale Q K^T + mask) V by hand.

    ``mask``: None, a boolean array (True = the key takes part) or a float array added to the scores,
    broadcasting to (..., L, S). Returns scores, P, O, dV, dP, dS, dQ, dK (and the scale used).
    """
    Q, K, V, dO = (np.asarray(a, dtype=np.float64) for a in (Q, K, V, dO))
    scale = 1.0 / np.sqrt(Q.shape[-1]) if scale is None else float(scale)
    scores = scale * (Q @ _swap(K))
    if mask is not None:
        mask = np.asarray(mask)
        scores = scores + (np.where(mask, 0.0, -np.inf) if mask.dtype == np.bool_ else mask)
    shifted = np.exp(scores - scores.max(axis=-1, keepdims=True))
    P = shifted / shifted.sum(axis=-1, keepdims=True)
    O = P @ V
    dV = _swap(P) @ dO
    dP = dO @ _swap(V)
    dS = P * (dP - (dP * P).sum(axis=-1, keepdims=True))
    dQ = scale * (dS @ K)
    dK = scale * (_swap(dS) @ Q)
    return {"scale": scale, "scores": scores, "P": P, "O": O, "dV": dV, "dP": dP, "dS": dS, "dQ": dQ, "dK": dK}


def autodiff_attention(Q, K, V, dO, mask=None, scale=None) -> dict[str, np.ndarray]:
    """The same gradients from the engine: F.scaled_dot_product_attention, then backward(dO)."""
    q, k, v = (tensor(np.asarray(a, dtype=np.float64), requires_grad=True) for a in (Q, K, V))
    O = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=scale)
    O.backward(np.asarray(dO, dtype=np.float64))
    return {"O": O.data, "dQ": q.grad, "dK": k.grad, "dV": v.grad}


def layer_norm_backward(x, gamma, beta, dy, eps: float = 1e-5) -> dict[str, np.ndarray]:
    """LayerNorm over the last dim by hand. x, dy (..., D); gamma, beta (D,).

    Returns mean, var, rstd, x_hat, y, dbeta, dgamma, dx_hat, dx.
    """
    x, gamma, beta, dy = (np.asarray(a, dtype=np.float64) for a in (x, gamma, beta, dy))
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    rstd = 1.0 / np.sqrt(var + eps)
    x_hat = (x - mean) * rstd
    y = gamma * x_hat + beta
    batch_axes = tuple(range(x.ndim - 1))
    dbeta = dy.sum(axis=batch_axes)
    dgamma = (dy * x_hat).sum(axis=batch_axes)
    dx_hat = dy * gamma
    dx = rstd * (dx_hat - dx_hat.mean(axis=-1, keepdims=True) - x_hat * (dx_hat * x_hat).mean(axis=-1, keepdims=True))
    return {
        "mean": mean, "var": var, "rstd": rstd, "x_hat": x_hat, "y": y,
        "dbeta": dbeta, "dgamma": dgamma, "dx_hat": dx_hat, "dx": dx,
    }  # fmt: skip


def autodiff_layer_norm(x, gamma, beta, dy, eps: float = 1e-5) -> dict[str, np.ndarray]:
    """The same gradients from the engine's nn.LayerNorm."""
    x = np.asarray(x, dtype=np.float64)
    layer = LayerNorm(x.shape[-1], eps=eps)
    layer.weight.data[...] = gamma
    layer.bias.data[...] = beta
    xt = tensor(x, requires_grad=True)
    y = layer(xt)
    y.backward(np.asarray(dy, dtype=np.float64))
    return {"y": y.data, "dx": xt.grad, "dgamma": layer.weight.grad, "dbeta": layer.bias.grad}


__all__ = ["attention_backward", "autodiff_attention", "autodiff_layer_norm", "layer_norm_backward"]
