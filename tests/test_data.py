"""bp.data.digits without scikit-learn's import: the same arrays and the same split as scikit-learn's own."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import bpcore as bp
from bpcore import data


def sklearn_digits(test_fraction, seed):
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    X, y = bunch.data.astype(np.float64) / 16.0, bunch.target.astype(np.int64)
    return train_test_split(X, y, test_size=test_fraction, stratify=y, random_state=seed)


def assert_same_arrays(found, expected, what):
    for name, a, b in zip(("X_train", "X_test", "y_train", "y_test"), found, expected, strict=True):
        assert a.dtype == b.dtype, f"{what} {name}: expected dtype {b.dtype}, got {a.dtype}"
        assert a.shape == b.shape, f"{what} {name}: expected shape {b.shape}, got {a.shape}"
        assert np.array_equal(a, b), f"{what} {name}: differs from scikit-learn's in {np.sum(a != b)} entries"


@pytest.mark.parametrize("seed", [0, 1, 7, 42])
@pytest.mark.parametrize("test_fraction", [0.25, 0.1, 0.333, 0.5, 0.9])
def test_digits_is_scikit_learns_stratified_split(test_fraction, seed):
    d = bp.data.digits(test_fraction=test_fraction, seed=seed)
    found = (d.X_train, d.X_test, d.y_train, d.y_test)
    what = f"digits(test_fraction={test_fraction}, seed={seed})"
    assert_same_arrays(found, sklearn_digits(test_fraction, seed), what)


@pytest.mark.parametrize("seed", [0, 3, 11])
@pytest.mark.parametrize("test_fraction", [0.2, 0.37, 0.5])
def test_the_split_matches_scikit_learn_on_uneven_classes_with_tied_remainders(test_fraction, seed):
    from sklearn.model_selection import train_test_split

    # class sizes 2, 3, 3, 7, 11, 11 (ties in the remainders), labels not 0..k-1 and shuffled
    y = np.random.default_rng(seed).permutation(np.repeat([5, -1, 9, 2, 30, 4], [2, 3, 3, 7, 11, 11]))
    index = np.arange(len(y))
    expected_train, expected_test = train_test_split(index, test_size=test_fraction, stratify=y, random_state=seed)
    train, test = data._stratified_train_test_indices(y, test_fraction, seed)
    assert train.tolist() == expected_train.tolist(), f"train indices: expected {expected_train}, got {train}"
    assert test.tolist() == expected_test.tolist(), f"test indices: expected {expected_test}, got {test}"


def test_digits_loads_without_importing_scikit_learn():
    code = "import sys, bpcore; bpcore.data.digits(); print(sorted(m for m in sys.modules if m.startswith('sklearn')))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]", f"expected no sklearn module imported, got {result.stdout.strip()}"


def test_digits_falls_back_to_load_digits_when_the_file_is_not_found(monkeypatch):
    import importlib.util

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    d = bp.data.digits()
    assert_same_arrays((d.X_train, d.X_test, d.y_train, d.y_test), sklearn_digits(0.25, 0), "fallback digits()")


@pytest.mark.parametrize("bad", [0.0, 1.0, -0.1, 1, 450, "0.25", True])
def test_digits_rejects_a_test_fraction_outside_zero_to_one(bad):
    with pytest.raises(ValueError, match=r"test_fraction must be a float between 0 and 1 .*got"):
        bp.data.digits(test_fraction=bad)
