"""Two-parameter loss landscapes, to watch optimizers move: a saddle and a ravine.

* saddle:  L = x^2 - y^2 + y^4 / 4.  At (0, 0) the gradient is zero but it is not a minimum: the
  true minima are at y = +-sqrt(2). Started on the ridge (y tiny), plain gradient descent
  crawls away; momentum and adaptive methods leave faster.
* ravine:  L = (x^2 + 50 y^2) / 2.  Steep across, flat along: a step size that is safe across
  is tiny along, so plain SGD zig-zags; momentum and RMSprop/Adam rescale the directions.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from bpcore.optim import SGD, Adam, RMSprop
from bpcore.tensor import Tensor


def saddle(p):
    x, y = p[0], p[1]
    return x * x - y * y + y**4 / 4


def ravine(p):
    x, y = p[0], p[1]
    return (x * x + 50 * y * y) / 2


LANDSCAPES = {
    "saddle": (saddle, np.array([1.0, 1e-3]), np.array([0.0, np.sqrt(2.0)])),  # (function, start, a minimum)
    "ravine": (ravine, np.array([-4.0, 1.0]), np.array([0.0, 0.0])),
}

OPTIMIZERS: dict[str, Callable] = {
    "SGD": lambda params, lr: SGD(params, lr=lr),
    "SGD + momentum": lambda params, lr: SGD(params, lr=lr, momentum=0.9),
    "Nesterov": lambda params, lr: SGD(params, lr=lr, momentum=0.9, nesterov=True),
    "RMSprop": lambda params, lr: RMSprop(params, lr=lr),
    "Adam": lambda params, lr: Adam(params, lr=lr),
}


def optimizer_path(landscape: str, optimizer: str, lr: float, steps: int = 100) -> tuple[np.ndarray, np.ndarray]:
    """Points visited (steps + 1, 2) and the loss at each, following the engine's gradient."""
    fn, start, _ = LANDSCAPES[landscape]
    p = Tensor(start.copy(), requires_grad=True)
    opt = OPTIMIZERS[optimizer]([p], lr)
    points, losses = [p.data.copy()], []
    for _ in range(steps):
        opt.zero_grad()
        loss = fn(p)
        losses.append(float(loss.data))
        loss.backward()
        opt.step()
        points.append(p.data.copy())
    losses.append(float(fn(Tensor(p.data)).data))
    return np.array(points), np.array(losses)


def contour(landscape: str, ax=None, extent=None):
    """Draw the landscape's contour lines (log-spaced) and mark its start and a minimum."""
    import matplotlib.pyplot as plt

    fn, start, minimum = LANDSCAPES[landscape]
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 4))
    (x0, x1), (y0, y1) = extent or ((-4.5, 4.5), (-2.2, 2.2))
    X, Y = np.meshgrid(np.linspace(x0, x1, 200), np.linspace(y0, y1, 200))
    Z = fn(np.stack([X, Y]))
    ax.contour(X, Y, Z - Z.min() + 1e-3, levels=np.geomspace(1e-3, Z.max() - Z.min() + 1e-3, 20), cmap="Greys")
    ax.plot(*start, "k^", label="start")
    ax.plot(*minimum, "k*", markersize=12, label="minimum")
    return ax
