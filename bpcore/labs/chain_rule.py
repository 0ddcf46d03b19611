"""Notebook 01 (the chain rule): a two-layer scalar network differentiated link by link.

z1 = w1 x + b1, a1 = f(z1), z2 = w2 a1 + b2, a2 = f(z2), L = (a2 - y)^2 / 2. Every local derivative
(dL/da2, da2/dz2, dz2/dw2, dz2/da1, da1/dz1, dz1/dw1) is kept by name, and each parameter's gradient
is their product along the path back to it: the chain rule, written out.

Claims it backs (tests/labs/test_chain_rule.py): the products equal the engine's gradients and
finite differences; each activation's derivative below equals its finite difference.

``ACTIVATIONS`` (f and f') is also what the hand-derived networks of notebooks 02 and 06 use.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# ----------------------------------------------------------------------------- activations: f(z), f'(z)

def _sigmoid(z):
    return 0.5 * (1 + np.tanh(0.5 * z))


ACTIVATIONS = {
    "sigmoid": (_sigmoid, lambda z: _sigmoid(z) * (1 - _sigmoid(z))),
    "tanh": (np.tanh, lambda z: 1 - np.tanh(z) ** 2),
    "relu": (lambda z: np.maximum(z, 0), lambda z: (z > 0).astype(z.dtype)),
    "leaky_relu": (lambda z: np.where(z > 0, z, 0.01 * z), lambda z: np.where(z > 0, 1.0, 0.01)),
    "identity": (lambda z: z, np.ones_like),
}


@dataclass
class ScalarChain:
    """The 2-layer scalar network of the notes, every local derivative by name.

    z1 = w1 x + b1, a1 = f(z1), z2 = w2 a1 + b2, a2 = f(z2), L = (a2 - y)^2 / 2.
    ``local`` holds each link of the chain; ``grads`` the products the chain rule makes of them.
    """

    values: dict[str, float]
    local: dict[str, float]
    grads: dict[str, float]


def scalar_chain(x, w1, b1, w2, b2, y, f="sigmoid") -> ScalarChain:
    """Forward through the scalar network and multiply the local derivatives back to each parameter."""
    act, act_prime = ACTIVATIONS[f]
    z1 = w1 * x + b1
    a1 = float(act(np.float64(z1)))
    z2 = w2 * a1 + b2
    a2 = float(act(np.float64(z2)))
    L = 0.5 * (a2 - y) ** 2
    local = {
        "dL/da2": a2 - y,
        "da2/dz2": float(act_prime(np.float64(z2))),
        "dz2/dw2": a1,
        "dz2/da1": w2,
        "da1/dz1": float(act_prime(np.float64(z1))),
        "dz1/dw1": x,
    }
    dL_dz2 = local["dL/da2"] * local["da2/dz2"]
    dL_dz1 = dL_dz2 * local["dz2/da1"] * local["da1/dz1"]
    grads = {"w2": dL_dz2 * local["dz2/dw2"], "b2": dL_dz2, "w1": dL_dz1 * local["dz1/dw1"], "b1": dL_dz1}
    values = {"z1": z1, "a1": a1, "z2": z2, "a2": a2, "L": L}
    return ScalarChain(values, local, grads)
