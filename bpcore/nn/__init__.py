"""Neural-network building blocks with PyTorch's names: ``bp.nn.Linear``, ``bp.nn.functional`` ..."""

from bpcore.nn import functional, init
from bpcore.nn.layers import (
    GELU,
    BatchNorm1d,
    Dropout,
    Embedding,
    Flatten,
    Identity,
    LayerNorm,
    LeakyReLU,
    Linear,
    ReLU,
    Residual,
    Sequential,
    Sigmoid,
    Softmax,
    Tanh,
)
from bpcore.nn.module import Module, Parameter
from bpcore.nn.recurrent import GRU, LSTM, RNN, GRUCell, LSTMCell, RecurrentNet, RNNCell

__all__ = [
    "GELU",
    "GRU",
    "LSTM",
    "RNN",
    "BatchNorm1d",
    "Dropout",
    "Embedding",
    "Flatten",
    "GRUCell",
    "Identity",
    "LSTMCell",
    "LayerNorm",
    "LeakyReLU",
    "Linear",
    "Module",
    "Parameter",
    "RNNCell",
    "ReLU",
    "RecurrentNet",
    "Residual",
    "Sequential",
    "Sigmoid",
    "Softmax",
    "Tanh",
    "functional",
    "init",
]
