"""Bank loading: the starter banks load, and every kind of authoring error is named by file, id and field."""

import json
from collections import Counter

import pytest

from bpcore.quiz import bank as bank_module
from bpcore.quiz.bank import KINDS, BankError, load_bank, load_banks, resolve_pointer

GOOD = """
topic = "demo"
title = "Demo"

[[question]]
id = "demo-one"
level = "basic"
kind = "single"
prompt = "Pick b."
choices = ["no", "yes"]
answer = "b"
hints = ["the second"]
explanation = "b is yes."
notebook = "notebooks/00_start_here.ipynb"
tags = []
"""


def test_starter_banks_cover_every_kind_and_level(bank):
    kinds = Counter(q.kind for q in bank.questions)
    assert set(kinds) == set(KINDS)
    assert {q.level for q in bank.questions} == {"basic", "intermediate", "advanced"}
    assert len(bank.questions) >= 20 and len(bank.topics) >= 3
    assert len({q.id for q in bank.questions}) == len(bank.questions)
    assert sum(q.generator is not None for q in bank.questions) >= 4
    assert all(q.hints and q.explanation.strip() and q.notebook for q in bank.questions)


def test_a_good_bank_loads(write_bank):
    folder = write_bank("demo.toml", GOOD)
    topic, title, questions = load_bank(folder / "demo.toml")
    assert (topic, title, [q.id for q in questions]) == ("demo", "Demo", ["demo-one"])
    assert questions[0].spec == {"choices": ["no", "yes"], "answer": "b"}


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            ('level = "basic"', 'level = "easy"'),
            "question 'demo-one': field 'level': expected one of basic, intermediate, advanced, got str 'easy'",
        ),
        (('answer = "b"', 'answer = "c"'), "question 'demo-one': field 'answer': expected one letter from a to b"),
        (
            ('hints = ["the second"]', 'hint = ["the second"]'),
            "field 'hint': unknown field for a single question (did you mean 'hints'?)",
        ),
        (('hints = ["the second"]', ""), "field 'hints': missing (required)"),
        (('kind = "single"', 'kind = "essay"'), "field 'kind': expected one of single, multi"),
        (
            ('notebook = "notebooks/00_start_here.ipynb"', 'notebook = "00_start_here"'),
            "field 'notebook': expected 'notebooks/<name>.ipynb'",
        ),
        (('id = "demo-one"', 'id = "Demo One"'), "field 'id': expected lowercase letters"),
        (
            ('prompt = "Pick b."', 'prompt = "Pick {{x}}."'),
            "field 'prompt': has {{...}} placeholders but the question has no generator",
        ),
        (("[[question]]", '[[question]]\ntopic = "other"'), "field 'topic': expected 'demo' (the file's topic"),
    ],
)
def test_errors_name_file_question_and_field(write_bank, change, expected):
    folder = write_bank("demo.toml", GOOD.replace(*change))
    with pytest.raises(BankError) as caught:
        load_banks(folder)
    assert f"demo.toml: {expected}" in str(caught.value) or expected in str(caught.value)
    assert all(p.file == "demo.toml" for p in caught.value.problems)


def test_generator_and_registry_names_are_checked(write_bank):
    text = GOOD.replace('kind = "single"', 'kind = "matrix"\ngenerator = "three_layer_dW3"').replace(
        'choices = ["no", "yes"]\nanswer = "b"\n', ""
    )
    with pytest.raises(
        BankError, match=r"field 'generator': expected a known generator.*did you mean 'three_layer_dW2'"
    ):
        load_banks(write_bank("demo.toml", text))
    numeric = text.replace('kind = "matrix"', 'kind = "numeric"').replace("three_layer_dW3", "three_layer_dW2")
    with pytest.raises(BankError, match="'three_layer_dW2' makes matrix answers, not numeric"):
        load_banks(write_bank("demo.toml", numeric))


def test_all_problems_reported_at_once_with_duplicates_across_files(write_bank):
    write_bank("a.toml", GOOD)
    folder = write_bank(
        "b.toml", GOOD.replace('topic = "demo"', 'topic = "other"').replace('level = "basic"', 'level = "x"')
    )
    (folder / "c.toml").write_text(GOOD.replace('topic = "demo"', 'topic = "third"'))
    with pytest.raises(BankError) as caught:
        load_banks(folder)
    text = str(caught.value)
    assert "b.toml: question 'demo-one': field 'level'" in text
    assert "c.toml: question 'demo-one': field 'id': id already used in a.toml" in text


def test_invalid_toml_names_the_line(write_bank):
    folder = write_bank("demo.toml", GOOD.replace('level = "basic"', "level = basic"))
    with pytest.raises(BankError, match=r"demo.toml: not valid TOML: .*line 7"):
        load_banks(folder)


def test_installed_banks_are_preferred_to_the_repository(tmp_path, monkeypatch, write_bank):
    packaged = write_bank("demo.toml", GOOD)
    monkeypatch.setattr(bank_module, "PACKAGED_BANKS", packaged)
    assert bank_module.default_bank_dir() == packaged
    assert [q.id for q in load_banks().questions] == ["demo-one"]
    monkeypatch.setattr(bank_module, "PACKAGED_BANKS", tmp_path / "missing")
    assert bank_module.default_bank_dir() == bank_module.REPO_BANKS


def test_selection_and_lookup(bank):
    basics = bank.select(topic="chain_rule", level="basic")
    assert basics and all(q.topic == "chain_rule" and q.level == "basic" for q in basics)
    with pytest.raises(ValueError, match=r"unknown topic 'chains'; the banks have: .*chain_rule"):
        bank.select(topic="chains")
    with pytest.raises(KeyError, match="did you mean three-layer-chain"):
        bank.get("three-layer-chian")


def test_notebook_pointers_resolve_against_headings(tmp_path):
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    cells = [{"cell_type": "markdown", "source": ["## 1. The chain rule, by hand\n", "text"]}]
    (notebooks / "n.ipynb").write_text(json.dumps({"cells": cells}))
    assert resolve_pointer("notebooks/n.ipynb", tmp_path) is None
    assert resolve_pointer("notebooks/n.ipynb#1.-The-chain-rule,-by-hand", tmp_path) is None
    assert resolve_pointer("notebooks/n.ipynb#1-the-chain-rule-by-hand", tmp_path) is None
    assert "no heading matching #3.-Other" in resolve_pointer("notebooks/n.ipynb#3.-Other", tmp_path)
    assert "does not exist" in resolve_pointer("notebooks/missing.ipynb", tmp_path)
