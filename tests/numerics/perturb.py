"""A perturbed numeric environment for the notebooks' second run (``make notebooks-perturbed``).

A learner's machine rounds differently from the one that executed the committed notebooks: another
BLAS kernel or thread count sums a matrix product in another order, another CPU takes another SIMD
path through ``exp`` or ``tanh``. Each of these moves results by an ulp or so, and a chaotic
experiment (long training, a threshold, an argmax) can turn one ulp into a different printed number.
The second run reproduces such a machine here, three ways at once:

* one BLAS thread (``OPENBLAS_NUM_THREADS=1``) where the first run used the machine's default;
* numpy's SIMD paths above its baseline switched off (``NPY_DISABLE_CPU_FEATURES``), as on an older CPU;
* every float that numpy's random generators hand out moved by -1, 0 or +1 ulp, drawn from a
  generator of its own seeded by ``BPCORE_PERTURB_SEED``: initial weights, data noise, dropout draws.

The last one is this file's job. It is an IPython startup file: the runner copies it into the
startup folder of a throwaway ``IPYTHONDIR``, so every kernel of that run loads it before the first
cell and nothing else ever does. Each kernel that installs it appends a line to
``BPCORE_PERTURB_LOG``, so the runner can prove the perturbation was really there.
"""

from __future__ import annotations

import os
import tempfile

import numpy as np

_FLOAT_METHODS = ("normal", "standard_normal", "uniform", "random", "multivariate_normal")


def nudge(values, rng: np.random.Generator):
    """``values`` with each float moved by -1, 0 or +1 ulp (its own dtype), chosen by ``rng``."""
    array = np.asarray(values)
    if not np.issubdtype(array.dtype, np.floating):
        return values
    steps = rng.integers(-1, 2, size=array.shape)
    moved = np.where(
        steps > 0, np.nextafter(array, np.inf), np.where(steps < 0, np.nextafter(array, -np.inf), array)
    ).astype(array.dtype)
    return moved if isinstance(values, np.ndarray) else moved.item()


def install(seed: int) -> None:
    """From now on ``np.random.default_rng`` returns generators whose float draws are nudged."""
    original = np.random.default_rng
    noise = original(seed)  # one stream for the whole process: the same nudges on every run

    class NudgedGenerator(np.random.Generator):
        pass

    depth = [0]  # multivariate_normal draws through standard_normal: nudge the outermost result only

    def nudged(name):
        def method(self, *args, **kwargs):
            depth[0] += 1
            try:
                values = getattr(np.random.Generator, name)(self, *args, **kwargs)
            finally:
                depth[0] -= 1
            return values if depth[0] else nudge(values, noise)

        method.__name__ = name
        return method

    for name in _FLOAT_METHODS:
        setattr(NudgedGenerator, name, nudged(name))

    def default_rng(seed=None):
        if isinstance(seed, np.random.Generator):
            return seed
        bit_generator = seed if isinstance(seed, np.random.BitGenerator) else np.random.PCG64(seed)
        return NudgedGenerator(bit_generator)

    default_rng.__doc__ = original.__doc__
    np.random.default_rng = default_rng


def cpu_features_to_disable() -> str:
    """numpy's dispatched SIMD features that this CPU has: switching them off takes older code paths."""
    try:
        from numpy._core._multiarray_umath import __cpu_dispatch__, __cpu_features__
    except ImportError:  # numpy 1.x
        from numpy.core._multiarray_umath import __cpu_dispatch__, __cpu_features__

    return " ".join(name for name in __cpu_dispatch__ if __cpu_features__.get(name))


# As a startup file this runs with __name__ == "__main__"; imported (by the runner) it does nothing.
if os.environ.get("BPCORE_PERTURB_SEED"):
    install(int(os.environ["BPCORE_PERTURB_SEED"]))
    if os.environ.get("BPCORE_PERTURB_LOG"):
        with open(os.environ["BPCORE_PERTURB_LOG"], "a", encoding="utf-8") as log:
            log.write(
                f"pid {os.getpid()} seed {os.environ['BPCORE_PERTURB_SEED']} "
                f"blas threads {os.environ.get('OPENBLAS_NUM_THREADS', 'default')} "
                f"numpy without [{os.environ.get('NPY_DISABLE_CPU_FEATURES', '')}] "
                f"tmp {tempfile.gettempdir()}\n"
            )
