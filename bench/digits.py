"""Time to 97% test accuracy on digits: bpcore against scikit-learn's MLPClassifier, trained alike.

    .venv/bin/python bench/digits.py [--epochs 50] [--repeats 3]

Both: 64-128-10 ReLU network, Adam with lr 1e-3, batch 64, no weight penalty, float32 inputs,
the same stratified 75/25 split (random_state 0), one epoch at a time with the test accuracy
measured after each. Times count training only (evaluation is excluded from both). Both run
single-threaded (OpenBLAS limited through threadpoolctl). Targets:
bpcore / scikit-learn time ratio <= 1.0, and >= 97.5% test accuracy within 50 epochs.
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

import numpy as np

import bpcore as bp

F = bp.nn.functional
TARGET = 0.97


def run_bpcore(data, epochs, seed):
    bp.manual_seed(seed)
    model = bp.nn.Sequential(bp.nn.Linear(64, 128), bp.nn.ReLU(), bp.nn.Linear(128, 10)).to(np.float32)
    optimizer = bp.optim.Adam(model.parameters(), lr=1e-3)
    X, y = data.X_train.astype(np.float32), data.y_train
    rng = np.random.default_rng(seed)
    curve, elapsed, reached = [], 0.0, None
    for epoch in range(1, epochs + 1):
        t0 = time.perf_counter()
        bp.fit(
            model,
            F.cross_entropy,
            optimizer,
            X,
            y,
            epochs=1,
            batch_size=64,
            seed=int(rng.integers(1 << 31)),
            metric=None,
            progress=False,
        )
        elapsed += time.perf_counter() - t0
        with bp.no_grad():
            accuracy = float(np.mean(model(bp.Tensor(data.X_test.astype(np.float32))).data.argmax(1) == data.y_test))
        curve.append(accuracy)
        if reached is None and accuracy >= TARGET:
            reached = (epoch, elapsed)
    return curve, reached, elapsed


def run_sklearn(data, epochs, seed):
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    model = MLPClassifier(
        hidden_layer_sizes=(128,),
        activation="relu",
        solver="adam",
        learning_rate_init=1e-3,
        batch_size=64,
        alpha=0.0,
        random_state=seed,
        shuffle=True,
    )
    X, y = data.X_train.astype(np.float32), data.y_train
    classes = np.arange(10)
    curve, elapsed, reached = [], 0.0, None
    for epoch in range(1, epochs + 1):
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.partial_fit(X, y, classes=classes)
        elapsed += time.perf_counter() - t0
        accuracy = float(model.score(data.X_test.astype(np.float32), data.y_test))
        curve.append(accuracy)
        if reached is None and accuracy >= TARGET:
            reached = (epoch, elapsed)
    return curve, reached, elapsed


def main() -> None:
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    data = bp.data.digits(seed=0)
    print(data)
    ratios, summary = [], {"bpcore": [], "scikit-learn": []}
    for repeat in range(args.repeats):
        results = {
            "bpcore": run_bpcore(data, args.epochs, repeat),
            "scikit-learn": run_sklearn(data, args.epochs, repeat),
        }
        for name, (curve, reached, total) in results.items():
            summary[name].append((curve, reached, total))
            where = f"epoch {reached[0]} after {reached[1]:.2f} s" if reached else "not reached"
            print(
                f"seed {repeat} {name:<13} best {max(curve):.4f} (epoch {int(np.argmax(curve)) + 1}); "
                f"97% at {where}; {args.epochs} epochs of training took {total:.2f} s"
            )
        if results["bpcore"][1] and results["scikit-learn"][1]:
            ratios.append(results["bpcore"][1][1] / results["scikit-learn"][1][1])
        per_epoch = results["bpcore"][2] / results["scikit-learn"][2]
        print(f"seed {repeat} training time per epoch, bpcore / scikit-learn: {per_epoch:.2f}")
    if ratios:
        print(f"\nmedian time-to-97% ratio bpcore / scikit-learn: {statistics.median(ratios):.2f} (target <= 1.0)")
    best = [max(curve) for curve, _, _ in summary["bpcore"]]
    print(
        f"bpcore best test accuracy within {args.epochs} epochs, per seed: {', '.join(f'{b:.4f}' for b in best)}"
        " (target >= 0.975)"
    )


if __name__ == "__main__":
    main()
