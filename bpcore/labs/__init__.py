"""The labs: one module per notebook, holding the experiments, studies and hand derivations it runs.

A lab imports the engine (``bpcore.tensor``, ``bpcore.nn``, ``bpcore.optim``, ...) and never the
other way round; it imports no widget, plot or quiz code, so every claim a notebook makes can be
asserted by a test on the numbers a lab returns. Each module's docstring names its notebook and
the claims its tests prove.

=====================  ==============================================================
lab                    notebook
=====================  ==============================================================
``chain_rule``         01 the chain rule: a scalar network, link by link
``three_layer``        02 the 3-layer network: every intermediate by hand
``variants``           03 training variants: batch, stochastic, mini-batch, online
``vanishing``          04 vanishing and exploding gradients: depth, init, norms, residuals
``pitfalls``           05 pitfalls and hyperparameters: learning rate, optimizers, overfitting
``through_time``       06 backprop through time: an RNN by hand, reach, truncation, tasks
``beyond``             07 beyond the MLP: convolution, autoencoder, GAN, REINFORCE
``cost``               08 cost of backprop: FLOPs, memory, checkpointing, forward mode
``alternatives``       08 training without backprop: feedback alignment, ES, Oja
``attention``          10 attention and transformers: backward by hand, a causal LM, 1/sqrt(d_k)
=====================  ==============================================================

Import a lab by name (``from bpcore.labs import vanishing``); this package loads none of them itself.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TypeVar

_F = TypeVar("_F", bound=Callable)
_controller = None


def one_blas_thread(function: _F) -> _F:
    """Run ``function`` with numpy's BLAS limited to one thread (through threadpoolctl), then restore it.

    For the labs' training runs: their matrices (tens to a few hundred rows) are too small for a
    second BLAS thread to pay off, and on a busy machine every product waits for that thread to be
    scheduled. Notebook 05's overfitting study took 12 s of CPU with two threads on a loaded
    2-core machine and 1.1 s with one. The numbers are the same either way (the notebooks are
    checked on another thread count by tests/numerics/run_perturbed.py).
    """

    @functools.wraps(function)
    def on_one_thread(*args, **kwargs):
        global _controller
        if _controller is None:
            from threadpoolctl import ThreadpoolController

            _controller = ThreadpoolController()
        with _controller.limit(limits=1, user_api="blas"):
            return function(*args, **kwargs)

    return on_one_thread  # type: ignore[return-value]
