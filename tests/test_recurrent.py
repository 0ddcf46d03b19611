"""Recurrent layers and backpropagation through time.

Cells are checked against their equations written here in numpy and against finite differences;
TBPTT is checked against full BPTT (k1 = k2 = T), against a hand-written detach-and-chunk loop, and
against its definition update by update.
"""

import itertools

import numpy as np
import pytest

import bpcore as bp
from bpcore import bptt

F = bp.nn.functional
N, I, H = 2, 3, 4


def rand(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def assert_gradcheck(fn, *inputs):
    report = bp.gradcheck(fn, *inputs)
    assert report, str(report)


# ---------------------------------------------------------------- cells against their equations


def test_rnn_cell_equation_and_names():
    cell = bp.nn.RNNCell(I, H)
    assert [n for n, _ in cell.named_parameters()] == ["weight_ih", "weight_hh", "bias_ih", "bias_hh"]
    x, h = rand(N, I), rand(N, H, seed=1)
    W_ih, W_hh, b_ih, b_hh = (p.data for p in cell.parameters())
    expected = np.tanh(x @ W_ih.T + b_ih + h @ W_hh.T + b_hh)
    np.testing.assert_allclose(cell(bp.tensor(x), bp.tensor(h)).data, expected, rtol=1e-13)
    relu_cell = bp.nn.RNNCell(I, H, nonlinearity="relu")
    W_ih, W_hh, b_ih, b_hh = (p.data for p in relu_cell.parameters())
    np.testing.assert_allclose(
        relu_cell(bp.tensor(x), bp.tensor(h)).data, np.maximum(x @ W_ih.T + b_ih + h @ W_hh.T + b_hh, 0)
    )


def test_lstm_cell_equations_in_pytorch_gate_order():
    cell = bp.nn.LSTMCell(I, H)
    x, h, c = rand(N, I), rand(N, H, seed=1), rand(N, H, seed=2)
    W_ih, W_hh, b_ih, b_hh = (p.data for p in cell.parameters())
    assert W_ih.shape == (4 * H, I) and W_hh.shape == (4 * H, H)
    z = x @ W_ih.T + b_ih + h @ W_hh.T + b_hh
    i, f, g, o = sigmoid(z[:, :H]), sigmoid(z[:, H : 2 * H]), np.tanh(z[:, 2 * H : 3 * H]), sigmoid(z[:, 3 * H :])
    c_new = f * c + i * g
    h_new, c_out = cell(bp.tensor(x), (bp.tensor(h), bp.tensor(c)))
    np.testing.assert_allclose(c_out.data, c_new, rtol=1e-13)
    np.testing.assert_allclose(h_new.data, o * np.tanh(c_new), rtol=1e-13)


def test_gru_cell_equations_in_pytorch_gate_order():
    cell = bp.nn.GRUCell(I, H)
    x, h = rand(N, I), rand(N, H, seed=1)
    W_ih, W_hh, b_ih, b_hh = (p.data for p in cell.parameters())
    gi, gh = x @ W_ih.T + b_ih, h @ W_hh.T + b_hh
    r, z = sigmoid(gi[:, :H] + gh[:, :H]), sigmoid(gi[:, H : 2 * H] + gh[:, H : 2 * H])
    n = np.tanh(gi[:, 2 * H :] + r * gh[:, 2 * H :])
    np.testing.assert_allclose(cell(bp.tensor(x), bp.tensor(h)).data, (1 - z) * n + z * h, rtol=1e-13)


def test_default_init_is_uniform_in_one_over_sqrt_hidden():
    layer = bp.nn.LSTM(10, 64)
    bound = 1 / np.sqrt(64)
    for _, p in layer.named_parameters():
        assert np.abs(p.data).max() <= bound and np.abs(p.data).max() > 0.9 * bound


# ---------------------------------------------------------------- gradients by finite differences


def _cell_fn(cell_cls, n_state):
    cell = cell_cls(I, H)
    names = [n for n, _ in cell.named_parameters()]

    def fn(x, *rest):
        states, params = rest[:n_state], rest[n_state:]
        for name, p in zip(names, params, strict=True):
            object.__setattr__(cell, name, p)
        state = states[0] if n_state == 1 else tuple(states)
        out = cell(x, state)
        return out[0] * 1.3 + out[1] if isinstance(out, tuple) else out

    return fn, [p.data.copy() for p in cell.parameters()]


@pytest.mark.parametrize("cell_cls, n_state", [(bp.nn.RNNCell, 1), (bp.nn.LSTMCell, 2), (bp.nn.GRUCell, 1)])
def test_cells_pass_gradcheck(cell_cls, n_state):
    fn, params = _cell_fn(cell_cls, n_state)
    states = [rand(N, H, seed=s) for s in range(1, n_state + 1)]
    assert_gradcheck(fn, rand(N, I), *states, *params)


@pytest.mark.parametrize("layer_cls", [bp.nn.RNN, bp.nn.LSTM, bp.nn.GRU])
def test_sequence_layers_pass_gradcheck(layer_cls):
    layer = layer_cls(I, H, num_layers=2)
    names = [n for n, _ in layer.named_parameters()]

    def fn(x, h0, *params):
        for name, p in zip(names, params, strict=True):
            object.__setattr__(layer, name, p)
        state = (h0, h0 * 0.5) if layer_cls is bp.nn.LSTM else h0
        output, new_state = layer(x, state)
        last = new_state[1] if isinstance(new_state, tuple) else new_state
        return output.sum(axis=1) + last.sum(axis=0)

    params = [p.data.copy() for p in layer.parameters()]
    assert_gradcheck(fn, rand(N, 3, I), rand(2, N, H, seed=5), *params)


# ---------------------------------------------------------------- the fused LSTM cell


@pytest.mark.parametrize("bias", [True, False])
def test_lstm_cell_primitive_passes_gradcheck(bias):
    from bpcore.nn.recurrent import lstm_cell

    rows = 4 * H
    inputs = [rand(N, I), rand(2, N, H, seed=1), rand(rows, I, seed=2) * 0.5, rand(rows, seed=3),
              rand(rows, H, seed=4) * 0.5, rand(rows, seed=5)]
    if bias:
        report = bp.gradcheck(lambda *a: lstm_cell(*a) * bp.tensor(rand(2, N, H, seed=6)), *inputs, localize=True)
    else:
        x, state, w_ih, _, w_hh, _ = inputs
        report = bp.gradcheck(lambda x, s, wi, wh: lstm_cell(x, s, wi, None, wh, None), x, state, w_ih, w_hh)
    assert report, str(report)
    sequence = rand(N, 3, I, seed=7)  # step=t: the cell reads x[:, t] of a whole sequence
    report = bp.gradcheck(lambda x, *rest: lstm_cell(x, *rest, step=1), sequence, *inputs[1:])
    assert report, str(report)


def _lstm_as_ops(layer, x, state=None):
    """The LSTM layer written out with ``lstm_step`` (17 engine ops a step): the reference the fused cell keeps."""
    from bpcore.nn.recurrent import lstm_step

    steps = x.shape[1]
    h0, c0 = state if state is not None else (None, None)
    inputs, kept, last = [x[:, t] for t in range(steps)], [], []
    for layer_index in range(layer.num_layers):
        w_ih, w_hh, b_ih, b_hh = layer._layer_weights(layer_index)
        zeros = bp.Tensor(np.zeros((x.shape[0], layer.hidden_size), x.dtype))
        hc = (zeros, zeros) if h0 is None else (h0[layer_index], c0[layer_index])
        outputs = []
        for x_t in inputs:
            hc = lstm_step(F.linear(x_t, w_ih, b_ih), hc, w_hh, b_hh)
            outputs.append(hc[0])
        inputs, kept = outputs, outputs
        last.append(hc)
    return bp.stack(inputs, axis=1), (bp.stack([h for h, _ in last]), bp.stack([c for _, c in last])), kept


def test_lstm_layer_records_one_cell_op_per_step():
    layer = bp.nn.LSTM(I, H)
    output, _ = layer(bp.tensor(rand(N, 7, I)))
    from_array, _ = layer(rand(N, 7, I))  # a plain array is a constant input, as before
    assert from_array.data.tobytes() == output.data.tobytes()
    from bpcore.tensor import topological_order

    ops = [node.op for node in topological_order(output) if node.op is not None]
    assert ops.count("lstm_cell") == 7
    assert len(ops) == 7 + 2  # the cells, the stack of their states and the h part taken out of it
    assert "sigmoid" not in ops and "linear" not in ops


@pytest.mark.parametrize("layer_cls", [bp.nn.LSTM, bp.nn.GRU])
def test_cells_send_the_sequence_the_gradient_of_their_step_alone(layer_cls):
    """Each cell's gradient for the (N, T, input) sequence is a SliceGrad of its step (N, input), which backward
    adds into one (N, T, input) array, not a full array of zeros per step."""
    from bpcore.tensor import SliceGrad, topological_order, vjp_edges, vjp_of

    x = bp.tensor(rand(N, 5, I), requires_grad=True)
    output, _ = layer_cls(I, H)(x)
    cells = [node for node in topological_order(output) if node.op in ("lstm_cell", "gru_cell")]
    assert len(cells) == 5
    for node in cells:
        (index,) = [i for i, inp, _, _ in vjp_edges(node) if inp is x]
        d_x = vjp_of(node, index)(np.ones(node.shape))
        assert type(d_x) is SliceGrad and d_x.value.shape == (N, I), \
            f"expected a SliceGrad of shape {(N, I)}, got {d_x!r}"
        assert d_x.index == (slice(None), node._static["step"])
    output.sum().backward()
    assert x.grad.shape == x.shape


@pytest.mark.parametrize("bias", [True, False])
def test_gru_cell_primitive_passes_gradcheck(bias):
    from bpcore.nn.recurrent import gru_cell

    rows = 3 * H
    x, h = rand(N, I), rand(N, H, seed=1)
    w_ih, b_ih = rand(rows, I, seed=2) * 0.5, rand(rows, seed=3)
    w_hh, b_hh = rand(rows, H, seed=4) * 0.5, rand(rows, seed=5)
    if bias:
        report = bp.gradcheck(lambda x, h, *p: gru_cell(x, h, h, *p), x, h, w_ih, b_ih, w_hh, b_hh, localize=True)
    else:
        report = bp.gradcheck(lambda x, h, wi, wh: gru_cell(x, h, h, wi, None, wh, None), x, h, w_ih, w_hh)
    assert report, str(report)
    sequence = rand(N, 3, I, seed=7)
    report = bp.gradcheck(lambda x, h, *p: gru_cell(x, h, h, *p, step=2), sequence, h, w_ih, b_ih, w_hh, b_hh)
    assert report, str(report)


def _gru_as_ops(layer, x, h0=None):
    from bpcore.nn.recurrent import gru_step

    inputs, last = [x[:, t] for t in range(x.shape[1])], []
    for layer_index in range(layer.num_layers):
        w_ih, w_hh, b_ih, b_hh = layer._layer_weights(layer_index)
        h = bp.Tensor(np.zeros((x.shape[0], layer.hidden_size), x.dtype)) if h0 is None else h0[layer_index]
        outputs = []
        for x_t in inputs:
            h = gru_step(F.linear(x_t, w_ih, b_ih), h, w_hh, b_hh)
            outputs.append(h)
        inputs = outputs
        last.append(h)
    return bp.stack(inputs, axis=1), bp.stack(last), inputs


# each layer: its class, the same layer written as ops, and the initial state made from h0
LAYERS_AS_OPS = {
    "lstm": (bp.nn.LSTM, _lstm_as_ops, lambda h0: (h0, h0 * 0.5)),
    "gru": (bp.nn.GRU, _gru_as_ops, lambda h0: h0),
}


@pytest.mark.parametrize("kind", sorted(LAYERS_AS_OPS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("num_layers, with_state, keep_states", [(1, False, False), (2, True, False), (2, True, True)])
def test_fused_layer_is_bit_for_bit_the_step_written_as_ops(kind, dtype, num_layers, with_state, keep_states):
    layer_cls, as_ops, make_state = LAYERS_AS_OPS[kind]
    layer = layer_cls(I, H, num_layers=num_layers, rng=np.random.default_rng(0)).to(dtype)
    layer.keep_states = keep_states
    weight = bp.tensor(rand(N, 5, H, seed=9).astype(dtype))
    results = []
    for fused in (True, False):
        x = bp.tensor(rand(N, 5, I).astype(dtype), requires_grad=True)
        h0 = bp.tensor(rand(num_layers, N, H, seed=1).astype(dtype), requires_grad=True)
        state = make_state(h0) if with_state else None
        if fused:
            output, final = layer(x, state)
            kept = layer.hidden_states
        else:
            output, final, kept = as_ops(layer, x, state)
            for h in kept:
                h.retain_grad()
        final = final if isinstance(final, tuple) else (final,)  # LSTM: (h_n, c_n); GRU: h_n
        *summed, squared = final
        loss = (output * weight).sum() + (squared * squared).sum()
        for s in summed:
            loss = loss + s.sum()
        loss.backward()
        arrays = [output.data, *(s.data for s in final), x.grad, *(p.grad for p in layer.parameters())]
        arrays += [h0.grad] if with_state else []
        arrays += [h.grad for h in kept] if keep_states else []
        results.append(arrays)
        layer.zero_grad()
    for fused, ops in zip(*results, strict=True):
        assert fused.dtype == ops.dtype and fused.tobytes() == ops.tobytes()


def test_gru_layer_records_one_cell_op_per_step():
    from bpcore.tensor import topological_order

    output, _ = bp.nn.GRU(I, H)(bp.tensor(rand(N, 6, I)))
    ops = [node.op for node in topological_order(output) if node.op is not None]
    assert ops.count("gru_cell") == 6 and len(ops) == 6 + 1  # the cells and the stack of their outputs


def test_lstm_cell_backward_twice_and_through_a_hook():
    cell = bp.nn.LSTMCell(I, H, rng=np.random.default_rng(0))
    x = bp.tensor(rand(N, I), requires_grad=True)
    h, c = cell(x, (bp.tensor(rand(N, H, seed=1)), bp.tensor(rand(N, H, seed=2))))
    loss = (h * h).sum() + c.sum()
    loss.backward()
    once = [p.grad.copy() for p in cell.parameters()] + [x.grad.copy()]
    loss.backward()  # the same graph again: the same gradients again, added
    for first, p in zip(once, [*cell.parameters(), x], strict=True):
        np.testing.assert_array_equal(p.grad, 2 * first)
    cell.zero_grad()
    x.grad = None
    h, c = cell(x, None)
    h.register_hook(lambda g: 3 * g)  # the gradient reaching the cell is replaced: what its VJPs see
    (h.sum() + c.sum()).backward()
    tripled = [p.grad.copy() for p in cell.parameters()]
    cell.zero_grad()
    h, c = cell(x, None)
    (3 * h.sum() + c.sum()).backward()
    for a, p in zip(tripled, cell.parameters(), strict=True):
        np.testing.assert_allclose(a, p.grad, rtol=1e-12)


def test_sequence_layer_is_the_cell_applied_step_by_step():
    layer, cell = bp.nn.GRU(I, H), bp.nn.GRUCell(I, H)
    for name, p in cell.named_parameters():
        p.data[...] = getattr(layer, f"{name}_l0").data
    x = rand(N, 5, I)
    output, h_n = layer(bp.tensor(x))
    h = None
    for t in range(5):
        h = cell(bp.tensor(x[:, t]), h)
        np.testing.assert_allclose(output.data[:, t], h.data, rtol=1e-13)
    np.testing.assert_allclose(h_n.data[0], h.data)


def test_time_major_layout_and_shape_errors():
    layer = bp.nn.RNN(I, H, batch_first=False)
    x = rand(5, N, I)  # (T, N, input)
    out_tm, _ = layer(bp.tensor(x))
    layer.batch_first = True
    out_bf, _ = layer(bp.tensor(x.transpose(1, 0, 2)))
    np.testing.assert_allclose(out_tm.data, out_bf.data.transpose(1, 0, 2))
    with pytest.raises(bp.ShapeError, match=r"input=3.*\(2, 5, 7\)"):
        layer(bp.tensor(rand(2, 5, 7)))
    with pytest.raises(bp.ShapeError, match=r"\(N, 3\)"):
        bp.nn.LSTMCell(I, H)(bp.tensor(rand(2, 5)))
    with pytest.raises(ValueError, match="nonlinearity"):
        bp.nn.RNN(I, H, nonlinearity="sigmoid")


# ---------------------------------------------------------------- BPTT drivers


def make_model(kind, seed=1, out=2):
    bp.manual_seed(seed)
    return bp.nn.RecurrentNet(kind, I, H, out)


def sequence(T=8, seed=0):
    return rand(N, T, I, seed=seed), rand(N, T, 2, seed=seed + 100)


def max_param_diff(a, b):
    return max(float(np.abs(p.data - q.data).max()) for p, q in zip(a.parameters(), b.parameters(), strict=True))


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
def test_tbptt_with_k1_equal_k2_equal_T_is_full_bptt(kind):
    X, Y = sequence(T=8)
    full, truncated = make_model(kind), make_model(kind)
    log_full = bptt.bptt(full, X, Y, F.mse_loss, bp.optim.SGD(full.parameters(), lr=0.5))
    log_trunc = bptt.tbptt(truncated, X, Y, F.mse_loss, bp.optim.SGD(truncated.parameters(), lr=0.5), k1=8, k2=8)
    assert log_trunc.updates == 1
    assert log_full.loss[0] == pytest.approx(log_trunc.loss[0], rel=1e-12)
    assert max_param_diff(full, truncated) < 1e-12


@pytest.mark.parametrize("kind", ["rnn", "lstm"])
def test_tbptt_k_k_matches_a_hand_written_detach_and_chunk_loop(kind):
    X, Y = sequence(T=9)
    driver, by_hand, full = make_model(kind), make_model(kind), make_model(kind)
    bptt.tbptt(driver, X, Y, F.mse_loss, bp.optim.SGD(driver.parameters(), lr=0.3), k1=3, k2=3)
    optimizer = bp.optim.SGD(by_hand.parameters(), lr=0.3)
    state = None
    for start in (0, 3, 6):  # the loop a learner would write
        optimizer.zero_grad()
        if state is not None:
            state = tuple(s.detach() for s in state) if isinstance(state, tuple) else state.detach()
        output, state = by_hand(bp.tensor(X[:, start : start + 3]), state)
        F.mse_loss(output, Y[:, start : start + 3]).backward()
        optimizer.step()
    assert max_param_diff(driver, by_hand) < 1e-12
    bptt.bptt(full, X, Y, F.mse_loss, bp.optim.SGD(full.parameters(), lr=0.3))
    assert max_param_diff(driver, full) > 1e-3  # truncation changes the result
    chunked = make_model(kind)
    bptt.tbptt_chunks(chunked, X, Y, F.mse_loss, bp.optim.SGD(chunked.parameters(), lr=0.3), k=3)
    assert max_param_diff(chunked, by_hand) < 1e-12


class RecordingSGD(bp.optim.SGD):
    """lr = 0 keeps the weights fixed, so each update's gradient can be compared with its definition."""

    def __init__(self, params):
        super().__init__(params, lr=0.0)
        self.recorded = []

    def step(self):
        self.recorded.append([p.grad.copy() for p in self.param_groups[0]["params"]])
        super().step()


@pytest.mark.parametrize("kind", ["rnn", "lstm"])
def test_tbptt_k1_less_than_k2_follows_its_definition(kind):
    """Update at step t: the loss of outputs t-k1+1..t, backpropagated through steps t-k2+1..t only."""
    k1, k2, T = 2, 3, 8
    X, Y = sequence(T=T, seed=3)
    model = make_model(kind)
    optimizer = RecordingSGD(model.parameters())
    bptt.tbptt(model, X, Y, F.mse_loss, optimizer, k1=k1, k2=k2)
    assert len(optimizer.recorded) == T // k1
    for update, t in enumerate(range(k1 - 1, T, k1)):
        model.zero_grad()
        window_start = max(0, t - k2 + 1)
        state = None
        if window_start > 0:  # run up to the window without a graph, then cut
            with bp.no_grad():
                _, state = model(bp.tensor(X[:, :window_start]))
        output, _ = model(bp.tensor(X[:, window_start : t + 1]), state)
        F.mse_loss(output[:, -k1:], Y[:, t - k1 + 1 : t + 1]).backward()
        for recorded, p in zip(optimizer.recorded[update], model.parameters(), strict=True):
            np.testing.assert_allclose(recorded, p.grad, rtol=1e-10, atol=1e-13)


def test_tbptt_rejects_k1_greater_than_k2():
    model = make_model("rnn")
    with pytest.raises(ValueError, match="k1 <= k2"):
        bptt.tbptt(model, *sequence(), F.mse_loss, bp.optim.SGD(model.parameters()), k1=4, k2=2)


def test_clipping_bounds_the_norm_and_keeps_the_history():
    X, Y = sequence(T=6)
    Y = Y * 100  # large errors, large gradients
    model = make_model("rnn")
    log = bptt.tbptt_chunks(model, X, Y, F.mse_loss, bp.optim.SGD(model.parameters(), lr=0.01), k=2, clip_norm=1.0)
    assert max(log.grad_norm) > 10
    assert all(after <= 1.0 + 1e-6 for after in log.clipped_norm)
    model = make_model("rnn")
    log = bptt.bptt(model, X, Y, F.mse_loss, bp.optim.SGD(model.parameters(), lr=0.01), clip_value=0.01)
    assert log.clipped_norm[0] < log.grad_norm[0]
    assert all(np.abs(p.grad).max() <= 0.01 for p in model.parameters())


# ---------------------------------------------------------------- gradients through time




def test_bptt_records_hidden_gradient_norms():
    X, Y = sequence(T=5)
    model = make_model("gru")
    log = bptt.bptt(model, X, Y, F.mse_loss, bp.optim.SGD(model.parameters(), lr=0.0), track_hidden=True)
    assert log.hidden_grad_norms[0].shape == (5,) and np.all(log.hidden_grad_norms[0] > 0)
    assert not model.rnn.keep_states  # switched off again


def test_lstm_solves_the_adding_problem():
    """Baseline (always answer 1.0): MSE 1/6 ~ 0.167. The LSTM must get below 0.02 on held-out data."""
    X, Y = bp.data.adding_problem(2000, 20, seed=0)
    X_test, Y_test = bp.data.adding_problem(500, 20, seed=1)
    bp.manual_seed(0)
    model = bp.nn.RecurrentNet("lstm", 2, 16, 1, last_only=True)
    optimizer = bp.optim.Adam(model.parameters(), lr=1e-2)
    rng = np.random.default_rng(0)
    for _ in range(450):
        batch = rng.integers(0, len(X), 64)
        bptt.bptt(model, X[batch], Y[batch], F.mse_loss, optimizer, clip_norm=1.0)
    with bp.no_grad():
        prediction, _ = model(bp.tensor(X_test))
    assert float(np.mean((prediction.data - Y_test) ** 2)) < 0.02






# ---------------------------------------------------------------- streams and the character model


def test_stream_batches_continue_each_row():
    ids = np.arange(101)
    chunks = list(bptt.stream_batches(ids, batch_size=4, seq_len=5))
    assert len(chunks) == 5 and chunks[0][0].shape == (4, 5)
    for (x0, y0), (x1, _) in itertools.pairwise(chunks):
        np.testing.assert_array_equal(x1[:, 0], x0[:, -1] + 1)  # row b picks up where it stopped
        np.testing.assert_array_equal(y0, x0 + 1)  # the target is the next token
    with pytest.raises(ValueError, match="too short"):
        list(bptt.stream_batches(np.arange(10), batch_size=4, seq_len=5))


def test_character_model_learns_and_samples():
    text = bp.data.char_text()
    assert text.vocab_size < 80 and len(text.text) > 10_000
    ids = text.ids[:3000]
    bp.manual_seed(0)
    model = bp.nn.RecurrentNet("lstm", 16, 48, text.vocab_size, vocab_size=text.vocab_size)

    def loss_fn(logits, targets):
        return F.cross_entropy(logits.reshape(-1, text.vocab_size), np.asarray(targets).reshape(-1))

    log = bptt.train_stream(
        model,
        ids,
        loss_fn,
        bp.optim.Adam(model.parameters(), lr=1e-2),
        batch_size=8,
        seq_len=25,
        epochs=2,
        clip_norm=5.0,
    )
    first, last = np.mean(log.loss[:3]), np.mean(log.loss[-3:])
    assert first == pytest.approx(np.log(text.vocab_size), rel=0.1)  # starts as a uniform guess
    assert last < 0.8 * first
    sample = bptt.sample_chars(model, text, "First Citizen:\n", length=60, temperature=0.8, seed=1)
    assert sample.startswith("First Citizen:\n") and len(sample) == 15 + 60
    assert set(sample) <= set(text.alphabet)
    assert sample == bptt.sample_chars(model, text, "First Citizen:\n", length=60, temperature=0.8, seed=1)


# ---------------------------------------------------------------- sequence data


def test_adding_problem_targets_are_the_marked_sums():
    X, y = bp.data.adding_problem(50, 16, seed=3)
    assert X.shape == (50, 16, 2) and y.shape == (50, 1)
    assert np.all(X[:, :, 1].sum(axis=1) == 2)
    assert np.all(X[:, :8, 1].sum(axis=1) == 1)  # one marker in each half
    np.testing.assert_allclose(y[:, 0], (X[:, :, 0] * X[:, :, 1]).sum(axis=1))


def test_copy_task_asks_for_the_symbols_back_after_the_delay():
    X, y = bp.data.copy_task(10, symbols=3, length=4, delay=5, seed=0)
    assert X.shape == (10, 14, 5) and y.shape == (10, 14)
    tokens = X.argmax(axis=2)
    np.testing.assert_array_equal(y[:, -4:], tokens[:, :4])
    assert np.all(tokens[:, 9] == 4) and np.all(y[:, :-4] == 0)


def test_seasonal_series_and_windows():
    series = bp.data.seasonal_series(200, period=24, noise=0.0, trend=0.0)
    np.testing.assert_allclose(series[:176], series[24:], atol=1e-12)  # exactly periodic without noise
    X, y = bp.data.forecasting_windows(series, window=10, horizon=2)
    assert X.shape == (189, 10, 1) and y.shape == (189, 2)
    np.testing.assert_array_equal(y[0], series[10:12])






@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_fused_cells_backward_again_with_the_same_gradient_array_changed_in_place(kind):
    # the cells share their gate gradients between their VJPs, found by the identity of dL/d(output): a
    # second backward from the same array, changed in between, must not be given the first pass's gradients
    from bpcore.nn.recurrent import gru_cell, lstm_cell

    x = bp.tensor(rand(N, I), requires_grad=True)
    if kind == "lstm":
        cell = bp.nn.LSTMCell(I, H, rng=np.random.default_rng(0))
        out = lstm_cell(x, bp.tensor(rand(2, N, H, seed=1)), cell.weight_ih, cell.bias_ih, cell.weight_hh,
                        cell.bias_hh)
    else:
        cell = bp.nn.GRUCell(I, H, rng=np.random.default_rng(0))
        h = bp.tensor(rand(N, H, seed=1))
        out = gru_cell(x, h, h, cell.weight_ih, cell.bias_ih, cell.weight_hh, cell.bias_hh)
    seed = rand(*out.shape, seed=2)
    out.backward(seed)
    first = [p.grad.copy() for p in cell.parameters()] + [x.grad.copy()]
    cell.zero_grad()
    x.grad = None
    seed *= 2  # the same array, other numbers
    out.backward(seed)
    for name, once, p in zip([n for n, _ in cell.named_parameters()] + ["x"], first, [*cell.parameters(), x],
                             strict=True):
        np.testing.assert_allclose(p.grad, 2 * once, rtol=1e-12, err_msg=(
            f"{kind}_cell: d{name} from a seed doubled in place should be twice the first one"))
