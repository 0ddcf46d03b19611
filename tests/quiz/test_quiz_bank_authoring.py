"""Authoring errors that once loaded and crashed the quiz later are refused on load, naming file, question and field.

Each bank below passed ``load_bank`` before: 27 choices (letters stop at z), a ``why`` list shorter than
``choices`` (an IndexError when the uncovered choice was picked), a mistake whose answer cannot be read (a
ParseError when the question was shown), ``rtol`` (no longer read: digits are), a file in Latin-1 (a
UnicodeDecodeError traceback).
"""

import pytest

from bpcore.quiz.bank import BankError, load_bank, load_banks
from bpcore.quiz.cli import main

SINGLE = """
topic = "demo"

[[question]]
id = "demo-pick"
level = "basic"
kind = "single"
prompt = "Pick b."
choices = {choices}
answer = "b"
{extra}
hints = ["the second"]
explanation = "b is yes."
notebook = "notebooks/00_start_here.ipynb"
tags = []
"""

NUMERIC = """
topic = "demo"

[[question]]
id = "demo-number"
level = "basic"
kind = "{kind}"
prompt = "What is it?"
answer = {answer}
{extra}
hints = ["think"]
explanation = "It is."
notebook = "notebooks/00_start_here.ipynb"
tags = []
"""

ORDER = """
topic = "demo"

[[question]]
id = "demo-order"
level = "basic"
kind = "order"
prompt = "Put them in order."
items = {items}
hints = ["think"]
explanation = "So."
notebook = "notebooks/00_start_here.ipynb"
tags = []
"""

MANY = [f"option {i}" for i in range(27)]

BAD_BANKS = [
    (SINGLE.format(choices=MANY, extra=""), "question 'demo-pick': field 'choices': expected at most 26 entries"),
    (
        SINGLE.format(choices='["no", "yes", "maybe"]', extra='why = ["no because", "yes because"]'),
        "question 'demo-pick': field 'why': expected one entry per entry of 'choices' (3), got 2",
    ),
    (
        SINGLE.format(choices='["no", "yes"]', extra='why = ["a", "b", "c"]'),
        "question 'demo-pick': field 'why': expected one entry per entry of 'choices' (2), got 3",
    ),
    (ORDER.format(items=MANY), "question 'demo-order': field 'items': expected at most 26 entries"),
    (
        NUMERIC.format(kind="numeric", answer="0.5", extra='mistakes = [{ name = "halved", answer = "a quarter" }]'),
        "question 'demo-number': field 'mistakes': entry 0 ('halved'): its answer cannot be read",
    ),
    (
        NUMERIC.format(kind="numeric", answer="0.5", extra='mistakes = [{ name = "huge", answer = 1e999 }]'),
        "question 'demo-number': field 'mistakes': entry 0 ('huge'): its answer cannot be read",
    ),
    (
        NUMERIC.format(
            kind="matrix", answer="[[1, 2]]", extra='mistakes = [{ name = "ragged", answer = [[1], [2, 3]] }]'
        ),
        "question 'demo-number': field 'mistakes': entry 0 ('ragged'): its answer cannot be read",
    ),
    (
        NUMERIC.format(kind="numeric", answer="0.5", extra='mistakes = [{ name = "", answer = 1 }]'),
        "field 'mistakes': entry 0: expected its name as non-empty text",
    ),
    (
        NUMERIC.format(kind="numeric", answer="0.5", extra="rtol = 0.01"),
        "question 'demo-number': field 'rtol': is no longer read: numbers are graded to significant digits",
    ),
    (
        NUMERIC.format(kind="numeric", answer="0.5", extra="atol = 0.5"),
        "question 'demo-number': field 'atol': is no longer read",
    ),
    (
        NUMERIC.format(kind="numeric", answer="0.5", extra="digits = 4").replace(
            "What is it?", "What is it? (3 significant digits.)"
        ),
        "question 'demo-number': field 'digits': is 4 but the prompt asks for 3 significant digits",
    ),
    (NUMERIC.format(kind="numeric", answer="nan", extra=""), "question 'demo-number': field 'answer': expected a"),
]


@pytest.mark.parametrize(("text", "expected"), BAD_BANKS)
def test_a_bad_bank_is_refused_naming_file_question_and_field(write_bank, text, expected, home, capsys):
    folder = write_bank("demo.toml", text)
    with pytest.raises(BankError) as refused:
        load_bank(folder / "demo.toml")
    assert any(str(p).startswith("demo.toml: ") and expected in str(p) for p in refused.value.problems), str(
        refused.value
    )
    assert main(["--banks", str(folder), "validate", "--seeds", "1"]) == 1
    assert expected in " ".join(capsys.readouterr().out.split())  # lines are fitted to the terminal's width


def test_a_file_that_is_not_utf8_is_refused_naming_the_question_and_line(tmp_path, home, capsys):
    folder = tmp_path / "banks"
    folder.mkdir()
    text = SINGLE.format(choices='["no", "yes"]', extra="").replace("Pick b.", "Pick b, caf\u00e9.")
    (folder / "demo.toml").write_bytes(text.encode("latin-1"))
    with pytest.raises(BankError) as refused:
        load_banks(folder)
    message = str(refused.value)
    assert "demo.toml: question 'demo-pick': not UTF-8 text: byte b'\\xe9' at line 8" in message
    assert main(["--banks", str(folder), "quiz"]) == 2
    assert "not UTF-8 text" in capsys.readouterr().err


def test_26_choices_and_matching_why_still_load(write_bank):
    choices = [f"option {i}" for i in range(26)]
    why = [f"because {i}" for i in range(26)]
    folder = write_bank("demo.toml", SINGLE.format(choices=choices, extra=f"why = {why}"))
    assert len(load_bank(folder / "demo.toml")[2][0].spec["choices"]) == 26
