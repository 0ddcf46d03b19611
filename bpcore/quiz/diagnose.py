"""Name the usual mistake behind a wrong numeric or matrix answer.

A wrong gradient is rarely random. It is usually the right answer bent by one slip: transposed,
N times too large (the 1/N of a mean forgotten), without the activation's slope, with the sign
flipped, reduced over the wrong axis, or an update missing its learning rate. Each generator
computes those wrong answers with the engine (see ``generators.py``), and :func:`diagnose`
compares the learner's answer against them::

    mistakes = [Mistake("missing activation derivative", delta_without_slope.T @ H), ...]
    diagnose(answer, key, mistakes)   # -> the Mistake that matches, or None

Two mistakes that any array can suffer (transposed, wrong sign) are added by
:func:`with_common_mistakes`, so generators list only the ones that need the engine.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# What each named mistake means, said to the learner. Generators and banks may use other names
# as long as they give their own ``why``.
EXPLANATIONS = {
    "transposed": (
        "It is the transpose of the answer. A gradient has the shape of what it differentiates: "
        "dL/dW has the shape of W, so the outer product is delta times the input transposed, not the other way round."
    ),
    "missing 1/N": (
        "It is N times too large: the loss is a mean over the N samples of the batch, so every gradient "
        "carries a factor 1/N (it arrives through dL/dy)."
    ),
    "missing activation derivative": (
        "The activation's slope is missing: on the way back through y = g(z), the error is multiplied "
        "elementwise by g'(z) (for a sigmoid, y(1 - y)) before it reaches the weights."
    ),
    "wrong sign": (
        "The size is right but the sign is flipped. The error term is (prediction - target); "
        "gradient descent then subtracts the gradient."
    ),
    "summed over the wrong axis": (
        "It was reduced over the wrong axis. Samples are rows (axis 0): a bias gradient sums over "
        "the samples, and a softmax normalises each row (axis 1)."
    ),
    "off by the learning rate": (
        "The learning rate is missing from the step (or applied twice): the new weight is the old one "
        "minus lr times the step direction."
    ),
    "off by a constant factor": (
        "It is the right answer times a constant: look for a factor dropped or added, such as the 2 from a "
        "square or the 1/2 in front of a squared error."
    ),
}


@dataclass
class Mistake:
    """A plausible wrong answer: its name, its value (computed by the engine), and why it happens."""

    name: str
    value: object
    why: str | None = None

    @property
    def explanation(self) -> str:
        return self.why or EXPLANATIONS.get(self.name, self.name)


def _array(value) -> np.ndarray:
    return np.asarray(value, dtype=np.float64)


def as_vector_like(answer: np.ndarray, key: np.ndarray) -> np.ndarray:
    """Against a vector (a 1-D key or mistake), a row (1, n) or column (n, 1) answer is that vector.

    People write vectors all three ways: the prompts show them as LaTeX columns (or rows), numpy
    prints ``v[:, None]`` as a column, and the maths does not care. A 2-D key keeps its strict
    shape: (2, 3) against (3, 2) is a real mistake, diagnosed as a transpose.
    """
    if key.ndim == 1 and answer.ndim == 2 and 1 in answer.shape and answer.size == key.size:
        return answer.reshape(key.shape)
    return answer


# Entries far smaller than an array's largest are graded against a tenth of the largest instead of
# themselves: an entry where terms cancel (0.0312 - 0.0309) cannot be worked out to 3 significant digits of
# itself from numbers shown to 4, but it can to 3 significant digits of the array's scale.
SCALE_FLOOR = 0.1


def close(answer, key, rtol: float, atol: float) -> bool:
    """Same shape (a vector in any of its forms) and every entry within ``atol + rtol * max(|k|, f * max|key|)``.

    The one test of "equal" for keys and mistakes. For a single number it is ``|a - k| <= atol + rtol |k|``
    (allclose); in an array, entries smaller than ``f = SCALE_FLOOR`` of the largest get the tolerance of an
    entry that size.
    """
    k = _array(key)
    a = as_vector_like(_array(answer), k)
    if a.shape != k.shape:
        return False
    if not k.size:
        return True
    magnitude = np.abs(k)
    allowed = atol + rtol * np.maximum(magnitude, SCALE_FLOOR * float(np.max(magnitude)))
    return bool(np.all(np.abs(a - k) <= allowed))


def with_common_mistakes(key, mistakes: list[Mistake]) -> list[Mistake]:
    """``mistakes`` plus the slips any array can suffer: transposed (2-D only) and wrong sign."""
    names = {m.name for m in mistakes}
    k = np.asarray(key)  # an integer key keeps its dtype: its mistakes are whole numbers too
    extra = []
    if k.ndim == 2 and "transposed" not in names:
        extra.append(Mistake("transposed", k.T))
    if "wrong sign" not in names:
        extra.append(Mistake("wrong sign", -k))
    return [*mistakes, *extra]


def diagnose(answer, key, mistakes: list[Mistake], rtol: float, atol: float) -> Mistake | None:
    """The first mistake whose value matches ``answer``; else a constant factor if there is one.

    A mistake that happens to equal the key cannot explain a wrong answer and is skipped.
    """
    a = as_vector_like(_array(answer), _array(key))
    for mistake in mistakes:
        if close(a, mistake.value, rtol, atol) and not close(mistake.value, key, rtol, atol):
            return mistake
    return constant_factor(a, _array(key), rtol, atol)


def _simple_factor(c: float) -> bool:
    """2, 3, ... 10 or their inverses: a factor a learner plausibly dropped or added."""
    r = c if c > 1 else 1 / c
    return 2 <= round(r) <= 10 and bool(np.isclose(r, round(r), rtol=1e-3))


def constant_factor(answer: np.ndarray, key: np.ndarray, rtol: float, atol: float) -> Mistake | None:
    """``answer == c * key`` for one number c (not 1, not -1): a dropped or extra factor."""
    if answer.shape != key.shape or not np.any(np.abs(key) > atol):
        return None
    c = float(np.sum(answer * key) / np.sum(key * key))
    if abs(c) < 1e-12 or np.isclose(abs(c), 1.0, rtol=rtol) or not np.allclose(answer, c * key, rtol=rtol, atol=atol):
        return None
    if key.size == 1 and not _simple_factor(abs(c)):  # any wrong number is *some* multiple of a scalar key
        return None
    return Mistake(
        "off by a constant factor",
        c * key,
        f"It is the answer times {c:.4g}. " + EXPLANATIONS["off by a constant factor"],
    )
