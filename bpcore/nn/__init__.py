"""Neural-network building blocks with PyTorch's names: ``bp.nn.Linear``, ``bp.nn.functional`` ..."""

from bpcore.nn import conv, functional, init
from bpcore.nn.conv import AvgPool2d, Conv2d, MaxPool2d
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
    "AvgPool2d",
    "BatchNorm1d",
    "Conv2d",
    "Dropout",
    "Embedding",
    "Flatten",
    "GRUCell",
    "Identity",
    "LSTMCell",
    "LayerNorm",
    "LeakyReLU",
    "Linear",
    "MaxPool2d",
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
    "conv",
    "functional",
    "init",
]
