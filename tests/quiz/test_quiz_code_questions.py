"""Code questions run the learner's function in the kernel: whatever it does, the check ends, says what happened,
and leaves the kernel as it was (grad mode, random generators); a known mistake is named; and
``bp.quiz.submit`` shows its feedback under the cell that called it."""

import random
import sys
import threading
import time

import numpy as np
import pytest

import bpcore as bp
from bpcore import quiz
from bpcore.quiz import functions, kinds
from bpcore.quiz.functions import REFERENCES, check_function
from bpcore.quiz.instance import make_instance

# ruff: noqa: NPY002 - the legacy global generator is what a learner's function reseeds: used here on purpose

SIGMOID = "chain-rule-code-sigmoid-backward"


def sigmoid_backward(z, upstream):
    s = 1 / (1 + np.exp(-z))
    return upstream * s * (1 - s)


def grade(bank, fn, question_id=SIGMOID, seed=0):
    return kinds.check(make_instance(bank.get(question_id), seed), fn)


def text(result) -> str:
    return " ".join(result.feedback)


@pytest.fixture
def short_limit(monkeypatch):
    monkeypatch.setattr(functions, "TIME_LIMIT", 1.0)


# ----------------------------------------------------------------------------- time limit


def endless(z, upstream):
    while True:
        pass


def sleeps(z, upstream):
    time.sleep(600)


def swallows(z, upstream):
    try:
        while True:
            pass
    except Exception:
        return upstream


@pytest.mark.parametrize("fn", [endless, sleeps, swallows])
def test_an_endless_function_is_stopped_and_said_so(bank, short_limit, fn):
    started = time.monotonic()
    result = grade(bank, fn)
    assert time.monotonic() - started < 5
    assert result.score == 0 and "stopped after 1.0 s: your function was still running" in text(result)


def test_the_time_limit_holds_on_a_widget_thread_too(bank, short_limit):
    """Widget callbacks may run on a kernel subshell's thread, where no signal timer can reach."""
    out = []
    worker = threading.Thread(target=lambda: out.append(grade(bank, endless)))
    started = time.monotonic()
    worker.start()
    worker.join(timeout=20)
    assert not worker.is_alive() and time.monotonic() - started < 5
    assert "stopped after" in text(out[0])


def test_a_quick_function_is_not_disturbed_by_the_limit_later(bank):
    assert grade(bank, sigmoid_backward).correct
    time.sleep(0.1)  # no timer left behind: nothing fires into the test afterwards


# ----------------------------------------------------------------------------- what it returns


def plus(offset, fn):
    def shifted(*args):
        out = fn(*args)
        return tuple(np.asarray(o) + offset for o in out) if isinstance(out, tuple) else np.asarray(out) + offset

    return shifted


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_complex_results_are_refused_on_every_reference(name):
    reference = REFERENCES[name]
    passed, lines = check_function(reference, plus(7j, reference.solution), seed=0)
    assert passed == 0 and "complex values" in " ".join(lines)


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_non_finite_results_are_refused_on_every_reference(name):
    reference = REFERENCES[name]
    passed, lines = check_function(reference, plus(np.nan, reference.solution), seed=0)
    assert passed == 0 and ("inf or nan" in " ".join(lines))


class Unreadable:
    def __array__(self, *args, **kwargs):
        raise RuntimeError("no array here")


@pytest.mark.parametrize(
    ("fn", "said"),
    [
        (lambda z, upstream: Unreadable(), "the Unreadable your function returned could not be read as an array"),
        (
            lambda z, upstream: np.full(z.shape, object()),
            "should be an array of numbers; got a ndarray of dtype object",
        ),
        (lambda z, upstream: np.full(z.shape, "1.0"), "should be an array of numbers"),
        (lambda z, upstream: sys.exit(3), "your function called sys.exit(3)"),
        (lambda z, upstream: 1 / 0, "your function raised ZeroDivisionError"),
    ],
)
def test_odd_results_and_exits_are_feedback_not_tracebacks(bank, fn, said):
    result = grade(bank, fn)
    assert result.score == 0 and said in text(result)


def test_an_exception_whose_message_raises_is_still_reported(bank):
    class Rude(Exception):
        def __str__(self):
            raise ValueError("no")

    def raises(z, upstream):
        raise Rude

    assert "your function raised Rude: (its message could not be printed)" in text(grade(bank, raises))


# ----------------------------------------------------------------------------- the kernel is left as it was


def leaves_no_grad_on(z, upstream):
    bp.no_grad().__enter__()
    return sigmoid_backward(z, upstream)


def test_grad_mode_is_restored_and_the_feedback_says_so(bank):
    result = grade(bank, leaves_no_grad_on)
    assert bp.is_grad_enabled()
    assert result.correct and "left gradient recording off" in text(result)
    x = bp.tensor([1.0, 2.0], requires_grad=True)
    (x * x).sum().backward()
    assert x.grad.tolist() == [2.0, 4.0]


def reseeds(z, upstream):
    np.random.seed(0)
    bp.manual_seed(0)
    random.seed(0)
    return sigmoid_backward(z, upstream)


def test_random_state_is_restored_and_the_feedback_says_so(bank):
    np.random.seed(123)
    bp.manual_seed(123)
    random.seed(123)
    expected = (np.random.random(), bp.rand(1).item(), random.random())
    np.random.seed(123)
    bp.manual_seed(123)
    random.seed(123)
    result = grade(bank, reseeds)
    assert (np.random.random(), bp.rand(1).item(), random.random()) == expected
    said = text(result)
    assert "numpy's global random generator" in said and "bpcore's random generator" in said
    assert "Python's `random` module" in said and result.correct


def test_a_tidy_function_gets_no_notes(bank):
    assert "note:" not in text(grade(bank, sigmoid_backward))


# ----------------------------------------------------------------------------- known mistakes


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_the_known_mistake_is_named_when_it_matches(name):
    reference = REFERENCES[name]
    passed, lines = check_function(reference, reference.wrong, seed=0)
    assert passed < reference.trials
    assert f"It looks like: **{reference.mistake}**." in lines
    _, right = check_function(reference, reference.solution, seed=0)
    assert not any(line.startswith("It looks like") for line in right)


def test_another_wrong_function_is_not_given_the_known_mistake(bank):
    result = grade(bank, lambda z, upstream: upstream * 0.5)
    assert result.score == 0 and "It looks like" not in text(result)


# ----------------------------------------------------------------------------- where the feedback shows


def test_submit_shows_the_feedback_where_it_was_called(home):
    from IPython.core.interactiveshell import InteractiveShell
    from IPython.utils.capture import capture_output

    InteractiveShell.instance()
    try:
        shown = quiz.ask(SIGMOID, seed=1)
        with capture_output() as here:
            quiz.submit(REFERENCES["sigmoid_backward"].wrong)
        html = "".join(output.data.get("text/html", "") for output in here.outputs)
        assert "It looks like: <b>forgot the upstream gradient" in html
        assert html == shown.feedback.value
    finally:
        InteractiveShell.clear_instance()
