"""One learner's run through some questions: pick them, make instances, grade, record, schedule.

The notebook widget and the terminal CLI are two faces of this one class, so both record the same
things the same way. A grade is recorded only when the answer could be read: a typo raises
:class:`~bpcore.quiz.parse.ParseError` and the learner simply tries again.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime

from bpcore.quiz import kinds, schedule
from bpcore.quiz.bank import LEVELS, Question
from bpcore.quiz.instance import Instance, make_instance, new_seed
from bpcore.quiz.kinds import Result
from bpcore.quiz.store import Store


@dataclass
class Graded:
    """A recorded attempt: the grade, the FSRS rating it earned and when the question is due again."""

    question: Question
    instance: Instance
    result: Result
    rating: int
    due: str
    attempt_id: int
    hints_used: int
    seconds: float
    scored: bool = True  # False: given after a mock's time was up (saved, and left out of the session's score)


def pick(questions: list[Question], store: Store, n: int | None = None, due_only: bool = False, at=None):
    """Due reviews first (earliest first), then new questions in bank order, then the rest by due date."""
    due, new, later = schedule.order_for_review(questions, store.review_states(), at)
    chosen = due if due_only else [*due, *new, *later]
    return chosen[:n] if n else chosen


def pick_mock(questions: list[Question], n: int, seed: int | None = None) -> list[Question]:
    """A mock interview: levels interleaved (basic, intermediate, advanced, basic, ...), topics mixed."""
    rng = random.Random(seed)
    pools = {level: [q for q in questions if q.level == level] for level in LEVELS}
    for pool in pools.values():
        rng.shuffle(pool)
    chosen = []
    while len(chosen) < n and any(pools.values()):
        for level in LEVELS:
            if pools[level] and len(chosen) < n:
                chosen.append(pools[level].pop())
    return chosen


def score_text(total: float) -> str:
    """A session's score for display: 1.67, not 1.66667."""
    return f"{round(total, 2):g}"


class Session:
    """Grades and records answers for one front end (``mode``: notebook, quiz, review or mock)."""

    def __init__(self, store: Store, mode: str, seed: int | None = None):
        self.store, self.mode = store, mode
        self._rng = random.Random(seed) if seed is not None else None
        self.graded: list[Graded] = []

    def instance(self, question: Question) -> Instance:
        """A fresh instance with a new seed (from the session's seed, if one was given)."""
        seed = self._rng.randrange(2**31) if self._rng else new_seed()
        return make_instance(question, seed)

    def _record(
        self, instance: Instance, answer, result: Result, hints_used: int, seconds: float, at, scored: bool = True
    ) -> Graded:
        q = instance.question
        rating = schedule.rating_for(result.score, hints_used, seconds, schedule.fast_seconds(q), result.rating)
        first = next((g for g in self.graded if g.question.id == q.id), None)
        if first is not None and result.rating is None:  # a retry: the first try of the session sets the ceiling
            rating = min(rating, schedule.retry_ceiling(first.rating))
        state = {}

        def review(old):
            state.update(schedule.review(old, q.id, rating, at))
            return state

        logged = answer if result.recorded is None else result.recorded  # a shown letter alone is ambiguous
        attempt_id = self.store.record_attempt(
            q.id, instance.seed, logged, result.score, hints_used, seconds, self.mode, rating, review, at
        )
        graded = Graded(q, instance, result, rating, state["due"], attempt_id, hints_used, seconds, scored)
        self.graded.append(graded)
        return graded

    def grade(
        self,
        instance: Instance,
        answer,
        hints_used: int = 0,
        seconds: float = 0.0,
        at: datetime | None = None,
        scored: bool = True,
    ) -> Graded:
        """Check ``answer``, record the attempt and its review. Raises ParseError (nothing recorded) if unreadable.

        ``scored=False``: an answer given after a mock's time was up. It is still recorded in the store with its
        grade and review (learner data is never dropped, and it is what the learner knows), but it does not count
        toward this session's score.
        """
        result = kinds.check(instance, answer)
        return self._record(instance, answer, result, hints_used, seconds, at, scored)

    def reveal(self, instance: Instance, hints_used: int = 0, seconds: float = 0.0, at=None) -> Graded:
        """The learner asked for the solution before answering: recorded as a miss (it comes back soon)."""
        result = Result(0.0, ["Solution shown before answering: this counts as a miss, so it comes back soon."])
        return self._record(instance, {"revealed": True}, result, hints_used, seconds, at)

    @property
    def score(self) -> tuple[float, int]:
        """(sum of scores, number of questions answered) in this session.

        Each question counts once, with the score of its first try (a solution shown before answering
        counts as a miss): trying again until right is learning, and is not counted as knowing it.
        An answer given after a mock's time was up is not counted.
        """
        first: dict[str, float] = {}
        for g in self.graded:
            if g.scored:
                first.setdefault(g.question.id, g.result.score)
        return sum(first.values()), len(first)
