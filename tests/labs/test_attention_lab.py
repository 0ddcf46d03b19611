"""Notebook 10's lab: attention and LayerNorm backward by hand equal the engine (1e-12) and finite
differences; and every claim the notebook makes, asserted on the numbers it shows."""

import numpy as np
import pytest

import bpcore as bp
from bpcore.gradcheck import numerical_gradient
from bpcore.labs.attention import (
    ATTENTION_STEPS,
    CausalLM,
    attention_backward,
    autodiff_attention,
    autodiff_layer_norm,
    causal_gradient,
    causal_mask,
    depth_profile,
    layer_norm_backward,
    log_log_slope,
    memory_study,
    own_position_weight,
    sample,
    scale_study,
    train_lm,
)

RNG = np.random.default_rng(10)


def attention_problem(lead=(2,), L=3, S=4, E=5, Ev=2):
    return (RNG.standard_normal((*lead, n, d)) for n, d in ((L, E), (S, E), (S, Ev), (L, Ev)))


MASKS = {
    "none": None,
    "bool": np.tril(np.ones((3, 4), dtype=bool), 1),
    "float": RNG.standard_normal((3, 4)),
}


@pytest.mark.parametrize("mask", MASKS)
@pytest.mark.parametrize("scale", [None, 0.3])
def test_attention_backward_by_hand_equals_autodiff(mask, scale):
    Q, K, V, dO = attention_problem()
    hand = attention_backward(Q, K, V, dO, mask=MASKS[mask], scale=scale)
    engine = autodiff_attention(Q, K, V, dO, mask=MASKS[mask], scale=scale)
    for name in ("O", "dQ", "dK", "dV"):
        np.testing.assert_allclose(hand[name], engine[name], rtol=0, atol=1e-12, err_msg=name)


def test_attention_intermediates_are_named_shaped_and_consistent():
    Q, K, V, dO = attention_problem(lead=(), L=3, S=4, E=5, Ev=2)
    hand = attention_backward(Q, K, V, dO, mask=MASKS["bool"])
    shapes = {name: np.shape(value) for name, value in hand.items()}
    assert shapes == {
        "scale": (), "scores": (3, 4), "P": (3, 4), "O": (3, 2),
        "dV": (4, 2), "dP": (3, 4), "dS": (3, 4), "dQ": (3, 5), "dK": (4, 5),
    }  # fmt: skip
    assert hand["scale"] == pytest.approx(1 / np.sqrt(5))
    np.testing.assert_allclose(hand["P"].sum(axis=-1), 1.0)
    masked = ~MASKS["bool"]
    assert np.all(hand["P"][masked] == 0) and np.all(hand["dS"][masked] == 0)  # no gradient through a masked key
    np.testing.assert_allclose(hand["dS"].sum(axis=-1), 0.0, atol=1e-14)  # softmax rows: the gradient sums to 0
    np.testing.assert_allclose(hand["dV"], hand["P"].T @ dO, atol=1e-15)


def test_attention_backward_by_hand_equals_finite_differences():
    Q, K, V, dO = attention_problem(lead=(), L=3, S=4, E=3, Ev=2)
    hand = attention_backward(Q, K, V, dO, mask=MASKS["float"])

    def loss():
        return float((attention_backward(Q, K, V, dO, mask=MASKS["float"])["O"] * dO).sum())

    for name, array in (("dQ", Q), ("dK", K), ("dV", V)):
        np.testing.assert_allclose(hand[name], numerical_gradient(loss, array, 1e-6), 1e-6, 1e-8, err_msg=name)
    scores = hand["scores"].copy()

    def loss_from_scores():  # dS, the gradient at the softmax's input
        e = np.exp(scores - scores.max(axis=-1, keepdims=True))
        return float(((e / e.sum(axis=-1, keepdims=True)) @ V * dO).sum())

    np.testing.assert_allclose(hand["dS"], numerical_gradient(loss_from_scores, scores, 1e-6), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("shape", [(4, 6), (2, 3, 5)])
def test_layer_norm_backward_by_hand_equals_autodiff_and_finite_differences(shape):
    x, dy = RNG.standard_normal(shape), RNG.standard_normal(shape)
    gamma, beta = RNG.standard_normal(shape[-1]), RNG.standard_normal(shape[-1])
    hand = layer_norm_backward(x, gamma, beta, dy)
    engine = autodiff_layer_norm(x, gamma, beta, dy)
    for name in ("y", "dx", "dgamma", "dbeta"):
        np.testing.assert_allclose(hand[name], engine[name], rtol=0, atol=1e-12, err_msg=name)
    assert set(hand) == {"mean", "var", "rstd", "x_hat", "y", "dbeta", "dgamma", "dx_hat", "dx"}

    def loss():
        return float((layer_norm_backward(x, gamma, beta, dy)["y"] * dy).sum())

    for name, array in (("dx", x), ("dgamma", gamma), ("dbeta", beta)):
        np.testing.assert_allclose(hand[name], numerical_gradient(loss, array, 1e-6), 1e-6, 1e-8, err_msg=name)


# ----------------------------------------------------------------------------- the small causal language model


def small_lm(**options):
    bp.manual_seed(0)
    return CausalLM(11, context=8, d_model=8, nhead=2, num_layers=2, dim_feedforward=16, **options)


@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("tied", [False, True])
def test_causal_lm_never_reads_the_future(norm_first, tied):
    model = small_lm(norm_first=norm_first, tied=tied)
    ids = np.random.default_rng(1).integers(0, 11, (3, 8))
    logits = model(ids).data
    assert logits.shape == (3, 8, 11)
    changed = ids.copy()
    changed[:, 5] = (changed[:, 5] + 1) % 11
    after = model(changed).data
    np.testing.assert_array_equal(after[:, :5], logits[:, :5], err_msg="positions before 5 saw token 5")
    assert np.abs(after[:, 5:] - logits[:, 5:]).max() > 1e-6, "position 5 and later ignore token 5"


def test_tied_read_out_reuses_the_token_embedding():
    tied, untied = small_lm(tied=True), small_lm(tied=False)
    assert tied.readout is None and untied.readout is not None
    count = sum(p.data.size for p in untied.parameters()) - sum(p.data.size for p in tied.parameters())
    assert count == 11 * 8 + 11, f"untied should add a ({11}, {8}) weight and a bias, it adds {count} numbers"
    ids = np.arange(8)[None] % 11
    logits = tied(ids)
    logits.sum().backward()
    assert np.abs(tied.token.weight.grad[8:]).max() > 0, "the read-out's gradient must reach unseen tokens' rows"


def test_causal_lm_refuses_more_than_its_context():
    with pytest.raises(ValueError, match="at most context = 8"):
        small_lm()(np.zeros((1, 9), dtype=np.int64))


def test_head_attention_is_causal_and_normalised():
    model = small_lm()
    weights = model.head_attention(np.random.default_rng(2).integers(0, 11, (2, 8)), layer=1)
    assert weights.shape == (2, 2, 8, 8)
    np.testing.assert_allclose(weights.sum(axis=-1), 1.0, atol=1e-12)
    assert np.all(weights[..., causal_mask(8)] == 0), "a head attends to a later position"


@pytest.fixture(scope="module")
def lm_run():
    return train_lm(progress=False)  # the notebook's run: 2 blocks, 2 heads, context 32


def test_lm_loss_starts_at_ln_vocab_and_falls_by_a_margin(lm_run):
    ln_vocab = np.log(lm_run.text.vocab_size)
    assert abs(lm_run.loss[0] - ln_vocab) < 0.05, (
        f"first loss {lm_run.loss[0]:.3f}, expected about ln V = {ln_vocab:.3f}"
    )
    final = np.mean(lm_run.loss[-10:])
    assert final < ln_vocab - 1.2, f"after training the loss is {final:.3f}, not 1.2 below ln V = {ln_vocab:.3f}"
    assert lm_run.held_out < ln_vocab - 1.0, f"held-out loss {lm_run.held_out:.3f} is near chance ({ln_vocab:.3f})"
    assert lm_run.model.context == 32 and len(lm_run.model.blocks) == 2


def test_sample_is_seeded_and_in_the_alphabet(lm_run):
    text = sample(lm_run.model, lm_run.text, "MENENIUS:\n", 50, temperature=0.8, seed=3)
    assert text.startswith("MENENIUS:\n") and len(text) == len("MENENIUS:\n") + 50
    assert set(text) <= set(lm_run.text.alphabet)
    assert text == sample(lm_run.model, lm_run.text, "MENENIUS:\n", 50, temperature=0.8, seed=3)


def test_after_training_one_head_of_block_1_reads_the_current_character(lm_run):
    ids = lm_run.text.ids
    windows = np.stack([ids[s : s + 32] for s in np.random.default_rng(5).integers(0, len(ids) - 32, 32)])
    first, second = own_position_weight(lm_run.model, windows, 0), own_position_weight(lm_run.model, windows, 1)
    assert first[0] > 0.45 and first[0] > 2 * max(first[1], *second), f"block 1: {first}, block 2: {second}"
    untrained = own_position_weight(small_lm(), windows[:, :8] % 11, 0)
    assert np.all(untrained < 0.45), f"an untrained model already has a current-character head: {untrained}"


# ----------------------------------------------------------------------------- why 1/sqrt(d_k)


def test_scaling_keeps_score_variance_one_and_the_softmax_soft():
    study = scale_study()
    np.testing.assert_allclose(study.score_variance["scaled"], 1.0, rtol=0.15)
    np.testing.assert_allclose(study.score_variance["unscaled"] / study.d_k, 1.0, rtol=0.15)  # Var = d_k
    unscaled_max, scaled_max = study.max_weight["unscaled"], study.max_weight["scaled"]
    assert np.all(np.diff(unscaled_max) > 0) and unscaled_max[-1] > 0.95, f"unscaled max weights {unscaled_max}"
    assert np.all(scaled_max < 0.3), f"scaled max weights {scaled_max}: the softmax saturated"
    assert study.entropy["unscaled"][-1] < 0.1 < 2.0 < study.entropy["scaled"].min()


def test_without_the_scale_the_gradient_reaching_q_and_k_vanishes():
    study = scale_study()
    for name in ("grad_q", "grad_k"):
        scaled = getattr(study, name)["scaled"]
        assert scaled.max() / scaled.min() < 1.5, f"{name} scaled {scaled}: should not depend on d_k"
    q_fall = study.grad_q["unscaled"][-1] / study.grad_q["unscaled"][0]
    k_fall = study.grad_k["unscaled"][-1] / study.grad_k["unscaled"][0]
    assert q_fall < 1e-3, f"median ||dQ_t|| fell only by {q_fall:.1e} from d_k = 4 to 1024"
    assert q_fall < k_fall < 0.2, f"median ||dK_s|| fell by {k_fall:.1e}, ||dQ_t|| by {q_fall:.1e}"


# ----------------------------------------------------------------------------- the causal mask's gradient


def test_causal_mask_sends_exactly_zero_gradient_to_later_positions():
    G = causal_gradient(T=6)
    assert np.all(G[np.triu_indices(6, 1)] == 0.0), "output t sent gradient to an input s > t"
    assert np.all(G[np.tril_indices(6)] > 0), "output t must depend on every input s <= t"
    assert np.all(causal_gradient(T=6, causal=False) > 0)


# ----------------------------------------------------------------------------- residual stream and LayerNorm


@pytest.mark.parametrize("norm_first", [False, True])
def test_with_the_residual_the_gradient_stays_within_a_factor_across_depth(norm_first):
    for depth in (2, 4, 8, 16):
        profile = depth_profile(depth, norm_first)
        assert profile.spread < 1.6, f"{depth} blocks, norm_first={norm_first}: spread {profile.spread:.2f}"
        assert profile.stream_grad_norms.shape == profile.block_grad_norms.shape == (depth,)


@pytest.mark.parametrize("norm_first", [False, True])
def test_without_the_residual_the_spread_grows_with_depth(norm_first):
    shallow, deep = depth_profile(2, norm_first, residual=False), depth_profile(16, norm_first, residual=False)
    assert deep.spread > 5 and deep.spread > 2 * shallow.spread, f"spread {shallow.spread:.2f} -> {deep.spread:.2f}"
    assert deep.spread > 4 * depth_profile(16, norm_first).spread


# ----------------------------------------------------------------------------- memory grows as T^2


def test_attention_memory_grows_as_t_squared():
    study = memory_study()
    np.testing.assert_array_equal(study.square_bytes, study.formula_bytes)
    assert log_log_slope(study.T, study.square_bytes) == pytest.approx(2.0)
    slope = log_log_slope(study.T, study.graph_bytes)
    assert 1.8 < slope <= 2.0, f"total graph memory grows as T^{slope:.2f} between T = 256 and 512"
    assert study.square_bytes[-1] / study.graph_bytes[-1] > 0.8, "at T = 512 the (T, T) arrays should dominate"


def test_every_intermediate_has_its_equation():
    Q, K, V, dO = attention_problem(lead=())
    assert list(attention_backward(Q, K, V, dO)) == list(ATTENTION_STEPS)
