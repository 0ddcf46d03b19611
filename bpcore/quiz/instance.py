"""An instance: one question made concrete by a seed. The key, the shown numbers and the known mistakes.

Static questions have the same content whatever the seed, shown in an order the seed decides: the
choices of a ``single`` or ``multi`` question and the fixes of a bug hunt are shuffled, and the items
of an ``order`` question are shown out of order. Generated questions get fresh numbers per seed. The
seed is logged with every attempt, so ``make_instance(question, seed)`` rebuilds exactly what the
learner saw, in the order they saw it.

Keys are always written against the file's order (``answer = "a"`` is the first choice in the file);
``Instance.display`` says where each option was shown, and the checkers translate the letters the
learner saw back to the file's options.
"""

from __future__ import annotations

import json
import random
import secrets
from dataclasses import dataclass

import numpy as np

from bpcore.quiz import bughunts, functions
from bpcore.quiz.bank import Question
from bpcore.quiz.diagnose import Mistake, with_common_mistakes
from bpcore.quiz.generators import GENERATORS
from bpcore.quiz.parse import parse_array, parse_number

LETTERS = "abcdefghijklmnopqrstuvwxyz"


@dataclass
class Instance:
    """What one attempt is graded against.

    key by kind: single -> choice index; multi -> sorted indices; numeric -> float (an int for an
    answer graded exactly); matrix -> array, or {step: array} for a chained derivation; order -> item
    indices in the right order; code -> the Reference; bughunt -> (bug line, fix index); flashcard ->
    the answer text. Indices count in the file's order, whatever order the options were shown in.
    """

    question: Question
    seed: int
    values: dict
    key: object
    mistakes: list[Mistake] | dict[str, list[Mistake]]
    # what is shown at each position (a, b, c, ...), as file indices: the items of an order question,
    # the choices of a single or multi question, the fixes of a bug hunt
    display: list[int] | None = None
    steps: dict[str, str] | None = None  # chained derivations: step name -> LaTeX label
    follow: object = None  # chained derivations: Generator.follow, for follow-through credit
    upstream: dict[str, str] | None = None  # chained derivations: step -> the step it is computed from

    @property
    def kind(self) -> str:
        return self.question.kind

    def letter(self, index: int) -> str:
        """The letter the learner saw for option ``index`` (counted in the file's order)."""
        return LETTERS[self.display.index(index)] if self.display is not None else LETTERS[index]

    def option(self, position: int) -> int:
        """The file index of the option shown at ``position`` (0 for the one labelled (a))."""
        return self.display[position] if self.display is not None else position


def new_seed() -> int:
    """A fresh seed for an attempt (logged with it, so the instance can be rebuilt)."""
    return secrets.randbelow(2**31)


def shuffled(count: int, seed: int) -> list[int]:
    """A uniformly random order of ``range(count)``, always the same for the same seed."""
    order = list(range(count))
    random.Random(seed).shuffle(order)
    return order


def _static_mistakes(question: Question, read) -> list[Mistake]:
    return [Mistake(m["name"], read(m["answer"]), m.get("why")) for m in question.spec.get("mistakes", [])]


def _read_array(value) -> np.ndarray:
    return parse_array(value if isinstance(value, str) else json.dumps(value))


def make_instance(question: Question, seed: int) -> Instance:
    """The concrete problem for ``question`` and ``seed``."""
    spec, kind = question.spec, question.kind
    if question.generator:
        generator = GENERATORS[question.generator]
        problem = generator(seed)
        return Instance(
            question,
            seed,
            problem.values,
            problem.key,
            problem.mistakes,
            steps=generator.steps,
            follow=generator.follow,
            upstream=generator.upstream,
        )
    if kind == "numeric":
        read = (lambda v: int(parse_number(v))) if question.integer else parse_number  # a count stays an int
        key = read(spec["answer"])
        return Instance(question, seed, {}, key, with_common_mistakes(key, _static_mistakes(question, read)))
    if kind == "matrix":
        key = _read_array(spec["answer"])
        return Instance(question, seed, {}, key, with_common_mistakes(key, _static_mistakes(question, _read_array)))
    if kind == "single":
        display = shuffled(len(spec["choices"]), seed)
        return Instance(question, seed, {}, LETTERS.index(spec["answer"]), [], display=display)
    if kind == "multi":
        display = shuffled(len(spec["choices"]), seed)
        return Instance(question, seed, {}, sorted(LETTERS.index(a) for a in spec["answers"]), [], display=display)
    if kind == "order":
        n = len(spec["items"])
        shuffler, display = random.Random(seed), list(range(n))
        while display == sorted(display):  # never show the items already in the right order
            shuffler.shuffle(display)
        return Instance(question, seed, {}, list(range(n)), [], display=display)
    if kind == "code":
        return Instance(question, seed, {}, functions.REFERENCES[spec["reference"]], [])
    if kind == "bughunt":
        specimen = bughunts.SPECIMENS[spec["specimen"]]
        key = (specimen.bug_line, LETTERS.index(spec["fix"]))
        values = {"listing": specimen.numbered(), "lines": len(specimen.lines)}
        return Instance(question, seed, values, key, [], display=shuffled(len(spec["fixes"]), seed))
    if kind == "flashcard":
        return Instance(question, seed, {}, spec["answer"], [])
    raise ValueError(f"unknown kind {kind!r}")
