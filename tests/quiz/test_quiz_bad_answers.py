"""Every typed or handed-over answer gets a grade or a ParseError, never a traceback, and quickly.

The listed inputs each broke a reader once (``'²'.isdigit()`` is true yet ``int('²')`` fails; 4,301 digits
exceed Python's int-from-text limit; deep brackets recursed; ``10**400`` overflowed ``float``; ``1e999`` was
read as inf and graded). The fuzz tests throw arbitrary text and values at every reader and every checker.
"""

import time
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bpcore.quiz import kinds
from bpcore.quiz.instance import LETTERS, make_instance
from bpcore.quiz.parse import (
    ParseError,
    parse_array,
    parse_letters,
    parse_line_number,
    parse_number,
    parse_rating,
)

# A hang guard, not a speed target: the slowest listed answer takes ~0.4 s on a quiet machine and over
# 1 s on a loaded one, while a runaway parse (quadratic or worse) on these inputs takes minutes.
TIME_LIMIT = 10.0  # seconds any one answer may take to be read and graded

READERS = {
    "number": lambda v: parse_number(v),
    "count": lambda v: parse_number(v, grouped=True),
    "array": parse_array,
    "letters": lambda v: parse_letters(v, 4),
    "items": lambda v: parse_letters(v, 5, what="item"),
    "rating": parse_rating,
    "line": lambda v: parse_line_number(v, 12),
}

BAD_TEXT = [
    "²",
    "①",
    "٣",  # an Arabic-Indic three: a digit to Python's int(), not one of ours
    "1²",
    "9" * 4301,
    "9" * 5000,
    "1e999",
    "-1e999",
    "1e999/1e999",
    "1/1e-999",
    "[1e999]",
    "[" * 65 + "1" + "]" * 65,
    "[" * 500 + "1" + "]" * 500,
    "[" * 19_999,
    "]" * 100,
    "[" + ",".join(["1"] * 9_000) + "]",
    "line ²",
    "inf",
    "nan",
    "",
    "\x00",
    "\u2212",
]

BAD_VALUES = [
    10**400,
    -(10**400),
    Fraction(10**400, 3),
    Fraction(1, 10**400),  # tiny, fine as 0.0
    float("inf"),
    float("nan"),
    np.float64("inf"),
    np.array([np.nan]),
    np.array([1 + 2j]),
    [10**400],
    [[1, 2], [3]],
    [1 + 7j],
    [object()],
    list(range(10_000_000)),
    np.zeros(10_000_000),
    [[[[1]]]] * 3,
    _deep := [1],
    None,
    True,
    {"a": 1},
    object(),
]
for _ in range(600):
    _deep = [_deep]
BAD_VALUES.append(_deep)


def outcome(read, value):
    """'ok' or 'parse error', within the time limit; any other exception fails the test."""
    started = time.perf_counter()
    try:
        read(value)
        verdict = "ok"
    except ParseError:
        verdict = "parse error"
    elapsed = time.perf_counter() - started
    assert elapsed < TIME_LIMIT, f"{value!r:.60} took {elapsed:.2f} s"
    return verdict


@pytest.mark.parametrize("reader", READERS)
@pytest.mark.parametrize("text", BAD_TEXT, ids=lambda t: repr(t[:12]) + f"/{len(t)}")
def test_listed_bad_text_is_a_parse_error_or_a_grade(reader, text):
    outcome(READERS[reader], text)


@pytest.mark.parametrize("reader", READERS)
@pytest.mark.parametrize("value", BAD_VALUES, ids=lambda v: type(v).__name__)
def test_listed_bad_values_are_a_parse_error_or_a_grade(reader, value):
    outcome(READERS[reader], value)


@pytest.mark.parametrize(
    "text",
    ["9" * 5000, "1e999", "-1e999", "1e999/1", "1/1e-320", "[1, 1e999]", "[[1e400, 2]]", "1 2; 3 1e999"],
)
def test_non_finite_numbers_are_refused_as_typed_inf_is(text):
    for read in (READERS["number"], READERS["array"]):
        if read is READERS["number"] and any(c in text for c in "[ "):
            continue
        with pytest.raises(ParseError, match="finite"):
            read(text)


@pytest.mark.parametrize("value", [10**400, Fraction(10**400, 3), float("inf"), float("nan")])
def test_huge_or_non_finite_numbers_from_the_notebook_are_refused(value):
    with pytest.raises(ParseError):
        parse_number(value)
    with pytest.raises(ParseError):
        parse_array([value, 1.0])


def test_unicode_digits_are_not_choice_or_line_numbers():
    for text in ("²", "①", "1²"):
        with pytest.raises(ParseError, match="expected"):
            parse_letters(text, 4)
        with pytest.raises(ParseError, match="expected a line number"):
            parse_line_number(text, 12)
    assert parse_letters("2", 4) == [1] and parse_line_number("line 7", 12) == 7  # the ordinary forms still work


def test_deep_nesting_is_refused_not_recursed():
    with pytest.raises(ParseError, match="nested more than"):
        parse_array("[" * 500 + "1" + "]" * 500)
    assert parse_array("[[[1]]]").shape == (1, 1, 1)


def test_ten_million_items_are_refused_quickly():
    for value in (list(range(10_000_000)), np.zeros(10_000_000)):
        assert outcome(parse_array, value) == "parse error"


def test_complex_arrays_are_refused():
    with pytest.raises(ParseError, match="real"):
        parse_array(np.array([1 + 7j, 2]))


# ----------------------------------------------------------------------------- fuzz: readers

ANY_TEXT = st.one_of(
    st.text(max_size=200),
    st.text(alphabet="0123456789[]., ;-+e/_²①٣\n", max_size=300),
    st.from_regex(r"\A[\[\]]{0,80}[-+]?\d{0,5000}(\.\d*)?(e[-+]?\d{1,4})?[\[\]]{0,80}\Z"),
)
LEAVES = st.one_of(
    st.integers(min_value=-(10**500), max_value=10**500),
    st.floats(allow_nan=True, allow_infinity=True),
    st.fractions(),
    st.complex_numbers(),
    st.booleans(),
    st.none(),
    st.text(max_size=10),
)
ANY_VALUE = st.one_of(ANY_TEXT, LEAVES, st.recursive(LEAVES, lambda kids: st.lists(kids, max_size=6), max_leaves=40))
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(reader=st.sampled_from(sorted(READERS)), value=ANY_VALUE)
def test_fuzz_every_reader(reader, value):
    outcome(READERS[reader], value)


# ----------------------------------------------------------------------------- fuzz: checkers


@pytest.fixture(scope="module")
def instances(bank):
    """One instance of every question a learner can type an answer to (code questions take functions)."""
    return [make_instance(q, seed) for q in bank.questions if q.kind != "code" for seed in (0, 1)]


def shaped_answer(instance, value, data):
    """``value`` in the form the checker of ``instance`` takes (a dict for steps and bug hunts)."""
    if instance.kind == "matrix" and instance.steps:
        return {name: data.draw(ANY_VALUE) for name in instance.steps}
    if instance.kind == "bughunt":  # a typed fix runs in a child process: test_quiz_typed_fixes covers those
        return {"line": value, "fix": data.draw(st.sampled_from(LETTERS[:4]))}
    return value


@FUZZ
@given(data=st.data(), value=ANY_VALUE)
def test_fuzz_every_checker(instances, data, value):
    instance = data.draw(st.sampled_from(instances))
    outcome(lambda v: kinds.check(instance, v), shaped_answer(instance, value, data))


@pytest.mark.parametrize("value", BAD_TEXT + BAD_VALUES, ids=lambda v: type(v).__name__)
def test_listed_bad_answers_through_every_checker(instances, value):
    for instance in instances:
        if instance.kind == "bughunt":
            answer = {"line": value, "fix": "a"}
        elif instance.kind == "matrix" and instance.steps:
            answer = dict.fromkeys(instance.steps, value)
        else:
            answer = value
        outcome(lambda v, instance=instance: kinds.check(instance, v), answer)
