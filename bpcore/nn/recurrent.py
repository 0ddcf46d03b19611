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

import numpy as np

from bpcore.nn import functional as F
from bpcore.nn import init
from bpcore.nn.layers import Embedding, Linear
from bpcore.nn.module import Module, Parameter
from bpcore.ops import stack
from bpcore.tensor import ShapeError, Tensor

GATES = {"rnn": 1, "lstm": 4, "gru": 3}


# ----------------------------------------------------------------------------- one time step


# Each step takes ``xw = W_ih x + b_ih``, the input's contribution, and adds the recurrent part.


def rnn_step(xw, h, w_hh, b_hh, nonlinearity="tanh"):
    pre = xw + F.linear(h, w_hh, b_hh)
    return pre.tanh() if nonlinearity == "tanh" else pre.relu()


def lstm_step(xw, state, w_hh, b_hh):
    h, c = state
    gates = xw + F.linear(h, w_hh, b_hh)
    n = h.shape[-1]
    i = gates[:, 0:n].sigmoid()  # input gate: how much of the candidate to write
    f = gates[:, n : 2 * n].sigmoid()  # forget gate: how much of the old cell to keep
    g = gates[:, 2 * n : 3 * n].tanh()  # candidate values
    o = gates[:, 3 * n : 4 * n].sigmoid()  # output gate: how much of the cell to show
    c_new = f * c + i * g
    return o * c_new.tanh(), c_new


def gru_step(xw, h, w_hh, b_hh):
    gh = F.linear(h, w_hh, b_hh)
    n = h.shape[-1]
    r = (xw[:, 0:n] + gh[:, 0:n]).sigmoid()  # reset gate
    z = (xw[:, n : 2 * n] + gh[:, n : 2 * n]).sigmoid()  # update gate
    candidate = (xw[:, 2 * n :] + r * gh[:, 2 * n :]).tanh()
    return (1 - z) * candidate + z * h


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
            state = (_zeros(x.shape[0], self.hidden_size, x), _zeros(x.shape[0], self.hidden_size, x))
        return lstm_step(F.linear(x, self.weight_ih, self.bias_ih), state, self.weight_hh, self.bias_hh)


class GRUCell(_Cell):
    """One GRU step. forward(x, h) -> h'; gates stacked in PyTorch's order r, z, n."""

    kind = "gru"

    def forward(self, x, h=None):
        self._check(x)
        h = _zeros(x.shape[0], self.hidden_size, x) if h is None else h
        return gru_step(F.linear(x, self.weight_ih, self.bias_ih), h, self.weight_hh, self.bias_hh)


# ----------------------------------------------------------------------------- sequence layers


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
        if not self.batch_first:
            x = x.transpose(0, 1)
        batch, steps = x.shape[0], x.shape[1]
        states = self._split_state(state, batch, x)
        layer_input = [x[:, t] for t in range(steps)]
        for layer in range(self.num_layers):
            w_ih, w_hh, b_ih, b_hh = self._layer_weights(layer)
            outputs = []
            for x_t in layer_input:
                states[layer] = self._step(F.linear(x_t, w_ih, b_ih), states[layer], w_hh, b_hh)
                outputs.append(self._hidden(states[layer]))
            layer_input = outputs
        if self.keep_states:
            self.hidden_states = outputs
            for h in outputs:
                if h.requires_grad:
                    h.retain_grad()
        output = stack(outputs, axis=1)
        if not self.batch_first:
            output = output.transpose(0, 1)
        return output, self._join_state(states)

    @staticmethod
    def _hidden(state):
        return state

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
    """LSTM over a sequence. The state is a pair (h, c), each (num_layers, N, hidden)."""

    kind = "lstm"

    def _initial_state(self, batch, like):
        return (_zeros(batch, self.hidden_size, like), _zeros(batch, self.hidden_size, like))

    def _split_state(self, state, batch, like):
        if state is None:
            return [self._initial_state(batch, like) for _ in range(self.num_layers)]
        h, c = state
        return [(h[layer], c[layer]) for layer in range(self.num_layers)]

    def _join_state(self, states):
        return stack([h for h, _ in states], axis=0), stack([c for _, c in states], axis=0)

    def _step(self, xw, state, w_hh, b_hh):
        return lstm_step(xw, state, w_hh, b_hh)

    @staticmethod
    def _hidden(state):
        return state[0]


class GRU(_Recurrent):
    """GRU over a sequence."""

    kind = "gru"

    def _step(self, xw, h, w_hh, b_hh):
        return gru_step(xw, h, w_hh, b_hh)


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
