"""Backpropagation through time (BPTT), full and truncated.

A recurrent model unrolled over T steps is a deep network with shared weights, so its gradient
is ordinary backprop on the unrolled graph: that is full BPTT. Its cost in memory grows with T
and its gradient passes through T Jacobians dh_t/dh_{t-1}, which is where it vanishes or explodes.

Truncated BPTT keeps the forward pass running over the whole sequence but limits how far back
each update looks. Williams and Peng's TBPTT(k1, k2): every k1 steps, backpropagate the errors of
those steps through the last k2 steps, then update; the hidden state carries forward, detached.
With k1 = k2 = k it is the familiar "split into chunks, carry the state, detach between chunks";
with k1 = k2 = T it is full BPTT.

Models follow one contract: ``model(x, state=None) -> (output, new_state)``, x shaped (N, T, ...),
output (N, T, ...), the state a tensor or a tuple of tensors.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np

from bpcore.ops import concat
from bpcore.optim import clip_grad_norm_, clip_grad_value_, grad_norm
from bpcore.tensor import Tensor


def detach_state(state):
    """Cut the graph behind a state (a tensor or a tuple of tensors): gradients stop here."""
    if state is None:
        return None
    if isinstance(state, tuple):
        return tuple(s.detach() for s in state)
    return state.detach()


def _as_leaf(state):
    """A detached copy that requires grad, so the gradient arriving at it can be read and passed on."""
    if isinstance(state, tuple):
        return tuple(_as_leaf(s) for s in state)
    return Tensor(state.data, requires_grad=True)


def _flatten(state) -> list[Tensor]:
    return list(state) if isinstance(state, tuple) else [state]


def _as_tensor(x) -> Tensor:
    return x if isinstance(x, Tensor) else Tensor(np.asarray(x))


@dataclass
class TrainLog:
    """What each update of a BPTT driver did: loss, gradient norm before and after clipping."""

    loss: list[float] = field(default_factory=list)
    grad_norm: list[float] = field(default_factory=list)
    clipped_norm: list[float] = field(default_factory=list)
    hidden_grad_norms: list[np.ndarray] = field(default_factory=list)  # ||dL/dh_t|| per step, when tracked
    state: object = None  # the (detached) state after the last step, to continue a stream

    @property
    def updates(self) -> int:
        return len(self.loss)


def _params(optimizer):
    return [p for group in optimizer.param_groups for p in group["params"]]


def _clip_and_step(optimizer, log: TrainLog, clip_norm, clip_value) -> None:
    params = _params(optimizer)
    before = grad_norm(params)
    if clip_norm is not None:
        clip_grad_norm_(params, clip_norm)
    if clip_value is not None:
        clip_grad_value_(params, clip_value)
    log.grad_norm.append(before)
    log.clipped_norm.append(grad_norm(params) if (clip_norm or clip_value) is not None else before)
    optimizer.step()


def bptt(model, inputs, targets, loss_fn, optimizer, state=None, clip_norm=None, clip_value=None,
         track_hidden: bool = False, log: TrainLog | None = None) -> TrainLog:
    """Full BPTT: forward over the whole sequence, one backward through every step, one update.

    With ``track_hidden`` (models with a recurrent layer ``model.rnn`` or ``model`` itself) the
    norms ||dL/dh_t|| for every step t are recorded: the picture of gradients fading (or growing)
    with distance in time.
    """
    log = log if log is not None else TrainLog()
    layer = getattr(model, "rnn", model)
    if track_hidden:
        layer.keep_states = True
    optimizer.zero_grad()
    try:
        output, new_state = model(_as_tensor(inputs), state)
        loss = loss_fn(output, targets)
        loss.backward()
    finally:
        if track_hidden:
            layer.keep_states = False
    if track_hidden:
        log.hidden_grad_norms.append(np.array([_norm(h.grad) for h in layer.hidden_states]))
    log.loss.append(float(loss.data))
    _clip_and_step(optimizer, log, clip_norm, clip_value)
    log.state = detach_state(new_state)
    return log


def _norm(grad) -> float:
    return 0.0 if grad is None else float(np.linalg.norm(grad))


def tbptt(model, inputs, targets, loss_fn, optimizer, k1: int, k2: int, state=None, clip_norm=None,
          clip_value=None, log: TrainLog | None = None) -> TrainLog:
    """Williams and Peng's TBPTT(k1, k2) over one sequence, one time step at a time.

    Every k1 steps: the loss of the last k1 outputs is backpropagated through the last k2 steps
    (k1 <= k2), then the optimizer steps. Each step's input state is a detached leaf; the gradient
    that arrives at it is handed on to the step before, for at most k2 steps. ``loss_fn(output,
    target)`` is called on the chunk of the last k1 outputs, shaped (N, k1, ...).
    """
    if not 1 <= k1 <= k2:
        raise ValueError(f"TBPTT needs 1 <= k1 <= k2, got k1={k1}, k2={k2}")
    inputs, targets = _as_tensor(inputs), np.asarray(targets.data if isinstance(targets, Tensor) else targets)
    steps = inputs.shape[1]
    log = log if log is not None else TrainLog()
    window: deque = deque(maxlen=k2)  # (input state leaf, output state) of the last k2 steps
    outputs: list[Tensor] = []
    for t in range(steps):
        leaf = None if state is None else _as_leaf(detach_state(state))
        output, state = model(inputs[:, t : t + 1], leaf)
        window.append((leaf, state))
        outputs.append(output)
        if (t + 1) % k1 == 0 or t == steps - 1:
            recent = outputs[-((t % k1) + 1) :]
            loss = loss_fn(concat(recent, axis=1), targets[:, t + 1 - len(recent) : t + 1])
            optimizer.zero_grad()
            for leaf_in, _ in window:  # fresh gradients at the window's state leaves
                for s in _flatten(leaf_in) if leaf_in is not None else []:
                    s.grad = None
            loss.backward()
            _send_back_through_window(window)
            log.loss.append(float(loss.data))
            _clip_and_step(optimizer, log, clip_norm, clip_value)
            outputs = []
    log.state = detach_state(state)
    return log


def _send_back_through_window(window: deque) -> None:
    """Pass the gradient at each step's input state on to the previous step's output state."""
    steps = list(window)
    for i in range(len(steps) - 1, 0, -1):
        leaf_in = steps[i][0]
        if leaf_in is None:  # the very first step started from the zero state: nothing before it
            continue
        previous_out = steps[i - 1][1]
        grads = [s.grad for s in _flatten(leaf_in)]
        if all(g is None for g in grads):
            continue
        # one backward for all parts of the state: d/d(out) of sum(out * grad) is grad
        total = None
        for out_part, g in zip(_flatten(previous_out), grads, strict=True):
            if g is not None:
                term = (out_part * g).sum()
                total = term if total is None else total + term
        total.backward()


def tbptt_chunks(model, inputs, targets, loss_fn, optimizer, k: int, state=None, clip_norm=None,
                 clip_value=None, log: TrainLog | None = None) -> TrainLog:
    """TBPTT(k, k) the usual way: chunks of k steps, state carried over and detached between them."""
    inputs, targets = _as_tensor(inputs), np.asarray(targets.data if isinstance(targets, Tensor) else targets)
    log = log if log is not None else TrainLog()
    for start in range(0, inputs.shape[1], k):
        optimizer.zero_grad()
        output, state = model(inputs[:, start : start + k], detach_state(state))
        loss = loss_fn(output, targets[:, start : start + k])
        loss.backward()
        log.loss.append(float(loss.data))
        _clip_and_step(optimizer, log, clip_norm, clip_value)
    log.state = detach_state(state)
    return log


def stream_batches(ids: np.ndarray, batch_size: int, seq_len: int):
    """Cut one long sequence into ``batch_size`` parallel streams, then into chunks of ``seq_len``.

    Row b of chunk j continues row b of chunk j - 1, so a model can carry its state from chunk to
    chunk (a stateful stream). Yields (x, y) with y the next token: both (batch_size, seq_len).
    """
    ids = np.asarray(ids)
    per_stream = (len(ids) - 1) // batch_size
    if per_stream < seq_len:
        raise ValueError(f"a text of {len(ids)} tokens is too short for {batch_size} streams of {seq_len}")
    x = ids[: per_stream * batch_size].reshape(batch_size, per_stream)
    y = ids[1 : per_stream * batch_size + 1].reshape(batch_size, per_stream)
    for start in range(0, per_stream - seq_len + 1, seq_len):
        yield x[:, start : start + seq_len], y[:, start : start + seq_len]


def train_stream(model, ids, loss_fn, optimizer, batch_size: int, seq_len: int, epochs: int = 1,
                 clip_norm=None, progress=None) -> TrainLog:
    """Stateful training over a long token sequence: chunks in order, state detached between them."""
    log = TrainLog()
    chunks = sum(1 for _ in stream_batches(ids, batch_size, seq_len)) * epochs
    done = 0
    for _ in range(epochs):
        state = None
        for x, y in stream_batches(ids, batch_size, seq_len):
            tbptt_chunks(model, x, y, loss_fn, optimizer, seq_len, state=state, clip_norm=clip_norm, log=log)
            state = log.state
            done += 1
            if progress is not None:
                progress(done, chunks, log.loss[-1])
    return log


def sample_chars(model, text, prompt: str, length: int = 200, temperature: float = 1.0, seed: int = 0) -> str:
    """Generate ``length`` characters from a character-level model, after reading ``prompt``.

    ``text`` is the :class:`bpcore.data.CharText` the model was trained on. Each next character is
    drawn from softmax(logits / temperature): low temperatures are cautious, high ones adventurous.
    """
    from bpcore.tensor import no_grad

    rng = np.random.default_rng(seed)
    ids = list(text.encode(prompt))
    was_training = model.training
    model.eval()
    with no_grad():
        logits, state = model(Tensor(np.array([ids])), None)
        for _ in range(length):
            scores = logits.data[0, -1] / temperature
            probs = np.exp(scores - scores.max())
            probs /= probs.sum()
            ids.append(int(rng.choice(len(probs), p=probs)))
            logits, state = model(Tensor(np.array([[ids[-1]]])), state)
    model.train(was_training)
    return text.decode(ids)
