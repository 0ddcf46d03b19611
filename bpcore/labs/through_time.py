"""Notebook 06 (backprop through time): an RNN by hand, gradient reach, truncation, sequence tasks.

What it holds, and the claims the tests prove on its numbers (tests/labs/test_through_time.py):

* :func:`rnn_by_hand`: BPTT for a vanilla RNN over a few steps, every delta by name; equal to the
  engine's gradients and to finite differences.
* :func:`hidden_gradient_norms`, :func:`spectral_radius`: how far back ||dL/dh_t|| reaches. A
  vanilla RNN's shrinks step by step while an LSTM with forget bias 1 keeps far more over the same
  distance; the recurrent matrix's spectral radius says which way a linear RNN goes.
* :func:`truncated_gradient`, :func:`truncation_bias`, :func:`truncation_cost`: what truncated BPTT
  gives up (the gradient's error against full BPTT falls as k grows and is 0 at k = T) and what it
  saves (graph memory grows by the same bytes per extra step).
* :func:`train_adding`, :func:`train_forecaster`, :func:`train_char_model`: the adding problem (an
  LSTM beats the no-memory baseline), forecasting, and a character model whose loss starts at
  ln(vocabulary) and falls.

The training drivers themselves (bptt, tbptt, tbptt_chunks, train_stream) are engine: :mod:`bpcore.bptt`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from bpcore import bptt, data
from bpcore.bptt import _as_tensor, _norm, detach_state
from bpcore.labs import one_blas_thread
from bpcore.labs.three_layer import ManualPass
from bpcore.nn import RecurrentNet
from bpcore.nn import functional as F
from bpcore.nn.recurrent import init_forget_gate_bias_
from bpcore.optim import Adam
from bpcore.progress import progress_bar
from bpcore.random import manual_seed
from bpcore.tensor import Tensor, no_grad


@dataclass
class SequenceRun:
    model: RecurrentNet
    train_loss: list[float] = field(default_factory=list)
    test_curve: list[float] = field(default_factory=list)  # held-out metric at each checkpoint
    checkpoints: list[int] = field(default_factory=list)  # update numbers of those checkpoints
    baseline: float = float("nan")  # what a model without memory (or a naive rule) scores


def _test_mse(model, X, Y) -> float:
    with no_grad():
        prediction, _ = model(Tensor(X))
    return float(np.mean((prediction.data - Y) ** 2))


def _compiled_bptt_step(model, optimizer, clip_norm: float):
    """``step(X, Y) -> loss``: one full-BPTT update with an MSE loss, as :func:`bpcore.bptt.bptt` makes it
    (zero the gradients, forward, loss, backward, clip the global norm, step), replayed by ``bp.compile``:
    bitwise the same updates as ``bptt.bptt`` (tests/labs/test_through_time.py compares them), with far less
    Python per op. The gradient norms bptt also logs are not needed here."""
    from bpcore.compile import compile
    from bpcore.optim import clip_grad_norm_

    params = list(model.parameters())

    def step(inputs, targets):
        optimizer.zero_grad()
        output, _ = model(Tensor(inputs))
        loss = F.mse_loss(output, targets)
        loss.backward()
        clip_grad_norm_(params, clip_norm)
        optimizer.step()
        return loss.item()

    return compile(step)


@one_blas_thread
def train_adding(
    kind: str = "lstm",
    length: int = 20,
    updates: int = 500,
    hidden: int = 16,
    batch: int = 64,
    lr: float = 1e-2,
    seed: int = 0,
    every: int = 50,
    progress="auto",
) -> SequenceRun:
    """Train on the adding problem; the baseline is the MSE of always answering 1 (1/6 in theory).

    ``progress``: see :func:`bpcore.progress.progress_bar` (a bar in notebooks, none in tests).
    """
    X, Y = data.adding_problem(2000, length, seed=seed)
    X_test, Y_test = data.adding_problem(500, length, seed=seed + 1)
    manual_seed(seed)
    model = RecurrentNet(kind, 2, hidden, 1, last_only=True)
    if kind == "lstm":
        init_forget_gate_bias_(model.rnn, 1.0)
    optimizer = Adam(model.parameters(), lr=lr)
    rng = np.random.default_rng(seed)
    run = SequenceRun(model, baseline=float(np.mean((Y_test - 1.0) ** 2)))
    bar = progress_bar(updates, f"adding, {kind}", progress)
    step = _compiled_bptt_step(model, optimizer, clip_norm=1.0)
    for update in range(1, updates + 1):
        rows = rng.integers(0, len(X), batch)
        run.train_loss.append(step(X[rows], Y[rows]))
        if update % every == 0:
            run.checkpoints.append(update)
            run.test_curve.append(_test_mse(model, X_test, Y_test))
            bar.update(update, "updates")
    bar.close()
    return run


@one_blas_thread
def train_forecaster(
    kind: str = "gru",
    window: int = 24,
    epochs: int = 30,
    hidden: int = 16,
    seed: int = 0,
    length: int = 600,
    progress="auto",
) -> SequenceRun:
    """One-step-ahead forecasting of the seasonal series from its last ``window`` values.

    The first 80% of the series trains, the rest tests. The baseline is the seasonal naive rule
    (the value one period ago), which already knows the period, so beating it takes learning.
    ``progress``: see :func:`bpcore.progress.progress_bar`.
    """
    series = data.seasonal_series(length, period=24, trend=0.0, seed=seed)  # stationary: no extrapolation
    X, Y = data.forecasting_windows(series, window)
    split = int(0.8 * len(X))
    manual_seed(seed)
    model = RecurrentNet(kind, 1, hidden, 1, last_only=True)
    optimizer = Adam(model.parameters(), lr=1e-2)
    rng = np.random.default_rng(seed)
    run = SequenceRun(model, baseline=float(np.mean((X[split:, -24, 0] - Y[split:, 0]) ** 2)))
    bar = progress_bar(epochs, f"forecasting, {kind}", progress)
    step = _compiled_bptt_step(model, optimizer, clip_norm=1.0)
    for epoch in range(1, epochs + 1):
        for rows in np.array_split(rng.permutation(split), max(1, split // 32)):
            run.train_loss.append(step(X[rows], Y[rows]))
        run.checkpoints.append(epoch)
        run.test_curve.append(_test_mse(model, X[split:], Y[split:]))
        bar.update(epoch, "epochs")
    bar.close()
    return run


@dataclass
class CharRun:
    model: RecurrentNet
    text: data.CharText
    loss: list[float]
    samples: dict[float, str]  # temperature -> generated text


@one_blas_thread
def train_char_model(
    epochs: int = 5,
    hidden: int = 48,
    seq_len: int = 32,
    batch: int = 16,
    seed: int = 0,
    prompt: str = "MENENIUS:\n",
    sample_length: int = 200,
) -> CharRun:
    """A character-level LSTM trained statefully on the bundled text, then sampled at two temperatures."""
    text = data.char_text()
    manual_seed(seed)
    model = RecurrentNet("lstm", 16, hidden, text.vocab_size, vocab_size=text.vocab_size)
    optimizer = Adam(model.parameters(), lr=1e-2)

    def loss_fn(logits, targets):
        return F.cross_entropy(logits.reshape(-1, text.vocab_size), np.asarray(targets).reshape(-1))

    log = bptt.train_stream(model, text.ids, loss_fn, optimizer, batch, seq_len, epochs=epochs, clip_norm=5.0)
    samples = {t: bptt.sample_chars(model, text, prompt, sample_length, temperature=t, seed=seed) for t in (0.5, 1.0)}
    return CharRun(model, text, log.loss, samples)


def rnn_by_hand(xs, y, W, U, b, V) -> ManualPass:
    """A vanilla RNN over a few steps, differentiated by hand (backpropagation through time).

    h_t = tanh(W x_t + U h_{t-1} + b), h_0 = 0;   L = 1/2 ||V h_T - y||^2 (loss on the last step only).

    Backward, from t = T down to 1 (the same weights at every step, so their gradients add up):
        delta_T   = V^T (V h_T - y)                 dL/dh_T
        g_t       = delta_t * (1 - h_t^2)           through the tanh
        dL/dW    += outer(g_t, x_t);  dL/dU += outer(g_t, h_{t-1});  dL/db += g_t
        delta_t-1 = U^T g_t                          one step further back
    """
    xs = [np.asarray(x, dtype=np.float64) for x in xs]
    out = ManualPass()
    hs = [np.zeros(U.shape[0])]
    for t, x in enumerate(xs, start=1):
        hs.append(out.record(f"h{t}", np.tanh(W @ x + U @ hs[-1] + b), f"tanh(W x{t} + U h{t - 1} + b)"))
    error = V @ hs[-1] - y
    out.record("L", 0.5 * float(error @ error), "1/2 ||V h_T - y||^2")
    out.record("dL_dV", np.outer(error, hs[-1]), "outer(V h_T - y, h_T)")
    delta = out.record(f"delta{len(xs)}", V.T @ error, "V^T (V h_T - y)")
    dW, dU, db = np.zeros_like(W), np.zeros_like(U), np.zeros_like(b)
    for t in range(len(xs), 0, -1):
        g = delta * (1 - hs[t] ** 2)
        dW += np.outer(g, xs[t - 1])
        dU += np.outer(g, hs[t - 1])
        db += g
        if t > 1:
            delta = out.record(f"delta{t - 1}", U.T @ g, f"U^T (delta{t} * (1 - h{t}^2))")
    out.record("dL_dW", dW, "sum over t of outer(g_t, x_t)")
    out.record("dL_dU", dU, "sum over t of outer(g_t, h_{t-1})")
    out.record("dL_db", db, "sum over t of g_t")
    return out


def truncated_gradient(model, inputs, targets, loss_fn, k: int) -> np.ndarray:
    """The gradient of the whole-sequence loss when backprop is cut every k steps (no update made).

    k = T gives the full BPTT gradient. The sequence is run in chunks of k with the state detached
    between chunks, and every chunk's loss is backpropagated within its chunk only.
    """
    inputs, targets = _as_tensor(inputs), np.asarray(targets)
    params = list(model.parameters())
    model.zero_grad()
    state = None
    for start in range(0, inputs.shape[1], k):
        output, state = model(inputs[:, start : start + k], detach_state(state))
        loss_fn(output, targets[:, start : start + k]).backward()
    grad = _flat_grads(params)
    model.zero_grad()
    return grad


@dataclass
class TruncationBias:
    k: np.ndarray
    cosine: np.ndarray  # cosine similarity with the full gradient (1 = same direction)
    relative_error: np.ndarray  # ||g_k - g_full|| / ||g_full||


def truncation_bias(model, inputs, targets, loss_fn, ks) -> TruncationBias:
    """How far the truncated gradient is from the full one, for each truncation length in ``ks``."""
    full = truncated_gradient(model, inputs, targets, loss_fn, inputs.shape[1])
    cosines, errors = [], []
    for k in ks:
        g = truncated_gradient(model, inputs, targets, loss_fn, k)
        cosines.append(float(g @ full / (np.linalg.norm(g) * np.linalg.norm(full) + 1e-300)))
        errors.append(float(np.linalg.norm(g - full) / np.linalg.norm(full)))
    return TruncationBias(np.asarray(ks), np.array(cosines), np.array(errors))


@dataclass
class TruncationCost:
    k: np.ndarray
    seconds: np.ndarray  # wall time of one pass over the sequence (forward and backward), per k
    graph_bytes: np.ndarray  # bytes of values held by the largest graph alive at once, per k


def truncation_cost(model, inputs, targets, loss_fn, ks, repeats: int = 3) -> TruncationCost:
    """What truncation saves: time per pass and the memory that backward needs, for each k.

    Memory is counted exactly: the bytes of every tensor in one chunk's graph (what must be kept
    until that chunk's backward), which grows linearly with k. Time is measured (best of ``repeats``).
    """
    import time

    from bpcore.tensor import topological_order

    inputs, targets = _as_tensor(inputs), np.asarray(targets)
    seconds, sizes = [], []
    for k in ks:
        best = float("inf")
        for _ in range(repeats):
            t0 = time.perf_counter()
            truncated_gradient(model, inputs, targets, loss_fn, k)
            best = min(best, time.perf_counter() - t0)
        output, _ = model(inputs[:, :k])
        graph = topological_order(loss_fn(output, targets[:, :k]), every_tensor=True)
        sizes.append(sum(t.data.nbytes for t in graph if t.op is not None))
        seconds.append(best)
    model.zero_grad()
    return TruncationCost(np.asarray(ks), np.array(seconds), np.array(sizes))


def hidden_gradient_norms(model, inputs, targets, loss_fn) -> np.ndarray:
    """||dL/dh_t|| for t = 1..T after one backward pass (no update): how far back the signal reaches."""
    layer = getattr(model, "rnn", model)
    layer.keep_states = True
    try:
        model.zero_grad()
        output, _ = model(_as_tensor(inputs))
        loss_fn(output, targets).backward()
        norms = np.array([_norm(h.grad) for h in layer.hidden_states])
    finally:
        layer.keep_states = False
        model.zero_grad()
    return norms


def spectral_radius(matrix) -> float:
    """Largest |eigenvalue|: for a linear RNN h_t = W h_{t-1}, gradients shrink like rho^t if rho < 1
    and grow like rho^t if rho > 1."""
    return float(np.max(np.abs(np.linalg.eigvals(np.asarray(matrix)))))




def _flat_grads(params) -> np.ndarray:
    return np.concatenate([(p.grad if p.grad is not None else np.zeros_like(p.data)).ravel() for p in params])
