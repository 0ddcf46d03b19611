"""Every line the terminal quiz prints fits the window and no word is broken, at 60 and 120 columns.

The CLI is driven in-process over real questions of every terminal kind (hints, unreadable answers,
solutions, flashcards, a mock with its report, stats and review), with ``COLUMNS`` set as a terminal sets it.
"""

import io

import pytest

from bpcore.quiz import render
from bpcore.quiz.cli import Terminal, main


def learner(screen: io.StringIO, mock: bool = False):
    """Answers as a newcomer tries things: ? for a hint, something unreadable, then ! (or, in a mock, guesses)."""
    tries: dict[int, int] = {}

    def read(prompt):
        screen.write(prompt)
        text = screen.getvalue()
        question = text.count("\n--- [")
        if "again / hard / good / easy" in prompt:
            line = "good"
        elif "Enter to reveal" in prompt:
            line = ""
        else:
            step = tries[question] = tries.get(question, -1) + 1
            script = ["a", "0", ""] if mock else ["?", "zzz", "!"]
            line = script[step] if step < len(script) else ""
        screen.write(line + "\n")
        return line

    return read


def words(text: str) -> set[str]:
    return set(text.split())


def assert_fits(text: str, width: int, sources: list[str]) -> None:
    long = [line for line in text.splitlines() if len(line) > width]
    assert not long, f"{len(long)} lines longer than {width}: {long[:3]}"
    shown = words(text)
    for source in sources:
        missing = words(source) - shown
        assert not missing, f"words broken or missing at {width} columns: {sorted(missing)[:5]}"


@pytest.mark.parametrize("width", [60, 120])
def test_every_line_fits_and_no_word_is_broken(home, bank, monkeypatch, width):
    monkeypatch.setenv("COLUMNS", str(width))
    screen = io.StringIO()
    for topic, n in (("three_layer", 6), ("gradient_checking", 8), ("chain_rule", 6)):  # every terminal kind
        main(["quiz", "--topic", topic, "-n", str(n), "--seed", "1"], Terminal(read=learner(screen), out=screen))
    quiz = screen.getvalue()
    asked = [q for q in bank.questions if q.id in words(quiz)]
    assert len(asked) >= 18 and {q.kind for q in asked} >= {"matrix", "bughunt", "single", "order", "flashcard"}
    sources = [q.id for q in asked] + [render.latex_to_text(q.explanation) for q in asked if q.kind != "flashcard"]
    sources += [render.latex_to_text(q.hints[0]) for q in asked if q.hints and q.kind != "flashcard"]
    assert_fits(quiz, width, sources)

    screen = io.StringIO()
    main(["mock", "-n", "8", "--seed", "3"], Terminal(read=learner(screen, mock=True), out=screen))
    main(["stats"], Terminal(read=learner(screen), out=screen))
    main(["review"], Terminal(read=lambda prompt: "", out=screen))
    rest = screen.getvalue()
    assert "=== Report ===" in rest and "Practise one topic" in rest
    assert_fits(rest, width, list(bank.titles.values()) + list(bank.titles))


@pytest.mark.parametrize("width", [60, 120])
def test_the_mock_report_keeps_its_numbers_in_one_column(width):
    from bpcore.quiz.cli import _report_table

    rows = [
        ("Chain rule", 1.0, 2),
        ("The cost of backprop, memory, and forward vs reverse mode", 0.5, 1),
        ("CNN", 3, 10),
    ]
    table = _report_table(rows, Terminal(width=width))
    numbers = [line for line in table.splitlines() if "/" in line]
    assert len(numbers) == 3 and len({line.index("/") for line in numbers}) == 1, table
    assert all(len(line) <= width for line in table.splitlines()) and all(title in table for title, _, _ in rows)
