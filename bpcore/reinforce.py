"""Policy gradients (REINFORCE) on a contextual bandit: backprop when the loss is not differentiable.

The reward comes from the world, not from a formula of the weights, so there is nothing to
differentiate directly. REINFORCE uses the identity

    d/dtheta E[R] = E[ (R - b) * d/dtheta log pi(a | s) ]

so backprop is applied to the surrogate loss  -(R - b) * log pi(a | s): actions that beat the
baseline b become more likely, the others less. The policy network, its softmax and the log are
ordinary engine ops; only the weighting by the reward is new.

The bandit: 3 situations (one-hot states) and 4 arms; each situation has a different best arm.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from bpcore import nn
from bpcore.optim import Adam
from bpcore.random import manual_seed
from bpcore.tensor import Tensor, no_grad

# mean reward of each arm (columns) in each situation (rows); rewards are these plus unit noise
ARM_MEANS = np.array(
    [
        [1.0, 0.0, 0.2, 0.1],
        [0.0, 0.3, 1.0, 0.2],
        [0.2, 0.1, 0.0, 1.0],
    ]
)


@dataclass
class BanditRun:
    policy: nn.Module
    mean_reward: list[float] = field(default_factory=list)  # per batch of episodes
    best_arm_probability: list[float] = field(default_factory=list)  # mean over situations


def policy_probabilities(policy: nn.Module) -> np.ndarray:
    """pi(a | s) for every situation s (rows) and arm a (columns)."""
    with no_grad():
        return policy(Tensor(np.eye(ARM_MEANS.shape[0]))).softmax(axis=1).data


def train_reinforce(
    batches: int = 200, batch_size: int = 32, lr: float = 0.05, seed: int = 0, baseline: bool = True
) -> BanditRun:
    """Sample situations, sample arms from the policy, and follow the REINFORCE gradient."""
    manual_seed(seed)
    rng = np.random.default_rng(seed)
    states, arms = ARM_MEANS.shape
    policy = nn.Sequential(nn.Linear(states, 16), nn.Tanh(), nn.Linear(16, arms))
    optimizer = Adam(policy.parameters(), lr=lr)
    run = BanditRun(policy)
    best = ARM_MEANS.argmax(axis=1)
    running_mean = 0.0
    for _ in range(batches):
        s = rng.integers(0, states, size=batch_size)
        log_probs = policy(Tensor(np.eye(states)[s])).log_softmax(axis=1)
        probs = np.exp(log_probs.data)
        a = np.array([rng.choice(arms, p=p) for p in probs])  # act by sampling the policy
        reward = ARM_MEANS[s, a] + rng.standard_normal(batch_size)
        b = running_mean if baseline else 0.0
        advantage = reward - b  # how much better than usual: the only place the reward enters
        optimizer.zero_grad()
        surrogate = -(log_probs[np.arange(batch_size), a] * advantage).mean()
        surrogate.backward()
        optimizer.step()
        running_mean = 0.9 * running_mean + 0.1 * reward.mean()
        run.mean_reward.append(float(reward.mean()))
        run.best_arm_probability.append(float(policy_probabilities(policy)[np.arange(states), best].mean()))
    return run
