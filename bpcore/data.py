"""Datasets: real handwritten digits and small synthetic problems, each deterministic by seed.

Every loader returns a :class:`Dataset` with a train/test split. Class labels are int64 arrays,
inputs float64 (cast with ``.astype`` for float32 experiments).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Dataset:
    """Inputs and targets, split into train and test. ``classes`` is None for regression."""

    name: str
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    classes: int | None = None

    @property
    def n_features(self) -> int:
        return self.X_train.shape[1]

    def __repr__(self) -> str:
        kind = f"{self.classes} classes" if self.classes else "regression"
        return (
            f"Dataset({self.name}: {len(self.X_train)} train / {len(self.X_test)} test, "
            f"{self.n_features} features, {kind})"
        )


def stratified_split(X, y, test_fraction: float, seed: int):
    """Split so that every class keeps its share in both parts (labels must be integers)."""
    rng = np.random.default_rng(seed)
    test_idx = []
    for label in np.unique(y):
        members = rng.permutation(np.flatnonzero(y == label))
        test_idx.extend(members[: round(len(members) * test_fraction)])
    test = np.zeros(len(y), dtype=bool)
    test[test_idx] = True
    train_order, test_order = rng.permutation(np.flatnonzero(~test)), rng.permutation(np.flatnonzero(test))
    return X[train_order], y[train_order], X[test_order], y[test_order]


def _random_split(name, X, y, test_fraction, seed, classes):
    order = np.random.default_rng(seed + 1).permutation(len(X))
    n_test = round(len(X) * test_fraction)
    test, train = order[:n_test], order[n_test:]
    return Dataset(name, X[train], y[train], X[test], y[test], classes)


def digits(test_fraction: float = 0.25, seed: int = 0) -> Dataset:
    """scikit-learn's 8x8 handwritten digits (1,797 images, 10 classes), pixels scaled to [0, 1].

    The split is scikit-learn's stratified ``train_test_split`` with ``random_state=seed``, so a
    scikit-learn model trained on the same seed sees exactly the same samples. Both the file and
    the split are done here without importing scikit-learn, whose import (scipy with it) takes
    seconds, more than everything else a notebook does before its first plot; tests/test_data.py
    checks the result against scikit-learn's own functions.
    """
    X, y = _digits_arrays()
    train, test = _stratified_train_test_indices(y, test_fraction, seed)
    return Dataset("digits", X[train], y[train], X[test], y[test], classes=10)


def _digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """The digits as scikit-learn's ``load_digits`` gives them: X (1797, 64) in [0, 1], y (1797,) int64.

    Read from the compressed CSV scikit-learn installs (the file ``load_digits`` parses), found
    through the import system without running scikit-learn's ``__init__``; if that file is not
    where it has always been, ``load_digits`` itself.
    """
    import gzip
    from importlib.util import find_spec
    from pathlib import Path

    spec = find_spec("sklearn")
    folders = list(spec.submodule_search_locations or []) if spec else []
    found = [path for folder in folders if (path := Path(folder) / "datasets" / "data" / "digits.csv.gz").is_file()]
    if found:
        with gzip.open(found[0], mode="rt", encoding="utf-8") as text:
            table = np.loadtxt(text, delimiter=",")
        pixels, labels = table[:, :-1], table[:, -1]
    else:
        from sklearn.datasets import load_digits

        bunch = load_digits()
        pixels, labels = bunch.data, bunch.target
    return pixels.astype(np.float64) / 16.0, labels.astype(np.int64)


def _stratified_train_test_indices(y: np.ndarray, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) indices of ``sklearn.model_selection.train_test_split(..., stratify=y, random_state=seed)``.

    Its algorithm (StratifiedShuffleSplit), step for step with the same legacy RandomState draws:
    each class's share of the test set is the mode of a multivariate hypergeometric, approximated
    by flooring and handing the leftover samples to the largest remainders (ties broken at random);
    each class's members are then permuted and cut, and both index lists permuted once more.
    """
    if isinstance(test_fraction, bool) or not isinstance(test_fraction, float) or not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be a float between 0 and 1 (exclusive), got {test_fraction!r}")
    n = len(y)
    n_test = int(np.ceil(test_fraction * n))
    n_train = n - n_test
    classes, y_indices, class_counts = np.unique(y, return_inverse=True, return_counts=True)
    if class_counts.min() < 2 or min(n_train, n_test) < len(classes):
        raise ValueError(
            f"a stratified split of {n} samples with test_fraction {test_fraction} needs every class twice and "
            f"at least {len(classes)} samples on each side; got class counts {class_counts.tolist()}"
        )
    class_indices = np.split(np.argsort(y_indices, kind="stable"), np.cumsum(class_counts)[:-1])
    rng = np.random.RandomState(seed)
    train_counts = _approximate_mode(class_counts, n_train, rng)
    test_counts = _approximate_mode(class_counts - train_counts, n_test, rng)
    train, test = [], []
    for members, n_i, t_i in zip(class_indices, train_counts, test_counts, strict=True):
        shuffled = members.take(rng.permutation(len(members)), mode="clip")
        train.extend(shuffled[:n_i])
        test.extend(shuffled[n_i : n_i + t_i])
    return rng.permutation(train), rng.permutation(test)


def _approximate_mode(class_counts: np.ndarray, n_draws: int, rng: np.random.RandomState) -> np.ndarray:
    """How many of ``n_draws`` samples each class gets: floor of its share, then one more for the
    largest remainders until the total is reached, ties broken by ``rng`` (as scikit-learn does)."""
    continuous = class_counts / class_counts.sum() * n_draws
    floored = np.floor(continuous)
    need_to_add = int(n_draws - floored.sum())
    if need_to_add > 0:
        remainder = continuous - floored
        for value in np.sort(np.unique(remainder))[::-1]:
            (tied,) = np.where(remainder == value)
            add_now = min(len(tied), need_to_add)
            floored[rng.choice(tied, size=add_now, replace=False)] += 1
            need_to_add -= add_now
            if need_to_add == 0:
                break
    return floored.astype(int)


def spirals(n: int = 600, classes: int = 3, noise: float = 0.2, test_fraction: float = 0.25, seed: int = 0) -> Dataset:
    """Interleaved spiral arms in 2-D, one per class: not separable by any straight line."""
    rng = np.random.default_rng(seed)
    per_class = n // classes
    X, y = [], []
    for c in range(classes):
        radius = np.linspace(0.05, 1.0, per_class)
        angle = np.linspace(c * 2 * np.pi / classes, c * 2 * np.pi / classes + 4.0, per_class)
        angle = angle + rng.normal(0, noise, per_class)
        X.append(np.column_stack([radius * np.sin(angle), radius * np.cos(angle)]))
        y.append(np.full(per_class, c))
    X, y = np.concatenate(X), np.concatenate(y).astype(np.int64)
    return Dataset("spirals", *stratified_split(X, y, test_fraction, seed), classes=classes)


def moons(n: int = 400, noise: float = 0.15, test_fraction: float = 0.25, seed: int = 0) -> Dataset:
    """Two interleaving half circles."""
    rng = np.random.default_rng(seed)
    half = n // 2
    t = rng.uniform(0, np.pi, size=half)
    upper = np.column_stack([np.cos(t), np.sin(t)])
    t = rng.uniform(0, np.pi, size=n - half)
    lower = np.column_stack([1 - np.cos(t), 0.5 - np.sin(t)])
    X = np.concatenate([upper, lower]) + rng.normal(0, noise, size=(n, 2))
    y = np.concatenate([np.zeros(half), np.ones(n - half)]).astype(np.int64)
    return Dataset("moons", *stratified_split(X, y, test_fraction, seed), classes=2)


def xor(n: int = 400, noise: float = 0.1, test_fraction: float = 0.25, seed: int = 0) -> Dataset:
    """Four clusters at the corners of a square; opposite corners share a class (needs a hidden layer)."""
    rng = np.random.default_rng(seed)
    corners = rng.integers(0, 2, size=(n, 2))
    X = corners * 2.0 - 1 + rng.normal(0, noise, size=(n, 2))
    y = (corners[:, 0] ^ corners[:, 1]).astype(np.int64)
    return Dataset("xor", *stratified_split(X, y, test_fraction, seed), classes=2)


def circles(n: int = 400, noise: float = 0.08, factor: float = 0.5, test_fraction: float = 0.25, seed: int = 0):
    """A small circle inside a big one."""
    rng = np.random.default_rng(seed)
    half = n // 2
    angle = rng.uniform(0, 2 * np.pi, size=n)
    radius = np.concatenate([np.ones(half), np.full(n - half, factor)])
    X = np.column_stack([radius * np.cos(angle), radius * np.sin(angle)]) + rng.normal(0, noise, size=(n, 2))
    y = np.concatenate([np.zeros(half), np.ones(n - half)]).astype(np.int64)
    return Dataset("circles", *stratified_split(X, y, test_fraction, seed), classes=2)


def regression_1d(n: int = 200, noise: float = 0.1, test_fraction: float = 0.25, seed: int = 0) -> Dataset:
    """y = sin(3x) + x/2 + noise on x in [-2, 2]; targets shaped (n, 1) like a network's output."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-2, 2, size=(n, 1))
    y = np.sin(3 * x) + 0.5 * x + rng.normal(0, noise, size=(n, 1))
    return _random_split("regression_1d", x, y, test_fraction, seed, classes=None)


def stream(X, y, seed: int | None = None):
    """Yield (x, y) one sample at a time, as data would arrive in an online setting."""
    order = np.arange(len(X)) if seed is None else np.random.default_rng(seed).permutation(len(X))
    for i in order:
        yield X[i], y[i]


# ----------------------------------------------------------------------------- sequence tasks


def adding_problem(n: int = 1000, length: int = 50, seed: int = 0):
    """The adding problem: long-range memory in its simplest form.

    Each input step is (value, marker): values uniform in [0, 1]; exactly two markers are 1, one in
    each half of the sequence. The target is the sum of the two marked values. X (n, length, 2),
    y (n, 1). Always answering 1.0 scores a mean squared error of 1/6 ~ 0.167: a model must beat
    that, which needs a memory of the first marked value across up to ``length`` steps.
    """
    rng = np.random.default_rng(seed)
    values = rng.uniform(0, 1, size=(n, length))
    markers = np.zeros((n, length))
    half = length // 2
    rows = np.arange(n)
    first, second = rng.integers(0, half, size=n), rng.integers(half, length, size=n)
    markers[rows, first] = markers[rows, second] = 1.0
    X = np.stack([values, markers], axis=2)
    y = (values[rows, first] + values[rows, second])[:, None]
    return X, y


def copy_task(n: int = 1000, symbols: int = 4, length: int = 5, delay: int = 20, seed: int = 0):
    """The copy (memory) task: read ``length`` symbols, wait ``delay`` blank steps, then write them back.

    Tokens: 0 blank, 1..symbols the symbols, symbols + 1 the "go" marker that starts the recall.
    Inputs are one-hot (n, T, symbols + 2), targets token ids (n, T) with T = 2 length + delay + 1:
    blank everywhere except the last ``length`` steps. A model without memory can only guess there,
    so its loss stays near length * ln(symbols) / T.
    """
    rng = np.random.default_rng(seed)
    total = 2 * length + delay + 1
    data = rng.integers(1, symbols + 1, size=(n, length))
    tokens = np.zeros((n, total), dtype=np.int64)
    tokens[:, :length] = data
    tokens[:, length + delay] = symbols + 1
    targets = np.zeros((n, total), dtype=np.int64)
    targets[:, -length:] = data
    X = np.eye(symbols + 2)[tokens]
    return X, targets


def seasonal_series(length: int = 600, period: int = 24, noise: float = 0.2, trend: float = 0.002, seed: int = 0):
    """A noisy seasonal signal with a slow trend, like hourly demand: y_t = sin(2 pi t / period)
    + 0.5 sin(4 pi t / period) + trend * t + noise. Returns the 1-D series."""
    rng = np.random.default_rng(seed)
    t = np.arange(length)
    season = np.sin(2 * np.pi * t / period) + 0.5 * np.sin(4 * np.pi * t / period)
    return season + trend * t + rng.normal(0, noise, size=length)


def forecasting_windows(series: np.ndarray, window: int, horizon: int = 1):
    """Sliding windows for one-step (or ``horizon``-step) forecasting: X (n, window, 1), y (n, horizon)."""
    series = np.asarray(series, dtype=np.float64)
    n = len(series) - window - horizon + 1
    if n < 1:
        raise ValueError(f"a series of {len(series)} points is too short for window {window} and horizon {horizon}")
    X = np.stack([series[i : i + window] for i in range(n)])[:, :, None]
    y = np.stack([series[i + window : i + window + horizon] for i in range(n)])
    return X, y


@dataclass
class CharText:
    """A text as integer ids, with the alphabet to go back and forth."""

    text: str
    alphabet: list[str]

    @property
    def vocab_size(self) -> int:
        return len(self.alphabet)

    @property
    def ids(self) -> np.ndarray:
        index = {ch: i for i, ch in enumerate(self.alphabet)}
        return np.array([index[ch] for ch in self.text], dtype=np.int64)

    def encode(self, text: str) -> np.ndarray:
        index = {ch: i for i, ch in enumerate(self.alphabet)}
        unknown = sorted(set(text) - index.keys())
        if unknown:
            raise ValueError(f"characters not in the alphabet: {unknown}")
        return np.array([index[ch] for ch in text], dtype=np.int64)

    def decode(self, ids) -> str:
        return "".join(self.alphabet[int(i)] for i in ids)


def char_text(name: str = "coriolanus") -> CharText:
    """A public-domain text bundled with the package (see bpcore/texts/README.md), as characters."""
    from importlib.resources import files

    text = (files("bpcore") / "texts" / f"{name}.txt").read_text(encoding="utf-8")
    return CharText(text, sorted(set(text)))
