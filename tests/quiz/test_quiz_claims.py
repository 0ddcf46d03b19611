"""Claims the bank's texts make that a computation can settle, each computed with the engine here.

A wrong key or an explanation that teaches something false is the worst bug a quiz can have; where a
question states a number or a rule, the test below recomputes it and checks the text says the same.
"""


import pytest

from bpcore.labs import vanishing
from bpcore.quiz.bank import load_banks


@pytest.fixture(scope="module")
def bank():
    return load_banks()


def key_text(question) -> str:
    return question.spec["choices"]["abcdefghij".index(question.spec["answer"])]


def test_init_too_large_key_says_the_gradients_explode(bank):
    q = bank.get("init-too-large")
    _, chi = vanishing.tanh_gradient_gain(512.0)
    key = key_text(q)
    assert key.startswith("Huge") and f"about {chi:.0f} times" in key, key
    assert "explodes" in q.explanation and f"{chi:.0f}" in q.explanation
    vanishing_choices = [c for c in q.spec["choices"] if c.startswith("Tiny")]
    assert vanishing_choices and key not in vanishing_choices
