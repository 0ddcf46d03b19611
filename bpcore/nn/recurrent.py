"""Recurrent layers: RNN, LSTM and GRU cells and sequence layers, with PyTorch's names and gate order.

Every step is built from engine ops, so unrolling a sequence builds a real graph: backpropagation
through time is nothing but ``backward()`` on it. Shapes (batch_first=True):

    x (N, T, input_size)  ->  output (N, T, hidden_size),  h_n (num_layers, N, hidden_size)

The three update rules (x_t the input, h the previous hidden state, sigma the sigmoid):

    RNN:   h' = tanh(W_ih x + b_ih + W_hh h + b_hh)
    LSTM:  i, f, g, o = sigma(.), sigma(.), tanh(.), sigma(.) of (W_ih x + b_ih + W_hh h + b_hh), in that order
           c' = f * c + i * g;   h' = o * tanh(c')
    GRU:   r, z = sigma(.) of (W_i{r,z} x + b_i{r,z} + W_h{r,z} h + b_h{r,z})
           n = tanh(W_in x + b_in + r * (W_hn h + b_hn));   h' = (1 - z) * n + z * h

The LSTM's cell state c is updated by addition (c' = f * c + ...), so dc'/dc = f: a gate the
network can hold near 1, which is why gradients survive many more steps than through the RNN's
repeated tanh(W_hh .).
"""

from __future__ import annotations

import math
import weakref

import numpy as np

from bpcore.nn import functional as F
from bpcore.nn import init
from bpcore.nn.layers import Embedding, Linear
from bpcore.nn.module import Module, Parameter
from bpcore.ops import primitive, stack
from bpcore.tensor import ShapeError, SliceGrad, Tensor

GATES = {"rnn": 1, "lstm": 4, "gru": 3}


# ----------------------------------------------------------------------------- one time step


# Each step takes ``xw = W_ih x + b_ih``, the input's contribution, and adds the recurrent part.


def rnn_step(xw, h, w_hh, b_hh, nonlinearity="tanh"):
    pre = xw + F.linear(h, w_hh, b_hh)
    return pre.tanh() if nonlinearity == "tanh" else pre.relu()


def lstm_step(xw, state, w_hh, b_hh):
    """The LSTM step written as engine ops, one op per line of the update rule (what :func:`lstm_cell`
    computes as one primitive, with the same numpy operations in the same order)."""
    h, c = state
    gates = xw + F.linear(h, w_hh, b_hh)
    n = h.shape[-1]
    i = gates[:, 0:n].sigmoid()  # input gate: how much of the candidate to write
    f = gates[:, n : 2 * n].sigmoid()  # forget gate: how much of the old cell to keep
    g = gates[:, 2 * n : 3 * n].tanh()  # candidate values
    o = gates[:, 3 * n : 4 * n].sigmoid()  # output gate: how much of the cell to show
    c_new = f * c + i * g
    return o * c_new.tanh(), c_new


def _affine(a, w, b):
    """``a @ w.T + b`` (no bias when ``b`` is None), as ``F.linear`` computes it."""
    y = a @ w.T
    return y if b is None else y + b


def _sigmoid(z):
    return 0.5 * (1 + np.tanh(0.5 * z))  # as ops.sigmoid computes it


def _shared(memo, grad, who):
    """The gradients ``memo`` keeps for ``grad`` if VJP ``who`` has not read them yet (else None).

    A VJP asking twice for the same ``grad`` object means another backward pass: the array may have been
    changed in place since (``y.backward(g); g *= 2; y.backward(g)``), so the gradients are worked out again.
    """
    ref = memo.get("grad")
    if ref is not None and ref() is grad and who not in memo["read"]:
        memo["read"].add(who)
        return memo["grads"]
    return None


def _keep(memo, grad, who, grads):
    memo["grad"], memo["read"], memo["grads"] = weakref.ref(grad, lambda _: memo.clear()), {who}, grads
    return grads


def _lstm_gate_grads(grad, who, memo, x, h, c, w_ih, w_hh, i, f, g, o, tc, *_):
    """(d gates, dc, d gates summed over the batch) from dL/d(h', c'): shared by the six VJPs of one lstm_cell node.

    The first VJP that backward calls with ``grad`` works them out, the others (``who``: which one asks)
    reuse them; they are let go when ``grad`` is, so a graph kept after backward holds no gradient.
    """
    shared = _shared(memo, grad, who)
    if shared is not None:
        return shared
    dh, dc = grad[0], grad[1]
    dc = dc + dh * o * (1 - tc * tc)
    d_gates = np.concatenate((dc * g * i * (1 - i), dc * c * f * (1 - f), dc * i * (1 - g * g), dh * tc * o * (1 - o)),
                             axis=1)
    return _keep(memo, grad, who, (d_gates, dc, d_gates.sum(axis=0)))


def _input_grad(d_x, step):
    """A cell's gradient for its input: ``d_x`` itself, or with ``step=t`` (the cell read ``x[:, t]`` of the
    whole sequence) the gradient of that slice alone, which backward adds into the sequence's in place."""
    return d_x if step is None else SliceGrad((slice(None), step), d_x)


def _lstm_d_x(grad, *saved):
    return _input_grad(_lstm_gate_grads(grad, 0, *saved)[0] @ saved[4], saved[12])  # d x = d gates @ W_ih


def _lstm_d_state(grad, *saved):
    d_gates, dc, _ = _lstm_gate_grads(grad, 1, *saved)
    w_hh, f = saved[5], saved[7]
    if not d_gates.dtype == dc.dtype == w_hh.dtype == f.dtype:
        return np.stack((d_gates @ w_hh, dc * f))
    d_state = np.empty((2, *dc.shape), dc.dtype)
    np.matmul(d_gates, w_hh, out=d_state[0])  # d h = d gates @ W_hh
    np.multiply(dc, f, out=d_state[1])  # d c = dc * f
    return d_state


@primitive(
    "lstm_cell",
    vjps=(
        _lstm_d_x,
        _lstm_d_state,
        lambda grad, *saved: _lstm_gate_grads(grad, 2, *saved)[0].T @ saved[1],  # d W_ih = d gates^T x
        lambda grad, *saved: _lstm_gate_grads(grad, 3, *saved)[2],  # d b_ih = d gates summed over the batch
        lambda grad, *saved: _lstm_gate_grads(grad, 4, *saved)[0].T @ saved[2],  # d W_hh = d gates^T h
        lambda grad, *saved: _lstm_gate_grads(grad, 5, *saved)[2],  # d b_hh: the same array (backward copies it)
    ),
)
def lstm_cell(x, state, w_ih, b_ih, w_hh, b_hh, step=None):
    """One LSTM step as one primitive: ``state`` is h and c stacked, shape (2, N, hidden), and so is the result.

    ``x`` is the step's input (N, input), or with ``step=t`` the whole sequence (N, T, input), of which the
    cell reads ``x[:, t]`` (the sequence layer does that: one op a step, no slice op before it).

    The forward runs ``lstm_step(F.linear(x, w_ih, b_ih), (h, c), w_hh, b_hh)``'s numpy operations in the
    same order; the VJPs are the chain rule through them written out, with the four gate gradients side
    by side in one (N, 4 hidden) array::

        dc = dc' + dh' * o * (1 - tanh(c')^2)
        d[i, f, g, o] = [dc g i (1 - i),  dc c f (1 - f),  dc i (1 - g^2),  dh' tanh(c') o (1 - o)]

    then ``d x = d gates @ W_ih``, ``d h = d gates @ W_hh``, ``d c = dc * f``, ``d W = d gates^T (x or h)``
    and ``d b = sum over the batch of d gates``, as through ``F.linear``. It keeps for backward what
    the hand-written numpy step keeps (the gates, tanh(c') and the inputs), not the pre-activations.
    """
    sequence = x
    if step is not None:
        x = sequence[:, step]
    h, c = state[0], state[1]
    xw, lin = _affine(x, w_ih, b_ih), _affine(h, w_hh, b_hh)
    gates = xw + lin
    del xw, lin
    n = h.shape[-1]
    i = _sigmoid(gates[:, 0:n])
    f = _sigmoid(gates[:, n : 2 * n])
    g = np.tanh(gates[:, 2 * n : 3 * n])
    o = _sigmoid(gates[:, 3 * n : 4 * n])
    del gates
    shape = f.shape if f.shape == c.shape else np.broadcast_shapes(f.shape, c.shape)  # (the call costs ~8 us)
    out = np.empty((2, *shape), f.dtype if f.dtype == c.dtype else np.result_type(f, c))
    np.multiply(f, c, out=out[1])
    out[1] += i * g  # c' = f * c + i * g
    tc = np.tanh(out[1])
    np.multiply(o, tc, out=out[0])  # h' = o * tanh(c')
    return out, ({}, x, h, c, w_ih, w_hh, i, f, g, o, tc, sequence, step)


def gru_step(xw, h, w_hh, b_hh):
    """The GRU step written as engine ops (what :func:`gru_cell` computes as one primitive)."""
    gh = F.linear(h, w_hh, b_hh)
    n = h.shape[-1]
    r = (xw[:, 0:n] + gh[:, 0:n]).sigmoid()  # reset gate
    z = (xw[:, n : 2 * n] + gh[:, n : 2 * n]).sigmoid()  # update gate
    candidate = (xw[:, 2 * n :] + r * gh[:, 2 * n :]).tanh()
    return (1 - z) * candidate + z * h


def _gru_grads(grad, who, memo, x, h, w_ih, w_hh, r, z, cand, one_minus_z, gh_n, *_):
    """(d xw, d gh, dL/dh through the z * h term) from dL/dh': shared by the VJPs of one gru_cell node
    (``who``: which one asks, as for the LSTM's)."""
    shared = _shared(memo, grad, who)
    if shared is not None:
        return shared
    d_cand_pre = grad * one_minus_z * (1 - cand * cand)  # through (1 - z) * n and n = tanh(.)
    dz = grad * h + -(grad * cand)  # through z * h and through 1 - z
    d_z_pre = dz * z * (1 - z)
    d_r_pre = d_cand_pre * gh_n * r * (1 - r)  # through r * (W_hn h + b_hn)
    d_xw = np.concatenate((d_r_pre, d_z_pre, d_cand_pre), axis=1)
    d_gh = np.concatenate((d_r_pre, d_z_pre, d_cand_pre * r), axis=1)
    return _keep(memo, grad, who, (d_xw, d_gh, d_xw.sum(axis=0), d_gh.sum(axis=0)))


def _gru_d_x(grad, *saved):
    return _input_grad(_gru_grads(grad, 0, *saved)[0] @ saved[3], saved[12])  # d x = d xw @ W_ih


@primitive(
    "gru_cell",
    vjps=(
        _gru_d_x,
        lambda grad, *saved: grad * saved[6],  # d h through z * h: dh' * z
        lambda grad, *saved: _gru_grads(grad, 2, *saved)[1] @ saved[4],  # d h through W_hh h: d gh @ W_hh
        lambda grad, *saved: _gru_grads(grad, 3, *saved)[0].T @ saved[1],  # d W_ih = d xw^T x
        lambda grad, *saved: _gru_grads(grad, 4, *saved)[2],
        lambda grad, *saved: _gru_grads(grad, 5, *saved)[1].T @ saved[2],  # d W_hh = d gh^T h
        lambda grad, *saved: _gru_grads(grad, 6, *saved)[3],
    ),
)
def gru_cell(x, h, h_again, w_ih, b_ih, w_hh, b_hh, step=None):
    """One GRU step as one primitive: ``gru_step(F.linear(x, w_ih, b_ih), h, w_hh, b_hh)``'s numpy operations
    in the same order, and the chain rule through them written out::

        d n_pre = dh' (1 - z) (1 - n^2);   dz = dh' h - dh' n;   d z_pre = dz z (1 - z)
        d r_pre = d n_pre (W_hn h + b_hn) r (1 - r)
        d xw = [d r_pre, d z_pre, d n_pre];   d gh = [d r_pre, d z_pre, d n_pre r]

    ``h`` comes twice (pass the same tensor as ``h`` and ``h_again``): once as it is mixed in by z, once as
    the input of W_hh, so its two gradients reach it one after the other, added in the order the step
    written as ops adds them. ``step=t``: ``x`` is the whole (N, T, input) sequence and the cell reads x[:, t].
    """
    sequence = x
    if step is not None:
        x = sequence[:, step]
    xw, gh = _affine(x, w_ih, b_ih), _affine(h_again, w_hh, b_hh)
    n = h.shape[-1]
    r = _sigmoid(xw[:, 0:n] + gh[:, 0:n])  # reset gate
    z = _sigmoid(xw[:, n : 2 * n] + gh[:, n : 2 * n])  # update gate
    gh_n = gh[:, 2 * n :]
    cand = np.tanh(xw[:, 2 * n :] + r * gh_n)
    del xw
    one_minus_z = 1 - z
    return one_minus_z * cand + z * h, ({}, x, h, w_ih, w_hh, r, z, cand, one_minus_z, gh_n, None, sequence, step)


def _init_uniform(module: Module, hidden_size: int, rng) -> None:
    """PyTorch's default for recurrent weights and biases: U(-1/sqrt(hidden), 1/sqrt(hidden))."""
    bound = 1 / math.sqrt(hidden_size)
    for param in module.parameters():
        init.uniform_(param, -bound, bound, rng=rng)


def _zeros(batch: int, hidden: int, like: Tensor) -> Tensor:
    return Tensor(np.zeros((batch, hidden), dtype=like.dtype))


# ----------------------------------------------------------------------------- cells


class _Cell(Module):
    kind = "rnn"

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, rng=None):
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        rows = GATES[self.kind] * hidden_size
        self.weight_ih = Parameter(np.zeros((rows, input_size)))
        self.weight_hh = Parameter(np.zeros((rows, hidden_size)))
        self.bias_ih = Parameter(np.zeros(rows)) if bias else None
        self.bias_hh = Parameter(np.zeros(rows)) if bias else None
        _init_uniform(self, hidden_size, rng)

    def _check(self, x):
        if x.ndim != 2 or x.shape[1] != self.input_size:
            raise ShapeError(
                f"{type(self).__name__}({self.input_size}, {self.hidden_size}) expects input of shape "
                f"(N, {self.input_size}), got {x.shape}"
            )

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}"


class RNNCell(_Cell):
    """One step of a vanilla RNN: h' = tanh(x W_ih^T + b_ih + h W_hh^T + b_hh). x (N, in), h (N, hidden)."""

    def __init__(self, input_size, hidden_size, bias=True, nonlinearity="tanh", rng=None):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        super().__init__(input_size, hidden_size, bias, rng)
        self.nonlinearity = nonlinearity

    def forward(self, x, h=None):
        self._check(x)
        h = _zeros(x.shape[0], self.hidden_size, x) if h is None else h
        return rnn_step(F.linear(x, self.weight_ih, self.bias_ih), h, self.weight_hh, self.bias_hh, self.nonlinearity)


class LSTMCell(_Cell):
    """One LSTM step. forward(x, (h, c)) -> (h', c'); gates stacked in PyTorch's order i, f, g, o."""

    kind = "lstm"

    def forward(self, x, state=None):
        self._check(x)
        if state is None:
            both = Tensor(np.zeros((2, x.shape[0], self.hidden_size), dtype=x.dtype))
        else:
            both = stack(list(state))
        hc = lstm_cell(x, both, self.weight_ih, self.bias_ih, self.weight_hh, self.bias_hh)
        return hc[0], hc[1]


class GRUCell(_Cell):
    """One GRU step. forward(x, h) -> h'; gates stacked in PyTorch's order r, z, n."""

    kind = "gru"

    def forward(self, x, h=None):
        self._check(x)
        h = _zeros(x.shape[0], self.hidden_size, x) if h is None else h
        return gru_cell(x, h, h, self.weight_ih, self.bias_ih, self.weight_hh, self.bias_hh)


# ----------------------------------------------------------------------------- sequence layers


def _steps(inputs) -> list:
    """(input, settings) for each step of a fused cell: the whole sequence with ``step=t`` (each cell reads
    its step of it, no slice op), or each input of a list as it is."""
    if isinstance(inputs, Tensor):
        return [(inputs, {"step": t}) for t in range(inputs.shape[1])]
    return [(x_t, {}) for x_t in inputs]


class _Recurrent(Module):
    """Unrolls a step function over time and over ``num_layers`` stacked layers.

    ``forward(x, state=None) -> (output, new_state)``, the contract every truncated-BPTT driver
    relies on. With ``keep_states = True`` the top layer's hidden states of the last call are kept
    in ``hidden_states`` (with ``retain_grad``), so ||dL/dh_t|| can be read after backward.
    """

    kind = "rnn"

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=True, rng=None):
        super().__init__()
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.batch_first = batch_first
        self.keep_states = False
        self.hidden_states: list[Tensor] = []
        rows = GATES[self.kind] * hidden_size
        for layer in range(num_layers):
            fan_in = input_size if layer == 0 else hidden_size
            setattr(self, f"weight_ih_l{layer}", Parameter(np.zeros((rows, fan_in))))
            setattr(self, f"weight_hh_l{layer}", Parameter(np.zeros((rows, hidden_size))))
            setattr(self, f"bias_ih_l{layer}", Parameter(np.zeros(rows)) if bias else None)
            setattr(self, f"bias_hh_l{layer}", Parameter(np.zeros(rows)) if bias else None)
        _init_uniform(self, hidden_size, rng)

    def _layer_weights(self, layer):
        return tuple(getattr(self, f"{name}_l{layer}") for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))

    def _step(self, xw, state, w_hh, b_hh):
        raise NotImplementedError

    def _initial_state(self, batch, like):
        return _zeros(batch, self.hidden_size, like)

    def _split_state(self, state, batch, like):
        """The per-layer states from the (num_layers, N, hidden) form (zeros when None)."""
        if state is None:
            return [self._initial_state(batch, like) for _ in range(self.num_layers)]
        return [state[layer] for layer in range(self.num_layers)]

    def _join_state(self, states):
        return stack(states, axis=0)

    def forward(self, x, state=None):
        if x.ndim != 3 or x.shape[2] != self.input_size:
            order = "(N, T, input)" if self.batch_first else "(T, N, input)"
            raise ShapeError(
                f"{type(self).__name__} expects input of shape {order} with input={self.input_size}, got {x.shape}"
            )
        if not isinstance(x, Tensor):  # (a plain array is read as a constant input)
            x = Tensor(np.asarray(x))
        if not self.batch_first:
            x = x.transpose(0, 1)
        batch = x.shape[0]
        states = self._split_state(state, batch, x)
        layer_input = x  # layer 0 reads the (N, T, input) sequence; the layers above, the list of h_t below them
        for layer in range(self.num_layers):
            top = layer == self.num_layers - 1
            kept = top and self.keep_states
            layer_input, states[layer] = self._unroll(
                layer_input, states[layer], self._layer_weights(layer), as_sequence=top and not kept, kept=kept
            )
        if self.keep_states:
            self.hidden_states = layer_input
            for h in layer_input:
                if h.requires_grad:
                    h.retain_grad()
            output = stack(layer_input, axis=1)
        else:
            output = layer_input
        if not self.batch_first:
            output = output.transpose(0, 1)
        return output, self._join_state(states)

    def _unroll(self, inputs, state, weights, as_sequence: bool, kept: bool):
        """One layer over the time steps: (its outputs, its last state). ``inputs`` is the (N, T, input) sequence
        or a list of (N, input) tensors. The outputs are a list of (N, hidden) tensors, or with ``as_sequence``
        one (N, T, hidden) tensor; ``kept``: each output is the very tensor the next step reads, so its retained
        ``.grad`` is the whole dL/dh_t."""
        w_ih, w_hh, b_ih, b_hh = weights
        if isinstance(inputs, Tensor):
            inputs = [inputs[:, t] for t in range(inputs.shape[1])]
        outputs = []
        for x_t in inputs:
            state = self._step(F.linear(x_t, w_ih, b_ih), state, w_hh, b_hh)
            outputs.append(state)
        return (stack(outputs, axis=1) if as_sequence else outputs), state

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}, num_layers={self.num_layers}"


class RNN(_Recurrent):
    """Vanilla (Elman) RNN over a sequence; ``nonlinearity`` "tanh" (default) or "relu"."""

    def __init__(self, input_size, hidden_size, num_layers=1, nonlinearity="tanh", bias=True, batch_first=True,
                 rng=None):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, rng)
        self.nonlinearity = nonlinearity

    def _step(self, xw, h, w_hh, b_hh):
        return rnn_step(xw, h, w_hh, b_hh, self.nonlinearity)


class LSTM(_Recurrent):
    """LSTM over a sequence. The state is a pair (h, c), each (num_layers, N, hidden).

    Inside, each step is one :func:`lstm_cell` op on h and c stacked, (2, N, hidden): one op a step
    where the same step written as ops takes 17.
    """

    kind = "lstm"

    def _split_state(self, state, batch, like):
        if state is None:
            zeros = np.zeros((2, batch, self.hidden_size), dtype=like.dtype)
            return [Tensor(zeros) for _ in range(self.num_layers)]
        h, c = state
        both = stack([h, c], axis=1)  # (num_layers, 2, N, hidden)
        return [both[layer] for layer in range(self.num_layers)]

    def _join_state(self, states):
        both = stack(states, axis=1)  # (2, num_layers, N, hidden)
        return both[0], both[1]

    def _unroll(self, inputs, state, weights, as_sequence: bool, kept: bool):
        w_ih, w_hh, b_ih, b_hh = weights
        steps = _steps(inputs)
        if kept:  # h_t and c_t as tensors of their own, which the next step reads (stacked)
            outputs = []
            for x_t, at in steps:
                hc = lstm_cell(x_t, state, w_ih, b_ih, w_hh, b_hh, **at)
                h, c = hc[0], hc[1]
                outputs.append(h)
                state = stack([h, c])
            return outputs, state
        states = []
        for x_t, at in steps:
            state = lstm_cell(x_t, state, w_ih, b_ih, w_hh, b_hh, **at)
            states.append(state)
        if as_sequence:
            return stack(states, axis=2)[0], state  # (2, N, T, hidden) -> the h part, (N, T, hidden)
        return [hc[0] for hc in states], state


class GRU(_Recurrent):
    """GRU over a sequence."""

    kind = "gru"

    def _unroll(self, inputs, state, weights, as_sequence: bool, kept: bool):
        """One :func:`gru_cell` op a step (the same step written as ops takes 17)."""
        w_ih, w_hh, b_ih, b_hh = weights
        steps = _steps(inputs)
        outputs = []
        for x_t, at in steps:
            state = gru_cell(x_t, state, state, w_ih, b_ih, w_hh, b_hh, **at)
            outputs.append(state)
        return (stack(outputs, axis=1) if as_sequence else outputs), state


def init_forget_gate_bias_(lstm: Module, value: float = 1.0) -> Module:
    """Add ``value`` to the forget-gate part of every LSTM input bias (PyTorch starts it near 0).

    A forget gate near sigma(1) ~ 0.73 instead of 0.5 lets the cell state, and with it the gradient,
    survive many more steps from the very first update: a common and cheap fix for long sequences.
    """
    n = lstm.hidden_size
    for name, param in lstm.named_parameters():
        if name.startswith("bias_ih"):
            param.data[n : 2 * n] += value
    return lstm


# ----------------------------------------------------------------------------- a whole sequence model


class RecurrentNet(Module):
    """A recurrent layer with an optional embedding in front and a linear read-out behind.

    ``forward(x, state=None) -> (prediction, new_state)``. With ``last_only`` the read-out sees only
    the final time step (one prediction per sequence, e.g. the adding problem); otherwise it
    predicts at every step (e.g. the next character).
    """

    def __init__(self, kind: str, input_size: int, hidden_size: int, output_size: int, num_layers: int = 1,
                 vocab_size: int | None = None, last_only: bool = False, rng=None):
        super().__init__()
        layers = {"rnn": RNN, "lstm": LSTM, "gru": GRU}
        if kind not in layers:
            raise ValueError(f"kind must be one of {sorted(layers)}, got {kind!r}")
        self.kind, self.last_only = kind, last_only
        self.embedding = Embedding(vocab_size, input_size, rng=rng) if vocab_size else None
        self.rnn = layers[kind](input_size, hidden_size, num_layers, rng=rng)
        self.head = Linear(hidden_size, output_size, rng=rng)

    def forward(self, x, state=None):
        if self.embedding is not None:
            x = self.embedding(x)
        output, state = self.rnn(x, state)
        if self.last_only:
            return self.head(output[:, -1]), state
        return self.head(output), state
