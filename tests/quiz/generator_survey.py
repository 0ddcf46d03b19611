"""Shared survey helpers for the generator tests (tests/quiz/test_quiz_bank_content.py asserts the targets).

The survey stops each draw at the parameters it yields (no engine work), so 10,000 seeds of every generator
cost a few seconds; the full problem, with the distinguishability check that can ask for a redraw, is built
for a sample of seeds, and the rate of redraws it needs is bounded so that 50 redraws in a row never happen.
"""

from functools import cache

import numpy as np

from bpcore.quiz import kinds
from bpcore.quiz.diagnose import round_to_digits
from bpcore.quiz.generators import GENERATORS, worked_from_shown_is_right
from bpcore.quiz.instance import make_instance

SEEDS = 10_000
FULL_SEEDS = 100  # seeds whose whole problem is built (a generator's draw costs about a millisecond)
# 0.4 ** 50 < 1e-19: no seed ever runs out of draws. three_layer_dW2 redraws about 38% (its docstring says why)
MAX_REDRAW_RATE = 0.4


@cache
def _states() -> list[dict]:
    """The rng state of each seed, made once and shared by every generator (seeding costs more than drawing)."""
    return [np.random.default_rng(seed).bit_generator.state for seed in range(SEEDS)]


@cache
def survey(name: str) -> dict:
    """Distinct parameter sets, and per parameter the smallest and largest entries and the values seen."""
    generator, rng = GENERATORS[name], np.random.default_rng()
    drawn, failures, names = [], [], set()
    for seed, state in enumerate(_states()):
        rng.bit_generator.state = state
        try:
            drawn.append(generator.parameters(seed, rng))
        except Exception as error:  # the survey reports every failing seed, not just the first
            failures.append((seed, f"{type(error).__name__}: {error}"))
    names = {tuple(sorted(params)) for params in drawn}
    found = {"failures": failures, "names": names, "low": {}, "high": {}, "seen": {}}
    rows = []
    for p in sorted(next(iter(names))) if len(names) == 1 else []:
        column = np.array([np.asarray(params[p], dtype=np.float64).ravel() for params in drawn])
        found["low"][p], found["high"][p] = float(column.min()), float(column.max())
        if isinstance(generator.ranges.get(p), set):
            found["seen"][p] = set(np.unique(column).tolist())
        rows.append(column)
    found["distinct"] = len(np.unique(np.hstack(rows), axis=0)) if rows else 0
    return found


def redraw_rate(name: str, seeds: int = FULL_SEEDS) -> tuple[float, int]:
    """(share of draws rejected, rejected draws) over the full problems of seeds 0..seeds-1."""
    generator, redraws = GENERATORS[name], 0
    for seed in range(seeds):
        problem = generator(seed)
        assert 1 <= problem.draws, f"{name}: seed {seed}: {problem.draws} draws"
        redraws += problem.draws - 1
        if problem.draws == 1:
            for p, value in generator.parameters(seed).items():
                assert np.array_equal(problem.values[p], value), f"{name}: seed {seed}: {p} differs from its survey"
    return redraws / (seeds + redraws), redraws


def correct_answers(instance, digits: int) -> list[tuple[str, object]]:
    """Answers a learner who got it right may give: the key rounded to the asked digits, to one more, in full;
    and where the prompt shows rounded values, the answer worked from them, rounded to the asked digits."""
    key = instance.key
    found = [
        (f"the key rounded to {n} digits", _each(key, lambda k, n=n: round_to_digits(k, n)))
        for n in (digits, digits + 1)
    ]
    found.append(("the key in full", key))
    shown = GENERATORS[instance.question.generator].shown if instance.question.generator else None
    if shown is not None:
        worked = _each(shown(instance.values), lambda w: round_to_digits(w, digits))
        found.append(
            ("the answer worked from the shown values", {**key, **worked} if isinstance(key, dict) else worked)
        )
    return found


def _each(key, f):
    return {k: f(v) for k, v in key.items()} if isinstance(key, dict) else f(key)


def built(question, seeds) -> list[tuple[int, object]]:
    """(seed, instance) for each of ``seeds``: built once for the several checks that grade the same instances."""
    return [(seed, make_instance(question, seed)) for seed in seeds]


def rejected_correct_answers(question, seeds) -> list[str]:
    """Where a correct answer (see correct_answers) to ``question`` is graded wrong, over ``seeds`` (seeds, or the
    (seed, instance) pairs of :func:`built`)."""
    problems = []
    for seed in seeds:
        seed, instance = seed if isinstance(seed, tuple) else (seed, make_instance(question, seed))
        for what, answer in correct_answers(instance, question.digits):
            given = answer if isinstance(answer, dict) or np.ndim(answer) else float(answer)
            if not kinds.check(instance, given).correct:
                problems.append(
                    f"{question.id} seed {seed}: {what} ({answer}) is graded wrong for the key {instance.key}"
                )
        if len(problems) > 5:
            break
    return problems


__all__ = [
    "FULL_SEEDS",
    "MAX_REDRAW_RATE",
    "SEEDS",
    "built",
    "correct_answers",
    "redraw_rate",
    "rejected_correct_answers",
    "survey",
    "worked_from_shown_is_right",
]
