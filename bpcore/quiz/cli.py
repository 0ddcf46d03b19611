"""The ``bpcore`` command: the question banks in a terminal.

    bpcore quiz [--topic T] [--level L] [-n N]   due reviews first, then new questions, with feedback
    bpcore review [-n N]                         only the questions that are due
    bpcore mock [--minutes 30] [-n N]            mixed levels, timed, no hints, feedback at the end
    bpcore stats                                 mastery by topic, streak, due count
    bpcore validate [--seed-sample N]            the authoring check of every bank
    bpcore export FILE / bpcore import FILE      progress as JSON

In a mock each prompt shows the time left; an answer given after the time is up is saved (grade and review,
like any answer) but not scored, and the learner is told so.

While answering: ``?`` shows a hint, ``!`` the solution, ``q`` quits, an empty line skips.
Every graded answer is saved the moment it is given; Ctrl-C leaves the store intact.
Code questions need a notebook (``bp.quiz.ask(id)``), so the terminal skips them.

The options are parsed by the top-level module ``bpcore_cli`` (the console script's entry point), which
imports argparse only: ``bpcore --help`` and a mistyped option never load the engine. Each command here
imports what it needs.
"""

from __future__ import annotations

import os
import sys
import time

from bpcore_cli import COMMANDS_HELP, build_parser

TERMINAL_KINDS = ("single", "multi", "numeric", "matrix", "order", "bughunt", "flashcard")
MOCK_KINDS = TERMINAL_KINDS[:-1]  # a flashcard shows its model answer at once: that would be feedback
HELP_WORDS = ("help", "hint", "hints", "h?", "help?", "hint?")  # typed instead of ?: pointed to the commands


class Quit(Exception):
    """The learner typed q (or closed the input)."""


class Terminal:
    """Line input and output, replaceable in tests; ``read`` returns the stripped line.

    Everything the CLI prints goes through :meth:`say`, which fits every line to :attr:`width` without
    breaking a word (:func:`bpcore.quiz.render.fit`); only validate's author report keeps its lines whole."""

    def __init__(self, read=input, out=None, clock=time.monotonic, width: int | None = None):
        self._read, self.out, self.clock, self._width = read, out or sys.stdout, clock, width

    @property
    def width(self) -> int:
        """Columns to fill: the one given, else the terminal's (``COLUMNS`` if set), looked up each time."""
        from bpcore.quiz.render import terminal_width

        return terminal_width(self._width)

    def say(self, text: str = "", wrap: bool = True) -> None:
        """Print ``text`` fitted to the width; ``wrap=False`` keeps each line whole (reports to grep)."""
        from bpcore.quiz.render import fit

        print(fit(text, self.width) if wrap else text, file=self.out, flush=True)

    def read(self, prompt: str) -> str:
        try:
            line = self._read(prompt)
        except EOFError:
            raise Quit from None
        if line.strip().lower() in ("q", "quit", "exit"):
            raise Quit
        if line.lstrip().startswith("[") and line.count("[") > line.count("]"):
            while line.count("[") > line.count("]"):  # a pasted multi-line array: read until balanced
                try:
                    line += "\n" + self._read("... ")
                except EOFError:
                    raise Quit from None
        return line.strip()


# ----------------------------------------------------------------------------- one question


def _help_line(instance) -> str:
    """How to type an answer to this question: for arrays, an example of the shape the key has."""
    kind = instance.question.kind
    if kind == "matrix":
        import numpy as np

        keys = [np.asarray(k) for k in instance.key.values()] if instance.steps else [np.asarray(instance.key)]
        vector = "Answer like [1, 2, 3] (a vector: flat, a row or a column all count)."
        matrix = "Answer like [[1, 2], [3, 4]] (or paste numpy's printout)."
        if all(k.ndim <= 1 for k in keys):
            return vector
        if all(k.ndim >= 2 for k in keys):
            return matrix
        return "Answer each step like [1, 2, 3] if it is a vector, [[1, 2], [3, 4]] if it is a matrix."
    return {
        "single": "Answer with one letter.",
        "multi": "Answer with every right letter, e.g. a c (wrong picks cost points).",
        "numeric": "Answer with a number: 0.25, -3/4 or 1e-3.",
        "matrix": "Answer like [[1, 2], [3, 4]] (or paste numpy's printout).",
        "order": "Answer with the letters in the right order, e.g. c a d b.",
        "bughunt": "Give the line number, then the fix (a letter, or type the line).",
        "flashcard": "Think of your answer, then press Enter to see it.",
    }[kind]


def _time_left(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return f"{seconds // 60}:{seconds % 60:02d} left"


def _read_answer(term: Terminal, instance, clock_prompt=lambda: ""):
    """What the learner typed, in the form the checker takes; or '?', '!' or '' (skip).

    ``clock_prompt()`` is put before each prompt (a mock shows the time left there). ``help`` or ``hint``
    typed as an answer comes back as "help": it is not an answer, and the learner is shown the commands."""
    q = instance.question
    commands = ("?", "!", "", "help")

    def read(prompt: str) -> str:
        line = term.read(f"{clock_prompt()}{prompt}")
        return "help" if line.lower() in HELP_WORDS else line

    if q.kind == "matrix" and instance.steps:
        answer = {}
        for name in instance.steps:
            line = read(f"{name} = ")
            if line in commands:
                return line
            answer[name] = line
        return answer
    if q.kind == "bughunt":
        line = read("line> ")
        if line in commands:
            return line
        fix = read("fix> ")
        return fix if fix in commands else {"line": line, "fix": fix}
    return read("> ")


def _feedback(term: Terminal, graded, show_explanation: bool) -> None:
    from bpcore.quiz import render, schedule

    result = graded.result
    mark = "RIGHT" if result.correct else f"score {result.score:.2f}"
    term.say(render.terminal_text(f"[{mark}] " + result.feedback[0]) if result.feedback else f"[{mark}]")
    for line in result.feedback[1:]:
        term.say(render.terminal_text(line, indent="  "))
    if show_explanation:
        term.say("\n" + render.terminal_text("Why: " + graded.question.explanation.strip()))
    term.say(f"(next review {schedule.describe_due(graded.due)})")


def _show_solution(term: Terminal, instance) -> None:
    from bpcore.quiz import render

    term.say("Solution:\n" + render.solution(instance, "terminal"))
    term.say(render.terminal_text("Why: " + instance.question.explanation.strip()))


def ask_question(
    term: Terminal, session, instance, *, hints: bool = True, feedback: bool = True, deadline: float | None = None
):
    """Ask one question until it is answered right, skipped or revealed. Returns the last Graded or None.

    ``deadline`` (a mock's end, on ``term.clock``): each prompt shows the time left, and an answer given after
    it is saved but not scored (``Graded.scored`` is False), and the learner is told so."""
    from bpcore.quiz import render
    from bpcore.quiz.parse import ParseError

    q = instance.question
    term.say(render.prompt(instance, "terminal"))
    term.say(f"\n{_help_line(instance)}")
    term.say(COMMANDS_HELP if hints else "q quits; no hints in a mock.")
    started, hints_used, last = term.clock(), 0, None
    if q.kind == "flashcard":
        term.read("(Enter to reveal) ")
        term.say(render.terminal_text(q.spec["answer"].strip()))
        while True:
            try:
                return session.grade(instance, term.read("again / hard / good / easy? "), 0, term.clock() - started)
            except ParseError as error:
                term.say(f"Could not read that: {error}")

    def clock_prompt() -> str:
        return "" if deadline is None else f"[{_time_left(deadline - term.clock())}] "

    while True:
        answer = _read_answer(term, instance, clock_prompt)
        answered = term.clock()
        late = deadline is not None and answered > deadline
        if answer == "":
            if feedback and last is not None and not last.result.correct:  # moving on after a wrong answer
                _show_solution(term, instance)
            return last
        if answer == "help":
            term.say(
                "Type ? for a hint, ! for the solution, q to quit, or press Enter to move on."
                if hints
                else "No hints in a mock interview: type your answer, q to quit, or press Enter to skip."
            )
            continue
        if answer == "?":
            if hints and hints_used < len(q.hints):
                hints_used += 1
                term.say(render.terminal_text(f"Hint {hints_used} of {len(q.hints)}: " + q.hints[hints_used - 1]))
            else:
                term.say("No more hints." if hints else "No hints in a mock interview.")
            continue
        if answer == "!":
            if last is None and feedback:
                last = session.reveal(instance, hints_used, term.clock() - started)
                term.say("Shown before any answer: this counts as a miss, so the question comes back soon.")
            if feedback:
                _show_solution(term, instance)
                return last
            term.say("The solutions come at the end of the mock.")
            continue
        try:
            last = session.grade(instance, answer, hints_used, answered - started, scored=not late)
        except ParseError as error:
            term.say(f"Could not read that: {error}")
            continue
        if late:
            term.say("Time was up before this answer: it is saved, but not scored.")
        if not feedback:
            return last
        _feedback(term, last, show_explanation=last.result.correct)
        if last.result.correct:
            return last
        term.say("Try again, ? for a hint, ! for the solution, or Enter to move on.")


# ----------------------------------------------------------------------------- commands


def _store(term: Terminal):
    from bpcore.quiz.store import Store

    store = Store()
    if store.notice:
        print(f"bpcore: {store.notice}", file=sys.stderr, flush=True)
    return store


def _run(term: Terminal, questions, session) -> None:
    try:
        for number, q in enumerate(questions, start=1):
            term.say(f"\n--- [{number}/{len(questions)}] {q.topic} · {q.level} · {q.id}")
            ask_question(term, session, session.instance(q))
    except Quit:
        term.say("\nStopped.")
    from bpcore.quiz.session import score_text

    total, count = session.score
    term.say(
        f"\nDone: {score_text(total)} / {count} answered (the first try at each question counts). "
        "Progress saved; `bpcore stats` shows it."
    )


def cmd_quiz(args, term: Terminal) -> int:
    from bpcore.quiz.bank import load_banks
    from bpcore.quiz.session import Session, pick

    questions = load_banks(args.banks).select(args.topic, args.level, kinds=TERMINAL_KINDS)
    store = _store(term)
    chosen = pick(questions, store, args.n)
    _run(term, chosen, Session(store, "quiz", args.seed))
    return 0


def cmd_review(args, term: Terminal) -> int:
    from bpcore.quiz.bank import load_banks
    from bpcore.quiz.session import Session, pick

    store = _store(term)
    questions = load_banks(args.banks).select(kinds=TERMINAL_KINDS)
    chosen = pick(questions, store, args.n, due_only=True)
    if not chosen:
        term.say(_nothing_due(questions, store.review_states()))
        return 0
    _run(term, chosen, Session(store, "review", args.seed))
    return 0


def _nothing_due(questions, states: dict) -> str:
    """What ``review`` says when nothing is due: when the next review is, or that there is nothing to review yet."""
    from bpcore.quiz import schedule

    upcoming = sorted((schedule.due_time(states[q.id]), q.id) for q in questions if q.id in states)
    if not upcoming:
        return (
            "Nothing to review yet: no question has been answered. `bpcore quiz` asks new questions, "
            "and each one you answer comes back here when it is due."
        )
    when, question_id = upcoming[0]
    return (
        f"Nothing is due. The next review is {schedule.describe_next(when.isoformat())}: {question_id}"
        f"{f' and {len(upcoming) - 1} more later' if len(upcoming) > 1 else ''}. "
        "`bpcore quiz` asks new questions."
    )


def cmd_mock(args, term: Terminal) -> int:
    """A timed mock interview: mixed levels, no hints, no feedback until the end, then a report by topic."""
    from bpcore.quiz import render
    from bpcore.quiz.bank import load_banks
    from bpcore.quiz.session import Session, pick_mock, score_text

    bank = load_banks(args.banks)
    questions = pick_mock(bank.select(kinds=MOCK_KINDS), args.n, args.seed)
    session = Session(_store(term), "mock", args.seed)
    deadline = term.clock() + args.minutes * 60
    term.say(f"Mock interview: {len(questions)} questions, {args.minutes:g} minutes. Feedback comes at the end.")
    try:
        for number, q in enumerate(questions, start=1):
            left = deadline - term.clock()
            if left <= 0:
                term.say("\nTime is up.")
                break
            term.say(f"\n--- [{number}/{len(questions)}] {_time_left(left)}")
            ask_question(term, session, session.instance(q), hints=False, feedback=False, deadline=deadline)
    except Quit:
        term.say("\nStopped early.")
    term.say("\n=== Report ===")
    by_topic: dict[str, list[float]] = {}
    for g in session.graded:
        if g.scored:
            by_topic.setdefault(g.question.topic, []).append(g.result.score)
    term.say(
        _report_table([(bank.titles[topic], sum(scores), len(scores)) for topic, scores in by_topic.items()], term)
    )
    for g in session.graded:
        if not g.result.correct:
            feedback = " ".join(g.result.feedback)
            late = "" if g.scored else ", after time: not scored"
            term.say("\n" + render.terminal_text(f"{g.question.id} (score {g.result.score:.2f}{late}): {feedback}"))
            term.say("Solution:\n" + render.solution(g.instance, "terminal"))
            term.say(render.terminal_text("Why: " + g.question.explanation.strip()))
    total, count = session.score
    late = sum(not g.scored for g in session.graded)
    after = f" ({late} answer{'s' * (late != 1)} after time: saved, not scored)" if late else ""
    term.say(f"\nTotal: {score_text(total)} / {count} answered of {len(questions)}{after}.")
    return 0


def _report_table(rows: list[tuple[str, float, int]], term: Terminal) -> str:
    """The mock's scores by topic, the numbers in one column: a title too long to leave room for them goes
    on its own line, with its numbers under it."""
    numbers = 14  # "  12.50 / 10"
    column = min(max((len(title) for title, _, _ in rows), default=0), term.width - numbers)
    lines = []
    for title, total, count in rows:
        score = f"{total:>7.2f} / {count}"
        if len(title) > column:
            lines += [title, " " * column + score]
        else:
            lines.append(f"{title:<{column}}{score}")
    return "\n".join(lines)


def cmd_stats(args, term: Terminal) -> int:
    from bpcore.quiz.bank import load_banks
    from bpcore.quiz.stats import format_summary, summarise

    term.say(format_summary(summarise(load_banks(args.banks), _store(term)), width=term.width))
    return 0


def cmd_validate(args, term: Terminal) -> int:
    from bpcore.quiz.validate import validate

    report = validate(args.banks, seeds=args.seeds, seed_sample=args.seed_sample, sample=args.sample)
    term.say(str(report), wrap=False)  # an author greps it: one line per finding, named by file and question
    return 0 if report else 1


def cmd_export(args, term: Terminal) -> int:
    counts = _store(term).export_json(args.file)
    term.say(f"Exported {counts['attempts']} attempts and {counts['review_state']} review states to {args.file}.")
    if counts.get("unreadable"):
        print(
            f"bpcore: the progress file is damaged: {counts['unreadable']} rows could not be read and are not in "
            "the export. Everything that could be read is.",
            file=sys.stderr,
        )
        return 1
    return 0


def cmd_import(args, term: Terminal) -> int:
    counts = _store(term).import_json(args.file)
    term.say(f"Imported {counts['attempts']} new attempts and {counts['review_state']} newer review states.")
    return 0


# ----------------------------------------------------------------------------- arguments


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so the interpreter's final flush does not raise BrokenPipeError again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # stdout is not a real file (a test's StringIO): nothing to flush later
        pass


COMMANDS = {
    "quiz": cmd_quiz,
    "review": cmd_review,
    "mock": cmd_mock,
    "stats": cmd_stats,
    "validate": cmd_validate,
    "export": cmd_export,
    "import": cmd_import,
}


def main(argv=None, term: Terminal | None = None) -> int:
    return run(build_parser().parse_args(argv), term)


def run(args, term: Terminal | None = None) -> int:
    """Run the command ``args`` parsed (see :func:`bpcore_cli.build_parser`); returns the exit status."""
    term = term or Terminal()
    try:
        return COMMANDS[args.command](args, term)
    except BrokenPipeError:  # `bpcore quiz | head`: the reader left; every answer given so far is saved
        _silence_stdout()
        print(
            "bpcore: the output was closed (a pipe such as `| head` ended); every answer given is saved.",
            file=sys.stderr,
        )
        return 141  # 128 + SIGPIPE, what a shell reports for a command whose reader went away
    except Quit:
        term.say("\nBye. Every answer you gave is saved.")
        return 0
    except KeyboardInterrupt:
        print("\nInterrupted. Every answer you finished is saved; the one in progress was not.", file=sys.stderr)
        return 130
    except Exception as error:
        from bpcore.quiz.bank import BankError
        from bpcore.quiz.store import StoreError

        if isinstance(error, BankError | StoreError | ValueError | KeyError):
            print(f"bpcore: {error}", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":
    sys.exit(main())
