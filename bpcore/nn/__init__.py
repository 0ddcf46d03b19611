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

__all__ = [
    "GELU",
    "BatchNorm1d",
    "Dropout",
    "Embedding",
    "Flatten",
    "Identity",
    "LayerNorm",
    "LeakyReLU",
    "Linear",
    "Module",
    "Parameter",
    "ReLU",
    "Residual",
    "Sequential",
    "Sigmoid",
    "Softmax",
    "Tanh",
    "functional",
    "init",
]
