"""Every numeric and matrix answer is graded to the significant digits its question asks for, over many seeds.

For a question asking for N significant digits (its prompt says "N significant digits", or its ``digits``
field does; 3 otherwise):

* the key rounded to N significant digits is right, and all zeros are wrong (a key of 5e-5 is not 0);
* a number, or an entry of an array at least a tenth of its largest (smaller ones are graded to N digits of
  that tenth, see bpcore.quiz.diagnose.close), is wrong off by one unit in its (N - 1)th significant
  digit (the 2nd for N = 3), and wrong replaced by 0.

Integer answers are graded exactly and are left out.
"""

import math
import re
from pathlib import Path

import numpy as np
import pytest

from bpcore.quiz import kinds
from bpcore.quiz.bank import load_banks
from bpcore.quiz.diagnose import SCALE_FLOOR
from bpcore.quiz.instance import make_instance

SEEDS = 60
DIGITS = re.compile(r"(\d+)\s+significant\s+digits", re.IGNORECASE)

BANKS = Path(__file__).resolve().parents[2] / "quizzes"
QUESTIONS = [q for q in load_banks(BANKS).questions if q.kind in ("numeric", "matrix") and not q.integer]


def digits(q) -> int:
    if "digits" in q.spec:
        return int(q.spec["digits"])
    found = DIGITS.search(q.prompt)
    return int(found.group(1)) if found else 3


def round_sig(x: float, n: int) -> float:
    return float(f"{x:.{n - 1}e}")


def unit(x: float, place: int) -> float:
    """One unit in the ``place``-th significant digit of x."""
    return 10.0 ** (math.floor(math.log10(abs(x))) - place + 1)


def _steps(instance):
    """(step name or None, key array) for each separately graded answer."""
    if isinstance(instance.key, dict):
        return [(name, np.asarray(value, dtype=np.float64)) for name, value in instance.key.items()]
    return [(None, np.asarray(instance.key, dtype=np.float64))]


def _answer(instance, step, value):
    if step is None:
        return float(value) if instance.kind == "numeric" else value
    return {**{k: np.asarray(v, dtype=np.float64) for k, v in instance.key.items()}, step: value}


def _problems(q, n):
    """Everything wrong with grading ``q`` at ``n`` significant digits for one seed, as messages."""
    found = []
    for seed in range(SEEDS if q.generator else 1):
        instance = make_instance(q, seed)
        for step, key in _steps(instance):
            where = f"{q.id} seed {seed}" + (f" step {step}" if step else "")
            rounded = np.vectorize(lambda x: round_sig(x, n) if x else 0.0)(key) if key.size else key
            if not kinds.check(instance, _answer(instance, step, rounded)).correct:
                found.append(
                    f"{where}: the key {key.tolist()} rounded to {n} digits ({rounded.tolist()}) is marked wrong"
                )
            if np.any(key) and kinds.check(instance, _answer(instance, step, np.zeros_like(key))).correct:
                found.append(f"{where}: all zeros are marked right for the key {key.tolist()}")
            large = np.abs(key) >= SCALE_FLOOR * np.max(np.abs(key)) if key.size else key.astype(bool)
            for index in zip(*np.nonzero(large & (key != 0)), strict=True) if key.ndim else ([()] if key != 0 else []):
                k = float(key[index])
                for wrong, what in (
                    (k + unit(k, n - 1), f"one unit up in digit {n - 1}"),
                    (k - unit(k, n - 1), f"one unit down in digit {n - 1}"),
                    (0.0, "0"),
                ):
                    bent = key.copy()
                    bent[index] = wrong
                    if kinds.check(instance, _answer(instance, step, bent)).correct:
                        found.append(
                            f"{where}: entry {index} = {k:.6g} answered as {wrong:.6g} ({what}) is marked right"
                        )
        if len(found) > 5:
            break
    return found


@pytest.mark.parametrize("q", QUESTIONS, ids=lambda q: q.id)
def test_answers_are_graded_to_the_digits_the_question_asks_for(q):
    problems = _problems(q, digits(q))
    assert problems == [], f"{q.id} (rtol, atol = {q.tolerances}, {digits(q)} digits):\n" + "\n".join(problems)
