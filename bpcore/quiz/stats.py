"""Progress at a glance: mastery and accuracy per topic, the daily streak, how many reviews are due."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from bpcore.quiz import schedule
from bpcore.quiz.bank import Bank
from bpcore.quiz.store import Store


@dataclass
class TopicStats:
    topic: str
    title: str
    questions: int
    seen: int  # questions answered at least once
    attempts: int
    accuracy: float | None  # mean score of the attempts (None before any)
    mastery: float  # mean predicted recall now, unseen questions counted as 0


@dataclass
class Summary:
    topics: list[TopicStats]
    attempts: int
    due: int
    streak: int  # consecutive days with an attempt, ending today (or yesterday: today is not over)


def streak(days: set[date], today: date) -> int:
    """How many consecutive days up to today (or up to yesterday, if nothing yet today) have an attempt."""
    day = today if today in days else today - timedelta(days=1)
    count = 0
    while day in days:
        count += 1
        day -= timedelta(days=1)
    return count


def summarise(bank: Bank, store: Store, at: datetime | None = None) -> Summary:
    at = at or datetime.now(UTC)
    states, attempts = store.review_states(), store.attempts()
    mastery = schedule.mastery(bank.questions, states, at)
    topics = []
    for topic, title in bank.titles.items():
        ids = {q.id for q in bank.questions if q.topic == topic}
        mine = [a for a in attempts if a["question_id"] in ids]
        topics.append(
            TopicStats(
                topic,
                title,
                len(ids),
                len({a["question_id"] for a in mine}),
                len(mine),
                sum(a["score"] for a in mine) / len(mine) if mine else None,
                mastery.get(topic, 0.0),
            )
        )
    due = sum(1 for q in bank.questions if q.id in states and schedule.due_time(states[q.id]) <= at)
    days = {datetime.fromisoformat(a["at"]).astimezone().date() for a in attempts}
    return Summary(topics, len(attempts), due, streak(days, at.astimezone().date()))


def format_summary(summary: Summary) -> str:
    """The terminal table printed by ``bpcore stats``."""
    lines = [f"{'topic':<28}{'questions':>10}{'seen':>6}{'attempts':>10}{'accuracy':>10}{'mastery':>9}"]
    for t in summary.topics:
        accuracy = "-" if t.accuracy is None else f"{t.accuracy:.0%}"
        lines.append(f"{t.title[:27]:<28}{t.questions:>10}{t.seen:>6}{t.attempts:>10}{accuracy:>10}{t.mastery:>9.0%}")
    plural = "s" * (summary.streak != 1)
    lines.append(f"\nstreak: {summary.streak} day{plural}   due now: {summary.due}   attempts: {summary.attempts}")
    return "\n".join(lines)
