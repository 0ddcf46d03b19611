"""Notebook 06's lab: BPTT by hand, how far gradients reach, what truncation costs, the sequence tasks."""

import numpy as np
import pytest

import bpcore as bp
from bpcore.labs import through_time as st
from bpcore.nn.recurrent import init_forget_gate_bias_

F = bp.nn.functional


def make_model(kind, seed=1):
    bp.manual_seed(seed)
    return bp.nn.RecurrentNet(kind, 3, 4, 2)


def sequence(T, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((2, T, 3)), np.random.default_rng(seed + 100).standard_normal((2, T, 2))


def test_lstm_beats_a_vanilla_rnn_on_the_adding_problem():
    lstm = st.train_adding("lstm", length=20, updates=500)
    rnn = st.train_adding("rnn", length=20, updates=500)
    assert 0.15 < lstm.baseline < 0.2  # always answering 1: about 1/6
    assert lstm.test_curve[-1] < 0.01  # the LSTM solves it
    assert rnn.test_curve[-1] > 2 * lstm.test_curve[-1]  # the RNN, same budget, lags behind


def test_forecaster_beats_the_seasonal_naive_rule():
    run = st.train_forecaster("gru", epochs=30)
    assert run.test_curve[-1] < 0.75 * run.baseline
    assert run.test_curve[-1] > 0.03  # and cannot beat the noise (variance 0.04) by much


def eager_adding(kind, length=20, updates=30, hidden=16, batch=64, lr=1e-2, seed=0, every=10):
    """train_adding as an eager bptt.bptt loop, update by update: the numbers its replayed step must give."""
    X, Y = bp.data.adding_problem(2000, length, seed=seed)
    X_test, Y_test = bp.data.adding_problem(500, length, seed=seed + 1)
    bp.manual_seed(seed)
    model = bp.nn.RecurrentNet(kind, 2, hidden, 1, last_only=True)
    if kind == "lstm":
        init_forget_gate_bias_(model.rnn, 1.0)
    optimizer = bp.optim.Adam(model.parameters(), lr=lr)
    rng, losses, curve = np.random.default_rng(seed), [], []
    for update in range(1, updates + 1):
        rows = rng.integers(0, len(X), batch)
        losses.append(bp.bptt.bptt(model, X[rows], Y[rows], F.mse_loss, optimizer, clip_norm=1.0).loss[-1])
        if update % every == 0:
            curve.append(st._test_mse(model, X_test, Y_test))
    return losses, curve


@pytest.mark.parametrize("kind", ["lstm", "rnn", "gru"])
def test_adding_runs_are_the_eager_bptt_updates_bit_for_bit(kind, replayed):
    run = st.train_adding(kind, updates=30, every=10, progress=False)
    replayed.check()
    losses, curve = eager_adding(kind)
    assert run.train_loss == losses and run.test_curve == curve


def test_forecaster_run_is_the_eager_bptt_updates_bit_for_bit(replayed):
    run = st.train_forecaster("gru", epochs=2, progress=False)
    replayed.check(signatures=2)  # batches of 32 and 33 rows
    series = bp.data.seasonal_series(600, period=24, trend=0.0, seed=0)
    X, Y = bp.data.forecasting_windows(series, 24)
    split = int(0.8 * len(X))
    bp.manual_seed(0)
    model = bp.nn.RecurrentNet("gru", 1, 16, 1, last_only=True)
    optimizer = bp.optim.Adam(model.parameters(), lr=1e-2)
    rng, losses, curve = np.random.default_rng(0), [], []
    for _epoch in range(2):
        for rows in np.array_split(rng.permutation(split), max(1, split // 32)):
            losses.append(bp.bptt.bptt(model, X[rows], Y[rows], F.mse_loss, optimizer, clip_norm=1.0).loss[-1])
        curve.append(st._test_mse(model, X[split:], Y[split:]))
    assert run.train_loss == losses and run.test_curve == curve


class RecordingBar:
    """A progress display that keeps what it was told."""

    def __init__(self, total, description):
        self.total, self.description, self.updates, self.closed = total, description, [], False

    def update(self, done, text=""):
        self.updates.append(done)

    def close(self):
        self.closed = True


def test_long_runs_report_progress_to_the_display_they_are_given():
    bars = []
    run = st.train_forecaster(
        "gru", epochs=3, progress=lambda total, text: bars.append(RecordingBar(total, text)) or bars[-1]
    )
    (bar,) = bars
    assert (bar.total, bar.description, bar.updates, bar.closed) == (3, "forecasting, gru", [1, 2, 3], True)
    assert run.checkpoints == [1, 2, 3]


def test_character_model_learns_and_writes_from_its_alphabet():
    run = st.train_char_model(epochs=3)
    assert run.loss[0] > 3.5 and np.mean(run.loss[-5:]) < 2.6
    for sample in run.samples.values():
        assert sample.startswith("MENENIUS:\n") and set(sample) <= set(run.text.alphabet)


def test_vanilla_rnn_gradient_fades_with_distance_and_lstm_keeps_it():
    X, Y = bp.data.adding_problem(32, 60, seed=0)
    bp.manual_seed(0)
    rnn = bp.nn.RecurrentNet("rnn", 2, 16, 1, last_only=True)
    rnn_norms = st.hidden_gradient_norms(rnn, X, Y, F.mse_loss)
    assert rnn_norms.shape == (60,)
    assert rnn_norms[0] / rnn_norms[-1] < 1e-6  # 60 steps back: a millionth of the signal or less
    assert np.all(np.diff(np.log(rnn_norms[-30:])) > 0)  # shrinking step by step going back
    bp.manual_seed(0)
    lstm = bp.nn.RecurrentNet("lstm", 2, 16, 1, last_only=True)
    init_forget_gate_bias_(lstm.rnn, 1.0)
    lstm_norms = st.hidden_gradient_norms(lstm, X, Y, F.mse_loss)
    assert (lstm_norms[0] / lstm_norms[-1]) > 1e6 * (rnn_norms[0] / rnn_norms[-1])


def test_spectral_radius_is_the_largest_eigenvalue_magnitude():
    rng = np.random.default_rng(0)
    Q, _ = np.linalg.qr(rng.standard_normal((6, 6)))  # orthogonal: every |eigenvalue| is 1
    for rho in (0.8, 1.2):
        assert st.spectral_radius(rho * Q) == pytest.approx(rho)


def test_truncation_bias_shrinks_as_k_grows():
    X, Y = sequence(T=12, seed=4)
    model = make_model("rnn")
    bias = st.truncation_bias(model, X, Y, F.mse_loss, ks=[1, 2, 4, 12])
    assert bias.cosine[-1] == pytest.approx(1.0) and bias.relative_error[-1] == pytest.approx(0.0, abs=1e-12)
    assert bias.relative_error[0] > bias.relative_error[2] > 0
    assert all(p.grad is None for p in model.parameters())  # analysis leaves no gradients behind


def test_truncation_cost_memory_grows_linearly_with_k():
    X, Y = sequence(T=12, seed=6)
    model = make_model("lstm")
    cost = st.truncation_cost(model, X, Y, F.mse_loss, ks=[2, 4, 8], repeats=1)
    per_step = np.diff(cost.graph_bytes) / np.diff(cost.k)
    assert per_step[0] == pytest.approx(per_step[1])  # the same bytes for every extra step kept
    assert cost.graph_bytes[2] > 3 * cost.graph_bytes[0]
    assert np.all(cost.seconds > 0)


def test_rnn_unrolled_by_hand_equals_the_engine():
    rng = np.random.default_rng(7)
    W, U, b, V = rng.normal(size=(4, 2)), rng.normal(size=(4, 4)) * 0.5, rng.normal(size=4), rng.normal(size=(1, 4))
    xs, y = rng.normal(size=(3, 2)), np.array([0.3])
    by_hand = st.rnn_by_hand(xs, y, W, U, b, V)
    leaves = {k: bp.tensor(v, requires_grad=True) for k, v in dict(W=W, U=U, b=b, V=V).items()}
    h = bp.tensor(np.zeros(4))
    for x in xs:
        h = (leaves["W"] @ x + leaves["U"] @ h + leaves["b"]).tanh()
    err = leaves["V"] @ h - y
    (0.5 * (err * err).sum()).backward()
    assert by_hand.loss == pytest.approx(float(0.5 * (err.data**2).sum()), rel=1e-13)
    for name in ("W", "U", "b", "V"):
        np.testing.assert_allclose(by_hand.steps[f"dL_d{name}"], leaves[name].grad, rtol=1e-12, atol=1e-14)
    assert [k for k in by_hand.steps if k.startswith("delta")] == ["delta3", "delta2", "delta1"]
