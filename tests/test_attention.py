"""Attention in the engine: SDPA, MultiheadAttention, TransformerEncoderLayer against PyTorch's formulas.

The expected values come from PyTorch's definitions written out in numpy below (the reference
functions), so the tests need no PyTorch. Gradients: float64 gradcheck for inputs, central
differences for module parameters.
"""

import inspect

import numpy as np
import pytest

import bpcore as bp
from bpcore.nn import functional as F

RNG = np.random.default_rng(16)


def randn(*shape):
    return RNG.standard_normal(shape)


# ----------------------------------------------------------------------------- numpy references


def np_softmax(s):
    e = np.exp(s - s.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def np_sdpa(q, k, v, attn_mask=None, is_causal=False, scale=None):
    """PyTorch's documented reference: attn_bias from the masks, softmax(q k^T * scale + bias) v."""
    L, S = q.shape[-2], k.shape[-2]
    scale = 1 / np.sqrt(q.shape[-1]) if scale is None else scale
    bias = np.zeros((L, S))
    if is_causal:
        bias = np.where(np.tril(np.ones((L, S), dtype=bool)), 0.0, -np.inf)
    if attn_mask is not None:
        bias = np.where(attn_mask, 0.0, -np.inf) if attn_mask.dtype == bool else attn_mask + bias
    return np_softmax(q @ np.swapaxes(k, -1, -2) * scale + bias) @ v


def np_mha(state, H, query, key, value, key_padding_mask=None, attn_mask=None, average=True):
    """PyTorch's multi_head_attention_forward (batch_first, no dropout), from a state_dict."""
    N, L, E = query.shape
    S, D = key.shape[1], E // H
    w, b = state["in_proj_weight"], state.get("in_proj_bias", np.zeros(3 * E))
    q = query @ w[:E].T + b[:E]
    k = key @ w[E : 2 * E].T + b[E : 2 * E]
    v = value @ w[2 * E :].T + b[2 * E :]
    q, k, v = (t.reshape(N, -1, H, D).transpose(0, 2, 1, 3) for t in (q, k, v))
    bias = np.zeros((N, H, L, S))
    if attn_mask is not None:
        m = np.where(attn_mask, -np.inf, 0.0) if attn_mask.dtype == bool else attn_mask
        bias = bias + m.reshape((1, 1, L, S) if m.shape == (L, S) else (N, H, L, S))
    if key_padding_mask is not None:
        m = np.where(key_padding_mask, -np.inf, 0.0) if key_padding_mask.dtype == bool else key_padding_mask
        bias = bias + m.reshape(N, 1, 1, S)
    p = np_softmax(q @ k.transpose(0, 1, 3, 2) / np.sqrt(D) + bias)
    out = (p @ v).transpose(0, 2, 1, 3).reshape(N, L, E)
    out = out @ state["out_proj.weight"].T + state.get("out_proj.bias", 0.0)
    return out, (p.mean(axis=1) if average else p)


def np_layer_norm(x, w, b, eps=1e-5):
    mu = x.mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(((x - mu) ** 2).mean(-1, keepdims=True) + eps) * w + b


def np_encoder_layer(state, H, src, norm_first, src_mask=None, key_padding_mask=None):
    def sa(x):
        sub = {k.removeprefix("self_attn."): v for k, v in state.items() if k.startswith("self_attn.")}
        return np_mha(sub, H, x, x, x, key_padding_mask, src_mask)[0]

    def ff(x):
        h = np.maximum(x @ state["linear1.weight"].T + state["linear1.bias"], 0)
        return h @ state["linear2.weight"].T + state["linear2.bias"]

    def norm(i, x):
        return np_layer_norm(x, state[f"norm{i}.weight"], state[f"norm{i}.bias"])

    x = src
    if norm_first:
        x = x + sa(norm(1, x))
        return x + ff(norm(2, x))
    x = norm(1, x + sa(x))
    return norm(2, x + ff(x))


def random_state(module):
    """A state_dict with PyTorch's key names and random values (the biases too, so none hides as zero)."""
    return {name: randn(*p.shape) * 0.5 for name, p in module.named_parameters()}


def check_parameter_gradients(module, loss, eps=1e-6, tol=1e-7):
    """Every parameter's .grad against central differences of ``loss()``."""
    module.zero_grad()
    loss().backward()
    for name, param in module.named_parameters():
        numeric = np.zeros_like(param.data)
        for i in np.ndindex(param.shape):
            old = param.data[i]
            param.data[i] = old + eps
            up = loss().item()
            param.data[i] = old - eps
            down = loss().item()
            param.data[i] = old
            numeric[i] = (up - down) / (2 * eps)
        error = np.abs(param.grad - numeric).max() / max(1.0, np.abs(numeric).max())
        assert error < tol, f"{name}: max error {error:.2e} against finite differences"


# ----------------------------------------------------------------------------- scaled_dot_product_attention


def _qkv(*lead, L=4, S=5, E=3, Ev=2):
    return randn(*lead, L, E), randn(*lead, S, E), randn(*lead, S, Ev)


@pytest.mark.parametrize("case", ["plain", "bool", "float", "causal", "scale"])
def test_sdpa_equals_pytorch_formula(case):
    q, k, v = _qkv(2, 3)
    mask = {"bool": RNG.random((4, 5)) > 0.3, "float": randn(4, 5)}.get(case)
    if case == "bool":
        mask[:, 0] = True  # every query sees at least one key
    scale = 0.7 if case == "scale" else None
    got = F.scaled_dot_product_attention(
        bp.tensor(q), bp.tensor(k), bp.tensor(v), attn_mask=mask, is_causal=case == "causal", scale=scale
    )
    assert got.shape == (2, 3, 4, 2)
    np.testing.assert_allclose(got.data, np_sdpa(q, k, v, mask, case == "causal", scale), rtol=1e-12, atol=1e-13)


def test_sdpa_broadcasts_leading_dims_and_tensor_masks():
    q, k, v = randn(2, 3, 4, 3), randn(3, 5, 3), randn(3, 5, 2)
    mask = bp.tensor(randn(2, 1, 4, 5))
    got = F.scaled_dot_product_attention(bp.tensor(q), bp.tensor(k), bp.tensor(v), attn_mask=mask)
    np.testing.assert_allclose(got.data, np_sdpa(q, k, v, mask.data), rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("case", ["bool", "float", "causal"])
def test_sdpa_gradcheck(case):
    q, k, v = _qkv(2)
    mask = {"bool": np.tril(np.ones((4, 5), dtype=bool), 1), "float": randn(4, 5)}.get(case)
    report = bp.gradcheck(
        lambda a, b, c: F.scaled_dot_product_attention(a, b, c, attn_mask=mask, is_causal=case == "causal"), q, k, v
    )
    assert report, str(report)


def test_causal_mask_gives_exactly_zero_gradient_from_the_future():
    L = 5
    q, k, v = (bp.tensor(randn(L, 3), requires_grad=True) for _ in range(3))
    for t in range(L):
        for leaf in (q, k, v):
            leaf.grad = None
        upstream = np.zeros((L, 3))
        upstream[t] = randn(3)  # d out_t / d (k, v)
        F.scaled_dot_product_attention(q, k, v, is_causal=True).backward(upstream)
        assert np.all(k.grad[t + 1 :] == 0) and np.all(v.grad[t + 1 :] == 0), f"future keys got gradient from {t}"
        assert np.all(np.abs(k.grad[: t + 1]).sum(axis=1) > 0) or t == 0  # the past does get some
        assert np.all(np.abs(v.grad[: t + 1]).sum(axis=1) > 0)


def test_sdpa_refuses_a_fully_masked_row_and_mask_plus_causal():
    q, k, v = (bp.tensor(a) for a in _qkv())
    mask = np.ones((4, 5), dtype=bool)
    mask[2] = False
    with pytest.raises(ValueError, match=r"query row \(2,\) is masked at every key"):
        F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    with pytest.raises(ValueError, match="not both"):
        F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=True)
    with pytest.raises(bp.ShapeError, match=r"\(3, 3\) does not broadcast"):
        F.scaled_dot_product_attention(q, k, v, attn_mask=np.ones((3, 3), dtype=bool))


def test_sdpa_dropout_is_seeded_and_keeps_the_expectation_unbiased():
    q, k, v = (bp.tensor(a) for a in _qkv())
    bp.manual_seed(3)
    first = F.scaled_dot_product_attention(q, k, v, dropout_p=0.5).data
    bp.manual_seed(3)
    again = F.scaled_dot_product_attention(q, k, v, dropout_p=0.5).data
    np.testing.assert_array_equal(first, again)
    assert not np.allclose(first, np_sdpa(q.data, k.data, v.data))


# ----------------------------------------------------------------------------- MultiheadAttention


def test_mha_parameters_have_pytorch_names_and_shapes():
    mha = bp.nn.MultiheadAttention(8, 2)
    shapes = {name: p.shape for name, p in mha.named_parameters()}
    assert shapes == {
        "in_proj_weight": (24, 8),
        "in_proj_bias": (24,),
        "out_proj.weight": (8, 8),
        "out_proj.bias": (8,),
    }
    assert list(shapes) == ["in_proj_weight", "in_proj_bias", "out_proj.weight", "out_proj.bias"]
    no_bias = bp.nn.MultiheadAttention(8, 2, bias=False)
    assert [n for n, _ in no_bias.named_parameters()] == ["in_proj_weight", "out_proj.weight"]
    separate = bp.nn.MultiheadAttention(8, 2, kdim=3, vdim=5)
    assert {n: p.shape for n, p in separate.named_parameters()}["k_proj_weight"] == (8, 3)
    with pytest.raises(ValueError, match="divisible"):
        bp.nn.MultiheadAttention(8, 3)


def _mha_inputs(N=2, L=3, S=4, E=6):
    return randn(N, L, E), randn(N, S, E), randn(N, S, E)


@pytest.mark.parametrize("masks", ["none", "padding", "bool_attn", "float_attn", "both", "per_head"])
@pytest.mark.parametrize("average", [True, False])
def test_mha_equals_pytorch_formula_after_loading_a_state_dict(masks, average):
    mha = bp.nn.MultiheadAttention(6, 2)
    state = random_state(mha)
    mha.load_state_dict(state)
    query, key, value = _mha_inputs()
    padding = None
    if masks in ("padding", "both"):
        padding = np.array([[False, False, True, False], [False, True, True, False]])
    attn = None
    if masks in ("bool_attn", "both"):
        attn = np.triu(np.ones((3, 4), dtype=bool), 2)  # True = may not attend
    elif masks == "float_attn":
        attn = randn(3, 4)
    elif masks == "per_head":
        attn = randn(4, 3, 4)  # (N * H, L, S)
    out, weights = mha(
        bp.tensor(query), bp.tensor(key), bp.tensor(value), key_padding_mask=padding, attn_mask=attn,
        average_attn_weights=average,
    )  # fmt: skip
    expected_out, expected_weights = np_mha(state, 2, query, key, value, padding, attn, average)
    np.testing.assert_allclose(out.data, expected_out, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(weights.data, expected_weights, rtol=1e-12, atol=1e-12)
    assert weights.shape == ((2, 3, 4) if average else (2, 2, 3, 4))


def test_mha_unbatched_sequence_first_and_no_weights():
    mha = bp.nn.MultiheadAttention(6, 3)
    state = random_state(mha)
    mha.load_state_dict(state)
    query, key, value = _mha_inputs(N=1)
    expected, expected_weights = np_mha(state, 3, query, key, value)
    out, weights = mha(bp.tensor(query[0]), bp.tensor(key[0]), bp.tensor(value[0]))
    np.testing.assert_allclose(out.data, expected[0], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(weights.data, expected_weights[0], rtol=1e-12, atol=1e-12)
    seq_first = bp.nn.MultiheadAttention(6, 3, batch_first=False)
    seq_first.load_state_dict(state)
    out, weights = seq_first(*(bp.tensor(a.transpose(1, 0, 2)) for a in (query, key, value)), need_weights=False)
    assert weights is None
    np.testing.assert_allclose(out.data.transpose(1, 0, 2), expected, rtol=1e-12, atol=1e-12)


def test_mha_refuses_a_fully_padded_sequence_and_a_causal_hint_without_a_mask():
    mha = bp.nn.MultiheadAttention(6, 2)
    query, key, value = (bp.tensor(a) for a in _mha_inputs())
    with pytest.raises(ValueError, match="masked at every key"):
        mha(query, key, value, key_padding_mask=np.array([[True] * 4, [False] * 4]))
    with pytest.raises(ValueError, match="pass the mask too"):
        mha(query, query, query, is_causal=True)


def test_mha_gradients_with_padding_and_attention_masks():
    mha = bp.nn.MultiheadAttention(4, 2)
    mha.load_state_dict(random_state(mha))
    query, key, value = randn(2, 3, 4), randn(2, 3, 4), randn(2, 3, 4)
    padding = np.array([[False, False, True], [False, False, False]])
    attn = np.triu(np.ones((3, 3), dtype=bool), 1)
    upstream = randn(2, 3, 4)

    def run(q, k, v):
        out, weights = mha(q, k, v, key_padding_mask=padding, attn_mask=attn)
        return out * bp.tensor(upstream) + weights.sum() * 0.3

    assert bp.gradcheck(run, query, key, value)
    check_parameter_gradients(mha, lambda: run(*(bp.tensor(a) for a in (query, key, value))).sum())


# ----------------------------------------------------------------------------- TransformerEncoderLayer


def test_encoder_layer_submodule_names():
    layer = bp.nn.TransformerEncoderLayer(8, 2, dim_feedforward=16)
    assert [name for name, _ in layer.named_modules() if name and "." not in name] == [
        "self_attn", "linear1", "dropout", "linear2", "norm1", "norm2", "dropout1", "dropout2",
    ]  # fmt: skip
    assert {n: p.shape for n, p in layer.named_parameters()}["linear1.weight"] == (16, 8)
    assert layer.self_attn.dropout == 0.1 and layer.dropout.p == 0.1


@pytest.mark.parametrize("norm_first", [False, True])
def test_encoder_layer_equals_pytorch_formula_and_gradchecks(norm_first):
    layer = bp.nn.TransformerEncoderLayer(4, 2, dim_feedforward=6, dropout=0.0, norm_first=norm_first)
    state = random_state(layer)
    layer.load_state_dict(state)
    src = randn(2, 3, 4)
    causal = np.triu(np.ones((3, 3), dtype=bool), 1)
    padding = np.array([[False, False, True], [False, False, False]])
    got = layer(bp.tensor(src), src_mask=causal, src_key_padding_mask=padding, is_causal=True)
    expected = np_encoder_layer(state, 2, src, norm_first, causal, padding)
    np.testing.assert_allclose(got.data, expected, rtol=1e-12, atol=1e-12)
    upstream = bp.tensor(randn(2, 3, 4))
    assert bp.gradcheck(lambda x: layer(x, src_mask=causal) * upstream, src)
    check_parameter_gradients(layer, lambda: (layer(bp.tensor(src), src_mask=causal) * upstream).sum())


def _parameters(fn):
    return [(p.name, p.default) for p in inspect.signature(fn).parameters.values() if p.name != "self"]


def test_signatures_follow_pytorch():
    empty = inspect.Parameter.empty
    assert _parameters(F.scaled_dot_product_attention) == [
        ("query", empty), ("key", empty), ("value", empty), ("attn_mask", None), ("dropout_p", 0.0),
        ("is_causal", False), ("scale", None),
    ]  # fmt: skip
    assert _parameters(bp.nn.MultiheadAttention.forward) == [
        ("query", empty), ("key", empty), ("value", empty), ("key_padding_mask", None), ("need_weights", True),
        ("attn_mask", None), ("average_attn_weights", True), ("is_causal", False),
    ]  # fmt: skip
    assert [name for name, _ in _parameters(bp.nn.TransformerEncoderLayer.__init__)] == [
        "d_model", "nhead", "dim_feedforward", "dropout", "activation", "layer_norm_eps", "batch_first",
        "norm_first", "bias",
    ]  # fmt: skip
    assert _parameters(bp.nn.TransformerEncoderLayer.forward) == [
        ("src", empty), ("src_mask", None), ("src_key_padding_mask", None), ("is_causal", False),
    ]  # fmt: skip
    q = bp.tensor(randn(3, 2))
    by_keyword = F.scaled_dot_product_attention(query=q, key=q, value=q, dropout_p=0.0, is_causal=True)
    np.testing.assert_allclose(by_keyword.data, np_sdpa(q.data, q.data, q.data, None, True), rtol=1e-12)


def test_masked_attention_runs_under_anomaly_mode():
    q = bp.tensor(randn(2, 4, 3), requires_grad=True)
    mask = np.zeros((4, 4))
    mask[:, 1] = -np.inf  # a float mask with -inf, as PyTorch users write it
    with bp.detect_anomaly():
        F.scaled_dot_product_attention(q, q, q, is_causal=True).sum().backward()
        F.scaled_dot_product_attention(q, q, q, attn_mask=mask).sum().backward()
        bp.nn.MultiheadAttention(3, 1)(q, q, q, key_padding_mask=np.array([[0, 0, 1, 0], [1, 0, 0, 0]], bool))
    assert np.isfinite(q.grad).all()
    np.testing.assert_allclose(
        F.scaled_dot_product_attention(q, q, q, attn_mask=mask).data, np_sdpa(q.data, q.data, q.data, mask), rtol=1e-12
    )
