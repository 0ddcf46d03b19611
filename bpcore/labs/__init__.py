"""The labs: one module per notebook, holding the experiments, studies and hand derivations it runs.

A lab imports the engine (``bpcore.tensor``, ``bpcore.nn``, ``bpcore.optim``, ...) and never the
other way round; it imports no widget, plot or quiz code, so every claim a notebook makes can be
asserted by a test on the numbers a lab returns. Each module's docstring names its notebook and
the claims its tests prove.

=====================  ==============================================================
lab                    notebook
=====================  ==============================================================
``chain_rule``         01 the chain rule: a scalar network, link by link
``three_layer``        02 the 3-layer network: every intermediate by hand
``variants``           03 training variants: batch, stochastic, mini-batch, online
``vanishing``          04 vanishing and exploding gradients: depth, init, norms, residuals
``pitfalls``           05 pitfalls and hyperparameters: learning rate, optimizers, overfitting
``through_time``       06 backprop through time: an RNN by hand, reach, truncation, tasks
``beyond``             07 beyond the MLP: convolution, autoencoder, GAN, REINFORCE
``cost``               08 cost of backprop: FLOPs, memory, checkpointing, forward mode
``alternatives``       08 training without backprop: feedback alignment, ES, Oja
``attention``          10 attention and transformers: backward by hand, a causal LM, 1/sqrt(d_k)
=====================  ==============================================================

Import a lab by name (``from bpcore.labs import vanishing``); this package loads none of them itself.
"""
