"""bpcore: backpropagation from the chain rule up.

A compact reverse-mode autodiff engine on numpy with a PyTorch-shaped API::

    import bpcore as bp
    x = bp.tensor([[1.0, 2.0]], requires_grad=True)
    y = (x * x).sum()
    y.backward()
    x.grad            # array([[2., 4.]])

Importing bpcore loads numpy only. The package has three parts, and imports run one way:

* the engine, at the top level: tensor, ops, gradcheck, graph, forward_mode, checkpointing, nn/,
  optim, train, bptt, data, diagnostics;
* the labs (``bpcore.labs``): one module per notebook, the experiments it runs;
* the teaching UI: plots, widgets/, quiz/ (matplotlib, ipywidgets, SQLite).

``bp.quiz``, ``bp.labs`` and ``bp.draw_graph`` reach the last two on first use only.
"""

import numpy as np

from bpcore import bptt, checkpointing, data, diagnostics, forward_mode, graph, nn, ops, optim, train
from bpcore.checkpointing import checkpoint
from bpcore.forward_mode import jvp
from bpcore.gradcheck import GradcheckReport, compare, gradcheck, step_size_sweep
from bpcore.ops import (
    abs,
    cat,
    clip,
    concat,
    exp,
    gelu,
    leaky_relu,
    log,
    log_softmax,
    matmul,
    max,
    mean,
    min,
    permute,
    primitive,
    relu,
    reshape,
    sigmoid,
    softmax,
    sqrt,
    stack,
    sum,
    tanh,
    transpose,
    var,
    where,
)
from bpcore.random import _shape, manual_seed, rand, randint, randn
from bpcore.tensor import (
    AnomalyError,
    ShapeError,
    Tensor,
    detect_anomaly,
    enable_grad,
    is_grad_enabled,
    no_grad,
    tensor,
)
from bpcore.train import fit

float32 = np.float32
float64 = np.float64

__version__ = "0.1.0"


def from_numpy(array: np.ndarray) -> Tensor:
    """A tensor that shares ``array``'s memory, as ``torch.from_numpy``: changes to one show in the other."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"from_numpy expects a numpy array, got {type(array).__name__}")
    return Tensor(array)


def zeros(*shape, requires_grad=False, dtype=np.float64) -> Tensor:
    """A tensor of zeros: ``bp.zeros(2, 3)`` or ``bp.zeros((2, 3))``."""
    return Tensor(np.zeros(_shape(shape), dtype=dtype), requires_grad=requires_grad)


def ones(*shape, requires_grad=False, dtype=np.float64) -> Tensor:
    return Tensor(np.ones(_shape(shape), dtype=dtype), requires_grad=requires_grad)




_ON_FIRST_USE = ("quiz", "labs")  # the quiz brings sqlite3, fsrs and ipywidgets; the labs are not engine


def __getattr__(name):
    if name in _ON_FIRST_USE:
        import importlib

        return importlib.import_module(f"bpcore.{name}")
    raise AttributeError(f"module 'bpcore' has no attribute {name!r}")


def draw_graph(root, **kwargs):
    """Draw the computation graph behind ``root`` with matplotlib (see :func:`bpcore.plots.draw_graph`)."""
    import importlib

    return importlib.import_module("bpcore.plots").draw_graph(root, **kwargs)


to_dot = graph.to_dot


__all__ = [
    "AnomalyError",
    "GradcheckReport",
    "ShapeError",
    "Tensor",
    "abs",
    "bptt",
    "cat",
    "checkpoint",
    "checkpointing",
    "clip",
    "compare",
    "concat",
    "data",
    "detect_anomaly",
    "diagnostics",
    "draw_graph",
    "enable_grad",
    "exp",
    "fit",
    "float32",
    "float64",
    "forward_mode",
    "from_numpy",
    "gelu",
    "gradcheck",
    "graph",
    "is_grad_enabled",
    "jvp",
    "leaky_relu",
    "log",
    "log_softmax",
    "manual_seed",
    "matmul",
    "max",
    "mean",
    "min",
    "nn",
    "no_grad",
    "ones",
    "ops",
    "optim",
    "permute",
    "primitive",
    "rand",
    "randint",
    "randn",
    "relu",
    "reshape",
    "sigmoid",
    "softmax",
    "sqrt",
    "stack",
    "step_size_sweep",
    "sum",
    "tanh",
    "tensor",
    "to_dot",
    "train",
    "transpose",
    "var",
    "where",
    "zeros",
]
