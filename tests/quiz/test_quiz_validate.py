"""`bpcore validate` checks generated questions on random seeds as well as 0-49, and says which, to replay them."""

import re
from dataclasses import fields

from bpcore.quiz.cli import main
from bpcore.quiz.generators import GENERATORS, Generator
from bpcore.quiz.validate import sample_seeds, validate

BANK = """
topic = "demo"

[[question]]
id = "demo-slope"
level = "basic"
kind = "numeric"
generator = "sigmoid_derivative"
prompt = "At $z = {{z}}$, $\\\\sigma(z) \\\\approx {{sigma}}$. What is $\\\\sigma'(z)$? 3 significant digits."
hints = ["sigma (1 - sigma)"]
explanation = "The slope is sigma(z)(1 - sigma(z))."
notebook = "notebooks/00_start_here.ipynb"
tags = []
"""


def _reported(text: str) -> tuple[int, list[int]]:
    match = re.search(r"--seed-sample (\d+): ([\d, ]+)", text)
    assert match, f"expected the report to name its --seed-sample and seeds, got:\n{text}"
    return int(match.group(1)), [int(s) for s in match.group(2).split(", ")]


def _notebook(root):
    (root / "notebooks").mkdir()
    (root / "notebooks" / "00_start_here.ipynb").write_text('{"cells": []}')


def test_validate_reports_a_fresh_random_sample_each_run(write_bank, tmp_path):
    banks = write_bank("demo.toml", BANK)
    _notebook(tmp_path)
    first, second = (validate(banks, seeds=1, sample=5, root=tmp_path) for _ in range(2))
    assert first and second, f"{first}\n{second}"
    assert first.seed_sample != second.seed_sample
    for report in (first, second):
        assert _reported(str(report)) == (report.seed_sample, sample_seeds(report.seed_sample, 5))
    assert first.sampled != second.sampled


def test_a_failure_on_a_random_seed_names_it_and_replays(write_bank, tmp_path, monkeypatch, home, capsys):
    banks = write_bank("demo.toml", BANK)
    _notebook(tmp_path)
    bad = sample_seeds(2024, 3)[1]
    original = GENERATORS["sigmoid_derivative"]

    class FailsOnOneSeed(Generator):
        def __call__(self, seed):
            if seed == bad:
                raise RuntimeError("no distinguishable problem")
            return super().__call__(seed)

    broken = FailsOnOneSeed(**{f.name: getattr(original, f.name) for f in fields(original)})
    monkeypatch.setitem(GENERATORS, "sigmoid_derivative", broken)
    monkeypatch.chdir(tmp_path)
    assert main(["--banks", str(banks), "validate", "--seeds", "2", "--sample", "3", "--seed-sample", "2024"]) == 1
    out = capsys.readouterr().out
    assert f"demo-slope: seed {bad}: generator 'sigmoid_derivative' raised RuntimeError" in out
    assert _reported(out) == (2024, sample_seeds(2024, 3))
    assert main(["--banks", str(banks), "validate", "--seeds", "2", "--sample", "0"]) == 0  # 0 and 1 are fine


def test_sample_seeds_are_reproducible_and_spread():
    assert sample_seeds(7, 50) == sample_seeds(7, 50)
    assert sample_seeds(7, 50) != sample_seeds(8, 50)
    assert len(set(sample_seeds(7, 50))) == 50 and max(sample_seeds(7, 50)) > 10**6


def test_finite_difference_rounding_is_not_a_disagreement(bank):
    """A random seed found it: an entry of 1.08e-5 that central differences put 1.2e-9 away from the key."""
    from bpcore.quiz.validate import check_generated

    assert check_generated(bank.get("norm-bn-backward"), [1427434686]) == []


def test_a_slip_carried_on_is_worked_from_the_numbers_as_written(bank):
    """A random seed found it: the sign slip at dL/dz2 carried on from unrounded numbers gave a dL/dh whose
    cancelling terms missed what the written dL/dz2 implies; a learner works from what they wrote."""
    from bpcore.quiz.validate import check_generated

    assert check_generated(bank.get("three-layer-chain"), [638016960]) == []
