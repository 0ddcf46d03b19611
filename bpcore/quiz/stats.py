"""Progress at a glance: mastery and accuracy per topic, the daily streak, how many reviews are due.

Both count **first tries**, as a session's score does: the first answer to a shown question (one instance:
its seed), not the retries that follow it until right. Trying again until right is learning, not knowing.

* accuracy: the mean score of the topic's first tries, over all time.
* mastery: per question, the score of its latest first try times FSRS's predicted recall now (so a question
  answered wrong minutes ago counts 0, and a right answer fades as it is due again); averaged over all the
  topic's questions, unseen ones counting 0.
"""

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
    accuracy: float | None  # mean score of the first tries (None before any)
    mastery: float  # mean of latest first-try score x predicted recall now, unseen questions counted as 0


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


RETRY_WINDOW = timedelta(hours=1)  # an answer to the same instance within this of the last one is a retry


def first_tries(attempts: list[dict]) -> list[dict]:
    """The first try at each shown question, oldest first: an attempt is a retry when the previous attempt at
    the same question had the same seed (the same instance) and came less than RETRY_WINDOW before it."""
    last: dict[str, dict] = {}
    firsts = []
    for a in attempts:
        before = last.get(a["question_id"])
        retry = (
            before is not None
            and before["seed"] == a["seed"]
            and datetime.fromisoformat(a["at"]) - datetime.fromisoformat(before["at"]) < RETRY_WINDOW
        )
        if not retry:
            firsts.append(a)
        last[a["question_id"]] = a
    return firsts


def summarise(bank: Bank, store: Store, at: datetime | None = None) -> Summary:
    at = at or datetime.now(UTC)
    states, attempts = store.review_states(), store.attempts()
    firsts = first_tries(attempts)
    latest = {a["question_id"]: a["score"] for a in firsts}  # oldest first: the latest first try wins
    topics = []
    for topic, title in bank.titles.items():
        ids = {q.id for q in bank.questions if q.topic == topic}
        mine = [a for a in attempts if a["question_id"] in ids]
        tries = [a["score"] for a in firsts if a["question_id"] in ids]
        recall = [latest.get(i, 0.0) * schedule.retrievability(states.get(i), at) for i in ids]
        topics.append(
            TopicStats(
                topic,
                title,
                len(ids),
                len({a["question_id"] for a in mine}),
                len(mine),
                sum(tries) / len(tries) if tries else None,
                sum(recall) / len(recall) if recall else 0.0,
            )
        )
    due = sum(1 for q in bank.questions if q.id in states and schedule.due_time(states[q.id]) <= at)
    days = {datetime.fromisoformat(a["at"]).astimezone().date() for a in attempts}
    return Summary(topics, len(attempts), due, streak(days, at.astimezone().date()))


COLUMNS = ("questions", "seen", "attempts", "accuracy", "mastery")


def cells(t: TopicStats) -> tuple[str, ...]:
    """The numbers of one topic's row, formatted (the same in the terminal and the notebook)."""
    accuracy = "-" if t.accuracy is None else f"{t.accuracy:.0%}"
    return str(t.questions), str(t.seen), str(t.attempts), accuracy, f"{t.mastery:.0%}"


MEANING = (
    "accuracy: mean score of first tries (retries not counted). mastery: each question's latest first-try "
    "score times its predicted recall now, over all its questions (unseen count 0)."
)


def footer(summary: Summary) -> str:
    plural = "s" * (summary.streak != 1)
    return f"streak: {summary.streak} day{plural}   due now: {summary.due}   attempts: {summary.attempts}"


def format_summary(summary: Summary, width: int | None = None) -> str:
    """The terminal table printed by ``bpcore stats``: each topic's id (what ``--topic`` takes) first,
    then its numbers, then its full title (last, so a long title never pushes the numbers out of line).

    Narrower than that (``width``: the terminal's by default), no row wraps: each title goes on its own
    line under its row; narrower still, each topic is two lines, ``id · title`` and then its numbers."""
    from bpcore.quiz.render import fit, terminal_width

    width = terminal_width(width)
    id_width = max([len("topic"), *(len(t.topic) for t in summary.topics)]) + 2
    numbers_head = "".join(f"{c:>{len(c) + 2}}" for c in COLUMNS)
    longest = max((len(t.title) for t in summary.topics), default=0)
    lines = [fit(MEANING, width), ""]
    if id_width + len(numbers_head) + 2 + longest <= width:  # one line a topic
        lines.append(f"{'topic':<{id_width}}{numbers_head}  title")
        for t in summary.topics:
            lines.append(f"{t.topic:<{id_width}}{_numbers(t)}  {t.title}")
    elif id_width + len(numbers_head) <= width:  # the title under its row
        lines += [f"{'topic':<{id_width}}{numbers_head}", "    title"]
        for t in summary.topics:
            lines += [f"{t.topic:<{id_width}}{_numbers(t)}", fit("    " + t.title, width)]
    else:  # id and title, then the numbers
        lines += ["topic · title", numbers_head]
        for t in summary.topics:
            lines += [fit(f"{t.topic} · {t.title}", width), _numbers(t)]
    lines.append(f"\n{footer(summary)}")
    lines.append("Practise one topic: bpcore quiz --topic TOPIC")
    return "\n".join(fit(line, width) for line in lines)


def _numbers(t: TopicStats) -> str:
    return "".join(f"{v:>{len(c) + 2}}" for c, v in zip(COLUMNS, cells(t), strict=True))


def html_summary(summary: Summary) -> str:
    """The notebook dashboard's table: full titles, and the topic ids that ``bp.quiz.show(topic=...)`` takes."""
    import html

    head = "".join(f"<th style='text-align:right'>{c}</th>" for c in COLUMNS)
    rows = [
        f"<tr><td style='text-align:left'>{html.escape(t.title)}</td>"
        f"<td style='text-align:left'><code>{html.escape(t.topic)}</code></td>"
        + "".join(f"<td style='text-align:right'>{v}</td>" for v in cells(t))
        + "</tr>"
        for t in summary.topics
    ]
    return (
        f"<table><thead><tr><th style='text-align:left'>topic</th><th style='text-align:left'>id</th>{head}</tr>"
        f"</thead><tbody>{''.join(rows)}</tbody></table>"
        f"<p>{footer(summary)}</p>"
        f"<p>{html.escape(MEANING)}</p>"
        '<p>Practise one topic: <code>bp.quiz.show(topic="id")</code></p>'
    )
