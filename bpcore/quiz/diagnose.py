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


# How numeric and matrix answers are graded: the one statement of the rule (the README and the prompts point here).
#
# A question asks for ``digits`` significant digits (its prompt says "3 significant digits", or its ``digits``
# field does; 3 when neither does: bpcore.quiz.bank.Question.digits). Every entry of the answer is judged on its
# own digits, not on the array's scale: an entry passes when it is within half a unit in the last asked digit of
# the key's entry, |a - k| <= 0.5 * 10**(floor(log10|k|) - digits + 1), plus a slack of TIE_SLACK of that half
# unit. So
#
# * every honest rounding of the key passes: to the asked digits (0.786 for 0.78645), to more (0.7865, the full
#   value), and a rounding that left off its trailing zeros (0.78 for 0.78002 is the number 0.780);
# * an answer with fewer digits than asked fails unless it is that same number (0.79 for 0.78645 fails), and so
#   does a slip of one unit in the last asked digit (0.787 and 0.785 for 0.78645), whatever the leading digits;
# * more digits than asked are judged on the asked ones: 0.7869 for 0.78645 passes (within half a unit), 0.7871
#   does not;
# * at a key within TIE_SLACK of a rounding boundary (0.7865 exactly, which a float holds as 0.78649999...),
#   both neighbours are honest roundings and both pass; a key past the boundary (0.78650001) has one honest
#   rounding (0.787), and 0.786 fails;
# * an entry whose key is exactly 0 takes 0 (and float residue below NOISE of the array's largest entry, what
#   bpcore.quiz.generators.denoise calls an exact 0); so 0 is never right for a nonzero key, nor the wrong sign,
#   however small the entry.
#
# A generator whose prompt shows rounded values for convenience checks that the answer worked from them, rounded
# to the asked digits, passes this rule entry by entry (Generator.shown), and redraws when it would not.
DEFAULT_DIGITS = 3
TIE_SLACK = 1e-6  # of the half unit: a key on a rounding boundary, up to float rounding
NOISE = 1e-12  # relative to a key's largest entry: what is left of an exact 0 after float rounding


def half_unit(key, digits: int) -> np.ndarray:
    """Half a unit in the ``digits``-th significant digit of each entry of ``key`` (0 where the key is 0)."""
    k = np.abs(_array(key))
    safe = np.where(k > 0, k, 1.0)
    return np.where(k > 0, 0.5 * 10.0 ** (np.floor(np.log10(safe)) - digits + 1), 0.0)


def allowed_gap(key, digits: int) -> np.ndarray:
    """How far each entry of an answer may lie from ``key`` and still pass at ``digits`` significant digits."""
    k = _array(key)
    zero = NOISE * float(np.max(np.abs(k))) if k.size else 0.0
    return np.where(k != 0, half_unit(k, digits) * (1 + TIE_SLACK), zero)


def close(answer, key, digits: int = DEFAULT_DIGITS) -> bool:
    """Same shape (a vector in any of its forms) and every entry right to ``digits`` significant digits of its own.

    The one test of "equal" for keys and mistakes; the rule is stated above :data:`DEFAULT_DIGITS`.
    """
    k = _array(key)
    a = as_vector_like(_array(answer), k)
    if a.shape != k.shape:
        return False
    if not k.size:
        return True
    return bool(np.all(np.abs(a - k) <= allowed_gap(k, digits)))


def round_to_digits(value, digits: int) -> np.ndarray:
    """Every entry of ``value`` rounded to ``digits`` significant digits, as a learner writes it."""
    return np.vectorize(lambda x: float(f"{x:.{digits - 1}e}"), otypes=[np.float64])(_array(value))


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


def diagnose(answer, key, mistakes: list[Mistake], digits: int = DEFAULT_DIGITS) -> Mistake | None:
    """The first mistake whose value matches ``answer``; else a constant factor if there is one.

    A mistake that happens to equal the key cannot explain a wrong answer and is skipped.
    """
    a = as_vector_like(_array(answer), _array(key))
    for mistake in mistakes:
        if close(a, mistake.value, digits) and not close(mistake.value, key, digits):
            return mistake
    return constant_factor(a, _array(key), digits)


def _simple_factor(c: float) -> bool:
    """2, 3, ... 10 or their inverses: a factor a learner plausibly dropped or added."""
    r = c if c > 1 else 1 / c
    return 2 <= round(r) <= 10 and bool(np.isclose(r, round(r), rtol=1e-3))


def constant_factor(answer: np.ndarray, key: np.ndarray, digits: int = DEFAULT_DIGITS) -> Mistake | None:
    """``answer == c * key`` for one number c (not 1, not -1), to ``digits`` digits: a dropped or extra factor."""
    if answer.shape != key.shape or not np.any(key):
        return None
    c = float(np.sum(answer * key) / np.sum(key * key))
    if abs(c) < 1e-12 or close(abs(c), 1.0, digits) or not close(answer, c * key, digits):
        return None
    if key.size == 1 and not _simple_factor(abs(c)):  # any wrong number is *some* multiple of a scalar key
        return None
    return Mistake(
        "off by a constant factor",
        c * key,
        f"It is the answer times {c:.4g}. " + EXPLANATIONS["off by a constant factor"],
    )
