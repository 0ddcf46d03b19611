"""One seeded random generator for the whole package: bp.randn, bp.rand, bp.randint, weight
initialisation, dropout masks.

``bp.manual_seed(0)`` makes every later draw reproducible, as ``torch.manual_seed`` does.
Functions that draw random numbers also accept their own ``numpy.random.Generator`` through an
``rng=`` argument. (Shuffling in ``bp.fit`` takes its own ``seed=``, 0 unless given.)
"""

from __future__ import annotations

import numpy as np

from bpcore.tensor import SWITCHES, Tensor

_generator = np.random.default_rng(0)


def manual_seed(seed: int) -> np.random.Generator:
    """Reset the package generator to ``seed`` and return it."""
    global _generator
    _generator = np.random.default_rng(seed)
    return _generator


def generator(rng: np.random.Generator | None = None) -> np.random.Generator:
    """``rng`` if given, otherwise the package generator."""
    if SWITCHES.tracer is not None:  # bp.compile: a replay would reuse this call's numbers
        SWITCHES.tracer.random()
    return rng if rng is not None else _generator


def _shape(shape) -> tuple[int, ...]:
    """``f(2, 3)`` and ``f((2, 3))`` alike."""
    return tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], tuple | list) else tuple(shape)


def randn(*shape, rng=None, requires_grad: bool = False, dtype=np.float64) -> Tensor:
    """Standard normal samples from the package generator: ``bp.randn(2, 3)``."""
    _floating(dtype, "randn")
    return Tensor(generator(rng).standard_normal(_shape(shape)).astype(dtype), requires_grad=requires_grad)


def rand(*shape, rng=None, requires_grad: bool = False, dtype=np.float64) -> Tensor:
    """Uniform samples in [0, 1) from the package generator: ``bp.rand(2, 3)``."""
    _floating(dtype, "rand")
    return Tensor(generator(rng).random(_shape(shape)).astype(dtype), requires_grad=requires_grad)


def _floating(dtype, op: str) -> None:
    if not np.issubdtype(np.dtype(dtype), np.floating):
        raise TypeError(f"{op} draws floating-point numbers; got dtype {np.dtype(dtype)} (use bp.randint for integers)")


def randint(low: int, high: int | None = None, size=(), rng=None) -> Tensor:
    """Integers in [low, high) (or [0, low) with one bound), int64, as ``torch.randint(low, high, size)``."""
    if isinstance(high, tuple | list):  # torch.randint(high, size)
        low, high, size = 0, low, high
    low, high = (0, low) if high is None else (low, high)
    size = (size,) if isinstance(size, int) else tuple(size)
    return Tensor(generator(rng).integers(low, high, size=size))
