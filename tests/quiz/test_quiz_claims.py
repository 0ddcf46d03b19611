"""Claims the bank's texts make that a computation can settle, each computed with the engine here.

A wrong key or an explanation that teaches something false is the worst bug a quiz can have; where a
question states a number or a rule, the test below recomputes it and checks the text says the same.
"""

import numpy as np
import pytest

import bpcore as bp
from bpcore.labs import vanishing
from bpcore.nn.conv import conv2d
from bpcore.quiz.bank import load_banks
from bpcore.quiz.generators import GENERATORS

F = bp.nn.functional


@pytest.fixture(scope="module")
def bank():
    return load_banks()


def key_text(question) -> str:
    return question.spec["choices"]["abcdefghij".index(question.spec["answer"])]


def texts(question) -> str:
    """Everything a learner can read about a question, in one string."""
    spec = question.spec
    parts = [question.prompt, question.explanation, *question.hints, *spec.get("choices", []), *spec.get("why", [])]
    if question.kind == "flashcard":
        parts.append(spec["answer"])
    return "\n".join(parts)


def test_init_too_large_key_says_the_gradients_explode(bank):
    q = bank.get("init-too-large")
    _, chi = vanishing.tanh_gradient_gain(512.0)
    key = key_text(q)
    assert key.startswith("Huge") and f"about {chi:.0f} times" in key, key
    assert "explodes" in q.explanation and f"{chi:.0f}" in q.explanation
    vanishing_choices = [c for c in q.spec["choices"] if c.startswith("Tiny")]
    assert vanishing_choices and key not in vanishing_choices


def test_init_too_large_exact_zero_slopes_are_a_minority_in_float64(bank):
    """The 'exactly zero' distractor's why: slopes round to 0 only beyond |z| ~ 19, some 40% of units."""
    q_star, _ = vanishing.tanh_gradient_gain(512.0)
    z = np.sqrt(q_star) * np.random.default_rng(0).standard_normal(200_000)
    zero = 1 - np.tanh(z) ** 2 == 0
    assert 18.5 < np.abs(z[zero]).min() < 19.5 and 0.35 < zero.mean() < 0.45
    q = bank.get("init-too-large")
    (why,) = [w for c, w in zip(q.spec["choices"], q.spec["why"], strict=True) if c.startswith("Exactly zero")]
    assert "about 19" in why and "40%" in why


def test_training_accumulate_second_backward_runs_in_bpcore_and_text_says_pytorch_needs_retain_graph(bank):
    q = bank.get("training-accumulate")
    w = bp.tensor(3.0, requires_grad=True)
    loss = w * w
    loss.backward()
    loss.backward()  # bpcore keeps the graph: no error
    assert float(w.grad) == q.spec["answer"] == 12
    assert "retain_graph=True" in q.explanation and "RuntimeError" in q.explanation
    assert "keeps the graph" in q.prompt


def test_loss_multilabel_softmax_gradient_with_two_true_tags_is_2p_minus_y(bank):
    rng = np.random.default_rng(0)
    y = np.array([[1.0, 1.0, 0.0, 0.0]])
    for _ in range(5):
        z = bp.tensor(rng.standard_normal((1, 4)), requires_grad=True)
        F.cross_entropy(z, y, reduction="sum").backward()
        p = np.exp(z.data) / np.exp(z.data).sum()
        np.testing.assert_allclose(z.grad, 2 * p - y, atol=1e-12)
        assert not np.allclose(z.grad, p - y)
    # the gradient vanishes at p = y / 2: the two true tags stop at 0.5 each
    z = bp.tensor(np.array([[0.0, 0.0, -40.0, -40.0]]), requires_grad=True)
    F.cross_entropy(z, y, reduction="sum").backward()
    assert np.abs(z.grad).max() < 1e-15
    text = texts(bank.get("loss-multilabel"))
    assert "2p - y" in text and "p = y/2" in text


def test_opt_code_momentum_steady_step_is_ten_times_plain_sgd(bank):
    w = bp.tensor(np.zeros(1), requires_grad=True)
    sgd = bp.optim.SGD([w], lr=0.1, momentum=0.9)
    g, before = np.array([2.0]), None
    for _ in range(300):
        before = w.data.copy()
        w.grad = g.copy()
        sgd.step()
    step = before - w.data
    np.testing.assert_allclose(step / (0.1 * g), 1 / (1 - 0.9), rtol=1e-9)
    np.testing.assert_allclose(step, 0.1 * g / (1 - 0.9), rtol=1e-9)  # lr/(1 - mu) = 1 times the gradient
    assert "= 10$ times the plain-SGD step" in bank.get("opt-code-momentum").explanation


def test_rnn_lstm_gating_gru_update_gate_keeps_the_old_state_as_the_package_defines_it(bank):
    hidden = 3
    cell = bp.nn.GRUCell(2, hidden)
    rng = np.random.default_rng(0)
    x, h = rng.standard_normal((4, 2)), rng.standard_normal((4, hidden))
    bias_hh = cell.bias_hh.data
    bias_hh[hidden : 2 * hidden] = 50.0  # z = sigma(...) ~ 1
    np.testing.assert_allclose(cell(bp.tensor(x), bp.tensor(h)).data, h, atol=1e-12)
    bias_hh[hidden : 2 * hidden] = -50.0  # z ~ 0: the new state is the candidate n, not h
    assert not np.allclose(cell(bp.tensor(x), bp.tensor(h)).data, h, atol=1e-3)
    answer = bank.get("rnn-lstm-gating").spec["answer"]
    assert "h_t = (1 - z_t) \\odot n_t + z_t \\odot h_{t-1}" in answer, answer


def test_gc_kinks_straddling_relu_corner_gives_a_large_error_that_gradcheck_does_not_call_a_kink(bank):
    w = bp.tensor(np.array([3e-7]), requires_grad=True)  # pre-activation w * 1 = 3e-7, inside eps = 1e-6
    report = bp.gradcheck(lambda t: F.relu(t), w, eps=1e-6)
    assert not report and report.inputs[0].max_rel_err > 0.1
    np.testing.assert_allclose(report.inputs[0].analytic, [1.0])  # the analytic slope is right
    assert "kink" not in str(report).replace("suspicious unless a kink", "")
    explanation = bank.get("gc-kinks").explanation
    assert "does **not** detect" in explanation and "flags kinks" not in explanation


def test_gradcheck_verdict_default_eps_is_accurate_and_a_bad_eps_gives_1e_3(bank):
    x = np.random.default_rng(0).standard_normal(8)
    sweep = bp.step_size_sweep(lambda t: (3 * t).sigmoid() * t.tanh() * 10, x, [1e-1, 1e-6, 1e-13])
    assert sweep.rel_err[1] < 1e-7, sweep.rel_err
    assert sweep.rel_err[0] > 1e-3 and sweep.rel_err[2] > 1e-3, sweep.rel_err
    q = bank.get("chain-rule-gradcheck-verdict")
    assert "10^{-6}" in q.prompt and "badly chosen eps can give 1e-3" in q.spec["why"][3]


def test_cnn_input_grad_is_a_full_cross_correlation_with_the_flipped_kernel(bank):
    rng = np.random.default_rng(0)
    k = 3
    x = bp.tensor(rng.standard_normal((1, 1, 6, 6)), requires_grad=True)
    W = rng.standard_normal((1, 1, k, k))
    y = conv2d(x, bp.tensor(W))
    G = rng.standard_normal(y.shape)
    y.backward(G)
    padded = np.pad(G[0, 0], k - 1)
    flipped = W[0, 0, ::-1, ::-1]
    full = np.array([[np.sum(padded[a : a + k, b : b + k] * flipped) for b in range(6)] for a in range(6)])
    np.testing.assert_allclose(x.grad[0, 0], full, atol=1e-12)
    unflipped = np.array([[np.sum(padded[a : a + k, b : b + k] * W[0, 0]) for b in range(6)] for a in range(6)])
    assert not np.allclose(x.grad[0, 0], unflipped)
    assert "flipped in both axes" in key_text(bank.get("cnn-input-grad"))


def test_act_tanh_vs_sigmoid_weight_gradients_share_a_sign_per_example_not_per_batch(bank):
    rng = np.random.default_rng(0)
    h = 1 / (1 + np.exp(-rng.standard_normal((16, 5))))  # sigmoid outputs: all positive
    delta = rng.standard_normal(16)  # one next-layer neuron's error, per example
    per_example = delta[:, None] * h  # dL/dw_j for each example
    assert all(len(set(np.sign(row))) == 1 for row in per_example)
    two = np.array([[1.0], [-1.0]]) * np.array([[0.9, 0.1], [0.1, 0.9]])  # two examples, errors of opposite sign
    assert list(np.sign(two.sum(axis=0))) == [1.0, -1.0]  # summed over the batch, the signs mix
    explanation = bank.get("act-tanh-vs-sigmoid").explanation
    assert "for one example" in explanation and "per step" not in explanation


def test_fw_pytorch_loop_zero_grad_between_backward_and_step_wipes_the_update(bank):
    w = bp.tensor(np.array([1.0]), requires_grad=True)
    sgd = bp.optim.SGD([w], lr=0.1)
    (w * w).sum().backward()
    sgd.zero_grad()
    sgd.step()
    assert w.data[0] == 1.0  # nothing to apply
    assert "never between\n`backward()` and `step()`" in bank.get("fw-pytorch-loop").explanation


def test_ve_residual_chain_product_can_still_shrink_grow_and_flip_sign(bank):
    keys = np.array([GENERATORS["residual_chain_grad"](seed).key for seed in range(2000)])
    assert np.abs(keys).min() < 1e-3 and np.abs(keys).max() > 9
    assert 0.15 < np.mean(keys < 0) < 0.35
    text = bank.get("ve-residual-chain").explanation
    assert "below $10^{-3}$ to above 9" in text and "a quarter of the answers are negative" in text
    assert "neither vanishes" not in text


def test_ve_texts_no_longer_promise_a_factor_of_exactly_one_or_a_gradient_that_cannot_vanish(bank):
    assert "cannot vanish" not in bank.get("ve-residual-flashcard").spec["answer"]
    assert "optimisation difficulty" in bank.get("ve-residual-flashcard").spec["answer"]
    explain = bank.get("ve-explain").explanation
    assert "exactly 1 (residuals, the LSTM cell)" not in explain and "f_t" in explain
    clipping = bank.get("training-clipping").spec["answer"]
    assert "or truncated BPTT" not in clipping and "**cuts** the gradient" in clipping


def test_opt_local_minima_random_probes_miss_a_saddle_that_the_smallest_eigenvalue_finds(bank):
    """A saddle with 10 downhill directions out of 1000: random probes curve upwards, Lanczos sees the negative one."""
    rng = np.random.default_rng(0)
    eigenvalues = np.concatenate([np.full(10, -1.0), rng.uniform(0.5, 2.0, 990)])
    basis, _ = np.linalg.qr(rng.standard_normal((1000, 1000)))
    H = basis @ np.diag(eigenvalues) @ basis.T
    probes = rng.standard_normal((200, 1000))
    probes /= np.linalg.norm(probes, axis=1, keepdims=True)
    curvature = np.einsum("ij,jk,ik->i", probes, H, probes)
    assert np.all(curvature > 0), "every random probe should curve upwards at this saddle"
    # Lanczos with Hessian-vector products only (H @ v), 60 steps, full reorthogonalisation (twice, for stability)
    v = rng.standard_normal(1000)
    Q, alphas, betas = [v / np.linalg.norm(v)], [], []
    for j in range(60):
        w = H @ Q[j]
        alphas.append(Q[j] @ w)
        for _ in range(2):
            w = w - np.array(Q).T @ (np.array(Q) @ w)
        betas.append(np.linalg.norm(w))
        Q.append(w / betas[-1])
    T = np.diag(alphas) + np.diag(betas[:-1], 1) + np.diag(betas[:-1], -1)
    assert np.linalg.eigvalsh(T).min() == pytest.approx(-1.0, abs=1e-6)
    answer = bank.get("opt-local-minima-flashcard").spec["answer"]
    assert "**smallest** Hessian eigenvalue" in answer and "Lanczos" in answer
    assert "random directions points to a genuine minimum" not in answer


# ----------------------------------------------------------------------------- the attention topic


def _sdpa_grads(q, k, v, d_o, **options):
    leaves = [bp.tensor(a, requires_grad=True) for a in (q, k, v)]
    F.scaled_dot_product_attention(*leaves, **options).backward(d_o)
    return [leaf.grad for leaf in leaves]


def test_attn_scale_scores_of_unit_variance_entries_have_variance_d_k(bank):
    rng = np.random.default_rng(0)
    for d_k in (4, 64, 512):
        q, k = rng.standard_normal((20_000, d_k)), rng.standard_normal((20_000, d_k))
        scores = (bp.tensor(q) * bp.tensor(k)).sum(axis=1).data
        assert scores.var() == pytest.approx(d_k, rel=0.05)
        assert (scores / np.sqrt(d_k)).var() == pytest.approx(1.0, rel=0.05)
    assert np.sqrt(512) == pytest.approx(23, abs=0.5)
    assert "\\sqrt{512} \\approx 23" in bank.get("attn-unscaled-gradients").explanation
    assert "has mean 0 and variance $d_k$" in bank.get("attn-scale-flashcard").spec["answer"]


def test_attn_unscaled_scores_saturate_most_rows_and_starve_their_gradient(bank):
    """d_k = 512, 16 positions, 20 draws: without the scale about 70% of the rows have a weight above 0.99 (none
    with it), and the median row's gradient at its scores is hundreds of times smaller; V still gets its gradient."""
    rng = np.random.default_rng(0)
    T, d_k = 16, 512
    saturated, row_grad, dv = {}, {}, {}
    for scale in (1 / np.sqrt(d_k), 1.0):
        saturated[scale], row_grad[scale], dv[scale] = [], [], []
        for _ in range(20):
            q, k, v, d_o = (rng.standard_normal(shape) for shape in ((T, d_k), (T, d_k), (T, 8), (T, 8)))
            scores = bp.tensor(q @ k.T * scale, requires_grad=True)
            eye = bp.tensor(np.eye(T))
            weights = F.scaled_dot_product_attention(scores, eye, eye, scale=1.0)  # the scores as queries: P itself
            weights.backward(rng.standard_normal((T, T)))
            saturated[scale].append(np.mean(weights.data.max(axis=1) > 0.99))
            row_grad[scale].append(np.median(np.linalg.norm(scores.grad, axis=1)))
            dv[scale].append(np.linalg.norm(_sdpa_grads(q, k, v, d_o, scale=scale)[2]))
    scaled, unscaled = 1 / np.sqrt(d_k), 1.0
    assert np.mean(saturated[scaled]) == 0.0 and 0.6 < np.mean(saturated[unscaled]) < 0.8
    assert np.median(row_grad[unscaled]) < np.median(row_grad[scaled]) / 100
    assert np.median(dv[unscaled]) > 0.5 * np.median(dv[scaled])  # dV = P^T dO does not vanish
    q_ = bank.get("attn-unscaled-gradients")
    assert key_text(q_).startswith("Most rows of $P$ become nearly one-hot")
    assert "about 70% of the rows have a weight above 0.99" in q_.spec["why"][0]
    assert "hundreds of times smaller" in q_.spec["why"][0]


def test_attn_masked_positions_get_exactly_zero_gradient(bank):
    """The score of a blocked key gets exactly 0, and a causal output has no gradient from later inputs."""
    rng = np.random.default_rng(0)
    T = 6
    scores = bp.tensor(rng.standard_normal((T, T)), requires_grad=True)
    eye = bp.tensor(np.eye(T))
    F.scaled_dot_product_attention(scores, eye, eye, is_causal=True, scale=1.0).backward(rng.standard_normal((T, T)))
    assert np.all(scores.grad[np.triu_indices(T, 1)] == 0.0)
    assert np.all(scores.grad[np.tril_indices(T)][1:] != 0.0)  # (0, 0) is 0 too: one visible key, weight always 1
    for i in range(T):
        x = bp.tensor(rng.standard_normal((T, 4)), requires_grad=True)
        out = F.scaled_dot_product_attention(x, x, x, is_causal=True)
        out[i].sum().backward()
        assert np.all(x.grad[i + 1 :] == 0.0) and np.any(x.grad[: i + 1] != 0.0)
    with bp.detect_anomaly():  # blocked scores hold the most negative finite number: no infinity anywhere
        x = bp.tensor(rng.standard_normal((T, 4)), requires_grad=True)
        F.scaled_dot_product_attention(x, x, x, is_causal=True).sum().backward()
    eye = bp.tensor(np.eye(2))
    with pytest.raises(ValueError, match="masked at every key"):
        F.scaled_dot_product_attention(eye, eye, eye, attn_mask=np.array([[True, True], [False, False]]))
    q = bank.get("attn-masked-gradient")
    assert key_text(q).startswith("Exactly 0")
    assert "most negative finite number" in q.explanation
    assert "only where a query row is masked at every key (bpcore refuses that with an error)" in q.spec["why"][2]
    assert "zero gradient with respect to the\ninputs after $i$" in bank.get("attn-causal-flashcard").spec["answer"]


def test_attn_softmax_ignores_a_shift_not_a_scale_and_ds_rows_sum_to_zero(bank):
    rng = np.random.default_rng(0)
    s = rng.standard_normal((4, 5))
    p = bp.tensor(s).softmax(axis=-1).data
    np.testing.assert_allclose(bp.tensor(s + 3.0).softmax(axis=-1).data, p, atol=1e-15)
    assert not np.allclose(bp.tensor(2 * s).softmax(axis=-1).data, p)
    np.testing.assert_allclose(p.sum(axis=1), 1.0)
    assert not np.allclose(p.sum(axis=0), 1.0)
    leaf = bp.tensor(s, requires_grad=True)
    leaf.softmax(axis=-1).backward(rng.standard_normal((4, 5)))
    np.testing.assert_allclose(leaf.grad.sum(axis=1), 0.0, atol=1e-15)
    assert bank.get("attn-softmax-axis-multi").spec["answers"] == ["a", "b"]


def test_attn_layernorm_gradient_is_orthogonal_to_constants_and_to_x_hat(bank):
    from bpcore.labs.attention import autodiff_layer_norm, layer_norm_backward

    rng = np.random.default_rng(0)
    for _ in range(10):
        x, gamma, dy = rng.standard_normal(4) * 2, rng.uniform(0.5, 2, 4), rng.standard_normal(4)
        for eps in (0.0, 1e-5):
            dx = autodiff_layer_norm(x, gamma, np.zeros(4), dy, eps=eps)["dx"]
            x_hat = layer_norm_backward(x, gamma, np.zeros(4), dy, eps=eps)["x_hat"]
            assert abs(dx.sum()) < 1e-12
            # exactly orthogonal to x_hat without eps; with it, off by about eps / var of the gradient's size
            assert abs(dx @ x_hat) < (1e-12 if eps == 0 else 1e-3 * np.linalg.norm(dx) * np.linalg.norm(x_hat))
    explanation = " ".join(bank.get("attn-layernorm-backward").explanation.split())
    assert "orthogonal to the constant vector and to $\\hat x$" in explanation
    assert "for $\\hat x$ up to the effect of $\\epsilon$" in explanation


def test_attn_self_attention_is_permutation_equivariant_without_a_mask(bank):
    rng = np.random.default_rng(0)
    x, order = rng.standard_normal((5, 4)), rng.permutation(5)
    out = F.scaled_dot_product_attention(bp.tensor(x), bp.tensor(x), bp.tensor(x)).data
    shuffled = F.scaled_dot_product_attention(bp.tensor(x[order]), bp.tensor(x[order]), bp.tensor(x[order])).data
    np.testing.assert_allclose(shuffled, out[order], atol=1e-12)
    assert "permutation-equivariant" in bank.get("attn-position-flashcard").spec["answer"]


def test_attn_kv_cache_step_equals_the_full_causal_pass(bank):
    """The new token's query against the cached keys and values gives the causal layer's last output."""
    rng = np.random.default_rng(0)
    q, k, v = (rng.standard_normal((7, 4)) for _ in range(3))
    full = F.scaled_dot_product_attention(bp.tensor(q), bp.tensor(k), bp.tensor(v), is_causal=True).data
    for t in range(7):
        step = F.scaled_dot_product_attention(bp.tensor(q[t : t + 1]), bp.tensor(k[: t + 1]), bp.tensor(v[: t + 1]))
        np.testing.assert_allclose(step.data[0], full[t], atol=1e-12)
    assert "no backward pass through it" in bank.get("attn-kv-cache-flashcard").spec["answer"]


def test_attn_multihead_has_the_parameters_of_one_full_width_head(bank):
    def count(heads):
        return sum(p.data.size for p in bp.nn.MultiheadAttention(16, heads).parameters())

    assert count(1) == count(2) == count(4) == count(8)
    assert "The parameters and the compute are about those of one full-width head" in " ".join(
        bank.get("attn-multihead-flashcard").spec["answer"].split()
    )


def test_attn_code_backward_without_the_rowsum_term_still_gets_dv_right(bank):
    from bpcore.quiz import functions

    reference = functions.REFERENCES["attention_backward"]
    rng = np.random.default_rng(0)
    for _ in range(5):
        q, k, v = reference.inputs(rng)
        d_o = rng.standard_normal((q.shape[0], v.shape[1]))
        right, wrong = reference.solution(q, k, v, d_o), reference.wrong(q, k, v, d_o)
        engine = _sdpa_grads(q, k, v, d_o)
        for mine, truth in zip(right, engine, strict=True):
            np.testing.assert_allclose(mine, truth, atol=1e-12)
        np.testing.assert_allclose(wrong[2], engine[2], atol=1e-12)
        assert not np.allclose(wrong[0], engine[0]) and not np.allclose(wrong[1], engine[1])
    assert "Dropping the rowsum term still gives the right\n`dV`" in bank.get("attn-code-backward").explanation


def test_attn_unscaled_total_dq_grows_while_the_median_row_shrinks(bank):
    """d_k = 512, 16 positions, 20 draws: without the scale about 30% of the rows get a larger dQ, which makes the
    total norm of dQ about 10 times larger, while the median row's dQ is tens of times smaller."""
    rng = np.random.default_rng(1)
    T, d_k = 16, 512
    total, rows, rows_scaled = [], [], []
    for _ in range(20):
        q, k, v, d_o = (rng.standard_normal(shape) for shape in ((T, d_k), (T, d_k), (T, 8), (T, 8)))
        scaled = _sdpa_grads(q, k, v, d_o, scale=1 / np.sqrt(d_k))[0]
        unscaled = _sdpa_grads(q, k, v, d_o, scale=1.0)[0]
        total.append(np.linalg.norm(unscaled) / np.linalg.norm(scaled))
        rows.extend(np.linalg.norm(unscaled, axis=1))
        rows_scaled.extend(np.linalg.norm(scaled, axis=1))
    rows, rows_scaled = np.array(rows), np.array(rows_scaled)
    assert 6 < np.median(total) < 15
    assert 10 < np.median(rows_scaled) / np.median(rows) < 200  # the median of all 320 rows
    assert 0.2 < np.mean(rows > rows_scaled) < 0.4
    q_ = bank.get("attn-unscaled-gradients")
    why = q_.spec["why"][1]
    assert "about 30% of them" in why and "about 10 times larger" in why and "tens of times smaller" in why
    explanation = " ".join(q_.explanation.split())
    assert "about 30% here" in explanation and "about 10 times larger" in explanation
    for text in (texts(q_), texts(bank.get("attn-scale-flashcard"))):
        flat = " ".join(text.split())
        assert "the few rows" not in flat and "rare rows" not in flat, "a third of the rows is neither few nor rare"
    flashcard = " ".join(bank.get("attn-scale-flashcard").spec["answer"].split())
    assert "total gradient norm larger, not smaller" in flashcard


def test_attn_bughunt_axis_finite_differences_of_the_buggy_code_flag_q_and_k_but_not_v(bank):
    """dV = P.T @ dO is right for the buggy forward's own P: only the engine (the true attention) catches dV."""
    from bpcore.gradcheck import numerical_gradient
    from bpcore.quiz.bughunts import SPECIMENS

    specimen = SPECIMENS["causal_attention"]
    inputs = specimen.inputs(np.random.default_rng(0))
    Q, K, V, d_o = (np.ascontiguousarray(inputs[n]) for n in ("Q", "K", "V", "dO"))
    T, d = Q.shape

    def buggy_loss():  # the listing's forward, lines 3 to 6, and its loss
        S = np.where(np.tril(np.ones((T, T))) > 0, Q @ K.T / np.sqrt(d), -np.inf)
        P = np.exp(S - S.max(axis=1, keepdims=True))
        return float(np.sum(d_o * (P / P.sum(axis=0, keepdims=True) @ V)))

    hand = specimen.buggy(Q, K, V, d_o)
    engine = dict(zip("QKV", _sdpa_grads(Q, K, V, d_o, is_causal=True), strict=True))
    for name, array in (("Q", Q), ("K", K), ("V", V)):
        numeric = numerical_gradient(buggy_loss, array, 1e-6)
        assert np.allclose(hand[name], numeric, atol=1e-6) == (name == "V"), name
        assert not np.allclose(hand[name], engine[name], atol=1e-6), name
    q = bank.get("attn-bughunt-axis")
    prompt = " ".join(q.prompt.split())
    assert "gradient check fails for `Q`, `K` and `V`" not in prompt
    assert "all differ from the engine's autodiff" in prompt
    assert "would flag only `Q` and `K`" in " ".join(q.explanation.split())


def test_attn_masked_row_ds_key_is_never_float_residue_of_an_exact_zero():
    """dP equal at the three visible keys makes dS exactly 0; such a draw must not reach the learner as 1e-17s."""
    generator = GENERATORS["masked_softmax_row_grad"]
    for seed in range(500):
        key = np.asarray(generator(seed).key)
        assert not 0 < np.abs(key).max() < 1e-9, f"seed {seed}: the key {key} is float residue of 0"


def test_attn_pre_ln_key_names_parameter_gradients_as_notebook_10_measures_them(bank):
    """Notebook 10 finds the gradients at the blocks' inputs level for pre- and post-LN alike, and post-LN's weight
    gradients growing towards the output with Xavier initialisation (Xiong et al., 2020); the question must say the
    large gradients near the output are the parameters', and its numbers must be the lab's."""
    import json
    from pathlib import Path

    from bpcore.labs import attention

    notebook = json.loads(
        (Path(__file__).resolve().parents[2] / "notebooks/10_attention_and_transformers.ipynb").read_text()
    )
    markdown = " ".join(
        " ".join("".join(c["source"]).split()) for c in notebook["cells"] if c["cell_type"] == "markdown"
    )
    assert "the gradient reaching each block's input is alike for pre- and post-LN here" in markdown
    q = bank.get("attn-pre-ln")
    key = " ".join(key_text(q).split())
    assert "the parameters near the output start out with large gradients" in key
    assert "stay similar across depth" not in key
    why = q.spec["why"][0]
    assert "about twice the first block's gradient, pre-LN's about 0.5-0.7 of it" in why
    for depth in (8, 16):
        post = attention.weight_gradient_profile(depth, norm_first=False, xavier=True)
        pre = attention.weight_gradient_profile(depth, norm_first=True, xavier=True)
        assert 1.5 < post[-1] / post[0] < 2.5, (depth, post[-1] / post[0])
        assert 0.45 < pre[-1] / pre[0] < 0.75, (depth, pre[-1] / pre[0])
