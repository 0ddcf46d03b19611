"""Notebook 10 (attention and transformers): attention and LayerNorm by hand, a small causal language
model, and the studies the notebook shows. The claims its tests prove (tests/labs/test_attention_lab.py):

* :func:`attention_backward`, :func:`layer_norm_backward`: every intermediate by name, equal to the
  engine (:func:`autodiff_attention`, :func:`autodiff_layer_norm`) to 1e-12 and to finite differences.
* :func:`scale_study`: Var(q . k) = d_k unscaled and 1 scaled; unscaled, the softmax saturates, the
  median row's gradient reaching Q vanishes as d_k grows (K's falls less), while the total ||dQ|| grows:
  the few near-tied rows get gradients of order ||k|| = sqrt(d_k). Scaled, none of it depends on d_k.
* :func:`causal_gradient`: with the causal mask, output t sends exactly zero gradient to inputs s > t.
* :func:`depth_profile`: at initialisation the residual keeps ||dL/dh|| within a factor 1.6 across 16
  blocks, post-LN and pre-LN alike; without it the spread grows with depth.
* :func:`weight_gradient_profile`: with nn.Transformer's Xavier initialisation and 16 blocks, post-LN's
  ||dL/dW|| of the feed-forward's second linear grows towards the output, pre-LN's falls; with the
  blocks' own initialisation post-LN's stays level, its sublayers' outputs starting small
  (:func:`sublayer_output_scale`).
* :func:`memory_study`: the (T, T) scores and weights are 4 N H T^2 floats, and dominate as T grows.
* :class:`CausalLM`, :func:`train_lm`, :func:`sample`: token and position embeddings, causal
  blocks, tied or untied read-out; its loss starts at ln(vocabulary) and falls. After training, one
  head of block 1 reads mostly the current character (:func:`own_position_weight`).

Attention and LayerNorm by hand:

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

from dataclasses import dataclass

import numpy as np

from bpcore import data
from bpcore.labs import one_blas_thread
from bpcore.nn import Embedding, LayerNorm, Linear, Module, Parameter, TransformerEncoderLayer, init
from bpcore.nn import functional as F
from bpcore.optim import Adam, clip_grad_norm_
from bpcore.progress import progress_bar
from bpcore.random import manual_seed
from bpcore.tensor import Tensor, no_grad, tensor


def _swap(m: np.ndarray) -> np.ndarray:
    return np.swapaxes(m, -1, -2)


ATTENTION_STEPS = {  # what each entry of attention_backward's result is, in the order computed
    "scale": "1 / sqrt(E) unless given",
    "scores": "scale Q K^T + mask",
    "P": "softmax(scores) over keys",
    "O": "P V",
    "dV": "P^T dO",
    "dP": "dO V^T",
    "dS": "P * (dP - rowsum(dP * P))",
    "dQ": "scale dS K",
    "dK": "scale dS^T Q",
}


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


# ======================================================================= a small causal language model


def causal_mask(T: int) -> np.ndarray:
    """(T, T) boolean, True above the diagonal: MultiheadAttention's "may not attend" (key s > query t)."""
    return np.triu(np.ones((T, T), dtype=bool), 1)


class Block(TransformerEncoderLayer):
    """nn.TransformerEncoderLayer without dropout, causal, and with the residual optional (to measure it).

    residual=False drops the "x +" of both sublayers and keeps the rest in place:
    post-LN x = norm1(sa(x)); x = norm2(ff(x)).   pre-LN x = sa(norm1(x)); x = ff(norm2(x)).
    """

    def __init__(self, d_model: int, nhead: int, dim_feedforward: int, norm_first: bool, residual: bool = True):
        super().__init__(d_model, nhead, dim_feedforward, dropout=0.0, norm_first=norm_first)
        self.residual = residual

    def forward(self, x, mask):
        if self.residual:
            return super().forward(x, src_mask=mask, is_causal=True)
        if self.norm_first:
            x = self._sa_block(self.norm1(x), mask, None, True)
            return self._ff_block(self.norm2(x))
        x = self.norm1(self._sa_block(x, mask, None, True))
        return self.norm2(self._ff_block(x))


class CausalLM(Module):
    """A character-level transformer: ids (N, T) -> logits (N, T, vocab), T <= context.

    h_0 = E[ids] + P[0..T-1]  (token and learned position embeddings, (N, T, d_model));
    h_l = block_l(h_{l-1}) with the causal mask, so position t sees positions <= t only;
    logits = norm(h_L) E^T when tied (the read-out reuses the token embedding), or a Linear when not.
    A pre-LN stack ends with a final LayerNorm (its blocks' outputs are never normalised); post-LN's
    last block already ends in one. Embeddings start at N(0, embed_std^2); the default 0.02 makes the
    first logits near 0 and the first loss near ln(vocab).
    """

    def __init__(
        self,
        vocab_size: int,
        context: int = 32,
        d_model: int = 32,
        nhead: int = 2,
        num_layers: int = 2,
        dim_feedforward: int = 64,
        norm_first: bool = True,
        tied: bool = True,
        residual: bool = True,
        embed_std: float = 0.02,
    ):
        super().__init__()
        self.context, self.tied, self.norm_first = context, tied, norm_first
        self.token = Embedding(vocab_size, d_model)
        self.position = Parameter(np.zeros((context, d_model)))
        init.normal_(self.token.weight, std=embed_std)
        init.normal_(self.position, std=embed_std)
        self.blocks = [Block(d_model, nhead, dim_feedforward, norm_first, residual) for _ in range(num_layers)]
        for i, block in enumerate(self.blocks):
            setattr(self, f"block{i}", block)  # registered as submodules, so parameters() finds them
        self.norm = LayerNorm(d_model) if norm_first else None
        self.readout = None if tied else Linear(d_model, vocab_size)
        self.block_inputs: list[Tensor] = []  # h_0 .. h_{L-1} of the last forward pass

    def forward(self, ids):
        ids = np.asarray(ids.data if isinstance(ids, Tensor) else ids)
        T = ids.shape[-1]
        if T > self.context:
            raise ValueError(f"CausalLM: at most context = {self.context} positions, got {T}")
        h = self.token(ids) + self.position[:T]
        mask = causal_mask(T)
        self.block_inputs = []
        for block in self.blocks:
            self.block_inputs.append(h)
            h = block(h, mask)
        if self.norm is not None:
            h = self.norm(h)
        return h @ self.token.weight.T if self.tied else self.readout(h)

    def head_attention(self, ids, layer: int = 0) -> np.ndarray:
        """The attention weights of every head of block ``layer``: (N, nhead, T, T), rows sum to 1."""
        with no_grad():
            self.forward(ids)
            block = self.blocks[layer]
            x = self.block_inputs[layer]
            x = block.norm1(x) if self.norm_first else x
            T = x.shape[1]
            _, weights = block.self_attn(
                x, x, x, attn_mask=causal_mask(T), need_weights=True, average_attn_weights=False
            )
        return weights.data


def own_position_weight(model: CausalLM, ids, layer: int = 0) -> np.ndarray:
    """Per head of block ``layer``, the mean weight a query puts on its own position, over queries t >= 1
    (query 0 can only look at itself). Near 1: the head reads the current character; 1/(t+1) on average
    for a head that spreads evenly over the past."""
    weights = model.head_attention(ids, layer)
    return np.diagonal(weights, axis1=-2, axis2=-1)[..., 1:].mean(axis=(0, -1))


def _windows(ids: np.ndarray, length: int, batch: int, rng) -> np.ndarray:
    starts = rng.integers(0, len(ids) - length, batch)
    return np.stack([ids[s : s + length] for s in starts])


def _lm_loss(model, windows) -> Tensor:
    logits = model(windows[:, :-1])
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), windows[:, 1:].reshape(-1))


@dataclass
class LMRun:
    model: CausalLM
    text: data.CharText
    loss: list[float]  # training loss per update (mean cross-entropy per character, nats)
    held_out: float  # mean loss on held-out windows from the last tenth of the text, after training


@one_blas_thread
def train_lm(
    updates: int = 150,
    batch: int = 16,
    lr: float = 3e-3,
    seed: int = 0,
    progress="auto",
    **model_options,
) -> LMRun:
    """Train a CausalLM on the bundled text with Adam, windows of context + 1 characters drawn at random.

    The first 90% of the text trains; ``held_out`` is measured on 64 windows of the rest.
    ``model_options`` go to :class:`CausalLM` (context, d_model, nhead, num_layers, norm_first, tied).
    ``progress``: see :func:`bpcore.progress.progress_bar` (a bar in notebooks, none in tests).
    """
    text = data.char_text()
    ids = text.ids
    split = int(0.9 * len(ids))
    manual_seed(seed)
    model = CausalLM(text.vocab_size, **model_options)
    optimizer = Adam(model.parameters(), lr=lr)
    rng = np.random.default_rng(seed)
    losses = []
    bar = progress_bar(updates, "causal transformer", progress)
    _train(model, optimizer, ids[:split], batch, updates, rng, losses, bar)
    bar.close()
    with no_grad():
        held_out = float(_lm_loss(model, _windows(ids[split:], model.context + 1, 64, rng)).data)
    return LMRun(model, text, losses, held_out)


def _train(model, optimizer, ids, batch, updates, rng, losses, bar) -> None:
    for update in range(1, updates + 1):
        loss = _lm_loss(model, _windows(ids, model.context + 1, batch, rng))
        optimizer.zero_grad()
        loss.backward()
        clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        losses.append(float(loss.data))
        if update % 10 == 0 or update == updates:
            bar.update(update, f"loss {losses[-1]:.2f}")


def sample(
    model: CausalLM, text: data.CharText, prompt: str, length: int = 200, temperature: float = 1.0, seed: int = 0
) -> str:
    """``prompt`` and ``length`` more characters, each drawn from softmax(logits / temperature) at the last
    position, the model reading at most its context (the last ``context`` characters)."""
    rng = np.random.default_rng(seed)
    ids = list(text.encode(prompt))
    with no_grad():
        for _ in range(length):
            scores = model(np.array([ids[-model.context :]])).data[0, -1] / temperature
            probs = np.exp(scores - scores.max())
            ids.append(int(rng.choice(len(probs), p=probs / probs.sum())))
    return text.decode(ids)


# ======================================================================= why 1/sqrt(d_k)


@dataclass
class ScaleStudy:
    d_k: np.ndarray
    score_variance: dict[str, np.ndarray]  # "scaled" / "unscaled" -> Var(score) per d_k
    max_weight: dict[str, np.ndarray]  # mean over rows of the largest attention weight (1 = one-hot)
    entropy: dict[str, np.ndarray]  # mean over rows of the weights' entropy, nats (ln T = uniform)
    grad_q: dict[str, np.ndarray]  # median over query rows of ||dQ_t||
    grad_k: dict[str, np.ndarray]  # median over key rows of ||dK_s||
    T: int
    total_grad_q: dict[str, np.ndarray]  # ||dQ|| over every row of every problem (Frobenius)
    total_grad_k: dict[str, np.ndarray]  # ||dK|| likewise


@one_blas_thread
def scale_study(d_ks=(4, 16, 64, 256, 1024), T: int = 16, d_v: int = 16, trials: int = 64, seed: int = 0) -> ScaleStudy:
    """Attention with q, k ~ N(0, 1) entries, scaled by 1/sqrt(d_k) or not (scale 1), for each d_k.

    A score is a sum of d_k products of unit variance, so Var(q . k) = d_k; times 1/sqrt(d_k) it is 1.
    Large scores make the softmax nearly one-hot, and then dS = P * (dP - rowsum(dP * P)) is nearly 0,
    so little gradient reaches the typical row of Q. The median over rows is reported: a saturated row
    gets almost nothing, while a row with two near-equal top scores gets a gradient of order
    ||k|| = sqrt(d_k), so the total ||dQ|| (also reported) grows with d_k.
    V (T, d_v) and the upstream dO are N(0, 1) whatever d_k is.
    """
    rng = np.random.default_rng(seed)
    out = {name: {"scaled": [], "unscaled": []} for name in ("var", "max", "entropy", "dq", "dk", "tq", "tk")}
    for d_k in d_ks:
        Q, K = rng.standard_normal((2, trials, T, d_k))
        V, dO = rng.standard_normal((2, trials, T, d_v))
        for name, scale in (("scaled", 1 / np.sqrt(d_k)), ("unscaled", 1.0)):
            r = attention_backward(Q, K, V, dO, scale=scale)
            P = r["P"]
            out["var"][name].append(float(r["scores"].var()))
            out["max"][name].append(float(P.max(axis=-1).mean()))
            plogp = P * np.log(np.where(P > 0, P, 1.0))  # 0 log 0 = 0
            out["entropy"][name].append(float(-plogp.sum(axis=-1).mean()))
            out["dq"][name].append(float(np.median(np.linalg.norm(r["dQ"], axis=-1))))
            out["dk"][name].append(float(np.median(np.linalg.norm(r["dK"], axis=-1))))
            out["tq"][name].append(float(np.linalg.norm(r["dQ"])))
            out["tk"][name].append(float(np.linalg.norm(r["dK"])))
    a = {key: {name: np.array(v) for name, v in value.items()} for key, value in out.items()}
    return ScaleStudy(np.asarray(d_ks), a["var"], a["max"], a["entropy"], a["dq"], a["dk"], T, a["tq"], a["tk"])


# ======================================================================= the causal mask and its gradient


def causal_gradient(
    T: int = 8, embed_dim: int = 8, num_heads: int = 2, causal: bool = True, seed: int = 0
) -> np.ndarray:
    """G[t, s] = ||d out_t / d x_s||: how much gradient the output at position t sends to the input at s.

    One self-attention layer (nn.MultiheadAttention) on x (T, embed_dim); for each t, backward from
    out_t . r_t (r_t random) and take the norm of x.grad at each s. With the causal mask, out_t never
    reads x_s for s > t, so G is exactly 0 above the diagonal; without it, every entry is positive.
    """
    from bpcore.nn import MultiheadAttention

    manual_seed(seed)
    rng = np.random.default_rng(seed)
    layer = MultiheadAttention(embed_dim, num_heads)
    x = tensor(rng.standard_normal((T, embed_dim)), requires_grad=True)
    mask = causal_mask(T) if causal else None
    G = np.zeros((T, T))
    for t in range(T):
        x.grad = None
        out, _ = layer(x, x, x, attn_mask=mask, need_weights=False)
        (out[t] * tensor(rng.standard_normal(embed_dim))).sum().backward()
        G[t] = np.linalg.norm(x.grad, axis=-1)
    return G


# ======================================================================= residual stream and LayerNorm


@dataclass
class DepthProfile:
    depth: int
    norm_first: bool
    residual: bool
    stream_grad_norms: np.ndarray  # ||dL/dh_{l-1}||, the gradient at block l's input, l = 1 .. depth
    block_grad_norms: np.ndarray  # ||dL/d(parameters of block l)||

    @property
    def spread(self) -> float:
        """Largest over smallest ||dL/dh|| across the blocks: 1 = every block's input gets the same."""
        return float(self.stream_grad_norms.max() / self.stream_grad_norms.min())


@one_blas_thread
def depth_profile(
    depth: int,
    norm_first: bool,
    residual: bool = True,
    batch: int = 8,
    seed: int = 0,
    embed_std: float = 1.0,
    tied: bool = False,
    **model_options,
) -> DepthProfile:
    """One backward pass at initialisation of a CausalLM of ``depth`` blocks on a batch of the bundled text.

    The blocks keep nn.TransformerEncoderLayer's initialisation. The embeddings start at N(0, 1), as
    nn.Embedding's do, so the stream entering block 1 has unit scale like every later one (with the
    language model's small 0.02, block 1's LayerNorm would divide by 0.03 and dominate the profile).
    """
    text = data.char_text()
    manual_seed(seed)
    model = CausalLM(
        text.vocab_size,
        num_layers=depth,
        norm_first=norm_first,
        residual=residual,
        embed_std=embed_std,
        tied=tied,
        **model_options,
    )
    windows = _windows(text.ids, model.context + 1, batch, np.random.default_rng(seed))
    logits = model(windows[:, :-1])
    for h in model.block_inputs:
        h.retain_grad()
    F.cross_entropy(logits.reshape(-1, logits.shape[-1]), windows[:, 1:].reshape(-1)).backward()
    blocks = [np.sqrt(sum(float(np.sum(p.grad**2)) for p in block.parameters())) for block in model.blocks]
    stream = [float(np.linalg.norm(h.grad)) for h in model.block_inputs]
    return DepthProfile(depth, norm_first, residual, np.array(stream), np.array(blocks))


@one_blas_thread
def weight_gradient_profile(
    depth: int,
    norm_first: bool,
    seeds=range(8),
    xavier: bool = True,
    batch: int = 8,
    **model_options,
) -> np.ndarray:
    """||dL/dW|| of each block's feed-forward second linear (linear2.weight) at initialisation, blocks 1 ..
    depth, averaged over ``seeds`` (a CausalLM as in :func:`depth_profile`: untied, N(0, 1) embeddings).

    ``xavier``: re-initialise every block matrix with xavier_uniform_, as nn.Transformer (and the original
    transformer) does; False keeps nn.TransformerEncoderLayer's own initialisation, whose sublayers start
    with outputs much smaller than the stream they are added to. The parameter gradients are what the
    pre- and post-LN argument (Xiong et al., 2020) is about: post-LN's grow towards the output at
    initialisation, pre-LN's do not.
    """
    text = data.char_text()
    norms = []
    for seed in seeds:
        manual_seed(seed)
        model = CausalLM(text.vocab_size, num_layers=depth, norm_first=norm_first, embed_std=1.0, tied=False,
                         **model_options)  # fmt: skip
        if xavier:
            _xavier_blocks(model)
        windows = _windows(text.ids, model.context + 1, batch, np.random.default_rng(seed))
        _lm_loss(model, windows).backward()
        norms.append([float(np.linalg.norm(block.linear2.weight.grad)) for block in model.blocks])
    return np.mean(norms, axis=0)


def _xavier_blocks(model: CausalLM) -> None:
    """xavier_uniform_ on every matrix of every block, as nn.Transformer's _reset_parameters does."""
    for block in model.blocks:
        for p in block.parameters():
            if p.data.ndim > 1:
                init.xavier_uniform_(p)


@one_blas_thread
def sublayer_output_scale(xavier: bool, seeds=range(4), batch: int = 8) -> tuple[float, float]:
    """std(sublayer output) / std(its input) of a pre-LN block's attention and feed-forward at
    initialisation, on LN(embeddings) of the bundled text, averaged over ``seeds``: how much each
    sublayer adds to the stream at first. ``xavier`` as in :func:`weight_gradient_profile`."""
    text = data.char_text()
    ratios = []
    for seed in seeds:
        manual_seed(seed)
        model = CausalLM(text.vocab_size, num_layers=1, norm_first=True, embed_std=1.0, tied=False)
        if xavier:
            _xavier_blocks(model)
        block = model.blocks[0]
        ids = _windows(text.ids, model.context, batch, np.random.default_rng(seed))
        with no_grad():
            x = block.norm1(model.token(ids) + model.position[: model.context])
            attended = block._sa_block(x, causal_mask(model.context), None, True)
            fed = block._ff_block(x)
        ratios.append((np.std(attended.data) / np.std(x.data), np.std(fed.data) / np.std(x.data)))
    attention_ratio, ff_ratio = np.mean(ratios, axis=0)
    return float(attention_ratio), float(ff_ratio)


# ======================================================================= cost: memory grows as T^2


@dataclass
class MemoryStudy:
    T: np.ndarray
    graph_bytes: np.ndarray  # every value the backward pass keeps (bpcore.graph.graph_bytes)
    square_bytes: np.ndarray  # the part held in (N, H, T, T) arrays: scores and weights
    formula_bytes: np.ndarray  # 4 N H T^2 * 8: scores, scaled, masked, softmax, float64
    num_heads: int


def memory_study(
    Ts=(32, 64, 128, 256, 512), embed_dim: int = 32, num_heads: int = 2, batch: int = 1, seed: int = 0
) -> MemoryStudy:
    """Activation memory of one causal self-attention layer against the sequence length T.

    The projections keep O(N T E) values; the scores and weights keep N H T^2 each, so for long
    sequences the T^2 part wins. The engine keeps four (T, T) arrays per head: Q K^T, the scaled
    scores, the masked scores and the softmax. (They are found by their shape (N, H, T, T), so T must
    differ from the head size, whose Q, K, V per head would have the same shape.)
    """
    from bpcore.graph import graph_bytes
    from bpcore.nn import MultiheadAttention
    from bpcore.tensor import topological_order

    manual_seed(seed)
    layer = MultiheadAttention(embed_dim, num_heads)
    rng = np.random.default_rng(seed)
    total, square = [], []
    if layer.head_dim in Ts:
        raise ValueError(f"memory_study: T = {layer.head_dim} is the head size; (T, T) arrays would be ambiguous")
    for T in Ts:
        x = tensor(rng.standard_normal((batch, T, embed_dim)), requires_grad=True)
        out, _ = layer(x, x, x, attn_mask=causal_mask(T), need_weights=False)
        root = out.sum()
        total.append(graph_bytes(root))
        square.append(
            sum(
                t.data.nbytes
                for t in topological_order(root, every_tensor=True)
                if t.op is not None and t.shape == (batch, num_heads, T, T)
            )
        )
    Ts = np.asarray(Ts)
    return MemoryStudy(Ts, np.array(total), np.array(square), 4 * batch * num_heads * Ts**2 * 8, num_heads)


def log_log_slope(x, y) -> float:
    """The slope of log y against log x between the last two points: 2 for y ~ x^2."""
    return float(np.log(y[-1] / y[-2]) / np.log(x[-1] / x[-2]))


__all__ = [
    "ATTENTION_STEPS",
    "Block",
    "CausalLM",
    "DepthProfile",
    "LMRun",
    "MemoryStudy",
    "ScaleStudy",
    "attention_backward",
    "autodiff_attention",
    "autodiff_layer_norm",
    "causal_gradient",
    "causal_mask",
    "depth_profile",
    "layer_norm_backward",
    "log_log_slope",
    "memory_study",
    "own_position_weight",
    "sample",
    "scale_study",
    "sublayer_output_scale",
    "train_lm",
    "weight_gradient_profile",
]
