"""One seeded random generator for the whole package: weight initialisation, dropout masks, shuffling.

``bp.manual_seed(0)`` makes every later initialisation and mask reproducible, as
``torch.manual_seed`` does. Functions that draw random numbers also accept their own
``numpy.random.Generator`` through an ``rng=`` argument.
"""

from __future__ import annotations

import numpy as np

_generator = np.random.default_rng(0)


def manual_seed(seed: int) -> np.random.Generator:
    """Reset the package generator to ``seed`` and return it."""
    global _generator
    _generator = np.random.default_rng(seed)
    return _generator


def generator(rng: np.random.Generator | None = None) -> np.random.Generator:
    """``rng`` if given, otherwise the package generator."""
    return rng if rng is not None else _generator
