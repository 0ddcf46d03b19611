"""Reading typed answers: every accepted form, every refusal, and proof that nothing is ever evaluated."""

import ast
import builtins
import re
from pathlib import Path

import numpy as np
import pytest

from bpcore.quiz import parse
from bpcore.quiz.parse import ParseError, parse_array, parse_letters, parse_line_number, parse_number, parse_rating

MALICIOUS = [
    "__import__('os')",
    "__import__('os').system('touch pwned')",
    "open('/etc/passwd').read()",
    "[[__import__('os')]]",
    "1 if True else 2",
    "(lambda: 1)()",
    "2**3",
    "1+1",
    "np.ones(3)",
    "[[1, 2], [3, exec('x=1')]]",
]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("3/4", 0.75),
        ("-0.25", -0.25),
        ("1e-3", 0.001),
        (" .5 ", 0.5),
        ("2.", 2.0),
        ("-3/4", -0.75),
        ("1e-3/2", 0.0005),
        ("\u22122", -2.0),
        ("+7", 7.0),
    ],
)
def test_numbers_in_the_forms_learners_type(text, expected):
    assert parse_number(text) == pytest.approx(expected, rel=1e-15)


def test_numbers_that_are_already_numbers_pass_through():
    assert parse_number(3) == 3.0 and parse_number(np.float32(0.5)) == 0.5 and parse_number(np.array([2.5])) == 2.5


@pytest.mark.parametrize("text", ["", "nan", "inf", "1/0", "3/", "1,5", "one", "1 2", "True"])
def test_numbers_refused_with_a_message_naming_what_was_expected(text):
    with pytest.raises(ParseError, match=r"expected a number|divides by zero"):
        parse_number(text)


def test_arrays_in_python_numpy_and_plain_forms():
    expected = np.array([[1.0, 2.0], [3.0, 4.0]])
    printed = np.array([[0.1, -0.2], [3e-5, 4.0]])
    assert np.array_equal(parse_array("[[1, 2], [3, 4]]"), expected)
    assert np.array_equal(parse_array("[[1 2]\n [3 4]]"), expected)  # numpy's printout: no commas
    assert np.array_equal(parse_array("1 2; 3 4"), expected)
    assert np.array_equal(parse_array("1 2\n3 4"), expected)
    assert np.array_equal(parse_array(str(printed)), printed)
    assert np.array_equal(parse_array(repr(printed)), printed)  # array([[...]])
    assert np.array_equal(parse_array("[1/2, -3/4]"), [0.5, -0.75])
    assert np.array_equal(parse_array("1, 2, 3"), [1.0, 2.0, 3.0])
    assert parse_array("[]").shape == (0,)
    assert np.array_equal(parse_array([[1, 2], [3, 4]]), expected)  # an array-like is taken as it is


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[[1, 2], [3]]", "different lengths"),
        ("[[1, 2]", "never closed"),
        ("[1, 2]]", "after the closing"),
        ("[1, x]", "could not read 'x]'"),
        ("]", "got ']'"),
        ("", "empty"),
        ("[1, 2] [3]", "rows of different lengths"),
    ],
)
def test_arrays_refused_with_a_message_saying_where(text, message):
    with pytest.raises(ParseError, match=re.escape(message)):
        parse_array(text)


@pytest.mark.parametrize("text", MALICIOUS)
def test_code_is_never_run_only_refused(text, monkeypatch, tmp_path):
    """With eval, exec, compile and literal_eval booby-trapped, hostile text is merely unparseable."""

    def trap(*args, **kwargs):
        raise AssertionError("learner text reached an evaluator")

    for name in ("eval", "exec", "compile"):
        monkeypatch.setattr(builtins, name, trap)
    monkeypatch.setattr(ast, "literal_eval", trap)
    monkeypatch.chdir(tmp_path)
    for reader in (parse_number, parse_array):
        with pytest.raises(ParseError):
            reader(text)
    assert not (tmp_path / "pwned").exists()


def test_no_evaluator_anywhere_in_the_quiz_package():
    """The one exception is the child process that runs a typed bug-hunt fix (fixrun._run_one): its whole job.
    That the grading process never gets there is tested by poisoning eval, exec and compile while grading
    (test_quiz_typed_fixes)."""
    source = Path(parse.__file__).parent
    pattern = re.compile(r"(?<![\w.])(eval|exec|compile)\s*\(|literal_eval|builtins\.(eval|exec)")
    offenders, child = [], []
    for path in source.glob("*.py"):
        function = None
        for i, line in enumerate(path.read_text().splitlines(), 1):
            if line.startswith("def "):
                function = line.split("(")[0].removeprefix("def ")
            if pattern.search(line.split("#")[0]):
                (child if (path.name, function) == ("fixrun.py", "_run_one") else offenders).append(f"{path.name}:{i}")
    assert offenders == []
    assert len(child) == 2  # compile the listing with the typed line in it, exec it to define the function


def test_absurdly_long_input_is_refused_before_parsing():
    with pytest.raises(ParseError, match="limit"):
        parse_array("[" + "1, " * 10_000 + "1]")


def test_letters_ratings_and_line_numbers():
    assert parse_letters("a, c", 4) == [0, 2]
    assert parse_letters("ac", 4) == [0, 2]
    assert parse_letters("C > A > B", 3) == [2, 0, 1]
    assert parse_letters(["b"], 3) == [1]
    assert parse_letters("2 1", 3) == [1, 0]  # 1-based numbers too
    with pytest.raises(ParseError, match="from a to c"):
        parse_letters("d", 3)
    assert [parse_rating(x) for x in ("again", "Hard", "g", "4", 2)] == [1, 2, 3, 4, 2]
    with pytest.raises(ParseError, match="again, hard, good or easy"):
        parse_rating("great")
    assert parse_line_number("line 7", 12) == 7 and parse_line_number(3, 12) == 3
    with pytest.raises(ParseError, match="from 1 to 12"):
        parse_line_number("13", 12)


@pytest.mark.parametrize(
    ("text", "count", "expected"),
    [
        ("(b)", 4, [1]),  # as the options are printed
        ("(d)", 4, [3]),
        ("(a) (c)", 4, [0, 2]),
        ("(a)(c)", 4, [0, 2]),
        ("a, c, d and e", 5, [0, 2, 3, 4]),
        ("a and c", 4, [0, 2]),
    ],
)
def test_letters_in_the_forms_learners_type(text, count, expected):
    assert parse_letters(text, count) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("(0.1036, 0.0461)", [0.1036, 0.0461]),  # a vector as written in maths
        ("((1, 2), (3, 4))", [[1, 2], [3, 4]]),
        ("[1 2 3; 4 5 6]", [[1, 2, 3], [4, 5, 6]]),  # MATLAB
        ("[[1 2 3]; [4 5 6]]", [[1, 2, 3], [4, 5, 6]]),
        ("[1, 2; 3, 4;]", [[1, 2], [3, 4]]),
        ("[-33/200, 0.67, 2.85e-1], [-0.115, 29/100, 0.405]", [[-0.165, 0.67, 0.285], [-0.115, 0.29, 0.405]]),
        ("[1 2] [3 4]", [[1, 2], [3, 4]]),  # the rows without the outer brackets
        ("(1, 2), (3, 4)", [[1, 2], [3, 4]]),
    ],
)
def test_arrays_in_maths_and_matlab_forms(text, expected):
    assert np.array_equal(parse_array(text), np.array(expected, dtype=float))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[1 2; [3 4]]", "rows written two ways"),  # ambiguous: still refused
        ("[[1 2; 3 4]]", "only between the rows"),
        ("(1, 2", "expected a number"),
        ("[1, 2], 3", "after the closing bracket"),  # a row and a bare number: not the rows of a matrix
        ("[1, 2], [3]", "rows of different lengths"),
    ],
)
def test_ambiguous_or_broken_forms_are_still_refused(text, message):
    with pytest.raises(ParseError, match=re.escape(message)):
        parse_array(text)


def test_ambiguous_letters_are_still_refused():
    with pytest.raises(ParseError, match="from a to d"):
        parse_letters("b and", 4)
    with pytest.raises(ParseError, match="from a to d"):
        parse_letters("(e)", 4)
