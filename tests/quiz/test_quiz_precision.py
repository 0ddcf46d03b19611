"""Questions where 3 significant digits propagate badly ask for 4, and are graded to match.

A correctly rounded 4-digit answer is within half a unit of the 4th digit, which passes; an answer one unit
off in the third significant digit is more than that away, so it fails (the old 1e-2 tolerance let it through).
"""

import numpy as np
import pytest

from bpcore.quiz import kinds, render
from bpcore.quiz.bank import load_banks
from bpcore.quiz.instance import make_instance

FOUR_DIGITS = ("ve-residual-chain", "opt-adam-two-steps", "training-momentum")
SEEDS = range(300)


def off_in_the_third_digit(value: float) -> float:
    """``value`` rounded to 3 significant digits, then moved one unit of the third digit further away from it."""
    exponent = int(np.floor(np.log10(abs(value))))
    unit = 10.0 ** (exponent - 2)
    rounded = round(value / unit) * unit
    return rounded + unit if rounded >= value else rounded - unit


def as_text(key) -> str:
    return render.array_text(key) if np.ndim(key) else render.number(key)


@pytest.mark.parametrize("qid", FOUR_DIGITS)
def test_asks_for_four_digits_and_grades_to_match(qid):
    q = load_banks().get(qid)
    assert "4 significant digits" in q.prompt and "3 significant digits" not in q.prompt
    assert q.digits == 4, f"{qid}: expected to be graded to 4 significant digits, got {q.digits}"


@pytest.mark.parametrize("qid", FOUR_DIGITS)
def test_correct_four_digit_answer_passes_and_third_digit_slip_fails_over_many_seeds(qid):
    q = load_banks().get(qid)
    rejected_4, accepted_3 = [], []
    for seed in SEEDS:
        instance = make_instance(q, seed)
        key = np.asarray(instance.key, dtype=np.float64)
        if kinds.check(instance, as_text(key)).score != 1:
            rejected_4.append(seed)
        slipped = key.copy().reshape(-1)
        worst = int(np.argmax(np.abs(slipped)))
        slipped[worst] = off_in_the_third_digit(slipped[worst])
        slipped = slipped.reshape(key.shape)
        if kinds.check(instance, as_text(slipped if key.ndim else float(slipped))).score != 0:
            accepted_3.append(seed)
    assert rejected_4 == [], f"{qid}: the key rounded to 4 significant digits was rejected for seeds {rejected_4[:10]}"
    assert accepted_3 == [], f"{qid}: an answer off in the third digit was accepted for seeds {accepted_3[:10]}"
