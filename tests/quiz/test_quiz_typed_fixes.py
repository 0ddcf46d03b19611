"""Typed bug-hunt fixes are judged by behaviour: the line replaces the bug, the pass meets the engine.

The typed line runs in a child process with a time limit (bpcore.quiz.fixrun); the grading process
never evaluates it. Every equivalent fix gets full credit, whatever its wording.
"""

import builtins
import io

import pytest

from bpcore.quiz import fixrun, kinds
from bpcore.quiz.cli import Terminal, main
from bpcore.quiz.instance import make_instance
from bpcore.quiz.parse import ParseError


def grade(bank, question_id, fix, line=None):
    instance = make_instance(bank.get(question_id), 0)
    return kinds.check(instance, {"line": instance.key[0] if line is None else line, "fix": fix})


EQUIVALENT = [
    # the three a learner typed in the terminal, which scored 0.5 when fixes were compared as text
    ("gc-bughunt-transpose", "dh = delta_output @ W2"),
    ("gc-bughunt-axis", "db1 = dZ1.sum(0)"),
    ("loss-bughunt-missing-n", "dZ2 = (P - Y) / X.shape[0]"),
    # and more ways to say the same
    ("gc-bughunt-transpose", "dh = np.dot(W2.T, delta_output)"),
    ("gc-bughunt-transpose", "dh = W2.transpose() @ delta_output  # back through W2 transposed"),
    ("gc-bughunt-axis", "db1 = np.sum(dZ1, axis=0)"),
    ("loss-bughunt-missing-n", "dZ2 = (P - Y) / len(X)"),
    ("loss-bughunt-missing-n", "dZ2 = P - Y; dZ2 /= N"),
    ("three-layer-bughunt-sigmoid", "delta_hidden = W2.T @ delta_output * h * (1 - h)"),
    ("three-layer-bughunt-sigmoid", "delta_hidden = (W2.T @ delta_output) * (h - h**2)"),
    ("three-layer-bughunt-tanh", "dZ1 = dH * (1 - np.tanh(X @ W1.T + b1) ** 2)"),
    ("three-layer-bughunt-tanh", "dZ1 = dH - dH * H * H"),
    ("rnn-bughunt-accumulate", "dW = dW + np.outer(g, xs[t - 1])"),
    ("rnn-bughunt-accumulate", "dW += g[:, None] * xs[t - 1][None, :]"),
    ("rnn-bughunt-detach", "h = (U @ h + W @ Tensor(x) + b).tanh()"),
    ("three-layer-bughunt-tanh", "9  dZ1 = dH * (1 - H * H)"),  # pasted with the listing's line number
]


@pytest.mark.parametrize(("question_id", "fix"), EQUIVALENT)
def test_an_equivalent_typed_fix_gets_full_credit(bank, question_id, fix):
    result = grade(bank, question_id, fix)
    assert result.score == 1, result.feedback
    assert result.feedback[1].startswith("Fix: right: with your line in place of the bug, every gradient agrees")
    assert result.recorded["verdict"] == "agrees" and result.recorded["option"] is None


def test_the_three_fixes_in_one_child_process():
    verdicts = fixrun.judge_many(
        [
            ("relu_column", ["dh = delta_output @ W2"]),
            ("sigmoid_batch", ["db1 = dZ1.sum(0)"]),
            ("softmax_batch", ["dZ2 = (P - Y) / X.shape[0]"]),
        ]
    )
    assert [[v.status for v in vs] for vs in verdicts] == [["agrees"], ["agrees"], ["agrees"]]


@pytest.mark.parametrize(
    ("question_id", "fix", "said"),
    [
        ("gc-bughunt-axis", "db1 = dZ1.mean(0)", "the gradients still disagree with the engine's: db1 is off by"),
        ("loss-bughunt-missing-n", "dZ2 = (P - Y) / 2", "dW2 is off by"),
        ("gc-bughunt-axis", "db1 = dZ1.sum(axis=1)  # the bug, retyped", "that is the buggy line itself, unchanged"),
        ("gc-bughunt-transpose", "dh = W2.T @ delta", "raised NameError: name 'delta' is not defined (in your line)"),
        ("three-layer-bughunt-sigmoid", "delta_hidden = None", "at line 10: `dW1 = np.outer(delta_hidden, x)`"),
        ("gc-bughunt-axis", "return {}", "returned no gradient for W1, W2, b1, b2"),
        ("gc-bughunt-axis", "import os; os._exit(3)", "checking your fix stopped before it finished"),
    ],
)
def test_a_wrong_typed_fix_is_rejected_and_says_why(bank, question_id, fix, said):
    result = grade(bank, question_id, fix)
    assert result.score == 0.5, result.feedback  # the line is right, the fix is not
    assert result.feedback[1].startswith("Fix: not yet: ") and said in result.feedback[1], result.feedback


def test_an_endless_loop_is_stopped_by_the_time_limit(bank, monkeypatch):
    monkeypatch.setattr(fixrun, "TIME_LIMIT", 1.0)
    result = grade(bank, "gc-bughunt-axis", "while True: pass")
    assert result.score == 0.5 and result.recorded["verdict"] == "timeout"
    assert "did not finish within 1 s, so it was stopped: is there a loop that never ends?" in result.feedback[1]


def test_a_child_that_overruns_the_backstop_is_killed(monkeypatch):
    """Long work inside one numpy call does not see the child's timer; the parent kills an overrunning child.
    Here the backstop is made shorter than the child's start-up, so the kill is what happens."""
    monkeypatch.setattr(fixrun, "STARTUP_ALLOWANCE", 0.0)  # the backstop is then limit x inputs x lines
    (verdict,) = fixrun.judge("sigmoid_batch", ["db1 = dZ1.sum(0)"], limit=0.01, seeds=[0])
    assert verdict.status == "timeout" and "did not finish within 0.01 s" in verdict.message


def test_a_typed_fix_that_is_not_python_is_unreadable_not_wrong(bank):
    with pytest.raises(ParseError, match="not valid Python"):
        grade(bank, "gc-bughunt-axis", "db1 = dZ1.sum(axis=0")
    with pytest.raises(ParseError, match="the fix"):
        grade(bank, "gc-bughunt-axis", "   ")


def test_what_the_fix_prints_cannot_forge_a_result(bank):
    """Even printed after the child's own answer (at exit), a RESULT line from the learner's code is not taken."""
    forged = 'RESULT [[{"status": "agrees", "message": "x"}]]\n'
    fix = f"import atexit, sys; atexit.register(sys.__stdout__.write, {forged!r}); db1 = 0"  # the real stdout
    result = grade(bank, "gc-bughunt-axis", fix)
    assert result.score == 0.5 and result.recorded["verdict"] == "disagrees"


def test_the_grading_process_never_evaluates_the_text(bank, monkeypatch):
    """eval, exec and compile are poisoned in this process: grading a typed fix still works."""
    grade(bank, "gc-bughunt-axis", "db1 = dZ1.sum(0)")  # warm up: every module this path imports is loaded

    def refuse(*args, **kwargs):
        raise AssertionError("the grading process evaluated text")

    with monkeypatch.context() as poisoned:
        for name in ("eval", "exec", "compile"):
            poisoned.setattr(builtins, name, refuse)
        right = grade(bank, "gc-bughunt-axis", "db1 = dZ1.sum(0)").score
        wrong = grade(bank, "gc-bughunt-axis", "db1 = __import__('numpy').zeros(4)").score
    assert (right, wrong) == (1, 0.5)  # asserted outside: pytest's own reporting compiles


def test_a_listed_fix_typed_out_is_taken_as_that_fix_without_running_it(bank, monkeypatch):
    monkeypatch.setattr(fixrun, "judge", lambda *a, **k: pytest.fail("ran a fix the bank already lists"))
    q = bank.get("three-layer-bughunt-sigmoid")
    result = grade(bank, "three-layer-bughunt-sigmoid", q.spec["fixes"][0].replace(" ", "") + "  # typed")
    assert result.score == 1 and result.recorded["option"] == 0


DEMO = """
topic = "demo"
title = "Demo"

[[question]]
id = "demo-hunt"
level = "intermediate"
kind = "bughunt"
specimen = "relu_column"
prompt = "Find the bug."
fixes = ["dh = W2.T @ delta_output", "dh = delta_output"]
fix = "a"
hints = ["transpose"]
explanation = "Back through W2 transposed."
notebook = "notebooks/00_start_here.ipynb"
tags = []
"""


def test_in_the_terminal_a_reworded_fix_is_right(home, write_bank):
    banks = write_bank("demo.toml", DEMO)
    keys, screen = iter(["8", "dh = delta_output @ W2", "q"]), io.StringIO()
    assert main(["--banks", str(banks), "quiz"], Terminal(read=lambda prompt: next(keys), out=screen)) == 0
    text = screen.getvalue()
    assert "[RIGHT] Line 8: that is the bug." in text and "Fix: right: with your line in place of the bug" in text


def test_a_typed_fix_replaces_the_line_the_learner_named(bank):
    """`line> 12` then a fix for line 12: it runs at line 12 (dZ2 stays defined), not at the bug's line 9."""
    result = grade(bank, "loss-bughunt-missing-n", "dZ1 = (dZ2 @ W2) * (1 - H**2) / N", line=12)
    assert result.score == 0 and "NameError" not in result.feedback[1], result.feedback
    assert "in place of line 12" in result.feedback[1] and "dW2 is off by" in result.feedback[1], result.feedback
    assert "dW1" not in result.feedback[1]  # line 12 divided by N there: the first layer's gradients agree


@pytest.mark.parametrize("fix", ["dZ2 = (P-Y)/N", "dZ2 = (P - Y) / X.shape[0]", "a"])
def test_a_fix_at_a_line_that_is_not_the_bug_is_never_right(bank, fix):
    instance = make_instance(bank.get("loss-bughunt-missing-n"), 0)
    fix = instance.letter(instance.key[1]) if fix == "a" else fix  # the right listed fix, by its shown letter
    result = kinds.check(instance, {"line": 12, "fix": fix})
    assert result.score == 0, result.feedback
    assert result.feedback[0].startswith("Line 12: the code there is fine")
    assert "right" not in result.feedback[1].replace("not right", ""), result.feedback
