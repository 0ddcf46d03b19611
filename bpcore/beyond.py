"""Experiments for "beyond the MLP": the same backprop, new architectures and new losses.

The autoencoder, the GAN and REINFORCE have their own modules (autoencoder.py, gan.py,
reinforce.py); this one holds the convolution comparison.
"""

from __future__ import annotations

from bpcore import data as datasets
from bpcore import nn
from bpcore.nn.conv import digits_cnn
from bpcore.nn.functional import cross_entropy
from bpcore.optim import Adam
from bpcore.random import manual_seed
from bpcore.train import evaluate, fit


def digits_mlp() -> nn.Sequential:
    """64-32-10: more parameters (2,410) than the small CNN (1,610)."""
    return nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))


def cnn_versus_mlp(seeds=(0, 1, 2), epochs: int = 15) -> dict[str, list[float]]:
    """Test accuracy on digits of the MLP and the CNN, same data, optimizer (Adam 1e-2), batch and seeds.

    The CNN sees each image as 8x8 pixels and shares one small filter across all positions; the MLP
    sees 64 unrelated numbers.
    """
    d = datasets.digits()
    inputs = {"mlp": (d.X_train, d.X_test), "cnn": (d.X_train.reshape(-1, 1, 8, 8), d.X_test.reshape(-1, 1, 8, 8))}
    makers = {"mlp": digits_mlp, "cnn": digits_cnn}
    accuracy: dict[str, list[float]] = {"mlp": [], "cnn": []}
    for seed in seeds:
        for kind, make in makers.items():
            manual_seed(seed)
            model = make()
            X_train, X_test = inputs[kind]
            fit(
                model,
                cross_entropy,
                Adam(model.parameters(), lr=1e-2),
                X_train,
                d.y_train,
                epochs=epochs,
                batch_size=32,
                seed=seed,
                metric=None,
                progress=False,
            )
            accuracy[kind].append(evaluate(model, cross_entropy, X_test, d.y_test)["accuracy"])
    return accuracy
