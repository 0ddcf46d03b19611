"""Spaced repetition with FSRS (the ``fsrs`` package): when should each question come back?

Every graded attempt becomes one of FSRS's four ratings::

    wrong (score < 1/2)                      -> Again   (comes back within minutes)
    partly right (1/2 <= score < 1)          -> Hard
    right, but after a hint                  -> Hard
    right                                    -> Good
    right and fast (under fast_seconds)      -> Easy
    flashcards                               -> the learner's own rating
    a retry in the same session              -> at best Hard, when the first try was not right

FSRS keeps, per question, a stability (days until recall drops to 90%) and a difficulty; a rating
updates both and sets the next due date. Mastery (in :mod:`~bpcore.quiz.stats`) weighs each question's
predicted recall by its latest first-try score, so a fresh miss counts 0. Fuzzing is off, so the same
history gives the same dates.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from fsrs import Card, Rating, Scheduler, State

SCHEDULER = Scheduler(enable_fuzzing=False)
FAST_SECONDS = {"basic": 20.0, "intermediate": 60.0, "advanced": 120.0}  # a question may set its own
RATING_NAMES = {1: "again", 2: "hard", 3: "good", 4: "easy"}


def rating_for(
    score: float, hints_used: int, seconds: float, fast_seconds: float, self_rating: int | None = None
) -> int:
    """The FSRS rating (1 Again .. 4 Easy) that one graded attempt earns."""
    if self_rating is not None:
        return int(self_rating)
    if score < 0.5:
        return int(Rating.Again)
    if score < 1.0 - 1e-9 or hints_used > 0:
        return int(Rating.Hard)
    return int(Rating.Easy) if seconds < fast_seconds else int(Rating.Good)


def retry_ceiling(first_rating: int) -> int:
    """The best rating a retry in the same session can earn after a first try rated ``first_rating``.

    Right seconds after a wrong answer is not knowing it: a wrong or partly right first try caps the
    retry at Hard (it comes back soon, not in a day or two). Answers are graded by their first try.
    """
    return int(Rating.Easy) if first_rating >= int(Rating.Good) else int(Rating.Hard)


def fast_seconds(question) -> float:
    return float(question.fast_seconds or FAST_SECONDS[question.level])


def _card_id(question_id: str) -> int:
    # a stable id from the question id (fsrs would otherwise use the clock, and sleep 1 ms to keep ids unique)
    return int(hashlib.sha1(question_id.encode()).hexdigest()[:12], 16)


def review(state: dict | None, question_id: str, rating: int, at: datetime | None = None) -> dict:
    """The new review state after ``rating``: {"card": fsrs card dict, "due": ISO time (UTC)}."""
    at = (at or datetime.now(UTC)).astimezone(UTC)
    card = Card.from_dict(state["card"]) if state else Card(card_id=_card_id(question_id), due=at)
    card, _ = SCHEDULER.review_card(card, Rating(rating), review_datetime=at)
    return {"card": card.to_dict(), "due": card.due.astimezone(UTC).isoformat()}


def due_time(state: dict) -> datetime:
    return datetime.fromisoformat(state["due"])


def retrievability(state: dict | None, at: datetime | None = None) -> float:
    """FSRS's predicted chance of recalling the answer at ``at`` (0 for a question never answered)."""
    if not state:
        return 0.0
    at = at or datetime.now(UTC)
    return float(SCHEDULER.get_card_retrievability(Card.from_dict(state["card"]), current_datetime=at))


def order_for_review(questions, states: dict[str, dict], at: datetime | None = None):
    """(due, new, later): due questions earliest first, then never-seen ones in bank order, then the rest."""
    at = at or datetime.now(UTC)
    due = sorted(
        (q for q in questions if q.id in states and due_time(states[q.id]) <= at), key=lambda q: states[q.id]["due"]
    )
    new = [q for q in questions if q.id not in states]
    later = sorted(
        (q for q in questions if q.id in states and due_time(states[q.id]) > at), key=lambda q: states[q.id]["due"]
    )
    return due, new, later


def how_long(seconds: float) -> str:
    """'less than a minute', '1 minute', '10 minutes', '3 hours', '4 days'."""
    if seconds < 60:
        return "less than a minute"
    if seconds < 3600:
        return f"{round(seconds / 60)} minute{'s' * (round(seconds / 60) != 1)}"
    if seconds < 48 * 3600:
        return f"{round(seconds / 3600)} hours"
    return f"{round(seconds / 86400)} days"


def describe_due(due_iso: str, at: datetime | None = None) -> str:
    """'in 10 minutes', 'in 3 hours', 'in 4 days (2025-03-01)': when a question comes back."""
    at = at or datetime.now(UTC)
    seconds = (datetime.fromisoformat(due_iso) - at).total_seconds()
    if seconds < 60:
        return "now"
    if seconds < 48 * 3600:
        return f"in {how_long(seconds)}"
    return f"in {how_long(seconds)} ({datetime.fromisoformat(due_iso).astimezone().date()})"


def describe_next(due_iso: str, at: datetime | None = None) -> str:
    """'on 2025-03-01 at 09:30 (in 4 days)': the local date and time of a review, and how long until then."""
    at = at or datetime.now(UTC)
    due = datetime.fromisoformat(due_iso)
    return f"on {due.astimezone():%Y-%m-%d at %H:%M} (in {how_long((due - at).total_seconds())})"


def _aware_time(value) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        return None
    return at if at.tzinfo is not None else None


def card_problem(card) -> str | None:
    """None if ``card`` is a card dict FSRS can schedule, else what is wrong with it (for import checks)."""
    if not isinstance(card, dict):
        return f"expected an FSRS card (an object with {', '.join(Card(card_id=1).to_dict())}), got {card!r:.60}"
    missing = [key for key in Card(card_id=1).to_dict() if key not in card]
    if missing:
        return f"the FSRS card is missing {', '.join(missing)}"
    if not isinstance(card["card_id"], int) or isinstance(card["card_id"], bool) or card["card_id"] < 0:
        return f"the card's card_id is {card['card_id']!r:.60}, expected a whole number >= 0"
    if card["state"] not in [int(s) for s in State] or isinstance(card["state"], bool):
        return f"the card's state is {card['state']!r:.60}, expected one of {[int(s) for s in State]}"
    if card["step"] is not None and (
        not isinstance(card["step"], int) or isinstance(card["step"], bool) or card["step"] < 0
    ):
        return f"the card's step is {card['step']!r:.60}, expected a whole number >= 0 or null"
    for key, low, high in (("stability", 0.0, 1e6), ("difficulty", 1.0, 10.0)):
        value = card[key]
        if value is None:
            continue
        if not isinstance(value, int | float) or isinstance(value, bool) or not low <= value <= high:
            return f"the card's {key} is {value!r:.60}, expected null or a number from {low:g} to {high:g}"
    if _aware_time(card["due"]) is None:
        return f"the card's due is {card['due']!r:.60}, expected an ISO 8601 time with a time zone"
    if card["last_review"] is not None and _aware_time(card["last_review"]) is None:
        return f"the card's last_review is {card['last_review']!r:.60}, expected null or an ISO 8601 time with a zone"
    try:  # what the scheduler itself makes of it: what `bpcore quiz` and `stats` will do with it
        parsed = Card.from_dict(card)
        SCHEDULER.get_card_retrievability(parsed, current_datetime=datetime.now(UTC))
        SCHEDULER.review_card(Card.from_dict(card), Rating.Good, review_datetime=datetime.now(UTC))
    except Exception as error:  # any failure here means the card is unusable
        return f"FSRS cannot use the card: {type(error).__name__}: {error}"
    return None
