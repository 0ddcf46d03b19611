"""Attention modules with PyTorch's names and parameter shapes, so a PyTorch state_dict loads by name.

* MultiheadAttention: in_proj_weight (3E, E) stacks W_q, W_k, W_v; in_proj_bias (3E,); out_proj a Linear.
  Each head h sees E / H features: O_h = softmax(Q_h K_h^T / sqrt(E/H) + mask) V_h, and the heads,
  concatenated, go through out_proj.
* TransformerEncoderLayer: self-attention then a two-layer feed-forward, each with a residual and a
  LayerNorm, after the sum (post-LN, the default) or before the block (norm_first=True, pre-LN).
"""

from __future__ import annotations

import numpy as np

from bpcore.nn import functional as F
from bpcore.nn import init
from bpcore.nn.layers import Dropout, LayerNorm, Linear, _size
from bpcore.nn.module import Module, Parameter
from bpcore.tensor import ShapeError, Tensor


def _padding_or_mask(mask, name: str) -> np.ndarray:
    """MultiheadAttention's masks: boolean True = may NOT attend (the opposite of SDPA), float = added."""
    array = np.asarray(mask.data if isinstance(mask, Tensor) else mask)
    if array.dtype == np.bool_:
        return np.where(array, -np.inf, 0.0)
    if np.issubdtype(array.dtype, np.floating):
        return array.astype(np.float64)
    raise TypeError(f"MultiheadAttention: {name} must be boolean (True = ignore) or float (added), got {array.dtype}")


class MultiheadAttention(Module):
    """Multi-head attention, as torch.nn.MultiheadAttention.

    Shapes (batch_first=True): query (N, L, E), key (N, S, kdim), value (N, S, vdim) -> output (N, L, E)
    and weights (N, L, S) averaged over heads, (N, H, L, S) per head, or None. Unbatched inputs
    (L, E) give (L, E) and (L, S). With batch_first=False the inputs are (L, N, E).
    kdim, vdim and batch_first are keyword-only (PyTorch has add_bias_kv and add_zero_attn before them).
    Masks: key_padding_mask (N, S) and attn_mask (L, S) or (N * H, L, S); boolean True means
    "may not attend", a float mask is added to the scores. Dropout acts on the weights in training.
    """

    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        dropout: float = 0.0,
        bias: bool = True,
        *,
        kdim=None,
        vdim=None,
        batch_first: bool = True,
    ):
        super().__init__()
        embed_dim = _size("MultiheadAttention", "embed_dim", embed_dim)
        num_heads = _size("MultiheadAttention", "num_heads", num_heads)
        if num_heads == 0 or embed_dim % num_heads:
            raise ValueError(
                f"MultiheadAttention: embed_dim ({embed_dim}) must be divisible by num_heads ({num_heads})"
            )
        if not 0 <= dropout < 1:
            raise ValueError(f"MultiheadAttention: dropout must be in [0, 1), got {dropout}")
        self.embed_dim, self.num_heads, self.dropout, self.batch_first = embed_dim, num_heads, dropout, batch_first
        self.head_dim = embed_dim // num_heads
        self.kdim = embed_dim if kdim is None else _size("MultiheadAttention", "kdim", kdim)
        self.vdim = embed_dim if vdim is None else _size("MultiheadAttention", "vdim", vdim)
        self._qkv_same_embed_dim = self.kdim == embed_dim and self.vdim == embed_dim
        if self._qkv_same_embed_dim:
            self.in_proj_weight = Parameter(np.zeros((3 * embed_dim, embed_dim)))
            init.xavier_uniform_(self.in_proj_weight)
            self.q_proj_weight = self.k_proj_weight = self.v_proj_weight = None
        else:
            self.in_proj_weight = None
            self.q_proj_weight = Parameter(np.zeros((embed_dim, embed_dim)))
            self.k_proj_weight = Parameter(np.zeros((embed_dim, self.kdim)))
            self.v_proj_weight = Parameter(np.zeros((embed_dim, self.vdim)))
            for weight in (self.q_proj_weight, self.k_proj_weight, self.v_proj_weight):
                init.xavier_uniform_(weight)
        self.in_proj_bias = Parameter(np.zeros(3 * embed_dim)) if bias else None
        self.out_proj = Linear(embed_dim, embed_dim, bias=bias)
        if bias:
            init.zeros_(self.out_proj.bias)

    def _projection_weights(self):
        E = self.embed_dim
        if self._qkv_same_embed_dim:
            w = self.in_proj_weight
            weights = (w[:E], w[E : 2 * E], w[2 * E :])
        else:
            weights = (self.q_proj_weight, self.k_proj_weight, self.v_proj_weight)
        b = self.in_proj_bias
        biases = (None, None, None) if b is None else (b[:E], b[E : 2 * E], b[2 * E :])
        return weights, biases

    def forward(
        self,
        query,
        key,
        value,
        key_padding_mask=None,
        need_weights: bool = True,
        attn_mask=None,
        average_attn_weights: bool = True,
        is_causal: bool = False,
    ):
        if is_causal and attn_mask is None:
            raise ValueError("MultiheadAttention: is_causal=True is a hint that attn_mask is causal; pass the mask too")
        unbatched = query.ndim == 2
        if unbatched:
            query, key, value = (t.unsqueeze(0) for t in (query, key, value))
        elif not self.batch_first:
            query, key, value = (t.transpose(0, 1) for t in (query, key, value))
        if query.ndim != 3 or key.ndim != 3 or value.ndim != 3:
            raise ShapeError(
                f"MultiheadAttention expects query, key and value of 2 or 3 dims, got {query.shape}, {key.shape}, "
                f"{value.shape}"
            )
        N, L, E = query.shape
        S, H, D = key.shape[1], self.num_heads, self.head_dim
        if E != self.embed_dim or key.shape[-1] != self.kdim or value.shape[-1] != self.vdim:
            raise ShapeError(
                f"MultiheadAttention(embed_dim={self.embed_dim}, kdim={self.kdim}, vdim={self.vdim}) got query "
                f"{query.shape}, key {key.shape}, value {value.shape}"
            )
        (w_q, w_k, w_v), (b_q, b_k, b_v) = self._projection_weights()

        def heads(x, w, b):  # (N, T, in) -> (N, H, T, D)
            return F.linear(x, w, b).reshape(N, x.shape[1], H, D).permute(0, 2, 1, 3)

        q, k, v = heads(query, w_q, b_q), heads(key, w_k, b_k), heads(value, w_v, b_v)
        bias = None
        if attn_mask is not None:
            mask = _padding_or_mask(attn_mask, "attn_mask")
            if mask.shape == (L, S):
                mask = mask.reshape(1, 1, L, S)
            elif mask.shape == (N * H, L, S):
                mask = mask.reshape(N, H, L, S)
            else:
                raise ShapeError(
                    f"MultiheadAttention: attn_mask must have shape (L, S) = {(L, S)} or (N * H, L, S) = "
                    f"{(N * H, L, S)}, got {mask.shape}"
                )
            bias = mask
        if key_padding_mask is not None:
            padding = _padding_or_mask(key_padding_mask, "key_padding_mask")
            expected = (S,) if unbatched else (N, S)
            if padding.shape != expected:
                raise ShapeError(
                    f"MultiheadAttention: key_padding_mask must have shape {expected}, got {padding.shape}"
                )
            padding = padding.reshape(N, 1, 1, S)
            bias = padding if bias is None else bias + padding
        p = self.dropout if self.training else 0.0
        out, weights = F.attention_weights(q, k, v, bias, p, op="MultiheadAttention")
        out = self.out_proj(out.permute(0, 2, 1, 3).reshape(N, L, E))
        if need_weights:
            weights = weights.mean(axis=1) if average_attn_weights else weights
            weights = weights[0] if unbatched else weights
        else:
            weights = None
        if unbatched:
            out = out[0]
        elif not self.batch_first:
            out = out.transpose(0, 1)
        return out, weights

    def extra_repr(self) -> str:
        return f"embed_dim={self.embed_dim}, num_heads={self.num_heads}, dropout={self.dropout}"


_ACTIVATIONS = {"relu": F.relu, "gelu": F.gelu}


class TransformerEncoderLayer(Module):
    """One encoder block, as torch.nn.TransformerEncoderLayer. Shapes: src (N, S, d_model) -> (N, S, d_model).

    post-LN (norm_first=False):  x = norm1(x + sa(x));        x = norm2(x + ff(x))
    pre-LN  (norm_first=True):   x = x + sa(norm1(x));        x = x + ff(norm2(x))
    sa(x) = dropout1(self_attn(x, x, x)),  ff(x) = dropout2(linear2(dropout(activation(linear1(x))))).
    """

    def __init__(
        self,
        d_model: int,
        nhead: int,
        dim_feedforward: int = 2048,
        dropout: float = 0.1,
        activation="relu",
        layer_norm_eps: float = 1e-5,
        batch_first: bool = True,
        norm_first: bool = False,
        bias: bool = True,
    ):
        super().__init__()
        if isinstance(activation, str):
            if activation not in _ACTIVATIONS:
                raise ValueError(
                    f"TransformerEncoderLayer: activation must be 'relu', 'gelu' or a callable, got {activation!r}"
                )
            activation = _ACTIVATIONS[activation]
        self.activation, self.norm_first = activation, norm_first
        self.self_attn = MultiheadAttention(d_model, nhead, dropout=dropout, bias=bias, batch_first=batch_first)
        self.linear1 = Linear(d_model, dim_feedforward, bias=bias)
        self.dropout = Dropout(dropout)
        self.linear2 = Linear(dim_feedforward, d_model, bias=bias)
        self.norm1 = LayerNorm(d_model, eps=layer_norm_eps)
        self.norm2 = LayerNorm(d_model, eps=layer_norm_eps)
        self.dropout1 = Dropout(dropout)
        self.dropout2 = Dropout(dropout)

    def _sa_block(self, x, attn_mask, key_padding_mask, is_causal):
        x = self.self_attn(
            x, x, x, attn_mask=attn_mask, key_padding_mask=key_padding_mask, need_weights=False, is_causal=is_causal
        )[0]
        return self.dropout1(x)

    def _ff_block(self, x):
        return self.dropout2(self.linear2(self.dropout(self.activation(self.linear1(x)))))

    def forward(self, src, src_mask=None, src_key_padding_mask=None, is_causal: bool = False):
        x = src
        if self.norm_first:
            x = x + self._sa_block(self.norm1(x), src_mask, src_key_padding_mask, is_causal)
            return x + self._ff_block(self.norm2(x))
        x = self.norm1(x + self._sa_block(x, src_mask, src_key_padding_mask, is_causal))
        return self.norm2(x + self._ff_block(x))
