"""The terminal CLI: driven through a real pseudo-terminal, and in-process with a scripted keyboard and clock."""

import io
import json
import os
import pty
import re
import select
import signal
import subprocess
import time
from datetime import UTC, datetime, timedelta

import pytest

from bpcore.quiz.cli import Terminal, build_parser, main
from bpcore.quiz.store import Store

BANK = """
topic = "demo"
title = "Demo topic"

[[question]]
id = "demo-pick"
level = "basic"
kind = "single"
prompt = "Pick the one that says this one."
choices = ["not this", "this one"]
answer = "b"
hints = ["the one that is not not this"]
explanation = "It says so."
notebook = "notebooks/00_start_here.ipynb"
tags = []

[[question]]
id = "demo-number"
level = "intermediate"
kind = "numeric"
prompt = "What is three quarters?"
answer = "3/4"
hints = ["3 divided by 4"]
explanation = "3/4 = 0.75."
notebook = "notebooks/00_start_here.ipynb"
tags = []

[[question]]
id = "demo-matrix"
level = "advanced"
kind = "matrix"
prompt = "Give the 2 x 2 identity."
answer = [[1, 0], [0, 1]]
hints = ["ones on the diagonal"]
explanation = "The identity has ones on the diagonal."
notebook = "notebooks/00_start_here.ipynb"
tags = []
"""


def shown_letter(screen: str, choice: str) -> str:
    """The letter the screen last showed next to ``choice``: choices are shuffled, so read it as a learner would."""
    return re.findall(rf"^\* \(([a-z])\) {re.escape(choice)}$", screen, re.MULTILINE)[-1]


# the number of read(2) in /proc/PID/syscall, by machine (Linux)
READ_SYSCALL = {"x86_64": 0, "aarch64": 63, "arm64": 63, "i686": 3, "i386": 3}


class Pty:
    """A child process on a pseudo-terminal: ``expect`` text, ``send`` a line, like a person at a keyboard.

    ``expect`` reads on from where the last match ended, as a person reads down the screen: the same
    text shown twice (each question's ``> `` prompt) is waited for anew each time.
    """

    def __init__(self, args, env):
        master, slave = pty.openpty()
        self.proc = subprocess.Popen(args, stdin=slave, stdout=slave, stderr=slave, env=env, close_fds=True)
        os.close(slave)
        self.master, self.output, self.seen = master, "", 0

    def expect(self, text, timeout=60.0):
        deadline = time.monotonic() + timeout
        while text not in self.output[self.seen :]:
            ready, _, _ = select.select([self.master], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                raise AssertionError(f"waited for {text!r}; the terminal shows:\n{self.output[-2000:]}")
            try:
                chunk = os.read(self.master, 4096)
            except OSError:  # the child closed the terminal
                chunk = b""
            if not chunk:
                raise AssertionError(f"the program ended before printing {text!r}:\n{self.output[-2000:]}")
            self.output += chunk.decode(errors="replace").replace("\r\n", "\n")
        self.seen = self.output.index(text, self.seen) + len(text)

    def wait_until_reading(self, timeout=60.0):
        """Until the child sleeps in read(2) on its standard input: ``input()`` waits for the learner.

        Its prompt is written just before that read starts. CPython notices a SIGINT that lands in
        between only when the read is interrupted, so such a Ctrl-C would wait for the next key.
        Where /proc/PID/syscall cannot tell (not Linux), the prompt alone has to do.
        """
        read = READ_SYSCALL.get(os.uname().machine)
        path = f"/proc/{self.proc.pid}/syscall"
        if read is None or not os.path.exists(path):
            return
        deadline = time.monotonic() + timeout
        while True:
            with open(path) as f:
                fields = f.read().split()
            if fields[:2] == [str(read), "0x0"]:  # read(0, ...)
                return
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"the program is not waiting for input ({fields[:2]}):\n{self.output[-2000:]}")
            time.sleep(0.01)

    def send(self, line):
        os.write(self.master, (line + "\n").encode())

    def finish(self, timeout=30.0):
        code = self.proc.wait(timeout=timeout)
        os.close(self.master)
        return code


@pytest.fixture
def demo_banks(write_bank):
    return write_bank("demo.toml", BANK)


def test_quiz_in_a_terminal_right_wrong_quit(home, child_env, python, demo_banks):
    term = Pty(
        [python, "-m", "bpcore.quiz.cli", "--banks", str(demo_banks), "quiz", "-n", "3", "--seed", "1"], child_env
    )
    term.expect("Pick the one that says this one.")
    term.expect("> ")
    letter = shown_letter(term.output, "this one")
    term.send(letter)
    term.expect(f"[RIGHT] ({letter}) is right.")
    term.expect("What is three quarters?")
    term.expect("> ")
    term.send("0.7")
    term.expect("[score 0.00] 0.7 is not the answer to 3 significant digits")
    term.expect("Try again")
    term.send("")  # move on
    term.expect("Give the 2 x 2 identity.")
    term.expect("> ")
    term.send("q")
    term.expect("Done: 1 / 2 answered")
    assert term.finish() == 0
    assert "Traceback" not in term.output
    with Store() as store:
        attempts = store.attempts()
        assert [(a["question_id"], a["score"], a["answer"], a["mode"]) for a in attempts] == [
            ("demo-pick", 1.0, {"letter": letter, "option": 1}, "quiz"),  # the letter seen, the file's option
            ("demo-number", 0.0, "0.7", "quiz"),
        ]
        assert set(store.review_states()) == {"demo-pick", "demo-number"}
        assert store.integrity() == "ok"


def test_ctrl_c_leaves_the_store_intact(home, child_env, python, demo_banks):
    term = Pty([python, "-m", "bpcore.quiz.cli", "--banks", str(demo_banks), "quiz", "-n", "3"], child_env)
    term.expect("Pick the one that says this one.")
    term.expect("> ")
    term.send(shown_letter(term.output, "this one"))
    term.expect("What is three quarters?")
    term.expect("> ")  # the second question's prompt: the first answer is graded and saved
    term.wait_until_reading()
    term.proc.send_signal(signal.SIGINT)
    term.expect("Interrupted. Every answer you finished is saved")
    assert term.finish() == 130
    assert "Traceback" not in term.output
    with Store() as store:
        assert store.notice is None and store.integrity() == "ok"
        assert [a["question_id"] for a in store.attempts()] == ["demo-pick"]


def test_a_damaged_store_is_reported_without_a_traceback(home, child_env, python):
    home.mkdir(parents=True)
    (home / "progress.db").write_bytes(b"\x00garbage" * 500)
    done = subprocess.run(
        [python, "-m", "bpcore.quiz.cli", "stats"], env=child_env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0
    assert "could not be read" in done.stderr and "progress.db.damaged-" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    assert "Chain rule and the engine" in done.stdout
    assert len(list(home.glob("progress.db.damaged-*"))) == 1


def scripted(*lines):
    """A keyboard that types ``lines`` in order, and the screen it writes to; then end of input.

    A line may be a function of what the screen shows so far (see :func:`pick`).
    """
    keys, screen = iter(lines), io.StringIO()

    def read(prompt):
        screen.write(prompt)
        line = next(keys, None)
        if line is None:
            raise EOFError
        line = line(screen.getvalue()) if callable(line) else line
        screen.write(line + "\n")
        return line

    return read, screen


def pick(choice: str, other: bool = False):
    """Type the letter shown next to ``choice`` (or, with ``other``, any other shown letter)."""

    def letter(screen: str) -> str:
        right = shown_letter(screen, choice)
        return next(c for c in "ab" if c != right) if other else right

    return letter


class FakeClock:
    def __init__(self, step):
        self.now, self.step = 0.0, step

    def __call__(self):
        self.now += self.step
        return self.now


def test_hints_solution_and_multiline_paste(home, demo_banks):
    read, screen = scripted("?", "!", "?", "3/4", "[[1, 0],", " [0, 1]]")
    assert main(["--banks", str(demo_banks), "quiz", "--seed", "2"], Terminal(read=read, out=screen)) == 0
    text = screen.getvalue()
    letter = shown_letter(text, "this one")
    assert "Hint 1 of 1: the one that is not not this" in text and f"Solution:\n({letter}) this one" in text
    assert "[RIGHT] 0.75 is right." in text and "[RIGHT] matrix" not in text and "answer: right." in text
    with Store() as store:
        attempts = store.attempts()
        assert [(a["question_id"], a["score"]) for a in attempts] == [
            ("demo-pick", 0.0),
            ("demo-number", 1.0),
            ("demo-matrix", 1.0),
        ]
        assert attempts[0]["answer"] == {"revealed": True} and attempts[1]["hints_used"] == 1


def test_review_asks_only_what_is_due(home, demo_banks):
    from bpcore.quiz.bank import load_banks
    from bpcore.quiz.session import Session

    bank, yesterday = load_banks(demo_banks), datetime.now(UTC) - timedelta(days=1)
    with Store() as store:  # answered wrong yesterday: due now
        session = Session(store, "quiz")
        instance = session.instance(bank.get("demo-pick"))
        session.grade(instance, instance.letter(0), at=yesterday)  # "not this": wrong
    read, screen = scripted(pick("this one"))
    main(["--banks", str(demo_banks), "review"], Terminal(read=read, out=screen))
    assert "demo-pick" in screen.getvalue() and "demo-number" not in screen.getvalue()
    read, screen = scripted()
    main(["--banks", str(demo_banks), "review"], Terminal(read=read, out=screen))
    assert "Nothing is due" in screen.getvalue()


def test_a_mock_is_timed_holds_feedback_and_reports_by_topic(home, demo_banks):
    read, screen = scripted(pick("this one", other=True), "0.75", "[[1, 0], [0, 1]]")
    clock = FakeClock(step=100.0)  # every look at the clock costs 100 s: time runs out after two questions
    code = main(
        ["--banks", str(demo_banks), "mock", "--minutes", "15", "-n", "3", "--seed", "0"],
        Terminal(read=read, out=screen, clock=clock),
    )
    text = screen.getvalue()
    assert code == 0 and "Time is up." in text
    report = text.split("=== Report ===")[1]
    assert "[RIGHT]" not in text.split("=== Report ===")[0]  # no feedback during the mock
    assert "Demo topic" in report and "Total: 1 / 2 answered of 3." in report
    letter = shown_letter(text, "this one")
    assert "demo-pick (score 0.00)" in report and f"Solution:\n({letter}) this one" in report
    with Store() as store:
        assert {a["mode"] for a in store.attempts()} == {"mock"} and store.count() == 2


def test_a_mock_answer_given_after_time_is_up_is_saved_but_not_scored(home, demo_banks):
    read, screen = scripted(pick("this one", other=True), "0.75", "[[1, 0], [0, 1]]")
    clock = FakeClock(step=100.0)  # 10 minutes: the second answer arrives at 1000 s, after the deadline (700 s)
    code = main(
        ["--banks", str(demo_banks), "mock", "--minutes", "10", "-n", "3", "--seed", "0"],
        Terminal(read=read, out=screen, clock=clock),
    )
    text = screen.getvalue()
    assert code == 0 and "[5:00 left] > " in text  # the prompt shows the time left
    during, report = text.split("=== Report ===")
    assert "Time was up before this answer: it is saved, but not scored." in during
    assert "Total: 0 / 1 answered of 3 (1 answer after time: saved, not scored)." in report
    assert "Demo topic   0.00 / 1" in report  # the late right answer is not in the topic score
    with Store() as store:  # the learner's answer is kept all the same
        assert [(a["question_id"], a["score"]) for a in store.attempts()] == [("demo-pick", 0.0), ("demo-number", 1.0)]


def test_export_and_import_from_the_command_line(home, demo_banks, tmp_path, capsys):
    read, screen = scripted(pick("this one"), "q")
    main(["--banks", str(demo_banks), "quiz"], Terminal(read=read, out=screen))
    exported = tmp_path / "mine.json"
    assert main(["export", str(exported)]) == 0
    assert json.loads(exported.read_text())["attempts"][0]["question_id"] == "demo-pick"
    assert main(["import", str(exported)]) == 0
    assert "Imported 0 new attempts" in capsys.readouterr().out
    (tmp_path / "bad.json").write_text("{}")
    assert main(["import", str(tmp_path / "bad.json")]) == 2
    assert "not a bpcore progress export" in capsys.readouterr().err


def test_validate_passes_on_the_starter_banks(home, capsys):
    assert main(["validate"]) == 0
    assert capsys.readouterr().out.strip().endswith(": ok")


def test_validate_fails_on_a_broken_bank(tmp_path, home, capsys):
    banks, notebooks = tmp_path / "repo" / "quizzes", tmp_path / "repo" / "notebooks"
    banks.mkdir(parents=True)
    notebooks.mkdir()
    (notebooks / "00_start_here.ipynb").write_text(json.dumps({"cells": []}))
    broken = BANK.replace('answer = "3/4"', 'answer = "3/4"\nmistakes = [{ name = "same as the key", answer = 0.75 }]')
    broken = broken.replace(
        'notebook = "notebooks/00_start_here.ipynb"\ntags = []\n\n[[question]]\nid = "demo-matrix"',
        'notebook = "notebooks/00_start_here.ipynb#Missing"\ntags = []\n\n[[question]]\nid = "demo-matrix"',
    )
    (banks / "demo.toml").write_text(broken)
    assert main(["--banks", str(banks), "validate", "--seeds", "2"]) == 1
    out = " ".join(capsys.readouterr().out.split())  # lines are fitted to the terminal's width
    assert "demo-number: mistake 'same as the key' scored 1.0" in out
    assert (
        "question 'demo-number': field 'notebook': notebooks/00_start_here.ipynb has no heading matching #Missing"
        in out
    )


def test_unknown_topic_is_a_clear_error(home, capsys):
    assert main(["quiz", "--topic", "chains"]) == 2
    err = capsys.readouterr().err
    assert "unknown topic 'chains'; the banks have: " in err
    assert all(topic in err for topic in ("chain_rule", "three_layer", "training"))


def test_help_needs_no_banks_or_store(capsys):
    with pytest.raises(SystemExit) as done:
        build_parser().parse_args(["--help"])
    assert done.value.code == 0 and "mock" in capsys.readouterr().out


def test_the_console_script_prints_help_without_loading_the_engine():
    import sys
    import tomllib
    from pathlib import Path

    pyproject = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
    entry = pyproject["project"]["scripts"]["bpcore"]
    module, function = entry.split(":")
    probe = (
        f"import sys, {module}\n"
        f"try:\n    {module}.{function}(['--help'])\nexcept SystemExit as done:\n    assert done.code == 0\n"
        "print('loaded:', *sorted(m for m in sys.modules if m == 'numpy' or m.split('.')[0] == 'bpcore'))"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert "COMMAND" in result.stdout  # the help was printed
    assert result.stdout.splitlines()[-1] == "loaded:"  # neither numpy nor any module of the package


def test_stats_shows_every_full_title_with_the_id_topic_takes(home, bank, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "160")  # wide enough for a topic's row and title on one line
    assert main(["stats"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("accuracy: mean score of first tries")  # what the numbers mean, first
    lines = lines[lines.index("") + 1 :]
    assert lines[0].split()[0] == "topic" and lines[0].split()[-1] == "title"
    rows = {line.split()[0]: line for line in lines[1:] if line.strip()}
    assert max(len(title) for title in bank.titles.values()) > 40  # long titles exist, and none is cut
    for topic, title in bank.titles.items():
        assert topic in rows, f"no row starts with the topic id {topic!r}:\n" + "\n".join(lines)
        assert rows[topic].endswith("  " + title), f"the row of {topic!r} does not end with {title!r}: {rows[topic]!r}"
        assert build_parser().parse_args(["quiz", "--topic", topic]).topic == topic and bank.select(topic)
    assert "bpcore quiz --topic TOPIC" in lines[-1]


def test_review_with_nothing_due_says_when_the_next_review_is(home, demo_banks):
    read, screen = scripted()
    assert main(["--banks", str(demo_banks), "review"], Terminal(read=read, out=screen)) == 0
    assert "Nothing to review yet: no question has been answered." in screen.getvalue()

    read, screen = scripted(pick("this one"), "0.75", "q")  # two right answers: both come back later
    main(["--banks", str(demo_banks), "quiz"], Terminal(read=read, out=screen))
    with Store() as store:
        states = store.review_states()
    assert set(states) == {"demo-pick", "demo-number"}
    first = min(states, key=lambda q: states[q]["due"])
    due = datetime.fromisoformat(states[first]["due"])
    assert due > datetime.now(UTC)

    read, screen = scripted()
    assert main(["--banks", str(demo_banks), "review"], Terminal(read=read, out=screen)) == 0
    said = " ".join(screen.getvalue().split())  # lines are fitted to the terminal's width
    when = f"on {due.astimezone():%Y-%m-%d at %H:%M}"
    assert f"Nothing is due. The next review is {when} (in " in said and f"): {first} and 1 more later." in said, said
    wait = re.search(r"\(in (\d+) (minutes?|hours|days)\)", said)
    assert wait, said
    unit = {"minute": 60, "minutes": 60, "hours": 3600, "days": 86400}[wait.group(2)]
    actual = (due - datetime.now(UTC)).total_seconds()
    assert abs(int(wait.group(1)) * unit - actual) <= unit / 2 + 5, f"said {wait.group(0)}; it is due in {actual:.0f} s"


# ----------------------------------------------------------------------------- bad arguments (issue 14, item 9)

BAD_ARGUMENTS = [
    (["quiz", "-n", "0"], "argument -n: expected at least 1 question, got 0"),
    (["quiz", "-n", "-5"], "argument -n: expected at least 1 question, got -5"),
    (["review", "-n", "many"], "argument -n: expected a whole number of questions such as 5, got 'many'"),
    (["mock", "--minutes", "nan"], "argument --minutes: expected a finite number of minutes > 0, got 'nan'"),
    (["mock", "--minutes", "inf"], "argument --minutes: expected a finite number of minutes > 0, got 'inf'"),
    (["mock", "--minutes", "0"], "argument --minutes: expected a finite number of minutes > 0, got '0'"),
    (["validate", "--seeds", "-1"], "argument --seeds: expected at least 1 seed per generator, got -1"),
    (["quiz", "--seed", "-1"], "argument --seed: expected a seed >= 0, got -1"),
    (["quiz", "--bogus"], "unknown option: --bogus"),
    (["stats", "--verbose"], "unknown option: --verbose"),
    (["export", "{missing}/progress.json"], "the folder {missing} does not exist"),
    (["export", "{tmp}"], "{tmp} is a folder; give a file name"),
    (["import", "{missing}/progress.json"], "no file {missing}/progress.json"),
    (["import", "{tmp}"], "{tmp} is a folder"),
]


@pytest.mark.parametrize(("argv", "message"), BAD_ARGUMENTS, ids=lambda v: " ".join(v) if isinstance(v, list) else "")
def test_a_bad_argument_is_one_line_and_a_non_zero_exit(argv, message, home, tmp_path, capsys):
    names = {"missing": str(tmp_path / "no" / "such"), "tmp": str(tmp_path)}
    argv = [a.format(**names) for a in argv]
    with pytest.raises(SystemExit) as done:
        main(argv)
    err = capsys.readouterr().err
    assert done.value.code == 2
    assert message.format(**names) in err
    assert err.count("\n") == 1 and "usage:" not in err and "Traceback" not in err
    assert not (tmp_path / "no").exists()


def test_a_closed_pipe_ends_the_quiz_without_a_traceback(home, child_env, python, demo_banks):
    """`bpcore quiz | head -1`: the reader leaves; the quiz stops quietly, non-zero, with what was saved kept."""
    command = [python, "-m", "bpcore.quiz.cli", "--banks", str(demo_banks), "quiz"]
    child = subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=child_env
    )
    child.stdout.readline()  # the first line, as `head -1` reads it, then the reader goes away
    child.stdout.close()
    _, err = child.communicate(b"\n" * 20, timeout=60)
    err = err.decode()
    assert child.returncode == 141, err
    assert "Traceback" not in err and "BrokenPipeError" not in err
    assert "the output was closed" in err


@pytest.mark.parametrize("word", ["help", "hint", "Hint"])
def test_help_or_hint_typed_points_to_the_commands(home, demo_banks, word):
    read, screen = scripted(word, "q")
    main(["--banks", str(demo_banks), "quiz", "-n", "1"], Terminal(read=read, out=screen))
    assert "Type ? for a hint, ! for the solution, q to quit, or press Enter to move on." in screen.getvalue()
    assert "Could not read that" not in screen.getvalue()
    with Store() as store:
        assert store.count() == 0  # not an answer


def test_a_choice_typed_as_printed_is_read(home, demo_banks):
    read, screen = scripted(lambda text: f"({shown_letter(text, 'this one')})", "q")
    main(["--banks", str(demo_banks), "quiz", "-n", "1"], Terminal(read=read, out=screen))
    assert ") is right." in screen.getvalue() and "Could not read" not in screen.getvalue()


def test_the_answer_example_matches_the_keys_shape(bank):
    """A vector answer is not shown a matrix example ("Answer like [[1, 2], [3, 4]]"), over every array question."""
    import numpy as np

    from bpcore.quiz.cli import _help_line
    from bpcore.quiz.instance import make_instance

    vectors = 0
    for q in bank.questions:
        if q.kind != "matrix":
            continue
        instance = make_instance(q, 0)
        keys = list(instance.key.values()) if instance.steps else [instance.key]
        line = _help_line(instance)
        if all(np.ndim(k) == 1 for k in keys):
            vectors += 1
            assert "[[" not in line and "[1, 2, 3]" in line, (q.id, line)
        elif all(np.ndim(k) == 2 for k in keys):
            assert "[[1, 2], [3, 4]]" in line, (q.id, line)
    assert vectors > 0


def test_moving_on_after_a_wrong_answer_shows_the_answer(home, demo_banks):
    read, screen = scripted(pick("this one", other=True), "", "q")  # wrong, then Enter
    main(["--banks", str(demo_banks), "quiz", "-n", "1"], Terminal(read=read, out=screen))
    text = screen.getvalue()
    after = text.split("Enter to move on.")[1]
    assert f"Solution:\n({shown_letter(text, 'this one')}) this one" in after and "Why: It says so." in after


def test_the_solution_shown_before_answering_says_it_counts_as_a_miss(home, demo_banks):
    read, screen = scripted("!", "q")
    main(["--banks", str(demo_banks), "quiz", "-n", "1"], Terminal(read=read, out=screen))
    assert "Shown before any answer: this counts as a miss, so the question comes back soon." in screen.getvalue()
    with Store() as store:
        assert [(a["score"], a["rating"]) for a in store.attempts()] == [(0.0, 1)]  # a miss: Again
