"""bpcore: backpropagation from the chain rule up.

A compact reverse-mode autodiff engine on numpy with a PyTorch-shaped API::

    import bpcore as bp
    x = bp.tensor([[1.0, 2.0]], requires_grad=True)
    y = (x * x).sum()
    y.backward()
    x.grad            # array([[2., 4.]])

Importing bpcore loads numpy only. The package has three parts, and imports run one way:

* the engine, at the top level: tensor, ops, gradcheck, graph, forward_mode, checkpointing, nn/,
  optim, train, bptt, data, diagnostics, compile (traced replay of a training step);
* the labs (``bpcore.labs``): one module per notebook, the experiments it runs;
* the teaching UI: plots, widgets/, quiz/ (matplotlib, ipywidgets, SQLite).

``bp.quiz``, ``bp.labs`` and ``bp.draw_graph`` reach the last two on first use only.
"""

import numpy as np

from bpcore import bptt, checkpointing, creation, data, diagnostics, forward_mode, graph, nn, ops, optim, train
from bpcore.checkpointing import checkpoint
from bpcore.compile import CompileWarning, compile
from bpcore.creation import (
    arange,
    empty,
    eye,
    from_numpy,
    full,
    full_like,
    linspace,
    ones,
    ones_like,
    randn_like,
    zeros,
    zeros_like,
)
from bpcore.forward_mode import jvp
from bpcore.gradcheck import GradcheckReport, compare, gradcheck, step_size_sweep
from bpcore.ops import (
    abs,
    amax,
    amin,
    argmax,
    argmin,
    cat,
    chunk,
    clip,
    concat,
    cos,
    cumsum,
    einsum,
    erf,
    exp,
    flatten,
    flip,
    gather,
    gelu,
    leaky_relu,
    log,
    log_softmax,
    logsumexp,
    masked_fill,
    matmul,
    maximum,
    mean,
    minimum,
    norm,
    permute,
    primitive,
    prod,
    relu,
    reshape,
    sigmoid,
    sin,
    softmax,
    split,
    sqrt,
    squeeze,
    stack,
    std,
    sum,
    tanh,
    transpose,
    tril,
    triu,
    unsqueeze,
    var,
    where,
)
from bpcore.ops import (
    max_ as max,
)
from bpcore.ops import (
    min_ as min,
)
from bpcore.random import manual_seed, rand, randint, randn
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
    "CompileWarning",
    "GradcheckReport",
    "ShapeError",
    "Tensor",
    "abs",
    "amax",
    "amin",
    "arange",
    "argmax",
    "argmin",
    "bptt",
    "cat",
    "checkpoint",
    "checkpointing",
    "chunk",
    "clip",
    "compare",
    "compile",
    "concat",
    "cos",
    "creation",
    "cumsum",
    "data",
    "detect_anomaly",
    "diagnostics",
    "draw_graph",
    "einsum",
    "empty",
    "enable_grad",
    "erf",
    "exp",
    "eye",
    "fit",
    "flatten",
    "flip",
    "float32",
    "float64",
    "forward_mode",
    "from_numpy",
    "full",
    "full_like",
    "gather",
    "gelu",
    "gradcheck",
    "graph",
    "is_grad_enabled",
    "jvp",
    "leaky_relu",
    "linspace",
    "log",
    "log_softmax",
    "logsumexp",
    "manual_seed",
    "masked_fill",
    "matmul",
    "max",
    "maximum",
    "mean",
    "min",
    "minimum",
    "nn",
    "no_grad",
    "norm",
    "ones",
    "ones_like",
    "ops",
    "optim",
    "permute",
    "primitive",
    "prod",
    "rand",
    "randint",
    "randn",
    "randn_like",
    "relu",
    "reshape",
    "sigmoid",
    "sin",
    "softmax",
    "split",
    "sqrt",
    "squeeze",
    "stack",
    "std",
    "step_size_sweep",
    "sum",
    "tanh",
    "tensor",
    "to_dot",
    "train",
    "transpose",
    "tril",
    "triu",
    "unsqueeze",
    "var",
    "where",
    "zeros",
    "zeros_like",
]
