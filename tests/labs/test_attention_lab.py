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
    sublayer_output_scale,
    train_lm,
    weight_gradient_profile,
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
    np.testing.assert_allclose(hand["dx"].sum(axis=-1), 0.0, atol=1e-13, err_msg="rows of dx must sum to 0")


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


def test_low_temperature_repeats_itself_and_temperature_1_keeps_the_texts_line_breaks(lm_run):
    text = lm_run.text.text
    breaks_per_char = text.count("\n") / len(text)
    for seed in range(3):
        low, one = (sample(lm_run.model, lm_run.text, "MENENIUS:\n", 300, t, seed)[10:] for t in (0.6, 1.0))
        pairs = {name: len({s[i : i + 2] for i in range(len(s) - 1)}) for name, s in (("0.6", low), ("1.0", one))}
        assert pairs["0.6"] < 0.8 * pairs["1.0"], f"seed {seed}: distinct character pairs {pairs}"
        ratio = one.count("\n") / len(one) / breaks_per_char
        assert 0.5 < ratio < 2, f"seed {seed}: line breaks at temperature 1 are {ratio:.2f} times the text's rate"


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
    first = study.grad_q["unscaled"][:2]
    assert first[1] > first[0], f"median ||dQ_t|| unscaled at d_k = 4, 16: {first}, expected a rise first"


def test_without_the_scale_the_total_gradient_grows_while_the_median_row_vanishes():
    study = scale_study()
    for name in ("total_grad_q", "total_grad_k"):
        scaled, unscaled = getattr(study, name)["scaled"], getattr(study, name)["unscaled"]
        assert scaled.max() / scaled.min() < 1.2, f"{name} scaled {scaled}: should not depend on d_k"
        assert np.all(np.diff(unscaled) > 0), f"{name} unscaled {unscaled}: should grow with d_k"
        at_1024 = f"unscaled {unscaled[-1]:.0f}, scaled {scaled[-1]:.0f}"
        assert unscaled[-1] > 10 * scaled[-1], f"{name} at d_k = 1024: {at_1024}"


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


def test_post_ln_weight_gradients_grow_towards_the_output_and_pre_ln_do_not():
    post = {d: weight_gradient_profile(d, norm_first=False) for d in (4, 8, 16)}
    pre = {d: weight_gradient_profile(d, norm_first=True) for d in (4, 8, 16)}
    assert post[16].shape == pre[16].shape == (16,)
    growth = {d: post[d][-1] / post[d][0] for d in post}
    assert growth[8] > 1.4 and growth[16] > 1.5, f"post-LN ||dL/dW2||, last block over first: {growth}"
    assert growth[4] < 1.1, f"post-LN at 4 blocks: last block over first {growth[4]:.2f}, expected no growth"
    fall = {d: pre[d][-1] / pre[d][0] for d in pre}
    assert max(fall.values()) < 0.8 and fall[16] < 0.6, f"pre-LN ||dL/dW2||, last block over first: {fall}"
    assert post[16].mean() > 1.5 * pre[16].mean(), (
        f"mean ||dL/dW2||: post-LN {post[16].mean():.3f}, pre-LN {pre[16].mean():.3f}"
    )
    shrink = pre[16].mean() / pre[4].mean()
    assert 0.6 < shrink < 1.0, f"pre-LN mean ||dL/dW2|| from 4 to 16 blocks: x{shrink:.2f} (1/sqrt(L) gives 0.5)"


def test_with_the_blocks_own_initialisation_post_ln_weight_gradients_stay_level():
    post = weight_gradient_profile(16, norm_first=False, xavier=False)
    assert 0.8 < post[-1] / post[0] < 1.3, f"post-LN ||dL/dW2||, last block over first: {post[-1] / post[0]:.2f}"


def test_the_blocks_own_initialisation_starts_the_sublayers_small():
    own, xavier = sublayer_output_scale(xavier=False), sublayer_output_scale(xavier=True)
    assert max(own) < 0.3, f"own initialisation: attention and feed-forward add {own} of the stream's scale"
    assert xavier[0] > 1.5 * own[0] and xavier[1] > 2 * own[1], f"Xavier {xavier}, own {own}"


# ----------------------------------------------------------------------------- memory grows as T^2


def test_attention_memory_grows_as_t_squared():
    study = memory_study()
    np.testing.assert_array_equal(study.square_bytes, study.formula_bytes)
    assert log_log_slope(study.T, study.square_bytes) == pytest.approx(2.0)
    slope = log_log_slope(study.T, study.graph_bytes)
    assert 1.8 < slope <= 2.0, f"total graph memory grows as T^{slope:.2f} between T = 256 and 512"
    assert study.square_bytes[-1] / study.graph_bytes[-1] > 0.8, "at T = 512 the (T, T) arrays should dominate"


def test_softmax_over_the_queries_lets_later_queries_leak_in():
    T, E = 5, 4
    Q, K = RNG.standard_normal((2, T, E))
    V = RNG.standard_normal((T, 3))

    def outputs(Q, axis):
        scores = np.where(np.tril(np.ones((T, T), dtype=bool)), Q @ K.T / np.sqrt(E), -np.inf)
        e = np.exp(scores - scores.max(axis=axis, keepdims=True))
        return (e / e.sum(axis=axis, keepdims=True)) @ V

    later = Q.copy()
    later[-1] += 1.0  # change only the last query
    for axis, leaks in ((-1, False), (-2, True)):
        changed = np.abs(outputs(later, axis)[:-1] - outputs(Q, axis)[:-1]).max()
        assert (changed > 1e-9) == leaks, f"softmax over axis {axis}: earlier outputs moved by {changed:.2e}"


def test_a_tied_read_out_with_unit_embeddings_starts_far_above_ln_vocab():
    text_ids = np.random.default_rng(3).integers(0, 11, (4, 9))
    for embed_std, low, high in ((0.02, -0.05, 0.05), (1.0, 1.0, np.inf)):
        model = small_lm(tied=True, embed_std=embed_std)
        logits = model(text_ids[:, :-1])
        loss = float(bp.nn.functional.cross_entropy(logits.reshape(-1, 11), text_ids[:, 1:].reshape(-1)).data)
        assert low < loss - np.log(11) < high, f"embed_std {embed_std}: first loss {loss:.2f}, ln V = {np.log(11):.2f}"


def test_scaling_by_one_over_d_k_makes_attention_almost_uniform():
    rng = np.random.default_rng(4)
    Q, K = rng.standard_normal((2, 64, 16, 1024))
    V, dO = rng.standard_normal((2, 64, 16, 8))
    P = attention_backward(Q, K, V, dO, scale=1 / 1024)["P"]
    entropy = float(-(P * np.log(P)).sum(axis=-1).mean())
    assert abs(entropy - np.log(16)) < 0.01, f"entropy {entropy:.3f} with 1/d_k, uniform is ln 16 = {np.log(16):.3f}"
    assert P.max(axis=-1).mean() < 1.1 / 16, f"mean largest weight {P.max(axis=-1).mean():.3f}, uniform 1/16"


def test_masking_after_the_softmax_breaks_the_rows_and_lets_gradient_into_masked_scores():
    rng = np.random.default_rng(5)
    scores, V, dO = rng.standard_normal((4, 4)), rng.standard_normal((4, 2)), rng.standard_normal((4, 2))
    keep = np.tril(np.ones((4, 4), dtype=bool))

    def loss(scores):
        e = np.exp(scores - scores.max(axis=-1, keepdims=True))
        return float(((np.where(keep, e / e.sum(axis=-1, keepdims=True), 0.0)) @ V * dO).sum())

    e = np.exp(scores - scores.max(axis=-1, keepdims=True))
    rows = np.where(keep, e / e.sum(axis=-1, keepdims=True), 0.0).sum(axis=-1)
    assert np.all(rows[:-1] < 1 - 1e-3), f"row sums after masking the weights: {rows}"
    grad = numerical_gradient(lambda: loss(scores), scores, 1e-6)
    assert np.abs(grad[~keep]).min() > 1e-6, f"gradient at the masked scores: {grad[~keep]}"


def test_every_intermediate_has_its_equation():
    Q, K, V, dO = attention_problem(lead=())
    assert list(attention_backward(Q, K, V, dO)) == list(ATTENTION_STEPS)
