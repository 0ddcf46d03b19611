"""Grading: one checker per kind of question, each returning a score in [0, 1] and feedback.

``check(instance, answer)`` dispatches on the kind. What each checker accepts as ``answer``:

=========  ==================================================================  ==========================
kind       answer                                                              score
=========  ==================================================================  ==========================
single     a letter as shown ("b") or a 0-based shown position                 1 or 0
multi      letters as shown ("a, c", "ac", ["a", "c"])                         (right - wrong picks) / right
numeric    text ("3/4", "1e-3", "73,856") or a number; right to the asked         1 or 0, mistake named
           significant digits (diagnose.close), a whole-number answer exactly
matrix     text ("[[1, 2], [3, 4]]", numpy's printout) or an array; a vector   1 or 0, mistake named;
           key also takes its row and column forms; a chained derivation        per step, first wrong named
           takes {step: answer} or a list in step order
order      the shown letters in the right order ("c a b d")                    pairs in the right order
code       the learner's function object (never text)                          trials passed / trials
bughunt    {"line": 7, "fix": "b" or the fixed line as text (run, in a child   1/2 line + 1/2 fix
           process, in place of the bug: any fix that agrees with the engine)
flashcard  the learner's own rating: again / hard / good / easy                0, 1/2, 1, 1
=========  ==================================================================  ==========================

Choices and bug-hunt fixes are shown shuffled (see :mod:`~bpcore.quiz.instance`): letters are read as the
learner saw them, feedback speaks of those letters, and ``Result.recorded`` keeps both the letter and the
file's option it stood for, so the stored attempt means the same thing whatever order was shown.

An answer that cannot be read raises :class:`~bpcore.quiz.parse.ParseError` (not an attempt: the
learner fixes the typo); a readable but wrong answer returns a low score with feedback.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from bpcore.quiz import bughunts, fixrun
from bpcore.quiz.diagnose import Mistake, allowed_gap, as_vector_like, close, diagnose
from bpcore.quiz.functions import LearnerError, check_function
from bpcore.quiz.generators import as_shown
from bpcore.quiz.instance import LETTERS, Instance
from bpcore.quiz.parse import (
    ParseError,
    parse_array,
    parse_letters,
    parse_line_number,
    parse_number,
    parse_rating,
)

EXACT_DIGITS = 15  # what a float holds: a whole-number answer's mistakes are named when they match to all of them
FLASHCARD_SCORES = {1: 0.0, 2: 0.5, 3: 1.0, 4: 1.0}  # again, hard, good, easy


@dataclass
class Result:
    """The grade of one answer. ``feedback`` holds Markdown paragraphs for the learner."""

    score: float
    feedback: list[str] = field(default_factory=list)
    diagnosis: Mistake | None = None
    first_wrong_step: str | None = None
    step_scores: dict[str, float] | None = None
    rating: int | None = None  # flashcards: the learner's own rating (1..4)
    followed: list[str] | None = None  # chained derivations: steps credited as right given earlier answers
    # what the attempt log stores instead of the raw answer, when the raw answer alone would be ambiguous
    # (a letter means nothing without the order it was shown in): e.g. {"letter": "c", "option": 0}
    recorded: object = None

    @property
    def correct(self) -> bool:
        return self.score >= 1.0 - 1e-9


# ----------------------------------------------------------------------------- choices


def check_single(instance: Instance, answer) -> Result:
    choices = instance.question.spec["choices"]
    picked = parse_letters(answer, len(choices))
    if len(picked) != 1:
        raise ParseError(f"expected exactly one letter, got {len(picked)}")
    letter, index = LETTERS[picked[0]], instance.option(picked[0])
    recorded = {"letter": letter, "option": index}
    why = instance.question.spec.get("why")
    note = [why[index]] if why else []
    if index == instance.key:
        return Result(1.0, [f"({letter}) is right.", *note], recorded=recorded)
    return Result(0.0, [f"({letter}) is not right.", *note], recorded=recorded)


def check_multi(instance: Instance, answer) -> Result:
    choices = instance.question.spec["choices"]
    positions = sorted(set(parse_letters(answer, len(choices))))
    picked, right = {instance.option(p) for p in positions}, set(instance.key)
    hits, wrong = picked & right, picked - right
    score = max(0.0, (len(hits) - len(wrong)) / len(right))
    feedback = [f"{len(hits)} of {len(right)} right choices picked"]
    shown_wrong = sorted(wrong, key=instance.letter)
    if wrong:
        feedback[0] += (
            f"; {', '.join(f'({instance.letter(i)})' for i in shown_wrong)} should not be (each wrong pick costs one)"
        )
    missed = len(right - picked)
    if missed:
        feedback.append(f"{missed} right choice{'s' * (missed > 1)} still missing.")
    why = instance.question.spec.get("why")
    if why:
        feedback += [f"({instance.letter(i)}) {why[i]}" for i in shown_wrong]
    recorded = {"letters": [LETTERS[p] for p in positions], "options": [instance.option(p) for p in positions]}
    return Result(score, feedback, recorded=recorded)


# ----------------------------------------------------------------------------- numbers and arrays


def _mistake_feedback(mistake: Mistake | None) -> list[str]:
    if mistake is None:
        return []
    return [f"It looks like: **{mistake.name}**. {mistake.explanation}"]


def _shown_number(value: float) -> str:
    """A whole number in full (16777215, not 1.67772e+07); anything else as %g."""
    return str(int(value)) if float(value).is_integer() and abs(value) < 2**53 else f"{value:g}"


def check_numeric(instance: Instance, answer) -> Result:
    value = parse_number(answer, grouped=instance.question.integer)
    shown = _shown_number(value)
    if instance.question.integer:
        if value == instance.key:
            return Result(1.0, [f"{shown} is right."])
        mistake = diagnose(value, instance.key, instance.mistakes, EXACT_DIGITS)
        why = "is not a whole number" if not float(value).is_integer() else "is not the answer"
        head = f"{shown} {why} (a count is graded exactly: no tolerance)."
        return Result(0.0, [head, *_mistake_feedback(mistake)], mistake)
    digits = instance.question.digits
    if close(value, instance.key, digits):
        return Result(1.0, [f"{shown} is right."])
    mistake = diagnose(value, instance.key, instance.mistakes, digits)
    head = f"{shown} is not the answer to {digits} significant digits."
    return Result(0.0, [head, *_mistake_feedback(mistake)], mistake)


def _shape_message(name: str, got: np.ndarray, key: np.ndarray) -> str:
    if key.ndim == 1:
        return (
            f"{name}: expected a vector of {key.size} number{'s' * (key.size != 1)} "
            f"(flat, a row or a column), got shape {got.shape}."
        )
    return f"{name}: expected shape {key.shape}, got {got.shape}."


def _where(index: tuple[int, ...], shape: tuple[int, ...]) -> str:
    """An entry's place as a learner counts it, from 1: "entry 3", "row 2, column 1"."""
    if len(shape) == 1:
        return f"entry {index[0] + 1}"
    if len(shape) == 2:
        return f"row {index[0] + 1}, column {index[1] + 1}"
    return "position (" + ", ".join(str(i + 1) for i in index) + ")"


def _difference_message(name: str, got: np.ndarray, key: np.ndarray, digits: int) -> str:
    """A right-shaped wrong array, in the learner's words: how many entries are off, the largest gap and where."""
    wrong = np.abs(got - key) > allowed_gap(key, digits)
    off = int(np.count_nonzero(wrong))
    gap = np.where(wrong, np.abs(got - key), -1.0)
    worst = tuple(int(i) for i in np.unravel_index(int(np.argmax(gap)), key.shape))
    return (
        f"{name}: {off} of {key.size} entr{'y is' if off == 1 else 'ies are'} not right to {digits} significant "
        f"digits; the largest difference, {float(gap[worst]):.3g}, is at {_where(worst, key.shape)}."
    )


def _grade_array(got: np.ndarray, key: np.ndarray, mistakes: list[Mistake], digits: int, name="answer"):
    """(score, feedback lines, mistake) for one array answer: shape first, then every entry's digits, then diagnosis."""
    key = np.asarray(key, dtype=np.float64)
    got = as_vector_like(got, key)
    if close(got, key, digits):
        return 1.0, [f"{name}: right."], None
    mistake = diagnose(got, key, mistakes, digits)
    if got.shape != key.shape:
        lines = [_shape_message(name, got, key)]
    else:
        lines = [_difference_message(name, got, key, digits)]
    return 0.0, lines + _mistake_feedback(mistake), mistake


def check_matrix(instance: Instance, answer) -> Result:
    digits = instance.question.digits
    if instance.steps:
        return check_steps(instance, answer, digits)
    score, lines, mistake = _grade_array(parse_array(answer), instance.key, instance.mistakes, digits)
    return Result(score, lines, mistake)


def check_steps(instance: Instance, answer, digits: int) -> Result:
    """A chained derivation: each step graded on its own; the first wrong one is named.

    Follow-through: a later step is also right if it is what the learner's *own* earlier answer implies
    (the generator recomputes it from their numbers with the engine). A rounded dL/dz2 carried into
    dL/dh, or a slip early in the chain carried on correctly, costs only the step where it happened.
    """
    names = list(instance.steps)
    if isinstance(answer, list | tuple):
        if len(answer) > len(names):
            raise ParseError(f"expected at most {len(names)} steps ({', '.join(names)}), got {len(answer)}")
        answer = dict(zip(names, answer, strict=False))
    if not isinstance(answer, dict):
        raise ParseError(f"expected one answer per step ({', '.join(names)}), got a {type(answer).__name__}")
    unknown = answer.keys() - set(names)
    if unknown:
        raise ParseError(f"unknown steps {sorted(unknown)}; expected {', '.join(names)}")
    read = {}
    for name in names:
        given = answer.get(name)
        if given is None or (isinstance(given, str) and not given.strip()):
            continue
        try:
            read[name] = as_vector_like(parse_array(given), np.asarray(instance.key[name]))
        except ParseError as error:
            raise ParseError(f"{name}: {error}") from None
    implied = _implied_steps(instance, read)
    scores, feedback, first_wrong, first_mistake, followed = {}, [], None, None, []
    for name in names:
        if name not in read:
            scores[name], lines, mistake = 0.0, [f"{name}: no answer."], None
        else:
            scores[name], lines, mistake = _grade_array(
                read[name], instance.key[name], instance.mistakes[name], digits, name
            )
            if scores[name] < 1 and _follows(read[name], implied.get(name), digits):
                scores[name], lines, mistake = 1.0, [f"{name}: right, given your {instance.upstream[name]}."], None
                followed.append(name)
        feedback += lines
        if scores[name] < 1 and first_wrong is None:
            first_wrong, first_mistake = name, mistake
    score = sum(scores.values()) / len(names)
    if first_wrong:
        feedback.insert(
            0,
            f"{sum(s == 1 for s in scores.values())} of {len(names)} steps right; "
            f"the first wrong step is **{first_wrong}**.",
        )
    return Result(score, feedback, first_mistake, first_wrong, scores, followed=followed)


def _implied_steps(instance: Instance, read: dict) -> dict:
    """{step: its value given the learner's answers to the steps before it}, for steps that can follow through."""
    if instance.follow is None:
        return {}
    usable = {name: value for name, value in read.items() if value.shape == np.shape(instance.key[name])}
    if not usable:
        return {}
    # what their answers imply from the exact forward values, and from the values as the prompt shows them
    # (4 digits): a learner who multiplies by the shown h is as right as one who kept every digit
    exact, shown = instance.follow(instance.values, usable), instance.follow(as_shown(instance.values), usable)
    return {name: (exact[name], shown[name]) for name in exact}


def _follows(got: np.ndarray, implied, digits: int) -> bool:
    """``got`` is what the learner's earlier answer implies, and that is not trivially zero (all-zero answers
    down the chain are consistent, but show no working)."""
    if implied is None:
        return False
    for value in implied:
        value = np.asarray(value, dtype=np.float64)
        scale = float(np.max(np.abs(value))) if value.size else 0.0
        if scale > 1e-12 and close(got, value, digits):
            return True
    return False


# ----------------------------------------------------------------------------- order


def check_order(instance: Instance, answer) -> Result:
    n = len(instance.display)
    letters = parse_letters(answer, n, what="item")
    if sorted(letters) != list(range(n)):
        missing = [LETTERS[i] for i in range(n) if i not in letters]
        repeated = sorted({LETTERS[i] for i in letters if letters.count(i) > 1})
        problems = [f"missing {', '.join(missing)}"] if missing else []
        problems += [f"repeated {', '.join(repeated)}"] if repeated else []
        raise ParseError(f"expected each of the letters a to {LETTERS[n - 1]} exactly once; {'; '.join(problems)}")
    order = [instance.display[i] for i in letters]  # item indices in the learner's order
    pairs = [(i, j) for i in range(n) for j in range(i + 1, n)]
    right = sum(order.index(a) < order.index(b) for a, b in pairs)  # item a belongs before item b when a < b
    if right == len(pairs):
        return Result(1.0, ["Right order."])
    first = next(p for p in range(n) if order[p] != p)
    items = instance.question.spec["items"]
    return Result(
        right / len(pairs),
        [
            f"{right} of {len(pairs)} pairs in the right order. Position {first + 1} is the first one out of place "
            f"(you put {items[order[first]]!r} there)."
        ],
    )


# ----------------------------------------------------------------------------- code, bug hunt, flashcard


def check_code(instance: Instance, answer) -> Result:
    reference = instance.key
    try:
        passed, lines = check_function(reference, answer, instance.seed)
    except LearnerError as error:
        raise ParseError(str(error)) from None
    trials = reference.trials
    head = f"{passed} of {trials} random trials passed." if passed < trials else f"All {trials} random trials passed."
    return Result(passed / trials, [head, *lines])


def check_bughunt(instance: Instance, answer) -> Result:
    """Half for the line, half for the fix: a shown letter, or a line of code judged by running it.

    A fix goes where the learner says: a typed line replaces the line they named (not the bug's line) and
    is run there, in a child process with a time limit (:mod:`~bpcore.quiz.fixrun`); if the gradients then
    agree with the engine's, it is right, however it is worded. A typed fix that reads like a listed one
    (whitespace and comments aside) counts as that one. A fix at a line that is not the bug is never right:
    the listed fixes are all for the bug's line, and the feedback never says "right" under a wrong line.
    """
    if isinstance(answer, tuple | list) and len(answer) == 2:
        answer = {"line": answer[0], "fix": answer[1]}
    if not isinstance(answer, dict) or not {"line", "fix"} <= answer.keys():
        raise ParseError('expected the line number and the fix, e.g. {"line": 7, "fix": "b"}')
    bug_line, fix_index = instance.key
    fixes = instance.question.spec["fixes"]
    line = parse_line_number(answer["line"], instance.values["lines"])
    line_ok = line == bug_line
    fix = str(answer["fix"]).strip()
    if not fix:
        raise ParseError("expected the fix: a letter from the list, or the fixed line typed out")
    verdict = None
    if len(fix) == 1 and fix.lower() in LETTERS[: len(fixes)]:
        chosen = instance.option(LETTERS.index(fix.lower()))
    else:
        typed = bughunts.normalise(fixrun.clean(fix))
        chosen = next((i for i, f in enumerate(fixes) if bughunts.normalise(f) == typed), None)
        specimen = bughunts.SPECIMENS[instance.question.spec["specimen"]]
        if chosen is None and typed == bughunts.normalise(specimen.lines[line - 1]):
            verdict = fixrun.Verdict("disagrees", f"that is line {line} itself, unchanged")
            if line_ok:
                verdict = fixrun.Verdict("disagrees", "that is the buggy line itself, unchanged")
        elif chosen is None:
            verdict = fixrun.judge(specimen.name, [fix], at=line)[0]  # in place of the line they named
            if verdict.status == "syntax":
                raise ParseError(verdict.message)
    if verdict is None:
        fix_ok = line_ok and chosen == fix_index
        if not line_ok:
            said = f"not right at line {line}: a fix counts only at the line that holds the bug."
        else:
            said = "right." if fix_ok else "not the fix that makes this pass agree with the engine."
    else:
        fix_ok = line_ok and verdict.ok
        said = ("right: " if fix_ok else "not yet: ") + verdict.message + ("" if verdict.message[-1] in ".?!" else ".")
        if verdict.ok and not line_ok:  # agrees at another line: a workaround there, not the fix of the bug
            said = f"not right: {verdict.message}, but the bug is on another line, and a fix counts only there."
    feedback = [
        f"Line {line}: " + ("that is the bug." if line_ok else "the code there is fine; the bug is elsewhere."),
        "Fix: " + said,
    ]
    recorded = {"line": line, "fix": fix, "option": chosen}
    if verdict is not None:
        recorded["verdict"] = verdict.status
    return Result(0.5 * line_ok + 0.5 * fix_ok, feedback, recorded=recorded)


def check_flashcard(instance: Instance, answer) -> Result:
    rating = parse_rating(answer)
    return Result(FLASHCARD_SCORES[rating], [f"Rated {('again', 'hard', 'good', 'easy')[rating - 1]}."], rating=rating)


CHECKERS = {
    "single": check_single,
    "multi": check_multi,
    "numeric": check_numeric,
    "matrix": check_matrix,
    "order": check_order,
    "code": check_code,
    "bughunt": check_bughunt,
    "flashcard": check_flashcard,
}


def check(instance: Instance, answer) -> Result:
    """Grade ``answer`` for ``instance``. Raises ParseError if the answer cannot be read."""
    return CHECKERS[instance.kind](instance, answer)
