"""Scheduling with FSRS, the session that records attempts, reproducible generators, and the stats."""

from datetime import UTC, date, datetime, timedelta

import numpy as np
import pytest
from fsrs import Rating

from bpcore.quiz import schedule
from bpcore.quiz.generators import GENERATORS
from bpcore.quiz.instance import make_instance
from bpcore.quiz.render import array_text
from bpcore.quiz.session import Session, pick, pick_mock
from bpcore.quiz.stats import streak, summarise

T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("score", "hints", "seconds", "self_rating", "rating"),
    [
        (0.0, 0, 5, None, Rating.Again),
        (0.4, 0, 5, None, Rating.Again),
        (0.75, 0, 5, None, Rating.Hard),
        (1.0, 1, 5, None, Rating.Hard),
        (1.0, 0, 50, None, Rating.Good),
        (1.0, 0, 5, None, Rating.Easy),
        (0.0, 0, 5, 4, Rating.Easy),
    ],
)
def test_each_attempt_earns_a_rating(score, hints, seconds, self_rating, rating):
    assert schedule.rating_for(score, hints, seconds, fast_seconds=20, self_rating=self_rating) == rating


def history(*ratings):
    """The state after reviewing a new card with ``ratings``, each exactly when due; and the last review time."""
    state, at = None, T0
    for r in ratings:
        reviewed_at = schedule.due_time(state) if state else at
        state = schedule.review(state, "q", r, reviewed_at)
    return state, reviewed_at


def test_a_failed_card_comes_back_earlier_and_a_passed_one_later():
    state, at = history(Rating.Good, Rating.Good, Rating.Good, Rating.Good)  # a card learned over a few days
    interval = schedule.due_time(state) - at
    assert interval > timedelta(days=3)
    passed = schedule.due_time(schedule.review(state, "q", Rating.Good, schedule.due_time(state)))
    failed = schedule.due_time(schedule.review(state, "q", Rating.Again, schedule.due_time(state)))
    assert failed - schedule.due_time(state) < timedelta(hours=1)  # back within the hour
    assert passed - schedule.due_time(state) > interval  # the next gap grows
    assert failed < schedule.due_time(state) + interval < passed


def test_the_same_history_gives_the_same_dates():
    assert history(3, 1, 3, 4)[0] == history(3, 1, 3, 4)[0]


def test_due_reviews_come_first_then_new_questions(store, bank):
    questions = bank.select(topic="chain_rule")
    session = Session(store, "quiz", seed=1)
    # an hour ago: the third question (multiple choice) answered wrong, the first one right and fast
    assert questions[2].kind == "multi"
    wrong = session.instance(questions[2])
    session.grade(wrong, wrong.letter(1), at=T0)  # "b" in the file is a wrong pick, wherever it is shown
    right = session.instance(questions[0])
    session.grade(right, right.letter(right.key), seconds=5, at=T0)
    later = T0 + timedelta(hours=1)
    order = pick(questions, store, at=later)
    assert order[0] is questions[2]  # due: failed, so back within minutes
    assert order[1 : len(questions) - 1] == [q for q in questions if q not in (questions[0], questions[2])]
    assert order[-1] is questions[0]  # passed: not due yet, goes last
    assert pick(questions, store, due_only=True, at=later) == [questions[2]]


def test_the_seed_is_logged_and_rebuilds_the_instance(store, bank):
    session = Session(store, "notebook", seed=123)
    question = bank.get("three-layer-dw2")
    instance = session.instance(question)
    graded = session.grade(instance, array_text(instance.key), hints_used=1, seconds=12.0)
    (attempt,) = store.attempts()
    assert attempt["seed"] == instance.seed and attempt["hints_used"] == 1 and attempt["mode"] == "notebook"
    assert attempt["rating"] == graded.rating == Rating.Hard  # right, but with a hint
    rebuilt = make_instance(question, attempt["seed"])
    assert np.array_equal(rebuilt.key, instance.key)
    assert np.array_equal(rebuilt.values["X"], instance.values["X"])


def test_a_typo_is_not_recorded(store, bank):
    from bpcore.quiz.parse import ParseError

    session = Session(store, "quiz")
    with pytest.raises(ParseError):
        session.grade(session.instance(bank.get("chain-rule-central-difference")), "12,01")
    assert store.count() == 0


@pytest.mark.parametrize("name", sorted(GENERATORS))
def test_generators_are_reproducible_and_distinguishable(name):
    generator = GENERATORS[name]
    for seed in (0, 1, 99):
        a, b = generator(seed), generator(seed)
        keys = a.key if isinstance(a.key, dict) else {"": a.key}
        again = b.key if isinstance(b.key, dict) else {"": b.key}
        assert all(np.array_equal(keys[k], again[k]) for k in keys)
    assert not np.array_equal(
        np.asarray(generator(0).values[next(iter(generator(0).values))]),
        np.asarray(generator(1).values[next(iter(generator(1).values))]),
    )


def test_mastery_streak_and_due_count(store, bank):
    session = Session(store, "quiz", seed=2)
    q = bank.get("chain-rule-composite")
    instance = session.instance(q)
    session.grade(instance, instance.letter(instance.key), seconds=60, at=T0)
    summary = summarise(bank, store, at=T0 + timedelta(minutes=1))
    chain = next(t for t in summary.topics if t.topic == "chain_rule")
    others = [t for t in summary.topics if t.topic != "chain_rule"]
    assert chain.seen == 1 and chain.attempts == 1 and chain.accuracy == 1.0
    assert 0 < chain.mastery <= 1 / chain.questions + 1e-9  # one question of the topic recalled
    assert all(t.mastery == 0 and t.accuracy is None for t in others)
    assert summary.due == 0 and summary.attempts == 1
    assert summarise(bank, store, at=T0 + timedelta(days=30)).due == 1


def test_streak_counts_consecutive_days():
    today = date(2025, 3, 10)
    assert streak({date(2025, 3, 10), date(2025, 3, 9), date(2025, 3, 7)}, today) == 2
    assert streak({date(2025, 3, 9), date(2025, 3, 8)}, today) == 2  # today is not over yet
    assert streak({date(2025, 3, 5)}, today) == 0


def test_a_mock_mixes_levels(bank):
    chosen = pick_mock(bank.questions, 6, seed=3)
    assert [q.level for q in chosen] == ["basic", "intermediate", "advanced"] * 2
    assert len({q.id for q in chosen}) == 6


def test_a_right_retry_after_a_wrong_first_try_is_not_rated_easy(store, bank):
    """Wrong, then right seconds later: Hard (back soon), not Easy (24-48 h); the first try sets the ceiling."""
    now = datetime.now(UTC)
    session = Session(store, "quiz", seed=0)
    q = bank.get("three-layer-dw2")
    instance = session.instance(q)
    wrong = session.grade(instance, array_text(instance.key * 2), seconds=5, at=now)
    right = session.grade(instance, array_text(instance.key), seconds=8, at=now + timedelta(seconds=10))
    assert wrong.rating == Rating.Again and right.rating == Rating.Hard
    assert datetime.fromisoformat(right.due) - now < timedelta(hours=1), right.due
    fresh = Session(store, "quiz", seed=1)  # a first try right and fast in another session: Easy as before
    other = fresh.instance(q)
    assert fresh.grade(other, array_text(other.key), seconds=1, at=now).rating == Rating.Easy


def test_stats_count_first_tries_and_a_fresh_miss_is_not_mastered(store, bank):
    """Wrong, then right on the retry: accuracy 0 (the first try), mastery 0 (just failed), not 50% and 100%."""
    session = Session(store, "quiz", seed=3)
    q = bank.get("chain-rule-composite")
    instance = session.instance(q)
    wrong = next(instance.letter(i) for i in range(len(q.spec["choices"])) if i != instance.key)
    session.grade(instance, wrong, seconds=20, at=T0)
    session.grade(instance, instance.letter(instance.key), seconds=30, at=T0 + timedelta(seconds=30))
    chain = next(t for t in summarise(bank, store, at=T0 + timedelta(minutes=2)).topics if t.topic == "chain_rule")
    assert chain.attempts == 2 and chain.seen == 1
    assert chain.accuracy == 0.0 and chain.mastery == 0.0
    later = Session(store, "quiz", seed=4)  # a new session, a new instance, right at the first try
    again = later.instance(q)
    later.grade(again, again.letter(again.key), seconds=30, at=T0 + timedelta(days=1))
    chain = next(
        t for t in summarise(bank, store, at=T0 + timedelta(days=1, minutes=1)).topics if t.topic == "chain_rule"
    )
    assert chain.accuracy == 0.5 and 0 < chain.mastery <= 1 / chain.questions + 1e-9


def test_stats_say_what_accuracy_and_mastery_mean(store, bank):
    from bpcore.quiz.stats import format_summary, html_summary

    summary = summarise(bank, store)
    for text in (format_summary(summary, width=200), html_summary(summary)):
        assert "first tries" in text and "predicted recall" in text
